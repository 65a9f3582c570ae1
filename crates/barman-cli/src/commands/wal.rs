//! WAL archive commands: `put-wal`.

use std::path::Path;
use std::process::ExitCode;

use barman_core::archive::{PutOutcome, WalArchive};
use serde_json::json;

use crate::{Context, fail};

/// `barman put-wal [--test] SERVER WAL_PATH`: archive one WAL file (the form for
/// `archive_command` on the Barman host).
pub fn put(ctx: &Context, server: &str, wal_path: &Path, test: bool) -> ExitCode {
    let Some(sc) = ctx.config.server(server) else {
        return fail(format!("unknown server '{server}'"));
    };
    if test {
        ctx.info(format!("Ready to accept WAL files for the server {server}"));
        return ExitCode::SUCCESS;
    }
    let archive = WalArchive::for_server(ctx.config.global(), sc);
    match archive.put_wal(wal_path) {
        Ok(PutOutcome::Archived(e)) => {
            ctx.info(format!("{server}: archived {} ({} bytes)", e.name, e.size));
            ctx.json(&json!({ server: { "archived": e.name.to_string(), "size": e.size } }));
            ExitCode::SUCCESS
        }
        Ok(PutOutcome::AlreadyArchived(name)) => {
            ctx.info(format!(
                "{server}: {name} already archived with the same content"
            ));
            ctx.json(&json!({ server: { "already_archived": name.to_string() } }));
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(format!("server {server}: {e}")),
    }
}
