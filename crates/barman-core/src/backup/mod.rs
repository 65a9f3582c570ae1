//! `barman backup`: a hot base backup of a running PostgreSQL.
//!
//! Methods:
//! - `local-rsync`: PostgreSQL on this host. A non-exclusive `pg_backup_start` /
//!   `pg_backup_stop` on one session held open for the whole copy, and our own
//!   parallel copier (no rsync): CRC-32C of every file computed while it is copied,
//!   unchanged files hard-linked or copied from the previous backup with
//!   `reuse_backup`.
//! - `postgres`: `pg_basebackup` over the replication protocol, in plain format, or
//!   with `backup_compression` (gzip, lz4, zstd) in tar format: `base.tar.*` and one
//!   `<oid>.tar.*` per tablespace in the data directory, which `verify-backup` and
//!   `recover` read as streams.
//!
//! Every backup gets a `backup_manifest` in PostgreSQL's format (pg_verifybackup reads
//! it) and goes STARTED → WAITING_FOR_WALS → DONE once every WAL file from its first to
//! its last is archived; a failure at any step writes FAILED with the reason. A backup
//! process that dies is reported FAILED by [`BackupRepo::load`](crate::repo::BackupRepo::load)
//! once nothing holds the server's backup lock.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use barman_catalog::{
    BackupId, BackupInfo, BackupManifest, BackupStatus, CheckOutcome, ManifestChecksum,
    ManifestFile, PyDateTime, PyValue, Tablespace, WalRange, check_backup, check_backup_name,
};
use barman_transport::{
    CopiedFile, CopyProgress, CopyStats, LocalCopier, RateLimiter, Reuse, Rsync, RsyncPath,
    SshCommand,
};
use barman_wal::{BackupLabel, Lsn, SegmentName, TimelineId, WalSegSize};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::archive::WalArchive;
use crate::config::{GlobalConfig, ServerConfig};
use crate::encryption::Gpg;
use crate::error::first_line;
use crate::fsutil;
use crate::hooks::{Hook, Hooks};
use crate::postgres::{ConnInfo, PgServer};
use crate::repo::BackupRepo;
use crate::retry::Retry;
use crate::tarball;
use crate::{Error, Refusal, Result};

mod basebackup;
mod copy;
mod verify;

pub(crate) use crate::fsutil::find_program;
pub use copy::EXCLUDES;
use verify::*;
pub use verify::{GeneratedManifest, VerifyReport, generate_manifest, verify_backup};

/// `reuse_backup` / `--reuse-backup`: how files unchanged since the previous backup are
/// stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReuseBackup {
    /// Copy everything.
    #[default]
    Off,
    /// Copy unchanged files from the previous backup instead of from PostgreSQL.
    Copy,
    /// Hard-link unchanged files to the previous backup (no space used).
    Link,
}

impl FromStr for ReuseBackup {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(ReuseBackup::Off),
            "copy" => Ok(ReuseBackup::Copy),
            "link" => Ok(ReuseBackup::Link),
            other => Err(Error::refused(
                Refusal::InvalidRequest,
                format!("invalid reuse_backup {other:?}: expected off, copy or link"),
            )),
        }
    }
}

/// The options of one backup; `None` takes the server's configuration.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct BackupOptions {
    /// `--immediate-checkpoint` / `--no-immediate-checkpoint` (`immediate_checkpoint`).
    pub immediate_checkpoint: Option<bool>,
    /// `--reuse-backup` (`reuse_backup`).
    pub reuse: Option<ReuseBackup>,
    /// `-j/--jobs` (`parallel_jobs`).
    pub jobs: Option<usize>,
    /// `--bwlimit` in KiB/s (`bandwidth_limit`; 0 = none). Used by `postgres`.
    pub bwlimit: Option<u64>,
    /// `--wait`: wait until every WAL file the backup needs is archived.
    pub wait: bool,
    /// `--wait-timeout` (`None`: no limit).
    pub wait_timeout: Option<Duration>,
    /// `--name`.
    pub name: Option<String>,
    /// The conninfo with passwords and `PG*` variables already applied (the library
    /// reads no environment); `None` parses the server's `conninfo` as it is.
    pub conninfo: Option<ConnInfo>,
    /// The streaming conninfo for the `postgres` method, completed likewise.
    pub streaming_conninfo: Option<String>,
    /// Counters the copy updates (local-rsync), for a progress display; the expected
    /// total is set from the cluster's size when the copy starts.
    pub progress: Option<Arc<CopyProgress>>,
    /// `--retry-times` / `--no-retry` (`basebackup_retry_times`): how many times a
    /// failed copy is tried again (each tree for rsync and local-rsync, the whole
    /// pg_basebackup run for postgres).
    pub retry_times: Option<u32>,
    /// `--retry-sleep` (`basebackup_retry_sleep`): seconds before trying again.
    pub retry_sleep: Option<u64>,
    /// `--keepalive-interval` (`keepalive_interval`, default 60; 0: none): seconds
    /// between the queries that keep the backup's session alive during the copy
    /// (rsync and local-rsync, whose session waits idle while files are copied).
    pub keepalive_interval: Option<u64>,
    /// `--jobs-start-batch-size` (`parallel_jobs_start_batch_size`): rsync jobs started
    /// at once over ssh (method rsync).
    pub jobs_start_batch_size: Option<usize>,
    /// `--jobs-start-batch-period` (`parallel_jobs_start_batch_period`): seconds between
    /// two batches.
    pub jobs_start_batch_period: Option<u64>,
}

impl BackupOptions {
    /// Options that take everything from the configuration.
    pub fn new() -> BackupOptions {
        BackupOptions::default()
    }
}

/// What a finished backup did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup's metadata as written (status DONE or WAITING_FOR_WALS).
    pub info: BackupInfo,
    /// Where the backup is.
    pub path: PathBuf,
    /// What the copy did.
    pub copy: CopyStats,
    /// Seconds spent copying.
    pub copy_seconds: f64,
    /// Seconds from start to end.
    pub total_seconds: f64,
    /// Whether this is the server's first backup.
    pub first_backup: bool,
    /// WAL files older than the first backup, removed after it.
    pub removed_wals: Vec<barman_wal::WalFileName>,
    /// Data pages whose checksum did not match (named in `warnings`).
    pub bad_pages: usize,
    /// Things the admin should know (vanished files, bad pages, failed hooks...).
    pub warnings: Vec<String>,
}

fn local_offset(ts: Timestamp) -> i32 {
    TimeZone::system().to_offset(ts).seconds()
}

fn py_time(ts: Timestamp) -> PyDateTime {
    PyDateTime::from_timestamp(ts, local_offset(ts))
}

/// A new backup id from the clock, one that no backup of the server uses yet.
async fn new_backup_id(repo: &BackupRepo) -> BackupId {
    loop {
        let now = TimeZone::system().to_datetime(Timestamp::now());
        let id = BackupId::from_datetime(now);
        if !repo.info_path(id).exists() && !repo.backup_path(id).exists() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Takes the server's backup lock (a second backup is refused, as Barman does) and
/// makes the repository's directories.
fn lock_repository(
    repo: &BackupRepo,
    archive: &WalArchive,
    name: &str,
) -> Result<crate::repo::RepoLock> {
    let lock = repo.try_lock_backup()?.ok_or_else(|| {
        Error::refused(
            Refusal::Busy,
            format!("Another backup process is already running on server {name}"),
        )
    })?;
    for dir in [
        repo.base_dir(),
        repo.meta_dir(),
        archive.wals_dir(),
        archive.incoming_dir(),
        archive.streaming_dir(),
        archive.errors_dir(),
    ] {
        fsutil::create_private_dir(dir)?;
    }
    Ok(lock)
}

/// A new backup's `backup.info` before the copy: its id, and what PostgreSQL says of
/// the cluster (version, settings, size, tablespaces).
async fn describe_cluster(
    repo: &BackupRepo,
    pg: &PgServer,
    name: &str,
    options: &BackupOptions,
    seg_size: WalSegSize,
    systemid: u64,
) -> Result<BackupInfo> {
    let id = new_backup_id(repo).await;
    let mut info = BackupInfo::new(id);
    info.server_name = Some(name.to_owned());
    info.backup_name = options.name.clone();
    info.systemid = Some(systemid.to_string());
    info.version = Some(i64::from(pg.server_version_num()));
    info.xlog_segment_size = seg_size;
    info.pgdata = pg.setting("data_directory").await?;
    info.config_file = pg.setting("config_file").await?;
    info.hba_file = pg.setting("hba_file").await?;
    info.ident_file = pg.setting("ident_file").await?;
    info.data_checksums = pg.setting("data_checksums").await?;
    if pg.server_version_num() >= 170000 {
        info.summarize_wal = pg.setting("summarize_wal").await?;
    }
    info.cluster_size = i64::try_from(pg.current_size().await?).ok();
    let spcs = pg.tablespaces().await?;
    info.tablespaces = (!spcs.is_empty()).then(|| {
        spcs.iter()
            .map(|(n, oid, loc)| Tablespace {
                name: n.clone(),
                oid: *oid,
                location: loc.clone(),
            })
            .collect()
    });
    Ok(info)
}

/// The copy is over: the backup is WAITING_FOR_WALS until every WAL file it needs is
/// archived (what waits in `incoming/` is archived first), then DONE or FAILED; with
/// `--wait`, until then or the timeout.
async fn wait_for_wal(
    repo: &BackupRepo,
    archive: &WalArchive,
    mut info: BackupInfo,
    options: &BackupOptions,
    mut switcher: Option<&mut PrimarySwitcher>,
) -> Result<BackupInfo> {
    // Archive what is already there, then decide DONE.
    let deadline = options.wait_timeout.map(|t| Instant::now() + t);
    loop {
        archive.archive_wal_best_effort().await;
        let reader = archive.clone();
        let index =
            crate::blocking("reading", archive.xlogdb_path(), move || reader.wal_index()).await??;
        match check_backup(&info, &index) {
            outcome @ (CheckOutcome::Done | CheckOutcome::Failed { .. }) => {
                if let Some(s) = outcome.status() {
                    info.status = s;
                    info.error = outcome.error();
                    repo.write_info_async(&info).await?;
                }
                break;
            }
            _ if !options.wait => break,
            _ if deadline.is_some_and(|d| Instant::now() >= d) => break,
            _ => {
                if let Some(s) = switcher.as_deref_mut() {
                    s.tick().await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(info)
}

/// The WAL switches on the primary that complete a backup taken from a standby, as
/// Barman makes them: one when the copy is over, then, while `--wait` waits, one
/// every 10 seconds up to 10 times; after that, when `primary_checkpoint_timeout` is
/// set, a `CHECKPOINT` and a switch once it has passed (a primary without traffic
/// writes no WAL that a switch would close).
struct PrimarySwitcher {
    conninfo: ConnInfo,
    switches: u32,
    last: Instant,
    started: Instant,
    checkpoint_after: Option<Duration>,
    checkpointed: bool,
    warnings: Vec<String>,
}

impl PrimarySwitcher {
    fn new(conninfo: ConnInfo, server: &ServerConfig) -> PrimarySwitcher {
        let timeout = u64::try_from(server.options().primary_checkpoint_timeout).unwrap_or(0);
        PrimarySwitcher {
            conninfo,
            switches: 0,
            last: Instant::now(),
            started: Instant::now(),
            checkpoint_after: (timeout > 0).then(|| Duration::from_secs(timeout)),
            checkpointed: false,
            warnings: Vec::new(),
        }
    }

    /// One `pg_switch_wal()` on the primary (a `CHECKPOINT` first with `checkpoint`).
    async fn switch_with(&mut self, checkpoint: bool) -> std::result::Result<(), String> {
        self.switches += 1;
        self.last = Instant::now();
        let primary = PgServer::connect(&self.conninfo, "barman")
            .await
            .map_err(|e| format!("switching WAL on the primary (primary_conninfo): {e}"))?;
        if checkpoint {
            primary
                .checkpoint()
                .await
                .map_err(|e| format!("checkpoint on the primary (primary_conninfo): {e}"))?;
        }
        primary
            .switch_wal(false)
            .await
            .map(|_| ())
            .map_err(|e| format!("switching WAL on the primary (primary_conninfo): {e}"))
    }

    async fn switch(&mut self) -> std::result::Result<(), String> {
        self.switch_with(false).await
    }

    /// Called while the backup waits for its WAL.
    async fn tick(&mut self) {
        let result = if self.switches <= 10 && self.last.elapsed() >= Duration::from_secs(10) {
            self.switch().await
        } else if let Some(after) = self.checkpoint_after
            && !self.checkpointed
            && self.switches > 10
            && self.started.elapsed() >= after
        {
            self.checkpointed = true;
            self.switch_with(true).await
        } else {
            Ok(())
        };
        if let Err(e) = result
            && !self.warnings.contains(&e)
        {
            self.warnings.push(e);
        }
    }
}

/// Takes a backup of `server` with `options`.
///
/// # Errors
///
/// - [`Error::Refused`] before anything is written: the server is inactive or passive,
///   another backup of it is running, the method is not supported, `--name` is
///   invalid or taken, the cluster is not the one `identity.json` records.
/// - A connection or copy error: when it happens after the backup started, the backup
///   is written FAILED with `error = failure <phase> (<reason>)`.
pub async fn backup(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &BackupOptions,
) -> Result<BackupReport> {
    let name = server.name();
    server.usable()?;
    if !server.active() {
        return Err(Error::refused(
            Refusal::ServerState,
            format!("server {name}: inactive servers cannot be backed up"),
        ));
    }
    if server.is_passive() {
        return Err(Error::refused(
            Refusal::ServerState,
            format!(
                "server {name}: passive nodes cannot take backups (they copy them from the primary)"
            ),
        ));
    }
    let method = server.backup_method().to_owned();
    if !matches!(method.as_str(), "local-rsync" | "rsync" | "postgres") {
        return Err(Error::refused(
            Refusal::Unsupported,
            format!(
                "server {name}: backup_method {method} is not supported yet (use rsync, local-rsync or postgres)"
            ),
        ));
    }
    // Barman checks these once the copy is over; before it, nothing is wasted.
    Gpg::for_server(server)
        .validate(server)
        .map_err(|e| Error::refused(Refusal::InvalidRequest, format!("server {name}: {e}")))?;
    let ssh = if method == "rsync" {
        let command = server.options().ssh_command.as_deref().unwrap_or("");
        if command.trim().is_empty() {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!("server {name}: backup_method rsync needs ssh_command"),
            ));
        }
        Some(SshCommand::new(command)?)
    } else {
        None
    };
    let repo = BackupRepo::for_server(global, server);
    let archive = WalArchive::for_server(global, server);
    let _lock = lock_repository(&repo, &archive, name)?;
    let reader = repo.clone();
    let catalogue = crate::blocking("reading the catalogue in", repo.meta_dir(), move || {
        reader.load()
    })
    .await??;
    if let Some(n) = &options.name {
        check_backup_name(n)?;
        if catalogue
            .iter()
            .any(|b| b.backup_name.as_deref() == Some(n))
        {
            return Err(Error::refused(
                Refusal::Conflict,
                format!("server {name}: a backup named {n:?} already exists"),
            ));
        }
    }
    let conninfo = match &options.conninfo {
        Some(ci) => ci.clone(),
        None => ConnInfo::parse(server.options().conninfo.as_deref().unwrap_or(""))?,
    };
    let pg = PgServer::connect(&conninfo, "barman_backup").await?;
    // A backup from a standby: its last WAL segment completes only when the primary
    // switches, which barman does through primary_conninfo (Barman's
    // StandbyPostgreSQLConnection).
    let primary = if pg.is_in_recovery().await? {
        let Some(text) = server.options().primary_conninfo.as_deref() else {
            return Err(Error::refused(
                Refusal::ServerState,
                format!(
                    "server {name}: PostgreSQL is a standby: set primary_conninfo, so that barman can switch WAL on the primary and the backup can complete"
                ),
            ));
        };
        Some(ConnInfo::parse(text)?)
    } else {
        None
    };
    let systemid = pg.system_identifier().await?;
    check_identity(&repo, systemid, pg.server_version_num()).await?;
    let seg_size = WalSegSize::new(pg.wal_segment_size().await?).map_err(|e| Error::Wal {
        path: PathBuf::from("wal_segment_size"),
        source: e,
    })?;
    let previous = catalogue
        .iter()
        .rev()
        .find(|b| b.status.is_copy_done())
        .cloned();
    let first_backup = !catalogue.iter().any(|b| b.status.is_copy_done());

    let info = describe_cluster(&repo, &pg, name, options, seg_size, systemid).await?;
    let fast = options
        .immediate_checkpoint
        .unwrap_or(server.options().immediate_checkpoint);
    let jobs = options
        .jobs
        .or_else(|| usize::try_from(server.options().parallel_jobs).ok())
        .unwrap_or(1)
        .max(1);
    let reuse = match options.reuse {
        Some(r) => r,
        None => server
            .options()
            .reuse_backup
            .as_deref()
            .map(ReuseBackup::from_str)
            .transpose()?
            .unwrap_or_default(),
    };
    let previous_id = previous.as_ref().map(|b| b.id.to_string());
    let mut hooks = Hooks::new(global, server, Hook::Backup);
    hooks.with_backup(&repo, &info, previous_id.clone(), None);
    hooks.run_async("pre").await;
    hooks.run_retry_async("pre").await?;
    let started = Instant::now();
    let mut job = Job {
        repo: &repo,
        server,
        info,
        seg_size,
        phase: "starting backup",
        copy: CopyStats::default(),
        copy_seconds: 0.0,
        bad_pages: 0,
        warnings: Vec::new(),
    };
    let bwlimit = options.bwlimit.or_else(|| {
        server
            .options()
            .bandwidth_limit
            .and_then(|b| u64::try_from(b).ok())
    });
    let outcome = match method.as_str() {
        "postgres" => job.postgres(options, fast).await,
        _ => {
            if let (Some(p), Some(size)) = (&options.progress, job.info.cluster_size) {
                p.total_bytes.store(
                    u64::try_from(size).unwrap_or(0),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            let keepalive = options.keepalive_interval.unwrap_or_else(|| {
                u64::try_from(server.options().keepalive_interval).unwrap_or(60)
            });
            let copy = Copy {
                progress: options.progress.clone(),
                jobs,
                reuse,
                previous: previous.as_ref(),
                ssh: ssh.as_ref(),
                bwlimit: bwlimit.filter(|b| *b > 0),
                server,
                compress: ssh.is_some() && server.options().network_compression,
                retry: Retry::of(server, options.retry_times, options.retry_sleep),
                keepalive: (keepalive > 0).then(|| Duration::from_secs(keepalive)),
                start_batch: server.jobs_start_batch(
                    options.jobs_start_batch_size,
                    options.jobs_start_batch_period,
                ),
            };
            job.concurrent(&pg, fast, &copy).await
        }
    };
    if let Err(e) = outcome {
        let phase = job.phase;
        job.info.status = BackupStatus::Failed;
        job.info.error = Some(format!("failure {phase} ({})", first_line(&e)));
        // A failed copy is useless: its space goes back (a full disk is a common
        // cause). The metadata stays, FAILED with the reason.
        let copy = repo.backup_path(job.info.id);
        let _ = crate::blocking("removing", copy.clone(), move || fs::remove_dir_all(copy)).await;
        if job.info.begin_time.is_some() {
            // Best effort: the error of the backup matters more than this one.
            let _ = repo.write_info_async(&job.info).await;
        }
        hooks.with_backup(&repo, &job.info, previous_id, None);
        let _ = hooks.run_retry_async("post").await;
        hooks.run_async("post").await;
        return Err(e);
    }
    // The restore point lets recovery stop exactly at the end of this backup.
    let _ = pg
        .create_restore_point(&format!("barman_{}", job.info.id))
        .await;
    drop(pg);
    job.info.status = BackupStatus::WaitingForWals;
    repo.write_info_async(&job.info).await?;
    let mut switcher = primary.map(|ci| PrimarySwitcher::new(ci, server));
    if let Some(s) = switcher.as_mut()
        && let Err(e) = s.switch().await
    {
        job.warnings.push(e);
    }
    let info = wait_for_wal(
        &repo,
        &archive,
        job.info.clone(),
        options,
        switcher.as_mut(),
    )
    .await?;
    if let Some(s) = switcher {
        job.warnings.extend(s.warnings);
    }
    // The first backup makes every older WAL file useless (not in WORM mode, where
    // nothing is ever removed).
    let mut removed_wals = Vec::new();
    if first_backup
        && !server.options().worm_mode
        && let Some(begin) = info.begin_wal
    {
        let backups = crate::catalogue::ServerBackups::for_server(global, server);
        let removed = crate::blocking("removing old WAL files of", archive.wals_dir(), move || {
            backups.remove_wals_before(begin)
        })
        .await;
        match removed.and_then(|r| r) {
            Ok(names) => removed_wals = names,
            Err(e) => job.warnings.push(format!(
                "removing the WAL files older than the first backup failed: {e}"
            )),
        }
    }
    hooks.with_backup(&repo, &info, previous_id, None);
    let post = hooks.run_retry_async("post").await;
    hooks.run_async("post").await;
    let mut warnings = job.warnings;
    warnings.append(&mut hooks.warnings);
    if let Err(e) = post {
        warnings.push(e.to_string());
    }
    Ok(BackupReport {
        path: repo.backup_path(info.id),
        info,
        copy: job.copy,
        copy_seconds: job.copy_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        first_backup,
        bad_pages: job.bad_pages,
        removed_wals,
        warnings,
    })
}

/// Records the cluster in `identity.json`, or refuses a different one.
async fn check_identity(repo: &BackupRepo, systemid: u64, version: u32) -> Result<()> {
    let ours = barman_catalog::Identity {
        systemid: systemid.to_string(),
        version: (version / 10000).to_string(),
    };
    let recorded = repo.repository().record_identity(&ours).await?;
    let recorded_id = recorded.system_id()?;
    if recorded_id != systemid {
        return Err(Error::refused(
            Refusal::Conflict,
            format!(
                "server {}: PostgreSQL has system id {systemid}, but {} records {recorded_id}: this is another cluster",
                repo.server(),
                repo.identity_path().display()
            ),
        ));
    }
    Ok(())
}

struct Job<'a> {
    repo: &'a BackupRepo,
    server: &'a ServerConfig,
    info: BackupInfo,
    seg_size: WalSegSize,
    phase: &'static str,
    copy: CopyStats,
    copy_seconds: f64,
    bad_pages: usize,
    warnings: Vec<String>,
}

impl Job<'_> {
    pub(super) fn set_begin(&mut self, lsn: Lsn, tli: TimelineId, time: Timestamp) {
        let seg = SegmentName::containing(tli, lsn, self.seg_size);
        self.info.begin_xlog = Some(lsn);
        self.info.begin_wal = Some(seg);
        self.info.begin_offset = i64::try_from(self.seg_size.offset_of(lsn)).ok();
        self.info.begin_time = Some(py_time(time));
        self.info.timeline = Some(tli);
    }

    pub(super) fn set_end(&mut self, lsn: Lsn, tli: TimelineId, time: Timestamp) {
        self.info.end_xlog = Some(lsn);
        self.info.end_wal = Some(SegmentName::containing(tli, lsn, self.seg_size));
        self.info.end_offset = i64::try_from(self.seg_size.offset_of(lsn)).ok();
        self.info.end_time = Some(py_time(time));
    }
}

/// How the files of a concurrent (`rsync`/`local-rsync`) backup are copied.
struct Copy<'a> {
    progress: Option<Arc<CopyProgress>>,
    jobs: usize,
    reuse: ReuseBackup,
    previous: Option<&'a BackupInfo>,
    ssh: Option<&'a SshCommand>,
    bwlimit: Option<u64>,
    /// The server's configuration (`tablespace_bandwidth_limit`).
    server: &'a ServerConfig,
    /// `network_compression`: rsync's `-z` (over ssh).
    compress: bool,
    retry: Retry,
    /// `keepalive_interval`.
    keepalive: Option<Duration>,
    /// How rsync jobs start: at most so many, a batch every so often.
    start_batch: (usize, Duration),
}

async fn current_timeline(pg: &PgServer) -> Result<TimelineId> {
    Ok(TimelineId::new(pg.timeline().await?))
}
