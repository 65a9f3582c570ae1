//! One module per group of subcommands; each exposes `exec` functions taking the
//! [`Context`](crate::Context) and the command's arguments.

pub mod backup;
pub mod backups;
pub mod diagnose;
pub mod recover;
pub mod server;
pub mod servers;
pub mod wal;
