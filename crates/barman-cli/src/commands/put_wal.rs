//! `barman put-wal`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use barman_core::archive::PutOutcome;
use serde_json::json;

use crate::commands::archive_of;
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only check that the server accepts WAL files.
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// The server.
    pub server: String,
    /// The WAL file (`%p`); without it, a tar stream is read from standard input.
    pub wal_path: Option<PathBuf>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    put(ctx, &args.server, args.wal_path.as_deref(), args.test)
}

fn report_put(ctx: &Context, server: &str, outcome: &PutOutcome) {
    match outcome {
        PutOutcome::Archived(e) => {
            ctx.info(format!("{server}: archived {} ({} bytes)", e.name, e.size))
        }
        PutOutcome::AlreadyArchived(name) => ctx.info(format!(
            "{server}: {name} already archived with the same content"
        )),
        _ => {}
    }
}

/// `barman put-wal [--test] SERVER [WAL_PATH]`: archive one WAL file given by path (the
/// form for `archive_command` on the Barman host), or the tar stream
/// `barman-wal-archive` sends on standard input.
fn put(ctx: &Context, server: &str, wal_path: Option<&Path>, test: bool) -> ExitCode {
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if test {
        ctx.info(format!("Ready to accept WAL files for the server {server}"));
        return ExitCode::SUCCESS;
    }
    let outcomes = match wal_path {
        Some(p) => archive
            .put_wal(p)
            .map(|o| vec![o])
            .map_err(|e| e.to_string()),
        None => archive
            .put_wal_tar(std::io::stdin().lock())
            .map_err(|e| e.to_string()),
    };
    for w in archive.take_hook_warnings() {
        crate::warning(w);
    }
    match outcomes {
        Ok(list) => {
            let mut names = Vec::new();
            for o in &list {
                report_put(ctx, server, o);
                match o {
                    PutOutcome::Archived(e) => names.push(
                        json!({ "name": e.name.to_string(), "size": e.size, "archived": true }),
                    ),
                    PutOutcome::AlreadyArchived(n) => {
                        names.push(json!({ "name": n.to_string(), "archived": false }))
                    }
                    _ => {}
                }
            }
            ctx.json(&json!({ server: names }));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}
