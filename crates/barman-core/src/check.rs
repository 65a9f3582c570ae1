//! `barman check` and `barman status` for one server: Barman's checks, names, hints
//! and order, its status lines, and the Nagios rendering of check results.
//!
//! The evaluation is pure ([`evaluate`], [`status`]): it takes the server's
//! configuration, what PostgreSQL answered ([`RemoteStatus`], `None` without a
//! connection) and the state of the repository ([`RepoState`], read from disk by
//! [`RepoState::inspect`], which also creates the missing directories as Barman's
//! `directories` check does). [`check`] ties them together with a live connection and
//! Barman's `check_timeout`.
//!
//! # Example
//!
//! ```
//! use barman_core::check::{CheckResult, NagiosServer, nagios};
//!
//! let ok = vec![CheckResult::new("PostgreSQL", true, None)];
//! let (text, code) = nagios(&[NagiosServer { name: "pg", active: true, results: &ok }]);
//! assert_eq!(text, "BARMAN OK - Ready to serve the Espresso backup for pg\n");
//! assert_eq!(code, 0);
//! ```
//!
//! # Not checked yet
//!
//! Barman's last-resort `switch-wal --archive` inside `WAL archive`, standby checks
//! with `primary_conninfo`, backup executor checks (`ssh`, `pg_basebackup`, …),
//! `encryption` and cloud checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::catalogue::{CatalogueSummary, ServerBackups};
use crate::config::{GlobalConfig, ServerConfig, Value};
use crate::postgres::{MINIMAL_VERSION, PgServer, RemoteStatus};

/// One line of `barman check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name as Barman prints it.
    pub name: String,
    /// Passed?
    pub ok: bool,
    /// The text in parentheses after OK/FAILED.
    pub hint: Option<String>,
    /// Nagios performance data (bytes) for `backup minimum size` and `wal size`.
    pub perfdata: Option<u64>,
}

impl CheckResult {
    /// A result without performance data.
    pub fn new(name: &str, ok: bool, hint: Option<String>) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            ok,
            hint,
            perfdata: None,
        }
    }

    /// Barman's console line: `\t<name>: OK|FAILED[ (<hint>)]`.
    pub fn console_line(&self) -> String {
        self.console_line_with(|ok| if ok { "OK" } else { "FAILED" }.to_owned())
    }

    /// [`CheckResult::console_line`] with the status as `status(ok)` writes it (the
    /// CLI colours it).
    pub fn console_line_with(&self, status: impl Fn(bool) -> String) -> String {
        let status = status(self.ok);
        match &self.hint {
            Some(h) if !h.is_empty() => format!("\t{}: {status} ({h})", self.name),
            _ => format!("\t{}: {status}", self.name),
        }
    }
}

/// What the repository holds, as the checks and the status see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoState {
    /// The WAL catalogue (`<server>-xlog.db`) exists and is not empty.
    pub xlogdb_nonempty: bool,
    /// A backup is WAITING_FOR_WALS.
    pub waiting_for_wals_backup: bool,
    /// `identity.json`: `None` when absent, else the `systemid` it records (`None`
    /// inside when unreadable).
    pub identity_systemid: Option<Option<u64>>,
    /// Where `identity.json` is.
    pub identity_path: PathBuf,
    /// Names of the files in `errors/`.
    pub error_files: Vec<String>,
    /// Files in `incoming/` (not `.tmp`).
    pub incoming_files: usize,
    /// Files in `streaming/` (not `.tmp`).
    pub streaming_files: usize,
    /// Why creating the missing directories failed (`path: reason`); `None` when they
    /// all exist.
    pub directories_error: Option<String>,
    /// FAILED backups.
    pub failed_backups: usize,
    /// DONE backups.
    pub done_backups: usize,
    /// DONE non-incremental backups.
    pub done_full_backups: usize,
    /// The oldest and newest available backup ids.
    pub first_backup: Option<String>,
    /// The newest available backup id.
    pub last_backup: Option<String>,
    /// How long ago the newest available backup ended.
    pub last_backup_age: Option<Duration>,
    /// The size of the newest available backup (0 without one).
    pub last_backup_size: u64,
    /// How long ago the last WAL file counted for the newest backup was archived.
    pub last_wal_age: Option<Duration>,
    /// The WAL archived after the newest backup's `end_wal`, in bytes as stored.
    pub wal_size: u64,
    /// Why the backup catalogue could not be read.
    pub backups_error: Option<String>,
    /// Temporary files left by a crash that `cron` has not removed (older than
    /// [`LEFTOVER_AGE`](crate::leftovers::LEFTOVER_AGE), their writer gone).
    pub leftovers: Vec<PathBuf>,
    /// A `receive-wal` runs for the server (it holds its lock).
    pub receiver_running: bool,
    /// With `encryption` set, Barman's `encryption` check: `None` when the settings
    /// are valid and a test message was encrypted for the key, else why not.
    pub encryption: Option<Option<String>>,
    /// With `sandbox_schedule` or `sandbox_maximum_age` set, the `restore test` check:
    /// whether it passes, and its hint ([`crate::sandbox::check`]).
    pub restore_test: Option<(bool, String)>,
}

/// What the streaming connection (`streaming_conninfo`, a replication connection)
/// answered, for `PostgreSQL streaming`, `systemid coherence` and
/// `pg_receivexlog compatible`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamingStatus {
    /// `IDENTIFY_SYSTEM`'s system identifier; `None` when it failed.
    pub systemid: Option<u64>,
    /// Why connecting or `IDENTIFY_SYSTEM` failed.
    pub error: Option<String>,
    /// `server_version` as the server reported it.
    pub server_txt_version: Option<String>,
    /// `server_version_num`, parsed from it (0 when unknown).
    pub server_version: u32,
}

/// What the source of WAL answered when `wal_conninfo` or `wal_streaming_conninfo`
/// names another server than `conninfo` (Barman's checks suffixed ` (WAL streaming)`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WalSource {
    /// The status over `wal_conninfo` (else `wal_streaming_conninfo`); `None` when it
    /// could not connect.
    pub remote: Option<RemoteStatus>,
    /// The replication connection over `wal_streaming_conninfo` (else
    /// `streaming_conninfo`).
    pub streaming: StreamingStatus,
}

/// The oldest server the built-in replication client streams from: it reads
/// `wal_segment_size` with `SHOW` over the replication connection (PostgreSQL 10 on).
pub const STREAMING_MINIMAL_VERSION: u32 = 100_000;

impl StreamingStatus {
    /// Connects to `conninfo` as a replication client and asks `IDENTIFY_SYSTEM`.
    pub async fn probe(conninfo: &crate::postgres::ConnInfo) -> StreamingStatus {
        use crate::postgres::replication::ReplicationConnection;
        let mut conn =
            match ReplicationConnection::connect(conninfo, "barman_streaming_check").await {
                Ok(c) => c,
                Err(e) => {
                    return StreamingStatus {
                        error: Some(e.to_string()),
                        ..StreamingStatus::default()
                    };
                }
            };
        let mut status = StreamingStatus {
            server_txt_version: conn.server_version().map(str::to_owned),
            server_version: conn.server_version_num(),
            ..StreamingStatus::default()
        };
        match conn.identify_system().await {
            Ok(id) => status.systemid = Some(id.system_id),
            Err(e) => status.error = Some(e.to_string()),
        }
        conn.close().await;
        status
    }
}

fn count_files(dir: Option<&str>) -> usize {
    let Some(dir) = dir else { return 0 };
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    !name.ends_with(".tmp") && !name.starts_with(crate::leftovers::TEMP_PREFIX)
                })
                .count()
        })
        .unwrap_or(0)
}

/// The `systemid` of an `identity.json` text (`{"systemid": "…", "version": "…"}`).
fn identity_systemid(text: &str) -> Option<u64> {
    let after = &text[text.find("\"systemid\"")? + "\"systemid\"".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let after = after.strip_prefix('"').unwrap_or(after);
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl RepoState {
    /// Reads the repository of `config` with std::fs, after creating every missing
    /// `*_directory` of the server and `<backup_directory>/meta` (URLs are skipped), and
    /// its backup catalogue as of `now` (naive backup times read in `local`).
    pub fn inspect(
        global: &GlobalConfig,
        config: &ServerConfig,
        now: Timestamp,
        local: &TimeZone,
    ) -> RepoState {
        let mut state = RepoState::inspect_files(config);
        state.receiver_running = crate::cron::receiver_pid(global, config)
            .ok()
            .flatten()
            .is_some();
        let backups = ServerBackups::for_server(global, config);
        match backups.summary(local) {
            Ok(sum) => state.add_backups(&sum, now),
            Err(e) => state.backups_error = Some(e.to_string()),
        }
        state.leftovers = crate::leftovers::find(
            backups.archive(),
            backups.repo(),
            now,
            crate::leftovers::LEFTOVER_AGE,
        )
        .map(|found| found.into_iter().map(|l| l.path).collect())
        .unwrap_or_default();
        state.restore_test = crate::sandbox::check(config, now);
        state
    }

    /// Fills the backup fields from a catalogue summary read at `now`.
    pub fn add_backups(&mut self, sum: &CatalogueSummary, now: Timestamp) {
        if let Some(u) = sum.unreadable.first() {
            let more = match sum.unreadable.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            self.backups_error = Some(format!(
                "{} cannot be read: {}{more}",
                u.path.display(),
                u.reason
            ));
        }
        let age =
            |t: Timestamp| Duration::try_from(now.duration_since(t)).unwrap_or(Duration::ZERO);
        self.failed_backups = sum.failed;
        self.done_backups = sum.done;
        self.done_full_backups = sum.done_full;
        self.waiting_for_wals_backup = sum.waiting_for_wals;
        self.first_backup = sum.first.map(|id| id.to_string());
        if let Some(last) = &sum.last {
            self.last_backup = Some(last.id.to_string());
            self.last_backup_age = last.end_time.map(age);
            self.last_backup_size = last.size;
            self.wal_size = last.wal_until_next_size;
            self.last_wal_age = last
                .last_wal_time
                .and_then(|t| Timestamp::from_microsecond((t * 1e6) as i64).ok())
                .map(age);
        }
    }

    /// The files and directories of the repository, without the backups.
    fn inspect_files(config: &ServerConfig) -> RepoState {
        let mut dirs: Vec<&str> = config
            .iter()
            .filter(|(spec, _)| spec.name.ends_with("_directory"))
            .filter_map(|(_, v)| match v {
                Some(Value::Text(s)) if !s.contains("://") => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let o = config.options();
        let backup_dir = o.backup_directory.as_deref().unwrap_or("");
        let meta = Path::new(backup_dir).join("meta");
        let meta = meta.to_string_lossy().into_owned();
        dirs.push(&meta);
        let mut directories_error = None;
        for d in dirs {
            if !Path::new(d).is_dir()
                && let Err(e) = std::fs::create_dir_all(d)
            {
                directories_error = Some(format!("{d}: {e}"));
                break;
            }
        }
        let xlogdb = o
            .xlogdb_directory
            .as_ref()
            .map(|d| Path::new(d).join(format!("{}-xlog.db", config.name())));
        let identity_path = Path::new(backup_dir).join("identity.json");
        let identity_systemid = std::fs::read_to_string(&identity_path)
            .ok()
            .map(|t| identity_systemid(&t));
        let mut error_files: Vec<String> = o
            .errors_directory
            .as_ref()
            .and_then(|d| std::fs::read_dir(d).ok())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        error_files.sort();
        RepoState {
            xlogdb_nonempty: xlogdb
                .and_then(|p| std::fs::metadata(p).ok())
                .is_some_and(|m| m.len() > 0),
            waiting_for_wals_backup: false,
            identity_systemid,
            identity_path,
            error_files,
            incoming_files: count_files(o.incoming_wals_directory.as_deref()),
            streaming_files: count_files(o.streaming_wals_directory.as_deref()),
            directories_error,
            encryption: {
                let gpg = crate::encryption::Gpg::for_server(config);
                gpg.encrypts().then(|| {
                    gpg.test_encryption(config).err().map(|e| match e {
                        crate::Error::Refused { reason, .. } => reason,
                        other => format!("encryption test failed: {other}"),
                    })
                })
            },
            ..RepoState::default()
        }
    }
}

/// Python's `pretty_size` (binary units).
pub fn pretty_size(size: u64) -> String {
    const SUFFIXES: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut s = size as f64;
    for (i, suffix) in SUFFIXES.iter().enumerate() {
        if s.abs() < 1024.0 || i == SUFFIXES.len() - 1 {
            return if i == 0 {
                format!("{size} {suffix}")
            } else {
                format!("{s:.1} {suffix}")
            };
        }
        s /= 1024.0;
    }
    format!("{size} B")
}

/// Barman's `human_readable_timedelta`: `1 day, 2 hours, 1 minute`.
pub fn human_readable_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "day"),
        ((secs % 86_400) / 3600, "hour"),
        ((secs % 3600) / 60, "minute"),
        (secs % 60, "second"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| {
            if *n == 1 {
                format!("{n} {unit}")
            } else {
                format!("{n} {unit}s")
            }
        })
        .collect();
    if text.is_empty() {
        "less than one second".to_owned()
    } else {
        text.join(", ")
    }
}

/// Barman's checks, in Barman's order, for what can be checked without backups and
/// without the streaming connection. `remote` is `None` when PostgreSQL could not be
/// reached.
pub fn evaluate(
    config: &ServerConfig,
    remote: Option<&RemoteStatus>,
    streaming: Option<&StreamingStatus>,
    wal: Option<&WalSource>,
    repo: &RepoState,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut push = |name: &str, ok: bool, hint: Option<String>| {
        out.push(CheckResult::new(name, ok, hint));
    };
    // A server its configuration disables (as Barman's "configuration" check).
    if let Some(reason) = config.disabled() {
        push("configuration", false, Some(reason.to_owned()));
    }

    // WAL archive (printed only when failing), then the WAL queues.
    if !repo.xlogdb_nonempty && !repo.waiting_for_wals_backup {
        push(
            "WAL archive",
            false,
            Some("please make sure WAL shipping is setup".into()),
        );
    }
    let max_queue = config
        .options()
        .max_incoming_wals_queue
        .and_then(|v| usize::try_from(v).ok());
    let o = config.options();
    for (dir, path, count, enabled, archiver) in [
        (
            "incoming",
            &o.incoming_wals_directory,
            repo.incoming_files,
            config.archiver(),
            "archiver",
        ),
        (
            "streaming",
            &o.streaming_wals_directory,
            repo.streaming_files.saturating_sub(1),
            config.streaming_archiver(),
            "streaming_archiver",
        ),
    ] {
        let path = path.as_deref().unwrap_or("");
        if !enabled {
            if count > 0 {
                push(
                    &format!("empty {dir} directory"),
                    false,
                    Some(format!("'{path}' must be empty when {archiver}=off")),
                );
            }
        } else if let Some(max) = max_queue
            && count > max
        {
            push(
                &format!("{dir} WALs directory"),
                false,
                Some(format!(
                    "there are too many WALs in queue: {count}, max {max}"
                )),
            );
        }
    }

    // PostgreSQL.
    let active_primary = config.active() && !config.is_passive();
    if active_primary {
        match remote.filter(|r| r.server_txt_version.is_some()) {
            None => push("PostgreSQL", false, None),
            Some(r) => {
                if r.version_supported() == Some(false) {
                    push(
                        "PostgreSQL",
                        false,
                        Some(format!(
                            "unsupported version: PostgreSQL server is too old ({} < 9.6)",
                            r.server_txt_version.as_deref().unwrap_or("?")
                        )),
                    );
                } else {
                    push("PostgreSQL", true, None);
                    match r.has_backup_privileges {
                        Some(true) => {
                            push("superuser or standard user with backup privileges", true, None);
                        }
                        Some(false) => push(
                            "no access to backup functions",
                            false,
                            Some(
                                "privileges for PostgreSQL backup functions are required (see documentation)"
                                    .into(),
                            ),
                        ),
                        None => {}
                    }
                    if let Some(st) = streaming {
                        push(
                            "PostgreSQL streaming",
                            st.systemid.is_some(),
                            st.error.clone(),
                        );
                    }
                    if let Some(level) = &r.settings.wal_level {
                        if level == "minimal" {
                            push(
                                "wal_level",
                                false,
                                Some("please set it to a higher level than 'minimal'".into()),
                            );
                        } else {
                            push("wal_level", true, None);
                        }
                    }
                }
            }
        }
        match wal {
            // WAL streamed from another source (wal_conninfo, wal_streaming_conninfo):
            // its own connections, its own checks.
            Some(w) => {
                let r = w.remote.as_ref();
                if r.and_then(|r| r.has_monitoring_privileges) == Some(true) {
                    push("has monitoring privileges (WAL streaming)", true, None);
                } else {
                    push(
                        "no access to monitoring functions",
                        false,
                        Some(
                            "privileges for PostgreSQL monitoring functions are required (see documentation)"
                                .into(),
                        ),
                    );
                }
                push(
                    "PostgreSQL streaming (WAL streaming)",
                    w.streaming.systemid.is_some(),
                    w.streaming.error.clone(),
                );
                if let Some(level) = r.and_then(|r| r.settings.wal_level.as_ref()) {
                    if level == "minimal" {
                        push(
                            "wal_level (WAL streaming)",
                            false,
                            Some("please set it to a higher level than 'minimal'".into()),
                        );
                    } else {
                        push("wal_level (WAL streaming)", true, None);
                    }
                }
                let c = identity_check(
                    "systemid coherence (WAL streaming)",
                    r.and_then(|r| r.systemid),
                    w.streaming.systemid,
                    repo,
                );
                push(&c.name, c.ok, c.hint);
                if let Some(c) = r.and_then(|r| slot_check(config, r, " (WAL streaming)")) {
                    push(&c.name, c.ok, c.hint);
                }
            }
            None => {
                if let Some(c) = remote.and_then(|r| slot_check(config, r, "")) {
                    push(&c.name, c.ok, c.hint);
                }
            }
        }
    }

    // Repository and configuration.
    match &repo.directories_error {
        None => push("directories", true, None),
        Some(e) => push("directories", false, Some(e.clone())),
    }
    // An invalid retention policy is a configuration error here, so this holds.
    push("retention policy settings", true, None);
    match config.options().last_backup_maximum_age {
        Some(max) => {
            let (ok, age) = match (&repo.last_backup, repo.last_backup_age) {
                (Some(_), Some(age)) => (age <= max, human_readable_duration(age)),
                _ => (false, "No available backups".to_owned()),
            };
            push(
                "backup maximum age",
                ok,
                Some(format!(
                    "interval provided: {}, latest backup age: {age}",
                    human_readable_duration(max)
                )),
            );
        }
        None => push(
            "backup maximum age",
            true,
            Some("no last_backup_maximum_age provided".into()),
        ),
    }
    let min_size = config.options().last_backup_minimum_size;
    let size = repo.last_backup_size;
    out.push(CheckResult {
        name: "backup minimum size".into(),
        ok: min_size.is_none_or(|min| repo.last_backup.is_some() && size >= min),
        hint: Some(match min_size {
            Some(min) => {
                let sign = if repo.last_backup.is_some() && size >= min {
                    ">"
                } else {
                    "<"
                };
                format!(
                    "last backup size {} {sign} {} minimum",
                    pretty_size(size),
                    pretty_size(min)
                )
            }
            None => pretty_size(size),
        }),
        perfdata: Some(size),
    });
    if let Some(failed) = &repo.encryption {
        out.push(CheckResult {
            name: "encryption".into(),
            ok: failed.is_none(),
            hint: Some(
                failed
                    .clone()
                    .unwrap_or_else(|| "encryption test succeeded".into()),
            ),
            perfdata: None,
        });
    }
    let mut push = |name: &str, ok: bool, hint: Option<String>| {
        out.push(CheckResult::new(name, ok, hint));
    };
    match config.options().last_wal_maximum_age {
        Some(max) => match (&repo.last_backup, repo.last_wal_age) {
            (Some(_), Some(age)) => push(
                "wal maximum age",
                age <= max,
                Some(format!(
                    "interval provided: {}, latest wal age: {}",
                    human_readable_duration(max),
                    human_readable_duration(age)
                )),
            ),
            _ => push(
                "wal maximum age",
                false,
                Some("No WAL files archived for last backup".into()),
            ),
        },
        None => push(
            "wal maximum age",
            true,
            Some("no last_wal_maximum_age provided".into()),
        ),
    }
    out.push(CheckResult {
        name: "wal size".into(),
        ok: true,
        hint: Some(pretty_size(repo.wal_size)),
        perfdata: Some(repo.wal_size),
    });
    let mut push = |name: &str, ok: bool, hint: Option<String>| {
        out.push(CheckResult::new(name, ok, hint));
    };
    if let Some((ok, hint)) = &repo.restore_test {
        push("restore test", *ok, Some(hint.clone()));
    }
    if let Some(e) = &repo.backups_error {
        push("backup catalogue", false, Some(e.clone()));
    }
    if let Some(first) = repo.leftovers.first() {
        push(
            "leftover temporary files",
            false,
            Some(format!(
                "{} temporary files left by a crash ({}{}): is cron running?",
                repo.leftovers.len(),
                first.display(),
                if repo.leftovers.len() > 1 {
                    ", ..."
                } else {
                    ""
                }
            )),
        );
    }
    // The codec was validated when the configuration was loaded.
    push("compression settings", true, None);
    push(
        "failed backups",
        repo.failed_backups == 0,
        Some(format!("there are {} failed backups", repo.failed_backups)),
    );
    let min = config.minimum_redundancy();
    push(
        "minimum redundancy requirements",
        repo.done_full_backups >= usize::try_from(min).unwrap_or(usize::MAX),
        Some(format!(
            "have {} non-incremental backups, expected at least {min}",
            repo.done_full_backups
        )),
    );

    // System id: the two connections reach one cluster, the one identity.json records.
    let c = identity_check(
        "systemid coherence",
        remote.and_then(|r| r.systemid),
        streaming.and_then(|s| s.systemid),
        repo,
    );
    push(&c.name, c.ok, c.hint);

    // The streaming archiver: the built-in client stands for pg_receivewal.
    if config.active() && config.streaming_archiver() {
        push("pg_receivexlog", true, None);
        let (version, text) = match streaming.filter(|s| s.server_version > 0) {
            Some(s) => (s.server_version, s.server_txt_version.clone()),
            None => (
                remote.and_then(|r| r.server_version).unwrap_or(0),
                remote.and_then(|r| r.server_txt_version.clone()),
            ),
        };
        let compatible = version >= STREAMING_MINIMAL_VERSION;
        push(
            "pg_receivexlog compatible",
            compatible,
            (!compatible).then(|| {
                format!(
                    "PostgreSQL version: {}, pg_receivexlog version: built-in (PostgreSQL 10 or later)",
                    text.as_deref().unwrap_or("Unknown")
                )
            }),
        );
        push(
            "receive-wal running",
            repo.receiver_running,
            (!repo.receiver_running).then(|| "See the Barman log file for more details".into()),
        );
    }

    // The file archiver.
    if config.active()
        && config.archiver()
        && let Some(r) = remote
        && let Some(mode) = &r.settings.archive_mode
    {
        if mode == "on" || mode == "always" {
            push("archive_mode", true, None);
        } else {
            let hint = if r.server_version.unwrap_or(0) >= 90500 {
                "please set it to 'on' or 'always'"
            } else {
                "please set it to 'on'"
            };
            push("archive_mode", false, Some(hint.into()));
        }
        match r.settings.archive_command.as_deref() {
            Some(cmd) if !cmd.is_empty() && cmd != "(disabled)" => {
                push("archive_command", true, None);
                if let Some(a) = &r.archiver {
                    push("continuous archiving", a.is_archiving, None);
                }
            }
            _ => push(
                "archive_command",
                false,
                Some("please set it accordingly to documentation".into()),
            ),
        }
    }

    // Archiver errors.
    push(
        "archiver errors",
        repo.error_files.is_empty(),
        summarise_error_files(&repo.error_files),
    );
    out
}

/// Barman's `systemid coherence` (`name` carries the suffix): both connections reach
/// one cluster, the one `identity.json` records.
fn identity_check(
    name: &str,
    postgres: Option<u64>,
    streaming: Option<u64>,
    repo: &RepoState,
) -> CheckResult {
    match postgres.or(streaming) {
        Some(live) if streaming.is_some_and(|s| s != live) => CheckResult::new(
            name,
            false,
            Some(
                "is the streaming DSN targeting the same server of the PostgreSQL connection string?"
                    .into(),
            ),
        ),
        None => CheckResult::new(name, true, Some("no system Id available".into())),
        Some(live) => match &repo.identity_systemid {
            None => CheckResult::new(name, true, Some("no system Id stored on disk".into())),
            Some(stored) if *stored == Some(live) => CheckResult::new(name, true, None),
            Some(_) => CheckResult::new(
                name,
                false,
                Some(format!(
                    "the system Id of the connected PostgreSQL server changed, stored in \"{}\"",
                    repo.identity_path.display()
                )),
            ),
        },
    }
}

/// Barman's `replication slot` check (with `suffix`), from the status of the
/// connection that reads `pg_replication_slots`.
fn slot_check(config: &ServerConfig, r: &RemoteStatus, suffix: &str) -> Option<CheckResult> {
    let slot_name = config.options().slot_name.as_deref()?;
    let name = format!("replication slot{suffix}");
    let slot = r.replication_slot.as_ref();
    if config.streaming_archiver() {
        let hint = match slot {
            None => Some(format!(
                "replication slot '{slot_name}' doesn't exist. Please execute 'barman receive-wal --create-slot {}'",
                config.name()
            )),
            Some(s) if s.restart_lsn.is_none() => Some(format!(
                "slot '{slot_name}' not initialised: is 'receive-wal' running?"
            )),
            Some(s) if !s.active => Some(format!(
                "slot '{slot_name}' not active: is 'receive-wal' running?"
            )),
            Some(_) => None,
        };
        Some(CheckResult::new(&name, hint.is_none(), hint))
    } else {
        let s = slot.filter(|s| s.restart_lsn.is_some())?;
        let state = if s.active { "active" } else { "initialised" };
        Some(CheckResult::new(
            &name,
            true,
            Some(format!(
                "WARNING: slot '{slot_name}' is {state} but not required by the current config"
            )),
        ))
    }
}

/// Barman's summary of the files in `errors/`: `duplicates: 2, unknown: 1`, in order of
/// first appearance.
pub fn summarise_error_files(files: &[String]) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let mut counters: Vec<(&str, usize)> = Vec::new();
    for name in files {
        let kind = if name.ends_with(".error") {
            "not relevant"
        } else if name.ends_with(".duplicate") {
            "duplicates"
        } else if name.ends_with(".unknown") {
            "unknown"
        } else {
            "unknown failure"
        };
        match counters.iter_mut().find(|(k, _)| *k == kind) {
            Some(c) => c.1 += 1,
            None => counters.push((kind, 1)),
        }
    }
    Some(
        counters
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// `barman check` for one server: reads the repository (creating missing directories),
/// connects to the server with `conninfo` (if any) and asks for its status, all within
/// `check_timeout` (0 = no limit), and evaluates. When the time runs out the PostgreSQL checks see no server
/// and a failed `check timeout` closes the list. Ages (of the last backup, the last
/// WAL) are measured at `now`.
pub async fn check(
    global: &GlobalConfig,
    config: &ServerConfig,
    conninfo: Option<&crate::postgres::ConnInfo>,
    streaming_conninfo: Option<&crate::postgres::ConnInfo>,
    wal: Option<(&crate::postgres::ConnInfo, &crate::postgres::ConnInfo)>,
    now: Timestamp,
) -> Vec<CheckResult> {
    // The repository's files, the catalogue and xlog.db: off the runtime.
    let (g, c) = (global.clone(), config.clone());
    let repo = crate::blocking("inspecting the repository of", config.name(), move || {
        RepoState::inspect(&g, &c, now, &TimeZone::system())
    })
    .await
    .unwrap_or_else(|e| RepoState {
        directories_error: Some(e.to_string()),
        ..RepoState::default()
    });
    let timeout = u64::try_from(config.options().check_timeout).unwrap_or(30);
    let probes = async {
        let remote = match conninfo {
            None => None,
            Some(ci) => match PgServer::connect(ci, "barman").await {
                Ok(s) => Some(s.remote_status(config.options().slot_name.as_deref()).await),
                Err(_) => None,
            },
        };
        // The streaming connection, as Barman opens one for the postgres backup method
        // and for the streaming archiver.
        let streaming = if config.backup_method() == "postgres" || config.streaming_archiver() {
            Some(match streaming_conninfo {
                Some(ci) => StreamingStatus::probe(ci).await,
                None => StreamingStatus {
                    error: Some("streaming_conninfo cannot be used".into()),
                    ..StreamingStatus::default()
                },
            })
        } else {
            None
        };
        // Another source of WAL: its own two connections.
        let wal = match wal {
            None => None,
            Some((pg_ci, streaming_ci)) => {
                let remote = match PgServer::connect(pg_ci, "barman").await {
                    Ok(s) => Some(s.remote_status(config.options().slot_name.as_deref()).await),
                    Err(_) => None,
                };
                Some(WalSource {
                    remote,
                    streaming: StreamingStatus::probe(streaming_ci).await,
                })
            }
        };
        let executor = executor_checks(config, remote.as_ref()).await;
        let standby = standby_checks(config, remote.as_ref()).await;
        (remote, streaming, wal, (standby, executor))
    };
    let mut timed_out = false;
    let (remote, streaming, wal, (standby, executor)) = if timeout == 0 {
        probes.await
    } else {
        match tokio::time::timeout(Duration::from_secs(timeout), probes).await {
            Ok(r) => r,
            Err(_) => {
                timed_out = true;
                (None, None, None, (Vec::new(), Vec::new()))
            }
        }
    };
    let mut out = evaluate(
        config,
        remote.as_ref(),
        streaming.as_ref(),
        wal.as_ref(),
        &repo,
    );
    // The primary/standby checks after wal_level, as Barman's check_postgres.
    if let Some(at) = out.iter().position(|r| r.name == "wal_level") {
        out.splice(at + 1..at + 1, standby);
    }
    // The backup method's own checks, where Barman prints them.
    let at = out
        .iter()
        .position(|r| r.name == "minimum redundancy requirements")
        .map_or(out.len(), |i| i + 1);
    out.splice(at..at, executor);
    if timed_out {
        out.push(CheckResult::new(
            "check timeout",
            false,
            Some("barman check command timed out".into()),
        ));
    }
    out
}

/// The major version of a `--version` line, as `server_version_num` writes a major
/// (`pg_basebackup (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)` gives 150000; 9.6.24
/// gives 90600).
fn tool_major(line: &str) -> Option<u32> {
    let v = line
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    if major >= 10 {
        Some(major * 10_000)
    } else {
        Some(
            major * 10_000
                + parts
                    .next()
                    .and_then(|m| m.parse::<u32>().ok())
                    .unwrap_or(0)
                    * 100,
        )
    }
}

/// The major part of a `server_version_num` (150010 gives 150000, 90624 gives 90600).
fn major_of(version_num: u32) -> u32 {
    if version_num >= 100_000 {
        version_num / 10_000 * 10_000
    } else {
        version_num / 100 * 100
    }
}

/// Barman's checks of a primary/standby configuration (`primary_conninfo` set):
/// `PostgreSQL server is standby`, `Primary server is not a standby` and `Primary and
/// standby have same system ID`.
async fn standby_checks(config: &ServerConfig, remote: Option<&RemoteStatus>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let Some(text) = config.options().primary_conninfo.as_deref() else {
        return out;
    };
    let Some(remote) = remote.filter(|r| r.server_txt_version.is_some()) else {
        return out;
    };
    let standby = remote.is_in_recovery == Some(true);
    out.push(CheckResult::new(
        "PostgreSQL server is standby",
        standby,
        (!standby)
            .then(|| "conninfo should point to a standby server if primary_conninfo is set".into()),
    ));
    let primary = match crate::postgres::ConnInfo::parse(text) {
        Ok(ci) => PgServer::connect(&ci, "barman").await.ok(),
        Err(_) => None,
    };
    let (in_recovery, systemid) = match &primary {
        Some(p) => (
            p.is_in_recovery().await.ok(),
            p.system_identifier().await.ok(),
        ),
        None => (None, None),
    };
    out.push(CheckResult::new(
        "Primary server is not a standby",
        in_recovery == Some(false),
        (in_recovery != Some(false)).then(|| {
            if primary.is_none() {
                "cannot connect to the primary (primary_conninfo)".into()
            } else {
                "primary_conninfo should point to a primary server, not a standby".into()
            }
        }),
    ));
    let same = systemid.is_some() && systemid == remote.systemid;
    out.push(CheckResult::new(
        "Primary and standby have same system ID",
        same,
        (!same).then(|| "primary_conninfo and conninfo should point to primary and standby servers which share the same system identifier".into()),
    ));
    out
}

/// The checks Barman's backup executor adds for the server's method: for `postgres`,
/// `pg_basebackup` (found in `path_prefix` or `PATH`), `pg_basebackup compatible` (not
/// older than the server) and `pg_basebackup supports tablespaces mapping`; for
/// `rsync`, `ssh` (`ssh_command true` succeeds) and `ssh output clean` when it prints
/// anything.
async fn executor_checks(config: &ServerConfig, remote: Option<&RemoteStatus>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if !config.active() {
        return out;
    }
    // A passive node's executor checks the ssh connection to its primary Barman host.
    let (method, ssh_command, ssh_hint) = if config.is_passive() {
        (
            "rsync",
            config.options().primary_ssh_command.as_deref(),
            "Barman primary node",
        )
    } else {
        (
            config.backup_method(),
            config.options().ssh_command.as_deref(),
            "PostgreSQL server",
        )
    };
    match method {
        "postgres" => {
            let program = crate::backup::find_program(
                "pg_basebackup",
                config.options().path_prefix.as_deref(),
            )
            .ok();
            let version = match &program {
                Some(p) => tokio::process::Command::new(p)
                    .arg("--version")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()),
                None => None,
            };
            out.push(CheckResult::new("pg_basebackup", program.is_some(), None));
            let server_major = remote.and_then(|r| r.server_version).map(major_of);
            let client_major = version.as_deref().and_then(tool_major);
            let compatible = matches!((server_major, client_major), (Some(s), Some(c)) if s <= c);
            let text = |v: Option<String>| v.unwrap_or_else(|| "Unknown".to_owned());
            out.push(CheckResult::new(
                "pg_basebackup compatible",
                compatible,
                (!compatible).then(|| {
                    format!(
                        "PostgreSQL version: {}, pg_basebackup version: {}",
                        text(remote.and_then(|r| r.server_txt_version.clone())),
                        text(
                            version
                                .as_deref()
                                .and_then(|v| v.split_whitespace().nth(2))
                                .map(str::to_owned)
                        )
                    )
                }),
            ));
            if remote.and_then(|r| r.server_txt_version.as_ref()).is_some() {
                // --tablespace-mapping exists since pg_basebackup 9.4.
                let ok = client_major.is_some_and(|c| c >= 90_400);
                out.push(CheckResult::new(
                    "pg_basebackup supports tablespaces mapping",
                    ok,
                    (!ok).then(|| {
                        "pg_basebackup 9.4 or higher is required for tablespaces support".to_owned()
                    }),
                ));
            }
        }
        "rsync" => {
            let Some(cmd) = ssh_command else {
                return out;
            };
            let result = match barman_transport::SshCommand::new(cmd) {
                Ok(ssh) => ssh.output(&["true"], None).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(o) if o.code == Some(0) => {
                    out.push(CheckResult::new("ssh", true, Some(ssh_hint.into())));
                    if !o.stdout.is_empty() {
                        out.push(CheckResult::new(
                            "ssh output clean",
                            false,
                            Some("the configured ssh_command must not add anything to the remote command output".into()),
                        ));
                    }
                }
                Ok(o) => out.push(CheckResult::new(
                    "ssh",
                    false,
                    Some(
                        o.stderr
                            .trim()
                            .lines()
                            .last()
                            .unwrap_or("ssh failed")
                            .to_owned(),
                    ),
                )),
                Err(e) => out.push(CheckResult::new("ssh", false, Some(e))),
            }
        }
        _ => {}
    }
    out
}

/// The checks of one server, for [`nagios`].
#[derive(Clone, Copy, Debug)]
pub struct NagiosServer<'a> {
    /// The server's name.
    pub name: &'a str,
    /// Whether it is active (failures of inactive servers are ignored).
    pub active: bool,
    /// Its check results.
    pub results: &'a [CheckResult],
}

/// Barman's Nagios output of `check --nagios` for these servers, and the exit code
/// (0 OK, 2 CRITICAL). The text ends with a newline.
pub fn nagios(servers: &[NagiosServer<'_>]) -> (String, i32) {
    let checked: Vec<&NagiosServer<'_>> =
        servers.iter().filter(|s| !s.results.is_empty()).collect();
    let issues: Vec<&NagiosServer<'_>> = checked
        .iter()
        .copied()
        .filter(|s| s.results.iter().any(|r| !r.ok))
        .collect();
    let error = issues.iter().any(|s| s.active);
    let mut perf = Vec::new();
    for s in &checked {
        for r in s.results.iter() {
            match (r.name.as_str(), r.perfdata) {
                ("backup minimum size", Some(p)) => perf.push(format!("{}={p}B", s.name)),
                ("wal size", Some(p)) => perf.push(format!("{}_wals={p}B", s.name)),
                _ => {}
            }
        }
    }
    let perf = if perf.is_empty() {
        String::new()
    } else {
        format!("|{}", perf.join(" "))
    };
    let mut out = String::new();
    if error {
        let mut summary = Vec::new();
        let mut details = Vec::new();
        for s in &issues {
            let failed: Vec<&CheckResult> = s.results.iter().filter(|r| !r.ok).collect();
            summary.push(format!(
                "{} FAILED: {}",
                s.name,
                failed
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for r in failed {
                match &r.hint {
                    Some(h) if !h.is_empty() => {
                        details.push(format!("{}.{}: FAILED ({h})", s.name, r.name));
                    }
                    _ => details.push(format!("{}.{}: FAILED", s.name, r.name)),
                }
            }
        }
        if checked.len() == 1 {
            out.push_str(&format!(
                "BARMAN CRITICAL - server {} has issues * {}{perf}\n",
                checked[0].name,
                summary.join(" * ")
            ));
        } else {
            out.push_str(&format!(
                "BARMAN CRITICAL - {} server out of {} have issues * {}{perf}\n",
                issues.len(),
                checked.len(),
                summary.join(" * ")
            ));
        }
        for d in details {
            out.push_str(&d);
            out.push('\n');
        }
        return (out, 2);
    }
    let ignoring: String = issues
        .iter()
        .map(|s| format!(" * IGNORING: {}", s.name))
        .collect();
    let good: Vec<&str> = checked
        .iter()
        .filter(|s| !issues.iter().any(|i| i.name == s.name))
        .map(|s| s.name)
        .collect();
    match good.len() {
        0 => out.push_str(&format!("BARMAN OK - No server configured{ignoring}\n")),
        1 => out.push_str(&format!(
            "BARMAN OK - Ready to serve the Espresso backup for {}{ignoring}{perf}\n",
            good[0]
        )),
        n => out.push_str(&format!(
            "BARMAN OK - Ready to serve the Espresso backup for {n} servers * {}{ignoring}{perf}\n",
            good.join(" * ")
        )),
    }
    (out, 0)
}

/// One line of `barman status`: the JSON key, the console label and the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusItem {
    /// Barman's key in JSON output.
    pub key: &'static str,
    /// The console label.
    pub label: &'static str,
    /// The value as Barman prints it.
    pub value: String,
}

fn py_bool(b: bool) -> String {
    if b { "True" } else { "False" }.to_owned()
}

/// Python's `datetime.ctime()` in the local time zone (Barman prints the server
/// session's zone, normally the same).
fn ctime(ts: jiff::Timestamp) -> String {
    ts.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// `barman status` for one server, as Barman's ordered lines. `remote` is `None` when
/// PostgreSQL could not be reached.
pub fn status(
    config: &ServerConfig,
    remote: Option<&RemoteStatus>,
    repo: &RepoState,
) -> Vec<StatusItem> {
    let mut out = Vec::new();
    let mut item = |key: &'static str, label: &'static str, value: String| {
        out.push(StatusItem { key, label, value });
    };
    if let Some(d) = &config.options().description {
        item("description", "Description", d.to_owned());
    }
    item("active", "Active", py_bool(config.active()));
    item("disabled", "Disabled", py_bool(config.disabled().is_some()));
    item(
        "active_model",
        "Active configuration model",
        config.active_model().unwrap_or("None").to_owned(),
    );
    if config.active() && !config.is_passive() {
        match remote.filter(|r| r.server_txt_version.is_some()) {
            None => item(
                "pg_version",
                "PostgreSQL version",
                "FAILED trying to get PostgreSQL version".into(),
            ),
            Some(r) => {
                item(
                    "pg_version",
                    "PostgreSQL version",
                    r.server_txt_version.clone().unwrap_or_default(),
                );
                item(
                    "is_in_recovery",
                    "Cluster state",
                    if r.is_in_recovery == Some(true) {
                        "in archive recovery"
                    } else {
                        "in production"
                    }
                    .into(),
                );
                if let Some(size) = r.current_size {
                    item("current_size", "Current data size", pretty_size(size));
                }
                if let Some(d) = &r.settings.data_directory {
                    item("data_directory", "PostgreSQL Data directory", d.clone());
                }
                if let Some(f) = r.current_wal.as_ref().and_then(|w| w.file_name.clone()) {
                    item("current_xlog", "Current WAL segment", f);
                }
                if config.archiver() && r.settings.archive_mode.is_some() {
                    item(
                        "archive_command",
                        "PostgreSQL 'archive_command' setting",
                        r.settings
                            .archive_command
                            .clone()
                            .filter(|c| !c.is_empty())
                            .unwrap_or_else(|| {
                                "FAILED (please set it accordingly to documentation)".into()
                            }),
                    );
                    let a = r.archiver.as_ref();
                    let last = a.and_then(|a| {
                        let wal = a.last_archived_wal.clone()?;
                        Some(match a.last_archived_time {
                            Some(t) => format!("{wal}, at {}", ctime(t)),
                            None => wal,
                        })
                    });
                    item(
                        "last_archived_wal",
                        "Last archived WAL",
                        last.unwrap_or_else(|| "No WAL segment shipped yet".into()),
                    );
                    if let Some(a) = a {
                        let mut fail = a.failed_count.to_string();
                        if a.failed_count > 0 {
                            fail.push_str(&format!(
                                " ({} at {})",
                                a.last_failed_wal.as_deref().unwrap_or("None"),
                                a.last_failed_time.map_or_else(|| "None".into(), ctime)
                            ));
                        }
                        item("failed_count", "Failures of WAL archiver", fail);
                        if let Some(rate) = a.archived_per_second.filter(|r| *r != 0.0) {
                            item(
                                "server_archived_wals_per_hour",
                                "Server WAL archiving rate",
                                format!("{:.2}/hour", rate * 3600.0),
                            );
                        }
                    }
                }
            }
        }
    }
    item("passive_node", "Passive node", py_bool(config.is_passive()));
    item(
        "retention_policies",
        "Retention policies",
        match config.retention_policy() {
            Some(p) => format!("enforced (mode: auto, retention: {p}, WAL retention: MAIN)"),
            None => "not enforced".into(),
        },
    );
    item(
        "backups_number",
        "No. of available backups",
        repo.done_backups.to_string(),
    );
    item(
        "first_backup",
        "First available backup",
        repo.first_backup.clone().unwrap_or_else(|| "None".into()),
    );
    item(
        "last_backup",
        "Last available backup",
        repo.last_backup.clone().unwrap_or_else(|| "None".into()),
    );
    let min = config.minimum_redundancy();
    let n = repo.done_full_backups;
    item(
        "minimum_redundancy",
        "Minimum redundancy requirements",
        if u64::try_from(n).unwrap_or(u64::MAX) < u64::from(min) {
            format!("FAILED ({n}/{min})")
        } else {
            format!("satisfied ({n}/{min})")
        },
    );
    if config.is_passive() {
        item(
            "primary_ssh_command",
            "SSH command to primary server",
            config
                .options()
                .primary_ssh_command
                .clone()
                .unwrap_or_default(),
        );
    }
    out
}

/// The check names Barman ignores before a backup (its `NON_CRITICAL_CHECKS`).
pub const NON_CRITICAL_CHECKS: &[&str] = &[
    "minimum redundancy requirements",
    "backup maximum age",
    "backup minimum size",
    "failed backups",
    "archiver errors",
    "empty incoming directory",
    "empty streaming directory",
    "incoming WALs directory",
    "streaming WALs directory",
    "wal maximum age",
    "PostgreSQL server is standby",
    "leftover temporary files",
    "restore test",
];

/// The minimal PostgreSQL version, as Barman prints it.
pub const MINIMAL_VERSION_TEXT: &str = "9.6";

const _: () = assert!(MINIMAL_VERSION == 90600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(pretty_size(0), "0 B");
        assert_eq!(pretty_size(1023), "1023 B");
        assert_eq!(pretty_size(1536), "1.5 KiB");
        assert_eq!(pretty_size(30 << 20), "30.0 MiB");
        assert_eq!(
            human_readable_duration(Duration::from_secs(86_400)),
            "1 day"
        );
        assert_eq!(
            human_readable_duration(Duration::from_secs(2 * 86_400 + 3600 + 61)),
            "2 days, 1 hour, 1 minute, 1 second"
        );
    }

    #[test]
    fn identity_json() {
        assert_eq!(
            identity_systemid("{\n    \"systemid\": \"7345\",\n    \"version\": \"15\"\n}\n"),
            Some(7345)
        );
        assert_eq!(identity_systemid("{\"systemid\": 12}"), Some(12));
        assert_eq!(identity_systemid("{}"), None);
    }

    #[test]
    fn error_summary() {
        let files: Vec<String> = ["a.duplicate", "b.error", "c.duplicate", "d", "e.unknown"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            summarise_error_files(&files).as_deref(),
            Some("duplicates: 2, not relevant: 1, unknown failure: 1, unknown: 1")
        );
        assert_eq!(summarise_error_files(&[]), None);
    }

    #[test]
    fn nagios_output() {
        let ok = vec![
            CheckResult::new("PostgreSQL", true, None),
            CheckResult {
                name: "backup minimum size".into(),
                ok: true,
                hint: Some("0 B".into()),
                perfdata: Some(0),
            },
            CheckResult {
                name: "wal size".into(),
                ok: true,
                hint: Some("0 B".into()),
                perfdata: Some(0),
            },
        ];
        let (t, c) = nagios(&[NagiosServer {
            name: "pg",
            active: true,
            results: &ok,
        }]);
        assert_eq!(
            t,
            "BARMAN OK - Ready to serve the Espresso backup for pg|pg=0B pg_wals=0B\n"
        );
        assert_eq!(c, 0);
        let bad = vec![
            CheckResult::new("PostgreSQL", false, None),
            CheckResult::new("wal_level", false, Some("please set it".into())),
        ];
        let (t, c) = nagios(&[NagiosServer {
            name: "pg",
            active: true,
            results: &bad,
        }]);
        assert_eq!(
            t,
            "BARMAN CRITICAL - server pg has issues * pg FAILED: PostgreSQL, wal_level\n\
             pg.PostgreSQL: FAILED\npg.wal_level: FAILED (please set it)\n"
        );
        assert_eq!(c, 2);
        let (t, c) = nagios(&[
            NagiosServer {
                name: "a",
                active: true,
                results: &ok,
            },
            NagiosServer {
                name: "b",
                active: false,
                results: &bad,
            },
        ]);
        assert_eq!(
            t,
            "BARMAN OK - Ready to serve the Espresso backup for a * IGNORING: b|a=0B a_wals=0B\n"
        );
        assert_eq!(c, 0);
        let (t, _) = nagios(&[
            NagiosServer {
                name: "a",
                active: true,
                results: &ok,
            },
            NagiosServer {
                name: "b",
                active: true,
                results: &bad,
            },
        ]);
        assert!(
            t.starts_with("BARMAN CRITICAL - 1 server out of 2 have issues * b FAILED: PostgreSQL, wal_level|a=0B a_wals=0B\n"),
            "{t}"
        );
        let (t, _) = nagios(&[
            NagiosServer {
                name: "a",
                active: true,
                results: &ok,
            },
            NagiosServer {
                name: "c",
                active: true,
                results: &ok,
            },
        ]);
        assert!(
            t.starts_with("BARMAN OK - Ready to serve the Espresso backup for 2 servers * a * c|")
        );
    }

    #[test]
    fn tool_versions_compare_by_major() {
        assert_eq!(
            tool_major("pg_basebackup (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)"),
            Some(150_000)
        );
        assert_eq!(
            tool_major("pg_basebackup (PostgreSQL) 9.6.24"),
            Some(90_600)
        );
        assert_eq!(
            tool_major("pg_basebackup (PostgreSQL) 17devel"),
            Some(170_000)
        );
        assert_eq!(tool_major("nothing"), None);
        assert_eq!(major_of(150_010), 150_000);
        assert_eq!(major_of(90_624), 90_600);
        // A newer server than the client is incompatible; an older one is fine.
        assert!(major_of(170_002) > tool_major("pg_basebackup (PostgreSQL) 15.10").unwrap());
        assert!(major_of(130_020) <= tool_major("pg_basebackup (PostgreSQL) 15.10").unwrap());
    }
}
