//! The crate's single error type.

use crate::{Codec, Lsn, PgMajorVersion, TimelineId};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `barman-wal`.
///
/// Each variant carries the offending input and, where it has one, its position
/// (line number, byte offset, LSN), so the message alone tells what was wrong and where.
///
/// # Examples
///
/// ```
/// use barman_wal::{Error, Lsn};
///
/// let err = "16/G374D848".parse::<Lsn>().unwrap_err();
/// assert!(matches!(err, Error::InvalidLsn { .. }));
/// assert!(err.to_string().contains("16/G374D848"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Text that is not an LSN in PostgreSQL's `X/Y` form.
    #[error(
        "invalid LSN {input:?}: expected two hexadecimal numbers of 1 to 8 digits separated by '/'"
    )]
    InvalidLsn {
        /// The rejected text.
        input: String,
    },
    /// Text that is not a timeline id.
    #[error("invalid timeline {input:?}: {reason}")]
    InvalidTimeline {
        /// The rejected text.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A WAL segment size that PostgreSQL cannot use.
    #[error("invalid WAL segment size {bytes}: must be a power of two between 1 MiB and 1 GiB")]
    InvalidSegmentSize {
        /// The rejected size in bytes.
        bytes: u64,
    },
    /// A name that is not a WAL archive file name.
    #[error("invalid WAL file name {input:?}: {reason}")]
    InvalidWalFileName {
        /// The rejected name.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Segment arithmetic that would leave the LSN space.
    #[error("WAL position out of range: {what}")]
    OutOfRange {
        /// What overflowed.
        what: String,
    },
    /// A `CopyData` payload of the replication protocol that cannot be decoded.
    #[error("invalid replication message {} of {len} bytes: {reason}", message_kind(*.kind))]
    InvalidReplicationMessage {
        /// Its first byte (the message kind).
        kind: u8,
        /// Its length.
        len: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A malformed line in a text file: a timeline history file, a `backup_label`, a
    /// `tablespace_map`.
    #[error("{file}, line {line}: {reason}: {text:?}")]
    InvalidLine {
        /// Which kind of file (for example `timeline history file 00000002.history`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A required key missing from a `backup_label`.
    #[error("{file}: missing {key:?} line")]
    MissingKey {
        /// Which kind of file.
        file: String,
        /// The key that is missing.
        key: &'static str,
    },
    /// Something that cannot be written in a file's format (a newline in a reason...).
    #[error("cannot write {file}: {reason}")]
    Unwritable {
        /// Which kind of file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A PostgreSQL major version outside the supported range (10 to 18).
    #[error("unsupported PostgreSQL version {input:?}: supported major versions are 10 to 18")]
    UnsupportedVersion {
        /// The version as given.
        input: String,
    },
    /// A WAL segment whose content does not match what its name and the cluster promise.
    #[error("WAL segment {segment}: {problem}")]
    InvalidSegment {
        /// The segment's file name.
        segment: String,
        /// What is wrong, and where.
        problem: SegmentProblem,
    },
    /// A compression name Barman does not know.
    #[error(
        "unknown compression {name:?}: expected one of none, gzip, pigz, pygzip, bzip2, pybzip2, zstd, lz4, xz, snappy"
    )]
    UnknownCompression {
        /// The rejected name.
        name: String,
    },
    /// A compression level that is neither `low`, `medium`, `high` nor an integer.
    #[error("invalid compression level {input:?}: expected low, medium, high or an integer")]
    InvalidCompressionLevel {
        /// The rejected text.
        input: String,
    },
    /// A codec whose cargo feature is not enabled in this build.
    #[error(
        "{codec} compression is not available: barman-wal was built without its `{codec}` feature"
    )]
    CodecUnavailable {
        /// The codec that was asked for.
        codec: Codec,
    },
    /// An I/O error from a reader or writer handed to this crate.
    #[error("I/O error while {context}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with a WAL segment (see [`Error::InvalidSegment`]).
///
/// Offsets are byte offsets inside the segment file; LSNs are positions in the WAL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentProblem {
    /// The file is shorter than what is needed.
    #[error("truncated: {actual} bytes, expected {expected}")]
    Truncated {
        /// Size seen.
        actual: u64,
        /// Size required.
        expected: u64,
    },
    /// The file is longer than the segment size.
    #[error("too long: more than {expected} bytes")]
    TooLong {
        /// The segment size.
        expected: u64,
    },
    /// The page magic is not one of a known PostgreSQL version.
    #[error(
        "page at offset {offset}: magic {found:#06X} is not the WAL page magic of any PostgreSQL version from 10 to 18 (not a WAL file?)"
    )]
    UnknownMagic {
        /// Offset of the page.
        offset: u64,
        /// Magic read.
        found: u16,
    },
    /// The page magic belongs to another PostgreSQL version than the expected one.
    #[error(
        "page at offset {offset}: magic {found:#06X} is from PostgreSQL {found_version}, expected PostgreSQL {expected} ({expected_magic:#06X})"
    )]
    WrongVersion {
        /// Offset of the page.
        offset: u64,
        /// Magic read.
        found: u16,
        /// Version the magic belongs to.
        found_version: PgMajorVersion,
        /// Version expected.
        expected: PgMajorVersion,
        /// Magic expected.
        expected_magic: u16,
    },
    /// The page changes version in the middle of a segment.
    #[error(
        "page at offset {offset}: magic {found:#06X} differs from the segment's first page ({first:#06X})"
    )]
    MixedMagic {
        /// Offset of the page.
        offset: u64,
        /// Magic read.
        found: u16,
        /// Magic of the first page.
        first: u16,
    },
    /// Unknown bits in `xlp_info`.
    #[error("page at offset {offset}: invalid info flags {info:#06X}")]
    InvalidFlags {
        /// Offset of the page.
        offset: u64,
        /// The flags read.
        info: u16,
    },
    /// The first page of a segment lacks the long header.
    #[error("first page has no long header (info flags {info:#06X})")]
    NotLongHeader {
        /// The flags read.
        info: u16,
    },
    /// A page is not at the address its position in the named segment implies: the file
    /// was renamed, or holds stale data.
    #[error(
        "page at offset {offset}: page address {found}, expected {expected} (renamed or recycled file?)"
    )]
    WrongPageAddress {
        /// Offset of the page.
        offset: u64,
        /// Address in the header.
        found: Lsn,
        /// Address implied by the file name.
        expected: Lsn,
    },
    /// A page header's timeline is newer than the segment's.
    #[error(
        "page at offset {offset}: timeline {found} is newer than the segment's timeline {expected}"
    )]
    TimelineAhead {
        /// Offset of the page.
        offset: u64,
        /// Timeline in the header.
        found: TimelineId,
        /// Timeline of the segment name.
        expected: TimelineId,
    },
    /// A page header's timeline goes back from the previous page's.
    #[error("page at offset {offset}: timeline {found} goes back from {previous}")]
    TimelineRegress {
        /// Offset of the page.
        offset: u64,
        /// Timeline in this header.
        found: TimelineId,
        /// Timeline in the previous header.
        previous: TimelineId,
    },
    /// The segment comes from another cluster.
    #[error("system identifier {found}, expected {expected} (WAL from another cluster)")]
    WrongSystemId {
        /// Identifier in the long header.
        found: u64,
        /// Identifier of the cluster.
        expected: u64,
    },
    /// The long header declares another segment size.
    #[error("segment size {found} in the header, expected {expected}")]
    WrongSegmentSize {
        /// Size in the header.
        found: u32,
        /// Size expected.
        expected: u64,
    },
    /// The long header declares another block size.
    #[error("WAL block size {found} in the header, expected {expected}")]
    WrongBlockSize {
        /// Size in the header.
        found: u32,
        /// Size expected.
        expected: u32,
    },
    /// A record's length is impossible.
    #[error("record at {lsn}: invalid length {len}")]
    BadRecordLength {
        /// Where the record starts.
        lsn: Lsn,
        /// Its `xl_tot_len`.
        len: u32,
    },
    /// A record does not point back at the record before it.
    #[error("record at {lsn}: previous-record link {found}, expected {expected}")]
    BadPrevLink {
        /// Where the record starts.
        lsn: Lsn,
        /// Its `xl_prev`.
        found: Lsn,
        /// Start of the record before it.
        expected: Lsn,
    },
    /// A record's CRC-32C does not match its content.
    #[error("record at {lsn}: CRC-32C mismatch: stored {stored:#010X}, computed {computed:#010X}")]
    BadRecordCrc {
        /// Where the record starts.
        lsn: Lsn,
        /// CRC stored in the record header.
        stored: u32,
        /// CRC of the content.
        computed: u32,
    },
    /// A page's continuation flag or length disagrees with the record it continues.
    #[error("page at offset {offset}: continuation mismatch: {detail}")]
    BadContinuation {
        /// Offset of the page.
        offset: u64,
        /// What disagrees.
        detail: String,
    },
    /// Valid WAL stops before the end of a segment that should be complete.
    #[error("WAL ends at {end} before the end of the segment without a WAL switch record")]
    EndsEarly {
        /// First position that is not valid WAL.
        end: Lsn,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        Error::Io { context, source }
    }
}

/// A message kind byte as text: `'w'` when printable, else `0x..`.
fn message_kind(kind: u8) -> String {
    if kind.is_ascii_graphic() {
        format!("'{}'", kind as char)
    } else {
        format!("0x{kind:02x}")
    }
}
