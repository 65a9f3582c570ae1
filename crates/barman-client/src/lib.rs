//! The programs that run on the PostgreSQL host and reach the Barman host over SSH:
//! `barman-wal-archive` (an `archive_command`) and `barman-wal-restore` (a
//! `restore_command`), as a small library.
//!
//! They run once per WAL segment, so this crate stays light: it depends on the WAL
//! vocabulary (`barman-wal`) and the `ssh` command builder of `barman-transport`, and on
//! neither the PostgreSQL client, TLS, nor the configuration reader of `barman-core`.
//!
//! - [`WalArchiveClient`]: a WAL file sent to `barman put-wal` as Barman's tar stream.
//! - [`WalRestoreClient`]: a WAL file fetched from `barman get-wal`, with prefetching
//!   into a private spool.
//!
//! # Example
//!
//! ```no_run
//! use barman_client::{Restored, WalRestoreClient};
//!
//! let mut client = WalRestoreClient::new("backup.example.com", "pg");
//! client.parallel = 4;
//! match client.restore("000000010000000000000042", "pg_wal/RECOVERYXLOG".as_ref()) {
//!     Ok(Restored::FromSpool) => println!("prefetched earlier"),
//!     Ok(_) => println!("fetched"),
//!     Err(e) => std::process::exit(e.exit_code()),
//! }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

use std::path::PathBuf;

mod archive;
mod host;
mod restore;
mod spool;

pub use archive::{WalArchiveClient, compression_choice};
pub use host::BarmanHost;
pub use restore::{DEFAULT_SPOOL_DIR, RestoreError, Restored, WalRestoreClient};
pub use spool::{effective_uid, segment_size_of};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the client programs can fail with. Messages are one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A remote command failed, or a local condition with Barman's exit code for it.
    #[error("{what}")]
    Remote {
        /// What failed.
        what: String,
        /// The exit code to report.
        code: i32,
    },
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// WAL content or a WAL file name is invalid.
    #[error("{path}: {source}")]
    Wal {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: barman_wal::Error,
    },
    /// The `ssh` command.
    #[error(transparent)]
    Transport(#[from] barman_transport::Error),
}

impl Error {
    /// The exit code a client program reports for this error (Barman's: 2 local, 3 SSH
    /// connection, else the remote command's).
    ///
    /// ```
    /// let e = barman_client::Error::Remote { what: "x".into(), code: 3 };
    /// assert_eq!(e.exit_code(), 3);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Remote { code, .. } => *code,
            _ => 2,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
