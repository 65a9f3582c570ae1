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
use crate::{Error, Result};

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
}

/// A held per-server or per-backup lock; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    _lock: Lock,
}

impl BackupRepo {
    /// The repository of `server` as configured.
    pub fn for_server(global: &GlobalConfig, server: &ServerConfig) -> BackupRepo {
        let backup_dir = PathBuf::from(server.get_str("backup_directory").unwrap_or_default());
        let base_dir = server
            .get_str("basebackups_directory")
            .map_or_else(|| backup_dir.join("base"), PathBuf::from);
        BackupRepo {
            server: server.name().to_owned(),
            meta_dir: backup_dir.join("meta"),
            base_dir,
            backup_dir,
            lock_dir: PathBuf::from(&global.barman_lock_directory),
        }
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
        for path in [self.info_path(id), self.backup_path(id).join("backup.info")] {
            match fs::read_to_string(&path) {
                Ok(text) => return Ok(BackupInfo::parse(&path.to_string_lossy(), &text)?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("reading", &path, e)),
            }
        }
        Err(barman_catalog::Error::UnknownBackup {
            server: self.server.clone(),
            wanted: id.to_string(),
        }
        .into())
    }

    /// Writes `info` to `meta/<id>-backup.info` durably (temp file, fsync, rename,
    /// fsync of `meta/`), creating `meta/` (0700) when missing.
    ///
    /// # Errors
    ///
    /// I/O errors; the previous file stays as it was.
    pub fn write_info(&self, info: &BackupInfo) -> Result<()> {
        fsutil::create_private_dir(&self.meta_dir)?;
        fsutil::write_replace(&self.info_path(info.id), info.to_string().as_bytes())
    }

    /// Every backup of the server with its keep annotation, read from `meta/` and from
    /// the older `base/<id>/backup.info` files. A STARTED backup whose backup process is
    /// gone (nobody holds the server's backup lock) is reported FAILED, as it can never
    /// finish.
    ///
    /// # Errors
    ///
    /// A `backup.info` that cannot be read or parsed (the error names it).
    pub fn load(&self) -> Result<Catalogue> {
        let mut catalogue = Catalogue::new(&self.server);
        let mut ids = Vec::new();
        for (dir, legacy) in [(&self.meta_dir, false), (&self.base_dir, true)] {
            let entries = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let id = if legacy {
                    if !entry.path().join("backup.info").is_file() {
                        continue;
                    }
                    name.as_ref()
                } else {
                    match name.strip_suffix("-backup.info") {
                        Some(id) => id,
                        None => continue,
                    }
                };
                if let Ok(id) = id.parse::<BackupId>()
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
            }
        }
        let mut stale_checked = None;
        for id in ids {
            let mut info = self.read_info(id)?;
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
            let keep = self.read_keep(id)?;
            catalogue.insert(info);
            catalogue.set_keep(id, keep);
        }
        Ok(catalogue)
    }

    /// The keep annotation of a backup.
    ///
    /// # Errors
    ///
    /// I/O errors other than a missing file.
    pub fn read_keep(&self, id: BackupId) -> Result<Option<KeepTarget>> {
        let legacy = self.backup_path(id).join("annotations").join("keep");
        for path in [self.keep_path(id), legacy] {
            match fs::read_to_string(&path) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => return Ok(text.parse().ok()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("reading", &path, e)),
            }
        }
        Ok(None)
    }

    /// Sets (or with `None` removes) the keep annotation of a backup, durably.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn write_keep(&self, id: BackupId, keep: Option<KeepTarget>) -> Result<()> {
        match keep {
            Some(k) => {
                fsutil::create_private_dir(&self.meta_dir)?;
                fsutil::write_replace(&self.keep_path(id), k.name().as_bytes())
            }
            None => {
                for path in [
                    self.keep_path(id),
                    self.backup_path(id).join("annotations").join("keep"),
                ] {
                    match fs::remove_file(&path) {
                        Ok(()) => fsutil::sync_dir(path.parent().unwrap_or(Path::new(".")))?,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("removing", &path, e)),
                    }
                }
                Ok(())
            }
        }
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

    /// Whether a backup process of this server is running (holds the backup lock).
    ///
    /// # Errors
    ///
    /// I/O errors on the lock file.
    pub fn backup_running(&self) -> Result<bool> {
        let path = self.lock_path("backup");
        if !path.exists() {
            return Ok(false);
        }
        Ok(Lock::try_acquire(&path)?.is_none())
    }
}
