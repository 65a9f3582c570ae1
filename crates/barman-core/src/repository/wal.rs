//! Archived WAL files as objects: the store step (validate, compress, put without
//! replacing, compare), retrieval, removal, listing, and `identity.json`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use barman_catalog::{Identity, WalIndex, XlogDbEntry};
use barman_transport::{ObjectMeta, PutMode, PutPayload, StorageExt};
use barman_wal::{
    BackupLabel, Codec, CompressionLevel, PgMajorVersion, SegmentCheck, TimelineHistory,
    WalFileName, WalSegSize,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::Repository;
use crate::compression::{CustomCompression, with_decoded};
use crate::encryption::Gpg;
use crate::{Error, Result};

/// What the store step did with a WAL file.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Stored {
    /// Archived now: its size as stored (after compression).
    Archived {
        /// The bytes stored.
        size: u64,
    },
    /// Already archived with the same content (once decompressed): nothing changed.
    Identical,
    /// Already archived with different content: nothing changed.
    Different,
}

/// What validating a segment learnt of its cluster: system identifier and version.
pub(crate) type Discovered = Option<(u64, PgMajorVersion)>;

const CHUNK: usize = 1 << 16;

/// The chunks handed to the storage: few enough handoffs between threads per segment.
const PUT_CHUNK: usize = 1 << 18;

/// Reads `src` (whatever compression it has) as the WAL file `name`, validates it
/// (segments: page headers, records' CRC-32C, size, and the system identifier against
/// `identity`; history files and backup labels: their syntax), and writes it to `out`
/// compressed with `codec`. `out` is named `dest` in error messages. The one
/// validation of every way into the archive.
///
/// An encrypted `src` is decrypted with `gpg` first; one compressed by the custom
/// filters (known by their magic) is decompressed by them. Writing with the custom
/// filters is the caller's (`codec` is then [`Codec::None`]).
///
/// An error leaves `out` with part of the data: the caller discards it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_validated(
    src: &Path,
    input: impl Read + Send,
    (gpg, custom): (&Gpg, Option<&CustomCompression>),
    name: WalFileName,
    server: &str,
    identity: Option<&Identity>,
    (codec, level): (Codec, CompressionLevel),
    out: impl Write + Send,
    dest: &Path,
) -> Result<Discovered> {
    gpg.with_plain(input, src, |plain| {
        with_decoded(custom, plain, src, false, |_, decoded| {
            encode_plain(
                src,
                decoded,
                name,
                server,
                identity,
                (codec, level),
                out,
                dest,
            )
        })
    })
}

#[allow(clippy::too_many_arguments)]
fn encode_plain(
    src: &Path,
    input: impl Read,
    name: WalFileName,
    server: &str,
    identity: Option<&Identity>,
    (codec, level): (Codec, CompressionLevel),
    out: impl Write,
    dest: &Path,
) -> Result<Discovered> {
    let wal_err = |e| Error::Wal {
        path: src.to_owned(),
        source: e,
    };
    let write_err = |e| Error::io("writing", dest, e);
    let mut decoder = input;
    let mut encoder = codec
        .encoder(io::BufWriter::with_capacity(CHUNK, out), level)
        .map_err(wal_err)?;
    let mut discovered = None;
    match name {
        WalFileName::Segment(seg) | WalFileName::Partial(seg) => {
            let mut first = vec![0u8; 8192];
            let n =
                read_full(&mut decoder, &mut first).map_err(|e| Error::io("reading", src, e))?;
            first.truncate(n);
            let header = barman_wal::PageHeader::parse(&first);
            let size = header
                .and_then(|h| h.segment_size())
                .and_then(|s| WalSegSize::new(u64::from(s)).ok())
                .unwrap_or(WalSegSize::DEFAULT);
            let mut check =
                SegmentCheck::new(seg, size).partial(matches!(name, WalFileName::Partial(_)));
            if let Some(id) = identity {
                let expected = id.system_id()?;
                if let Some(found) = header
                    .and_then(|h| h.system_id())
                    .filter(|f| *f != expected)
                {
                    return Err(Error::ForeignCluster {
                        path: src.to_owned(),
                        server: server.to_owned(),
                        found,
                        expected,
                    });
                }
                check = check.system_id(expected);
            }
            let mut v = check.validator();
            v.feed(&first).map_err(wal_err)?;
            encoder.write_all(&first).map_err(write_err)?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match decoder.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io("reading", src, e)),
                };
                let chunk = buf.get(..n).unwrap_or_default();
                v.feed(chunk).map_err(wal_err)?;
                encoder.write_all(chunk).map_err(write_err)?;
            }
            let report = v.finish().map_err(wal_err)?;
            discovered = Some((report.system_id, report.version));
        }
        WalFileName::History(tli) => {
            let mut text = String::new();
            decoder
                .read_to_string(&mut text)
                .map_err(|e| Error::io("reading", src, e))?;
            TimelineHistory::parse(tli, &text).map_err(wal_err)?;
            encoder.write_all(text.as_bytes()).map_err(write_err)?;
        }
        WalFileName::BackupLabel { .. } => {
            let mut text = String::new();
            decoder
                .read_to_string(&mut text)
                .map_err(|e| Error::io("reading", src, e))?;
            BackupLabel::parse(&text).map_err(wal_err)?;
            encoder.write_all(text.as_bytes()).map_err(write_err)?;
        }
    }
    let mut out = encoder.finish().map_err(write_err)?;
    out.flush().map_err(write_err)?;
    Ok(discovered)
}

/// A `Write` that hands its bytes to an async consumer in chunks of 64 KiB, from a
/// blocking thread. Counts what it passed; notes when the consumer went away.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    written: u64,
    closed: Arc<AtomicBool>,
    /// Set once the whole file was validated and sent: until then, dropping the writer
    /// (an error, a panic) ends the stream with an error, so the put keeps nothing.
    finished: bool,
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.tx.blocking_send(Err(io::Error::other(
                "the WAL file was not validated to its end",
            )));
        }
    }
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(PUT_CHUNK),
        ));
        self.written += chunk.len() as u64;
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            self.closed.store(true, Ordering::SeqCst);
            io::Error::new(io::ErrorKind::BrokenPipe, "the storage stopped reading")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PUT_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Repository {
    /// The object of an archived WAL file: `<hash dir>/<name>` under `wals/` (history
    /// files at the top).
    fn wal_rel(name: &WalFileName) -> String {
        let hash = name.hash_dir();
        if hash.is_empty() {
            name.to_string()
        } else {
            format!("{hash}/{name}")
        }
    }

    /// Where `name` is stored, for messages.
    fn wal_label(&self, name: &WalFileName) -> PathBuf {
        PathBuf::from(format!("{:?}", self.wals)).join(Self::wal_rel(name))
    }

    /// The store step: archives the WAL file at `src` as `name`. Validates it (see the
    /// [module documentation](super)), compresses it with the repository's codec and
    /// puts it without replacing anything, streaming: a file that fails validation is
    /// never visible. `src` is only read.
    ///
    /// The first archived segment records its cluster in `identity.json` when there is
    /// none yet; a segment of another cluster is refused.
    ///
    /// # Errors
    ///
    /// [`Error::Wal`] (invalid content), [`Error::ForeignCluster`], I/O errors reading
    /// `src`, [`Error::Transport`] from the storage: nothing is archived then, and a
    /// retry is safe.
    pub async fn store_wal(&self, src: &Path, name: WalFileName) -> Result<Stored> {
        let rel = Self::wal_rel(&name);
        let identity = self.identity().await?;
        // Archived files never change: the same content again (PostgreSQL retrying
        // after a crash) is settled without validating or compressing anything. A
        // different content is validated first, so that an invalid file is reported as
        // such rather than as a duplicate.
        if self.wals.exists(&rel).await? {
            let compared = self.compare_stored(src, &name).await?;
            if compared == Stored::Different {
                self.validate(src, name, identity).await?;
            }
            return Ok(compared);
        }
        let storage = self.wals.open().await?;
        let location = self.wals.location(&rel)?;

        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        let closed = Arc::new(AtomicBool::new(false));
        let encode = {
            let (src, server, label) = (src.to_owned(), self.server.clone(), self.wal_label(&name));
            let (codec, level, closed) = (self.codec, self.level, closed.clone());
            let (identity, gpg) = (identity.clone(), self.gpg.clone());
            let custom = self.custom.clone();
            tokio::task::spawn_blocking(move || {
                let mut out = ChannelWriter {
                    tx,
                    buf: Vec::with_capacity(PUT_CHUNK),
                    written: 0,
                    closed,
                    finished: false,
                };
                let result = File::open(&src)
                    .map_err(|e| Error::io("opening", &src, e))
                    .and_then(|input| {
                        let encode = |w: &mut (dyn Write + Send)| {
                            let validated = |w: &mut (dyn Write + Send)| {
                                encode_validated(
                                    &src,
                                    input,
                                    (&gpg, custom.as_ref()),
                                    name,
                                    &server,
                                    identity.as_ref(),
                                    (codec, level),
                                    w,
                                    &label,
                                )
                            };
                            match &custom {
                                // Custom filters compress, in place of the codec.
                                Some(c) => c.compress(w, &label, validated),
                                None => validated(w),
                            }
                        };
                        if gpg.encrypts() {
                            gpg.encrypt_stream(&mut out, &label, encode)
                        } else {
                            encode(&mut out)
                        }
                    });
                match &result {
                    // The put must fail, not end with what was sent so far.
                    Err(e) => {
                        let _ = out
                            .tx
                            .blocking_send(Err(io::Error::other(format!("not archived: {e}"))));
                        out.finished = true;
                    }
                    Ok(_) => out.finished = true,
                }
                result.map(|d| (d, out.written))
            })
        };
        let payload = PutPayload::from_stream(tokio_stream_of(rx));
        let put = storage.put_opts(&location, payload, PutMode::Create).await;
        let encoded = encode
            .await
            .map_err(|e| Error::io("archiving", src, io::Error::other(e)))?;
        let (discovered, size) = match (put, encoded) {
            (Ok(_), Ok(done)) => done,
            (Err(barman_transport::Error::AlreadyExists { .. }), _) => {
                // Put meanwhile by another writer: compare.
                return self.compare_stored(src, &name).await;
            }
            // The storage stopped reading: its error is the cause.
            (Err(e), Err(_)) if closed.load(Ordering::SeqCst) => return Err(e.into()),
            (_, Err(e)) => return Err(e),
            (Err(e), Ok(_)) => return Err(e.into()),
        };
        if identity.is_none()
            && let Some((systemid, version)) = discovered
        {
            let id = Identity {
                systemid: systemid.to_string(),
                version: version.to_string(),
            };
            // The first writer wins; a second cluster is refused by the next segment.
            self.record_identity(&id).await?;
        }
        Ok(Stored::Archived { size })
    }

    /// Validates the file at `src` as `name`, storing nothing.
    async fn validate(
        &self,
        src: &Path,
        name: WalFileName,
        identity: Option<Identity>,
    ) -> Result<()> {
        let (src, server, gpg) = (src.to_owned(), self.server.clone(), self.gpg.clone());
        let custom = self.custom.clone();
        crate::blocking("validating", src.clone(), move || {
            let input = File::open(&src).map_err(|e| Error::io("opening", &src, e))?;
            encode_validated(
                &src,
                input,
                (&gpg, custom.as_ref()),
                name,
                &server,
                identity.as_ref(),
                (Codec::None, CompressionLevel::default()),
                io::sink(),
                Path::new("/dev/null"),
            )
            .map(drop)
        })
        .await?
    }

    /// Compares the archived `name` with the file at `src`, both decompressed.
    async fn compare_stored(&self, src: &Path, name: &WalFileName) -> Result<Stored> {
        let storage = self.wals.open().await?;
        let location = self.wals.location(&Self::wal_rel(name))?;
        let stored = storage.get(&location).await?;
        let reader = stored.into_reader();
        let src = src.to_owned();
        let label = self.wal_label(name);
        let handle = tokio::runtime::Handle::current();
        let (gpg, custom) = (self.gpg.clone(), self.custom.clone());
        crate::blocking("comparing", src.clone(), move || {
            let custom = custom.as_ref();
            let stored = tokio_util::io::SyncIoBridge::new_with_handle(reader, handle);
            let a = File::open(&src).map_err(|e| Error::io("opening", &src, e))?;
            let same = gpg.with_plain(stored, &label, |stored| {
                with_decoded(custom, stored, &label, true, |_, stored| {
                    gpg.with_plain(a, &src, |a| {
                        with_decoded(custom, a, &src, false, |_, a| {
                            same_stream((&src, a), (&label, stored))
                        })
                    })
                })
            })?;
            Ok(if same {
                Stored::Identical
            } else {
                Stored::Different
            })
        })
        .await?
    }

    /// Whether `name` is archived.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn has_wal(&self, name: &WalFileName) -> Result<bool> {
        self.wals.exists(&Self::wal_rel(name)).await
    }

    /// Writes the archived `name` to `out` (decompressed when `decompress`), from the
    /// blocking pool, streaming; returns `out` and the bytes written, `None` when
    /// `name` is not archived.
    ///
    /// # Errors
    ///
    /// Storage errors, a stored file that cannot be decompressed, errors writing.
    pub async fn copy_wal_to<W: Write + Send + 'static>(
        &self,
        name: &WalFileName,
        mut out: W,
        decompress: bool,
    ) -> Result<Option<(W, u64)>> {
        let Some(storage) = self.wals.open_existing().await? else {
            return Ok(None);
        };
        let location = self.wals.location(&Self::wal_rel(name))?;
        let got = match storage.get(&location).await {
            Ok(g) => g,
            Err(barman_transport::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let reader = got.into_reader();
        let label = self.wal_label(name);
        let handle = tokio::runtime::Handle::current();
        let (gpg, custom) = (self.gpg.clone(), self.custom.clone());
        crate::blocking("reading", label.clone(), move || {
            let r = tokio_util::io::SyncIoBridge::new_with_handle(reader, handle);
            let mut copy = |r: &mut (dyn Read + Send)| {
                io::copy(r, &mut out).map_err(|e| Error::io("reading", &label, e))
            };
            // Encrypted files are always decrypted: the key is not the reader's.
            let n = gpg.with_plain(r, &label, |r| {
                if decompress {
                    with_decoded(custom.as_ref(), r, &label, true, |_, r| copy(r))
                } else {
                    copy(r)
                }
            })?;
            Ok(Some((out, n)))
        })
        .await?
    }

    /// Removes the archived `name` (nothing to do when it is not there).
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn remove_wal(&self, name: &WalFileName) -> Result<()> {
        self.wals.remove(&Self::wal_rel(name)).await
    }

    /// Every archived WAL file with its metadata, sorted by name. Objects whose names
    /// are not WAL file names (temporary files, strays) are left out.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn list_wals(&self) -> Result<Vec<(WalFileName, ObjectMeta)>> {
        let Some(storage) = self.wals.open_existing().await? else {
            return Ok(Vec::new());
        };
        let prefix = self.wals.prefix.clone();
        let listing = storage.list(&prefix);
        let mut out: Vec<(WalFileName, ObjectMeta)> = listing
            .try_filter_map(|meta| {
                let rel = meta.location.strip_prefix(&prefix);
                // Only a WAL file name in its own place: `<hash dir>/<name>`.
                let name = meta
                    .location
                    .file_name()
                    .and_then(|n| n.parse::<WalFileName>().ok())
                    .filter(|n| rel == Some(Self::wal_rel(n).as_str()));
                futures::future::ready(Ok(name.map(|n| (n, meta))))
            })
            .try_collect()
            .await?;
        out.sort_by_key(|a| a.0);
        Ok(out)
    }

    /// The WAL index read from the storage itself (for a repository without xlog.db):
    /// each archived file with its stored size, time and compression (from its first
    /// bytes), in archiving order.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn wal_index(&self) -> Result<WalIndex> {
        let listed = self.list_wals().await?;
        let storage = match self.wals.open_existing().await? {
            Some(s) => s,
            None => return Ok(WalIndex::new()),
        };
        let wals = &self.wals;
        let custom = self.custom.as_ref();
        let entries: Vec<XlogDbEntry> = futures::stream::iter(listed)
            .map(|(name, meta)| {
                let storage = storage.clone();
                async move {
                    let magic = if meta.size == 0 {
                        Bytes::new()
                    } else {
                        let end = meta.size.min(magic_len(custom) as u64);
                        storage
                            .get_range(&wals.location(&Self::wal_rel(&name))?, 0..end)
                            .await?
                    };
                    let (compression, encryption) = stored_as(custom, &magic);
                    Ok::<_, Error>(XlogDbEntry {
                        name,
                        size: meta.size,
                        time: meta
                            .last_modified
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0.0, |d| d.as_secs_f64()),
                        compression,
                        encryption,
                    })
                }
            })
            .buffered(16)
            .try_collect()
            .await?;
        let mut index = WalIndex::new();
        for e in entries {
            index.push(e);
        }
        Ok(index)
    }

    /// Records `identity` in `identity.json` unless one is there already (create-only:
    /// of two concurrent writers one wins); returns the identity now recorded.
    ///
    /// # Errors
    ///
    /// Storage errors; a damaged file.
    pub async fn record_identity(&self, identity: &Identity) -> Result<Identity> {
        if self
            .home
            .write("identity.json", identity.to_json(), PutMode::Create)
            .await?
        {
            return Ok(identity.clone());
        }
        self.identity().await?.ok_or_else(|| {
            Error::io(
                "reading",
                self.meta_label("identity.json"),
                io::Error::other("identity.json vanished right after it was found"),
            )
        })
    }

    /// `identity.json`: the cluster this repository belongs to, once known.
    ///
    /// # Errors
    ///
    /// Storage errors; a damaged file.
    pub async fn identity(&self) -> Result<Option<Identity>> {
        match self.home.read("identity.json").await? {
            None => Ok(None),
            Some(b) => {
                let label = format!("{:?}", self.home);
                let text = String::from_utf8_lossy(&b);
                Ok(Some(Identity::parse(
                    &Path::new(&label)
                        .join("identity.json")
                        .display()
                        .to_string(),
                    &text,
                )?))
            }
        }
    }
}

/// How many first bytes [`stored_as`] reads.
pub(crate) fn magic_len(custom: Option<&CustomCompression>) -> usize {
    crate::compression::prefix_len(custom).max(crate::encryption::MAGIC_LEN)
}

/// The compression and encryption xlog.db records for a stored file starting with
/// `magic`, as Barman's `WalFileInfo.from_file`: an encrypted file's compression is
/// unknown (`None`) until it is decrypted.
pub(crate) fn stored_as(
    custom: Option<&CustomCompression>,
    magic: &[u8],
) -> (Option<String>, Option<String>) {
    if crate::encryption::is_encrypted(magic) {
        return (None, Some(crate::encryption::GPG.to_owned()));
    }
    let coding = crate::compression::identify(custom, magic, true);
    (coding.name().map(str::to_owned), None)
}

/// The receiving end of the encoder's channel as a stream of chunks.
fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether two readers (of the files named) give the same bytes.
pub(crate) fn same_stream(
    (a, mut ra): (&Path, impl Read),
    (b, mut rb): (&Path, impl Read),
) -> Result<bool> {
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let na = read_full(&mut ra, &mut ba).map_err(|e| Error::io("reading", a, e))?;
        let nb = read_full(&mut rb, &mut bb).map_err(|e| Error::io("reading", b, e))?;
        if na != nb || ba.get(..na) != bb.get(..nb) {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer dropped before the end (an error or a panic in the encoder) ends the
    /// stream with an error: the storage then keeps nothing of the object.
    #[test]
    fn an_unfinished_writer_ends_the_stream_with_an_error() {
        for finished in [false, true] {
            let (tx, mut rx) = tokio::sync::mpsc::channel(8);
            let closed = Arc::new(AtomicBool::new(false));
            let writer = std::thread::spawn(move || {
                let mut w = ChannelWriter {
                    tx,
                    buf: Vec::new(),
                    written: 0,
                    closed,
                    finished: false,
                };
                w.write_all(b"half a segment").unwrap();
                w.flush().unwrap();
                w.finished = finished;
            });
            writer.join().unwrap();
            let mut items = Vec::new();
            while let Some(item) = rx.blocking_recv() {
                items.push(item);
            }
            assert_eq!(
                items.first().unwrap().as_ref().unwrap().as_ref(),
                b"half a segment"
            );
            assert_eq!(items.last().unwrap().is_err(), !finished, "{items:?}");
        }
    }
}
