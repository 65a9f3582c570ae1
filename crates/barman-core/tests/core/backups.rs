//! The catalogue operations (`barman_core::catalogue`) on synthetic repositories: backups
//! written with `BackupInfo`, data directories with a few files, WAL files in
//! `wals/<hash dir>/` listed in xlog.db.

use std::fs;
use std::path::{Path, PathBuf};

use barman_catalog::{BackupId, BackupInfo, BackupStatus, KeepTarget, RetentionStatus};
use barman_core::catalogue::{FilesTarget, KeepAction, ServerBackups};
use barman_core::config::{Config, MemorySource};
use barman_core::{Error, Refusal};
use barman_wal::{SegmentName, WalFileName};
use jiff::Timestamp;
use jiff::tz::TimeZone;

pub(crate) struct Repo {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) extra: String,
}

pub(crate) fn seg(tli: u32, n: u32) -> SegmentName {
    SegmentName::new(barman_wal::TimelineId::new(tli), 0, n).unwrap()
}

fn id(s: &str) -> BackupId {
    s.parse().unwrap()
}

impl Repo {
    pub(crate) fn new(extra: &str) -> Repo {
        Repo {
            dir: tempfile::tempdir().unwrap(),
            extra: extra.to_owned(),
        }
    }

    pub(crate) fn home(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn server_dir(&self) -> PathBuf {
        self.home().join("pg")
    }

    pub(crate) fn config(&self) -> Config {
        let text = format!(
            "[barman]\nbarman_home = {}\n[pg]\nconninfo = host=pg\nbackup_method = postgres\n{}\n",
            self.home().display(),
            self.extra
        );
        Config::load("/etc/barman.conf", &text, &MemorySource::default()).unwrap()
    }

    pub(crate) fn backups(&self) -> ServerBackups {
        let config = self.config();
        ServerBackups::for_server(config.global(), config.server("pg").unwrap())
    }

    /// A backup with data files, needing WAL `begin..=end` on timeline 1.
    pub(crate) fn backup(
        &self,
        bid: &str,
        status: BackupStatus,
        begin: u32,
        end: u32,
    ) -> BackupInfo {
        let mut b = BackupInfo::new(id(bid));
        b.status = status;
        b.mode = Some("postgres".into());
        b.server_name = Some("pg".into());
        b.timeline = Some(barman_wal::TimelineId::new(1));
        b.begin_wal = Some(seg(1, begin));
        b.end_wal = Some(seg(1, end));
        b.begin_xlog = Some(format!("0/{begin:X}000028").parse().unwrap());
        b.end_xlog = Some(format!("0/{end:X}000100").parse().unwrap());
        b.begin_offset = Some(40);
        b.end_offset = Some(256);
        b.version = Some(170002);
        b.pgdata = Some("/var/lib/postgresql/17/main".into());
        b.systemid = Some("7300000000000000001".into());
        b.size = Some(3 * 1024 * 1024);
        b.deduplicated_size = Some(3 * 1024 * 1024);
        b.cluster_size = Some(3 * 1024 * 1024);
        let day = &bid[6..8];
        b.begin_time = Some(format!("2026-11-{day} 01:00:00+00:00").parse().unwrap());
        b.end_time = Some(format!("2026-11-{day} 01:30:00+00:00").parse().unwrap());
        self.write(&b);
        let data = self.server_dir().join("base").join(bid).join("data");
        fs::create_dir_all(data.join("base/1")).unwrap();
        fs::create_dir_all(data.join("pg_wal")).unwrap();
        fs::write(data.join("PG_VERSION"), "17\n").unwrap();
        fs::write(data.join("base/1/1259"), vec![7u8; 8192]).unwrap();
        fs::write(data.join("backup_label"), "START WAL LOCATION\n").unwrap();
        b
    }

    pub(crate) fn write(&self, b: &BackupInfo) {
        let meta = self.server_dir().join("meta");
        fs::create_dir_all(&meta).unwrap();
        fs::write(meta.join(format!("{}-backup.info", b.id)), b.to_string()).unwrap();
    }

    pub(crate) fn read(&self, bid: &str) -> BackupInfo {
        let p = self.info_path(bid);
        BackupInfo::parse(&p.to_string_lossy(), &fs::read_to_string(&p).unwrap()).unwrap()
    }

    pub(crate) fn info_path(&self, bid: &str) -> PathBuf {
        self.server_dir()
            .join("meta")
            .join(format!("{bid}-backup.info"))
    }

    /// Archives WAL segments `first..=last` of timeline `tli`, `size` bytes each.
    pub(crate) fn wals(&self, tli: u32, first: u32, last: u32, size: usize) {
        let mut db = String::new();
        for n in first..=last {
            let name = WalFileName::Segment(seg(tli, n));
            self.wal_file(&name, size);
            db.push_str(&format!(
                "{name}\t{size}\t{}.5\tNone\tNone\n",
                1_795_000_000 + n * 60
            ));
        }
        self.append_xlogdb(&db);
    }

    pub(crate) fn wal_file(&self, name: &WalFileName, size: usize) {
        let dir = self.server_dir().join("wals").join(name.hash_dir());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name.to_string()), vec![1u8; size]).unwrap();
    }

    pub(crate) fn append_xlogdb(&self, lines: &str) {
        use std::io::Write;
        let wals = self.server_dir().join("wals");
        fs::create_dir_all(&wals).unwrap();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(wals.join("pg-xlog.db"))
            .unwrap();
        f.write_all(lines.as_bytes()).unwrap();
    }

    pub(crate) fn xlogdb(&self) -> String {
        fs::read_to_string(self.server_dir().join("wals/pg-xlog.db")).unwrap_or_default()
    }

    pub(crate) fn wal_exists(&self, tli: u32, n: u32) -> bool {
        let name = WalFileName::Segment(seg(tli, n));
        self.server_dir()
            .join("wals")
            .join(name.hash_dir())
            .join(name.to_string())
            .exists()
    }

    /// Every file under the server directory, relative, sorted (lock files excluded).
    pub(crate) fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else if !p.file_name().unwrap().to_string_lossy().ends_with(".lock") {
                    out.push((
                        p.strip_prefix(root).unwrap().display().to_string(),
                        fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.home(), self.home(), &mut out);
        out.sort();
        out
    }
}

fn now() -> Timestamp {
    "2026-11-25T00:00:00Z".parse().unwrap()
}

/// Three DONE backups (begin..end WAL: 2..3, 5..6, 8..9), WAL 1..=11 archived, 1 KiB each.
fn three_done(extra: &str) -> Repo {
    let r = Repo::new(extra);
    r.backup("20261110T010000", BackupStatus::Done, 2, 3);
    r.backup("20261115T010000", BackupStatus::Done, 5, 6);
    r.backup("20261120T010000", BackupStatus::Done, 8, 9);
    r.wals(1, 1, 11, 1024);
    r
}

#[test]
fn list_newest_first_with_sizes_and_retention() {
    let r = three_done("retention_policy = REDUNDANCY 2");
    let mut failed = BackupInfo::new(id("20261121T010000"));
    failed.status = BackupStatus::Failed;
    failed.mode = Some("postgres".into());
    failed.error = Some("failure copying files".into());
    r.write(&failed);
    let list = r.backups().list(now(), &TimeZone::UTC).unwrap();
    let ids: Vec<String> = list.iter().map(|b| b.info.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "20261121T010000",
            "20261120T010000",
            "20261115T010000",
            "20261110T010000"
        ]
    );
    let mib3 = 3 * 1024 * 1024;
    // Size: backup + its WAL (2 files); WAL Size: after end until the next backup's end.
    let sizes: Vec<(u64, u64)> = list.iter().map(|b| (b.size, b.wal_size)).collect();
    assert_eq!(
        sizes,
        [
            (0, 0),
            (mib3 + 2048, 2048),     // 8..9, then 10, 11
            (mib3 + 2048, 3 * 1024), // 5..6, then 7, 8, 9
            (mib3 + 2048, 3 * 1024), // 2..3, then 4, 5, 6
        ]
    );
    let retention: Vec<Option<RetentionStatus>> = list.iter().map(|b| b.retention).collect();
    assert_eq!(
        retention,
        [
            None,
            Some(RetentionStatus::Valid),
            Some(RetentionStatus::Valid),
            Some(RetentionStatus::Obsolete)
        ]
    );
    // Without a policy, no retention status at all.
    let r2 = three_done("");
    assert!(
        r2.backups()
            .list(now(), &TimeZone::UTC)
            .unwrap()
            .iter()
            .all(|b| b.retention.is_none())
    );
}

#[test]
fn show_reports_neighbours_and_wal_statistics() {
    let r = three_done("retention_policy = REDUNDANCY 3");
    let d = r
        .backups()
        .show("20261115T010000", now(), &TimeZone::UTC)
        .unwrap();
    assert_eq!(d.previous, Some(id("20261110T010000")));
    assert_eq!(d.next, Some(id("20261120T010000")));
    assert_eq!(d.retention, Some(RetentionStatus::Valid));
    let wal = d.wal.unwrap();
    assert_eq!((wal.wal_num, wal.wal_size), (2, 2048));
    assert_eq!((wal.until_next_num, wal.until_next_size), (3, 3072));
    assert_eq!(wal.last.unwrap().0.to_string(), "000000010000000000000009");
    // 5 files over 4 minutes of archiving.
    assert!((wal.wals_per_second() - 5.0 / 240.0).abs() < 1e-9);
    assert!(wal.compression_ratio() > 0.99);
    // Shortcuts resolve.
    let b = r.backups();
    assert_eq!(
        b.show("latest", now(), &TimeZone::UTC).unwrap().info.id,
        id("20261120T010000")
    );
    assert_eq!(
        b.show("oldest", now(), &TimeZone::UTC).unwrap().previous,
        None
    );
    match b.show("20261101T000000", now(), &TimeZone::UTC) {
        Err(Error::Catalog(barman_catalog::Error::UnknownBackup { .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn list_files_targets() {
    let r = three_done("");
    let b = r.backups();
    let rel = |paths: Vec<PathBuf>| -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                p.strip_prefix(r.server_dir())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    };
    let data = rel(b
        .list_files("20261115T010000", FilesTarget::Data, false)
        .unwrap());
    assert_eq!(
        data,
        [
            "base/20261115T010000/data/PG_VERSION",
            "base/20261115T010000/data/backup_label",
            "base/20261115T010000/data/base/1/1259",
        ]
    );
    let with_empty = rel(b
        .list_files("20261115T010000", FilesTarget::Data, true)
        .unwrap());
    assert!(with_empty.contains(&"base/20261115T010000/data/pg_wal".to_owned()));
    let standalone = rel(b
        .list_files("20261115T010000", FilesTarget::Standalone, false)
        .unwrap());
    assert_eq!(&standalone[..3], &data[..]);
    assert_eq!(
        &standalone[3..],
        [
            "wals/0000000100000000/000000010000000000000005",
            "wals/0000000100000000/000000010000000000000006"
        ]
    );
    // A history file archived between segments 6 and 7 (Barman stops reading xlog.db at
    // the first file past the next backup's end, so one appended later is not listed).
    let db = r.xlogdb();
    let mut lines: Vec<&str> = db.lines().collect();
    lines.insert(6, "00000002.history\t40\t1795000000.0\tNone\tNone");
    fs::write(
        r.server_dir().join("wals/pg-xlog.db"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let wal = rel(b
        .list_files("20261115T010000", FilesTarget::Wal, false)
        .unwrap());
    let names: Vec<&str> = wal.iter().map(|p| p.rsplit('/').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "000000010000000000000005",
            "000000010000000000000006",
            "00000002.history",
            "000000010000000000000007",
            "000000010000000000000008",
            "000000010000000000000009",
        ]
    );
    assert_eq!(wal[2], "wals/00000002.history");
    let full = b
        .list_files("20261115T010000", FilesTarget::Full, false)
        .unwrap();
    assert_eq!(full.len(), 3 + 6);
}

#[test]
fn delete_oldest_removes_data_and_wal_before_the_next_backup() {
    let r = three_done("");
    let deleted = r.backups().delete("oldest").unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].id, id("20261110T010000"));
    let removed: Vec<String> = deleted[0].wals.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        removed,
        [
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004"
        ]
    );
    assert!(!r.server_dir().join("base/20261110T010000").exists());
    assert!(!r.info_path("20261110T010000").exists());
    assert!(
        !r.server_dir()
            .join("meta/20261110T010000-delete_this")
            .exists()
    );
    for n in 1..=4 {
        assert!(!r.wal_exists(1, n), "{n}");
    }
    for n in 5..=11 {
        assert!(r.wal_exists(1, n), "{n}");
    }
    let db = r.xlogdb();
    assert_eq!(db.lines().count(), 7);
    assert!(db.starts_with("000000010000000000000005\t1024\t"));
    // The others are untouched.
    assert_eq!(r.backups().load().unwrap().len(), 2);
}

#[test]
fn delete_a_middle_backup_keeps_all_wal() {
    let r = three_done("");
    let before = r.xlogdb();
    let deleted = r.backups().delete("20261115T010000").unwrap();
    assert!(deleted[0].wals.is_empty());
    assert_eq!(r.xlogdb(), before);
    assert!((1..=11).all(|n| r.wal_exists(1, n)));
    assert!(!r.server_dir().join("base/20261115T010000").exists());
}

#[test]
fn delete_the_last_backup_keeps_wal_from_its_start() {
    // Concurrent backups (the default): WAL from the deleted backup's begin on stays.
    let r = Repo::new("");
    r.backup("20261110T010000", BackupStatus::Done, 3, 4);
    r.wals(1, 1, 6, 100);
    let deleted = r.backups().delete("20261110T010000").unwrap();
    assert_eq!(deleted[0].wals.len(), 2);
    assert!(!r.wal_exists(1, 2) && r.wal_exists(1, 3) && r.wal_exists(1, 6));
}

#[test]
fn delete_refusals_leave_everything_intact() {
    let r = three_done("minimum_redundancy = 3");
    r.backups()
        .keep("20261120T010000", KeepAction::Keep(KeepTarget::Full))
        .unwrap();
    let before = r.snapshot();
    match r.backups().delete("20261110T010000") {
        Err(Error::Refused {
            kind: Refusal::BackupState,
            reason,
        }) => {
            assert!(reason.contains("minimum redundancy"), "{reason}");
            assert!(
                reason.contains("20261110T010000") && reason.contains("pg"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    match r.backups().delete("latest") {
        Err(Error::Refused {
            kind: Refusal::BackupState,
            reason,
        }) => assert!(reason.contains("keep request"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(r.backups().delete("20261101T000000").is_err());
    assert_eq!(r.snapshot(), before);
    // A running backup (holding the server's backup lock) blocks deletes.
    let r = three_done("");
    let lock = r.backups().repo().try_lock_backup().unwrap().unwrap();
    let before = r.snapshot();
    match r.backups().delete("oldest") {
        Err(
            e @ Error::Refused {
                kind: Refusal::Busy,
                ..
            },
        ) => {
            assert!(e.to_string().contains("Another process"), "{e}");
            assert!(e.is_retryable());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.snapshot(), before);
    drop(lock);
    // So does another process on the same backup.
    let busy = r
        .backups()
        .repo()
        .try_lock_backup_id(id("20261110T010000"))
        .unwrap()
        .unwrap();
    assert!(matches!(
        r.backups().delete("oldest"),
        Err(Error::Refused { .. })
    ));
    assert_eq!(r.snapshot(), before);
    drop(busy);
    assert!(r.backups().delete("oldest").is_ok());
    // The deleted backup's lock file goes with it.
    assert!(!r.home().join(".pg-20261110T010000.lock").exists());
    assert!(r.home().join(".pg-backup.lock").exists());
}

#[test]
fn delete_an_incremental_tree_and_a_child() {
    let r = Repo::new("");
    let mut root = r.backup("20261110T010000", BackupStatus::Done, 2, 2);
    let mut child = r.backup("20261111T010000", BackupStatus::Done, 3, 3);
    let mut grandchild = r.backup("20261112T010000", BackupStatus::Done, 4, 4);
    let other = r.backup("20261113T010000", BackupStatus::Done, 5, 5);
    root.children_backup_ids = Some(vec![child.id]);
    child.parent_backup_id = Some(root.id);
    child.children_backup_ids = Some(vec![grandchild.id]);
    grandchild.parent_backup_id = Some(child.id);
    for b in [&root, &child, &grandchild, &other] {
        r.write(b);
    }
    r.wals(1, 1, 6, 10);
    // Deleting a leaf updates its parent.
    let d = r.backups().delete("20261112T010000").unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(r.read("20261111T010000").children_backup_ids, None);
    // Deleting the root takes the rest of the tree, leaves first.
    r.write(&child);
    r.write(&grandchild);
    fs::create_dir_all(r.server_dir().join("base/20261112T010000/data")).unwrap();
    let d = r.backups().delete("20261110T010000").unwrap();
    let ids: Vec<String> = d.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(
        ids,
        ["20261112T010000", "20261111T010000", "20261110T010000"]
    );
    let left: Vec<String> = r
        .backups()
        .load()
        .unwrap()
        .iter()
        .map(|b| b.id.to_string())
        .collect();
    assert_eq!(left, ["20261113T010000"]);
    assert!(!r.wal_exists(1, 4) && r.wal_exists(1, 5));
}

#[test]
fn keep_status_release_and_refusals() {
    let r = three_done("");
    let b = r.backups();
    assert_eq!(b.keep("oldest", KeepAction::Status).unwrap().1, None);
    b.keep("oldest", KeepAction::Keep(KeepTarget::Standalone))
        .unwrap();
    assert_eq!(
        fs::read_to_string(r.server_dir().join("meta/20261110T010000-keep")).unwrap(),
        "standalone"
    );
    assert_eq!(
        b.keep("20261110T010000", KeepAction::Status).unwrap().1,
        Some(KeepTarget::Standalone)
    );
    b.keep("oldest", KeepAction::Release).unwrap();
    assert!(!r.server_dir().join("meta/20261110T010000-keep").exists());
    let mut failed = BackupInfo::new(id("20261121T010000"));
    failed.status = BackupStatus::Failed;
    r.write(&failed);
    let mut incr = r.backup("20261122T010000", BackupStatus::Done, 10, 10);
    incr.parent_backup_id = Some(id("20261120T010000"));
    r.write(&incr);
    for (wanted, word) in [
        ("last-failed", "status FAILED"),
        ("20261122T010000", "incremental"),
    ] {
        match b.keep(wanted, KeepAction::Keep(KeepTarget::Full)) {
            Err(Error::Refused {
                kind: Refusal::BackupState,
                reason,
            }) => assert!(reason.contains(word), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(!r.server_dir().join("meta/20261121T010000-keep").exists());
    assert!(!r.server_dir().join("meta/20261122T010000-keep").exists());
}

#[test]
fn check_backup_waits_completes_or_fails() {
    let r = Repo::new("");
    r.backup("20261110T010000", BackupStatus::WaitingForWals, 3, 5);
    r.wals(1, 1, 4, 10);
    let rep = r.backups().check_backup("20261110T010000").unwrap();
    assert_eq!(rep.status, BackupStatus::WaitingForWals);
    assert_eq!(
        r.read("20261110T010000").status,
        BackupStatus::WaitingForWals
    );
    r.wals(1, 5, 5, 10);
    let rep = r.backups().check_backup("latest").unwrap();
    assert_eq!(
        (rep.before, rep.status),
        (BackupStatus::WaitingForWals, BackupStatus::Done)
    );
    assert_eq!(r.read("20261110T010000").status, BackupStatus::Done);

    let r = Repo::new("");
    r.backup("20261110T010000", BackupStatus::WaitingForWals, 3, 5);
    r.wals(1, 3, 3, 10);
    r.wals(1, 5, 6, 10);
    let rep = r.backups().check_backup("20261110T010000").unwrap();
    assert_eq!(rep.status, BackupStatus::Failed);
    let info = r.read("20261110T010000");
    assert_eq!(info.status, BackupStatus::Failed);
    assert_eq!(
        info.error.as_deref(),
        Some(
            "At least one WAL file is missing. The first missing WAL file is 000000010000000000000004"
        )
    );
}

#[test]
fn cron_steps_fail_stale_and_recheck_waiting() {
    let r = Repo::new("");
    r.backup("20261110T010000", BackupStatus::Started, 3, 3);
    r.backup("20261111T010000", BackupStatus::WaitingForWals, 4, 4);
    r.wals(1, 3, 5, 10);
    // While a backup process holds the lock, STARTED stays.
    let lock = r.backups().repo().try_lock_backup().unwrap().unwrap();
    assert!(r.backups().fail_stale().unwrap().is_empty());
    assert_eq!(r.read("20261110T010000").status, BackupStatus::Started);
    drop(lock);
    assert_eq!(r.backups().fail_stale().unwrap(), [id("20261110T010000")]);
    let info = r.read("20261110T010000");
    assert_eq!(info.status, BackupStatus::Failed);
    assert!(info.error.is_some());
    let checked = r.backups().recheck_waiting().unwrap();
    assert_eq!(checked.len(), 1);
    assert_eq!(r.read("20261111T010000").status, BackupStatus::Done);
}

#[test]
fn retention_deletes_obsolete_oldest_first() {
    let r = three_done("retention_policy = REDUNDANCY 1");
    let run = r
        .backups()
        .enforce_retention(now(), &TimeZone::UTC)
        .unwrap();
    assert!(run.enforced);
    let ids: Vec<String> = run.deleted.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["20261110T010000", "20261115T010000"]);
    // The first delete removed WAL up to the second backup's begin, the second up to
    // the third's.
    assert_eq!(run.deleted[0].wals.len(), 4);
    assert_eq!(run.deleted[1].wals.len(), 3);
    assert!(!r.wal_exists(1, 7) && r.wal_exists(1, 8));
    assert_eq!(r.backups().load().unwrap().len(), 1);
    // Nothing more to do.
    let run = r
        .backups()
        .enforce_retention(now(), &TimeZone::UTC)
        .unwrap();
    assert!(run.deleted.is_empty());
}

#[test]
fn retention_honours_keep_minimum_redundancy_and_mode() {
    // minimum_redundancy raises the policy: nothing is obsolete.
    let r = three_done("retention_policy = REDUNDANCY 1\nminimum_redundancy = 3");
    let before = r.snapshot();
    let run = r
        .backups()
        .enforce_retention(now(), &TimeZone::UTC)
        .unwrap();
    assert!(run.deleted.is_empty());
    assert_eq!(r.snapshot(), before);
    // Kept backups stay; keep standalone protects only its own WAL.
    let r = three_done("retention_policy = REDUNDANCY 1");
    r.backups()
        .keep("oldest", KeepAction::Keep(KeepTarget::Standalone))
        .unwrap();
    let run = r
        .backups()
        .enforce_retention(now(), &TimeZone::UTC)
        .unwrap();
    let ids: Vec<String> = run.deleted.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["20261115T010000"]);
    assert!(r.wal_exists(1, 2) && r.wal_exists(1, 3));
    assert!(!r.wal_exists(1, 1) && !r.wal_exists(1, 4) && !r.wal_exists(1, 7));
}

#[test]
fn retention_finishes_interrupted_deletes_and_reports_orphans() {
    let r = three_done("retention_policy = REDUNDANCY 3");
    // An interrupted delete: the marker is there, the data half gone.
    fs::write(
        r.server_dir().join("meta/20261115T010000-delete_this"),
        "delete",
    )
    .unwrap();
    fs::remove_dir_all(r.server_dir().join("base/20261115T010000/data/base")).unwrap();
    // An orphan: backup.info without its directory (and no marker).
    fs::remove_dir_all(r.server_dir().join("base/20261110T010000")).unwrap();
    let run = r
        .backups()
        .enforce_retention(now(), &TimeZone::UTC)
        .unwrap();
    let ids: Vec<String> = run.deleted.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["20261115T010000"]);
    assert_eq!(run.orphans, [id("20261110T010000")]);
    assert!(
        !r.server_dir()
            .join("meta/20261115T010000-delete_this")
            .exists()
    );
    assert!(!r.info_path("20261115T010000").exists());
    assert!(r.info_path("20261110T010000").exists());
    // A marker left after backup.info was removed goes at the next run.
    fs::write(
        r.server_dir().join("meta/20261101T010000-delete_this"),
        "delete",
    )
    .unwrap();
    r.backups()
        .enforce_retention(now(), &TimeZone::UTC)
        .unwrap();
    assert!(
        !r.server_dir()
            .join("meta/20261101T010000-delete_this")
            .exists()
    );
}

#[test]
fn cron_runs_catalogue_maintenance() {
    let r = three_done("retention_policy = REDUNDANCY 2\narchiver = on");
    r.backup("20261121T010000", BackupStatus::Started, 10, 10);
    let config = r.config();
    let out = barman_core::cron::run(&config, now(), &TimeZone::UTC);
    assert_eq!(out.len(), 1);
    match &out[0].1 {
        barman_core::cron::CronOutcome::Ran(run) => {
            assert_eq!(run.failed_stale.as_ref().unwrap(), &[id("20261121T010000")]);
            let deleted: Vec<String> = run
                .retention
                .as_ref()
                .unwrap()
                .deleted
                .iter()
                .map(|d| d.id.to_string())
                .collect();
            assert_eq!(deleted, ["20261110T010000"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.read("20261121T010000").status, BackupStatus::Failed);
}

/// Trust, point 10: temporary files left by a crash were never removed nor reported.
/// cron removes those an hour old whose writer is gone; check fails while any remains.
#[test]
fn leftover_temporary_files_are_swept_and_reported() {
    use barman_core::leftovers;
    use std::time::{Duration, SystemTime};
    let r = three_done("archiver = on");
    let config = r.config();
    let server = config.server("pg").unwrap();
    let archive = barman_core::archive::WalArchive::for_server(config.global(), server);
    let repo = barman_core::repo::BackupRepo::for_server(config.global(), server);
    let hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let make = |dir: &Path, name: &str, when: SystemTime| {
        fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        fs::write(&p, b"half").unwrap();
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
        p
    };
    let wals = r.server_dir().join("wals/0000000100000000");
    // Writers long gone (a pid above any pid_max), an hour old: swept.
    let old_wal = make(
        &wals,
        ".barman-tmp.000000010000000000000004.4294967.0",
        hours_ago,
    );
    let old_incoming = make(
        &r.server_dir().join("incoming"),
        ".barman-tmp.000000010000000000000005.4294967.1",
        hours_ago,
    );
    let old_meta = make(
        &r.server_dir().join("meta"),
        ".barman-tmp.write.4294967.0",
        hours_ago,
    );
    // Fresh, or its writer alive (this process), or not ours: kept.
    let fresh = make(
        &wals,
        ".barman-tmp.000000010000000000000006.4294967.0",
        SystemTime::now(),
    );
    let alive = make(
        &wals,
        &format!(
            ".barman-tmp.000000010000000000000007.{}.0",
            std::process::id()
        ),
        hours_ago,
    );
    let foreign = make(
        &r.server_dir().join("incoming"),
        "000000010000000000000008.tmp",
        hours_ago,
    );
    // The staging directories of an import and of a sync-wals killed midway (a file
    // inside), and one whose writer (this process) still runs.
    let staging = |dir: &Path, name: &str| {
        let d = dir.join(name);
        make(&d, "000000010000000000000009", hours_ago);
        fs::File::open(&d).unwrap().set_modified(hours_ago).unwrap();
        d
    };
    let old_import = staging(&r.server_dir().join("base"), ".import-Ab12Cd.4294967.0");
    let old_sync = staging(&r.server_dir(), ".sync-wals.Xy34Zw.4294967.0");
    let live_import = staging(
        &r.server_dir().join("base"),
        &format!(".import-Ef56Gh.{}.0", std::process::id()),
    );

    // check reports them.
    let state = barman_core::check::RepoState::inspect(
        config.global(),
        server,
        Timestamp::now(),
        &TimeZone::UTC,
    );
    assert_eq!(
        state.leftovers,
        [
            old_sync.clone(),
            old_import.clone(),
            old_incoming.clone(),
            old_meta.clone(),
            old_wal.clone()
        ]
    );
    let checks = barman_core::check::evaluate(server, None, None, None, &state);
    let line = checks
        .iter()
        .find(|c| c.name == "leftover temporary files")
        .unwrap();
    assert!(!line.ok);

    // cron's sweep removes them, and only them.
    let removed: Vec<PathBuf> = leftovers::sweep(&archive, &repo, Timestamp::now())
        .unwrap()
        .into_iter()
        .map(|l| l.path)
        .collect();
    assert_eq!(
        removed,
        [
            old_sync.clone(),
            old_import.clone(),
            old_incoming.clone(),
            old_meta.clone(),
            old_wal.clone()
        ]
    );
    for p in [&old_wal, &old_incoming, &old_meta, &old_import, &old_sync] {
        assert!(!p.exists());
    }
    for p in [&fresh, &alive, &foreign, &live_import] {
        assert!(p.exists());
    }
    let state = barman_core::check::RepoState::inspect(
        config.global(),
        server,
        Timestamp::now(),
        &TimeZone::UTC,
    );
    assert!(state.leftovers.is_empty());
}

/// Trust, point 12: a catalogue entry that cannot be read (an id that is not one, a
/// damaged backup.info) silently disappeared: listed by nobody, and deletes and
/// retention acted as if it did not exist.
#[test]
fn an_unreadable_catalogue_entry_is_shown_and_stops_deletes() {
    let r = three_done("retention_policy = REDUNDANCY 1\nminimum_redundancy = 0");
    let meta = r.server_dir().join("meta");
    fs::write(
        meta.join("20261112T010000-backup.info"),
        "status=DONE\nbegin_time=2026-11-20 +01:00\nversion=x\n",
    )
    .unwrap();
    fs::write(meta.join("not-an-id-backup.info"), "status=DONE\n").unwrap();
    let backups = r.backups();
    // Listed aside, by name, with the reason.
    let unreadable = backups.unreadable().unwrap();
    let names: Vec<&str> = unreadable.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["20261112T010000", "not-an-id"]);
    assert!(unreadable.iter().all(|u| !u.reason.is_empty()));
    let listed = backups.list(now(), &TimeZone::UTC).unwrap();
    assert_eq!(listed.len(), 3);
    // check fails on it.
    let summary = backups.summary(&TimeZone::UTC).unwrap();
    assert_eq!(summary.unreadable.len(), 2);
    let mut state = barman_core::check::RepoState::default();
    state.add_backups(&summary, now());
    assert!(
        state
            .backups_error
            .as_deref()
            .unwrap()
            .contains("20261112T010000")
    );
    // Nothing is deleted while it stands.
    let before = fs::read_dir(r.server_dir().join("base")).unwrap().count();
    let e = backups.delete("20261110T010000").unwrap_err();
    assert!(matches!(e, Error::UnreadableBackup { .. }), "{e}");
    let e = backups
        .enforce_retention(now(), &TimeZone::UTC)
        .unwrap_err();
    assert!(e.to_string().contains("cannot be read"), "{e}");
    assert_eq!(
        fs::read_dir(r.server_dir().join("base")).unwrap().count(),
        before
    );
}

/// Trust, point 10: reading the catalogue took the server's backup lock for a moment
/// (to tell whether a STARTED backup still runs), so a backup started at that moment
/// was refused. Asking must never take it: the lock file (holding the PID of its last
/// holder) is left exactly as it was, and a holder is still seen.
#[test]
fn reading_the_catalogue_never_takes_the_backup_lock() {
    let r = three_done("");
    r.backup("20261121T010000", BackupStatus::Started, 10, 10);
    let lock = r.home().join(".pg-backup.lock");
    fs::write(&lock, "12345").unwrap();
    let cat = r.backups().load().unwrap();
    assert_eq!(
        fs::read_to_string(&lock).unwrap(),
        "12345",
        "the lock was taken"
    );
    // Nobody holds it: the STARTED backup is dead.
    assert_eq!(
        cat.get(id("20261121T010000")).unwrap().status,
        BackupStatus::Failed
    );
    // A backup process holds it: running.
    let held = fs::File::open(&lock).unwrap();
    held.lock().unwrap();
    let cat = r.backups().load().unwrap();
    assert_eq!(
        cat.get(id("20261121T010000")).unwrap().status,
        BackupStatus::Started
    );
    drop(held);
}

/// Trust, point 14: the delete and WAL delete hooks were accepted and never run.
#[test]
fn delete_and_wal_delete_hooks_run_as_barmans() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.log");
    let script = |tag: &str| {
        format!(
            "echo \"{tag} $BARMAN_HOOK $BARMAN_PHASE $BARMAN_RETRY $BARMAN_BACKUP_ID$BARMAN_SEGMENT $BARMAN_ERROR\" >> {}",
            log.display()
        )
    };
    let extra = format!(
        "pre_delete_script = {}\npre_delete_retry_script = {}\npost_delete_retry_script = {}\npost_delete_script = {}\npre_wal_delete_script = {}\npost_wal_delete_script = {}\n",
        script("A"),
        script("B"),
        script("C"),
        script("D"),
        script("E"),
        script("F"),
    );
    let r = three_done(&extra);
    let deleted = r.backups().delete("20261110T010000").unwrap();
    let wals: Vec<String> = deleted[0].wals.iter().map(ToString::to_string).collect();
    assert!(!wals.is_empty());
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let id = "20261110T010000";
    assert_eq!(lines[0], format!("A delete_script pre 0 {id} "));
    assert_eq!(lines[1], format!("B delete_retry_script pre 1 {id} "));
    // Each WAL file between its pre and post hooks.
    for (i, w) in wals.iter().enumerate() {
        assert_eq!(lines[2 + 2 * i], format!("E wal_delete_script pre 0 {w} "));
        assert_eq!(lines[3 + 2 * i], format!("F wal_delete_script post 0 {w} "));
    }
    let n = 2 + 2 * wals.len();
    assert_eq!(lines[n], format!("C delete_retry_script post 1 {id} "));
    assert_eq!(lines[n + 1], format!("D delete_script post 0 {id} "));
    assert_eq!(lines.len(), n + 2);

    // A pre retry script's exit 63 stops the delete before anything goes.
    let r = three_done("pre_delete_retry_script = exit 63");
    let e = r.backups().delete("20261110T010000").unwrap_err();
    assert!(e.to_string().contains("requested to stop"), "{e}");
    assert!(r.server_dir().join("base/20261110T010000/data").is_dir());
    assert!(r.info_path("20261110T010000").is_file());
    // No delete marker left: the backup stays DONE, restorable, and retention does not
    // take it for an interrupted delete.
    assert!(
        !r.server_dir()
            .join("meta/20261110T010000-delete_this")
            .exists()
    );
    assert_eq!(
        r.backups()
            .load()
            .unwrap()
            .get("20261110T010000".parse().unwrap())
            .unwrap()
            .status,
        BackupStatus::Done
    );
}
