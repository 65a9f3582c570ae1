//! `barman sync-info`, `barman sync-backup` and `barman sync-wals`: geo-redundancy.

use std::process::ExitCode;

use barman_core::sync::{self, SyncBackupOutcome};

use crate::commands::{runtime, usable_server};
use crate::{Context, fail};

/// The arguments of `sync-info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Ask the primary of this passive server (and save its answer in primary.info).
    #[arg(long)]
    pub primary: bool,
    /// The server.
    pub server: String,
    /// The last WAL already known: only newer ones are listed.
    pub last_wal: Option<String>,
    /// The position in xlog.db of the line of LAST_WAL, to read from there.
    pub last_position: Option<u64>,
}

/// The arguments of `sync-backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The passive server.
    pub server: String,
    /// The backup to copy from the primary.
    pub backup_id: String,
}

/// The arguments of `sync-wals`.
#[derive(Debug, clap::Args)]
pub struct WalsArgs {
    /// The passive server.
    pub server: String,
}

/// `barman sync-info [--primary] SERVER [LAST_WAL [LAST_POSITION]]`: the server's
/// state for a passive node, as JSON.
pub fn info(ctx: &Context, args: &InfoArgs) -> ExitCode {
    let sc = match usable_server(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let global = ctx.config.global();
    let doc = if args.primary {
        let last = args
            .last_wal
            .clone()
            .map(|w| (w, args.last_position.unwrap_or(0)));
        match runtime().block_on(sync::fetch_primary_info(global, sc, last)) {
            Ok((doc, warnings)) => {
                for w in warnings {
                    crate::warning(w);
                }
                doc
            }
            Err(e) => return fail(e),
        }
    } else {
        match sync::sync_info(global, sc, args.last_wal.as_deref(), args.last_position) {
            Ok(doc) => doc,
            Err(e) => return fail(e),
        }
    };
    println!("{}", sync::to_barman_json(&doc));
    ExitCode::SUCCESS
}

/// `barman sync-backup SERVER BACKUP_ID`.
pub fn backup(ctx: &Context, args: &BackupArgs) -> ExitCode {
    let sc = match usable_server(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let name = sc.name();
    let id = &args.backup_id;
    match runtime().block_on(sync::sync_backup(ctx.config.global(), sc, id)) {
        Ok(SyncBackupOutcome::Synced) => {
            ctx.info(format!(
                "Backup {id} of server {name} synchronised from its primary"
            ));
            ExitCode::SUCCESS
        }
        Ok(SyncBackupOutcome::NothingToDo(why)) => {
            ctx.info(why);
            ExitCode::SUCCESS
        }
        Ok(SyncBackupOutcome::Deleted(why)) => {
            crate::warning(format!("{why}, purging local backup"));
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// `barman sync-wals SERVER`.
pub fn wals(ctx: &Context, args: &WalsArgs) -> ExitCode {
    let sc = match usable_server(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match runtime().block_on(sync::sync_wals(ctx.config.global(), sc)) {
        Ok(out) => {
            if let Some(why) = &out.skipped {
                crate::warning(why);
            }
            for w in &out.archived {
                ctx.info(format!("{}: synchronised {w}", sc.name()));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!(
            "WAL synchronisation for server {} failed: {e}",
            sc.name()
        )),
    }
}

/// `cron` for a passive server: asks the primary, then starts `sync-backup` for the
/// oldest backup missing here and `sync-wals` when WAL files wait, in the background.
pub(crate) fn cron(ctx: &Context, server: &str, keep_descriptors: bool) -> Result<(), String> {
    let Some(sc) = ctx.config.server(server) else {
        return Ok(());
    };
    let global = ctx.config.global();
    let plan = match sync::cron_plan(global, sc, std::time::Duration::from_secs(120)) {
        Ok(Some(plan)) => plan,
        Ok(None) => {
            ctx.info(format!("{server}: another cron is running, skipped"));
            return Ok(());
        }
        Err(e) => return Err(format!("Failed to retrieve the primary node status: {e}")),
    };
    for w in &plan.warnings {
        crate::warning(w);
    }
    match plan.backup {
        Some(id) => {
            ctx.info(format!("Starting copy of backup {id} for server {server}"));
            crate::commands::cron::spawn_barman(
                ctx,
                &["sync-backup", server, &id.to_string()],
                keep_descriptors,
            )
            .map_err(|e| format!("cannot start sync-backup: {e}"))?;
        }
        None => ctx.info(format!(
            "No backup synchronisation required for server {server}"
        )),
    }
    if plan.wals {
        ctx.info(format!("Started copy of WAL files for server {server}"));
        crate::commands::cron::spawn_barman(ctx, &["sync-wals", server], keep_descriptors)
            .map_err(|e| format!("cannot start sync-wals: {e}"))?;
    } else {
        ctx.info(format!(
            "No WAL synchronisation required for server {server}"
        ));
    }
    Ok(())
}
