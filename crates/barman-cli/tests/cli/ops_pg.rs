//! `switch-wal --archive` and `diagnose` against a real PostgreSQL whose
//! `archive_command` is `barman put-wal`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use barman_testkit::{self as pg, PgCluster};

use crate::support::{BARMAN, barman};

/// A cluster archiving through `barman put-wal pg`; server `lost` points at the same
/// cluster, but nothing archives into its archive.
fn setup() -> Option<(PgCluster, PathBuf, PathBuf)> {
    let bin = pg::require()?;
    let pg = PgCluster::start(&bin, &["--wal-segsize=1"], &[]).unwrap();
    let home = pg.dir().join("barman");
    std::fs::create_dir_all(&home).unwrap();
    let conf = pg.dir().join("barman.conf");
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=postgres password=hunter2",
        pg.dir().display()
    );
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {}\n\n[pg]\nconninfo = {conninfo}\narchiver = on\ncompression = lz4\nbackup_method = postgres\n\n[lost]\nconninfo = {conninfo}\narchiver = on\nbackup_method = postgres\n",
            home.display(),
        ),
    )
    .unwrap();
    pg.give_to_server_user(pg.dir()).unwrap();
    pg.sql(&format!(
        "ALTER SYSTEM SET archive_command TO '{BARMAN} -q -c {} put-wal pg %p'",
        conf.display()
    ))
    .unwrap();
    pg.sql("SELECT pg_reload_conf()").unwrap();
    Some((pg, home, conf))
}

#[test]
fn switch_wal_archive_waits_for_the_closed_segment() {
    let Some((pg, home, conf)) = setup() else {
        return;
    };
    pg.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g")
        .unwrap();
    let started = Instant::now();
    let (code, out, err) = barman(&conf, &["switch-wal", "--archive", "pg"]);
    assert_eq!(code, 0, "{out}{err}\n{}", pg.server_log());
    let closed = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("The WAL file ")
                .and_then(|r| r.strip_suffix(" has been closed on server 'pg'"))
        })
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(
        out.contains(&format!(
            "Waiting for the WAL file {closed} from server 'pg' (max: 30 seconds)"
        )),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // When it returns, the segment is archived: in wals/ and listed in xlog.db.
    let wals = home.join("pg/wals");
    assert!(wals.join(&closed[..16]).join(&closed).is_file(), "{closed}");
    let xlogdb = std::fs::read_to_string(wals.join("pg-xlog.db")).unwrap();
    assert!(
        xlogdb
            .lines()
            .any(|l| l.starts_with(&format!("{closed}\t"))),
        "{xlogdb}"
    );

    // --force switches even without activity; --archive-timeout 0 waits as long as it
    // takes.
    let (code, out, err) = barman(
        &conf,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "0",
            "pg",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("has been closed on server 'pg'"), "{out}");
    assert!(!out.contains("(max:"), "{out}");

    // Nothing archives into `lost`: Barman's timeout message and exit code 1.
    pg.sql("INSERT INTO t SELECT g FROM generate_series(1, 1000) g")
        .unwrap();
    let started = Instant::now();
    let (code, out, err) = barman(
        &conf,
        &["switch-wal", "--archive", "--archive-timeout", "2", "lost"],
    );
    let elapsed = started.elapsed();
    assert_eq!(code, 1, "{out}{err}");
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    let closed = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("The WAL file ")
                .and_then(|r| r.strip_suffix(" has been closed on server 'lost'"))
        })
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(
        out.contains(&format!(
            "Waiting for the WAL file {closed} from server 'lost' (max: 2 seconds)"
        )),
        "{out}"
    );
    assert_eq!(
        err.trim_end(),
        format!("ERROR: The WAL file {closed} has not been received in 2 seconds")
    );

    // No switch needed (nothing written since): wait for any new WAL file, and a
    // timeout is not an error then.
    let (code, out, err) = barman(
        &conf,
        &["switch-wal", "--archive", "--archive-timeout", "1", "lost"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("No switch required for server 'lost'"),
        "{out}"
    );
    assert!(
        out.contains("Waiting for a WAL file from server 'lost' to be archived (max: 1 seconds)"),
        "{out}"
    );
    assert!(
        out.contains("A WAL file has not been received in 1 seconds"),
        "{out}"
    );

    // diagnose against the live server: its status, the archive, no password.
    let (code, out, err) = barman(&conf, &["diagnose"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter2"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v["servers"]["pg"];
    assert!(
        s["status"]["server_txt_version"]
            .as_str()
            .unwrap_or("")
            .starts_with("15"),
        "{s}"
    );
    assert_eq!(s["status"]["is_in_recovery"], false);
    assert!(
        s["status"]["archive_command"]
            .as_str()
            .unwrap_or("")
            .contains("put-wal pg"),
        "{s}"
    );
    assert!(
        s["wals"]["last_archived_wal_per_timeline"]["00000001"]["name"].is_string(),
        "{s}"
    );
    assert_eq!(
        v["servers"]["lost"]["wals"]["last_archived_wal_per_timeline"],
        serde_json::json!({})
    );
}
