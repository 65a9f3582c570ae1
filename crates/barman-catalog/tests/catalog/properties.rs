//! Model and property tests of retention and WAL cleanup over random catalogues.

use std::collections::BTreeSet;

use barman_catalog::{
    BackupStatus, Catalogue, KeepTarget, RetentionPolicy, RetentionStatus, WalCleanup, WalIndex,
    WindowUnit, XlogDbEntry,
};
use barman_wal::{SegmentName, WalFileName};
use jiff::tz::TimeZone;

use crate::model::{self, Rng};

fn random_policy(rng: &mut Rng) -> RetentionPolicy {
    if rng.chance(50) {
        RetentionPolicy::Redundancy(rng.below(6) as u32)
    } else {
        RetentionPolicy::RecoveryWindow(
            rng.below(15) as u32,
            *rng.pick(&[WindowUnit::Days, WindowUnit::Weeks, WindowUnit::Months]),
        )
    }
}

/// A deliberately naive reference for the status of non-incremental backups.
fn naive(
    cat: &Catalogue,
    policy: RetentionPolicy,
    min_red: u32,
    now: i64,
    ends: &[(barman_catalog::BackupId, Option<i64>)],
) -> Vec<(String, &'static str)> {
    let roots: Vec<_> = cat
        .iter()
        .rev()
        .filter(|b| b.status != BackupStatus::Empty && !b.is_incremental())
        .collect();
    let done: Vec<_> = roots
        .iter()
        .filter(|b| b.status == BackupStatus::Done)
        .collect();
    let keep_name = |id| match cat.keep(id) {
        Some(KeepTarget::Full) => Some("KEEP:FULL"),
        Some(KeepTarget::Standalone) => Some("KEEP:STANDALONE"),
        None => None,
    };
    let mut out = Vec::new();
    for b in &roots {
        let status = if b.status != BackupStatus::Done {
            "-"
        } else if let Some(k) = keep_name(b.id) {
            k
        } else {
            let pos = done.iter().position(|d| d.id == b.id).unwrap();
            match policy {
                RetentionPolicy::Redundancy(n) => {
                    if pos < n.max(min_red) as usize {
                        "VALID"
                    } else {
                        "OBSOLETE"
                    }
                }
                RetentionPolicy::RecoveryWindow(n, unit) => {
                    let days = match unit {
                        WindowUnit::Days => 1,
                        WindowUnit::Weeks => 7,
                        WindowUnit::Months => 31,
                    };
                    let point = now - i64::from(n) * days * 86400;
                    // Index of the newest DONE backup that ended before the window.
                    let end = |id| {
                        ends.iter()
                            .find(|(i, _)| *i == id)
                            .and_then(|(_, e)| *e)
                            .unwrap()
                    };
                    let base = done.iter().position(|d| end(d.id) < point);
                    match base {
                        Some(base) if pos > base => {
                            if pos < min_red as usize {
                                "OBSOLETE*"
                            } else {
                                "OBSOLETE"
                            }
                        }
                        _ => "VALID",
                    }
                }
            }
        };
        out.push((b.id.to_string(), status));
    }
    out
}

#[test]
fn retention_agrees_with_a_naive_model_and_keeps_what_it_must() {
    let mut rng = Rng::new(42);
    for case in 0..3000 {
        let g = model::catalogue(&mut rng);
        let policy = random_policy(&mut rng);
        let min_red = rng.below(4) as u32;
        let now = g.last_end + rng.below(40 * 86400) as i64;
        let report = policy.evaluate(
            &g.catalogue,
            min_red,
            jiff::Timestamp::from_second(now).unwrap(),
            &TimeZone::UTC,
        );
        for (id, expected) in naive(&g.catalogue, policy, min_red, now, &g.ends) {
            let got = report.statuses[&id.parse().unwrap()].name();
            assert_eq!(
                got, expected,
                "case {case}, backup {id}, {policy}, minimum_redundancy {min_red}"
            );
        }
        // Never obsolete: kept backups, and the newest minimum_redundancy DONE ones.
        let obsolete: BTreeSet<_> = report.obsolete().into_iter().collect();
        let newest_done: Vec<_> = g
            .catalogue
            .iter()
            .rev()
            .filter(|b| b.status == BackupStatus::Done && !b.is_incremental())
            .take(min_red as usize)
            .map(|b| b.id)
            .collect();
        for id in newest_done {
            assert!(
                !obsolete.contains(&id),
                "case {case}: {id} is among the newest {min_red} DONE backups"
            );
        }
        for b in g.catalogue.iter() {
            if g.catalogue.keep(b.id).is_some() {
                assert!(
                    !obsolete.contains(&b.id),
                    "case {case}: kept backup {} is obsolete",
                    b.id
                );
            }
            // EMPTY backups are not evaluated (unless they inherit a root's status).
            if b.status == BackupStatus::Empty && !b.is_incremental() {
                assert!(!report.statuses.contains_key(&b.id));
            }
        }
        // Incremental backups share their root's fate unless the root is kept.
        for b in g
            .catalogue
            .iter()
            .filter(|b| b.children_backup_ids.is_some() && !b.is_incremental())
        {
            let root = report.statuses.get(&b.id);
            for c in g.catalogue.descendants(b.id) {
                let child = report.statuses.get(&c);
                if matches!(
                    root,
                    Some(
                        RetentionStatus::Valid | RetentionStatus::Obsolete | RetentionStatus::None
                    )
                ) {
                    assert_eq!(child, root, "case {case}: child {c} of {}", b.id);
                }
            }
        }
    }
}

#[test]
fn retention_never_deletes_wal_a_remaining_backup_needs() {
    let mut rng = Rng::new(1234);
    let mut sizes = BTreeSet::new();
    let mut crossing = 0;
    for case in 0..1500 {
        let g = model::catalogue(&mut rng);
        let mut cat = g.catalogue.clone();
        let size = g.size;
        // A complete archive for every timeline used, from before the first backup to
        // after the last one.
        let Some((first_no, last_no)) = g.archive_span(2, 4) else {
            continue;
        };
        sizes.insert(size);
        let per_log = size.segments_per_log();
        crossing += usize::from(first_no / per_log != last_no / per_log);
        let mut text = String::new();
        for t in cat
            .iter()
            .filter_map(|b| b.timeline)
            .collect::<BTreeSet<_>>()
        {
            for no in first_no..=last_no {
                text.push_str(&format!(
                    "{} {} 1.0\n",
                    SegmentName::from_segment_no(t, no, size).unwrap(),
                    size.bytes()
                ));
            }
        }
        let mut wals = WalIndex::parse("xlog.db", &text).unwrap();
        let policy = random_policy(&mut rng);
        let min_red = rng.below(3) as u32;
        let now = g.last_end + rng.below(30 * 86400) as i64;
        let report = policy.evaluate(
            &cat,
            min_red,
            jiff::Timestamp::from_second(now).unwrap(),
            &TimeZone::UTC,
        );
        for id in report.obsolete() {
            if let Some(plan) = WalCleanup::plan(&cat, id, true, true) {
                plan.apply(&mut wals);
            }
            cat.remove(id);
            for b in cat.available() {
                let (Some(begin), Some(end)) = (b.begin_wal, b.end_wal) else {
                    continue;
                };
                for seg in SegmentName::range(begin, end, size) {
                    assert!(
                        wals.has_segment(seg),
                        "case {case}: deleting {id} removed {seg} that {} needs",
                        b.id
                    );
                }
            }
            // Point-in-time recovery from the oldest remaining non-standalone backup to the
            // end of the archive stays possible.
            if let Some(oldest) = cat
                .available()
                .find(|b| cat.keep(b.id) != Some(KeepTarget::Standalone))
            {
                let begin = oldest.begin_wal.unwrap();
                let last = SegmentName::from_segment_no(begin.timeline(), last_no, size).unwrap();
                for seg in SegmentName::range(begin, last, size) {
                    assert!(
                        wals.has_segment(seg),
                        "case {case}: PITR from {} lost {seg}",
                        oldest.id
                    );
                }
            }
        }
    }
    // The generator reaches what it is meant to: every segment size, and archives that
    // cross a log boundary.
    assert_eq!(sizes.len(), 11, "segment sizes generated: {sizes:?}");
    assert!(
        crossing > 100,
        "only {crossing} archives cross a log boundary"
    );
    let _ = (XlogDbEntry::parse_line, WalFileName::History);
}

/// A naive check-backup: every segment from begin to end must be archived for DONE; a
/// missing one before the newest archived segment of the timeline fails the backup.
#[test]
fn check_backup_agrees_with_a_naive_model() {
    use barman_catalog::{BackupInfo, CheckOutcome, check_backup};
    let mut rng = Rng::new(99);
    for case in 0..5000 {
        // Any segment size, and WAL near the start, a log boundary or the end of the LSN
        // space.
        let size = model::segment_size(&mut rng);
        let tli = barman_wal::TimelineId::new(1 + rng.below(2) as u32);
        let begin_no = model::first_segment(&mut rng, size, 12);
        let end_no = begin_no + rng.below(5);
        let mut b = BackupInfo::new("20261125T010000".parse().unwrap());
        b.xlog_segment_size = size;
        b.status = *rng.pick(&[
            BackupStatus::WaitingForWals,
            BackupStatus::Done,
            BackupStatus::Failed,
        ]);
        b.begin_wal = SegmentName::from_segment_no(tli, begin_no, size);
        b.end_wal = SegmentName::from_segment_no(tli, end_no, size);
        let mut archived = BTreeSet::new();
        let mut text = String::new();
        for no in begin_no.saturating_sub(3)..end_no + 4 {
            if rng.chance(80) {
                archived.insert(no);
                let t = if rng.chance(90) {
                    tli
                } else {
                    barman_wal::TimelineId::new(3)
                };
                text.push_str(&format!(
                    "{} 1 1\n",
                    SegmentName::from_segment_no(t, no, size).unwrap()
                ));
            }
        }
        let wals = WalIndex::parse("xlog.db", &text).unwrap();
        let on_tli: Vec<u64> = wals
            .segments_on(tli)
            .map(|s| s.segment_no(size).unwrap())
            .collect();
        let expected = if b.status == BackupStatus::Failed {
            CheckOutcome::Unchanged
        } else {
            match on_tli.last() {
                None => CheckOutcome::WaitingForWals,
                Some(&last) if last < begin_no => CheckOutcome::WaitingForWals,
                Some(&last) => match (begin_no..=end_no.min(last)).find(|n| !on_tli.contains(n)) {
                    Some(missing) => CheckOutcome::Failed {
                        first_missing: SegmentName::from_segment_no(tli, missing, size).unwrap(),
                    },
                    None if end_no <= last => CheckOutcome::Done,
                    None => CheckOutcome::WaitingForWals,
                },
            }
        };
        assert_eq!(check_backup(&b, &wals), expected, "case {case}: {text}");
    }
}
