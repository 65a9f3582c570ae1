//! WAL segment sizes, segment names and segment-number arithmetic.

use std::fmt;
use std::iter::FusedIterator;
use std::str::FromStr;

use crate::lsn::parse_hex_u32;
use crate::{Error, Lsn, Result, TimelineId};

/// The size of a WAL segment file (`wal_segment_size`, set at `initdb --wal-segsize`).
///
/// Invariant: a power of two from 1 MiB to 1 GiB, as PostgreSQL requires. Every piece of
/// segment arithmetic in this crate takes one as an argument: no code here assumes
/// 16 MiB.
///
/// # Examples
///
/// ```
/// use barman_wal::WalSegSize;
///
/// let size = WalSegSize::new(64 * 1024 * 1024)?;
/// assert_eq!(size.bytes(), 67_108_864);
/// assert_eq!(size.segments_per_log(), 64);
/// assert!(WalSegSize::new(3 * 1024 * 1024).is_err());
/// assert_eq!(WalSegSize::DEFAULT.bytes(), 16 * 1024 * 1024);
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[doc(alias = "wal_segment_size")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct WalSegSize(u32);

impl WalSegSize {
    /// Smallest segment size PostgreSQL accepts (1 MiB).
    pub const MIN_BYTES: u64 = 1 << 20;
    /// Largest segment size PostgreSQL accepts (1 GiB).
    pub const MAX_BYTES: u64 = 1 << 30;

    /// PostgreSQL's default segment size, 16 MiB.
    ///
    /// ```
    /// assert_eq!(barman_wal::WalSegSize::DEFAULT.bytes(), 16_777_216);
    /// ```
    pub const DEFAULT: WalSegSize = WalSegSize(16 << 20);

    /// Checks and wraps a segment size in bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegmentSize`] unless `bytes` is a power of two from 1 MiB to 1 GiB.
    ///
    /// ```
    /// use barman_wal::WalSegSize;
    /// assert!(WalSegSize::new(1 << 20).is_ok());
    /// assert!(WalSegSize::new(1 << 31).is_err());
    /// ```
    pub fn new(bytes: u64) -> Result<WalSegSize> {
        if bytes.is_power_of_two() && (Self::MIN_BYTES..=Self::MAX_BYTES).contains(&bytes) {
            // In range, so it fits in u32.
            Ok(WalSegSize(bytes as u32))
        } else {
            Err(Error::InvalidSegmentSize { bytes })
        }
    }

    /// The size in bytes.
    ///
    /// ```
    /// assert_eq!(barman_wal::WalSegSize::DEFAULT.bytes(), 1 << 24);
    /// ```
    pub const fn bytes(self) -> u64 {
        self.0 as u64
    }

    /// How many segments one "log id" (4 GiB of WAL) holds: the range of the last 8 hex
    /// digits of a segment name (`0x100000000 / size`, 256 for 16 MiB).
    ///
    /// ```
    /// assert_eq!(barman_wal::WalSegSize::DEFAULT.segments_per_log(), 256);
    /// ```
    #[doc(alias = "XLogSegmentsPerXLogId")]
    pub const fn segments_per_log(self) -> u64 {
        (1u64 << 32) / self.0 as u64
    }

    /// The offset of `lsn` inside its segment.
    ///
    /// ```
    /// use barman_wal::WalSegSize;
    /// assert_eq!(WalSegSize::DEFAULT.offset_of("0/3000028".parse()?), 0x28);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "XLogSegmentOffset")]
    pub const fn offset_of(self, lsn: Lsn) -> u64 {
        lsn.as_u64() & (self.0 as u64 - 1)
    }

    /// The segment number holding `lsn` (`XLByteToSeg`).
    ///
    /// ```
    /// use barman_wal::WalSegSize;
    /// assert_eq!(WalSegSize::DEFAULT.segment_no("1/3000028".parse()?), 0x103);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "XLByteToSeg")]
    pub const fn segment_no(self, lsn: Lsn) -> u64 {
        lsn.as_u64() / self.0 as u64
    }
}

impl From<WalSegSize> for u64 {
    fn from(size: WalSegSize) -> Self {
        size.bytes()
    }
}

impl TryFrom<u64> for WalSegSize {
    type Error = Error;
    fn try_from(bytes: u64) -> Result<Self> {
        WalSegSize::new(bytes)
    }
}

impl fmt::Display for WalSegSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The name of a WAL segment file: `TTTTTTTTLLLLLLLLSSSSSSSS`, timeline, log id and
/// segment inside the log, 8 hex digits each.
///
/// Parsing accepts either case and needs no segment size; everything that turns the name
/// into positions takes the [`WalSegSize`], because the same name means different bytes
/// with different sizes. Names order by timeline, then position: the same order as their
/// text.
///
/// # Examples
///
/// ```
/// use barman_wal::{Lsn, SegmentName, TimelineId, WalSegSize};
///
/// let lsn: Lsn = "0/3000028".parse()?;
/// let seg = SegmentName::containing(TimelineId::FIRST, lsn, WalSegSize::DEFAULT);
/// assert_eq!(seg.to_string(), "000000010000000000000003");
/// assert_eq!(seg.start_lsn(WalSegSize::DEFAULT)?, "0/3000000".parse()?);
/// let parsed: SegmentName = "000000010000000a000000ff".parse()?;
/// assert_eq!((parsed.log(), parsed.seg()), (0xA, 0xFF));
/// assert_eq!(parsed.next(WalSegSize::DEFAULT).unwrap().to_string(), "000000010000000B00000000");
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[doc(alias = "XLogFileName")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName {
    // Field order gives the derived ordering: timeline, then log, then seg.
    tli: TimelineId,
    log: u32,
    seg: u32,
}

impl SegmentName {
    /// Length of a segment name in characters.
    pub const LEN: usize = 24;

    /// Builds a name from its three parts. `seg` is not checked against a segment size:
    /// see [`SegmentName::is_valid_for`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTimeline`] for timeline 0.
    ///
    /// ```
    /// use barman_wal::{SegmentName, TimelineId};
    /// let s = SegmentName::new(TimelineId::new(2), 1, 0x40)?;
    /// assert_eq!(s.to_string(), "000000020000000100000040");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn new(tli: TimelineId, log: u32, seg: u32) -> Result<SegmentName> {
        if !tli.is_valid() {
            return Err(Error::InvalidTimeline {
                input: "0".to_owned(),
                reason: "timeline 0 does not exist",
            });
        }
        Ok(SegmentName { tli, log, seg })
    }

    /// The segment of timeline `tli` that holds the byte at `lsn` (`XLByteToSeg` +
    /// `XLogFileName`). An LSN exactly at a segment boundary belongs to the segment that
    /// starts there; see [`SegmentName::containing_prev`] for end positions.
    ///
    /// A timeline of 0 is replaced by 1, the only way this function could not return a
    /// name PostgreSQL can write.
    ///
    /// ```
    /// use barman_wal::{SegmentName, TimelineId, WalSegSize};
    /// let s = SegmentName::containing(TimelineId::new(3), "16/B374D848".parse()?, WalSegSize::DEFAULT);
    /// assert_eq!(s.to_string(), "0000000300000016000000B3");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "XLByteToSeg")]
    pub fn containing(tli: TimelineId, lsn: Lsn, size: WalSegSize) -> SegmentName {
        Self::at_segment_no(tli, size.segment_no(lsn), size)
    }

    /// The segment holding the byte just before `lsn` (`XLByteToPrevSeg`): the last
    /// segment a backup or a recovery that stops at `lsn` needs. `None` for `0/0`.
    ///
    /// ```
    /// use barman_wal::{SegmentName, TimelineId, WalSegSize};
    /// let s = SegmentName::containing_prev(TimelineId::FIRST, "0/4000000".parse()?, WalSegSize::DEFAULT);
    /// assert_eq!(s.unwrap().to_string(), "000000010000000000000003");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "XLByteToPrevSeg")]
    pub fn containing_prev(tli: TimelineId, lsn: Lsn, size: WalSegSize) -> Option<SegmentName> {
        let before = lsn.checked_sub(1)?;
        Some(Self::containing(tli, before, size))
    }

    /// The name of segment number `segno` (as counted by `XLByteToSeg`), or `None` when the
    /// number is beyond the LSN space.
    ///
    /// ```
    /// use barman_wal::{SegmentName, TimelineId, WalSegSize};
    /// let s = SegmentName::from_segment_no(TimelineId::FIRST, 0x103, WalSegSize::DEFAULT).unwrap();
    /// assert_eq!(s.to_string(), "000000010000000100000003");
    /// ```
    pub fn from_segment_no(tli: TimelineId, segno: u64, size: WalSegSize) -> Option<SegmentName> {
        let per_log = size.segments_per_log();
        let log = u32::try_from(segno / per_log).ok()?;
        let tli = if tli.is_valid() {
            tli
        } else {
            TimelineId::FIRST
        };
        // segno % per_log < per_log <= 4096, fits in u32.
        Some(SegmentName {
            tli,
            log,
            seg: (segno % per_log) as u32,
        })
    }

    fn at_segment_no(tli: TimelineId, segno: u64, size: WalSegSize) -> SegmentName {
        let per_log = size.segments_per_log();
        let tli = if tli.is_valid() {
            tli
        } else {
            TimelineId::FIRST
        };
        // segno = lsn / size <= u64::MAX / 2^20, so segno / per_log < 2^32.
        SegmentName {
            tli,
            log: (segno / per_log) as u32,
            seg: (segno % per_log) as u32,
        }
    }

    /// The timeline (first 8 hex digits).
    ///
    /// ```
    /// let s: barman_wal::SegmentName = "0000000A0000000100000002".parse()?;
    /// assert_eq!(u32::from(s.timeline()), 10);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub const fn timeline(self) -> TimelineId {
        self.tli
    }

    /// The log id (middle 8 hex digits): the high 32 bits of the LSNs in the segment.
    ///
    /// ```
    /// let s: barman_wal::SegmentName = "0000000A0000000100000002".parse()?;
    /// assert_eq!(s.log(), 1);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub const fn log(self) -> u32 {
        self.log
    }

    /// The segment inside the log (last 8 hex digits).
    ///
    /// ```
    /// let s: barman_wal::SegmentName = "0000000A0000000100000002".parse()?;
    /// assert_eq!(s.seg(), 2);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub const fn seg(self) -> u32 {
        self.seg
    }

    /// The same position on another timeline.
    ///
    /// ```
    /// use barman_wal::{SegmentName, TimelineId};
    /// let s: SegmentName = "000000010000000100000002".parse()?;
    /// assert_eq!(s.with_timeline(TimelineId::new(2)).to_string(), "000000020000000100000002");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn with_timeline(self, tli: TimelineId) -> SegmentName {
        let tli = if tli.is_valid() {
            tli
        } else {
            TimelineId::FIRST
        };
        SegmentName { tli, ..self }
    }

    /// Whether the name can exist with segments of `size` (its last part is below
    /// [`WalSegSize::segments_per_log`]).
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let s: SegmentName = "0000000100000001000000FF".parse()?;
    /// assert!(s.is_valid_for(WalSegSize::DEFAULT));
    /// assert!(!s.is_valid_for(WalSegSize::new(64 << 20)?));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn is_valid_for(self, size: WalSegSize) -> bool {
        u64::from(self.seg) < size.segments_per_log()
    }

    /// The segment number (`XLogFromFileName`), or `None` if the name cannot exist with
    /// segments of `size`.
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let s: SegmentName = "000000010000000100000003".parse()?;
    /// assert_eq!(s.segment_no(WalSegSize::DEFAULT), Some(0x103));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "XLogFromFileName")]
    pub fn segment_no(self, size: WalSegSize) -> Option<u64> {
        if !self.is_valid_for(size) {
            return None;
        }
        Some(u64::from(self.log) * size.segments_per_log() + u64::from(self.seg))
    }

    /// The LSN of the first byte of the segment (`XLogSegNoOffsetToRecPtr` with offset 0).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if the name cannot exist with segments of `size`.
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let s: SegmentName = "0000000100000016000000B3".parse()?;
    /// assert_eq!(s.start_lsn(WalSegSize::DEFAULT)?.to_string(), "16/B3000000");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn start_lsn(self, size: WalSegSize) -> Result<Lsn> {
        match self.segment_no(size) {
            // segno * size <= (2^32 * per_log) * size = 2^64 - size: no overflow.
            Some(segno) => Ok(Lsn::new(segno * size.bytes())),
            None => Err(self.not_valid_for(size)),
        }
    }

    /// The LSN just past the last byte of the segment (the next segment's start).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if the name cannot exist with segments of `size`, or for the
    /// very last segment of the LSN space, whose end is not representable.
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let s: SegmentName = "0000000100000016000000B3".parse()?;
    /// assert_eq!(s.end_lsn(WalSegSize::DEFAULT)?.to_string(), "16/B4000000");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn end_lsn(self, size: WalSegSize) -> Result<Lsn> {
        self.start_lsn(size)?
            .checked_add(size.bytes())
            .ok_or_else(|| Error::OutOfRange {
                what: format!("the end of segment {self} is past FFFFFFFF/FFFFFFFF"),
            })
    }

    /// Whether `lsn` falls inside this segment (timeline not considered).
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let s: SegmentName = "000000010000000000000003".parse()?;
    /// assert!(s.contains("0/3FFFFFF".parse()?, WalSegSize::DEFAULT));
    /// assert!(!s.contains("0/4000000".parse()?, WalSegSize::DEFAULT));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn contains(self, lsn: Lsn, size: WalSegSize) -> bool {
        self.segment_no(size) == Some(size.segment_no(lsn))
    }

    /// The next segment on the same timeline, or `None` past the end of the LSN space or
    /// if the name cannot exist with segments of `size`.
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let s: SegmentName = "0000000100000001000000FF".parse()?;
    /// assert_eq!(s.next(WalSegSize::DEFAULT).unwrap().to_string(), "000000010000000200000000");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn next(self, size: WalSegSize) -> Option<SegmentName> {
        let segno = self.segment_no(size)?.checked_add(1)?;
        Self::from_segment_no(self.tli, segno, size)
    }

    /// The previous segment on the same timeline, or `None` before the first segment or
    /// if the name cannot exist with segments of `size`.
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let s: SegmentName = "000000010000000200000000".parse()?;
    /// assert_eq!(s.prev(WalSegSize::DEFAULT).unwrap().to_string(), "0000000100000001000000FF");
    /// assert_eq!("000000010000000000000000".parse::<SegmentName>()?.prev(WalSegSize::DEFAULT), None);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn prev(self, size: WalSegSize) -> Option<SegmentName> {
        let segno = self.segment_no(size)?.checked_sub(1)?;
        Self::from_segment_no(self.tli, segno, size)
    }

    /// The segments from `first` to `last` inclusive, across log boundaries, in order.
    ///
    /// As Barman's `generate_segment_names`, the names are on `first`'s timeline and run
    /// up to `last`'s position. Empty when `last` is before `first`, or when either name
    /// cannot exist with segments of `size`.
    ///
    /// ```
    /// use barman_wal::{SegmentName, WalSegSize};
    /// let first: SegmentName = "0000000100000001000000FE".parse()?;
    /// let last: SegmentName = "000000010000000200000001".parse()?;
    /// let names: Vec<String> = SegmentName::range(first, last, WalSegSize::DEFAULT)
    ///     .map(|s| s.to_string())
    ///     .collect();
    /// assert_eq!(names, [
    ///     "0000000100000001000000FE", "0000000100000001000000FF",
    ///     "000000010000000200000000", "000000010000000200000001",
    /// ]);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn range(first: SegmentName, last: SegmentName, size: WalSegSize) -> SegmentRange {
        let (next, end) = match (first.segment_no(size), last.segment_no(size)) {
            (Some(a), Some(b)) if a <= b => (a, b),
            _ => (1, 0),
        };
        SegmentRange {
            tli: first.tli,
            size,
            next,
            end,
            done: next > end,
        }
    }

    /// Barman's "hash dir": the first 16 hex digits, the directory of `wals/` that holds
    /// this segment.
    ///
    /// ```
    /// let s: barman_wal::SegmentName = "0000000100000016000000B3".parse()?;
    /// assert_eq!(s.hash_dir(), "0000000100000016");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn hash_dir(self) -> String {
        String::from_utf8_lossy(&self.to_bytes()[..16]).into_owned()
    }

    fn not_valid_for(self, size: WalSegSize) -> Error {
        Error::OutOfRange {
            what: format!(
                "segment {self} cannot exist with {} byte segments (last part must be below {:X})",
                size.bytes(),
                size.segments_per_log()
            ),
        }
    }

    /// Parses the 24 hex digits at the start of `b` (exactly 24 bytes must be given).
    pub(crate) fn parse_bytes(b: &[u8]) -> Option<SegmentName> {
        if b.len() != Self::LEN {
            return None;
        }
        let tli = parse_hex_u32(&b[0..8])?;
        let log = parse_hex_u32(&b[8..16])?;
        let seg = parse_hex_u32(&b[16..24])?;
        if tli == 0 {
            return None;
        }
        Some(SegmentName {
            tli: TimelineId::new(tli),
            log,
            seg,
        })
    }
}

/// Writes `v` as 8 upper-case hex digits into `out`.
fn hex8(v: u32, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for (i, b) in out.iter_mut().take(8).enumerate() {
        *b = DIGITS[((v >> (28 - 4 * i)) & 0xF) as usize];
    }
}

impl SegmentName {
    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut buf = [0u8; Self::LEN];
        hex8(self.tli.as_u32(), &mut buf[0..8]);
        hex8(self.log, &mut buf[8..16]);
        hex8(self.seg, &mut buf[16..24]);
        buf
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.to_bytes();
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SegmentName({self})")
    }
}

impl FromStr for SegmentName {
    type Err = Error;

    /// Parses exactly 24 hex digits of either case, timeline not 0.
    fn from_str(s: &str) -> Result<Self> {
        let reason = if s.len() != Self::LEN {
            "a segment name has exactly 24 hexadecimal digits"
        } else if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            "a segment name has only hexadecimal digits"
        } else {
            match Self::parse_bytes(s.as_bytes()) {
                Some(name) => return Ok(name),
                None => "timeline 0 does not exist",
            }
        };
        Err(Error::InvalidWalFileName {
            input: s.to_owned(),
            reason,
        })
    }
}

/// Iterator over consecutive segment names, made by [`SegmentName::range`].
#[derive(Clone, Debug)]
pub struct SegmentRange {
    tli: TimelineId,
    size: WalSegSize,
    next: u64,
    end: u64,
    done: bool,
}

impl Iterator for SegmentRange {
    type Item = SegmentName;

    fn next(&mut self) -> Option<SegmentName> {
        if self.done {
            return None;
        }
        let name = SegmentName::at_segment_no(self.tli, self.next, self.size);
        if self.next >= self.end {
            self.done = true;
        } else {
            self.next += 1;
        }
        Some(name)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        match usize::try_from(self.end - self.next + 1) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
}

impl FusedIterator for SegmentRange {}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    fn sizes() -> impl Strategy<Value = WalSegSize> {
        (20u32..=30).prop_map(|s| WalSegSize::new(1u64 << s).unwrap())
    }

    #[test]
    fn seg_sizes() {
        for bad in [
            0,
            1,
            (1 << 20) - 1,
            (1 << 20) + 1,
            3 << 20,
            1 << 31,
            u64::MAX,
        ] {
            assert!(WalSegSize::new(bad).is_err(), "{bad}");
        }
        for s in 20..=30 {
            assert_eq!(WalSegSize::new(1 << s).unwrap().bytes(), 1 << s);
        }
        assert_eq!(WalSegSize::new(1 << 30).unwrap().segments_per_log(), 4);
        assert_eq!(WalSegSize::new(1 << 20).unwrap().segments_per_log(), 4096);
    }

    #[test]
    fn name_errors() {
        for bad in [
            "",
            "00000001000000000000000",
            "0000000100000000000000001",
            "00000001000000000000000G",
            "000000000000000000000001",
            "00000001 000000000000001",
            "000000010000000000000001.gz",
        ] {
            assert!(bad.parse::<SegmentName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn last_segment_of_lsn_space() {
        let s = SegmentName::containing(TimelineId::FIRST, Lsn::MAX, WalSegSize::DEFAULT);
        assert_eq!(s.to_string(), "00000001FFFFFFFF000000FF");
        assert_eq!(s.next(WalSegSize::DEFAULT), None);
        assert!(s.end_lsn(WalSegSize::DEFAULT).is_err());
        assert_eq!(
            s.start_lsn(WalSegSize::DEFAULT).unwrap().to_string(),
            "FFFFFFFF/FF000000"
        );
    }

    #[test]
    fn range_edge_cases() {
        let size = WalSegSize::DEFAULT;
        let a: SegmentName = "000000010000000000000005".parse().unwrap();
        let b: SegmentName = "000000010000000000000004".parse().unwrap();
        assert_eq!(SegmentName::range(a, b, size).count(), 0);
        assert_eq!(SegmentName::range(a, a, size).collect::<Vec<_>>(), [a]);
        let bad: SegmentName = "000000010000000000000100".parse().unwrap();
        assert_eq!(SegmentName::range(a, bad, size).count(), 0);
        // Barman semantics: first's timeline, last's position.
        let c: SegmentName = "000000020000000000000006".parse().unwrap();
        let names: Vec<_> = SegmentName::range(a, c, size)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            names,
            ["000000010000000000000005", "000000010000000000000006"]
        );
        let last = SegmentName::containing(TimelineId::FIRST, Lsn::MAX, size);
        let r = SegmentName::range(last.prev(size).unwrap(), last, size);
        assert_eq!(r.len_hint(), 2);
        assert_eq!(r.count(), 2);
    }

    trait LenHint {
        fn len_hint(&self) -> usize;
    }
    impl LenHint for SegmentRange {
        fn len_hint(&self) -> usize {
            self.size_hint().0
        }
    }

    proptest! {
        #[test]
        fn round_trip(tli in 1u32.., log in any::<u32>(), seg in any::<u32>()) {
            let s = SegmentName::new(TimelineId::new(tli), log, seg).unwrap();
            prop_assert_eq!(s.to_string().parse::<SegmentName>().unwrap(), s);
            prop_assert_eq!(s.to_string().to_lowercase().parse::<SegmentName>().unwrap(), s);
            prop_assert_eq!(s.hash_dir(), &s.to_string()[..16]);
        }

        #[test]
        fn containing_starts_at_or_before(tli in 1u32.., lsn in any::<u64>(), size in sizes()) {
            let lsn = Lsn::from(lsn);
            let s = SegmentName::containing(TimelineId::new(tli), lsn, size);
            prop_assert!(s.is_valid_for(size));
            let start = s.start_lsn(size).unwrap();
            prop_assert!(start <= lsn);
            prop_assert!(s.contains(lsn, size));
            prop_assert_eq!(size.offset_of(lsn), lsn.as_u64() - start.as_u64());
            if let Some(next) = s.next(size) {
                prop_assert!(next.start_lsn(size).unwrap() > lsn);
                prop_assert_eq!(next.prev(size), Some(s));
                prop_assert_eq!(s.end_lsn(size).unwrap(), next.start_lsn(size).unwrap());
            }
        }

        #[test]
        fn names_sort_like_segment_numbers(a in any::<u64>(), b in any::<u64>(), size in sizes()) {
            let sa = SegmentName::containing(TimelineId::FIRST, Lsn::from(a), size);
            let sb = SegmentName::containing(TimelineId::FIRST, Lsn::from(b), size);
            let na = size.segment_no(Lsn::from(a));
            let nb = size.segment_no(Lsn::from(b));
            prop_assert_eq!(sa.cmp(&sb), na.cmp(&nb));
            prop_assert_eq!(sa.to_string().cmp(&sb.to_string()), na.cmp(&nb));
        }

        #[test]
        fn range_is_consecutive(start in any::<u64>(), len in 0u64..600, size in sizes()) {
            let first = SegmentName::containing(TimelineId::FIRST, Lsn::from(start), size);
            let Some(last_no) = first.segment_no(size).unwrap().checked_add(len) else { return Ok(()) };
            let Some(last) = SegmentName::from_segment_no(TimelineId::FIRST, last_no, size) else { return Ok(()) };
            let names: Vec<_> = SegmentName::range(first, last, size).collect();
            prop_assert_eq!(names.len() as u64, len + 1);
            prop_assert_eq!(names[0], first);
            prop_assert_eq!(*names.last().unwrap(), last);
            for w in names.windows(2) {
                prop_assert_eq!(w[0].next(size), Some(w[1]));
                prop_assert!(w[0] < w[1]);
            }
        }

        #[test]
        fn parse_never_panics(s in "[0-9a-fA-FxX. ]{0,30}") {
            let _ = s.parse::<SegmentName>();
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A valid segment name with one mutation: an error, or the same name up to case,
        /// whose positions are consistent for every segment size it fits.
        #[test]
        fn near_valid_names_parse_or_fail_cleanly(
            s in near_valid((1u32.., any::<u32>(), 0u32..4096, any::<bool>()).prop_map(|(t, l, s, lower)| {
                let name = SegmentName::new(TimelineId::new(t), l, s).unwrap().to_string();
                if lower { name.to_lowercase() } else { name }
            })),
            size in sizes(),
        ) {
            if let Ok(n) = s.parse::<SegmentName>() {
                prop_assert_eq!(n.to_string().to_lowercase(), s.to_lowercase());
                if let Ok(start) = n.start_lsn(size) {
                    prop_assert_eq!(SegmentName::containing(n.timeline(), start, size), n);
                }
            }
        }
    }
}
