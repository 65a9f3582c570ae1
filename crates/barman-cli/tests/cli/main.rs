//! The `barman` binary end to end: a real PostgreSQL 15 whose `archive_command` is
//! `barman put-wal`, then bad input handed to it.

mod admin;
mod backup;
mod backups;
mod custom_compression;
mod drill;
mod encryption;
mod export;
mod geo;
mod interop;
mod malformed;
mod ops;
mod ops_pg;
mod options;
mod put_wal;
mod receive_wal;
mod recover;
mod rpo_zero;
mod sandbox;
mod servers;
mod standby;
mod support;
mod surface;
mod trust;
mod wal_archive;
mod wal_restore;
