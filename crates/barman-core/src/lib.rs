//! The barman-rs engine.
//!
//! Despite its name, `barman-core` is the application layer that sits *above* the
//! vocabulary crates (`barman-wal`, `barman-catalog`) and the byte mover
//! (`barman-transport`). It holds configuration ([`config`]), the WAL archive
//! ([`archive`]), recovery ([`recover`]), and will hold the other operations (backup,
//! receive-wal, retention, verify).
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod archive;
pub mod backup;
pub mod backups;
pub mod check;
pub mod config;
pub mod cron;
pub mod datapage;
pub mod diagnose;
mod error;
mod fsutil;
pub mod hooks;
pub mod leftovers;
pub mod postgres;
pub mod recover;
pub mod repo;
mod tarball;

pub use error::{Error, Result};

/// The programs of the PostgreSQL host (`barman-wal-archive`, `barman-wal-restore`),
/// which live in the light `barman-client` crate.
pub use barman_client as client;
