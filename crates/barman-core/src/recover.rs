//! `barman recover` (`restore`): a backup copied into a destination directory, locally
//! or on a remote host, with the WAL and the configuration PostgreSQL needs to replay
//! up to a target.
//!
//! [`recover`] is the one entry point; [`RecoverOptions`] says what to restore where,
//! and [`RecoverReport`] what was done and what the user must review before starting
//! the server. [`preview`] makes the same decisions (step 1) and writes nothing: the
//! backup, timeline and WAL files a restore would use ([`RecoverPreview`]).
//!
//! # Steps
//!
//! 1. **Validation, before anything is written.** The backup (an id, a shortcut, a
//!    name, or `auto` chosen from the target with [`barman_catalog::choose_backup`])
//!    must be DONE or WAITING_FOR_WALS; the target must be reachable from it (a time
//!    after its end, an LSN after its end LSN, a timeline descending from its own: all
//!    decided by [`barman_catalog::plan_recovery`], which also lists the exact WAL files
//!    to deliver); relocated tablespaces must exist in the backup; the destination
//!    (and every tablespace location) must be empty unless `delta_restore`. Any failure
//!    is one line and leaves the destination untouched.
//! 2. **Copy.** `base/<id>/data/` into the destination, without `pg_wal/*`,
//!    `postmaster.pid`, `backup_manifest` and the `pg_tblspc/<oid>` links, then each
//!    `base/<id>/<oid>/` into its tablespace location, in parallel (`jobs`): with the
//!    parallel [`LocalCopier`] locally, with `rsync` (over `ssh` when remote, and for
//!    delta restores, which compare checksums and delete what the backup lacks).
//! 3. **WAL.** Unless in get-wal mode, every file of the plan is decompressed (the
//!    codec is read from the magic bytes) into `barman_wal/` (or the staging WAL
//!    directory) for a point-in-time recovery, else into `pg_wal/` with an
//!    `archive_status/<name>.done` file each so PostgreSQL does not archive them again.
//!    A trailing `.partial` segment (streamed but incomplete: archived, or the one
//!    `streaming/` holds) is delivered under its segment name, so the newest streamed
//!    WAL is replayed too (Barman leaves it out, its issue #79). What waits in
//!    `incoming/` and `streaming/` is archived first, as Barman does.
//! 4. **Configuration.** `pg_tblspc/<oid>` links to the original or relocated
//!    locations; `backup_manifest` renamed `backup_manifest.<id>`; `.barman-recover.info`;
//!    `recovery.signal` (or `standby.signal`) and the recovery settings appended to
//!    `postgresql.auto.conf` (or `recovery_conf_filename`); `archive_command` and any
//!    earlier `recovery_target*` setting commented out with `#BARMAN#` in
//!    `postgresql.conf` and `postgresql.auto.conf` (`archive_command = false` added),
//!    the originals kept as `<file>.origin`. A remote restore builds these files in a
//!    local staging directory and sends them with one `rsync`.
//!
//! # Example
//!
//! ```no_run
//! use barman_core::config::{Config, MemorySource};
//! use barman_core::recover::{recover, RecoverOptions, Targets};
//!
//! let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\n", &MemorySource::default())?;
//! let targets = Targets { time: Some("2026-11-25 10:00:00+00".into()), ..Targets::default() };
//! let mut options = RecoverOptions::new("latest", "/var/lib/postgresql/15/restored");
//! options.target = targets.into_target()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let report = rt.block_on(recover(config.global(), config.server("pg").unwrap(), &options))?;
//! println!("restored backup {} into {}", report.backup_id, report.destination.display());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design notes
//!
//! - **The exact WAL list.** Barman copies every WAL file of every timeline up to the
//!   target one; [`barman_catalog::plan_recovery`] follows the target timeline's history,
//!   so only the copies PostgreSQL will ask for are delivered, and a target the archive
//!   cannot reach is refused before anything is copied.
//! - **The timeline is written resolved.** With `--target-tli latest` or `current`, the
//!   number the plan resolved is written as `recovery_target_timeline`, so PostgreSQL
//!   follows the timeline whose WAL was delivered.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use barman_catalog::{
    BackupId, BackupInfo, Catalogue, RecoveryPlan, RecoveryRequest, WalIndex, XlogDbEntry,
    choose_backup, plan_recovery,
};
use barman_transport::{LocalCopier, Rsync, RsyncPath, SshCommand};
use barman_wal::{Codec, Lsn, TimelineHistory, TimelineId, WalFileName};
use jiff::tz::TimeZone;

pub use barman_catalog::{PyDateTime, RecoveryTarget, TargetTimeline};

use crate::archive::{GetWalOptions, WalArchive};
use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::write_persist;
use crate::hooks::{Hook, Hooks};
use crate::repo::BackupRepo;
use crate::tarball;
use crate::{Error, Refusal, Result};

/// What happens when the recovery target is reached (`--target-action`,
/// `recovery_target_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetAction {
    /// Pause replay (PostgreSQL's default), so the result can be inspected.
    Pause,
    /// Stop the server.
    Shutdown,
    /// End recovery and accept connections for writing.
    Promote,
}

impl FromStr for TargetAction {
    type Err = Error;

    /// ```
    /// use barman_core::recover::TargetAction;
    /// assert_eq!("promote".parse::<TargetAction>()?, TargetAction::Promote);
    /// assert!("resume".parse::<TargetAction>().is_err());
    /// # Ok::<(), barman_core::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pause" => Ok(TargetAction::Pause),
            "shutdown" => Ok(TargetAction::Shutdown),
            "promote" => Ok(TargetAction::Promote),
            other => Err(Error::refused(
                Refusal::InvalidRequest,
                format!("invalid target action {other:?}: expected pause, shutdown or promote"),
            )),
        }
    }
}

impl fmt::Display for TargetAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetAction::Pause => "pause",
            TargetAction::Shutdown => "shutdown",
            TargetAction::Promote => "promote",
        })
    }
}

/// The recovery targets as given on the command line, at most one of which may be set;
/// [`Targets::into_target`] parses and checks them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// `--target-time`: `YYYY-MM-DD HH:MM[:SS[.ffffff]]`, optionally with an offset.
    pub time: Option<String>,
    /// `--target-xid`.
    pub xid: Option<String>,
    /// `--target-lsn`.
    pub lsn: Option<String>,
    /// `--target-name`.
    pub name: Option<String>,
    /// `--target-immediate`.
    pub immediate: bool,
}

impl Targets {
    /// The one target asked for, parsed.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when several targets are given or a value does not parse.
    ///
    /// ```
    /// use barman_core::recover::{RecoveryTarget, Targets};
    ///
    /// let t = Targets { xid: Some("742".into()), ..Targets::default() };
    /// assert_eq!(t.into_target()?, Some(RecoveryTarget::Xid(742)));
    /// let two = Targets { xid: Some("742".into()), immediate: true, ..Targets::default() };
    /// assert!(two.into_target().is_err());
    /// # Ok::<(), barman_core::Error>(())
    /// ```
    pub fn into_target(self) -> Result<Option<RecoveryTarget>> {
        let given = [
            self.time.is_some(),
            self.xid.is_some(),
            self.lsn.is_some(),
            self.name.is_some(),
            self.immediate,
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                "you cannot specify multiple targets for the recovery operation",
            ));
        }
        if let Some(t) = self.time {
            let parsed = t.parse::<PyDateTime>().map_err(|e| {
                Error::refused(Refusal::InvalidRequest, format!("invalid target time: {e}"))
            })?;
            return Ok(Some(RecoveryTarget::Time(parsed)));
        }
        if let Some(x) = self.xid {
            let xid = x.trim().parse::<u64>().map_err(|_| {
                Error::refused(Refusal::InvalidRequest, format!("invalid target xid {x:?}"))
            })?;
            return Ok(Some(RecoveryTarget::Xid(xid)));
        }
        if let Some(l) = self.lsn {
            let lsn = l.trim().parse::<Lsn>().map_err(|e| {
                Error::refused(
                    Refusal::InvalidRequest,
                    format!("invalid target LSN {l:?}: {e}"),
                )
            })?;
            return Ok(Some(RecoveryTarget::Lsn(lsn)));
        }
        if let Some(n) = self.name {
            return Ok(Some(RecoveryTarget::Name(n)));
        }
        Ok(self.immediate.then_some(RecoveryTarget::Immediate))
    }
}

/// Parses `--target-tli`: a number, `current` or `latest`.
///
/// # Errors
///
/// [`Error::Refused`] for anything else.
///
/// ```
/// use barman_core::recover::{parse_target_tli, TargetTimeline};
/// assert_eq!(parse_target_tli("latest")?, TargetTimeline::Latest);
/// assert!(parse_target_tli("-1").is_err());
/// # Ok::<(), barman_core::Error>(())
/// ```
pub fn parse_target_tli(s: &str) -> Result<TargetTimeline> {
    s.trim().parse().map_err(|e| {
        Error::refused(
            Refusal::InvalidRequest,
            format!("invalid target timeline {s:?} (a number, current or latest): {e}"),
        )
    })
}

/// What to restore, where and how.
#[derive(Clone, Debug)]
pub struct RecoverOptions {
    /// The backup: an id, a shortcut (`latest`, `oldest`, ...), a name, or `auto`.
    pub backup_id: String,
    /// The destination directory (absolute; on the remote host with `remote_ssh_command`).
    pub destination: PathBuf,
    /// Where recovery stops; `None` replays all the WAL available.
    pub target: Option<RecoveryTarget>,
    /// `--target-tli`.
    pub target_tli: Option<TargetTimeline>,
    /// `--exclusive`: stop just before the target (`recovery_target_inclusive = 'False'`).
    pub exclusive: bool,
    /// `--target-action`; needs a point-in-time recovery.
    pub target_action: Option<TargetAction>,
    /// `--tablespace NAME:LOCATION`: tablespaces restored elsewhere than their original
    /// location.
    pub tablespaces: Vec<(String, PathBuf)>,
    /// `--remote-ssh-command`: restore onto the host this `ssh` command reaches.
    pub remote_ssh_command: Option<String>,
    /// `-j/--jobs`; `None` uses `parallel_jobs`.
    pub jobs: Option<usize>,
    /// `--bwlimit` in KiB/s; `None` uses `bandwidth_limit`.
    pub bwlimit_kib: Option<u64>,
    /// `--get-wal`/`--no-get-wal`; `None` follows `recovery_options`.
    pub get_wal: Option<bool>,
    /// `--standby-mode`: write `standby.signal` instead of `recovery.signal`.
    pub standby_mode: bool,
    /// `--recovery-conf-filename`: the file the recovery settings go to (default
    /// `postgresql.auto.conf`).
    pub recovery_conf_filename: Option<String>,
    /// `--delta-restore`: the destination may hold files; only differences are copied.
    /// `None` follows `recovery_options`.
    pub delta_restore: Option<bool>,
    /// `--staging-wal-directory`: where a point-in-time recovery gets its WAL files
    /// (default `<destination>/barman_wal`).
    pub staging_wal_directory: Option<PathBuf>,
    /// The command that runs barman on this host, as its words (each is quoted for the
    /// shell), used in get-wal mode for a local restore:
    /// `restore_command = '<barman_command> get-wal -P <server> %f > %p'`.
    pub barman_command: Vec<String>,
    /// The name of this (Barman) host as the PostgreSQL host reaches it, for the
    /// `barman-wal-restore` command of a remote restore in get-wal mode.
    pub barman_host: String,
    /// The zone naive target times are read in (the Barman host's).
    pub local_tz: TimeZone,
    /// `--retry-times` / `--no-retry` (`basebackup_retry_times`): how many times a
    /// failed copy of a tree (the data directory, a tablespace, the WAL) is tried
    /// again.
    pub retry_times: Option<u32>,
    /// `--retry-sleep` (`basebackup_retry_sleep`): seconds before trying again.
    pub retry_sleep: Option<u64>,
}

impl RecoverOptions {
    /// Options that restore `backup_id` into `destination` locally, replaying all the
    /// WAL, with the configuration's defaults for the rest.
    ///
    /// ```
    /// use barman_core::recover::{RecoverOptions, TargetAction, TargetTimeline};
    ///
    /// let mut o = RecoverOptions::new("auto", "/var/lib/postgresql/15/restored");
    /// o.target_tli = Some(TargetTimeline::Latest);
    /// o.target_action = Some(TargetAction::Promote);
    /// o.tablespaces.push(("tbs1".into(), "/srv/tbs1".into()));
    /// assert_eq!(o.get_wal, None); // follows `recovery_options`
    /// ```
    pub fn new(backup_id: impl Into<String>, destination: impl Into<PathBuf>) -> RecoverOptions {
        RecoverOptions {
            backup_id: backup_id.into(),
            destination: destination.into(),
            target: None,
            target_tli: None,
            exclusive: false,
            target_action: None,
            tablespaces: Vec::new(),
            remote_ssh_command: None,
            jobs: None,
            bwlimit_kib: None,
            get_wal: None,
            standby_mode: false,
            recovery_conf_filename: None,
            delta_restore: None,
            staging_wal_directory: None,
            barman_command: vec!["barman".to_owned()],
            barman_host: "localhost".to_owned(),
            local_tz: TimeZone::UTC,
            retry_times: None,
            retry_sleep: None,
        }
    }
}

/// A line of a configuration file that recovery changed or that the user must review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigLine {
    /// The file name, relative to the destination.
    pub file: String,
    /// The line number (0-based, as Barman reports it).
    pub line: usize,
    /// The option.
    pub key: String,
    /// The value set now (for a change; `None` when the line was only commented out) or
    /// found (for a warning).
    pub value: Option<String>,
}

/// A tablespace as restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredTablespace {
    /// Its name.
    pub name: String,
    /// Its OID (`pg_tblspc/<oid>`).
    pub oid: u32,
    /// Where its files now are.
    pub location: PathBuf,
    /// Whether that is not the original location.
    pub relocated: bool,
}

/// What [`recover`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecoverReport {
    /// The server.
    pub server: String,
    /// The backup restored.
    pub backup_id: BackupId,
    /// The destination directory.
    pub destination: PathBuf,
    /// The `user@host` of a remote restore.
    pub remote_host: Option<String>,
    /// Whether a point-in-time recovery was set up.
    pub pitr: bool,
    /// The timeline recovery follows.
    pub target_timeline: TimelineId,
    /// A description of the target, as Barman prints it (`time: '...'`).
    pub target_description: Option<String>,
    /// The target time had no offset and was read in the Barman host's time zone.
    pub target_time_assumed_local: bool,
    /// Whether `restore_command` fetches the WAL from Barman (get-wal mode).
    pub get_wal: bool,
    /// The WAL files delivered (empty in get-wal mode), and where.
    pub wal_files: Vec<WalFileName>,
    /// The directory the WAL files went to.
    pub wal_destination: Option<PathBuf>,
    /// The file the recovery settings were appended to (PostgreSQL 12 and later).
    pub recovery_configuration_file: Option<String>,
    /// The signal file written (`recovery.signal`, `standby.signal`), if any.
    pub signal_file: Option<String>,
    /// The tablespaces restored.
    pub tablespaces: Vec<RestoredTablespace>,
    /// Settings changed to prevent data loss (`archive_command = false`, ...).
    pub changes: Vec<ConfigLine>,
    /// Settings to review: they point outside the data directory.
    pub warnings: Vec<ConfigLine>,
    /// Configuration files the backup does not hold (they live outside PGDATA).
    pub missing_files: Vec<String>,
    /// Bytes copied by a local copy of the data (0 when rsync copied).
    pub bytes_copied: u64,
    /// Recovery hook scripts that failed (their output's last line).
    pub hook_warnings: Vec<String>,
    /// Catalogue entries that could not be read, and so were not considered.
    pub catalogue_warnings: Vec<String>,
    /// Copies that failed and were tried again (`--retry-times`).
    pub copy_warnings: Vec<String>,
}

/// Options a restored configuration must not keep: `archive_command` is forced off,
/// earlier recovery targets are commented out (Barman's `OPTIONS_TO_MANGLE`).
const MANGLED: [(&str, Option<&str>); 9] = [
    ("archive_command", Some("false")),
    ("recovery_target", None),
    ("recovery_target_name", None),
    ("recovery_target_time", None),
    ("recovery_target_xid", None),
    ("recovery_target_lsn", None),
    ("recovery_target_inclusive", None),
    ("recovery_target_timeline", None),
    ("recovery_target_action", None),
];

/// What a data directory holds (PostgreSQL 9.6 to 18): a staging WAL directory inside
/// the destination must not be one of them.
const PGDATA_ENTRIES: [&str; 33] = [
    "base",
    "global",
    "pg_wal",
    "pg_xlog",
    "pg_xact",
    "pg_clog",
    "pg_multixact",
    "pg_subtrans",
    "pg_twophase",
    "pg_stat",
    "pg_stat_tmp",
    "pg_replslot",
    "pg_logical",
    "pg_commit_ts",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_tblspc",
    "pg_summaries",
    "pg_log",
    "log",
    "PG_VERSION",
    "postgresql.conf",
    "postgresql.auto.conf",
    "pg_hba.conf",
    "pg_ident.conf",
    "backup_label",
    "tablespace_map",
    "backup_manifest",
    "recovery.signal",
    "standby.signal",
    "postmaster.opts",
];

/// Options pointing outside the data directory, which the user must review.
const DANGEROUS: [&str; 15] = [
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_crl_file",
    "ssl_crl_dir",
    "unix_socket_directory",
    "unix_socket_directories",
    "include",
    "include_dir",
    "include_if_exists",
];

const CONFIG_FILES: [&str; 2] = ["postgresql.conf", "postgresql.auto.conf"];

/// Restores a backup as [`RecoverOptions`] say (see the [module docs](self) for the
/// steps) and reports what was done.
///
/// # Errors
///
/// Before anything is written, with the destination untouched: [`Error::Refused`] for
/// a destination containing `:` or not absolute, a non-empty destination or tablespace
/// location without delta restore, an unknown tablespace name, a backup that is not
/// DONE or WAITING_FOR_WALS, a target action without a target (or one the backup's
/// PostgreSQL lacks); [`Error::Remote`] when the remote destination cannot be checked;
/// [`Error::Catalog`] for
/// an unknown backup or an unreachable target (before the backup's end, a timeline
/// that does not descend from the backup's, WAL missing from the archive). Later:
/// [`Error::Io`], [`Error::Transport`] (copy, ssh, rsync) and [`Error::Wal`] (a stored
/// WAL file that cannot be decoded).
pub async fn recover(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &RecoverOptions,
) -> Result<RecoverReport> {
    server.usable()?;
    let repo = BackupRepo::for_server(global, server);
    let archive = WalArchive::for_server(global, server);
    let prepared = prepare(&repo, &archive, server, options, Mode::Restore).await?;
    // Barman's recovery hooks: pre, pre retry, the restore, post retry, post.
    let catalogue = &prepared.catalogue;
    let id = prepared.backup.id;
    let mut hooks = Hooks::new(global, server, Hook::Recovery);
    hooks.with_backup(
        &repo,
        &prepared.backup,
        catalogue.previous(id).map(|b| b.id.to_string()),
        catalogue.next(id).map(|b| b.id.to_string()),
    );
    hooks.set(
        "BARMAN_DESTINATION_DIRECTORY",
        options.destination.display().to_string(),
    );
    let relocated: serde_json::Map<String, serde_json::Value> = options
        .tablespaces
        .iter()
        .map(|(n, l)| (n.clone(), l.display().to_string().into()))
        .collect();
    hooks.set(
        "BARMAN_TABLESPACES",
        if relocated.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(relocated).to_string()
        },
    );
    hooks.set(
        "BARMAN_REMOTE_COMMAND",
        options.remote_ssh_command.clone().unwrap_or_default(),
    );
    hooks.set(
        "BARMAN_RECOVER_OPTIONS",
        serde_json::json!({
            "target_tli": u32::from(prepared.plan.target_timeline).to_string(),
            "target": prepared.target_line,
            "exclusive": options.exclusive,
            "standby_mode": options.standby_mode,
            "get_wal": prepared.get_wal,
        })
        .to_string(),
    );
    hooks.run_async("pre").await;
    hooks.run_retry_async("pre").await?;
    let result = execute(global, server, &repo, &archive, options, prepared).await;
    let post = hooks.run_retry_async("post").await;
    hooks.run_async("post").await;
    let mut report = result?;
    post?;
    report.hook_warnings = hooks.warnings;
    Ok(report)
}

/// What a restore would do, decided as [`recover`] decides it (its step 1) with nothing
/// written: for an orchestrator that shows or checks a plan before running it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecoverPreview {
    /// The server.
    pub server: String,
    /// The backup that would be restored (`auto` and shortcuts resolved).
    pub backup: BackupInfo,
    /// Whether it would be a point-in-time recovery.
    pub pitr: bool,
    /// The timeline recovery would follow.
    pub target_timeline: TimelineId,
    /// The target as Barman prints it (`time: '...'`).
    pub target_description: Option<String>,
    /// Whether `restore_command` would fetch the WAL from Barman (get-wal mode).
    pub get_wal: bool,
    /// Whether it would be a delta restore (rsync over what the destination holds).
    pub delta: bool,
    /// Parallel copy jobs.
    pub jobs: usize,
    /// The WAL files recovery needs from the archive, history files first, then
    /// segments in replay order; a trailing `.partial` one is the newest streamed WAL.
    /// In get-wal mode PostgreSQL fetches them; otherwise they are delivered.
    pub wal_files: Vec<WalFileName>,
    /// Where the WAL files would be delivered.
    pub wal_destination: PathBuf,
    /// The tablespaces and where they would be restored.
    pub tablespaces: Vec<RestoredTablespace>,
    /// Catalogue entries that could not be read, and so were not considered.
    pub catalogue_warnings: Vec<String>,
}

/// Decides a restore as [`recover`] would, with every check it makes before its first
/// write (destination, tablespaces, target, timeline, WAL present), and writes nothing:
/// neither the destination nor the repository (what waits in `incoming/` is not
/// archived first, so it does not count; no backup lock is taken).
///
/// # Errors
///
/// Those of [`recover`] before its first write.
///
/// # Examples
///
/// ```no_run
/// use barman_core::config::{Config, MemorySource};
/// use barman_core::recover::{preview, RecoverOptions};
///
/// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\n", &MemorySource::default())?;
/// let options = RecoverOptions::new("auto", "/var/lib/postgresql/15/restored");
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let plan = rt.block_on(preview(config.global(), config.server("pg").unwrap(), &options))?;
/// println!("backup {}, timeline {}, {} WAL files", plan.backup.id, plan.target_timeline, plan.wal_files.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn preview(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &RecoverOptions,
) -> Result<RecoverPreview> {
    server.usable()?;
    let repo = BackupRepo::for_server(global, server);
    let archive = WalArchive::for_server(global, server);
    let p = prepare(&repo, &archive, server, options, Mode::Preview).await?;
    Ok(RecoverPreview {
        server: server.name().to_owned(),
        backup: p.backup,
        pitr: p.pitr,
        target_timeline: p.plan.target_timeline,
        target_description: p.target_line,
        get_wal: p.get_wal,
        delta: p.delta,
        jobs: p.jobs,
        wal_files: p.plan.wal_files,
        wal_destination: p.wal_dest,
        tablespaces: p.tablespaces,
        catalogue_warnings: p.catalogue_warnings,
    })
}

/// Whether [`prepare`] decides for a restore or only for a [`preview`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Archive what waits first, and lock the backup.
    Restore,
    /// Write nothing.
    Preview,
}

/// Everything decided before the first write.
struct Prepared {
    /// The shared lock on the backup, held until the restore is over (none for a
    /// preview).
    _lock: Option<crate::repo::RepoLock>,
    /// The readable catalogue the backup was chosen from.
    catalogue: Catalogue,
    catalogue_warnings: Vec<String>,
    backup: BackupInfo,
    plan: RecoveryPlan,
    pitr: bool,
    get_wal: bool,
    delta: bool,
    jobs: usize,
    ssh: Option<SshCommand>,
    tablespaces: Vec<RestoredTablespace>,
    wal_dest: PathBuf,
    target_line: Option<String>,
}

async fn prepare(
    repo: &BackupRepo,
    archive: &WalArchive,
    server: &ServerConfig,
    options: &RecoverOptions,
    mode: Mode,
) -> Result<Prepared> {
    let name = server.name();
    let dest = &options.destination;
    let dest_text = dest.to_string_lossy();
    if dest_text.contains(':') {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            format!(
                "the destination directory {dest_text} contains ':', which rsync would read as a host"
            ),
        ));
    }
    if !dest.is_absolute() {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            format!("the destination directory {dest_text} is not an absolute path"),
        ));
    }
    let recovery_options = &server.options().recovery_options;
    let in_options = |o: &str| recovery_options.iter().any(|v| v == o);
    let get_wal = options.get_wal.unwrap_or_else(|| in_options("get-wal"));
    let delta = options
        .delta_restore
        .unwrap_or_else(|| in_options("delta-restore"));
    let jobs = options
        .jobs
        .or_else(|| usize::try_from(server.options().parallel_jobs).ok())
        .unwrap_or(1)
        .max(1);

    // As Barman does, archive what waits in incoming/ and streaming/ first. Best
    // effort: another archive-wal may be running, and a file it cannot archive is
    // cron's to report.
    if mode == Mode::Restore {
        archive.archive_wal_best_effort().await;
    }
    // A damaged entry does not stop the restore of another backup (in a disaster,
    // every restorable backup counts), but it is named, and never chosen.
    // Reading the catalogue, xlog.db (a million lines on a busy server) and the
    // history files: off the runtime.
    let (repo_copy, archive_copy) = (repo.clone(), archive.clone());
    let (catalogue, unreadable, wals, histories) = crate::blocking(move || {
        let (catalogue, unreadable) = repo_copy.load_readable()?;
        let mut wals = archive_copy.wal_index()?;
        add_streaming_partials(&archive_copy, &mut wals)?;
        let histories = load_histories(&archive_copy, &wals)?;
        Ok::<_, Error>((catalogue, unreadable, wals, histories))
    })
    .await?;
    if let Some(u) = unreadable.iter().find(|u| u.name == options.backup_id) {
        return Err(Error::UnreadableBackup {
            server: name.to_owned(),
            path: u.path.clone(),
            reason: u.reason.clone(),
        });
    }
    let catalogue_warnings: Vec<String> = unreadable
        .iter()
        .map(|u| {
            format!(
                "backup catalogue entry {} cannot be read ({}): it was not considered",
                u.path.display(),
                u.reason
            )
        })
        .collect();
    let request = RecoveryRequest {
        target: options.target.clone(),
        timeline: options.target_tli,
        include_partial: true,
    };
    let id = if options.backup_id == "auto" {
        choose_backup(&catalogue, &request, &options.local_tz)?
    } else {
        catalogue.resolve(&options.backup_id)?.id
    };
    let being_deleted = || {
        Error::refused(
            Refusal::BackupState,
            format!(
                "backup {id} of server {name} is being deleted ({} exists): it cannot be restored",
                repo.delete_marker_path(id).display()
            ),
        )
    };
    if repo.has_delete_marker(id) {
        return Err(being_deleted());
    }
    restorable(&catalogue, id, name)?;
    // A shared lock on the backup for the whole restore: a delete (or retention) of it
    // waits or is refused meanwhile. Read again under the lock: a delete may have
    // started or finished in between.
    let lock = match mode {
        Mode::Preview => None,
        Mode::Restore => Some(repo.lock_backup_shared(id).await?.ok_or_else(|| {
            Error::refused(Refusal::Busy, format!(
                "backup {id} of server {name} is locked by another process (a delete or a check): try again later"
            ))
        })?),
    };
    if repo.has_delete_marker(id) {
        return Err(being_deleted());
    }
    let mut fresh = Catalogue::new(name);
    fresh.insert(repo.read_info(id)?);
    let backup = restorable(&fresh, id, name)?;
    let pitr = request.is_pitr();
    if options.target_action.is_some() && !pitr {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            "a target action needs a point-in-time recovery (a target or --target-tli)",
        ));
    }
    if let Some(a) = options.target_action
        && a != TargetAction::Pause
        && backup.version.is_some_and(|v| v < 90500)
    {
        return Err(Error::refused(
            Refusal::Unsupported,
            format!(
                "illegal target action '{a}' for this version of PostgreSQL (9.5 or later needed)"
            ),
        ));
    }
    if backup.version.is_some_and(|v| v < 100000)
        && matches!(options.target, Some(RecoveryTarget::Lsn(_)))
    {
        return Err(Error::refused(
            Refusal::Unsupported,
            "a target LSN needs PostgreSQL 10 or later".to_owned(),
        ));
    }
    let plan = plan_recovery(
        &catalogue,
        id,
        &request,
        &histories,
        &wals,
        &options.local_tz,
    )?;
    let data = repo.data_dir(id);
    if !data.is_dir() {
        return Err(Error::refused(
            Refusal::Damaged,
            format!(
                "backup {id} of server {name} has no data directory {}",
                data.display()
            ),
        ));
    }

    // Tablespaces: every relocation must name one of the backup's.
    let known = backup.tablespaces.clone().unwrap_or_default();
    for (ts, _) in &options.tablespaces {
        if !known.iter().any(|t| &t.name == ts) {
            let names: Vec<&str> = known.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "tablespace {ts:?} is not in backup {id} of server {name} (it has: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    let mut tablespaces = Vec::new();
    for t in &known {
        let relocated = options
            .tablespaces
            .iter()
            .rev()
            .find(|(n, _)| n == &t.name)
            .map(|(_, l)| l.clone());
        let location = relocated
            .clone()
            .unwrap_or_else(|| PathBuf::from(&t.location));
        if location.to_string_lossy().contains(':') || !location.is_absolute() {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "tablespace {} location {} must be an absolute path without ':'",
                    t.name,
                    location.display()
                ),
            ));
        }
        let src = repo.tablespace_dir(id, t.oid);
        let in_tar = tarball::backup_tars(&data)
            .is_ok_and(|tars| tars.iter().any(|tar| tar.oid == Some(t.oid)));
        if !src.is_dir() && !in_tar {
            return Err(Error::refused(
                Refusal::Damaged,
                format!(
                    "backup {id} of server {name} lacks the copy of tablespace {} ({})",
                    t.name,
                    src.display()
                ),
            ));
        }
        tablespaces.push(RestoredTablespace {
            name: t.name.clone(),
            oid: t.oid,
            location,
            relocated: relocated.is_some(),
        });
    }

    // A delta restore rewrites what it finds (rsync --delete): into another directory
    // than the backed-up cluster's, a tablespace left at its original location would
    // be that cluster's live tablespace.
    if delta
        && backup.pgdata.as_deref().map(Path::new) != Some(dest.as_path())
        && let Some(t) = tablespaces.iter().find(|t| !t.relocated)
    {
        return Err(Error::refused(
            Refusal::Conflict,
            format!(
                "--delta-restore into {} would rewrite tablespace {} at its original location {}, which belongs to the cluster of {}: relocate it with --tablespace {}:LOCATION",
                dest.display(),
                t.name,
                t.location.display(),
                backup.pgdata.as_deref().unwrap_or("the backed-up server"),
                t.name
            ),
        ));
    }
    let ssh = options
        .remote_ssh_command
        .as_deref()
        .map(SshCommand::new)
        .transpose()?;
    if !delta {
        let mut dirs = vec![dest.clone()];
        dirs.extend(tablespaces.iter().map(|t| t.location.clone()));
        for dir in dirs {
            let empty = match &ssh {
                None => local_dir_is_empty(&dir)?,
                Some(s) => remote_dir_is_empty(s, &dir).await?,
            };
            if !empty {
                return Err(Error::refused(
                    Refusal::Conflict,
                    format!(
                        "the destination directory {} is not empty (use --delta-restore to restore over it)",
                        dir.display()
                    ),
                ));
            }
        }
    }

    let wal_dest = if pitr && !options.standby_mode {
        options
            .staging_wal_directory
            .clone()
            .unwrap_or_else(|| dest.join("barman_wal"))
    } else {
        dest.join(wal_dir_name(&backup))
    };
    if wal_dest.to_string_lossy().contains(':') || !wal_dest.is_absolute() {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            format!(
                "the staging WAL directory {} must be an absolute path without ':'",
                wal_dest.display()
            ),
        ));
    }
    // The staging WAL directory is removed by `recovery_end_command` once recovery
    // ends: it must hold nothing but what this restore puts there.
    let staged_wal = pitr && !options.standby_mode && !get_wal;
    if staged_wal {
        let empty = match &ssh {
            None => local_dir_is_empty(&wal_dest)?,
            Some(s) => remote_dir_is_empty(s, &wal_dest).await?,
        };
        if !empty {
            return Err(Error::refused(
                Refusal::Conflict,
                format!(
                    "the staging WAL directory {} is not empty: recovery removes it when it ends, so it must be new or empty",
                    wal_dest.display()
                ),
            ));
        }
        if wal_dest == *dest || dest.starts_with(&wal_dest) {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "the staging WAL directory {} must not be the destination directory or contain it",
                    wal_dest.display()
                ),
            ));
        }
        // Removed whole at the end of recovery: never a part of the restored cluster
        // (`pg_wal`, `base`, ...) nor a tablespace.
        if let Ok(rel) = wal_dest.strip_prefix(dest)
            && let Some(first) = rel.components().next()
        {
            let first = first.as_os_str().to_string_lossy();
            if PGDATA_ENTRIES.contains(&first.as_ref()) || data.join(first.as_ref()).exists() {
                return Err(Error::refused(
                    Refusal::InvalidRequest,
                    format!(
                        "the staging WAL directory {} is part of the restored data directory ({first}): recovery removes it when it ends",
                        wal_dest.display()
                    ),
                ));
            }
        }
        for t in &tablespaces {
            if wal_dest.starts_with(&t.location) || t.location.starts_with(&wal_dest) {
                return Err(Error::refused(
                    Refusal::InvalidRequest,
                    format!(
                        "the staging WAL directory {} overlaps tablespace {} ({}): recovery removes it when it ends",
                        wal_dest.display(),
                        t.name,
                        t.location.display()
                    ),
                ));
            }
        }
    }
    let target_line = describe_target(options, &plan, &options.local_tz)?;
    Ok(Prepared {
        _lock: lock,
        catalogue,
        catalogue_warnings,
        backup,
        plan,
        pitr,
        get_wal,
        delta,
        jobs,
        ssh,
        tablespaces,
        wal_dest,
        target_line,
    })
}

fn restorable(catalogue: &Catalogue, id: BackupId, server: &str) -> Result<BackupInfo> {
    let backup = catalogue.get(id).cloned().ok_or_else(|| {
        Error::Catalog(barman_catalog::Error::UnknownBackup {
            wanted: id.to_string(),
            server: server.to_owned(),
        })
    })?;
    if !backup.status.is_copy_done() {
        return Err(Error::refused(
            Refusal::BackupState,
            format!(
                "backup {id} of server {server} is {}: only DONE or WAITING_FOR_WALS backups can be restored",
                backup.status
            ),
        ));
    }
    Ok(backup)
}

fn wal_dir_name(backup: &BackupInfo) -> &'static str {
    if backup.version.is_some_and(|v| v < 100000) {
        "pg_xlog"
    } else {
        "pg_wal"
    }
}

/// Barman's "Doing PITR. Recovery target ..." description.
fn describe_target(
    options: &RecoverOptions,
    plan: &RecoveryPlan,
    tz: &TimeZone,
) -> Result<Option<String>> {
    let mut parts = Vec::new();
    match &options.target {
        Some(RecoveryTarget::Time(t)) => parts.push(format!("time: '{}'", aware(t, tz)?)),
        Some(RecoveryTarget::Xid(x)) => parts.push(format!("xid: '{x}'")),
        Some(RecoveryTarget::Lsn(l)) => parts.push(format!("lsn: '{l}'")),
        Some(RecoveryTarget::Name(n)) => parts.push(format!("name: '{n}'")),
        Some(RecoveryTarget::Immediate) => parts.push("immediate: True".to_owned()),
        None => {}
    }
    if options.target_tli.is_some() {
        parts.push(format!("timeline: '{}'", plan.target_timeline));
    }
    Ok((!parts.is_empty()).then(|| parts.join(", ")))
}

/// `t` with an explicit offset: a naive time is read in `tz`, as Barman does.
fn aware(t: &PyDateTime, tz: &TimeZone) -> Result<PyDateTime> {
    if t.offset_seconds().is_some() {
        return Ok(*t);
    }
    let ts = t
        .to_timestamp(tz)
        .map_err(|e| Error::refused(Refusal::InvalidRequest, format!("target time {t}: {e}")))?;
    Ok(PyDateTime::from_timestamp(ts, tz.to_offset(ts).seconds()))
}

/// Adds the `.partial` segments of `streaming/` (the one `receive-wal` is writing) to
/// the index, so the plan can end with the newest streamed WAL: delivery finds them
/// there ([`WalArchive::wal_locations`] with `partial`).
fn add_streaming_partials(archive: &WalArchive, wals: &mut WalIndex) -> Result<()> {
    let dir = archive.streaming_dir();
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let Ok(name) = entry.file_name().to_string_lossy().parse::<WalFileName>() else {
            continue;
        };
        if matches!(name, WalFileName::Partial(_)) && !wals.contains(&name) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            wals.push(XlogDbEntry {
                name,
                size,
                time: 0.0,
                compression: None,
                encryption: None,
            });
        }
    }
    Ok(())
}

fn load_histories(
    archive: &WalArchive,
    wals: &WalIndex,
) -> Result<BTreeMap<TimelineId, TimelineHistory>> {
    let mut out = BTreeMap::new();
    for tli in wals.history_files() {
        let path = archive.path_of(&WalFileName::History(tli));
        let file = fs::File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
        let mut text = String::new();
        let wal_err = |source| Error::Wal {
            path: path.clone(),
            source,
        };
        Codec::decoder_detect(file)
            .map_err(wal_err)?
            .read_to_string(&mut text)
            .map_err(|e| Error::io("reading", &path, e))?;
        out.insert(tli, TimelineHistory::parse(tli, &text).map_err(wal_err)?);
    }
    Ok(out)
}

fn local_dir_is_empty(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(Error::io("listing", dir, e)),
    }
}

async fn remote_dir_is_empty(ssh: &SshCommand, dir: &Path) -> Result<bool> {
    let path = dir.to_string_lossy().into_owned();
    // 0: missing or empty; 4: not empty; 3: not a directory.
    let script =
        r#"[ -e "$1" ] || exit 0; [ -d "$1" ] || exit 3; [ -z "$(ls -A -- "$1")" ] || exit 4"#;
    let out = ssh
        .output(&["sh", "-c", script, "sh", path.as_str()], None)
        .await?;
    match out.code {
        Some(0) => Ok(true),
        Some(3 | 4) => Ok(false),
        code => Err(Error::Remote {
            what: format!(
                "checking {path} on {}: {}",
                ssh.destination(),
                out.stderr.trim()
            ),
            code: code.unwrap_or(255),
        }),
    }
}

/// A private temporary directory on this (the Barman) host, removed when dropped: in
/// `local_staging_path` when set (Barman's staging place on its own host), else in the
/// system temporary directory. Compressed backups unpack there before a remote or
/// delta restore, and the files of a remote restore are prepared there.
fn staging_dir(server: &ServerConfig, prefix: &str) -> Result<tempfile::TempDir> {
    let base = server
        .options()
        .local_staging_path
        .as_ref()
        .map_or_else(std::env::temp_dir, PathBuf::from);
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .map_err(|e| Error::io("creating a staging directory in", base, e))
}

async fn execute(
    global: &GlobalConfig,
    server: &ServerConfig,
    repo: &BackupRepo,
    archive: &WalArchive,
    options: &RecoverOptions,
    p: Prepared,
) -> Result<RecoverReport> {
    let id = p.backup.id;
    let dest = options.destination.clone();
    let data = repo.data_dir(id);
    let wal_dir = wal_dir_name(&p.backup);

    // 1. The data directory and the tablespaces. pg_wal is left out whole: in the
    // backup it may be a link to the original server's WAL directory (`initdb -X`),
    // and a restored pg_wal is always a real directory, made below.
    let mut excludes: Vec<String> = vec![
        wal_dir.to_owned(),
        "tablespace_map".into(),
        "postmaster.pid".into(),
        "postmaster.opts".into(),
        "backup_manifest".into(),
        "recovery.signal".into(),
        "standby.signal".into(),
    ];
    excludes.extend(p.tablespaces.iter().map(|t| format!("pg_tblspc/{}", t.oid)));
    // A staging WAL directory inside the destination gets only the planned WAL, never
    // what the backup may hold under that name.
    if let Ok(rel) = p.wal_dest.strip_prefix(&dest)
        && !rel.as_os_str().is_empty()
        && p.pitr
        && !options.standby_mode
    {
        excludes.push(rel.to_string_lossy().into_owned());
    }
    let mut bytes_copied = 0;
    let mut copy_warnings: Vec<String> = Vec::new();
    let mut copies = vec![(data.clone(), dest.clone(), excludes)];
    for t in &p.tablespaces {
        copies.push((
            repo.tablespace_dir(id, t.oid),
            t.location.clone(),
            Vec::new(),
        ));
    }
    let bwlimit = options.bwlimit_kib.or_else(|| {
        server
            .options()
            .bandwidth_limit
            .and_then(|b| u64::try_from(b).ok())
            .filter(|b| *b > 0)
    });
    // A tar-format (compressed) backup is unpacked: straight into place for a local
    // restore into an empty directory, else into a local staging directory that the
    // copy below then sends.
    let tars = tarball::backup_tars(&data)?;
    let mut _unpacked = None;
    // Where the configuration files of the backup are: in its data directory, or, for
    // a tar backup, where base.tar was unpacked (their originals are in the tar).
    let mut conf_source = data.clone();
    if tars.iter().any(|t| t.oid.is_none()) {
        let direct = p.ssh.is_none() && !p.delta;
        let root = if direct {
            None
        } else {
            Some(staging_dir(server, "barman-recover-unpack.")?)
        };
        conf_source = match &root {
            None => dest.clone(),
            Some(r) => r.path().join("data"),
        };
        let mut staged = Vec::new();
        for (src, final_dst, excl) in copies.drain(..) {
            let oid = if src == data {
                None
            } else {
                p.tablespaces
                    .iter()
                    .find(|t| repo.tablespace_dir(id, t.oid) == src)
                    .map(|t| t.oid)
            };
            let Some(tar) = tars.iter().find(|t| t.oid == oid) else {
                return Err(Error::refused(
                    Refusal::Damaged,
                    format!(
                        "backup {id}: no tar file for tablespace {} in {}",
                        oid.map_or_else(String::new, |o| o.to_string()),
                        data.display()
                    ),
                ));
            };
            let target = match &root {
                None => final_dst.clone(),
                Some(r) => r
                    .path()
                    .join(oid.map_or_else(|| "data".to_owned(), |o| o.to_string())),
            };
            let skipped = excl.clone();
            let skip = move |rel: &str| {
                skipped.iter().any(|e| match e.strip_suffix("/*") {
                    Some(dir) => rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/')),
                    None => rel
                        .strip_prefix(e.as_str())
                        .is_some_and(|r| r.is_empty() || r.starts_with('/')),
                })
            };
            // Unpacking reads and writes the whole backup: off the runtime.
            let (tar_path, into) = (tar.path.clone(), target.clone());
            let done =
                crate::blocking(move || tarball::unpack(&tar_path, &into, &skip, direct)).await?;
            bytes_copied += done.bytes;
            if root.is_some() {
                staged.push((target, final_dst, excl));
            }
        }
        copies = staged;
        _unpacked = root;
    }
    if let Some(ssh) = &p.ssh {
        let mut dirs: Vec<String> = vec![parent_of(&dest)];
        if !p.get_wal {
            dirs.push(parent_of(&p.wal_dest));
        }
        dirs.extend(p.tablespaces.iter().map(|t| parent_of(&t.location)));
        let mut argv = vec!["mkdir".to_owned(), "-p".into(), "--".into()];
        argv.extend(dirs);
        ssh.run(&argv).await?;
    }
    let retry = crate::retry::Retry::of(server, options.retry_times, options.retry_sleep);
    for (src, dst, excludes) in copies {
        // `tablespace_bandwidth_limit`: a tablespace's own limit, if it has one.
        let bwlimit = p
            .tablespaces
            .iter()
            .find(|t| t.location == dst)
            .map_or(bwlimit, |t| server.tablespace_bwlimit(&t.name, bwlimit));
        let mut attempt = 0;
        loop {
            let copied = copy_tree(server, &p, &src, &dst, &excludes, bwlimit).await;
            match copied {
                Ok(bytes) => {
                    bytes_copied += bytes;
                    break;
                }
                // `--retry-times`: tried again after `--retry-sleep` seconds, over
                // what the failed attempt left.
                Err(e) if attempt < retry.times => {
                    attempt += 1;
                    copy_warnings.push(format!(
                        "Failure copying {} (attempt {attempt}): {}; retried after {} seconds",
                        src.display(),
                        crate::error::first_line(&e),
                        retry.sleep.as_secs()
                    ));
                    tokio::time::sleep(retry.sleep).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    // 2. The small files: written in place locally, staged then sent when remote.
    let staging = match &p.ssh {
        Some(_) => Some(staging_dir(server, "barman-recover.")?),
        None => None,
    };
    let overlay = match &staging {
        Some(s) => s.path().join("dest"),
        None => dest.clone(),
    };
    let mut synced = Synced::default();
    create_dir(&overlay)?;
    synced.dir_and_parent(&overlay);
    // A delta restore may find pg_wal as a link (to another server's WAL): it is
    // replaced by a real directory, never written through.
    real_dir(&overlay.join(wal_dir))?;
    create_dir(&overlay.join(wal_dir).join("archive_status"))?;
    synced.dir_and_parent(&overlay.join(wal_dir).join("archive_status"));

    // WAL files.
    let mut delivered = Vec::new();
    if !p.get_wal {
        let local_wal_dir = match &staging {
            Some(s) => s.path().join("wal"),
            None => p.wal_dest.clone(),
        };
        if local_wal_dir.starts_with(&overlay) {
            // Inside the destination (a delta restore may find a link there): a real
            // directory, never followed.
            real_dir(&local_wal_dir)?;
        } else {
            create_dir(&local_wal_dir)?;
        }
        synced.dir_and_parent(&local_wal_dir);
        let done = !p.pitr || options.standby_mode;
        deliver_wal(
            archive.clone(),
            p.plan.wal_files.clone(),
            local_wal_dir.clone(),
            p.jobs,
            done,
        )
        .await?;
        create_dir(&local_wal_dir.join("archive_status"))?;
        synced.dir_and_parent(&local_wal_dir.join("archive_status"));
        if let Some(ssh) = &p.ssh {
            let mut rsync = Rsync::new();
            if let Some(k) = bwlimit {
                rsync = rsync.bwlimit_kib(k);
            }
            rsync
                .copy_tree(
                    &RsyncPath::Local(local_wal_dir),
                    &RsyncPath::Remote(ssh.clone(), p.wal_dest.to_string_lossy().into_owned()),
                )
                .await?;
        }
        delivered = p.plan.wal_files.clone();
    }

    // Tablespace links. `tablespace_map` was left out of the copy: PostgreSQL remakes
    // the links from it when it starts, and it names the original locations, so the
    // restored cluster would write into the original tablespaces (as Barman, the links
    // alone say where each tablespace is).
    if !p.tablespaces.is_empty() {
        let links = overlay.join("pg_tblspc");
        real_dir(&links)?;
        for t in &p.tablespaces {
            let link = links.join(t.oid.to_string());
            match fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("removing", &link, e)),
            }
            std::os::unix::fs::symlink(&t.location, &link)
                .map_err(|e| Error::io("linking", &link, e))?;
        }
        synced.dir(&links);
    }

    // backup_manifest.<id> and .barman-recover.info.
    let manifest = data.join("backup_manifest");
    if manifest.is_file() {
        let to = overlay.join(format!("backup_manifest.{id}"));
        let bytes = fs::read(&manifest).map_err(|e| Error::io("reading", &manifest, e))?;
        write_persist(&to, &bytes)?;
    }
    write_persist(
        &overlay.join(".barman-recover.info"),
        p.backup.to_string().as_bytes(),
    )?;

    // Recovery settings.
    let version = p.backup.version.unwrap_or(0);
    let mut lines = Vec::new();
    let needs_conf = p.pitr || p.get_wal || options.standby_mode;
    if needs_conf {
        lines = recovery_lines(global, server, options, &p)?;
    }
    let mut signal_file = None;
    let mut recovery_configuration_file = None;
    let mut conf_files: Vec<String> = Vec::new();
    let mut missing_files = Vec::new();
    for f in CONFIG_FILES
        .iter()
        .chain(["pg_hba.conf", "pg_ident.conf"].iter())
    {
        if conf_source.join(f).is_file() {
            if CONFIG_FILES.contains(f) {
                conf_files.push((*f).to_owned());
            }
        } else {
            missing_files.push((*f).to_owned());
        }
    }
    if version >= 120000 {
        let name = options
            .recovery_conf_filename
            .clone()
            .unwrap_or_else(|| "postgresql.auto.conf".to_owned());
        if !conf_files.contains(&name) {
            conf_files.push(name.clone());
        }
        recovery_configuration_file = Some(name);
        if needs_conf {
            let signal = if options.standby_mode {
                "standby.signal"
            } else {
                "recovery.signal"
            };
            write_persist(&overlay.join(signal), b"")?;
            signal_file = Some(signal.to_owned());
        }
    } else if needs_conf {
        if options.standby_mode {
            lines.push("standby_mode = 'on'".to_owned());
        }
        let mut text = lines.join("\n");
        text.push('\n');
        write_persist(&overlay.join("recovery.conf"), text.as_bytes())?;
        recovery_configuration_file = Some("recovery.conf".to_owned());
        lines.clear();
    }
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for f in &conf_files {
        let original = match fs::read(conf_source.join(f)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("reading", conf_source.join(f), e)),
        };
        let append = (recovery_configuration_file.as_deref() == Some(f.as_str()) && needs_conf)
            .then_some(lines.as_slice());
        let text = String::from_utf8_lossy(&original);
        let (mangled, mut changed) = mangle(f, &text, append);
        changes.append(&mut changed);
        warnings.extend(dangerous(f, &text));
        write_persist(&overlay.join(format!("{f}.origin")), &original)?;
        write_persist(&overlay.join(f), mangled.as_bytes())?;
        copy_mode(&conf_source.join(f), &overlay.join(f));
    }

    // Send the staged files.
    if let (Some(ssh), Some(_)) = (&p.ssh, &staging) {
        Rsync::new()
            .copy_tree(
                &RsyncPath::Local(overlay.clone()),
                &RsyncPath::Remote(ssh.clone(), dest.to_string_lossy().into_owned()),
            )
            .await?;
        // Durable before anyone starts PostgreSQL on it: the file systems holding the
        // destination, the WAL and the tablespaces are flushed (`sync -f`, or a plain
        // `sync` where coreutils lacks it).
        let mut argv: Vec<String> = ["sh", "-c", SYNC_FILE_SYSTEMS, "sh"]
            .map(str::to_owned)
            .to_vec();
        argv.push(dest.to_string_lossy().into_owned());
        if !p.get_wal {
            argv.push(p.wal_dest.to_string_lossy().into_owned());
        }
        argv.extend(
            p.tablespaces
                .iter()
                .map(|t| t.location.to_string_lossy().into_owned()),
        );
        ssh.run(&argv).await?;
    } else {
        // Every file above was written durably (temp file, fsync, rename); the
        // directories that gained entries are synced now, so that none of it (above
        // all `archive_command = false`) can be lost to a power cut.
        synced.dir(&overlay);
        synced.sync_all()?;
        if p.delta {
            // rsync does not fsync what it writes: the file systems of the destination
            // and the tablespaces are flushed.
            let mut paths = vec![dest.clone()];
            paths.extend(p.tablespaces.iter().map(|t| t.location.clone()));
            let status = tokio::process::Command::new("sh")
                .args(["-c", SYNC_FILE_SYSTEMS, "sh"])
                .args(&paths)
                .status()
                .await
                .map_err(|e| Error::io("running sync for", dest.clone(), e))?;
            if !status.success() {
                return Err(Error::Program {
                    program: "sync".into(),
                    status: status.to_string(),
                    detail: format!("flushing {}", dest.display()),
                });
            }
        }
    }

    Ok(RecoverReport {
        server: server.name().to_owned(),
        backup_id: id,
        destination: dest,
        remote_host: p.ssh.as_ref().map(|s| s.destination().to_owned()),
        pitr: p.pitr,
        target_timeline: p.plan.target_timeline,
        target_description: p.target_line,
        target_time_assumed_local: matches!(
            &options.target,
            Some(RecoveryTarget::Time(t)) if t.offset_seconds().is_none()
        ),
        get_wal: p.get_wal,
        wal_destination: (!p.get_wal).then(|| p.wal_dest.clone()),
        wal_files: delivered,
        recovery_configuration_file,
        signal_file,
        tablespaces: p.tablespaces,
        changes,
        warnings,
        missing_files,
        bytes_copied,
        hook_warnings: Vec::new(),
        catalogue_warnings: p.catalogue_warnings,
        copy_warnings,
    })
}

/// A shell script that flushes the file systems holding its arguments (`sync -f`), or
/// all of them where coreutils lacks `-f`: run as `sh -c SCRIPT sh PATH...`.
const SYNC_FILE_SYSTEMS: &str = r#"sync -f -- "$@" 2>/dev/null || sync"#;

/// Copies the tree `src` into `dst` as the restore needs: the parallel local copier
/// (fsynced) into an empty local destination, else rsync (over ssh when remote, with
/// checksums and deletions for a delta restore). Returns the bytes the local copier
/// copied (0 for rsync).
async fn copy_tree(
    server: &ServerConfig,
    p: &Prepared,
    src: &Path,
    dst: &Path,
    excludes: &[String],
    bwlimit: Option<u64>,
) -> Result<u64> {
    if p.ssh.is_none() && !p.delta {
        // Durable before PostgreSQL is started on it, as pgBackRest's restore.
        let mut copier = LocalCopier::new().workers(p.jobs).fsync(true);
        if let Some(limit) = bwlimit.and_then(barman_transport::RateLimiter::from_kib_per_second) {
            copier = copier.rate_limit(limit);
        }
        for e in excludes {
            copier = copier.exclude(e.clone());
        }
        return Ok(copier.copy_tree(src, dst).await?.bytes_copied);
    }
    let mut rsync = Rsync::new().workers(p.jobs);
    for e in excludes {
        rsync = rsync.exclude(format!("/{e}"));
    }
    if let Some(k) = bwlimit {
        rsync = rsync.bwlimit_kib(k);
    }
    if p.ssh.is_some() && server.options().network_compression {
        rsync = rsync.compress(true);
    }
    if p.delta {
        rsync = rsync
            .arg("--checksum")
            .arg("--delete")
            .arg("--delete-excluded");
    }
    let to = match &p.ssh {
        Some(s) => RsyncPath::Remote(s.clone(), dst.to_string_lossy().into_owned()),
        None => RsyncPath::Local(dst.to_owned()),
    };
    rsync
        .copy_tree(&RsyncPath::Local(src.to_owned()), &to)
        .await?;
    Ok(0)
}

fn parent_of(p: &Path) -> String {
    p.parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .into_owned()
}

/// The lines appended to the recovery configuration file (Barman's
/// `_generate_recovery_conf`).
fn recovery_lines(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &RecoverOptions,
    p: &Prepared,
) -> Result<Vec<String>> {
    let name = command_word(server.name())?;
    let mut lines = Vec::new();
    if p.get_wal {
        let partial = if options.standby_mode { "" } else { " -P" };
        if p.ssh.is_some() {
            lines.push(
                "# The 'barman-wal-restore' command is provided in the 'barman-cli' package"
                    .to_owned(),
            );
            let mut cmd = format!(
                "barman-wal-restore{partial} -U {} {} {name} %f %p",
                command_word(&global.barman_user)?,
                command_word(&options.barman_host)?
            );
            let jobs = server.options().parallel_jobs;
            if jobs > 1 {
                cmd.push_str(&format!(" -p {jobs}"));
            }
            lines.push(format!("restore_command = {}", conf_quote(&cmd)));
        } else {
            lines.push(format!(
                "# The 'barman get-wal' command must run as '{}' user",
                global.barman_user.replace(['\n', '\r'], " ")
            ));
            let barman = options
                .barman_command
                .iter()
                .map(|w| command_word(w))
                .collect::<Result<Vec<_>>>()?
                .join(" ");
            let cmd = format!("{barman} get-wal{partial} {name} %f > %p");
            lines.push(format!("restore_command = {}", conf_quote(&cmd)));
        }
    } else if !options.standby_mode {
        // PostgreSQL runs both commands in the data directory: the default staging
        // directory (`barman_wal` inside it) is named relative to it, any other one
        // by its absolute path; either way quoted for the shell.
        let dir = match p.wal_dest.strip_prefix(&options.destination) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel,
            _ => p.wal_dest.as_path(),
        };
        let dir = command_word(&dir.to_string_lossy())?;
        lines.push(format!(
            "restore_command = {}",
            conf_quote(&format!("cp {dir}/%f %p"))
        ));
        lines.push(format!(
            "recovery_end_command = {}",
            conf_quote(&format!("rm -fr -- {dir}"))
        ));
    }
    let inclusive_target = matches!(
        options.target,
        Some(RecoveryTarget::Time(_) | RecoveryTarget::Xid(_) | RecoveryTarget::Lsn(_))
    );
    match &options.target {
        Some(RecoveryTarget::Time(t)) => lines.push(format!(
            "recovery_target_time = '{}'",
            aware(t, &options.local_tz)?
        )),
        Some(RecoveryTarget::Xid(x)) => lines.push(format!("recovery_target_xid = '{x}'")),
        Some(RecoveryTarget::Lsn(l)) => lines.push(format!("recovery_target_lsn = '{l}'")),
        Some(RecoveryTarget::Name(n)) => {
            lines.push(format!("recovery_target_name = {}", conf_quote(n)))
        }
        Some(RecoveryTarget::Immediate) => lines.push("recovery_target = 'immediate'".to_owned()),
        None => {}
    }
    if inclusive_target && options.exclusive {
        lines.push("recovery_target_inclusive = 'False'".to_owned());
    }
    if options.target_tli.is_some() {
        lines.push(format!(
            "recovery_target_timeline = {}",
            p.plan.target_timeline
        ));
    }
    if let Some(a) = options.target_action {
        // Other actions were refused before anything was written.
        if p.backup.version.is_some_and(|v| v < 90500) {
            lines.push("pause_at_recovery_target = 'on'".to_owned());
        } else {
            lines.push(format!("recovery_target_action = '{a}'"));
        }
    }
    Ok(lines)
}

/// `s` as a quoted value of a PostgreSQL configuration file: single quotes doubled,
/// backslashes escaped (the parser reads `\` escapes in quoted values), line breaks
/// as `\n`/`\r` (a value is one line).
fn conf_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// One word of a command PostgreSQL runs (`restore_command`, `recovery_end_command`):
/// quoted for the shell, and with `%` doubled so that PostgreSQL's `%f`/`%p`/`%r`
/// substitution leaves it alone.
///
/// # Errors
///
/// [`Error::Refused`] for a word with a NUL byte, which no shell word can hold.
fn command_word(word: &str) -> Result<String> {
    let quoted = shlex::try_quote(word).map_err(|_| {
        Error::refused(
            Refusal::InvalidRequest,
            format!("{word:?} cannot be written into a command: it holds a NUL byte"),
        )
    })?;
    Ok(quoted.replace('%', "%%"))
}

/// The option a configuration line sets (Barman's `^\s*([^\s=]+)\s*=?\s*(.*)$`).
fn setting(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let end = t.find(|c: char| c.is_whitespace() || c == '=')?;
    if end == 0 {
        return None;
    }
    let key = &t[..end];
    let rest = t[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((key, rest))
}

/// Comments out the options recovery must not keep and appends `append`; returns the
/// new text and the changes (Barman's `ConfigurationFileMangeler`).
fn mangle(file: &str, text: &str, append: Option<&[String]>) -> (String, Vec<ConfigLine>) {
    let mut out = String::with_capacity(text.len() + 256);
    let mut changes = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if let Some((key, _)) = setting(line.trim_end_matches(['\n', '\r']))
            && let Some((_, value)) = MANGLED.iter().find(|(k, _)| *k == key)
        {
            out.push_str("#BARMAN#");
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push('\n');
            }
            if let Some(v) = value {
                out.push_str(&format!("{key} = {v}\n"));
            }
            changes.push(ConfigLine {
                file: file.to_owned(),
                line: n,
                key: key.to_owned(),
                value: value.map(str::to_owned),
            });
            continue;
        }
        out.push_str(line);
    }
    if let Some(lines) = append
        && !lines.is_empty()
    {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&lines.join("\n"));
        out.push('\n');
    }
    (out, changes)
}

/// The settings of `text` that point outside the data directory.
fn dangerous(file: &str, text: &str) -> Vec<ConfigLine> {
    text.lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let (key, value) = setting(line)?;
            DANGEROUS.contains(&key).then(|| ConfigLine {
                file: file.to_owned(),
                line: n,
                key: key.to_owned(),
                value: Some(value.to_owned()),
            })
        })
        .collect()
}

/// Delivers `files` decompressed into `dir` with `jobs` threads; a `.partial` segment
/// goes under its segment name. With `done`, an `archive_status/<name>.done` is written
/// for each.
async fn deliver_wal(
    archive: WalArchive,
    files: Vec<WalFileName>,
    dir: PathBuf,
    jobs: usize,
    done: bool,
) -> Result<()> {
    crate::blocking(move || {
        if done {
            create_dir(&dir.join("archive_status"))?;
        }
        let queue = Arc::new(Mutex::new(files));
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..jobs)
                .map(|_| {
                    let queue = queue.clone();
                    let (archive, dir) = (&archive, &dir);
                    s.spawn(move || -> Result<()> {
                        loop {
                            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                            let Some(file) = next else { return Ok(()) };
                            let (name, partial) = match file {
                                WalFileName::Partial(seg) => (seg.to_string(), true),
                                other => (other.to_string(), false),
                            };
                            let opts = GetWalOptions {
                                partial,
                                sync: true,
                                ..GetWalOptions::default()
                            };
                            archive.get_wal_to_dir(&name, &opts, dir)?;
                            if done {
                                write_persist(
                                    &dir.join("archive_status").join(format!("{name}.done")),
                                    b"",
                                )?;
                            }
                        }
                    })
                })
                .collect();
            let mut result = Ok(());
            for w in workers {
                let r = w.join().unwrap_or_else(|_| {
                    Err(Error::io(
                        "delivering WAL into",
                        dir.clone(),
                        io::Error::other("a worker panicked"),
                    ))
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    })
    .await
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("creating", dir, e))
}

/// Makes `dir` a real directory: a link there (a delta restore over a data directory
/// whose pg_wal pointed elsewhere) is removed, never followed.
fn real_dir(dir: &Path) -> Result<()> {
    if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(dir).map_err(|e| Error::io("removing the link", dir, e))?;
    }
    create_dir(dir)
}

/// The directories of a local restore that gained entries, synced once at the end.
#[derive(Default)]
struct Synced {
    dirs: Vec<PathBuf>,
}

impl Synced {
    fn dir(&mut self, d: &Path) {
        self.dirs.push(d.to_owned());
    }

    /// `d` and its parent (where `d`'s own entry is).
    fn dir_and_parent(&mut self, d: &Path) {
        self.dir(d);
        if let Some(up) = d.parent() {
            self.dir(up);
        }
    }

    fn sync_all(mut self) -> Result<()> {
        self.dirs.sort();
        self.dirs.dedup();
        for d in &self.dirs {
            match crate::fsutil::sync_dir(d) {
                Ok(()) => {}
                // A parent we may not read (the destination's, owned by someone else):
                // its entry for the destination was made by whoever made it.
                Err(e) if e.source.kind() == io::ErrorKind::PermissionDenied => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn copy_mode(from: &Path, to: &Path) {
    if let Ok(m) = fs::metadata(from) {
        let _ = fs::set_permissions(to, m.permissions());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    fn recover_future_is_send(g: &GlobalConfig, s: &ServerConfig, o: &RecoverOptions) {
        fn send<T: Send>(_: &T) {}
        send(&recover(g, s, o));
    }

    #[test]
    fn mangle_comments_out_archive_command_and_old_targets() {
        let text = "port = 5432\narchive_command = 'cp %p /x'\n  recovery_target_name='a'\n# archive_command = 'no'";
        let lines = vec!["restore_command = 'cp /w/%f %p'".to_owned()];
        let (out, changes) = mangle("postgresql.auto.conf", text, Some(&lines));
        assert_eq!(
            out,
            "port = 5432\n#BARMAN#archive_command = 'cp %p /x'\narchive_command = false\n\
             #BARMAN#  recovery_target_name='a'\n# archive_command = 'no'\n\
             restore_command = 'cp /w/%f %p'\n"
        );
        let keys: Vec<(usize, &str)> = changes.iter().map(|c| (c.line, c.key.as_str())).collect();
        assert_eq!(keys, [(1, "archive_command"), (2, "recovery_target_name")]);
    }

    /// Trust, point 3: paths went into `restore_command` and `recovery_end_command`
    /// unquoted (a space split them, `$(...)` ran), and `conf_escape` left `\` alone.
    #[test]
    fn paths_are_quoted_for_the_shell_postgresql_and_its_configuration() {
        assert_eq!(conf_quote("plain"), "'plain'");
        assert_eq!(conf_quote("it's"), "'it''s'");
        assert_eq!(conf_quote(r"a\b"), r"'a\\b'");
        assert_eq!(conf_quote("a\nb"), r"'a\nb'");
        assert_eq!(command_word("barman_wal").unwrap(), "barman_wal");
        // One word for the shell, whatever it holds; `%` doubled for PostgreSQL.
        for odd in [
            "/srv/my wal",
            "/srv/it's",
            "/srv/$(touch x)",
            "/srv/`id`",
            "/srv/100%f",
            "/srv/a;b",
        ] {
            let word = command_word(odd).unwrap();
            let unpercented = word.replace("%%", "%");
            assert_eq!(
                shlex::split(&unpercented).unwrap(),
                [odd],
                "{odd} -> {word}"
            );
        }
        assert!(command_word("a\0b").is_err());
        // The whole value, as PostgreSQL's configuration parser reads it back, then
        // the shell: the same words.
        let odd = "/srv/it's a $(x) \\ dir";
        let value = conf_quote(&format!("rm -fr -- {}", command_word(odd).unwrap()));
        let inner = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap()
            .replace("''", "'")
            .replace("\\\\", "\\");
        assert_eq!(shlex::split(&inner).unwrap(), ["rm", "-fr", "--", odd]);
    }

    #[test]
    fn settings_outside_pgdata_are_reported() {
        let w = dangerous("postgresql.conf", "hba_file = '/etc/pg/hba'\nport=1\n");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].key, "hba_file");
        assert_eq!(w[0].value.as_deref(), Some("'/etc/pg/hba'"));
    }

    #[test]
    fn naive_target_time_gets_the_local_offset() {
        let t: PyDateTime = "2026-11-25 10:00:00".parse().unwrap();
        let tz = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(
            aware(&t, &tz).unwrap().to_string(),
            "2026-11-25 10:00:00+02:00"
        );
    }
}
