//! Local file system primitives: the durable writes (barman-transport's
//! [`durable`](barman_transport::durable) module, the one implementation, re-exported
//! here) and the locks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub(crate) use barman_transport::durable::{
    TempFile, create_private_dir, remove_file, sync_dir, write_persist,
};
// Backups write whole files beside their trees (the postgres feature).
#[cfg(feature = "postgres")]
pub(crate) use barman_transport::durable::write_replace;

/// The entries of directory `dir`, none when it does not exist.
///
/// # Errors
///
/// The directory (or one of its entries) cannot be read.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    entries
        .map(|e| e.map_err(|e| Error::io("listing", dir, e)))
        .collect()
}

/// An exclusive `flock` on a lock file (0600, holding our PID), as Barman takes its locks:
/// Barman and barman-rs exclude each other. Released on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    pub(crate) fn open(path: &Path) -> Result<File> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("opening lock file", path, e))
    }

    fn holding(mut file: File) -> Lock {
        // The PID is for people reading the lock file; failing to write it is harmless.
        let _ = file
            .set_len(0)
            .and_then(|_| write!(file, "{}", std::process::id()));
        Lock { _file: file }
    }

    /// Whether the lock held on `file` is the lock of `path`: the file was not
    /// removed (by a lock directory cleanup) between its opening and its locking.
    pub(crate) fn still_at(file: &File, path: &Path) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let held = file.metadata().map_err(|e| Error::io("reading", path, e))?;
        match fs::metadata(path) {
            Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Opens `path` and locks it with `lock` (`Ok(false)`: busy), again when the file
    /// was removed meanwhile, so that a lock is never held on a file no longer there
    /// while another process locks its successor.
    fn open_locked(
        path: &Path,
        lock: impl Fn(&File) -> std::result::Result<bool, std::io::Error>,
    ) -> Result<Option<File>> {
        loop {
            let file = Self::open(path)?;
            if !lock(&file).map_err(|e| Error::io("locking", path, e))? {
                return Ok(None);
            }
            if Self::still_at(&file, path)? {
                return Ok(Some(file));
            }
        }
    }

    /// Waits for the lock.
    pub(crate) fn acquire(path: &Path) -> Result<Lock> {
        let file = Self::open_locked(path, |f| f.lock().map(|()| true))?;
        // A blocking lock is never busy.
        let file = file
            .ok_or_else(|| Error::io("locking", path, std::io::Error::other("lock not taken")))?;
        Ok(Self::holding(file))
    }

    /// A shared `flock` on the lock file without waiting: several holders may share
    /// it, an exclusive holder excludes them all. `Ok(None)` when an exclusive holder
    /// has it. The file's content is left alone.
    pub(crate) fn try_acquire_shared(path: &Path) -> Result<Option<Lock>> {
        Ok(
            Self::open_locked(path, |f| try_result(f.try_lock_shared()))?
                .map(|file| Lock { _file: file }),
        )
    }

    /// Like [`Lock::acquire`] without waiting: `Ok(None)` when another process (or
    /// another open file description in this one) holds the lock.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Lock>> {
        Ok(Self::open_locked(path, |f| try_result(f.try_lock()))?.map(Self::holding))
    }

    /// Removes the lock file `path` when nobody holds its lock, as Barman's lock
    /// directory cleanup: the lock is taken (without waiting) and the file removed while
    /// it is held, so a process that opened it meanwhile sees it gone once it gets the
    /// lock and takes its successor. `Ok(false)`: held, or already gone.
    pub(crate) fn remove_unheld(path: &Path) -> Result<bool> {
        let file = match OpenOptions::new().read(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("opening lock file", path, e)),
        };
        if !try_result(file.try_lock()).map_err(|e| Error::io("locking", path, e))?
            || !Self::still_at(&file, path)?
        {
            return Ok(false);
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("removing", path, e)),
        }
    }
}

/// A non-blocking `flock`'s outcome: taken, busy, or an error.
fn try_result(r: std::result::Result<(), fs::TryLockError>) -> std::io::Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether the kernel's lock table (the text of `/proc/locks`) has a `flock` held (not
/// waited for) on the file of `meta`.
///
/// Matched by inode number alone: the device number `stat` gives is not the one the
/// table prints on some file systems (btrfs subvolumes, overlayfs), and a lock on
/// another file with the same inode number elsewhere only makes a backup look alive,
/// the safe mistake.
pub(crate) fn locked_in_table(table: &str, meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = meta.ino().to_string();
    table.lines().any(|line| {
        // `1: FLOCK  ADVISORY  WRITE 1234 fd:01:1580187 0 EOF`; a waiter's line has
        // `->` after the number.
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some("FLOCK")
            && line
                .split_whitespace()
                .any(|f| f.rsplit(':').next() == Some(ino.as_str()) && f.matches(':').count() == 2)
    })
}

/// The PIDs the kernel's lock table (the text of `/proc/locks`) gives for the `flock`s
/// held (not waited for) on files with the inode of `meta`.
pub(crate) fn flock_holders(table: &str, meta: &fs::Metadata) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let ino = meta.ino().to_string();
    table
        .lines()
        .filter_map(|line| {
            // `1: FLOCK  ADVISORY  WRITE 1234 fd:01:1580187 0 EOF`
            let f: Vec<&str> = line.split_whitespace().collect();
            let (kind, pid, file) = (f.get(1)?, f.get(4)?, f.get(5)?);
            (*kind == "FLOCK"
                && file.matches(':').count() == 2
                && file.rsplit(':').next() == Some(ino.as_str()))
            .then(|| pid.parse().ok())
            .flatten()
        })
        .collect()
}

/// A program from `path_prefix` (colon-separated directories, searched first) or
/// `PATH`.
pub(crate) fn find_program(name: &str, path_prefix: Option<&str>) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = path_prefix
        .into_iter()
        .flat_map(|p| p.split(':'))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    #[allow(clippy::disallowed_methods)] // PATH lookup is what running a program means
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Program {
            program: name.to_owned(),
            status: "not found".into(),
            detail: "not in path_prefix nor PATH".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flock_holders_are_read_from_the_lock_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pg-cron.lock");
        std::fs::write(&path, "").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = meta.ino();
        let table = format!(
            "1: POSIX  ADVISORY  WRITE 11 00:2d:{ino} 0 EOF\n\
             2: FLOCK  ADVISORY  WRITE 4242 fd:01:{ino} 0 EOF\n\
             2: -> FLOCK  ADVISORY  WRITE 4343 fd:01:{ino} 0 EOF\n\
             3: FLOCK  ADVISORY  WRITE 77 fd:01:{} 0 EOF\n\
             garbage\n",
            ino + 1
        );
        assert_eq!(flock_holders(&table, &meta), [4242]);
    }

    /// A held flock is seen in the kernel's table, by inode, even when the table's
    /// device number is not the one `stat` gives (btrfs, overlayfs): the reviewer's H1.
    #[test]
    fn a_held_lock_is_seen_whatever_the_device_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pg-backup.lock");
        let file = File::create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        if fs::read_to_string("/proc/locks").is_err() {
            return;
        }
        file.lock().unwrap();
        let table = fs::read_to_string("/proc/locks").unwrap();
        assert!(locked_in_table(&table, &meta), "{table}");
        // The same line with another device number.
        let ino = std::os::unix::fs::MetadataExt::ino(&meta);
        let moved: String = table
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .map(|f| {
                        if f.ends_with(&format!(":{ino}")) && f.matches(':').count() == 2 {
                            format!("ff:ff:{ino}")
                        } else {
                            f.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(locked_in_table(&moved, &meta), "{moved}");
        // A waiter is not a holder.
        let waiting = format!("1: -> FLOCK  ADVISORY  WRITE 42 00:00:{ino} 0 EOF");
        assert!(!locked_in_table(&waiting, &meta));
        drop(file);
    }
}
