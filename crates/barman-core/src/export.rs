//! `export-backup` and `import-backup` (Barman 3.19): one DONE full backup with the
//! WAL files it needs to be consistent, as a portable tarball another Barman (or
//! barman-rs) of the same cluster can take into its catalogue.
//!
//! The tarball, as Barman writes it: `identity.json`, `backup.info`, `barman.json`
//! first (an importer checks the cluster before reading the bulk), then `backup/` (the
//! backup's directory), `wals/<hash dir>/<name>` for each WAL file from the backup's
//! first to its last, and `xlog.db` with their lines. It is named
//! `backup-export-SERVER-BACKUP_ID-TIMESTAMP-CHECKSUM.tar[.gz|.bz2|.xz]`, CHECKSUM
//! the first 8 hex digits of its SHA-256, so that an import finds a damaged copy
//! before writing anything.
//!
//! An import unpacks into a staging directory inside `basebackups_directory` (no
//! member is written through a link, and the only links accepted are the tablespace
//! links of `backup/data/pg_tblspc/`), checks the layout, the cluster (system
//! identifier) and that every WAL file listed is there, then moves the backup into
//! place, archives each WAL file as `put-wal` does (validated, compressed with this
//! server's compression) and writes `backup.info` last, under the server's backup lock
//! and the backup's lock. The backup is kept (`keep:standalone`), as Barman does, so
//! that retention never removes what was imported on purpose.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use barman_catalog::{BackupId, BackupInfo, BackupStatus, KeepTarget};
use barman_wal::{Codec, CompressionLevel, SegmentName, WalFileName};
use sha2::Digest;

use crate::archive::WalArchive;
use crate::catalogue::{KeepAction, ServerBackups};
use crate::config::{GlobalConfig, ServerConfig};
use crate::encryption::Gpg;
use crate::repo::BackupRepo;
use crate::{Error, Refusal, Result};

fn refused(kind: Refusal, message: String) -> Error {
    Error::refused(kind, message)
}

/// The first 8 hex digits of the SHA-256 of the file at `path`.
fn checksum8(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(hex[..8].to_owned())
}

/// The compression of an export: Barman's `--compression` names and levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportCompression {
    /// gzip, bzip2 or xz.
    pub codec: Codec,
    /// The level (1-9; 0-9 for xz); `None`: the codec's default.
    pub level: Option<u32>,
}

impl ExportCompression {
    /// Parses `--compression NAME` and `--compression-level N` as Barman checks them.
    ///
    /// # Errors
    ///
    /// An unknown name, a level out of range, a level without a name.
    pub fn parse(name: Option<&str>, level: Option<u32>) -> Result<Option<ExportCompression>> {
        let Some(name) = name else {
            if level.is_some() {
                return Err(refused(
                    Refusal::InvalidRequest,
                    "--compression-level requires --compression to be set".to_owned(),
                ));
            }
            return Ok(None);
        };
        let (codec, range) = match name {
            "gzip" => (Codec::Gzip, 1..=9),
            "bzip2" => (Codec::Bzip2, 1..=9),
            "xz" => (Codec::Xz, 0..=9),
            other => {
                return Err(refused(
                    Refusal::InvalidRequest,
                    format!("invalid compression '{other}' (gzip, bzip2 or xz)"),
                ));
            }
        };
        if let Some(l) = level
            && !range.contains(&l)
        {
            let valid: Vec<String> = range.map(|l| l.to_string()).collect();
            return Err(refused(
                Refusal::InvalidRequest,
                format!(
                    "Invalid compression level '{l}' for algorithm '{name}'. Valid levels are: {}",
                    valid.join(", ")
                ),
            ));
        }
        Ok(Some(ExportCompression { codec, level }))
    }

    fn extension(self) -> &'static str {
        match self.codec {
            Codec::Gzip => ".tar.gz",
            Codec::Bzip2 => ".tar.bz2",
            _ => ".tar.xz",
        }
    }
}

fn identity_text(repo: &BackupRepo, server: &str) -> Result<serde_json::Value> {
    let path = repo.identity_path();
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(refused(
                Refusal::ServerState,
                format!(
                    "No identity file found for server '{server}'. The identity file is required to validate the backup during import."
                ),
            ));
        }
        Err(e) => return Err(Error::io("reading", &path, e)),
    };
    serde_json::from_str(&text).map_err(|e| {
        refused(
            Refusal::Damaged,
            format!("{}: not JSON: {e}", path.display()),
        )
    })
}

/// The WAL segments a backup needs, first to last, and the xlog.db lines naming them.
fn required_wals(archive: &WalArchive, info: &BackupInfo) -> Result<Vec<(WalFileName, String)>> {
    let (Some(begin), Some(end)) = (info.begin_wal, info.end_wal) else {
        return Err(refused(
            Refusal::Damaged,
            format!(
                "backup {}: its backup.info names no begin_wal or end_wal",
                info.id
            ),
        ));
    };
    let size = info.xlog_segment_size;
    let path = archive.xlogdb_path().to_owned();
    let text = {
        let _lock = archive.xlogdb_lock()?;
        fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?
    };
    let mut lines = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(name) = line.split_whitespace().next() {
            lines.insert(name.to_owned(), line.to_owned());
        }
    }
    let mut out = Vec::new();
    for seg in SegmentName::range(begin, end, size) {
        let name = seg.to_string();
        let Some(line) = lines.get(&name) else {
            return Err(refused(
                Refusal::Damaged,
                format!(
                    "WAL file required for backup consistency not found in xlog.db for backup '{}': {name}",
                    info.id
                ),
            ));
        };
        out.push((WalFileName::Segment(seg), line.clone()));
    }
    Ok(out)
}

/// `export-backup SERVER BACKUP_ID OUTPUT_DIRECTORY`: writes the tarball (see the
/// module docs) into `output`, atomically (a temporary name, fsync, then its final
/// name), under the backup's lock. `now_utc` names it (`YYYYMMDDTHHMMSS`). Returns
/// its path.
///
/// # Errors
///
/// An unknown, incremental or not DONE backup; no `identity.json`; a missing WAL
/// file; an output directory that does not exist; the backup's lock held; I/O errors
/// (the temporary file is removed).
pub fn export_backup(
    global: &GlobalConfig,
    server: &ServerConfig,
    backup: &str,
    output: &Path,
    compression: Option<ExportCompression>,
    now_utc: &str,
) -> Result<PathBuf> {
    let repo = BackupRepo::for_server(global, server);
    let catalogue = repo.load()?;
    let info = catalogue.resolve(backup)?.clone();
    let (id, name) = (info.id, server.name());
    if info.is_incremental() {
        return Err(refused(
            Refusal::BackupState,
            format!(
                "Cannot export backup {id} from server {name}: it is an incremental backup. Only full backups are eligible for exporting."
            ),
        ));
    }
    if info.status != BackupStatus::Done {
        return Err(refused(
            Refusal::BackupState,
            format!(
                "Cannot export backup '{backup}' from server '{name}': backup status is '{}', expected 'DONE'",
                info.status
            ),
        ));
    }
    if !output.is_dir() {
        return Err(refused(
            Refusal::InvalidRequest,
            format!("Output directory '{}' does not exist", output.display()),
        ));
    }
    let identity = identity_text(&repo, name)?;
    let _lock = repo.try_lock_backup_id(id)?.ok_or_else(|| {
        refused(
            Refusal::Busy,
            format!(
                "Another backup operation is already running on backup '{id}' for server '{name}'"
            ),
        )
    })?;
    let archive = WalArchive::for_server(global, server);
    let wals = required_wals(&archive, &info)?;
    let tmp = output.join(format!("backup-export-{name}-{id}-{now_utc}.tmp"));
    let written = write_tarball(&tmp, &repo, &archive, &info, &identity, &wals, compression);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let finished = (|| {
        let sum = checksum8(&tmp)?;
        let ext = compression.map_or(".tar", ExportCompression::extension);
        let dest = output.join(format!("backup-export-{name}-{id}-{now_utc}-{sum}{ext}"));
        fs::rename(&tmp, &dest).map_err(|e| Error::io("renaming", &tmp, e))?;
        crate::fsutil::sync_dir(output)?;
        Ok(dest)
    })();
    if finished.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    finished
}

fn write_tarball(
    tmp: &Path,
    repo: &BackupRepo,
    archive: &WalArchive,
    info: &BackupInfo,
    identity: &serde_json::Value,
    wals: &[(WalFileName, String)],
    compression: Option<ExportCompression>,
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| Error::io("creating", tmp, e))?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let bad = |e: io::Error| Error::io("writing", tmp, e);
    let writer: Box<dyn Write> = match compression {
        None => Box::new(out),
        Some(c) => {
            let level = c.level.map_or(CompressionLevel::Medium, |l| {
                CompressionLevel::Exact(i32::try_from(l).unwrap_or(9))
            });
            Box::new(c.codec.encoder(out, level).map_err(|e| Error::Wal {
                path: tmp.to_owned(),
                source: e,
            })?)
        }
    };
    let mut tar = tar::Builder::new(writer);
    tar.follow_symlinks(false);
    let add_bytes = |tar: &mut tar::Builder<Box<dyn Write>>, name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        h.set_cksum();
        tar.append_data(&mut h, name, bytes)
    };
    add_bytes(
        &mut tar,
        "identity.json",
        crate::json_pretty4(identity).as_bytes(),
    )
    .map_err(bad)?;
    add_bytes(&mut tar, "backup.info", info.to_string().as_bytes()).map_err(bad)?;
    let system = serde_json::json!({
        "barman_ver": crate::BARMAN_VERSION,
        "barman_rs_ver": env!("CARGO_PKG_VERSION"),
        "python_ver": "n/a (barman-rs)",
        "timestamp": jiff::Timestamp::now().to_string(),
    });
    add_bytes(
        &mut tar,
        "barman.json",
        crate::json_pretty4(&system).as_bytes(),
    )
    .map_err(bad)?;
    tar.append_dir_all("backup", repo.backup_path(info.id))
        .map_err(bad)?;
    let mut xlogdb = String::new();
    for (name, line) in wals {
        let path = archive.path_of(name);
        let rel = format!("wals/{}/{name}", name.hash_dir());
        let mut f = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                refused(
                    Refusal::Damaged,
                    format!(
                        "WAL file required for backup consistency not found for backup '{}': {name}",
                        info.id
                    ),
                )
            } else {
                Error::io("reading", &path, e)
            }
        })?;
        tar.append_file(&rel, &mut f).map_err(bad)?;
        xlogdb.push_str(line);
        xlogdb.push('\n');
    }
    add_bytes(&mut tar, "xlog.db", xlogdb.as_bytes()).map_err(bad)?;
    let mut writer = tar.into_inner().map_err(bad)?;
    writer.flush().map_err(bad)?;
    drop(writer);
    let f = File::open(tmp).map_err(|e| Error::io("reading", tmp, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", tmp, e))?;
    Ok(())
}

/// The backup id a tarball's name carries, after checking the name against Barman's
/// format for `server` and its checksum against its content.
fn id_of_tarball(server: &str, tarball: &Path) -> Result<BackupId> {
    let file = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let base = format!(
        "Tarball filename does not match the expected export format 'backup-export-SERVER_NAME-BACKUP_ID-TIMESTAMP-CHECKSUM.tar': '{file}'"
    );
    let Some(stem) = [".tar.gz", ".tar.bz2", ".tar.xz", ".tar"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
    else {
        return Err(refused(
            Refusal::InvalidRequest,
            format!("{base}. Expected a .tar, .tar.gz, .tar.bz2, or .tar.xz file extension."),
        ));
    };
    let prefix = format!("backup-export-{server}-");
    let Some(rest) = stem.strip_prefix(&prefix) else {
        return Err(refused(
            Refusal::InvalidRequest,
            format!("{base}. Expected filename to start with '{prefix}'."),
        ));
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let [id, stamp, sum] = parts[..] else {
        return Err(refused(
            Refusal::InvalidRequest,
            format!(
                "{base}. Expected filename to contain the backup ID, timestamp, and checksum after the server name."
            ),
        ));
    };
    let id: BackupId = id.parse().map_err(|_| {
        refused(
            Refusal::InvalidRequest,
            format!(
                "{base}. Expected BACKUP_ID to be in the format 'YYYYMMDDTHHMMSS', got '{id}'."
            ),
        )
    })?;
    if jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", stamp).is_err() {
        return Err(refused(
            Refusal::InvalidRequest,
            format!(
                "{base}. Expected TIMESTAMP to be in the format 'YYYYMMDDTHHMMSS', got '{stamp}'."
            ),
        ));
    }
    let actual = checksum8(tarball)?;
    if actual != sum {
        return Err(refused(
            Refusal::Damaged,
            format!(
                "Tarball checksum mismatch: filename contains '{sum}' but actual checksum is '{actual}'. The file may have been modified or corrupted."
            ),
        ));
    }
    Ok(id)
}

/// What [`import_backup`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Imported {
    /// The backup now in the catalogue.
    pub id: BackupId,
    /// WAL files archived (the others were there already, identical).
    pub wals_archived: usize,
    /// A warning (another PostgreSQL version in the tarball's identity).
    pub warnings: Vec<String>,
}

/// `import-backup SERVER TARBALL` (see the module docs).
///
/// # Errors
///
/// A name not in the export format or a checksum mismatch; another cluster; a backup
/// already in the catalogue; a tarball missing a part, with a member outside its
/// root, a link other than a tablespace's, or a WAL file the archive refuses; the
/// locks held; I/O errors. Nothing is left in the catalogue then.
pub fn import_backup(
    global: &GlobalConfig,
    server: &ServerConfig,
    tarball: &Path,
) -> Result<Imported> {
    let name = server.name();
    if !tarball.is_file() {
        return Err(refused(
            Refusal::InvalidRequest,
            format!("Tarball file '{}' does not exist", tarball.display()),
        ));
    }
    let repo = BackupRepo::for_server(global, server);
    let local = identity_text(&repo, name)?;
    let id = id_of_tarball(name, tarball)?;
    let Some(backup_lock) = repo.try_lock_backup()? else {
        return Err(refused(
            Refusal::Busy,
            format!("Another backup operation is already running on server '{name}'"),
        ));
    };
    let Some(id_lock) = repo.try_lock_backup_id(id)? else {
        return Err(refused(
            Refusal::Busy,
            format!("Another backup operation is already running on server '{name}'"),
        ));
    };
    let (catalogue, _) = repo.load_readable()?;
    if catalogue.get(id).is_some() || repo.backup_path(id).exists() {
        return Err(refused(
            Refusal::Conflict,
            format!("Backup '{id}' already exists in the catalog for server '{name}'"),
        ));
    }
    let mut warnings = Vec::new();
    // The cluster first: identity.json leads the tarball.
    let theirs = crate::tarball::read_member(tarball, &Gpg::default(), "identity.json")?
        .ok_or_else(|| {
            refused(
                Refusal::Damaged,
                "Exported tarball does not contain identity.json".to_owned(),
            )
        })?;
    let theirs: serde_json::Value = serde_json::from_slice(&theirs).map_err(|e| {
        refused(
            Refusal::Damaged,
            format!("Failed to parse identity.json from tarball: {e}"),
        )
    })?;
    if theirs["systemid"] != local["systemid"] {
        return Err(refused(
            Refusal::Conflict,
            format!(
                "Server identity mismatch: exported backup has systemid '{}' but target server has systemid '{}'",
                theirs["systemid"].as_str().unwrap_or_default(),
                local["systemid"].as_str().unwrap_or_default()
            ),
        ));
    }
    if theirs["version"] != local["version"] {
        warnings.push(format!(
            "PostgreSQL version mismatch: exported backup has version '{}' but target server has version '{}'",
            theirs["version"].as_str().unwrap_or_default(),
            local["version"].as_str().unwrap_or_default()
        ));
    }
    let base = repo.backup_path(id);
    let parent = base.parent().unwrap_or(Path::new("/")).to_owned();
    crate::fsutil::create_private_dir(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(crate::leftovers::IMPORT_STAGING)
        .suffix(&crate::leftovers::staging_suffix())
        .tempdir_in(&parent)
        .map_err(|e| Error::io("creating a staging directory in", &parent, e))?;
    let stage = staging.path();
    crate::tarball::unpack(tarball, &Gpg::default(), stage, &|_| false, true)?;
    for (part, dir) in [
        ("backup", true),
        ("backup.info", false),
        ("wals", true),
        ("xlog.db", false),
    ] {
        let p = stage.join(part);
        let ok = if dir { p.is_dir() } else { p.is_file() };
        if !ok {
            return Err(refused(
                Refusal::Damaged,
                format!(
                    "Exported tarball does not contain a '{part}{}' {}",
                    if dir { "/" } else { "" },
                    if dir { "directory" } else { "file" }
                ),
            ));
        }
    }
    let info_path = stage.join("backup.info");
    let text = fs::read_to_string(&info_path).map_err(|e| Error::io("reading", &info_path, e))?;
    let info = BackupInfo::parse(&format!("{id}-backup.info"), &text)?;
    if info.is_incremental() {
        return Err(refused(
            Refusal::BackupState,
            format!(
                "Cannot import backup {id} into server {name}: it is an incremental backup. Only full backups are eligible for importing."
            ),
        ));
    }
    if info.status != BackupStatus::Done {
        return Err(refused(
            Refusal::BackupState,
            format!(
                "Cannot import backup {id}: its status is {}, expected DONE",
                info.status
            ),
        ));
    }
    // Links: only the tablespaces' under backup/data/pg_tblspc, remade to point here.
    let tablespace_links: Vec<PathBuf> = info
        .tablespaces
        .iter()
        .flatten()
        .map(|t| stage.join("backup/data/pg_tblspc").join(t.oid.to_string()))
        .collect();
    let mut stack = vec![stage.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))? {
            let e = e.map_err(|e| Error::io("listing", &dir, e))?;
            let ft = e
                .file_type()
                .map_err(|err| Error::io("reading", e.path(), err))?;
            let p = e.path();
            if ft.is_symlink() {
                if tablespace_links.contains(&p) {
                    fs::remove_file(&p).map_err(|err| Error::io("removing", &p, err))?;
                    continue;
                }
                return Err(refused(
                    Refusal::Damaged,
                    format!(
                        "Tarball contains unsafe member type: '{}'",
                        p.strip_prefix(stage).unwrap_or(&p).display()
                    ),
                ));
            }
            if ft.is_dir() {
                stack.push(p);
            }
        }
    }
    // Every WAL file xlog.db lists is in wals/.
    let xlogdb = fs::read_to_string(stage.join("xlog.db"))
        .map_err(|e| Error::io("reading", stage.join("xlog.db"), e))?;
    let mut staged_wals = Vec::new();
    for (n, line) in xlogdb.lines().enumerate() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        let wal: WalFileName = first.parse().map_err(|_| {
            refused(
                Refusal::Damaged,
                format!(
                    "xlog.db of the tarball, line {}: '{first}' is not a WAL file name",
                    n + 1
                ),
            )
        })?;
        let p = stage
            .join("wals")
            .join(wal.hash_dir())
            .join(wal.to_string());
        if !p.is_file() {
            return Err(refused(
                Refusal::Damaged,
                format!("Exported tarball lists WAL file {wal} in xlog.db but does not contain it"),
            ));
        }
        staged_wals.push(p);
    }
    // Every WAL file from the backup's first to its last is there: a backup without
    // them cannot be made consistent.
    if let (Some(begin), Some(end)) = (info.begin_wal, info.end_wal) {
        for seg in SegmentName::range(begin, end, info.xlog_segment_size) {
            let p = stage
                .join("wals")
                .join(seg.hash_dir())
                .join(seg.to_string());
            if !staged_wals.contains(&p) {
                return Err(refused(
                    Refusal::Damaged,
                    format!(
                        "Exported tarball lacks WAL file {seg}, required for backup {id} to be consistent"
                    ),
                ));
            }
        }
    } else {
        return Err(refused(
            Refusal::Damaged,
            format!("backup {id}: its backup.info names no begin_wal or end_wal"),
        ));
    }
    // The tarball's own metadata inside backup/ (an older layout's backup.info) is not
    // this catalogue's: it is written below, from the checked one.
    let _ = fs::remove_file(stage.join("backup/backup.info"));
    // Into place: STARTED metadata first (a crash leaves a backup the catalogue shows,
    // FAILED once this process is gone, which delete removes), the files, the links,
    // the WAL, then DONE.
    let mut started = info.clone();
    started.status = BackupStatus::Started;
    repo.write_info(&started)?;
    for t in info.tablespaces.iter().flatten() {
        let link = stage.join("backup/data/pg_tblspc").join(t.oid.to_string());
        if stage.join("backup/data/pg_tblspc").is_dir() {
            std::os::unix::fs::symlink(repo.tablespace_dir(id, t.oid), &link)
                .map_err(|e| Error::io("linking", &link, e))?;
        }
    }
    let undo = |e: Error| {
        let _ = fs::remove_dir_all(&base);
        let _ = repo.remove_meta(id);
        e
    };
    fs::rename(stage.join("backup"), &base).map_err(|e| undo(Error::io("moving", &base, e)))?;
    crate::fsutil::sync_dir(&parent).map_err(|e| undo(e.into()))?;
    let archive = WalArchive::for_server(global, server);
    let mut archived = 0;
    for p in &staged_wals {
        match archive.put_wal(p) {
            Ok(crate::archive::PutOutcome::Archived(_)) => archived += 1,
            Ok(_) => {}
            Err(e) => return Err(undo(e)),
        }
    }
    repo.write_info(&info).map_err(undo)?;
    drop(id_lock);
    if let Err(e) = ServerBackups::for_server(global, server)
        .keep(&id.to_string(), KeepAction::Keep(KeepTarget::Standalone))
    {
        warnings.push(format!(
            "Failed to apply KEEP:STANDALONE annotation to backup '{id}' on server '{name}': {e}. The imported backup may be subject to retention policy deletion."
        ));
    }
    drop(backup_lock);
    Ok(Imported {
        id,
        wals_archived: archived,
        warnings,
    })
}
