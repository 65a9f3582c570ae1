//! The fuzz targets of barman-catalog, as plain functions.
//!
//! Each target takes any bytes, panics on a bug (a broken round-trip invariant, an
//! overflow, an out-of-bounds slice) and returns whether the input was accepted (parsed
//! to a value), which lets the stable runner (`tests/seeds.rs`, `barman-fuzz-runner`)
//! keep accepted mutants to mutate further. The libFuzzer binaries under
//! `fuzz_targets/` call the same functions, so `cargo fuzz run` and the stable runner
//! check the same properties.
//!
//! What a parser accepts is then handed to the decisions taken from it (retention,
//! WAL cleanup, check-backup, recovery planning, backup look-ups), which must not
//! panic on any parsed value either.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use barman_catalog::{
    BackupId, BackupInfo, BackupManifest, BackupStatus, Catalogue, Identity, KeepTarget,
    PyDateTime, PyValue, RESERVED_BACKUP_IDS, RecoveryRequest, RecoveryTarget, RetentionPolicy,
    TargetTimeline, WalCleanup, WalIndex, WindowUnit, XlogDbEntry, check_backup, check_backup_name,
    choose_backup, plan_recovery,
};
use barman_wal::{TimelineHistory, TimelineId, WalFileName};
use jiff::Timestamp;
use jiff::tz::{self, TimeZone};
use sha2::{Digest, Sha256};

/// A target: its name and its body, which panics on a bug and returns whether it
/// accepted the input (the runner's `barman_fuzz_runner::Target`).
pub type Target = (&'static str, fn(&[u8]) -> bool);

/// Every target, by name (the names of `fuzz_targets/*.rs` and `seeds/*/`).
pub const TARGETS: &[Target] = &[
    ("py_literal", py_literal),
    ("backup_info", backup_info),
    ("xlog_db", xlog_db),
    ("timestamp", timestamp),
    ("retention_policy", retention_policy),
    ("backup_id", backup_id),
    ("identity", identity),
    ("manifest", manifest),
];

/// The path a fuzzed backup.info is read from.
const PATH: &str = "meta/20261120T010000-backup.info";

fn now() -> Timestamp {
    Timestamp::from_second(1_795_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Python literals: a parsed value is written as `repr` would, and that text reads back
/// to a value written the same (unless it holds an infinite float, as in Python).
pub fn py_literal(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(v) = PyValue::parse(s) else {
        return false;
    };
    let text = v.to_string();
    match PyValue::parse(&text) {
        Ok(back) => assert_eq!(back.to_string(), text),
        Err(e) => assert!(!v.is_finite(), "{text:?} does not read back: {e}"),
    }
    true
}

/// A small catalogue: full and incremental backups, every status, names, a kept
/// backup, WAL on two timelines across a log boundary, and a history.
struct Fixture {
    catalogue: Catalogue,
    wals: WalIndex,
    histories: BTreeMap<TimelineId, TimelineHistory>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut catalogue = Catalogue::new("pg");
        let backups = [
            (
                "20261101T010000",
                BackupStatus::Done,
                "00000001000000000000003F",
                "000000010000000000000040",
                "2026-11-01 02:00:00+00:00",
                Some("monthly"),
                None,
            ),
            (
                "20261102T010000",
                BackupStatus::Done,
                "0000000100000000000000FE",
                "000000010000000100000000",
                "2026-11-02 02:00:00+01:00",
                None,
                Some("20261101T010000"),
            ),
            (
                "20261103T010000",
                BackupStatus::Failed,
                "000000010000000100000001",
                "000000010000000100000001",
                "2026-11-03 02:00:00",
                Some("broken"),
                None,
            ),
            (
                "20261104T010000",
                BackupStatus::WaitingForWals,
                "000000020000000100000003",
                "000000020000000100000004",
                "2026-11-04 02:00:00-05:00",
                Some("dup"),
                None,
            ),
            (
                "20261105T010000",
                BackupStatus::Done,
                "000000020000000100000005",
                "000000020000000100000005",
                "2026-11-05 02:00:00Z",
                Some("dup"),
                None,
            ),
        ];
        for (id, status, begin, end, end_time, name, parent) in backups {
            let Ok(id) = id.parse::<BackupId>() else {
                continue;
            };
            let mut b = BackupInfo::new(id);
            b.status = status;
            b.begin_wal = begin.parse().ok();
            b.end_wal = end.parse().ok();
            b.timeline = b.begin_wal.map(|s| s.timeline());
            b.end_xlog = b
                .end_wal
                .and_then(|s| s.start_lsn(b.xlog_segment_size).ok())
                .and_then(|l| l.checked_add(0x100));
            b.end_time = end_time.parse().ok();
            b.backup_name = name.map(str::to_owned);
            b.mode = Some("postgres".to_owned());
            b.parent_backup_id = parent.and_then(|p| p.parse().ok());
            b.version = Some(150004);
            catalogue.insert(b);
        }
        if let (Ok(root), Ok(child)) = (
            "20261101T010000".parse::<BackupId>(),
            "20261102T010000".parse::<BackupId>(),
        ) && let Some(mut b) = catalogue.get(root).cloned()
        {
            b.children_backup_ids = Some(vec![child]);
            catalogue.insert(b);
        }
        if let Ok(kept) = "20261105T010000".parse() {
            catalogue.set_keep(kept, Some(KeepTarget::Standalone));
        }
        let mut lines = String::from("00000002.history 42 1.0\n");
        for log in 0..2u32 {
            for seg in [0x3Fu32, 0x40, 0xFE, 0xFF, 0, 1, 3, 4, 5] {
                for tli in 1..=2 {
                    lines.push_str(&format!("{tli:08X}{log:08X}{seg:08X} 16777216 1.0 gzip\n"));
                }
            }
        }
        let wals = WalIndex::parse("xlog.db", &lines).unwrap_or_default();
        let mut histories = BTreeMap::new();
        if let Ok(h) = TimelineHistory::parse(
            TimelineId::new(2),
            "1\t1/3000000\tno recovery target specified\n",
        ) {
            histories.insert(TimelineId::new(2), h);
        }
        Fixture {
            catalogue,
            wals,
            histories,
        }
    })
}

/// Runs the decisions taken from a catalogue on `catalogue`: retention (both kinds),
/// WAL cleanup plans of every backup, check-backup, backup choice and recovery plans.
fn decide(catalogue: &Catalogue) {
    let f = fixture();
    for policy in [
        RetentionPolicy::Redundancy(2),
        RetentionPolicy::RecoveryWindow(7, WindowUnit::Days),
        RetentionPolicy::RecoveryWindow(u32::MAX, WindowUnit::Months),
    ] {
        let _ = policy.evaluate(catalogue, 1, now(), &TimeZone::UTC);
    }
    let requests = [
        RecoveryRequest::default(),
        RecoveryRequest {
            target: Some(RecoveryTarget::Immediate),
            timeline: Some(TargetTimeline::Latest),
            include_partial: true,
        },
        RecoveryRequest {
            target: Some(RecoveryTarget::Time(PyDateTime::from_timestamp(
                now(),
                3600,
            ))),
            timeline: Some(TargetTimeline::Current),
            include_partial: false,
        },
    ];
    for b in catalogue.iter() {
        let _ = check_backup(b, &f.wals);
        for (from_retention, concurrent) in [(true, true), (false, false)] {
            if let Some(plan) = WalCleanup::plan(catalogue, b.id, from_retention, concurrent) {
                let mut wals = f.wals.clone();
                let _ = plan.apply(&mut wals);
            }
        }
        for req in &requests {
            let _ = plan_recovery(catalogue, b.id, req, &f.histories, &f.wals, &TimeZone::UTC);
        }
    }
    for req in &requests {
        let _ = choose_backup(catalogue, req, &TimeZone::fixed(tz::offset(-5)));
    }
}

/// Whether the literals of `info` can be written so that they read back.
fn writable(info: &BackupInfo) -> bool {
    [
        &info.backup_label,
        &info.copy_stats,
        &info.included_files,
        &info.snapshots_info,
    ]
    .into_iter()
    .flatten()
    .all(PyValue::is_finite)
}

/// Whole `backup.info` files: parsed metadata writes a text that reads back and is
/// then written the same; the metadata then goes through every decision of the
/// catalogue (retention, WAL cleanup, check-backup, recovery planning) without panicking.
pub fn backup_info(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(info) = BackupInfo::parse(PATH, s) else {
        return false;
    };
    let written = info.to_string();
    match BackupInfo::parse(PATH, &written) {
        Ok(back) => assert_eq!(back.to_string(), written),
        Err(e) => assert!(!writable(&info), "{written:?} does not read back: {e}"),
    }
    let _ = (
        info.backup_type(),
        info.begin_timeline(),
        info.is_incremental(),
    );
    for t in [info.begin_time, info.end_time].into_iter().flatten() {
        let _ = t.to_timestamp(&TimeZone::UTC);
    }
    let mut catalogue = fixture().catalogue.clone();
    catalogue.insert(info);
    decide(&catalogue);
    true
}

/// Whole `xlog.db` files: a parsed index writes a text that reads back to the same
/// text, names come out in order, every line that reads writes back itself, and the
/// index answers the catalogue's questions without panicking.
pub fn xlog_db(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    for line in s.lines() {
        if let Ok(e) = XlogDbEntry::parse_line(line) {
            assert_eq!(XlogDbEntry::parse_line(&e.to_string()).ok(), Some(e));
        }
    }
    let Ok(index) = WalIndex::parse("xlog.db", s) else {
        return false;
    };
    let text = index.to_string();
    let back = WalIndex::parse("xlog.db", &text).map(|i| i.to_string());
    assert_eq!(back.ok().as_deref(), Some(text.as_str()));
    let names: Vec<WalFileName> = index.names().collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]));
    for tli in index.timelines() {
        let last = index.last_segment(tli);
        assert_eq!(index.segments_on(tli).next_back(), last);
    }
    if let (Some(first), Some(last)) = (names.first(), names.last()) {
        assert!(index.range(first, last).count() <= names.len());
    }
    let f = fixture();
    for b in f.catalogue.iter() {
        let _ = check_backup(b, &index);
        for req in [
            RecoveryRequest::default(),
            RecoveryRequest {
                target: None,
                timeline: Some(TargetTimeline::Latest),
                include_partial: true,
            },
        ] {
            let _ = plan_recovery(
                &f.catalogue,
                b.id,
                &req,
                &f.histories,
                &index,
                &TimeZone::UTC,
            );
        }
        if let Some(plan) = WalCleanup::plan(&f.catalogue, b.id, true, true) {
            let _ = plan.apply(&mut index.clone());
        }
    }
    true
}

/// Timestamps as Barman writes them: a parsed value writes a text that reads back to a
/// value written the same, and can be placed in time (or says why not).
pub fn timestamp(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(t) = s.parse::<PyDateTime>() else {
        return false;
    };
    let text = t.to_string();
    let back = text.parse::<PyDateTime>();
    assert_eq!(back.map(|b| b.to_string()).as_deref(), Ok(text.as_str()));
    let _ = t.to_timestamp(&TimeZone::UTC);
    let _ = t.to_timestamp(&TimeZone::fixed(tz::offset(14)));
    let req = RecoveryRequest {
        target: Some(RecoveryTarget::Time(t)),
        timeline: None,
        include_partial: false,
    };
    let _ = choose_backup(&fixture().catalogue, &req, &TimeZone::UTC);
    true
}

/// Retention policies: a parsed policy's normalised text reads back to it, and the
/// policy evaluates the catalogue without panicking (windows up to u32::MAX months).
pub fn retention_policy(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(p) = s.parse::<RetentionPolicy>() else {
        return false;
    };
    assert_eq!(p.to_string().parse::<RetentionPolicy>().ok(), Some(p));
    for min in [0, 1, u32::MAX] {
        let _ = p.evaluate(&fixture().catalogue, min, now(), &TimeZone::UTC);
    }
    true
}

/// What a user types for a backup (an id, a shortcut, a name, a backup.info path, a
/// `--name`, a keep annotation, a `--target-tli`): ids read back to their text, a
/// backup found by id or by name has that id or name, a name accepted for `--name` is
/// none of the words that cannot be names.
pub fn backup_id(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let mut accepted = false;
    if let Ok(id) = s.parse::<BackupId>() {
        assert_eq!(id.to_string(), s);
        accepted = true;
    }
    let f = fixture();
    if let Ok(b) = f.catalogue.resolve(s) {
        if BackupId::is_backup_id(s) {
            assert_eq!(b.id.as_str(), s);
        } else if !RESERVED_BACKUP_IDS.contains(&s) {
            assert_eq!(b.backup_name.as_deref(), Some(s));
        }
        accepted = true;
    }
    // Almost any text is a valid name: not a reason to keep the input.
    if check_backup_name(s).is_ok() {
        assert!(!s.is_empty() && !BackupId::is_backup_id(s) && !RESERVED_BACKUP_IDS.contains(&s));
    }
    if let Ok(id) = BackupInfo::id_from_path(s) {
        assert!(s.contains(id.as_str()));
        accepted = true;
    }
    if let Ok(k) = s.parse::<KeepTarget>() {
        assert_eq!(k.name().parse::<KeepTarget>().ok(), Some(k));
    }
    if let Ok(t) = s.parse::<TargetTimeline>() {
        assert_eq!(t.to_string().parse::<TargetTimeline>().ok(), Some(t));
        accepted = true;
    }
    accepted
}

/// `identity.json`: a parsed identity writes the JSON Barman writes, which reads back
/// to it.
pub fn identity(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(id) = Identity::parse("identity.json", s) else {
        return false;
    };
    assert_eq!(
        Identity::parse("identity.json", &id.to_json()).ok(),
        Some(id.clone())
    );
    let _ = id.system_id();
    true
}

/// `text` up to its `Manifest-Checksum` key (all of it if there is none), closed with
/// the right checksum, so mutations reach the fields behind the checksum check.
pub fn reclose_manifest(text: &str) -> String {
    let body = match text.rfind("\"Manifest-Checksum\"") {
        Some(at) => text.get(..at).unwrap_or(text),
        None => text,
    };
    let digest: String = Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{body}\"Manifest-Checksum\": \"{digest}\"}}\n")
}

/// `backup_manifest`, as given and closed again with the right checksum: a parsed
/// manifest writes the text PostgreSQL writes, which reads back to it.
pub fn manifest(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let mut accepted = false;
    for text in [s.to_owned(), reclose_manifest(s)] {
        if let Ok(m) = BackupManifest::parse("backup_manifest", &text) {
            assert_eq!(
                BackupManifest::parse("backup_manifest", &m.to_text()).ok(),
                Some(m)
            );
            accepted = true;
        }
    }
    accepted
}
