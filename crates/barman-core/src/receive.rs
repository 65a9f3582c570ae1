//! `receive-wal`: WAL streamed over the replication protocol into `streaming/`, as
//! Barman runs `pg_receivewal`, with our own client
//! ([`crate::postgres::replication`]).
//!
//! - WAL goes to `streaming/<segment>.partial`, created zero-filled at the full segment
//!   size (as pg_receivewal does, so a `.partial` is 0 bytes or a whole segment), written where
//!   the stream says, **fsynced before the flush position is reported**, and renamed to
//!   `<segment>` (durably) once complete, the next segment's `.partial` created then.
//!   What arrives is validated as archived WAL is (page headers, the record chain and
//!   CRC-32C, the system identifier), each page once whole: invalid WAL stops the
//!   stream with [`Error::Wal`] and is never reported flushed past its page. `archive-wal` then validates and archives the
//!   complete segments as any other WAL.
//! - A status update goes out as soon as the data received so far is durable and no
//!   more is waiting, and every `status_interval`: with `synchronous_standby_names`
//!   naming `streaming_archiver_name`, a COMMIT on the primary returns only once its WAL
//!   is on this host's disk.
//! - The start position is the newest `.partial` (streamed again from its segment's
//!   start), else the segment after the newest complete one, else the slot's
//!   `restart_lsn`, else the server's current position.
//! - A timeline switch (the server ends the old timeline after a promotion) is followed:
//!   the history file is fetched into `streaming/`, the old timeline's last segment stays
//!   a `.partial`, and streaming goes on on the new timeline.
//! - The cluster must be the one of `identity.json`. The run holds Barman's
//!   `.<server>-receive-wal.lock` (with its PID, for `receive-wal --stop`).

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use barman_wal::replication::{PgTime, StandbyStatus};
use barman_wal::{Lsn, SegmentName, TimelineId, WalFileName, WalSegSize};
use futures::FutureExt;

use crate::archive::WalArchive;
use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::{self, Lock};
use crate::postgres::replication::{ReplicationConnection, StreamEvent, WalStream};
use crate::postgres::{ConnInfo, PgError};
use crate::repo::BackupRepo;
use crate::{Error, Refusal, Result};

/// Where a running receive-wal says what happens (reconnections).
pub type Notify = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// How a run of [`receive_wal`] goes.
#[derive(Clone)]
#[non_exhaustive]
pub struct ReceiveOptions {
    /// A status update at least this often, data or not (pg_receivewal: 10 s).
    pub status_interval: Duration,
    /// Stop once this many segments are complete (`None`: until `shutdown`).
    pub max_segments: Option<usize>,
    /// Connect again after a retryable failure (a lost connection, a server restart).
    pub reconnect: bool,
    /// The first wait before connecting again, and the longest (doubling between).
    pub reconnect_delay: (Duration, Duration),
    /// Told of each reconnection, with its reason.
    pub notify: Option<Notify>,
    /// Write and fsync on the calling task's thread instead of the blocking pool.
    pub inline_io: bool,
}

impl std::fmt::Debug for ReceiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveOptions")
            .field("status_interval", &self.status_interval)
            .field("max_segments", &self.max_segments)
            .field("reconnect", &self.reconnect)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("inline_io", &self.inline_io)
            .finish_non_exhaustive()
    }
}

impl Default for ReceiveOptions {
    fn default() -> ReceiveOptions {
        ReceiveOptions {
            status_interval: Duration::from_secs(10),
            max_segments: None,
            reconnect: true,
            reconnect_delay: (Duration::from_secs(1), Duration::from_secs(60)),
            notify: None,
            inline_io: false,
        }
    }
}

impl ReceiveOptions {
    /// The same, stopping once `n` segments are complete.
    pub fn with_max_segments(mut self, n: usize) -> ReceiveOptions {
        self.max_segments = Some(n);
        self
    }

    /// The same, without connecting again after a failure (the error ends the run).
    pub fn without_reconnect(mut self) -> ReceiveOptions {
        self.reconnect = false;
        self
    }

    /// The same, waiting `first` then up to `max` (doubling) before connecting again.
    pub fn with_reconnect_delay(mut self, first: Duration, max: Duration) -> ReceiveOptions {
        self.reconnect_delay = (first, max.max(first));
        self
    }

    /// The same, telling `notify` of each reconnection.
    pub fn with_notify(mut self, notify: impl Fn(&str) + Send + Sync + 'static) -> ReceiveOptions {
        self.notify = Some(std::sync::Arc::new(notify));
        self
    }

    fn notify(&self, message: &str) {
        if let Some(n) = &self.notify {
            n(message);
        }
    }

    /// The same, writing and fsyncing WAL on the thread that runs [`receive_wal`]
    /// rather than on the blocking pool: for a runtime that does nothing else (the
    /// `barman receive-wal` process), one thread hand-off less before each flush
    /// report, so less commit latency in synchronous mode. It blocks that runtime
    /// while the disk works: leave it off on a runtime shared with other tasks.
    pub fn with_inline_io(mut self) -> ReceiveOptions {
        self.inline_io = true;
        self
    }

    /// The same, with a status update at least every `interval`.
    pub fn with_status_interval(mut self, interval: Duration) -> ReceiveOptions {
        self.status_interval = interval;
        self
    }
}

/// What a run of [`receive_wal`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiveReport {
    /// The segments completed (renamed from `.partial`), in order.
    pub completed: Vec<WalFileName>,
    /// The timeline history files fetched.
    pub history_files: Vec<WalFileName>,
    /// The position durably received when the run ended.
    pub flushed: Lsn,
    /// How many times it connected again after a failure.
    pub reconnects: u32,
}

/// The `.partial` being written.
struct Partial {
    segment: SegmentName,
    path: PathBuf,
    file: File,
    /// Validates the segment as archived WAL is validated, fed with what is written,
    /// from the segment's start; `None` once fed out of order (never, the stream being
    /// contiguous from a segment start).
    validator: Option<barman_wal::SegmentValidator>,
    /// How many bytes the validator has taken.
    fed: u64,
}

struct Receiver {
    streaming_dir: PathBuf,
    /// The cluster's system identifier (`IDENTIFY_SYSTEM`): every segment's must match.
    system_id: u64,
    size: WalSegSize,
    current: Option<Partial>,
    /// Received (written).
    written: Lsn,
    /// Received and fsynced.
    flushed: Lsn,
    report: ReceiveReport,
}

/// Whether every byte of `file` is zero (a `.partial` that never received WAL).
fn all_zeros(file: &File) -> io::Result<bool> {
    let mut buf = vec![0u8; 256 << 10];
    let mut at = 0u64;
    loop {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            return Ok(true);
        }
        if buf.get(..n).is_some_and(|b| b.iter().any(|&x| x != 0)) {
            return Ok(false);
        }
        at += n as u64;
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

impl Receiver {
    /// The file of `segment`, `.partial`, created at the full segment size (0600).
    fn open(&mut self, segment: SegmentName) -> Result<()> {
        let path = self
            .streaming_dir
            .join(format!("{}.partial", WalFileName::Segment(segment)));
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        let len = file.metadata().map_err(io_err("reading", &path))?.len();
        let sized = self.size_file(&file, &path, len);
        if sized.is_err() && !existed {
            // Never leave a short segment behind: recovery would refuse its size.
            let _ = fs::remove_file(&path);
        }
        sized?;
        if !existed {
            fsutil::sync_dir(&self.streaming_dir)?;
        }
        let validator = Some(
            barman_wal::SegmentCheck::new(segment, self.size)
                .system_id(self.system_id)
                .validator(),
        );
        self.current = Some(Partial {
            segment,
            path,
            file,
            validator,
            fed: 0,
        });
        Ok(())
    }

    /// Brings a `.partial` of `len` bytes to the segment size.
    fn size_file(&self, file: &File, path: &Path, len: u64) -> Result<()> {
        if len < self.size.bytes() {
            // Zero-filled, as pg_receivewal and PostgreSQL fill a new segment: its
            // blocks exist from now on, so the fdatasync before each flush report
            // writes the WAL alone, not the file system's block allocation too.
            let zeros = vec![0u8; 256 << 10];
            let mut at = len;
            while at < self.size.bytes() {
                let n = usize::try_from(self.size.bytes() - at)
                    .unwrap_or(usize::MAX)
                    .min(zeros.len());
                file.write_all_at(zeros.get(..n).unwrap_or(&zeros), at)
                    .map_err(io_err("sizing", path))?;
                at += n as u64;
            }
            file.sync_all().map_err(io_err("syncing", path))?;
        } else if len > self.size.bytes() {
            file.set_len(self.size.bytes())
                .map_err(io_err("sizing", path))?;
            file.sync_all().map_err(io_err("syncing", path))?;
        }
        Ok(())
    }

    /// Writes `data` received at `start` (across segment boundaries as needed),
    /// completing segments on the way. Returns the segments completed.
    fn write(&mut self, tli: TimelineId, start: Lsn, mut data: &[u8]) -> Result<()> {
        // The stream is contiguous from where it was asked to start: anything else
        // would leave a hole that the reported position passes over.
        if start != self.written {
            return Err(Error::io(
                "receiving",
                &self.streaming_dir,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the server sent WAL at {start}, expected {}", self.written),
                ),
            ));
        }
        let mut at = u64::from(start);
        while !data.is_empty() {
            let segment = SegmentName::containing(tli, Lsn::new(at), self.size);
            if self.current.as_ref().map(|p| p.segment) != Some(segment) {
                if let Some(p) = self.current.take() {
                    // A jump (a restart from another place): what was there stays partial.
                    p.file.sync_all().map_err(io_err("syncing", &p.path))?;
                }
                self.open(segment)?;
            }
            let offset = at % self.size.bytes();
            let room = usize::try_from(self.size.bytes() - offset).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            let p = self.current.as_mut().ok_or_else(|| {
                Error::io("writing", &self.streaming_dir, io::Error::other("no file"))
            })?;
            // Validated as it arrives (each page once whole): invalid WAL is never
            // written, so never reported as flushed.
            if let Some(v) = &mut p.validator {
                if p.fed == offset {
                    v.feed(now).map_err(|source| Error::Wal {
                        path: p.path.clone(),
                        source,
                    })?;
                    p.fed += now.len() as u64;
                } else {
                    p.validator = None;
                }
            }
            p.file
                .write_all_at(now, offset)
                .map_err(io_err("writing", &p.path))?;
            at = at.checked_add(now.len() as u64).ok_or_else(|| {
                Error::io(
                    "receiving",
                    &self.streaming_dir,
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WAL past the end of the LSN space",
                    ),
                )
            })?;
            self.written = Lsn::new(at);
            data = rest;
            if at % self.size.bytes() == 0 {
                self.complete()?;
            }
        }
        Ok(())
    }

    /// The current segment is whole: fsync, rename to its final name, create the
    /// next segment's `.partial`, fsync the directory.
    ///
    /// The next `.partial` exists from this moment on, before any of its WAL arrives
    /// (pg_receivewal creates it with its first byte): so `archive-wal`, which keeps
    /// the newest complete segment when `streaming/` holds no `.partial`, archives the
    /// segment just completed at once, and a backup waiting for it (its end segment,
    /// closed by the server's WAL switch) is not kept waiting for more WAL.
    fn complete(&mut self) -> Result<()> {
        let Some(p) = self.current.take() else {
            return Ok(());
        };
        p.file.sync_all().map_err(io_err("syncing", &p.path))?;
        let name = WalFileName::Segment(p.segment);
        let dest = self.streaming_dir.join(name.to_string());
        fs::rename(&p.path, &dest).map_err(io_err("renaming", &p.path))?;
        fsutil::sync_dir(&self.streaming_dir)?;
        self.flushed = self.written;
        self.report.completed.push(name);
        // Best effort: the segment is complete and durable whatever happens here, and
        // when the next `.partial` cannot be made now (a full disk), the next WAL
        // received tries again and reports the error.
        if let Some(next) = p.segment.next(self.size) {
            let _ = self.open(next);
        }
        Ok(())
    }

    /// Leaves the current `.partial` (the stream ends, on a timeline switch): kept with
    /// what it received; removed, durably, when it received nothing (created ahead when
    /// the previous segment completed), so no empty segment of a finished timeline
    /// stays in `streaming/`.
    fn leave(&mut self) -> Result<()> {
        let Some(p) = self.current.take() else {
            return Ok(());
        };
        let start = p.segment.start_lsn(self.size).unwrap_or(Lsn::INVALID);
        if self.written <= start && all_zeros(&p.file).map_err(io_err("reading", &p.path))? {
            drop(p.file);
            fs::remove_file(&p.path).map_err(io_err("removing", &p.path))?;
            fsutil::sync_dir(&self.streaming_dir)?;
        } else {
            p.file.sync_all().map_err(io_err("syncing", &p.path))?;
        }
        Ok(())
    }

    /// Makes what was written durable.
    fn sync(&mut self) -> Result<()> {
        if let Some(p) = &self.current {
            p.file.sync_data().map_err(io_err("syncing", &p.path))?;
        }
        self.flushed = self.written;
        Ok(())
    }
}

/// Where to start streaming: from `streaming/` (the newest `.partial`, else after the
/// newest complete segment), `None` when it holds no segment.
fn resume_point(dir: &Path, size: WalSegSize) -> Result<Option<(TimelineId, Lsn)>> {
    let mut newest: Option<(SegmentName, bool)> = None;
    for e in fsutil::list_dir(dir)? {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let (seg, partial) = match name.parse::<WalFileName>() {
            Ok(WalFileName::Segment(s)) => (s, false),
            Ok(WalFileName::Partial(s)) => (s, true),
            _ => continue,
        };
        if newest.is_none_or(|(n, _)| seg > n) {
            newest = Some((seg, partial));
        }
    }
    Ok(newest.map(|(seg, partial)| {
        let start = seg.start_lsn(size).unwrap_or(Lsn::INVALID);
        if partial {
            (seg.timeline(), start)
        } else {
            (
                seg.timeline(),
                start.checked_add(size.bytes()).unwrap_or(start),
            )
        }
    }))
}

fn refused(kind: Refusal, message: String) -> Error {
    Error::refused(kind, message)
}

/// `barman receive-wal SERVER`: streams WAL into `streaming/` until `shutdown`
/// resolves (or `options.max_segments` segments are complete), from the server of
/// `conninfo` (the server's `streaming_conninfo`, completed by the caller).
///
/// # Errors
///
/// [`Error::Refused`] when `streaming_archiver` is off, when another receive-wal runs
/// for the server, when the server is
/// another cluster than `identity.json` records, or when `slot_name` names a slot that
/// does not exist with `create_slot = manual`; connection and stream errors
/// ([`Error::is_retryable`] says which may succeed later); I/O errors writing
/// `streaming/`. What was received stays, fsynced: a new run resumes from it.
pub async fn receive_wal(
    global: &GlobalConfig,
    server: &ServerConfig,
    conninfo: &ConnInfo,
    options: &ReceiveOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<ReceiveReport> {
    server.usable()?;
    let name = server.name().to_owned();
    if !server.streaming_archiver() {
        return Err(refused(
            Refusal::InvalidRequest,
            format!(
                "server {name}: Unable to start receive-wal process: streaming_archiver option set to 'off' in barman configuration file"
            ),
        ));
    }
    let lock_path = crate::cron::receiver_lock_path(global, server);
    let _lock = crate::blocking("locking", lock_path.clone(), {
        let p = lock_path.clone();
        move || Lock::try_acquire(&p)
    })
    .await??
    .ok_or_else(|| {
        refused(
            Refusal::Busy,
            format!("Another receive-wal process is already running for server {name}"),
        )
    })?;
    let archive = WalArchive::for_server(global, server);
    let streaming_dir = archive.streaming_dir().to_owned();
    crate::blocking("creating", streaming_dir.clone(), {
        let d = streaming_dir.clone();
        move || fsutil::create_private_dir(&d)
    })
    .await??;
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    let mut report = ReceiveReport::default();
    let mut delay = options.reconnect_delay.0;
    loop {
        let streamed_before = report.flushed;
        let outcome = session(
            global,
            server,
            conninfo,
            options,
            &streaming_dir,
            shutdown.as_mut(),
            &mut report,
        )
        .await;
        let why = match outcome {
            Ok(Ended::Done) => return Ok(report),
            Ok(Ended::ServerClosed) => "the server closed the stream".to_owned(),
            Err(e) if e.is_retryable() => e.to_string(),
            Err(e) => return Err(e),
        };
        if !options.reconnect {
            return Ok(report);
        }
        if report.flushed > streamed_before {
            // It streamed: the next failure starts the backoff again.
            delay = options.reconnect_delay.0;
        }
        report.reconnects += 1;
        options.notify(&format!(
            "receive-wal of server {name}: {why}; connecting again in {} s",
            delay.as_secs_f64()
        ));
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(report),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(options.reconnect_delay.1);
    }
}

/// How a streaming session ended without an error.
enum Ended {
    /// Asked to stop, or `max_segments` reached.
    Done,
    /// The server ended the stream (a shutdown): worth connecting again.
    ServerClosed,
}

/// One connection's worth of streaming, adding what it received to `report`.
async fn session(
    global: &GlobalConfig,
    server: &ServerConfig,
    conninfo: &ConnInfo,
    options: &ReceiveOptions,
    streaming_dir: &Path,
    mut shutdown: std::pin::Pin<&mut futures::future::Fuse<impl Future<Output = ()>>>,
    report: &mut ReceiveReport,
) -> Result<Ended> {
    let name = server.name().to_owned();
    let o = server.options();
    let streaming_dir = streaming_dir.to_owned();
    // A stop asked while connecting (a host that does not answer) is not kept waiting.
    let mut conn = tokio::select! {
        biased;
        () = &mut shutdown => return Ok(Ended::Done),
        c = replication_connection(server, conninfo) => c?,
    };
    let system = conn.identify_system().await?;
    let repo = BackupRepo::for_server(global, server);
    if let Some(id) = repo.repository().identity().await? {
        let expected = id.system_id()?;
        if expected != system.system_id {
            return Err(refused(
                Refusal::Conflict,
                format!(
                    "server {name}: the streaming connection reaches system id {}, but {} records {expected}: this is another cluster",
                    system.system_id,
                    repo.identity_path().display()
                ),
            ));
        }
    }
    let size = conn.wal_segment_size().await?;
    let slot = o.slot_name.clone();
    let mut slot_restart = None;
    if let Some(slot) = &slot {
        slot_restart = ensure_slot(&mut conn, &name, slot, o.create_slot == "auto").await?;
    }
    let resume = crate::blocking("listing", streaming_dir.clone(), {
        let d = streaming_dir.clone();
        move || resume_point(&d, size)
    })
    .await??;
    let (mut tli, start) = match (resume, slot_restart) {
        (Some(r), _) => r,
        (None, Some(restart)) => (system.timeline, restart),
        (None, None) => (system.timeline, system.xlogpos),
    };
    let start = start.align_down(size.bytes());
    let mut rx = OnPool(
        Some(Receiver {
            streaming_dir,
            system_id: system.system_id,
            size,
            current: None,
            written: start,
            flushed: start,
            report: ReceiveReport::default(),
        }),
        options.inline_io,
    );
    let mut streaming = Some(
        conn.start_replication(slot.as_deref(), start, tli)
            .await
            .map_err(|e| slot_error(e, &name, slot.as_deref()))?,
    );
    let mut ticker = tokio::time::interval(options.status_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ended = Ended::Done;
    // The stream, until it ends or fails; what was received is accounted for either way.
    let outcome: Result<()> = async {
        loop {
            let stream = streaming.as_mut().ok_or_else(lost)?;
            // Each turn looks at the shutdown and the status timer first: a long
            // catch-up neither delays a stop nor the periodic report.
            let event = tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    report_position(stream, &mut rx).await?;
                    continue;
                }
                e = stream.next() => e,
            };
            match event? {
                StreamEvent::Data { start, data, .. } => {
                    let before = rx.get()?.report.completed.len();
                    // Nothing more received yet: make it durable in the same trip to
                    // the blocking pool, and say so at once (a synchronous commit
                    // waits for this).
                    let last = !stream.has_buffered_message();
                    rx.run(move |r| {
                        r.write(tli, start, &data)?;
                        if last {
                            r.sync()?;
                        }
                        Ok(())
                    })
                    .await?;
                    let done = rx.get()?.report.completed.len();
                    let total = report.completed.len() + done;
                    if done > before && options.max_segments.is_some_and(|m| total >= m) {
                        report_position(stream, &mut rx).await?;
                        break;
                    }
                    if last || !stream.has_buffered_message() {
                        report_position(stream, &mut rx).await?;
                    }
                }
                StreamEvent::Keepalive {
                    reply_requested, ..
                } => {
                    let r = rx.get()?;
                    if reply_requested || (r.written > r.flushed && !stream.has_buffered_message())
                    {
                        report_position(stream, &mut rx).await?;
                    }
                }
                StreamEvent::End { next } => {
                    rx.run(Receiver::sync).await?;
                    let Some((next_tli, next_start)) = next else {
                        // The server ended the stream (a shutdown): a new session resumes
                        // from what was received.
                        ended = Ended::ServerClosed;
                        break;
                    };
                    // The old timeline's last segment stays partial; the history comes.
                    rx.run(Receiver::leave).await?;
                    let old = streaming.take().ok_or_else(lost)?;
                    let mut c = old.stop().await?;
                    let (file, content) = c.timeline_history(next_tli).await?;
                    let history = WalFileName::History(next_tli);
                    let path = rx.get()?.streaming_dir.join(history.to_string());
                    if file != history.to_string() {
                        return Err(Error::io(
                            "fetching",
                            &path,
                            io::Error::other(format!("the server sent {file:?}")),
                        ));
                    }
                    crate::blocking("writing", path.clone(), move || {
                        fsutil::write_replace(&path, &content)
                    })
                    .await??;
                    tli = next_tli;
                    let start = next_start.align_down(size.bytes());
                    rx.run(move |r| {
                        r.report.history_files.push(history);
                        r.written = start;
                        r.flushed = start;
                        Ok(())
                    })
                    .await?;
                    streaming = Some(
                        c.start_replication(slot.as_deref(), start, tli)
                            .await
                            .map_err(|e| slot_error(e, &name, slot.as_deref()))?,
                    );
                }
            }
        }
        Ok(())
    }
    .await;
    if outcome.is_ok()
        && let Some(mut stream) = streaming.take()
    {
        rx.run(Receiver::sync).await?;
        // A polite end, bounded: a server that no longer answers does not hold the stop.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = report_position(&mut stream, &mut rx).await;
            if let Ok(c) = stream.stop().await {
                c.close().await;
            }
        })
        .await;
    }
    if let Some(r) = rx.0.take() {
        report.completed.extend(r.report.completed);
        report.history_files.extend(r.report.history_files);
        report.flushed = report.flushed.max(r.flushed);
    }
    outcome.map(|()| ended)
}

/// The receiver, whose file work runs on the blocking pool (or inline, with
/// [`ReceiveOptions::with_inline_io`]).
struct OnPool(Option<Receiver>, bool);

fn lost() -> Error {
    Error::io(
        "receiving",
        "streaming/",
        io::Error::other("the receiver's blocking task failed"),
    )
}

impl OnPool {
    fn get(&self) -> Result<&Receiver> {
        self.0.as_ref().ok_or_else(lost)
    }

    async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Receiver) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.1 {
            let r = self.0.as_mut().ok_or_else(lost)?;
            return f(r);
        }
        let mut r = self.0.take().ok_or_else(lost)?;
        let (r, out) = tokio::task::spawn_blocking(move || {
            let out = f(&mut r);
            (r, out)
        })
        .await
        .map_err(|_| lost())?;
        self.0 = Some(r);
        out
    }
}

/// Makes what was written durable, then tells the server: the flush position sent is
/// always what is on disk, and always all that was received (a server shutting down
/// waits until its standbys confirmed everything it sent).
async fn report_position(stream: &mut WalStream, rx: &mut OnPool) -> Result<()> {
    let (written, flushed) = {
        let r = rx.get()?;
        (r.written, r.flushed)
    };
    if written > flushed {
        rx.run(Receiver::sync).await?;
    }
    let r = rx.get()?;
    let status = StandbyStatus::new(r.written, r.flushed, Lsn::INVALID, PgTime::now());
    Ok(stream.send_status(status).await?)
}

/// Makes sure the slot exists (creating it with `create_slot = auto`); returns its
/// restart position where the server says it (PostgreSQL 15 and later).
async fn ensure_slot(
    conn: &mut ReplicationConnection,
    server: &str,
    slot: &str,
    auto: bool,
) -> Result<Option<Lsn>> {
    if conn.server_version_num() >= 150000 {
        if let Some(pos) = conn.read_replication_slot(slot).await? {
            return Ok(pos.restart_lsn);
        }
        if !auto {
            return Err(missing_slot(server, slot));
        }
    }
    if auto {
        match conn.create_physical_slot(slot, true).await {
            Ok(()) => {}
            Err(e) if e.sqlstate() == Some("42710") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

fn missing_slot(server: &str, slot: &str) -> Error {
    refused(
        Refusal::ServerState,
        format!(
            "server {server}: replication slot '{slot}' doesn't exist. Please execute 'barman receive-wal --create-slot {server}'"
        ),
    )
}

/// A START_REPLICATION error for a missing slot (SQLSTATE 42704) as Barman says it.
fn slot_error(e: PgError, server: &str, slot: Option<&str>) -> Error {
    match slot {
        Some(s) if e.sqlstate() == Some("42704") => missing_slot(server, s),
        _ => e.into(),
    }
}

/// What `receive-wal --create-slot` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotOutcome {
    /// Created (or dropped) now.
    Done,
    /// It was there already (`--if-not-exists`), or not there to drop.
    AlreadyThere,
}

fn slot_name_of(server: &ServerConfig) -> Result<String> {
    server.options().slot_name.clone().ok_or_else(|| {
        refused(
            Refusal::InvalidRequest,
            format!("server {}: the slot_name option is not set", server.name()),
        )
    })
}

async fn replication_connection(
    server: &ServerConfig,
    conninfo: &ConnInfo,
) -> Result<ReplicationConnection> {
    let app = server
        .options()
        .streaming_archiver_name
        .clone()
        .unwrap_or_else(|| "barman_receive_wal".to_owned());
    Ok(ReplicationConnection::connect(conninfo, &app).await?)
}

/// `receive-wal --create-slot`: creates the server's physical replication slot
/// (`slot_name`), reserving WAL from now on.
///
/// # Errors
///
/// [`Error::Refused`] without `slot_name`, or when the slot exists and
/// `if_not_exists` is false; connection errors.
pub async fn create_slot(
    server: &ServerConfig,
    conninfo: &ConnInfo,
    if_not_exists: bool,
) -> Result<SlotOutcome> {
    let slot = slot_name_of(server)?;
    let mut conn = replication_connection(server, conninfo).await?;
    let outcome = match conn.create_physical_slot(&slot, true).await {
        Ok(()) => SlotOutcome::Done,
        Err(e) if e.sqlstate() == Some("42710") && if_not_exists => SlotOutcome::AlreadyThere,
        Err(e) if e.sqlstate() == Some("42710") => {
            return Err(refused(
                Refusal::Conflict,
                format!("Replication slot '{slot}' already exists"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    conn.close().await;
    Ok(outcome)
}

/// `receive-wal --drop-slot`: drops the server's replication slot.
///
/// # Errors
///
/// [`Error::Refused`] without `slot_name`, or when the slot is in use (a receive-wal
/// streams from it); connection errors. A slot that does not exist is
/// [`SlotOutcome::AlreadyThere`].
pub async fn drop_slot(server: &ServerConfig, conninfo: &ConnInfo) -> Result<SlotOutcome> {
    let slot = slot_name_of(server)?;
    let mut conn = replication_connection(server, conninfo).await?;
    let outcome = match conn.drop_slot(&slot, false).await {
        Ok(()) => SlotOutcome::Done,
        Err(e) if e.sqlstate() == Some("42704") => SlotOutcome::AlreadyThere,
        Err(e) if e.sqlstate() == Some("55006") => {
            return Err(refused(
                Refusal::Busy,
                format!(
                    "Replication slot '{slot}' is in use: stop receive-wal first (barman receive-wal --stop {})",
                    server.name()
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    conn.close().await;
    Ok(outcome)
}

/// `receive-wal --stop`: asks the receive-wal running for `server` to stop (SIGTERM:
/// it makes what it received durable, reports it, and exits) and waits up to 10 s
/// for it. Returns its PID, `None` when none was running.
///
/// # Errors
///
/// [`Error::Refused`] when the process does not stop in time; I/O errors.
pub async fn stop(global: &GlobalConfig, server: &ServerConfig) -> Result<Option<u32>> {
    let (g, s) = (global.clone(), server.clone());
    let lock_dir = PathBuf::from(&global.barman_lock_directory);
    let Some(pid) = crate::blocking("reading", lock_dir.clone(), move || {
        crate::cron::receiver_pid(&g, &s)
    })
    .await??
    else {
        return Ok(None);
    };
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .map_err(|e| Error::io("running", "kill", e))?;
    if !status.success() {
        return Err(refused(
            Refusal::ServerState,
            format!("Termination of receive-wal failed: cannot signal process {pid}"),
        ));
    }
    for _ in 0..100 {
        let (g, s) = (global.clone(), server.clone());
        let running = crate::blocking("reading", lock_dir.clone(), move || {
            crate::cron::receiver_pid(&g, &s)
        })
        .await??;
        if running.is_none() {
            return Ok(Some(pid));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(refused(
        Refusal::Busy,
        format!("Termination of receive-wal failed: process {pid} still runs after 10 s"),
    ))
}

/// What `receive-wal --reset` did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetOutcome {
    /// `streaming/` already starts where the server (or the slot) is.
    Aligned,
    /// The old position marker was removed (if it was a `.partial`) and an empty
    /// `.partial` created at the restart position.
    Reset {
        /// The `.partial` removed.
        removed: Option<String>,
        /// The empty `.partial` created.
        created: String,
    },
}

/// `receive-wal --reset`: aligns `streaming/` with the server, as Barman does: the
/// newest segment or `.partial` there is replaced by an empty `.partial` of the
/// segment of the slot's `restart_lsn` (else of the server's current position), so the
/// next receive-wal starts there.
///
/// # Errors
///
/// [`Error::Refused`] while a receive-wal runs, or when `streaming/` is ahead of the
/// server; connection and I/O errors.
pub async fn reset(
    global: &GlobalConfig,
    server: &ServerConfig,
    conninfo: &ConnInfo,
) -> Result<ResetOutcome> {
    let (g, sc) = (global.clone(), server.clone());
    let lock_dir = PathBuf::from(&global.barman_lock_directory);
    if let Some(pid) = crate::blocking("reading", lock_dir, move || {
        crate::cron::receiver_pid(&g, &sc)
    })
    .await??
    {
        return Err(refused(
            Refusal::Busy,
            format!(
                "receive-wal is running for server {} (PID {pid}): stop it first (--stop)",
                server.name()
            ),
        ));
    }
    let mut conn = replication_connection(server, conninfo).await?;
    let system = conn.identify_system().await?;
    let size = conn.wal_segment_size().await?;
    let mut restart = system.xlogpos;
    if let Some(slot) = &server.options().slot_name
        && conn.server_version_num() >= 150000
        && let Some(pos) = conn.read_replication_slot(slot).await?
        && let Some(lsn) = pos.restart_lsn
    {
        restart = lsn;
    }
    conn.close().await;
    let current = WalFileName::Segment(SegmentName::containing(
        system.timeline,
        system.xlogpos,
        size,
    ));
    let restart = WalFileName::Segment(SegmentName::containing(system.timeline, restart, size));
    let dir = WalArchive::for_server(global, server)
        .streaming_dir()
        .to_owned();
    crate::blocking("resetting", dir.clone(), move || {
        fsutil::create_private_dir(&dir)?;
        let mut names: Vec<String> = fsutil::list_dir(&dir)?
            .into_iter()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                matches!(
                    n.parse::<WalFileName>(),
                    Ok(WalFileName::Segment(_) | WalFileName::Partial(_))
                )
            })
            .collect();
        names.sort();
        let restart_partial = format!("{restart}.partial");
        let Some(last) = names.pop() else {
            return Ok(ResetOutcome::Aligned);
        };
        if last == restart_partial || last == restart.to_string() {
            return Ok(ResetOutcome::Aligned);
        }
        if last.as_str() > current.to_string().as_str() {
            return Err(refused(
                Refusal::ServerState,
                format!("The receive-wal position is ahead of PostgreSQL current WAL lsn ({last} > {current})"),
            ));
        }
        let mut removed = None;
        if last.ends_with(".partial") {
            fsutil::remove_file(&dir.join(&last))?;
            removed = Some(last);
        }
        let created = dir.join(&restart_partial);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&created)
            .and_then(|f| f.sync_all())
            .map_err(io_err("creating", &created))?;
        fsutil::sync_dir(&dir)?;
        Ok(ResetOutcome::Reset {
            removed,
            created: restart_partial,
        })
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real 16 MiB segment of PostgreSQL 15 (the WAL fixtures of barman-wal).
    fn segment() -> (SegmentName, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../barman-wal/tests/data/pg15/000000010000000000000002.gz");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(File::open(path).unwrap()),
            &mut bytes,
        )
        .unwrap();
        ("000000010000000000000002".parse().unwrap(), bytes)
    }

    fn receiver(dir: &Path, seg: SegmentName, system_id: u64) -> Receiver {
        let size = WalSegSize::DEFAULT;
        let start = seg.start_lsn(size).unwrap();
        Receiver {
            streaming_dir: dir.to_owned(),
            system_id,
            size,
            current: None,
            written: start,
            flushed: start,
            report: ReceiveReport::default(),
        }
    }

    fn system_id(bytes: &[u8]) -> u64 {
        barman_wal::PageHeader::parse(bytes)
            .unwrap()
            .system_id()
            .unwrap()
    }

    #[test]
    fn streamed_wal_is_validated_as_it_is_written() {
        let (seg, bytes) = segment();
        let dir = tempfile::tempdir().unwrap();
        let mut r = receiver(dir.path(), seg, system_id(&bytes));
        let start = seg.start_lsn(WalSegSize::DEFAULT).unwrap();
        // Pieces of odd sizes, as XLogData messages come.
        let mut at = 0usize;
        for (i, chunk) in bytes.chunks(100_003).enumerate() {
            r.write(
                TimelineId::new(1),
                Lsn::new(u64::from(start) + at as u64),
                chunk,
            )
            .unwrap_or_else(|e| panic!("chunk {i}: {e}"));
            at += chunk.len();
        }
        assert_eq!(r.report.completed, [WalFileName::Segment(seg)]);
        assert_eq!(
            fs::read(dir.path().join(seg.to_string())).unwrap(),
            bytes,
            "the segment as streamed"
        );

        // One byte changed inside a record: refused once its page is whole, and what
        // the page held is never reported flushed.
        let mut bad = bytes.clone();
        // (this segment's WAL ends in its first page, at 0/2000B08, with a switch)
        let flip = 0x300;
        bad[flip] ^= 0x55;
        let other = tempfile::tempdir().unwrap();
        let mut r = receiver(other.path(), seg, system_id(&bytes));
        let err = r
            .write(TimelineId::new(1), start, &bad[..2 * 8192])
            .unwrap_err();
        assert!(matches!(err, Error::Wal { .. }), "{err:?}");
        assert_eq!(r.flushed, start);

        // Another cluster's segment: refused at its first page.
        let other = tempfile::tempdir().unwrap();
        let mut r = receiver(other.path(), seg, system_id(&bytes) ^ 1);
        let err = r
            .write(TimelineId::new(1), start, &bytes[..8192])
            .unwrap_err();
        assert!(matches!(err, Error::Wal { .. }), "{err:?}");
    }
}
