//! `barman list-processes`, `barman terminate-process` and `barman lock-directory-cleanup`.

use std::process::ExitCode;

use barman_core::processes;
use serde_json::json;

use crate::commands::single;
use crate::{Context, fail};

/// The arguments of `list-processes`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The server.
    pub server: String,
}

/// The arguments of `terminate-process`.
#[derive(Debug, clap::Args)]
pub struct TerminateArgs {
    /// The server.
    pub server: String,
    /// The task to stop (`receive-wal`, `backup`, `cron`, `archive-wal`, as
    /// list-processes names them).
    pub task: String,
}

/// `barman list-processes SERVER`: the processes working for the server, from the
/// lock files they hold.
pub fn list(ctx: &Context, args: &ListArgs) -> ExitCode {
    let server = match single(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let found = match processes::list(ctx.config.global(), server) {
        Ok(p) => p,
        Err(e) => return fail(format!("server {}: {e}", server.name())),
    };
    if found.is_empty() {
        ctx.out(format!(
            "No active subprocesses found for server {}.",
            server.name()
        ));
    } else {
        ctx.out(format!("Active subprocesses for server {}:", server.name()));
        for p in &found {
            ctx.out(format!("{} {}", p.pid, p.task));
        }
    }
    let list: Vec<_> = found
        .iter()
        .map(|p| json!({ "pid": p.pid, "name": p.task }))
        .collect();
    ctx.json(&json!({ server.name(): list }));
    ExitCode::SUCCESS
}

/// `barman terminate-process SERVER TASK`: SIGINT to the process, waiting up to 10 s.
pub fn terminate(ctx: &Context, args: &TerminateArgs) -> ExitCode {
    let server = match single(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match processes::terminate(ctx.config.global(), server, &args.task) {
        Ok(pid) => {
            ctx.info(format!("Stopped process {}({pid})", args.task));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `barman lock-directory-cleanup`: removes the lock files nobody holds.
pub fn cleanup(ctx: &Context) -> ExitCode {
    match clean_lock_directory(ctx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Removes the lock files nobody holds, logging what it does as Barman.
pub(crate) fn clean_lock_directory(ctx: &Context) -> Result<(), String> {
    crate::log::info("Cleaning up lockfiles directory.");
    let removed =
        processes::clean_lock_directory(ctx.config.global()).map_err(|e| e.to_string())?;
    for path in removed {
        crate::log::debug_as("barman.utils", &format!("{} deleted", path.display()));
    }
    Ok(())
}
