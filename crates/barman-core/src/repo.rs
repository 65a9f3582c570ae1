//! The backups of one server on disk: `base/<id>/`, `meta/<id>-backup.info`,
//! `meta/<id>-keep`, and the locks that serialise work on them.
//!
//! [`BackupRepo`] is the one place that knows where a backup's files are; the backup,
//! catalogue and recovery operations all go through it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use barman_catalog::{BackupId, BackupInfo, BackupStatus, Catalogue, KeepTarget};

use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::{self, Lock};
use crate::repository::Repository;
use crate::{Error, Result};

/// The suffix of the marker a delete writes first: `meta/<id>-delete_this`.
pub(crate) const DELETE_MARKER: &str = "delete_this";

/// The backup side of one server's repository.
///
/// ```
/// use barman_core::config::{Config, MemorySource};
/// use barman_core::repo::BackupRepo;
///
/// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\n", &MemorySource::default())?;
/// let repo = BackupRepo::for_server(config.global(), config.server("pg").unwrap());
/// let id = "20261125T184314".parse()?;
/// assert_eq!(repo.data_dir(id), std::path::Path::new("/srv/barman/pg/base/20261125T184314/data"));
/// assert_eq!(repo.info_path(id), std::path::Path::new("/srv/barman/pg/meta/20261125T184314-backup.info"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct BackupRepo {
    server: String,
    backup_dir: PathBuf,
    base_dir: PathBuf,
    meta_dir: PathBuf,
    lock_dir: PathBuf,
    /// `meta/` and `identity.json`, over `Storage`.
    repository: Repository,
}

/// A catalogue entry that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableBackup {
    /// Its name (the backup id, or what stands in its place).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be read.
    pub reason: String,
}

/// A held per-server or per-backup lock; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    _lock: Lock,
}

impl BackupRepo {
    /// The repository of `server` as configured.
    pub fn for_server(global: &GlobalConfig, server: &ServerConfig) -> BackupRepo {
        let o = server.options();
        let backup_dir = PathBuf::from(o.backup_directory.clone().unwrap_or_default());
        let base_dir = o
            .basebackups_directory
            .as_ref()
            .map_or_else(|| backup_dir.join("base"), PathBuf::from);
        BackupRepo {
            server: server.name().to_owned(),
            meta_dir: backup_dir.join("meta"),
            base_dir,
            backup_dir,
            lock_dir: PathBuf::from(&global.barman_lock_directory),
            repository: Repository::for_server(server),
        }
    }

    /// The repository's objects (`meta/`, `identity.json`, WAL files) over `Storage`.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `backup_directory`.
    pub fn backup_dir(&self) -> &Path {
        &self.backup_dir
    }

    /// `basebackups_directory` (`base/`).
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// `meta/`.
    pub fn meta_dir(&self) -> &Path {
        &self.meta_dir
    }

    /// `base/<id>/`: everything a backup stores.
    pub fn backup_path(&self, id: BackupId) -> PathBuf {
        self.base_dir.join(id.as_str())
    }

    /// `base/<id>/data/`: the copy of PGDATA.
    pub fn data_dir(&self, id: BackupId) -> PathBuf {
        self.backup_path(id).join("data")
    }

    /// `base/<id>/<oid>/`: the copy of a tablespace.
    pub fn tablespace_dir(&self, id: BackupId, oid: u32) -> PathBuf {
        self.backup_path(id).join(oid.to_string())
    }

    /// `meta/<id>-backup.info`.
    pub fn info_path(&self, id: BackupId) -> PathBuf {
        self.meta_dir.join(format!("{id}-backup.info"))
    }

    /// `meta/<id>-keep`.
    pub fn keep_path(&self, id: BackupId) -> PathBuf {
        self.meta_dir.join(format!("{id}-keep"))
    }

    /// `identity.json`.
    pub fn identity_path(&self) -> PathBuf {
        self.backup_dir.join("identity.json")
    }

    /// Reads the `backup.info` of one backup (`meta/`, or the older `base/<id>/backup.info`).
    ///
    /// # Errors
    ///
    /// [`Error::Catalog`] with [`barman_catalog::Error::UnknownBackup`] when neither file
    /// exists; parse and I/O errors.
    pub fn read_info(&self, id: BackupId) -> Result<BackupInfo> {
        crate::wait(self.read_info_async(id))
    }

    /// [`BackupRepo::read_info`] for async code.
    ///
    /// # Errors
    ///
    /// Those of [`BackupRepo::read_info`].
    pub async fn read_info_async(&self, id: BackupId) -> Result<BackupInfo> {
        if let Some(info) = self.repository.read_info(id).await? {
            return Ok(info);
        }
        let path = self.backup_path(id).join("backup.info");
        let legacy = crate::blocking("reading", path.clone(), {
            let path = path.clone();
            move || fs::read_to_string(path)
        })
        .await?;
        match legacy {
            Ok(text) => Ok(BackupInfo::parse(&path.to_string_lossy(), &text)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(barman_catalog::Error::UnknownBackup {
                    server: self.server.clone(),
                    wanted: id.to_string(),
                }
                .into())
            }
            Err(e) => Err(Error::io("reading", &path, e)),
        }
    }

    /// Writes `info` to `meta/<id>-backup.info` durably (temp file, fsync, rename,
    /// fsync of `meta/`), creating `meta/` (0700) when missing.
    ///
    /// # Errors
    ///
    /// I/O errors; the previous file stays as it was.
    pub fn write_info(&self, info: &BackupInfo) -> Result<()> {
        crate::wait(self.repository.write_info(info))
    }

    /// [`BackupRepo::write_info`] for async code.
    ///
    /// # Errors
    ///
    /// Those of [`BackupRepo::write_info`].
    pub async fn write_info_async(&self, info: &BackupInfo) -> Result<()> {
        self.repository.write_info(info).await
    }

    /// Every backup of the server with its keep annotation, read from `meta/` and from
    /// the older `base/<id>/backup.info` files; refuses a catalogue with an entry that
    /// cannot be read (see [`BackupRepo::load_readable`]). What deletes, retention and
    /// WAL cleanup act on: an entry they cannot read must never count as absent.
    ///
    /// A STARTED backup whose backup process is gone (nobody holds the server's backup
    /// lock) is reported FAILED, as it can never finish; a backup whose delete started
    /// (`meta/<id>-delete_this`) is reported FAILED too, and is never restored.
    ///
    /// # Errors
    ///
    /// [`Error::UnreadableBackup`] naming the first entry that cannot be read; I/O
    /// errors listing the directories.
    pub fn load(&self) -> Result<Catalogue> {
        let (catalogue, unreadable) = self.load_readable()?;
        match unreadable.into_iter().next() {
            None => Ok(catalogue),
            Some(u) => Err(Error::UnreadableBackup {
                server: self.server.clone(),
                path: u.path,
                reason: u.reason,
            }),
        }
    }

    /// Like [`BackupRepo::load`], with the entries that cannot be read (a name that is
    /// not a backup id, a damaged or unreadable `backup.info`) returned beside the
    /// catalogue instead of failing: for listings, checks and restores of other backups.
    ///
    /// # Errors
    ///
    /// I/O errors listing the directories.
    pub fn load_readable(&self) -> Result<(Catalogue, Vec<UnreadableBackup>)> {
        let mut catalogue = Catalogue::new(&self.server);
        let mut unreadable = Vec::new();
        let mut ids = Vec::new();
        ids.extend(crate::wait(self.repository.meta_ids(&mut unreadable))?);
        // The older layout: `base/<id>/backup.info`, on the local disk. Hidden entries
        // (an import's `.import-*` staging) are not backups, as Barman's glob skips them.
        for entry in fsutil::list_dir(&self.base_dir)? {
            let name = entry.file_name();
            let id = name.to_string_lossy();
            if id.starts_with('.') {
                continue;
            }
            let info = entry.path().join("backup.info");
            if !info.is_file() {
                continue;
            }
            match id.parse::<BackupId>() {
                Ok(id) if !ids.contains(&id) => ids.push(id),
                Ok(_) => {}
                Err(e) => unreadable.push(UnreadableBackup {
                    name: id.into_owned(),
                    path: info,
                    reason: format!("not a backup id: {e}"),
                }),
            }
        }
        ids.sort();
        let mut stale_checked = None;
        for id in ids {
            let mut info = match self.read_info(id) {
                Ok(info) => info,
                Err(e) => {
                    unreadable.push(UnreadableBackup {
                        name: id.to_string(),
                        path: self.info_path(id),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if info.status == BackupStatus::Started {
                let running = match stale_checked {
                    Some(r) => r,
                    None => {
                        let r = self.backup_running()?;
                        stale_checked = Some(r);
                        r
                    }
                };
                if !running {
                    info.status = BackupStatus::Failed;
                    info.error.get_or_insert_with(|| {
                        "the backup process ended before the backup finished".to_owned()
                    });
                }
            }
            if self.has_delete_marker(id) {
                info.status = BackupStatus::Failed;
                info.error = Some(format!(
                    "a delete of this backup started and did not finish ({}): cron finishes it",
                    self.delete_marker_path(id).display()
                ));
            }
            let keep = self.read_keep(id)?;
            catalogue.insert(info);
            catalogue.set_keep(id, keep);
        }
        unreadable.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((catalogue, unreadable))
    }

    /// The keep annotation of a backup.
    ///
    /// # Errors
    ///
    /// I/O errors other than a missing file.
    pub fn read_keep(&self, id: BackupId) -> Result<Option<KeepTarget>> {
        if let Some(keep) = crate::wait(self.repository.read_keep(id))? {
            return Ok(Some(keep));
        }
        let legacy = self.backup_path(id).join("annotations").join("keep");
        match fs::read_to_string(&legacy) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", &legacy, e)),
        }
    }

    /// Sets (or with `None` removes) the keep annotation of a backup, durably.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn write_keep(&self, id: BackupId, keep: Option<KeepTarget>) -> Result<()> {
        crate::wait(self.repository.write_keep(id, keep))?;
        if keep.is_none() {
            let legacy = self.backup_path(id).join("annotations").join("keep");
            match fs::remove_file(&legacy) {
                Ok(()) => fsutil::sync_dir(legacy.parent().unwrap_or(Path::new(".")))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("removing", &legacy, e)),
            }
        }
        Ok(())
    }

    /// Writes the delete marker (`meta/<id>-delete_this`): a delete of the backup started.
    pub(crate) fn mark_deleting(&self, id: BackupId) -> Result<()> {
        crate::wait(self.repository.mark_deleting(id))
    }

    /// Removes the delete marker.
    pub(crate) fn clear_delete_marker(&self, id: BackupId) -> Result<()> {
        crate::wait(self.repository.clear_deleting(id))
    }

    /// Removes `backup.info` and the keep annotation of a backup.
    pub(crate) fn remove_meta(&self, id: BackupId) -> Result<()> {
        crate::wait(self.repository.remove_meta(id))
    }

    fn lock_path(&self, what: &str) -> PathBuf {
        self.lock_dir.join(format!(".{}-{what}.lock", self.server))
    }

    /// The lock file of one backup (`.<server>-<id>.lock`), removed once the backup is
    /// deleted, as Barman does.
    pub(crate) fn backup_id_lock_path(&self, id: BackupId) -> PathBuf {
        self.lock_path(id.as_str())
    }

    /// Takes the server's backup lock (`.<server>-backup.lock`) without waiting:
    /// `Ok(None)` when a backup of this server is running.
    ///
    /// # Errors
    ///
    /// I/O errors on the lock file.
    pub fn try_lock_backup(&self) -> Result<Option<RepoLock>> {
        Ok(Lock::try_acquire(&self.lock_path("backup"))?.map(|l| RepoLock { _lock: l }))
    }

    /// Takes the lock of one backup (`.<server>-<id>.lock`, used by delete, check-backup
    /// and retention) without waiting: `Ok(None)` when busy.
    ///
    /// # Errors
    ///
    /// I/O errors on the lock file.
    pub fn try_lock_backup_id(&self, id: BackupId) -> Result<Option<RepoLock>> {
        Ok(Lock::try_acquire(&self.lock_path(id.as_str()))?.map(|l| RepoLock { _lock: l }))
    }

    /// Takes the lock of one backup *shared* (a restore reading it), waiting up to 30
    /// seconds for an exclusive holder (a delete, a check) to finish: `Ok(None)` when
    /// it does not. Deletes take the same lock exclusively, so none runs meanwhile.
    ///
    /// # Errors
    ///
    /// I/O errors on the lock file.
    pub async fn lock_backup_shared(&self, id: BackupId) -> Result<Option<RepoLock>> {
        let path = self.lock_path(id.as_str());
        for _ in 0..300 {
            if let Some(l) = Lock::try_acquire_shared(&path)? {
                return Ok(Some(RepoLock { _lock: l }));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(None)
    }

    /// `meta/<id>-delete_this`: written first by a delete, removed last.
    pub fn delete_marker_path(&self, id: BackupId) -> PathBuf {
        self.meta_dir.join(format!("{id}-{DELETE_MARKER}"))
    }

    /// Whether a delete of this backup started (and has not finished).
    pub fn has_delete_marker(&self, id: BackupId) -> bool {
        crate::wait(self.repository.is_deleting(id)).unwrap_or(false)
    }

    /// Whether a backup process of this server is running (holds the backup lock).
    ///
    /// Read from the kernel's table of held locks (`/proc/locks`), so that asking
    /// never takes the lock, even for an instant (a backup starting at that moment
    /// would be refused). Where that table cannot be read, the lock is tried.
    ///
    /// # Errors
    ///
    /// I/O errors on the lock file.
    pub fn backup_running(&self) -> Result<bool> {
        let path = self.lock_path("backup");
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        match fs::read_to_string("/proc/locks") {
            Ok(table) => Ok(fsutil::locked_in_table(&table, &meta)),
            Err(_) => Ok(Lock::try_acquire(&path)?.is_none()),
        }
    }
}
