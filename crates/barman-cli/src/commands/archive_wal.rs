//! `barman archive-wal`.

use std::process::ExitCode;

use barman_core::Error;
use barman_core::archive::WalArchive;
use barman_core::parallel;
use serde_json::{Map, Value, json};

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
    archive_wal(ctx, &args.servers)
}

/// `barman archive-wal SERVER...`: archive what `incoming/` and `streaming/` hold,
/// [`parallel::DEFAULT_JOBS`] servers at a time (Barman takes one server): a server
/// whose hook or storage hangs delays no other. Each server's report is printed as
/// soon as it is done.
fn archive_wal(ctx: &Context, names: &[String]) -> ExitCode {
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut code = ExitCode::SUCCESS;
    let mut doc = Map::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let servers = &servers;
        s.spawn(move || {
            parallel::each(servers, parallel::DEFAULT_JOBS, &|_, sc| {
                let archive = WalArchive::for_server(ctx.config.global(), sc);
                let result = archive.archive_wal();
                let _ = tx.send((*sc, result, archive.take_hook_warnings()));
            });
        });
        for (sc, result, warnings) in rx {
            ctx.info(format!(
                "Processing xlog segments from file archival for {}",
                sc.name()
            ));
            for w in warnings {
                crate::warning(w);
            }
            match result {
                Ok(report) => {
                    for a in &report.archived {
                        ctx.info(format!("\t{}", a.entry.name));
                    }
                    for e in &report.errors {
                        ctx.info(format!(
                            "\t{} moved to {} ({:?})",
                            e.name,
                            e.kept_as.display(),
                            e.kind
                        ));
                    }
                    for f in &report.failed {
                        crate::error(format!(
                            "server {}: {}: {}",
                            sc.name(),
                            f.path.display(),
                            f.error
                        ));
                        code = ExitCode::from(1);
                    }
                    doc.insert(
                        sc.name().to_owned(),
                        json!({
                            "archived": report.archived.iter().map(|a| a.entry.name.to_string()).collect::<Vec<_>>(),
                            "errors": report.errors.iter().map(|e| e.kept_as.display().to_string()).collect::<Vec<_>>(),
                            "failed": report.failed.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
                        }),
                    );
                }
                // Another archive-wal is at work: not a failure (as Barman).
                Err(e @ Error::Busy { .. }) => ctx.info(format!("{e}")),
                Err(e) => code = fail(format!("server {}: {e}", sc.name())),
            }
        }
    });
    ctx.json(&Value::Object(doc));
    code
}
