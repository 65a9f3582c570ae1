//! The repository seam: the whole objects of one server's repository, over a
//! [`Storage`].
//!
//! A [`Repository`] holds what a server's repository keeps as whole objects: archived
//! WAL files (`wals/<hash dir>/<name>`), `identity.json`, and under `meta/` each
//! backup's `backup.info`, keep annotation and delete marker. Every read and write of
//! those goes through [`Storage`], so the same code serves a repository on the local
//! disk ([`LocalStorage`]), in memory, behind a fault injector, or in an object store.
//!
//! What `Storage` cannot express stays local, beside it: xlog.db (appended to),
//! the flock locks, the spools `incoming/`, `streaming/` and `errors/`, and the trees
//! under `base/` written by the copier or rsync ([`crate::archive::WalArchive`] and
//! [`crate::repo::BackupRepo`] add those, over a local repository).
//!
//! Its methods are `async` and never block: validation, compression and comparison
//! run on the blocking pool, and data is streamed (never a whole WAL file in memory).
//!
//! # Promises
//!
//! - **A WAL file is validated before it is visible**: its bytes go to the storage as
//!   they are validated and compressed, and a file that fails validation aborts the put,
//!   which then leaves nothing (the storage's promise for a failed payload).
//! - **Never overwritten**: archived WAL files are put with [`PutMode::Create`]; a name
//!   already taken is compared (decompressed, whatever the codecs): the same content is
//!   success ([`Stored::Identical`]), different content is [`Stored::Different`], and
//!   the stored object stays as it was.
//! - **Atomic**: readers see a whole object or none (`backup.info` replaced whole).
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use barman_core::repository::Repository;
//! use barman_transport::MemoryStorage;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let repo = Repository::new("pg", Arc::new(MemoryStorage::new()));
//! let mut info = barman_catalog::BackupInfo::new("20261206T101500".parse()?);
//! info.status = barman_catalog::BackupStatus::Done;
//! repo.write_info(&info).await?;
//! let (catalogue, unreadable) = repo.catalogue().await?;
//! assert_eq!(catalogue.len(), 1);
//! assert!(unreadable.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use barman_transport::{
    DynStorage, LocalStorage, Location, PutMode, PutPayload, Storage, StorageExt,
};
use barman_wal::{Codec, CompressionLevel};
use bytes::Bytes;

use crate::compression::CustomCompression;
use crate::config::ServerConfig;
use crate::encryption::Gpg;
use crate::{Error, Result};

mod meta;
pub(crate) mod wal;

pub use wal::Stored;

/// One server's repository as whole objects over [`Storage`]: see the
/// [module documentation](self).
#[derive(Clone)]
pub struct Repository {
    server: String,
    /// Where `wals/` lives (its own storage, for a configured `wals_directory`).
    wals: Area,
    /// The rest: `identity.json`, `meta/`.
    home: Area,
    codec: Codec,
    level: CompressionLevel,
    /// GnuPG: encrypts new WAL files (`encryption = gpg`), decrypts stored ones.
    gpg: Gpg,
    /// `compression = custom`: the filters that compress new WAL files (instead of
    /// `codec`) and decompress stored ones.
    custom: Option<CustomCompression>,
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("server", &self.server)
            .field("wals", &self.wals)
            .field("home", &self.home)
            .field("codec", &self.codec)
            .field("gpg", &self.gpg)
            .finish_non_exhaustive()
    }
}

/// A place objects live: a storage and a prefix in it.
#[derive(Clone)]
struct Area {
    backend: Backend,
    prefix: Location,
}

#[derive(Clone)]
enum Backend {
    Storage(Arc<DynStorage>),
    /// A local directory, opened on first use: a repository that does not exist yet is
    /// not created by reading it.
    Local(Arc<LocalRoot>),
}

struct LocalRoot {
    dir: PathBuf,
    opened: tokio::sync::OnceCell<Arc<DynStorage>>,
}

impl fmt::Debug for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Storage(_) => write!(f, "storage:/{}", self.prefix),
            Backend::Local(root) => write!(f, "{}", root.dir.display()),
        }
    }
}

impl Area {
    fn over(storage: Arc<DynStorage>, prefix: &str) -> Area {
        Area {
            backend: Backend::Storage(storage),
            prefix: Location::new(prefix).unwrap_or_default(),
        }
    }

    fn local(dir: &Path) -> Area {
        Area {
            backend: Backend::Local(Arc::new(LocalRoot {
                dir: dir.to_owned(),
                opened: tokio::sync::OnceCell::new(),
            })),
            prefix: Location::default(),
        }
    }

    /// The storage, opened (a local directory created) when needed.
    async fn open(&self) -> Result<Arc<DynStorage>> {
        match &self.backend {
            Backend::Storage(s) => Ok(s.clone()),
            Backend::Local(root) => {
                let dir = root.dir.clone();
                let s = root
                    .opened
                    .get_or_try_init(|| async move {
                        let opened = crate::blocking("opening", &dir, {
                            let dir = dir.clone();
                            move || LocalStorage::new(&dir)
                        })
                        .await??;
                        Ok::<_, Error>(Arc::new(opened) as Arc<DynStorage>)
                    })
                    .await?;
                Ok(s.clone())
            }
        }
    }

    /// The storage for a read: `None` for a local directory that does not exist (a
    /// repository is never created by reading it).
    async fn open_existing(&self) -> Result<Option<Arc<DynStorage>>> {
        if let Backend::Local(root) = &self.backend
            && root.opened.get().is_none()
        {
            let dir = root.dir.clone();
            if !crate::blocking("reading", root.dir.clone(), move || dir.exists()).await? {
                return Ok(None);
            }
        }
        self.open().await.map(Some)
    }

    fn location(&self, rel: &str) -> Result<Location> {
        Ok(self.prefix.join(rel)?)
    }

    /// The object at `rel` whole, `None` when there is none.
    async fn read(&self, rel: &str) -> Result<Option<Bytes>> {
        let Some(s) = self.open_existing().await? else {
            return Ok(None);
        };
        match s.get_bytes(&self.location(rel)?).await {
            Ok(b) => Ok(Some(b)),
            Err(barman_transport::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the object at `rel` whole; `Ok(false)` when `mode` is
    /// [`PutMode::Create`] and the name is taken.
    async fn write(&self, rel: &str, data: impl Into<PutPayload>, mode: PutMode) -> Result<bool> {
        let s = self.open().await?;
        match s.put_opts(&self.location(rel)?, data.into(), mode).await {
            Ok(_) => Ok(true),
            Err(barman_transport::Error::AlreadyExists { .. }) if mode == PutMode::Create => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the object at `rel` (nothing to do when it is gone).
    async fn remove(&self, rel: &str) -> Result<()> {
        let Some(s) = self.open_existing().await? else {
            return Ok(());
        };
        match s.delete(&self.location(rel)?).await {
            Ok(()) | Err(barman_transport::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn exists(&self, rel: &str) -> Result<bool> {
        let Some(s) = self.open_existing().await? else {
            return Ok(false);
        };
        Ok(s.exists(&self.location(rel)?).await?)
    }
}

impl Repository {
    /// The repository of `server` in `storage`: `wals/`, `meta/` and `identity.json` at
    /// the storage's root; WAL files stored as they come (no compression) until
    /// [`Repository::with_compression`].
    pub fn new(server: &str, storage: Arc<DynStorage>) -> Repository {
        Repository {
            server: server.to_owned(),
            wals: Area::over(storage.clone(), "wals"),
            home: Area::over(storage, ""),
            codec: Codec::None,
            level: CompressionLevel::default(),
            gpg: Gpg::default(),
            custom: None,
        }
    }

    /// The local repository of `server` as configured: `backup_directory`, with
    /// `wals_directory` where it is set, and the server's compression. Directories are
    /// created on the first write, never by a read.
    pub fn for_server(server: &ServerConfig) -> Repository {
        let o = server.options();
        let backup_dir = PathBuf::from(o.backup_directory.clone().unwrap_or_default());
        let wals_dir = o
            .wals_directory
            .as_ref()
            .map_or_else(|| backup_dir.join("wals"), PathBuf::from);
        let codec = server
            .compression()
            .and_then(|c| c.codec())
            .unwrap_or(Codec::None);
        Repository {
            server: server.name().to_owned(),
            wals: Area::local(&wals_dir),
            home: Area::local(&backup_dir),
            codec,
            level: server.compression_level(),
            gpg: Gpg::for_server(server),
            custom: CustomCompression::for_server(server),
        }
    }

    /// The same repository, storing WAL files compressed with `codec` at `level`.
    pub fn with_compression(mut self, codec: Codec, level: CompressionLevel) -> Repository {
        self.codec = codec;
        self.level = level;
        self
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The codec WAL files are stored with.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The same repository, encrypting new WAL files and decrypting stored ones with
    /// `gpg`.
    pub fn with_gpg(mut self, gpg: Gpg) -> Repository {
        self.gpg = gpg;
        self
    }

    /// The GnuPG settings WAL files are encrypted and decrypted with.
    pub fn gpg(&self) -> &Gpg {
        &self.gpg
    }

    /// The custom compression filters (`compression = custom`), if any.
    pub fn custom_compression(&self) -> Option<&CustomCompression> {
        self.custom.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_repository_is_not_created_by_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("pg");
        let repo = Repository {
            server: "pg".into(),
            wals: Area::local(&home.join("wals")),
            home: Area::local(&home),
            codec: Codec::None,
            level: CompressionLevel::default(),
            gpg: Gpg::default(),
            custom: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (cat, unreadable) = repo.catalogue().await.unwrap();
            assert!(cat.is_empty() && unreadable.is_empty());
            assert_eq!(repo.identity().await.unwrap(), None);
            assert!(repo.list_wals().await.unwrap().is_empty());
        });
        assert!(!home.exists());
    }
}
