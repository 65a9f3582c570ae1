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
//! TLS over TCP follows libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` (on
//! rustls); unix sockets never use TLS, as with libpq.
//!
//! [`replication`] is a physical replication client of our own (tokio-postgres cannot
//! stream WAL), with the same conninfo and TLS rules.
//!
//! [`ConnInfo`] is always there; [`PgServer`] (tokio-postgres, rustls) and
//! [`replication`] need the `postgres` feature, on by default.

#[cfg(feature = "postgres")]
mod client;
mod conninfo;
mod error;
#[cfg(feature = "postgres")]
pub mod replication;
#[cfg(feature = "postgres")]
mod tls;

#[cfg(feature = "postgres")]
pub use client::{
    ArchiverStats, BackupStart, BackupStop, CurrentWal, MINIMAL_VERSION, PgServer, RemoteStatus,
    ReplicationClient, ReplicationSlot, ReplicationStatus, ReplicationTarget, Settings, SwitchWal,
};
pub use conninfo::{ConnInfo, DEFAULT_PORT, DEFAULT_SOCKET_DIR, pgpass_lookup};
pub use error::{BoxedSource, PgError, ServerError};
