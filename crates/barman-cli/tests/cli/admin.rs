//! The administration commands of Barman 3.19 beyond backup and recovery:
//! `lock-directory-cleanup` (and cron's), `generate-manifest`, `config-switch` and
//! `config-update`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::support::barman;

/// A barman.conf in `dir` with `extra` in its `[barman]` section and no server.
fn conf(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("barman.conf");
    std::fs::write(
        &path,
        format!(
            "[barman]\nbarman_home = {}\n{extra}",
            dir.join("home").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("home")).unwrap();
    path
}

/// A process holding a lock, killed when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        // Its group: flock and the sleep it runs.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Holds `path`'s flock in another process (util-linux's `flock`) until dropped.
fn hold(path: &Path) -> Holder {
    let child = Holder(
        Command::new("flock")
            .arg(path)
            .args(["sleep", "600"])
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Held once a non-blocking attempt fails.
    while Command::new("flock")
        .args(["-n"])
        .arg(path)
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        assert!(std::time::Instant::now() < deadline, "flock never held");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn lock_directory_cleanup_removes_only_what_nobody_holds() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path(), "");
    let home = dir.path().join("home");
    let held = home.join(".pg-receive-wal.lock");
    let free = home.join(".pg-cron.lock");
    std::fs::write(&free, "4242").unwrap();
    let holder = hold(&held);
    std::fs::write(home.join("other.lock.txt"), "").unwrap();

    let (code, out, err) = barman(&conf, &["lock-directory-cleanup"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!free.exists());
    assert!(held.exists());
    assert!(home.join("other.lock.txt").exists());

    // cron cleans up too, unless lock_directory_cleanup is off.
    drop(holder);
    let conf_off = self::conf(dir.path(), "lock_directory_cleanup = off\n");
    let (code, out, err) = barman(&conf_off, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(held.exists(), "lock_directory_cleanup = off");
    let conf_on = self::conf(dir.path(), "");
    let (code, out, err) = barman(&conf_on, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!held.exists());
    // The option is no longer reported unsupported.
    assert!(!err.contains("lock_directory_cleanup"), "{err}");
}

/// `cron --keep-descriptors`: the receive-wal it starts writes to cron's standard
/// error; without it, nowhere (its log file only).
#[test]
fn cron_keep_descriptors_keeps_receive_wal_output() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: receive-wal warns and tries again every second.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = conf(
        dir.path(),
        &format!(
            "\n[pg]\nconninfo = host=127.0.0.1 port={port} user=postgres\nstreaming_conninfo = host=127.0.0.1 port={port} user=postgres\nbackup_method = postgres\nstreaming_archiver = on\narchiver = off\nslot_name = barman\n"
        ),
    );
    /// Stops the receive-wal cron started, however the test ends.
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            barman(self.0, &["receive-wal", "--stop", "pg"]);
        }
    }
    let _stop = Stop(&conf);
    let mut cron = Command::new(crate::support::BARMAN)
        .arg("-c")
        .arg(&conf)
        .args(["cron", "--keep-descriptors"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // cron exits; its stderr stays open in the receive-wal it started.
    assert!(cron.wait().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = cron.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("receive-wal's warning on cron's stderr");
    assert!(
        line.contains("receive-wal of server pg") && line.contains(&port.to_string()),
        "{line}"
    );
    barman(&conf, &["receive-wal", "--stop", "pg"]);

    let (_, out, err) = barman(&conf, &["cron"]);
    assert!(
        out.contains("Starting streaming archiver for server pg"),
        "{out}{err}"
    );
    assert!(!err.contains(&port.to_string()), "{err}");
}
