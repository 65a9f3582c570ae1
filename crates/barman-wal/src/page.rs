//! WAL page headers and segment validation.

use std::io::Read;

use crate::error::SegmentProblem;
use crate::{Error, Lsn, PgMajorVersion, Result, SegmentName, TimelineId, WalSegSize};

/// The record that begins the page continues from the previous page.
pub const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
/// The page has the long header (the first page of a segment).
pub const XLP_LONG_HEADER: u16 = 0x0002;
/// Full-page images on the page may be removed (obsolete).
pub const XLP_BKP_REMOVABLE: u16 = 0x0004;
/// An incomplete record before this page was abandoned (overwritten).
pub const XLP_FIRST_IS_OVERWRITE_CONTRECORD: u16 = 0x0008;
/// Every defined flag. The overwrite flag was back-patched to all supported branches,
/// so it is accepted for every version.
pub const XLP_ALL_FLAGS: u16 = 0x000F;

/// The default WAL block size (`XLOG_BLCKSZ`, set at PostgreSQL build time).
#[doc(alias = "XLOG_BLCKSZ")]
pub const DEFAULT_WAL_BLOCK_SIZE: u32 = 8192;

const SHORT_HEADER: usize = 24;
const LONG_HEADER: usize = 40;
const RECORD_HEADER: usize = 24;
/// `XLogRecordMaxSize`: PostgreSQL never writes a longer record.
const MAX_RECORD_LEN: u32 = 1020 * 1024 * 1024;
const RM_XLOG_ID: u8 = 0;
const XLOG_SWITCH: u8 = 0x40;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

const fn maxalign(v: usize) -> usize {
    (v + 7) & !7
}

/// A WAL page header (`XLogPageHeaderData`, and `XLogLongPageHeaderData` on the first
/// page of a segment), as read from little-endian WAL.
///
/// # Examples
///
/// ```
/// use barman_wal::PageHeader;
///
/// let mut page = [0u8; 40];
/// page[0..2].copy_from_slice(&0xD110u16.to_le_bytes()); // PostgreSQL 15
/// page[2..4].copy_from_slice(&2u16.to_le_bytes());      // XLP_LONG_HEADER
/// page[4..8].copy_from_slice(&1u32.to_le_bytes());      // timeline 1
/// page[8..16].copy_from_slice(&0x300_0000u64.to_le_bytes());
/// page[24..32].copy_from_slice(&7_000_000_000u64.to_le_bytes());
/// page[32..36].copy_from_slice(&(16u32 << 20).to_le_bytes());
/// page[36..40].copy_from_slice(&8192u32.to_le_bytes());
/// let h = PageHeader::parse(&page).unwrap();
/// assert_eq!(h.page_address().to_string(), "0/3000000");
/// assert_eq!(h.system_id(), Some(7_000_000_000));
/// assert_eq!(h.len(), 40);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageHeader {
    magic: u16,
    info: u16,
    tli: TimelineId,
    page_address: Lsn,
    rem_len: u32,
    long: Option<(u64, u32, u32)>,
}

impl PageHeader {
    /// Reads a page header from the start of `page`: the short header, and the long one
    /// when `XLP_LONG_HEADER` is set. `None` if `page` is too short for it.
    ///
    /// ```
    /// assert_eq!(barman_wal::PageHeader::parse(&[0u8; 10]), None);
    /// assert!(barman_wal::PageHeader::parse(&[0u8; 24]).is_some());
    /// ```
    pub fn parse(page: &[u8]) -> Option<PageHeader> {
        if page.len() < SHORT_HEADER {
            return None;
        }
        let info = le16(page, 2);
        let long = if info & XLP_LONG_HEADER != 0 {
            if page.len() < LONG_HEADER {
                return None;
            }
            Some((le64(page, 24), le32(page, 32), le32(page, 36)))
        } else {
            None
        };
        Some(PageHeader {
            magic: le16(page, 0),
            info,
            tli: TimelineId::new(le32(page, 4)),
            page_address: Lsn::new(le64(page, 8)),
            rem_len: le32(page, 16),
            long,
        })
    }

    /// The long header PostgreSQL `version` writes on the first page of a segment that
    /// starts at `segment_start`: `XLP_LONG_HEADER` set, `xlp_rem_len` 0, WAL block size
    /// 8192. Useful to build test data; see [`PageHeader::to_bytes`].
    ///
    /// ```
    /// use barman_wal::{Lsn, PageHeader, PgMajorVersion, TimelineId, WalSegSize};
    /// let h = PageHeader::first_of_segment(PgMajorVersion::V16, TimelineId::FIRST, Lsn::new(0x300_0000), 42, WalSegSize::DEFAULT);
    /// assert_eq!(PageHeader::parse(&h.to_bytes()), Some(h));
    /// ```
    pub fn first_of_segment(
        version: PgMajorVersion,
        tli: TimelineId,
        segment_start: Lsn,
        system_id: u64,
        size: WalSegSize,
    ) -> PageHeader {
        PageHeader {
            magic: version.wal_magic(),
            info: XLP_LONG_HEADER,
            tli,
            page_address: segment_start,
            rem_len: 0,
            // The segment size is at most 1 GiB.
            long: Some((system_id, size.bytes() as u32, DEFAULT_WAL_BLOCK_SIZE)),
        }
    }

    /// The header in its on-disk form (little endian), 24 or 40 bytes, padding zeroed.
    ///
    /// ```
    /// use barman_wal::{Lsn, PageHeader, PgMajorVersion, TimelineId, WalSegSize};
    /// let h = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST, Lsn::new(0), 1, WalSegSize::DEFAULT);
    /// assert_eq!(&h.to_bytes()[..2], &[0x10, 0xD1]);
    /// assert_eq!(h.to_bytes().len(), 40);
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.len()];
        b[0..2].copy_from_slice(&self.magic.to_le_bytes());
        b[2..4].copy_from_slice(&self.info.to_le_bytes());
        b[4..8].copy_from_slice(&self.tli.as_u32().to_le_bytes());
        b[8..16].copy_from_slice(&self.page_address.as_u64().to_le_bytes());
        b[16..20].copy_from_slice(&self.rem_len.to_le_bytes());
        if let Some((sysid, seg, blck)) = self.long {
            b[24..32].copy_from_slice(&sysid.to_le_bytes());
            b[32..36].copy_from_slice(&seg.to_le_bytes());
            b[36..40].copy_from_slice(&blck.to_le_bytes());
        }
        b
    }

    /// `xlp_magic`.
    ///
    /// ```
    /// assert_eq!(barman_wal::PageHeader::parse(&[0x10, 0xD1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap().magic(), 0xD110);
    /// ```
    pub fn magic(&self) -> u16 {
        self.magic
    }

    /// The PostgreSQL version the magic belongs to.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0x10, 0xD1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    /// assert_eq!(h.version(), Some(barman_wal::PgMajorVersion::V15));
    /// ```
    pub fn version(&self) -> Option<PgMajorVersion> {
        PgMajorVersion::from_wal_magic(self.magic)
    }

    /// `xlp_info`, the `XLP_*` flags.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(h.info(), 0);
    /// ```
    pub fn info(&self) -> u16 {
        self.info
    }

    /// `xlp_tli`: the timeline of the first record on the page.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(u32::from(h.timeline()), 0);
    /// ```
    pub fn timeline(&self) -> TimelineId {
        self.tli
    }

    /// `xlp_pageaddr`: the LSN of the first byte of the page.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(h.page_address(), barman_wal::Lsn::INVALID);
    /// ```
    pub fn page_address(&self) -> Lsn {
        self.page_address
    }

    /// `xlp_rem_len`: bytes of a record continued from the previous page.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(h.remaining_length(), 0);
    /// ```
    pub fn remaining_length(&self) -> u32 {
        self.rem_len
    }

    /// Whether this is a long header.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert!(!h.is_long());
    /// ```
    pub fn is_long(&self) -> bool {
        self.long.is_some()
    }

    /// `xlp_sysid` of a long header: the cluster's system identifier.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(h.system_id(), None);
    /// ```
    pub fn system_id(&self) -> Option<u64> {
        self.long.map(|l| l.0)
    }

    /// `xlp_seg_size` of a long header.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(h.segment_size(), None);
    /// ```
    pub fn segment_size(&self) -> Option<u32> {
        self.long.map(|l| l.1)
    }

    /// `xlp_xlog_blcksz` of a long header.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(h.block_size(), None);
    /// ```
    pub fn block_size(&self) -> Option<u32> {
        self.long.map(|l| l.2)
    }

    /// Size of this header in bytes, 24 or 40.
    ///
    /// ```
    /// # let h = barman_wal::PageHeader::parse(&[0u8; 24]).unwrap();
    /// assert_eq!(h.len(), 24);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        if self.is_long() {
            LONG_HEADER
        } else {
            SHORT_HEADER
        }
    }
}

/// What a WAL segment must match, and how deep to look: the input of segment
/// validation.
///
/// Build one with the segment's name and size, add what is known of the cluster
/// ([`system_id`](Self::system_id), [`version`](Self::version)), then validate the first
/// page only ([`check_header`](Self::check_header), microseconds) or the whole file
/// ([`validator`](Self::validator) or [`check_reader`](Self::check_reader), which by
/// default also walks every record and verifies its CRC-32C).
///
/// # Examples
///
/// ```
/// use barman_wal::{SegmentCheck, WalSegSize};
///
/// let name = "000000010000000000000003".parse()?;
/// let check = SegmentCheck::new(name, WalSegSize::DEFAULT).system_id(7_000_000_000);
/// // A file of zeros is not WAL.
/// let err = check.check_header(&[0u8; 8192], 16 << 20).unwrap_err();
/// assert!(err.to_string().contains("magic 0x0000"));
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SegmentCheck {
    segment: SegmentName,
    size: WalSegSize,
    system_id: Option<u64>,
    version: Option<PgMajorVersion>,
    block_size: u32,
    partial: bool,
    records: bool,
}

/// What validation found in a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentReport {
    /// The PostgreSQL version of the WAL.
    pub version: PgMajorVersion,
    /// The cluster's system identifier.
    pub system_id: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Pages whose headers were checked.
    pub pages_checked: u64,
    /// Records whose CRC was verified (0 when records were not walked).
    pub records_checked: u64,
    /// The first position after the last valid record when valid WAL ends inside the
    /// segment (after a WAL switch, or in a partial segment); `None` when the WAL runs
    /// to the end of the segment or records were not walked.
    pub end_of_wal: Option<Lsn>,
    /// Whether the segment ends with a WAL switch record.
    pub switched: bool,
    /// Start of the last record whose CRC was verified.
    pub last_record: Option<Lsn>,
    /// Start of a record that begins in this segment and continues into the next one
    /// (it cannot be verified from this segment alone).
    pub continued_record: Option<Lsn>,
}

impl SegmentCheck {
    /// Checks for the segment `segment` of `size` bytes: a complete segment, WAL block
    /// size 8192, records walked, any system identifier and version 10 to 18.
    ///
    /// ```
    /// use barman_wal::{PageHeader, PgMajorVersion, SegmentCheck, SegmentName, TimelineId, WalSegSize};
    /// let size = WalSegSize::DEFAULT;
    /// let name: SegmentName = "000000010000000000000003".parse()?;
    /// let page = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST, name.start_lsn(size)?, 7, size).to_bytes();
    /// let check = SegmentCheck::new(name, size);
    /// assert_eq!(check.check_header(&page, size.bytes())?.system_id, 7);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn new(segment: SegmentName, size: WalSegSize) -> SegmentCheck {
        SegmentCheck {
            segment,
            size,
            system_id: None,
            version: None,
            block_size: DEFAULT_WAL_BLOCK_SIZE,
            partial: false,
            records: true,
        }
    }

    /// Requires this system identifier (`identity.json`'s `systemid`).
    ///
    /// ```
    /// use barman_wal::{PageHeader, PgMajorVersion, SegmentCheck, SegmentName, TimelineId, WalSegSize};
    /// let size = WalSegSize::DEFAULT;
    /// let name: SegmentName = "000000010000000000000003".parse()?;
    /// let page = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST, name.start_lsn(size)?, 7, size).to_bytes();
    /// let check = SegmentCheck::new(name, size).system_id(42);
    /// let err = check.check_header(&page, size.bytes()).unwrap_err();
    /// assert!(err.to_string().contains("system identifier 7, expected 42 (WAL from another cluster)"));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn system_id(mut self, id: u64) -> SegmentCheck {
        self.system_id = Some(id);
        self
    }

    /// Requires the WAL of this PostgreSQL version.
    ///
    /// ```
    /// use barman_wal::{PageHeader, PgMajorVersion, SegmentCheck, SegmentName, TimelineId, WalSegSize};
    /// let size = WalSegSize::DEFAULT;
    /// let name: SegmentName = "000000010000000000000003".parse()?;
    /// let page = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST, name.start_lsn(size)?, 7, size).to_bytes();
    /// let check = SegmentCheck::new(name, size).version(PgMajorVersion::V16);
    /// let err = check.check_header(&page, size.bytes()).unwrap_err();
    /// assert!(err.to_string().contains("from PostgreSQL 15, expected PostgreSQL 16"));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn version(mut self, version: PgMajorVersion) -> SegmentCheck {
        self.version = Some(version);
        self
    }

    /// Requires this WAL block size (`XLOG_BLCKSZ`; 8192 unless PostgreSQL was built
    /// otherwise). It must be a power of two from 1 KiB to 64 KiB, else 8192 is kept.
    ///
    /// ```
    /// use barman_wal::{PageHeader, PgMajorVersion, SegmentCheck, SegmentName, TimelineId, WalSegSize};
    /// let size = WalSegSize::DEFAULT;
    /// let name: SegmentName = "000000010000000000000003".parse()?;
    /// let page = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST, name.start_lsn(size)?, 7, size).to_bytes();
    /// let check = SegmentCheck::new(name, size).block_size(16384);
    /// let err = check.check_header(&page, size.bytes()).unwrap_err();
    /// assert!(err.to_string().contains("WAL block size 8192 in the header, expected 16384"));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn block_size(mut self, bytes: u32) -> SegmentCheck {
        if bytes.is_power_of_two() && (1024..=65536).contains(&bytes) {
            self.block_size = bytes;
        }
        self
    }

    /// Treats the file as a `.partial` segment: it may be shorter than the segment size,
    /// and valid WAL may end anywhere, after which the content is not checked.
    ///
    /// ```
    /// use barman_wal::{PageHeader, PgMajorVersion, SegmentCheck, SegmentName, TimelineId, WalSegSize};
    /// let size = WalSegSize::DEFAULT;
    /// let name: SegmentName = "000000010000000000000003".parse()?;
    /// let page = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST, name.start_lsn(size)?, 7, size).to_bytes();
    /// let check = SegmentCheck::new(name, size).partial(true);
    /// // A partial segment may be shorter than the segment size.
    /// assert!(check.check_header(&page, 8192).is_ok());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn partial(mut self, partial: bool) -> SegmentCheck {
        self.partial = partial;
        self
    }

    /// Whether to walk the records and verify their CRC-32C (default `true`). Without it,
    /// page headers are checked up to the first page that is not part of this segment's
    /// WAL (an all-zero or stale page).
    ///
    /// ```
    /// use barman_wal::{PageHeader, PgMajorVersion, SegmentCheck, SegmentName, TimelineId, WalSegSize};
    /// let size = WalSegSize::DEFAULT;
    /// let name: SegmentName = "000000010000000000000003".parse()?;
    /// let page = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST, name.start_lsn(size)?, 7, size).to_bytes();
    /// let check = SegmentCheck::new(name, size).records(false);
    /// // Only page headers: a page of zeros after the first ends the WAL.
    /// let mut seg = page.clone();
    /// seg.resize(size.bytes() as usize, 0);
    /// assert_eq!(check.check_reader(&seg[..])?.records_checked, 0);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn records(mut self, walk: bool) -> SegmentCheck {
        self.records = walk;
        self
    }

    fn err(&self, problem: SegmentProblem) -> Error {
        let suffix = if self.partial { ".partial" } else { "" };
        Error::InvalidSegment {
            segment: format!("{}{suffix}", self.segment),
            problem,
        }
    }

    /// Validates the long header on the first page of a segment and the file's size,
    /// without reading further: magic (and version), flags, page address (the file holds
    /// the segment its name says), timeline, system identifier, segment and block size.
    ///
    /// `first_page` needs at least the 40 bytes of the long header; `file_size` is the
    /// size of the whole (uncompressed) file.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegment`] naming the first field that is wrong.
    ///
    /// ```
    /// # use barman_wal::{SegmentCheck, WalSegSize};
    /// let check = SegmentCheck::new("000000010000000000000003".parse()?, WalSegSize::DEFAULT);
    /// let err = check.check_header(&[0u8; 8192], 1000).unwrap_err();
    /// assert!(err.to_string().contains("truncated: 1000 bytes"));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn check_header(&self, first_page: &[u8], file_size: u64) -> Result<SegmentReport> {
        let seg = self.size.bytes();
        if file_size > seg {
            return Err(self.err(SegmentProblem::TooLong { expected: seg }));
        }
        if !self.partial && file_size < seg {
            return Err(self.err(SegmentProblem::Truncated {
                actual: file_size,
                expected: seg,
            }));
        }
        if first_page.len() < LONG_HEADER {
            return Err(self.err(SegmentProblem::Truncated {
                actual: first_page.len() as u64,
                expected: LONG_HEADER as u64,
            }));
        }
        let (version, system_id) = self.check_first_header(first_page)?;
        Ok(SegmentReport {
            version,
            system_id,
            bytes: file_size,
            pages_checked: 1,
            records_checked: 0,
            end_of_wal: None,
            switched: false,
            last_record: None,
            continued_record: None,
        })
    }

    fn check_magic(&self, offset: u64, magic: u16) -> Result<PgMajorVersion> {
        let found_version = PgMajorVersion::from_wal_magic(magic).ok_or_else(|| {
            self.err(SegmentProblem::UnknownMagic {
                offset,
                found: magic,
            })
        })?;
        if let Some(expected) = self.version
            && expected != found_version
        {
            return Err(self.err(SegmentProblem::WrongVersion {
                offset,
                found: magic,
                found_version,
                expected,
                expected_magic: expected.wal_magic(),
            }));
        }
        Ok(found_version)
    }

    fn seg_start(&self) -> Result<Lsn> {
        self.segment.start_lsn(self.size)
    }

    fn check_first_header(&self, page: &[u8]) -> Result<(PgMajorVersion, u64)> {
        let h = PageHeader::parse(page).ok_or_else(|| {
            self.err(SegmentProblem::Truncated {
                actual: page.len() as u64,
                expected: LONG_HEADER as u64,
            })
        })?;
        let version = self.check_magic(0, h.magic)?;
        if h.info & !XLP_ALL_FLAGS != 0 {
            return Err(self.err(SegmentProblem::InvalidFlags {
                offset: 0,
                info: h.info,
            }));
        }
        let Some((sysid, seg_size, blcksz)) = h.long else {
            return Err(self.err(SegmentProblem::NotLongHeader { info: h.info }));
        };
        let expected = self.seg_start()?;
        if h.page_address != expected {
            return Err(self.err(SegmentProblem::WrongPageAddress {
                offset: 0,
                found: h.page_address,
                expected,
            }));
        }
        self.check_tli(0, h.tli, None)?;
        if let Some(id) = self.system_id
            && sysid != id
        {
            return Err(self.err(SegmentProblem::WrongSystemId {
                found: sysid,
                expected: id,
            }));
        }
        if u64::from(seg_size) != self.size.bytes() {
            return Err(self.err(SegmentProblem::WrongSegmentSize {
                found: seg_size,
                expected: self.size.bytes(),
            }));
        }
        if blcksz != self.block_size {
            return Err(self.err(SegmentProblem::WrongBlockSize {
                found: blcksz,
                expected: self.block_size,
            }));
        }
        Ok((version, sysid))
    }

    fn check_tli(&self, offset: u64, tli: TimelineId, previous: Option<TimelineId>) -> Result<()> {
        if tli > self.segment.timeline() || !tli.is_valid() {
            return Err(self.err(SegmentProblem::TimelineAhead {
                offset,
                found: tli,
                expected: self.segment.timeline(),
            }));
        }
        if let Some(prev) = previous
            && tli < prev
        {
            return Err(self.err(SegmentProblem::TimelineRegress {
                offset,
                found: tli,
                previous: prev,
            }));
        }
        Ok(())
    }

    /// An incremental validator of the whole file: feed it the bytes in order, then
    /// call [`SegmentValidator::finish`]. Memory use is one WAL page, whatever the size
    /// of the segment or of its records.
    ///
    /// ```
    /// # use barman_wal::{SegmentCheck, WalSegSize};
    /// let check = SegmentCheck::new("000000010000000000000003".parse()?, WalSegSize::DEFAULT);
    /// let mut v = check.validator();
    /// assert!(v.feed(&[0u8; 100]).is_err()); // the first page is not WAL
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn validator(&self) -> SegmentValidator {
        SegmentValidator {
            check: self.clone(),
            page: Vec::with_capacity(self.block_size as usize),
            offset: 0,
            first: None,
            last_tli: None,
            ended: None,
            walk: Walk::Start,
            records: 0,
            pages: 0,
            prev_record: None,
            switched: false,
        }
    }

    /// Validates a whole segment read from `reader` (uncompressed bytes), streaming.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegment`] for the first problem found; [`Error::Io`] if reading
    /// fails.
    ///
    /// ```
    /// # use barman_wal::{SegmentCheck, WalSegSize};
    /// let check = SegmentCheck::new("000000010000000000000003".parse()?, WalSegSize::DEFAULT);
    /// assert!(check.check_reader(std::io::empty()).is_err());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn check_reader(&self, mut reader: impl Read) -> Result<SegmentReport> {
        let mut v = self.validator();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading a WAL segment", e)),
            };
            v.feed(&buf[..n])?;
        }
        v.finish()
    }
}

/// Where the record walk stands between pages.
#[derive(Clone, Debug)]
enum Walk {
    /// Before the first page.
    Start,
    /// At a record boundary.
    Boundary,
    /// Skipping the tail of a record that began in an earlier segment.
    Skip { remaining: u32 },
    /// Inside a record that continues on the next page.
    Record(Box<PartialRecord>),
}

#[derive(Clone, Debug)]
struct PartialRecord {
    start: Lsn,
    total: u32,
    seen: u32,
    header: [u8; RECORD_HEADER],
    crc: u32,
}

impl PartialRecord {
    fn absorb(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        let seen = self.seen as usize;
        if seen < RECORD_HEADER {
            let take = (RECORD_HEADER - seen).min(bytes.len());
            self.header[seen..seen + take].copy_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.seen += take as u32;
        }
        if !bytes.is_empty() {
            self.crc = crc32c::crc32c_append(self.crc, bytes);
            self.seen += bytes.len() as u32;
        }
    }
    fn remaining(&self) -> u32 {
        self.total - self.seen
    }
}

/// Incremental validation of a whole WAL segment, made by [`SegmentCheck::validator`].
///
/// Checks every page header up to the end of valid WAL (magic, flags, page address,
/// timeline never newer than the segment's nor going back) and, unless disabled, walks
/// the records: each record's length, its link to the previous record and its CRC-32C.
/// A record continuing from the previous segment cannot be verified and is skipped; one
/// continuing into the next segment is accepted as incomplete.
#[derive(Debug)]
pub struct SegmentValidator {
    check: SegmentCheck,
    page: Vec<u8>,
    offset: u64,
    first: Option<(PgMajorVersion, u64, u16)>,
    last_tli: Option<TimelineId>,
    ended: Option<Lsn>,
    walk: Walk,
    records: u64,
    pages: u64,
    prev_record: Option<Lsn>,
    switched: bool,
}

impl SegmentValidator {
    /// Feeds the next bytes of the segment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegment`] as soon as a problem is seen; feeding after an error
    /// gives unspecified results.
    ///
    /// ```
    /// # use barman_wal::{SegmentCheck, WalSegSize};
    /// let mut v = SegmentCheck::new("000000010000000000000003".parse()?, WalSegSize::DEFAULT).validator();
    /// v.feed(&[])?;
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn feed(&mut self, mut data: &[u8]) -> Result<()> {
        let bs = self.check.block_size as usize;
        let seg = self.check.size.bytes();
        let pending = self.page.len() as u64;
        if self.offset + pending + data.len() as u64 > seg {
            return Err(self.check.err(SegmentProblem::TooLong { expected: seg }));
        }
        while !data.is_empty() {
            if self.page.is_empty() && data.len() >= bs {
                let (page, rest) = data.split_at(bs);
                self.process_page(page)?;
                data = rest;
                continue;
            }
            let take = (bs - self.page.len()).min(data.len());
            self.page.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.page.len() == bs {
                let page = std::mem::take(&mut self.page);
                let res = self.process_page(&page);
                self.page = page;
                self.page.clear();
                res?;
            } else if self.offset == 0 && self.first.is_none() && self.page.len() >= LONG_HEADER {
                // Check the long header as soon as it is there, so a foreign file is
                // refused after 40 bytes.
                let (version, sysid) = self.check.check_first_header(&self.page)?;
                self.first = Some((version, sysid, le16(&self.page, 0)));
            }
        }
        Ok(())
    }

    fn process_page(&mut self, page: &[u8]) -> Result<()> {
        let offset = self.offset;
        self.offset += page.len() as u64;
        if self.ended.is_some() {
            return Ok(());
        }
        let seg_start = self.check.seg_start()?;
        // seg_start + offset stays inside the segment, whose end is representable.
        let page_lsn = Lsn::new(seg_start.as_u64() + offset);
        let header = if offset == 0 {
            let (version, sysid) = self.check.check_first_header(page)?;
            self.first = Some((version, sysid, le16(page, 0)));
            // check_first_header succeeded, so the long header parses.
            PageHeader::parse(page)
                .ok_or_else(|| self.check.err(SegmentProblem::NotLongHeader { info: 0 }))?
        } else {
            let h = PageHeader::parse(page).unwrap_or(PageHeader {
                magic: 0,
                info: 0,
                tli: TimelineId::new(0),
                page_address: Lsn::INVALID,
                rem_len: 0,
                long: None,
            });
            if h.page_address != page_lsn || h.magic == 0 {
                // Not a page of this segment's WAL: zeros after the end of WAL, or a
                // stale page of a recycled file.
                return self.end_at_page(offset, page_lsn, h);
            }
            let first_magic = self.first.map_or(h.magic, |f| f.2);
            if h.magic != first_magic {
                self.check.check_magic(offset, h.magic)?;
                return Err(self.check.err(SegmentProblem::MixedMagic {
                    offset,
                    found: h.magic,
                    first: first_magic,
                }));
            }
            if h.info & !XLP_ALL_FLAGS != 0 || h.info & XLP_LONG_HEADER != 0 {
                return Err(self.check.err(SegmentProblem::InvalidFlags {
                    offset,
                    info: h.info,
                }));
            }
            h
        };
        self.check.check_tli(offset, header.tli, self.last_tli)?;
        self.last_tli = Some(header.tli);
        self.pages += 1;
        if self.check.records {
            self.walk_page(offset, page_lsn, &header, page)?;
        }
        Ok(())
    }

    fn end_at_page(&mut self, offset: u64, page_lsn: Lsn, h: PageHeader) -> Result<()> {
        if self.check.records && !self.check.partial {
            // A complete segment's WAL runs to its end unless a switch record (after
            // which nothing is checked) ends it.
            if h.magic == 0 && h.page_address == Lsn::INVALID {
                return Err(self.check.err(SegmentProblem::EndsEarly { end: page_lsn }));
            }
            return Err(self.check.err(SegmentProblem::WrongPageAddress {
                offset,
                found: h.page_address,
                expected: page_lsn,
            }));
        }
        self.ended = Some(match &self.walk {
            Walk::Record(rec) => rec.start,
            _ => page_lsn,
        });
        Ok(())
    }

    fn record_error(&mut self, at: Lsn, problem: SegmentProblem) -> Result<()> {
        if self.check.partial {
            // In a partial segment, an invalid record is where the valid WAL ends.
            self.ended = Some(at);
            Ok(())
        } else {
            Err(self.check.err(problem))
        }
    }

    fn walk_page(&mut self, offset: u64, page_lsn: Lsn, h: &PageHeader, page: &[u8]) -> Result<()> {
        let bs = page.len();
        let mut pos = h.len();
        let contrecord = h.info & XLP_FIRST_IS_CONTRECORD != 0;
        match std::mem::replace(&mut self.walk, Walk::Boundary) {
            Walk::Start => {
                if contrecord {
                    // The tail of a record begun in the previous segment.
                    let avail = (bs - pos) as u32;
                    if h.rem_len > avail {
                        self.walk = Walk::Skip {
                            remaining: h.rem_len - avail,
                        };
                        return Ok(());
                    }
                    pos = maxalign(pos + h.rem_len as usize);
                }
            }
            Walk::Boundary => {
                if contrecord {
                    return Err(self.check.err(SegmentProblem::BadContinuation {
                        offset,
                        detail: "the page continues a record but the previous page ended at a record boundary".to_owned(),
                    }));
                }
            }
            Walk::Skip { remaining } => {
                if !contrecord || h.rem_len != remaining {
                    return Err(self.check.err(SegmentProblem::BadContinuation {
                        offset,
                        detail: format!(
                            "expected {remaining} continued bytes, page says {} (flags {:#06X})",
                            h.rem_len, h.info
                        ),
                    }));
                }
                let avail = (bs - pos) as u32;
                if remaining > avail {
                    self.walk = Walk::Skip {
                        remaining: remaining - avail,
                    };
                    return Ok(());
                }
                pos = maxalign(pos + remaining as usize);
            }
            Walk::Record(mut rec) => {
                if h.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD != 0 && !contrecord {
                    // PostgreSQL abandoned the incomplete record and wrote over it.
                    self.prev_record = None;
                } else if !contrecord || h.rem_len != rec.remaining() {
                    return Err(self.check.err(SegmentProblem::BadContinuation {
                        offset,
                        detail: format!(
                            "record at {} needs {} more bytes, page says {} (flags {:#06X})",
                            rec.start,
                            rec.remaining(),
                            h.rem_len,
                            h.info
                        ),
                    }));
                } else {
                    let take = (rec.remaining() as usize).min(bs - pos);
                    rec.absorb(&page[pos..pos + take]);
                    pos += take;
                    if rec.remaining() > 0 {
                        self.walk = Walk::Record(rec);
                        return Ok(());
                    }
                    let end = Lsn::new(page_lsn.as_u64() + pos as u64);
                    self.finish_record(&rec, end)?;
                    if self.ended.is_some() {
                        return Ok(());
                    }
                    pos = maxalign(pos);
                }
            }
        }
        while pos + 4 <= bs {
            let at = Lsn::new(page_lsn.as_u64() + pos as u64);
            let total = le32(page, pos);
            if total == 0 {
                // Zeros: the end of the WAL written so far.
                if !self.check.partial && !self.switched {
                    return Err(self.check.err(SegmentProblem::EndsEarly { end: at }));
                }
                self.ended = Some(at);
                return Ok(());
            }
            if (total as usize) < RECORD_HEADER || total > MAX_RECORD_LEN {
                return self.record_error(
                    at,
                    SegmentProblem::BadRecordLength {
                        lsn: at,
                        len: total,
                    },
                );
            }
            let mut rec = PartialRecord {
                start: at,
                total,
                seen: 0,
                header: [0; RECORD_HEADER],
                crc: 0,
            };
            let take = (total as usize).min(bs - pos);
            rec.absorb(&page[pos..pos + take]);
            pos += take;
            if rec.remaining() > 0 {
                self.walk = Walk::Record(Box::new(rec));
                return Ok(());
            }
            let end = Lsn::new(page_lsn.as_u64() + pos as u64);
            self.finish_record(&rec, end)?;
            if self.ended.is_some() {
                return Ok(());
            }
            pos = maxalign(pos);
        }
        Ok(())
    }

    fn finish_record(&mut self, rec: &PartialRecord, end: Lsn) -> Result<()> {
        let hdr = &rec.header;
        let stored = le32(hdr, 20);
        let computed = crc32c::crc32c_append(rec.crc, &hdr[..20]);
        if stored != computed {
            return self.record_error(
                rec.start,
                SegmentProblem::BadRecordCrc {
                    lsn: rec.start,
                    stored,
                    computed,
                },
            );
        }
        let prev = Lsn::new(le64(hdr, 8));
        if let Some(expected) = self.prev_record
            && prev != expected
        {
            return self.record_error(
                rec.start,
                SegmentProblem::BadPrevLink {
                    lsn: rec.start,
                    found: prev,
                    expected,
                },
            );
        }
        self.prev_record = Some(rec.start);
        self.records += 1;
        let (info, rmid) = (hdr[16], hdr[17]);
        if rmid == RM_XLOG_ID && info & 0xF0 == XLOG_SWITCH {
            // The rest of the segment is padding.
            self.switched = true;
            self.ended = Some(end);
        }
        Ok(())
    }

    /// Ends validation and reports.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegment`] if the segment is truncated (a complete segment must
    /// have exactly the segment size; a partial one whole pages) or nothing was fed.
    ///
    /// ```
    /// # use barman_wal::{SegmentCheck, WalSegSize};
    /// let v = SegmentCheck::new("000000010000000000000003".parse()?, WalSegSize::DEFAULT).validator();
    /// assert!(v.finish().is_err());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn finish(self) -> Result<SegmentReport> {
        let bytes = self.offset + self.page.len() as u64;
        let seg = self.check.size.bytes();
        let complete_pages = self.page.is_empty();
        if (!self.check.partial && bytes != seg)
            || bytes == 0
            || (!complete_pages && self.ended.is_none())
        {
            let expected = if self.check.partial {
                bytes.div_ceil(u64::from(self.check.block_size)).max(1)
                    * u64::from(self.check.block_size)
            } else {
                seg
            };
            return Err(self.check.err(SegmentProblem::Truncated {
                actual: bytes,
                expected,
            }));
        }
        let Some((version, system_id, _)) = self.first else {
            return Err(self.check.err(SegmentProblem::Truncated {
                actual: bytes,
                expected: seg,
            }));
        };
        let (end_of_wal, continued_record) = match (&self.walk, self.ended) {
            (_, Some(end)) => (Some(end), None),
            // A record cut by the end of a partial file: the WAL ends where it began.
            (Walk::Record(rec), None) if self.check.partial && bytes < seg => {
                (Some(rec.start), None)
            }
            (Walk::Record(rec), None) => (None, Some(rec.start)),
            _ => (None, None),
        };
        Ok(SegmentReport {
            version,
            system_id,
            bytes,
            pages_checked: self.pages,
            records_checked: self.records,
            end_of_wal,
            switched: self.switched,
            last_record: self.prev_record,
            continued_record,
        })
    }
}
