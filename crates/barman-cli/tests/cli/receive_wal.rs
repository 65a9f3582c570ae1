//! `barman receive-wal` against a real PostgreSQL 15: the slot commands, a foreground
//! receive-wal stopped by `--stop`, what it streamed archived by `archive-wal`, and
//! `--reset`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use barman_testkit::{self as pg, PgCluster};

use crate::support::{BARMAN, barman};

#[test]
fn receive_wal_slots_stop_and_reset_as_barman() {
    let Some(bin) = pg::require() else {
        return;
    };
    let pg = PgCluster::start(&bin, &["--wal-segsize=1"], &["max_replication_slots = 4"]).unwrap();
    let home = pg.dir().join("barman-home");
    std::fs::create_dir_all(&home).unwrap();
    let conf = pg.dir().join("barman.conf");
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {home}\nbarman_lock_directory = {home}\n\n[pg]\nconninfo = host={dir} user=postgres dbname=postgres\nstreaming_conninfo = host={dir} user=postgres\nbackup_method = postgres\narchiver = on\nstreaming_archiver = on\nslot_name = barman\n",
            home = home.display(),
            dir = pg.dir().display()
        ),
    )
    .unwrap();

    // The slot: created, refused twice, accepted with --if-not-exists.
    let (code, out, err) = barman(&conf, &["receive-wal", "--create-slot", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Creating physical replication slot 'barman' on server 'pg'"),
        "{out}"
    );
    assert!(out.contains("Replication slot 'barman' created"), "{out}");
    assert_eq!(
        pg.sql("SELECT slot_type FROM pg_replication_slots WHERE slot_name = 'barman'")
            .unwrap(),
        "physical"
    );
    let (code, out, err) = barman(&conf, &["receive-wal", "--create-slot", "pg"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Replication slot 'barman' already exists"),
        "{err}"
    );
    let (code, out, err) = barman(
        &conf,
        &["receive-wal", "--create-slot", "--if-not-exists", "pg"],
    );
    assert_eq!(code, 0, "{out}{err}");
    // --stop with nothing running.
    let (code, _, err) = barman(&conf, &["receive-wal", "--stop", "pg"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such process for server pg"), "{err}");
    // Options that exclude each other.
    let (code, _, err) = barman(&conf, &["receive-wal", "--stop", "--reset", "pg"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot be used with"), "{err}");

    // check, with the slot but no receive-wal: Barman's streaming checks fail as its do.
    let (code, out, _) = barman(&conf, &["check", "pg"]);
    assert_eq!(code, 1, "{out}");
    for line in [
        "\tPostgreSQL streaming: OK",
        "\treplication slot: FAILED (slot 'barman' not active: is 'receive-wal' running?)",
        "\tpg_receivexlog: OK",
        "\tpg_receivexlog compatible: OK",
        "\treceive-wal running: FAILED (See the Barman log file for more details)",
    ] {
        assert!(out.contains(&format!("{line}\n")), "{line} in {out}");
    }
    let (code, out, _) = barman(&conf, &["check", "--nagios", "pg"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("replication slot, receive-wal running"),
        "{out}"
    );

    // A foreground receive-wal, stopped by --stop.
    let mut child = std::process::Command::new(BARMAN)
        .arg("-c")
        .arg(&conf)
        .args(["receive-wal", "pg"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Streaming from its slot (a WAL sender is listed while it starts up too).
    while pg.sql("SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE r.application_name = 'barman_receive_wal' AND r.state = 'streaming'").unwrap() != "1" {
        assert!(Instant::now() < deadline, "receive-wal did not connect");
        std::thread::sleep(Duration::from_millis(100));
    }
    replication_status_as_barman(&pg, &conf);
    let (code, out, _) = barman(&conf, &["list-processes", "pg"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "Active subprocesses for server pg:\n{} receive-wal\n",
            child.id()
        )
    );

    pg.sql("CREATE TABLE t AS SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
        .unwrap();
    pg.sql("SELECT pg_switch_wal()").unwrap();
    let switched: String = pg.sql("SELECT pg_current_wal_lsn()").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg
        .sql(&format!(
            "SELECT flush_lsn >= '{switched}' FROM pg_stat_replication"
        ))
        .unwrap()
        != "t"
    {
        assert!(Instant::now() < deadline, "receive-wal did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out, err) = barman(&conf, &["receive-wal", "--stop", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Stopped process receive-wal({})", child.id())),
        "{out}"
    );
    let status = child.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("receive-wal for server pg stopped"), "{log}");

    // What it streamed: complete segments (and a .partial when WAL went on past the
    // last whole one); archive-wal takes them, holding back the newest complete one
    // when there is no .partial, as Barman does.
    let streaming = home.join("pg/streaming");
    let mut names: Vec<String> = std::fs::read_dir(&streaming)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let partials = names.iter().filter(|n| n.ends_with(".partial")).count();
    assert!(partials <= 1, "{names:?}");
    let complete: Vec<&String> = names.iter().filter(|n| n.len() == 24).collect();
    assert!(complete.len() >= 2, "{names:?}");
    let (code, out, err) = barman(&conf, &["archive-wal", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let xlogdb = std::fs::read_to_string(home.join("pg/wals/pg-xlog.db")).unwrap();
    let held_back = usize::from(partials == 0);
    for c in &complete[..complete.len() - held_back] {
        assert!(xlogdb.contains(c.as_str()), "{c} archived: {xlogdb}");
    }

    // --reset: the position is aligned with the slot (nothing to do right after a stop
    // that reported everything), or reset; either way a receive-wal can start from it.
    let (code, out, err) = barman(&conf, &["receive-wal", "--reset", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Nothing to do. Position of receive-wal is aligned.")
            || out.contains("Creating status file"),
        "{out}"
    );

    // Dropping the slot, then again.
    let (code, out, err) = barman(&conf, &["receive-wal", "--drop-slot", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Replication slot 'barman' dropped"), "{out}");
    let (code, _, err) = barman(&conf, &["receive-wal", "--drop-slot", "pg"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Replication slot 'barman' does not exist"),
        "{err}"
    );
}

#[test]
fn cron_keeps_one_receive_wal_running_and_stops_it_when_streaming_is_off() {
    let Some(bin) = pg::require() else {
        return;
    };
    let pg = PgCluster::start(&bin, &["--wal-segsize=1"], &["max_replication_slots = 4"]).unwrap();
    let home = pg.dir().join("barman-home");
    std::fs::create_dir_all(&home).unwrap();
    let conf = pg.dir().join("barman.conf");
    let write_conf = |streaming: &str| {
        std::fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {home}\nbarman_lock_directory = {home}\nlog_file = {home}/barman.log\n\n[pg]\nconninfo = host={dir} user=postgres dbname=postgres\nstreaming_conninfo = host={dir} user=postgres\nbackup_method = postgres\narchiver = on\nstreaming_archiver = {streaming}\nslot_name = barman\ncreate_slot = auto\n",
                home = home.display(),
                dir = pg.dir().display()
            ),
        )
        .unwrap();
    };
    write_conf("on");
    let streaming = || {
        pg.sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
            .unwrap()
    };
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Starting streaming archiver for server pg"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while streaming() != "1" {
        assert!(
            Instant::now() < deadline,
            "receive-wal did not start: {}",
            std::fs::read_to_string(home.join("barman.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The slot was created (create_slot = auto).
    assert_eq!(
        pg.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman'")
            .unwrap(),
        "t"
    );
    // The next cron finds it running: no second one.
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("Starting streaming archiver"), "{out}");
    assert_eq!(streaming(), "1");
    // A receive-wal by hand is refused while it runs.
    let (code, _, err) = barman(&conf, &["receive-wal", "pg"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Another receive-wal process is already running for server pg"),
        "{err}"
    );

    // list-processes shows it; terminate-process stops it (SIGINT, as Barman); the
    // next cron starts a new one.
    let pid = listed_receiver_pid(&conf);
    let (code, out, err) = barman(&conf, &["list-processes", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!("Active subprocesses for server pg:\n{pid} receive-wal\n")
    );
    let (code, out, err) = barman(&conf, &["-f", "json", "list-processes", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pg"][0]["pid"], pid, "{out}");
    assert_eq!(v["pg"][0]["name"], "receive-wal", "{out}");
    let (code, out, err) = barman(&conf, &["terminate-process", "pg", "receive-wal"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("Stopped process receive-wal({pid})\n"));
    // Barman's alias.
    let (code, out, _) = barman(&conf, &["list-process", "pg"]);
    assert_eq!(code, 0);
    assert_eq!(out, "No active subprocesses found for server pg.\n");
    let (code, _, err) = barman(&conf, &["terminate-process", "pg", "receive-wal"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Termination of receive-wal failed: no such process for server pg"),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while streaming() != "0" {
        assert!(Instant::now() < deadline, "receive-wal did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Starting streaming archiver for server pg"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while streaming() != "1" {
        assert!(Instant::now() < deadline, "receive-wal did not start again");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(listed_receiver_pid(&conf), pid);

    // streaming_archiver turned off: cron stops it.
    write_conf("off");
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Stopped process receive-wal("), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while streaming() != "0" {
        assert!(Instant::now() < deadline, "receive-wal did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    // And receive-wal itself refuses to run.
    let (code, _, err) = barman(&conf, &["receive-wal", "pg"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("streaming_archiver option set to 'off'"),
        "{err}"
    );
}

/// Positions move between two runs: LSN tokens and lags are compared by shape.
fn normalise(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut words: Vec<String> = Vec::new();
            let mut diff = false;
            for w in l.split(' ') {
                let bare = w.trim_end_matches([')', ':']).trim_start_matches("S:");
                let is_lsn = |t: &str| {
                    t.split_once('/').is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && (a.to_owned() + b).chars().all(|c| c.is_ascii_hexdigit())
                    })
                };
                if l.starts_with("     Sync stage      : ") {
                    // The stage moves with the positions.
                    words = vec!["     Sync stage      : S".into()];
                    break;
                }
                if diff {
                    diff = !w.ends_with(')');
                    if !diff {
                        words.push("D)".into());
                    }
                } else if w == "(diff:" {
                    diff = true;
                    words.push(w.into());
                } else if let Some((k, v)) = bare.split_once(':')
                    && is_lsn(v)
                {
                    words.push(format!("{k}:LSN"));
                } else if is_lsn(bare) {
                    words.push("LSN".into());
                } else {
                    words.push(w.into());
                }
            }
            words.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `replication-status` while receive-wal streams: the client is listed as Barman
/// lists it, and Barman 3.19 itself prints the same (when the oracle is installed).
fn replication_status_as_barman(pg: &PgCluster, conf: &std::path::Path) {
    let (code, full, err) = barman(conf, &["replication-status", "pg"]);
    assert_eq!(code, 0, "{full}{err}");
    for line in [
        "Status of streaming clients for server 'pg':",
        "  Number of streaming clients: 1",
        "  1. Async WAL streamer",
        "     Application name: barman_receive_wal",
        "     Communication   : Unix domain socket",
        "     User name       : postgres",
        "     Current state   : streaming (async)",
        "     Replication slot: barman",
    ] {
        assert!(full.lines().any(|l| l == line), "{line:?} in {full}");
    }
    assert!(full.contains("  Current LSN on master: "), "{full}");
    assert!(full.contains("     Sync stage      : "), "{full}");
    assert!(full.contains("     Flush LSN  : "), "{full}");
    let (code, min, err) = barman(conf, &["replication-status", "--minimal", "pg"]);
    assert_eq!(code, 0, "{min}{err}");
    assert!(
        min.starts_with("Streaming clients for master 'pg' (LSN @ "),
        "{min}"
    );
    assert!(min.contains("  1. W) postgres@socket S:"), "{min}");
    assert!(min.contains(" AN:barman_receive_wal\n"), "{min}");
    let (code, none, _) = barman(
        conf,
        &["replication-status", "--target", "hot-standby", "pg"],
    );
    assert_eq!(code, 0);
    assert!(
        none.contains("  No hot standby servers attached\n"),
        "{none}"
    );
    let (code, json, err) = barman(conf, &["-f", "json", "replication-status", "pg"]);
    assert_eq!(code, 0, "{json}{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = &v["pg"]["streaming_clients"][0];
    assert_eq!(c["application_name"], "barman_receive_wal", "{json}");
    assert_eq!(c["replication_slot"], "barman", "{json}");
    assert_eq!(c["communication"], "Unix domain socket", "{json}");
    assert!(c["wal_sender_pid"].as_i64().is_some(), "{json}");

    // Barman itself, on the same server at the same moment.
    let Some(python) = barman_testkit::tools::oracle_python() else {
        return;
    };
    let user = barman_testkit::tools::run(std::process::Command::new("id").arg("-un"))
        .trim()
        .to_owned();
    let theirs_conf = pg.dir().join("barman-py.conf");
    std::fs::write(
        &theirs_conf,
        std::fs::read_to_string(conf)
            .unwrap()
            .replace("[barman]\n", &format!("[barman]\nbarman_user = {user}\n")),
    )
    .unwrap();
    for args in [
        &["replication-status", "pg"][..],
        &["replication-status", "--minimal", "pg"],
    ] {
        let out = std::process::Command::new(python.with_file_name("barman"))
            .arg("-c")
            .arg(&theirs_conf)
            .args(args)
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{theirs}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, ours, _) = barman(conf, args);
        assert_eq!(
            normalise(&ours),
            normalise(&theirs),
            "ours:\n{ours}\ntheirs:\n{theirs}"
        );
    }
}

/// The PID of the receive-wal of server `pg`, as list-processes reports it.
fn listed_receiver_pid(conf: &std::path::Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = barman(conf, &["list-processes", "pg"]);
        if let Some(pid) = out
            .lines()
            .find_map(|l| l.strip_suffix(" receive-wal"))
            .and_then(|p| p.parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no receive-wal listed: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// WAL streamed from a standby while backups come from the primary
/// (`wal_streaming_conninfo`, as Barman's `get_wal_conninfo`): receive-wal streams from
/// the standby, check runs Barman's ` (WAL streaming)` group on it, and
/// replication-status shows the standby on the primary and receive-wal on the standby.
#[test]
fn wal_streams_from_the_wal_host_with_barmans_wal_streaming_checks() {
    let Some(bin) = pg::require() else {
        return;
    };
    let primary =
        PgCluster::start(&bin, &["--wal-segsize=1"], &["max_replication_slots = 4"]).unwrap();
    let standby = primary.start_standby().unwrap();
    let home = primary.dir().join("barman-home");
    std::fs::create_dir_all(&home).unwrap();
    let conf = primary.dir().join("barman.conf");
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {home}\nbarman_lock_directory = {home}\n\n[pg]\nconninfo = host={p} user=postgres dbname=postgres\nwal_streaming_conninfo = host={s} user=postgres dbname=postgres\nbackup_method = postgres\narchiver = off\nstreaming_archiver = on\nslot_name = barman\ncreate_slot = auto\n",
            home = home.display(),
            p = primary.dir().display(),
            s = standby.dir().display(),
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(BARMAN)
        .arg("-c")
        .arg(&conf)
        .args(["receive-wal", "pg"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while standby
        .sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
        .unwrap()
        != "1"
    {
        assert!(Instant::now() < deadline, "receive-wal did not connect to the standby");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        primary
            .sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
            .unwrap(),
        "0"
    );

    let (code, out, err) = barman(&conf, &["check", "pg"]);
    assert_eq!(code, 1, "no WAL archived yet: {out}{err}");
    for line in [
        "\tPostgreSQL streaming: OK",
        "\thas monitoring privileges (WAL streaming): OK",
        "\tPostgreSQL streaming (WAL streaming): OK",
        "\twal_level (WAL streaming): OK",
        "\tsystemid coherence (WAL streaming): OK (no system Id stored on disk)",
        "\treplication slot (WAL streaming): OK",
        "\treceive-wal running: OK",
    ] {
        assert!(out.contains(&format!("{line}\n")), "{line} in {out}");
    }
    assert!(!out.contains("\treplication slot: "), "{out}");

    // The primary's clients: the standby; the standby's: receive-wal.
    let (code, out, err) = barman(
        &conf,
        &["replication-status", "--target", "hot-standby", "pg"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("  Number of hot standby servers: 1\n"),
        "{out}"
    );
    assert!(out.contains("  1. Async standby\n"), "{out}");
    let (code, out, err) = barman(
        &conf,
        &[
            "replication-status",
            "--source",
            "wal-host",
            "--minimal",
            "pg",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("Configuration overrides applied: 'streaming_conninfo' overridden with"),
        "{out}"
    );
    assert!(out.contains(" AN:barman_receive_wal\n"), "{out}");

    // WAL written on the primary reaches streaming/ through the standby.
    primary
        .sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g")
        .unwrap();
    let switched = primary
        .sql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    let streamed = home.join("pg/streaming").join(&switched);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !streamed.is_file() {
        assert!(
            Instant::now() < deadline,
            "{switched} not streamed from the standby"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out, err) = barman(&conf, &["receive-wal", "--stop", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let status = child.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains(
            "Configuration overrides applied: 'streaming_conninfo' overridden with 'host="
        ),
        "{log}"
    );
}
