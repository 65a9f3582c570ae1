//! `barman rebuild-xlogdb`.

use std::process::ExitCode;

use barman_core::archive::WalArchive;

use crate::commands::selected;
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server names (`all` for every one).
    #[arg(required = true)]
    pub servers: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    rebuild_xlogdb(ctx, &args.servers)
}

/// `barman rebuild-xlogdb SERVER...`: rebuild xlog.db from the files in `wals/`.
fn rebuild_xlogdb(ctx: &Context, names: &[String]) -> ExitCode {
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut code = ExitCode::SUCCESS;
    for sc in servers {
        let archive = WalArchive::for_server(ctx.config.global(), sc);
        ctx.info(format!("Rebuilding xlogdb for server {}", sc.name()));
        match archive.rebuild_xlogdb() {
            Ok(r) => {
                for s in &r.skipped {
                    crate::warning(format!("skipped {}: {:?}", s.path.display(), s.reason));
                }
                ctx.info(format!(
                    "Done rebuilding xlogdb for server {} (history: {}, backup_labels: {}, wal_file: {})",
                    sc.name(),
                    r.history,
                    r.backup_labels,
                    r.wal_files
                ));
            }
            Err(e) => code = fail(format!("server {}: {e}", sc.name())),
        }
    }
    code
}
