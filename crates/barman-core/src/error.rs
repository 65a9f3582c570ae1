//! The crate's error type.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an operation of barman-core can fail with. Messages are one line and name
/// what was wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A connection string, a PostgreSQL connection or query failed.
    #[error(transparent)]
    Postgres(#[from] crate::postgres::PgError),
    /// A server the configuration does not have.
    #[error("unknown server {name:?}")]
    UnknownServer {
        /// The name asked for.
        name: String,
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
    /// A catalogue file is invalid.
    #[error(transparent)]
    Catalog(#[from] barman_catalog::Error),
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
    /// A WAL file arrived again with different content: the stored one is kept, the new
    /// one was set aside.
    #[error(
        "WAL file {name} is already archived with different content: the archived copy is kept, the new one was set aside as {kept_as}"
    )]
    DuplicateDifferent {
        /// The WAL file name.
        name: String,
        /// Where the rejected copy went.
        kept_as: PathBuf,
    },
    /// A remote command (over SSH) failed.
    #[error("{what}")]
    Remote {
        /// What failed.
        what: String,
        /// The exit code to report.
        code: i32,
    },
    /// A WAL file from another cluster than the server's.
    #[error(
        "{path}: WAL from system {found}, but server {server} archives system {expected} (identity.json)"
    )]
    ForeignCluster {
        /// The file.
        path: PathBuf,
        /// The server.
        server: String,
        /// Its system id.
        found: u64,
        /// The server's system id.
        expected: u64,
    },
    /// Moving bytes failed (copy, SSH, rsync, object store).
    #[error(transparent)]
    Transport(#[from] barman_transport::Error),
    /// What was asked cannot be done safely; nothing was changed. The reason is one line
    /// that names the server, backup, path or option involved.
    #[error("{reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// A catalogue entry (`backup.info`) cannot be read: deletes and retention refuse
    /// to act on a catalogue they cannot see whole.
    #[error(
        "server {server}: backup catalogue entry {path} cannot be read ({reason}): repair or move it away"
    )]
    UnreadableBackup {
        /// The server.
        server: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A retry hook script exited 63: the operation it guards stops there.
    #[error("server {server}: {option} was aborted (got exit status 63, barman requested to stop)")]
    HookAborted {
        /// The server.
        server: String,
        /// The script's option (`pre_backup_retry_script`, ...).
        option: String,
    },
    /// An external program (pg_basebackup, rsync, ssh, a hook) failed.
    #[error("{program} failed ({status}): {detail}")]
    Program {
        /// The program.
        program: String,
        /// Its exit status, as text.
        status: String,
        /// The last line of its error output, or what else went wrong.
        detail: String,
    },
}

/// A failed step of a durable write is an I/O error on its path.
impl From<barman_transport::durable::FsError> for Error {
    fn from(e: barman_transport::durable::FsError) -> Error {
        Error::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

impl Error {
    /// The exit code a client program reports for this error (Barman's: 2 local, 3 SSH
    /// connection, else the remote command's).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Remote { code, .. } => *code,
            _ => 2,
        }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Error {
        Error::Refused {
            reason: reason.into(),
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
