//! `get-wal`: a WAL file out of the archive, for `restore_command`.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use barman_wal::{Codec, CompressionLevel, SegmentName, WalFileName};

use super::WalArchive;
use crate::compression::{Coding, CustomCompression, identify, with_decoded};
use crate::fsutil::TempFile;
use crate::{Error, Result};

/// How [`WalArchive::get_wal`] delivers a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetWalOptions {
    /// Also look for `.partial` files (`-P/--partial`).
    pub partial: bool,
    /// Send the file as stored, compressed or not (`--keep-compression`).
    pub keep_compression: bool,
    /// Compress the output with this codec (`-z/--gzip`, `-j/--bzip2`); `None` (or
    /// [`Codec::None`]) sends it uncompressed.
    pub compression: Option<Codec>,
    /// With [`get_wal_to_dir`](WalArchive::get_wal_to_dir): fsync the file before it
    /// is renamed into place (the caller syncs the directory once at the end).
    pub sync: bool,
}

/// What [`WalArchive::get_wal`] sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FoundWal {
    /// The file that was sent (in `wals/`, `incoming/` or `streaming/`).
    pub source: PathBuf,
    /// How that file is stored ([`Codec::None`] for plain or custom-compressed).
    pub stored_codec: Codec,
    /// Whether it is stored compressed by the custom filters (`compression = custom`).
    pub custom_compressed: bool,
    /// Bytes written to the output.
    pub bytes: u64,
}

impl WalArchive {
    /// The places `name` may be, in Barman's search order: `wals/<hash>/<name>`,
    /// `incoming/<name>`, `streaming/<name>`; with `partial` also
    /// `streaming/<name>.partial`, `streaming/<name>` again (pg_receivewal may complete
    /// it meanwhile), `wals/<hash>/<name>.partial` and `incoming/<name>.partial`; and the
    /// archive path again last (the archiver may move the file meanwhile).
    pub fn wal_locations(&self, name: &WalFileName, partial: bool) -> Vec<PathBuf> {
        let text = name.to_string();
        let archived = self.path_of(name);
        let incoming = self.incoming_dir.join(&text);
        let streaming = self.streaming_dir.join(&text);
        let mut paths = vec![archived.clone(), incoming.clone(), streaming.clone()];
        if partial {
            let with = |p: &Path| {
                let mut s = p.as_os_str().to_owned();
                s.push(".partial");
                PathBuf::from(s)
            };
            paths.push(with(&streaming));
            paths.push(streaming);
            paths.push(with(&archived));
            paths.push(with(&incoming));
        }
        paths.push(archived);
        paths
    }

    /// Barman's `get-wal SERVER NAME`: writes the WAL file `name` to `out`, from the
    /// first place of [`wal_locations`](WalArchive::wal_locations) that holds it,
    /// decompressed (whatever codec it is stored with, read from its magic bytes) unless
    /// `keep_compression`, then compressed with `options.compression` if asked. A file
    /// that vanishes between the listing and the open (moved by the archiver) is looked
    /// for further down the list.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidWalName`] for a name that is not a WAL file name (exit code
    /// 3 in Barman); [`Error::WalNotFound`]; I/O errors reading or writing; a
    /// [`Error::Wal`] when a stored file cannot be decoded.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use barman_core::archive::{GetWalOptions, WalArchive};
    /// use barman_core::config::{Config, MemorySource};
    ///
    /// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n", &MemorySource::default())?;
    /// let archive = WalArchive::for_server(config.global(), config.server("pg").unwrap());
    /// let mut out = std::io::stdout().lock();
    /// archive.get_wal("000000010000000000000003", &GetWalOptions::default(), &mut out)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_wal(
        &self,
        name: &str,
        options: &GetWalOptions,
        out: &mut dyn Write,
    ) -> Result<FoundWal> {
        let parsed = parse_name(name)?;
        for path in self.wal_locations(&parsed, options.partial) {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("opening", &path, e)),
            };
            return send(&self.repository, file, &path, options, out);
        }
        Err(Error::WalNotFound {
            name: name.to_owned(),
            server: self.server.clone(),
        })
    }

    /// `get-wal -o DIR`: like [`get_wal`](WalArchive::get_wal), into `dir/<name>`,
    /// written to a temporary file in `dir` and renamed into place, so a reader never
    /// sees a partial file. Returns the path written and what was sent.
    ///
    /// # Errors
    ///
    /// Those of `get_wal`, and [`Error::OutputFile`] when the file in `dir`
    /// cannot be created (exit code 3 in Barman).
    pub fn get_wal_to_dir(
        &self,
        name: &str,
        options: &GetWalOptions,
        dir: &Path,
    ) -> Result<(PathBuf, FoundWal)> {
        let parsed = parse_name(name)?;
        let dest = dir.join(name);
        for path in self.wal_locations(&parsed, options.partial) {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("opening", &path, e)),
            };
            let mut tmp = TempFile::new(dir, name).map_err(|e| Error::OutputFile {
                path: dest.clone(),
                source: e.source,
            })?;
            let tmp_path = tmp.path().to_owned();
            let found = {
                let f = tmp.file().map_err(|e| Error::io("writing", &tmp_path, e))?;
                let mut w = io::BufWriter::with_capacity(1 << 16, f);
                let found = send(&self.repository, file, &path, options, &mut w)?;
                w.flush().map_err(|e| Error::io("writing", &tmp_path, e))?;
                found
            };
            if options.sync {
                tmp.file()
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io("syncing", &tmp_path, e))?;
            }
            tmp.rename_to(&dest)?;
            return Ok((dest, found));
        }
        Err(Error::WalNotFound {
            name: name.to_owned(),
            server: self.server.clone(),
        })
    }

    /// `get-wal --peek N`: up to `count` consecutive WAL files that exist (archived, in
    /// `incoming/` or in `streaming/`; `.partial` files are not looked for), starting
    /// with `name` itself. The segment size is unknown, so after the last existing
    /// segment whose number is a power of two the search continues at the first segment
    /// of the next log, as Barman does. A name that is not a segment lists only itself,
    /// if it exists.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidWalName`].
    pub fn peek_wal(&self, name: &str, count: usize) -> Result<Vec<WalFileName>> {
        let parsed = parse_name(name)?;
        let exists = |n: &WalFileName| self.wal_locations(n, false).iter().any(|p| p.exists());
        let mut found = Vec::new();
        let WalFileName::Segment(seg) = parsed else {
            if count > 0 && exists(&parsed) {
                found.push(parsed);
            }
            return Ok(found);
        };
        // Barman's generator for an unknown segment size: every possible segment
        // number of a log (up to 0x7FFFF, 8 KiB segments), then the next log.
        const MAX_SEG: u32 = 0x7FFFF;
        let tli = seg.timeline();
        let (mut log, mut no) = (seg.log(), seg.seg());
        while found.len() < count {
            let Ok(candidate) = SegmentName::new(tli, log, no) else {
                break;
            };
            let candidate = WalFileName::Segment(candidate);
            if exists(&candidate) {
                found.push(candidate);
                no += 1;
                if no > MAX_SEG {
                    no = 0;
                    let Some(next) = log.checked_add(1) else {
                        break;
                    };
                    log = next;
                }
                continue;
            }
            // A missing segment ends the list, unless it may be past the end of a log.
            if !no.is_power_of_two() {
                break;
            }
            let Some(next) = log.checked_add(1) else {
                break;
            };
            log = next;
            no = 0;
        }
        Ok(found)
    }
}

/// How [`WalArchive::get_wals_tar`] sends its files (default: decompressed, no stream
/// compression).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarWalOptions {
    /// Send each file as stored, compressed or not (`--keep-compression`); else
    /// decompressed here, as `get-wal` does.
    pub keep_compression: bool,
    /// Compress the whole stream with this codec (`--tar=CODEC`); [`Codec::None`]: not
    /// at all.
    pub stream: Codec,
}

impl Default for TarWalOptions {
    fn default() -> TarWalOptions {
        TarWalOptions {
            keep_compression: false,
            stream: Codec::None,
        }
    }
}

impl WalArchive {
    /// barman-rs `get-wal --tar[=CODEC]`: the WAL segments `names` that the archive
    /// holds, in that order, as one tar stream on `out`, each member named by its WAL
    /// name: decompressed (whatever the stored codec, as `get-wal` does) or, with
    /// `keep_compression`, as stored (the receiver reads the codec from the magic
    /// bytes). With `options.stream` the whole stream is compressed. Names the archive
    /// does not hold are left out, so the receiver learns what exists from what
    /// arrives; `.partial` files are not looked for. The stream is flushed after every
    /// member, so each file can be used as soon as it is in. Returns the names sent.
    ///
    /// This is how `barman-wal-restore` prefetches several segments over one SSH
    /// channel instead of one channel (and one `barman` process) per file.
    ///
    /// A member is never shorter or longer than its header says: the size of a
    /// decompressed segment comes from its long page header, and a file whose content
    /// does not match it stops the stream inside that member (an error here, a
    /// truncated member for the receiver, which drops it).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidWalName`] for a name that is not a segment name, before
    /// anything is written; [`Error::Wal`] when `stream` is not in this build or a
    /// stored file cannot be decoded; I/O errors reading a file or writing to `out`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use barman_core::archive::{TarWalOptions, WalArchive};
    /// use barman_core::config::{Config, MemorySource};
    ///
    /// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n", &MemorySource::default())?;
    /// let archive = WalArchive::for_server(config.global(), config.server("pg").unwrap());
    /// let names = ["000000010000000000000003", "000000010000000000000004"];
    /// let sent = archive.get_wals_tar(&names, &TarWalOptions::default(), std::io::stdout().lock())?;
    /// eprintln!("{} of {} sent", sent.len(), names.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_wals_tar<S: AsRef<str>>(
        &self,
        names: &[S],
        options: &TarWalOptions,
        out: impl Write,
    ) -> Result<Vec<WalFileName>> {
        let parsed = names
            .iter()
            .map(|n| match parse_name(n.as_ref())? {
                segment @ WalFileName::Segment(_) => Ok(segment),
                _ => Err(Error::InvalidWalName {
                    name: n.as_ref().to_owned(),
                    source: barman_wal::Error::InvalidWalFileName {
                        input: n.as_ref().to_owned(),
                        reason: "get-wal --tar sends WAL segments only",
                    },
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let encoder = options
            .stream
            .encoder(out, CompressionLevel::Low)
            .map_err(|source| Error::Wal {
                path: "the get-wal --tar stream".into(),
                source,
            })?;
        let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 16, encoder));
        let mut sent = Vec::new();
        for name in parsed {
            let Some((path, file)) = self.open_wal(&name)? else {
                continue;
            };
            let meta = file
                .metadata()
                .map_err(|e| Error::io("reading the size of", &path, e))?;
            let custom = self.repository.custom_compression();
            let len = crate::repository::wal::magic_len(custom);
            let (prefix, file) = peeked(file, len).map_err(|e| Error::io("reading", &path, e))?;
            // An encrypted or custom-compressed file is always sent decrypted and
            // decompressed: its size is known only from the segment's own header then.
            let encrypted = crate::encryption::is_encrypted(&prefix);
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let mut append = |size: u64, data: &mut dyn Read| -> Result<()> {
                let mut header = tar::Header::new_gnu();
                header.set_size(size);
                header.set_mode(0o600);
                header.set_mtime(mtime);
                header.set_entry_type(tar::EntryType::Regular);
                let exact = ExactReader {
                    inner: data,
                    remaining: size,
                };
                tar.append_data(&mut header, name.to_string(), exact)
                    .map_err(|e| Error::io("sending", &path, e))?;
                tar.get_mut()
                    .flush()
                    .map_err(|e| Error::io("writing the output of", &path, e))
            };
            self.repository.gpg().with_plain(file, &path, |input| {
                let (prefix, mut input) =
                    peeked(input, len).map_err(|e| Error::io("reading", &path, e))?;
                let stored = identify(custom, &prefix, true);
                if !encrypted && (options.keep_compression || stored == Coding::Codec(Codec::None))
                {
                    return append(meta.len(), &mut input);
                }
                with_decoded(custom, input, &path, true, |_, decoder| {
                    // The decompressed size, from the segment's own long header.
                    let mut head = Vec::with_capacity(LONG_HEADER_LEN);
                    (&mut *decoder)
                        .take(LONG_HEADER_LEN as u64)
                        .read_to_end(&mut head)
                        .map_err(|e| Error::io("decompressing", &path, e))?;
                    let header = barman_wal::PageHeader::parse(&head);
                    let size = header
                        .and_then(|h| h.segment_size())
                        .ok_or_else(|| Error::Wal {
                            path: path.clone(),
                            source: barman_wal::Error::InvalidSegment {
                                segment: name.to_string(),
                                problem: barman_wal::SegmentProblem::NotLongHeader {
                                    info: header.map_or(0, |h| h.info()),
                                },
                            },
                        })?;
                    append(u64::from(size), &mut io::Cursor::new(head).chain(decoder))
                })
            })?;
            sent.push(name);
        }
        tar.into_inner()
            .and_then(|w| w.into_inner().map_err(io::IntoInnerError::into_error))
            .and_then(barman_wal::Encoder::finish)
            .and_then(|mut w| w.flush())
            .map_err(|e| Error::io("writing", "the tar stream", e))?;
        Ok(sent)
    }

    /// The first file of [`wal_locations`](WalArchive::wal_locations) (without
    /// `.partial` ones) that can be opened, or `None`.
    fn open_wal(&self, name: &WalFileName) -> Result<Option<(PathBuf, File)>, Error> {
        for path in self.wal_locations(name, false) {
            match File::open(&path) {
                Ok(f) => return Ok(Some((path, f))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("opening", &path, e)),
            }
        }
        Ok(None)
    }
}

/// The bytes of a WAL segment's long page header.
const LONG_HEADER_LEN: usize = 40;

/// Yields exactly `remaining` bytes of `inner` or fails before the last of them: a
/// source that ends early, or holds more, never makes a member that looks complete.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file ended {} bytes short", self.remaining),
            ));
        }
        self.remaining -= n as u64;
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the file is longer than its segment size",
                ));
            }
        }
        Ok(n)
    }
}

fn parse_name(name: &str) -> Result<WalFileName> {
    name.parse().map_err(|source| Error::InvalidWalName {
        name: name.to_owned(),
        source,
    })
}

/// `r` again whole, after its first bytes were read.
type Replayed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// The first `len` bytes of `r`, and `r` again whole.
fn peeked<R: Read>(mut r: R, len: usize) -> io::Result<(Vec<u8>, Replayed<R>)> {
    let mut prefix = Vec::with_capacity(len);
    (&mut r).take(len as u64).read_to_end(&mut prefix)?;
    Ok((prefix.clone(), io::Cursor::new(prefix).chain(r)))
}

/// Copies `file` to `out`, decrypted with `gpg` when it is encrypted, transcoded as
/// `options` ask (with the custom filters when it is custom-compressed).
fn send(
    repository: &crate::repository::Repository,
    file: File,
    path: &Path,
    options: &GetWalOptions,
    out: &mut dyn Write,
) -> Result<FoundWal, Error> {
    let custom = repository.custom_compression();
    repository.gpg().with_plain(file, path, |plain| {
        send_plain(plain, custom, path, options, out)
    })
}

fn send_plain(
    file: &mut (dyn Read + Send),
    custom: Option<&CustomCompression>,
    path: &Path,
    options: &GetWalOptions,
    out: &mut dyn Write,
) -> Result<FoundWal, Error> {
    let read_err = |e| Error::io("reading", path, e);
    let (prefix, file) =
        peeked(file, crate::repository::wal::magic_len(custom)).map_err(read_err)?;
    let stored = identify(custom, &prefix, true);
    let wanted = options.compression.unwrap_or(Codec::None);
    let mut counting = CountingWriter { inner: out, n: 0 };
    let wal_err = |source| Error::Wal {
        path: path.to_owned(),
        source,
    };
    if options.keep_compression || stored == Coding::Codec(wanted) {
        copy(BufReader::with_capacity(1 << 16, file), &mut counting, path)?;
    } else {
        with_decoded(custom, file, path, true, |_, decoder| {
            let decoder = BufReader::with_capacity(1 << 16, decoder);
            if wanted == Codec::None {
                copy(decoder, &mut counting, path)
            } else {
                let mut encoder = wanted
                    .encoder(&mut counting, CompressionLevel::Medium)
                    .map_err(wal_err)?;
                copy(decoder, &mut encoder, path)?;
                encoder
                    .finish()
                    .map(drop)
                    .map_err(|e| Error::io("writing the output of", path, e))
            }
        })?;
    }
    counting
        .flush()
        .map_err(|e| Error::io("writing the output of", path, e))?;
    Ok(FoundWal {
        source: path.to_owned(),
        stored_codec: match stored {
            Coding::Codec(c) => c,
            Coding::Custom => Codec::None,
        },
        custom_compressed: stored == Coding::Custom,
        bytes: counting.n,
    })
}

/// io::copy that tells a read error (about `path`) from a write error.
fn copy(mut r: impl Read, w: &mut impl Write, path: &Path) -> Result<(), Error> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| Error::io("writing the output of", path, e))?;
    }
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl WalArchive {
    /// The newest archived WAL segment of each timeline, found by listing the newest
    /// hash directory of each timeline under `wals/` (Barman's
    /// `get_latest_archived_wals_info`). Empty when `wals/` does not exist.
    ///
    /// # Errors
    ///
    /// I/O errors listing `wals/`.
    pub fn latest_archived_per_timeline(
        &self,
    ) -> Result<std::collections::BTreeMap<String, WalFileName>, Error> {
        let mut dirs = match list_names(&self.wals_dir) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(Error::io("listing", &self.wals_dir, e)),
        };
        dirs.retain(|d| d.len() == 16 && d.bytes().all(|b| b.is_ascii_hexdigit()));
        dirs.sort_unstable_by(|a, b| b.cmp(a));
        let mut latest = std::collections::BTreeMap::new();
        for dir in dirs {
            let tli = dir[..8].to_owned();
            if latest.contains_key(&tli) {
                continue;
            }
            let path = self.wals_dir.join(&dir);
            let names = match list_names(&path) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", &path, e)),
            };
            if let Some(newest) = names
                .iter()
                .filter_map(|n| n.parse::<WalFileName>().ok())
                .filter(|n| matches!(n, WalFileName::Segment(_)))
                .max_by_key(ToString::to_string)
            {
                latest.insert(tli, newest);
            }
        }
        Ok(latest)
    }

    /// Whether `name` is archived: its file is in `wals/` and xlog.db lists it (the
    /// store step writes the file, then the line).
    ///
    /// # Errors
    ///
    /// I/O errors reading xlog.db.
    pub fn is_archived(&self, name: &WalFileName) -> Result<bool, Error> {
        Ok(self.path_of(name).exists() && super::xlogdb_lists(&self.xlogdb, &name.to_string())?)
    }

    /// `switch-wal --archive`: waits until `wal` is archived or, when `wal` is `None`
    /// (no switch was performed), until any WAL file newer than the newest archived one
    /// of some timeline at the start is. Looks every `poll_interval` (sleeping in
    /// between, Barman uses 0.1 s) and, before each look, archives what waits in
    /// `incoming/` and `streaming/`, as Barman's `wait_for_wal` does; errors of that
    /// archiving (another `archive-wal` running, a bad file) do not stop the wait:
    /// `cron` reports them. `timeout` `None` waits forever (Barman's
    /// `--archive-timeout 0`).
    ///
    /// Returns the archived file, or `None` when the timeout expired first.
    ///
    /// # Errors
    ///
    /// I/O errors listing `wals/` or reading xlog.db.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use barman_core::archive::WalArchive;
    /// use barman_core::config::{Config, MemorySource};
    ///
    /// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n", &MemorySource::default())?;
    /// let archive = WalArchive::for_server(config.global(), config.server("pg").unwrap());
    /// let name = "000000010000000000000003".parse()?;
    /// let timeout = Some(Duration::from_secs(30));
    /// match archive.wait_for_wal(Some(&name), timeout, Duration::from_millis(100))? {
    ///     Some(n) => println!("{n} archived"),
    ///     None => println!("timed out"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_wal(
        &self,
        wal: Option<&WalFileName>,
        timeout: Option<std::time::Duration>,
        poll_interval: std::time::Duration,
    ) -> Result<Option<WalFileName>, Error> {
        let start = std::time::Instant::now();
        let initial = match wal {
            None => self.latest_archived_per_timeline()?,
            Some(_) => Default::default(),
        };
        loop {
            // Best effort: failures are cron's to report.
            let _ = self.archive_wal();
            match wal {
                Some(name) => {
                    if self.is_archived(name)? {
                        return Ok(Some(*name));
                    }
                }
                None => {
                    let now = self.latest_archived_per_timeline()?;
                    if let Some(newest) = now
                        .iter()
                        .filter(|(tli, n)| initial.get(*tli) != Some(*n))
                        .map(|(_, n)| n)
                        .max_by_key(|n| n.to_string())
                    {
                        return Ok(Some(*newest));
                    }
                }
            }
            let elapsed = start.elapsed();
            let pause = match timeout {
                Some(t) if elapsed >= t => return Ok(None),
                Some(t) => poll_interval.min(t - elapsed),
                None => poll_interval,
            };
            std::thread::sleep(pause.max(std::time::Duration::from_millis(1)));
        }
    }
}

fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}
