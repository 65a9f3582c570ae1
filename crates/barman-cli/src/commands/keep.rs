//! `barman keep`.

use std::process::ExitCode;

use barman_catalog::KeepTarget;
use barman_core::catalogue::KeepAction;
use serde_json::json;

use crate::commands::{backups_of, single};
use crate::{Context, fail};

/// `keep --target`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Target {
    /// The backup and every later WAL file.
    Full,
    /// The backup and the WAL it needs.
    Standalone,
}

/// The command's arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("keep_action").required(true).multiple(true).args(["status", "release", "target"])))]
pub struct Args {
    /// Show the keep status (full, standalone or nokeep).
    #[arg(short = 's', long)]
    pub status: bool,
    /// Remove the keep annotation.
    #[arg(short = 'r', long)]
    pub release: bool,
    /// What to keep: the backup and all later WAL (full), or only the WAL it needs
    /// (standalone).
    #[arg(long, value_enum)]
    pub target: Option<Target>,
    /// The server.
    pub server: String,
    /// The backup id, name or shortcut.
    pub backup_id: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    let target = args.target.map(|t| match t {
        Target::Full => KeepTarget::Full,
        Target::Standalone => KeepTarget::Standalone,
    });
    keep(
        ctx,
        &args.server,
        &args.backup_id,
        args.status,
        args.release,
        target,
    )
}

/// `barman keep SERVER BACKUP_ID --status | --release | --target full|standalone`
/// (that order of precedence, as Barman).
fn keep(
    ctx: &Context,
    server: &str,
    backup_id: &str,
    status: bool,
    release: bool,
    target: Option<KeepTarget>,
) -> ExitCode {
    let sc = match single(ctx, server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let action = if status {
        KeepAction::Status
    } else if release {
        KeepAction::Release
    } else if let Some(t) = target {
        KeepAction::Keep(t)
    } else {
        return fail("one of the arguments -r/--release -s/--status --target is required");
    };
    match backups_of(ctx, sc).keep(backup_id, action) {
        Ok((_, keep)) => {
            if status {
                let text = keep.map_or("nokeep", KeepTarget::name);
                ctx.out(format!("Server {}:", sc.name()));
                ctx.out(format!("\tKeep: {text}"));
                ctx.json(&json!({
                    sc.name(): { "keep_status": { "description": "Keep", "message": text } }
                }));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}
