//! Trust, point 16: Barman 3.19 (from PyPI) and barman-rs share one `barman_home` and
//! each recovers the other's backup: Barman restores a barman-rs backup and replays the
//! WAL barman-rs archived (gzip-compressed), barman-rs restores a backup Barman took;
//! both copies are started and their data compared with what was committed before the
//! target. And `rebuild-xlogdb` gives what Barman's own gives on the same archive.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use barman_testkit::tools::oracle_python;

use crate::recover::{Copy, DIGEST, Site, ok};
use crate::support::{BARMAN, barman_as_server};

fn backup_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Backup ").and_then(|r| r.split(' ').next()))
        .filter(|id| id.len() == 15)
        .unwrap_or_else(|| panic!("no backup id in {out}"))
        .to_owned()
}

fn wait_listed(xlogdb: &Path, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let db = std::fs::read_to_string(xlogdb).unwrap_or_default();
        if db.lines().any(|l| l.split('\t').next() == Some(name)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not archived in {}",
            xlogdb.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn barman_and_barman_rs_recover_each_others_backups() {
    let Some(python) = oracle_python() else {
        return;
    };
    let script = python.with_file_name("barman");
    assert!(script.is_file(), "no barman next to {}", python.display());
    let Some(site) = Site::start_with(&[], "local-rsync") else {
        return;
    };
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        site.pg.dir().display()
    );
    let text = std::fs::read_to_string(&site.conf).unwrap();
    let text = format!(
        "{text}\n[pgb]\nconninfo = {conninfo}\nstreaming_conninfo = {conninfo}\nbackup_method = postgres\narchiver = on\ncompression = gzip\n"
    );
    std::fs::write(&site.conf, &text).unwrap();
    // Barman gets its own copy of the configuration, whose barman_user is the user
    // running it (its venv may not be readable by another); barman-rs's has none.
    let user = barman_testkit::tools::run(Command::new("id").arg("-un"))
        .trim()
        .to_owned();
    let barman_conf = site.pg.dir().join("barman-py.conf");
    std::fs::write(
        &barman_conf,
        text.replace("[barman]\n", &format!("[barman]\nbarman_user = {user}\n")),
    )
    .unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    site.pg
        .sql(&format!(
            "ALTER SYSTEM SET archive_command TO '{BARMAN} -q -c {c} put-wal pg %p && {BARMAN} -q -c {c} put-wal pgb %p'",
            c = site.conf.display()
        ))
        .unwrap();
    site.pg.sql("SELECT pg_reload_conf()").unwrap();
    let theirs = |args: &[&str]| {
        let out = Command::new(&script)
            .arg("-c")
            .arg(&barman_conf)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "barman {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    site.insert(1, 100);
    // barman-rs backs up `pg` (local-rsync, WAL gzip-compressed); Barman backs up
    // `pgb` with its postgres method.
    let (code, out, err) = barman_as_server(
        &site.conf,
        &["backup", "pg", "--wait", "--wait-timeout", "60"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let ours_id = backup_id(&out);
    theirs(&["backup", "pgb", "--wait", "--wait-timeout", "60"]);
    site.insert(101, 200);
    let expected = site.digest();
    let target = site.pg.sql("SELECT clock_timestamp()").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    site.insert(201, 300);
    let last = site
        .pg
        .sql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    for server in ["pg", "pgb"] {
        wait_listed(
            &site.home.join(format!("{server}/wals/{server}-xlog.db")),
            &last,
        );
    }

    // Barman restores barman-rs's backup and replays its gzip WAL.
    let by_barman = site.dest("restored-by-barman");
    theirs(&[
        "recover",
        "--target-time",
        &target,
        "--target-action",
        "promote",
        "pg",
        &ours_id,
        by_barman.to_str().unwrap(),
    ]);
    {
        let copy = Copy::start(&site, &by_barman, true);
        assert_eq!(copy.wait_replayed(), "promoted");
        assert_eq!(copy.sql(DIGEST), expected, "Barman's restore of our backup");
    }

    // barman-rs restores Barman's backup.
    let by_us = site.dest("restored-by-barman-rs");
    ok(site.recover(&[
        "--target-time",
        &target,
        "--target-action",
        "promote",
        "pgb",
        "latest",
        by_us.to_str().unwrap(),
    ]));
    {
        let copy = Copy::start(&site, &by_us, true);
        assert_eq!(copy.wait_replayed(), "promoted");
        assert_eq!(copy.sql(DIGEST), expected, "our restore of Barman's backup");
    }

    // rebuild-xlogdb: ours gives what Barman's gives on the same archive.
    let xlogdb = site.home.join("pg/wals/pg-xlog.db");
    theirs(&["rebuild-xlogdb", "pg"]);
    let barmans = std::fs::read_to_string(&xlogdb).unwrap();
    let (code, out, err) = crate::support::barman(&site.conf, &["rebuild-xlogdb", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let ours = std::fs::read_to_string(&xlogdb).unwrap();
    let lines = |t: &str| {
        let mut v: Vec<String> = t.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert!(barmans.lines().count() > 3, "{barmans}");
    assert_eq!(lines(&ours), lines(&barmans));
}
