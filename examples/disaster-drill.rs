//! The disaster drill: back up a throwaway PostgreSQL, break it the way people do, and
//! recover it to the moment before each mistake, by time, xid, restore point and LSN.
//!
//! ```text
//! cargo build --release -p barman-cli --bins
//! cargo run --release -p barman-examples --example disaster-drill
//! ```
//!
//! Needs PostgreSQL's server programs (`initdb`, `pg_ctl`, `psql`; found through
//! `PG_BIN`, `pg_config --bindir` or `/usr/lib/postgresql/<major>/bin`) and the `barman`
//! binary (`BARMAN_BIN`, else next to this program's directory). As root, every
//! PostgreSQL and barman command runs as the `postgres` OS user, as the server refuses
//! to run as root. Everything lives in a temporary directory removed at the end (kept
//! with `--keep`). Exits non-zero when any recovered copy differs from what was
//! committed before the mistake.
//!
//! The story (the talk this project started from): rows go in, a base backup is taken
//! while WAL is archived through `barman put-wal`, more work is committed, a restore
//! point is made, then at "18:43" someone runs `UPDATE t SET c = 'black'` without a
//! WHERE, and a little later `DROP DATABASE scott`. The UPDATE is undone by recovering
//! to the time, the xid, the restore point and the LSN before it; the DROP by the LSN
//! before it, exclusive (a time target cannot: PostgreSQL 15.4+ marks the database invalid in WAL
//! before the DROP commits, and replaying to the commit keeps that mark).
//!
//! Then "RPO 0": the same cluster is also a streaming-only server (`drill-stream`) whose
//! WAL `barman receive-wal` (started by `barman cron`) streams synchronously. After its
//! backup, 100 more transactions commit and the primary is destroyed: SIGKILL, data
//! directory deleted. The streamed WAL, with its newest `.partial`, recovers all of
//! them; `archive_command` alone, in the same run, loses those of the segment it never
//! received.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error>>;

/// Runs commands as the OS user that owns the throwaway cluster.
struct Runner {
    as_postgres: bool,
    pg_bin: PathBuf,
    barman: PathBuf,
}

impl Runner {
    fn command(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg(&self, tool: &str) -> Command {
        self.command(&self.pg_bin.join(tool))
    }

    fn run(&self, mut cmd: Command, what: &str) -> Res<Output> {
        let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{what} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(out)
    }

    fn barman(&self, conf: &Path, args: &[&str]) -> Res<String> {
        let mut cmd = self.command(&self.barman);
        cmd.arg("-c").arg(conf).args(args);
        let out = self.run(cmd, &format!("barman {}", args.join(" ")))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A PostgreSQL server of the drill: the original or a recovered copy.
struct Server<'a> {
    runner: &'a Runner,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    log: PathBuf,
    running: bool,
}

impl Server<'_> {
    fn start(&mut self) -> Res<()> {
        let mut cmd = self.runner.pg("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=''",
                self.port,
                self.socket_dir.display()
            ))
            .args(["-w", "-t", "120", "start"]);
        self.running = true;
        self.runner
            .run(
                cmd,
                &format!("starting the server in {}", self.data.display()),
            )
            .map_err(|e| {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                format!("{e}\nserver log:\n{log}")
            })?;
        Ok(())
    }

    fn stop(&mut self) {
        if self.running {
            let mut cmd = self.runner.pg("pg_ctl");
            cmd.arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "stop"]);
            let _ = cmd.output();
            self.running = false;
        }
    }

    fn sql_in(&self, db: &str, sql: &str) -> Res<String> {
        let mut cmd = self.runner.pg("psql");
        cmd.arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        let out = self.runner.run(cmd, &format!("psql {sql:.60}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn sql(&self, sql: &str) -> Res<String> {
        self.sql_in("postgres", sql)
    }
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the data looked like at one moment: enough to compare contents, not just counts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    /// Committed "good" transactions (rows of `audit`).
    transactions: u64,
    /// Rows of `t`.
    rows: u64,
    /// md5 of `t`'s rows in key order.
    t_md5: String,
    /// Whether database `scott` exists, and the md5 of its `emp` table.
    scott: Option<String>,
}

fn state(s: &Server<'_>) -> Res<State> {
    let t = s.sql(
        "SELECT count(*) || ' ' || coalesce(md5(string_agg(id || ':' || c, ',' ORDER BY id)), '-') FROM t",
    )?;
    let (rows, t_md5) = t.split_once(' ').ok_or("bad state query")?;
    let transactions: u64 = s.sql("SELECT count(*) FROM audit")?.parse()?;
    let scott = if s.sql("SELECT count(*) FROM pg_database WHERE datname = 'scott'")? == "1" {
        Some(s.sql_in(
            "scott",
            "SELECT md5(string_agg(empno || ':' || ename || ':' || sal, ',' ORDER BY empno)) FROM emp",
        )?)
    } else {
        None
    };
    Ok(State {
        transactions,
        rows: rows.parse()?,
        t_md5: t_md5.to_owned(),
        scott,
    })
}

/// One committed unit of good work: rows into `t` and a line in `audit`. Returns the
/// transaction id.
fn good_work(s: &Server<'_>, batch: u32, rows: u32) -> Res<String> {
    let from = batch * 100_000;
    s.sql(&format!(
        "BEGIN; INSERT INTO t SELECT g, 'white-' || g FROM generate_series({from}, {}) g; \
         INSERT INTO audit VALUES ({batch}, txid_current()); \
         SELECT txid_current(); COMMIT;",
        from + rows - 1
    ))
}

struct Outcome {
    target: String,
    expected: State,
    found: Option<State>,
    rto: Duration,
    error: Option<String>,
    /// Shown for comparison, expected to lose work: archive_command alone when the
    /// primary is destroyed. It passes when it recovers at all.
    loss_expected: bool,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.error.is_none()
            && match &self.found {
                Some(f) if self.loss_expected => f.transactions <= self.expected.transactions,
                Some(f) => *f == self.expected,
                None => false,
            }
    }
}

fn find_pg_bin() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").is_file() {
            return Ok(p);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .ok_or_else(|| "no PostgreSQL server programs found (set PG_BIN)".into())
}

fn find_barman() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("BARMAN_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no directory")?;
    for candidate in [dir.join("barman"), dir.join("../barman")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err("the barman binary was not found next to this program: build it (cargo build --release -p barman-cli --bins) or set BARMAN_BIN".into())
}

/// Options of [`run`].
#[derive(Debug)]
pub(crate) struct DrillOptions {
    /// The `barman` binary.
    pub(crate) barman: PathBuf,
    /// PostgreSQL's server programs.
    pub(crate) pg_bin: PathBuf,
    /// Keep the temporary directory.
    pub(crate) keep: bool,
    /// Print progress.
    pub(crate) verbose: bool,
}

/// Runs the whole drill; `Ok(report)` when every recovered copy matched, the report
/// text in the error otherwise.
pub(crate) fn run(opts: &DrillOptions) -> Result<String, String> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let runner = Runner {
        as_postgres: is_root,
        pg_bin: opts.pg_bin.clone(),
        barman: opts.barman.clone(),
    };
    let base = std::env::temp_dir().join(format!(
        "barman-rs-drill.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    let result = drill(&runner, &base, opts);
    if opts.keep {
        eprintln!("kept {}", base.display());
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
    match result {
        Ok(outcomes) => {
            let report = render(&outcomes);
            if outcomes.iter().all(Outcome::passed) {
                Ok(report)
            } else {
                Err(report)
            }
        }
        Err(e) => Err(format!("the drill could not run: {e}")),
    }
}

fn render(outcomes: &[Outcome]) -> String {
    let mut s = String::from(
        "target                                           rows exp/found   txns exp/found  lost  scott      RTO     result\n",
    );
    for o in outcomes {
        let (rows, txns, lost, scott) = match &o.found {
            Some(f) => (
                format!("{}/{}", o.expected.rows, f.rows),
                format!("{}/{}", o.expected.transactions, f.transactions),
                o.expected
                    .transactions
                    .saturating_sub(f.transactions)
                    .to_string(),
                match (&o.expected.scott, &f.scott) {
                    (Some(_), Some(_)) => "present",
                    (None, None) => "absent",
                    (Some(_), None) => "MISSING",
                    (None, Some(_)) => "EXTRA",
                },
            ),
            None => ("-".into(), "-".into(), "-".into(), "-"),
        };
        let result = match (&o.error, &o.found) {
            (Some(e), _) => format!("ERROR {e}"),
            (None, Some(f)) if o.loss_expected => format!(
                "{} committed transactions lost",
                o.expected.transactions.saturating_sub(f.transactions)
            ),
            (None, Some(f)) if *f == o.expected => "OK (contents match)".to_owned(),
            _ => "DIFFERENT".to_owned(),
        };
        s.push_str(&format!(
            "{:<48} {:>15} {:>15} {:>5}  {:<8} {:>6.2}s  {}\n",
            o.target,
            rows,
            txns,
            lost,
            scott,
            o.rto.as_secs_f64(),
            result
        ));
    }
    s
}

fn drill(runner: &Runner, base: &Path, opts: &DrillOptions) -> Res<Vec<Outcome>> {
    let say = |m: &str| {
        if opts.verbose {
            eprintln!("drill: {m}");
        }
    };
    std::fs::create_dir_all(base)?;
    if runner.as_postgres {
        runner.run(
            {
                let mut c = Command::new("chown");
                c.arg("postgres:").arg(base);
                c
            },
            "chown",
        )?;
    }
    let data = base.join("data");
    let home = base.join("barman");
    let conf = base.join("barman.conf");
    let mut initdb = runner.pg("initdb");
    initdb.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-sync",
        "--wal-segsize=1",
    ]);
    runner.run(initdb, "initdb")?;
    let port = free_port()?;
    let conninfo = format!(
        "host={} port={port} user=postgres dbname=postgres",
        base.display()
    );
    let conf_text = format!(
        "[barman]\nbarman_home = {home}\nlog_file = {base}/barman.log\nlog_level = INFO\n\n\
         [drill]\ndescription = \"The disaster drill\"\nconninfo = {conninfo}\n\
         backup_method = local-rsync\narchiver = on\ncompression = gzip\n\
         immediate_checkpoint = true\nparallel_jobs = 2\n\n\
         [drill-stream]\ndescription = \"The same cluster, its WAL streamed synchronously\"\n\
         conninfo = {conninfo}\nstreaming_conninfo = {conninfo}\nbackup_method = postgres\n\
         archiver = off\nstreaming_archiver = on\nslot_name = barman\ncreate_slot = auto\n\
         compression = gzip\nimmediate_checkpoint = true\n",
        home = home.display(),
        base = base.display()
    );
    write_as(runner, &conf, &conf_text)?;
    let auto = data.join("postgresql.auto.conf");
    let mut auto_text = std::fs::read_to_string(&auto)?;
    auto_text.push_str(&format!(
        "archive_mode = on\narchive_command = '{} -q -c {} put-wal drill %p'\nwal_level = replica\n\
         fsync = off\nlog_min_messages = warning\n",
        runner.barman.display(),
        conf.display()
    ));
    write_as(runner, &auto, &auto_text)?;
    let mut primary = Server {
        runner,
        data: data.clone(),
        socket_dir: base.to_owned(),
        port,
        log: base.join("primary.log"),
        running: false,
    };
    primary.start()?;
    say(&format!(
        "cluster started on port {port}, WAL archived by barman put-wal"
    ));

    primary.sql(
        "CREATE TABLE t (id int PRIMARY KEY, c text); CREATE TABLE audit (batch int, xid bigint)",
    )?;
    primary.sql("CREATE DATABASE scott")?;
    primary.sql_in(
        "scott",
        "CREATE TABLE emp (empno int PRIMARY KEY, ename text, sal numeric); \
         INSERT INTO emp SELECT g, 'emp' || g, 1000 + g FROM generate_series(1, 2000) g",
    )?;
    good_work(&primary, 1, 20_000)?;
    say("data loaded; taking a base backup");
    let out = runner.barman(
        &conf,
        &["backup", "drill", "--wait", "--wait-timeout", "120"],
    )?;
    let backup_id = out
        .lines()
        .find_map(|l| l.strip_prefix("Backup ").and_then(|r| r.split(' ').next()))
        .filter(|id| id.len() == 15)
        .ok_or_else(|| format!("no backup id in: {out}"))?
        .to_owned();
    say(&format!("backup {backup_id} is DONE"));

    // The working day goes on after the backup.
    good_work(&primary, 2, 5_000)?;
    primary.sql_in("scott", "UPDATE emp SET sal = sal * 1.1 WHERE empno <= 100")?;
    good_work(&primary, 3, 5_000)?;
    primary.sql("SELECT pg_create_restore_point('before_the_mistakes')")?;
    let after_restore_point = state(&primary)?;
    let last_good_xid = good_work(&primary, 4, 5_000)?;
    let before_update = state(&primary)?;
    let lsn_before_update = primary.sql("SELECT pg_current_wal_insert_lsn()")?;
    let time_before_update = primary.sql("SELECT clock_timestamp()")?;
    say("18:43: UPDATE t SET c = 'black' -- without a WHERE");
    primary.sql("UPDATE t SET c = 'black'")?;
    std::thread::sleep(Duration::from_millis(50));
    let before_drop = state(&primary)?;
    // DROP DATABASE marks the database invalid (a non-transactional update, PostgreSQL
    // 15.4 and later) before its commit: a time or xid target replays that mark and
    // recovers an unusable `scott`. The LSN where the DROP's first record goes, with
    // --exclusive, stops ahead of it.
    let lsn_before_drop = primary.sql("SELECT pg_current_wal_insert_lsn()")?;
    say("18:47: DROP DATABASE scott");
    primary.sql("DROP DATABASE scott")?;
    // Make every WAL file of the story reach the archive.
    runner.barman(
        &conf,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "drill",
        ],
    )?;
    primary.stop();

    let targets: Vec<(String, Vec<String>, State)> = vec![
        (
            format!("--target-time '{time_before_update}'"),
            vec!["--target-time".into(), time_before_update.clone()],
            before_update.clone(),
        ),
        (
            format!("--target-xid {last_good_xid}"),
            vec!["--target-xid".into(), last_good_xid.clone()],
            before_update.clone(),
        ),
        (
            "--target-name before_the_mistakes".into(),
            vec!["--target-name".into(), "before_the_mistakes".into()],
            after_restore_point,
        ),
        (
            format!("--target-lsn {lsn_before_update} --exclusive"),
            vec![
                "--target-lsn".into(),
                lsn_before_update.clone(),
                "--exclusive".into(),
            ],
            before_update.clone(),
        ),
        (
            format!("--target-lsn {lsn_before_drop} --exclusive (DROP)"),
            vec![
                "--target-lsn".into(),
                lsn_before_drop.clone(),
                "--exclusive".into(),
            ],
            before_drop,
        ),
    ];
    let mut outcomes = Vec::new();
    for (i, (label, mut args, expected)) in targets.into_iter().enumerate() {
        say(&format!("recovering with {label}"));
        args.extend(["--target-action".into(), "promote".into()]);
        outcomes.push(recover_and_read(
            runner,
            &conf,
            base,
            &format!("recovered-{i}"),
            Recovery {
                server: "drill",
                backup: &backup_id,
                args,
                label,
                expected,
                loss_expected: false,
            },
        ));
    }
    outcomes.extend(rpo_zero(runner, base, &conf, &mut primary, &say)?);
    Ok(outcomes)
}

/// One recovery of the drill: which backup, how, and what it must hold.
struct Recovery<'a> {
    server: &'a str,
    backup: &'a str,
    /// `recover` options after the destination.
    args: Vec<String>,
    label: String,
    expected: State,
    loss_expected: bool,
}

/// Recovers into `base/<name>`, starts the copy, waits until it accepts queries as a
/// primary (recovery reached its target and promoted), reads its state, stops and
/// removes it. The RTO is from the `recover` command to that first query.
fn recover_and_read(
    runner: &Runner,
    conf: &Path,
    base: &Path,
    name: &str,
    r: Recovery<'_>,
) -> Outcome {
    let dest = base.join(name);
    let mut cmd_args: Vec<String> = vec![
        "recover".into(),
        r.server.into(),
        r.backup.into(),
        dest.display().to_string(),
    ];
    cmd_args.extend(r.args);
    let refs: Vec<&str> = cmd_args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut outcome = Outcome {
        target: r.label,
        expected: r.expected,
        found: None,
        rto: Duration::ZERO,
        error: None,
        loss_expected: r.loss_expected,
    };
    let result = (|| -> Res<State> {
        runner.barman(conf, &refs)?;
        let mut copy = Server {
            runner,
            data: dest.clone(),
            socket_dir: base.to_owned(),
            port: free_port()?,
            log: base.join(format!("{name}.log")),
            running: false,
        };
        copy.start()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while copy.sql("SELECT pg_is_in_recovery()")? != "f" {
            if Instant::now() > deadline {
                return Err("recovery did not finish within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        outcome.rto = started.elapsed();
        let found = state(&copy)?;
        copy.stop();
        Ok(found)
    })();
    match result {
        Ok(found) => outcome.found = Some(found),
        Err(e) => outcome.error = Some(e.to_string().lines().next().unwrap_or("").to_owned()),
    }
    let _ = std::fs::remove_dir_all(&dest);
    outcome
}

/// The "RPO 0" scene: the primary comes back, `barman cron` starts `receive-wal` for
/// server `drill-stream` (streaming only, synchronous), which is backed up; more work
/// is committed, then the primary is destroyed: every process SIGKILLed, its data
/// directory deleted. The streamed WAL, with its newest `.partial`, recovers every
/// committed transaction; archive_command alone (server `drill`, the same run) loses
/// what was in the segment it never got.
fn rpo_zero(
    runner: &Runner,
    base: &Path,
    conf: &Path,
    primary: &mut Server<'_>,
    say: &dyn Fn(&str),
) -> Res<Vec<Outcome>> {
    say("RPO 0: the primary again, its WAL streamed synchronously by barman receive-wal");
    primary.start()?;
    primary.sql("ALTER SYSTEM SET synchronous_standby_names = 'barman_receive_wal'")?;
    primary.sql("SELECT pg_reload_conf()")?;
    // Stops receive-wal however the scene ends.
    struct StopReceiver<'a>(&'a Runner, &'a Path);
    impl Drop for StopReceiver<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .barman(self.1, &["receive-wal", "--stop", "drill-stream"]);
        }
    }
    runner.barman(conf, &["cron"])?;
    let receiver = StopReceiver(runner, conf);
    let deadline = Instant::now() + Duration::from_secs(60);
    while primary.sql(
        "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal' AND sync_state = 'sync'",
    )? != "1"
    {
        if Instant::now() > deadline {
            return Err("receive-wal did not stream synchronously within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    runner.barman(
        conf,
        &["backup", "drill-stream", "--wait", "--wait-timeout", "120"],
    )?;
    say("backup of drill-stream is DONE; 100 more transactions, each COMMIT returned");
    for batch in 10..110 {
        good_work(primary, batch, 50)?;
    }
    let expected = state(primary)?;
    say("the primary is destroyed: SIGKILL, then its data directory deleted");
    let pid_file = std::fs::read_to_string(primary.data.join("postmaster.pid"))?;
    let pid = pid_file.lines().next().unwrap_or("").trim().to_owned();
    let children = Command::new("pgrep").args(["-P", &pid]).output()?;
    runner.run(
        {
            let mut c = Command::new("kill");
            c.args(["-KILL", &pid]);
            c
        },
        "kill -KILL the postmaster",
    )?;
    for child in String::from_utf8_lossy(&children.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", child]).status();
    }
    primary.running = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            return Err(format!("the postmaster {pid} survived SIGKILL").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir_all(&primary.data)?;
    drop(receiver);

    let mut outcomes = Vec::new();
    for (server, label, loss_expected) in [
        (
            "drill-stream",
            "RPO 0: streamed synchronously, latest",
            false,
        ),
        ("drill", "archive_command alone, latest", true),
    ] {
        say(&format!("recovering {server}: {label}"));
        outcomes.push(recover_and_read(
            runner,
            conf,
            base,
            &format!("recovered-{server}"),
            Recovery {
                server,
                backup: "latest",
                args: Vec::new(),
                label: label.to_owned(),
                expected: expected.clone(),
                loss_expected,
            },
        ));
    }
    Ok(outcomes)
}

/// Writes a file the server user can read and change.
fn write_as(runner: &Runner, path: &Path, text: &str) -> Res<()> {
    std::fs::write(path, text)?;
    if runner.as_postgres {
        runner.run(
            {
                let mut c = Command::new("chown");
                c.arg("postgres:").arg(path);
                c
            },
            "chown",
        )?;
    }
    Ok(())
}

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[allow(dead_code)] // the integration test includes this file and calls `run` instead
fn main() {
    let keep = std::env::args().any(|a| a == "--keep");
    let opts = match (find_barman(), find_pg_bin()) {
        (Ok(barman), Ok(pg_bin)) => DrillOptions {
            barman,
            pg_bin,
            keep,
            verbose: true,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    match run(&opts) {
        Ok(report) => {
            println!("{report}");
            println!("every recovered copy holds exactly what was committed before its target");
        }
        Err(report) => {
            println!("{report}");
            eprintln!("the drill FAILED");
            std::process::exit(1);
        }
    }
}
