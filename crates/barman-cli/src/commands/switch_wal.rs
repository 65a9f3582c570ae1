//! `barman switch-wal` (`switch-xlog`).

use std::process::ExitCode;
use std::time::Duration;

use barman_core::archive::WalArchive;
use barman_core::config::ServerConfig;
use barman_core::postgres::SwitchWal;
use serde_json::json;

use crate::commands::{connect, runtime, selected};
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Switch even without WAL activity (runs a CHECKPOINT first).
    #[arg(long)]
    pub force: bool,
    /// Wait for one WAL file to be archived.
    #[arg(long)]
    pub archive: bool,
    /// The time, in seconds, to wait for a new WAL file to be archived before timing
    /// out (0: no limit).
    #[arg(long = "archive-timeout", value_name = "TIMEOUT", default_value_t = 30)]
    pub archive_timeout: u64,
    /// Server names (`all` for every one).
    #[arg(required = true)]
    pub servers: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    switch_wal(
        ctx,
        &args.servers,
        args.force,
        args.archive.then_some(args.archive_timeout),
    )
}

/// `barman switch-wal [--force] [--archive [--archive-timeout S]] SERVER...` (Barman's
/// `switch-xlog` too). With `archive` (the timeout in seconds, 0 for none), waits until
/// the closed WAL file is archived, or any new one when no switch was performed;
/// a closed file not archived in time is an error (exit code 1), as in Barman.
fn switch_wal(ctx: &Context, names: &[String], force: bool, archive: Option<u64>) -> ExitCode {
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let mut code = ExitCode::SUCCESS;
    for s in servers {
        if force {
            crate::log::info("Force a CHECKPOINT before pg_switch_wal()");
        }
        let outcome = rt.block_on(async {
            let server = connect(s).await?;
            server
                .switch_wal(force)
                .await
                .map_err(|e| format!("server {}: {e}", s.name()))
        });
        let closed = match outcome {
            Ok(SwitchWal::Switched(name)) => {
                ctx.info(format!(
                    "The WAL file {name} has been closed on server '{}'",
                    s.name()
                ));
                ctx.json(&json!({ s.name(): { "switch_wal": name } }));
                Some(name)
            }
            Ok(SwitchWal::NotNeeded) => {
                ctx.info(format!(
                    "No switch required for server '{}' (no activity since the last one: use --force to switch anyway)",
                    s.name()
                ));
                None
            }
            Ok(SwitchWal::InRecovery) => {
                ctx.info(format!(
                    "No switch performed because server '{}' is a standby.",
                    s.name()
                ));
                None
            }
            Err(e) => {
                code = fail(e);
                continue;
            }
        };
        if let Some(timeout) = archive
            && !wait_archived(ctx, s, closed.as_deref(), timeout)
        {
            code = ExitCode::from(1);
        }
    }
    code
}

/// Barman's `wait_for_wal`: false when the closed WAL file `closed` was not archived in
/// time (or the archive could not be read).
fn wait_archived(ctx: &Context, s: &ServerConfig, closed: Option<&str>, timeout: u64) -> bool {
    let max = if timeout > 0 {
        format!(" (max: {timeout} seconds)")
    } else {
        String::new()
    };
    let wal = match closed.map(str::parse::<barman_wal::WalFileName>) {
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            crate::error(format!(
                "server {}: '{}' is not a WAL file name: {e}",
                s.name(),
                closed.unwrap_or_default()
            ));
            return false;
        }
        None => None,
    };
    match &wal {
        Some(n) => ctx.info(format!(
            "Waiting for the WAL file {n} from server '{}'{max}",
            s.name()
        )),
        None => ctx.info(format!(
            "Waiting for a WAL file from server '{}' to be archived{max}",
            s.name()
        )),
    }
    let archive = WalArchive::for_server(ctx.config.global(), s);
    let limit = (timeout > 0).then(|| Duration::from_secs(timeout));
    match archive.wait_for_wal(wal.as_ref(), limit, Duration::from_millis(100)) {
        Ok(Some(n)) => {
            crate::log::info(&format!(
                "The WAL file {n} has been archived for server '{}'",
                s.name()
            ));
            true
        }
        Ok(None) => match &wal {
            Some(n) => {
                crate::error(format!(
                    "The WAL file {n} has not been received in {timeout} seconds"
                ));
                false
            }
            None => {
                ctx.info(format!(
                    "A WAL file has not been received in {timeout} seconds"
                ));
                true
            }
        },
        Err(e) => {
            crate::error(format!("server {}: {e}", s.name()));
            false
        }
    }
}
