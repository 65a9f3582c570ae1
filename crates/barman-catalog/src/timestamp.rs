//! Timestamps as Barman writes them: Python's `str(datetime)`.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// A timestamp in the form Barman writes with Python's `str(datetime)`:
/// `2014-12-22 09:25:22.561207+01:00`, the fraction only when not zero, the offset when
/// the value has one.
///
/// Barman reads naive values (no offset) in the local time zone of the Barman host. This
/// crate has no clock and no time zone database of its own: a naive value stays naive
/// until [`PyDateTime::to_timestamp`] is given the zone to read it in. Writing gives
/// back the text Barman would write for the same value.
///
/// # Examples
///
/// ```
/// use barman_catalog::PyDateTime;
/// use jiff::tz::TimeZone;
///
/// let t: PyDateTime = "2014-12-22 09:25:22.561207+01:00".parse()?;
/// assert_eq!(t.to_string(), "2014-12-22 09:25:22.561207+01:00");
/// assert_eq!(t.to_timestamp(&TimeZone::UTC)?.to_string(), "2014-12-22T08:25:22.561207Z");
/// let naive: PyDateTime = "2014-12-22 09:25:22".parse()?;
/// assert_eq!(naive.offset_seconds(), None);
/// assert_eq!(naive.to_timestamp(&TimeZone::fixed(jiff::tz::offset(2)))?.to_string(), "2014-12-22T07:25:22Z");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PyDateTime {
    civil: DateTime,
    offset: Option<i32>,
}

impl PyDateTime {
    /// The instant `ts` shown with the fixed UTC offset `offset_seconds`, as Barman
    /// records backup times (local time with the host's offset at that moment).
    ///
    /// ```
    /// let ts: jiff::Timestamp = "2026-11-25T18:43:14Z".parse().unwrap();
    /// let t = barman_catalog::PyDateTime::from_timestamp(ts, 3600);
    /// assert_eq!(t.to_string(), "2026-11-25 19:43:14+01:00");
    /// ```
    pub fn from_timestamp(ts: Timestamp, offset_seconds: i32) -> PyDateTime {
        let offset = Offset::from_seconds(offset_seconds).unwrap_or(Offset::UTC);
        PyDateTime {
            civil: offset.to_datetime(ts),
            offset: Some(offset.seconds()),
        }
    }

    /// The wall-clock date and time as written.
    ///
    /// ```
    /// let t: barman_catalog::PyDateTime = "2014-12-22 09:25:22+01:00".parse().unwrap();
    /// assert_eq!(t.civil().hour(), 9);
    /// ```
    pub fn civil(&self) -> DateTime {
        self.civil
    }

    /// The UTC offset in seconds, `None` for a naive value.
    ///
    /// ```
    /// let t: barman_catalog::PyDateTime = "2014-12-22 09:25:22-05:30".parse().unwrap();
    /// assert_eq!(t.offset_seconds(), Some(-19800));
    /// ```
    pub fn offset_seconds(&self) -> Option<i32> {
        self.offset
    }

    /// The instant; a naive value is read in `local`, as Barman reads it in the host's
    /// zone.
    ///
    /// # Errors
    ///
    /// When the wall-clock time cannot be placed in time (out of range).
    ///
    /// ```
    /// let t: barman_catalog::PyDateTime = "2014-12-22 09:25:22Z".parse().unwrap();
    /// assert_eq!(t.to_timestamp(&jiff::tz::TimeZone::UTC).unwrap().as_second(), 1419240322);
    /// ```
    pub fn to_timestamp(&self, local: &TimeZone) -> Result<Timestamp, jiff::Error> {
        match self.offset {
            Some(secs) => {
                let off = Offset::from_seconds(secs)?;
                off.to_timestamp(self.civil)
            }
            None => local.to_timestamp(self.civil),
        }
    }
}

fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let rest = rest.split('.').next()?;
    if !rest.is_ascii() {
        return None;
    }
    let parts: Vec<&str> = if rest.contains(':') {
        rest.split(':').collect()
    } else {
        match rest.len() {
            2 => vec![&rest[0..2]],
            4 => vec![&rest[0..2], &rest[2..4]],
            6 => vec![&rest[0..2], &rest[2..4], &rest[4..6]],
            _ => return None,
        }
    };
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut secs = 0i32;
    for (i, p) in parts.iter().enumerate() {
        let v: i32 = p.parse().ok()?;
        if (i == 0 && v > 23) || (i > 0 && v > 59) {
            return None;
        }
        secs += v * [3600, 60, 1][i];
    }
    Some(sign * secs)
}

impl std::str::FromStr for PyDateTime {
    type Err = String;

    /// Reads `YYYY-MM-DD HH:MM[:SS[.ffffff]]` (or with `T`), optionally followed by
    /// `Z`, `±HH`, `±HHMM`, `±HH:MM` or `±HH:MM:SS`.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad =
            || format!("invalid timestamp {s:?}: expected YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]");
        if t.len() < 16 || !t.is_char_boundary(10) {
            return Err(bad());
        }
        let (body, offset) = if let Some(b) = t.strip_suffix('Z').or_else(|| t.strip_suffix(" UTC"))
        {
            (b, Some(0))
        } else {
            match t[10..].rfind(['+', '-']) {
                Some(i) => {
                    let at = 10 + i;
                    (&t[..at], Some(parse_offset(&t[at..]).ok_or_else(bad)?))
                }
                None => (t, None),
            }
        };
        let body = body.trim_end();
        if body
            .as_bytes()
            .get(10)
            .is_some_and(|c| !matches!(c, b' ' | b'T'))
        {
            return Err(bad());
        }
        let normal = format!("{}T{}", &body[..10], body[11..].trim_start());
        let civil: DateTime = normal.parse().map_err(|_| bad())?;
        Ok(PyDateTime { civil, offset })
    }
}

impl fmt::Display for PyDateTime {
    /// Python's `str(datetime)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.civil;
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            c.year(),
            c.month(),
            c.day(),
            c.hour(),
            c.minute(),
            c.second()
        )?;
        let micros = c.subsec_nanosecond() / 1000;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        if let Some(off) = self.offset {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)?;
            if a % 60 != 0 {
                write!(f, ":{:02}", a % 60)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        for (input, out) in [
            (
                "2014-12-22 09:25:22.561207+01:00",
                "2014-12-22 09:25:22.561207+01:00",
            ),
            ("2014-12-22T09:25:22+0100", "2014-12-22 09:25:22+01:00"),
            ("2014-12-22 09:25:22+01", "2014-12-22 09:25:22+01:00"),
            ("2014-12-22 09:25:22Z", "2014-12-22 09:25:22+00:00"),
            (
                "1900-01-01 00:00:00+00:09:21",
                "1900-01-01 00:00:00+00:09:21",
            ),
            ("2014-12-22 09:25", "2014-12-22 09:25:00"),
            ("2014-12-22 09:25:22.5", "2014-12-22 09:25:22.500000"),
        ] {
            assert_eq!(
                input.parse::<PyDateTime>().unwrap().to_string(),
                out,
                "{input}"
            );
        }
        for bad in [
            "",
            "2014-12-22",
            "yesterday",
            "2014-13-01 00:00:00",
            "2014-12-22 09:25:22+25:00",
            "2014-12-22X09:25:22",
        ] {
            assert!(bad.parse::<PyDateTime>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(secs in 0i64..4_000_000_000, micros in 0i64..1_000_000, off in -86_399i32..86_399) {
            let off = off - off % 60;
            let ts = Timestamp::from_microsecond(secs * 1_000_000 + micros).unwrap();
            let t = PyDateTime::from_timestamp(ts, off);
            let back: PyDateTime = t.to_string().parse().unwrap();
            prop_assert_eq!(back, t);
            prop_assert_eq!(back.to_timestamp(&TimeZone::UTC).unwrap(), ts);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<PyDateTime>();
        }
    }
}
