//! Log sequence numbers.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A position in the write-ahead log: PostgreSQL's `XLogRecPtr` / `pg_lsn`.
///
/// A 64-bit byte position. The text form is PostgreSQL's `X/Y`: the high and low 32 bits
/// in hexadecimal, 1 to 8 digits each, either case on input, upper case without padding
/// on output. `Debug` prints the same text.
///
/// # Examples
///
/// ```
/// use barman_wal::Lsn;
///
/// let lsn: Lsn = "16/b374d848".parse()?;
/// assert_eq!(lsn.to_string(), "16/B374D848");
/// assert_eq!(u64::from(lsn), 0x16_B374_D848);
/// assert_eq!(Lsn::from(0x16_B374_D848), lsn);
/// assert!(lsn > "16/B374D847".parse()?);
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[doc(alias = "XLogRecPtr")]
#[doc(alias = "pg_lsn")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(u64);

impl Lsn {
    /// The invalid LSN, `0/0` (`InvalidXLogRecPtr`).
    ///
    /// ```
    /// assert_eq!(barman_wal::Lsn::INVALID.to_string(), "0/0");
    /// ```
    #[doc(alias = "InvalidXLogRecPtr")]
    pub const INVALID: Lsn = Lsn(0);

    /// The largest LSN, `FFFFFFFF/FFFFFFFF`.
    ///
    /// ```
    /// assert_eq!(barman_wal::Lsn::MAX.to_string(), "FFFFFFFF/FFFFFFFF");
    /// ```
    pub const MAX: Lsn = Lsn(u64::MAX);

    /// Makes an LSN from its 64-bit value (usable in `const` context).
    ///
    /// ```
    /// use barman_wal::Lsn;
    /// const START: Lsn = Lsn::new(0x0300_0028);
    /// assert_eq!(START.to_string(), "0/3000028");
    /// ```
    pub const fn new(value: u64) -> Lsn {
        Lsn(value)
    }

    /// The 64-bit value.
    ///
    /// ```
    /// assert_eq!(barman_wal::Lsn::new(42).as_u64(), 42);
    /// ```
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Whether this is a valid (non-zero) LSN.
    ///
    /// ```
    /// use barman_wal::Lsn;
    /// assert!(!Lsn::INVALID.is_valid());
    /// assert!(Lsn::new(1).is_valid());
    /// ```
    pub const fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// `self + bytes`, or `None` on overflow.
    ///
    /// ```
    /// use barman_wal::Lsn;
    /// assert_eq!(Lsn::new(8).checked_add(8), Some(Lsn::new(16)));
    /// assert_eq!(Lsn::MAX.checked_add(1), None);
    /// ```
    pub const fn checked_add(self, bytes: u64) -> Option<Lsn> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Lsn(v)),
            None => None,
        }
    }

    /// `self - bytes`, or `None` when it would go below `0/0`.
    ///
    /// ```
    /// use barman_wal::Lsn;
    /// assert_eq!(Lsn::new(16).checked_sub(8), Some(Lsn::new(8)));
    /// assert_eq!(Lsn::new(1).checked_sub(2), None);
    /// ```
    pub const fn checked_sub(self, bytes: u64) -> Option<Lsn> {
        match self.0.checked_sub(bytes) {
            Some(v) => Some(Lsn(v)),
            None => None,
        }
    }

    /// `self + bytes`, stopping at [`Lsn::MAX`].
    ///
    /// ```
    /// use barman_wal::Lsn;
    /// assert_eq!(Lsn::MAX.saturating_add(1), Lsn::MAX);
    /// ```
    pub const fn saturating_add(self, bytes: u64) -> Lsn {
        Lsn(self.0.saturating_add(bytes))
    }

    /// Number of bytes from `earlier` to `self`, or `None` if `earlier` is after `self`
    /// (what `pg_wal_lsn_diff` computes).
    ///
    /// ```
    /// use barman_wal::Lsn;
    /// let a: Lsn = "0/3000000".parse()?;
    /// let b: Lsn = "1/0".parse()?;
    /// assert_eq!(b.checked_distance_from(a), Some(0xFD00_0000));
    /// assert_eq!(a.checked_distance_from(b), None);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "pg_wal_lsn_diff")]
    pub const fn checked_distance_from(self, earlier: Lsn) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    /// The high 32 bits (the `X` of `X/Y`, the "log id" of a segment name).
    ///
    /// ```
    /// assert_eq!("16/B374D848".parse::<barman_wal::Lsn>()?.high(), 0x16);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub const fn high(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The low 32 bits (the `Y` of `X/Y`).
    ///
    /// ```
    /// assert_eq!("16/B374D848".parse::<barman_wal::Lsn>()?.low(), 0xB374_D848);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub const fn low(self) -> u32 {
        self.0 as u32
    }

    /// The LSN rounded down to a multiple of `align` (a power of two), for example
    /// the start of the WAL page holding it.
    ///
    /// ```
    /// use barman_wal::Lsn;
    /// assert_eq!(Lsn::new(0x3000_0028).align_down(8192), Lsn::new(0x3000_0000));
    /// ```
    ///
    /// # Panics
    ///
    /// Never for a power of two; for any other `align` the result is meaningless but no
    /// panic occurs.
    pub const fn align_down(self, align: u64) -> Lsn {
        Lsn(self.0 & !(align.wrapping_sub(1)))
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Self {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> Self {
        lsn.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.high(), self.low())
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses 1 to 8 hex digits (either case) into a u32; `None` for anything else.
pub(crate) fn parse_hex_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        let d = hex_digit(b)?;
        v = (v << 4) | u32::from(d);
    }
    Some(v)
}

/// Value of one hex digit of either case.
#[inline]
pub(crate) const fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl FromStr for Lsn {
    type Err = Error;

    /// Parses PostgreSQL's `X/Y` form, as `pg_lsn_in` does: 1 to 8 hex digits, a `/`,
    /// 1 to 8 hex digits, nothing else (no spaces, no sign, no `0x`).
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidLsn {
            input: s.to_owned(),
        };
        let (hi, lo) = s.split_once('/').ok_or_else(invalid)?;
        let hi = parse_hex_u32(hi.as_bytes()).ok_or_else(invalid)?;
        let lo = parse_hex_u32(lo.as_bytes()).ok_or_else(invalid)?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    #[test]
    fn parses_postgres_forms() {
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn::INVALID);
        assert_eq!("0/3000028".parse::<Lsn>().unwrap(), Lsn::new(0x300_0028));
        assert_eq!("FFFFFFFF/FFFFFFFF".parse::<Lsn>().unwrap(), Lsn::MAX);
        assert_eq!("00000016/0b374d848".parse::<Lsn>().ok(), None, "9 digits");
        assert_eq!("0000016/B374D848".parse::<Lsn>().unwrap().high(), 0x16);
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "/",
            "0/",
            "/0",
            "0//0",
            "0/0/0",
            " 0/0",
            "0/0 ",
            "0x1/0",
            "+1/0",
            "-1/0",
            "g/0",
            "1/123456789",
            "123456789/1",
            "0 / 0",
            "1",
            "0/0\n",
            "１/0",
        ] {
            let err = bad.parse::<Lsn>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidLsn { ref input } if input == bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_is_display() {
        let lsn = Lsn::new(0x16_B374_D848);
        assert_eq!(format!("{lsn:?}"), "16/B374D848");
    }

    proptest! {
        #[test]
        fn round_trip(v in any::<u64>()) {
            let lsn = Lsn::from(v);
            prop_assert_eq!(lsn.to_string().parse::<Lsn>().unwrap(), lsn);
            prop_assert_eq!(lsn.to_string().to_lowercase().parse::<Lsn>().unwrap(), lsn);
        }

        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = s.parse::<Lsn>();
        }

        #[test]
        fn hex_like_input_never_panics(s in "[0-9a-fA-F/]{0,20}") {
            if let Ok(lsn) = s.parse::<Lsn>() {
                prop_assert_eq!(u64::from(lsn) >> 32, u64::from(lsn.high()));
            }
        }

        #[test]
        fn order_matches_u64(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(Lsn::from(a).cmp(&Lsn::from(b)), a.cmp(&b));
        }

        #[test]
        fn checked_arithmetic(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(Lsn::from(a).checked_add(b).map(u64::from), a.checked_add(b));
            prop_assert_eq!(Lsn::from(a).checked_sub(b).map(u64::from), a.checked_sub(b));
            prop_assert_eq!(Lsn::from(a).checked_distance_from(Lsn::from(b)), a.checked_sub(b));
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A valid LSN (canonical, lower case or zero-padded) with one mutation: an
        /// error, or the LSN its two hex numbers say, which writes and reads back.
        #[test]
        fn near_valid_text_parses_or_fails_cleanly(
            s in near_valid((any::<u64>(), 0u8..3).prop_map(|(v, form)| {
                let lsn = Lsn::new(v);
                match form {
                    0 => lsn.to_string(),
                    1 => lsn.to_string().to_lowercase(),
                    _ => format!("{:08X}/{:08x}", lsn.high(), lsn.low()),
                }
            }))
        ) {
            if let Ok(lsn) = s.parse::<Lsn>() {
                prop_assert_eq!(lsn.to_string().parse::<Lsn>().unwrap(), lsn);
                let (hi, lo) = s.split_once('/').unwrap();
                let v = (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap();
                prop_assert_eq!(u64::from(lsn), v);
            }
        }
    }
}
