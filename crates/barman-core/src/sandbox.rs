//! `barman sandbox`: a restore test. A backup is recovered into a throwaway directory
//! on this host, started with PostgreSQL's own binaries of its major version, checked,
//! optionally dumped, then stopped and removed; the report says how long it took to get
//! a server answering queries (the RTO) and what each check found.
//!
//! A backup nobody has restored is a hope: [`sandbox`] is the restore an admin scripts
//! by hand, made a command for any server and backup, and [`due`] is what `cron` asks
//! to run one on a schedule (`sandbox_schedule`), one at a time across servers.
//!
//! # Steps
//!
//! 1. **restore**: the backup and the WAL up to the target, as [`crate::recover`]
//!    delivers them (every tablespace relocated inside the sandbox, the WAL copied, no
//!    hook script), with nothing written into the repository: what waits in
//!    `incoming/` is not archived first, and the backup is only locked (shared) so that
//!    a delete waits.
//! 2. **start**: `postgres` of the backup's major version (from `path_prefix`,
//!    `/usr/lib/postgresql/<major>/bin`, `/usr/pgsql-<major>/bin`, then `PATH`), as the
//!    user running this (never root), with settings on its command line (they override
//!    the backup's configuration files): no TCP listener, its own socket directory
//!    (mode 0700) and port, the sandbox's own `pg_hba.conf` and `pg_ident.conf`,
//!    `archive_mode = off`, no `primary_conninfo`, no preload libraries (no background
//!    worker acts on the outside), no logical replication workers (no subscription
//!    connects anywhere), no `recovery_end_command` or `archive_cleanup_command` of
//!    the origin, no external PID file, the log to the sandbox's `postgres.log`. A point
//!    in time recovery is promoted at its target. The postmaster runs in its own process
//!    group and receives SIGQUIT (immediate shutdown) if this process dies (`setpriv
//!    --pdeathsig`), so that no cluster outlives a killed sandbox.
//! 3. **wait**: until the copy answers a query out of recovery; the RTO is measured
//!    from the start of the operation (or [`SandboxOptions::started`]) to that query,
//!    the replay from the start of `postgres`.
//! 4. **checks**: `pg_amcheck` (heap and btree, every database, `--install-missing`)
//!    where the binary and the `amcheck` extension exist; a sequential read of every
//!    table, materialized view, TOAST table and sequence of every database (so that
//!    every page's checksum is verified when data checksums are on), each error naming
//!    the database, the relation and PostgreSQL's message (with the block); each
//!    [`SandboxOptions::commands`] entry, run by `/bin/sh` with `PGHOST`, `PGPORT`,
//!    `PGUSER` and `PGDATABASE` pointing at the sandbox; a dump
//!    ([`SandboxOptions::dump`]: `pg_dumpall`, or `pg_dump -Fc` of one database),
//!    written durably (temporary file, fsync, rename) with mode 0600.
//! 5. **stop**: fast shutdown (then immediate, then SIGKILL), and the directory
//!    removed, unless [`SandboxOptions::keep`]: then the copy is left running and the
//!    report says how to connect and how to clean up. Whatever happens (a failed step,
//!    the `cancel` future resolving on SIGINT or SIGTERM, the future dropped), no
//!    running cluster and no directory are left behind, `keep` or not.
//!
//! The outcome of every sandbox that ran to its end is recorded in the server's
//! `sandbox.json` (beside `identity.json`), which `check` reads (`restore test`, with
//! `sandbox_maximum_age`) and `cron` schedules from; nothing else in the repository is
//! written.
//!
//! # Example
//!
//! ```no_run
//! use barman_core::config::{Config, MemorySource};
//! use barman_core::sandbox::{sandbox, SandboxOptions};
//!
//! let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\n", &MemorySource::default())?;
//! let mut options = SandboxOptions::new("latest");
//! options.dump = Some("/srv/exports/pg.sql".into());
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let report = rt.block_on(sandbox(
//!     config.global(),
//!     config.server("pg").unwrap(),
//!     &options,
//!     std::future::pending(),
//! ))?;
//! println!("backup {}: passed {}, RTO {:?}", report.backup_id, report.passed, report.rto);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use barman_catalog::{RecoveryTarget, TargetTimeline};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::config::{Config, GlobalConfig, ServerConfig};
use crate::fsutil::{Lock, TempFile};
use crate::postgres::{ConnInfo, PgServer};
use crate::recover::{RecoverOptions, TargetAction};
use crate::{Error, Refusal, Result};

/// The file, in the server's `backup_directory`, that records the last sandbox.
pub const RESULT_FILE: &str = "sandbox.json";

/// What to test, and how.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SandboxOptions {
    /// The backup: an id, a shortcut (`latest`, `oldest`, ...), a name, or `auto`.
    pub backup_id: String,
    /// Where recovery stops; `None` replays all the WAL the archive holds.
    pub target: Option<RecoveryTarget>,
    /// `--target-tli`.
    pub target_tli: Option<TargetTimeline>,
    /// `--exclusive`: stop just before the target.
    pub exclusive: bool,
    /// The sandbox directory: made (mode 0700) if missing, else it must be empty (its
    /// mode is then set to 0700: the copy holds production data).
    /// `None`: a new directory under `sandbox_path` (default: the system's temporary
    /// directory).
    pub directory: Option<PathBuf>,
    /// Leave the copy running at the end (after the checks, passed or not), and say
    /// how to connect and clean up. An interrupted sandbox is removed anyway.
    pub keep: bool,
    /// Shell commands run against the running copy (`PGHOST`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE` set); a non-zero exit fails the sandbox.
    pub commands: Vec<String>,
    /// Dump the copy into this file: `pg_dumpall` (plain SQL), or with
    /// [`dump_database`](Self::dump_database) `pg_dump -Fc` of that database.
    pub dump: Option<PathBuf>,
    /// The one database to dump (custom format, for `pg_restore`).
    pub dump_database: Option<String>,
    /// Run `pg_amcheck` (where available).
    pub amcheck: bool,
    /// Read every table, materialized view, TOAST table and sequence.
    pub read_relations: bool,
    /// Parallel copy jobs of the restore; `None` uses `parallel_jobs`.
    pub jobs: Option<usize>,
    /// The port of the copy (its socket's name; there is no TCP listener).
    pub port: u16,
    /// The zone naive target times are read in (the Barman host's).
    pub local_tz: TimeZone,
    /// When the caller's command started: the RTO is measured from it (default: when
    /// [`sandbox`] was called).
    pub started: Option<Instant>,
}

impl SandboxOptions {
    /// A sandbox of `backup_id` replaying all the WAL, every check on, no command, no
    /// dump, removed at the end.
    pub fn new(backup_id: impl Into<String>) -> SandboxOptions {
        SandboxOptions {
            backup_id: backup_id.into(),
            target: None,
            target_tli: None,
            exclusive: false,
            directory: None,
            keep: false,
            commands: Vec::new(),
            dump: None,
            dump_database: None,
            amcheck: true,
            read_relations: true,
            jobs: None,
            port: 5432,
            local_tz: TimeZone::UTC,
            started: None,
        }
    }
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It ran and found nothing wrong.
    Passed,
    /// It failed, or found something wrong.
    Failed,
    /// It could not run here (a missing program or extension).
    Skipped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Passed => "OK",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped",
        })
    }
}

/// One step of a sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// `restore`, `start`, `amcheck`, `read`, `command`, `dump`, `stop`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// One line: what it did, or why it failed or was skipped.
    pub detail: String,
    /// What it found wrong, one line each (at most [`MAX_FINDINGS`]).
    pub findings: Vec<String>,
}

/// The most findings a step reports (the rest are counted in its detail).
pub const MAX_FINDINGS: usize = 50;

/// What [`sandbox`] did and found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SandboxReport {
    /// The server.
    pub server: String,
    /// The backup recovered.
    pub backup_id: String,
    /// The target, as recover prints it; `None` for all the WAL.
    pub target: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// The sandbox directory (removed unless kept).
    pub directory: PathBuf,
    /// The copy's data directory.
    pub data_directory: PathBuf,
    /// The copy's socket directory and port (`psql -h DIR -p PORT`).
    pub socket_directory: PathBuf,
    /// The copy's port.
    pub port: u16,
    /// The PostgreSQL binaries used.
    pub bin_directory: PathBuf,
    /// The role the checks connected as (the cluster's bootstrap superuser).
    pub user: Option<String>,
    /// Bytes of the restored data directory and tablespaces.
    pub restored_bytes: u64,
    /// WAL files delivered for replay.
    pub wal_files: usize,
    /// From the start of the operation to the first successful query on the copy.
    pub rto: Option<Duration>,
    /// From the start of `postgres` to the first successful query (replay and
    /// promotion).
    pub replay: Option<Duration>,
    /// The dump written, and its size.
    pub dump: Option<(PathBuf, u64)>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Whether the copy is left running (`keep`).
    pub kept: bool,
    /// Every step passed or was skipped for want of a tool, and the copy answered.
    pub passed: bool,
    /// What went wrong around the test itself (the sandbox could not be removed, the
    /// result not recorded).
    pub warnings: Vec<String>,
}

impl SandboxReport {
    /// The `psql` command line that connects to a kept copy, every word quoted for
    /// the shell.
    pub fn connect_command(&self) -> String {
        [
            quote_path(&self.bin_directory.join("psql")),
            "-h".into(),
            quote_path(&self.socket_directory),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            quote(self.user.as_deref().unwrap_or("postgres")),
            "postgres".into(),
        ]
        .join(" ")
    }

    /// The command line that stops a kept copy and removes its directory.
    pub fn cleanup_command(&self) -> String {
        format!(
            "{} -D {} stop -m fast && rm -rf -- {}",
            quote_path(&self.bin_directory.join("pg_ctl")),
            quote_path(&self.data_directory),
            quote_path(&self.directory)
        )
    }
}

fn quote(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| format!("{word:?}"), |q| q.into_owned())
}

fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// The last sandbox of a server, as `sandbox.json` records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastSandbox {
    /// The backup tested.
    pub backup_id: String,
    /// When the sandbox started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// Whether it passed.
    pub passed: bool,
    /// Its RTO in seconds, when the copy answered.
    pub rto_seconds: Option<f64>,
    /// The first failed step and its detail, when it failed.
    pub failure: Option<String>,
}

/// Reads the server's last sandbox (`sandbox.json`); `None` when none ran (or the file
/// cannot be read).
pub fn last(server: &ServerConfig) -> Option<LastSandbox> {
    let path = result_path(server)?;
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn result_path(server: &ServerConfig) -> Option<PathBuf> {
    server
        .options()
        .backup_directory
        .as_deref()
        .map(|d| Path::new(d).join(RESULT_FILE))
}

/// The lock held by a scheduled sandbox (`.sandbox-cron.lock` in the lock directory):
/// one at a time across servers.
pub fn schedule_lock_path(global: &GlobalConfig) -> PathBuf {
    Path::new(&global.barman_lock_directory).join(".sandbox-cron.lock")
}

/// Takes the scheduled sandboxes' lock; `None` when another scheduled sandbox holds it.
///
/// # Errors
///
/// The lock file cannot be created.
pub fn try_lock_schedule(global: &GlobalConfig) -> Result<Option<impl Sized + fmt::Debug>> {
    Lock::try_acquire(&schedule_lock_path(global))
}

/// The server whose scheduled sandbox is due at `now`, if any: among the active,
/// non-passive servers with `sandbox_schedule` set and a backup, the one whose last
/// sandbox is the oldest (never: first), when it is older than the schedule. `None`
/// too while a scheduled sandbox runs.
pub fn due(config: &Config, now: Timestamp) -> Option<String> {
    // Free now (taken and released at once): the sandbox cron starts takes it.
    crate::fsutil::Lock::try_acquire(&schedule_lock_path(config.global()))
        .ok()
        .flatten()?;
    let mut best: Option<(Option<Timestamp>, String)> = None;
    let mut names: Vec<&str> = config.server_names().collect();
    names.sort_unstable();
    for name in names {
        let Some(server) = config.server(name) else {
            continue;
        };
        let Some(every) = server.sandbox_schedule() else {
            continue;
        };
        if !server.active() || server.is_passive() || server.disabled().is_some() {
            continue;
        }
        let backups = crate::catalogue::ServerBackups::for_server(config.global(), server);
        let has_backup = backups
            .summary(&TimeZone::UTC)
            .is_ok_and(|s| s.last.is_some());
        if !has_backup {
            continue;
        }
        let last = last(server).map(|l| l.finished_at);
        let old_enough = last.is_none_or(|t| {
            Duration::try_from(now.duration_since(t)).unwrap_or(Duration::ZERO) >= every
        });
        if old_enough && best.as_ref().is_none_or(|(b, _)| last < *b) {
            best = Some((last, name.to_owned()));
        }
    }
    best.map(|(_, n)| n)
}

/// The restore test check of `check`: `None` when neither `sandbox_schedule` nor
/// `sandbox_maximum_age` is set (the output stays Barman's). Else its status and
/// hint: failed when no sandbox ran, the last one failed, or it is older than
/// `sandbox_maximum_age`.
pub fn check(server: &ServerConfig, now: Timestamp) -> Option<(bool, String)> {
    if server.sandbox_schedule().is_none() && server.sandbox_maximum_age().is_none() {
        return None;
    }
    let Some(l) = last(server) else {
        return Some((false, "no restore test yet (barman sandbox)".into()));
    };
    let age = Duration::try_from(now.duration_since(l.finished_at)).unwrap_or(Duration::ZERO);
    let age_text = crate::check::human_readable_duration(age);
    if !l.passed {
        return Some((
            false,
            format!(
                "last restore test ({age_text} ago, backup {}) failed: {}",
                l.backup_id,
                l.failure.as_deref().unwrap_or("unknown")
            ),
        ));
    }
    let rto = l
        .rto_seconds
        .map(|s| format!(", RTO {s:.1}s"))
        .unwrap_or_default();
    match server.sandbox_maximum_age() {
        Some(max) if age > max => Some((
            false,
            format!(
                "last restore test {age_text} ago, older than sandbox_maximum_age ({})",
                crate::check::human_readable_duration(max)
            ),
        )),
        _ => Some((
            true,
            format!(
                "last restore test {age_text} ago passed (backup {}{rto})",
                l.backup_id
            ),
        )),
    }
}

/// Runs a sandbox of a backup of `server` (see the [module docs](self)) and reports.
///
/// `cancel` is raced with the work (the command line passes SIGINT and SIGTERM): when it
/// resolves first, the copy is stopped and removed, and [`Error::Interrupted`] is
/// returned. A copy that did not restore, start or pass a check is not an error: the
/// report says which step failed (`passed` false), and it is recorded.
///
/// # Errors
///
/// Before anything is written: [`Error::Refused`] when run as root, for a sandbox
/// directory that is not empty or a dump file inside it, a backup PostgreSQL binaries
/// of its major version cannot be found for; the errors of [`crate::recover::preview`]
/// (an unknown backup, an unreachable target). [`Error::Io`] when the sandbox directory
/// cannot be made; [`Error::Interrupted`].
pub async fn sandbox(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &SandboxOptions,
    cancel: impl Future<Output = ()>,
) -> Result<SandboxReport> {
    let started = options.started.unwrap_or_else(Instant::now);
    let started_at = Timestamp::now();
    server.usable()?;
    if barman_client::effective_uid() == Some(0) {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            "the sandbox runs PostgreSQL, which refuses to run as root: run barman as barman_user",
        ));
    }
    if options.dump_database.is_some() && options.dump.is_none() {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            "--dump-database needs --dump FILE",
        ));
    }
    // The directory, decided (not made yet).
    let (dir, made_here) = match &options.directory {
        Some(d) => {
            let d = std::path::absolute(d).map_err(|e| Error::io("resolving", d, e))?;
            // Never through a link: it could lead into a live cluster's files.
            if std::fs::symlink_metadata(&d).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::refused(
                    Refusal::InvalidRequest,
                    format!("the sandbox directory {} is a symbolic link", d.display()),
                ));
            }
            match std::fs::read_dir(&d) {
                Ok(mut entries) => {
                    if entries.next().is_some() {
                        return Err(Error::refused(
                            Refusal::Conflict,
                            format!("the sandbox directory {} is not empty", d.display()),
                        ));
                    }
                    (d, false)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (d, true),
                Err(e) => return Err(Error::io("reading", d, e)),
            }
        }
        None => {
            let base = server
                .sandbox_path()
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            let unique = format!(
                "barman-sandbox-{}-{}-{}",
                server.name(),
                std::process::id(),
                started_at.as_millisecond()
            );
            (base.join(unique), true)
        }
    };
    if let Some(dump) = &options.dump {
        let dump = std::path::absolute(dump).map_err(|e| Error::io("resolving", dump, e))?;
        if dump.starts_with(&dir) {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "the dump file {} is inside the sandbox directory, which is removed",
                    dump.display()
                ),
            ));
        }
        if dump.parent().is_none_or(|p| !p.is_dir()) {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "the dump file {}: its directory does not exist",
                    dump.display()
                ),
            ));
        }
    }
    let data = dir.join("data");
    let mut recover = RecoverOptions::new(&options.backup_id, &data);
    recover.target = options.target.clone();
    recover.target_tli = options.target_tli;
    recover.exclusive = options.exclusive;
    recover.get_wal = Some(false);
    recover.delta_restore = Some(false);
    recover.jobs = options.jobs;
    recover.local_tz = options.local_tz.clone();
    if recover.target.is_some() {
        recover.target_action = Some(TargetAction::Promote);
    }
    // Every tablespace inside the sandbox: never into its production location.
    recover.tablespaces_under = Some(dir.join("tablespaces"));
    let plan = crate::recover::preview(global, server, &recover).await?;
    let backup_id = plan.backup.id;
    let major = plan
        .backup
        .version
        .and_then(|v| u32::try_from(v).ok())
        .map(major_of)
        .ok_or_else(|| {
            Error::refused(
                Refusal::Damaged,
                format!(
                    "backup {backup_id} of server {} has no PostgreSQL version in its backup.info",
                    server.name()
                ),
            )
        })?;
    // `postgres --version` of each candidate: processes, off the runtime.
    let prefix = server.options().path_prefix.clone();
    let bin = crate::blocking(
        "looking for the PostgreSQL programs of",
        "path_prefix",
        move || find_bindir(major, prefix.as_deref()),
    )
    .await??;
    // The socket's path must fit in sun_path (107 bytes), and be one plain item of
    // unix_socket_directories (a list).
    let socket = dir.join("socket");
    let plain = socket
        .to_string_lossy()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    let socket_tmp = if !plain
        || socket
            .join(format!(".s.PGSQL.{}", options.port))
            .as_os_str()
            .len()
            > 100
    {
        let short = std::env::temp_dir().join(format!(
            "bsbx-{}-{}",
            std::process::id(),
            started_at.as_millisecond() % 1_000_000
        ));
        Some(short)
    } else {
        None
    };
    let socket = socket_tmp.clone().unwrap_or(socket);

    let mut copy = Throwaway {
        dir: dir.clone(),
        made_here,
        socket_tmp,
        postmaster: None,
        keep: false,
        done: false,
    };
    if made_here {
        crate::fsutil::create_private_dir(&dir)?;
    } else {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("setting the mode of", &dir, e))?;
    }
    let mut report = SandboxReport {
        server: server.name().to_owned(),
        backup_id: backup_id.to_string(),
        target: plan.target_description.clone(),
        started_at,
        directory: dir.clone(),
        data_directory: data.clone(),
        socket_directory: socket.clone(),
        port: options.port,
        bin_directory: bin.clone(),
        user: None,
        restored_bytes: 0,
        wal_files: 0,
        rto: None,
        replay: None,
        dump: None,
        steps: Vec::new(),
        kept: false,
        passed: false,
        warnings: Vec::new(),
    };
    let run = Run {
        global,
        server,
        options,
        recover: &recover,
        bin: &bin,
        socket: &socket,
        started,
        major,
    };
    let finished = tokio::select! {
        () = run.steps(&mut copy, &mut report) => true,
        () = cancel => false,
    };
    if !finished {
        copy.stop(&mut Vec::new()).await;
        let _ = copy.remove().await;
        copy.done = true;
        return Err(Error::Interrupted {
            operation: "sandbox",
            server: server.name().to_owned(),
        });
    }
    report.passed =
        report.rto.is_some() && report.steps.iter().all(|s| s.outcome != Outcome::Failed);
    if options.keep && report.rto.is_some() {
        copy.keep = true;
        report.kept = true;
    } else {
        let t = Instant::now();
        let mut findings = Vec::new();
        let stopped = copy.stop(&mut findings).await;
        report.warnings.extend(copy.remove().await);
        if stopped {
            report.steps.push(step(
                "stop",
                Outcome::Passed,
                t,
                "stopped and removed".into(),
                findings,
            ));
        } else {
            report.steps.push(step(
                "stop",
                Outcome::Failed,
                t,
                "the copy did not stop cleanly".into(),
                findings,
            ));
        }
    }
    copy.done = true;
    report.warnings.extend(record(server, &report));
    Ok(report)
}

/// The major version of a `server_version_num` (`150004` → 15, `90624` → 9).
fn major_of(version_num: u32) -> u32 {
    version_num / 10_000
}

/// The directory of `postgres` of `major`: `path_prefix`, Debian's and PGDG RPM's
/// directories, then `PATH`, the first whose `postgres --version` is that major.
fn find_bindir(major: u32, path_prefix: Option<&str>) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = path_prefix
        .into_iter()
        .flat_map(|p| p.split(':'))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    dirs.push(PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")));
    dirs.push(PathBuf::from(format!("/usr/pgsql-{major}/bin")));
    #[allow(clippy::disallowed_methods)] // PATH lookup is what running a program means
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    for d in dirs {
        let postgres = d.join("postgres");
        if !postgres.is_file() {
            continue;
        }
        let Ok(out) = std::process::Command::new(&postgres)
            .arg("--version")
            .output()
        else {
            continue;
        };
        // "postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)"
        let text = String::from_utf8_lossy(&out.stdout);
        let found = text
            .split_whitespace()
            .nth(2)
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse::<u32>().ok());
        if found == Some(major) {
            return Ok(d);
        }
    }
    Err(Error::refused(
        Refusal::Unsupported,
        format!(
            "no PostgreSQL {major} server programs (postgres) in path_prefix, /usr/lib/postgresql/{major}/bin, /usr/pgsql-{major}/bin or PATH: install them to test this backup"
        ),
    ))
}

fn step(
    name: &str,
    outcome: Outcome,
    since: Instant,
    detail: String,
    findings: Vec<String>,
) -> Step {
    let mut findings = findings;
    let mut detail = detail;
    if findings.len() > MAX_FINDINGS {
        detail.push_str(&format!(
            " ({} findings, the first {MAX_FINDINGS} shown)",
            findings.len()
        ));
        findings.truncate(MAX_FINDINGS);
    }
    Step {
        name: name.to_owned(),
        outcome,
        seconds: since.elapsed().as_secs_f64(),
        detail,
        findings,
    }
}

/// Writes `sandbox.json`, durably; a warning when it cannot (a read-only repository
/// does not fail a test that passed).
fn record(server: &ServerConfig, report: &SandboxReport) -> Option<String> {
    let path = result_path(server)?;
    let failure = report
        .steps
        .iter()
        .find(|s| s.outcome == Outcome::Failed)
        .map(|s| format!("{}: {}", s.name, s.detail))
        .or_else(|| {
            report
                .rto
                .is_none()
                .then(|| "the copy never answered".to_owned())
        });
    let last = LastSandbox {
        backup_id: report.backup_id.clone(),
        started_at: report.started_at,
        finished_at: Timestamp::now(),
        passed: report.passed,
        rto_seconds: report.rto.map(|d| d.as_secs_f64()),
        failure,
    };
    let text = serde_json::to_string_pretty(&last).ok()?;
    crate::fsutil::write_replace(&path, text.as_bytes())
        .err()
        .map(|e| {
            format!(
                "the sandbox could not be recorded in {}: {e}",
                path.display()
            )
        })
}

/// The throwaway copy: its directory and its postmaster, stopped and removed on every
/// path out (and on drop, synchronously, if the future was dropped).
#[derive(Debug)]
struct Throwaway {
    dir: PathBuf,
    made_here: bool,
    socket_tmp: Option<PathBuf>,
    postmaster: Option<tokio::process::Child>,
    keep: bool,
    done: bool,
}

impl Throwaway {
    /// Stops the postmaster: fast shutdown, then immediate after a minute, then
    /// SIGKILL. Whether it stopped cleanly (fast shutdown).
    async fn stop(&mut self, findings: &mut Vec<String>) -> bool {
        let Some(mut child) = self.postmaster.take() else {
            return true;
        };
        let Some(pid) = child.id() else {
            return true; // already reaped
        };
        let escalation = [
            (rustix::process::Signal::INT, Duration::from_secs(60)),
            (rustix::process::Signal::QUIT, Duration::from_secs(10)),
            (rustix::process::Signal::KILL, Duration::from_secs(10)),
        ];
        for (i, (signal, wait)) in escalation.into_iter().enumerate() {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, signal);
            }
            if tokio::time::timeout(wait, child.wait()).await.is_ok() {
                if i > 0 {
                    findings.push(format!(
                        "the postmaster (PID {pid}) needed signal {signal:?}"
                    ));
                }
                return i == 0;
            }
        }
        findings.push(format!("the postmaster (PID {pid}) did not exit"));
        false
    }

    /// Removes the sandbox (what this made), trying again while copy threads of an
    /// interrupted restore still write; a warning when it cannot.
    async fn remove(&mut self) -> Option<String> {
        let mut warning = None;
        for attempt in 0..20 {
            let r = if self.made_here {
                std::fs::remove_dir_all(&self.dir)
            } else {
                empty_dir(&self.dir)
            };
            match r {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) if attempt < 19 => tokio::time::sleep(Duration::from_millis(250)).await,
                Err(e) => {
                    warning = Some(format!(
                        "the sandbox {} could not be removed: {e}",
                        self.dir.display()
                    ));
                }
            }
        }
        if let Some(s) = &self.socket_tmp {
            let _ = std::fs::remove_dir_all(s);
        }
        warning
    }
}

fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if std::fs::symlink_metadata(&p)?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        if self.done || self.keep {
            return;
        }
        // The future was dropped mid-way: immediate shutdown, then the files.
        if let Some(child) = &mut self.postmaster
            && let Some(pid) = child
                .id()
                .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.start_kill();
        }
        if self.made_here {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = empty_dir(&self.dir);
        }
        if let Some(s) = &self.socket_tmp {
            let _ = std::fs::remove_dir_all(s);
        }
    }
}

/// What the steps share.
struct Run<'a> {
    global: &'a GlobalConfig,
    server: &'a ServerConfig,
    options: &'a SandboxOptions,
    recover: &'a RecoverOptions,
    bin: &'a Path,
    socket: &'a Path,
    started: Instant,
    major: u32,
}

impl Run<'_> {
    async fn steps(&self, copy: &mut Throwaway, report: &mut SandboxReport) {
        // 1. restore
        let t = Instant::now();
        match crate::recover::recover_for_sandbox(self.global, self.server, self.recover).await {
            Ok(r) => {
                report.wal_files = r.wal_files.len();
                let dir = copy.dir.clone();
                report.restored_bytes =
                    crate::blocking("measuring", dir.clone(), move || tree_size(&dir))
                        .await
                        .unwrap_or(0);
                report.steps.push(step(
                    "restore",
                    Outcome::Passed,
                    t,
                    format!(
                        "backup {} restored ({}), {} WAL files{}",
                        r.backup_id,
                        crate::check::pretty_size(report.restored_bytes),
                        r.wal_files.len(),
                        r.target_description
                            .as_deref()
                            .map(|d| format!(", target {d}"))
                            .unwrap_or_default()
                    ),
                    r.missing_files
                        .iter()
                        .map(|f| format!("not in the backup (lives outside PGDATA): {f}"))
                        .collect(),
                ));
            }
            Err(e) => {
                report.steps.push(step(
                    "restore",
                    Outcome::Failed,
                    t,
                    e.to_string(),
                    Vec::new(),
                ));
                return;
            }
        }

        // 2. start, 3. wait
        let t = Instant::now();
        let user = match self.start(copy, report).await {
            Ok(user) => user,
            Err(why) => {
                report
                    .steps
                    .push(step("start", Outcome::Failed, t, why.0, why.1));
                return;
            }
        };
        report.replay = Some(t.elapsed());
        report.rto = Some(self.started.elapsed());
        report.steps.push(step(
            "start",
            Outcome::Passed,
            t,
            format!(
                "PostgreSQL {} answered after {:.1}s of replay (RTO {:.1}s)",
                self.major,
                t.elapsed().as_secs_f64(),
                self.started.elapsed().as_secs_f64()
            ),
            Vec::new(),
        ));
        report.user = Some(user.clone());
        let databases = match self.databases(&user).await {
            Ok(d) => d,
            Err(e) => {
                report
                    .steps
                    .push(step("read", Outcome::Failed, Instant::now(), e, Vec::new()));
                return;
            }
        };

        // 4. checks
        if self.options.amcheck {
            let t = Instant::now();
            let (outcome, detail, findings) = self.amcheck(&user, &databases).await;
            report
                .steps
                .push(step("amcheck", outcome, t, detail, findings));
        }
        if self.options.read_relations {
            let t = Instant::now();
            let (outcome, detail, findings) = self.read_all(&user, &databases).await;
            report
                .steps
                .push(step("read", outcome, t, detail, findings));
        }
        for command in &self.options.commands {
            let t = Instant::now();
            let (outcome, detail, findings) = self.command(&user, &databases, command).await;
            report
                .steps
                .push(step("command", outcome, t, detail, findings));
        }
        if let Some(dump) = &self.options.dump {
            let t = Instant::now();
            match self.dump(&user, &databases, dump).await {
                Ok((path, size)) => {
                    report.steps.push(step(
                        "dump",
                        Outcome::Passed,
                        t,
                        format!(
                            "{} written ({})",
                            path.display(),
                            crate::check::pretty_size(size)
                        ),
                        Vec::new(),
                    ));
                    report.dump = Some((path, size));
                }
                Err(e) => report
                    .steps
                    .push(step("dump", Outcome::Failed, t, e.0, e.1)),
            }
        }
    }

    /// The environment of every program run against the copy: no `PG*` variable of
    /// ours (a password, a service, another host) leaks in.
    fn pg_command(&self, program: &Path, user: &str, database: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        #[allow(clippy::disallowed_methods)] // the variables to remove
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PG") {
                c.env_remove(k);
            }
        }
        c.env("PGHOST", self.socket)
            .env("PGPORT", self.options.port.to_string())
            .env("PGUSER", user)
            .env("PGDATABASE", database)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    fn conninfo(&self, user: &str, database: &str) -> Result<ConnInfo, String> {
        let mut ci = ConnInfo::parse("").map_err(|e| e.to_string())?;
        for (k, v) in [
            ("host", self.socket.to_string_lossy().into_owned()),
            ("port", self.options.port.to_string()),
            ("user", user.to_owned()),
            ("dbname", database.to_owned()),
            ("connect_timeout", "10".to_owned()),
        ] {
            ci.set(k, v).map_err(|e| e.to_string())?;
        }
        Ok(ci)
    }

    /// Writes the sandbox's own access files and starts `postgres`; waits until the
    /// copy answers out of recovery. The role connected as, or why it did not come up
    /// (and the log's last lines).
    async fn start(
        &self,
        copy: &mut Throwaway,
        report: &mut SandboxReport,
    ) -> Result<String, (String, Vec<String>)> {
        let dir = copy.dir.clone();
        let data = report.data_directory.clone();
        let io = |what: &str, p: &Path, e: std::io::Error| {
            (format!("{what} {}: {e}", p.display()), Vec::new())
        };
        let hba = dir.join("sandbox_hba.conf");
        let ident = dir.join("sandbox_ident.conf");
        // Only this user reaches the socket (its directory is 0700): trust is enough.
        std::fs::write(&hba, "local all all trust\n").map_err(|e| io("writing", &hba, e))?;
        std::fs::write(&ident, "").map_err(|e| io("writing", &ident, e))?;
        // A new directory of our own (in the temporary directory too: never one
        // another user made there first).
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(self.socket)
            .map_err(|e| io("creating", self.socket, e))?;
        // A backup of a cluster whose configuration lives outside PGDATA (Debian's
        // /etc/postgresql) has none: the settings below are all it needs.
        let conf = data.join("postgresql.conf");
        if !conf.exists() {
            std::fs::write(&conf, "").map_err(|e| io("writing", &conf, e))?;
        }
        let log_path = dir.join("postgres.log");
        let log = std::fs::File::create(&log_path).map_err(|e| io("creating", &log_path, e))?;
        let log2 = log.try_clone().map_err(|e| io("opening", &log_path, e))?;
        // Raw values: they go on the command line, one argument each, never through
        // a shell or a configuration file's parser.
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut settings: Vec<(&str, String)> = vec![
            ("data_directory", path(&data)),
            ("hba_file", path(&hba)),
            ("ident_file", path(&ident)),
            ("listen_addresses", String::new()),
            ("port", self.options.port.to_string()),
            ("unix_socket_directories", path(self.socket)),
            ("unix_socket_permissions", "0700".into()),
            ("external_pid_file", String::new()),
            ("archive_mode", "off".into()),
            ("archive_cleanup_command", String::new()),
            ("primary_conninfo", String::new()),
            ("primary_slot_name", String::new()),
            ("hot_standby", "off".into()),
            ("shared_preload_libraries", String::new()),
            ("max_logical_replication_workers", "0".into()),
            ("logging_collector", "off".into()),
            ("log_destination", "stderr".into()),
            ("ssl", "off".into()),
            ("huge_pages", "off".into()),
            ("shared_buffers", "128MB".into()),
            ("max_connections", "20".into()),
            ("autovacuum", "off".into()),
            ("cluster_name", "barman-sandbox".into()),
        ];
        // recovery_end_command: recover writes its own (the staged WAL's removal) for
        // a point-in-time recovery; another from the origin's files runs nothing here.
        if report.target.is_none() {
            settings.push(("recovery_end_command", String::new()));
        }
        if self.major < 15 {
            // Debian points it at /var/run/postgresql/<cluster>.pg_stat_tmp.
            settings.push(("stats_temp_directory", "pg_stat_tmp".into()));
        }
        if self.major < 12 {
            return Err((
                format!(
                    "PostgreSQL {} sandboxes are not supported (12 and later)",
                    self.major
                ),
                Vec::new(),
            ));
        }
        let postgres = self.bin.join("postgres");
        let mut cmd = match crate::fsutil::find_program("setpriv", None) {
            // The postmaster gets SIGQUIT (immediate shutdown) if this process dies
            // first; not for a copy that is to outlive this command.
            Ok(setpriv) if !self.options.keep => {
                let mut c = tokio::process::Command::new(setpriv);
                c.args(["--pdeathsig", "QUIT", "--"]).arg(&postgres);
                c
            }
            _ => tokio::process::Command::new(&postgres),
        };
        cmd.arg("-D").arg(&data);
        for (k, v) in &settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        #[allow(clippy::disallowed_methods)] // the variables to remove
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PG") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0)
            .kill_on_drop(false);
        let child = cmd.spawn().map_err(|e| io("starting", &postgres, e))?;
        copy.postmaster = Some(child);
        // Wait: connect until it answers out of recovery, or the postmaster exits.
        let mut candidates: Vec<String> = Vec::new();
        for u in [
            self.server
                .options()
                .conninfo
                .as_deref()
                .and_then(|c| ConnInfo::parse(c).ok())
                .and_then(|c| c.get("user").map(str::to_owned)),
            Some("postgres".to_owned()),
            crate::blocking("looking up", "the current user", whoami)
                .await
                .ok()
                .flatten(),
        ]
        .into_iter()
        .flatten()
        {
            if !candidates.contains(&u) {
                candidates.push(u);
            }
        }
        loop {
            if let Some(child) = copy.postmaster.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                copy.postmaster = None;
                return Err((
                    format!("PostgreSQL exited ({status}) before answering: see its log"),
                    log_tail(&log_path),
                ));
            }
            // Every role and database tried answers with a refusal of its own (not
            // "starting up"): the copy is up, and none of them can be used.
            let mut refusals = Vec::new();
            for user in &candidates {
                for database in ["postgres", "template1"] {
                    let sql = "SELECT pg_is_in_recovery()::text || ' ' || (SELECT rolname FROM pg_roles WHERE oid = 10)";
                    match self.query_one(user, database, sql).await {
                        Ok(answer) => {
                            let mut words = answer.splitn(2, ' ');
                            let in_recovery = words.next() == Some("true");
                            let superuser = words.next().unwrap_or(user).to_owned();
                            if !in_recovery {
                                return Ok(superuser);
                            }
                        }
                        Err(e) if not_up_yet(&e) => {}
                        Err(e) => refusals.push(format!("as {user} to {database}: {e}")),
                    }
                }
            }
            if refusals.len() == candidates.len() * 2 {
                return Err((
                    "the copy is up but refuses every connection tried".to_owned(),
                    refusals,
                ));
            }
            // Not up yet (starting, replaying): every quarter of a second.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn connect(&self, user: &str, database: &str) -> Result<PgServer, String> {
        let ci = self.conninfo(user, database)?;
        PgServer::connect(&ci, "barman_sandbox")
            .await
            .map_err(|e| e.to_string())
    }

    async fn query_one(&self, user: &str, database: &str, sql: &str) -> Result<String, String> {
        let pg = self.connect(user, database).await?;
        let rows = pg.simple_rows(sql).await.map_err(|e| e.to_string())?;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .ok_or_else(|| "no answer".to_owned())
    }

    /// The databases that accept connections.
    async fn databases(&self, user: &str) -> Result<Vec<String>, String> {
        // `postgres` may have been dropped; template1 is always there.
        let pg = match self.connect(user, "postgres").await {
            Ok(pg) => pg,
            Err(_) => self.connect(user, "template1").await?,
        };
        let rows = pg
            .simple_rows("SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    async fn amcheck(&self, user: &str, databases: &[String]) -> (Outcome, String, Vec<String>) {
        let db = default_database(databases);
        let program = self.bin.join("pg_amcheck");
        if !program.is_file() {
            return (
                Outcome::Skipped,
                format!(
                    "no pg_amcheck in {} (PostgreSQL 14 and later)",
                    self.bin.display()
                ),
                Vec::new(),
            );
        }
        match self
            .query_one(
                user,
                &db,
                "SELECT count(*)::text FROM pg_available_extensions WHERE name = 'amcheck'",
            )
            .await
        {
            Ok(n) if n != "0" => {}
            Ok(_) => {
                return (
                    Outcome::Skipped,
                    "the amcheck extension is not installed on this host (PostgreSQL's contrib package)".into(),
                    Vec::new(),
                );
            }
            Err(e) => return (Outcome::Failed, e, Vec::new()),
        }
        let mut cmd = self.pg_command(&program, user, &db);
        cmd.args(["--all", "--install-missing", "--no-password"]);
        match output_in_group(&mut cmd).await {
            Ok(out) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let findings: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                if out.status.success() {
                    (
                        Outcome::Passed,
                        "pg_amcheck --all (heap and btree): no corruption".into(),
                        Vec::new(),
                    )
                } else {
                    (
                        Outcome::Failed,
                        format!("pg_amcheck --all found problems ({})", out.status),
                        findings,
                    )
                }
            }
            Err(e) => (
                Outcome::Failed,
                format!("running {}: {e}", program.display()),
                Vec::new(),
            ),
        }
    }

    /// A sequential read of every table, materialized view, TOAST table and sequence
    /// of every database.
    async fn read_all(&self, user: &str, databases: &[String]) -> (Outcome, String, Vec<String>) {
        let mut findings = Vec::new();
        let (mut relations, mut bytes) = (0usize, 0u64);
        for db in databases {
            let pg = match self.connect(user, db).await {
                Ok(pg) => pg,
                Err(e) => {
                    findings.push(format!("database {db}: {e}"));
                    continue;
                }
            };
            let _ = pg
                .simple_rows(
                    "SET enable_indexscan = off; SET enable_indexonlyscan = off; \
                     SET enable_bitmapscan = off; SET max_parallel_workers_per_gather = 0",
                )
                .await;
            let list = pg
                .simple_rows(
                    "SELECT n.nspname, c.relname, c.relkind::text, pg_relation_size(c.oid)::text \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind IN ('r', 'm', 't', 'S') AND c.relpersistence <> 't' \
                     ORDER BY c.oid",
                )
                .await;
            let list = match list {
                Ok(l) => l,
                Err(e) => {
                    findings.push(format!("database {db}: listing relations: {e}"));
                    continue;
                }
            };
            for row in list {
                let mut cols = row.into_iter();
                let (Some(Some(ns)), Some(Some(rel)), Some(Some(kind)), size) =
                    (cols.next(), cols.next(), cols.next(), cols.next())
                else {
                    continue;
                };
                let name = format!("{}.{}", ident(&ns), ident(&rel));
                let sql = if kind == "S" {
                    format!("SELECT last_value FROM {name}")
                } else {
                    format!("SELECT count(*) FROM ONLY {name}")
                };
                match pg.simple_rows(&sql).await {
                    Ok(_) => {
                        relations += 1;
                        bytes += size
                            .flatten()
                            .and_then(|s| s.parse::<u64>().ok())
                            .unwrap_or(0);
                    }
                    Err(e) => findings.push(format!("database {db}, relation {ns}.{rel}: {e}")),
                }
            }
        }
        let detail = format!(
            "{relations} relations of {} databases read ({})",
            databases.len(),
            crate::check::pretty_size(bytes)
        );
        if findings.is_empty() {
            (Outcome::Passed, detail, findings)
        } else {
            (
                Outcome::Failed,
                format!("{detail}; {} could not be read", findings.len()),
                findings,
            )
        }
    }

    async fn command(
        &self,
        user: &str,
        databases: &[String],
        command: &str,
    ) -> (Outcome, String, Vec<String>) {
        let db = default_database(databases);
        let mut cmd = self.pg_command(Path::new("/bin/sh"), user, &db);
        cmd.arg("-c").arg(command);
        match output_in_group(&mut cmd).await {
            Ok(out) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let lines: Vec<String> = text.lines().map(str::to_owned).collect();
                let tail = lines[lines.len().saturating_sub(20)..].to_vec();
                if out.status.success() {
                    (Outcome::Passed, format!("{command}: exit 0"), Vec::new())
                } else {
                    (Outcome::Failed, format!("{command}: {}", out.status), tail)
                }
            }
            Err(e) => (Outcome::Failed, format!("{command}: {e}"), Vec::new()),
        }
    }

    async fn dump(
        &self,
        user: &str,
        databases: &[String],
        dest: &Path,
    ) -> Result<(PathBuf, u64), (String, Vec<String>)> {
        let dest = std::path::absolute(dest)
            .map_err(|e| (format!("{}: {e}", dest.display()), Vec::new()))?;
        let parent = dest.parent().unwrap_or(Path::new("/")).to_owned();
        let mut tmp = TempFile::new(&parent, "dump").map_err(|e| (e.to_string(), Vec::new()))?;
        let path = tmp.path().to_owned();
        let mut cmd = match &self.options.dump_database {
            Some(db) => {
                let mut c = self.pg_command(&self.bin.join("pg_dump"), user, db);
                c.args(["--format=custom", "--no-password", "--file"])
                    .arg(&path);
                c
            }
            None => {
                let mut c = self.pg_command(
                    &self.bin.join("pg_dumpall"),
                    user,
                    &default_database(databases),
                );
                c.args(["--no-password", "--file"]).arg(&path);
                c
            }
        };
        let out = output_in_group(&mut cmd)
            .await
            .map_err(|e| (format!("running the dump: {e}"), Vec::new()))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            return Err((
                format!("the dump failed ({})", out.status),
                text.lines().map(str::to_owned).take(20).collect(),
            ));
        }
        // pg_dump rewrote the file in place: its mode (0600) stays.
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let _ = tmp.file();
        tmp.replace(&dest)
            .map_err(|e| (e.to_string(), Vec::new()))?;
        Ok((dest, size))
    }
}

/// Runs `cmd` in a process group of its own and collects its output; if the future is
/// dropped (the sandbox interrupted), the whole group is killed: a command's children
/// do not outlive the sandbox either.
async fn output_in_group(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<std::process::Output> {
    struct KillGroup(Option<rustix::process::Pid>);
    impl Drop for KillGroup {
        fn drop(&mut self) {
            if let Some(pgid) = self.0 {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
        }
    }
    cmd.process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn()?;
    let mut guard = KillGroup(
        child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw),
    );
    let out = child.wait_with_output().await;
    guard.0 = None;
    out
}

/// Whether a connection error means the copy is not accepting connections yet (no
/// socket, starting up, replaying, shutting down after reaching a target).
fn not_up_yet(error: &str) -> bool {
    [
        "starting up",
        "not yet accepting connections",
        "not accepting connections",
        "shutting down",
        "No such file or directory",
        "Connection refused",
        "in recovery mode",
        "timed out",
    ]
    .iter()
    .any(|m| error.contains(m))
}

fn default_database(databases: &[String]) -> String {
    if databases.iter().any(|d| d == "postgres") {
        "postgres".to_owned()
    } else {
        databases
            .first()
            .cloned()
            .unwrap_or_else(|| "template1".to_owned())
    }
}

/// An SQL identifier, quoted.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn whoami() -> Option<String> {
    let uid = barman_client::effective_uid()?;
    let out = std::process::Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// The last lines of the copy's log that say what went wrong (else its last lines).
fn log_tail(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let bad: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("FATAL") || l.contains("PANIC") || l.contains("ERROR"))
        .map(|l| (*l).to_owned())
        .collect();
    if bad.is_empty() {
        lines[lines.len().saturating_sub(10)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    } else {
        bad[bad.len().saturating_sub(10)..].to_vec()
    }
}

/// Bytes of the regular files under `dir` (links not followed).
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("t"), "\"t\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn majors() {
        assert_eq!(major_of(150004), 15);
        assert_eq!(major_of(120000), 12);
        assert_eq!(major_of(90624), 9);
    }

    #[test]
    fn steps_keep_at_most_max_findings() {
        let s = step(
            "read",
            Outcome::Failed,
            Instant::now(),
            "x".into(),
            (0..MAX_FINDINGS + 5).map(|i| i.to_string()).collect(),
        );
        assert_eq!(s.findings.len(), MAX_FINDINGS);
        assert!(s.detail.contains(&format!("{} findings", MAX_FINDINGS + 5)));
    }

    #[test]
    fn the_sandbox_options_are_read_inherited_and_checked() {
        use crate::config::MemorySource;
        let text = "[barman]\nbarman_home = /srv/b\nsandbox_schedule = 7 days\n\
                    [pg]\nconninfo = host=pg\nsandbox_maximum_age = 2 WEEKS\nsandbox_path = /srv/sandboxes\n\
                    [other]\nconninfo = host=o\nsandbox_schedule = 1 hours\n";
        let c = Config::load("/etc/barman.conf", text, &MemorySource::default()).unwrap();
        let pg = c.server("pg").unwrap();
        assert_eq!(pg.sandbox_schedule(), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            pg.sandbox_maximum_age(),
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(pg.sandbox_path(), Some("/srv/sandboxes"));
        let other = c.server("other").unwrap();
        assert_eq!(other.sandbox_schedule(), Some(Duration::from_secs(3600)));
        assert_eq!(
            (other.sandbox_maximum_age(), other.sandbox_path()),
            (None, None)
        );
        // No result and a schedule: the check fails, saying so.
        let (ok, hint) = check(other, Timestamp::now()).unwrap();
        assert!(!ok && hint.contains("no restore test yet"), "{hint}");
        for bad in ["sandbox_schedule = often", "sandbox_path = relative/dir"] {
            let text = format!("[barman]\nbarman_home = /srv/b\n[pg]\nconninfo = host=pg\n{bad}\n");
            let e = Config::load("/etc/barman.conf", &text, &MemorySource::default())
                .unwrap_err()
                .to_string();
            let option = bad.split(' ').next().unwrap();
            assert!(e.contains(option) && e.contains("line 5"), "{e}");
        }
        // Without either option, check stays Barman's.
        let text = "[barman]\nbarman_home = /srv/b\n[pg]\nconninfo = host=pg\n";
        let c = Config::load("/etc/barman.conf", text, &MemorySource::default()).unwrap();
        assert!(check(c.server("pg").unwrap(), Timestamp::now()).is_none());
    }

    #[allow(dead_code)]
    fn sandbox_future_is_send(g: &GlobalConfig, s: &ServerConfig, o: &SandboxOptions) {
        fn send<T: Send>(_: &T) {}
        send(&sandbox(g, s, o, std::future::pending()));
    }
}
