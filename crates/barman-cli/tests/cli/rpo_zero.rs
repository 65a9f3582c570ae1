//! The proof of RPO 0: a streaming-only server (`archiver = off`), its WAL streamed
//! synchronously by the `receive-wal` that `cron` starts; every COMMIT returned; the
//! primary is SIGKILLed and its data directory deleted; the backup plus the streamed
//! WAL, including the newest `.partial`, recovers every committed transaction.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use barman_testkit::{self as testkit, PgCluster, tools::is_root};

use crate::support::barman_as_server;

/// A PostgreSQL program run as the server's OS user.
fn tool(name: &str) -> Command {
    let path = testkit::bin_dir().unwrap().join(name);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn psql(sock: &Path, port: &str, sql: &str) -> Result<String, String> {
    let out = tool("psql")
        .arg("-h")
        .arg(sock)
        .args(["-p", port, "-U", "postgres", "-d", "postgres"])
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a started copy when the test ends, however it ends.
struct Copy(std::path::PathBuf);

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = tool("pg_ctl")
            .arg("-D")
            .arg(&self.0)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

#[test]
fn synchronous_streaming_loses_no_committed_transaction_when_the_primary_is_destroyed() {
    let Some(bin) = testkit::require() else {
        return;
    };
    let pg = PgCluster::start(
        &bin,
        &["--wal-segsize=1"],
        &[
            "max_replication_slots = 4",
            "synchronous_standby_names = 'barman_receive_wal'",
            "archive_mode = off",
        ],
    )
    .unwrap();
    let home = pg.dir().join("barman");
    std::fs::create_dir_all(&home).unwrap();
    let conf = pg.dir().join("barman.conf");
    let conninfo = format!("host={} user=postgres dbname=postgres", pg.dir().display());
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {home}\nbarman_lock_directory = {home}\nlog_file = {home}/barman.log\n\n\
             [pg]\nconninfo = {conninfo}\nstreaming_conninfo = {conninfo}\nbackup_method = postgres\n\
             archiver = off\nstreaming_archiver = on\nslot_name = barman\ncreate_slot = auto\n",
            home = home.display(),
        ),
    )
    .unwrap();
    pg.give_to_server_user(pg.dir()).unwrap();
    let log = || std::fs::read_to_string(home.join("barman.log")).unwrap_or_default();

    // cron starts receive-wal (and it creates the slot); the stream is synchronous.
    let (code, out, err) = barman_as_server(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("receive-wal streaming synchronously", 30, || {
        pg.sql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
            .unwrap()
            == "sync"
    });
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .unwrap();
    pg.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
        .unwrap();
    // A streaming-only backup reaches DONE from streamed WAL alone.
    let (code, out, err) =
        barman_as_server(&conf, &["backup", "pg", "--wait", "--wait-timeout", "120"]);
    assert_eq!(code, 0, "{out}{err}\n{}", log());
    let (code, out, err) = barman_as_server(&conf, &["list-backups", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(!out.contains("FAILED") && !out.contains("WAITING"), "{out}");
    // check: the streaming connection, the slot and receive-wal all OK.
    let (code, out, err) = barman_as_server(&conf, &["check", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "\tPostgreSQL streaming: OK",
        "\treplication slot: OK",
        "\tsystemid coherence: OK",
        "\tpg_receivexlog: OK",
        "\tpg_receivexlog compatible: OK",
        "\treceive-wal running: OK",
    ] {
        assert!(out.contains(&format!("{line}\n")), "{line} in {out}");
    }
    assert!(!out.contains("archive_mode"), "no file archiver: {out}");

    // The working day: N single-row transactions, each COMMIT returned (so, with
    // synchronous replication, its WAL was fsynced by receive-wal), with a segment
    // switch in the middle.
    const N: u32 = 300;
    for i in 1..=N {
        pg.sql(&format!(
            "INSERT INTO t VALUES ({}, 'txn {i}')",
            100_000 + i
        ))
        .unwrap();
        if i == N / 2 {
            pg.sql("SELECT pg_switch_wal()").unwrap();
        }
    }
    let expected = pg
        .sql("SELECT count(*) || ' ' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t")
        .unwrap();
    let last_segment = pg
        .sql("SELECT pg_walfile_name(pg_current_wal_flush_lsn())")
        .unwrap();

    // The primary dies: every process SIGKILLed, then its data directory deleted.
    let pid_file = std::fs::read_to_string(pg.data().join("postmaster.pid")).unwrap();
    let pid = pid_file.lines().next().unwrap().trim().to_owned();
    let children = Command::new("pgrep").args(["-P", &pid]).output().unwrap();
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    for child in String::from_utf8_lossy(&children.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", child]).status();
    }
    wait_until("the primary's processes gone", 30, || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    std::fs::remove_dir_all(pg.data()).unwrap();

    // receive-wal keeps trying to reconnect; stop it.
    let (code, out, err) = barman_as_server(&conf, &["receive-wal", "--stop", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    // The newest WAL is a .partial in streaming/, the segment the last COMMIT is in.
    let streaming = home.join("pg/streaming");
    let names: Vec<String> = std::fs::read_dir(&streaming)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.contains(&format!("{last_segment}.partial")),
        "{last_segment}.partial in {names:?}"
    );

    // Recovery of the latest backup with everything streamed, the .partial included.
    let dest = pg.dir().join("recovered");
    let (code, out, err) = barman_as_server(
        &conf,
        &["recover", "pg", "latest", &dest.display().to_string()],
    );
    assert_eq!(code, 0, "{out}{err}\n{}", log());
    let sock = pg.dir().join("recovered-sock");
    std::fs::create_dir_all(&sock).unwrap();
    pg.give_to_server_user(&sock).unwrap();
    let copy_log = pg.dir().join("recovered.log");
    let started = tool("pg_ctl")
        .arg("-D")
        .arg(&dest)
        .arg("-l")
        .arg(&copy_log)
        .arg("-o")
        .arg(format!(
            "-p 5433 -k {} -c listen_addresses=''",
            sock.display()
        ))
        .args(["-w", "start"])
        .output()
        .unwrap();
    let _copy = Copy(dest.clone());
    let copy_log = || std::fs::read_to_string(&copy_log).unwrap_or_default();
    assert!(started.status.success(), "{}", copy_log());
    wait_until("the copy promoted", 60, || {
        psql(&sock, "5433", "SELECT pg_is_in_recovery()").as_deref() == Ok("f")
    });
    let found = psql(
        &sock,
        "5433",
        "SELECT count(*) || ' ' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t",
    )
    .unwrap();
    assert_eq!(
        found,
        expected,
        "every committed transaction recovered\n{}",
        copy_log()
    );
    assert_eq!(
        psql(&sock, "5433", "SELECT max(id) FROM t").unwrap(),
        (100_000 + N).to_string()
    );
}
