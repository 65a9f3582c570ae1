//! Names of objects inside a storage.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The name of an object inside a [`Storage`](crate::Storage): a relative,
/// `/`-separated path such as `wals/0000000100000000/000000010000000000000001`.
///
/// # Invariants
///
/// - No segment is empty: no leading, trailing or doubled `/`, so no absolute name.
/// - No segment is `.` or `..`, so a location never points outside its storage.
/// - No ASCII control character (NUL, newline, …) anywhere.
///
/// Anything else is allowed, including spaces, `%`, `#`, `?`, `+`, quotes and
/// non-ASCII letters; backends store the name as it is (the object-store backend does
/// not percent-encode it). The empty location, [`Location::ROOT`], names the whole
/// storage and is only useful as a listing prefix.
///
/// # Examples
///
/// ```
/// use barman_transport::Location;
///
/// let loc = Location::new("base/20240101T000000/data/PG_VERSION")?;
/// assert_eq!(loc.file_name(), Some("PG_VERSION"));
/// assert_eq!(loc.parent().unwrap().as_str(), "base/20240101T000000/data");
/// assert!(loc.starts_with(&Location::new("base")?));
/// assert!(!loc.starts_with(&Location::new("bas")?));
///
/// assert!(Location::new("../etc/passwd").is_err());
/// assert!(Location::new("/etc/passwd").is_err());
/// assert!(Location::new("a//b").is_err());
/// # Ok::<(), barman_transport::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location(String);

impl Location {
    /// The whole storage.
    pub const ROOT: Location = Location(String::new());

    /// Checks `name` and makes it a location.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLocation`] when `name` breaks one of the invariants above.
    pub fn new(name: impl Into<String>) -> Result<Location> {
        let name = name.into();
        if name.is_empty() {
            return Ok(Location::ROOT);
        }
        if let Err(reason) = check(&name) {
            return Err(Error::InvalidLocation {
                location: name,
                reason,
            });
        }
        Ok(Location(name))
    }

    /// The name as a string, `""` for [`Location::ROOT`].
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is [`Location::ROOT`].
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The `/`-separated segments, none for the root.
    ///
    /// ```
    /// # use barman_transport::Location;
    /// let loc = Location::new("a/b c/d")?;
    /// let segs: Vec<_> = loc.segments().collect();
    /// assert_eq!(segs, ["a", "b c", "d"]);
    /// assert_eq!(Location::ROOT.segments().count(), 0);
    /// # Ok::<(), barman_transport::Error>(())
    /// ```
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment, `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.segments().last()
    }

    /// The location one level up: `Some(ROOT)` for a single segment, `None` for the
    /// root.
    pub fn parent(&self) -> Option<Location> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => Location(self.0[..i].to_owned()),
            None => Location::ROOT,
        })
    }

    /// This location followed by the relative name `rel` (itself checked like
    /// [`Location::new`]).
    ///
    /// ```
    /// # use barman_transport::Location;
    /// let wals = Location::new("wals")?;
    /// assert_eq!(wals.join("0000000100000000/000000010000000000000001")?.as_str(),
    ///            "wals/0000000100000000/000000010000000000000001");
    /// assert_eq!(Location::ROOT.join("x")?.as_str(), "x");
    /// assert!(wals.join("../x").is_err());
    /// # Ok::<(), barman_transport::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLocation`] when `rel` is not a valid location.
    pub fn join(&self, rel: &str) -> Result<Location> {
        let rel = Location::new(rel)?;
        Ok(match (self.is_root(), rel.is_root()) {
            (true, _) => rel,
            (false, true) => self.clone(),
            (false, false) => Location(format!("{}/{}", self.0, rel.0)),
        })
    }

    /// Whether `prefix` is this location or one of its ancestors, segment by segment
    /// (`a/bc` does not start with `a/b`). Everything starts with the root.
    pub fn starts_with(&self, prefix: &Location) -> bool {
        prefix.is_root()
            || self.0 == prefix.0
            || (self.0.starts_with(&prefix.0)
                && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }

    /// The part after `prefix`, if this location [starts with](Self::starts_with) it.
    pub fn strip_prefix(&self, prefix: &Location) -> Option<&str> {
        if prefix.is_root() {
            Some(&self.0)
        } else if self.0 == prefix.0 {
            Some("")
        } else if self.starts_with(prefix) {
            Some(&self.0[prefix.0.len() + 1..])
        } else {
            None
        }
    }
}

fn check(name: &str) -> std::result::Result<(), &'static str> {
    if name.starts_with('/') {
        return Err("absolute names are not allowed");
    }
    for seg in name.split('/') {
        match seg {
            "" => return Err("empty path segment (leading, trailing or doubled '/')"),
            "." | ".." => return Err("'.' and '..' segments are not allowed"),
            _ => {}
        }
    }
    if name.chars().any(|c| c.is_ascii_control()) {
        return Err("control characters are not allowed");
    }
    Ok(())
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Location> {
        Location::new(s)
    }
}

impl TryFrom<&str> for Location {
    type Error = Error;
    fn try_from(s: &str) -> Result<Location> {
        Location::new(s)
    }
}

impl TryFrom<String> for Location {
    type Error = Error;
    fn try_from(s: String) -> Result<Location> {
        Location::new(s)
    }
}

impl AsRef<str> for Location {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_characters_are_kept() {
        for n in [
            "a b",
            "100%",
            "#x?y=z&w",
            "ünï/cødé",
            "quote\"'",
            "back\\slash",
            "..a",
            ".hidden",
            "a+b",
        ] {
            assert_eq!(Location::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn bad_names_are_rejected() {
        for n in [
            "/", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\nb", "a\0b",
        ] {
            assert!(
                matches!(Location::new(n), Err(Error::InvalidLocation { .. })),
                "{n:?}"
            );
        }
    }

    #[test]
    fn prefixes() {
        let l = Location::new("a/b/c").unwrap();
        assert_eq!(l.strip_prefix(&Location::new("a").unwrap()), Some("b/c"));
        assert_eq!(l.strip_prefix(&Location::ROOT), Some("a/b/c"));
        assert_eq!(l.strip_prefix(&Location::new("a/b/c").unwrap()), Some(""));
        assert_eq!(
            l.strip_prefix(&Location::new("a/b/").ok().unwrap_or_default()),
            Some("a/b/c")
        );
        assert_eq!(l.strip_prefix(&Location::new("a/bb").unwrap()), None);
        assert_eq!(Location::new("a").unwrap().parent(), Some(Location::ROOT));
        assert_eq!(Location::ROOT.parent(), None);
    }
}
