//! Small helpers of the tests: who we are, which tools exist, free ports.

use std::path::PathBuf;
use std::process::Command;

/// Whether the tests run as root (from /proc, no libc call).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// The full path of `program` if it is on PATH (or is an existing absolute path).
pub fn which(program: &str) -> Option<PathBuf> {
    let p = PathBuf::from(program);
    if p.is_absolute() {
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `true` when the tools are there; otherwise prints why the test is skipped and
/// returns `false`, or panics when `BARMAN_REQUIRE_TOOLS=1` (set by CI).
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("BARMAN_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{what} not available and BARMAN_REQUIRE_TOOLS=1");
    }
    eprintln!("skipped: {what} not available");
    false
}

/// `true` when the tests run as root; otherwise prints why the (part of the) test
/// that needs root is skipped and returns `false`, or panics when
/// `BARMAN_REQUIRE_ROOT=1` (set by CI, which runs as root).
pub fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("BARMAN_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{what} needs root and BARMAN_REQUIRE_ROOT=1");
    }
    eprintln!("skipped: {what} needs root");
    false
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command and panics with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until a TCP port accepts connections.
pub fn wait_for_port(port: u16, what: &str, mut alive: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(alive(), "{what} exited before listening");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 30 s");
}

/// A small tmpfs mounted on a new directory, to fill a disk; unmounted and removed on
/// drop.
#[derive(Debug)]
pub struct SmallFs {
    path: PathBuf,
}

impl SmallFs {
    /// Mounts a tmpfs of `size` (`mount -o size=...`, e.g. `6m`, `8k`); `None` (the
    /// test skipped) when not root, or panics when `BARMAN_REQUIRE_ROOT=1` or
    /// `BARMAN_REQUIRE_TOOLS=1` says it must run.
    pub fn mount(size: &str) -> Option<SmallFs> {
        if !require_root("mounting a small tmpfs") {
            return None;
        }
        let path = std::env::temp_dir().join(format!(
            "barman-rs-smallfs.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .is_ok_and(|st| st.success());
        if !mounted {
            let _ = std::fs::remove_dir(&path);
            require("mount -t tmpfs", false);
            return None;
        }
        Some(SmallFs { path })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The Python of a venv where Barman is installed (`BARMAN_ORACLE_PYTHON`), to check
/// barman-rs against Barman itself; `None` (the test skipped, with a message) when it is
/// not set, or a panic when `BARMAN_REQUIRE_ORACLE=1` (set by CI) says it must be.
pub fn oracle_python() -> Option<PathBuf> {
    let found = std::env::var_os("BARMAN_ORACLE_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    if found.is_none() {
        if std::env::var("BARMAN_REQUIRE_ORACLE").as_deref() == Ok("1") {
            panic!("BARMAN_REQUIRE_ORACLE=1 but BARMAN_ORACLE_PYTHON is not a python with barman");
        }
        eprintln!("skipped: set BARMAN_ORACLE_PYTHON to the python of a venv with barman 3.19");
    }
    found
}
