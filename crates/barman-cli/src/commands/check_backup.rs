//! `barman check-backup`.

use std::process::ExitCode;

use barman_catalog::BackupStatus;
use serde_json::json;

use crate::commands::{backups_of, single};
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
    check_backup(ctx, &args.server, &args.backup_id)
}

/// `barman check-backup SERVER BACKUP_ID`: decide whether a WAITING_FOR_WALS backup is
/// DONE or FAILED, and record it.
fn check_backup(ctx: &Context, server: &str, backup_id: &str) -> ExitCode {
    let sc = match single(ctx, server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match backups_of(ctx, sc).check_backup(backup_id) {
        Ok(r) if r.before == BackupStatus::Failed => fail(format!(
            "server {server}: backup {}: the validity of a failed backup cannot be checked",
            r.id
        )),
        Ok(r) => {
            if r.status != r.before {
                ctx.info(format!(
                    "Backup {} of server {}: status changed from {} to {}",
                    r.id,
                    sc.name(),
                    r.before,
                    r.status
                ));
            }
            if let Some(e) = r.outcome.error() {
                crate::error(format!("server {server}: backup {} FAILED: {e}", r.id));
                ctx.json(&json!({ sc.name(): { "backup_id": r.id.to_string(), "status": r.status.name(), "error": e } }));
                return ExitCode::from(1);
            }
            ctx.json(
                &json!({ sc.name(): { "backup_id": r.id.to_string(), "status": r.status.name() } }),
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}
