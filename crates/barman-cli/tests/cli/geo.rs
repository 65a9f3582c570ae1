//! Geo-redundancy: a passive node follows a primary Barman host over ssh (the test's
//! sshd on 127.0.0.1, whose sessions find `barman` and the primary's configuration
//! through `SetEnv`), copies its backups and WAL, and recovers from them; the same
//! against Barman 3.19 as the primary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use barman_testkit::Sshd;

use crate::recover::{Copy, DIGEST, Site};
use crate::support::{BARMAN, barman, barman_as_server};

/// The directory of the `barman` under test, for the remote sessions' PATH.
fn bin_dir() -> String {
    Path::new(BARMAN).parent().unwrap().display().to_string()
}

/// A passive node's configuration in `dir`, following server `pg` over `sshd`.
fn passive_conf(dir: &Path, sshd: &Sshd) -> PathBuf {
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let conf = dir.join("passive.conf");
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {home}\nlog_file = {dir}/barman.log\n\n[pg]\ndescription = passive copy\nprimary_ssh_command = {ssh}\ncompression = gzip\n",
            home = dir.join("home").display(),
            dir = dir.display(),
            ssh = sshd.ssh_command()
        ),
    )
    .unwrap();
    conf
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 120 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_passive_node_follows_its_primary_and_recovers_from_it() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    if !barman_testkit::tools::require("rsync", barman_testkit::tools::which("rsync").is_some()) {
        return;
    }
    let primary_conf = site.conf.display().to_string();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir());
    let Some(sshd) = Sshd::start_with_env(&[
        ("PATH", path.as_str()),
        ("BARMAN_CONFIG_FILE", primary_conf.as_str()),
    ]) else {
        return;
    };
    site.insert(1, 100);
    let (code, out, err) = barman_as_server(&site.conf, &["backup", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    site.insert(101, 300);
    site.switch_and_wait();
    let expected = site.digest();

    let dir = site.pg.dir().join("passive");
    let conf = passive_conf(&dir, &sshd);

    // sync-info on the primary, and through the passive node (--primary).
    let (code, out, err) = barman_as_server(&site.conf, &["sync-info", "pg"]);
    assert_eq!(code, 0, "{err}");
    let info = json(&out);
    assert!(
        out.starts_with("{\n    \""),
        "Barman's 4-space indent: {out}"
    );
    let ids: Vec<String> = info["backups"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(ids.len(), 1, "{out}");
    let id = ids[0].clone();
    assert_eq!(info["backups"][&id]["status"], "DONE");
    assert_eq!(info["config"]["name"], "pg");
    assert!(!info["wals"].as_array().unwrap().is_empty());
    let (code, out, err) = barman(&conf, &["sync-info", "--primary", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["backups"], info["backups"]);
    assert!(dir.join("home/pg/primary.info").is_file());
    // From a position: only what follows; a position the primary does not know: exit 1.
    let last = info["last_name"].as_str().unwrap();
    let pos = info["last_position"].to_string();
    let (code, out, err) = barman_as_server(&site.conf, &["sync-info", "pg", last, &pos]);
    assert_eq!(code, 0, "{err}");
    assert!(json(&out)["wals"].as_array().unwrap().is_empty(), "{out}");
    let (code, _, err) = barman_as_server(
        &site.conf,
        &["sync-info", "pg", "00000001000000FF00000000", "0"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("is newer than the last available wal"),
        "{err}"
    );

    // Barman's own sync-info of the same repository says the same.
    if let Some(python) = barman_testkit::tools::oracle_python() {
        let user = barman_testkit::tools::run(Command::new("id").arg("-un"))
            .trim()
            .to_owned();
        let theirs_conf = site.pg.dir().join("barman-py.conf");
        let text = std::fs::read_to_string(&site.conf).unwrap();
        std::fs::write(
            &theirs_conf,
            text.replace("[barman]\n", &format!("[barman]\nbarman_user = {user}\n")),
        )
        .unwrap();
        let out = Command::new(python.with_file_name("barman"))
            .arg("-c")
            .arg(&theirs_conf)
            .args(["sync-info", "pg"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = json(&String::from_utf8_lossy(&out.stdout));
        for key in ["last_position", "last_name", "wals"] {
            assert_eq!(info[key], theirs[key], "{key}");
        }
        let (ours_b, theirs_b) = (&info["backups"][&id], &theirs["backups"][&id]);
        for (k, v) in theirs_b.as_object().unwrap() {
            assert_eq!(&ours_b[k], v, "backup field {k}");
        }
        for k in [
            "name",
            "basebackups_directory",
            "wals_directory",
            "compression",
        ] {
            assert_eq!(info["config"][k], theirs["config"][k], "config {k}");
        }
    }

    // check tries the ssh connection to the primary, as Barman's passive executor.
    let (_, out, _) = barman(&conf, &["check", "pg"]);
    assert!(out.contains("\tssh: OK (Barman primary node)"), "{out}");
    // A passive node takes no backup of its own.
    let (code, _, err) = barman(&conf, &["backup", "pg"]);
    assert_eq!(code, 1, "{err}");

    // cron starts sync-backup; once the backup is here, sync-wals brings the WAL.
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Starting copy of backup {id} for server pg")),
        "{out}"
    );
    let status = || {
        let (_, out, _) = barman(&conf, &["-f", "json", "list-backups", "pg"]);
        out
    };
    wait_until("the backup synced", || status().contains("DONE"));
    let info_file = dir.join(format!("home/pg/meta/{id}-backup.info"));
    let text = std::fs::read_to_string(&info_file).unwrap();
    assert!(text.contains("status=DONE"), "{text}");
    let (code, out, err) = barman(&conf, &["sync-wals", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(dir.join("home/pg/wals/sync-wals.info").is_file());
    let (code, out, err) = barman(&conf, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "{out}{err}");
    // Nothing more to do.
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("No backup synchronisation required for server pg"),
        "{out}"
    );
    assert!(
        out.contains("No WAL synchronisation required for server pg"),
        "{out}"
    );

    // The passive node recovers the primary's backup with its WAL.
    let dest = site.dest("from-passive");
    let (code, out, err) = barman(&conf, &["recover", "pg", &id, &dest.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let copy = Copy::start(&site, &dest, true);
    copy.wait_replayed();
    assert_eq!(copy.sql(DIGEST), expected);
    drop(copy);

    // Barman 3.19 as the primary, over the same repository: our passive node reads its
    // sync-info and copies the backup.
    if let Some(python) = barman_testkit::tools::oracle_python() {
        let venv = python.parent().unwrap().display().to_string();
        let theirs_conf = site.pg.dir().join("barman-py-primary.conf");
        let text = std::fs::read_to_string(&site.conf).unwrap();
        std::fs::write(
            &theirs_conf,
            text.replace(
                "[barman]\n",
                &format!("[barman]\nbarman_user = {}\n", sshd.user),
            ),
        )
        .unwrap();
        site.pg.give_to_server_user(&theirs_conf).unwrap();
        let path = format!("{venv}:/usr/local/bin:/usr/bin:/bin");
        let theirs_conf = theirs_conf.display().to_string();
        let barman_sshd = Sshd::start_with_env(&[
            ("PATH", path.as_str()),
            ("BARMAN_CONFIG_FILE", theirs_conf.as_str()),
        ])
        .unwrap();
        let dir2 = site.pg.dir().join("passive-of-barman");
        let conf2 = passive_conf(&dir2, &barman_sshd);
        let (code, out, err) = barman(&conf2, &["sync-info", "--primary", "pg"]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = barman(&conf2, &["sync-backup", "pg", &id]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = barman(&conf2, &["verify-backup", "pg", &id]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = barman(&conf2, &["sync-wals", "pg"]);
        assert_eq!(code, 0, "{out}{err}");
        let db = std::fs::read_to_string(dir2.join("home/pg/wals/pg-xlog.db")).unwrap();
        assert!(db.contains(last), "{db}");
    }
}
