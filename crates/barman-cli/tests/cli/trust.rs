//! Trust: what barman-rs must never do to the data it protects, each proven against a
//! real PostgreSQL 15: put-wal never moves PostgreSQL's own file, a restore on the
//! production host never writes into production (WAL directory link, tablespaces,
//! odd destination names), a backup being deleted is never restored, and a restore
//! blocks the delete of its backup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use barman_testkit::tools::is_root;

use crate::recover::{Copy, DIGEST, Site, ok};
use crate::support::{BARMAN, barman, barman_as_server, barman_as_server_cmd};

/// Every entry under `root`: its path, and its content (a file) or target (a link).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_owned();
            if m.file_type().is_symlink() {
                let mut v = b"link:".to_vec();
                v.extend(
                    std::fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes(),
                );
                out.insert(rel, v);
            } else if m.is_dir() {
                out.insert(rel, b"dir".to_vec());
                todo.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn backup(site: &Site) -> String {
    let (code, out, err) = barman_as_server(
        &site.conf,
        &["backup", "pg", "--wait", "--wait-timeout", "60"],
    );
    assert_eq!(code, 0, "{out}{err}");
    out.lines()
        .find_map(|l| l.strip_prefix("Backup ").and_then(|r| r.split(' ').next()))
        .filter(|id| id.len() == 15)
        .unwrap_or_else(|| panic!("no backup id in {out}"))
        .to_owned()
}

/// Trust, point 1: with a different file already archived under its name, `put-wal`
/// moved PostgreSQL's own segment out of `pg_wal/` into `errors/`.
#[test]
fn put_wal_never_moves_postgresqls_own_file() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    site.switch_and_wait();
    // Mid-segment (at a segment's very start, pg_walfile_name names the one before).
    site.insert(1, 100);
    let seg = site
        .pg
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        .unwrap();
    let stored = site.home.join("pg/wals").join(&seg[..16]).join(&seg);
    assert!(!stored.exists());
    std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
    std::fs::write(&stored, b"another segment under this name").unwrap();
    site.pg.give_to_server_user(&site.home).unwrap();
    site.pg.sql("SELECT pg_switch_wal()").unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let failed = site
            .pg
            .sql("SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver")
            .unwrap();
        if failed == seg {
            break;
        }
        assert!(Instant::now() < deadline, "{}", site.pg.server_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // PostgreSQL's file is where it was, still waiting to be archived.
    let src = site.pg.data().join("pg_wal").join(&seg);
    assert!(src.is_file(), "{} left pg_wal/", src.display());
    assert!(
        site.pg
            .data()
            .join("pg_wal/archive_status")
            .join(format!("{seg}.ready"))
            .is_file()
    );
    // errors/ has a copy of it; the archived file is untouched.
    let kept: Vec<PathBuf> = std::fs::read_dir(site.home.join("pg/errors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&seg))
        .collect();
    assert!(!kept.is_empty());
    assert_eq!(
        std::fs::read(&kept[0]).unwrap(),
        std::fs::read(&src).unwrap()
    );
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        b"another segment under this name"
    );
}

/// Trust, points 2 and 3: a restore on the production host, of a cluster made with
/// `initdb -X` (pg_wal a link) and a relocated tablespace, into a destination whose
/// name has a space and a quote, with a staging WAL directory whose name has shell
/// syntax and whose first word names a sibling directory. The restored copy used to
/// get pg_wal as a link to production's WAL directory and a `tablespace_map` naming
/// production's tablespace, and `recovery_end_command = 'rm -fr <staging>'` unquoted.
#[test]
fn a_same_host_restore_leaves_production_untouched() {
    let wal_parent = tempfile::Builder::new()
        .prefix("barman-rs-prodwal.")
        .tempdir()
        .unwrap();
    if is_root() {
        let st = std::process::Command::new("chown")
            .args(["postgres:"])
            .arg(wal_parent.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let prod_wal = wal_parent.path().join("wal");
    let Some(mut site) = Site::start_with(&["-X", prod_wal.to_str().unwrap()], "local-rsync")
    else {
        return;
    };
    assert!(
        std::fs::symlink_metadata(site.pg.data().join("pg_wal"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let tbs = site.tablespace("tbs");
    site.pg
        .sql("CREATE TABLE u (id int, v text) TABLESPACE tbs")
        .unwrap();
    site.pg
        .sql("INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        .unwrap();
    site.insert(1, 100);
    let id = backup(&site);
    site.insert(101, 200);
    let expected = site.digest();
    let target = site.pg.sql("SELECT clock_timestamp()").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    site.insert(201, 300);
    site.switch_and_wait();
    site.pg.stop().unwrap();
    let (wal_before, tbs_before) = (snapshot(&prod_wal), snapshot(&tbs));

    let dir = site.pg.dir().to_owned();
    let dest = dir.join("restored copy'o");
    let staging = dir.join("my wal'$(touch PWNED)");
    let sibling = dir.join("my");
    std::fs::create_dir(&sibling).unwrap();
    std::fs::write(sibling.join("keep"), b"keep").unwrap();
    let moved = dir.join("tbs moved");
    let out = ok(site.recover(&[
        "--target-time",
        &target,
        "--target-action",
        "promote",
        "--tablespace",
        &format!("tbs:{}", moved.display()),
        "--staging-wal-directory",
        staging.to_str().unwrap(),
        "pg",
        &id,
        dest.to_str().unwrap(),
    ]));
    assert!(out.contains("(relocated)"), "{out}");
    // What the restore made: a real pg_wal, links to the new location, no map.
    let m = std::fs::symlink_metadata(dest.join("pg_wal")).unwrap();
    assert!(m.is_dir() && !m.file_type().is_symlink());
    let links: Vec<PathBuf> = std::fs::read_dir(dest.join("pg_tblspc"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(links, std::slice::from_ref(&moved));
    assert!(!dest.join("tablespace_map").exists());
    let conf = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
    assert!(
        conf.contains("recovery_end_command = 'rm -fr -- "),
        "{conf}"
    );

    // Started, promoted, written to: production stays byte for byte as it was.
    let mut copy = Copy::start_at(&site, &dest, &dir.join("copy-sock"), true);
    assert_eq!(copy.wait_replayed(), "promoted");
    assert_eq!(copy.sql(DIGEST), expected);
    copy.sql("CREATE TABLE w TABLESPACE tbs AS SELECT g FROM generate_series(1, 10000) g");
    copy.sql("INSERT INTO u SELECT g, 'copy' FROM generate_series(1001, 5000) g");
    copy.sql("SELECT pg_switch_wal()");
    copy.sql("CHECKPOINT");
    copy.stop();
    assert_eq!(
        snapshot(&prod_wal),
        wal_before,
        "production's WAL directory changed"
    );
    assert_eq!(
        snapshot(&tbs),
        tbs_before,
        "production's tablespace changed"
    );
    assert!(std::fs::read_dir(&moved).unwrap().next().is_some());
    // recovery_end_command removed the staging directory, and nothing else.
    assert!(!staging.exists(), "{conf}");
    assert_eq!(std::fs::read(sibling.join("keep")).unwrap(), b"keep");
    for d in [&dir, &dest, &Path::new("/").to_path_buf()] {
        assert!(!d.join("PWNED").exists(), "a command ran from a path");
    }
}

/// Trust, point 6: a backup whose delete started (`meta/<id>-delete_this`, data partly
/// gone, backup.info still DONE) was restorable and could be chosen as `latest`; and
/// a delete could remove a backup while it was being restored.
#[test]
fn a_backup_being_deleted_is_never_restored_and_a_restore_blocks_its_delete() {
    let Some(site) = Site::start_with(&[], "local-rsync") else {
        return;
    };
    site.insert(1, 100);
    let first = backup(&site);
    site.insert(101, 200);
    std::thread::sleep(Duration::from_millis(1100));
    let second = backup(&site);

    // A restore of the first backup, slowed down: its delete is refused meanwhile.
    let dest = site.dest("slow");
    let mut child = std::process::Command::new(BARMAN)
        .arg("-c")
        .arg(&site.conf)
        .args(["recover", "--bwlimit", "4000", "pg", &first])
        .arg(&dest)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dest.join("base").exists() {
        assert!(Instant::now() < deadline, "the restore did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, out, err) = barman(&site.conf, &["delete", "pg", &first]);
    let still_copying = child.try_wait().unwrap().is_none();
    assert!(still_copying, "the restore ended too soon for this test");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("lock"), "{err}");
    let restored = child.wait_with_output().unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(site.home.join("pg/base").join(&first).join("data").is_dir());

    // The second backup, half deleted: never restored, never `latest`.
    std::fs::write(
        site.home.join(format!("pg/meta/{second}-delete_this")),
        b"delete",
    )
    .unwrap();
    std::fs::remove_file(site.home.join(format!("pg/base/{second}/data/PG_VERSION"))).unwrap();
    let (code, _, err) = site.recover(&["pg", &second, site.dest("half").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("being deleted"), "{err}");
    assert!(!site.dest("half").exists());
    let (code, out, err) = site.recover(&["pg", "latest", site.dest("latest").to_str().unwrap()]);
    assert_eq!(code, 0, "first {first} second {second}: {out}{err}");
    assert!(out.contains(&first) && !out.contains(&second), "{out}");
    let (_, listed, _) = barman(&site.conf, &["list-backups", "pg"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("pg {second} - ")) && l.ends_with(" - FAILED")),
        "{listed}"
    );
}

/// Trust, point 7: a remote restore's rsync left its paths to the remote shell, which
/// splits them at spaces and runs what they quote (rsync before 3.2.4, or any rsync
/// with `RSYNC_OLD_ARGS=1`, as here).
#[test]
fn a_remote_restore_protects_its_paths_from_the_remote_shell() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    if !barman_testkit::tools::require("rsync", barman_testkit::tools::which("rsync").is_some()) {
        return;
    }
    let Some(sshd) = barman_testkit::Sshd::start() else {
        return;
    };
    site.insert(1, 100);
    let id = backup(&site);
    site.switch_and_wait();
    let remote_dir = site.dest("remote-host");
    std::fs::create_dir(&remote_dir).unwrap();
    sshd.give(&remote_dir);
    let dest = remote_dir.join("data dir $(touch PWNED)");
    let out = std::process::Command::new(BARMAN)
        .env("RSYNC_OLD_ARGS", "1")
        .arg("-c")
        .arg(&site.conf)
        .args([
            "recover",
            "--remote-ssh-command",
            &sshd.ssh_command(),
            "pg",
            &id,
        ])
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dest.join("PG_VERSION").is_file());
    assert!(dest.join("postgresql.auto.conf").is_file());
    let mut names: Vec<String> = std::fs::read_dir(&remote_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["data dir $(touch PWNED)"],
        "the remote shell split a path"
    );
    // The remote shell would have run it in the login user's home.
    let home = barman_testkit::tools::run(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("eval echo ~{}", sshd.user)),
    );
    assert!(
        !Path::new(home.trim()).join("PWNED").exists(),
        "the remote shell ran a path"
    );
}

/// Trust, point 13: `pg_basebackup --dbname=<streaming_conninfo>` put the password on
/// a command line, where any user of the host sees it (`ps`).
#[test]
fn a_password_never_reaches_a_command_line() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    // A pg_basebackup that records how it was called, and the password it was given.
    let bin = site.pg.dir().join("wrapped-bin");
    std::fs::create_dir(&bin).unwrap();
    let log = site.pg.dir().join("pg_basebackup.calls");
    let real = barman_testkit::bin_dir().unwrap().join("pg_basebackup");
    let wrapper = bin.join("pg_basebackup");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf 'argv: %s\\n' \"$*\" >> {log}\n\
             for a in \"$@\"; do case \"$a\" in --dbname=*) f=$(printf '%s' \"$a\" | sed -n 's/.*passfile=\\([^ ]*\\).*/\\1/p'); [ -n \"$f\" ] && cat \"$f\" >> {log};; esac; done\n\
             [ -n \"$PGSERVICEFILE\" ] && cat \"$PGSERVICEFILE\" >> {log}\n\
             exec {real} \"$@\"\n",
            log = log.display(),
            real = real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut conf = std::fs::read_to_string(&site.conf).unwrap();
    conf.push_str(&format!(
        "streaming_conninfo = host={} port=5432 user=postgres dbname=postgres password='hun:ter\\\\2' sslpassword=k3yphrase\npath_prefix = {}\n",
        site.pg.dir().display(),
        bin.display()
    ));
    std::fs::write(&site.conf, conf).unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    site.insert(1, 10);
    backup(&site);
    let calls = std::fs::read_to_string(&log).unwrap();
    let argv: Vec<&str> = calls.lines().filter(|l| l.starts_with("argv: ")).collect();
    assert_eq!(argv.len(), 1, "{calls}");
    assert!(
        !argv[0].contains("hun") && !argv[0].contains("k3yphrase"),
        "{calls}"
    );
    assert!(argv[0].contains("passfile="), "{calls}");
    // The password went through the file, escaped as libpq reads it.
    assert!(calls.contains("*:*:*:*:hun\\:ter\\\\2"), "{calls}");
    assert!(
        calls.contains("[barman_rs]\nsslpassword=k3yphrase\n"),
        "{calls}"
    );
    // And the file is gone.
    let passfile = argv[0]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("passfile="))
        .unwrap();
    assert!(!Path::new(passfile).exists());
}

/// Trust, points 8 and 18: "durably" was claimed, never checked. put-wal, backup and
/// recover run under strace: every file put in place by a rename or a link was fsynced
/// before and its directory after; every file written in place was fsynced, and the
/// directory of each new file, directory and link too. Recovery used to leave its
/// configuration (`archive_command = false` above all), signal file and WAL unsynced.
#[test]
fn put_wal_backup_and_recover_sync_what_they_write() {
    use barman_testkit::trace::strace;
    let Some(site) = Site::start_with(&[], "local-rsync") else {
        return;
    };
    let not_ours = |p: &Path| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.ends_with(".lock") || name.ends_with(".log")
    };
    // put-wal, into a second server's archive, of a segment the first one archived.
    site.insert(1, 100);
    site.switch_and_wait();
    let mut conf = std::fs::read_to_string(&site.conf).unwrap();
    conf.push_str(&format!(
        "\n[pgt]\nconninfo = host={} port=5432 user=postgres dbname=postgres\narchiver = on\ncompression = zstd\nbackup_method = postgres\nstreaming_conninfo = host=/nonexistent\n",
        site.pg.dir().display()
    ));
    std::fs::write(&site.conf, conf).unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    let xlogdb = std::fs::read_to_string(site.home.join("pg/wals/pg-xlog.db")).unwrap();
    let name = xlogdb
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let segment = site.home.join("pg/wals").join(&name[..16]).join(&name);
    let scratch = site.pg.dir().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::copy(&segment, scratch.join(&name)).unwrap();
    site.pg.give_to_server_user(&scratch).unwrap();
    let Some((out, trace)) = strace(&barman_as_server_cmd(
        &site.conf,
        &["put-wal", "pgt", scratch.join(&name).to_str().unwrap()],
    )) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let problems = trace.not_durable(&[&site.home.join("pgt")], not_ours);
    assert!(problems.is_empty(), "put-wal: {problems:#?}");
    assert!(
        site.home
            .join("pgt/wals")
            .join(&name[..16])
            .join(&name)
            .is_file()
    );

    // A backup.
    let Some((out, trace)) = strace(&barman_as_server_cmd(
        &site.conf,
        &["backup", "pg", "--wait", "--wait-timeout", "60"],
    )) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let problems = trace.not_durable(&[&site.home.join("pg")], not_ours);
    assert!(problems.is_empty(), "backup: {problems:#?}");

    // A point-in-time recovery, WAL delivered into the destination.
    site.insert(101, 200);
    let target = site.pg.sql("SELECT clock_timestamp()").unwrap();
    site.switch_and_wait();
    let dest = site.dest("durable");
    let mut cmd = std::process::Command::new(BARMAN);
    cmd.arg("-c")
        .arg(&site.conf)
        .args(["recover", "--target-time", &target, "pg", "latest"])
        .arg(&dest);
    let Some((out, trace)) = strace(&cmd) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let problems = trace.not_durable(&[&dest], not_ours);
    assert!(problems.is_empty(), "recover: {problems:#?}");
    assert!(dest.join("barman_wal").read_dir().unwrap().next().is_some());
}
