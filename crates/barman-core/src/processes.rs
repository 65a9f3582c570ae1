//! `list-processes` and `terminate-process`: the processes working for a server,
//! found as Barman finds them, by the lock files they hold in
//! `barman_lock_directory` (`.<server>-receive-wal.lock`, `.<server>-backup.lock`,
//! `.<server>-cron.lock`, `.<server>-archive-wal.lock`, `.<server>-sync-wal.lock`,
//! `.<server>-<backup id>-sync-backup.lock`), with the PID their holder wrote there.
//!
//! A lock file is a process only while the kernel's lock table (read, so that looking
//! never takes the lock) says that the PID written in it holds it, and while that PID
//! runs the task for the server: the file keeps the PID of its last holder, and a
//! stranger that reused it must never be signalled.
//!
//! [`clean_lock_directory`] removes the lock files nobody holds (`barman
//! lock-directory-cleanup`, and `cron` when `lock_directory_cleanup` is on).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::{GlobalConfig, ServerConfig};
use crate::{Error, Refusal, Result};

/// One process working for a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerProcess {
    /// Its PID.
    pub pid: u32,
    /// Its task, as Barman names it: `receive-wal`, `backup`, `cron`, `archive-wal`,
    /// `sync-wal`, `sync-backup`.
    pub task: String,
}

/// The task of a lock file name of `server`, if it is one of Barman's process locks.
fn task_of(server: &str, file_name: &str) -> Option<&'static str> {
    let rest = file_name
        .strip_prefix('.')?
        .strip_prefix(server)?
        .strip_prefix('-')?
        .strip_suffix(".lock")?;
    match rest {
        "receive-wal" => Some("receive-wal"),
        "backup" => Some("backup"),
        "cron" => Some("cron"),
        "archive-wal" => Some("archive-wal"),
        "sync-wal" => Some("sync-wal"),
        r if r
            .strip_suffix("-sync-backup")
            .is_some_and(|id| !id.is_empty() && !id.contains('-')) =>
        {
            Some("sync-backup")
        }
        _ => None,
    }
}

/// Whether `pid` is a barman process running `task` for `server` (`cron` serves every
/// server and names none). An `archive-wal` lock held by `cron`, which archives
/// in-process, is not an `archive-wal` process: cron is listed by its own lock.
fn runs(pid: u32, task: &str, server: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let has = |word: &[u8]| args.iter().skip(1).any(|a| *a == word);
    has(task.as_bytes()) && (task == "cron" || has(server.as_bytes()))
}

/// The PID holding the lock at `path`, when one holds it and runs `task` for
/// `server`: the PID written in the file must be one the kernel's lock table gives
/// for that file, and a live process of that task.
pub(crate) fn holder(path: &Path, task: &str, server: &str) -> Result<Option<u32>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    let holders = match std::fs::read_to_string("/proc/locks") {
        Ok(table) => crate::fsutil::flock_holders(&table, &meta),
        // No procfs: no process can be checked either.
        Err(_) => return Ok(None),
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    Ok(text
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|pid| holders.contains(pid) && runs(*pid, task, server)))
}

/// The processes working for `server` now, in lock file name order.
///
/// # Errors
///
/// I/O errors listing `barman_lock_directory` or reading a lock file.
pub fn list(global: &GlobalConfig, server: &ServerConfig) -> Result<Vec<ServerProcess>> {
    let dir = Path::new(&global.barman_lock_directory);
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Some(task) = task_of(server.name(), &name) else {
            continue;
        };
        if let Some(pid) = holder(&dir.join(&name), task, server.name())? {
            out.push(ServerProcess {
                pid,
                task: task.to_owned(),
            });
        }
    }
    Ok(out)
}

/// `terminate-process SERVER TASK`: sends SIGINT to the server's first process of
/// `task`, as Barman does, and waits up to 10 s for it to end. Returns its PID.
///
/// # Errors
///
/// [`Error::Refused`] when no such process runs (`Termination of <task> failed: no
/// such process for server <server>`) or when it is still alive after 10 s
/// (`Cannot terminate process <task>(<pid>)`); I/O errors.
pub fn terminate(global: &GlobalConfig, server: &ServerConfig, task: &str) -> Result<u32> {
    let Some(p) = list(global, server)?.into_iter().find(|p| p.task == task) else {
        return Err(Error::refused(
            Refusal::ServerState,
            format!(
                "Termination of {task} failed: no such process for server {}",
                server.name()
            ),
        ));
    };
    let status = std::process::Command::new("kill")
        .args(["-INT", &p.pid.to_string()])
        .status()
        .map_err(|e| Error::io("running", "kill", e))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if !runs(p.pid, task, server.name()) {
            return Ok(p.pid);
        }
        if !status.success() || Instant::now() >= deadline {
            return Err(Error::refused(
                Refusal::ServerState,
                format!("Cannot terminate process {task}({})", p.pid),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes the lock files (`.*.lock`) of `barman_lock_directory` that no process holds,
/// as Barman's `lock_files_cleanup`: each is locked (without waiting) and removed while
/// locked; a held one is left. Only regular files are touched. Returns the files
/// removed.
///
/// # Errors
///
/// The directory cannot be listed, or a lock file cannot be opened or removed.
pub fn clean_lock_directory(global: &GlobalConfig) -> Result<Vec<std::path::PathBuf>> {
    let dir = Path::new(&global.barman_lock_directory);
    let mut removed = Vec::new();
    let mut entries = crate::fsutil::list_dir(dir)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() < ".x.lock".len() || !name.starts_with('.') || !name.ends_with(".lock") {
            continue;
        }
        let path = entry.path();
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if regular && crate::fsutil::Lock::remove_unheld(&path)? {
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_as_barman_classifies_them() {
        assert_eq!(task_of("pg", ".pg-receive-wal.lock"), Some("receive-wal"));
        assert_eq!(task_of("pg", ".pg-backup.lock"), Some("backup"));
        assert_eq!(task_of("pg", ".pg-cron.lock"), Some("cron"));
        assert_eq!(task_of("pg", ".pg-archive-wal.lock"), Some("archive-wal"));
        assert_eq!(task_of("pg", ".pg-sync-wal.lock"), Some("sync-wal"));
        assert_eq!(
            task_of("pg", ".pg-20261206T101010-sync-backup.lock"),
            Some("sync-backup")
        );
        // A backup's own lock, another server whose name extends this one, others.
        assert_eq!(task_of("pg", ".pg-20261206T101010.lock"), None);
        assert_eq!(task_of("pg", ".pg-two-backup.lock"), None);
        assert_eq!(task_of("pg-two", ".pg-two-backup.lock"), Some("backup"));
        assert_eq!(task_of("pg", ".pg-xlog.db.lock"), None);
        assert_eq!(task_of("pg", "pg-backup.lock"), None);
        assert_eq!(task_of("pg", ".pg-backup.lock.tmp"), None);
    }

    /// Unheld lock files go, held ones, other files, links and directories stay; a
    /// lock taken afterwards is on a new file, and a lock whose file went is seen gone.
    #[test]
    fn lock_directory_cleanup_removes_only_unheld_lock_files() {
        use crate::config::{Config, MemorySource};
        use crate::fsutil::Lock;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let text = format!("[barman]\nbarman_home = {}\n", d.display());
        let config = Config::load("/etc/barman.conf", &text, &MemorySource::default()).unwrap();
        let held = Lock::acquire(&d.join(".pg-backup.lock")).unwrap();
        drop(Lock::acquire(&d.join(".pg-cron.lock")).unwrap());
        drop(Lock::acquire(&d.join(".pg-20261207T010101.lock")).unwrap());
        std::fs::write(d.join("pg-xlog.db"), "keep").unwrap();
        std::fs::write(d.join("production"), "keep").unwrap();
        std::os::unix::fs::symlink(d.join("production"), d.join(".link.lock")).unwrap();
        std::fs::create_dir(d.join(".dir.lock")).unwrap();

        let mut removed = clean_lock_directory(config.global()).unwrap();
        removed.sort();
        assert_eq!(
            removed,
            [d.join(".pg-20261207T010101.lock"), d.join(".pg-cron.lock")]
        );
        for kept in [
            ".pg-backup.lock",
            "pg-xlog.db",
            "production",
            ".link.lock",
            ".dir.lock",
        ] {
            assert!(d.join(kept).symlink_metadata().is_ok(), "{kept}");
        }
        assert_eq!(
            std::fs::read_to_string(d.join("production")).unwrap(),
            "keep"
        );
        // Nothing more to remove while the backup runs; its lock is free afterwards.
        assert!(clean_lock_directory(config.global()).unwrap().is_empty());
        drop(held);
        assert_eq!(
            clean_lock_directory(config.global()).unwrap(),
            [d.join(".pg-backup.lock")]
        );
        let again = Lock::try_acquire(&d.join(".pg-backup.lock"))
            .unwrap()
            .unwrap();
        assert!(
            Lock::try_acquire(&d.join(".pg-backup.lock"))
                .unwrap()
                .is_none()
        );
        drop(again);

        // A lock whose file was removed under it is not the path's lock any more.
        let path = d.join(".pg-cron.lock");
        let file = Lock::open(&path).unwrap();
        assert!(Lock::still_at(&file, &path).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(!Lock::still_at(&file, &path).unwrap());
        drop(Lock::open(&path).unwrap());
        assert!(!Lock::still_at(&file, &path).unwrap());
    }
}
