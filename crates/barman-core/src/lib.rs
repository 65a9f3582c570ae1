//! The barman-rs engine.
//!
//! Despite its name, `barman-core` is the application layer that sits *above* the
//! vocabulary crates (`barman-wal`, `barman-catalog`) and the byte mover
//! (`barman-transport`). It holds configuration ([`config`]), the WAL archive
//! ([`archive`]), the repository seam ([`repository`]: a server's objects over any
//! storage), backups ([`backup`]), the catalogue and retention ([`catalogue`]) and
//! recovery ([`recover`]).
//!
//! # Async and blocking: the rule
//!
//! Every operation is one of two kinds, and its signature says which:
//!
//! - **`async fn`** ([`backup::backup`], [`recover::recover`], [`recover::preview`],
//!   [`check::check`], [`diagnose::diagnose`], [`repo::BackupRepo::lock_backup_shared`],
//!   the [`postgres`] client): never blocks the caller's runtime. Network I/O is
//!   async; processes run through `tokio::process`; whatever walks or reads a tree,
//!   parses a large file (xlog.db, the catalogue), unpacks a tar, runs a hook script
//!   or sleeps between retries runs on tokio's blocking pool. These can be awaited on
//!   a current-thread runtime next to other work. The repository's objects
//!   (`backup.info`, markers, WAL files) are read and written through the async
//!   [`repository::Repository`], over any [`barman_transport::Storage`].
//! - **plain `fn`** (the WAL archive: [`archive::WalArchive::put_wal`], `get_wal`,
//!   `archive_wal`, `rebuild_xlogdb`; the catalogue: [`catalogue::ServerBackups`],
//!   retention, delete; the configuration): synchronous, and blocking (files are
//!   fsynced). Call them from a thread, or from async code through
//!   `tokio::task::spawn_blocking`, never directly inside an async task: one put-wal
//!   holds its thread for the whole validate-compress-fsync of a segment. They reach
//!   the repository seam through core's own one-thread I/O runtime, whatever runtime
//!   the caller has (or none).
//!
//! `examples/embed.rs` runs both kinds on a multi-threaded runtime and prints the worst
//! stall of a heartbeat task.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod archive;
#[cfg(feature = "postgres")]
pub mod backup;
pub mod catalogue;
#[cfg(feature = "postgres")]
pub mod check;
pub mod compression;
pub mod config;
pub mod cron;
pub mod datapage;
#[cfg(feature = "postgres")]
pub mod diagnose;
pub mod encryption;
mod error;
pub mod export;
mod filter;
mod fsutil;
pub mod hooks;
pub mod leftovers;
pub mod parallel;
pub mod postgres;
pub mod processes;
#[cfg(feature = "postgres")]
pub mod receive;
pub mod recover;
pub mod repo;
pub mod repository;
mod retry;
#[cfg(feature = "postgres")]
pub mod sandbox;
pub mod secrets;
#[cfg(feature = "postgres")]
pub mod sync;
mod tarball;

pub use error::{Error, Refusal, Result};

/// The Barman release whose commands, options, configuration and files barman-rs
/// follows: what `barman -v` prints first, and what `sync-info` tells a passive node.
pub const BARMAN_VERSION: &str = "3.19.1";

/// `v` as pretty JSON with Barman's 4-space indent (`json.dumps(..., indent=4)`).
pub(crate) fn json_pretty4(v: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Runs blocking work (file trees, scripts, waits) on tokio's blocking pool and awaits
/// it, so that an async operation never blocks its caller's runtime. A task that
/// panicked (or was cancelled) is an [`Error::Io`] of `op` on `path`, so that the
/// operation fails as for any other error (a backup is then FAILED, its hooks run).
pub(crate) async fn blocking<T: Send + 'static>(
    op: &'static str,
    path: impl Into<std::path::PathBuf>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io(op, path, std::io::Error::other(e)))
}

/// Runs `fut` to completion for a plain (blocking) fn of this crate, on the crate's
/// own I/O runtime (one worker thread, started on first use).
///
/// Plain fns run on a thread of their own or on the blocking pool, never inside async
/// code (the crate's rule); the storage futures they wait for need a runtime, whichever
/// the caller has or has not.
pub(crate) fn wait<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    static RUNTIME: std::sync::OnceLock<std::io::Result<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("barman-core-io")
            .enable_all()
            .build()
    });
    let rt = rt.as_ref().map_err(|e| {
        Error::io(
            "starting",
            "the I/O runtime",
            std::io::Error::new(e.kind(), e.to_string()),
        )
    })?;
    let _entered = rt.enter();
    futures::executor::block_on(fut)
}

/// The programs of the PostgreSQL host (`barman-wal-archive`, `barman-wal-restore`),
/// which live in the light `barman-client` crate.
pub use barman_client as client;
