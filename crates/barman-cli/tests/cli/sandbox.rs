//! `barman sandbox`: restore tests of backups of a real PostgreSQL 15 (data checksums
//! on), each checked by what its dump holds, by the processes and directories left
//! afterwards, and by the repository's bytes before and after.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::recover::Site;
use crate::support::{barman_as_server, barman_as_server_cmd};

/// Every file and directory under `dir` (but the sandbox's record): its mode, size
/// and a hash of its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == "sandbox.json") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let key = p.strip_prefix(dir).unwrap().display().to_string();
            let mut h = std::hash::DefaultHasher::new();
            if m.is_dir() {
                stack.push(p.clone());
            } else if m.is_file() {
                std::fs::read(&p).unwrap().hash(&mut h);
            }
            out.insert(key, (m.permissions().mode(), m.len(), h.finish()));
        }
    }
    out
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

/// The ids of the rows of table `t` in a plain SQL dump.
fn dumped_ids(dump: &str) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut inside = false;
    for line in dump.lines() {
        if line.starts_with("COPY public.t ") {
            inside = true;
        } else if inside && line == "\\." {
            inside = false;
        } else if inside {
            ids.push(line.split('\t').next().unwrap().parse().unwrap());
        }
    }
    ids.sort_unstable();
    ids
}

fn sandbox(site: &Site, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["-f", "json", "sandbox"];
    all.extend_from_slice(args);
    let (code, out, err) = barman_as_server(&site.conf, &all);
    let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, json, err)
}

fn backup(site: &Site) {
    let (code, out, err) = barman_as_server(&site.conf, &["backup", "--wait", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {report:#}"))
}

/// The latest backup and all the WAL archived after it: the copy answers, every check
/// passes, the dump holds every row committed and archived, the command sees the
/// copy, and afterwards nothing is left (directory, process) and the repository is
/// byte for byte what it was.
#[test]
fn sandbox_of_the_latest_backup_dumps_every_committed_row_and_leaves_no_trace() {
    let Some(site) = Site::start_with(&["--data-checksums"], "postgres") else {
        return;
    };
    site.insert(1, 1000);
    backup(&site);
    site.insert(1001, 2500);
    site.switch_and_wait();
    let repo = site.home.join("pg");
    let before = snapshot(&repo);

    let dir = site.dest("sandbox-latest");
    let dump = site.dest("latest.sql");
    let probe = site.dest("probe.out");
    let command = format!("psql -XAtc 'SELECT count(*) FROM t' > {}", probe.display());
    let (code, report, err) = sandbox(
        &site,
        &[
            "--directory",
            dir.to_str().unwrap(),
            "--dump",
            dump.to_str().unwrap(),
            "--command",
            &command,
            "pg",
            "latest",
        ],
    );
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["passed"], true, "{report:#}");
    for name in [
        "restore", "start", "amcheck", "read", "command", "dump", "stop",
    ] {
        assert_eq!(
            step(&report, name)["outcome"],
            "passed",
            "{name}: {report:#}"
        );
    }
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0);
    assert!(
        step(&report, "read")["detail"]
            .as_str()
            .unwrap()
            .contains("relations of"),
        "{report:#}"
    );
    // Every committed (and archived) row, once.
    let text = std::fs::read_to_string(&dump).unwrap();
    assert_eq!(dumped_ids(&text), (1..=2500).collect::<Vec<_>>());
    assert_eq!(
        std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&probe).unwrap().trim(), "2500");
    // Nothing left behind, nothing changed.
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert_eq!(
        processes_mentioning(dir.to_str().unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(snapshot(&repo), before, "the repository changed");
    // The outcome is recorded, and check reports it once asked to.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("sandbox.json")).unwrap()).unwrap();
    assert_eq!(record["passed"], true);
    let conf = std::fs::read_to_string(&site.conf).unwrap();
    std::fs::write(&site.conf, format!("{conf}sandbox_maximum_age = 1 DAYS\n")).unwrap();
    let (_, out, _) = barman_as_server(&site.conf, &["check", "pg"]);
    assert!(
        out.contains("\trestore test: OK (last restore test"),
        "{out}"
    );
}

/// A target time: the copy holds exactly the rows committed before it.
#[test]
fn sandbox_to_a_target_time_holds_exactly_the_rows_committed_before_it() {
    let Some(site) = Site::start_with(&["--data-checksums"], "postgres") else {
        return;
    };
    site.insert(1, 100);
    backup(&site);
    site.insert(101, 200);
    std::thread::sleep(Duration::from_millis(1100));
    let target = site.pg.sql("SELECT clock_timestamp()").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    site.insert(201, 300);
    site.switch_and_wait();
    let dump = site.dest("pitr.dump");
    let (code, report, err) = sandbox(
        &site,
        &[
            "--target-time",
            &target,
            "--dump",
            dump.to_str().unwrap(),
            "--no-amcheck",
            "pg",
            "latest",
        ],
    );
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert!(
        report["target"].as_str().unwrap().contains("time"),
        "{report:#}"
    );
    assert_eq!(step(&report, "start")["outcome"], "passed");
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "amcheck")
    );
    let text = std::fs::read_to_string(&dump).unwrap();
    assert_eq!(dumped_ids(&text), (1..=200).collect::<Vec<_>>());
    // The default directory (under the temporary directory) is gone too.
    let dir = PathBuf::from(report["directory"].as_str().unwrap());
    assert!(!dir.exists(), "{} is still there", dir.display());
}

/// A data page of the stored backup damaged (checksums on): the sandbox fails, naming
/// the relation and the block, stops and removes its copy, and records the failure.
#[test]
fn a_damaged_page_in_the_backup_fails_the_sandbox_with_relation_and_block() {
    let Some(site) = Site::start_with(&["--data-checksums"], "postgres") else {
        return;
    };
    site.insert(1, 100);
    site.pg
        .sql("CREATE TABLE victim AS SELECT g AS id, repeat('x', 100) AS v FROM generate_series(1, 5000) g")
        .unwrap();
    // Hint bits set and frozen now, so that nothing after the backup writes the page
    // again (no full-page image would repair it).
    site.pg.sql("VACUUM FREEZE victim").unwrap();
    site.pg.sql("CHECKPOINT").unwrap();
    let file = site
        .pg
        .sql("SELECT pg_relation_filepath('victim')")
        .unwrap();
    backup(&site);
    site.switch_and_wait();
    let base = site.home.join("pg/base");
    let id = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .max()
        .unwrap();
    let stored = base.join(&id).join("data").join(&file);
    let mut bytes = std::fs::read(&stored).unwrap();
    for b in &mut bytes[4000..4016] {
        *b ^= 0xff;
    }
    std::fs::write(&stored, &bytes).unwrap();

    let dir = site.dest("sandbox-damaged");
    let (code, report, err) = sandbox(
        &site,
        &["--directory", dir.to_str().unwrap(), "pg", "latest"],
    );
    assert_eq!(code, 1, "{report:#}\n{err}");
    assert_eq!(report["passed"], false);
    let read = step(&report, "read");
    assert_eq!(read["outcome"], "failed", "{report:#}");
    let findings: Vec<&str> = read["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        findings.iter().any(|f| f.contains("relation public.victim")
            && f.contains("invalid page in block 0")
            && f.contains(&file)),
        "{findings:?}"
    );
    assert_eq!(step(&report, "amcheck")["outcome"], "failed", "{report:#}");
    assert_eq!(step(&report, "stop")["outcome"], "passed", "{report:#}");
    assert!(!dir.exists());
    assert_eq!(
        processes_mentioning(dir.to_str().unwrap()),
        Vec::<String>::new()
    );
    let conf = std::fs::read_to_string(&site.conf).unwrap();
    std::fs::write(&site.conf, format!("{conf}sandbox_maximum_age = 1 DAYS\n")).unwrap();
    let (_, out, _) = barman_as_server(&site.conf, &["check", "pg"]);
    assert!(
        out.contains("\trestore test: FAILED (last restore test"),
        "{out}"
    );
}

/// SIGTERM while the copy runs (a command is sleeping): the copy is stopped, the
/// directory removed, the command's children killed, and the exit is non-zero.
#[test]
fn an_interrupted_sandbox_leaves_no_process_and_no_directory() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    site.insert(1, 100);
    backup(&site);
    let dir = site.dest("sandbox-interrupted");
    let marker = site.dest("command-started");
    let command = format!("touch {} && sleep 300", marker.display());
    let mut child = barman_as_server_cmd(
        &site.conf,
        &[
            "sandbox",
            "--directory",
            dir.to_str().unwrap(),
            "--no-amcheck",
            "--command",
            &command,
            "pg",
            "latest",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        assert!(child.try_wait().unwrap().is_none(), "barman exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!processes_mentioning(dir.to_str().unwrap()).is_empty());
    // The barman process itself (under runuser when root).
    let me = processes_mentioning(dir.to_str().unwrap())
        .into_iter()
        .filter(|p| p.contains(" sandbox ") && !p.contains("runuser"))
        .filter_map(|p| p.split(':').next().map(str::to_owned))
        .collect::<Vec<_>>();
    assert_eq!(me.len(), 1, "{me:?}");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &me[0]])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was interrupted"), "{err}");
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert_eq!(
        processes_mentioning(dir.to_str().unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(processes_mentioning("sleep 300"), Vec::<String>::new());
}

/// `sandbox_schedule`: cron starts a restore test of the latest backup in the
/// background, records it, and does not start another while the last one is fresh;
/// `check` reports it.
#[test]
fn cron_runs_the_scheduled_restore_test_once_per_period() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    site.insert(1, 100);
    backup(&site);
    let conf = std::fs::read_to_string(&site.conf).unwrap();
    std::fs::write(&site.conf, format!("{conf}sandbox_schedule = 1 DAYS\n")).unwrap();
    let (_, out, _) = barman_as_server(&site.conf, &["check", "pg"]);
    assert!(
        out.contains("\trestore test: FAILED (no restore test yet"),
        "{out}"
    );
    let (code, out, err) = barman_as_server(&site.conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Starting restore test (sandbox) of server pg"),
        "{out}"
    );
    let record = site.home.join("pg/sandbox.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !record.exists() {
        assert!(Instant::now() < deadline, "no sandbox.json after cron");
        std::thread::sleep(Duration::from_millis(200));
    }
    let first = std::fs::read_to_string(&record).unwrap();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["passed"], true, "{first}");
    // Fresh: the next cron starts none.
    let (code, out, err) = barman_as_server(&site.conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("Starting restore test"), "{out}");
    let (_, out, _) = barman_as_server(&site.conf, &["check", "pg"]);
    assert!(
        out.contains("\trestore test: OK (last restore test"),
        "{out}"
    );
    // Nothing of the scheduled sandbox is left.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_mentioning("--scheduled").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the scheduled sandbox still runs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        processes_mentioning("barman-sandbox-pg-"),
        Vec::<String>::new()
    );
}

/// `--keep`: the copy is left running after the checks; the printed commands connect
/// to it and then stop and remove it.
#[test]
fn a_kept_sandbox_runs_until_its_printed_cleanup() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    site.insert(1, 42);
    backup(&site);
    let dir = site.dest("sandbox-kept");
    let (code, report, err) = sandbox(
        &site,
        &[
            "--directory",
            dir.to_str().unwrap(),
            "--keep",
            "pg",
            "latest",
        ],
    );
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["kept"], true);
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "stop")
    );
    let run = |line: &str| {
        let mut cmd = if barman_testkit::tools::is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", line]);
            c
        } else {
            let mut c = std::process::Command::new("sh");
            c.args(["-c", line]);
            c
        };
        cmd.output().unwrap()
    };
    let connect = report["connect_command"].as_str().unwrap();
    let out = run(&format!("{connect} -XAtc 'SELECT count(*) FROM t'"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{out:?}");
    assert!(!processes_mentioning(dir.to_str().unwrap()).is_empty());
    let cleanup = report["cleanup_command"].as_str().unwrap();
    let out = run(cleanup);
    assert!(out.status.success(), "{cleanup}: {out:?}");
    assert!(!dir.exists());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_mentioning(dir.to_str().unwrap()).is_empty() {
        assert!(Instant::now() < deadline, "the kept copy still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
}
