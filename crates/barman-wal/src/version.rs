//! PostgreSQL major versions and what differs between them in the WAL.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A PostgreSQL major version this crate can read the WAL of (10 to 18).
///
/// What differs between versions is an exhaustive `match` here; code that loops over
/// versions uses [`PgMajorVersion::ALL`].
///
/// # Examples
///
/// ```
/// use barman_wal::PgMajorVersion;
///
/// let v = PgMajorVersion::from_server_version_num(150004)?;
/// assert_eq!(v, PgMajorVersion::V15);
/// assert_eq!(v.to_string(), "15");
/// assert_eq!(PgMajorVersion::from_wal_magic(v.wal_magic()), Some(v));
/// assert_eq!("15".parse::<PgMajorVersion>()?, v);
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum PgMajorVersion {
    /// PostgreSQL 10.
    V10,
    /// PostgreSQL 11.
    V11,
    /// PostgreSQL 12.
    V12,
    /// PostgreSQL 13.
    V13,
    /// PostgreSQL 14.
    V14,
    /// PostgreSQL 15.
    V15,
    /// PostgreSQL 16.
    V16,
    /// PostgreSQL 17.
    V17,
    /// PostgreSQL 18.
    V18,
}

impl PgMajorVersion {
    /// Every supported version, oldest first.
    ///
    /// ```
    /// assert_eq!(barman_wal::PgMajorVersion::ALL.len(), 9);
    /// ```
    pub const ALL: [PgMajorVersion; 9] = [
        PgMajorVersion::V10,
        PgMajorVersion::V11,
        PgMajorVersion::V12,
        PgMajorVersion::V13,
        PgMajorVersion::V14,
        PgMajorVersion::V15,
        PgMajorVersion::V16,
        PgMajorVersion::V17,
        PgMajorVersion::V18,
    ];

    /// The major version number (`10` to `18`).
    ///
    /// ```
    /// assert_eq!(barman_wal::PgMajorVersion::V17.number(), 17);
    /// ```
    pub const fn number(self) -> u32 {
        match self {
            PgMajorVersion::V10 => 10,
            PgMajorVersion::V11 => 11,
            PgMajorVersion::V12 => 12,
            PgMajorVersion::V13 => 13,
            PgMajorVersion::V14 => 14,
            PgMajorVersion::V15 => 15,
            PgMajorVersion::V16 => 16,
            PgMajorVersion::V17 => 17,
            PgMajorVersion::V18 => 18,
        }
    }

    /// The version with this major number.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedVersion`] outside 10 to 18.
    ///
    /// ```
    /// use barman_wal::PgMajorVersion;
    /// assert_eq!(PgMajorVersion::from_number(16)?, PgMajorVersion::V16);
    /// assert!(PgMajorVersion::from_number(9).is_err());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn from_number(major: u32) -> Result<PgMajorVersion> {
        Self::ALL
            .into_iter()
            .find(|v| v.number() == major)
            .ok_or_else(|| Error::UnsupportedVersion {
                input: major.to_string(),
            })
    }

    /// The version of a `server_version_num` (`150004`), as stored in Barman's
    /// `backup.info` `version` key.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedVersion`] for versions before 10 or after 18.
    ///
    /// ```
    /// use barman_wal::PgMajorVersion;
    /// assert_eq!(PgMajorVersion::from_server_version_num(100023)?, PgMajorVersion::V10);
    /// assert!(PgMajorVersion::from_server_version_num(90624).is_err());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn from_server_version_num(num: u32) -> Result<PgMajorVersion> {
        Self::from_number(num / 10000).map_err(|_| Error::UnsupportedVersion {
            input: num.to_string(),
        })
    }

    /// The WAL page magic (`XLOG_PAGE_MAGIC`) of this version: the first two bytes of
    /// every WAL page.
    ///
    /// ```
    /// assert_eq!(barman_wal::PgMajorVersion::V15.wal_magic(), 0xD110);
    /// ```
    #[doc(alias = "XLOG_PAGE_MAGIC")]
    pub const fn wal_magic(self) -> u16 {
        match self {
            PgMajorVersion::V10 => 0xD097,
            PgMajorVersion::V11 => 0xD098,
            PgMajorVersion::V12 => 0xD101,
            PgMajorVersion::V13 => 0xD106,
            PgMajorVersion::V14 => 0xD10D,
            PgMajorVersion::V15 => 0xD110,
            PgMajorVersion::V16 => 0xD113,
            PgMajorVersion::V17 => 0xD116,
            PgMajorVersion::V18 => 0xD118,
        }
    }

    /// The version whose WAL pages start with `magic`, if any.
    ///
    /// ```
    /// use barman_wal::PgMajorVersion;
    /// assert_eq!(PgMajorVersion::from_wal_magic(0xD10D), Some(PgMajorVersion::V14));
    /// assert_eq!(PgMajorVersion::from_wal_magic(0x1234), None);
    /// ```
    pub fn from_wal_magic(magic: u16) -> Option<PgMajorVersion> {
        Self::ALL.into_iter().find(|v| v.wal_magic() == magic)
    }
}

impl fmt::Display for PgMajorVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl FromStr for PgMajorVersion {
    type Err = Error;

    /// Parses a major version number (`15`), or a full version (`15.4`, `15beta1`)
    /// whose leading number is the major version.
    fn from_str(s: &str) -> Result<Self> {
        let digits: &str = s.split(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
        let unsupported = || Error::UnsupportedVersion {
            input: s.to_owned(),
        };
        if digits.is_empty() || digits.len() > 3 {
            return Err(unsupported());
        }
        let major: u32 = digits.parse().map_err(|_| unsupported())?;
        Self::from_number(major).map_err(|_| unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_distinct_and_increasing() {
        for w in PgMajorVersion::ALL.windows(2) {
            assert!(w[0].wal_magic() < w[1].wal_magic(), "{:?}", w);
            assert!(w[0] < w[1]);
        }
        for v in PgMajorVersion::ALL {
            assert_eq!(PgMajorVersion::from_wal_magic(v.wal_magic()), Some(v));
            assert_eq!(PgMajorVersion::from_number(v.number()).unwrap(), v);
            assert_eq!(v.to_string().parse::<PgMajorVersion>().unwrap(), v);
        }
    }

    #[test]
    fn parses_versions() {
        assert_eq!(
            "15.4".parse::<PgMajorVersion>().unwrap(),
            PgMajorVersion::V15
        );
        assert_eq!(
            "18beta1".parse::<PgMajorVersion>().unwrap(),
            PgMajorVersion::V18
        );
        for bad in ["", "9.6", "19", "abc", "1000000000000"] {
            assert!(bad.parse::<PgMajorVersion>().is_err(), "{bad}");
        }
    }
}
