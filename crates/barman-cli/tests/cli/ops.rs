//! The log file (`log_file`, `log_level`, `log_format`, `--log-level`, `-d`) and
//! `diagnose`, without a server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::barman;

fn write_conf(dir: &Path, global_extra: &str) -> std::path::PathBuf {
    write_conf_with(dir, global_extra, "")
}

fn write_conf_with(dir: &Path, global_extra: &str, servers_extra: &str) -> std::path::PathBuf {
    // A new file each time: a test compares runs with different configurations.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let conf = dir.join(format!("barman-{n}.conf"));
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {home}\n{global_extra}\n[pg]\ndescription = \"test\"\nconninfo = host=/nonexistent user=barman password=hunter2\nstreaming_conninfo = postgresql://barman:hunter2@pg/db\nbackup_method = postgres\narchiver = on\n\n[quiet]\nconninfo = host=/nonexistent user=barman\nbackup_method = postgres\narchiver = on\n{servers_extra}",
            home = dir.join("home").display()
        ),
    )
    .unwrap();
    conf
}

/// `YYYY-MM-DD HH:MM:SS,mmm [PID] NAME LEVEL: MESSAGE`, split into its parts.
fn parse_line(line: &str) -> (String, u32, String, String, String) {
    let b = line.as_bytes();
    assert!(line.len() > 26, "{line}");
    for (i, c) in b[..23].iter().enumerate() {
        let want = match i {
            4 | 7 => Some(b'-'),
            10 => Some(b' '),
            13 | 16 => Some(b':'),
            19 => Some(b','),
            _ => None,
        };
        match want {
            Some(w) => assert_eq!(*c, w, "{line}"),
            None => assert!(c.is_ascii_digit(), "{line}"),
        }
    }
    let rest = line[23..].strip_prefix(" [").expect(line);
    let (pid, rest) = rest.split_once("] ").expect(line);
    let (name, rest) = rest.split_once(' ').expect(line);
    let (level, message) = rest.split_once(": ").expect(line);
    (
        line[..23].to_owned(),
        pid.parse().expect(line),
        name.to_owned(),
        level.to_owned(),
        message.to_owned(),
    )
}

fn log_lines(path: &Path) -> Vec<(String, u32, String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(parse_line)
        .collect()
}

#[test]
fn every_run_appends_barman_format_lines_at_the_configured_level() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/sub/barman.log");
    let plain = write_conf(dir.path(), "");
    let conf = write_conf(
        dir.path(),
        &format!("log_file = {}\nlog_level = INFO\n", log.display()),
    );
    // Console output is the same with and without a log file.
    let without = barman(&plain, &["list-servers"]);
    let with = barman(&conf, &["list-servers"]);
    assert_eq!(without, with);
    assert_eq!(with.0, 0);
    // The file and its directory are created; the file is private.
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0].2.as_str(), lines[0].3.as_str()),
        ("barman.cli", "INFO")
    );
    assert!(lines[0].4.contains("list-servers"), "{lines:?}");
    assert!(lines[1].4.contains("exit code 0"), "{lines:?}");
    assert_eq!(lines[0].1, lines[1].1);

    // Errors at ERROR, the failure at INFO; appended after the first run's lines.
    let (code, _, err) = barman(&conf, &["get-wal", "pg", "not-a-wal"]);
    assert_eq!(code, 3);
    assert_eq!(err.lines().count(), 1, "{err}");
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_ne!(lines[2].1, lines[0].1, "another process");
    assert_eq!(
        (lines[3].2.as_str(), lines[3].3.as_str()),
        ("barman.server", "ERROR")
    );
    assert!(lines[3].4.contains("not-a-wal"), "{lines:?}");
    assert!(lines[4].4.contains("exit code 3"), "{lines:?}");

    // Warnings at WARNING: a file rebuild-xlogdb skips.
    let hash = dir.path().join("home/pg/wals/0000000100000000");
    std::fs::create_dir_all(&hash).unwrap();
    std::fs::write(hash.join("junk"), b"x").unwrap();
    let (code, out, err) = barman(&conf, &["rebuild-xlogdb", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.starts_with("WARNING: "), "{err}");
    let lines = log_lines(&log);
    let warn: Vec<_> = lines.iter().filter(|l| l.3 == "WARNING").collect();
    assert_eq!(warn.len(), 1, "{lines:?}");
    assert_eq!(warn[0].2, "barman.backup");
    assert!(warn[0].4.contains("junk"), "{lines:?}");
    // The console messages of the command are logged at INFO too.
    assert!(
        lines
            .iter()
            .any(|l| l.3 == "INFO" && l.4.starts_with("Rebuilding xlogdb for server pg")),
        "{lines:?}"
    );

    // --log-level overrides log_level: ERROR keeps only errors…
    let before = log_lines(&log).len();
    assert_eq!(
        barman(&conf, &["--log-level", "ERROR", "list-servers"]).0,
        0
    );
    assert_eq!(log_lines(&log).len(), before);
    barman(&conf, &["--log-level", "ERROR", "get-wal", "pg", "nope"]);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), before + 1, "{lines:?}");
    assert_eq!(lines[before].3, "ERROR");
    // …DEBUG adds the start-up line; -d prints DEBUG messages on the console.
    let (code, out, err) = barman(&conf, &["--log-level", "DEBUG", "-d", "list-servers"]);
    assert_eq!(code, 0);
    assert_eq!(out, with.1);
    assert!(err.starts_with("DEBUG: Initialised barman-rs"), "{err}");
    let lines = log_lines(&log);
    assert!(
        lines[before + 1..]
            .iter()
            .any(|l| l.3 == "DEBUG" && l.4.starts_with("Initialised barman-rs version")),
        "{lines:?}"
    );
    // An unknown --log-level is a usage error.
    assert_eq!(barman(&conf, &["--log-level", "LOUD", "list-servers"]).0, 2);

    // Configuration warnings (no archiver: Barman forces it on) at WARNING.
    let conf = write_conf_with(
        dir.path(),
        &format!("log_file = {}\n", log.display()),
        "\n[noarch]\nconninfo = host=/nonexistent user=barman\nbackup_method = postgres\n",
    );
    let before = log_lines(&log).len();
    let (code, _, err) = barman(&conf, &["list-servers"]);
    assert_eq!(code, 0, "{err}");
    let lines = log_lines(&log);
    let config: Vec<_> = lines[before..]
        .iter()
        .filter(|l| l.2 == "barman.config")
        .collect();
    assert!(!config.is_empty(), "{lines:?}");
    assert!(config.iter().all(|l| l.3 == "WARNING"), "{lines:?}");
    assert!(config.iter().any(|l| l.4.contains("'noarch'")), "{lines:?}");
}

#[test]
fn log_level_number_and_custom_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("barman.log");
    let conf = write_conf(
        dir.path(),
        &format!(
            // Barman interpolates twice (each file, then the merged configuration):
            // `%%%%` in the file is one `%` for the log format.
            "log_file = {}\nlog_level = 30\nlog_format = %%%%(levelname)-8s|%%%%(name)s|%%%%(process)d|%%%%(message)s\n",
            log.display()
        ),
    );
    assert_eq!(barman(&conf, &["list-servers"]).0, 0);
    // Level 30 = WARNING: nothing from a successful list-servers.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    assert_eq!(barman(&conf, &["get-wal", "pg", "bad"]).0, 3);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().next().unwrap();
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts[0], "ERROR   ", "{line}");
    assert_eq!(parts[1], "barman.server", "{line}");
    assert!(parts[2].parse::<u32>().is_ok(), "{line}");
    assert!(parts[3].contains("'bad'"), "{line}");
}

#[test]
fn a_log_file_that_cannot_be_opened_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let log = dir.path().join("is-a-dir");
    std::fs::create_dir(&log).unwrap();
    let plain = write_conf(dir.path(), "");
    let expected = barman(&plain, &["list-servers"]);
    let conf = write_conf(dir.path(), &format!("log_file = {}\n", log.display()));
    let (code, out, err) = barman(&conf, &["list-servers"]);
    assert_eq!(code, 0);
    assert_eq!(out, expected.1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("WARNING: "), "{err}");
}

#[test]
fn diagnose_prints_barmans_document_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), "");
    let (code, out, err) = barman(&conf, &["diagnose"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter2"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["global", "servers", "models"] {
        assert!(v[key].is_object(), "{key} in {out}");
    }
    assert!(v["global"]["config"]["errors_list"].is_array());
    let si = &v["global"]["system_info"];
    for key in [
        "release",
        "kernel_ver",
        "python_ver",
        "rsync_ver",
        "ssh_ver",
        "barman_ver",
        "timestamp",
    ] {
        assert!(si[key].is_string(), "{key} in {si}");
    }
    assert_eq!(si["barman_ver"], env!("CARGO_PKG_VERSION"));
    for server in ["pg", "quiet"] {
        let s = &v["servers"][server];
        for key in [
            "config",
            "msg_list",
            "active_model",
            "status",
            "backups",
            "wals",
        ] {
            assert!(s.get(key).is_some(), "{server}.{key} in {s}");
        }
        assert_eq!(s["config"]["name"], server);
        assert!(s["status"]["connection_error"].is_string(), "{s}");
        assert!(s["wals"]["last_archived_wal_per_timeline"].is_object());
    }
    assert_eq!(
        v["servers"]["pg"]["config"]["conninfo"],
        "host=/nonexistent user=barman password=********"
    );
    assert_eq!(
        v["servers"]["pg"]["config"]["streaming_conninfo"],
        "postgresql://barman:********@pg/db"
    );
    // --show-config-source: every value with the file that sets it.
    let (code, out, _) = barman(&conf, &["diagnose", "--show-config-source"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let conninfo = &v["servers"]["pg"]["config"]["conninfo"];
    assert_eq!(conninfo["source"], conf.display().to_string());
    assert!(
        conninfo["value"]
            .as_str()
            .unwrap()
            .ends_with("password=********")
    );
    assert!(v["servers"]["pg"]["config"]["archiver_batch_size"]["source"].is_null());
}
