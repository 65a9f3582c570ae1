//! The barman-rs engine.
//!
//! Despite its name, `barman-core` is the application layer that sits *above* the
//! vocabulary crates (`barman-wal`, `barman-catalog`) and the byte mover
//! (`barman-transport`). It holds configuration ([`config`]) and will hold the
//! operations (check, backup, archive, receive-wal, cron, retention, recover, verify).
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod archive;
pub mod backup;
pub mod backups;
pub mod check;
pub mod client;
pub mod config;
pub mod cron;
pub mod diagnose;
mod error;
mod fsutil;
pub mod postgres;
pub mod repo;

pub use error::{Error, Result};
