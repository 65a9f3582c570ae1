//! Recovery planning: from a target to a backup, a timeline and the WAL files to deliver.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use barman_wal::{Lsn, SegmentName, TimelineHistory, TimelineId, WalFileName};
use jiff::tz::TimeZone;

use crate::{BackupId, BackupInfo, Catalogue, Error, Impossible, PyDateTime, Result, WalIndex};

/// Where recovery stops (`recovery_target_*`). At most one per recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// `--target-time`: a timestamp (naive values are read in the Barman host's zone).
    Time(PyDateTime),
    /// `--target-xid`: a transaction id.
    Xid(u64),
    /// `--target-lsn`.
    Lsn(Lsn),
    /// `--target-name`: a restore point made with `pg_create_restore_point`.
    Name(String),
    /// `--target-immediate`: stop as soon as the backup is consistent.
    Immediate,
}

/// `--target-tli`: a timeline number, `current` (the backup's) or `latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetTimeline {
    /// The backup's timeline.
    Current,
    /// The newest timeline that descends from the backup's.
    Latest,
    /// This timeline.
    Id(TimelineId),
}

impl FromStr for TargetTimeline {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "current" => Ok(TargetTimeline::Current),
            "latest" => Ok(TargetTimeline::Latest),
            n => Ok(TargetTimeline::Id(n.parse::<TimelineId>()?)),
        }
    }
}

impl fmt::Display for TargetTimeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetTimeline::Current => f.write_str("current"),
            TargetTimeline::Latest => f.write_str("latest"),
            TargetTimeline::Id(t) => write!(f, "{t}"),
        }
    }
}

/// What a recovery asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryRequest {
    /// Where to stop; `None` replays all the WAL available.
    pub target: Option<RecoveryTarget>,
    /// The timeline to follow.
    pub timeline: Option<TargetTimeline>,
    /// Whether to deliver a trailing `.partial` segment (the newest WAL from streaming).
    pub include_partial: bool,
}

impl RecoveryRequest {
    /// Whether this is a point-in-time recovery (a target or a timeline is given).
    ///
    /// ```
    /// assert!(!barman_catalog::RecoveryRequest::default().is_pitr());
    /// ```
    pub fn is_pitr(&self) -> bool {
        self.target.is_some() || self.timeline.is_some()
    }
}

/// The result of planning: everything recovery needs to know about the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// The backup to restore.
    pub backup: BackupId,
    /// The timeline recovery follows (`recovery_target_timeline`).
    pub target_timeline: TimelineId,
    /// The WAL files to deliver, history files first, then segments in replay order.
    pub wal_files: Vec<WalFileName>,
}

fn impossible(kind: Impossible, reason: String) -> Error {
    Error::ImpossibleTarget { kind, reason }
}

/// Chooses the backup for `BACKUP_ID = auto`: the newest restorable backup that ends at
/// or before the target time or LSN, optionally on a given timeline; with only a timeline,
/// the newest backup on it; with neither, the latest.
///
/// # Errors
///
/// [`Error::ImpossibleTarget`] for targets `auto` cannot use (xid, name, immediate) or
/// when no backup qualifies.
///
/// ```
/// use barman_catalog::{choose_backup, BackupInfo, BackupStatus, Catalogue, RecoveryRequest, RecoveryTarget};
///
/// let mut cat = Catalogue::new("pg");
/// for (id, end) in [("20261101T000000", "0/3000000"), ("20261110T000000", "0/9000000")] {
///     let mut b = BackupInfo::new(id.parse()?);
///     b.status = BackupStatus::Done;
///     b.end_xlog = Some(end.parse()?);
///     cat.insert(b);
/// }
/// let req = RecoveryRequest { target: Some(RecoveryTarget::Lsn("0/5000000".parse()?)), ..Default::default() };
/// assert_eq!(choose_backup(&cat, &req, &jiff::tz::TimeZone::UTC)?.to_string(), "20261101T000000");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn choose_backup(
    catalogue: &Catalogue,
    request: &RecoveryRequest,
    local: &TimeZone,
) -> Result<BackupId> {
    let tli = match request.timeline {
        Some(TargetTimeline::Id(t)) => Some(t),
        Some(TargetTimeline::Current) => {
            return Err(impossible(
                Impossible::InvalidTarget,
                "'current' is not a valid timeline when the backup is chosen automatically".into(),
            ));
        }
        _ => None,
    };
    let on_timeline = |b: &&BackupInfo| tli.is_none_or(|t| b.timeline == Some(t));
    let found = match &request.target {
        Some(RecoveryTarget::Time(t)) => {
            let target = t.to_timestamp(local).map_err(|e| {
                impossible(Impossible::InvalidTarget, format!("target time {t}: {e}"))
            })?;
            catalogue.available().rev().filter(on_timeline).find(|b| {
                b.end_time
                    .and_then(|e| e.to_timestamp(local).ok())
                    .is_some_and(|end| end <= target)
            })
        }
        Some(RecoveryTarget::Lsn(l)) => catalogue
            .available()
            .rev()
            .filter(on_timeline)
            .find(|b| b.end_xlog.is_some_and(|e| e <= *l)),
        Some(_) => {
            return Err(impossible(
                Impossible::InvalidTarget,
                "a backup can be chosen automatically only for a time, LSN or timeline target"
                    .into(),
            ));
        }
        None => catalogue.available().rev().find(on_timeline),
    };
    found.map(|b| b.id).ok_or_else(|| {
        impossible(
            Impossible::NoBackup,
            "no backup ends before the recovery target".into(),
        )
    })
}

/// The ancestry of `tli`: from its history file, or none for timeline 1.
fn history_of(
    tli: TimelineId,
    histories: &BTreeMap<TimelineId, TimelineHistory>,
) -> Result<TimelineHistory> {
    match histories.get(&tli) {
        Some(h) => Ok(h.clone()),
        None if tli == TimelineId::FIRST => Ok(TimelineHistory::first()),
        None => Err(impossible(
            Impossible::MissingHistory,
            format!(
                "timeline {tli} has no history file ({}.history) in the archive",
                tli.to_hex()
            ),
        )),
    }
}

/// Plans the recovery of backup `id` for `request`: checks the target against the
/// backup, resolves the target timeline with the history files, and lists the exact WAL
/// files to deliver.
///
/// The WAL list holds every archived history file, then for each segment from the
/// backup's `begin_wal` on, the copy PostgreSQL will ask for on the target timeline's
/// path (after a switch point, the newer timeline's copy): up to `end_wal` for an
/// immediate target, up to the segment holding the target for an LSN target, else as
/// far as the archive goes without a gap, ending with the `.partial` segment when asked
/// for and archived.
///
/// # Errors
///
/// [`Error::ImpossibleTarget`] naming the reason: the backup is not restorable; the
/// target time is before the backup's end, or the target LSN before its end LSN; the
/// target timeline does not descend from the backup's timeline at its end, or has no
/// history file; a segment the backup needs is missing; the target LSN is beyond the
/// archived WAL.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use barman_catalog::*;
/// use barman_wal::{TimelineHistory, TimelineId};
///
/// let mut b = BackupInfo::new("20261125T010000".parse()?);
/// b.status = BackupStatus::Done;
/// b.timeline = Some(TimelineId::FIRST);
/// b.begin_wal = Some("000000010000000000000002".parse()?);
/// b.end_wal = Some("000000010000000000000002".parse()?);
/// b.end_xlog = Some("0/2000100".parse()?);
/// let mut cat = Catalogue::new("pg");
/// cat.insert(b);
/// let wals = WalIndex::parse("xlog.db", "000000010000000000000002 1 1\n000000010000000000000003 1 1\n\
///     00000002.history 1 1\n000000020000000000000003 1 1\n000000020000000000000004 1 1\n")?;
/// let mut histories = BTreeMap::new();
/// histories.insert(TimelineId::new(2), TimelineHistory::parse(TimelineId::new(2), "1\t0/3000100\tno recovery target specified\n")?);
/// let req = RecoveryRequest { timeline: Some(TargetTimeline::Latest), ..Default::default() };
/// let plan = plan_recovery(&cat, "20261125T010000".parse()?, &req, &histories, &wals, &jiff::tz::TimeZone::UTC)?;
/// assert_eq!(u32::from(plan.target_timeline), 2);
/// let names: Vec<String> = plan.wal_files.iter().map(|n| n.to_string()).collect();
/// assert_eq!(names, ["00000002.history", "000000010000000000000002", "000000020000000000000003", "000000020000000000000004"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_recovery(
    catalogue: &Catalogue,
    id: BackupId,
    request: &RecoveryRequest,
    histories: &BTreeMap<TimelineId, TimelineHistory>,
    wals: &WalIndex,
    local: &TimeZone,
) -> Result<RecoveryPlan> {
    let backup = catalogue.get(id).ok_or_else(|| Error::UnknownBackup {
        wanted: id.to_string(),
        server: catalogue.server().to_owned(),
    })?;
    if !backup.status.is_copy_done() {
        return Err(impossible(
            Impossible::BackupNotRestorable,
            format!("backup {id} is {} and cannot be restored", backup.status),
        ));
    }
    let (Some(begin), Some(end_wal), Some(end_lsn)) =
        (backup.begin_wal, backup.end_wal, backup.end_xlog)
    else {
        return Err(impossible(
            Impossible::BackupNotRestorable,
            format!("backup {id} has no begin_wal, end_wal or end_xlog"),
        ));
    };
    let size = backup.xlog_segment_size;
    let backup_tli = backup.begin_timeline().unwrap_or(begin.timeline());
    let end_tli = end_wal.timeline();

    match &request.target {
        Some(RecoveryTarget::Time(t)) => {
            let target = t.to_timestamp(local).map_err(|e| {
                impossible(Impossible::InvalidTarget, format!("target time {t}: {e}"))
            })?;
            if let Some(end) = backup.end_time
                && end.to_timestamp(local).is_ok_and(|end| target < end)
            {
                return Err(impossible(
                    Impossible::BeforeBackupEnd,
                    format!("target time {t} is before the end of backup {id} ({end})"),
                ));
            }
        }
        Some(RecoveryTarget::Lsn(l)) if *l < end_lsn => {
            return Err(impossible(
                Impossible::BeforeBackupEnd,
                format!("target LSN {l} is before the end of backup {id} ({end_lsn})"),
            ));
        }
        _ => {}
    }

    // The timeline to follow.
    let descends = |t: TimelineId| -> bool {
        t == end_tli || history_of(t, histories).is_ok_and(|h| h.descends_from(end_tli, end_lsn))
    };
    let latest = || {
        let mut candidates: Vec<TimelineId> = wals.timelines();
        candidates.extend(histories.keys().copied());
        candidates
            .into_iter()
            .filter(|t| descends(*t))
            .max()
            .unwrap_or(end_tli)
    };
    let target_tli = match request.timeline {
        Some(TargetTimeline::Current) => backup_tli,
        Some(TargetTimeline::Id(t)) => t,
        Some(TargetTimeline::Latest) => latest(),
        // PostgreSQL 12 and later recover to the latest timeline by default.
        None if request.is_pitr() && backup.version.is_none_or(|v| v >= 120000) => latest(),
        None => end_tli,
    };
    let history = history_of(target_tli, histories)?;
    if !history.descends_from(end_tli, end_lsn) {
        return Err(impossible(
            Impossible::TimelineNotDescendant,
            format!(
                "timeline {target_tli} does not descend from timeline {end_tli} of backup {id} at {end_lsn}"
            ),
        ));
    }

    // For each segment number, the timeline PostgreSQL reads it from: the newest
    // timeline of the path that had started by then.
    let starts: Vec<(u64, TimelineId)> = {
        let mut v = vec![(
            0u64,
            history.entries().first().map_or(target_tli, |e| e.parent()),
        )];
        let entries = history.entries();
        for (i, e) in entries.iter().enumerate() {
            let child = entries.get(i + 1).map_or(target_tli, |n| n.parent());
            v.push((size.segment_no(e.switchpoint()), child));
        }
        v
    };
    let tli_for = |segno: u64| {
        starts
            .iter()
            .rev()
            .find(|(s, _)| *s <= segno)
            .map_or(target_tli, |(_, t)| *t)
    };
    let name_for = |segno: u64| SegmentName::from_segment_no(tli_for(segno), segno, size);

    let first_no = begin.segment_no(size).ok_or_else(|| {
        impossible(
            Impossible::BackupNotRestorable,
            format!("begin_wal {begin} does not fit segment size {size}"),
        )
    })?;
    let end_no = end_wal.segment_no(size).ok_or_else(|| {
        impossible(
            Impossible::BackupNotRestorable,
            format!("end_wal {end_wal} does not fit segment size {size}"),
        )
    })?;
    let stop_no = match &request.target {
        Some(RecoveryTarget::Immediate) => Some(end_no),
        Some(RecoveryTarget::Lsn(l)) => Some(size.segment_no(*l).max(end_no)),
        _ => None,
    };

    let mut files: Vec<WalFileName> = wals.names().filter(|n| n.is_history()).collect();
    let mut segno = first_no;
    loop {
        if stop_no.is_some_and(|s| segno > s) {
            break;
        }
        let Some(name) = name_for(segno) else { break };
        if wals.has_segment(name) {
            files.push(WalFileName::Segment(name));
        } else if segno <= end_no {
            return Err(impossible(
                Impossible::BackupWalMissing,
                format!(
                    "WAL segment {name}, needed to make backup {id} consistent, is not archived"
                ),
            ));
        } else if let Some(stop) = stop_no {
            if request.include_partial && wals.contains(&WalFileName::Partial(name)) {
                files.push(WalFileName::Partial(name));
                break;
            }
            return Err(impossible(
                Impossible::MissingWal,
                format!(
                    "the target needs WAL up to segment {}, but the archive stops before {name}",
                    name_for(stop).map_or_else(String::new, |n| n.to_string())
                ),
            ));
        } else {
            if request.include_partial && wals.contains(&WalFileName::Partial(name)) {
                files.push(WalFileName::Partial(name));
            }
            break;
        }
        segno += 1;
    }
    Ok(RecoveryPlan {
        backup: id,
        target_timeline: target_tli,
        wal_files: files,
    })
}
