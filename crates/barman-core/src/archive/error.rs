//! Errors of the archive operations.

use std::path::PathBuf;

use crate::Error;

/// What an archive operation other than [`put_wal`](super::WalArchive::put_wal) can fail
/// with: the crate's [`Error`], or one of the conditions Barman reports with a message
/// of its own (kept here word for word where Barman has one).
///
/// The command line maps [`ArchiveError::InvalidName`] and
/// [`ArchiveError::OutputFile`] of `get-wal` to exit code 3, as Barman does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// An I/O, WAL, catalogue or duplicate error of the store step.
    #[error(transparent)]
    Core(#[from] Error),
    /// A name that is not a WAL file name.
    #[error("'{name}' is not a valid wal file name")]
    InvalidName {
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
}

/// A failed step of a durable write is an I/O error of the store step.
impl From<barman_transport::durable::FsError> for ArchiveError {
    fn from(e: barman_transport::durable::FsError) -> ArchiveError {
        ArchiveError::Core(e.into())
    }
}
