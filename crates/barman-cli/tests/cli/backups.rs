//! The catalogue commands end to end on a synthetic repository: `list-backups`,
//! `show-backup`, `list-files`, `delete`, `keep`, `check-backup` and the retention part
//! of `cron`; and `list-backups` compared with Barman's own on the same `barman_home`.
//!
//! The comparison needs Barman 3 installed in a Python venv: set `BARMAN_ORACLE_PYTHON`
//! to its `python` (the `barman` script next to it is run). Without it that test says it
//! is skipped, unless `BARMAN_REQUIRE_ORACLE=1`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use barman_catalog::{BackupInfo, BackupStatus};
use barman_wal::{SegmentName, TimelineId, WalFileName};

use crate::support::barman;

struct Repo {
    dir: tempfile::TempDir,
}

fn seg(n: u32) -> SegmentName {
    SegmentName::new(TimelineId::new(1), 0, n).unwrap()
}

impl Repo {
    fn new() -> Repo {
        Repo {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn srv(&self) -> PathBuf {
        self.home().join("pg")
    }

    /// The configuration file, with `extra` options for server `pg`.
    fn conf(&self, extra: &str) -> PathBuf {
        let path = self.dir.path().join("barman.conf");
        fs::write(
            &path,
            format!(
                "[barman]\nbarman_home = {home}\nbarman_user = {user}\nlog_file = {log}\n\n[pg]\ndescription = test\nconninfo = host=localhost dbname=postgres\nbackup_method = postgres\nstreaming_conninfo = host=localhost\narchiver = on\n{extra}\n",
                home = self.home().display(),
                user = whoami(),
                log = self.dir.path().join("barman.log").display(),
            ),
        )
        .unwrap();
        path
    }

    fn backup(&self, id: &str, status: BackupStatus, begin: u32, end: u32) -> BackupInfo {
        let mut b = BackupInfo::new(id.parse().unwrap());
        b.status = status;
        b.mode = Some("postgres".into());
        b.server_name = Some("pg".into());
        b.timeline = Some(TimelineId::new(1));
        b.begin_wal = Some(seg(begin));
        b.end_wal = Some(seg(end));
        b.begin_xlog = Some(format!("0/{begin:X}000028").parse().unwrap());
        b.end_xlog = Some(format!("0/{end:X}000100").parse().unwrap());
        b.begin_offset = Some(40);
        b.end_offset = Some(256);
        b.version = Some(170002);
        b.pgdata = Some("/var/lib/postgresql/17/main".into());
        b.systemid = Some("7300000000000000001".into());
        b.size = Some(5 * 1024 * 1024 + 300);
        b.deduplicated_size = Some(5 * 1024 * 1024 + 300);
        b.cluster_size = Some(5 * 1024 * 1024 + 300);
        b.xlog_segment_size = barman_wal::WalSegSize::DEFAULT;
        let day = &id[6..8];
        b.begin_time = Some(format!("2026-11-{day} 01:00:00+00:00").parse().unwrap());
        b.end_time = Some(format!("2026-11-{day} 01:30:05+00:00").parse().unwrap());
        self.write(&b);
        let data = self.srv().join("base").join(id).join("data");
        fs::create_dir_all(data.join("base/1")).unwrap();
        fs::write(data.join("PG_VERSION"), "17\n").unwrap();
        fs::write(data.join("base/1/1259"), vec![7u8; 8192]).unwrap();
        b
    }

    fn write(&self, b: &BackupInfo) {
        let meta = self.srv().join("meta");
        fs::create_dir_all(&meta).unwrap();
        fs::write(meta.join(format!("{}-backup.info", b.id)), b.to_string()).unwrap();
    }

    fn status(&self, id: &str) -> BackupStatus {
        let p = self.srv().join("meta").join(format!("{id}-backup.info"));
        BackupInfo::parse(&p.to_string_lossy(), &fs::read_to_string(&p).unwrap())
            .unwrap()
            .status
    }

    /// WAL segments `first..=last`, `size` bytes each, listed in xlog.db.
    fn wals(&self, first: u32, last: u32, size: usize) {
        use std::io::Write;
        let wals = self.srv().join("wals");
        let mut db = String::new();
        for n in first..=last {
            let name = WalFileName::Segment(seg(n));
            let dir = wals.join(name.hash_dir());
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(name.to_string()), vec![0u8; size]).unwrap();
            db.push_str(&format!(
                "{name}\t{size}\t{}.25\tNone\tNone\n",
                1_795_000_000 + n * 30
            ));
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(wals.join("pg-xlog.db"))
            .unwrap();
        f.write_all(db.as_bytes()).unwrap();
    }

    fn wal_exists(&self, n: u32) -> bool {
        let name = WalFileName::Segment(seg(n));
        self.srv()
            .join("wals")
            .join(name.hash_dir())
            .join(name.to_string())
            .exists()
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Three DONE backups needing WAL 2..3, 5..6 and 8..9, one FAILED, one WAITING_FOR_WALS
/// (11..12); WAL 1..=11 archived, 3000 bytes each.
fn catalogue() -> Repo {
    let r = Repo::new();
    r.backup("20261110T010000", BackupStatus::Done, 2, 3);
    let mut named = r.backup("20261115T010000", BackupStatus::Done, 5, 6);
    named.backup_name = Some("monthly".into());
    r.write(&named);
    r.backup("20261120T010000", BackupStatus::Done, 8, 9);
    let mut failed = r.backup("20261121T010000", BackupStatus::Failed, 10, 10);
    failed.error = Some("failure copying files (No space left on device)".into());
    failed.end_time = None;
    r.write(&failed);
    r.backup("20261122T010000", BackupStatus::WaitingForWals, 11, 12);
    r.wals(1, 11, 3000);
    r
}

#[test]
fn list_backups_console_minimal_and_json() {
    let r = catalogue();
    let conf = r.conf("retention_policy = REDUNDANCY 2");
    let (code, out, err) = barman(&conf, &["list-backups", "pg"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "pg 20261122T010000 - F - Sun Nov 22 01:30:05 2026 - Size: 5.0 MiB - WAL Size: 0 B - WAITING_FOR_WALS\n\
         pg 20261121T010000 - F - FAILED\n\
         pg 20261120T010000 - F - Fri Nov 20 01:30:05 2026 - Size: 5.0 MiB - WAL Size: 5.9 KiB\n\
         pg 20261115T010000 'monthly' - F - Sun Nov 15 01:30:05 2026 - Size: 5.0 MiB - WAL Size: 8.8 KiB\n\
         pg 20261110T010000 - F - Tue Nov 10 01:30:05 2026 - Size: 5.0 MiB - WAL Size: 8.8 KiB - OBSOLETE\n"
    );
    let (_, out, _) = barman(&conf, &["list-backup", "--minimal", "all"]);
    assert_eq!(
        out,
        "20261122T010000\n20261121T010000\n20261120T010000\n20261115T010000\n20261110T010000\n"
    );
    let (code, out, _) = barman(&conf, &["-f", "json", "list-backups", "pg"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = v["pg"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(
        list[1],
        serde_json::json!({"backup_id": "20261121T010000", "backup_type": "full", "status": "FAILED"})
    );
    let oldest = &list[4];
    assert_eq!(oldest["retention_status"], "OBSOLETE");
    assert_eq!(oldest["size_bytes"], 5 * 1024 * 1024 + 300 + 6000);
    assert_eq!(oldest["wal_size_bytes"], 9000);
    assert_eq!(oldest["end_time"], "Tue Nov 10 01:30:05 2026");
    assert_eq!(oldest["end_time_timestamp"], "1794274205");
    assert_eq!(list[3]["backup_name"], "monthly");
    assert_eq!(list[3]["retention_status"], "-");
    let (code, _, err) = barman(&conf, &["list-backups", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn show_backup_and_list_files() {
    let r = catalogue();
    let conf = r.conf("retention_policy = REDUNDANCY 2");
    let (code, out, err) = barman(&conf, &["show-backup", "pg", "monthly"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "Backup 20261115T010000:\n",
        "  Backup Name            : monthly\n",
        "  Server Name            : pg\n",
        "  Status                 : DONE\n",
        "  PostgreSQL Version     : 170002\n",
        "  Base backup information:\n",
        "    Backup Method        : postgres\n",
        "    Backup Type          : full\n",
        "    Backup Size          : 5.0 MiB (5.0 MiB with WALs)\n",
        "    WAL Size             : 5.9 KiB\n",
        "    Begin WAL            : 000000010000000000000005\n",
        "    Number of WALs       : 2\n",
        "    Begin time           : 2026-11-15 01:00:00+00:00\n",
        "    Begin LSN            : 0/5000028\n",
        "  WAL information:\n",
        "    Number of files      : 3\n",
        "    Disk usage           : 8.8 KiB\n",
        "    Last available       : 000000010000000000000009\n",
        "    Retention Policy     : VALID\n",
        "    Previous Backup      : 20261110T010000\n",
        "    Next Backup          : 20261120T010000\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let (_, out, _) = barman(&conf, &["show-backup", "pg", "last-failed"]);
    assert!(
        out.ends_with(
            "  Error                  : failure copying files (No space left on device)\n"
        ),
        "{out}"
    );
    let (code, out, _) = barman(&conf, &["-f", "json", "show-backup", "pg", "oldest"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["pg"]["catalog_information"]["retention_policy"],
        "OBSOLETE"
    );
    assert_eq!(
        v["pg"]["catalog_information"]["previous_backup"],
        "- (this is the oldest base backup)"
    );
    assert_eq!(v["pg"]["base_backup_information"]["wal_num"], 2);
    assert_eq!(v["pg"]["wal_information"]["disk_usage_bytes"], 9000);

    let (code, out, _) = barman(&conf, &["list-files", "pg", "20261120T010000"]);
    assert_eq!(code, 0);
    let base = r.srv();
    assert_eq!(
        out,
        format!(
            "{b}/base/20261120T010000/data/PG_VERSION\n{b}/base/20261120T010000/data/base/1/1259\n{b}/wals/0000000100000000/000000010000000000000008\n{b}/wals/0000000100000000/000000010000000000000009\n",
            b = base.display()
        )
    );
    let (_, out, _) = barman(&conf, &["list-files", "--target", "wal", "pg", "latest"]);
    assert_eq!(
        out,
        format!(
            "{b}/wals/0000000100000000/00000001000000000000000B\n",
            b = base.display()
        )
    );
    let (code, _, err) = barman(&conf, &["list-files", "all", "latest"]);
    assert_eq!(code, 1);
    assert!(err.contains("single server"), "{err}");
}

#[test]
fn delete_refusals_then_delete() {
    let r = catalogue();
    let conf = r.conf("minimum_redundancy = 3");
    let (code, _, err) = barman(&conf, &["delete", "pg", "oldest"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("minimum redundancy") && err.contains("20261110T010000"),
        "{err}"
    );
    assert!(
        r.srv()
            .join("base/20261110T010000/data/PG_VERSION")
            .exists()
    );
    let conf = r.conf("");
    assert_eq!(
        barman(&conf, &["keep", "--target", "full", "pg", "oldest"]).0,
        0
    );
    let (code, out, _) = barman(&conf, &["keep", "--status", "pg", "oldest"]);
    assert_eq!((code, out.as_str()), (0, "Server pg:\n\tKeep: full\n"));
    let (code, _, err) = barman(&conf, &["delete", "pg", "20261110T010000"]);
    assert_eq!(code, 1);
    assert!(err.contains("keep request"), "{err}");
    assert!(r.srv().join("meta/20261110T010000-backup.info").exists());
    // --status wins over --release, --release over --target.
    let (_, out, _) = barman(
        &conf,
        &["keep", "--status", "--release", "pg", "20261110T010000"],
    );
    assert_eq!(out, "Server pg:\n\tKeep: full\n");
    assert_eq!(
        barman(
            &conf,
            &[
                "keep",
                "--release",
                "--target",
                "standalone",
                "pg",
                "oldest"
            ]
        )
        .0,
        0
    );
    assert!(!r.srv().join("meta/20261110T010000-keep").exists());
    let (code, _, err) = barman(&conf, &["keep", "--target", "full", "pg", "last-failed"]);
    assert_eq!(code, 1);
    assert!(err.contains("DONE"), "{err}");
    let (code, out, err) = barman(&conf, &["delete", "pg", "oldest"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Deleting backup 20261110T010000 for server pg\n"),
        "{out}"
    );
    assert!(out.contains("\t000000010000000000000004\n"), "{out}");
    assert!(!r.srv().join("base/20261110T010000").exists());
    assert!(!r.srv().join("meta/20261110T010000-backup.info").exists());
    assert!(!r.wal_exists(4) && r.wal_exists(5));
}

#[test]
fn check_backup_and_cron_retention() {
    let r = catalogue();
    let conf = r.conf("retention_policy = REDUNDANCY 1");
    let (code, _, err) = barman(&conf, &["check-backup", "pg", "20261122T010000"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r.status("20261122T010000"), BackupStatus::WaitingForWals);
    r.wals(12, 12, 3000);
    let (code, out, err) = barman(&conf, &["check-backup", "pg", "latest"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("DONE"), "{out}");
    assert_eq!(r.status("20261122T010000"), BackupStatus::Done);
    let (code, _, err) = barman(&conf, &["check-backup", "pg", "last-failed"]);
    assert_eq!(code, 1);
    assert!(err.contains("20261121T010000"), "{err}");

    // A STARTED backup whose process is gone, and retention (REDUNDANCY 1).
    r.backup("20261123T010000", BackupStatus::Started, 13, 13);
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(r.status("20261123T010000"), BackupStatus::Failed);
    for id in ["20261110T010000", "20261115T010000", "20261120T010000"] {
        assert!(
            out.contains(&format!(
                "Enforcing retention policy: removing backup {id} for server pg"
            )),
            "{out}"
        );
        assert!(!r.srv().join("base").join(id).exists());
    }
    let (_, out, _) = barman(&conf, &["list-backups", "--minimal", "pg"]);
    assert_eq!(out, "20261123T010000\n20261122T010000\n20261121T010000\n");
    assert!(!r.wal_exists(10) && r.wal_exists(11));
}

fn barman_script() -> Option<PathBuf> {
    let python = std::env::var("BARMAN_ORACLE_PYTHON").ok();
    let script = python
        .as_deref()
        .map(|p| Path::new(p).with_file_name("barman"))
        .filter(|p| p.is_file());
    if script.is_none() {
        assert!(
            std::env::var("BARMAN_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "BARMAN_REQUIRE_ORACLE=1 but no barman next to BARMAN_ORACLE_PYTHON"
        );
        eprintln!("skipped: set BARMAN_ORACLE_PYTHON to the python of a venv with barman");
    }
    script
}

/// Barman's own `list-backups` and `show-backup` on the same repository.
#[test]
fn list_backups_as_barman_lists_them() {
    let Some(script) = barman_script() else {
        return;
    };
    let r = catalogue();
    // A keep annotation Barman writes and reads too.
    fs::write(r.srv().join("meta/20261115T010000-keep"), "standalone").unwrap();
    let conf = r.conf("retention_policy = REDUNDANCY 1\nminimum_redundancy = 1");
    let theirs = |args: &[&str]| {
        let out = Command::new(&script)
            .arg("-c")
            .arg(&conf)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "barman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ours = |args: &[&str]| {
        let out = Command::new(crate::support::BARMAN)
            .arg("-c")
            .arg(&conf)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in [
        &["list-backups", "pg"][..],
        &["list-backups", "--minimal", "pg"],
        &["show-backup", "pg", "20261115T010000"],
        &["show-backup", "pg", "last-failed"],
        &["list-files", "--target", "full", "pg", "20261115T010000"],
    ] {
        assert_eq!(ours(args), theirs(args), "{args:?}");
    }
    let json = |s: String| serde_json::from_str::<serde_json::Value>(&s).unwrap();
    for args in [
        &["-f", "json", "list-backups", "pg"][..],
        &["-f", "json", "show-backup", "pg", "20261115T010000"],
        &["-f", "json", "show-backup", "pg", "oldest"],
        &["-f", "json", "show-backup", "pg", "last-failed"],
    ] {
        assert_eq!(json(ours(args)), json(theirs(args)), "{args:?}");
    }
}

/// Rewrites keys of a backup's `backup.info` as text (Python literals and naive times).
fn patch(r: &Repo, id: &str, edits: &[(&str, &str)]) {
    let p = r.srv().join("meta").join(format!("{id}-backup.info"));
    let mut text = fs::read_to_string(&p).unwrap();
    for (key, value) in edits {
        let start = text.find(&format!("\n{key}=")).unwrap() + 1;
        let end = start + text[start..].find('\n').unwrap();
        text.replace_range(start..end, &format!("{key}={value}"));
    }
    BackupInfo::parse(&p.to_string_lossy(), &text).unwrap();
    fs::write(p, text).unwrap();
}

/// rsync backups with tablespaces and copy statistics, naive times, an incremental
/// chain, compressed WAL: Barman's show-backup and list-backups, and ours, agree.
#[test]
fn show_backup_as_barman_on_rsync_and_incremental_backups() {
    let Some(script) = barman_script() else {
        return;
    };
    let r = Repo::new();
    r.backup("20261101T010000", BackupStatus::Done, 2, 3);
    patch(
        &r,
        "20261101T010000",
        &[
            ("mode", "rsync-concurrent"),
            ("tablespaces", "[('tbs1', 16385, '/srv/tbs1')]"),
            (
                "copy_stats",
                "{'copy_time': 125.5, 'analysis_time': 2.25, 'number_of_workers': 4}",
            ),
            ("size", "10485760"),
            ("deduplicated_size", "4194304"),
            ("begin_time", "2026-11-01 01:00:00"),
            ("end_time", "2026-11-01 01:30:05.250000"),
        ],
    );
    r.backup("20261105T010000", BackupStatus::Done, 5, 5);
    patch(
        &r,
        "20261105T010000",
        &[
            ("children_backup_ids", "20261106T010000"),
            ("summarize_wal", "on"),
            ("data_checksums", "on"),
            ("compression", "gzip"),
        ],
    );
    r.backup("20261106T010000", BackupStatus::Done, 6, 6);
    patch(
        &r,
        "20261106T010000",
        &[
            ("parent_backup_id", "20261105T010000"),
            ("cluster_size", "20971520"),
            ("deduplicated_size", "2097152"),
        ],
    );
    r.wals(1, 4, 16 * 1024 * 1024);
    {
        // Compressed WAL: smaller files, listed with their compression.
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(r.srv().join("wals/pg-xlog.db"))
            .unwrap();
        for n in 5..=8 {
            let name = WalFileName::Segment(seg(n));
            let dir = r.srv().join("wals").join(name.hash_dir());
            fs::write(dir.join(name.to_string()), vec![0u8; 700_000]).unwrap();
            writeln!(
                f,
                "{name}\t700000\t{}.0\tgzip\tNone",
                1_795_000_000 + n * 45
            )
            .unwrap();
        }
    }
    let conf = r.conf("retention_policy = RECOVERY WINDOW OF 2 WEEKS");
    let run = |program: &Path, args: &[&str]| {
        let out = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ours = Path::new(crate::support::BARMAN);
    for args in [
        &["list-backups", "pg"][..],
        &["show-backup", "pg", "20261101T010000"],
        &["show-backup", "pg", "20261105T010000"],
        &["show-backup", "pg", "20261106T010000"],
        &[
            "list-files",
            "--target",
            "standalone",
            "pg",
            "20261101T010000",
        ],
        &["list-files", "--target", "wal", "pg", "20261105T010000"],
    ] {
        assert_eq!(run(ours, args), run(&script, args), "{args:?}");
    }
    let json = |s: String| serde_json::from_str::<serde_json::Value>(&s).unwrap();
    for args in [
        &["-f", "json", "list-backups", "pg"][..],
        &["-f", "json", "show-backup", "pg", "20261101T010000"],
        &["-f", "json", "show-backup", "pg", "20261105T010000"],
        &["-f", "json", "show-backup", "pg", "20261106T010000"],
    ] {
        assert_eq!(json(run(ours, args)), json(run(&script, args)), "{args:?}");
    }
}

/// Every file under `dir` (relative path, content), sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(root, &p, out);
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `barman delete` by Barman and by us on identical repositories leaves identical
/// repositories (data, backup.info files, WAL files, hash directories, xlog.db).
#[test]
fn delete_as_barman_deletes() {
    let Some(script) = barman_script() else {
        return;
    };
    type Setup = fn(&Repo);
    let cases: [(&str, Setup, &str); 4] = [
        ("oldest", |_| {}, "oldest"),
        ("middle", |_| {}, "20261115T010000"),
        (
            "after a standalone keep",
            |r| fs::write(r.srv().join("meta/20261110T010000-keep"), "standalone").unwrap(),
            "20261115T010000",
        ),
        (
            "an incremental tree",
            |r| {
                patch(
                    r,
                    "20261115T010000",
                    &[("children_backup_ids", "20261120T010000")],
                );
                patch(
                    r,
                    "20261120T010000",
                    &[("parent_backup_id", "20261115T010000")],
                );
            },
            "20261115T010000",
        ),
    ];
    for (what, setup, target) in cases {
        let mut trees = Vec::new();
        for program in [script.clone(), PathBuf::from(crate::support::BARMAN)] {
            let r = catalogue();
            setup(&r);
            let conf = r.conf("");
            let out = Command::new(&program)
                .arg("-c")
                .arg(&conf)
                .args(["delete", "pg", target])
                .env("TZ", "UTC")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{what}: {}: {}",
                program.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            trees.push(tree(&r.srv()));
        }
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&trees[1]), names(&trees[0]), "{what}");
        assert_eq!(trees[1], trees[0], "{what}");
    }
}

/// The retention part of `cron`, by Barman and by us on identical repositories: the same
/// backups, backup.info files, WAL files and xlog.db remain.
#[test]
fn cron_retention_as_barman_enforces_it() {
    let Some(script) = barman_script() else {
        return;
    };
    type Setup = fn(&Repo);
    let cases: [(&str, &str, Setup); 3] = [
        ("redundancy", "retention_policy = REDUNDANCY 1", |_| {}),
        ("standalone keep", "retention_policy = REDUNDANCY 1", |r| {
            fs::write(r.srv().join("meta/20261110T010000-keep"), "standalone").unwrap()
        }),
        (
            "window and minimum redundancy",
            "retention_policy = RECOVERY WINDOW OF 1 DAYS\nminimum_redundancy = 2",
            |_| {},
        ),
    ];
    let kept = |dir: &Path| {
        tree(dir)
            .into_iter()
            .filter(|(n, _)| ["base/", "meta/", "wals/"].iter().any(|p| n.starts_with(p)))
            .collect::<Vec<_>>()
    };
    for (what, policy, setup) in cases {
        let mut trees = Vec::new();
        for program in [script.clone(), PathBuf::from(crate::support::BARMAN)] {
            let r = Repo::new();
            r.backup("20261110T010000", BackupStatus::Done, 2, 3);
            r.backup("20261115T010000", BackupStatus::Done, 5, 6);
            r.backup("20261120T010000", BackupStatus::Done, 8, 9);
            let mut failed = r.backup("20261121T010000", BackupStatus::Failed, 10, 10);
            failed.end_time = None;
            r.write(&failed);
            r.wals(1, 11, 100);
            setup(&r);
            let conf = r.conf(policy);
            let before = kept(&r.srv());
            let out = Command::new(&program)
                .arg("-c")
                .arg(&conf)
                .arg("cron")
                .env("TZ", "UTC")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{what}: {}: {}",
                program.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let after = kept(&r.srv());
            assert_ne!(
                before,
                after,
                "{what}: {} deleted nothing",
                program.display()
            );
            trees.push(after);
        }
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&trees[1]), names(&trees[0]), "{what}");
        assert_eq!(trees[1], trees[0], "{what}");
    }
}
