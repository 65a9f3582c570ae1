//! `barman verify-backup` (`verify`).

use std::process::ExitCode;

use barman_core::backup::{self};
use barman_core::check::pretty_size;
use serde_json::json;

use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server.
    pub server: String,
    /// The backup id, name or shortcut.
    pub backup_id: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    verify(ctx, &args.server, &args.backup_id)
}

/// `barman verify-backup SERVER BACKUP_ID`: every file against the backup's manifest.
fn verify(ctx: &Context, server: &str, backup_id: &str) -> ExitCode {
    let Some(sc) = ctx.config.server(server) else {
        return fail(format!("unknown server '{server}'"));
    };
    match backup::verify_backup(ctx.config.global(), sc, backup_id) {
        Ok(report) => {
            for p in &report.problems {
                ctx.out(format!("\t{p}"));
            }
            ctx.json(&json!({
                server: {
                    "backup_id": backup_id,
                    "files_checked": report.files_checked,
                    "bytes_checked": report.bytes_checked,
                    "problems": report.problems,
                }
            }));
            if report.problems.is_empty() {
                ctx.info(format!(
                    "backup {backup_id} of server {server} verified: {} files, {} match the manifest",
                    report.files_checked,
                    pretty_size(report.bytes_checked)
                ));
                ExitCode::SUCCESS
            } else {
                fail(format!(
                    "backup {backup_id} of server {server}: {} problems found against its backup_manifest",
                    report.problems.len()
                ))
            }
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}
