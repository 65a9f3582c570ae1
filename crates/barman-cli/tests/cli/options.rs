//! Trust, point 14: options accepted and then ignored are implemented, against a real
//! PostgreSQL 15: copy retries, the keepalive of the backup's session, rsync's network
//! compression and per-tablespace bandwidth limits, and `barman_user`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use barman_testkit::tools::{is_root, require_root};

use crate::recover::Site;
use crate::support::{BARMAN, barman, barman_as_server, barman_as_server_cmd};

/// A program in a new directory of the site that logs its arguments to `log` and runs
/// `then` (a shell fragment).
fn wrapper(site: &Site, name: &str, then: &str) -> (PathBuf, PathBuf) {
    let bin = site.pg.dir().join(format!("wrapped-{name}"));
    std::fs::create_dir_all(&bin).unwrap();
    let log = site.pg.dir().join(format!("{name}.calls"));
    let path = bin.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\n{then}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    (bin, log)
}

fn add_to_server(site: &Site, lines: &str) {
    let mut conf = std::fs::read_to_string(&site.conf).unwrap();
    conf.push_str(lines);
    std::fs::write(&site.conf, conf).unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
}

/// `basebackup_retry_times` and `--retry-times`/`--retry-sleep`/`--no-retry` were
/// accepted and ignored: a failed copy is now tried again.
#[test]
fn a_failed_copy_is_tried_again() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    let real = barman_testkit::bin_dir().unwrap().join("pg_basebackup");
    // Fails once (the marker file tells), then runs the real pg_basebackup.
    let marker = site.pg.dir().join("failed-once");
    let (bin, log) = wrapper(
        &site,
        "pg_basebackup",
        &format!(
            "if [ ! -e {m} ]; then touch {m}; echo 'pg_basebackup: error: connection lost' >&2; exit 1; fi\nexec {} \"$@\"",
            real.display(),
            m = marker.display()
        ),
    );
    add_to_server(
        &site,
        &format!(
            "path_prefix = {}\nbasebackup_retry_sleep = 0\n",
            bin.display()
        ),
    );
    site.insert(1, 10);
    // --no-retry: the first failure is final.
    let (code, out, err) = barman_as_server(&site.conf, &["backup", "pg", "--no-retry"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("connection lost"), "{err}");
    std::fs::remove_file(&marker).unwrap();
    // --retry-times 1: tried again, DONE, and the admin is told.
    let (code, out, err) = barman_as_server(
        &site.conf,
        &[
            "backup",
            "pg",
            "--retry-times",
            "1",
            "--wait",
            "--wait-timeout",
            "60",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("(attempt 1)"), "{err}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().count(), 3, "{calls}");
    let (_, listed, _) = barman(&site.conf, &["list-backups", "pg"]);
    let failed = listed.lines().filter(|l| l.ends_with("FAILED")).count();
    assert_eq!((listed.lines().count(), failed), (2, 1), "{listed}");
}

/// `keepalive_interval` was accepted and ignored: the backup's session now gets a
/// query every interval while files are copied, and a lost connection fails the
/// backup at once instead of at its end.
#[test]
fn the_backup_session_is_kept_alive_and_its_loss_seen() {
    let Some(site) = Site::start_with(&[], "local-rsync") else {
        return;
    };
    site.pg
        .sql("ALTER SYSTEM SET log_statement = 'all'")
        .unwrap();
    site.pg.sql("SELECT pg_reload_conf()").unwrap();
    add_to_server(&site, "keepalive_interval = 1\n");
    site.insert(1, 10);
    // A copy slowed down to a few seconds.
    let (code, out, err) = barman_as_server(
        &site.conf,
        &[
            "backup",
            "pg",
            "--bwlimit",
            "8000",
            "--wait",
            "--wait-timeout",
            "60",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let pings = site.pg.server_log().matches("statement: SELECT 1").count();
    assert!(
        pings >= 2,
        "{pings} keepalive queries\n{}",
        site.pg.server_log()
    );

    // The session killed during the copy: the backup fails now, saying why.
    std::thread::sleep(Duration::from_millis(1100));
    let child = barman_as_server_cmd(&site.conf, &["backup", "pg", "--bwlimit", "2000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Started (its backup.info says so): the copy is under way.
    let started = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("status=STARTED"))
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started(&site.home.join("pg/meta")) {
        assert!(Instant::now() < deadline, "the backup did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    site.pg
        .sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'barman_backup'")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Connection to the Postgres server was lost during the backup"),
        "{err}"
    );
}

/// `network_compression` (rsync backups) and `tablespace_bandwidth_limit` were
/// accepted and ignored: rsync now gets `-z`, and each tablespace its own limit.
#[test]
fn rsync_backups_compress_and_limit_each_tablespace() {
    let Some(site) = Site::start_with(&[], "local-rsync") else {
        return;
    };
    if !barman_testkit::tools::require("rsync", barman_testkit::tools::which("rsync").is_some()) {
        return;
    }
    let Some(sshd) = barman_testkit::Sshd::start() else {
        return;
    };
    site.tablespace("tbs");
    site.pg
        .sql("CREATE TABLE u TABLESPACE tbs AS SELECT 1 AS a")
        .unwrap();
    let real = barman_testkit::tools::which("rsync").unwrap();
    let (bin, log) = wrapper(&site, "rsync", &format!("exec {} \"$@\"", real.display()));
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        site.pg.dir().display()
    );
    add_to_server(
        &site,
        &format!(
            "\n[pgr]\nconninfo = {conninfo}\nbackup_method = rsync\nssh_command = {}\narchiver = on\nimmediate_checkpoint = true\nnetwork_compression = on\nbandwidth_limit = 50000\ntablespace_bandwidth_limit = tbs:40000\n",
            sshd.ssh_command()
        ),
    );
    site.pg
        .sql(&format!(
            "ALTER SYSTEM SET archive_command TO '{BARMAN} -q -c {c} put-wal pg %p && {BARMAN} -q -c {c} put-wal pgr %p'",
            c = site.conf.display()
        ))
        .unwrap();
    site.pg.sql("SELECT pg_reload_conf()").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(BARMAN)
        .env("PATH", path)
        .arg("-c")
        .arg(&site.conf)
        .args(["backup", "pgr"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let copies: Vec<&str> = calls
        .lines()
        .filter(|l| !l.contains("--list-only"))
        .collect();
    assert!(copies.iter().all(|l| l.contains("-z")), "{calls}");
    let data = copies
        .iter()
        .filter(|l| l.contains("--bwlimit=50000"))
        .count();
    let tbs = copies
        .iter()
        .filter(|l| l.contains("--bwlimit=40000"))
        .count();
    assert!(data > 0 && tbs > 0, "{calls}");
    assert!(
        copies
            .iter()
            .filter(|l| l.contains("--bwlimit=40000"))
            .all(|l| l.contains("/tbs")),
        "{calls}"
    );
}

/// `barman_user` was never checked. Set, it is enforced as Barman does: its own user
/// runs; another user is refused; root switches to it.
#[test]
fn barman_user_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = dir.path().join("home");
    let conf = |user: &str| {
        let path = dir.path().join(format!("{user}.conf"));
        std::fs::write(
            &path,
            format!(
                "[barman]\nbarman_home = {}\nbarman_user = {user}\nlock_directory_cleanup = off\n[pg]\nconninfo = host=pg\nbackup_method = postgres\nstreaming_conninfo = host=pg\narchiver = on\n",
                home.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    };
    let me = barman_testkit::tools::run(Command::new("id").arg("-un"))
        .trim()
        .to_owned();
    let (code, out, err) = barman(&conf(&me), &["list-servers"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = barman(&conf("no-such-user-barman-rs"), &["list-servers"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("'no-such-user-barman-rs' does not exist"),
        "{err}"
    );
    if !is_root() {
        let (code, _, err) = barman(&conf("root"), &["list-servers"]);
        assert_eq!(code, 1);
        assert_eq!(err.trim(), "ERROR: please run barman as 'root' user");
    }
    if require_root("switching to barman_user") {
        // Run as postgres, a barman_user of root is refused.
        let (code, _, err) = barman_as_server(&conf("root"), &["list-servers"]);
        assert_eq!(code, 1);
        assert_eq!(err.trim(), "ERROR: please run barman as 'root' user");
        // Run as root, barman switches to postgres: what it creates is postgres's.
        std::fs::create_dir(&home).unwrap();
        barman_testkit::tools::run(Command::new("chown").arg("postgres:").arg(&home));
        let (code, out, err) = barman(&conf("postgres"), &["cron"]);
        assert_eq!(code, 0, "{out}{err}");
        let lock = home.join(".pg-cron.lock");
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(&lock).unwrap().uid();
        let postgres: u32 = barman_testkit::tools::run(Command::new("id").args(["-u", "postgres"]))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(owner, postgres);
    }
}
