//! The PostgreSQL write-ahead-log vocabulary of barman-rs.
//!
//! Everything other barman-rs crates, and programs that embed them, say about WAL goes
//! through these types: positions ([`Lsn`]), timelines ([`TimelineId`],
//! [`TimelineHistory`]), segment sizes and names ([`WalSegSize`], [`SegmentName`],
//! [`WalFileName`]), the files a backup writes ([`BackupLabel`], [`TablespaceMap`]),
//! validation of WAL segment content ([`SegmentCheck`]) and the compression codecs of a
//! WAL archive ([`Codec`]).
//!
//! The crate is sans-IO: it parses and checks bytes and text it is given, and reads or
//! writes only through `std::io::Read`/`Write` values handed to it. It never touches the
//! filesystem, the network, an async runtime or the clock.
//!
//! # Example
//!
//! ```
//! use barman_wal::{Lsn, SegmentName, TimelineId, WalFileName, WalSegSize};
//!
//! // Which archived file holds the WAL at 16/B374D848 on timeline 3, and where is it?
//! let lsn: Lsn = "16/B374D848".parse()?;
//! let seg = SegmentName::containing(TimelineId::new(3), lsn, WalSegSize::DEFAULT);
//! let name = WalFileName::Segment(seg);
//! assert_eq!(format!("wals/{}/{}", name.hash_dir(), name), "wals/0000000300000016/0000000300000016000000B3");
//! # Ok::<(), barman_wal::Error>(())
//! ```
//!
//! # Features
//!
//! | feature | adds | extra dependencies | default |
//! |---|---|---|---|
//! | `gzip` | gzip codec | flate2 (zlib-rs backend) | yes |
//! | `bzip2` | bzip2 codec | bzip2 (pure-Rust backend) | yes |
//! | `zstd` | zstd codec | zstd (bundled C libzstd) | yes |
//! | `lz4` | LZ4 frame codec | lz4_flex | yes |
//! | `xz` | xz codec | liblzma (C) | no |
//! | `snappy` | snappy framing codec | snap | no |
//!
//! # Design notes
//!
//! - **No segment size or timeline is ever assumed.** Segment arithmetic takes a
//!   [`WalSegSize`]; a name alone does not say where its bytes are.
//! - **Validation is incremental.** [`SegmentValidator`] takes the segment in pieces, so
//!   a caller can validate while it copies or decompresses, in one page of memory. The
//!   cheap check ([`SegmentCheck::check_header`]) reads only the long page header: right
//!   cluster, right segment, right version. The deep one also walks records and verifies
//!   each CRC-32C, which detects corruption inside the file.
//! - **A page's timeline may be older than its segment's.** At a timeline switch,
//!   PostgreSQL starts the new timeline's segment with a copy of the old one, page
//!   headers included, so validation only refuses page timelines that are newer than the
//!   segment's or go backwards.
//! - **Decoders never shorten silently.** Truncated or corrupt compressed input is an
//!   error, except for the snappy framing format which has no end marker (see
//!   [`Codec::decoder`]).
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod compression;
mod error;
mod history;
mod label;
mod lsn;
mod page;
pub mod replication;
mod segment;
mod timeline;
mod version;
mod walfile;

pub use compression::{Codec, CompressionLevel, Decoder, Encoder, MAGIC_MAX_LEN, Prefixed};
pub use error::{Error, Result, SegmentProblem};
pub use history::{HistoryEntry, TimelineHistory};
pub use label::{BackupLabel, TablespaceLink, TablespaceMap};
pub use lsn::Lsn;
pub use page::{
    DEFAULT_WAL_BLOCK_SIZE, PageHeader, SegmentCheck, SegmentReport, SegmentValidator,
    XLP_ALL_FLAGS, XLP_BKP_REMOVABLE, XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD,
    XLP_LONG_HEADER,
};
pub use segment::{SegmentName, SegmentRange, WalSegSize};
pub use timeline::TimelineId;
pub use version::PgMajorVersion;
pub use walfile::WalFileName;
