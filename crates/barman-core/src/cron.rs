//! `barman cron`: run every minute, it archives what waits in `incoming/` and
//! `streaming/` for every active server, then maintains its catalogue: backups whose
//! backup process died are marked FAILED, WAITING_FOR_WALS backups are checked again,
//! the retention policy is enforced, and temporary files left by a crash are removed.
//! A streaming server's receive-wal is found running or reported to start
//! ([`Receiver::ToStart`]: the caller starts `barman receive-wal SERVER` in the
//! background), and stopped when `streaming_archiver` was turned off.

use barman_catalog::BackupId;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::archive::ArchiveReport;
use crate::catalogue::{CheckReport, RetentionRun, ServerBackups};
use crate::config::Config;
use crate::fsutil::Lock;
use crate::leftovers::{self, Leftover};
use crate::{Error, Result};

/// What cron did for one server.
#[derive(Debug)]
#[non_exhaustive]
pub enum CronOutcome {
    /// Skipped: inactive, or a passive node (which syncs from its primary instead).
    Skipped(&'static str),
    /// Another cron holds this server's lock.
    Busy,
    /// The server is disabled by its configuration (the reason): nothing ran.
    Disabled(String),
    /// The server's maintenance ran; each step reports on its own.
    Ran(Box<ServerCron>),
}

/// The steps of cron for one server. A failing step does not stop the next ones.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerCron {
    /// archive-wal (an [`Error::Busy`] when another archive-wal runs).
    pub archive: Result<ArchiveReport>,
    /// STARTED backups whose process is gone, now written FAILED.
    pub failed_stale: Result<Vec<BackupId>, Error>,
    /// WAITING_FOR_WALS backups checked again.
    pub checked: Result<Vec<CheckReport>, Error>,
    /// The retention policy.
    pub retention: Result<RetentionRun, Error>,
    /// Temporary files left by a crash, removed.
    pub leftovers: Result<Vec<Leftover>, Error>,
    /// What the archive, delete and WAL delete hooks had to say.
    pub hook_warnings: Vec<String>,
    /// The server's receive-wal: to start (the caller starts `barman receive-wal` in the
    /// background), running, stopped (`streaming_archiver` is off), or nothing to do.
    pub receiver: Result<Receiver, Error>,
}

/// What cron found, or did, about a server's receive-wal (Barman's cron starts one
/// per streaming server and stops it when `streaming_archiver` is turned off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Receiver {
    /// `streaming_archiver` is off and none runs.
    Off,
    /// It runs (its PID).
    Running(u32),
    /// `streaming_archiver` is on and none runs: the caller starts it.
    ToStart,
    /// `streaming_archiver` is off and one ran: it was asked to stop (its PID).
    Stopped(u32),
}

/// Barman's `.<server>-receive-wal.lock`, held by the server's receive-wal.
pub(crate) fn receiver_lock_path(
    global: &crate::config::GlobalConfig,
    server: &crate::config::ServerConfig,
) -> std::path::PathBuf {
    std::path::Path::new(&global.barman_lock_directory)
        .join(format!(".{}-receive-wal.lock", server.name()))
}

/// The PID of the receive-wal holding `server`'s `.<server>-receive-wal.lock`, if one
/// runs: the lock's holder as [`crate::processes`] finds it (from the kernel's lock
/// table, so that asking never takes the lock, even for an instant; never a stranger
/// that reused the PID).
///
/// # Errors
///
/// I/O errors on the lock file.
pub fn receiver_pid(
    global: &crate::config::GlobalConfig,
    server: &crate::config::ServerConfig,
) -> Result<Option<u32>> {
    crate::processes::holder(
        &receiver_lock_path(global, server),
        "receive-wal",
        server.name(),
    )
}

/// Decides (and for a server no longer streaming, does) what cron does about its
/// receive-wal.
fn receiver(config: &Config, server: &crate::config::ServerConfig) -> Result<Receiver> {
    let pid = receiver_pid(config.global(), server)?;
    Ok(match (server.streaming_archiver(), pid) {
        (true, Some(pid)) => Receiver::Running(pid),
        (true, None) => Receiver::ToStart,
        (false, None) => Receiver::Off,
        (false, Some(pid)) => {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .map_err(|e| Error::io("running", "kill", e))?;
            if !status.success() {
                return Err(Error::refused(
                    crate::Refusal::ServerState,
                    format!(
                        "cannot stop receive-wal (PID {pid}) of server {}",
                        server.name()
                    ),
                ));
            }
            Receiver::Stopped(pid)
        }
    })
}

/// Runs `cron` for every server, in name order, each under its `.<server>-cron.lock` (a
/// busy lock skips the server, as Barman does). `now` and `local` (the local time zone)
/// are for retention by recovery window.
///
/// Servers are handled [`DEFAULT_JOBS`] at a time (Barman handles them one after
/// another, its issue #651), so that a slow or hung server (a hook that never returns,
/// a disk that blocks) does not hold back the other servers' WAL archiving. The
/// outcomes come back in name order.
pub fn run(config: &Config, now: Timestamp, local: &TimeZone) -> Vec<(String, CronOutcome)> {
    run_with_jobs(config, now, local, DEFAULT_JOBS)
}

/// How many servers [`run`] handles at a time.
pub const DEFAULT_JOBS: usize = crate::parallel::DEFAULT_JOBS;

/// [`run`] with at most `jobs` servers at a time (1: one after another, as Barman).
pub fn run_with_jobs(
    config: &Config,
    now: Timestamp,
    local: &TimeZone,
    jobs: usize,
) -> Vec<(String, CronOutcome)> {
    let results = std::sync::Mutex::new(Vec::new());
    run_each(config, now, local, jobs, &|i, name, outcome| {
        if let Ok(mut r) = results.lock() {
            r.push((i, name.to_owned(), outcome));
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _, _)| *i);
    results.into_iter().map(|(_, n, o)| (n, o)).collect()
}

/// [`run_with_jobs`] handing each server's outcome to `each` (with the server's rank in
/// name order) as soon as it is known, from the worker that produced it: what follows
/// a server's cron (starting its receive-wal, say) does not wait for the slowest server.
pub fn run_each(
    config: &Config,
    now: Timestamp,
    local: &TimeZone,
    jobs: usize,
    each: &(dyn Fn(usize, &str, CronOutcome) + Sync),
) {
    let mut names: Vec<&str> = config.server_names().collect();
    names.sort_unstable();
    crate::parallel::each(&names, jobs, &|i, name| {
        if let Some(outcome) = one(config, name, now, local) {
            each(i, name, outcome);
        }
    });
}

/// `cron` for server `name`; `None` when there is no such server.
fn one(config: &Config, name: &str, now: Timestamp, local: &TimeZone) -> Option<CronOutcome> {
    let server = config.server(name)?;
    let outcome = if let Some(reason) = server.disabled() {
        CronOutcome::Disabled(reason.to_owned())
    } else if !server.active() {
        CronOutcome::Skipped("inactive")
    } else if server.is_passive() {
        CronOutcome::Skipped("passive node")
    } else {
        let lock_path = std::path::Path::new(&config.global().barman_lock_directory)
            .join(format!(".{name}-cron.lock"));
        match Lock::try_acquire(&lock_path) {
            Ok(Some(_lock)) => {
                let backups = ServerBackups::for_server(config.global(), server);
                let wals = backups.archive();
                let archive = wals.archive_wal();
                let failed_stale = backups.fail_stale();
                let checked = backups.recheck_waiting();
                let retention = backups.enforce_retention(now, local);
                // The archive's hooks, then the delete hooks (the archive collects both).
                let hook_warnings = wals.take_hook_warnings();
                CronOutcome::Ran(Box::new(ServerCron {
                    archive,
                    failed_stale,
                    checked,
                    retention,
                    leftovers: leftovers::sweep(wals, backups.repo(), now),
                    hook_warnings,
                    receiver: receiver(config, server),
                }))
            }
            Ok(None) => CronOutcome::Busy,
            Err(e) => CronOutcome::Ran(Box::new(ServerCron {
                archive: Err(e),
                failed_stale: Ok(Vec::new()),
                checked: Ok(Vec::new()),
                retention: Ok(RetentionRun::default()),
                leftovers: Ok(Vec::new()),
                hook_warnings: Vec::new(),
                receiver: Ok(Receiver::Off),
            })),
        }
    };
    Some(outcome)
}
