//! Step 2, the copy: the data directory and tablespaces, by the local copier or rsync, tar backups unpacked, durably.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A private temporary directory on this (the Barman) host, removed when dropped: in
/// `--local-staging-path`/`--staging-path`, else `local_staging_path`, else
/// `staging_path` (Barman's staging places on its own host), else in the system
/// temporary directory. Compressed backups unpack there before a remote or
/// delta restore, and the files of a remote restore are prepared there.
pub(super) fn staging_dir(
    server: &ServerConfig,
    options: &RecoverOptions,
    prefix: &str,
) -> Result<tempfile::TempDir> {
    // Barman 3.19's staging_path, on the Barman host: the only place barman-rs stages.
    let o = server.options();
    let base = options
        .local_staging_path
        .clone()
        .or_else(|| o.local_staging_path.as_ref().map(PathBuf::from))
        .or_else(|| o.staging_path.as_ref().map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .map_err(|e| Error::io("creating a staging directory in", base, e))
}

pub(super) async fn execute(
    global: &GlobalConfig,
    server: &ServerConfig,
    repo: &BackupRepo,
    archive: &WalArchive,
    options: &RecoverOptions,
    p: Prepared,
) -> Result<RecoverReport> {
    let id = p.backup.id;
    let dest = options.destination.clone();
    let data = repo.data_dir(id);
    let wal_dir = wal_dir_name(&p.backup);
    // The small files are written in place locally, staged then sent when remote: the
    // staging directory is made first, so that a staging place that cannot be used
    // fails the restore before anything is written.
    let staging = match &p.ssh {
        Some(_) => Some(staging_dir(server, options, "barman-recover.")?),
        None => None,
    };

    // 1. The data directory and the tablespaces.
    let copied = copy_data(server, repo, options, &p).await?;

    // 2. The small files.
    let overlay = match &staging {
        Some(s) => s.path().join("dest"),
        None => dest.clone(),
    };
    let mut synced = Synced::default();
    create_dir(&overlay)?;
    synced.dir_and_parent(&overlay);
    // A delta restore may find pg_wal as a link (to another server's WAL): it is
    // replaced by a real directory, never written through.
    real_dir(&overlay.join(wal_dir))?;
    create_dir(&overlay.join(wal_dir).join("archive_status"))?;
    synced.dir_and_parent(&overlay.join(wal_dir).join("archive_status"));

    // 3. The WAL, 4. the tablespace links, the manifest and the configuration.
    let delivered = deliver_planned_wal(
        archive,
        options,
        &p,
        staging.as_ref(),
        &overlay,
        copied.bwlimit,
        &mut synced,
    )
    .await?;
    link_tablespaces(&overlay, &p.tablespaces, &mut synced)?;
    // backup_manifest.<id> and .barman-recover.info.
    let manifest = data.join("backup_manifest");
    if manifest.is_file() {
        // Hundreds of MB for a large cluster: off the runtime.
        let to = overlay.join(format!("backup_manifest.{id}"));
        crate::blocking("copying", manifest.clone(), move || {
            let bytes = fs::read(&manifest).map_err(|e| Error::io("reading", &manifest, e))?;
            Ok::<_, Error>(write_persist(&to, &bytes)?)
        })
        .await??;
    }
    write_persist(
        &overlay.join(".barman-recover.info"),
        p.backup.to_string().as_bytes(),
    )?;

    let settings = write_settings(global, server, options, &p, &copied.conf_source, &overlay)?;
    make_durable(&p, &dest, staging.as_ref(), &overlay, synced).await?;

    let option_warnings = option_warnings(options, &p);
    Ok(RecoverReport {
        server: server.name().to_owned(),
        backup_id: id,
        destination: dest,
        remote_host: p.ssh.as_ref().map(|s| s.destination().to_owned()),
        pitr: p.pitr,
        target_timeline: p.plan.target_timeline,
        target_description: p.target_line,
        target_time_assumed_local: matches!(
            &options.target,
            Some(RecoveryTarget::Time(t)) if t.offset_seconds().is_none()
        ),
        get_wal: p.get_wal,
        wal_destination: (!p.get_wal).then(|| p.wal_dest.clone()),
        wal_files: delivered,
        recovery_configuration_file: settings.recovery_configuration_file,
        signal_file: settings.signal_file,
        tablespaces: p.tablespaces,
        changes: settings.changes,
        warnings: settings.warnings,
        missing_files: settings.missing_files,
        bytes_copied: copied.bytes,
        hook_warnings: Vec::new(),
        catalogue_warnings: p.catalogue_warnings,
        copy_warnings: copied.warnings,
        option_warnings,
    })
}

/// Barman's warnings for options given that have no effect on this restore.
fn option_warnings(options: &RecoverOptions, p: &Prepared) -> Vec<String> {
    let mut out = Vec::new();
    if options.restore_command.is_some() && !p.get_wal {
        out.push(
            "The provided custom restore command was ignored as it only works with get-wal mode."
                .to_owned(),
        );
    }
    if options.partial_wal {
        if p.get_wal {
            out.push(
                "The --partial-wal option was ignored as it only works with --no-get-wal."
                    .to_owned(),
            );
        } else if matches!(options.target, Some(RecoveryTarget::Immediate)) {
            out.push(
                "The --partial-wal option was ignored as it has no effect with --target-immediate."
                    .to_owned(),
            );
        }
    }
    if options.network_compression == Some(true) && p.ssh.is_none() {
        out.push(
            "--network-compression has no effect on a local restore (nothing crosses a network)"
                .to_owned(),
        );
    }
    if options.recovery_option_port.is_some() && !(p.get_wal && p.ssh.is_some()) {
        out.push(
            "--recovery-option-port was ignored: it only goes into barman-wal-restore's command, in get-wal mode of a remote restore"
                .to_owned(),
        );
    }
    out
}

/// What the copy of step 1 left.
pub(super) struct CopiedData {
    /// Bytes written by the local copier and the unpacking of tars.
    pub(super) bytes: u64,
    /// Copies that failed and were tried again.
    pub(super) warnings: Vec<String>,
    /// Where the backup's configuration files are: its data directory, or where its
    /// base.tar was unpacked.
    pub(super) conf_source: PathBuf,
    /// The bandwidth limit of the copy, in KiB/s.
    pub(super) bwlimit: Option<u64>,
    /// The local directory a tar backup was unpacked into before being sent, removed
    /// when dropped.
    _unpacked: Option<tempfile::TempDir>,
}

/// Step 1: the data directory and the tablespaces, copied (or unpacked from a tar
/// backup) into the destination and the tablespace locations, each tree tried again
/// as `--retry-times` says.
async fn copy_data(
    server: &ServerConfig,
    repo: &BackupRepo,
    options: &RecoverOptions,
    p: &Prepared,
) -> Result<CopiedData> {
    let id = p.backup.id;
    let dest = options.destination.clone();
    let data = repo.data_dir(id);
    let wal_dir = wal_dir_name(&p.backup);

    // 1. The data directory and the tablespaces. pg_wal is left out whole: in the
    // backup it may be a link to the original server's WAL directory (`initdb -X`),
    // and a restored pg_wal is always a real directory, made below.
    let mut excludes: Vec<String> = vec![
        wal_dir.to_owned(),
        "tablespace_map".into(),
        "postmaster.pid".into(),
        "postmaster.opts".into(),
        "backup_manifest".into(),
        "recovery.signal".into(),
        "standby.signal".into(),
    ];
    excludes.extend(p.tablespaces.iter().map(|t| format!("pg_tblspc/{}", t.oid)));
    // A staging WAL directory inside the destination gets only the planned WAL, never
    // what the backup may hold under that name.
    if let Ok(rel) = p.wal_dest.strip_prefix(&dest)
        && !rel.as_os_str().is_empty()
        && p.pitr
        && !options.standby_mode
    {
        excludes.push(rel.to_string_lossy().into_owned());
    }
    let mut bytes_copied = 0;
    let mut copy_warnings: Vec<String> = Vec::new();
    let mut copies = vec![(data.clone(), dest.clone(), excludes)];
    for t in &p.tablespaces {
        copies.push((
            repo.tablespace_dir(id, t.oid),
            t.location.clone(),
            Vec::new(),
        ));
    }
    let bwlimit = options.bwlimit_kib.or_else(|| {
        server
            .options()
            .bandwidth_limit
            .and_then(|b| u64::try_from(b).ok())
            .filter(|b| *b > 0)
    });
    // A tar-format (compressed) backup is unpacked: straight into place for a local
    // restore into an empty directory, else into a local staging directory that the
    // copy below then sends.
    let tars = tarball::backup_tars(&data)?;
    let gpg = crate::encryption::Gpg::for_server(server);
    let mut _unpacked = None;
    // Where the configuration files of the backup are: in its data directory, or, for
    // a tar backup, where base.tar was unpacked (their originals are in the tar).
    let mut conf_source = data.clone();
    if tars.iter().any(|t| t.oid.is_none()) {
        let direct = p.ssh.is_none() && !p.delta;
        let root = if direct {
            None
        } else {
            Some(staging_dir(server, options, "barman-recover-unpack.")?)
        };
        conf_source = match &root {
            None => dest.clone(),
            Some(r) => r.path().join("data"),
        };
        let mut staged = Vec::new();
        for (src, final_dst, excl) in copies.drain(..) {
            let oid = if src == data {
                None
            } else {
                p.tablespaces
                    .iter()
                    .find(|t| repo.tablespace_dir(id, t.oid) == src)
                    .map(|t| t.oid)
            };
            let Some(tar) = tars.iter().find(|t| t.oid == oid) else {
                return Err(Error::refused(
                    Refusal::Damaged,
                    format!(
                        "backup {id}: no tar file for tablespace {} in {}",
                        oid.map_or_else(String::new, |o| o.to_string()),
                        data.display()
                    ),
                ));
            };
            let target = match &root {
                None => final_dst.clone(),
                Some(r) => r
                    .path()
                    .join(oid.map_or_else(|| "data".to_owned(), |o| o.to_string())),
            };
            let skipped = excl.clone();
            let skip = move |rel: &str| {
                skipped.iter().any(|e| match e.strip_suffix("/*") {
                    Some(dir) => rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/')),
                    None => rel
                        .strip_prefix(e.as_str())
                        .is_some_and(|r| r.is_empty() || r.starts_with('/')),
                })
            };
            // Unpacking reads and writes the whole backup: off the runtime.
            let (tar_path, into) = (tar.path.clone(), target.clone());
            let gpg = gpg.clone();
            let done = crate::blocking("unpacking", tar_path.clone(), move || {
                tarball::unpack(&tar_path, &gpg, &into, &skip, direct)
            })
            .await??;
            bytes_copied += done.bytes;
            if root.is_some() {
                staged.push((target, final_dst, excl));
            }
        }
        copies = staged;
        _unpacked = root;
    }
    if let Some(ssh) = &p.ssh {
        let mut dirs: Vec<String> = vec![parent_of(&dest)];
        if !p.get_wal {
            dirs.push(parent_of(&p.wal_dest));
        }
        dirs.extend(p.tablespaces.iter().map(|t| parent_of(&t.location)));
        let mut argv = vec!["mkdir".to_owned(), "-p".into(), "--".into()];
        argv.extend(dirs);
        ssh.run(&argv).await?;
    }
    let retry = crate::retry::Retry::of(server, options.retry_times, options.retry_sleep);
    for (src, dst, excludes) in copies {
        // `tablespace_bandwidth_limit`: a tablespace's own limit, if it has one.
        let bwlimit = p
            .tablespaces
            .iter()
            .find(|t| t.location == dst)
            .map_or(bwlimit, |t| server.tablespace_bwlimit(&t.name, bwlimit));
        let mut attempt = 0;
        loop {
            let copied = copy_tree(p, &src, &dst, &excludes, bwlimit).await;
            match copied {
                Ok(bytes) => {
                    bytes_copied += bytes;
                    break;
                }
                // `--retry-times`: tried again after `--retry-sleep` seconds, over
                // what the failed attempt left.
                Err(e) if attempt < retry.times => {
                    attempt += 1;
                    copy_warnings.push(format!(
                        "Failure copying {} (attempt {attempt}): {}; retried after {} seconds",
                        src.display(),
                        crate::error::first_line(&e),
                        retry.sleep.as_secs()
                    ));
                    tokio::time::sleep(retry.sleep).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    Ok(CopiedData {
        bytes: bytes_copied,
        warnings: copy_warnings,
        conf_source,
        bwlimit,
        _unpacked,
    })
}

/// Step 3: the WAL files of the plan, decompressed into the WAL directory of the
/// restored cluster (or the staging WAL directory), then sent when remote. Returns
/// what was delivered (nothing in get-wal mode).
async fn deliver_planned_wal(
    archive: &WalArchive,
    options: &RecoverOptions,
    p: &Prepared,
    staging: Option<&tempfile::TempDir>,
    overlay: &Path,
    bwlimit: Option<u64>,
    synced: &mut Synced,
) -> Result<Vec<WalFileName>> {
    if p.get_wal {
        return Ok(Vec::new());
    }
    let local_wal_dir = match staging {
        Some(s) => s.path().join("wal"),
        None => p.wal_dest.clone(),
    };
    if local_wal_dir.starts_with(overlay) {
        // Inside the destination (a delta restore may find a link there): a real
        // directory, never followed.
        real_dir(&local_wal_dir)?;
    } else {
        create_dir(&local_wal_dir)?;
    }
    synced.dir_and_parent(&local_wal_dir);
    let done = !p.pitr || options.standby_mode;
    deliver_wal(
        archive.clone(),
        p.plan.wal_files.clone(),
        local_wal_dir.clone(),
        p.jobs,
        done,
    )
    .await?;
    create_dir(&local_wal_dir.join("archive_status"))?;
    synced.dir_and_parent(&local_wal_dir.join("archive_status"));
    if let Some(ssh) = &p.ssh {
        let mut rsync = Rsync::new().compress(p.network_compression);
        if let Some(k) = bwlimit {
            rsync = rsync.bwlimit_kib(k);
        }
        rsync
            .copy_tree(
                &RsyncPath::Local(local_wal_dir),
                &RsyncPath::Remote(ssh.clone(), p.wal_dest.to_string_lossy().into_owned()),
            )
            .await?;
    }
    Ok(p.plan.wal_files.clone())
}

/// The `pg_tblspc/<oid>` links to where each tablespace was restored.
///
/// `tablespace_map` was left out of the copy: PostgreSQL remakes the links from it
/// when it starts, and it names the original locations, so the restored cluster would
/// write into the original tablespaces (as Barman, the links alone say where each
/// tablespace is).
fn link_tablespaces(
    overlay: &Path,
    tablespaces: &[RestoredTablespace],
    synced: &mut Synced,
) -> Result<()> {
    if tablespaces.is_empty() {
        return Ok(());
    }
    let links = overlay.join("pg_tblspc");
    real_dir(&links)?;
    for t in tablespaces {
        let link = links.join(t.oid.to_string());
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &link, e)),
        }
        std::os::unix::fs::symlink(&t.location, &link)
            .map_err(|e| Error::io("linking", &link, e))?;
    }
    synced.dir(&links);
    Ok(())
}

/// What step 4 wrote into the configuration.
struct WrittenSettings {
    signal_file: Option<String>,
    recovery_configuration_file: Option<String>,
    changes: Vec<ConfigLine>,
    warnings: Vec<ConfigLine>,
    missing_files: Vec<String>,
}

/// Step 4: the signal file and the recovery settings, the configuration files with
/// `archive_command` and earlier targets commented out (originals kept as `.origin`).
fn write_settings(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &RecoverOptions,
    p: &Prepared,
    conf_source: &Path,
    overlay: &Path,
) -> Result<WrittenSettings> {
    let version = p.backup.version.unwrap_or(0);
    let mut lines = Vec::new();
    let needs_conf = p.pitr || p.get_wal || options.standby_mode;
    if needs_conf {
        lines = recovery_lines(global, server, options, p)?;
    }
    let mut signal_file = None;
    let mut recovery_configuration_file = None;
    let mut conf_files: Vec<String> = Vec::new();
    let mut missing_files = Vec::new();
    for f in CONFIG_FILES
        .iter()
        .chain(["pg_hba.conf", "pg_ident.conf"].iter())
    {
        if conf_source.join(f).is_file() {
            if CONFIG_FILES.contains(f) {
                conf_files.push((*f).to_owned());
            }
        } else {
            missing_files.push((*f).to_owned());
        }
    }
    if version >= 120000 {
        let name = options
            .recovery_conf_filename
            .clone()
            .unwrap_or_else(|| "postgresql.auto.conf".to_owned());
        if !conf_files.contains(&name) {
            conf_files.push(name.clone());
        }
        recovery_configuration_file = Some(name);
        if needs_conf {
            let signal = if options.standby_mode {
                "standby.signal"
            } else {
                "recovery.signal"
            };
            write_persist(&overlay.join(signal), b"")?;
            signal_file = Some(signal.to_owned());
        }
    } else if needs_conf {
        if options.standby_mode {
            lines.push("standby_mode = 'on'".to_owned());
        }
        let mut text = lines.join("\n");
        text.push('\n');
        write_persist(&overlay.join("recovery.conf"), text.as_bytes())?;
        recovery_configuration_file = Some("recovery.conf".to_owned());
        lines.clear();
    }
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for f in &conf_files {
        let original = match fs::read(conf_source.join(f)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("reading", conf_source.join(f), e)),
        };
        let append = (recovery_configuration_file.as_deref() == Some(f.as_str()) && needs_conf)
            .then_some(lines.as_slice());
        let text = String::from_utf8_lossy(&original);
        let (mangled, mut changed) = mangle(f, &text, append);
        changes.append(&mut changed);
        warnings.extend(dangerous(f, &text));
        write_persist(&overlay.join(format!("{f}.origin")), &original)?;
        write_persist(&overlay.join(f), mangled.as_bytes())?;
        copy_mode(&conf_source.join(f), &overlay.join(f));
    }
    Ok(WrittenSettings {
        signal_file,
        recovery_configuration_file,
        changes,
        warnings,
        missing_files,
    })
}

/// The end: a remote restore's staged files sent and the remote file systems flushed;
/// a local one's directories synced (and, after rsync, its file systems flushed).
async fn make_durable(
    p: &Prepared,
    dest: &Path,
    staging: Option<&tempfile::TempDir>,
    overlay: &Path,
    mut synced: Synced,
) -> Result<()> {
    if let (Some(ssh), Some(_)) = (&p.ssh, staging) {
        Rsync::new()
            .copy_tree(
                &RsyncPath::Local(overlay.to_owned()),
                &RsyncPath::Remote(ssh.clone(), dest.to_string_lossy().into_owned()),
            )
            .await?;
        // Durable before anyone starts PostgreSQL on it: the file systems holding the
        // destination, the WAL and the tablespaces are flushed (`sync -f`, or a plain
        // `sync` where coreutils lacks it).
        let mut argv: Vec<String> = ["sh", "-c", SYNC_FILE_SYSTEMS, "sh"]
            .map(str::to_owned)
            .to_vec();
        argv.push(dest.to_string_lossy().into_owned());
        if !p.get_wal {
            argv.push(p.wal_dest.to_string_lossy().into_owned());
        }
        argv.extend(
            p.tablespaces
                .iter()
                .map(|t| t.location.to_string_lossy().into_owned()),
        );
        ssh.run(&argv).await?;
    } else {
        // Every file above was written durably (temp file, fsync, rename); the
        // directories that gained entries are synced now, so that none of it (above
        // all `archive_command = false`) can be lost to a power cut.
        synced.dir(overlay);
        synced.sync_all()?;
        if p.delta {
            // rsync does not fsync what it writes: the file systems of the destination
            // and the tablespaces are flushed.
            let mut paths = vec![dest.to_owned()];
            paths.extend(p.tablespaces.iter().map(|t| t.location.clone()));
            let status = tokio::process::Command::new("sh")
                .args(["-c", SYNC_FILE_SYSTEMS, "sh"])
                .args(&paths)
                .status()
                .await
                .map_err(|e| Error::io("running sync for", dest, e))?;
            if !status.success() {
                return Err(Error::Program {
                    program: "sync".into(),
                    status: status.to_string(),
                    detail: format!("flushing {}", dest.display()),
                });
            }
        }
    }
    Ok(())
}

/// A shell script that flushes the file systems holding its arguments (`sync -f`), or
/// all of them where coreutils lacks `-f`: run as `sh -c SCRIPT sh PATH...`.
pub(super) const SYNC_FILE_SYSTEMS: &str = r#"sync -f -- "$@" 2>/dev/null || sync"#;

/// Copies the tree `src` into `dst` as the restore needs: the parallel local copier
/// (fsynced) into an empty local destination, else rsync (over ssh when remote, with
/// checksums and deletions for a delta restore). Returns the bytes the local copier
/// copied (0 for rsync).
pub(super) async fn copy_tree(
    p: &Prepared,
    src: &Path,
    dst: &Path,
    excludes: &[String],
    bwlimit: Option<u64>,
) -> Result<u64> {
    if p.ssh.is_none() && !p.delta {
        // Durable before PostgreSQL is started on it, as pgBackRest's restore.
        let mut copier = LocalCopier::new().workers(p.jobs).fsync(true);
        if let Some(limit) = bwlimit.and_then(barman_transport::RateLimiter::from_kib_per_second) {
            copier = copier.rate_limit(limit);
        }
        for e in excludes {
            copier = copier.exclude(e.clone());
        }
        return Ok(copier.copy_tree(src, dst).await?.bytes_copied);
    }
    let mut rsync = Rsync::new()
        .workers(p.jobs)
        .start_batches(p.start_batch.0, p.start_batch.1);
    for e in excludes {
        rsync = rsync.exclude(format!("/{e}"));
    }
    if let Some(k) = bwlimit {
        rsync = rsync.bwlimit_kib(k);
    }
    if p.ssh.is_some() && p.network_compression {
        rsync = rsync.compress(true);
    }
    if p.delta {
        rsync = rsync
            .arg("--checksum")
            .arg("--delete")
            .arg("--delete-excluded");
    }
    let to = match &p.ssh {
        Some(s) => RsyncPath::Remote(s.clone(), dst.to_string_lossy().into_owned()),
        None => RsyncPath::Local(dst.to_owned()),
    };
    rsync
        .copy_tree(&RsyncPath::Local(src.to_owned()), &to)
        .await?;
    Ok(0)
}

pub(super) fn parent_of(p: &Path) -> String {
    p.parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .into_owned()
}

pub(super) fn create_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("creating", dir, e))
}

/// Makes `dir` a real directory: a link there (a delta restore over a data directory
/// whose pg_wal pointed elsewhere) is removed, never followed.
pub(super) fn real_dir(dir: &Path) -> Result<()> {
    if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(dir).map_err(|e| Error::io("removing the link", dir, e))?;
    }
    create_dir(dir)
}

/// The directories of a local restore that gained entries, synced once at the end.
#[derive(Default)]
pub(super) struct Synced {
    pub(super) dirs: Vec<PathBuf>,
}

impl Synced {
    fn dir(&mut self, d: &Path) {
        self.dirs.push(d.to_owned());
    }

    /// `d` and its parent (where `d`'s own entry is).
    fn dir_and_parent(&mut self, d: &Path) {
        self.dir(d);
        if let Some(up) = d.parent() {
            self.dir(up);
        }
    }

    fn sync_all(mut self) -> Result<()> {
        self.dirs.sort();
        self.dirs.dedup();
        for d in &self.dirs {
            match crate::fsutil::sync_dir(d) {
                Ok(()) => {}
                // A parent we may not read (the destination's, owned by someone else):
                // its entry for the destination was made by whoever made it.
                Err(e) if e.source.kind() == io::ErrorKind::PermissionDenied => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

pub(super) fn copy_mode(from: &Path, to: &Path) {
    if let Ok(m) = fs::metadata(from) {
        let _ = fs::set_permissions(to, m.permissions());
    }
}
