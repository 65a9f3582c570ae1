//! Checking a backup: page checksums of the copied relation files, and verify-backup against the manifest.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Page checksum verification of the relation files this backup copied (reused files
/// were verified by the backup they come from): one line per bad page, named with file
/// and block.
pub(super) fn verify_pages(
    repo: &BackupRepo,
    id: BackupId,
    files: &[CopiedFile],
    start: Lsn,
) -> Vec<String> {
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

/// The manifest entry of a file written from memory.
pub(super) fn record_for(path: &Path, rel: &Path, bytes: &[u8]) -> Result<CopiedFile> {
    let m = fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    let mut f = CopiedFile::new(rel.to_owned(), bytes.len() as u64);
    f.mtime = m.modified().map_err(|e| Error::io("reading", path, e))?;
    f.crc32c = crc32c::crc32c(bytes);
    Ok(f)
}

pub(super) fn manifest_of(
    files: &[CopiedFile],
    tli: TimelineId,
    start: Lsn,
    end: Lsn,
) -> BackupManifest {
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
pub(super) fn check_stream(
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
    let gpg = Gpg::for_server(server);
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
            tarball::for_each_file(&t.path, &gpg, |rel, reader| {
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

/// What [`generate_manifest`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GeneratedManifest {
    /// The `backup_manifest` written.
    pub path: PathBuf,
    /// Files listed.
    pub files: usize,
    /// Bytes read to checksum them.
    pub bytes: u64,
}

/// `generate-manifest`: writes a `backup_manifest` in PostgreSQL's format into the data
/// directory of a backup that has none (one taken by rsync with Barman, for example),
/// so that `verify-backup` and `pg_verifybackup` can check it: a SHA256 of every file,
/// as Barman's. Unlike Barman's, the manifest also lists the files of the backup's
/// tablespaces (as `pg_tblspc/<oid>/...`) and names the WAL range the backup needs (from
/// its `backup.info`), as PostgreSQL's own do. Files are read in 1 MiB chunks; the
/// manifest is written atomically, under the backup's lock (a delete waits).
///
/// # Errors
///
/// An unknown backup; one that is not DONE or WAITING_FOR_WALS, or is in tar format;
/// a manifest already there (Barman's "File ... already exists."); the backup's lock
/// held; I/O errors.
pub fn generate_manifest(
    global: &GlobalConfig,
    server: &ServerConfig,
    backup: &str,
) -> Result<GeneratedManifest> {
    use sha2::Digest;
    let repo = BackupRepo::for_server(global, server);
    let catalogue = repo.load()?;
    let info = catalogue.resolve(backup)?.clone();
    let id = info.id;
    let _lock = repo.try_lock_backup_id(id)?.ok_or_else(|| {
        Error::refused(
            Refusal::Busy,
            format!(
                "Another process is holding the lock for backup {id} of server {}",
                server.name()
            ),
        )
    })?;
    let info = repo.read_info(id)?;
    if !matches!(
        info.status,
        BackupStatus::Done | BackupStatus::WaitingForWals
    ) {
        return Err(Error::refused(
            Refusal::BackupState,
            format!(
                "backup {id} of server {} is {}: a manifest would vouch for an incomplete copy",
                server.name(),
                info.status
            ),
        ));
    }
    let data = repo.data_dir(id);
    let path = data.join("backup_manifest");
    if path.symlink_metadata().is_ok() {
        return Err(Error::refused(
            Refusal::Conflict,
            format!("File {} already exists.", path.display()),
        ));
    }
    if !tarball::backup_tars(&data)?.is_empty() {
        return Err(Error::refused(
            Refusal::Unsupported,
            format!(
                "backup {id} of server {} is in tar format: its manifest is the one pg_basebackup writes",
                server.name()
            ),
        ));
    }
    let (Some(tli), Some(start), Some(end)) = (info.timeline, info.begin_xlog, info.end_xlog)
    else {
        return Err(Error::refused(
            Refusal::Damaged,
            format!(
                "backup {id} of server {}: its backup.info has no timeline, begin_xlog or end_xlog",
                server.name()
            ),
        ));
    };
    // (where the files are, their manifest prefix)
    let mut roots = vec![(data.clone(), String::new())];
    for t in info.tablespaces.iter().flatten() {
        roots.push((
            repo.tablespace_dir(id, t.oid),
            format!("pg_tblspc/{}/", t.oid),
        ));
    }
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for (root, prefix) in roots {
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = root.join(&rel);
            let mut entries = fs::read_dir(&dir)
                .map_err(|e| Error::io("listing", &dir, e))?
                .collect::<io::Result<Vec<_>>>()
                .map_err(|e| Error::io("listing", &dir, e))?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let child = rel.join(e.file_name());
                let full = e.path();
                let ft = e
                    .file_type()
                    .map_err(|err| Error::io("reading", &full, err))?;
                let Some(name) = child.to_str() else {
                    return Err(Error::refused(
                        Refusal::Damaged,
                        format!("{}: a file name that is not UTF-8", full.display()),
                    ));
                };
                // Links (pg_tblspc's) and special files are not listed, as PostgreSQL.
                if ft.is_dir() {
                    stack.push(child);
                    continue;
                }
                if !ft.is_file() || (prefix.is_empty() && name == "backup_manifest") {
                    continue;
                }
                let mut file =
                    fs::File::open(&full).map_err(|err| Error::io("opening", &full, err))?;
                let meta = file
                    .metadata()
                    .map_err(|err| Error::io("reading", &full, err))?;
                let mut sha = sha2::Sha256::new();
                let mut size = 0u64;
                loop {
                    let got = file
                        .read(&mut buf)
                        .map_err(|err| Error::io("reading", &full, err))?;
                    if got == 0 {
                        break;
                    }
                    sha.update(&buf[..got]);
                    size += got as u64;
                }
                bytes += size;
                let modified = meta
                    .modified()
                    .map_err(|err| Error::io("reading", &full, err))?;
                files.push(ManifestFile {
                    path: format!("{prefix}{name}"),
                    size,
                    last_modified: Timestamp::try_from(modified).unwrap_or(Timestamp::UNIX_EPOCH),
                    checksum: ManifestChecksum::Sha("SHA256".into(), sha.finalize().to_vec()),
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = BackupManifest {
        system_identifier: None,
        files,
        wal_ranges: vec![WalRange {
            timeline: tli,
            start,
            end,
        }],
    };
    let count = manifest.files.len();
    fsutil::write_replace(&path, manifest.to_text().as_bytes())?;
    Ok(GeneratedManifest {
        path,
        files: count,
        bytes,
    })
}
