//! Names of the files a WAL archive holds.

use std::fmt;
use std::str::FromStr;

use crate::lsn::parse_hex_u32;
use crate::{Error, Result, SegmentName, TimelineId};

/// The name of any file that can appear in a WAL archive, as Barman recognises it
/// (`is_any_xlog_file`).
///
/// | variant | form |
/// |---|---|
/// | [`Segment`](WalFileName::Segment) | `000000010000000000000003` |
/// | [`Partial`](WalFileName::Partial) | `000000010000000000000003.partial` |
/// | [`BackupLabel`](WalFileName::BackupLabel) | `000000010000000000000003.00000028.backup` |
/// | [`History`](WalFileName::History) | `00000002.history` |
///
/// Hex digits are accepted in either case; suffixes only in lower case, as PostgreSQL
/// writes them. Names order like their canonical text (the order Barman compares them
/// in): by timeline, a timeline's history file before its segments, then by position,
/// a segment before its `.backup` files and its `.partial`. Anything else (a compression suffix, `.tmp`, a wrong length, stray
/// characters, `.PARTIAL`) is an error. `Display` writes the canonical upper-case name.
///
/// # Examples
///
/// ```
/// use barman_wal::WalFileName;
///
/// let name: WalFileName = "000000010000000000000003.00000028.backup".parse()?;
/// assert!(matches!(name, WalFileName::BackupLabel { offset: 0x28, .. }));
/// assert_eq!(name.hash_dir(), "0000000100000000");
/// assert_eq!(name.to_string(), "000000010000000000000003.00000028.backup");
///
/// let history: WalFileName = "0000000a.history".parse()?;
/// assert_eq!(history.to_string(), "0000000A.history");
/// assert_eq!(history.hash_dir(), "");
///
/// assert!("000000010000000000000003.gz".parse::<WalFileName>().is_err());
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WalFileName {
    /// A complete WAL segment.
    Segment(SegmentName),
    /// A partial segment: the last, incomplete segment of a timeline saved at promotion,
    /// or the segment `pg_receivewal` is writing.
    Partial(SegmentName),
    /// A backup history file written at the end of a backup, named after the segment and
    /// the offset in it where the backup started.
    BackupLabel {
        /// Segment holding the backup's start.
        segment: SegmentName,
        /// Offset of the start inside that segment.
        offset: u32,
    },
    /// A timeline history file.
    History(TimelineId),
}

const PARTIAL: &str = ".partial";
const BACKUP: &str = ".backup";
const HISTORY: &str = ".history";

impl WalFileName {
    /// The segment the file belongs to, `None` for a history file.
    ///
    /// ```
    /// use barman_wal::WalFileName;
    /// let n: WalFileName = "000000010000000000000003.partial".parse()?;
    /// assert_eq!(n.segment().unwrap().to_string(), "000000010000000000000003");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn segment(self) -> Option<SegmentName> {
        match self {
            WalFileName::Segment(s) | WalFileName::Partial(s) => Some(s),
            WalFileName::BackupLabel { segment, .. } => Some(segment),
            WalFileName::History(_) => None,
        }
    }

    /// The timeline in the name.
    ///
    /// ```
    /// use barman_wal::{TimelineId, WalFileName};
    /// let n: WalFileName = "00000003.history".parse()?;
    /// assert_eq!(n.timeline(), TimelineId::new(3));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn timeline(self) -> TimelineId {
        match self {
            WalFileName::History(t) => t,
            other => other
                .segment()
                .map_or(TimelineId::FIRST, SegmentName::timeline),
        }
    }

    /// Whether this is a complete segment (Barman's `is_wal_file`).
    ///
    /// ```
    /// let n: barman_wal::WalFileName = "000000010000000000000003".parse()?;
    /// assert!(n.is_segment());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn is_segment(self) -> bool {
        matches!(self, WalFileName::Segment(_))
    }

    /// Whether this is a timeline history file.
    ///
    /// ```
    /// let n: barman_wal::WalFileName = "00000002.history".parse()?;
    /// assert!(n.is_history());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn is_history(self) -> bool {
        matches!(self, WalFileName::History(_))
    }

    /// Barman's `hash_dir`: the subdirectory of `wals/` holding the file, the first 16 hex
    /// digits in upper case, or the empty string for history files (kept at the top of
    /// `wals/`).
    ///
    /// ```
    /// let n: barman_wal::WalFileName = "0000000100000a0b0000000c.partial".parse()?;
    /// assert_eq!(n.hash_dir(), "0000000100000A0B");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn hash_dir(self) -> String {
        self.segment()
            .map(SegmentName::hash_dir)
            .unwrap_or_default()
    }
}

impl WalFileName {
    /// The sort key that orders names like their canonical text.
    fn order_key(&self) -> (u32, u8, u32, u32, u8, u32) {
        match *self {
            WalFileName::History(t) => (t.as_u32(), 0, 0, 0, 0, 0),
            WalFileName::Segment(s) => (s.timeline().as_u32(), 1, s.log(), s.seg(), 0, 0),
            WalFileName::BackupLabel { segment: s, offset } => {
                (s.timeline().as_u32(), 1, s.log(), s.seg(), 1, offset)
            }
            WalFileName::Partial(s) => (s.timeline().as_u32(), 1, s.log(), s.seg(), 2, 0),
        }
    }
}

impl Ord for WalFileName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for WalFileName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl From<SegmentName> for WalFileName {
    fn from(s: SegmentName) -> Self {
        WalFileName::Segment(s)
    }
}

impl fmt::Display for WalFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalFileName::Segment(s) => write!(f, "{s}"),
            WalFileName::Partial(s) => write!(f, "{s}{PARTIAL}"),
            WalFileName::BackupLabel { segment, offset } => {
                write!(f, "{segment}.{offset:08X}{BACKUP}")
            }
            WalFileName::History(t) => write!(f, "{:08X}{HISTORY}", t.as_u32()),
        }
    }
}

impl FromStr for WalFileName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let b = s.as_bytes();
        let err = |reason: &'static str| Error::InvalidWalFileName {
            input: s.to_owned(),
            reason,
        };
        const SEG: usize = SegmentName::LEN;
        match b.len() {
            SEG => SegmentName::parse_bytes(b)
                .map(WalFileName::Segment)
                .ok_or_else(|| err(segment_reason(b))),
            16 if b.ends_with(HISTORY.as_bytes()) => {
                let tli = parse_hex_u32(&b[..8])
                    .ok_or_else(|| err("a history file name starts with 8 hexadecimal digits"))?;
                if tli == 0 {
                    return Err(err("timeline 0 does not exist"));
                }
                Ok(WalFileName::History(TimelineId::new(tli)))
            }
            32 if b.ends_with(PARTIAL.as_bytes()) => SegmentName::parse_bytes(&b[..SEG])
                .map(WalFileName::Partial)
                .ok_or_else(|| err(segment_reason(&b[..SEG]))),
            40 if b.ends_with(BACKUP.as_bytes()) && b[SEG] == b'.' => {
                let segment = SegmentName::parse_bytes(&b[..SEG])
                    .ok_or_else(|| err(segment_reason(&b[..SEG])))?;
                let offset = parse_hex_u32(&b[SEG + 1..SEG + 9])
                    .ok_or_else(|| err("a backup label offset has 8 hexadecimal digits"))?;
                Ok(WalFileName::BackupLabel { segment, offset })
            }
            _ => Err(err(
                "not a WAL segment, .partial, .backup or .history name (no compression or other suffix is allowed)",
            )),
        }
    }
}

fn segment_reason(b: &[u8]) -> &'static str {
    if b.iter().all(u8::is_ascii_hexdigit) {
        "timeline 0 does not exist"
    } else {
        "a segment name has exactly 24 hexadecimal digits"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    #[test]
    fn accepts_barman_names() {
        let cases = [
            ("000000010000000000000003", "000000010000000000000003"),
            ("0000000a0000000b0000000c", "0000000A0000000B0000000C"),
            (
                "000000010000000000000003.partial",
                "000000010000000000000003.partial",
            ),
            (
                "000000010000000000000003.0000002a.backup",
                "000000010000000000000003.0000002A.backup",
            ),
            ("00000002.history", "00000002.history"),
            ("FFFFFFFF.history", "FFFFFFFF.history"),
        ];
        for (input, canonical) in cases {
            let n: WalFileName = input.parse().unwrap();
            assert_eq!(n.to_string(), canonical);
        }
    }

    #[test]
    fn rejects_other_names() {
        for bad in [
            "",
            "000000010000000000000003.gz",
            "000000010000000000000003.bz2",
            "000000010000000000000003.tmp",
            "000000010000000000000003.PARTIAL",
            "000000010000000000000003.Partial",
            "000000010000000000000003.00000028.BACKUP",
            "000000010000000000000003.0000028.backup",
            "000000010000000000000003_00000028.backup",
            "00000002.HISTORY",
            "0000002.history",
            "000000002.history",
            "00000000.history",
            "000000000000000000000003",
            "00000001000000000000003",
            "0000000100000000000000033",
            "00000001000000000000000g",
            "/00000001000000000000003",
            "00000001/000000000000003",
            ".000000010000000000000003",
            "000000010000000000000003\n",
            "backup_label",
            "archive_status",
            "0000000100000000000000030000000000000000",
            "ééééééééééééé.history",
        ] {
            assert!(bad.parse::<WalFileName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn multibyte_never_panics() {
        // 16 bytes ending in ".history" with multi-byte characters before it.
        let s = "ééééé.history";
        assert_eq!(s.len(), 18);
        assert!(s.parse::<WalFileName>().is_err());
        let s = "éééé.history";
        assert_eq!(s.len(), 16);
        assert!(s.parse::<WalFileName>().is_err());
    }

    fn any_name() -> impl Strategy<Value = WalFileName> {
        let seg = (1u32.., any::<u32>(), any::<u32>())
            .prop_map(|(t, l, s)| SegmentName::new(TimelineId::new(t), l, s).unwrap());
        prop_oneof![
            seg.clone().prop_map(WalFileName::Segment),
            seg.clone().prop_map(WalFileName::Partial),
            (seg, any::<u32>())
                .prop_map(|(segment, offset)| WalFileName::BackupLabel { segment, offset }),
            (1u32..).prop_map(|t| WalFileName::History(TimelineId::new(t))),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(n in any_name()) {
            prop_assert_eq!(n.to_string().parse::<WalFileName>().unwrap(), n);
            // Suffixes are lower case already: lower-casing keeps the name valid.
            prop_assert_eq!(n.to_string().to_lowercase().parse::<WalFileName>().unwrap(), n);
        }

        #[test]
        fn order_is_text_order(a in any_name(), b in any_name()) {
            prop_assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
        }

        #[test]
        fn hash_dir_is_name_prefix(n in any_name()) {
            let h = n.hash_dir();
            if n.is_history() { prop_assert_eq!(h, ""); } else { prop_assert!(n.to_string().starts_with(&h)); prop_assert_eq!(h.len(), 16); }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,45}") {
            let _ = s.parse::<WalFileName>();
        }

        #[test]
        fn near_miss_never_panics(s in "[0-9A-Fa-f]{8,24}(\\.(partial|history|backup|[0-9A-F]{8}\\.backup|gz))?") {
            if let Ok(n) = s.parse::<WalFileName>() {
                prop_assert_eq!(n.to_string().to_lowercase(), s.to_lowercase());
            }
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A valid name of any kind (either case) with one mutation: an error, or a name
        /// whose canonical text is the input up to case.
        #[test]
        fn near_valid_names_parse_or_fail_cleanly(
            s in near_valid((any_name(), any::<bool>()).prop_map(|(n, lower)| {
                if lower { n.to_string().to_lowercase() } else { n.to_string() }
            }))
        ) {
            if let Ok(n) = s.parse::<WalFileName>() {
                let canonical = n.to_string();
                prop_assert_eq!(canonical.parse::<WalFileName>().unwrap(), n);
                prop_assert_eq!(canonical.to_lowercase(), s.to_lowercase());
            }
        }
    }
}
