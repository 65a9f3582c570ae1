//! `barman backup`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use barman_transport::CopyProgress;

use barman_core::backup::{self, BackupOptions, ReuseBackup};
use barman_core::check::{human_readable_duration, pretty_size};
use serde_json::{Value, json};

use crate::commands::{conninfo, runtime, selected};
use crate::{Context, error, fail, warning};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ask PostgreSQL for an immediate checkpoint.
    #[arg(
        long = "immediate-checkpoint",
        overrides_with = "no_immediate_checkpoint"
    )]
    pub immediate_checkpoint: bool,
    /// Let PostgreSQL spread the checkpoint.
    #[arg(long = "no-immediate-checkpoint")]
    pub no_immediate_checkpoint: bool,
    /// Reuse unchanged files of the previous backup: off, copy or link (no value: link).
    #[arg(long = "reuse-backup", num_args = 0..=1, default_missing_value = "link", value_parser = ["off", "copy", "link"])]
    pub reuse_backup: Option<String>,
    /// How many files to copy at once.
    #[arg(short = 'j', long = "jobs")]
    pub jobs: Option<usize>,
    /// Start at most this many rsync jobs at once over ssh
    /// (parallel_jobs_start_batch_size).
    #[arg(long = "jobs-start-batch-size", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs_start_batch_size: Option<u64>,
    /// Seconds between two batches of rsync jobs (parallel_jobs_start_batch_period).
    #[arg(long = "jobs-start-batch-period", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs_start_batch_period: Option<u64>,
    /// Bandwidth limit in KiB/s (0: none).
    #[arg(long)]
    pub bwlimit: Option<u64>,
    /// Wait for every WAL file the backup needs to be archived.
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// With --wait, give up after this many seconds (0: never).
    #[arg(long = "wait-timeout", default_value_t = 0)]
    pub wait_timeout: u64,
    /// A name for the backup, usable instead of its id.
    #[arg(long)]
    pub name: Option<String>,
    /// Take a PostgreSQL 17 block-level incremental on top of this backup.
    #[arg(long)]
    pub incremental: Option<String>,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub retry: crate::commands::RetryArgs,
    /// Write a backup_manifest (always done).
    #[arg(long = "manifest")]
    pub manifest: bool,
    /// Refused: barman-rs always writes a backup_manifest (recover and
    /// verify-backup rely on it).
    #[arg(long = "no-manifest")]
    pub no_manifest: bool,
    /// Seconds between the queries that keep the backup's session alive during the
    /// copy (keepalive_interval; 0: none).
    #[arg(long = "keepalive-interval")]
    pub keepalive_interval: Option<u64>,
    /// Refused: backups to cloud storage (backup_method = local-to-cloud) are not
    /// supported yet.
    #[arg(long = "cloud-staging-directory")]
    pub cloud_staging_directory: Option<String>,
    /// Refused: backups to cloud storage.
    #[arg(long = "cloud-staging-max-size")]
    pub cloud_staging_max_size: Option<String>,
    /// Refused: barman-rs runs no checks before a backup, so no check can time out.
    #[arg(long = "check-timeout")]
    pub check_timeout: Option<u64>,
    /// Server names.
    #[arg(required = true)]
    pub servers: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, a: &Args) -> ExitCode {
    if a.no_manifest {
        return fail("--no-manifest is not supported: barman-rs always writes a backup_manifest");
    }
    if a.cloud_staging_directory.is_some() || a.cloud_staging_max_size.is_some() {
        return fail(
            "--cloud-staging-directory and --cloud-staging-max-size are for backups to cloud storage, which barman-rs does not take yet",
        );
    }
    if a.check_timeout.is_some() {
        return fail("--check-timeout is not supported: barman-rs runs no checks before a backup");
    }
    exec(ctx, a)
}

fn lsn_line(
    what: &str,
    lsn: Option<barman_wal::Lsn>,
    wal: Option<String>,
    off: Option<i64>,
) -> String {
    format!(
        "Backup {what} at LSN: {} ({}, {:08X})",
        lsn.map(|l| l.to_string()).unwrap_or_default(),
        wal.unwrap_or_default(),
        off.unwrap_or(0)
    )
}

/// A progress bar on standard error while a copy runs: files, bytes, rate and ETA.
/// Only on a terminal, in console format, without `-q`.
struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressDisplay {
    fn start(ctx: &Context, options: &mut BackupOptions) -> Option<ProgressDisplay> {
        use std::io::IsTerminal;
        if ctx.quiet || ctx.format != crate::Format::Console || !std::io::stderr().is_terminal() {
            return None;
        }
        let counters = Arc::new(CopyProgress::default());
        options.progress = Some(counters.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} ({binary_bytes_per_sec}, ETA {eta}) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            while !flag.load(Ordering::Relaxed) {
                let total = counters.total_bytes.load(Ordering::Relaxed);
                let done = counters.bytes.load(Ordering::Relaxed);
                bar.set_length(total.max(done));
                bar.set_position(done);
                bar.set_message(format!("{} files", counters.files.load(Ordering::Relaxed)));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Some(ProgressDisplay {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `barman backup SERVER...`: one backup per server (`all` for every active one);
/// exit code 1 when any fails.
fn exec(ctx: &Context, args: &Args) -> ExitCode {
    let names = &args.servers;
    if args.incremental.is_some() {
        return fail(
            "--incremental (PostgreSQL 17 block-level incremental backups) is not supported yet; use --reuse-backup=link for file-level incrementals",
        );
    }
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let reuse = match args.reuse_backup.as_deref().map(str::parse::<ReuseBackup>) {
        Some(Err(e)) => return fail(e),
        Some(Ok(r)) => Some(r),
        None => None,
    };
    let rt = runtime();
    let mut failed = false;
    let mut doc = serde_json::Map::new();
    for server in servers {
        let name = server.name();
        if names.len() == 1 && names[0] == "all" && (!server.active() || server.is_passive()) {
            continue;
        }
        let mut options = BackupOptions::new();
        options.immediate_checkpoint = if args.immediate_checkpoint {
            Some(true)
        } else if args.no_immediate_checkpoint {
            Some(false)
        } else {
            None
        };
        options.reuse = reuse;
        options.jobs = args.jobs;
        options.jobs_start_batch_size = args
            .jobs_start_batch_size
            .and_then(|n| usize::try_from(n).ok());
        options.jobs_start_batch_period = args.jobs_start_batch_period;
        options.bwlimit = args.bwlimit;
        options.wait = args.wait;
        options.wait_timeout =
            (args.wait_timeout > 0).then(|| Duration::from_secs(args.wait_timeout));
        options.name = args.name.clone();
        options.retry_times = args.retry.times();
        options.retry_sleep = args.retry.retry_sleep;
        options.keepalive_interval = args.keepalive_interval;
        match conninfo(server) {
            Ok(ci) => options.conninfo = Some(ci),
            Err(e) => {
                error(e);
                failed = true;
                continue;
            }
        }
        ctx.info(format!(
            "Starting backup using {} method for server {name}",
            server.backup_method()
        ));
        let bar = ProgressDisplay::start(ctx, &mut options);
        let result = rt.block_on(backup::backup(ctx.config.global(), server, &options));
        drop(bar);
        match result {
            Ok(report) => {
                let info = &report.info;
                ctx.info(format!("Backup {} in {}", info.id, report.path.display()));
                ctx.info(lsn_line(
                    "start",
                    info.begin_xlog,
                    info.begin_wal.map(|w| w.to_string()),
                    info.begin_offset,
                ));
                ctx.info(format!(
                    "Copy done (time: {})",
                    human_readable_duration(Duration::from_secs_f64(report.copy_seconds))
                ));
                if report.first_backup {
                    ctx.info(format!("This is the first backup for server {name}"));
                    if !report.removed_wals.is_empty() {
                        ctx.info("WAL segments preceding the current backup have been found:");
                        for w in &report.removed_wals {
                            ctx.info(format!("\t{w} from server {name} has been removed"));
                        }
                    }
                }
                let size = u64::try_from(info.size.unwrap_or(0)).unwrap_or(0);
                let dedup = u64::try_from(info.deduplicated_size.unwrap_or(0)).unwrap_or(0);
                if dedup < size && size > 0 {
                    ctx.info(format!(
                        "Backup size: {}. Actual size on disk: {} (-{:.2}% deduplication ratio).",
                        pretty_size(size),
                        pretty_size(dedup),
                        100.0 * (1.0 - dedup as f64 / size as f64)
                    ));
                } else {
                    ctx.info(format!("Backup size: {}", pretty_size(size)));
                }
                ctx.info(lsn_line(
                    "end",
                    info.end_xlog,
                    info.end_wal.map(|w| w.to_string()),
                    info.end_offset,
                ));
                ctx.info(format!(
                    "Backup completed (start time: {}, elapsed time: {})",
                    info.begin_time.map(|t| t.to_string()).unwrap_or_default(),
                    human_readable_duration(Duration::from_secs_f64(report.total_seconds))
                ));
                for w in &report.warnings {
                    warning(w);
                }
                if info.status == barman_catalog::BackupStatus::WaitingForWals {
                    warning(
                        "IMPORTANT: this backup is classified as WAITING_FOR_WALS, meaning that Barman has not received yet all the required WAL files for the backup consistency.\nThis is a common behaviour in concurrent backup scenarios, and Barman automatically set the backup as DONE once all the required WAL files have been archived.\nHint: execute the backup command with '--wait'",
                    );
                }
                doc.insert(
                    name.to_owned(),
                    json!({
                        "backup_id": info.id.to_string(),
                        "backup_name": info.backup_name,
                        "status": info.status.name(),
                        "begin_xlog": info.begin_xlog.map(|l| l.to_string()),
                        "end_xlog": info.end_xlog.map(|l| l.to_string()),
                        "begin_wal": info.begin_wal.map(|w| w.to_string()),
                        "end_wal": info.end_wal.map(|w| w.to_string()),
                        "size_bytes": size,
                        "deduplicated_size_bytes": dedup,
                        "files_copied": report.copy.files_copied,
                        "files_reused": report.copy.files_linked,
                        "bytes_copied": report.copy.bytes_copied,
                        "copy_seconds": report.copy_seconds,
                        "total_seconds": report.total_seconds,
                        "warnings": report.warnings,
                    }),
                );
            }
            Err(e) => {
                error(format!("Backup failed for server {name}: {e}"));
                doc.insert(name.to_owned(), json!({ "error": e.to_string() }));
                failed = true;
            }
        }
    }
    ctx.json(&Value::Object(doc));
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
