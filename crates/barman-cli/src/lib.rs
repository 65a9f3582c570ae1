//! The `barman` command-line tools.
//!
//! This crate will hold the `barman`, `barman-wal-archive` and `barman-wal-restore`
//! binaries: argument parsing, one call into `barman-core` per command, console or
//! JSON rendering and exit codes. It has no commands yet.
#![deny(missing_docs)]
