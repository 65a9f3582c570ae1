//! The crate's single error type.

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Python literal that cannot be read ([`PyValue::parse`](crate::PyValue::parse)):
/// what is wrong, and at which byte where that is known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct LiteralError {
    /// What is wrong.
    pub reason: String,
}

/// A timestamp that is not one Barman writes ([`PyDateTime`](crate::PyDateTime)'s
/// `FromStr`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: expected YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]")]
pub struct TimestampError {
    /// The text.
    pub input: String,
}

/// Why a recovery cannot reach its target ([`Error::ImpossibleTarget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Impossible {
    /// The target itself cannot be used (an unreadable time, `current` with `auto`,
    /// a kind of target `auto` cannot choose a backup for).
    InvalidTarget,
    /// No backup ends before the target.
    NoBackup,
    /// The chosen backup cannot be restored (its status, or missing WAL bounds).
    BackupNotRestorable,
    /// The target is before the end of the backup.
    BeforeBackupEnd,
    /// The target timeline does not descend from the backup's.
    TimelineNotDescendant,
    /// A timeline's history file is not in the archive.
    MissingHistory,
    /// A WAL segment the backup itself needs (from its start to its end) is not in the
    /// archive: the backup cannot be made consistent.
    BackupWalMissing,
    /// A WAL segment after the backup, up to the target, is not in the archive yet
    /// (archiving may catch up: the one kind worth trying again later).
    MissingWal,
}

/// Everything that can go wrong in `barman-catalog`.
///
/// Variants name what was wrong and where: the file, the line, the key and the value.
///
/// # Examples
///
/// ```
/// use barman_catalog::{BackupInfo, Error};
///
/// let err = BackupInfo::parse("20260101T000000-backup.info", "status=DONE\nsize=big\n").unwrap_err();
/// assert!(matches!(err, Error::InvalidValue { line: 2, .. }));
/// assert_eq!(
///     err.to_string(),
///     "20260101T000000-backup.info, line 2: invalid value for size: \"big\" (expected an integer)"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line that is not `key=value`.
    #[error("{file}, line {line}: expected key=value, found {text:?}")]
    InvalidLine {
        /// The file (or a description of the input).
        file: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A key this version does not know.
    #[error("{file}, line {line}: unknown key {key:?} (written by a newer Barman?)")]
    UnknownKey {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
    },
    /// A value that cannot be read for its key.
    #[error("{file}, line {line}: invalid value for {key}: {value:?} ({reason})")]
    InvalidValue {
        /// The file.
        file: String,
        /// 1-based line number (0 when the value does not come from a file).
        line: usize,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Text that is not a backup id (`YYYYMMDDTHHMMSS`).
    #[error("invalid backup id {input:?}: expected YYYYMMDDTHHMMSS")]
    InvalidBackupId {
        /// The text.
        input: String,
    },
    /// A `backup_manifest` that cannot be read.
    #[error("{file}: invalid backup manifest: {reason}")]
    InvalidManifest {
        /// The manifest file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A backup id, name or shortcut that matches no backup.
    #[error("unknown backup {wanted:?} in server {server:?}")]
    UnknownBackup {
        /// What was asked for.
        wanted: String,
        /// The server.
        server: String,
    },
    /// A backup name that matches more than one backup.
    #[error("backup name {name:?} in server {server:?} is ambiguous: it names {ids}")]
    AmbiguousBackupName {
        /// The name.
        name: String,
        /// The server.
        server: String,
        /// The matching ids, comma separated.
        ids: String,
    },
    /// A backup name that cannot be used (reserved word or a backup id).
    #[error("invalid backup name {name:?}: {reason}")]
    InvalidBackupName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A retention policy that does not follow Barman's grammar.
    #[error(
        "invalid retention policy {input:?}: expected \"REDUNDANCY n\" or \"RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS\""
    )]
    InvalidRetentionPolicy {
        /// The text.
        input: String,
    },
    /// A recovery target that cannot be reached with the given backup and archive.
    #[error("impossible recovery target: {reason}")]
    ImpossibleTarget {
        /// What a caller branches on.
        kind: Impossible,
        /// Why, for a person.
        reason: String,
    },
    /// An error from the WAL vocabulary.
    #[error(transparent)]
    Wal(#[from] barman_wal::Error),
}
