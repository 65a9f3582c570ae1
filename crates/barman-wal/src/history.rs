//! Timeline history files (`XXXXXXXX.history`).

use std::fmt;

use crate::{Error, Lsn, Result, TimelineId};

/// One line of a timeline history file: the history switched from `parent` to the next
/// timeline at `switchpoint`, for `reason`.
///
/// ```
/// use barman_wal::{HistoryEntry, TimelineId};
///
/// let e = HistoryEntry::new(TimelineId::new(1), "0/3000060".parse()?, "no recovery target specified");
/// assert_eq!(e.parent(), TimelineId::new(1));
/// assert_eq!(e.switchpoint().to_string(), "0/3000060");
/// assert_eq!(e.reason(), "no recovery target specified");
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryEntry {
    parent: TimelineId,
    switchpoint: Lsn,
    reason: String,
}

impl HistoryEntry {
    /// Makes an entry.
    ///
    /// ```
    /// use barman_wal::{HistoryEntry, Lsn, TimelineId};
    /// let e = HistoryEntry::new(TimelineId::FIRST, Lsn::new(0x3000060), "before 2026-11-25 18:43:14+00");
    /// assert!(e.reason().starts_with("before"));
    /// ```
    pub fn new(parent: TimelineId, switchpoint: Lsn, reason: impl Into<String>) -> HistoryEntry {
        HistoryEntry {
            parent,
            switchpoint,
            reason: reason.into(),
        }
    }

    /// The timeline that ended at the switch point.
    ///
    /// ```
    /// # let e = barman_wal::HistoryEntry::new(1.into(), barman_wal::Lsn::new(1), "r");
    /// assert_eq!(u32::from(e.parent()), 1);
    /// ```
    pub fn parent(&self) -> TimelineId {
        self.parent
    }

    /// The first LSN that is not on `parent` any more (the end of `parent`, exclusive).
    ///
    /// ```
    /// # let e = barman_wal::HistoryEntry::new(1.into(), barman_wal::Lsn::new(1), "r");
    /// assert_eq!(e.switchpoint().to_string(), "0/1");
    /// ```
    pub fn switchpoint(&self) -> Lsn {
        self.switchpoint
    }

    /// Why the switch happened, as PostgreSQL wrote it (free text).
    ///
    /// ```
    /// # let e = barman_wal::HistoryEntry::new(1.into(), barman_wal::Lsn::new(1), "at restore point \"x y\"");
    /// assert_eq!(e.reason(), "at restore point \"x y\"");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The content of a timeline history file: the ancestry of one timeline.
///
/// The file `0000000N.history` lists, one line per ancestor, `parentTLI<TAB>switchpoint<TAB>reason`
/// (`#` comments and blank lines are ignored). The timeline the file describes comes
/// from its name and is given to [`TimelineHistory::parse`].
///
/// # Examples
///
/// ```
/// use barman_wal::{TimelineHistory, TimelineId};
///
/// let text = "1\t0/3000060\tno recovery target specified\n\n\
///             2\t0/5000000\tat restore point \"before the mistake\"\n";
/// let h = TimelineHistory::parse(TimelineId::new(3), text)?;
/// assert_eq!(h.entries().len(), 2);
/// assert_eq!(h.timeline_at("0/2000000".parse()?), TimelineId::new(1));
/// assert_eq!(h.timeline_at("0/4000000".parse()?), TimelineId::new(2));
/// assert_eq!(h.timeline_at("0/6000000".parse()?), TimelineId::new(3));
/// assert!(h.descends_from(TimelineId::new(2), "0/4000000".parse()?));
/// assert_eq!(TimelineHistory::parse(TimelineId::new(3), &h.to_string())?, h);
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimelineHistory {
    timeline: TimelineId,
    entries: Vec<HistoryEntry>,
}

impl TimelineHistory {
    /// A history from its parts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLine`] if the entries break the rules [`TimelineHistory::parse`]
    /// checks (parents increasing and below `timeline`, switch points not decreasing,
    /// no line break or leading/trailing blank in a reason).
    ///
    /// ```
    /// use barman_wal::{HistoryEntry, Lsn, TimelineHistory, TimelineId};
    /// let h = TimelineHistory::new(TimelineId::new(2), vec![
    ///     HistoryEntry::new(TimelineId::FIRST, Lsn::new(0x3000060), "no recovery target specified"),
    /// ])?;
    /// assert_eq!(h.to_string(), "1\t0/3000060\tno recovery target specified\n");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn new(timeline: TimelineId, entries: Vec<HistoryEntry>) -> Result<TimelineHistory> {
        let h = TimelineHistory { timeline, entries };
        for (i, e) in h.entries.iter().enumerate() {
            if e.reason.contains(['\n', '\r']) || e.reason.trim() != e.reason {
                return Err(h.line_error(
                    i + 1,
                    &e.reason,
                    "a reason cannot contain a line break or start or end with blanks",
                ));
            }
        }
        h.check()?;
        Ok(h)
    }

    /// The history of timeline 1, which has no ancestors.
    ///
    /// ```
    /// let h = barman_wal::TimelineHistory::first();
    /// assert!(h.entries().is_empty());
    /// ```
    pub fn first() -> TimelineHistory {
        TimelineHistory {
            timeline: TimelineId::FIRST,
            entries: Vec::new(),
        }
    }

    /// Parses the text of the history file of `timeline`.
    ///
    /// Lines are `parentTLI`, whitespace, `X/Y` switch point, whitespace, reason; the
    /// reason is the rest of the line without surrounding blanks and may hold spaces,
    /// tabs and quotes. Blank lines and lines starting with `#` are skipped. As
    /// PostgreSQL requires, parent timelines must increase and stay below `timeline`;
    /// switch points may not go backwards.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLine`] naming the file, the line number and the line.
    ///
    /// ```
    /// use barman_wal::{TimelineHistory, TimelineId};
    /// let err = TimelineHistory::parse(TimelineId::new(2), "1\tnot-an-lsn\treason\n").unwrap_err();
    /// assert!(err.to_string().contains("00000002.history, line 1"));
    /// ```
    pub fn parse(timeline: TimelineId, text: &str) -> Result<TimelineHistory> {
        let mut h = TimelineHistory {
            timeline,
            entries: Vec::new(),
        };
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (tli, rest) = split_field(line);
            let (lsn, reason) = split_field(rest);
            let parent: TimelineId = tli
                .parse()
                .map_err(|_| h.line_error(idx + 1, raw, "expected a decimal parent timeline"))?;
            let switchpoint: Lsn = lsn.parse().map_err(|_| {
                h.line_error(
                    idx + 1,
                    raw,
                    "expected a switch point LSN after the timeline",
                )
            })?;
            h.entries.push(HistoryEntry {
                parent,
                switchpoint,
                reason: reason.to_owned(),
            });
            h.check_last(idx + 1, raw)?;
        }
        Ok(h)
    }

    fn file_name(&self) -> String {
        format!("timeline history file {}.history", self.timeline.to_hex())
    }

    fn line_error(&self, line: usize, text: &str, reason: &str) -> Error {
        Error::InvalidLine {
            file: self.file_name(),
            line,
            text: text.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn check(&self) -> Result<()> {
        let mut h = TimelineHistory {
            timeline: self.timeline,
            entries: Vec::new(),
        };
        for (i, e) in self.entries.iter().enumerate() {
            h.entries.push(e.clone());
            h.check_last(
                i + 1,
                &format!("{}\t{}\t{}", e.parent, e.switchpoint, e.reason),
            )?;
        }
        Ok(())
    }

    fn check_last(&self, line: usize, raw: &str) -> Result<()> {
        let n = self.entries.len();
        let Some(last) = self.entries.last() else {
            return Ok(());
        };
        if last.parent >= self.timeline {
            return Err(self.line_error(
                line,
                raw,
                "a parent timeline must be older than the file's timeline",
            ));
        }
        if n >= 2 {
            let prev = &self.entries[n - 2];
            if last.parent <= prev.parent {
                return Err(self.line_error(
                    line,
                    raw,
                    "timeline ids must be in increasing sequence",
                ));
            }
            if last.switchpoint < prev.switchpoint {
                return Err(self.line_error(line, raw, "switch points must not go backwards"));
            }
        }
        Ok(())
    }

    /// The timeline this history describes.
    ///
    /// ```
    /// let h = barman_wal::TimelineHistory::parse(4.into(), "")?;
    /// assert_eq!(u32::from(h.timeline()), 4);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn timeline(&self) -> TimelineId {
        self.timeline
    }

    /// The ancestors, oldest first.
    ///
    /// ```
    /// let h = barman_wal::TimelineHistory::parse(2.into(), "1\t0/3000060\tno recovery target specified\n")?;
    /// assert_eq!(h.entries()[0].switchpoint().to_string(), "0/3000060");
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// The timelines of this history, oldest first, ending with [`timeline`](Self::timeline).
    ///
    /// ```
    /// let h = barman_wal::TimelineHistory::parse(5.into(), "1\t0/30\tx\n3\t0/50\ty\n")?;
    /// let tlis: Vec<u32> = h.timelines().map(u32::from).collect();
    /// assert_eq!(tlis, [1, 3, 5]);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn timelines(&self) -> impl Iterator<Item = TimelineId> + '_ {
        self.entries
            .iter()
            .map(|e| e.parent)
            .chain(std::iter::once(self.timeline))
    }

    /// Which timeline of this history the WAL at `lsn` is on (`tliOfPointInHistory`).
    ///
    /// ```
    /// use barman_wal::{TimelineHistory, TimelineId};
    /// let h = TimelineHistory::parse(TimelineId::new(2), "1\t0/3000060\tx\n")?;
    /// assert_eq!(h.timeline_at("0/300005F".parse()?), TimelineId::new(1));
    /// assert_eq!(h.timeline_at("0/3000060".parse()?), TimelineId::new(2));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "tliOfPointInHistory")]
    pub fn timeline_at(&self, lsn: Lsn) -> TimelineId {
        self.entries
            .iter()
            .find(|e| lsn < e.switchpoint)
            .map_or(self.timeline, |e| e.parent)
    }

    /// Where timeline `tli` ends in this history (`tliSwitchPoint`): `Some(switchpoint)`
    /// for an ancestor, `None` for [`timeline`](Self::timeline) itself (still open) or a
    /// timeline that is not in the history.
    ///
    /// ```
    /// use barman_wal::{TimelineHistory, TimelineId};
    /// let h = TimelineHistory::parse(TimelineId::new(2), "1\t0/3000060\tx\n")?;
    /// assert_eq!(h.switchpoint_of(TimelineId::new(1)), Some("0/3000060".parse()?));
    /// assert_eq!(h.switchpoint_of(TimelineId::new(2)), None);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    #[doc(alias = "tliSwitchPoint")]
    pub fn switchpoint_of(&self, tli: TimelineId) -> Option<Lsn> {
        self.entries
            .iter()
            .find(|e| e.parent == tli)
            .map(|e| e.switchpoint)
    }

    /// Whether this timeline's history passes through timeline `tli` at position `lsn`:
    /// WAL written on `tli` up to `lsn` is part of this timeline's past. This is the
    /// test for "can a backup taken on `tli` and ending at `lsn` be recovered onto this
    /// timeline".
    ///
    /// ```
    /// use barman_wal::{TimelineHistory, TimelineId};
    /// let h = TimelineHistory::parse(TimelineId::new(3), "1\t0/3000060\tx\n2\t0/5000000\ty\n")?;
    /// assert!(h.descends_from(TimelineId::new(1), "0/3000060".parse()?));
    /// assert!(!h.descends_from(TimelineId::new(1), "0/3000061".parse()?));
    /// assert!(h.descends_from(TimelineId::new(3), "9/0".parse()?));
    /// assert!(!h.descends_from(TimelineId::new(4), "0/0".parse()?));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn descends_from(&self, tli: TimelineId, lsn: Lsn) -> bool {
        if tli == self.timeline {
            return true;
        }
        self.switchpoint_of(tli).is_some_and(|end| lsn <= end)
    }
}

/// Splits `s` at the first run of blanks: `(field, rest without leading blanks)`.
fn split_field(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

impl fmt::Display for TimelineHistory {
    /// Writes the file as PostgreSQL does: `parent<TAB>X/Y<TAB>reason` per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            writeln!(f, "{}\t{}\t{}", e.parent, e.switchpoint, e.reason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    #[test]
    fn postgres_reasons() {
        let text = "# comment\n\n1\t0/3000060\tno recovery target specified\n\
                    2\t0/5000000\tat restore point \"before the \"\"mistake\"\" \t here\"\n\
                    3\t0/6000000\tbefore 2026-11-25 18:43:14.123+00\n\
                    5\t1/0\tafter transaction 1234\r\n";
        let h = TimelineHistory::parse(TimelineId::new(6), text).unwrap();
        assert_eq!(h.entries().len(), 4);
        assert_eq!(
            h.entries()[1].reason(),
            "at restore point \"before the \"\"mistake\"\" \t here\""
        );
        assert_eq!(h.entries()[3].reason(), "after transaction 1234");
        assert_eq!(
            TimelineHistory::parse(TimelineId::new(6), &h.to_string()).unwrap(),
            h
        );
    }

    #[test]
    fn rejects_bad_lines() {
        let cases = [
            ("x\t0/1\treason\n", 1, "parent timeline"),
            ("1\t0/1\tr\n1\t0/2\tr\n", 2, "increasing"),
            ("1\t0/2\tr\n2\t0/1\tr\n", 2, "backwards"),
            ("1\t0/2\tr\n7\t0/3\tr\n", 2, "older than"),
            ("\n\n1\n", 3, "switch point"),
            ("0\t0/1\tr\n", 1, "parent timeline"),
        ];
        for (text, line, what) in cases {
            let err = TimelineHistory::parse(TimelineId::new(5), text).unwrap_err();
            match &err {
                Error::InvalidLine {
                    line: l,
                    reason,
                    file,
                    ..
                } => {
                    assert_eq!(*l, line, "{text:?}");
                    assert!(reason.contains(what), "{reason}");
                    assert_eq!(file, "timeline history file 00000005.history");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn new_rejects_unwritable_reason() {
        let e = HistoryEntry::new(TimelineId::FIRST, Lsn::new(1), "two\nlines");
        assert!(TimelineHistory::new(TimelineId::new(2), vec![e]).is_err());
    }

    fn reason() -> impl Strategy<Value = String> {
        "[ -~\t]{0,40}".prop_map(|s| s.trim().to_owned())
    }

    fn history() -> impl Strategy<Value = TimelineHistory> {
        proptest::collection::vec((1u32..4, 0u64..1 << 40, reason()), 0..6).prop_map(|steps| {
            let mut tli = 0u32;
            let mut lsn = 0u64;
            let mut entries = Vec::new();
            for (dt, dl, r) in steps {
                tli += dt;
                lsn += dl;
                entries.push(HistoryEntry::new(TimelineId::new(tli), Lsn::new(lsn), r));
            }
            TimelineHistory::new(TimelineId::new(tli + 1), entries).unwrap()
        })
    }

    proptest! {
        #[test]
        fn round_trip(h in history()) {
            prop_assert_eq!(TimelineHistory::parse(h.timeline(), &h.to_string()).unwrap(), h);
        }

        #[test]
        fn timeline_at_is_on_the_path(h in history(), lsn in any::<u64>()) {
            let lsn = Lsn::new(lsn);
            let tli = h.timeline_at(lsn);
            prop_assert!(h.timelines().any(|t| t == tli));
            prop_assert!(h.descends_from(tli, lsn));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = TimelineHistory::parse(TimelineId::new(9), &s);
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A valid history file (with a comment and a blank line, as PostgreSQL's may
        /// have) with one mutation: an error, or a history that writes and reads back.
        #[test]
        fn near_valid_files_parse_or_fail_cleanly(
            (tli, s) in history().prop_flat_map(|h| {
                let text = format!("# comment\n\n{h}");
                (Just(h.timeline()), near_valid(Just(text)))
            })
        ) {
            if let Ok(h) = TimelineHistory::parse(tli, &s) {
                prop_assert_eq!(TimelineHistory::parse(tli, &h.to_string()).unwrap(), h);
            }
        }
    }
}
