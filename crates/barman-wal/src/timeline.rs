//! Timeline ids.

use std::fmt;
use std::str::FromStr;

use crate::lsn::parse_hex_u32;
use crate::{Error, Result};

/// A PostgreSQL timeline id (`TimeLineID`): the number PostgreSQL gives each history of
/// the WAL, 1 for a fresh cluster, incremented at every promotion or recovery that ends
/// on a new timeline. It appears in the first 8 hex digits of WAL segment names and in
/// `XXXXXXXX.history` file names.
///
/// It is always PostgreSQL's timeline, never any other kind of "timeline".
/// `Display` and `FromStr` use decimal, as PostgreSQL shows timelines in
/// `pg_controldata`, `recovery_target_timeline` and `backup_label`; file names use
/// hexadecimal ([`TimelineId::to_hex`]). Timeline 0 is not a timeline PostgreSQL ever
/// uses: [`From<u32>`] accepts it (the conversion is lossless), the parsers reject it.
///
/// # Examples
///
/// ```
/// use barman_wal::TimelineId;
///
/// let tli = TimelineId::from(26);
/// assert_eq!(tli.to_string(), "26");
/// assert_eq!(tli.to_hex(), "0000001A");
/// assert_eq!(u32::from(tli), 26);
/// assert_eq!("26".parse::<TimelineId>()?, tli);
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[doc(alias = "TimeLineID")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelineId(u32);

impl TimelineId {
    /// Timeline 1, the timeline of a freshly initialised cluster.
    ///
    /// ```
    /// assert_eq!(barman_wal::TimelineId::FIRST.to_string(), "1");
    /// ```
    pub const FIRST: TimelineId = TimelineId(1);

    /// Makes a timeline id (usable in `const` context).
    ///
    /// ```
    /// const T: barman_wal::TimelineId = barman_wal::TimelineId::new(2);
    /// assert_eq!(u32::from(T), 2);
    /// ```
    pub const fn new(value: u32) -> TimelineId {
        TimelineId(value)
    }

    /// The numeric value.
    ///
    /// ```
    /// assert_eq!(barman_wal::TimelineId::new(7).as_u32(), 7);
    /// ```
    pub const fn as_u32(self) -> u32 {
        self.0
    }

    /// Whether PostgreSQL could use this timeline (it is not 0).
    ///
    /// ```
    /// use barman_wal::TimelineId;
    /// assert!(TimelineId::FIRST.is_valid());
    /// assert!(!TimelineId::new(0).is_valid());
    /// ```
    pub const fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// The next timeline, or `None` after `u32::MAX`.
    ///
    /// ```
    /// use barman_wal::TimelineId;
    /// assert_eq!(TimelineId::FIRST.next(), Some(TimelineId::new(2)));
    /// assert_eq!(TimelineId::new(u32::MAX).next(), None);
    /// ```
    pub const fn next(self) -> Option<TimelineId> {
        match self.0.checked_add(1) {
            Some(v) => Some(TimelineId(v)),
            None => None,
        }
    }

    /// The 8-hex-digit upper-case form used in file names.
    ///
    /// ```
    /// assert_eq!(barman_wal::TimelineId::new(255).to_hex(), "000000FF");
    /// ```
    pub fn to_hex(self) -> String {
        format!("{:08X}", self.0)
    }

    /// Parses the 8-hex-digit form used in file names (either case).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTimeline`] unless `s` is exactly 8 hex digits naming a timeline
    /// other than 0.
    ///
    /// ```
    /// use barman_wal::TimelineId;
    /// assert_eq!(TimelineId::from_hex("0000001a")?, TimelineId::new(26));
    /// assert!(TimelineId::from_hex("1A").is_err());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn from_hex(s: &str) -> Result<TimelineId> {
        if s.len() != 8 {
            return Err(Error::InvalidTimeline {
                input: s.to_owned(),
                reason: "expected 8 hexadecimal digits",
            });
        }
        let v = parse_hex_u32(s.as_bytes()).ok_or_else(|| Error::InvalidTimeline {
            input: s.to_owned(),
            reason: "expected 8 hexadecimal digits",
        })?;
        checked_nonzero(v, s)
    }
}

fn checked_nonzero(v: u32, input: &str) -> Result<TimelineId> {
    if v == 0 {
        Err(Error::InvalidTimeline {
            input: input.to_owned(),
            reason: "timeline 0 does not exist",
        })
    } else {
        Ok(TimelineId(v))
    }
}

impl From<u32> for TimelineId {
    fn from(value: u32) -> Self {
        TimelineId(value)
    }
}

impl From<TimelineId> for u32 {
    fn from(tli: TimelineId) -> Self {
        tli.0
    }
}

impl fmt::Display for TimelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TimelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimelineId({})", self.0)
    }
}

impl FromStr for TimelineId {
    type Err = Error;

    /// Parses a decimal timeline id (`1`, `26`), as PostgreSQL prints it.
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidTimeline {
                input: s.to_owned(),
                reason: "expected a decimal number",
            });
        }
        let v: u32 = s.parse().map_err(|_| Error::InvalidTimeline {
            input: s.to_owned(),
            reason: "larger than 4294967295",
        })?;
        checked_nonzero(v, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_text() {
        for bad in ["", "0", "-1", "+1", " 1", "1 ", "0x1", "4294967296", "a"] {
            assert!(bad.parse::<TimelineId>().is_err(), "{bad:?}");
        }
        for bad in ["", "00000000", "0000001", "000000001", "0000001G"] {
            assert!(TimelineId::from_hex(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(v in 1u32..) {
            let t = TimelineId::from(v);
            prop_assert_eq!(t.to_string().parse::<TimelineId>().unwrap(), t);
            prop_assert_eq!(TimelineId::from_hex(&t.to_hex()).unwrap(), t);
            prop_assert_eq!(TimelineId::from_hex(&t.to_hex().to_lowercase()).unwrap(), t);
        }

        #[test]
        fn hex_sorts_like_numbers(a in 1u32.., b in 1u32..) {
            prop_assert_eq!(TimelineId::from(a).to_hex().cmp(&TimelineId::from(b).to_hex()), a.cmp(&b));
        }
    }
}
