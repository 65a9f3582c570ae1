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
use crate::error::first_line;
use crate::fsutil;
use crate::hooks::{Hook, Hooks};
use crate::postgres::{ConnInfo, PgServer};
use crate::repo::BackupRepo;
use crate::retry::Retry;
use crate::tarball;
use crate::{Error, Refusal, Result};

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

/// What PostgreSQL must not find in a restored data directory, or what is rebuilt at
/// start: the list of pg_basebackup (`basebackup.c`) and Barman (`EXCLUDE_LIST`,
/// `PGDATA_EXCLUDE_LIST`).
pub const EXCLUDES: &[&str] = &[
    "pg_wal/*",
    "pg_xlog/*",
    "pg_log/*",
    "log/*",
    "pg_stat_tmp/*",
    "pg_replslot/*",
    "pg_dynshmem/*",
    "pg_notify/*",
    "pg_serial/*",
    "pg_snapshots/*",
    "pg_subtrans/*",
    "pg_tblspc/*",
    "postmaster.pid",
    "postmaster.opts",
    "backup_label",
    "backup_label.old",
    "tablespace_map",
    "backup_manifest",
    "recovery.conf",
    "recovery.signal",
    "standby.signal",
    "current_logfiles",
    "pgsql_tmp",
    "base/pgsql_tmp",
];

/// A connection string for a program's command line, its secrets moved to private
/// files (0600, removed when dropped): the password to a password file (`passfile`),
/// the TLS key's passphrase to a connection service file (`service`, found through
/// `PGSERVICEFILE`).
struct Unsecret {
    /// The connection string, without secrets.
    conninfo: String,
    _passfile: Option<tempfile::NamedTempFile>,
    /// The service file to name in `PGSERVICEFILE`.
    service_file: Option<tempfile::NamedTempFile>,
}

/// `conninfo` without its secrets, for a command line (any user sees one in `ps`).
///
/// # Errors
///
/// A connection string that does not parse; a `sslpassword` that a service file cannot
/// hold (a line break, spaces at its ends) or with a `service` of the user's; the files
/// cannot be written.
fn without_secrets(conninfo: &str) -> Result<Unsecret> {
    use std::io::Write;
    let mut ci = ConnInfo::parse(conninfo)?;
    let private = |prefix: &str, text: &str| -> Result<tempfile::NamedTempFile> {
        let mut file = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile()
            .map_err(|e| Error::io("creating a private file in", std::env::temp_dir(), e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| Error::io("writing", file.path(), e))?;
        Ok(file)
    };
    let mut passfile = None;
    if let Some(password) = ci.get("password").map(str::to_owned) {
        let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
        let file = private("barman-pgpass.", &format!("*:*:*:*:{escaped}\n"))?;
        ci.remove("password");
        ci.set("passfile", file.path().to_string_lossy())?;
        passfile = Some(file);
    }
    let mut service_file = None;
    if let Some(secret) = ci.get("sslpassword").map(str::to_owned) {
        if ci.get("service").is_some() || secret.contains(['\n', '\r']) || secret.trim() != secret {
            return Err(Error::refused(
                Refusal::Unsupported,
                "sslpassword cannot be passed to pg_basebackup off its command line (with a service, or a line break or spaces at its ends): put it in a service file and name the service in the connection string",
            ));
        }
        let file = private(
            "barman-pgservice.",
            &format!("[barman_rs]\nsslpassword={secret}\n"),
        )?;
        ci.remove("sslpassword");
        ci.set("service", "barman_rs")?;
        service_file = Some(file);
    }
    Ok(Unsecret {
        conninfo: ci.encode(),
        _passfile: passfile,
        service_file,
    })
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
    let _lock = repo.try_lock_backup()?.ok_or_else(|| {
        Error::refused(
            Refusal::Busy,
            format!("Another backup process is already running on server {name}"),
        )
    })?;
    for dir in [repo.base_dir(), repo.meta_dir()] {
        fsutil::create_private_dir(dir)?;
    }
    let archive = WalArchive::for_server(global, server);
    for dir in [
        archive.wals_dir(),
        archive.incoming_dir(),
        archive.streaming_dir(),
        archive.errors_dir(),
    ] {
        fsutil::create_private_dir(dir)?;
    }
    let catalogue = repo.load()?;
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
    if pg.is_in_recovery().await? {
        return Err(Error::refused(
            Refusal::Unsupported,
            format!(
                "server {name}: PostgreSQL is a standby; backups from a standby are not supported yet"
            ),
        ));
    }
    let systemid = pg.system_identifier().await?;
    check_identity(&repo, systemid, pg.server_version_num())?;
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

    let id = new_backup_id(&repo).await;
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
        let _ = fs::remove_dir_all(repo.backup_path(job.info.id));
        if job.info.begin_time.is_some() {
            // Best effort: the error of the backup matters more than this one.
            let _ = repo.write_info(&job.info);
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
    repo.write_info(&job.info)?;
    let mut info = job.info.clone();
    // Archive what is already there, then decide DONE.
    let deadline = options.wait_timeout.map(|t| Instant::now() + t);
    loop {
        archive.archive_wal_best_effort().await;
        let reader = archive.clone();
        let index = crate::blocking(move || reader.wal_index()).await?;
        match check_backup(&info, &index) {
            outcome @ (CheckOutcome::Done | CheckOutcome::Failed { .. }) => {
                if let Some(s) = outcome.status() {
                    info.status = s;
                    info.error = outcome.error();
                    repo.write_info(&info)?;
                }
                break;
            }
            _ if !options.wait => break,
            _ if deadline.is_some_and(|d| Instant::now() >= d) => break,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    // The first backup makes every older WAL file useless (not in WORM mode, where
    // nothing is ever removed).
    let mut removed_wals = Vec::new();
    if first_backup
        && !server.options().worm_mode
        && let Some(begin) = info.begin_wal
    {
        let backups = crate::backups::ServerBackups::for_server(global, server);
        match crate::blocking(move || backups.remove_wals_before(begin)).await {
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
fn check_identity(repo: &BackupRepo, systemid: u64, version: u32) -> Result<()> {
    let path = repo.identity_path();
    match fs::read_to_string(&path) {
        Ok(text) => {
            let identity = barman_catalog::Identity::parse(&path.to_string_lossy(), &text)?;
            let recorded = identity.system_id()?;
            if recorded != systemid {
                return Err(Error::refused(
                    Refusal::Conflict,
                    format!(
                        "server {}: PostgreSQL has system id {systemid}, but {} records {recorded}: this is another cluster",
                        repo.server(),
                        path.display()
                    ),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let identity = barman_catalog::Identity {
                systemid: systemid.to_string(),
                version: (version / 10000).to_string(),
            };
            Ok(fsutil::write_replace(&path, identity.to_json().as_bytes())?)
        }
        Err(e) => Err(Error::io("reading", &path, e)),
    }
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
    fn set_begin(&mut self, lsn: Lsn, tli: TimelineId, time: Timestamp) {
        let seg = SegmentName::containing(tli, lsn, self.seg_size);
        self.info.begin_xlog = Some(lsn);
        self.info.begin_wal = Some(seg);
        self.info.begin_offset = i64::try_from(self.seg_size.offset_of(lsn)).ok();
        self.info.begin_time = Some(py_time(time));
        self.info.timeline = Some(tli);
    }

    fn set_end(&mut self, lsn: Lsn, tli: TimelineId, time: Timestamp) {
        self.info.end_xlog = Some(lsn);
        self.info.end_wal = Some(SegmentName::containing(tli, lsn, self.seg_size));
        self.info.end_offset = i64::try_from(self.seg_size.offset_of(lsn)).ok();
        self.info.end_time = Some(py_time(time));
    }

    async fn concurrent(&mut self, pg: &PgServer, fast: bool, how: &Copy<'_>) -> Result<()> {
        let id = self.info.id;
        let pgdata = self.info.pgdata.clone().unwrap_or_default();
        let readable = match how.ssh {
            Some(ssh) => ssh
                .output(&["test", "-f", &format!("{pgdata}/PG_VERSION")], None)
                .await?
                .success(),
            None => Path::new(&pgdata).join("PG_VERSION").is_file(),
        };
        if !readable {
            return Err(Error::refused(
                Refusal::ServerState,
                match how.ssh {
                    Some(ssh) => format!(
                        "server {}: the data directory {pgdata} is not readable through ssh_command ({})",
                        self.repo.server(),
                        ssh.destination()
                    ),
                    None => format!(
                        "server {}: the data directory {pgdata} is not readable on this host (local-rsync needs PostgreSQL on the Barman host)",
                        self.repo.server()
                    ),
                },
            ));
        }
        let label = format!("Barman backup {} {id}", self.repo.server());
        let start = pg.backup_start(&label, fast).await?;
        let tli = current_timeline(pg).await?;
        self.set_begin(start.lsn, tli, start.time);
        self.info.mode = Some("rsync-concurrent".to_owned());
        self.info.status = BackupStatus::Started;
        self.repo.write_info(&self.info)?;

        self.phase = "copying files";
        // The copy and the check of its pages, with a keepalive query on the backup's
        // session every `keepalive_interval` seconds, as Barman: a session idle for the
        // whole copy can be cut by a firewall, and its backup with it. A lost session
        // fails the backup once the copy is over (a copy stopped halfway would leave
        // files being written after the failed backup is cleaned up).
        let checksums = self.info.data_checksums.as_deref() == Some("on");
        let lsn = start.lsn;
        let work = async {
            let files = self.copy_files(how, &pgdata).await?;
            let bad = if checksums {
                self.phase = "verifying page checksums";
                let (repo, id, list) = (self.repo.clone(), self.info.id, files.clone());
                crate::blocking(move || verify_pages(&repo, id, &list, lsn)).await
            } else {
                Vec::new()
            };
            Ok::<_, Error>((files, bad))
        };
        let (mut files, bad) = match how.keepalive {
            Some(every) => {
                tokio::pin!(work);
                let mut lost = None;
                let done = loop {
                    tokio::select! {
                        done = &mut work => break done,
                        e = keepalive(pg, every), if lost.is_none() => lost = Some(e),
                    }
                };
                if let Some(e) = lost {
                    return Err(Error::refused(
                        Refusal::ConnectionLost,
                        format!(
                            "Connection to the Postgres server was lost during the backup ({})",
                            first_line(&e)
                        ),
                    ));
                }
                done?
            }
            None => work.await?,
        };
        self.bad_pages = bad.len();
        if !bad.is_empty() {
            let shown: Vec<&str> = bad.iter().take(20).map(String::as_str).collect();
            self.warnings.push(format!(
                "{} data pages with a bad checksum (PostgreSQL's copy is damaged; the backup keeps what it read): {}{}",
                bad.len(),
                shown.join(", "),
                if bad.len() > shown.len() { ", ..." } else { "" }
            ));
        }
        let data_dir = self.repo.data_dir(id);
        if self.copy.files_vanished > 0 {
            self.warnings.push(format!(
                "{} files vanished from the data directory during the copy (dropped or truncated by PostgreSQL; WAL replay recreates what is needed)",
                self.copy.files_vanished
            ));
        }

        self.phase = "stopping backup";
        let stop = pg.backup_stop().await?;
        let label = BackupLabel::parse(&stop.label).map_err(|e| Error::Wal {
            path: data_dir.join("backup_label"),
            source: e,
        })?;
        let tli = label.start_timeline().unwrap_or(tli);
        self.set_begin(label.start_lsn(), tli, start.time);
        self.set_end(stop.lsn, tli, stop.time);
        self.info.backup_label = Some(PyValue::Str(stop.label.clone()));
        let mut extra = vec![("backup_label", stop.label.clone())];
        if let Some(map) = &stop.tablespace_map {
            extra.push(("tablespace_map", map.clone()));
        }
        for (file, text) in extra {
            let dest = data_dir.join(file);
            fsutil::write_replace(&dest, text.as_bytes())?;
            files.push(record_for(&dest, Path::new(file), text.as_bytes())?);
        }
        self.phase = "writing the backup manifest";
        let manifest = manifest_of(&files, tli, label.start_lsn(), stop.lsn);
        fsutil::write_replace(
            &data_dir.join("backup_manifest"),
            manifest.to_text().as_bytes(),
        )?;
        let size: u64 = files.iter().map(|f| f.size).sum();
        let dedup: u64 = files.iter().filter(|f| !f.reused).map(|f| f.size).sum();
        self.info.size = i64::try_from(size).ok();
        self.info.deduplicated_size = i64::try_from(dedup).ok();
        self.info.copy_stats = PyValue::parse(&format!(
            "{{'copy_time': {:.6}, 'number_of_workers': {}, 'total_time': {:.6}}}",
            self.copy_seconds, how.jobs, self.copy_seconds
        ))
        .ok();
        Ok(())
    }

    /// The copy of the data directory, the tablespaces and the configuration files
    /// outside PGDATA, each tree tried again `how.retry` times; the files written.
    async fn copy_files(&mut self, how: &Copy<'_>, pgdata: &str) -> Result<Vec<CopiedFile>> {
        let id = self.info.id;
        let pgdata = pgdata.to_owned();
        let copy_started = Instant::now();
        fsutil::create_private_dir(&self.repo.backup_path(id))?;
        let data_dir = self.repo.data_dir(id);
        let reference = how.previous.filter(|_| how.reuse != ReuseBackup::Off);
        let mut trees = vec![(
            pgdata.clone(),
            data_dir.clone(),
            PathBuf::new(),
            reference.map(|p| self.repo.data_dir(p.id)),
            how.bwlimit,
        )];
        for spc in self.info.tablespaces.clone().unwrap_or_default() {
            // `tablespace_bandwidth_limit`: this tablespace's own limit, if it has one.
            let limit = how.server.tablespace_bwlimit(&spc.name, how.bwlimit);
            trees.push((
                spc.location.clone(),
                self.repo.tablespace_dir(id, spc.oid),
                Path::new("pg_tblspc").join(spc.oid.to_string()),
                reference.map(|p| self.repo.tablespace_dir(p.id, spc.oid)),
                limit,
            ));
        }
        let mut total = CopyStats::default();
        let mut files = Vec::new();
        // Shared, never copied, by every tree and every attempt.
        let known = Arc::new(
            reference
                .map(|p| known_checksums(&self.repo.data_dir(p.id)))
                .unwrap_or_default(),
        );
        let horizon = reference
            .and_then(|p| p.begin_time)
            .and_then(|t| t.to_timestamp(&TimeZone::system()).ok())
            .map(|t| {
                SystemTime::UNIX_EPOCH
                    + Duration::from_nanos(u64::try_from(t.as_nanosecond()).unwrap_or(0))
            });
        for (i, (src, dest, prefix, link, bwlimit)) in trees.into_iter().enumerate() {
            let mut attempt = 0;
            let (stats, copied) = loop {
                let result = match how.ssh {
                    None => {
                        let mut copier = LocalCopier::new()
                            .workers(how.jobs)
                            .allow_vanished(true)
                            .fsync(true)
                            .checksums(true);
                        if let Some(p) = &how.progress {
                            copier = copier.progress(p.clone());
                        }
                        if let Some(limit) = bwlimit.and_then(RateLimiter::from_kib_per_second) {
                            copier = copier.rate_limit(limit);
                        }
                        if i == 0 {
                            for e in EXCLUDES {
                                copier = copier.exclude(*e);
                            }
                        }
                        if let Some(link) = link.clone() {
                            copier = copier
                                .link_dest(link)
                                .reuse(if how.reuse == ReuseBackup::Link {
                                    Reuse::Link
                                } else {
                                    Reuse::Copy
                                })
                                .known_checksums(known.clone());
                            if let Some(h) = horizon {
                                copier = copier.safe_horizon(h);
                            }
                        }
                        copier
                            .copy_tree_files(Path::new(&src), &dest)
                            .await
                            .map_err(Error::from)
                    }
                    Some(ssh) => {
                        let mut rsync = Rsync::new().workers(how.jobs).compress(how.compress);
                        if i == 0 {
                            for e in EXCLUDES {
                                rsync = rsync.exclude(format!("/{e}"));
                            }
                        }
                        if let Some(kib) = bwlimit {
                            rsync = rsync.bwlimit_kib(kib);
                        }
                        if let Some(link) = &link
                            && how.reuse == ReuseBackup::Link
                        {
                            rsync = rsync.link_dest(link);
                        }
                        match rsync
                            .copy_tree(
                                &RsyncPath::Remote(ssh.clone(), src.clone()),
                                &RsyncPath::Local(dest.clone()),
                            )
                            .await
                        {
                            // Reading the whole tree back: off the runtime, so that the
                            // keepalive goes on meanwhile.
                            Ok(()) => {
                                let (d, l, k, x) =
                                    (dest.clone(), link.clone(), known.clone(), prefix.clone());
                                crate::blocking(move || checksum_tree(&d, l.as_deref(), &k, &x))
                                    .await
                            }
                            Err(e) => Err(e.into()),
                        }
                    }
                };
                // `basebackup_retry_times` (`--retry-times`): a failed copy of a tree is
                // tried again after `basebackup_retry_sleep` seconds, over what the failed
                // attempt left (files there are replaced, or skipped by rsync when equal).
                match result {
                    Ok(done) => break done,
                    Err(e) if attempt < how.retry.times => {
                        attempt += 1;
                        self.warnings.push(format!(
                        "Failure copying {src} (attempt {attempt}): {}; retried after {} seconds",
                        first_line(&e),
                        how.retry.sleep.as_secs()
                    ));
                        tokio::time::sleep(how.retry.sleep).await;
                    }
                    Err(e) => return Err(e),
                }
            };
            add_stats(&mut total, &stats);
            files.extend(copied.into_iter().map(|mut f| {
                f.rel = prefix.join(&f.rel);
                f
            }));
        }
        // A WAL directory that is a link (`initdb -X`) is stored as an empty directory,
        // as Barman's `rsync -L` stores it: the backup never points at the server's
        // live WAL, and nothing restored from it can write there.
        for wal in ["pg_wal", "pg_xlog"] {
            let path = data_dir.join(wal);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                fs::remove_file(&path).map_err(|e| Error::io("removing the link", &path, e))?;
                fsutil::create_private_dir(&path)?;
                fsutil::sync_dir(&data_dir)?;
            }
        }
        // Configuration files outside PGDATA (Debian's /etc/postgresql) are stored
        // at the root of the copy, where a restored cluster finds them.
        for file in [
            &self.info.config_file,
            &self.info.hba_file,
            &self.info.ident_file,
        ]
        .into_iter()
        .flatten()
        {
            let path = Path::new(file);
            if !path.starts_with(&pgdata)
                && let Some(base) = path.file_name()
            {
                let dest = data_dir.join(base);
                let bytes = match how.ssh {
                    Some(ssh) => ssh.run(&["cat", file.as_str()]).await?.to_vec(),
                    None => fs::read(path).map_err(|e| Error::io("reading", path, e))?,
                };
                fsutil::write_replace(&dest, &bytes)?;
                files.push(record_for(&dest, Path::new(base), &bytes)?);
            }
        }
        self.copy_seconds = copy_started.elapsed().as_secs_f64();
        self.copy = total;
        Ok(files)
    }

    async fn postgres(&mut self, options: &BackupOptions, fast: bool) -> Result<()> {
        let id = self.info.id;
        let data_dir = self.repo.data_dir(id);
        fsutil::create_private_dir(&self.repo.backup_path(id))?;
        let begin = Timestamp::now();
        self.info.mode = Some("postgres".to_owned());
        self.info.begin_time = Some(py_time(begin));
        self.info.status = BackupStatus::Started;
        self.repo.write_info(&self.info)?;
        self.phase = "copying files";
        let o = self.server.options();
        let program = find_program("pg_basebackup", o.path_prefix.as_deref())?;
        let streaming = match &options.streaming_conninfo {
            Some(s) => s.clone(),
            None => o
                .streaming_conninfo
                .as_ref()
                .or(o.conninfo.as_ref())
                .cloned()
                .unwrap_or_default(),
        };
        // backup_compression: pg_basebackup's --compress, into tar files (Barman's
        // default format) or, compressed by the server, unpacked here (plain).
        let compression = o.backup_compression.clone().filter(|c| c != "none");
        let location = o.backup_compression_location.as_deref().unwrap_or("client");
        let tar_format =
            compression.is_some() && o.backup_compression_format.as_deref() != Some("plain");
        if compression.is_some() && !tar_format && location != "server" {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "server {}: backup_compression_format = plain needs backup_compression_location = server",
                    self.repo.server()
                ),
            ));
        }
        // The name the server shows for this session (`streaming_backup_name`).
        let mut ci = ConnInfo::parse(&streaming)?;
        if ci.get("application_name").is_none() {
            ci.set(
                "application_name",
                o.streaming_backup_name
                    .as_deref()
                    .unwrap_or("barman_streaming_backup"),
            )?;
        }
        // A secret never goes on the command line (any user sees it in `ps`): it
        // reaches pg_basebackup through a private file, removed afterwards.
        let secrets = without_secrets(&ci.encode())?;
        let dbname = &secrets.conninfo;
        let mut args: Vec<String> = vec![
            format!("--dbname={dbname}"),
            "--no-password".to_owned(),
            format!("--pgdata={}", data_dir.display()),
            if tar_format {
                "--format=tar"
            } else {
                "--format=plain"
            }
            .to_owned(),
            "--wal-method=none".to_owned(),
            format!("--checkpoint={}", if fast { "fast" } else { "spread" }),
            format!("--label=Barman backup {} {id}", self.repo.server()),
        ];
        if let Some(method) = &compression {
            let level = o
                .backup_compression_level
                .map(|l| format!(":level={l}"))
                .unwrap_or_default();
            let workers = match (method.as_str(), o.backup_compression_workers) {
                ("zstd", Some(w)) if w > 0 => {
                    format!("{}workers={w}", if level.is_empty() { ":" } else { "," })
                }
                _ => String::new(),
            };
            args.push(format!("--compress={location}-{method}{level}{workers}"));
            self.info.compression = Some(method.clone());
        }
        for spc in self.info.tablespaces.clone().unwrap_or_default() {
            if tar_format {
                // Tablespaces arrive as <oid>.tar[...] next to base.tar.
                break;
            }
            let dest = self.repo.tablespace_dir(id, spc.oid);
            args.push(format!(
                "--tablespace-mapping={}={}",
                spc.location.replace('=', "\\="),
                dest.display().to_string().replace('=', "\\=")
            ));
        }
        let bwlimit = options
            .bwlimit
            .or_else(|| o.bandwidth_limit.and_then(|b| u64::try_from(b).ok()));
        if let Some(kbps) = bwlimit.filter(|b| *b > 0) {
            args.push(format!("--max-rate={}", kbps.clamp(32, 1_048_576)));
        }
        let copy_started = Instant::now();
        // `basebackup_retry_times` (`--retry-times`): a failed pg_basebackup runs again
        // after `basebackup_retry_sleep` seconds, into emptied directories (as Barman).
        let retry = Retry::of(self.server, options.retry_times, options.retry_sleep);
        let mut attempt = 0;
        loop {
            let mut cmd = tokio::process::Command::new(&program);
            cmd.args(&args).stdin(std::process::Stdio::null());
            if let Some(f) = &secrets.service_file {
                cmd.env("PGSERVICEFILE", f.path());
            }
            let out = cmd.output().await.map_err(|e| Error::Program {
                program: program.display().to_string(),
                status: "not started".into(),
                detail: e.to_string(),
            })?;
            if out.status.success() {
                break;
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            let failure = Error::Program {
                program: "pg_basebackup".into(),
                status: out.status.to_string(),
                detail: stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_owned(),
            };
            if attempt >= retry.times {
                return Err(failure);
            }
            attempt += 1;
            self.warnings.push(format!(
                "Failure executing a backup using pg_basebackup (attempt {attempt}): {}; the files copied so far were removed and the backup restarted after {} seconds",
                first_line(&failure),
                retry.sleep.as_secs()
            ));
            for dir in std::iter::once(data_dir.clone()).chain(
                self.info
                    .tablespaces
                    .iter()
                    .flatten()
                    .map(|t| self.repo.tablespace_dir(id, t.oid)),
            ) {
                match fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("removing", &dir, e)),
                }
            }
            tokio::time::sleep(retry.sleep).await;
        }
        self.copy_seconds = copy_started.elapsed().as_secs_f64();
        let end_time = Timestamp::now();
        self.phase = "reading the backup label";
        let (label_path, label_text) = if tar_format {
            let base = tarball::backup_tars(&data_dir)?
                .into_iter()
                .find(|t| t.oid.is_none())
                .ok_or_else(|| {
                    Error::refused(
                        Refusal::Damaged,
                        format!("pg_basebackup wrote no base.tar in {}", data_dir.display()),
                    )
                })?;
            let bytes = tarball::read_member(&base.path, "backup_label")?.ok_or_else(|| {
                Error::refused(
                    Refusal::Damaged,
                    format!("{}: no backup_label inside", base.path.display()),
                )
            })?;
            (base.path, String::from_utf8_lossy(&bytes).into_owned())
        } else {
            let path = data_dir.join("backup_label");
            let text = fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
            (path, text)
        };
        let label = BackupLabel::parse(&label_text).map_err(|e| Error::Wal {
            path: label_path.clone(),
            source: e,
        })?;
        let manifest_path = data_dir.join("backup_manifest");
        let manifest_text = fs::read_to_string(&manifest_path)
            .map_err(|e| Error::io("reading", &manifest_path, e))?;
        let manifest = BackupManifest::parse(&manifest_path.to_string_lossy(), &manifest_text)?;
        let range = manifest.wal_ranges.last().ok_or_else(|| {
            Error::refused(
                Refusal::Damaged,
                format!("{}: no WAL range", manifest_path.display()),
            )
        })?;
        let tli = label.start_timeline().unwrap_or(range.timeline);
        self.set_begin(label.start_lsn(), tli, begin);
        self.set_end(range.end, range.timeline, end_time);
        self.info.backup_label = Some(PyValue::Str(label_text));
        let mut size: u64 = manifest.files.iter().map(|f| f.size).sum();
        if tar_format {
            // What the backup takes on disk: the compressed tars and the manifest.
            size = 0;
            for e in fs::read_dir(&data_dir).map_err(|e| Error::io("listing", &data_dir, e))? {
                let e = e.map_err(|e| Error::io("listing", &data_dir, e))?;
                size += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        self.copy.files_copied = manifest.files.len() as u64;
        self.copy.bytes_copied = size;
        self.info.size = i64::try_from(size).ok();
        self.info.deduplicated_size = self.info.size;
        Ok(())
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
}

/// Runs `SELECT 1` on the backup's session every `every` until it fails; returns that
/// error (the connection is lost).
async fn keepalive(pg: &PgServer, every: Duration) -> Error {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = pg.ping().await {
            return e;
        }
    }
}

/// Page checksum verification of the relation files this backup copied (reused files
/// were verified by the backup they come from): one line per bad page, named with file
/// and block.
fn verify_pages(repo: &BackupRepo, id: BackupId, files: &[CopiedFile], start: Lsn) -> Vec<String> {
    let mut bad = Vec::new();
    for f in files.iter().filter(|f| !f.reused) {
        let rel = f.rel.to_string_lossy();
        let path = if let Some(rest) = rel.strip_prefix("pg_tblspc/") {
            let Some((oid, inner)) = rest.split_once('/') else {
                continue;
            };
            let Ok(oid) = oid.parse::<u32>() else {
                continue;
            };
            repo.tablespace_dir(id, oid).join(inner)
        } else if rel.starts_with("base/") || rel.starts_with("global/") {
            repo.data_dir(id).join(&f.rel)
        } else {
            continue;
        };
        let Some(segment) = f
            .rel
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(crate::datapage::relation_segment)
        else {
            continue;
        };
        if let Ok(pages) = crate::datapage::verify_file(&path, segment, start) {
            bad.extend(pages.into_iter().map(|p| {
                format!(
                    "{rel} block {} (stored {:#06x}, computed {:#06x})",
                    p.block, p.stored, p.computed
                )
            }));
        }
    }
    bad
}

/// The manifest records of a tree rsync wrote: sizes, times and CRC-32C read back from
/// the copy (a file hard-linked to `link` reuses the checksum `known` has for it).
fn checksum_tree(
    root: &Path,
    link: Option<&Path>,
    known: &HashMap<PathBuf, u32>,
    prefix: &Path,
) -> Result<(CopyStats, Vec<CopiedFile>)> {
    use std::os::unix::fs::MetadataExt;
    let mut stats = CopyStats::default();
    let mut files = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        fsutil::sync_dir(&dir)?;
        for e in fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))? {
            let e = e.map_err(|e| Error::io("listing", &dir, e))?;
            let child = rel.join(e.file_name());
            let path = e.path();
            let m = fs::symlink_metadata(&path).map_err(|e| Error::io("reading", &path, e))?;
            if m.is_dir() {
                stack.push(child);
                continue;
            }
            if !m.is_file() {
                continue;
            }
            let reused = link
                .and_then(|l| fs::metadata(l.join(&child)).ok())
                .is_some_and(|lm| lm.ino() == m.ino() && lm.dev() == m.dev());
            let crc = match known.get(&prefix.join(&child)) {
                Some(c) if reused => *c,
                _ => {
                    let mut f =
                        fs::File::open(&path).map_err(|e| Error::io("reading", &path, e))?;
                    let mut crc = 0u32;
                    loop {
                        let n = f
                            .read(&mut buf)
                            .map_err(|e| Error::io("reading", &path, e))?;
                        if n == 0 {
                            break;
                        }
                        crc = crc32c::crc32c_append(crc, &buf[..n]);
                    }
                    // rsync does not fsync what it writes: the backup is durable once
                    // every file and directory is.
                    f.sync_all().map_err(|e| Error::io("syncing", &path, e))?;
                    crc
                }
            };
            let mut record = CopiedFile::new(child, m.len());
            record.mtime = m.modified().map_err(|e| Error::io("reading", &path, e))?;
            record.crc32c = crc;
            record.reused = reused;
            if reused {
                stats.files_linked += 1;
                stats.bytes_reused += m.len();
            } else {
                stats.files_copied += 1;
                stats.bytes_copied += m.len();
            }
            files.push(record);
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok((stats, files))
}

fn add_stats(total: &mut CopyStats, s: &CopyStats) {
    total.files_copied += s.files_copied;
    total.files_linked += s.files_linked;
    total.bytes_copied += s.bytes_copied;
    total.bytes_reused += s.bytes_reused;
    total.files_vanished += s.files_vanished;
}

async fn current_timeline(pg: &PgServer) -> Result<TimelineId> {
    Ok(TimelineId::new(pg.timeline().await?))
}

/// The manifest entry of a file written from memory.
fn record_for(path: &Path, rel: &Path, bytes: &[u8]) -> Result<CopiedFile> {
    let m = fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    let mut f = CopiedFile::new(rel.to_owned(), bytes.len() as u64);
    f.mtime = m.modified().map_err(|e| Error::io("reading", path, e))?;
    f.crc32c = crc32c::crc32c(bytes);
    Ok(f)
}

fn manifest_of(files: &[CopiedFile], tli: TimelineId, start: Lsn, end: Lsn) -> BackupManifest {
    BackupManifest {
        system_identifier: None,
        files: files
            .iter()
            .map(|f| ManifestFile {
                path: f.rel.to_string_lossy().into_owned(),
                size: f.size,
                last_modified: Timestamp::try_from(f.mtime).unwrap_or(Timestamp::UNIX_EPOCH),
                checksum: ManifestChecksum::Crc32c(f.crc32c),
            })
            .collect(),
        wal_ranges: vec![WalRange {
            timeline: tli,
            start,
            end,
        }],
    }
}

/// The CRC-32C checksums a previous backup's manifest records, by path.
fn known_checksums(data_dir: &Path) -> HashMap<PathBuf, u32> {
    let path = data_dir.join("backup_manifest");
    let Ok(text) = fs::read_to_string(&path) else {
        return HashMap::new();
    };
    let Ok(m) = BackupManifest::parse(&path.to_string_lossy(), &text) else {
        return HashMap::new();
    };
    m.files
        .into_iter()
        .filter_map(|f| match f.checksum {
            ManifestChecksum::Crc32c(c) => Some((PathBuf::from(f.path), c)),
            _ => None,
        })
        .collect()
}

/// A program from `path_prefix` (colon-separated directories, searched first) or
/// `PATH`.
fn find_program(name: &str, path_prefix: Option<&str>) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = path_prefix
        .into_iter()
        .flat_map(|p| p.split(':'))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    #[allow(clippy::disallowed_methods)] // PATH lookup is what running a program means
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Program {
            program: name.to_owned(),
            status: "not found".into(),
            detail: "not in path_prefix nor PATH".into(),
        })
}

/// What [`verify_backup`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Files checked.
    pub files_checked: usize,
    /// Bytes read.
    pub bytes_checked: u64,
    /// One line per problem (missing, wrong size, checksum mismatch, extra file).
    pub problems: Vec<String>,
}

/// Reads `reader` to its end and compares it with manifest entry `f`: the bytes read
/// and the problem found, if any.
fn check_stream(
    reader: &mut dyn Read,
    f: &ManifestFile,
    buf: &mut [u8],
    path: &Path,
) -> Result<(u64, Option<String>)> {
    let (mut n, mut crc) = (0u64, 0u32);
    let mut sha: Option<Box<dyn sha2::digest::DynDigest>> = match &f.checksum {
        ManifestChecksum::Sha(alg, _) => Some(match alg.as_str() {
            "SHA224" => Box::new(<sha2::Sha224 as sha2::Digest>::new()),
            "SHA384" => Box::new(<sha2::Sha384 as sha2::Digest>::new()),
            "SHA512" => Box::new(<sha2::Sha512 as sha2::Digest>::new()),
            _ => Box::new(<sha2::Sha256 as sha2::Digest>::new()),
        }),
        _ => None,
    };
    loop {
        let got = reader
            .read(buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if got == 0 {
            break;
        }
        n += got as u64;
        crc = crc32c::crc32c_append(crc, &buf[..got]);
        if let Some(d) = sha.as_mut() {
            d.update(&buf[..got]);
        }
    }
    if n != f.size {
        return Ok((
            n,
            Some(format!(
                "{}: size {n}, the manifest says {}",
                f.path, f.size
            )),
        ));
    }
    let ok = match &f.checksum {
        ManifestChecksum::None => true,
        ManifestChecksum::Crc32c(c) => *c == crc,
        ManifestChecksum::Sha(_, want) => {
            sha.map(|d| d.finalize().to_vec()).as_deref() == Some(want.as_slice())
        }
    };
    Ok((
        n,
        (!ok).then(|| format!("{}: checksum mismatch ({})", f.path, f.checksum.algorithm())),
    ))
}

/// `verify-backup`: checks every file of a backup against its `backup_manifest`
/// (size and checksum; files of tablespaces are looked up in `base/<id>/<oid>/`),
/// reports files the manifest does not list, and checks that the WAL range the manifest
/// names is in the archive. Reads files in 1 MiB chunks.
///
/// # Errors
///
/// An unknown backup, a missing or invalid manifest, I/O errors other than a missing
/// file.
pub fn verify_backup(
    global: &GlobalConfig,
    server: &ServerConfig,
    backup: &str,
) -> Result<VerifyReport> {
    let repo = BackupRepo::for_server(global, server);
    let catalogue = repo.load()?;
    let info = catalogue.resolve(backup)?.clone();
    let data = repo.data_dir(info.id);
    let mpath = data.join("backup_manifest");
    let text = fs::read_to_string(&mpath).map_err(|e| Error::io("reading", &mpath, e))?;
    let manifest = BackupManifest::parse(&mpath.to_string_lossy(), &text)?;
    let mut report = VerifyReport::default();
    let locate = |rel: &str| -> PathBuf {
        let mut parts = rel.splitn(3, '/');
        if let (Some("pg_tblspc"), Some(oid), Some(rest)) =
            (parts.next(), parts.next(), parts.next())
            && let Ok(oid) = oid.parse::<u32>()
        {
            return repo.tablespace_dir(info.id, oid).join(rest);
        }
        data.join(rel)
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut listed = std::collections::HashSet::new();
    let tars = tarball::backup_tars(&data)?;
    if tars.iter().any(|t| t.oid.is_none()) {
        // A tar-format backup: every member is checked as it streams out of its tar.
        let by_path: HashMap<&str, &ManifestFile> = manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for t in &tars {
            let prefix = t.oid.map(|o| format!("pg_tblspc/{o}/")).unwrap_or_default();
            tarball::for_each_file(&t.path, |rel, reader| {
                let full = format!("{prefix}{rel}");
                match by_path.get(full.as_str()) {
                    Some(f) => {
                        seen.insert(f.path.clone());
                        let (n, problem) = check_stream(reader, f, &mut buf, &t.path)?;
                        report.files_checked += 1;
                        report.bytes_checked += n;
                        report.problems.extend(problem);
                    }
                    None => report.problems.push(format!(
                        "{full}: present in the backup but not in its manifest"
                    )),
                }
                Ok(())
            })?;
        }
        for f in &manifest.files {
            if !seen.contains(&f.path) {
                report.problems.push(format!("{}: missing", f.path));
            }
        }
        report.problems.sort();
        return Ok(report);
    }
    for f in &manifest.files {
        listed.insert(f.path.clone());
        let path = locate(&f.path);
        let mut file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.problems.push(format!("{}: missing", f.path));
                continue;
            }
            Err(e) => return Err(Error::io("opening", &path, e)),
        };
        let (n, problem) = check_stream(&mut file, f, &mut buf, &path)?;
        report.files_checked += 1;
        report.bytes_checked += n;
        report.problems.extend(problem);
    }
    // Files present but not listed (pg_basebackup's own exclusions aside).
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = data.join(&rel);
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let child = rel.join(e.file_name());
            let s = child.to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(child);
            } else if ft.is_file() && s != "backup_manifest" && !listed.contains(&s) {
                report.problems.push(format!(
                    "{s}: present in the backup but not in its manifest"
                ));
            }
        }
    }
    report.problems.sort();
    Ok(report)
}
