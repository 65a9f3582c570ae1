//! The check-backup decision: is every WAL file a backup needs archived?

use barman_wal::SegmentName;

use crate::{BackupInfo, BackupStatus, WalIndex};

/// What [`check_backup`] decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CheckOutcome {
    /// Nothing to decide: the backup failed already, or its end WAL is not known yet.
    Unchanged,
    /// Every segment from `begin_wal` to `end_wal` is archived.
    Done,
    /// Segments after the newest archived one are still to come.
    WaitingForWals,
    /// A segment the backup needs is missing while later ones are archived: it will
    /// never arrive.
    Failed {
        /// The first missing segment.
        first_missing: SegmentName,
    },
}

impl CheckOutcome {
    /// The status the backup should get, `None` for [`CheckOutcome::Unchanged`].
    ///
    /// ```
    /// use barman_catalog::{BackupStatus, CheckOutcome};
    /// assert_eq!(CheckOutcome::Done.status(), Some(BackupStatus::Done));
    /// ```
    pub fn status(&self) -> Option<BackupStatus> {
        match self {
            CheckOutcome::Unchanged => None,
            CheckOutcome::Done => Some(BackupStatus::Done),
            CheckOutcome::WaitingForWals => Some(BackupStatus::WaitingForWals),
            CheckOutcome::Failed { .. } => Some(BackupStatus::Failed),
        }
    }

    /// The `error` text Barman records for a failed check.
    ///
    /// ```
    /// use barman_catalog::CheckOutcome;
    /// let o = CheckOutcome::Failed { first_missing: "000000010000000000000005".parse()? };
    /// assert_eq!(
    ///     o.error().unwrap(),
    ///     "At least one WAL file is missing. The first missing WAL file is 000000010000000000000005"
    /// );
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn error(&self) -> Option<String> {
        match self {
            CheckOutcome::Failed { first_missing } => Some(format!(
                "At least one WAL file is missing. The first missing WAL file is {first_missing}"
            )),
            _ => None,
        }
    }
}

/// Barman's check-backup: decides whether a backup is DONE, still WAITING_FOR_WALS, or
/// FAILED because a WAL segment it needs is missing for good.
///
/// `last` is the newest segment archived on the backup's timeline. With no segment there,
/// or `last` before `begin_wal`, the backup waits. Otherwise the segments from
/// `begin_wal` up to `min(end_wal, last)` must all be archived (the first gap fails the
/// backup); then the backup is DONE if `end_wal <= last`, else it waits.
///
/// # Examples
///
/// ```
/// use barman_catalog::{check_backup, BackupInfo, BackupStatus, CheckOutcome, WalIndex};
///
/// let mut b = BackupInfo::new("20261125T010000".parse()?);
/// b.status = BackupStatus::WaitingForWals;
/// b.begin_wal = Some("000000010000000000000002".parse()?);
/// b.end_wal = Some("000000010000000000000004".parse()?);
/// let mut wals = WalIndex::parse("xlog.db", "000000010000000000000002 1 1\n000000010000000000000003 1 1\n")?;
/// assert_eq!(check_backup(&b, &wals), CheckOutcome::WaitingForWals);
/// wals.push(barman_catalog::XlogDbEntry::parse_line("000000010000000000000004 1 1")?);
/// assert_eq!(check_backup(&b, &wals), CheckOutcome::Done);
/// let gap = WalIndex::parse("xlog.db", "000000010000000000000002 1 1\n000000010000000000000004 1 1\n")?;
/// assert!(matches!(check_backup(&b, &gap), CheckOutcome::Failed { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_backup(backup: &BackupInfo, wals: &WalIndex) -> CheckOutcome {
    if backup.status == BackupStatus::Failed {
        return CheckOutcome::Unchanged;
    }
    let (Some(begin), Some(end)) = (backup.begin_wal, backup.end_wal) else {
        return CheckOutcome::Unchanged;
    };
    let size = backup.xlog_segment_size;
    let Some(last) = wals.last_segment(begin.timeline()) else {
        return CheckOutcome::WaitingForWals;
    };
    if last < begin {
        return CheckOutcome::WaitingForWals;
    }
    let stop = if end.with_timeline(begin.timeline()) < last {
        end.with_timeline(begin.timeline())
    } else {
        last
    };
    for seg in SegmentName::range(begin, stop, size) {
        if !wals.has_segment(seg) {
            return CheckOutcome::Failed { first_missing: seg };
        }
    }
    if end <= last {
        CheckOutcome::Done
    } else {
        CheckOutcome::WaitingForWals
    }
}
