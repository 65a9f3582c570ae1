//! `barman sandbox`: a restore test of a backup (barman-rs's own command; Barman has
//! none): recover into a throwaway directory, start, check, dump, stop and remove.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use barman_core::sandbox::{Outcome, SandboxOptions, SandboxReport, sandbox};
use serde_json::json;

use crate::commands::runtime;
use crate::{Context, fail};

/// The arguments of `barman sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--target-time/xid/lsn/name/immediate`, `--target-tli`, `--exclusive`.
    #[command(flatten)]
    pub target: super::TargetArgs,
    /// The sandbox directory (made if missing, else it must be empty); default: a new
    /// directory under sandbox_path (the system's temporary directory).
    #[arg(long = "directory")]
    pub directory: Option<PathBuf>,
    /// Leave the copy running after the checks, and print how to connect and clean up.
    #[arg(long)]
    pub keep: bool,
    /// A shell command run against the copy (PGHOST, PGPORT, PGUSER, PGDATABASE set);
    /// a non-zero exit fails the test (repeatable).
    #[arg(long = "command", value_name = "CMD")]
    pub command: Vec<String>,
    /// Dump the copy into FILE: pg_dumpall (plain SQL), or pg_dump -Fc of
    /// --dump-database.
    #[arg(long = "dump", value_name = "FILE")]
    pub dump: Option<PathBuf>,
    /// The database --dump dumps (custom format, for pg_restore) instead of all.
    #[arg(long = "dump-database", value_name = "DB", requires = "dump")]
    pub dump_database: Option<String>,
    /// Do not run pg_amcheck.
    #[arg(long = "no-amcheck")]
    pub no_amcheck: bool,
    /// Do not read every relation.
    #[arg(long = "no-read")]
    pub no_read: bool,
    /// Files copied at once by the restore.
    #[arg(short = 'j', long = "jobs")]
    pub jobs: Option<usize>,
    /// The copy's port (the name of its socket: it has no TCP listener).
    #[arg(long = "port", default_value_t = 5432)]
    pub port: u16,
    /// Run as cron's scheduled restore test: one at a time across servers (skipped
    /// quietly when another runs).
    #[arg(long = "scheduled", hide = true)]
    pub scheduled: bool,
    /// The server.
    pub server: String,
    /// The backup: an id, latest, oldest, last-failed, latest-full, a name, or auto.
    pub backup_id: String,
}

fn options(a: &Args) -> Result<SandboxOptions, String> {
    let mut o = SandboxOptions::new(&a.backup_id);
    (o.target, o.target_tli) = a.target.parse()?;
    o.exclusive = a.target.exclusive;
    o.directory = a.directory.clone();
    o.keep = a.keep;
    o.commands = a.command.clone();
    o.dump = a.dump.clone();
    o.dump_database = a.dump_database.clone();
    o.amcheck = !a.no_amcheck;
    o.read_relations = !a.no_read;
    o.jobs = a.jobs;
    o.port = a.port;
    o.local_tz = jiff::tz::TimeZone::system();
    Ok(o)
}

/// `barman sandbox SERVER BACKUP_ID`.
pub fn run(ctx: &Context, a: &Args) -> ExitCode {
    let started = Instant::now();
    let server = match crate::commands::usable_server(ctx, &a.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut opts = match options(a) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    opts.started = Some(started);
    // A scheduled test holds the schedule's lock for its whole run.
    let _schedule = if a.scheduled {
        match barman_core::sandbox::try_lock_schedule(ctx.config.global()) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => {
                ctx.info("another scheduled restore test is running: skipped");
                return ExitCode::SUCCESS;
            }
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    ctx.info(format!(
        "Starting restore test (sandbox) of server {} using backup {}",
        a.server, a.backup_id
    ));
    let global = ctx.config.global();
    let result = runtime().block_on(async {
        // SIGINT and SIGTERM stop and remove the copy.
        let cancel = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        };
        sandbox(global, server, &opts, cancel).await
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    print_report(ctx, &report);
    for w in &report.warnings {
        crate::warning(w);
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_report(ctx: &Context, r: &SandboxReport) {
    if let Some(t) = &r.target {
        ctx.out(format!("Recovery target: {t}"));
    }
    ctx.out(format!("Sandbox directory: {}", r.directory.display()));
    for s in &r.steps {
        ctx.out(format!(
            "\t{:<8} {:<7} {:>8.1}s  {}",
            s.name,
            s.outcome.to_string(),
            s.seconds,
            s.detail
        ));
        for f in &s.findings {
            ctx.out(format!("\t\t{f}"));
        }
    }
    match (r.rto, r.replay) {
        (Some(rto), Some(replay)) => ctx.out(format!(
            "RTO: {:.1}s (recover to first query; replay and promotion {:.1}s)",
            rto.as_secs_f64(),
            replay.as_secs_f64()
        )),
        _ => ctx.out("RTO: none (the copy never answered a query)"),
    }
    if r.kept {
        ctx.out("The copy is left running. Connect with:");
        ctx.out(format!("\t{}", r.connect_command()));
        ctx.out("Stop and remove it with:");
        ctx.out(format!("\t{}", r.cleanup_command()));
    }
    ctx.out(if r.passed {
        "Restore test PASSED"
    } else {
        "Restore test FAILED"
    });
    let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
    ctx.json(&json!({
        "server": r.server,
        "backup_id": r.backup_id,
        "target": r.target,
        "started_at": r.started_at.to_string(),
        "directory": r.directory.display().to_string(),
        "data_directory": r.data_directory.display().to_string(),
        "socket_directory": r.socket_directory.display().to_string(),
        "port": r.port,
        "bin_directory": r.bin_directory.display().to_string(),
        "user": r.user,
        "restored_bytes": r.restored_bytes,
        "wal_files": r.wal_files,
        "rto_seconds": secs(r.rto),
        "replay_seconds": secs(r.replay),
        "dump": r.dump.as_ref().map(|(p, size)| json!({"path": p.display().to_string(), "bytes": size})),
        "steps": r.steps.iter().map(|s| json!({
            "name": s.name,
            "outcome": match s.outcome { Outcome::Passed => "passed", Outcome::Failed => "failed", Outcome::Skipped => "skipped" },
            "seconds": s.seconds,
            "detail": s.detail,
            "findings": s.findings,
        })).collect::<Vec<_>>(),
        "kept": r.kept,
        "connect_command": r.kept.then(|| r.connect_command()),
        "cleanup_command": r.kept.then(|| r.cleanup_command()),
        "passed": r.passed,
        "warnings": r.warnings,
    }));
}
