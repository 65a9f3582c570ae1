//! PostgreSQL connections: libpq-compatible connection strings ([`ConnInfo`]) and a
//! small SQL client ([`PgServer`]) with the queries Barman runs.
//!
//! # Design notes
//!
//! tokio-postgres reads no `PG*` variable and no `~/.pgpass`, knows only part of libpq's
//! keywords and rejects the rest. Barman users write libpq connection strings, so
//! [`ConnInfo`] is our own libpq layer: it parses both forms, takes defaults from an
//! environment map the caller passes ([`ConnInfo::with_env`]) and the password from a
//! password file's content ([`ConnInfo::with_pgpass`]), then builds the driver's
//! configuration. No driver type appears in the public API.
//!
//! TLS is not built in yet: see [`ConnInfo`]'s conversion notes (unix sockets and
//! `sslmode` up to `prefer` work; `require` and `verify-*` over TCP are an error).

mod client;
mod conninfo;
mod error;

pub use client::{
    ArchiverStats, BackupStart, BackupStop, CurrentWal, MINIMAL_VERSION, PgServer, RemoteStatus,
    ReplicationSlot, Settings, SwitchWal,
};
pub use conninfo::{ConnInfo, DEFAULT_PORT, DEFAULT_SOCKET_DIR, pgpass_lookup};
pub use error::{BoxedSource, PgError};
