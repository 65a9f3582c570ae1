//! `barman check-wal-archive`.

use std::process::ExitCode;

use barman_wal::TimelineId;

use crate::commands::archive_of;
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fail if WAL files of this timeline or newer exist.
    #[arg(long)]
    pub timeline: Option<u32>,
    /// The server.
    pub server: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    check_wal_archive(ctx, &args.server, args.timeline)
}

/// `barman check-wal-archive [--timeline N] SERVER`: is the archive safe for a new
/// cluster?
fn check_wal_archive(ctx: &Context, server: &str, timeline: Option<u32>) -> ExitCode {
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    ctx.info(format!("Server {server}:"));
    match archive.check_wal_archive(timeline.map(TimelineId::from)) {
        Ok(()) => {
            ctx.info(format!(" - WAL archive check for server {server} passed"));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
