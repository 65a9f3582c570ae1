//! The shared set-up of `barman-bench`: the peers (found, installed when allowed, or
//! reported missing), one throwaway PostgreSQL cluster, timed runs with their peak
//! memory, repetitions and their statistics, and the report (markdown tables with
//! ratios to the best peer, and SVG bar charts).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A program on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    #[allow(clippy::disallowed_methods)] // PATH lookup is what finding a program means
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The first line a program prints for `args` (its version), or `None`.
pub fn version_of(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

/// The peers found (or installed), and what could not be compared.
#[derive(Debug, Default)]
pub struct Peers {
    /// Debian's `pgbackrest`.
    pub pgbackrest: Option<PathBuf>,
    /// Barman 3.19's `barman` in a venv.
    pub barman_py: Option<PathBuf>,
    /// The C compression tools (`gzip`, `zstd`, ...).
    pub c_tools: Vec<(String, PathBuf)>,
    /// GNU time, for peak memory.
    pub gnu_time: Option<PathBuf>,
    /// The comparisons that cannot be made, and why.
    pub missing: Vec<String>,
}

/// Where `.ci/run` installs Barman; the bench uses (and makes) the same venv.
pub const BARMAN_VENV: &str = "/opt/barman-rs-oracle";

/// The Barman version the venv gets.
pub const BARMAN_VERSION: &str = "3.19.1";

const C_TOOLS: &[(&str, &str)] = &[
    ("gzip", "gzip"),
    ("bzip2", "bzip2"),
    ("zstd", "zstd"),
    ("lz4", "lz4"),
    ("xz", "xz-utils"),
];

impl Peers {
    /// Finds the peers; with `install` (as root), first installs what is missing:
    /// Debian's `pgbackrest`, `time` and the C tools, Barman from PyPI in
    /// [`BARMAN_VENV`]. Everything still missing is listed in `missing`.
    pub fn find(install: bool) -> Peers {
        if install && is_root() {
            let mut packages: Vec<&str> = C_TOOLS
                .iter()
                .filter(|(tool, _)| which(tool).is_none())
                .map(|(_, pkg)| *pkg)
                .collect();
            if which("pgbackrest").is_none() {
                packages.push("pgbackrest");
            }
            if !Path::new("/usr/bin/time").is_file() {
                packages.push("time");
            }
            if !Path::new(BARMAN_VENV).join("bin/barman").is_file() {
                packages.push("python3-venv");
            }
            if !packages.is_empty() {
                eprintln!("installing {}", packages.join(" "));
                let _ = Command::new("apt-get")
                    .args(["install", "-y", "-qq", "--no-install-recommends"])
                    .args(&packages)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status();
            }
            let venv = Path::new(BARMAN_VENV);
            if !venv.join("bin/barman").is_file() {
                eprintln!("installing barman {BARMAN_VERSION} from PyPI into {BARMAN_VENV}");
                let _ = Command::new("/usr/bin/python3")
                    .args(["-m", "venv"])
                    .arg(venv)
                    .status();
                let _ = Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", &format!("barman=={BARMAN_VERSION}")])
                    .status();
            }
        }
        let mut peers = Peers {
            pgbackrest: which("pgbackrest"),
            gnu_time: Some(PathBuf::from("/usr/bin/time")).filter(|p| p.is_file()),
            ..Peers::default()
        };
        #[allow(clippy::disallowed_methods)] // the oracle's location, as the tests read it
        let barman_py = std::env::var_os("BARMAN_ORACLE_PYTHON")
            .map(|p| PathBuf::from(p).with_file_name("barman"))
            .filter(|p| p.is_file())
            .or_else(|| Some(Path::new(BARMAN_VENV).join("bin/barman")).filter(|p| p.is_file()));
        peers.barman_py = barman_py;
        for (tool, pkg) in C_TOOLS {
            match which(tool) {
                Some(p) => peers.c_tools.push(((*tool).to_owned(), p)),
                None => peers.missing.push(format!(
                    "{tool} (Debian package {pkg}): its codec is not compared"
                )),
            }
        }
        if peers.pgbackrest.is_none() {
            peers.missing.push(
                "pgBackRest (Debian package pgbackrest): archive-push, backups and restores not compared".into(),
            );
        }
        if peers.barman_py.is_none() {
            peers.missing.push(format!(
                "Barman {BARMAN_VERSION} (PyPI, in {BARMAN_VENV} or BARMAN_ORACLE_PYTHON's venv): put-wal, backups and restores not compared"
            ));
        }
        if peers.gnu_time.is_none() {
            peers
                .missing
                .push("GNU time (Debian package time): no peak memory figures".into());
        }
        peers
    }
}

/// One timed run of a command.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Wall-clock seconds.
    pub secs: f64,
    /// Peak resident memory of the command and its children, KiB (with GNU time).
    pub max_rss_kib: Option<u64>,
}

/// Runs `cmd` (its output discarded, its error output kept for a failure), timed; with
/// `time` (GNU time), also its peak memory.
///
/// # Errors
///
/// The command cannot start or exits non-zero: its last lines of error output.
pub fn timed(cmd: &mut Command, time: Option<&Path>) -> Result<Run, String> {
    let rss_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut wrapped;
    let run_cmd: &mut Command = match time {
        Some(t) => {
            wrapped = Command::new(t);
            wrapped
                .args(["-f", "%M", "-o"])
                .arg(rss_file.path())
                .arg(cmd.get_program())
                .args(cmd.get_args());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            if let Some(d) = cmd.get_current_dir() {
                wrapped.current_dir(d);
            }
            &mut wrapped
        }
        None => cmd,
    };
    let start = Instant::now();
    let out = run_cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!(
            "{} {}: {}",
            cmd.get_program().to_string_lossy(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    let max_rss_kib = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|t| t.lines().last()?.trim().parse().ok());
    Ok(Run { secs, max_rss_kib })
}

/// Runs `cmd` and fails loudly: set-up steps, not measurements.
///
/// # Panics
///
/// When the command fails: the bench cannot go on.
pub fn must(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Median, minimum and maximum.
pub fn stats(samples: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (median, s[0], s[n - 1])
}

/// Bytes under `path` (files counted once, as `du -sb`), 0 when absent.
pub fn du_bytes(path: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(path).output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A throwaway PostgreSQL cluster run by the current user: a Unix socket in its own
/// directory, no TCP listener, archiving as set with [`Cluster::set`]. Stopped on drop.
#[derive(Debug)]
pub struct Cluster {
    /// The PostgreSQL binaries.
    pub bin: PathBuf,
    /// Where everything of the cluster lives (the socket too).
    pub dir: PathBuf,
    /// The data directory.
    pub data: PathBuf,
    running: bool,
}

/// The PostgreSQL 15 binaries: `PGBIN`, else Debian's.
pub fn pg_bin() -> Option<PathBuf> {
    #[allow(clippy::disallowed_methods)] // the bench's own setting
    let from_env = std::env::var_os("PGBIN").map(PathBuf::from);
    from_env
        .into_iter()
        .chain([PathBuf::from("/usr/lib/postgresql/15/bin")])
        .find(|d| d.join("initdb").is_file())
}

impl Cluster {
    /// `initdb` into `dir/data` (16 MiB segments, data checksums) and start it.
    ///
    /// # Panics
    ///
    /// When PostgreSQL cannot be set up: the bench cannot go on.
    pub fn start(bin: &Path, dir: &Path) -> Cluster {
        std::fs::create_dir_all(dir).expect("the cluster's directory");
        let data = dir.join("data");
        must(
            Command::new(bin.join("initdb"))
                .args(["-U", "postgres", "-A", "trust", "--data-checksums", "-D"])
                .arg(&data),
        );
        let conf = format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nport = 5432\nwal_level = replica\nmax_wal_senders = 10\narchive_mode = on\narchive_command = '/bin/true'\nshared_buffers = 256MB\nmax_wal_size = 4GB\ncheckpoint_timeout = 30min\n",
            dir.display()
        );
        let mut text = std::fs::read_to_string(data.join("postgresql.conf")).unwrap_or_default();
        text.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), text).expect("postgresql.conf");
        let mut c = Cluster {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            data,
            running: false,
        };
        c.pg_ctl("start");
        c
    }

    fn pg_ctl(&mut self, action: &str) {
        must(
            Command::new(self.bin.join("pg_ctl"))
                .args(["-w", "-D"])
                .arg(&self.data)
                .args(["-l"])
                .arg(self.dir.join("server.log"))
                .arg(action),
        );
        self.running = action != "stop";
    }

    /// Stops the server (a fast shutdown).
    pub fn stop(&mut self) {
        if self.running {
            self.pg_ctl("stop");
        }
    }

    /// Starts it again.
    pub fn restart(&mut self) {
        self.stop();
        self.pg_ctl("start");
    }

    /// The libpq connection string of the cluster.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port=5432 user=postgres dbname=postgres",
            self.dir.display()
        )
    }

    /// Runs `sql`, returns its output (unaligned, tuples only).
    ///
    /// # Panics
    ///
    /// When the statement fails.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Sets a server setting and reloads.
    pub fn set(&self, name: &str, value: &str) {
        self.sql(&format!(
            "ALTER SYSTEM SET {name} TO '{}'",
            value.replace('\'', "''")
        ));
        self.sql("SELECT pg_reload_conf()");
    }

    /// `pgbench` with these arguments against the cluster.
    ///
    /// # Panics
    ///
    /// When pgbench fails.
    pub fn pgbench(&self, args: &[&str]) {
        must(
            Command::new(self.bin.join("pgbench"))
                .args(["-h"])
                .arg(&self.dir)
                .args(["-U", "postgres"])
                .args(args)
                .arg("postgres"),
        );
    }

    /// The size of the database cluster on disk (`pg_database_size` summed), bytes.
    pub fn size(&self) -> u64 {
        self.sql("SELECT sum(pg_database_size(oid)) FROM pg_database")
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = Command::new(self.bin.join("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(&self.data)
                .arg("stop")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Starts a restored data directory on its own socket directory, waits for the first
/// successful query (recovery done, promoted), and stops it. Returns the seconds from
/// the start to that query.
///
/// # Errors
///
/// The server does not start or accept a query within `timeout_secs`.
pub fn start_and_query(bin: &Path, data: &Path, timeout_secs: u64) -> Result<f64, String> {
    let sock = data.with_extension("sock");
    std::fs::create_dir_all(&sock).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let opts = format!(
        "-c listen_addresses='' -c unix_socket_directories='{}' -c port=5433 -c archive_mode=off",
        sock.display()
    );
    must(
        Command::new(bin.join("pg_ctl"))
            .args(["-D"])
            .arg(data)
            .args(["-l"])
            .arg(data.with_extension("log"))
            .args(["-o", &opts, "start"]),
    );
    let result = loop {
        let ok = Command::new(bin.join("psql"))
            .args(["-X", "-A", "-t", "-h"])
            .arg(&sock)
            .args(["-p", "5433", "-U", "postgres", "-d", "postgres", "-c"])
            .arg("SELECT NOT pg_is_in_recovery()")
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "t");
        if ok {
            break Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed().as_secs() > timeout_secs {
            break Err(format!(
                "{} did not accept queries within {timeout_secs} s",
                data.display()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = Command::new(bin.join("pg_ctl"))
        .args(["-w", "-m", "fast", "-D"])
        .arg(data)
        .arg("stop")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    result
}

/// A throwaway sshd on 127.0.0.1, run by the current user and letting only it in with
/// a key of its own (as `benches/lib/sshd.sh`), for `barman-wal-restore`. Stopped on
/// drop.
#[derive(Debug)]
pub struct Sshd {
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
    /// The user it lets in.
    pub user: String,
}

impl Sshd {
    /// Starts one; `None` without `/usr/sbin/sshd` or `ssh-keygen`, or when it does not
    /// start.
    pub fn start() -> Option<Sshd> {
        if !Path::new("/usr/sbin/sshd").is_file() || which("ssh-keygen").is_none() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("bench-sshd")
            .tempdir_in("/tmp")
            .ok()?;
        for key in ["host_key", "client_key"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(key))
                .status()
                .ok()?
                .success();
            if !ok {
                return None;
            }
        }
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().ok()?.stdout)
            .trim()
            .to_owned();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\nAllowUsers {user}\nMaxSessions 64\nMaxStartups 64:30:128\n"
            ),
        )
        .ok()?;
        let ok = Command::new("/usr/sbin/sshd")
            .arg("-f")
            .arg(dir.path().join("sshd_config"))
            .arg("-E")
            .arg(dir.path().join("sshd.log"))
            .status()
            .ok()?
            .success();
        let sshd = Sshd { dir, port, user };
        // Up once it answers a command.
        for _ in 0..100 {
            let up = Command::new("ssh")
                .args(sshd.ssh_args())
                .arg(format!("{}@127.0.0.1", sshd.user))
                .arg("true")
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                return Some(sshd);
            }
            if !ok {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    /// The options of an `ssh` command line reaching it.
    pub fn ssh_args(&self) -> Vec<String> {
        vec![
            "-i".into(),
            self.dir.path().join("client_key").display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-o".into(),
            "BatchMode=yes".into(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("sshd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// One row of a table: what was measured and its samples.
#[derive(Clone, Debug)]
pub struct Row {
    /// What ran (tool and variant).
    pub label: String,
    /// Whether it is barman-rs (ratios compare it with the best peer).
    pub ours: bool,
    /// The variant it compares within (codec and level, compression, jobs): the best
    /// peer is looked for among the rows of the same group first.
    pub group: String,
    /// The samples of the main figure.
    pub samples: Vec<f64>,
    /// Peak memory over the runs, KiB.
    pub max_rss_kib: Option<u64>,
    /// Further columns, already formatted (bytes stored, ratio, ...).
    pub extra: Vec<String>,
}

/// One measurement: a table of the report, and its chart.
#[derive(Clone, Debug)]
pub struct Table {
    /// The section title.
    pub title: String,
    /// What the main figure is (`seconds`, `MB/s`, ...).
    pub unit: String,
    /// Whether a lower figure is better (times) or a higher one (throughputs).
    pub lower_is_better: bool,
    /// The names of the extra columns.
    pub extra_columns: Vec<String>,
    /// The rows, in the order they ran.
    pub rows: Vec<Row>,
    /// A sentence on how it was measured.
    pub how: String,
    /// What could not be measured, and why.
    pub skipped: Vec<String>,
}

impl Table {
    /// A table with no rows yet.
    pub fn new(title: &str, unit: &str, lower_is_better: bool, how: &str) -> Table {
        Table {
            title: title.to_owned(),
            unit: unit.to_owned(),
            lower_is_better,
            extra_columns: Vec::new(),
            rows: Vec::new(),
            how: how.to_owned(),
            skipped: Vec::new(),
        }
    }

    /// The median of the best peer's row in `group` (the best figure among rows not
    /// ours), in the whole table for the empty group.
    fn best_peer(&self, group: &str) -> Option<f64> {
        let best = |same_group: bool| {
            let medians = self
                .rows
                .iter()
                .filter(|r| !r.ours && (!same_group || r.group == group))
                .map(|r| stats(&r.samples).0)
                .filter(|m| m.is_finite());
            if self.lower_is_better {
                medians.min_by(f64::total_cmp)
            } else {
                medians.max_by(f64::total_cmp)
            }
        };
        // A row of a variant no peer ran has no ratio; a row of no variant (an empty
        // group) is compared with every peer of the table.
        if group.is_empty() {
            best(false)
        } else {
            best(true)
        }
    }

    /// The table as markdown: median, min, max, the ratio to the best peer (above 1 is
    /// better for barman-rs), peak memory, the extra columns.
    pub fn markdown(&self, chart: Option<&str>) -> String {
        let mut s = format!("## {}\n\n{}\n\n", self.title, self.how);
        let _ = write!(
            s,
            "| what | {u} median | min | max | vs best peer | peak RSS |",
            u = self.unit
        );
        for c in &self.extra_columns {
            let _ = write!(s, " {c} |");
        }
        s.push_str("\n|---|---:|---:|---:|---:|---:|");
        for _ in &self.extra_columns {
            s.push_str("---:|");
        }
        s.push('\n');
        for r in &self.rows {
            let (med, min, max) = stats(&r.samples);
            let ratio = match self.best_peer(&r.group) {
                Some(b) if med.is_finite() && med > 0.0 && b > 0.0 => {
                    let x = if self.lower_is_better {
                        b / med
                    } else {
                        med / b
                    };
                    format!("{x:.2}×")
                }
                _ => "–".into(),
            };
            let rss = r
                .max_rss_kib
                .map_or("–".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0));
            let label = if r.ours {
                format!("**{}**", r.label)
            } else {
                r.label.clone()
            };
            let _ = write!(
                s,
                "| {label} | {} | {} | {} | {ratio} | {rss} |",
                fmt(med),
                fmt(min),
                fmt(max)
            );
            for e in &r.extra {
                let _ = write!(s, " {e} |");
            }
            s.push('\n');
        }
        for k in &self.skipped {
            let _ = writeln!(s, "\n*Not measured:* {k}");
        }
        if let Some(c) = chart {
            let _ = write!(s, "\n![{}]({c})\n", self.title);
        }
        s.push('\n');
        s
    }

    /// A horizontal bar chart of the medians (barman-rs in its own colour), as SVG.
    ///
    /// # Errors
    ///
    /// Drawing errors.
    pub fn svg(&self, path: &Path) -> Result<(), String> {
        use plotters::prelude::*;
        let rows: Vec<(&Row, f64)> = self
            .rows
            .iter()
            .map(|r| (r, stats(&r.samples).0))
            .filter(|(_, m)| m.is_finite())
            .collect();
        if rows.is_empty() {
            return Err("nothing to draw".into());
        }
        let height = 80 + 28 * rows.len() as u32;
        let root = SVGBackend::new(path, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let max = rows.iter().map(|(_, m)| *m).fold(0.0, f64::max) * 1.1;
        let n = rows.len() as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} ({})", self.title, self.unit),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(320)
            .build_cartesian_2d(0.0..max.max(f64::MIN_POSITIVE), (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = rows.iter().map(|(r, _)| r.label.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_labels(rows.len())
            .x_desc(self.unit.as_str())
            .draw()
            .map_err(|e| e.to_string())?;
        let ours = RGBColor(0x1f, 0x77, 0xb4);
        let peer = RGBColor(0xbb, 0xbb, 0xbb);
        chart
            .draw_series(rows.iter().enumerate().map(|(i, (r, m))| {
                let i = i32::try_from(i).unwrap_or(0);
                let style = if r.ours { ours.filled() } else { peer.filled() };
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*m, SegmentValue::Exact(i + 1)),
                    ],
                    style,
                )
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }
}

/// A figure with three significant digits or so.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Bytes as MiB, for the extra columns.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_median_min_max() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert!(stats(&[]).0.is_nan());
    }

    #[test]
    fn ratios_compare_with_the_best_peer() {
        let mut t = Table::new("x", "s", true, "how");
        for (label, ours, v) in [("us", true, 2.0), ("a", false, 4.0), ("b", false, 3.0)] {
            t.rows.push(Row {
                label: label.into(),
                ours,
                group: String::new(),
                samples: vec![v],
                max_rss_kib: None,
                extra: vec![],
            });
        }
        let md = t.markdown(None);
        // Best peer 3 s, ours 2 s: 1.50× better.
        assert!(
            md.contains("| **us** | 2.00 | 2.00 | 2.00 | 1.50× |"),
            "{md}"
        );
        assert!(md.contains("| a | 4.00 | 4.00 | 4.00 | 0.75× |"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        t.svg(&dir.path().join("x.svg")).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("x.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("us"), "{svg}");
    }
}
