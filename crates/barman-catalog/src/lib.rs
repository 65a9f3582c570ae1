//! The backup catalogue of barman-rs.
//!
//! This crate will hold the model of Barman's on-disk catalogue (`backup.info`, the
//! `xlog.db` WAL index, keep annotations), retention policy evaluation and recovery
//! planning, all sans-IO on top of [`barman-wal`](https://docs.rs/barman-wal).
//! It has no public API yet.
#![deny(missing_docs)]
