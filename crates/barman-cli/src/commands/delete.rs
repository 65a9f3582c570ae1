//! `barman delete`.

use std::process::ExitCode;

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
    delete(ctx, &args.server, &args.backup_id)
}

/// `barman delete SERVER BACKUP_ID`: delete a backup, its incremental descendants and
/// the WAL files no other backup needs.
fn delete(ctx: &Context, server: &str, backup_id: &str) -> ExitCode {
    let sc = match single(ctx, server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let backups = backups_of(ctx, sc);
    let result = backups.delete(backup_id);
    for w in backups.take_hook_warnings() {
        crate::warning(w);
    }
    match result {
        Ok(deleted) => {
            let mut doc = Vec::new();
            for d in &deleted {
                ctx.info(format!("Deleting backup {} for server {}", d.id, sc.name()));
                if !d.wals.is_empty() {
                    ctx.info("Delete associated WAL segments:");
                    for w in &d.wals {
                        ctx.info(format!("\t{w}"));
                    }
                }
                ctx.info(format!("Deleted backup {}", d.id));
                doc.push(json!({
                    "backup_id": d.id.to_string(),
                    "wals": d.wals.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }));
            }
            ctx.json(&json!({ sc.name(): doc }));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}
