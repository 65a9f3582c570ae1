//! The WAL archive of a server: archiving (`put-wal`, the tar stream of
//! `barman-wal-archive`, `archive-wal` over `incoming/` and `streaming/`), retrieval
//! (`get-wal`), and catalogue maintenance (`rebuild-xlogdb`, `check-wal-archive`).
//!
//! A WAL file is reported archived only once it is validated, compressed as configured,
//! durably installed under `wals/<hash dir>/` and listed in xlog.db. Every way into the
//! archive goes through the same store step ([`WalArchive::put_wal`] documents it).
//!
//! # Design notes
//!
//! - **put-wal archives.** Barman's `put-wal` only drops the files of its tar stream into
//!   `incoming/` and leaves them to the next `cron`; [`WalArchive::put_wal_tar`] archives
//!   them before returning, so `archive_command` succeeds only once the WAL is durable.
//! - **A file that fails validation stays where it is.** [`WalArchive::archive_wal`]
//!   leaves it in `incoming/` or `streaming/` and reports it: a file still being copied
//!   by a plain `cp` is complete on the next run.
//! - **Errors of these operations** are the crate's [`Error`], with variants for the
//!   conditions the command line reports with Barman's own messages.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use barman_catalog::XlogDbEntry;
use barman_wal::{Codec, WalFileName};

use crate::compression::CustomCompression;
use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::{Lock, TempFile, create_private_dir, sync_dir};
use crate::hooks::{Hook, Hooks};
use crate::repository::wal::same_stream;
use crate::repository::{self, Repository};
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

mod classic;
mod get;
mod maintenance;
mod tarstream;

pub use classic::{ArchiveReport, ArchivedFile, Archiver, ErrorKind, FailedFile, MovedToErrors};
pub use get::{FoundWal, GetWalOptions, TarWalOptions};
pub use maintenance::{RebuildReport, SkipReason, SkippedFile};

/// The WAL archive of one server: where files go and how they are stored.
///
/// # Examples
///
/// ```no_run
/// use barman_core::archive::WalArchive;
/// use barman_core::config::{Config, MemorySource};
///
/// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\narchiver = on\ncompression = zstd\n", &MemorySource::default())?;
/// let archive = WalArchive::for_server(config.global(), config.server("pg").unwrap());
/// let outcome = archive.put_wal("/var/lib/postgresql/15/main/pg_wal/000000010000000000000003".as_ref())?;
/// println!("{outcome:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct WalArchive {
    server: String,
    wals_dir: PathBuf,
    errors_dir: PathBuf,
    incoming_dir: PathBuf,
    streaming_dir: PathBuf,
    xlogdb: PathBuf,
    lock_dir: PathBuf,
    archiver: bool,
    streaming_archiver: bool,
    archiver_batch_size: usize,
    streaming_archiver_batch_size: usize,
    compression_name: Option<String>,
    /// `pre/post_archive_script` and their retry scripts, run around each file stored.
    archive_hooks: Hooks,
    /// `pre/post_wal_delete_script` and their retry scripts, run around each WAL file
    /// removed.
    wal_delete_hooks: Hooks,
    /// What the hooks had to say, for the caller to show.
    hook_warnings: Arc<Mutex<Vec<String>>>,
    /// The objects of the repository (WAL files, `identity.json`), over `Storage`.
    repository: Repository,
    /// The server's [`ServerConfig::usable`]: an error when it is disabled (nothing
    /// is archived then).
    usable: std::result::Result<(), crate::config::ConfigError>,
}

/// What [`WalArchive::put_wal`] did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// The file is now archived; its xlog.db line.
    Archived(XlogDbEntry),
    /// The same content was already archived: nothing changed.
    AlreadyArchived(WalFileName),
}

impl WalArchive {
    /// The archive of `server` as configured.
    pub fn for_server(global: &GlobalConfig, server: &ServerConfig) -> WalArchive {
        let name = server.name().to_owned();
        let o = server.options();
        let dir = |value: &Option<String>, fallback: &Path| {
            value
                .as_ref()
                .map_or_else(|| fallback.to_owned(), PathBuf::from)
        };
        let backup_dir = PathBuf::from(o.backup_directory.clone().unwrap_or_default());
        let wals_dir = dir(&o.wals_directory, &backup_dir.join("wals"));
        let errors_dir = dir(&o.errors_directory, &backup_dir.join("errors"));
        let xlogdb_dir = dir(&o.xlogdb_directory, &wals_dir);
        let incoming_dir = dir(&o.incoming_wals_directory, &backup_dir.join("incoming"));
        let streaming_dir = dir(&o.streaming_wals_directory, &backup_dir.join("streaming"));
        let batch = |size: i64| usize::try_from(size).unwrap_or(0);
        let compression = server.compression();
        WalArchive {
            xlogdb: xlogdb_dir.join(format!("{name}-xlog.db")),
            server: name,
            wals_dir,
            errors_dir,
            incoming_dir,
            streaming_dir,
            lock_dir: PathBuf::from(&global.barman_lock_directory),
            archiver: server.archiver(),
            streaming_archiver: server.streaming_archiver(),
            archiver_batch_size: batch(o.archiver_batch_size),
            streaming_archiver_batch_size: batch(o.streaming_archiver_batch_size),
            compression_name: compression.and_then(|c| match c.codec() {
                Some(codec) => Some(codec.name().to_owned()),
                None => (c.name() == crate::compression::CUSTOM).then(|| c.name().to_owned()),
            }),
            archive_hooks: Hooks::new(global, server, Hook::Archive),
            wal_delete_hooks: Hooks::new(global, server, Hook::WalDelete),
            hook_warnings: Arc::default(),
            repository: Repository::for_server(server),
            usable: server.usable(),
        }
    }

    /// `Ok` unless the server is disabled by its configuration: nothing is archived
    /// into it then.
    pub(crate) fn usable(&self) -> Result<()> {
        Ok(self.usable.clone()?)
    }

    /// The warnings of the hook scripts run since the last call (failed scripts,
    /// aborted retry scripts), for the caller to show.
    pub fn take_hook_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.hook_warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn add_hook_warnings(&self, warnings: Vec<String>) {
        if !warnings.is_empty() {
            self.hook_warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(warnings);
        }
    }

    /// The `wal_delete_script` hooks, ready for one file.
    pub(crate) fn wal_delete_hooks(&self) -> Hooks {
        self.wal_delete_hooks.clone()
    }

    /// The objects of the repository this archive stores into.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// Where an archived file lives: `wals/<hash dir>/<name>` (history files at the top).
    pub fn path_of(&self, name: &WalFileName) -> PathBuf {
        let hash = name.hash_dir();
        if hash.is_empty() {
            self.wals_dir.join(name.to_string())
        } else {
            self.wals_dir.join(hash).join(name.to_string())
        }
    }

    /// The xlog.db file.
    pub fn xlogdb_path(&self) -> &Path {
        &self.xlogdb
    }

    /// The WAL index: xlog.db read (empty when there is none yet). The one reader of
    /// xlog.db, whoever needs it (backups, the catalogue, recovery).
    ///
    /// # Errors
    ///
    /// I/O errors, or a line of xlog.db that cannot be read (the error names it).
    pub fn wal_index(&self) -> Result<barman_catalog::WalIndex> {
        match fs::read_to_string(&self.xlogdb) {
            Ok(text) => Ok(barman_catalog::WalIndex::parse(
                &self.xlogdb.to_string_lossy(),
                &text,
            )?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(barman_catalog::WalIndex::new()),
            Err(e) => Err(Error::io("reading", &self.xlogdb, e)),
        }
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `wals/` (`wals_directory`).
    pub fn wals_dir(&self) -> &Path {
        &self.wals_dir
    }

    /// `incoming/` (`incoming_wals_directory`), where `archive_command` drops files.
    pub fn incoming_dir(&self) -> &Path {
        &self.incoming_dir
    }

    /// `streaming/` (`streaming_wals_directory`), where `pg_receivewal` writes.
    pub fn streaming_dir(&self) -> &Path {
        &self.streaming_dir
    }

    /// `errors/` (`errors_directory`), where rejected files are set aside.
    pub fn errors_dir(&self) -> &Path {
        &self.errors_dir
    }

    pub(crate) fn xlogdb_lock(&self) -> Result<Lock> {
        Lock::acquire(&self.lock_dir.join(format!(".{}-xlogdb.lock", self.server)))
    }

    /// Archives the WAL file at `src` (a segment, `.partial`, `.backup` or `.history`
    /// file, possibly already compressed): validates it (name; for segments the page
    /// headers, the records' CRC-32C, the system identifier against `identity.json`, the
    /// size), compresses it with the server's compression, installs it durably without
    /// ever replacing an archived file, and appends its line to xlog.db, all under the
    /// server's xlog.db lock. The first archived segment records the cluster in
    /// `identity.json` when there is none yet.
    ///
    /// # Errors
    ///
    /// Invalid names or content, a foreign cluster, I/O errors: nothing is archived.
    /// The same name with different content: [`Error::DuplicateDifferent`], the archived
    /// copy untouched and a copy of the new one in `errors/`. The same content again is
    /// not an error ([`PutOutcome::AlreadyArchived`]).
    ///
    /// `src` is never moved, removed or modified: it is PostgreSQL's own file in
    /// `pg_wal/`, which PostgreSQL keeps and offers again until archiving succeeds.
    pub fn put_wal(&self, src: &Path) -> Result<PutOutcome> {
        self.usable()?;
        let base = src.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let name: WalFileName = base.parse().map_err(|e| Error::Wal {
            path: src.to_owned(),
            source: e,
        })?;
        match self.store(src, name)? {
            Stored::Archived(entry) => Ok(PutOutcome::Archived(entry)),
            Stored::Identical => Ok(PutOutcome::AlreadyArchived(name)),
            Stored::Different => {
                // A copy: the source belongs to PostgreSQL.
                let kept_as = self.set_aside(src, &name.to_string(), ErrorKind::Duplicate, true)?;
                Err(Error::DuplicateDifferent {
                    name: name.to_string(),
                    kept_as,
                })
            }
        }
    }

    /// The store step shared by every way into the archive, between the archive hooks:
    /// `pre_archive_script` and `pre_archive_retry_script` (whose exit 63 stops the
    /// archiving of this file) before, then the post ones, with `BARMAN_FILE` the
    /// archived file and `BARMAN_ERROR` what went wrong (Barman gives the error to the
    /// post retry script only; both get it here).
    fn store(&self, src: &Path, name: WalFileName) -> Result<Stored> {
        if !self.archive_hooks.any() {
            return self.store_file(src, name);
        }
        let mut hooks = self.archive_hooks.clone();
        let text = name.to_string();
        let meta = fs::metadata(src).map_err(|e| Error::io("reading", src, e))?;
        let codec = file_codec(src).unwrap_or(Codec::None);
        hooks.with_wal(
            &text,
            src,
            meta.len(),
            mtime_secs(&meta),
            (codec != Codec::None).then(|| codec.name()),
            None,
        );
        hooks.run("pre");
        let result = hooks
            .run_retry("pre")
            .and_then(|()| self.store_file(src, name));
        let dest = self.path_of(&name);
        let stored = fs::metadata(&dest).ok();
        let error = match &result {
            Ok(Stored::Archived(_)) => None,
            Ok(Stored::Identical) => Some(format!("MatchingDuplicateWalFile: {text}")),
            Ok(Stored::Different) => Some(format!("DuplicateWalFile: {text}")),
            Err(e) => Some(e.to_string()),
        };
        hooks.with_wal(
            &text,
            &dest,
            stored.as_ref().map_or(0, fs::Metadata::len),
            stored.as_ref().map_or(0.0, mtime_secs),
            self.compression_name.as_deref(),
            error.as_deref(),
        );
        hooks.run_post();
        self.add_hook_warnings(hooks.warnings);
        result
    }

    /// The store step proper: validate `src` as `name`, compress, install without
    /// replacing, append xlog.db. `src` is left in place.
    fn store_file(&self, src: &Path, name: WalFileName) -> Result<Stored> {
        let dest_dir = self
            .path_of(&name)
            .parent()
            .unwrap_or(&self.wals_dir)
            .to_owned();
        let made = !dest_dir.exists();
        let result = self.store_into(src, name);
        if result.is_err() && made {
            // A refused file leaves the repository as it was: no empty hash directory.
            let _ = fs::remove_dir(&dest_dir);
        }
        result
    }

    fn store_into(&self, src: &Path, name: WalFileName) -> Result<Stored> {
        let dest = self.path_of(&name);
        let meta = fs::metadata(src).map_err(|e| Error::io("reading", src, e))?;
        match crate::wait(self.repository.store_wal(src, name))? {
            repository::Stored::Identical => {
                self.ensure_listed(name, &dest)?;
                Ok(Stored::Identical)
            }
            repository::Stored::Archived { size } => {
                // The archived file keeps the source's time, as xlog.db records it.
                if let Ok(mtime) = meta.modified() {
                    let _ = File::options()
                        .write(true)
                        .open(&dest)
                        .and_then(|f| f.set_modified(mtime));
                }
                let entry = XlogDbEntry {
                    name,
                    size,
                    time: mtime_secs(&meta),
                    compression: self.compression_name.clone(),
                    encryption: self.repository.gpg().name().map(str::to_owned),
                };
                let _lock = self.xlogdb_lock()?;
                // A rebuild of xlog.db may have listed it already.
                if !xlogdb_lists(&self.xlogdb, &name.to_string())? {
                    self.append_xlogdb(&entry)?;
                }
                Ok(Stored::Archived(entry))
            }
            _ => Ok(Stored::Different),
        }
    }

    /// Makes sure xlog.db lists `name`, archived at `path`: a crash between the install
    /// of a file and the append of its line leaves the file unlisted, and the retry
    /// that finds it already archived repairs the catalogue.
    fn ensure_listed(&self, name: WalFileName, path: &Path) -> Result<()> {
        let _lock = self.xlogdb_lock()?;
        if xlogdb_lists(&self.xlogdb, &name.to_string())? {
            return Ok(());
        }
        let entry = entry_for_file(name, path, self.repository.custom_compression())?;
        self.append_xlogdb(&entry)
    }

    /// Moves (or with `copy`, copies) `src` to `errors/<file_name>.<UTC stamp>.<kind>`,
    /// durably, never replacing a file there. Returns the new path.
    fn set_aside(
        &self,
        src: &Path,
        file_name: &str,
        kind: ErrorKind,
        copy: bool,
    ) -> Result<PathBuf> {
        create_private_dir(&self.errors_dir)?;
        let suffix = kind.suffix();
        // PostgreSQL offers a refused file again and again (every minute, for ever):
        // one copy of the same bytes is enough.
        if copy && let Some(kept) = self.kept_already(src, file_name, suffix)? {
            return Ok(kept);
        }
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let mut attempt = 0u32;
        let dest = loop {
            let dest = if attempt == 0 {
                self.errors_dir
                    .join(format!("{file_name}.{stamp}.{suffix}"))
            } else {
                self.errors_dir
                    .join(format!("{file_name}.{stamp}-{attempt}.{suffix}"))
            };
            let linked = if copy {
                Err(io::Error::from(io::ErrorKind::CrossesDevices))
            } else {
                fs::hard_link(src, &dest)
            };
            match linked {
                Ok(()) => break dest,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => {
                    attempt += 1;
                }
                Err(_) => {
                    // Another file system (or a copy was asked for): a durable copy,
                    // installed under a name nothing holds.
                    let mut input = File::open(src).map_err(|e| Error::io("opening", src, e))?;
                    let mut tmp = TempFile::new(&self.errors_dir, file_name)?;
                    let tmp_path = tmp.path().to_owned();
                    let out = tmp
                        .file()
                        .map_err(|e| Error::io("creating", &tmp_path, e))?;
                    io::copy(&mut input, out).map_err(|e| Error::io("copying to", &tmp_path, e))?;
                    if let Ok(t) = fs::metadata(src).and_then(|m| m.modified()) {
                        let _ = out.set_modified(t);
                    }
                    if !tmp.install_new(&dest)? {
                        if attempt >= 1000 {
                            return Err(Error::io(
                                "setting aside into",
                                &self.errors_dir,
                                io::Error::other("no free name after 1000 attempts"),
                            ));
                        }
                        attempt += 1;
                        continue;
                    }
                    if !copy {
                        remove_durably(src)?;
                    }
                    break dest;
                }
            }
        };
        sync_dir(&self.errors_dir)?;
        if !copy && src.exists() {
            remove_durably(src)?;
        }
        Ok(dest)
    }

    /// Repairs a torn last line of xlog.db, as the next append would (the caller holds
    /// the xlog.db lock): before a rewrite, which would otherwise drop it.
    pub(crate) fn repair_xlogdb(&self) -> Result<()> {
        let mut f = match OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.xlogdb)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("opening", &self.xlogdb, e)),
        };
        match self.cut_torn_line(&mut f)? {
            Some(relisted) => self.append_lines(&mut f, &format!("{relisted}\n")),
            None => Ok(()),
        }
    }

    /// Cuts a torn last line off xlog.db (`f`; the caller holds the xlog.db lock) and
    /// returns the entry that lists again the file it named, when that file is in the
    /// archive and no other line lists it.
    fn cut_torn_line(&self, f: &mut File) -> Result<Option<XlogDbEntry>> {
        let Some(torn) = cut_torn_tail(f).map_err(|e| Error::io("repairing", &self.xlogdb, e))?
        else {
            return Ok(None);
        };
        let Ok(name) = torn.parse::<WalFileName>() else {
            return Ok(None);
        };
        let path = self.path_of(&name);
        if !path.is_file() || xlogdb_lists(&self.xlogdb, &torn)? {
            return Ok(None);
        }
        Ok(Some(entry_for_file(
            name,
            &path,
            self.repository.custom_compression(),
        )?))
    }

    /// Appends `lines` to xlog.db (`f`) in one `write(2)`, durably. A failed write is
    /// cut back, so the next append never glues onto half a line (a full disk).
    fn append_lines(&self, f: &mut File, lines: &str) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let len = f
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("appending to", &self.xlogdb, e))?;
        if let Err(e) = f.write_all(lines.as_bytes()).and_then(|()| f.sync_all()) {
            let _ = f.set_len(len).and_then(|()| f.sync_all());
            return Err(Error::io("appending to", &self.xlogdb, e));
        }
        Ok(())
    }

    /// A file of `errors/` set aside for `file_name` as `suffix` with the same bytes as
    /// `src`, if there is one.
    fn kept_already(&self, src: &Path, file_name: &str, suffix: &str) -> Result<Option<PathBuf>> {
        let len = fs::metadata(src)
            .map_err(|e| Error::io("reading", src, e))?
            .len();
        let (head, tail) = (format!("{file_name}."), format!(".{suffix}"));
        for e in crate::fsutil::list_dir(&self.errors_dir)? {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&head)
                && name.ends_with(&tail)
                && e.metadata().is_ok_and(|m| m.is_file() && m.len() == len)
                && same_bytes(src, &e.path())?
            {
                return Ok(Some(e.path()));
            }
        }
        Ok(None)
    }

    /// Appends `entry`'s line to xlog.db; the caller holds the xlog.db lock.
    ///
    /// The line goes out in one `write(2)`, so a reader without the lock sees it whole
    /// or not at all (readers ignore an unterminated last line). A torn last line, left
    /// by a crash or a full disk, is repaired first: cut off, and when it named a file
    /// that is in the archive, listed again from that file. A failed write is cut off
    /// too, so the next append never glues onto half a line.
    fn append_xlogdb(&self, entry: &XlogDbEntry) -> Result<()> {
        if let Some(dir) = self.xlogdb.parent() {
            create_private_dir(dir)?;
        }
        let existed = self.xlogdb.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode_0600()
            .open(&self.xlogdb)
            .map_err(|e| Error::io("opening", &self.xlogdb, e))?;
        let mut lines = String::new();
        if let Some(relisted) = self.cut_torn_line(&mut f)?
            && relisted.name != entry.name
        {
            lines.push_str(&format!("{relisted}\n"));
        }
        lines.push_str(&format!("{entry}\n"));
        self.append_lines(&mut f, &lines)?;
        if !existed && let Some(dir) = self.xlogdb.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Cuts an unterminated last line off the xlog.db file `f` (durably) and returns its
/// first field (the WAL name it was writing), `None` when the file ends with a newline.
fn cut_torn_tail(f: &mut File) -> io::Result<Option<String>> {
    use std::io::{Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    // Walk back to the previous newline, 4 KiB at a time: the torn line starts after it.
    let mut chunk = [0u8; 4096];
    let mut end = len;
    let mut keep = 0;
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let read = chunk
            .get_mut(..usize::try_from(end - start).unwrap_or(0))
            .unwrap_or_default();
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(read)?;
        if let Some(i) = read.iter().rposition(|b| *b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    // Its first field, a WAL name (at most 40 bytes), is all that is needed of it.
    let mut head = Vec::new();
    f.seek(SeekFrom::Start(keep))?;
    Read::take(&mut *f, 256).read_to_end(&mut head)?;
    f.set_len(keep)?;
    f.sync_all()?;
    let text = String::from_utf8_lossy(&head);
    Ok(text.split_ascii_whitespace().next().map(str::to_owned))
}

/// What the store step did with a file.
#[derive(Debug)]
enum Stored {
    Archived(XlogDbEntry),
    /// Already archived with the same content (and now listed in xlog.db).
    Identical,
    /// Already archived with different content: nothing changed.
    Different,
}

/// Removes `path` and fsyncs its directory (nothing to do when it is gone).
fn remove_durably(path: &Path) -> Result<()> {
    Ok(crate::fsutil::remove_file(path)?)
}

/// The xlog.db line of the archived file at `path`: its size and mtime as stored, its
/// compression and encryption from its magic bytes (Barman's `WalFileInfo.from_file`).
fn entry_for_file(
    name: WalFileName,
    path: &Path,
    custom: Option<&CustomCompression>,
) -> Result<XlogDbEntry> {
    let meta = fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    let len = repository::wal::magic_len(custom);
    let mut prefix = Vec::with_capacity(len);
    File::open(path)
        .and_then(|f| f.take(len as u64).read_to_end(&mut prefix))
        .map_err(|e| Error::io("reading", path, e))?;
    let (compression, encryption) = repository::wal::stored_as(custom, &prefix);
    Ok(XlogDbEntry {
        name,
        size: meta.len(),
        time: mtime_secs(&meta),
        compression,
        encryption,
    })
}

/// The compression of the file at `path`, from its magic bytes.
fn file_codec(path: &Path) -> io::Result<Codec> {
    let mut prefix = Vec::with_capacity(barman_wal::MAGIC_MAX_LEN);
    File::open(path)?
        .take(barman_wal::MAGIC_MAX_LEN as u64)
        .read_to_end(&mut prefix)?;
    Ok(Codec::detect(&prefix))
}

/// A file's mtime as float seconds since the epoch (0 when unavailable).
fn mtime_secs(meta: &fs::Metadata) -> f64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether xlog.db at `path` has a line for `name`. Recent lines are at the end: the
/// last 256 KiB are searched first, the whole file only when that fails.
fn xlogdb_lists(path: &Path, name: &str) -> Result<bool> {
    use std::io::{BufRead, Seek, SeekFrom};
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("opening", path, e)),
    };
    let io_err = |e| Error::io("reading", path, e);
    let len = f.metadata().map_err(io_err)?.len();
    let tail_start = len.saturating_sub(256 << 10);
    let matches =
        |line: &[u8]| line.split(|b| b.is_ascii_whitespace()).next() == Some(name.as_bytes());
    let scan = |f: &mut File, from: u64| -> Result<bool> {
        f.seek(SeekFrom::Start(from)).map_err(io_err)?;
        let mut r = BufReader::new(f);
        let mut line = Vec::new();
        if from > 0 {
            // The first line read from the middle may be cut: skip it.
            r.read_until(b'\n', &mut line).map_err(io_err)?;
        }
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line).map_err(io_err)? == 0 {
                return Ok(false);
            }
            // An unterminated last line is not an entry yet (torn, or being written).
            if line.last() == Some(&b'\n') && matches(&line) {
                return Ok(true);
            }
        }
    };
    if scan(&mut f, tail_start)? {
        return Ok(true);
    }
    if tail_start > 0 {
        return scan(&mut f, 0);
    }
    Ok(false)
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| File::open(p).map_err(|e| Error::io("opening", p, e));
    same_stream((a, open(a)?), (b, open(b)?))
}
