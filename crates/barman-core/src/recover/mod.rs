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
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use barman_catalog::{
    BackupId, BackupInfo, Catalogue, RecoveryPlan, RecoveryRequest, WalIndex, XlogDbEntry,
    choose_backup, plan_recovery,
};
use barman_transport::{LocalCopier, Rsync, RsyncPath, SshCommand};
use barman_wal::{Lsn, TimelineHistory, TimelineId, WalFileName};
use jiff::tz::TimeZone;

pub use barman_catalog::{PyDateTime, RecoveryTarget, TargetTimeline};

use crate::archive::{GetWalOptions, WalArchive};
use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::write_persist;
use crate::hooks::{Hook, Hooks};
use crate::repo::BackupRepo;
use crate::tarball;
use crate::{Error, Refusal, Result};

mod copy;
mod prepare;
mod settings;
mod target;
mod wal;

use copy::*;
use prepare::*;
use settings::*;
pub use target::{TargetAction, Targets, parse_target_tli};
use target::{aware, describe_target};
use wal::*;

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
    /// `--network-compression`/`--no-network-compression`: compress what a remote
    /// restore sends; `None` follows `network_compression`.
    pub network_compression: Option<bool>,
    /// `--restore-command`: the `restore_command` written in get-wal mode instead of
    /// Barman's (ignored, with a warning, without get-wal, as in Barman).
    pub restore_command: Option<String>,
    /// `--recovery-option-port`: the SSH port `barman-wal-restore` uses to reach this
    /// host (`--port`), in get-wal mode of a remote restore.
    pub recovery_option_port: Option<u16>,
    /// `--partial-wal`: copy the `.partial` WAL files too. barman-rs always does (its
    /// recovery plan ends with the newest streamed WAL); accepted for Barman's scripts,
    /// with Barman's warnings where it has no effect.
    pub partial_wal: bool,
    /// `--local-staging-path` (or `--staging-path` with `--staging-location local`):
    /// where compressed backups are unpacked on this host; `None` follows
    /// `local_staging_path`.
    pub local_staging_path: Option<PathBuf>,
    /// `--jobs-start-batch-size` (`parallel_jobs_start_batch_size`): rsync jobs started
    /// at once over ssh (a remote restore).
    pub jobs_start_batch_size: Option<usize>,
    /// `--jobs-start-batch-period` (`parallel_jobs_start_batch_period`): seconds between
    /// two batches.
    pub jobs_start_batch_period: Option<u64>,
    /// Every tablespace not relocated by [`tablespaces`](Self::tablespaces) goes into
    /// `<this>/<oid>` (a sandbox: never into its production location).
    pub(crate) tablespaces_under: Option<PathBuf>,
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
            network_compression: None,
            restore_command: None,
            recovery_option_port: None,
            partial_wal: false,
            local_staging_path: None,
            jobs_start_batch_size: None,
            jobs_start_batch_period: None,
            tablespaces_under: None,
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
    /// Options given that had no effect on this restore (as Barman warns).
    pub option_warnings: Vec<String>,
}

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

/// [`recover`] for a sandbox ([`crate::sandbox`]): no hook scripts, and nothing written
/// into the repository (what waits in `incoming/` and `streaming/` is not archived
/// first: the WAL a restore test uses is what the archive holds).
#[cfg(feature = "postgres")]
pub(crate) async fn recover_for_sandbox(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &RecoverOptions,
) -> Result<RecoverReport> {
    server.usable()?;
    let repo = BackupRepo::for_server(global, server);
    let archive = WalArchive::for_server(global, server);
    let prepared = prepare(&repo, &archive, server, options, Mode::Sandbox).await?;
    execute(global, server, &repo, &archive, options, prepared).await
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
