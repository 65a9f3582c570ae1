//! Durable writes on the local filesystem, the one implementation barman-rs has:
//! [`LocalStorage`](crate::LocalStorage) puts and every file barman-core writes into a
//! repository or a recovery destination go through it.
//!
//! The steps of every write: a new temporary file (mode 0600, created exclusively, named
//! [`TEMP_FILE_PREFIX`]`<stem>.<pid>.<n>` in the destination's directory), the data,
//! fsync of the file, then either a hard link at the destination (which fails if a file
//! is there: never replacing one) or a rename over it, and fsync of the directory. A
//! temporary file not installed is removed when its [`TempFile`] is dropped; one a crash
//! left behind carries the writer's PID, so a cleaner can tell it from a write in
//! progress.
//!
//! Synchronous: call it from a thread or `spawn_blocking`.
//!
//! # Examples
//!
//! ```
//! use barman_transport::durable::{TempFile, write_replace};
//! use std::io::Write;
//!
//! let dir = tempfile::tempdir()?;
//! write_replace(&dir.path().join("identity.json"), b"{}")?;
//! let mut tmp = TempFile::new(dir.path(), "wal")?;
//! tmp.file()?.write_all(b"segment")?;
//! assert!(tmp.install_new(&dir.path().join("000000010000000000000001"))?);
//! let mut again = TempFile::new(dir.path(), "wal")?;
//! again.file()?.write_all(b"other")?;
//! assert!(!again.install_new(&dir.path().join("000000010000000000000001"))?); // kept
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// File names starting with this are temporary files of writes in progress (or left
/// by a crash): never listed as objects, and refused as object names.
pub const TEMP_FILE_PREFIX: &str = ".barman-tmp.";

/// A failed step of a durable write: what was being done, where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FsError {
    /// What was being done (`creating`, `syncing directory`, `installing`, ...).
    pub op: &'static str,
    /// On which path.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

fn fs_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FsError {
    move |source| FsError {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` and its missing parents with mode 0700, durably: the directory that
/// gains each new entry is fsynced.
///
/// # Errors
///
/// A directory cannot be created or synced, or something else than a directory is at
/// `dir`.
pub fn create_private_dir(dir: &Path) -> Result<(), FsError> {
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
            Err(e) => return Err(fs_error("creating directory", d)(e)),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    if !dir.is_dir() {
        return Err(fs_error("creating directory", dir)(io::Error::from(
            io::ErrorKind::NotADirectory,
        )));
    }
    Ok(())
}

/// fsyncs a directory, making the renames and links inside it durable.
///
/// # Errors
///
/// The directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fs_error("syncing directory", dir))
}

/// A new file with mode 0600 in a directory, with a name no other process uses; removed
/// on drop unless installed.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates `dir/.barman-tmp.<stem>.<pid>.<n>` (`n` counts the files this process
    /// made, so concurrent writes into one directory never collide).
    ///
    /// # Errors
    ///
    /// The file cannot be created (or a hundred leftovers of this PID are in the way).
    pub fn new(dir: &Path, stem: &str) -> Result<TempFile, FsError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                "{TEMP_FILE_PREFIX}{stem}.{}.{n}",
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
                Err(e) => return Err(fs_error("creating", &path)(e)),
            }
        }
        Err(fs_error("creating a temporary file in", dir)(
            io::Error::other("too many leftover temporary files"),
        ))
    }

    /// Where the temporary file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, to write the data into.
    ///
    /// # Errors
    ///
    /// When the file was taken by [`take_file`](Self::take_file).
    pub fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the temporary file was already taken"))
    }

    /// Takes the open file, for a writer that writes and fsyncs it itself (an async
    /// one); the installs below then skip the fsync of the file.
    pub fn take_file(&mut self) -> Option<File> {
        self.file.take()
    }

    fn sync_file(&mut self) -> Result<(), FsError> {
        match self.file.take() {
            Some(f) => f.sync_all().map_err(fs_error("syncing", &self.path)),
            None => Ok(()),
        }
    }

    /// fsyncs the file and links it at `dest` if nothing is there (never replacing a
    /// file), then fsyncs the directory. `Ok(false)` when `dest` already exists (the
    /// temporary file is removed).
    ///
    /// # Errors
    ///
    /// A sync or the link fails.
    pub fn install_new(mut self, dest: &Path) -> Result<bool, FsError> {
        self.sync_file()?;
        match fs::hard_link(&self.path, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(fs_error("installing", dest)(e)),
        }
        let _ = fs::remove_file(&self.path);
        sync_dir(parent_of(dest))?;
        Ok(true)
    }

    /// fsyncs the file and renames it over `dest` (replacing what is there), then
    /// fsyncs the directory.
    ///
    /// # Errors
    ///
    /// A sync or the rename fails.
    pub fn replace(self, dest: &Path) -> Result<(), FsError> {
        self.persist(dest)?;
        sync_dir(parent_of(dest))
    }

    /// fsyncs the file and renames it over `dest` (replacing what is there); the caller
    /// fsyncs the directory (once for many files).
    ///
    /// # Errors
    ///
    /// The sync or the rename fails.
    pub fn persist(mut self, dest: &Path) -> Result<(), FsError> {
        self.sync_file()?;
        fs::rename(&self.path, dest).map_err(fs_error("renaming into", dest))
    }

    /// Renames the file to `dest` (replacing what is there) without any fsync: for files
    /// handed to another program, where only atomicity matters.
    ///
    /// # Errors
    ///
    /// The rename fails.
    pub fn rename_to(mut self, dest: &Path) -> Result<(), FsError> {
        self.file = None;
        fs::rename(&self.path, dest).map_err(fs_error("renaming into", dest))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `dest` durably: temporary file, fsync, rename, fsync of the
/// directory. Replaces what is there (a link at `dest` is replaced, never followed).
///
/// # Errors
///
/// Any step fails; `dest` is then unchanged.
pub fn write_replace(dest: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_persist(dest, bytes)?;
    sync_dir(parent_of(dest))
}

/// [`write_replace`] without the fsync of the directory, for a caller that syncs it
/// once for many files (a restore).
///
/// # Errors
///
/// Any step fails; `dest` is then unchanged.
pub fn write_persist(dest: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let mut tmp = TempFile::new(parent_of(dest), "write")?;
    let path = tmp.path().to_owned();
    tmp.file()
        .and_then(|f| f.write_all(bytes))
        .map_err(fs_error("writing", &path))?;
    tmp.persist(dest)
}

/// Removes the file at `path` and fsyncs its directory. A missing file is success, so
/// a retried removal is harmless.
///
/// # Errors
///
/// The removal or the sync fails.
pub fn remove_file(path: &Path) -> Result<(), FsError> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent_of(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fs_error("removing", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn installs_never_replace_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let mut a = TempFile::new(dir.path(), "t").unwrap();
        a.file().unwrap().write_all(b"first").unwrap();
        assert!(a.install_new(&dest).unwrap());
        let mut b = TempFile::new(dir.path(), "t").unwrap();
        b.file().unwrap().write_all(b"second").unwrap();
        assert!(!b.install_new(&dest).unwrap());
        assert_eq!(fs::read(&dest).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["f"]);
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_replace(&dest, b"third").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"third");
        assert_eq!(names(dir.path()), ["f"]);
        remove_file(&dest).unwrap();
        remove_file(&dest).unwrap();
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_dropped_write_leaves_nothing_and_names_carry_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempFile::new(dir.path(), "wal").unwrap();
        let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
        let rest = name
            .strip_prefix(&format!("{TEMP_FILE_PREFIX}wal.{}.", std::process::id()))
            .unwrap();
        assert!(rest.bytes().all(|b| b.is_ascii_digit()), "{name}");
        drop(t);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn private_directories_are_made_with_their_parents() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_private_dir(&deep).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            let mode = fs::metadata(dir.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
        fs::write(dir.path().join("file"), "").unwrap();
        let err = create_private_dir(&dir.path().join("file")).unwrap_err();
        assert_eq!(err.op, "creating directory");
    }
}
