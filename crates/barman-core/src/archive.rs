//! WAL archiving: `put-wal`, the path behind `archive_command`.
//!
//! A WAL file is reported archived only once it is validated, compressed as configured,
//! durably installed under `wals/<hash dir>/` and listed in xlog.db.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use barman_catalog::{Identity, XlogDbEntry};
use barman_wal::{
    BackupLabel, Codec, CompressionLevel, SegmentCheck, TimelineHistory, WalFileName, WalSegSize,
};

use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::{Lock, TempFile, create_private_dir, sync_dir, write_replace};
use crate::{Error, Result};

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
    backup_dir: PathBuf,
    wals_dir: PathBuf,
    errors_dir: PathBuf,
    xlogdb: PathBuf,
    lock_dir: PathBuf,
    codec: Codec,
    compression_name: Option<String>,
    level: CompressionLevel,
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
        let backup_dir = PathBuf::from(server.get_str("backup_directory").unwrap_or_default());
        let wals_dir = server
            .get_str("wals_directory")
            .map_or_else(|| backup_dir.join("wals"), PathBuf::from);
        let errors_dir = server
            .get_str("errors_directory")
            .map_or_else(|| backup_dir.join("errors"), PathBuf::from);
        let xlogdb_dir = server
            .get_str("xlogdb_directory")
            .map_or_else(|| wals_dir.clone(), PathBuf::from);
        let compression = server.compression();
        WalArchive {
            xlogdb: xlogdb_dir.join(format!("{name}-xlog.db")),
            server: name,
            backup_dir,
            wals_dir,
            errors_dir,
            lock_dir: PathBuf::from(&global.barman_lock_directory),
            codec: compression.and_then(|c| c.codec()).unwrap_or(Codec::None),
            compression_name: compression
                .and_then(|c| c.codec())
                .map(|c| c.name().to_owned()),
            level: server.compression_level(),
        }
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

    fn identity_path(&self) -> PathBuf {
        self.backup_dir.join("identity.json")
    }

    fn read_identity(&self) -> Result<Option<Identity>> {
        let path = self.identity_path();
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Identity::parse(&path.display().to_string(), &text)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", path, e)),
        }
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
    /// copy untouched and the new one moved to `errors/`. The same content again is not
    /// an error ([`PutOutcome::AlreadyArchived`]).
    pub fn put_wal(&self, src: &Path) -> Result<PutOutcome> {
        let base = src.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let name: WalFileName = base.parse().map_err(|e| Error::Wal {
            path: src.to_owned(),
            source: e,
        })?;
        let dest = self.path_of(&name);
        let dest_dir = dest.parent().unwrap_or(&self.wals_dir).to_owned();
        create_private_dir(&dest_dir)?;
        let meta = fs::metadata(src).map_err(|e| Error::io("reading", src, e))?;
        // Archived files never change: the same content again (PostgreSQL retrying
        // after a crash) is settled without validating or compressing anything.
        if dest.exists() && same_content(src, &dest)? {
            return Ok(PutOutcome::AlreadyArchived(name));
        }
        let identity = self.read_identity()?;

        // One pass: decode whatever compression the file has, validate, re-encode.
        let mut tmp = TempFile::new(&dest_dir, &name.to_string())?;
        let tmp_path = tmp.path().to_owned();
        let input = File::open(src).map_err(|e| Error::io("opening", src, e))?;
        let mut decoder =
            Codec::decoder_detect(BufReader::with_capacity(1 << 16, input)).map_err(|e| {
                Error::Wal {
                    path: src.to_owned(),
                    source: e,
                }
            })?;
        let file = tmp.file().map_err(|e| Error::io("writing", &tmp_path, e))?;
        let mut encoder = self
            .codec
            .encoder(io::BufWriter::with_capacity(1 << 16, file), self.level)
            .map_err(|e| Error::Wal {
                path: src.to_owned(),
                source: e,
            })?;
        let mut discovered = None;
        match name {
            WalFileName::Segment(seg) | WalFileName::Partial(seg) => {
                let mut first = vec![0u8; 8192];
                let n = read_full(&mut decoder, &mut first)
                    .map_err(|e| Error::io("reading", src, e))?;
                first.truncate(n);
                let header = barman_wal::PageHeader::parse(&first);
                let size = header
                    .and_then(|h| h.segment_size())
                    .and_then(|s| WalSegSize::new(u64::from(s)).ok())
                    .unwrap_or(WalSegSize::DEFAULT);
                let mut check =
                    SegmentCheck::new(seg, size).partial(matches!(name, WalFileName::Partial(_)));
                if let Some(id) = &identity {
                    let expected = id.system_id()?;
                    if let Some(found) = header
                        .and_then(|h| h.system_id())
                        .filter(|f| *f != expected)
                    {
                        return Err(Error::ForeignCluster {
                            path: src.to_owned(),
                            server: self.server.clone(),
                            found,
                            expected,
                        });
                    }
                    check = check.system_id(expected);
                }
                let mut v = check.validator();
                let wal_err = |e| Error::Wal {
                    path: src.to_owned(),
                    source: e,
                };
                v.feed(&first).map_err(wal_err)?;
                encoder
                    .write_all(&first)
                    .map_err(|e| Error::io("writing", &tmp_path, e))?;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = match decoder.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Error::io("reading", src, e)),
                    };
                    v.feed(&buf[..n]).map_err(wal_err)?;
                    encoder
                        .write_all(&buf[..n])
                        .map_err(|e| Error::io("writing", &tmp_path, e))?;
                }
                let report = v.finish().map_err(wal_err)?;
                discovered = Some((report.system_id, report.version));
            }
            WalFileName::History(tli) => {
                let mut text = String::new();
                decoder
                    .read_to_string(&mut text)
                    .map_err(|e| Error::io("reading", src, e))?;
                TimelineHistory::parse(tli, &text).map_err(|e| Error::Wal {
                    path: src.to_owned(),
                    source: e,
                })?;
                encoder
                    .write_all(text.as_bytes())
                    .map_err(|e| Error::io("writing", &tmp_path, e))?;
            }
            WalFileName::BackupLabel { .. } => {
                let mut text = String::new();
                decoder
                    .read_to_string(&mut text)
                    .map_err(|e| Error::io("reading", src, e))?;
                BackupLabel::parse(&text).map_err(|e| Error::Wal {
                    path: src.to_owned(),
                    source: e,
                })?;
                encoder
                    .write_all(text.as_bytes())
                    .map_err(|e| Error::io("writing", &tmp_path, e))?;
            }
        }
        let mut out = encoder
            .finish()
            .map_err(|e| Error::io("writing", &tmp_path, e))?;
        out.flush()
            .map_err(|e| Error::io("writing", &tmp_path, e))?;
        drop(out);
        if let Ok(mtime) = meta.modified() {
            let _ = tmp.file().map(|f| f.set_modified(mtime));
        }
        let stored_size = fs::metadata(&tmp_path)
            .map_err(|e| Error::io("reading", &tmp_path, e))?
            .len();

        let _lock = Lock::acquire(&self.lock_dir.join(format!(".{}-xlogdb.lock", self.server)))?;
        if !tmp.install_new(&dest)? {
            // Already there: identical content is a success, different content an error.
            if same_content(src, &dest)? {
                return Ok(PutOutcome::AlreadyArchived(name));
            }
            create_private_dir(&self.errors_dir)?;
            let stamp = jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string();
            let kept_as = self.errors_dir.join(format!("{name}.{stamp}.duplicate"));
            fs::copy(src, &kept_as).map_err(|e| Error::io("copying to", &kept_as, e))?;
            sync_dir(&self.errors_dir)?;
            return Err(Error::DuplicateDifferent {
                name: name.to_string(),
                kept_as,
            });
        }
        let entry = XlogDbEntry {
            name,
            size: stored_size,
            time: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64()),
            compression: self.compression_name.clone(),
            encryption: None,
        };
        self.append_xlogdb(&entry)?;
        if identity.is_none()
            && let Some((systemid, version)) = discovered
        {
            let id = Identity {
                systemid: systemid.to_string(),
                version: version.to_string(),
            };
            write_replace(&self.identity_path(), id.to_json().as_bytes())?;
        }
        Ok(PutOutcome::Archived(entry))
    }

    fn append_xlogdb(&self, entry: &XlogDbEntry) -> Result<()> {
        if let Some(dir) = self.xlogdb.parent() {
            create_private_dir(dir)?;
        }
        let existed = self.xlogdb.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode_0600()
            .open(&self.xlogdb)
            .map_err(|e| Error::io("opening", &self.xlogdb, e))?;
        writeln!(f, "{entry}").map_err(|e| Error::io("appending to", &self.xlogdb, e))?;
        f.sync_all()
            .map_err(|e| Error::io("syncing", &self.xlogdb, e))?;
        if !existed && let Some(dir) = self.xlogdb.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether two files hold the same content once decompressed (whatever their codecs).
fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| -> Result<_> {
        let f = File::open(p).map_err(|e| Error::io("opening", p, e))?;
        Codec::decoder_detect(BufReader::new(f)).map_err(|e| Error::Wal {
            path: p.to_owned(),
            source: e,
        })
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut ra, &mut ba).map_err(|e| Error::io("reading", a, e))?;
        let nb = read_full(&mut rb, &mut bb).map_err(|e| Error::io("reading", b, e))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}
