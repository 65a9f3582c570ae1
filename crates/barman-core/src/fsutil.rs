//! Durable file system primitives: private directories, atomic no-replace installs,
//! fsync of files and directories, locks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Creates `dir` and its missing parents with mode 0700, durably: the directory that
/// gains each new entry is fsynced.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while fs::symlink_metadata(cur).is_err() {
        missing.push(cur);
        match cur.parent() {
            Some(p) if !p.as_os_str().is_empty() => cur = p,
            _ => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("creating directory", d, e)),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    if !dir.is_dir() {
        return Err(Error::io(
            "creating directory",
            dir,
            io::Error::from(io::ErrorKind::NotADirectory),
        ));
    }
    Ok(())
}

/// fsyncs a directory, making renames and links inside it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

/// A new file with mode 0600 in `dir`, with a name no other process uses; removed on drop
/// unless installed.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    pub(crate) fn new(dir: &Path, stem: &str) -> Result<TempFile> {
        for attempt in 0..100u32 {
            let path = dir.join(format!(
                "{}{stem}.{}.{attempt}",
                crate::leftovers::TEMP_PREFIX,
                std::process::id()
            ));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("creating", &path, e)),
            }
        }
        Err(Error::io(
            "creating a temporary file in",
            dir,
            io::Error::other("too many leftover temporary files"),
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file (present until `install_new` consumes the value).
    pub(crate) fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the temporary file was already installed"))
    }

    /// fsyncs the file and links it at `dest` if nothing is there (never replacing a
    /// file), then fsyncs the directory. `Ok(false)` when `dest` already exists.
    pub(crate) fn install_new(mut self, dest: &Path) -> Result<bool> {
        if let Some(f) = self.file.take() {
            f.sync_all()
                .map_err(|e| Error::io("syncing", &self.path, e))?;
        }
        match fs::hard_link(&self.path, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(Error::io("installing", dest, e)),
        }
        let _ = fs::remove_file(&self.path);
        if let Some(dir) = dest.parent() {
            sync_dir(dir)?;
        }
        Ok(true)
    }

    /// fsyncs the file and renames it over `dest` (replacing what is there), then
    /// fsyncs the directory.
    pub(crate) fn replace(self, dest: &Path) -> Result<()> {
        self.persist(dest)?;
        sync_dir(dest.parent().unwrap_or(Path::new(".")))
    }

    /// fsyncs the file and renames it over `dest` (replacing what is there); the
    /// caller fsyncs the directory (once for many files).
    pub(crate) fn persist(mut self, dest: &Path) -> Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()
                .map_err(|e| Error::io("syncing", &self.path, e))?;
        }
        fs::rename(&self.path, dest).map_err(|e| Error::io("renaming into", dest, e))
    }

    /// Renames the file to `dest` (replacing what is there) without any fsync: for
    /// files handed to another program, where only atomicity matters.
    pub(crate) fn rename_to(mut self, dest: &Path) -> Result<()> {
        self.file = None;
        fs::rename(&self.path, dest).map_err(|e| Error::io("renaming into", dest, e))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `bytes` to a new file at `dest` durably: temp file, fsync, rename, fsync of
/// the directory. Replaces what is there.
pub(crate) fn write_replace(dest: &Path, bytes: &[u8]) -> Result<()> {
    write_persist(dest, bytes)?;
    sync_dir(dest.parent().unwrap_or(Path::new(".")))
}

/// [`write_replace`] without the fsync of the directory, for a caller that syncs it
/// once for many files (a restore). A link at `dest` is replaced, never followed.
pub(crate) fn write_persist(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = TempFile::new(dest.parent().unwrap_or(Path::new(".")), "write")?;
    let path = tmp.path().to_owned();
    tmp.file()
        .and_then(|f| f.write_all(bytes))
        .map_err(|e| Error::io("writing", &path, e))?;
    tmp.persist(dest)
}

/// An exclusive `flock` on a lock file (0600, holding our PID), as Barman takes its locks:
/// Barman and barman-rs exclude each other. Released on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    fn open(path: &Path) -> Result<File> {
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

    /// Waits for the lock.
    pub(crate) fn acquire(path: &Path) -> Result<Lock> {
        let file = Self::open(path)?;
        file.lock().map_err(|e| Error::io("locking", path, e))?;
        Ok(Self::holding(file))
    }

    /// A shared `flock` on the lock file without waiting: several holders may share
    /// it, an exclusive holder excludes them all. `Ok(None)` when an exclusive holder
    /// has it. The file's content is left alone.
    pub(crate) fn try_acquire_shared(path: &Path) -> Result<Option<Lock>> {
        let file = Self::open(path)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("locking", path, e)),
        }
    }

    /// Like [`Lock::acquire`] without waiting: `Ok(None)` when another process (or
    /// another open file description in this one) holds the lock.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Lock>> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self::holding(file))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("locking", path, e)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
