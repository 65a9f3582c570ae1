//! `barman backup` and `verify-backup` against a real PostgreSQL 15 archiving through
//! `barman put-wal`, including the faults: a killed backup, a second backup at once, a
//! full disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use barman_catalog::{BackupInfo, BackupStatus};
use barman_testkit::{self as testkit, PgCluster};

use crate::support::{BARMAN, barman_as_server, barman_as_server_cmd};

struct Setup {
    pg: PgCluster,
    home: PathBuf,
    conf: PathBuf,
}

/// A cluster archiving through `barman put-wal pg`; servers `pg` (local-rsync) and
/// `pgb` (postgres method) back it up. `extra` goes into the section of `pg`.
fn setup(extra: &str) -> Option<Setup> {
    setup_with(&["--wal-segsize=1"], extra)
}

/// [`setup`] with these initdb arguments.
fn setup_with(initdb: &[&str], extra: &str) -> Option<Setup> {
    let bin = testkit::require()?;
    let pg = PgCluster::start(&bin, initdb, &[]).unwrap();
    let home = pg.dir().join("barman");
    std::fs::create_dir_all(&home).unwrap();
    let conf = pg.dir().join("barman.conf");
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        pg.dir().display()
    );
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {home}\nlog_file = {home}/barman.log\n\n\
             [pg]\nconninfo = {conninfo}\narchiver = on\nbackup_method = local-rsync\nimmediate_checkpoint = true\n{extra}\n\n\
             [pgb]\nconninfo = {conninfo}\nstreaming_conninfo = {conninfo}\narchiver = on\nbackup_method = postgres\nimmediate_checkpoint = true\n",
            home = home.display(),
        ),
    )
    .unwrap();
    pg.give_to_server_user(pg.dir()).unwrap();
    pg.sql(&format!(
        "ALTER SYSTEM SET archive_command TO '{BARMAN} -q -c {} put-wal pg %p && {BARMAN} -q -c {} put-wal pgb %p'",
        conf.display(),
        conf.display()
    ))
    .unwrap();
    pg.sql("SELECT pg_reload_conf()").unwrap();
    pg.sql("CREATE TABLE t AS SELECT g, md5(g::text) AS c FROM generate_series(1, 20000) g")
        .unwrap();
    Some(Setup { pg, home, conf })
}

fn backup_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Backup ").and_then(|r| r.split(' ').next()))
        .filter(|id| id.len() == 15)
        .unwrap_or_else(|| panic!("no backup id in {out}"))
        .to_owned()
}

fn info(home: &Path, server: &str, id: &str) -> BackupInfo {
    let path = home
        .join(server)
        .join("meta")
        .join(format!("{id}-backup.info"));
    BackupInfo::parse(
        &path.display().to_string(),
        &std::fs::read_to_string(&path).unwrap(),
    )
    .unwrap()
}

fn pg_verifybackup(data: &Path) -> (bool, String) {
    let bin = testkit::bin_dir().unwrap().join("pg_verifybackup");
    let out = std::process::Command::new(bin)
        .arg("-n")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn local_rsync_backup_is_done_verified_and_reuses_unchanged_files() {
    let Some(s) = setup("") else { return };
    // A WAL file archived before the first backup: useless once it is taken.
    let (code, out, err) = barman_as_server(&s.conf, &["switch-wal", "--force", "--archive", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let old_wal = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("The WAL file ")
                .and_then(|r| r.strip_suffix(" has been closed on server 'pg'"))
        })
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let old_path = s.home.join("pg/wals").join(&old_wal[..16]).join(&old_wal);
    assert!(old_path.exists());
    // Files written before the first backup started are the ones the second can reuse.
    s.pg.sql("CHECKPOINT").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let (code, out, err) = barman_as_server(
        &s.conf,
        &["backup", "pg", "--wait", "--wait-timeout", "60", "-j", "2"],
    );
    assert_eq!(code, 0, "{out}{err}\n{}", s.pg.server_log());
    let id = backup_id(&out);
    assert!(
        out.contains(&format!("\t{old_wal} from server pg has been removed")),
        "{out}"
    );
    assert!(!old_path.exists());
    let first = info(&s.home, "pg", &id);
    assert_eq!(first.status, BackupStatus::Done, "{first:?}");
    assert_eq!(first.mode.as_deref(), Some("rsync-concurrent"));
    assert!(first.begin_wal <= first.end_wal);
    assert!(first.begin_xlog < first.end_xlog);
    let data = s.home.join("pg/base").join(&id).join("data");
    let label = std::fs::read_to_string(data.join("backup_label")).unwrap();
    assert!(
        label.contains(&format!("LABEL: Barman backup pg {id}")),
        "{label}"
    );
    assert!(!data.join("postmaster.pid").exists());
    assert!(data.join("pg_wal").is_dir());
    assert_eq!(std::fs::read_dir(data.join("pg_wal")).unwrap().count(), 0);
    // Every file the copy holds is in the manifest, and PostgreSQL's own tool agrees.
    let (code, out, err) = barman_as_server(&s.conf, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "{out}{err}");
    let (ok, msg) = pg_verifybackup(&data);
    assert!(ok, "{msg}");
    // The repository is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.home.join("pg/base").join(&id))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");

    // A second backup after a small change reuses the unchanged files by hard links.
    s.pg.sql("UPDATE t SET c = 'changed' WHERE g < 10").unwrap();
    let (code, out, err) = barman_as_server(
        &s.conf,
        &[
            "backup",
            "pg",
            "--wait",
            "--wait-timeout",
            "60",
            "--reuse-backup=link",
            "--name",
            "second",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id2 = backup_id(&out);
    assert_ne!(id, id2);
    let second = info(&s.home, "pg", &id2);
    assert_eq!(second.status, BackupStatus::Done);
    assert_eq!(second.backup_name.as_deref(), Some("second"));
    let (size, dedup) = (second.size.unwrap(), second.deduplicated_size.unwrap());
    assert!(dedup * 2 < size, "size {size}, deduplicated {dedup}");
    let data2 = s.home.join("pg/base").join(&id2).join("data");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&data.join("PG_VERSION")),
        ino(&data2.join("PG_VERSION"))
    );
    let (ok, msg) = pg_verifybackup(&data2);
    assert!(ok, "{msg}");
    // A damaged file is named by verify-backup.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(data2.join("backup_label"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"x").unwrap();
    let (code, out, err) = barman_as_server(&s.conf, &["verify-backup", "pg", "second"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("backup_label: size"), "{out}");
}

#[test]
fn postgres_method_backup_with_pg_basebackup_is_done() {
    let Some(s) = setup("") else { return };
    let (code, out, err) = barman_as_server(
        &s.conf,
        &["backup", "pgb", "--wait", "--wait-timeout", "60"],
    );
    assert_eq!(code, 0, "{out}{err}\n{}", s.pg.server_log());
    let id = backup_id(&out);
    let b = info(&s.home, "pgb", &id);
    assert_eq!(b.status, BackupStatus::Done, "{b:?}");
    assert_eq!(b.mode.as_deref(), Some("postgres"));
    assert!(b.begin_xlog < b.end_xlog);
    let (code, out, err) = barman_as_server(&s.conf, &["verify-backup", "pgb", "latest"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_second_backup_while_one_runs_is_refused() {
    let Some(s) = setup("") else { return };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(s.home.join(".pg-backup.lock"))
        .unwrap();
    s.pg.give_to_server_user(&s.home).unwrap();
    lock.lock().unwrap();
    let (code, out, err) = barman_as_server(&s.conf, &["backup", "pg"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Another backup process is already running on server pg"),
        "{err}"
    );
    let meta = s.home.join("pg/meta");
    assert!(!meta.exists() || std::fs::read_dir(&meta).unwrap().count() == 0);
}

#[test]
fn a_killed_backup_is_failed_and_the_next_one_succeeds() {
    let Some(s) = setup("") else { return };
    // Enough data that the copy takes a while.
    s.pg.sql("CREATE TABLE big AS SELECT g, repeat(md5(g::text), 16) AS c FROM generate_series(1, 250000) g")
        .unwrap();
    let mut child = barman_as_server_cmd(&s.conf, &["backup", "pg", "-j", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let meta = s.home.join("pg/meta");
    let started = Instant::now();
    let id = loop {
        let found = std::fs::read_dir(&meta).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find_map(|n| n.strip_suffix("-backup.info").map(str::to_owned))
        });
        if let Some(id) = found
            && info(&s.home, "pg", &id).status == BackupStatus::Started
        {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the backup never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    // runuser forwards the signal; kill the whole group to be sure.
    let pid = child.id();
    std::process::Command::new("pkill")
        .args(["-KILL", "-P", &pid.to_string()])
        .status()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // PostgreSQL ends the backup mode with the session.
    let waited = Instant::now();
    loop {
        let n = s
            .pg
            .sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'barman_backup'")
            .unwrap();
        if n.trim() == "0" {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the backup session stayed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Never DONE: reported FAILED once nothing holds the backup lock.
    assert_eq!(info(&s.home, "pg", &id).status, BackupStatus::Started);
    let config = barman_cli::load_config(Some(&s.conf)).unwrap();
    let repo =
        barman_core::repo::BackupRepo::for_server(config.global(), config.server("pg").unwrap());
    let catalogue = repo.load().unwrap();
    let killed = catalogue.get(id.parse().unwrap()).unwrap();
    assert_eq!(killed.status, BackupStatus::Failed);
    // A new backup works and every WAL it needs arrives.
    let (code, out, err) =
        barman_as_server(&s.conf, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(code, 0, "{out}{err}");
    let id2 = backup_id(&out);
    assert_eq!(info(&s.home, "pg", &id2).status, BackupStatus::Done);
}

#[test]
fn a_full_disk_fails_the_backup_and_frees_its_space() {
    let Some(fs) = testkit::tools::SmallFs::mount("6m") else {
        return;
    };
    let small = fs.path().to_owned();
    let Some(s) = setup(&format!("basebackups_directory = {}", small.display())) else {
        return;
    };
    s.pg.give_to_server_user(&small).unwrap();
    let (code, out, err) = barman_as_server(&s.conf, &["backup", "pg"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // FAILED with the reason, and the partial copy removed.
    let id = std::fs::read_dir(s.home.join("pg/meta"))
        .unwrap()
        .flatten()
        .find_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix("-backup.info")
                .map(str::to_owned)
        })
        .unwrap();
    let b = info(&s.home, "pg", &id);
    assert_eq!(b.status, BackupStatus::Failed);
    assert!(
        b.error
            .as_deref()
            .unwrap_or("")
            .contains("failure copying files"),
        "{b:?}"
    );
    assert_eq!(std::fs::read_dir(&small).unwrap().count(), 0);
}

/// Barman 3.19 from PyPI and barman-rs share one `barman_home`: Barman lists and shows
/// the backup barman-rs took, barman-rs lists and shows the one Barman took, with the
/// same ids, statuses and sizes.
#[test]
fn barman_and_barman_rs_read_each_others_backups() {
    let python = std::env::var("BARMAN_ORACLE_PYTHON").ok();
    let Some(script) = python
        .as_deref()
        .map(|p| Path::new(p).with_file_name("barman"))
        .filter(|p| p.is_file())
    else {
        assert!(
            std::env::var("BARMAN_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "BARMAN_REQUIRE_ORACLE=1 but no barman next to BARMAN_ORACLE_PYTHON"
        );
        eprintln!("skipped: set BARMAN_ORACLE_PYTHON to the python of a venv with barman");
        return;
    };
    let Some(s) = setup("") else { return };
    // Barman gets its own copy of the configuration, whose barman_user is the user
    // running it (its venv may not be readable by another); barman-rs's has none.
    let user = String::from_utf8_lossy(
        &std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let barman_conf = s.pg.dir().join("barman-py.conf");
    let text = std::fs::read_to_string(&s.conf).unwrap();
    std::fs::write(
        &barman_conf,
        text.replace("[barman]\n", &format!("[barman]\nbarman_user = {user}\n")),
    )
    .unwrap();
    let (code, out, err) =
        barman_as_server(&s.conf, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(code, 0, "{out}{err}");
    let ours_id = backup_id(&out);
    let theirs = |args: &[&str]| {
        let out = std::process::Command::new(&script)
            .arg("-c")
            .arg(&barman_conf)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ours = |args: &[&str]| {
        let out = std::process::Command::new(BARMAN)
            .arg("-c")
            .arg(&s.conf)
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
    // Barman takes a backup of the same cluster with its own postgres method.
    let (ok, out, err) = theirs(&["backup", "pgb", "--wait", "--wait-timeout", "60"]);
    assert!(ok, "Barman's backup: {out}{err}");
    for args in [
        &["list-backups", "pg"][..],
        &["list-backups", "pgb"],
        &["show-backup", "pg", &ours_id],
        &["show-backup", "pgb", "latest"],
    ] {
        let (ok, theirs_out, err) = theirs(args);
        assert!(ok, "barman {args:?}: {err}");
        assert_eq!(ours(args), theirs_out, "{args:?}");
    }
    let listed = ours(&["list-backups", "pg"]);
    assert!(
        listed.contains(&ours_id) && !listed.contains("WAITING") && !listed.contains("FAILED"),
        "{listed}"
    );
    let json = |t: String| serde_json::from_str::<serde_json::Value>(&t).unwrap();
    let (ok, t, err) = theirs(&["-f", "json", "list-backups", "pgb"]);
    assert!(ok, "{err}");
    assert_eq!(json(ours(&["-f", "json", "list-backups", "pgb"])), json(t));
}

/// `backup_method = rsync`: the copy goes through `rsync` over `ssh_command` (sshd on
/// 127.0.0.1), with `-j 2` and then hard links to the previous backup.
#[test]
fn rsync_backup_over_ssh_is_done_verified_and_linked() {
    let Some(s) = setup("") else { return };
    let Some(sshd) = testkit::Sshd::start() else {
        return;
    };
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        s.pg.dir().display()
    );
    let mut text = std::fs::read_to_string(&s.conf).unwrap();
    text.push_str(&format!(
        "\n[pgr]\nconninfo = {conninfo}\nbackup_method = rsync\nssh_command = {}\narchiver = on\nimmediate_checkpoint = true\n",
        sshd.ssh_command()
    ));
    std::fs::write(&s.conf, text).unwrap();
    s.pg.sql(&format!(
        "ALTER SYSTEM SET archive_command TO '{BARMAN} -q -c {c} put-wal pg %p && {BARMAN} -q -c {c} put-wal pgr %p'",
        c = s.conf.display()
    ))
    .unwrap();
    s.pg.sql("SELECT pg_reload_conf()").unwrap();
    // The archive's directories belong to the user archive_command runs as.
    let (code, out, err) =
        barman_as_server(&s.conf, &["switch-wal", "--force", "--archive", "pgr"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = crate::support::barman(
        &s.conf,
        &["backup", "pgr", "-j", "2", "--wait", "--wait-timeout", "60"],
    );
    assert_eq!(code, 0, "{out}{err}\n{}", sshd.log());
    let id = backup_id(&out);
    let b = info(&s.home, "pgr", &id);
    assert_eq!(b.status, BackupStatus::Done, "{b:?}");
    assert_eq!(b.mode.as_deref(), Some("rsync-concurrent"));
    let data = s.home.join("pgr/base").join(&id).join("data");
    assert!(!data.join("postmaster.pid").exists());
    let (ok, msg) = pg_verifybackup(&data);
    assert!(ok, "{msg}");
    let (code, out, err) = crate::support::barman(&s.conf, &["verify-backup", "pgr", &id]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = crate::support::barman(
        &s.conf,
        &[
            "backup",
            "pgr",
            "--reuse-backup",
            "link",
            "--wait",
            "--wait-timeout",
            "60",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id2 = backup_id(&out);
    let data2 = s.home.join("pgr/base").join(&id2).join("data");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&data.join("PG_VERSION")),
        ino(&data2.join("PG_VERSION"))
    );
    let second = info(&s.home, "pgr", &id2);
    assert!(
        second.deduplicated_size.unwrap() < second.size.unwrap(),
        "{second:?}"
    );
    let (ok, msg) = pg_verifybackup(&data2);
    assert!(ok, "{msg}");
}

/// With `initdb --data-checksums`, every copied page is verified: a clean cluster gives
/// no warning, a damaged page is named with its file and block, and the backup is
/// still taken (it holds what PostgreSQL has).
#[test]
fn damaged_data_pages_are_reported_with_file_and_block() {
    let Some(s) = setup_with(&["--wal-segsize=1", "--data-checksums"], "") else {
        return;
    };
    let (code, out, err) =
        barman_as_server(&s.conf, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !err.contains("checksum"),
        "a clean cluster has no bad page: {err}"
    );
    // Damage block 5 of t on disk; its clean copy in shared buffers is never written back.
    s.pg.sql("CHECKPOINT").unwrap();
    let rel = s.pg.sql("SELECT pg_relation_filepath('t')").unwrap();
    let file = s.pg.data().join(&rel);
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 6 * 8192);
    for b in &mut bytes[5 * 8192 + 4000..5 * 8192 + 4010] {
        *b ^= 0xff;
    }
    std::fs::write(&file, &bytes).unwrap();
    let (code, out, err) =
        barman_as_server(&s.conf, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("1 data pages with a bad checksum"), "{err}");
    assert!(err.contains(&format!("{rel} block 5 (stored")), "{err}");
}

/// pre/post backup scripts and retry scripts run with Barman's variables; a pre retry
/// script exiting 63 stops the backup before anything is written.
#[test]
fn backup_hooks_run_with_barmans_environment() {
    let Some(s) = setup("") else { return };
    let log = s.pg.dir().join("hooks.log");
    let script = |phase: &str| {
        format!(
            "echo {phase} $BARMAN_PHASE $BARMAN_HOOK $BARMAN_SERVER $BARMAN_STATUS $BARMAN_BACKUP_ID $BARMAN_RETRY >> {}",
            log.display()
        )
    };
    let mut text = std::fs::read_to_string(&s.conf).unwrap();
    text = text.replace(
        "backup_method = local-rsync\n",
        &format!(
            "backup_method = local-rsync\npre_backup_script = {}\npost_backup_script = {}\npost_backup_retry_script = {}\n",
            script("pre"),
            script("post"),
            script("post-retry")
        ),
    );
    std::fs::write(&s.conf, &text).unwrap();
    s.pg.give_to_server_user(s.pg.dir()).unwrap();
    let (code, out, err) =
        barman_as_server(&s.conf, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(code, 0, "{out}{err}");
    let id = backup_id(&out);
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        lines,
        format!(
            "pre pre backup_script pg EMPTY {id} 0\npost-retry post backup_retry_script pg DONE {id} 1\npost post backup_script pg DONE {id} 0\n"
        )
    );
    // A pre retry script asking to stop: refused, nothing written.
    std::fs::write(
        &s.conf,
        text.replace("[pg]\n", "[pg]\npre_backup_retry_script = exit 63\n"),
    )
    .unwrap();
    let before = std::fs::read_dir(s.home.join("pg/meta")).unwrap().count();
    let (code, out, err) = barman_as_server(&s.conf, &["backup", "pg"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("pre_backup_retry_script was aborted (got exit status 63"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(s.home.join("pg/meta")).unwrap().count(),
        before
    );
}

/// A tablespace is copied to `base/<id>/<oid>/`, recorded in backup.info and in the
/// manifest under `pg_tblspc/<oid>/`, and verify-backup finds it there; a bandwidth
/// limit slows the copy down to about what it allows.
#[test]
fn tablespaces_are_backed_up_under_their_oid() {
    let Some(s) = setup("") else { return };
    let spc = s.pg.dir().join("spc");
    std::fs::create_dir(&spc).unwrap();
    s.pg.give_to_server_user(&spc).unwrap();
    s.pg.sql(&format!(
        "CREATE TABLESPACE ts LOCATION '{}'",
        spc.display()
    ))
    .unwrap();
    s.pg.sql("CREATE TABLE in_ts TABLESPACE ts AS SELECT g, repeat('y', 200) AS c FROM generate_series(1, 20000) g")
        .unwrap();
    let oid =
        s.pg.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'")
            .unwrap();
    let started = Instant::now();
    let (code, out, err) = barman_as_server(
        &s.conf,
        &[
            "backup",
            "pg",
            "--wait",
            "--wait-timeout",
            "60",
            "--bwlimit",
            "8192",
        ],
    );
    let elapsed = started.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    let id = backup_id(&out);
    let b = info(&s.home, "pg", &id);
    let spcs = b.tablespaces.clone().unwrap();
    assert_eq!(spcs.len(), 1);
    assert_eq!(
        (spcs[0].name.as_str(), spcs[0].oid.to_string()),
        ("ts", oid.clone())
    );
    assert_eq!(spcs[0].location, spc.display().to_string());
    let copy = s.home.join("pg/base").join(&id).join(&oid);
    let version_dir = std::fs::read_dir(&copy)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    assert!(
        version_dir.to_string_lossy().starts_with("PG_15_"),
        "{version_dir:?}"
    );
    let manifest = std::fs::read_to_string(
        s.home
            .join("pg/base")
            .join(&id)
            .join("data/backup_manifest"),
    )
    .unwrap();
    assert!(
        manifest.contains(&format!("\"Path\": \"pg_tblspc/{oid}/PG_15_")),
        "no tablespace file in the manifest"
    );
    let (code, out, err) = barman_as_server(&s.conf, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "{out}{err}");
    // 8 MiB/s over a cluster of more than 24 MiB.
    let size = b.size.unwrap() as f64;
    assert!(
        elapsed.as_secs_f64() >= size / (8.0 * 1024.0 * 1024.0) * 0.8,
        "{size} bytes in {elapsed:?} despite --bwlimit 8192"
    );
}

/// The line of `check` or `status` output whose label is `label`.
fn line<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{label}:")))
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

/// `check` and `status` read the catalogue: the backup age, size and WAL checks turn
/// from "no backups" to figures of the last backup, and the counts follow.
#[test]
fn check_and_status_see_the_backups() {
    let Some(s) = setup(
        "last_backup_maximum_age = 1 day\nlast_backup_minimum_size = 1Ti\nlast_wal_maximum_age = 1 hour\nminimum_redundancy = 1",
    ) else {
        return;
    };
    let (code, out, err) = barman_as_server(&s.conf, &["check", "pg"]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        line(&out, "backup maximum age"),
        "backup maximum age: FAILED (interval provided: 1 day, latest backup age: No available backups)"
    );
    assert_eq!(
        line(&out, "minimum redundancy requirements"),
        "minimum redundancy requirements: FAILED (have 0 non-incremental backups, expected at least 1)"
    );
    assert_eq!(
        line(&out, "wal maximum age"),
        "wal maximum age: FAILED (No WAL files archived for last backup)"
    );

    let (code, out, err) =
        barman_as_server(&s.conf, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(code, 0, "{out}{err}");
    let id = backup_id(&out);
    let size = info(&s.home, "pg", &id).size.unwrap();
    // WAL archived after the backup counts towards `wal size`.
    s.pg.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        .unwrap();
    s.pg.sql("SELECT pg_switch_wal()").unwrap();
    let xlogdb = s.home.join("pg/wals/pg-xlog.db");
    let before = std::fs::read_to_string(&xlogdb).unwrap().lines().count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&xlogdb).unwrap().lines().count() == before {
        assert!(
            Instant::now() < deadline,
            "the switched WAL was not archived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let (code, out, err) = barman_as_server(&s.conf, &["check", "pg"]);
    assert_eq!(code, 1, "{out}{err}");
    let age = line(&out, "backup maximum age");
    assert!(
        age.starts_with("backup maximum age: OK (interval provided: 1 day, latest backup age: ")
            && !age.contains("No available"),
        "{age}"
    );
    let min = line(&out, "backup minimum size");
    assert!(
        min.starts_with("backup minimum size: FAILED (last backup size "),
        "{min}"
    );
    assert!(min.ends_with(" < 1.0 TiB minimum)"), "{min}");
    assert!(
        line(&out, "wal maximum age")
            .starts_with("wal maximum age: OK (interval provided: 1 hour, latest wal age: ")
    );
    let wal = line(&out, "wal size");
    assert!(
        wal != "wal size: OK (0 B)" && wal.starts_with("wal size: OK ("),
        "{wal}"
    );
    assert_eq!(
        line(&out, "minimum redundancy requirements"),
        "minimum redundancy requirements: OK (have 1 non-incremental backups, expected at least 1)"
    );
    // The figures in Nagios' perfdata are the backup's size.
    let (_, nagios, _) = barman_as_server(&s.conf, &["check", "--nagios", "pg"]);
    assert!(nagios.contains(&format!("pg={size}B")), "{nagios}");

    let (code, out, err) = barman_as_server(&s.conf, &["status", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        line(&out, "No. of available backups"),
        "No. of available backups: 1"
    );
    assert_eq!(
        line(&out, "First available backup"),
        format!("First available backup: {id}")
    );
    assert_eq!(
        line(&out, "Last available backup"),
        format!("Last available backup: {id}")
    );
    assert_eq!(
        line(&out, "Minimum redundancy requirements"),
        "Minimum redundancy requirements: satisfied (1/1)"
    );
}
