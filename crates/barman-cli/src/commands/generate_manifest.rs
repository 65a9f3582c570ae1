//! `barman generate-manifest`.

use std::process::ExitCode;

use barman_core::backup;
use serde_json::json;

use crate::commands::usable_server;
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server.
    pub server: String,
    /// The backup id, name or shortcut.
    pub backup_id: String,
}

/// `barman generate-manifest SERVER BACKUP_ID`: writes the backup_manifest of a backup
/// that has none.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    let sc = match usable_server(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match backup::generate_manifest(ctx.config.global(), sc, &args.backup_id) {
        Ok(made) => {
            ctx.json(&json!({
                sc.name(): {
                    "backup_id": args.backup_id,
                    "manifest": made.path,
                    "files": made.files,
                    "bytes": made.bytes,
                }
            }));
            ctx.info(format!(
                "Backup manifest for backup '{}' successfully generated for server {}",
                args.backup_id, args.server
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
