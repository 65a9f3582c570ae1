//! The barman-rs engine.
//!
//! Despite its name, `barman-core` is the application layer that sits *above* the
//! vocabulary crates (`barman-wal`, `barman-catalog`) and the byte mover
//! (`barman-transport`): it will hold configuration and the operations (check, backup,
//! archive, receive-wal, cron, retention, recover, verify). It has no public API yet.
#![deny(missing_docs)]
