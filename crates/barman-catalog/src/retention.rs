//! Retention policies: Barman's grammar, its evaluation of a catalogue, and which WAL
//! files go when a backup is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use barman_wal::{SegmentName, TimelineId, WalFileName};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::{
    BackupId, BackupInfo, BackupStatus, Catalogue, Error, KeepTarget, Result, WalIndex, XlogDbEntry,
};

/// The unit of a recovery window.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WindowUnit {
    /// Days.
    Days,
    /// Weeks (7 days).
    Weeks,
    /// Months, which Barman counts as 31 days.
    Months,
}

impl WindowUnit {
    const fn days(self) -> i64 {
        match self {
            WindowUnit::Days => 1,
            WindowUnit::Weeks => 7,
            WindowUnit::Months => 31,
        }
    }
}

/// A retention policy (`retention_policy` in the configuration).
///
/// Parsing follows Barman's grammar: case-insensitive, any blanks, `REDUNDANCY n` or
/// `RECOVERY WINDOW OF n DAY[S]|WEEK[S]|MONTH[S]`. `Display` gives Barman's normalised
/// text.
///
/// ```
/// use barman_catalog::RetentionPolicy;
///
/// let p: RetentionPolicy = "  recovery window of 2 week ".parse()?;
/// assert_eq!(p.to_string(), "RECOVERY WINDOW OF 2 WEEKS");
/// assert_eq!("redundancy 3".parse::<RetentionPolicy>()?.to_string(), "REDUNDANCY 3");
/// assert!("RECOVERY WINDOW OF 2 HOURS".parse::<RetentionPolicy>().is_err());
/// # Ok::<(), barman_catalog::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RetentionPolicy {
    /// Keep the newest `n` DONE backups.
    Redundancy(u32),
    /// Keep what point-in-time recovery to any moment of the last `n` units needs.
    RecoveryWindow(u32, WindowUnit),
}

impl FromStr for RetentionPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidRetentionPolicy {
            input: s.to_owned(),
        };
        let words: Vec<String> = s.split_whitespace().map(str::to_ascii_lowercase).collect();
        let number = |w: &str| -> Result<u32> {
            if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            w.parse().map_err(|_| bad())
        };
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["redundancy", n] => Ok(RetentionPolicy::Redundancy(number(n)?)),
            ["recovery", "window", "of", n, unit] => {
                let unit = match unit.strip_suffix('s').unwrap_or(unit) {
                    "day" => WindowUnit::Days,
                    "week" => WindowUnit::Weeks,
                    "month" => WindowUnit::Months,
                    _ => return Err(bad()),
                };
                Ok(RetentionPolicy::RecoveryWindow(number(n)?, unit))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionPolicy::Redundancy(n) => write!(f, "REDUNDANCY {n}"),
            RetentionPolicy::RecoveryWindow(n, u) => {
                let unit = match u {
                    WindowUnit::Days => "DAYS",
                    WindowUnit::Weeks => "WEEKS",
                    WindowUnit::Months => "MONTHS",
                };
                write!(f, "RECOVERY WINDOW OF {n} {unit}")
            }
        }
    }
}

/// The retention status of a backup, as `list-backups` and `status` show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RetentionStatus {
    /// Needed by the policy.
    Valid,
    /// Not needed: retention may delete it.
    Obsolete,
    /// Outside the policy, kept only for `minimum_redundancy` (`OBSOLETE*`).
    PotentiallyObsolete,
    /// Kept by a `keep full` annotation.
    KeepFull,
    /// Kept by a `keep standalone` annotation.
    KeepStandalone,
    /// Not a DONE backup: the policy does not apply (`-`).
    None,
}

impl RetentionStatus {
    /// The text Barman shows.
    ///
    /// ```
    /// assert_eq!(barman_catalog::RetentionStatus::PotentiallyObsolete.name(), "OBSOLETE*");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            RetentionStatus::Valid => "VALID",
            RetentionStatus::Obsolete => "OBSOLETE",
            RetentionStatus::PotentiallyObsolete => "OBSOLETE*",
            RetentionStatus::KeepFull => "KEEP:FULL",
            RetentionStatus::KeepStandalone => "KEEP:STANDALONE",
            RetentionStatus::None => "-",
        }
    }
}

impl fmt::Display for RetentionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of evaluating a policy over a catalogue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// The status of every backup the policy looked at (all but EMPTY ones).
    pub statuses: BTreeMap<BackupId, RetentionStatus>,
    /// The oldest backup the policy needs, if any.
    pub first_backup: Option<BackupId>,
}

impl RetentionReport {
    /// The backups retention should delete, oldest first.
    ///
    /// ```
    /// assert!(barman_catalog::RetentionReport::default().obsolete().is_empty());
    /// ```
    pub fn obsolete(&self) -> Vec<BackupId> {
        self.statuses
            .iter()
            .filter(|(_, s)| **s == RetentionStatus::Obsolete)
            .map(|(id, _)| *id)
            .collect()
    }
}

fn keep_status(k: Option<KeepTarget>) -> Option<RetentionStatus> {
    k.map(|k| match k {
        KeepTarget::Standalone => RetentionStatus::KeepStandalone,
        KeepTarget::Full => RetentionStatus::KeepFull,
    })
}

impl RetentionPolicy {
    /// Evaluates the policy over `catalogue`, as Barman's retention report does.
    ///
    /// Backups are walked newest first. Incremental backups take the status of their root.
    /// Only DONE backups count; others get `-`. Kept backups are never OBSOLETE. With a
    /// redundancy policy the newest `max(n, minimum_redundancy)` DONE backups are VALID
    /// (kept ones take slots too). With a recovery window, every DONE backup that ends
    /// inside the window is VALID, and so is the newest one ending before it (the base
    /// needed to reach the window's start); older ones are OBSOLETE, or OBSOLETE* while
    /// fewer than `minimum_redundancy` backups were counted. `now` is a parameter: this
    /// crate has no clock; `local` reads naive `end_time` values.
    ///
    /// # Examples
    ///
    /// ```
    /// use barman_catalog::{BackupInfo, BackupStatus, Catalogue, RetentionPolicy};
    ///
    /// let mut cat = Catalogue::new("pg");
    /// for (id, end) in [("20261101T000000", "2026-11-01 01:00:00+00:00"), ("20261110T000000", "2026-11-10 01:00:00+00:00"), ("20261120T000000", "2026-11-20 01:00:00+00:00")] {
    ///     let mut b = BackupInfo::new(id.parse()?);
    ///     b.status = BackupStatus::Done;
    ///     b.end_time = Some(end.parse().unwrap());
    ///     cat.insert(b);
    /// }
    /// let now: jiff::Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
    /// let policy: RetentionPolicy = "RECOVERY WINDOW OF 7 DAYS".parse()?;
    /// let report = policy.evaluate(&cat, 0, now, &jiff::tz::TimeZone::UTC);
    /// let s: Vec<_> = report.statuses.values().map(|s| s.name()).collect();
    /// assert_eq!(s, ["OBSOLETE", "VALID", "VALID"]);
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn evaluate(
        &self,
        catalogue: &Catalogue,
        minimum_redundancy: u32,
        now: Timestamp,
        local: &TimeZone,
    ) -> RetentionReport {
        let mut report = RetentionReport::default();
        let backups: Vec<&BackupInfo> = catalogue
            .iter()
            .rev()
            .filter(|b| b.status != BackupStatus::Empty)
            .collect();
        match *self {
            RetentionPolicy::Redundancy(n) => {
                let redundancy = n.max(minimum_redundancy) as usize;
                let mut i = 0usize;
                for b in backups {
                    if b.is_incremental() {
                        continue;
                    }
                    let status = if b.status == BackupStatus::Done {
                        let s = match keep_status(catalogue.keep(b.id)) {
                            Some(k) => k,
                            None if i < redundancy => {
                                report.first_backup = Some(b.id);
                                RetentionStatus::Valid
                            }
                            None => RetentionStatus::Obsolete,
                        };
                        i += 1;
                        s
                    } else {
                        RetentionStatus::None
                    };
                    report.statuses.insert(b.id, status);
                    if b.children_backup_ids.is_some() {
                        let child = match status {
                            RetentionStatus::KeepStandalone if i > redundancy => {
                                RetentionStatus::Obsolete
                            }
                            RetentionStatus::KeepStandalone | RetentionStatus::KeepFull => {
                                RetentionStatus::Valid
                            }
                            other => other,
                        };
                        for c in catalogue.descendants(b.id) {
                            report.statuses.insert(c, child);
                        }
                    }
                }
            }
            RetentionPolicy::RecoveryWindow(n, unit) => {
                let window = SignedDuration::from_hours(24 * unit.days() * i64::from(n));
                let point = now.checked_sub(window).unwrap_or(Timestamp::MIN);
                let mut found = false;
                let mut valid = 0u32;
                for b in backups {
                    if b.is_incremental() {
                        continue;
                    }
                    let status = if b.status == BackupStatus::Done {
                        let keep = keep_status(catalogue.keep(b.id));
                        if found {
                            if valid < minimum_redundancy {
                                report.first_backup = Some(b.id);
                                valid += 1;
                                keep.unwrap_or(RetentionStatus::PotentiallyObsolete)
                            } else {
                                keep.unwrap_or(RetentionStatus::Obsolete)
                            }
                        } else {
                            report.first_backup = Some(b.id);
                            valid += 1;
                            let ended_before = b
                                .end_time
                                .and_then(|t| t.to_timestamp(local).ok())
                                .is_some_and(|end| end < point);
                            if ended_before {
                                found = true;
                            }
                            keep.unwrap_or(RetentionStatus::Valid)
                        }
                    } else {
                        RetentionStatus::None
                    };
                    report.statuses.insert(b.id, status);
                    if b.children_backup_ids.is_some() {
                        let child = match status {
                            RetentionStatus::KeepStandalone if found => RetentionStatus::Obsolete,
                            RetentionStatus::KeepStandalone | RetentionStatus::KeepFull => {
                                RetentionStatus::Valid
                            }
                            other => other,
                        };
                        for c in catalogue.descendants(b.id) {
                            report.statuses.insert(c, child);
                        }
                    }
                }
            }
        }
        // Barman only lets full backups be kept; should an annotation sit on an
        // incremental one all the same, it is honoured rather than overwritten.
        for (id, status) in report.statuses.iter_mut() {
            if let Some(k) = keep_status(catalogue.keep(*id))
                && catalogue
                    .get(*id)
                    .is_some_and(|b| b.is_incremental() && b.status == BackupStatus::Done)
            {
                *status = k;
            }
        }
        report
    }
}

/// Which WAL files may go when a backup is deleted (Barman's `should_remove_wals` and
/// `remove_wal_before_backup`).
///
/// Made by [`WalCleanup::plan`]; [`WalCleanup::keeps`] answers for one file and
/// [`WalCleanup::apply`] removes the others from a [`WalIndex`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalCleanup {
    /// Files older than this backup's `begin_wal` (by name) may go; `None` means every
    /// file may go (no backup remains and backups are exclusive).
    pub remove_until: Option<SegmentName>,
    /// Files on these timelines stay (they belong to other backups).
    pub protected_timelines: BTreeSet<TimelineId>,
    /// Inclusive `(begin_wal, end_wal)` ranges kept for `keep standalone` backups.
    pub protected_ranges: Vec<(SegmentName, SegmentName)>,
}

impl WalCleanup {
    /// Decides what deleting backup `deleted` may remove from the WAL archive, or `None`
    /// when it must remove nothing: an older restorable backup exists that is not kept
    /// standalone (point-in-time recovery from it to now must stay possible), or only
    /// standalone ones and the deletion is a manual one (`from_retention` false).
    ///
    /// `concurrent` is true for concurrent (non-exclusive) backups, Barman's default: with
    /// no newer backup left, WAL from the deleted backup's start on is kept for a backup
    /// that may be starting.
    ///
    /// # Examples
    ///
    /// ```
    /// use barman_catalog::{BackupInfo, BackupStatus, Catalogue, WalCleanup};
    ///
    /// let mut cat = Catalogue::new("pg");
    /// for (id, begin) in [("20261101T000000", "000000010000000000000002"), ("20261110T000000", "000000010000000000000008")] {
    ///     let mut b = BackupInfo::new(id.parse()?);
    ///     b.status = BackupStatus::Done;
    ///     b.timeline = Some(1.into());
    ///     b.begin_wal = Some(begin.parse()?);
    ///     b.end_wal = Some(begin.parse()?);
    ///     cat.insert(b);
    /// }
    /// let plan = WalCleanup::plan(&cat, "20261101T000000".parse()?, true, true).unwrap();
    /// assert!(!plan.keeps(&"000000010000000000000007".parse()?));
    /// assert!(plan.keeps(&"000000010000000000000008".parse()?));
    /// assert!(plan.keeps(&"00000001.history".parse()?));
    /// // Deleting the newer one removes nothing: the older one needs all later WAL.
    /// assert!(WalCleanup::plan(&cat, "20261110T000000".parse()?, true, true).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plan(
        catalogue: &Catalogue,
        deleted: BackupId,
        from_retention: bool,
        concurrent: bool,
    ) -> Option<WalCleanup> {
        let backup = catalogue.get(deleted)?;
        let mut protected_ranges = Vec::new();
        let mut cursor = deleted;
        while let Some(prev) = catalogue.previous(cursor) {
            if catalogue.keep(prev.id) != Some(KeepTarget::Standalone) || !from_retention {
                return None;
            }
            if let (Some(b), Some(e)) = (prev.begin_wal, prev.end_wal) {
                protected_ranges.push((b, e));
            }
            cursor = prev.id;
        }
        let until = match catalogue.next(deleted) {
            Some(next) => Some(next),
            None if concurrent => Some(backup),
            None => None,
        };
        let mut protected_timelines = BTreeSet::new();
        if let Some(until) = until {
            for b in catalogue
                .iter()
                .filter(|b| b.id != deleted && b.status.is_archiving())
            {
                if let Some(t) = b.timeline {
                    protected_timelines.insert(t);
                }
            }
            if let Some(t) = until.timeline {
                protected_timelines.remove(&t);
            }
        }
        Some(WalCleanup {
            remove_until: until.and_then(|b| b.begin_wal),
            protected_timelines,
            protected_ranges,
        })
    }

    /// Whether `name` stays in the archive. Comparisons are on names as text, as Barman
    /// makes them (a `.backup` file is compared by its segment).
    ///
    /// ```
    /// let plan = barman_catalog::WalCleanup { remove_until: None, protected_timelines: Default::default(), protected_ranges: vec![] };
    /// assert!(!plan.keeps(&"000000010000000000000003".parse()?));
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn keeps(&self, name: &WalFileName) -> bool {
        if name.is_history() {
            return true;
        }
        if self.protected_timelines.contains(&name.timeline()) {
            return true;
        }
        let text = name.to_string();
        let compared = match name {
            WalFileName::BackupLabel { segment, .. } => segment.to_string(),
            _ => text.clone(),
        };
        if self
            .protected_ranges
            .iter()
            .any(|(b, e)| compared >= b.to_string() && compared <= e.to_string())
        {
            return true;
        }
        self.remove_until
            .is_some_and(|until| text >= until.to_string())
    }

    /// Removes from `index` what the plan does not keep; returns the removed entries (the
    /// files to delete), in archiving order.
    ///
    /// ```
    /// let mut index = barman_catalog::WalIndex::parse("x", "000000010000000000000002 1 1\n00000002.history 1 1\n")?;
    /// let plan = barman_catalog::WalCleanup { remove_until: None, protected_timelines: Default::default(), protected_ranges: vec![] };
    /// assert_eq!(plan.apply(&mut index).len(), 1);
    /// assert_eq!(index.len(), 1);
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn apply(&self, index: &mut WalIndex) -> Vec<XlogDbEntry> {
        index.retain(|e| self.keeps(&e.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn policy_text_round_trips(n in any::<u32>(), kind in 0u8..4, spaces in "[ \t]{1,3}") {
            let p = match kind {
                0 => RetentionPolicy::Redundancy(n),
                1 => RetentionPolicy::RecoveryWindow(n, WindowUnit::Days),
                2 => RetentionPolicy::RecoveryWindow(n, WindowUnit::Weeks),
                _ => RetentionPolicy::RecoveryWindow(n, WindowUnit::Months),
            };
            prop_assert_eq!(p.to_string().parse::<RetentionPolicy>().unwrap(), p);
            let odd = format!("{spaces}{}{spaces}", p.to_string().to_lowercase().replace(' ', &spaces));
            prop_assert_eq!(odd.parse::<RetentionPolicy>().unwrap(), p);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<RetentionPolicy>();
        }
    }

    #[test]
    fn grammar_as_barman() {
        for bad in [
            "",
            "REDUNDANCY",
            "REDUNDANCY -1",
            "REDUNDANCY 1.5",
            "REDUNDANCY 1 2",
            "RECOVERY WINDOW 3 DAYS",
            "RECOVERY WINDOW OF 3 HOURS",
            "RECOVERY WINDOW OF 3 YEARS",
            "RECOVERY WINDOW OF DAYS",
            "REDUNDANCY 99999999999",
        ] {
            assert!(bad.parse::<RetentionPolicy>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "recovery window of 1 month"
                .parse::<RetentionPolicy>()
                .unwrap()
                .to_string(),
            "RECOVERY WINDOW OF 1 MONTHS"
        );
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A policy as Barman or an admin writes it, with one mutation: an error, or a
        /// policy whose normalised text reads back to it.
        #[test]
        fn near_valid_policies_parse_or_fail_cleanly(
            s in near_valid((any::<u32>(), 0u8..4, any::<bool>()).prop_map(|(n, kind, lower)| {
                let text = match kind {
                    0 => format!("REDUNDANCY {n}"),
                    1 => format!("RECOVERY WINDOW OF {n} DAYS"),
                    2 => format!("RECOVERY WINDOW OF {n} WEEK"),
                    _ => format!("recovery window of {n} months"),
                };
                if lower { text.to_lowercase() } else { text }
            }))
        ) {
            if let Ok(p) = s.parse::<RetentionPolicy>() {
                prop_assert_eq!(p.to_string().parse::<RetentionPolicy>().unwrap(), p);
            }
        }
    }
}
