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
    /// that names the server, backup, path or option involved; `kind` is what a caller
    /// branches on.
    #[error("{reason}")]
    Refused {
        /// What kind of refusal.
        kind: Refusal,
        /// Why, for a person.
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
    // The archive's conditions, with Barman's messages where Barman has one. The
    // command line maps `InvalidWalName` and `OutputFile` of get-wal to exit code 3, as
    // Barman does.
    /// A name that is not a WAL file name.
    #[error("'{name}' is not a valid wal file name")]
    InvalidWalName {
        /// The name given.
        name: String,
        /// Why it is not valid.
        #[source]
        source: barman_wal::Error,
    },
    /// get-wal found the file nowhere.
    #[error("WAL file '{name}' not found in server '{server}'")]
    WalNotFound {
        /// The name asked for.
        name: String,
        /// The server.
        server: String,
    },
    /// get-wal could not create its output file.
    #[error("Unable to open '{}' file: {source}", path.display())]
    OutputFile {
        /// The output file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the operation's lock.
    #[error("another {operation} is already running for server {server}")]
    Busy {
        /// The operation (`archive-wal`).
        operation: &'static str,
        /// The server.
        server: String,
    },
    /// The operation was interrupted (a signal): what it had made was removed.
    #[error("{operation} of server {server} was interrupted: its copy was stopped and removed")]
    Interrupted {
        /// The operation (`sandbox`).
        operation: &'static str,
        /// The server.
        server: String,
    },
    /// The put-wal tar stream could not be read.
    #[error("reading the put-wal tar stream for server '{server}': {source}")]
    Tar {
        /// The server.
        server: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A put-wal tar member that is not a regular file.
    #[error("Unsupported file type '{kind}' for file '{name}' in put-wal for server '{server}'")]
    UnsupportedFileType {
        /// The tar type flag, as a character.
        kind: char,
        /// The member's name.
        name: String,
        /// The server.
        server: String,
    },
    /// A put-wal tar member whose name has a directory part or is not a WAL file name.
    #[error("Unsupported filename '{name}' in put-wal for server '{server}'")]
    UnsupportedFilename {
        /// The member's name.
        name: String,
        /// The server.
        server: String,
    },
    /// A put-wal tar member bigger than any WAL file can be.
    #[error(
        "File '{name}' of {size} bytes is too big for a WAL file in put-wal for server '{server}'"
    )]
    MemberTooBig {
        /// The member's name.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// The server.
        server: String,
    },
    /// A file of the put-wal stream with no line in `SHA256SUMS`/`MD5SUMS`.
    #[error("Missing checksum for file '{name}' in put-wal for server '{server}'")]
    MissingChecksum {
        /// The file.
        name: String,
        /// The server.
        server: String,
    },
    /// A checksum line of the put-wal stream for a file the stream does not hold.
    #[error("Checksum without corresponding file '{name}' in put-wal for server '{server}'")]
    ChecksumWithoutFile {
        /// The file named by the checksum line.
        name: String,
        /// The server.
        server: String,
    },
    /// A file of the put-wal stream whose checksum does not match.
    #[error(
        "Bad file checksum '{found}' (should be {expected}) for file '{name}' in put-wal for server '{server}'"
    )]
    BadChecksum {
        /// The file.
        name: String,
        /// The checksum of what was received.
        found: String,
        /// The checksum the stream announced.
        expected: String,
        /// The server.
        server: String,
    },
    /// check-wal-archive: the archive is not safe for a new cluster.
    #[error("WAL archive check failed for server {server}: {reason}")]
    ArchiveNotUsable {
        /// The server.
        server: String,
        /// Barman's reason (`Expected empty archive`, ...).
        reason: String,
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

/// Why an operation refused ([`Error::Refused`]): what a caller can branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The request or the configuration is invalid: a value, a path, a combination of
    /// options. Asking again the same way fails the same way.
    InvalidRequest,
    /// barman-rs does not do this (yet), or not for this PostgreSQL version.
    Unsupported,
    /// The server cannot do it in its state: inactive, passive, its data directory
    /// unreachable.
    ServerState,
    /// Another process holds what this needs (a backup, a delete, a lock): try again
    /// later.
    Busy,
    /// The backup cannot be used for this: its status, a keep request, the minimum
    /// redundancy, a delete in progress.
    BackupState,
    /// It would overwrite or mix with something else: a destination that is not empty,
    /// a name taken, another cluster's data.
    Conflict,
    /// The repository does not hold what it should (a damaged or incomplete backup).
    Damaged,
    /// The PostgreSQL session a backup needed was lost.
    ConnectionLost,
}

impl Error {
    /// The kind of refusal, for an [`Error::Refused`].
    ///
    /// ```
    /// use barman_core::{Error, Refusal};
    /// let e = Error::Refused { kind: Refusal::Busy, reason: "a backup runs".into() };
    /// assert_eq!(e.refusal(), Some(Refusal::Busy));
    /// assert!(e.is_retryable());
    /// ```
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Error::Refused { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether trying again later may succeed without anything else changing: another
    /// process held what was needed, a connection was lost, a transient network or
    /// storage failure, WAL a recovery needs that is not archived yet.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Refused { kind, .. } => matches!(kind, Refusal::Busy | Refusal::ConnectionLost),
            Error::Busy { .. } => true,
            Error::Transport(e) => e.is_retryable(),
            Error::Postgres(e) => e.is_retryable(),
            // WAL that archiving has not delivered yet.
            Error::Catalog(barman_catalog::Error::ImpossibleTarget {
                kind: barman_catalog::Impossible::MissingWal,
                ..
            }) => true,
            _ => false,
        }
    }

    /// The exit code a client program reports for this error (Barman's: 2 local, 3 SSH
    /// connection, else the remote command's).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Remote { code, .. } => *code,
            _ => 2,
        }
    }

    pub(crate) fn refused(kind: Refusal, reason: impl Into<String>) -> Error {
        Error::Refused {
            kind,
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

/// The first line of `e`'s message (for a one-line warning or status).
pub(crate) fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}
