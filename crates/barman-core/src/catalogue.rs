//! The catalogue operations of one server: `list-backups`, `show-backup`, `list-files`,
//! `delete`, `keep`, `check-backup`, and the catalogue part of `cron` (stale backups,
//! WAITING_FOR_WALS re-checks, retention).
//!
//! [`ServerBackups`] joins the two halves of a server's repository: the backups
//! ([`BackupRepo`]) and the WAL archive ([`WalArchive`], whose xlog.db gives the WAL
//! sizes and the check-backup decision). Decisions come from `barman-catalog`
//! ([`RetentionPolicy::evaluate`], [`WalCleanup`], [`check_backup`]); this module reads
//! and writes the files, under Barman's locks, in an order that survives a crash.
//!
//! # Design notes
//!
//! - **Deleting is restartable.** `meta/<id>-delete_this` is written (durably) before
//!   anything is removed and `backup.info` is removed last, as Barman does, so a delete
//!   cut short leaves a backup that the next `cron` finds marked and deletes again.
//! - **xlog.db before the WAL files.** WAL cleanup rewrites xlog.db (temporary file,
//!   fsync, rename, fsync of the directory) under the xlog.db lock *before* removing the
//!   files it dropped: a crash in between leaves files no catalogue lists (which
//!   `rebuild-xlogdb` would list again), never a catalogue listing files that are gone.
//! - **No clock, no time zone lookup.** Operations that depend on the time (retention
//!   with a recovery window, timestamps of naive `end_time` values) take `now` and the
//!   local time zone as parameters; the command line passes the real ones.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use barman_catalog::{
    BackupId, BackupInfo, BackupStatus, Catalogue, CheckOutcome, KeepTarget, RetentionPolicy,
    RetentionReport, RetentionStatus, WalCleanup, WalIndex, XlogDbEntry, check_backup,
};
use barman_wal::{SegmentName, WalFileName};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::archive::WalArchive;
use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::{self, TempFile};
use crate::hooks::{Hook, Hooks};
use crate::repo::DELETE_MARKER;
use crate::repo::{BackupRepo, RepoLock, UnreadableBackup};
use crate::{Error, Refusal, Result};

/// The catalogue as `check` and `status` see it ([`ServerBackups::summary`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatalogueSummary {
    /// FAILED backups.
    pub failed: usize,
    /// DONE backups.
    pub done: usize,
    /// DONE non-incremental backups.
    pub done_full: usize,
    /// A backup is WAITING_FOR_WALS.
    pub waiting_for_wals: bool,
    /// The oldest restorable (DONE or WAITING_FOR_WALS) backup.
    pub first: Option<BackupId>,
    /// The newest restorable backup.
    pub last: Option<LastBackup>,
    /// The catalogue entries that cannot be read.
    pub unreadable: Vec<UnreadableBackup>,
}

/// The newest restorable backup, for the age, size and WAL checks.
#[derive(Clone, Debug, PartialEq)]
pub struct LastBackup {
    /// Its id.
    pub id: BackupId,
    /// When it ended.
    pub end_time: Option<Timestamp>,
    /// Its size (`size` of backup.info).
    pub size: u64,
    /// The WAL archived after its `end_wal`, in bytes as stored.
    pub wal_until_next_size: u64,
    /// The archiving time (seconds since the epoch) of the last WAL file it counts.
    pub last_wal_time: Option<f64>,
}

/// The WAL statistics of one backup, from xlog.db (Barman's `get_wal_info`).
///
/// The files counted are the complete segments from the backup's `begin_wal` on, on its
/// timeline or an older one, up to the `end_wal` of the next restorable backup: those up
/// to the backup's own `end_wal` are the WAL it needs (`wal_num`, `wal_size`), the
/// others the WAL archived after it (`until_next_*`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WalStats {
    /// Files from `begin_wal` to `end_wal`.
    pub wal_num: u64,
    /// Their size as stored, in bytes.
    pub wal_size: u64,
    /// Files after `end_wal`, until the next backup.
    pub until_next_num: u64,
    /// Their size as stored, in bytes.
    pub until_next_size: u64,
    /// `begin_wal` and its archiving time, when archived.
    pub first: Option<(WalFileName, f64)>,
    /// The last file counted and its archiving time.
    pub last: Option<(WalFileName, f64)>,
    /// The backup's WAL segment size in bytes.
    pub segment_size: u64,
}

impl WalStats {
    fn complete(&self) -> bool {
        self.first.is_some() && self.last.is_some()
    }

    /// WAL files archived per second between `begin_wal` and the last file (0 when
    /// unknown).
    ///
    /// ```
    /// let stats = barman_core::catalogue::WalStats::default();
    /// assert_eq!(stats.wals_per_second(), 0.0);
    /// ```
    pub fn wals_per_second(&self) -> f64 {
        match (&self.first, &self.last) {
            (Some((_, first)), Some((_, last))) if last - first > 0.0 => {
                (self.wal_num + self.until_next_num) as f64 / (last - first)
            }
            _ => 0.0,
        }
    }

    /// How much smaller than raw segments the backup's own WAL is stored (0 when
    /// unknown).
    ///
    /// ```
    /// let stats = barman_core::catalogue::WalStats::default();
    /// assert_eq!(stats.compression_ratio(), 0.0);
    /// ```
    pub fn compression_ratio(&self) -> f64 {
        self.ratio(self.wal_num, self.wal_size)
    }

    /// How much smaller than raw segments the WAL after the backup is stored (0 when
    /// unknown).
    ///
    /// ```
    /// let stats = barman_core::catalogue::WalStats::default();
    /// assert_eq!(stats.until_next_compression_ratio(), 0.0);
    /// ```
    pub fn until_next_compression_ratio(&self) -> f64 {
        self.ratio(self.until_next_num, self.until_next_size)
    }

    fn ratio(&self, num: u64, size: u64) -> f64 {
        let theoretical = num as f64 * self.segment_size as f64;
        if !self.complete() || theoretical == 0.0 {
            return 0.0;
        }
        1.0 - size as f64 / theoretical
    }
}

/// One line of `list-backups`.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupSummary {
    /// The backup's metadata.
    pub info: BackupInfo,
    /// The backup's size plus the WAL it needs (begin..end), in bytes.
    pub size: u64,
    /// The WAL archived after the backup until the next one, in bytes.
    pub wal_size: u64,
    /// The retention status, when a retention policy is enforced.
    pub retention: Option<RetentionStatus>,
}

/// Everything `show-backup` reports about one backup.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupDetails {
    /// The backup's metadata.
    pub info: BackupInfo,
    /// Its keep annotation.
    pub keep: Option<KeepTarget>,
    /// WAL statistics (restorable backups only).
    pub wal: Option<WalStats>,
    /// The retention status, when a retention policy is enforced.
    pub retention: Option<RetentionStatus>,
    /// The previous restorable backup.
    pub previous: Option<BackupId>,
    /// The next restorable backup.
    pub next: Option<BackupId>,
    /// The root of its incremental chain (itself for a full backup).
    pub root: BackupId,
    /// The length of the chain from the root to it (1 for a full backup).
    pub chain_size: usize,
}

impl BackupDetails {
    /// Barman's `deduplication_ratio`: how much of the cluster the backup did not have to
    /// store (rsync backups compare with `size`, others with `cluster_size`).
    ///
    /// ```
    /// # use barman_core::catalogue::BackupDetails;
    /// let mut info = barman_catalog::BackupInfo::new("20261125T010000".parse()?);
    /// info.cluster_size = Some(1000);
    /// info.deduplicated_size = Some(250);
    /// let d = BackupDetails { info, keep: None, wal: None, retention: None, previous: None,
    ///     next: None, root: "20261125T010000".parse()?, chain_size: 1 };
    /// assert_eq!(d.deduplication_ratio(), 0.75);
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn deduplication_ratio(&self) -> f64 {
        let size = if self.info.backup_type() == barman_catalog::BackupType::Rsync {
            self.info.size
        } else {
            self.info.cluster_size
        };
        match (size, self.info.deduplicated_size) {
            (Some(size), Some(dedup)) if size != 0 && dedup != 0 => {
                1.0 - dedup as f64 / size as f64
            }
            _ => 0.0,
        }
    }
}

/// What `list-files` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilesTarget {
    /// The backup's files and the WAL segments it needs (begin..end).
    Standalone,
    /// The backup's files.
    Data,
    /// The WAL files (and history files) from the backup until the next one.
    Wal,
    /// `Data` and `Wal`.
    Full,
}

/// What `keep` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAction {
    /// Report the annotation.
    Status,
    /// Remove the annotation.
    Release,
    /// Set the annotation.
    Keep(KeepTarget),
}

/// One deleted backup.
#[derive(Clone, Debug, PartialEq)]
pub struct Deleted {
    /// The backup.
    pub id: BackupId,
    /// The WAL files removed with it, in archiving order.
    pub wals: Vec<WalFileName>,
}

/// What `check-backup` decided.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// The backup.
    pub id: BackupId,
    /// Its status before the check.
    pub before: BackupStatus,
    /// The decision.
    pub outcome: CheckOutcome,
    /// Its status now.
    pub status: BackupStatus,
}

/// What the retention part of `cron` did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetentionRun {
    /// Whether the policy is enforced (a valid policy with `retention_policy_mode = auto`).
    pub enforced: bool,
    /// The backups deleted, oldest first.
    pub deleted: Vec<Deleted>,
    /// Obsolete backups left in place, and why (one line each).
    pub skipped: Vec<(BackupId, String)>,
    /// Backups whose `backup.info` has no backup directory (an interrupted delete that
    /// left no marker): reported, never deleted.
    pub orphans: Vec<BackupId>,
}

/// The catalogue operations of one server.
///
/// # Examples
///
/// ```
/// use barman_catalog::{BackupInfo, BackupStatus, KeepTarget};
/// use barman_core::catalogue::{KeepAction, ServerBackups};
/// use barman_core::config::{Config, MemorySource};
/// use jiff::tz::TimeZone;
///
/// let home = tempfile::tempdir()?;
/// let text = format!("[barman]\nbarman_home = {}\n[pg]\nconninfo = host=pg\nbackup_method = postgres\nretention_policy = REDUNDANCY 2\n", home.path().display());
/// let config = Config::load("/etc/barman.conf", &text, &MemorySource::default())?;
/// let backups = ServerBackups::for_server(config.global(), config.server("pg").unwrap());
/// for id in ["20261120T010000", "20261124T010000"] {
///     let mut b = BackupInfo::new(id.parse()?);
///     b.status = BackupStatus::Done;
///     b.begin_wal = Some("000000010000000000000002".parse()?);
///     b.end_wal = b.begin_wal;
///     backups.repo().write_info(&b)?;
/// }
/// let now = jiff::Timestamp::now();
/// let list = backups.list(now, &TimeZone::UTC)?;
/// assert_eq!(list[0].info.id.to_string(), "20261124T010000"); // newest first
/// backups.keep("latest", KeepAction::Keep(KeepTarget::Full))?;
/// assert!(backups.delete("latest").is_err()); // kept
/// let deleted = backups.delete("oldest")?;
/// assert_eq!(deleted[0].id.to_string(), "20261120T010000");
/// assert_eq!(backups.load()?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ServerBackups {
    repo: BackupRepo,
    archive: WalArchive,
    policy: Option<RetentionPolicy>,
    retention_auto: bool,
    minimum_redundancy: u32,
    concurrent: bool,
    delete_hooks: Hooks,
}

impl ServerBackups {
    /// The catalogue of `server` as configured.
    pub fn for_server(global: &GlobalConfig, server: &ServerConfig) -> ServerBackups {
        ServerBackups {
            repo: BackupRepo::for_server(global, server),
            archive: WalArchive::for_server(global, server),
            policy: server.retention_policy(),
            retention_auto: server
                .options()
                .retention_policy_mode
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case("auto")),
            minimum_redundancy: server.minimum_redundancy(),
            concurrent: !server
                .options()
                .backup_options
                .iter()
                .any(|o| o == "exclusive_backup"),
            delete_hooks: Hooks::new(global, server, Hook::Delete),
        }
    }

    /// `Ok` unless the server is disabled by its configuration: nothing is deleted then.
    fn usable(&self) -> Result<()> {
        self.archive.usable()
    }

    /// The warnings of the delete and WAL delete hooks run since the last call.
    pub fn take_hook_warnings(&self) -> Vec<String> {
        self.archive.take_hook_warnings()
    }

    /// The backups on disk.
    pub fn repo(&self) -> &BackupRepo {
        &self.repo
    }

    /// The WAL archive.
    pub fn archive(&self) -> &WalArchive {
        &self.archive
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        self.repo.server()
    }

    /// The retention policy, when one is configured (and valid).
    pub fn retention_policy(&self) -> Option<RetentionPolicy> {
        self.policy
    }

    /// Every backup, with keep annotations (see [`BackupRepo::load`]).
    ///
    /// # Errors
    ///
    /// A `backup.info` that cannot be read or parsed.
    pub fn load(&self) -> Result<Catalogue> {
        self.repo.load()
    }

    /// The WAL index (xlog.db; empty when there is none).
    ///
    /// # Errors
    ///
    /// I/O errors, or a line of xlog.db that cannot be read (the error names it).
    pub fn wal_index(&self) -> Result<WalIndex> {
        self.archive.wal_index()
    }

    /// What `check` and `status` need of the catalogue: counts by status and, for the
    /// last restorable backup, its end, size and the WAL archived after it.
    ///
    /// # Errors
    ///
    /// A `backup.info` or a line of xlog.db that cannot be read (the error names it).
    pub fn summary(&self, local: &TimeZone) -> Result<CatalogueSummary> {
        let (cat, unreadable) = self.repo.load_readable()?;
        let mut out = CatalogueSummary {
            unreadable,
            failed: cat.with_status(&[BackupStatus::Failed]).count(),
            done: cat.with_status(&[BackupStatus::Done]).count(),
            done_full: cat
                .with_status(&[BackupStatus::Done])
                .filter(|b| !b.is_incremental())
                .count(),
            waiting_for_wals: cat.with_status(&[BackupStatus::WaitingForWals]).count() > 0,
            first: cat.available().next().map(|b| b.id),
            last: None,
        };
        if let Some(b) = cat.available().next_back() {
            let index = self.wal_index()?;
            let stats = wal_stats(&cat, &index, b);
            out.last = Some(LastBackup {
                id: b.id,
                end_time: b.end_time.as_ref().and_then(|t| t.to_timestamp(local).ok()),
                size: b.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                wal_until_next_size: stats.until_next_size,
                last_wal_time: stats.last.map(|(_, t)| t),
            });
        }
        Ok(out)
    }

    /// The retention report of `catalogue`, `None` without a retention policy.
    pub fn retention_report(
        &self,
        catalogue: &Catalogue,
        now: Timestamp,
        local: &TimeZone,
    ) -> Option<RetentionReport> {
        self.policy
            .map(|p| p.evaluate(catalogue, self.minimum_redundancy, now, local))
    }

    /// The catalogue entries that cannot be read, which [`list`](Self::list) leaves
    /// out and `delete` and retention refuse to run beside.
    ///
    /// # Errors
    ///
    /// I/O errors listing the directories.
    pub fn unreadable(&self) -> Result<Vec<UnreadableBackup>> {
        Ok(self.repo.load_readable()?.1)
    }

    /// `list-backups`: every readable backup, newest first, with its sizes and
    /// retention status ([`unreadable`](Self::unreadable) lists the others).
    ///
    /// # Errors
    ///
    /// Reading the catalogue or xlog.db.
    pub fn list(&self, now: Timestamp, local: &TimeZone) -> Result<Vec<BackupSummary>> {
        let (cat, _) = self.repo.load_readable()?;
        let index = self.wal_index()?;
        let report = self.retention_report(&cat, now, local);
        Ok(cat
            .iter()
            .rev()
            .map(|b| {
                let mut size = b.size.map_or(0, |s| u64::try_from(s).unwrap_or(0));
                let mut wal_size = 0;
                let mut retention = None;
                if b.status.is_copy_done() {
                    let stats = wal_stats(&cat, &index, b);
                    size += stats.wal_size;
                    wal_size = stats.until_next_size;
                    retention = report.as_ref().map(|r| {
                        r.statuses
                            .get(&b.id)
                            .copied()
                            .unwrap_or(RetentionStatus::None)
                    });
                }
                BackupSummary {
                    info: b.clone(),
                    size,
                    wal_size,
                    retention,
                }
            })
            .collect())
    }

    /// `show-backup`: the details of the backup `wanted` (an id, a name or a shortcut).
    ///
    /// # Errors
    ///
    /// An unknown backup; reading the catalogue or xlog.db.
    pub fn show(&self, wanted: &str, now: Timestamp, local: &TimeZone) -> Result<BackupDetails> {
        let cat = self.load()?;
        let info = cat.resolve(wanted)?.clone();
        let mut root = info.id;
        let mut chain_size = 1;
        while let Some(parent) = cat.get(root).and_then(|b| b.parent_backup_id) {
            if cat.get(parent).is_none() || chain_size > cat.len() {
                break;
            }
            root = parent;
            chain_size += 1;
        }
        let (wal, retention, previous, next) = if info.status.is_copy_done() {
            let index = self.wal_index()?;
            let report = self.retention_report(&cat, now, local);
            (
                Some(wal_stats(&cat, &index, &info)),
                report.map(|r| {
                    r.statuses
                        .get(&info.id)
                        .copied()
                        .unwrap_or(RetentionStatus::None)
                }),
                cat.previous(info.id).map(|b| b.id),
                cat.next(info.id).map(|b| b.id),
            )
        } else {
            (None, None, None, None)
        };
        Ok(BackupDetails {
            keep: cat.keep(info.id),
            info,
            wal,
            retention,
            previous,
            next,
            root,
            chain_size,
        })
    }

    /// `list-files`: the paths of the files of backup `wanted` for `target`, in Barman's
    /// order (the backup directory walked top-down with each directory's files sorted,
    /// then WAL files). With `empty_dirs`, empty directories are listed too.
    ///
    /// # Errors
    ///
    /// An unknown backup; reading the backup directory, the catalogue or xlog.db.
    pub fn list_files(
        &self,
        wanted: &str,
        target: FilesTarget,
        empty_dirs: bool,
    ) -> Result<Vec<PathBuf>> {
        let cat = self.load()?;
        let info = cat.resolve(wanted)?;
        let mut out = Vec::new();
        if matches!(
            target,
            FilesTarget::Data | FilesTarget::Standalone | FilesTarget::Full
        ) {
            walk(&self.repo.backup_path(info.id), empty_dirs, &mut out)?;
        }
        if target == FilesTarget::Standalone
            && let (Some(begin), Some(end)) = (info.begin_wal, info.end_wal)
        {
            for seg in SegmentName::range(begin, end, info.xlog_segment_size) {
                out.push(self.archive.path_of(&WalFileName::Segment(seg)));
            }
        }
        if matches!(target, FilesTarget::Wal | FilesTarget::Full) {
            let index = self.wal_index()?;
            for e in wal_until_next(&cat, &index, info, true) {
                out.push(self.archive.path_of(&e.name));
            }
        }
        Ok(out)
    }

    /// `delete`: deletes backup `wanted` and its incremental descendants (deepest
    /// first), with the WAL files no remaining backup needs.
    ///
    /// Refused, with nothing changed, when the backup has a keep annotation, when it is
    /// a DONE full backup and `minimum_redundancy` allows no fewer of them, or when a
    /// backup (or another delete) of the server is running. Each backup is deleted under
    /// its lock: `meta/<id>-delete_this` first, then the data, the WAL files (xlog.db
    /// rewritten under its lock), the backup directory, `backup.info`, the marker; the
    /// parent of an incremental backup forgets it.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] for the refusals above; an unknown backup; I/O errors (the
    /// marker stays, and the next `cron` finishes the delete).
    pub fn delete(&self, wanted: &str) -> Result<Vec<Deleted>> {
        self.usable()?;
        let mut cat = self.load()?;
        let info = cat.resolve(wanted)?.clone();
        let server = self.server();
        if cat.keep(info.id).is_some() {
            return Err(Error::refused(
                Refusal::BackupState,
                format!(
                    "Skipping delete of backup {} for server {server} as it has a current keep request. If you really want to delete this backup please remove the keep and try again.",
                    info.id
                ),
            ));
        }
        let full_done = cat
            .with_status(&[BackupStatus::Done])
            .filter(|b| !b.is_incremental())
            .count();
        if info.status == BackupStatus::Done
            && !info.is_incremental()
            && self.minimum_redundancy as usize >= full_done
        {
            return Err(Error::refused(
                Refusal::BackupState,
                format!(
                    "Skipping delete of backup {} for server {server} due to minimum redundancy requirements (minimum redundancy = {}, current redundancy = {full_done})",
                    info.id, self.minimum_redundancy
                ),
            ));
        }
        let Some(_server_lock) = self.repo.try_lock_backup()? else {
            return Err(Error::refused(
                Refusal::Busy,
                format!(
                    "Another process is running on server {server} (a backup or a delete): impossible to delete backup {}",
                    info.id
                ),
            ));
        };
        let mut order = Vec::new();
        tree_bottom_up(&cat, info.id, &mut order);
        let mut deleted = Vec::new();
        for id in order {
            let lock = self.lock_backup(id)?;
            let wals = self.delete_locked(&mut cat, id, false)?;
            // Nobody waits on a deleted backup's lock: its file goes, as with Barman.
            let _ = fs::remove_file(self.repo.backup_id_lock_path(id));
            drop(lock);
            deleted.push(Deleted { id, wals });
        }
        Ok(deleted)
    }

    fn lock_backup(&self, id: BackupId) -> Result<RepoLock> {
        self.repo.try_lock_backup_id(id)?.ok_or_else(|| {
            Error::refused(
                Refusal::Busy,
                format!(
                    "Another process is holding the lock for backup {id} of server {}",
                    self.server()
                ),
            )
        })
    }

    /// Whether `meta/<id>-delete_this` exists: a delete of this backup started.
    pub fn has_delete_marker(&self, id: BackupId) -> bool {
        self.repo.has_delete_marker(id)
    }

    /// Deletes one backup; the caller holds its lock.
    fn delete_locked(
        &self,
        cat: &mut Catalogue,
        id: BackupId,
        from_retention: bool,
    ) -> Result<Vec<WalFileName>> {
        // Read again under the lock: another process may have deleted it meanwhile.
        let info = match self.repo.read_info(id) {
            Ok(info) => info,
            Err(Error::Catalog(barman_catalog::Error::UnknownBackup { .. })) => {
                cat.remove(id);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        self.repo.mark_deleting(id)?;
        // The delete hooks, as Barman runs them: after the marker, before anything
        // goes. A pre retry script's exit 63 stops the delete, and the marker goes too
        // (Barman leaves it, and its next retention deletes the backup anyway).
        let mut hooks = self.delete_hooks.clone();
        if hooks.any() {
            hooks.with_backup(
                &self.repo,
                &info,
                cat.previous(id).map(|b| b.id.to_string()),
                cat.next(id).map(|b| b.id.to_string()),
            );
            hooks.run("pre");
            if let Err(stop) = hooks.run_retry("pre") {
                self.archive
                    .add_hook_warnings(std::mem::take(&mut hooks.warnings));
                self.repo.clear_delete_marker(id)?;
                return Err(stop);
            }
        }
        let plan = WalCleanup::plan(cat, id, from_retention, self.concurrent);
        for ts in info.tablespaces.iter().flatten() {
            remove_tree(&self.repo.tablespace_dir(id, ts.oid))?;
        }
        remove_tree(&self.repo.data_dir(id))?;
        let wals = match plan {
            Some(plan) => self.remove_wals(&plan)?,
            None => Vec::new(),
        };
        let backup_path = self.repo.backup_path(id);
        remove_tree(&backup_path)?;
        if backup_path.parent().is_some_and(Path::exists) {
            fsutil::sync_dir(backup_path.parent().unwrap_or(Path::new(".")))?;
        }
        self.repo.remove_meta(id)?;
        self.repo.clear_delete_marker(id)?;
        if let Some(parent) = info.parent_backup_id
            && let Some(p) = cat.get(parent)
        {
            let mut p = p.clone();
            if let Some(children) = p.children_backup_ids.as_mut() {
                children.retain(|c| *c != id);
                if children.is_empty() {
                    p.children_backup_ids = None;
                }
            }
            self.repo.write_info(&p)?;
            cat.insert(p);
        }
        if hooks.any() {
            hooks.run_post();
            self.archive.add_hook_warnings(hooks.warnings);
        }
        cat.remove(id);
        Ok(wals)
    }

    /// After a server's first backup, the WAL files older than its `begin_wal` (by
    /// name, history files kept) serve nothing: removes them, as Barman does. Returns
    /// the names removed.
    ///
    /// # Errors
    ///
    /// I/O errors on xlog.db or the files.
    pub fn remove_wals_before(&self, begin_wal: SegmentName) -> Result<Vec<WalFileName>> {
        self.remove_wals(&WalCleanup {
            remove_until: Some(begin_wal),
            protected_timelines: Default::default(),
            protected_ranges: Vec::new(),
        })
    }

    /// Applies a WAL cleanup: under the xlog.db lock, xlog.db is rewritten without the
    /// removed entries (durably), then their files are removed, and the hash directories
    /// left empty.
    fn remove_wals(&self, plan: &WalCleanup) -> Result<Vec<WalFileName>> {
        let _lock = self.archive.xlogdb_lock()?;
        // A torn last line is repaired first: the rewrite below would drop it.
        self.archive.repair_xlogdb()?;
        let mut index = self.wal_index()?;
        let removed: Vec<XlogDbEntry> = plan.apply(&mut index);
        if removed.is_empty() {
            return Ok(Vec::new());
        }
        let xlogdb = self.archive.xlogdb_path();
        let dir = xlogdb.parent().unwrap_or(Path::new("."));
        let stem = xlogdb
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tmp = TempFile::new(dir, &stem)?;
        let tmp_path = tmp.path().to_owned();
        {
            let file = tmp.file().map_err(|e| Error::io("writing", &tmp_path, e))?;
            let mut out = io::BufWriter::new(file);
            write!(out, "{index}")
                .and_then(|()| out.flush())
                .map_err(|e| Error::io("writing", &tmp_path, e))?;
        }
        tmp.replace(xlogdb)?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        let template = self.archive.wal_delete_hooks();
        for e in &removed {
            let path = self.archive.path_of(&e.name);
            // The wal_delete hooks around each file; a pre retry script's exit 63
            // stops the cleanup here (the files not removed yet stay, unlisted).
            let mut hooks = template.any().then(|| template.clone());
            if let Some(h) = hooks.as_mut() {
                h.with_wal(
                    &e.name.to_string(),
                    &path,
                    e.size,
                    e.time,
                    e.compression.as_deref(),
                    None,
                );
                h.run("pre");
                if let Err(stop) = h.run_retry("pre") {
                    self.archive
                        .add_hook_warnings(std::mem::take(&mut h.warnings));
                    return Err(stop);
                }
            }
            let outcome = match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(Error::io("removing", &path, err)),
            };
            if let Some(mut h) = hooks {
                h.set(
                    "BARMAN_ERROR",
                    outcome
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                );
                h.run_post();
                self.archive.add_hook_warnings(h.warnings);
            }
            outcome?;
            if let Some(parent) = path.parent()
                && !dirs.iter().any(|d| d == parent)
            {
                dirs.push(parent.to_owned());
            }
        }
        let wals_dir = self.archive.wals_dir();
        let mut top_changed = false;
        for d in &dirs {
            if d == wals_dir {
                top_changed = true;
                continue;
            }
            match fs::remove_dir(d) {
                Ok(()) => top_changed = true,
                // Not empty (or already gone): it stays, its removals made durable.
                Err(_) if d.exists() => fsutil::sync_dir(d)?,
                Err(_) => {}
            }
        }
        if top_changed && wals_dir.exists() {
            fsutil::sync_dir(wals_dir)?;
        }
        Ok(removed.into_iter().map(|e| e.name).collect())
    }

    /// `keep`: reports, sets or removes the keep annotation of backup `wanted`; returns
    /// the backup id and the annotation now in place. Only DONE full backups can be kept.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when keeping a backup that is not DONE or is incremental; an
    /// unknown backup; I/O errors.
    pub fn keep(&self, wanted: &str, action: KeepAction) -> Result<(BackupId, Option<KeepTarget>)> {
        let cat = self.load()?;
        let info = cat.resolve(wanted)?;
        let id = info.id;
        match action {
            KeepAction::Status => Ok((id, self.repo.read_keep(id)?)),
            KeepAction::Release => {
                self.repo.write_keep(id, None)?;
                Ok((id, None))
            }
            KeepAction::Keep(target) => {
                if info.status != BackupStatus::Done {
                    return Err(Error::refused(
                        Refusal::BackupState,
                        format!(
                            "Cannot add keep to backup {id} of server {} because it has status {}. Only backups with status DONE can be kept.",
                            self.server(),
                            info.status
                        ),
                    ));
                }
                if info.is_incremental() {
                    return Err(Error::refused(
                        Refusal::BackupState,
                        format!(
                            "Unable to execute the keep command on backup {id} of server {}: it is an incremental backup. Only full backups are eligible for the use of the keep command.",
                            self.server()
                        ),
                    ));
                }
                self.repo.write_keep(id, Some(target))?;
                Ok((id, Some(target)))
            }
        }
    }

    /// `check-backup`: decides with [`check_backup`] against xlog.db whether backup
    /// `wanted` is DONE, still WAITING_FOR_WALS, or FAILED (a WAL file it needs is
    /// missing), and writes the new status durably, under the backup's lock.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when another process holds the backup's lock; an unknown
    /// backup; I/O errors.
    pub fn check_backup(&self, wanted: &str) -> Result<CheckReport> {
        let cat = self.load()?;
        let id = cat.resolve(wanted)?.id;
        let _lock = self.lock_backup(id)?;
        let index = self.wal_index()?;
        self.check_locked(id, &index)
    }

    fn check_locked(&self, id: BackupId, index: &WalIndex) -> Result<CheckReport> {
        let mut info = self.repo.read_info(id)?;
        let before = info.status;
        let outcome = check_backup(&info, index);
        if let Some(status) = outcome.status()
            && (status != before || outcome.error().is_some())
        {
            info.status = status;
            if let Some(e) = outcome.error() {
                info.error = Some(e);
            }
            self.repo.write_info(&info)?;
        }
        Ok(CheckReport {
            id,
            before,
            outcome,
            status: info.status,
        })
    }

    /// Re-checks every WAITING_FOR_WALS backup, oldest first (skipping one whose lock is
    /// held).
    ///
    /// # Errors
    ///
    /// Reading the catalogue or xlog.db; writing a `backup.info`.
    pub fn recheck_waiting(&self) -> Result<Vec<CheckReport>> {
        let cat = self.load()?;
        let waiting: Vec<BackupId> = cat
            .with_status(&[BackupStatus::WaitingForWals])
            .map(|b| b.id)
            .collect();
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.wal_index()?;
        let mut out = Vec::new();
        for id in waiting {
            if let Some(_lock) = self.repo.try_lock_backup_id(id)? {
                out.push(self.check_locked(id, &index)?);
            }
        }
        Ok(out)
    }

    /// Writes FAILED into the `backup.info` of every STARTED backup whose backup process
    /// is gone (nobody holds the server's backup lock); returns them.
    ///
    /// # Errors
    ///
    /// Reading the catalogue; writing a `backup.info`.
    pub fn fail_stale(&self) -> Result<Vec<BackupId>> {
        let cat = self.load()?;
        let mut out = Vec::new();
        for b in cat.with_status(&[BackupStatus::Failed]) {
            let Some(_lock) = self.repo.try_lock_backup_id(b.id)? else {
                continue;
            };
            if self.repo.read_info(b.id)?.status != BackupStatus::Started
                || self.repo.backup_running()?
            {
                continue;
            }
            self.repo.write_info(b)?;
            out.push(b.id);
        }
        Ok(out)
    }

    /// The retention part of `cron`: with a retention policy and
    /// `retention_policy_mode = auto`, deletes the OBSOLETE backups, oldest first, each
    /// under its lock. A backup with a leftover `delete_this` marker (an interrupted
    /// delete) counts as OBSOLETE. A DONE full backup is never deleted when that would
    /// leave fewer than `minimum_redundancy` of them. Backups without their directory
    /// and without a marker are reported as orphans and left alone.
    ///
    /// # Errors
    ///
    /// Reading the catalogue; I/O errors while deleting (the marker stays, and the next
    /// run finishes).
    pub fn enforce_retention(&self, now: Timestamp, local: &TimeZone) -> Result<RetentionRun> {
        self.usable()?;
        let mut run = RetentionRun::default();
        if !self.retention_auto {
            return Ok(run);
        }
        let Some(policy) = self.policy else {
            return Ok(run);
        };
        run.enforced = true;
        let mut cat = self.load()?;
        let mut report = policy.evaluate(&cat, self.minimum_redundancy, now, local);
        for b in cat.iter() {
            if self.has_delete_marker(b.id) {
                report.statuses.insert(b.id, RetentionStatus::Obsolete);
            } else if b.status != BackupStatus::Empty && !self.repo.backup_path(b.id).exists() {
                run.orphans.push(b.id);
            }
        }
        self.remove_stray_markers(&cat)?;
        for id in report.obsolete() {
            if run.orphans.contains(&id) {
                continue;
            }
            let Some(info) = cat.get(id) else { continue };
            if info.status == BackupStatus::Done && !info.is_incremental() {
                let full_done = cat
                    .with_status(&[BackupStatus::Done])
                    .filter(|b| !b.is_incremental())
                    .count();
                if full_done <= self.minimum_redundancy as usize {
                    run.skipped.push((
                        id,
                        format!(
                            "Not deleting obsolete backup {id} of server {}: minimum redundancy requirements (minimum redundancy = {}, current redundancy = {full_done})",
                            self.server(),
                            self.minimum_redundancy
                        ),
                    ));
                    continue;
                }
            }
            let Some(_lock) = self.repo.try_lock_backup_id(id)? else {
                run.skipped.push((
                    id,
                    format!(
                        "Another action is in progress for the backup {id} of server {}, skipping retention policy application",
                        self.server()
                    ),
                ));
                continue;
            };
            let wals = self.delete_locked(&mut cat, id, true)?;
            let _ = fs::remove_file(self.repo.backup_id_lock_path(id));
            run.deleted.push(Deleted { id, wals });
        }
        Ok(run)
    }
}

impl ServerBackups {
    /// Removes `delete_this` markers left by a delete cut short after removing
    /// `backup.info` (the marker goes last).
    fn remove_stray_markers(&self, cat: &Catalogue) -> Result<()> {
        let meta = self.repo.meta_dir();
        for entry in fsutil::list_dir(meta)? {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(&format!("-{DELETE_MARKER}")))
                .and_then(|id| id.parse::<BackupId>().ok())
            else {
                continue;
            };
            if cat.get(id).is_none() {
                remove_file_durably(&entry.path())?;
            }
        }
        Ok(())
    }
}

/// The backups of the incremental tree rooted at `id`, leaves first, `id` last.
fn tree_bottom_up(cat: &Catalogue, id: BackupId, out: &mut Vec<BackupId>) {
    if out.contains(&id) {
        return;
    }
    if let Some(b) = cat.get(id) {
        for child in b.children_backup_ids.iter().flatten() {
            if cat.get(*child).is_some() {
                tree_bottom_up(cat, *child, out);
            }
        }
    }
    out.push(id);
}

/// Barman's `get_wal_until_next_backup`: xlog.db entries, in file order, of complete
/// segments from the backup's `begin_wal` on (by name), on its timeline or older ones,
/// until one named after the next backup's `end_wal`; history files too when asked.
fn wal_until_next(
    cat: &Catalogue,
    index: &WalIndex,
    backup: &BackupInfo,
    include_history: bool,
) -> Vec<XlogDbEntry> {
    let Some(begin) = backup.begin_wal else {
        return Vec::new();
    };
    let begin_name = WalFileName::Segment(begin);
    let next_end = cat
        .next(backup.id)
        .and_then(|n| n.end_wal)
        .map(WalFileName::Segment);
    let mut out = Vec::new();
    for e in index.iter() {
        if e.name.is_history() {
            if include_history {
                out.push(e);
            }
            continue;
        }
        if e.name < begin_name || e.name.timeline() > begin.timeline() || !e.name.is_segment() {
            continue;
        }
        if next_end.is_some_and(|n| e.name > n) {
            break;
        }
        out.push(e);
    }
    out
}

fn wal_stats(cat: &Catalogue, index: &WalIndex, backup: &BackupInfo) -> WalStats {
    let mut stats = WalStats {
        segment_size: backup.xlog_segment_size.bytes(),
        ..WalStats::default()
    };
    let (Some(begin), end) = (backup.begin_wal, backup.end_wal) else {
        return stats;
    };
    let begin = WalFileName::Segment(begin);
    let end = end.map(WalFileName::Segment);
    for e in wal_until_next(cat, index, backup, false) {
        if e.name == begin {
            stats.first = Some((e.name, e.time));
        }
        if end.is_some_and(|end| e.name <= end) {
            stats.wal_num += 1;
            stats.wal_size += e.size;
        } else {
            stats.until_next_num += 1;
            stats.until_next_size += e.size;
        }
        stats.last = Some((e.name, e.time));
    }
    stats
}

/// Lists `dir` as Python's `os.walk` does (top-down; each directory's files sorted,
/// symbolic links to directories listed as directories and not followed), directories
/// in name order.
fn walk(dir: &Path, empty_dirs: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in fsutil::list_dir(dir)? {
        let path = entry.path();
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            dirs.push((entry.file_name(), is_link));
        } else {
            files.push(entry.file_name());
        }
    }
    if empty_dirs && files.is_empty() && dirs.is_empty() {
        out.push(dir.to_owned());
    }
    files.sort();
    dirs.sort();
    out.extend(files.into_iter().map(|f| dir.join(f)));
    for (d, is_link) in dirs {
        if !is_link {
            walk(&dir.join(d), empty_dirs, out)?;
        }
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path, e)),
    }
}

fn remove_file_durably(path: &Path) -> Result<()> {
    Ok(fsutil::remove_file(path)?)
}
