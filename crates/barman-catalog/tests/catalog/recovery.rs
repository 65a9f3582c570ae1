//! Recovery planning across timelines, partial segments and impossible targets.

use std::collections::BTreeMap;

use barman_catalog::{
    BackupInfo, BackupStatus, Catalogue, Error, Impossible, RecoveryRequest, RecoveryTarget,
    TargetTimeline, WalIndex, choose_backup, plan_recovery,
};
use barman_wal::{TimelineHistory, TimelineId};
use jiff::tz::TimeZone;

fn setup() -> (Catalogue, WalIndex, BTreeMap<TimelineId, TimelineHistory>) {
    let mut cat = Catalogue::new("pg");
    for (id, begin, end, end_lsn, end_time) in [
        (
            "20261120T010000",
            "000000010000000000000002",
            "000000010000000000000002",
            "0/2000100",
            "2026-11-20 01:10:00+00:00",
        ),
        (
            "20261122T010000",
            "000000010000000000000005",
            "000000010000000000000005",
            "0/5000100",
            "2026-11-22 01:10:00+00:00",
        ),
    ] {
        let mut b = BackupInfo::new(id.parse().unwrap());
        b.status = BackupStatus::Done;
        b.timeline = Some(TimelineId::FIRST);
        b.begin_wal = Some(begin.parse().unwrap());
        b.end_wal = Some(end.parse().unwrap());
        b.end_xlog = Some(end_lsn.parse().unwrap());
        b.end_time = Some(end_time.parse().unwrap());
        b.version = Some(150004);
        cat.insert(b);
    }
    // Timeline 1 up to segment 8; timeline 2 forked at 0/6000100 and runs to segment 9,
    // ending in a partial; timeline 3 forked from 2 at 0/8000200.
    let mut lines = String::new();
    for s in 2..=8 {
        lines.push_str(&format!("00000001000000000000000{s} 1 1\n"));
    }
    lines.push_str("00000002.history 1 1\n00000003.history 1 1\n");
    for s in 6..=9 {
        lines.push_str(&format!("00000002000000000000000{s} 1 1\n"));
    }
    lines.push_str("00000002000000000000000A.partial 1 1\n000000030000000000000008 1 1\n");
    let wals = WalIndex::parse("xlog.db", &lines).unwrap();
    let mut h = BTreeMap::new();
    h.insert(
        TimelineId::new(2),
        TimelineHistory::parse(
            TimelineId::new(2),
            "1\t0/6000100\tno recovery target specified\n",
        )
        .unwrap(),
    );
    h.insert(
        TimelineId::new(3),
        TimelineHistory::parse(
            TimelineId::new(3),
            "1\t0/6000100\tx\n2\t0/8000200\tat restore point \"oops\"\n",
        )
        .unwrap(),
    );
    (cat, wals, h)
}

fn names(plan: &barman_catalog::RecoveryPlan) -> Vec<String> {
    plan.wal_files
        .iter()
        .map(|n| n.to_string())
        .filter(|n| !n.ends_with(".history"))
        .collect()
}

fn plan(req: RecoveryRequest) -> Result<barman_catalog::RecoveryPlan, Error> {
    let (cat, wals, h) = setup();
    plan_recovery(
        &cat,
        "20261120T010000".parse().unwrap(),
        &req,
        &h,
        &wals,
        &TimeZone::UTC,
    )
}

#[test]
fn follows_the_history_of_the_target_timeline() {
    let p = plan(RecoveryRequest {
        timeline: Some(TargetTimeline::Id(TimelineId::new(2))),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        names(&p),
        [
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000005",
            "000000020000000000000006",
            "000000020000000000000007",
            "000000020000000000000008",
            "000000020000000000000009",
        ]
    );
    // With the partial segment from streaming, nothing streamed is lost.
    let p = plan(RecoveryRequest {
        timeline: Some(TargetTimeline::Id(TimelineId::new(2))),
        include_partial: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        names(&p).last().unwrap(),
        "00000002000000000000000A.partial"
    );
    // Latest: timeline 3, through 1 and 2.
    let p = plan(RecoveryRequest {
        timeline: Some(TargetTimeline::Latest),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(u32::from(p.target_timeline), 3);
    assert_eq!(
        names(&p)[4..],
        [
            "000000020000000000000006",
            "000000020000000000000007",
            "000000030000000000000008"
        ]
    );
    // A PITR on PostgreSQL 12+ defaults to the latest timeline; no target stays on the backup's.
    let p = plan(RecoveryRequest {
        target: Some(RecoveryTarget::Name("x".into())),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(u32::from(p.target_timeline), 3);
    let p = plan(RecoveryRequest::default()).unwrap();
    assert_eq!(u32::from(p.target_timeline), 1);
    assert_eq!(names(&p).last().unwrap(), "000000010000000000000008");
    // History files are always delivered.
    assert_eq!(p.wal_files.iter().filter(|n| n.is_history()).count(), 2);
}

#[test]
fn stops_where_the_target_needs() {
    let p = plan(RecoveryRequest {
        target: Some(RecoveryTarget::Immediate),
        timeline: Some(TargetTimeline::Current),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(names(&p), ["000000010000000000000002"]);
    let p = plan(RecoveryRequest {
        target: Some(RecoveryTarget::Lsn("0/4000010".parse().unwrap())),
        timeline: Some(TargetTimeline::Current),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(names(&p).last().unwrap(), "000000010000000000000004");
}

fn impossible(req: RecoveryRequest, kind: Impossible, what: &str) {
    match plan(req) {
        Err(Error::ImpossibleTarget { kind: k, reason }) => {
            assert_eq!(k, kind, "{reason}");
            assert!(reason.contains(what), "{reason}");
        }
        other => panic!("expected an impossible target ({what}), got {other:?}"),
    }
}

#[test]
fn refuses_impossible_targets() {
    impossible(
        RecoveryRequest {
            target: Some(RecoveryTarget::Time(
                "2026-11-20 01:05:00+00:00".parse().unwrap(),
            )),
            ..Default::default()
        },
        Impossible::BeforeBackupEnd,
        "before the end of backup",
    );
    impossible(
        RecoveryRequest {
            target: Some(RecoveryTarget::Lsn("0/2000000".parse().unwrap())),
            ..Default::default()
        },
        Impossible::BeforeBackupEnd,
        "before the end of backup",
    );
    impossible(
        RecoveryRequest {
            timeline: Some(TargetTimeline::Id(TimelineId::new(7))),
            ..Default::default()
        },
        Impossible::MissingHistory,
        "no history file",
    );
    impossible(
        RecoveryRequest {
            target: Some(RecoveryTarget::Lsn("0/F000000".parse().unwrap())),
            timeline: Some(TargetTimeline::Current),
            ..Default::default()
        },
        Impossible::MissingWal,
        "archive stops",
    );

    // A backup taken after the fork on timeline 1 cannot go to timeline 2.
    let (mut cat, wals, h) = setup();
    let mut b = BackupInfo::new("20261123T010000".parse().unwrap());
    b.status = BackupStatus::Done;
    b.timeline = Some(TimelineId::FIRST);
    b.begin_wal = Some("000000010000000000000007".parse().unwrap());
    b.end_wal = Some("000000010000000000000007".parse().unwrap());
    b.end_xlog = Some("0/7000100".parse().unwrap());
    cat.insert(b);
    let req = RecoveryRequest {
        timeline: Some(TargetTimeline::Id(TimelineId::new(2))),
        ..Default::default()
    };
    let err = plan_recovery(
        &cat,
        "20261123T010000".parse().unwrap(),
        &req,
        &h,
        &wals,
        &TimeZone::UTC,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("does not descend from timeline 1"),
        "{err}"
    );
    assert!(matches!(
        err,
        Error::ImpossibleTarget {
            kind: Impossible::TimelineNotDescendant,
            ..
        }
    ));

    // A missing segment inside the backup.
    let (cat, _, h) = setup();
    let gap = WalIndex::parse("xlog.db", "000000010000000000000005 1 1\n").unwrap();
    let err = plan_recovery(
        &cat,
        "20261120T010000".parse().unwrap(),
        &RecoveryRequest::default(),
        &h,
        &gap,
        &TimeZone::UTC,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("000000010000000000000002, needed to make backup"),
        "{err}"
    );
    assert!(matches!(
        err,
        Error::ImpossibleTarget {
            kind: Impossible::BackupWalMissing,
            ..
        }
    ));
}

#[test]
fn auto_picks_the_newest_backup_before_the_target() {
    let (cat, _, _) = setup();
    let at = |t: &str| RecoveryRequest {
        target: Some(RecoveryTarget::Time(t.parse().unwrap())),
        ..Default::default()
    };
    assert_eq!(
        choose_backup(&cat, &at("2026-11-21 00:00:00+00:00"), &TimeZone::UTC)
            .unwrap()
            .to_string(),
        "20261120T010000"
    );
    assert_eq!(
        choose_backup(&cat, &at("2026-11-23 00:00:00+00:00"), &TimeZone::UTC)
            .unwrap()
            .to_string(),
        "20261122T010000"
    );
    assert!(choose_backup(&cat, &at("2026-11-19 00:00:00+00:00"), &TimeZone::UTC).is_err());
    let name = RecoveryRequest {
        target: Some(RecoveryTarget::Name("x".into())),
        ..Default::default()
    };
    assert!(choose_backup(&cat, &name, &TimeZone::UTC).is_err());
    assert_eq!(
        choose_backup(&cat, &RecoveryRequest::default(), &TimeZone::UTC)
            .unwrap()
            .to_string(),
        "20261122T010000"
    );
}
