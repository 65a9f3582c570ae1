//! Geo-redundancy, as Barman 3.19 does it: a *passive* server (one with
//! `primary_ssh_command`) follows the same server on a primary Barman host.
//!
//! - On the primary, [`sync_info`] is `barman sync-info SERVER [LAST_WAL
//!   [LAST_POSITION]]`: a JSON document with the DONE backups (their `backup.info` as
//!   Barman's `BackupInfo.to_json`), the WAL files of xlog.db from a byte position on,
//!   the position of its last line, the server's configuration and the version.
//! - On the passive node, [`fetch_primary_info`] runs it over `primary_ssh_command`
//!   and keeps the answer in `<backup_directory>/primary.info`; [`sync_backup`] copies a
//!   backup with rsync over the same command (SYNCING, then DONE once its files match
//!   its manifest, FAILED on any error); [`sync_wals`] copies the WAL files not synced
//!   yet (`<wals_directory>/sync-wals.info` says up to where) and archives each as
//!   `put-wal` does; [`plan`] is what `cron` does next.
//!
//! Differences from Barman, on purpose: WAL files come into the archive through the
//! same checks as any other (page headers, CRC-32C, system identifier, compressed with
//! the passive node's own `compression`, so the two nodes need not compress alike); a
//! synced backup is checked against its `backup_manifest` before it is DONE; and the
//! configuration in the JSON has its passwords masked.

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use barman_catalog::{BackupId, BackupInfo, BackupStatus, PyDateTime, PyValue};
use barman_transport::{Rsync, RsyncPath, SshCommand};
use serde_json::{Map, Value, json};

use crate::archive::WalArchive;
use crate::config::{GlobalConfig, ServerConfig};
use crate::fsutil::Lock;
use crate::repo::BackupRepo;
use crate::{Error, Refusal, Result};

/// `<backup_directory>/primary.info`: the last `sync-info` of the primary.
pub const PRIMARY_INFO_FILE: &str = "primary.info";
/// `<wals_directory>/sync-wals.info`: `LAST_WAL\tLAST_POSITION` synced.
pub const SYNC_WALS_INFO_FILE: &str = "sync-wals.info";

fn sync_error(message: String) -> Error {
    Error::refused(Refusal::InvalidRequest, message)
}

/// `Mon Dec 22 09:25:22 2014`: Python's `ctime()` of the wall-clock time.
fn ctime(t: &PyDateTime) -> String {
    t.civil().strftime("%a %b %e %H:%M:%S %Y").to_string()
}

/// A Python literal as JSON (tuples become lists, as `json.dumps` writes them).
fn py_to_json(v: &PyValue) -> Value {
    match v {
        PyValue::None => Value::Null,
        PyValue::Bool(b) => Value::Bool(*b),
        PyValue::Int(n) => json!(n),
        PyValue::Float(f) => json!(f),
        PyValue::Str(s) => Value::String(s.clone()),
        PyValue::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        PyValue::List(items) | PyValue::Tuple(items) => {
            Value::Array(items.iter().map(py_to_json).collect())
        }
        PyValue::Dict(items) => Value::Object(
            items
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        PyValue::Str(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (key, py_to_json(v))
                })
                .collect(),
        ),
    }
}

/// JSON as a Python literal; arrays become tuples when `tuples`.
fn json_to_py(v: &Value, tuples: bool) -> PyValue {
    match v {
        Value::Null => PyValue::None,
        Value::Bool(b) => PyValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => PyValue::Int(i),
            None => PyValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => PyValue::Str(s.clone()),
        Value::Array(items) => {
            let items = items.iter().map(|i| json_to_py(i, false)).collect();
            if tuples {
                PyValue::Tuple(items)
            } else {
                PyValue::List(items)
            }
        }
        Value::Object(map) => PyValue::Dict(
            map.iter()
                .map(|(k, v)| (PyValue::Str(k.clone()), json_to_py(v, false)))
                .collect(),
        ),
    }
}

/// Keys whose `backup.info` text is a Python literal (a list, a dict).
const LITERAL_KEYS: [&str; 4] = [
    "copy_stats",
    "included_files",
    "tablespaces",
    "snapshots_info",
];
/// Keys whose value is an integer.
const INT_KEYS: [&str; 8] = [
    "begin_offset",
    "end_offset",
    "size",
    "deduplicated_size",
    "cluster_size",
    "timeline",
    "version",
    "xlog_segment_size",
];

/// A backup's metadata as Barman's `BackupInfo.to_json` gives it: every key of
/// `backup.info` (`backup_name` and `snapshots_info` only when set), `backup_id`, the
/// times as `ctime()` with `begin_time_iso`/`end_time_iso`, literals as JSON.
pub fn backup_info_to_json(info: &BackupInfo) -> Value {
    let mut out = Map::new();
    out.insert("backup_id".into(), json!(info.id.to_string()));
    for (key, text) in info.field_texts() {
        let Some(text) = text else {
            if !matches!(key, "backup_name" | "snapshots_info") {
                out.insert(key.into(), Value::Null);
            }
            continue;
        };
        let value = if key == "begin_time" || key == "end_time" {
            match text.parse::<PyDateTime>() {
                Ok(t) => {
                    out.insert(
                        format!("{key}_iso"),
                        json!(t.to_string().replacen(' ', "T", 1)),
                    );
                    json!(ctime(&t))
                }
                Err(_) => json!(text),
            }
        } else if LITERAL_KEYS.contains(&key) {
            PyValue::parse(&text).map_or_else(|_| json!(text), |v| py_to_json(&v))
        } else if INT_KEYS.contains(&key) {
            text.parse::<i64>()
                .map_or_else(|_| json!(text), |n| json!(n))
        } else {
            json!(text)
        };
        out.insert(key.into(), value);
    }
    Value::Object(out)
}

/// The `backup.info` of a backup described by [`backup_info_to_json`] (from barman-rs
/// or Barman), with `status`.
///
/// # Errors
///
/// A value `backup.info` cannot hold, named with the key.
pub fn backup_info_from_json(id: BackupId, v: &Value, status: BackupStatus) -> Result<BackupInfo> {
    let Some(obj) = v.as_object() else {
        return Err(sync_error(format!(
            "backup {id}: its description is not a JSON object"
        )));
    };
    let mut text = String::new();
    for key in barman_catalog::BACKUP_INFO_KEYS {
        let value = match key {
            "begin_time" | "end_time" => obj
                .get(&format!("{key}_iso"))
                .filter(|v| !v.is_null())
                .or_else(|| obj.get(key)),
            "status" => continue,
            _ => obj.get(key),
        };
        let line = match value {
            None | Some(Value::Null) => "None".to_owned(),
            Some(Value::String(s)) if key == "begin_time" || key == "end_time" => {
                s.replacen('T', " ", 1)
            }
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => json_to_py(other, false).to_string(),
        };
        let line = if key == "tablespaces" {
            match value {
                Some(Value::Array(items)) => {
                    PyValue::List(items.iter().map(|i| json_to_py(i, true)).collect()).to_string()
                }
                _ => line,
            }
        } else {
            line
        };
        if line.contains(['\n', '\r']) {
            return Err(sync_error(format!("backup {id}: {key} holds a line break")));
        }
        text.push_str(&format!("{key}={line}\n"));
    }
    text.push_str(&format!("status={status}\n"));
    Ok(BackupInfo::parse(&format!("{id}-backup.info"), &text)?)
}

/// The name, size, time, compression and encryption of an xlog.db line, as Barman's
/// `WalFileInfo.to_json`.
fn wal_json(line: &str) -> Option<Value> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (name, size, time) = (parts.first()?, parts.get(1)?, parts.get(2)?);
    let field = |i: usize| match parts.get(i) {
        None | Some(&"None") => Value::Null,
        Some(v) => json!(v),
    };
    Some(json!({
        "name": name,
        "size": size.parse::<i64>().ok()?,
        "time": time.parse::<f64>().ok()?,
        "compression": field(3),
        "encryption": field(4),
    }))
}

/// `barman sync-info SERVER [LAST_WAL [LAST_POSITION]]` on the primary (see the module
/// docs): read from `last_position` in xlog.db when the line there is `last_wal`'s,
/// else from the start; only WAL newer than `last_wal`, or, without it, none older than
/// the first DONE backup.
///
/// # Errors
///
/// `last_wal` older than the first WAL listed, or newer than the last (Barman's
/// `SyncError`, exit 1, after which a passive node asks for everything); I/O errors.
pub fn sync_info(
    global: &GlobalConfig,
    server: &ServerConfig,
    last_wal: Option<&str>,
    last_position: Option<u64>,
) -> Result<Value> {
    let repo = BackupRepo::for_server(global, server);
    let catalogue = repo.load()?;
    let mut backups = Map::new();
    let mut first_useful: Option<String> = None;
    for b in catalogue.with_status(&[BackupStatus::Done]) {
        if first_useful.is_none() {
            first_useful = b.begin_wal.map(|w| w.to_string());
        }
        backups.insert(b.id.to_string(), backup_info_to_json(b));
    }
    let archive = WalArchive::for_server(global, server);
    let path = archive.xlogdb_path().to_owned();
    // Read under the xlog.db lock, as Barman: never half of a line being appended.
    let _xlogdb_lock = archive.xlogdb_lock()?;
    let mut wals = Vec::new();
    let (mut last_pos, mut last_name) = (0u64, String::new());
    match std::fs::File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("reading", &path, e)),
        Ok(mut f) => {
            // Barman's set_sync_starting_point.
            let mut start = 0u64;
            // Barman compares the 24 bytes there; the line's first field says the same
            // for every kind of WAL file name (a .history or .backup one too).
            if let (Some(pos), Some(lw)) = (last_position, last_wal) {
                let mut line = Vec::new();
                if f.seek(SeekFrom::Start(pos)).is_ok()
                    && std::io::BufReader::new(&mut f)
                        .take(256)
                        .read_until(b'\n', &mut line)
                        .is_ok()
                    && line
                        .split(|b| b.is_ascii_whitespace())
                        .next()
                        .is_some_and(|first| first == lw.as_bytes())
                {
                    start = pos;
                }
            }
            f.seek(SeekFrom::Start(start))
                .map_err(|e| Error::io("reading", &path, e))?;
            let mut check_first = start == 0 && last_wal.is_some();
            let mut offset = start;
            let mut last: Option<String> = None;
            for line in std::io::BufReader::new(f).split(b'\n') {
                let line = line.map_err(|e| Error::io("reading", &path, e))?;
                let this = offset;
                offset += line.len() as u64 + 1;
                let text = String::from_utf8_lossy(&line);
                let Some(v) = wal_json(&text) else { continue };
                let name = v["name"].as_str().unwrap_or_default().to_owned();
                if check_first && let Some(lw) = last_wal {
                    if lw < name.as_str() {
                        return Err(sync_error(format!(
                            "last_wal '{lw}' is older than the first available wal '{name}'"
                        )));
                    }
                    check_first = false;
                }
                last_pos = this;
                last = Some(name.clone());
                match (last_wal, &first_useful) {
                    (Some(lw), _) if name.as_str() <= lw => continue,
                    (None, Some(first)) if &name < first => continue,
                    _ => wals.push(v),
                }
            }
            match last {
                Some(name) => {
                    if let Some(lw) = last_wal
                        && lw > name.as_str()
                    {
                        return Err(sync_error(format!(
                            "last_wal '{lw}' is newer than the last available wal  '{name}'"
                        )));
                    }
                    last_name = name;
                }
                None => last_pos = 0,
            }
        }
    }
    Ok(json!({
        "last_position": last_pos,
        "last_name": last_name,
        "backups": backups,
        "wals": wals,
        "version": crate::BARMAN_VERSION,
        "config": crate::diagnose::server_config(server, false),
    }))
}

/// Pretty JSON with Barman's 4-space indent.
pub fn to_barman_json(v: &Value) -> String {
    crate::json_pretty4(v)
}

fn primary_ssh(server: &ServerConfig) -> Result<&str> {
    server
        .options()
        .primary_ssh_command
        .as_deref()
        .ok_or_else(|| sync_error(format!("server {} is not passive", server.name())))
}

/// Runs `sync-info` on the primary over `primary_ssh_command` (`barman [-c CONFIG]
/// sync-info SERVER [LAST_WAL LAST_POSITION]`, the configuration file forwarded with
/// `forward_config_path`), saves the answer in `primary.info` atomically and returns
/// it. When the primary refuses the position (exit 1), everything is asked again, as
/// Barman does.
///
/// # Errors
///
/// Not a passive server; the command fails (its standard error in the message); an
/// answer that is not JSON; I/O errors.
pub async fn fetch_primary_info(
    global: &GlobalConfig,
    server: &ServerConfig,
    last: Option<(String, u64)>,
) -> Result<(Value, Vec<String>)> {
    let ssh = primary_ssh(server)?.to_owned();
    let mut warnings = Vec::new();
    let mut last = last;
    let out = loop {
        let mut cmd = if server.options().forward_config_path {
            format!(
                "barman -c {} sync-info {}",
                shlex::try_quote(&global.config_file).map_err(|e| sync_error(e.to_string()))?,
                shlex::try_quote(server.name()).map_err(|e| sync_error(e.to_string()))?
            )
        } else {
            format!(
                "barman sync-info {}",
                shlex::try_quote(server.name()).map_err(|e| sync_error(e.to_string()))?
            )
        };
        if let Some((wal, pos)) = &last {
            let wal = shlex::try_quote(wal).map_err(|e| sync_error(e.to_string()))?;
            cmd.push_str(&format!(" {wal} {pos}"));
        }
        let full = format!("{ssh} {cmd}");
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&full)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| Error::io("running", "sh", e))?;
        if output.status.success() {
            break output.stdout;
        }
        if output.status.code() == Some(1) && last.is_some() {
            warnings.push(format!(
                "sync-info is out of sync. Self-recovery procedure started: requesting full synchronisation from primary server {}",
                server.name()
            ));
            last = None;
            continue;
        }
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(Error::refused(
            Refusal::ServerState,
            format!(
                "sync-info execution on remote primary server {} failed: {}",
                server.name(),
                err.trim()
            ),
        ));
    };
    let value: Value = serde_json::from_slice(&out).map_err(|e| {
        Error::refused(
            Refusal::ServerState,
            format!(
                "sync-info of the primary of server {} is not JSON: {e}",
                server.name()
            ),
        )
    })?;
    let dir = backup_directory(server)?;
    crate::fsutil::create_private_dir(&dir)?;
    crate::fsutil::write_persist(&dir.join(PRIMARY_INFO_FILE), &out)?;
    crate::fsutil::sync_dir(&dir)?;
    Ok((value, warnings))
}

fn backup_directory(server: &ServerConfig) -> Result<PathBuf> {
    server
        .options()
        .backup_directory
        .as_ref()
        .map(PathBuf::from)
        .ok_or_else(|| sync_error(format!("server {} has no backup_directory", server.name())))
}

/// The `primary.info` saved by [`fetch_primary_info`].
///
/// # Errors
///
/// Missing or unreadable (Barman's "Cannot open primary.info file for server").
pub fn load_primary_info(server: &ServerConfig) -> Result<Value> {
    let path = backup_directory(server)?.join(PRIMARY_INFO_FILE);
    let text = std::fs::read(&path).map_err(|e| {
        sync_error(format!(
            "Cannot open {PRIMARY_INFO_FILE} file for server {}: {e}",
            server.name()
        ))
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        sync_error(format!(
            "{}: not JSON ({e}); run cron again to fetch it",
            path.display()
        ))
    })
}

/// The last WAL synced and its xlog.db position on the primary, from
/// `sync-wals.info`.
fn load_sync_wals_info(archive: &WalArchive) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(archive.wals_dir().join(SYNC_WALS_INFO_FILE)).ok()?;
    let (wal, pos) = text.trim().split_once('\t')?;
    Some((wal.to_owned(), pos.trim().parse().ok()?))
}

/// What to do about one backup of the primary (Barman's `check_sync_required`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncNeed {
    /// Copy it (absent here, or FAILED here).
    Copy,
    /// Nothing (DONE here, or only here).
    NothingToDo(String),
    /// Absent on the primary and incomplete here: remove it.
    Delete(String),
}

/// Barman's `check_sync_required` for backup `id`.
///
/// # Errors
///
/// Absent on both nodes.
pub fn check_sync_required(
    server: &ServerConfig,
    primary: &Value,
    id: BackupId,
    local: Option<&BackupInfo>,
) -> Result<SyncNeed> {
    let on_primary = primary["backups"].get(id.to_string()).is_some();
    let name = server.name();
    Ok(match (on_primary, local.map(|l| l.status)) {
        (false, None) => {
            return Err(sync_error(format!(
                "Backup {id} is absent on {name} server"
            )));
        }
        (false, Some(BackupStatus::Done)) => SyncNeed::NothingToDo(format!(
            "Backup {id} is absent on {name} server, but present locally (local copy only)"
        )),
        (false, Some(_)) => SyncNeed::Delete(format!(
            "Backup {id} is absent on {name} server and is incomplete locally"
        )),
        (true, Some(BackupStatus::Done)) => {
            SyncNeed::NothingToDo(format!("Backup {id} is already synced with {name} server"))
        }
        (true, _) => SyncNeed::Copy,
    })
}

fn ssh_of(server: &ServerConfig) -> Result<SshCommand> {
    Ok(SshCommand::new(primary_ssh(server)?)?)
}

fn lock_path(global: &GlobalConfig, what: &str) -> PathBuf {
    Path::new(&global.barman_lock_directory).join(what)
}

/// What [`sync_backup`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncBackupOutcome {
    /// Copied, verified and DONE.
    Synced,
    /// Nothing to do, and why.
    NothingToDo(String),
    /// Removed here (absent on the primary, incomplete here), and why.
    Deleted(String),
}

/// `sync-backup SERVER BACKUP_ID` on a passive node: copies the backup from the
/// primary (as `primary.info` describes it) under the lock
/// `.<server>-<id>-sync-backup.lock`. Its `backup.info` says SYNCING during the copy,
/// FAILED with the reason if anything fails, DONE once every file matches its
/// `backup_manifest` (when it has one).
///
/// # Errors
///
/// Not passive, no `primary.info`, the lock held, a backup absent on both nodes, the
/// copy or the check failing (the backup is then FAILED).
pub async fn sync_backup(
    global: &GlobalConfig,
    server: &ServerConfig,
    backup: &str,
) -> Result<SyncBackupOutcome> {
    let ssh = ssh_of(server)?;
    let id: BackupId = backup
        .parse()
        .map_err(|_| sync_error(format!("invalid backup id '{backup}'")))?;
    let primary = load_primary_info(server)?;
    let repo = BackupRepo::for_server(global, server);
    // Decided under the lock, from the backup.info as it is then: another sync-backup
    // of this backup may have just finished (or be copying).
    let lock_file = lock_path(global, &format!(".{}-{id}-sync-backup.lock", server.name()));
    let Some(lock) = Lock::try_acquire(&lock_file)? else {
        return Err(Error::refused(
            Refusal::Busy,
            format!(
                "Another synchronisation process for backup {id} of server {} is already running.",
                server.name()
            ),
        ));
    };
    let local = repo.read_info_async(id).await.ok();
    match check_sync_required(server, &primary, id, local.as_ref())? {
        SyncNeed::Copy => {}
        SyncNeed::NothingToDo(why) => return Ok(SyncBackupOutcome::NothingToDo(why)),
        SyncNeed::Delete(why) => {
            // The delete takes the backup's own lock.
            drop(lock);
            crate::catalogue::ServerBackups::for_server(global, server).delete(backup)?;
            return Ok(SyncBackupOutcome::Deleted(why));
        }
    }
    let _lock = lock;
    let remote = &primary["backups"][id.to_string()];
    let remote_dir = primary["config"]["basebackups_directory"]
        .as_str()
        .ok_or_else(|| sync_error("primary.info names no basebackups_directory".to_owned()))?;
    let mut info = backup_info_from_json(id, remote, BackupStatus::Syncing)?;
    repo.write_info_async(&info).await?;
    let dest = repo.backup_path(id);
    let o = server.options();
    let (size, period) = server.jobs_start_batch(None, None);
    let mut rsync = Rsync::new()
        .workers(usize::try_from(o.parallel_jobs).unwrap_or(1).max(1))
        .start_batches(size, period)
        .compress(o.network_compression)
        // The primary's own metadata: this node writes its own.
        .exclude("/backup.info");
    if let Some(k) = o.bandwidth_limit.filter(|k| *k > 0) {
        rsync = rsync.bwlimit_kib(u64::try_from(k).unwrap_or(0));
    }
    let copied = async {
        rsync
            .copy_tree(
                &RsyncPath::Remote(ssh.clone(), format!("{remote_dir}/{id}/")),
                &RsyncPath::Local(dest.clone()),
            )
            .await?;
        if repo.data_dir(id).join("backup_manifest").is_file() {
            let report = crate::backup::verify_backup(global, server, &id.to_string())?;
            if let Some(first) = report.problems.first() {
                return Err(Error::refused(
                    Refusal::Damaged,
                    format!(
                        "the copy does not match its backup_manifest ({} problems, first: {first})",
                        report.problems.len()
                    ),
                ));
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    match copied {
        Ok(()) => {
            info.status = BackupStatus::Done;
            repo.write_info_async(&info).await?;
            Ok(SyncBackupOutcome::Synced)
        }
        Err(e) => {
            info.status = BackupStatus::Failed;
            let msg = format!(
                "failure syncing server {} backup {id}: {}",
                server.name(),
                e.to_string().lines().next().unwrap_or_default()
            );
            info.error = Some(msg.clone());
            repo.write_info_async(&info).await?;
            Err(Error::refused(Refusal::Damaged, msg))
        }
    }
}

/// What [`sync_wals`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncWalsOutcome {
    /// WAL files archived here.
    pub archived: Vec<String>,
    /// WAL files that were already here, identical.
    pub already: Vec<String>,
    /// Why nothing was copied, when nothing was (Barman's warnings).
    pub skipped: Option<String>,
}

/// `sync-wals SERVER` on a passive node: under `.<server>-sync-wal.lock`, copies the
/// WAL files `primary.info` lists after the last one synced into a staging directory,
/// archives each in order as `put-wal` does, then records the primary's position in
/// `sync-wals.info`. Nothing is copied before there is a backup here whose first WAL
/// it can serve.
///
/// # Errors
///
/// Not passive, no `primary.info`, the lock held, the copy failing, a WAL file
/// refused by the archive (the ones before it stay archived; `sync-wals.info` is not
/// moved, so the next run tries again).
pub async fn sync_wals(global: &GlobalConfig, server: &ServerConfig) -> Result<SyncWalsOutcome> {
    let ssh = ssh_of(server)?;
    let lock_file = lock_path(global, &format!(".{}-sync-wal.lock", server.name()));
    let Some(_lock) = Lock::try_acquire(&lock_file)? else {
        return Err(Error::refused(
            Refusal::Busy,
            format!(
                "Another sync-wal operation is running for server {} ",
                server.name()
            ),
        ));
    };
    let archive = WalArchive::for_server(global, server);
    let synced = load_sync_wals_info(&archive);
    let primary = load_primary_info(server)?;
    let wals: Vec<&Value> = primary["wals"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut out = SyncWalsOutcome::default();
    let first_remote = wals
        .iter()
        .filter_map(|w| w["name"].as_str())
        .find(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()));
    let repo = BackupRepo::for_server(global, server);
    let catalogue = repo.load()?;
    let first_backup = catalogue.with_status(&[BackupStatus::Done]).next().cloned();
    let Some(first_backup) = first_backup else {
        out.skipped = Some(format!("No base backup for server {}", server.name()));
        return Ok(out);
    };
    if let (Some(begin), Some(first)) = (first_backup.begin_wal, first_remote)
        && begin.to_string().as_str() > first
    {
        out.skipped = Some(format!(
            "Skipping WAL synchronisation for server {}: no available local backup for {first}",
            server.name()
        ));
        return Ok(out);
    }
    let mut names = Vec::new();
    for w in &wals {
        let Some(name) = w["name"].as_str() else {
            continue;
        };
        if synced
            .as_ref()
            .is_some_and(|(last, _)| name <= last.as_str())
        {
            continue;
        }
        let parsed: barman_wal::WalFileName = name
            .parse()
            .map_err(|_| sync_error(format!("primary.info lists '{name}', not a WAL file name")))?;
        names.push(parsed);
    }
    if !names.is_empty() {
        let remote_dir = primary["config"]["wals_directory"]
            .as_str()
            .ok_or_else(|| sync_error("primary.info names no wals_directory".to_owned()))?;
        let rel = |n: &barman_wal::WalFileName| {
            let h = n.hash_dir();
            if h.is_empty() {
                n.to_string()
            } else {
                format!("{h}/{n}")
            }
        };
        let files: Vec<String> = names.iter().map(rel).collect();
        let staging_base = backup_directory(server)?;
        crate::fsutil::create_private_dir(&staging_base)?;
        let staging = tempfile::Builder::new()
            .prefix(crate::leftovers::SYNC_WALS_STAGING)
            .suffix(&crate::leftovers::staging_suffix())
            .tempdir_in(&staging_base)
            .map_err(|e| Error::io("creating a staging directory in", &staging_base, e))?;
        let o = server.options();
        let mut rsync = Rsync::new().compress(o.network_compression);
        if let Some(k) = o.bandwidth_limit.filter(|k| *k > 0) {
            rsync = rsync.bwlimit_kib(u64::try_from(k).unwrap_or(0));
        }
        rsync
            .copy_files(
                &RsyncPath::Remote(ssh, format!("{remote_dir}/")),
                &RsyncPath::Local(staging.path().to_owned()),
                &files,
            )
            .await?;
        for (name, file) in names.iter().zip(&files) {
            let src = staging.path().join(file);
            let archive = archive.clone();
            let outcome =
                crate::blocking("archiving", src.clone(), move || archive.put_wal(&src)).await??;
            match outcome {
                crate::archive::PutOutcome::Archived(_) => out.archived.push(name.to_string()),
                _ => out.already.push(name.to_string()),
            }
        }
    }
    if let (Some(last), Some(pos)) = (
        primary["last_name"].as_str(),
        primary["last_position"].as_u64(),
    ) {
        let path = archive.wals_dir().join(SYNC_WALS_INFO_FILE);
        crate::fsutil::create_private_dir(archive.wals_dir())?;
        crate::fsutil::write_persist(&path, format!("{last}\t{pos}").as_bytes())?;
        crate::fsutil::sync_dir(archive.wals_dir())?;
    }
    Ok(out)
}

/// What `cron` does next for a passive server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncPlan {
    /// The backup to copy (one per run, the oldest missing), if any.
    pub backup: Option<BackupId>,
    /// Whether there are WAL files to copy.
    pub wals: bool,
    /// Warnings met (the primary's position refused, ...).
    pub warnings: Vec<String>,
}

/// Barman's `sync_cron` decisions for a passive server: asks the primary for its
/// state (from the position `sync-wals.info` records) and says which backup to copy
/// and whether WAL files wait. The caller starts `sync-backup` and `sync-wals`.
///
/// # Errors
///
/// Those of [`fetch_primary_info`].
pub async fn plan(global: &GlobalConfig, server: &ServerConfig) -> Result<SyncPlan> {
    let archive = WalArchive::for_server(global, server);
    let (primary, warnings) =
        fetch_primary_info(global, server, load_sync_wals_info(&archive)).await?;
    let mut plan = SyncPlan {
        warnings,
        ..SyncPlan::default()
    };
    let repo = BackupRepo::for_server(global, server);
    let (catalogue, _) = repo.load_readable()?;
    let mut ids: Vec<BackupId> = primary["backups"]
        .as_object()
        .map(|m| m.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default();
    ids.sort();
    for id in ids {
        let local = catalogue.get(id);
        if let Ok(SyncNeed::Copy) = check_sync_required(server, &primary, id, local) {
            plan.backup = Some(id);
            break;
        }
    }
    plan.wals = primary["wals"].as_array().is_some_and(|w| !w.is_empty());
    Ok(plan)
}

/// `cron`'s part for a passive server: [`plan`] under the server's
/// `.<server>-cron.lock` (as Barman's `sync_cron` runs under its `ServerCronLock`, so
/// two crons never plan, and start copies, at once), within `timeout` (a primary that
/// does not answer must not hold cron). `Ok(None)`: another cron holds the lock.
///
/// # Errors
///
/// Those of [`plan`]; the timeout.
pub fn cron_plan(
    global: &GlobalConfig,
    server: &ServerConfig,
    timeout: std::time::Duration,
) -> Result<Option<SyncPlan>> {
    let lock_file = lock_path(global, &format!(".{}-cron.lock", server.name()));
    let Some(_lock) = Lock::try_acquire(&lock_file)? else {
        return Ok(None);
    };
    // Its own runtime: plan() reads the catalogue with the blocking helpers, which
    // must not run inside crate::wait's executor.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting", "a runtime", e))?;
    rt.block_on(async {
        match tokio::time::timeout(timeout, plan(global, server)).await {
            Ok(r) => r.map(Some),
            Err(_) => Err(Error::refused(
                Refusal::ServerState,
                format!(
                    "the primary of server {} did not answer sync-info within {} s",
                    server.name(),
                    timeout.as_secs()
                ),
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Barman 3.19's `BackupInfo.to_json` of the sample of its tests (captured from
    /// Barman itself), read back into the same backup.info.
    #[test]
    fn backup_info_round_trips_through_barman_json() {
        let text = "backup_label=\"START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\\nLABEL: it's\\n\"\nbegin_offset=40\nbegin_time=2014-12-22 09:25:22.561207+01:00\nbegin_wal=000000010000000000000004\nbegin_xlog=0/4000028\nchildren_backup_ids=20141223T092522,20141224T092522\ncluster_size=None\ncompression=None\nconfig_file=/fakepath/postgresql.conf\ncopy_stats={'copy_time': 1.5, 'total_time': 1e-05, 'number_of_workers': 2}\ndata_checksums=on\ndeduplicated_size=None\nencryption=None\nend_offset=184\nend_time=2014-12-22 09:25:27.410470+01:00\nend_wal=000000010000000000000004\nend_xlog=0/40000B8\nerror=None\nhba_file=/fakepath/pg_hba.conf\nident_file=/fakepath/pg_ident.conf\nincluded_files=['/etc/postgresql/15/main/conf.d/a.conf']\nmode=rsync-concurrent\nparent_backup_id=20141221T092522\npgdata=/fakepath/data\nserver_name=fake-9.4-server\nsize=20935690\nstatus=DONE\nsummarize_wal=None\nsystemid=7712020257735954489\ntablespaces=[('fake_tbs', 16384, '/fake_tmp/tbs'), (\"it's\", 16390, \"/srv/o'brien\")]\ntimeline=1\nversion=90400\nxlog_segment_size=16777216\n";
        let info = BackupInfo::parse("20141222T092522-backup.info", text).unwrap();
        let json = backup_info_to_json(&info);
        let barman: Value = serde_json::from_str(r#"{"backup_id": "20141222T092522", "backup_label": "\"START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\\nLABEL: it's\\n\"", "begin_offset": 40, "begin_time": "Mon Dec 22 09:25:22 2014", "begin_time_iso": "2014-12-22T09:25:22.561207+01:00", "begin_wal": "000000010000000000000004", "begin_xlog": "0/4000028", "children_backup_ids": "20141223T092522,20141224T092522", "cluster_size": null, "compression": null, "config_file": "/fakepath/postgresql.conf", "copy_stats": {"copy_time": 1.5, "number_of_workers": 2, "total_time": 1e-05}, "data_checksums": "on", "deduplicated_size": null, "encryption": null, "end_offset": 184, "end_time": "Mon Dec 22 09:25:27 2014", "end_time_iso": "2014-12-22T09:25:27.410470+01:00", "end_wal": "000000010000000000000004", "end_xlog": "0/40000B8", "error": null, "hba_file": "/fakepath/pg_hba.conf", "ident_file": "/fakepath/pg_ident.conf", "included_files": ["/etc/postgresql/15/main/conf.d/a.conf"], "mode": "rsync-concurrent", "parent_backup_id": "20141221T092522", "pgdata": "/fakepath/data", "server_name": "fake-9.4-server", "size": 20935690, "status": "DONE", "summarize_wal": null, "systemid": "7712020257735954489", "tablespaces": [["fake_tbs", 16384, "/fake_tmp/tbs"], ["it's", 16390, "/srv/o'brien"]], "timeline": 1, "version": 90400, "xlog_segment_size": 16777216}"#).unwrap();
        assert_eq!(json, barman);
        let back = backup_info_from_json(info.id, &barman, BackupStatus::Done).unwrap();
        // The same values (a dict's keys come back sorted: JSON objects have no order).
        assert_eq!(backup_info_to_json(&back), barman);
        assert_eq!(
            back.to_string().replace(
                "'number_of_workers': 2, 'total_time': 1e-05",
                "'total_time': 1e-05, 'number_of_workers': 2"
            ),
            info.to_string()
        );
        let syncing = backup_info_from_json(info.id, &barman, BackupStatus::Syncing).unwrap();
        assert_eq!(syncing.status, BackupStatus::Syncing);
        // A line break cannot get into backup.info.
        let mut bad = barman.clone();
        bad["config_file"] = json!("/x\nstatus=DONE");
        assert!(backup_info_from_json(info.id, &bad, BackupStatus::Syncing).is_err());
    }

    #[test]
    fn xlogdb_lines_as_barman_lists_them() {
        assert_eq!(
            wal_json("000000010000000000000004\t16384\t1419240322.5\tgzip\tNone"),
            Some(
                json!({"name": "000000010000000000000004", "size": 16384, "time": 1419240322.5, "compression": "gzip", "encryption": null})
            )
        );
        assert_eq!(
            wal_json("000000010000000000000004\t16384\t1419240322.0"),
            Some(
                json!({"name": "000000010000000000000004", "size": 16384, "time": 1419240322.0, "compression": null, "encryption": null})
            )
        );
        assert_eq!(wal_json("garbage"), None);
        assert_eq!(wal_json("a\tb\tc"), None);
    }
}
