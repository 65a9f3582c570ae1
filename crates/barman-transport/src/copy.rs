//! The native parallel copier for same-host backups and restores.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::{Error, Result};

/// What a [`LocalCopier`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyStats {
    /// Regular files written by copying.
    pub files_copied: u64,
    /// Regular files reused from the `link_dest` tree by a hard link.
    pub files_linked: u64,
    /// Bytes copied (not counting linked files).
    pub bytes_copied: u64,
}

/// Copies a directory tree on this host with several worker threads, as Barman's
/// `local-rsync` backup method and local recovery do, without rsync.
///
/// - Files are copied with `copy_file_range` (through [`std::fs::copy`]), which the
///   kernel turns into a reflink on filesystems that share extents (Btrfs, XFS) and an
///   in-kernel copy elsewhere: no data passes through user space.
/// - With [`link_dest`](Self::link_dest), a file whose size and modification time
///   match the same path in a previous copy is hard-linked to it instead
///   (`reuse_backup = link`).
/// - Modes and modification times are kept, symlinks are recreated as they are (never
///   followed), directories get their times after their content is written.
/// - The largest files are handed out first, so workers finish together.
///
/// # Examples
///
/// ```
/// use barman_transport::LocalCopier;
///
/// # tokio::runtime::Builder::new_multi_thread().build()?.block_on(async {
/// let src = tempfile::tempdir()?;
/// std::fs::create_dir(src.path().join("base"))?;
/// std::fs::write(src.path().join("base/16384"), b"heap")?;
/// std::fs::write(src.path().join("postmaster.pid"), b"42")?;
/// let dst = tempfile::tempdir()?;
/// let stats = LocalCopier::new()
///     .workers(2)
///     .exclude("postmaster.pid")
///     .copy_tree(src.path(), &dst.path().join("data"))
///     .await?;
/// assert_eq!((stats.files_copied, stats.bytes_copied), (1, 4));
/// assert!(!dst.path().join("data/postmaster.pid").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LocalCopier {
    workers: usize,
    link_dest: Option<PathBuf>,
    excludes: Vec<String>,
}

impl Default for LocalCopier {
    fn default() -> Self {
        LocalCopier {
            workers: 1,
            link_dest: None,
            excludes: Vec::new(),
        }
    }
}

struct Job {
    rel: PathBuf,
    size: u64,
    mtime: SystemTime,
}

fn copy_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Copy {
        path: path.to_owned(),
        source,
    }
}

impl LocalCopier {
    /// A copier with one worker, no reuse and no exclusions.
    pub fn new() -> LocalCopier {
        LocalCopier::default()
    }

    /// How many files are copied at once (default 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// A previous copy whose unchanged files are hard-linked instead of copied. It
    /// must be on the same filesystem as the destination.
    pub fn link_dest(mut self, dir: impl Into<PathBuf>) -> Self {
        self.link_dest = Some(dir.into());
        self
    }

    /// Leaves out a path relative to the source (and everything under it); a pattern
    /// ending in `/*` leaves out a directory's content but keeps the directory (as
    /// `pg_wal/*`).
    pub fn exclude(mut self, rel: impl Into<String>) -> Self {
        self.excludes.push(rel.into());
        self
    }

    fn excluded(&self, rel: &Path) -> bool {
        let rel = rel.to_string_lossy();
        self.excludes.iter().any(|e| {
            let e = e.trim_start_matches('/');
            if let Some(dir) = e.strip_suffix("/*") {
                rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
            } else {
                rel == e || (rel.starts_with(e) && rel[e.len()..].starts_with('/'))
            }
        })
    }

    /// Copies the content of `src` into `dst` (created with its parents if missing;
    /// files already there are replaced).
    ///
    /// # Errors
    ///
    /// [`Error::Copy`] naming the first path that failed; the copy then stops (the
    /// workers finish the file they are on).
    pub async fn copy_tree(&self, src: &Path, dst: &Path) -> Result<CopyStats> {
        let this = self.clone();
        let (src, dst) = (src.to_owned(), dst.to_owned());
        tokio::task::spawn_blocking(move || this.copy_blocking(&src, &dst))
            .await
            .map_err(|e| Error::Copy {
                path: PathBuf::new(),
                source: io::Error::other(e),
            })?
    }

    fn copy_blocking(&self, src: &Path, dst: &Path) -> Result<CopyStats> {
        fs::create_dir_all(dst).map_err(copy_err(dst))?;
        // Walk: directories are created as they are met, files queued.
        let mut dirs = vec![PathBuf::new()];
        let mut jobs = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = src.join(&rel);
            for e in fs::read_dir(&dir).map_err(copy_err(&dir))? {
                let e = e.map_err(copy_err(&dir))?;
                let child = rel.join(e.file_name());
                let path = e.path();
                let m = fs::symlink_metadata(&path).map_err(copy_err(&path))?;
                if self.excluded(&child) {
                    continue;
                }
                let target = dst.join(&child);
                if m.is_dir() {
                    match fs::create_dir(&target) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                            return Err(copy_err(&target)(e));
                        }
                        _ => {}
                    }
                    // Writable by us until the end, whatever the source mode.
                    fs::set_permissions(&target, fs::Permissions::from_mode(0o700))
                        .map_err(copy_err(&target))?;
                    dirs.push(child.clone());
                    stack.push(child);
                } else if m.file_type().is_symlink() {
                    let link = fs::read_link(&path).map_err(copy_err(&path))?;
                    let _ = fs::remove_file(&target);
                    std::os::unix::fs::symlink(&link, &target).map_err(copy_err(&target))?;
                } else if m.is_file() {
                    jobs.push(Job {
                        rel: child,
                        size: m.len(),
                        mtime: m.modified().map_err(copy_err(&path))?,
                    });
                }
                // Sockets, FIFOs and devices are not part of a data directory copy.
            }
        }
        // Smallest last: workers pop from the end.
        jobs.sort_by_key(|j| j.size);
        let queue = Arc::new(Mutex::new(jobs));
        let stats = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.workers)
                .map(|_| {
                    let queue = queue.clone();
                    scope.spawn(move || self.worker(src, dst, &queue))
                })
                .collect();
            let mut total = CopyStats::default();
            let mut first_err = None;
            for h in handles {
                match h.join() {
                    Ok(Ok(s)) => {
                        total.files_copied += s.files_copied;
                        total.files_linked += s.files_linked;
                        total.bytes_copied += s.bytes_copied;
                    }
                    Ok(Err(e)) => {
                        first_err.get_or_insert(e);
                    }
                    Err(_) => {
                        first_err.get_or_insert(Error::Copy {
                            path: src.to_owned(),
                            source: io::Error::other("a copy worker panicked"),
                        });
                    }
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(total),
            }
        })?;
        // Directory modes and times, deepest first.
        for rel in dirs.iter().rev() {
            let (s, d) = (src.join(rel), dst.join(rel));
            let m = fs::metadata(&s).map_err(copy_err(&s))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(copy_err(&d))?;
            if let Ok(t) = m.modified() {
                let _ = fs::File::open(&d).and_then(|f| f.set_modified(t));
            }
        }
        Ok(stats)
    }

    fn worker(&self, src: &Path, dst: &Path, queue: &Mutex<Vec<Job>>) -> Result<CopyStats> {
        let mut stats = CopyStats::default();
        loop {
            let job = {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                q.pop()
            };
            let Some(job) = job else {
                return Ok(stats);
            };
            let (s, d) = (src.join(&job.rel), dst.join(&job.rel));
            if let Some(reference) = &self.link_dest {
                let r = reference.join(&job.rel);
                let same = fs::symlink_metadata(&r).is_ok_and(|m| {
                    m.is_file() && m.len() == job.size && m.modified().ok() == Some(job.mtime)
                });
                if same {
                    let _ = fs::remove_file(&d);
                    fs::hard_link(&r, &d).map_err(copy_err(&d))?;
                    stats.files_linked += 1;
                    continue;
                }
            }
            let _ = fs::remove_file(&d);
            // std::fs::copy uses copy_file_range (reflink where the filesystem can)
            // and copies the permission bits.
            let n = fs::copy(&s, &d).map_err(copy_err(&s))?;
            fs::OpenOptions::new()
                .write(true)
                .open(&d)
                .and_then(|f| f.set_modified(job.mtime))
                .map_err(copy_err(&d))?;
            stats.files_copied += 1;
            stats.bytes_copied += n;
        }
    }
}
