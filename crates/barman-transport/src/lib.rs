//! Moving bytes for barman-rs: storage and remote access.
//!
//! Every byte barman-rs moves goes through this crate: into and out of the backup
//! repository ([`Storage`]: [`LocalStorage`], [`MemoryStorage`] and, with the
//! `object-store` feature, `ObjectStoreStorage` for S3, GCS and Azure), and from and to
//! the PostgreSQL host (with the `ssh` feature, `SshCommand` runs commands over the
//! system `ssh` and `Rsync` copies trees with the system `rsync`; [`LocalCopier`]
//! copies trees on the same host with parallel workers). It knows nothing about
//! PostgreSQL.
//!
//! # Example
//!
//! ```
//! use barman_transport::{LocalStorage, Location, MemoryStorage, DynStorage, StorageExt};
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let repos: Vec<Arc<DynStorage>> = vec![
//!     Arc::new(MemoryStorage::new()),
//!     Arc::new(LocalStorage::new(dir.path())?),
//! ];
//! for repo in repos {
//!     let wal = Location::new("wals/0000000100000000/000000010000000000000001")?;
//!     repo.put_if_absent(&wal, vec![0u8; 1024]).await?;
//!     assert_eq!(repo.head(&wal).await?.size, 1024);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! | feature | adds | extra dependencies | default |
//! |---|---|---|---|
//! | `object-store` | `ObjectStoreStorage`: S3 and S3-compatible, GCS, Azure, in-memory | object_store (aws, gcp, azure; reqwest, rustls) | no |
//! | `ssh` | `SshCommand` (system `ssh`) and `Rsync` (system `rsync`) | shlex, tokio `process` | no |
//! | `conformance` | the public `conformance` suite every `Storage` must pass | none | no |
//! | `testing` | `FaultyStorage`, a fault-injecting wrapper for tests | none | no |
//!
//! # Design notes
//!
//! - **A small trait.** [`Storage`] has six required methods; everything else is in
//!   [`StorageExt`], implemented once for every storage. Optional semantics are
//!   explicit: [`PutMode::Create`] fails with [`Error::Unsupported`] where a backend
//!   cannot do it atomically, rather than being emulated with a racy head-then-put.
//! - **Atomic puts everywhere.** Readers never see half an object: `archive_command`
//!   safety depends on it. A put whose payload stream fails, or whose future is
//!   dropped, leaves no object behind.
//! - **Semantic errors.** [`Error`] says what happened (not found, already exists,
//!   permission denied, unsupported) and [`Error::is_retryable`] whether to try again.
//! - **Streams are `futures::Stream`s and readers are `tokio::io::AsyncRead`s.** They are
//!   the vocabulary of async Rust; the only other foreign type in the API is
//!   `object_store::ObjectStore`, taken by the constructor of the cloud backend.
//! - **System `ssh` and `rsync`.** As Barman does: users keep their `~/.ssh/config`,
//!   agents and known hosts, and their `ssh_command`.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(clippy::future_not_send)]

#[cfg(feature = "object-store")]
mod cloud;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod copy;
pub mod durable;
mod error;
#[cfg(feature = "testing")]
mod faulty;
mod limit;
mod local;
mod location;
mod memory;
#[cfg(feature = "ssh")]
mod rsync;
#[cfg(feature = "ssh")]
mod ssh;
mod storage;

#[cfg(feature = "object-store")]
pub use cloud::{CloudOptions, ObjectStoreStorage};
pub use copy::{CopiedFile, CopyProgress, CopyStats, LocalCopier, Reuse};
pub use durable::TEMP_FILE_PREFIX;
pub use error::{BoxError, Error, Result};
#[cfg(feature = "testing")]
pub use faulty::{FaultyStorage, Operation};
pub use limit::{Limited, RateLimiter};
pub use local::LocalStorage;
pub use location::Location;
pub use memory::MemoryStorage;
#[cfg(feature = "ssh")]
pub use rsync::{Rsync, RsyncPath};
#[cfg(feature = "ssh")]
pub use ssh::{RemoteOutput, SshCommand, quote_for_shell};
pub use storage::{
    ByteStream, DynStorage, GetResult, ListResult, ObjectMeta, ObjectStream, PutMode, PutPayload,
    Storage, StorageExt,
};
