//! The crate's single error type.

use std::io;
use std::path::PathBuf;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a lower layer, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while moving bytes.
///
/// The variants are semantic: callers branch on [`Error::NotFound`] or
/// [`Error::AlreadyExists`] without knowing which backend they talk to, and ask
/// [`Error::is_retryable`] whether trying again may help. Lower-level errors are kept
/// as the [`source`](std::error::Error::source), never flattened into a string.
///
/// # Examples
///
/// ```
/// use barman_transport::{Error, Location, MemoryStorage, StorageExt};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let storage = MemoryStorage::new();
/// let err = storage.get_bytes(&Location::new("wals/missing")?).await.unwrap_err();
/// assert!(matches!(err, Error::NotFound { .. }));
/// assert!(!err.is_retryable());
/// assert_eq!(err.to_string(), "wals/missing: not found");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object at this location.
    #[error("{location}: not found")]
    NotFound {
        /// The location that was asked for.
        location: String,
    },
    /// A conditional put ([`PutMode::Create`](crate::PutMode::Create)) found an object
    /// already there.
    #[error("{location}: already exists")]
    AlreadyExists {
        /// The location that was written.
        location: String,
    },
    /// The operating system or the service refused access.
    #[error("{location}: permission denied: {source}")]
    PermissionDenied {
        /// The location that was accessed.
        location: String,
        /// What refused, with the real path or URL where there is one.
        source: BoxError,
    },
    /// A name that is not a valid [`Location`](crate::Location), or one that would
    /// leave the storage root.
    #[error("invalid location {location:?}: {reason}")]
    InvalidLocation {
        /// The rejected name.
        location: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A byte range that starts after the end of the object, or ends before it starts.
    #[error("{location}: invalid range {start}..{end} for an object of {size} bytes")]
    InvalidRange {
        /// The object.
        location: String,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The object's size.
        size: u64,
    },
    /// The backend cannot do this operation.
    #[error("{operation} is not supported by the {transport} transport")]
    Unsupported {
        /// The operation, for example `put if absent of a large object`.
        operation: &'static str,
        /// The backend's name, for example `local` or `s3`.
        transport: &'static str,
    },
    /// The data handed to a put failed while being read (for example the source
    /// stream was cut). Nothing was written.
    #[error("{location}: reading the data to store failed: {source}")]
    Payload {
        /// The location that was being written.
        location: String,
        /// The error of the source stream.
        source: io::Error,
    },
    /// Any other failure of the backend (I/O error, full disk, network, service).
    #[error("{transport} error on {location}: {source}")]
    Backend {
        /// The backend's name.
        transport: &'static str,
        /// The location, or the path for errors outside a storage.
        location: String,
        /// Whether trying again may help.
        retryable: bool,
        /// The underlying error.
        source: BoxError,
    },
    /// A program (`ssh`, `rsync`) could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why it could not be started.
        source: io::Error,
    },
    /// A program (`ssh`, `rsync`, the remote command) failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line, quoted as a shell would read it.
        command: String,
        /// Its exit code, or `None` when it was killed by a signal.
        code: Option<i32>,
        /// A printable form of the exit status.
        status: String,
        /// The end of its standard error, trimmed.
        stderr: String,
        /// Whether trying again may help (ssh's exit code 255 means the connection
        /// failed; rsync has a few such codes too).
        retryable: bool,
    },
    /// A configuration value (an `ssh_command`, a storage URL, an option) that cannot be
    /// used.
    #[error("invalid {what} {value:?}: {reason}")]
    Config {
        /// What was being configured, for example `ssh_command`.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A local file-tree copy failed on one path.
    #[error("copying {path}: {source}")]
    Copy {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    /// Whether trying the same operation again may succeed: true for transient
    /// backend errors (timeouts, throttling, connection resets, as the backend judges
    /// them) and for connection failures of `ssh`; false for semantic errors such as
    /// [`Error::NotFound`] or [`Error::AlreadyExists`].
    ///
    /// # Examples
    ///
    /// ```
    /// use barman_transport::Error;
    ///
    /// let e = Error::Unsupported { operation: "put if absent", transport: "example" };
    /// assert!(!e.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Backend { retryable, .. } | Error::Command { retryable, .. } => *retryable,
            Error::Copy { source, .. } => io_retryable(source),
            _ => false,
        }
    }

    /// Maps an I/O error on `location` to the semantic variants.
    pub(crate) fn from_io(
        transport: &'static str,
        location: &str,
        path: Option<&std::path::Path>,
        op: &'static str,
        source: io::Error,
    ) -> Error {
        let location = location.to_owned();
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound { location },
            io::ErrorKind::AlreadyExists => Error::AlreadyExists { location },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                location,
                source: Box::new(PathError::new(op, path, source)),
            },
            _ => Error::Backend {
                transport,
                location,
                retryable: io_retryable(&source),
                source: Box::new(PathError::new(op, path, source)),
            },
        }
    }
}

pub(crate) fn io_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::TimedOut
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// An I/O error with the operation and the real path it happened on.
#[derive(Debug)]
pub(crate) struct PathError {
    op: &'static str,
    path: Option<PathBuf>,
    source: io::Error,
}

impl PathError {
    pub(crate) fn new(op: &'static str, path: Option<&std::path::Path>, source: io::Error) -> Self {
        PathError {
            op,
            path: path.map(ToOwned::to_owned),
            source,
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} {}: {}", self.op, p.display(), self.source),
            None => write!(f, "{}: {}", self.op, self.source),
        }
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
