//! `barman receive-wal`.

use std::process::ExitCode;

use barman_core::receive::{self, ReceiveOptions, ResetOutcome, SlotOutcome};

use crate::commands::{runtime, single, wal_conninfos};
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop the receive-wal process running for the server.
    #[arg(long, conflicts_with_all = ["reset", "create_slot", "drop_slot"])]
    pub stop: bool,
    /// Align the position of receive-wal with the server's (or its slot's).
    #[arg(long, conflicts_with_all = ["create_slot", "drop_slot"])]
    pub reset: bool,
    /// Create the physical replication slot named by slot_name.
    #[arg(long = "create-slot", conflicts_with = "drop_slot")]
    pub create_slot: bool,
    /// With --create-slot: succeed when the slot exists already.
    #[arg(long = "if-not-exists", requires = "create_slot")]
    pub if_not_exists: bool,
    /// Drop the physical replication slot named by slot_name.
    #[arg(long = "drop-slot")]
    pub drop_slot: bool,
    /// The server.
    pub server: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    let server = match single(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let name = server.name();
    let rt = runtime();
    if args.stop {
        return match rt.block_on(receive::stop(ctx.config.global(), server)) {
            Ok(Some(pid)) => {
                ctx.info(format!("Stopped process receive-wal({pid})"));
                ExitCode::SUCCESS
            }
            Ok(None) => fail(format!(
                "Termination of receive-wal failed: no such process for server {name}"
            )),
            Err(e) => fail(e.to_string()),
        };
    }
    // WAL streams from wal_streaming_conninfo when set, as Barman's receive-wal.
    let ci = match wal_conninfos(server) {
        Ok((ci, _, overrides)) => {
            if let Some(o) = overrides {
                ctx.info(format!("Configuration overrides applied: {o}"));
            }
            ci
        }
        Err(e) => return fail(e),
    };
    let slot = server.options().slot_name.clone().unwrap_or_default();
    if args.create_slot {
        ctx.info(format!(
            "Creating physical replication slot '{slot}' on server '{name}'"
        ));
        return match rt.block_on(receive::create_slot(server, &ci, args.if_not_exists)) {
            Ok(SlotOutcome::Done) => {
                ctx.info(format!("Replication slot '{slot}' created"));
                ExitCode::SUCCESS
            }
            Ok(_) => {
                ctx.info(format!("Replication slot '{slot}' already exists"));
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.to_string()),
        };
    }
    if args.drop_slot {
        ctx.info(format!(
            "Dropping physical replication slot '{slot}' on server '{name}'"
        ));
        return match rt.block_on(receive::drop_slot(server, &ci)) {
            Ok(SlotOutcome::Done) => {
                ctx.info(format!("Replication slot '{slot}' dropped"));
                ExitCode::SUCCESS
            }
            Ok(_) => fail(format!("Replication slot '{slot}' does not exist")),
            Err(e) => fail(e.to_string()),
        };
    }
    if args.reset {
        return match rt.block_on(receive::reset(ctx.config.global(), server, &ci)) {
            Ok(ResetOutcome::Reset { removed, created }) => {
                ctx.info("Resetting receive-wal directory status");
                if let Some(r) = removed {
                    ctx.info(format!("Removing status file {r}"));
                }
                ctx.info(format!("Creating status file {created}"));
                ExitCode::SUCCESS
            }
            Ok(_) => {
                ctx.info("Nothing to do. Position of receive-wal is aligned.");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.to_string()),
        };
    }
    ctx.info(format!("Starting receive-wal for server {name}"));
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match rt.block_on(receive::receive_wal(
        ctx.config.global(),
        server,
        &ci,
        &ReceiveOptions::default()
            .with_inline_io()
            .with_notify(|m| crate::warning(m)),
        shutdown,
    )) {
        Ok(report) => {
            ctx.info(format!(
                "receive-wal for server {name} stopped: {} segments completed, received up to {}",
                report.completed.len(),
                report.flushed
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {name}: receive-wal: {e}")),
    }
}
