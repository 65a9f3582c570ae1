//! `barman list-files`.

use std::process::ExitCode;

use barman_core::catalogue::FilesTarget;
use serde_json::json;

use crate::commands::{backups_of, single};
use crate::{Context, fail};

/// `list-files --target`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Target {
    /// The backup's files and the WAL it needs.
    Standalone,
    /// The backup's files.
    Data,
    /// The WAL files from the backup until the next one.
    Wal,
    /// Data and WAL.
    Full,
}

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to list.
    #[arg(long, value_enum, default_value = "standalone")]
    pub target: Target,
    /// Also list empty directories.
    #[arg(long = "list-empty-directories")]
    pub list_empty_directories: bool,
    /// The server.
    pub server: String,
    /// The backup id, name or shortcut.
    pub backup_id: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    let target = match args.target {
        Target::Standalone => FilesTarget::Standalone,
        Target::Data => FilesTarget::Data,
        Target::Wal => FilesTarget::Wal,
        Target::Full => FilesTarget::Full,
    };
    list_files(
        ctx,
        &args.server,
        &args.backup_id,
        target,
        args.list_empty_directories,
    )
}

/// `barman list-files [--target T] [--list-empty-directories] SERVER BACKUP_ID`.
fn list_files(
    ctx: &Context,
    server: &str,
    backup_id: &str,
    target: FilesTarget,
    empty_dirs: bool,
) -> ExitCode {
    let sc = match single(ctx, server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match backups_of(ctx, sc).list_files(backup_id, target, empty_dirs) {
        Ok(paths) => {
            for p in &paths {
                ctx.out(p.display());
            }
            ctx.json(&json!({
                sc.name(): paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()
            }));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}
