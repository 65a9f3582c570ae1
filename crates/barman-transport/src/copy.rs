//! The native parallel copier for same-host backups and restores.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
    /// Bytes of the files reused from the `link_dest` tree.
    pub bytes_reused: u64,
    /// Files that disappeared from the source while the copy ran (a live database
    /// drops and truncates files), left out with [`allow_vanished`](LocalCopier::allow_vanished).
    pub files_vanished: u64,
}

impl CopyStats {
    fn add(&mut self, o: &CopyStats) {
        self.files_copied += o.files_copied;
        self.files_linked += o.files_linked;
        self.bytes_copied += o.bytes_copied;
        self.bytes_reused += o.bytes_reused;
        self.files_vanished += o.files_vanished;
    }
}

/// Counters a [`LocalCopier`] updates as it goes, for a progress display polled by
/// another thread.
#[derive(Debug, Default)]
pub struct CopyProgress {
    /// Bytes expected in all (set by the caller, when known).
    pub total_bytes: std::sync::atomic::AtomicU64,
    /// Bytes written or reused so far.
    pub bytes: std::sync::atomic::AtomicU64,
    /// Files written or reused so far.
    pub files: std::sync::atomic::AtomicU64,
}

impl CopyProgress {
    fn add(&self, bytes: u64, files: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.bytes.fetch_add(bytes, Relaxed);
        self.files.fetch_add(files, Relaxed);
    }
}

/// One regular file a [`LocalCopier`] wrote, with its CRC-32C when
/// [`checksums`](LocalCopier::checksums) is on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopiedFile {
    /// The path relative to the tree's root.
    pub rel: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time.
    pub mtime: SystemTime,
    /// CRC-32C of the content (0 when checksums are off).
    pub crc32c: u32,
    /// Whether it was reused from the `link_dest` tree rather than copied.
    pub reused: bool,
}

impl CopiedFile {
    /// A record for a file written by other means (a label written from memory).
    pub fn new(rel: PathBuf, size: u64) -> CopiedFile {
        CopiedFile {
            rel,
            size,
            mtime: SystemTime::UNIX_EPOCH,
            crc32c: 0,
            reused: false,
        }
    }
}

/// How unchanged files found in the [`link_dest`](LocalCopier::link_dest) tree are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reuse {
    /// A hard link to the previous copy (`reuse_backup = link`): no space used.
    #[default]
    Link,
    /// A copy of the previous copy (`reuse_backup = copy`): the source is not read.
    Copy,
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
    reuse: Reuse,
    safe_horizon: Option<SystemTime>,
    known: Arc<HashMap<PathBuf, u32>>,
    excludes: Vec<String>,
    allow_vanished: bool,
    fsync: bool,
    checksums: bool,
    progress: Option<Arc<CopyProgress>>,
    limit: Option<crate::RateLimiter>,
}

impl Default for LocalCopier {
    fn default() -> Self {
        LocalCopier {
            workers: 1,
            link_dest: None,
            reuse: Reuse::Link,
            safe_horizon: None,
            known: Arc::default(),
            excludes: Vec::new(),
            allow_vanished: false,
            fsync: false,
            checksums: false,
            progress: None,
            limit: None,
        }
    }
}

struct Job {
    rel: PathBuf,
    size: u64,
    mtime: SystemTime,
    mode: u32,
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

    /// How unchanged files are reused from the [`link_dest`](Self::link_dest) tree
    /// (default [`Reuse::Link`]).
    pub fn reuse(mut self, how: Reuse) -> Self {
        self.reuse = how;
        self
    }

    /// Files modified at or after this instant are always copied, even when size and
    /// modification time match the previous copy: a file can change again within the
    /// same second (or clock tick) after the previous copy read it. Pass the start time
    /// of the previous copy.
    pub fn safe_horizon(mut self, t: SystemTime) -> Self {
        self.safe_horizon = Some(t);
        self
    }

    /// CRC-32C checksums of the files of the [`link_dest`](Self::link_dest) tree,
    /// by relative path, so that reused files need not be read again when
    /// [`checksums`](Self::checksums) is on. A map shared in an [`Arc`] is not copied.
    pub fn known_checksums(mut self, known: impl Into<Arc<HashMap<PathBuf, u32>>>) -> Self {
        self.known = known.into();
        self
    }

    /// Skips files and directories that disappear from the source during the copy
    /// instead of failing (a running database removes files). Counted in
    /// [`CopyStats::files_vanished`].
    pub fn allow_vanished(mut self, yes: bool) -> Self {
        self.allow_vanished = yes;
        self
    }

    /// fsyncs every file written and every directory of the copy before returning,
    /// so the copy is durable when [`copy_tree`](Self::copy_tree) succeeds.
    pub fn fsync(mut self, yes: bool) -> Self {
        self.fsync = yes;
        self
    }

    /// Computes the CRC-32C of every file while copying it (returned by
    /// [`copy_tree_files`](Self::copy_tree_files)).
    pub fn checksums(mut self, yes: bool) -> Self {
        self.checksums = yes;
        self
    }

    /// At most this many bytes per second for all workers together (`bandwidth_limit`).
    pub fn rate_limit(mut self, limit: crate::RateLimiter) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Counters to update as files are copied (for a progress display).
    pub fn progress(mut self, progress: Arc<CopyProgress>) -> Self {
        self.progress = Some(progress);
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
        Ok(self.copy_tree_files(src, dst).await?.0)
    }

    /// Like [`copy_tree`](Self::copy_tree), also returning every regular file written,
    /// sorted by path, with its checksum when [`checksums`](Self::checksums) is on.
    ///
    /// # Errors
    ///
    /// As [`copy_tree`](Self::copy_tree).
    pub async fn copy_tree_files(
        &self,
        src: &Path,
        dst: &Path,
    ) -> Result<(CopyStats, Vec<CopiedFile>)> {
        let this = self.clone();
        let (src, dst) = (src.to_owned(), dst.to_owned());
        tokio::task::spawn_blocking(move || this.copy_blocking(&src, &dst))
            .await
            .map_err(|e| Error::Copy {
                path: PathBuf::new(),
                source: io::Error::other(e),
            })?
    }

    fn vanished(&self, e: &io::Error) -> bool {
        self.allow_vanished && e.kind() == io::ErrorKind::NotFound
    }

    fn copy_blocking(&self, src: &Path, dst: &Path) -> Result<(CopyStats, Vec<CopiedFile>)> {
        fs::create_dir_all(dst).map_err(copy_err(dst))?;
        let mut total = CopyStats::default();
        // Walk: directories are created as they are met, files queued.
        let mut dirs = vec![PathBuf::new()];
        let mut jobs = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = src.join(&rel);
            let entries = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if self.vanished(&e) && !rel.as_os_str().is_empty() => {
                    total.files_vanished += 1;
                    continue;
                }
                Err(e) => return Err(copy_err(&dir)(e)),
            };
            for e in entries {
                let e = e.map_err(copy_err(&dir))?;
                let child = rel.join(e.file_name());
                let path = e.path();
                if self.excluded(&child) {
                    continue;
                }
                let m = match fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(e) if self.vanished(&e) => {
                        total.files_vanished += 1;
                        continue;
                    }
                    Err(e) => return Err(copy_err(&path)(e)),
                };
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
                        mode: m.mode(),
                    });
                }
                // Sockets, FIFOs and devices are not part of a data directory copy.
            }
        }
        // Smallest last: workers pop from the end.
        jobs.sort_by_key(|j| j.size);
        let queue = Arc::new(Mutex::new(jobs));
        let mut files = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.workers)
                .map(|_| {
                    let queue = queue.clone();
                    scope.spawn(move || self.worker(src, dst, &queue))
                })
                .collect();
            let mut files = Vec::new();
            let mut first_err = None;
            for h in handles {
                match h.join() {
                    Ok(Ok((s, f))) => {
                        total.add(&s);
                        files.extend(f);
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
                None => Ok(files),
            }
        })?;
        // Directory modes and times, deepest first.
        for rel in dirs.iter().rev() {
            let (s, d) = (src.join(rel), dst.join(rel));
            let m = match fs::metadata(&s) {
                Ok(m) => m,
                Err(e) if self.vanished(&e) => continue,
                Err(e) => return Err(copy_err(&s)(e)),
            };
            fs::set_permissions(&d, fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(copy_err(&d))?;
            if let Ok(t) = m.modified() {
                let _ = fs::File::open(&d).and_then(|f| f.set_modified(t));
            }
            if self.fsync {
                fs::File::open(&d)
                    .and_then(|f| f.sync_all())
                    .map_err(copy_err(&d))?;
            }
        }
        if self.fsync
            && let Some(parent) = dst.parent()
        {
            fs::File::open(parent)
                .and_then(|f| f.sync_all())
                .map_err(copy_err(parent))?;
        }
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok((total, files))
    }

    /// Whether the file of `job` can be taken from the previous copy at `r`.
    fn reusable(&self, job: &Job, r: &Path) -> bool {
        if self
            .safe_horizon
            .is_some_and(|horizon| job.mtime >= horizon)
        {
            return false;
        }
        fs::symlink_metadata(r).is_ok_and(|m| {
            m.is_file() && m.len() == job.size && m.modified().ok() == Some(job.mtime)
        })
    }

    fn worker(
        &self,
        src: &Path,
        dst: &Path,
        queue: &Mutex<Vec<Job>>,
    ) -> Result<(CopyStats, Vec<CopiedFile>)> {
        let mut stats = CopyStats::default();
        let mut files = Vec::new();
        let chunked = self.checksums || self.limit.is_some();
        let mut buf = vec![0u8; if chunked { 1 << 20 } else { 0 }];
        loop {
            let job = {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                q.pop()
            };
            let Some(job) = job else {
                return Ok((stats, files));
            };
            let (s, d) = (src.join(&job.rel), dst.join(&job.rel));
            let mut record = CopiedFile {
                rel: job.rel.clone(),
                size: job.size,
                mtime: job.mtime,
                crc32c: 0,
                reused: false,
            };
            if let Some(reference) = &self.link_dest {
                let r = reference.join(&job.rel);
                if self.reusable(&job, &r) {
                    let _ = fs::remove_file(&d);
                    match self.reuse {
                        Reuse::Link => fs::hard_link(&r, &d).map_err(copy_err(&d))?,
                        Reuse::Copy => {
                            fs::copy(&r, &d).map_err(copy_err(&r))?;
                            self.finish_file(&d, job.mtime, false)?;
                        }
                    }
                    if self.checksums {
                        record.crc32c = match self.known.get(&job.rel) {
                            Some(crc) => *crc,
                            None => crc_of(&r, &mut buf)?,
                        };
                    }
                    record.reused = true;
                    if let Some(p) = &self.progress {
                        p.add(job.size, 1);
                    }
                    stats.files_linked += 1;
                    stats.bytes_reused += job.size;
                    files.push(record);
                    continue;
                }
            }
            let _ = fs::remove_file(&d);
            let copied = if chunked {
                self.copy_with_crc(&s, &d, job.mode, &mut buf)
            } else {
                // std::fs::copy uses copy_file_range (reflink where the filesystem can)
                // and copies the permission bits.
                fs::copy(&s, &d).map(|n| (n, 0))
            };
            let (n, crc) = match copied {
                Ok(v) => v,
                Err(e) if self.vanished(&e) && !s.exists() => {
                    let _ = fs::remove_file(&d);
                    stats.files_vanished += 1;
                    continue;
                }
                Err(e) => return Err(copy_err(&s)(e)),
            };
            self.finish_file(&d, job.mtime, self.fsync)?;
            if let Some(p) = &self.progress {
                p.add(n, 1);
            }
            record.size = n;
            record.crc32c = crc;
            stats.files_copied += 1;
            stats.bytes_copied += n;
            files.push(record);
        }
    }

    fn finish_file(&self, d: &Path, mtime: SystemTime, sync: bool) -> Result<()> {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(d)
            .map_err(copy_err(d))?;
        f.set_modified(mtime).map_err(copy_err(d))?;
        if sync || self.fsync {
            f.sync_all().map_err(copy_err(d))?;
        }
        Ok(())
    }

    /// Streams `s` into a new file `d` (mode of the source), returning the bytes
    /// written and their CRC-32C. The file may grow or shrink while it is read (a live
    /// database): what was read is what is recorded.
    fn copy_with_crc(
        &self,
        s: &Path,
        d: &Path,
        mode: u32,
        buf: &mut [u8],
    ) -> io::Result<(u64, u32)> {
        let mut input = fs::File::open(s)?;
        let mut output = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(d)?;
        let (mut n, mut crc) = (0u64, 0u32);
        loop {
            let got = match input.read(buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if let Some(limit) = &self.limit {
                limit.acquire_blocking(got);
            }
            output.write_all(&buf[..got])?;
            if self.checksums {
                crc = crc32c::crc32c_append(crc, &buf[..got]);
            }
            n += got as u64;
        }
        Ok((n, crc))
    }
}

fn crc_of(path: &Path, buf: &mut [u8]) -> Result<u32> {
    let mut f = fs::File::open(path).map_err(copy_err(path))?;
    let mut crc = 0u32;
    loop {
        let got = f.read(buf).map_err(copy_err(path))?;
        if got == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..got]);
    }
}
