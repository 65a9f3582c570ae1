//! `barman recover` against a real PostgreSQL 15 archiving through `barman put-wal`:
//! every target type, timelines, tablespaces, get-wal mode, remote recovery over ssh,
//! and the refusals. Each recovered copy is started and its data compared with what
//! was committed before the target.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use barman_catalog::{BackupInfo, BackupStatus, Tablespace};
use barman_testkit::{self as pg, PgCluster, Sshd, tools::is_root};
use barman_wal::{Lsn, SegmentName, TimelineId, WalSegSize};

use crate::support::{BARMAN, barman, barman_as_server};

/// The content of table `t`, as one digest.
pub(crate) const DIGEST: &str =
    "SELECT coalesce(md5(string_agg(id || ':' || v, ',' ORDER BY id)), 'empty') FROM t";

/// A cluster archiving through `barman put-wal pg` into `home`.
pub(crate) struct Site {
    pub(crate) pg: PgCluster,
    bin: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) conf: PathBuf,
}

impl Site {
    fn start() -> Option<Site> {
        Site::start_with(&[], "postgres")
    }

    /// A site whose cluster is made with these extra initdb arguments, backed up with
    /// `backup_method`.
    pub(crate) fn start_with(initdb: &[&str], backup_method: &str) -> Option<Site> {
        let bin = pg::require()?;
        let mut args = vec!["--wal-segsize=1"];
        args.extend_from_slice(initdb);
        let pg = PgCluster::start(&bin, &args, &[]).unwrap();
        let home = pg.dir().join("barman");
        std::fs::create_dir_all(&home).unwrap();
        let conf = pg.dir().join("barman.conf");
        std::fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {}\nlog_file = {}/barman.log\n\n[pg]\nconninfo = host={} port=5432 user=postgres dbname=postgres\narchiver = on\ncompression = gzip\nbackup_method = {backup_method}\nimmediate_checkpoint = true\n",
                home.display(),
                pg.dir().display(),
                pg.dir().display(),
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
        pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
            .unwrap();
        Some(Site {
            pg,
            bin,
            home,
            conf,
        })
    }

    pub(crate) fn insert(&self, from: u32, to: u32) {
        self.pg
            .sql(&format!(
                "INSERT INTO t SELECT g, md5(g::text) FROM generate_series({from}, {to}) g"
            ))
            .unwrap();
    }

    pub(crate) fn digest(&self) -> String {
        self.pg.sql(DIGEST).unwrap()
    }

    /// Closes the current WAL segment and waits until barman has archived it.
    pub(crate) fn switch_and_wait(&self) {
        let name = self
            .pg
            .sql("SELECT pg_walfile_name(pg_switch_wal())")
            .unwrap();
        self.wait_archived(&name);
    }

    fn wait_archived(&self, name: &str) {
        let xlogdb = self.home.join("pg/wals/pg-xlog.db");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let db = std::fs::read_to_string(&xlogdb).unwrap_or_default();
            if db.lines().any(|l| l.split('\t').next() == Some(name)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{name} was not archived within 60 s\n{}",
            self.pg.server_log()
        );
    }

    /// A PostgreSQL tool run as the server's OS user.
    pub(crate) fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Creates tablespace `name` in a new directory of the site; returns the directory.
    pub(crate) fn tablespace(&self, name: &str) -> PathBuf {
        let dir = self.pg.dir().join(name);
        std::fs::create_dir(&dir).unwrap();
        self.pg.give_to_server_user(&dir).unwrap();
        self.pg
            .sql(&format!(
                "CREATE TABLESPACE {name} LOCATION '{}'",
                dir.display()
            ))
            .unwrap();
        dir
    }

    /// `barman recover` with these arguments.
    pub(crate) fn recover(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["recover"];
        all.extend_from_slice(args);
        barman(&self.conf, &all)
    }

    /// A fresh destination path (not created) inside the site.
    pub(crate) fn dest(&self, name: &str) -> PathBuf {
        self.pg.dir().join(name)
    }
}

/// Test support: a backup of the site's cluster laid out as `barman backup` (method
/// `postgres`) lays it out, made with `pg_basebackup` and a `backup.info` filled from
/// its `backup_label` and `backup_manifest`. One function, so that it can be swapped
/// for `barman backup pg` once that command lands.
fn take_backup(site: &Site) -> String {
    let pg = &site.pg;
    let id = loop {
        let id = pg
            .sql("SELECT to_char(clock_timestamp(), 'YYYYMMDD\"T\"HH24MISS')")
            .unwrap();
        if !site.home.join("pg/base").join(&id).exists() {
            break id;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let base = site.home.join("pg/base").join(&id);
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(site.home.join("pg/meta")).unwrap();
    pg.give_to_server_user(&site.home).unwrap();
    let spaces = pg
        .sql("SELECT spcname || '|' || oid || '|' || pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid")
        .unwrap();
    let tablespaces: Vec<Tablespace> = spaces
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            Tablespace {
                name: f[0].to_owned(),
                oid: f[1].parse().unwrap(),
                location: f[2].to_owned(),
            }
        })
        .collect();
    let mut cmd = site.tool("pg_basebackup");
    cmd.arg("-h")
        .arg(pg.dir())
        .args([
            "-p", "5432", "-U", "postgres", "-Fp", "-X", "none", "-c", "fast", "-D",
        ])
        .arg(base.join("data"));
    for t in &tablespaces {
        cmd.arg(format!(
            "--tablespace-mapping={}={}",
            t.location,
            base.join(t.oid.to_string()).display()
        ));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pg_basebackup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let end_time = pg.sql("SELECT clock_timestamp()").unwrap();

    let label = std::fs::read_to_string(base.join("data/backup_label")).unwrap();
    let field = |key: &str| {
        label
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {label}"))
            .trim()
            .to_owned()
    };
    let start = field("START WAL LOCATION:");
    let begin_xlog: Lsn = start.split_whitespace().next().unwrap().parse().unwrap();
    let tli = TimelineId::new(field("START TIMELINE:").parse().unwrap());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("data/backup_manifest")).unwrap())
            .unwrap();
    let range = manifest["WAL-Ranges"].as_array().unwrap().last().unwrap();
    let end_xlog: Lsn = range["End-LSN"].as_str().unwrap().parse().unwrap();
    let end_tli = TimelineId::new(range["Timeline"].as_u64().unwrap() as u32);
    let size = WalSegSize::new(1 << 20).unwrap();

    let mut info = BackupInfo::new(id.parse().unwrap());
    info.status = BackupStatus::Done;
    info.mode = Some("postgres".into());
    info.server_name = Some("pg".into());
    info.pgdata = Some(pg.data().display().to_string());
    info.timeline = Some(tli);
    info.begin_xlog = Some(begin_xlog);
    info.begin_wal = Some(SegmentName::containing(tli, begin_xlog, size));
    info.begin_offset = Some((size.offset_of(begin_xlog)) as i64);
    info.begin_time = Some(field("START TIME:").parse().unwrap());
    info.end_xlog = Some(end_xlog);
    info.end_wal = Some(SegmentName::containing(end_tli, end_xlog, size));
    info.end_offset = Some((size.offset_of(end_xlog)) as i64);
    info.end_time = Some(end_time.parse().unwrap());
    info.version = Some(pg.sql("SHOW server_version_num").unwrap().parse().unwrap());
    info.systemid = Some(
        pg.sql("SELECT system_identifier FROM pg_control_system()")
            .unwrap(),
    );
    info.xlog_segment_size = size;
    info.tablespaces = (!tablespaces.is_empty()).then_some(tablespaces);
    let end_wal = info.end_wal.unwrap().to_string();
    std::fs::write(
        site.home.join(format!("pg/meta/{id}-backup.info")),
        info.to_string(),
    )
    .unwrap();
    site.wait_archived(&end_wal);
    pg.give_to_server_user(&site.home).unwrap();
    id
}

/// A restored copy started on its own socket directory and port.
pub(crate) struct Copy<'a> {
    site: &'a Site,
    data: PathBuf,
    sock: PathBuf,
    running: bool,
}

const COPY_PORT: &str = "5433";

impl<'a> Copy<'a> {
    /// Starts the copy in `data` (given to the server's user first). With `wait`,
    /// returns once it accepts connections.
    pub(crate) fn start(site: &'a Site, data: &Path, wait: bool) -> Copy<'a> {
        Copy::start_at(site, data, &data.with_extension("sock"), wait)
    }

    /// [`Copy::start`] with the socket in `sock` (and the log beside it).
    pub(crate) fn start_at(site: &'a Site, data: &Path, sock: &Path, wait: bool) -> Copy<'a> {
        let sock = sock.to_owned();
        std::fs::create_dir_all(&sock).unwrap();
        site.pg.give_to_server_user(site.pg.dir()).unwrap();
        let mut copy = Copy {
            site,
            data: data.to_owned(),
            sock,
            running: true,
        };
        let out = site
            .tool("pg_ctl")
            .arg("-D")
            .arg(data)
            .arg("-l")
            .arg(copy.log_path())
            .arg("-o")
            .arg(format!("-p {COPY_PORT} -k {}", copy.sock.display()))
            .args(if wait {
                &["-w", "start"][..]
            } else {
                &["-W", "start"][..]
            })
            .output()
            .unwrap();
        if !out.status.success() {
            copy.running = false;
            panic!(
                "starting the copy failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                copy.log()
            );
        }
        copy
    }

    fn log_path(&self) -> PathBuf {
        self.sock.with_extension("log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub(crate) fn sql(&self, sql: &str) -> String {
        let out = self
            .site
            .tool("psql")
            .arg("-h")
            .arg(&self.sock)
            .args(["-p", COPY_PORT, "-U", "postgres", "-d", "postgres"])
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits until replay is over: paused at the target, or recovery ended.
    pub(crate) fn wait_replayed(&self) -> &'static str {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let state = self.sql(
                "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 'promoted' ELSE pg_get_wal_replay_pause_state() END",
            );
            match state.as_str() {
                "promoted" => return "promoted",
                "paused" => return "paused",
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        panic!("replay did not end within 60 s\n{}", self.log());
    }

    /// Waits until the server has stopped by itself (its log says so, its pid file is
    /// gone).
    pub(crate) fn wait_stopped(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.log().contains("database system is shut down")
                && !self.data.join("postmaster.pid").exists()
            {
                self.running = false;
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the copy did not stop within 60 s\n{}", self.log());
    }
}

impl Copy<'_> {
    /// Stops the copy cleanly (a shutdown checkpoint), and waits.
    pub(crate) fn stop(&mut self) {
        let out = self
            .site
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stopping the copy: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.running = false;
    }
}

impl Drop for Copy<'_> {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .site
                .tool("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

pub(crate) fn ok(r: (i32, String, String)) -> String {
    assert_eq!(r.0, 0, "{}{}", r.1, r.2);
    r.1
}

/// Recovers into a new directory, starts the copy, waits for replay to end and
/// returns the copy's digest of `t` and how replay ended.
fn recover_and_read(site: &Site, name: &str, args: &[&str]) -> (String, &'static str) {
    let dest = site.dest(name);
    let mut all: Vec<&str> = args.to_vec();
    let d = dest.display().to_string();
    all.push(&d);
    ok(site.recover(&all));
    let copy = Copy::start(site, &dest, true);
    let how = copy.wait_replayed();
    (copy.sql(DIGEST), how)
}

#[test]
fn each_target_type_recovers_exactly_what_was_committed_before_it() {
    let Some(site) = Site::start() else {
        return;
    };
    site.insert(1, 100);
    let s0 = site.digest();
    let id = take_backup(&site);

    site.insert(101, 200);
    let s1 = site.digest();
    let time = site.pg.sql("SELECT clock_timestamp()").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let xid = site
        .pg
        .sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(201, 300) g; SELECT txid_current()")
        .unwrap();
    let s2 = site.digest();
    site.insert(301, 400);
    let s3 = site.digest();
    let lsn = site.pg.sql("SELECT pg_current_wal_insert_lsn()").unwrap();
    site.insert(401, 500);
    let s4 = site.digest();
    site.pg
        .sql("SELECT pg_create_restore_point('before_600')")
        .unwrap();
    site.pg.sql("UPDATE t SET v = 'x' WHERE id > 50").unwrap();
    site.insert(501, 600);
    let s5 = site.digest();
    site.switch_and_wait();
    for (a, b) in [(&s0, &s1), (&s1, &s2), (&s2, &s3), (&s3, &s4), (&s4, &s5)] {
        assert_ne!(a, b);
    }

    // Time (naive input would use the host's zone; this one has an offset).
    let (d, how) = recover_and_read(&site, "by-time", &["--target-time", &time, "pg", &id]);
    assert_eq!((d.as_str(), how), (s1.as_str(), "paused"));
    let auto = std::fs::read_to_string(site.dest("by-time/postgresql.auto.conf")).unwrap();
    assert!(auto.contains("recovery_target_time = '"), "{auto}");
    assert!(auto.contains("#BARMAN#archive_command = "), "{auto}");
    assert!(auto.contains("\narchive_command = false\n"), "{auto}");
    assert!(site.dest("by-time/postgresql.auto.conf.origin").is_file());
    assert!(site.dest("by-time/recovery.signal").is_file());
    assert!(
        site.dest(&format!("by-time/backup_manifest.{id}"))
            .is_file()
    );
    assert!(!site.dest("by-time/backup_manifest").exists());
    let info = std::fs::read_to_string(site.dest("by-time/.barman-recover.info")).unwrap();
    assert!(info.contains("status=DONE"), "{info}");

    // Xid, inclusive then exclusive.
    let (d, _) = recover_and_read(&site, "by-xid", &["--target-xid", &xid, "pg", &id]);
    assert_eq!(d, s2);
    let (d, _) = recover_and_read(
        &site,
        "by-xid-excl",
        &["--target-xid", &xid, "--exclusive", "pg", &id],
    );
    assert_eq!(d, s1);
    let auto = std::fs::read_to_string(site.dest("by-xid-excl/postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("recovery_target_inclusive = 'False'"),
        "{auto}"
    );

    // LSN, with promotion at the target: the copy is writable.
    let dest = site.dest("by-lsn");
    ok(site.recover(&[
        "--target-lsn",
        &lsn,
        "--target-action",
        "promote",
        "-j",
        "3",
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    {
        let copy = Copy::start(&site, &dest, true);
        assert_eq!(copy.wait_replayed(), "promoted");
        assert_eq!(copy.sql(DIGEST), s3);
        copy.sql("INSERT INTO t VALUES (100000, 'after')");
        // The WAL staging directory was removed at the end of recovery.
        assert!(!dest.join("barman_wal").exists());
    }

    // Name, with the latest backup as "latest".
    let (d, _) = recover_and_read(
        &site,
        "by-name",
        &["--target-name", "before_600", "pg", "latest"],
    );
    assert_eq!(d, s4);

    // Immediate: the state at the end of the backup.
    let (d, _) = recover_and_read(&site, "immediate", &["--target-immediate", "pg", &id]);
    assert_eq!(d, s0);

    // No target: all the WAL, delivered into pg_wal with .done status files.
    let dest = site.dest("all");
    ok(site.recover(&["pg", &id, &dest.display().to_string()]));
    assert!(!dest.join("recovery.signal").exists());
    let done = std::fs::read_dir(dest.join("pg_wal/archive_status"))
        .unwrap()
        .count();
    assert!(done > 0);
    {
        let copy = Copy::start(&site, &dest, true);
        assert_eq!(copy.wait_replayed(), "promoted");
        assert_eq!(copy.sql(DIGEST), s5);
    }

    // get-wal mode: nothing copied, restore_command runs this barman.
    let dest = site.dest("get-wal");
    let out = ok(site.recover(&[
        "--get-wal",
        "--target-name",
        "before_600",
        "--target-action",
        "promote",
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    assert!(out.contains("get-wal"), "{out}");
    assert!(!dest.join("barman_wal").exists());
    let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains(&format!(
            "restore_command = '{BARMAN} -c {} get-wal -P pg %f > %p'",
            site.conf.display()
        )),
        "{auto}"
    );
    {
        let copy = Copy::start(&site, &dest, true);
        assert_eq!(copy.wait_replayed(), "promoted");
        assert_eq!(copy.sql(DIGEST), s4);
    }

    // Shutdown at the target: the server stops by itself.
    let dest = site.dest("shutdown");
    ok(site.recover(&[
        "--target-lsn",
        &lsn,
        "--target-action",
        "shutdown",
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    let mut copy = Copy::start(&site, &dest, false);
    copy.wait_stopped();
    assert!(
        copy.log().contains("shutdown at recovery target"),
        "{}",
        copy.log()
    );
}

#[test]
fn timelines_recover_along_the_history_to_the_right_branch() {
    let Some(site) = Site::start() else {
        return;
    };
    site.insert(1, 100);
    let id = take_backup(&site);
    site.insert(101, 200);
    site.pg
        .sql("SELECT pg_create_restore_point('fork')")
        .unwrap();
    let at_fork = site.digest();
    site.insert(201, 300);
    let tl1_end = site.digest();
    site.switch_and_wait();

    // Recover to the fork and promote: timeline 2, archiving into the same server.
    let dest = site.dest("tl2");
    ok(site.recover(&[
        "--target-name",
        "fork",
        "--target-action",
        "promote",
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    let tl2 = Copy::start(&site, &dest, true);
    assert_eq!(tl2.wait_replayed(), "promoted");
    assert_eq!(tl2.sql(DIGEST), at_fork);
    assert_eq!(
        tl2.sql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "2"
    );
    tl2.sql(&format!(
        "ALTER SYSTEM SET archive_command TO '{BARMAN} -q -c {} put-wal pg %p'",
        site.conf.display()
    ));
    tl2.sql("SELECT pg_reload_conf()");
    tl2.sql("INSERT INTO t SELECT g, 'tl2' FROM generate_series(1001, 1100) g");
    tl2.sql("SELECT pg_create_restore_point('on_tl2')");
    let on_tl2 = tl2.sql(DIGEST);
    tl2.sql("INSERT INTO t SELECT g, 'tl2' FROM generate_series(1101, 1200) g");
    let name = tl2.sql("SELECT pg_walfile_name(pg_switch_wal())");
    assert!(name.starts_with("00000002"), "{name}");
    site.wait_archived(&name);
    site.wait_archived("00000002.history");
    drop(tl2);

    // The restore point on timeline 2, following the latest timeline.
    let (d, how) = recover_and_read(
        &site,
        "latest",
        &[
            "--target-name",
            "on_tl2",
            "--target-tli",
            "latest",
            "pg",
            &id,
        ],
    );
    assert_eq!((d.as_str(), how), (on_tl2.as_str(), "paused"));
    let auto = std::fs::read_to_string(site.dest("latest/postgresql.auto.conf")).unwrap();
    assert!(auto.contains("recovery_target_timeline = 2\n"), "{auto}");

    // Timeline 1 to its end.
    let (d, how) = recover_and_read(&site, "tl1", &["--target-tli", "1", "pg", &id]);
    assert_eq!((d.as_str(), how), (tl1_end.as_str(), "promoted"));

    // A backup of timeline 1 taken after the fork cannot follow timeline 2.
    let later = take_backup(&site);
    let dest = site.dest("not-descending");
    let (code, out, err) = site.recover(&[
        "--target-tli",
        "2",
        "pg",
        &later,
        &dest.display().to_string(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("does not descend"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!dest.exists());
}

#[test]
fn tablespaces_are_restored_to_their_original_or_new_location() {
    let Some(site) = Site::start() else {
        return;
    };
    site.tablespace("ts1");
    site.pg
        .sql("CREATE TABLE u (id int, v text) TABLESPACE ts1")
        .unwrap();
    site.pg
        .sql("INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        .unwrap();
    let expected = site
        .pg
        .sql("SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM u")
        .unwrap();
    let id = take_backup(&site);
    site.switch_and_wait();

    // The original location is in use: refused, nothing written.
    let dest = site.dest("copy");
    let (code, _, err) = site.recover(&["pg", &id, &dest.display().to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("is not empty"), "{err}");
    assert!(!dest.exists());
    // A delta restore into another directory would rewrite the original tablespace
    // (trust): refused unless it is relocated.
    let (code, _, err) = site.recover(&["--delta-restore", "pg", &id, &dest.display().to_string()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--delta-restore into") && err.contains("--tablespace ts1:"),
        "{err}"
    );
    assert!(!dest.exists());
    // An unknown name: refused.
    let (code, _, err) = site.recover(&[
        "--tablespace",
        "nope:/tmp/nope",
        "pg",
        &id,
        &dest.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("tablespace \"nope\""), "{err}");
    assert!(!dest.exists());

    let moved = site.dest("ts1-moved");
    let out = ok(site.recover(&[
        "--tablespace",
        &format!("ts1:{}", moved.display()),
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    assert!(out.contains("(relocated)"), "{out}");
    let oid = site
        .pg
        .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
        .unwrap();
    assert_eq!(
        std::fs::read_link(dest.join("pg_tblspc").join(&oid)).unwrap(),
        moved
    );
    assert!(std::fs::read_dir(&moved).unwrap().next().is_some());
    let copy = Copy::start(&site, &dest, true);
    copy.wait_replayed();
    assert_eq!(
        copy.sql("SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM u"),
        expected
    );
    assert_eq!(
        copy.sql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'"),
        moved.display().to_string()
    );
}

#[test]
fn refusals_leave_the_destination_untouched() {
    let Some(site) = Site::start() else {
        return;
    };
    site.insert(1, 10);
    let id = take_backup(&site);
    site.switch_and_wait();
    let info =
        std::fs::read_to_string(site.home.join(format!("pg/meta/{id}-backup.info"))).unwrap();

    // A FAILED backup next to it.
    let failed = "20000101T000000";
    std::fs::write(
        site.home.join(format!("pg/meta/{failed}-backup.info")),
        info.replace("status=DONE", "status=FAILED"),
    )
    .unwrap();

    let dest = site.dest("dest");
    let d = dest.display().to_string();
    let before_end = "2000-01-01 00:00:00+00:00".to_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--target-time", &before_end, "pg", &id, &d],
            "before the end of backup",
        ),
        (
            vec!["--target-lsn", "0/10", "pg", &id, &d],
            "before the end of backup",
        ),
        (
            vec!["--target-xid", "5", "--target-name", "x", "pg", &id, &d],
            "multiple targets",
        ),
        (vec!["pg", "20991231T000000", &d], "unknown backup"),
        (vec!["pg", failed, &d], "is FAILED"),
        (vec!["pg", &id, "/tmp/a:b"], "contains ':'"),
        (
            vec!["--tablespace", "x:/tmp/x", "pg", &id, &d],
            "tablespace \"x\"",
        ),
        (vec!["--target-tli", "7", "pg", &id, &d], "timeline 7"),
        (
            vec!["--target-action", "promote", "pg", &id, &d],
            "point-in-time",
        ),
    ];
    for (args, expected) in &cases {
        let (code, out, err) = site.recover(args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!dest.exists(), "{args:?} wrote {}", dest.display());
    }
    assert!(!Path::new("/tmp/a:b").exists());
    // The same through Barman's other name for the command.
    let (code, _, err) = barman(
        &site.conf,
        &["restore", "--target-lsn", "0/10", "pg", &id, &d],
    );
    assert_eq!(code, 1);
    assert!(err.contains("before the end of backup"), "{err}");
    // A naive target time is read in this host's zone, with a warning.
    let (code, _, err) = site.recover(&["--target-time", "2000-01-01 00:00:00", "pg", &id, &d]);
    assert_eq!(code, 1);
    assert!(err.contains("before the end of backup"), "{err}");

    // A non-empty destination: refused and left as it was; delta restore goes ahead.
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("precious"), "data").unwrap();
    let (code, _, err) = site.recover(&["pg", &id, &d]);
    assert_eq!(code, 1);
    assert!(err.contains("is not empty"), "{err}");
    let names: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["precious"]);
    if barman_testkit::tools::which("rsync").is_some() {
        ok(site.recover(&["--delta-restore", "--target-immediate", "pg", &id, &d]));
        assert!(!dest.join("precious").exists());
        let copy = Copy::start(&site, &dest, true);
        copy.wait_replayed();
        assert_eq!(copy.sql("SELECT count(*) FROM t"), "10");
    }
}

#[test]
fn remote_recovery_over_ssh() {
    let Some(site) = Site::start() else {
        return;
    };
    if !barman_testkit::tools::require("rsync", barman_testkit::tools::which("rsync").is_some()) {
        return;
    }
    let Some(sshd) = Sshd::start() else {
        return;
    };
    site.insert(1, 100);
    let id = take_backup(&site);
    site.insert(101, 200);
    site.pg
        .sql("SELECT pg_create_restore_point('remote')")
        .unwrap();
    let expected = site.digest();
    site.insert(201, 300);
    site.switch_and_wait();

    let remote_dir = site.dest("remote-host");
    std::fs::create_dir(&remote_dir).unwrap();
    sshd.give(&remote_dir);
    let dest = remote_dir.join("data");
    let out = ok(site.recover(&[
        "--remote-ssh-command",
        &sshd.ssh_command(),
        "--target-name",
        "remote",
        "--target-action",
        "promote",
        "-j",
        "2",
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    assert!(out.contains("Starting remote restore"), "{out}");
    let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("recovery_target_name = 'remote'"), "{auto}");
    assert!(auto.contains("archive_command = false"), "{auto}");
    assert!(dest.join("recovery.signal").is_file());
    assert!(dest.join("barman_wal").is_dir());
    let copy = Copy::start(&site, &dest, true);
    assert_eq!(copy.wait_replayed(), "promoted");
    assert_eq!(copy.sql(DIGEST), expected);

    // get-wal mode remotely: barman-wal-restore fetches from this host.
    let dest2 = remote_dir.join("get-wal");
    ok(site.recover(&[
        "--remote-ssh-command",
        &sshd.ssh_command(),
        "--get-wal",
        "--target-immediate",
        "pg",
        &id,
        &dest2.display().to_string(),
    ]));
    let auto = std::fs::read_to_string(dest2.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("# The 'barman-wal-restore' command is provided in the 'barman-cli' package\nrestore_command = 'barman-wal-restore -P -U barman "),
        "{auto}"
    );
    assert!(
        auto.contains(" pg %f %p'\nrecovery_target = 'immediate'\n"),
        "{auto}"
    );
    assert!(!dest2.join("barman_wal").exists());

    // A non-empty remote destination is refused.
    let (code, _, err) = site.recover(&[
        "--remote-ssh-command",
        &sshd.ssh_command(),
        "pg",
        &id,
        &dest.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not empty"), "{err}");
}

/// Barman's issue #79: WAL streamed but not yet in a complete segment (an archived
/// `.partial`, as `receive-wal` leaves it) is replayed too, so those commits are not
/// lost.
#[test]
fn a_trailing_partial_segment_is_replayed() {
    let Some(site) = Site::start() else {
        return;
    };
    site.insert(1, 100);
    let id = take_backup(&site);
    site.switch_and_wait();
    // Committed, in the current segment, which is not complete yet.
    site.insert(101, 200);
    let expected = site.digest();
    let current = site
        .pg
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        .unwrap();
    let partial = site.pg.dir().join(format!("{current}.partial"));
    std::fs::copy(site.pg.data().join("pg_wal").join(&current), &partial).unwrap();
    ok(barman(
        &site.conf,
        &["put-wal", "pg", &partial.display().to_string()],
    ));

    let (d, how) = recover_and_read(&site, "with-partial", &["--target-tli", "1", "pg", &id]);
    assert_eq!((d.as_str(), how), (expected.as_str(), "promoted"));
    let (code, out, err) = barman(
        &site.conf,
        &[
            "-f",
            "json",
            "recover",
            "--target-tli",
            "1",
            "pg",
            &id,
            &site.dest("json").display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let files = v["wal_files"].as_array().unwrap();
    assert_eq!(
        files.last().unwrap(),
        &format!("{current}.partial"),
        "{out}"
    );
    // Delivered under its segment name, as PostgreSQL asks for it.
    assert!(site.dest("json/barman_wal").join(&current).is_file());

    // More commits, only in the segment receive-wal is streaming into streaming/.
    site.insert(201, 300);
    let newer = site.digest();
    assert_eq!(
        site.pg
            .sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
            .unwrap(),
        current
    );
    let streaming = site.home.join("pg/streaming");
    std::fs::create_dir_all(&streaming).unwrap();
    std::fs::copy(
        site.pg.data().join("pg_wal").join(&current),
        streaming.join(format!("{current}.partial")),
    )
    .unwrap();
    let (d, how) = recover_and_read(&site, "streamed", &["--target-tli", "1", "pg", &id]);
    assert_eq!((d.as_str(), how), (newer.as_str(), "promoted"));
}

#[test]
fn standby_mode_custom_recovery_file_and_staging_wal_directory() {
    let Some(site) = Site::start() else {
        return;
    };
    site.insert(1, 100);
    let id = take_backup(&site);
    site.pg
        .sql("SELECT pg_create_restore_point('here')")
        .unwrap();
    let expected = site.digest();
    site.switch_and_wait();

    // A staging WAL directory outside the destination, and another recovery file.
    let dest = site.dest("staged");
    let staging = site.dest("staging-wal");
    ok(site.recover(&[
        "--target-name",
        "here",
        "--target-action",
        "promote",
        "--staging-wal-directory",
        &staging.display().to_string(),
        "--recovery-conf-filename",
        "recovery.barman.conf",
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    let custom = std::fs::read_to_string(dest.join("recovery.barman.conf")).unwrap();
    assert!(
        custom.contains(&format!(
            "restore_command = 'cp {}/%f %p'",
            staging.display()
        )),
        "{custom}"
    );
    assert!(
        custom.contains(&format!(
            "recovery_end_command = 'rm -fr -- {}'",
            staging.display()
        )),
        "{custom}"
    );
    assert!(!dest.join("barman_wal").exists());
    assert!(std::fs::read_dir(&staging).unwrap().count() > 1);
    // postgresql.auto.conf still has archive_command disabled, and no recovery lines.
    let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("\narchive_command = false\n"), "{auto}");
    assert!(!auto.contains("restore_command"), "{auto}");
    // PostgreSQL reads the custom file once included.
    let mut conf = std::fs::read_to_string(dest.join("postgresql.conf")).unwrap();
    conf.push_str("include 'recovery.barman.conf'\n");
    std::fs::write(dest.join("postgresql.conf"), conf).unwrap();
    {
        let copy = Copy::start(&site, &dest, true);
        assert_eq!(copy.wait_replayed(), "promoted");
        assert_eq!(copy.sql(DIGEST), expected);
        assert!(
            !staging.exists(),
            "recovery_end_command removes the staging directory"
        );
    }

    // Standby mode: the WAL goes to pg_wal, standby.signal, no restore_command.
    let dest = site.dest("standby");
    ok(site.recover(&[
        "--standby-mode",
        "--target-tli",
        "1",
        "pg",
        &id,
        &dest.display().to_string(),
    ]));
    assert!(dest.join("standby.signal").is_file());
    assert!(!dest.join("recovery.signal").exists());
    assert!(!dest.join("barman_wal").exists());
    let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("restore_command"), "{auto}");
    assert!(auto.contains("recovery_target_timeline = 1"), "{auto}");
    let copy = Copy::start(&site, &dest, true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while copy.sql(DIGEST) != expected {
        assert!(Instant::now() < deadline, "{}", copy.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(copy.sql("SELECT pg_is_in_recovery()"), "t");
}

/// `backup_compression` gzip, lz4 and zstd: `barman backup` (postgres method) stores
/// `base.tar.*` and `<oid>.tar.*`, verify-backup checks every member against the
/// manifest and notices a damaged tar, and `recover` unpacks them, the tablespace
/// relocated, into a copy that starts with the data of the moment of the backup.
#[test]
fn compressed_tar_backups_are_verified_and_recovered() {
    let Some(site) = Site::start() else {
        return;
    };
    site.tablespace("ts1");
    site.pg
        .sql("CREATE TABLE u TABLESPACE ts1 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g")
        .unwrap();
    let oid = site
        .pg
        .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
        .unwrap();
    let u_digest = "SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM u";
    let conf = std::fs::read_to_string(&site.conf).unwrap();
    for (i, (codec, ext)) in [("gzip", "gz"), ("lz4", "lz4"), ("zstd", "zst")]
        .into_iter()
        .enumerate()
    {
        std::fs::write(
            &site.conf,
            format!("{conf}immediate_checkpoint = true\nbackup_compression = {codec}\n"),
        )
        .unwrap();
        site.insert(i as u32 * 1000 + 1, i as u32 * 1000 + 1000);
        let out = ok(barman_as_server(
            &site.conf,
            &["backup", "pg", "--wait", "--wait-timeout", "60"],
        ));
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("Backup ").and_then(|r| r.split(' ').next()))
            .filter(|id| id.len() == 15)
            .unwrap_or_else(|| panic!("no backup id in {out}"))
            .to_owned();
        let data = site.home.join("pg/base").join(&id).join("data");
        let base = data.join(format!("base.tar.{ext}"));
        assert!(
            base.is_file(),
            "{codec}: {:?}",
            std::fs::read_dir(&data).unwrap().collect::<Vec<_>>()
        );
        assert!(data.join(format!("{oid}.tar.{ext}")).is_file());
        let info =
            std::fs::read_to_string(site.home.join("pg/meta").join(format!("{id}-backup.info")))
                .unwrap();
        assert!(info.contains(&format!("compression={codec}\n")), "{info}");
        assert!(info.contains("status=DONE"), "{info}");
        let out = ok(barman_as_server(&site.conf, &["verify-backup", "pg", &id]));
        assert!(!out.contains("missing"), "{out}");
        let expected = (site.digest(), site.pg.sql(u_digest).unwrap());

        let moved = site.dest(&format!("ts-{codec}"));
        let dest = site.dest(&format!("copy-{codec}"));
        ok(site.recover(&[
            "--tablespace",
            &format!("ts1:{}", moved.display()),
            "pg",
            &id,
            &dest.display().to_string(),
        ]));
        assert_eq!(
            std::fs::read_link(dest.join("pg_tblspc").join(&oid)).unwrap(),
            moved
        );
        assert!(!dest.join("base.tar.gz").exists() && dest.join("PG_VERSION").is_file());
        // The configuration from inside the tar is the one made safe (it was left as it
        // was: archive_command on, archiving into production's archive).
        let safe = |dest: &Path| {
            let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
            assert!(
                auto.contains("#BARMAN#archive_command")
                    && auto.contains("\narchive_command = false\n"),
                "{auto}"
            );
            assert!(dest.join("postgresql.auto.conf.origin").is_file());
        };
        safe(&dest);
        let copy = Copy::start(&site, &dest, true);
        copy.wait_replayed();
        assert_eq!((copy.sql(DIGEST), copy.sql(u_digest)), expected, "{codec}");
        drop(copy);

        if codec == "zstd"
            && barman_testkit::tools::which("rsync").is_some()
            && let Some(sshd) = Sshd::start()
        {
            // Onto a remote "host": unpacked into local staging, then sent with rsync.
            let remote_dir = site.dest("remote-host");
            std::fs::create_dir(&remote_dir).unwrap();
            sshd.give(&remote_dir);
            let dest = remote_dir.join("data");
            let ts_dest = remote_dir.join("ts1");
            ok(site.recover(&[
                "--remote-ssh-command",
                &sshd.ssh_command(),
                "--tablespace",
                &format!("ts1:{}", ts_dest.display()),
                "pg",
                &id,
                &dest.display().to_string(),
            ]));
            safe(&dest);
            let copy = Copy::start(&site, &dest, true);
            copy.wait_replayed();
            assert_eq!((copy.sql(DIGEST), copy.sql(u_digest)), expected, "remote");
        }
        if codec == "gzip" {
            // A damaged byte in the middle of a tar: verify-backup fails and says where.
            let mut bytes = std::fs::read(&base).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x55;
            std::fs::write(&base, bytes).unwrap();
            let (code, out, err) = barman_as_server(&site.conf, &["verify-backup", "pg", &id]);
            assert_ne!(code, 0, "{out}{err}");
            assert!(
                format!("{out}{err}").contains("base.tar.gz") || out.contains("mismatch"),
                "{out}{err}"
            );
        }
    }
}

/// Pre/post recovery scripts run around the restore with Barman's variables; a pre
/// retry script exiting 63 stops the recovery before anything is written.
#[test]
fn recovery_hooks_run_with_barmans_environment() {
    let Some(site) = Site::start() else {
        return;
    };
    site.insert(1, 100);
    let id = take_backup(&site);
    site.switch_and_wait();
    let env_dir = site.dest("hooks");
    std::fs::create_dir(&env_dir).unwrap();
    let conf = std::fs::read_to_string(&site.conf).unwrap();
    let e = env_dir.display();
    std::fs::write(
        &site.conf,
        format!(
            "{conf}pre_recovery_script = env | grep ^BARMAN_ | sort > {e}/pre\npost_recovery_script = test -f $BARMAN_DESTINATION_DIRECTORY/PG_VERSION && env | grep ^BARMAN_ | sort > {e}/post\n"
        ),
    )
    .unwrap();
    let dest = site.dest("hooked");
    ok(site.recover(&["pg", &id, &dest.display().to_string()]));
    let pre = std::fs::read_to_string(env_dir.join("pre")).unwrap();
    for want in [
        format!("BARMAN_BACKUP_ID={id}"),
        format!("BARMAN_DESTINATION_DIRECTORY={}", dest.display()),
        "BARMAN_PHASE=pre".to_owned(),
        "BARMAN_HOOK=recovery_script".to_owned(),
        "BARMAN_SERVER=pg".to_owned(),
        "BARMAN_STATUS=DONE".to_owned(),
        "BARMAN_REMOTE_COMMAND=".to_owned(),
    ] {
        assert!(pre.lines().any(|l| l == want), "{want} not in\n{pre}");
    }
    let post = std::fs::read_to_string(env_dir.join("post")).unwrap();
    assert!(post.lines().any(|l| l == "BARMAN_PHASE=post"), "{post}");

    // A retry script that aborts: refused, nothing written.
    std::fs::write(
        &site.conf,
        format!("{conf}pre_recovery_retry_script = exit 63\n"),
    )
    .unwrap();
    let dest = site.dest("stopped");
    let (code, out, err) = site.recover(&["pg", &id, &dest.display().to_string()]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(!dest.exists());
}

/// Barman 3.19's restore options: `--network-compression` (rsync compresses),
/// `--recovery-option-port` (barman-wal-restore's `--port`), `--restore-command`,
/// `--partial-wal` and the staging options, each working or warned as Barman does.
#[test]
fn restore_options_of_barman_3_19() {
    use std::os::unix::fs::PermissionsExt;
    let Some(site) = Site::start() else {
        return;
    };
    let Some(real) = barman_testkit::tools::which("rsync") else {
        barman_testkit::tools::require("rsync", false);
        return;
    };
    let Some(sshd) = Sshd::start() else {
        return;
    };
    site.insert(1, 100);
    let id = take_backup(&site);
    site.switch_and_wait();
    // An rsync that logs its arguments.
    let bin = site.pg.dir().join("logged-bin");
    std::fs::create_dir(&bin).unwrap();
    let log = site.pg.dir().join("rsync.calls");
    std::fs::write(
        bin.join("rsync"),
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$(date +%s.%N)\" \"$*\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("rsync"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        let out = Command::new(BARMAN)
            .arg("-c")
            .arg(&site.conf)
            .arg("recover")
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let remote_dir = site.dest("remote-host");
    std::fs::create_dir(&remote_dir).unwrap();
    sshd.give(&remote_dir);
    let ssh = sshd.ssh_command();

    let dest = remote_dir.join("compressed");
    let (code, out, err) = run(&[
        "--remote-ssh-command",
        &ssh,
        "--network-compression",
        "--get-wal",
        "--recovery-option-port",
        "2222",
        "--partial-wal",
        "pg",
        &id,
        &dest.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("The --partial-wal option was ignored as it only works with --no-get-wal."),
        "{err}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.lines().any(|l| l.split(' ').any(|w| w == "-z")),
        "rsync without -z: {calls}"
    );
    let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("restore_command = 'barman-wal-restore -P -U barman --port 2222 "),
        "{auto}"
    );
    // Without the option, no compression.
    std::fs::remove_file(&log).unwrap();
    let dest = remote_dir.join("plain");
    let (code, out, err) = run(&[
        "--remote-ssh-command",
        &ssh,
        "pg",
        &id,
        &dest.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        !calls.lines().any(|l| l.split(' ').any(|w| w == "-z")),
        "{calls}"
    );

    // Jobs started in batches: one every 2 seconds, so the third starts 4 s after the
    // first (a lower bound: a slow machine only widens the gaps).
    std::fs::remove_file(&log).unwrap();
    let dest = remote_dir.join("batched");
    let (code, out, err) = run(&[
        "--remote-ssh-command",
        &ssh,
        "-j",
        "3",
        "--jobs-start-batch-size",
        "1",
        "--jobs-start-batch-period",
        "2",
        "pg",
        &id,
        &dest.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let starts: Vec<f64> = calls
        .lines()
        .filter(|l| l.contains("--files-from="))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 3, "{calls}");
    let first = starts.iter().copied().fold(f64::MAX, f64::min);
    let last = starts.iter().copied().fold(0.0, f64::max);
    assert!(last - first >= 3.5, "jobs not started in batches: {calls}");

    // The staging place is where this host stages (here, where it cannot).
    let dest = remote_dir.join("staged");
    for flag in ["--local-staging-path", "--staging-path"] {
        let (code, _, err) = run(&[
            "--remote-ssh-command",
            &ssh,
            flag,
            "/nonexistent-staging",
            "pg",
            &id,
            &dest.display().to_string(),
        ]);
        assert_eq!(code, 1, "{flag}");
        assert!(err.contains("/nonexistent-staging"), "{flag}: {err}");
        // Refused before anything was written.
        assert!(
            std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_none()),
            "{flag}: {} written",
            dest.display()
        );
    }
    let (code, _, err) = run(&[
        "--staging-location",
        "remote",
        "pg",
        &id,
        &dest.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--staging-location remote is not supported"),
        "{err}"
    );

    // A custom restore_command in get-wal mode, quoted; ignored with a warning without.
    let local = site.dest("custom");
    let (code, out, err) = run(&[
        "--get-wal",
        "--restore-command",
        "cp '/wal archive'/%f %p",
        "pg",
        &id,
        &local.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let auto = std::fs::read_to_string(local.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("restore_command = 'cp ''/wal archive''/%f %p'\n"),
        "{auto}"
    );
    let local = site.dest("custom-ignored");
    let (code, out, err) = run(&[
        "--no-get-wal",
        "--restore-command",
        "cp /x/%f %p",
        "--recovery-staging-path",
        "/tmp",
        "--combine-mode",
        "link",
        "pg",
        &id,
        &local.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for warning in [
        "The provided custom restore command was ignored as it only works with get-wal mode.",
        "--recovery-staging-path is not needed",
        "--combine-mode is not used",
    ] {
        assert!(err.contains(warning), "{warning}: {err}");
    }
    let auto = std::fs::read_to_string(local.join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("/x/%f"), "{auto}");
}
