//! Step 1, before anything is written: the backup, the plan, the destination and tablespace checks ([`prepare`]), shared by a restore and a preview.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a data directory holds (PostgreSQL 9.6 to 18): a staging WAL directory inside
/// the destination must not be one of them.
pub(super) const PGDATA_ENTRIES: [&str; 33] = [
    "base",
    "global",
    "pg_wal",
    "pg_xlog",
    "pg_xact",
    "pg_clog",
    "pg_multixact",
    "pg_subtrans",
    "pg_twophase",
    "pg_stat",
    "pg_stat_tmp",
    "pg_replslot",
    "pg_logical",
    "pg_commit_ts",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_tblspc",
    "pg_summaries",
    "pg_log",
    "log",
    "PG_VERSION",
    "postgresql.conf",
    "postgresql.auto.conf",
    "pg_hba.conf",
    "pg_ident.conf",
    "backup_label",
    "tablespace_map",
    "backup_manifest",
    "recovery.signal",
    "standby.signal",
    "postmaster.opts",
];

/// Whether [`prepare`] decides for a restore or only for a [`preview`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Archive what waits first, and lock the backup.
    Restore,
    /// Lock the backup, write nothing into the repository (a sandbox: a restore test
    /// leaves the repository byte-identical).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Sandbox,
    /// Write nothing.
    Preview,
}

/// Everything decided before the first write.
pub(super) struct Prepared {
    /// The shared lock on the backup, held until the restore is over (none for a
    /// preview).
    pub(super) _lock: Option<crate::repo::RepoLock>,
    /// The readable catalogue the backup was chosen from.
    pub(super) catalogue: Catalogue,
    pub(super) catalogue_warnings: Vec<String>,
    pub(super) backup: BackupInfo,
    pub(super) plan: RecoveryPlan,
    pub(super) pitr: bool,
    pub(super) get_wal: bool,
    pub(super) delta: bool,
    pub(super) jobs: usize,
    pub(super) ssh: Option<SshCommand>,
    /// Compress what rsync sends to the remote host.
    pub(super) network_compression: bool,
    /// How rsync jobs start: at most so many, a batch every so often.
    pub(super) start_batch: (usize, std::time::Duration),
    pub(super) tablespaces: Vec<RestoredTablespace>,
    pub(super) wal_dest: PathBuf,
    pub(super) target_line: Option<String>,
}

pub(super) async fn prepare(
    repo: &BackupRepo,
    archive: &WalArchive,
    server: &ServerConfig,
    options: &RecoverOptions,
    mode: Mode,
) -> Result<Prepared> {
    let name = server.name();
    let dest = &options.destination;
    let dest_text = dest.to_string_lossy();
    if dest_text.contains(':') {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            format!(
                "the destination directory {dest_text} contains ':', which rsync would read as a host"
            ),
        ));
    }
    if !dest.is_absolute() {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            format!("the destination directory {dest_text} is not an absolute path"),
        ));
    }
    let recovery_options = &server.options().recovery_options;
    let in_options = |o: &str| recovery_options.iter().any(|v| v == o);
    let get_wal = options.get_wal.unwrap_or_else(|| in_options("get-wal"));
    let delta = options
        .delta_restore
        .unwrap_or_else(|| in_options("delta-restore"));
    let jobs = options
        .jobs
        .or_else(|| usize::try_from(server.options().parallel_jobs).ok())
        .unwrap_or(1)
        .max(1);

    // As Barman does, archive what waits in incoming/ and streaming/ first. Best
    // effort: another archive-wal may be running, and a file it cannot archive is
    // cron's to report.
    if mode == Mode::Restore {
        archive.archive_wal_best_effort().await;
    }
    // A damaged entry does not stop the restore of another backup (in a disaster,
    // every restorable backup counts), but it is named, and never chosen.
    // Reading the catalogue, then xlog.db (a million lines on a busy server) and the
    // history files: off the runtime.
    let repo_copy = repo.clone();
    let (catalogue, unreadable) =
        crate::blocking("reading the catalogue in", repo.meta_dir(), move || {
            repo_copy.load_readable()
        })
        .await??;
    if let Some(u) = unreadable.iter().find(|u| u.name == options.backup_id) {
        return Err(Error::UnreadableBackup {
            server: name.to_owned(),
            path: u.path.clone(),
            reason: u.reason.clone(),
        });
    }
    let archive_copy = archive.clone();
    let (wals, histories) = crate::blocking("reading", archive.xlogdb_path(), move || {
        let mut wals = archive_copy.wal_index()?;
        add_streaming_wal(&archive_copy, &mut wals)?;
        let histories = load_histories(&archive_copy, &wals)?;
        Ok::<_, Error>((wals, histories))
    })
    .await??;
    let catalogue_warnings: Vec<String> = unreadable
        .iter()
        .map(|u| {
            format!(
                "backup catalogue entry {} cannot be read ({}): it was not considered",
                u.path.display(),
                u.reason
            )
        })
        .collect();
    let request = RecoveryRequest {
        target: options.target.clone(),
        timeline: options.target_tli,
        include_partial: true,
    };
    let id = if options.backup_id == "auto" {
        choose_backup(&catalogue, &request, &options.local_tz)?
    } else {
        catalogue.resolve(&options.backup_id)?.id
    };
    let being_deleted = || {
        Error::refused(
            Refusal::BackupState,
            format!(
                "backup {id} of server {name} is being deleted ({} exists): it cannot be restored",
                repo.delete_marker_path(id).display()
            ),
        )
    };
    if repo.repository().is_deleting(id).await? {
        return Err(being_deleted());
    }
    restorable(&catalogue, id, name)?;
    // A shared lock on the backup for the whole restore: a delete (or retention) of it
    // waits or is refused meanwhile. Read again under the lock: a delete may have
    // started or finished in between.
    let lock = match mode {
        Mode::Preview => None,
        Mode::Restore | Mode::Sandbox => Some(repo.lock_backup_shared(id).await?.ok_or_else(|| {
            Error::refused(Refusal::Busy, format!(
                "backup {id} of server {name} is locked by another process (a delete or a check): try again later"
            ))
        })?),
    };
    if repo.repository().is_deleting(id).await? {
        return Err(being_deleted());
    }
    let mut fresh = Catalogue::new(name);
    fresh.insert(repo.read_info_async(id).await?);
    let backup = restorable(&fresh, id, name)?;
    let pitr = request.is_pitr();
    if options.target_action.is_some() && !pitr {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            "a target action needs a point-in-time recovery (a target or --target-tli)",
        ));
    }
    if let Some(a) = options.target_action
        && a != TargetAction::Pause
        && backup.version.is_some_and(|v| v < 90500)
    {
        return Err(Error::refused(
            Refusal::Unsupported,
            format!(
                "illegal target action '{a}' for this version of PostgreSQL (9.5 or later needed)"
            ),
        ));
    }
    if backup.version.is_some_and(|v| v < 100000)
        && matches!(options.target, Some(RecoveryTarget::Lsn(_)))
    {
        return Err(Error::refused(
            Refusal::Unsupported,
            "a target LSN needs PostgreSQL 10 or later".to_owned(),
        ));
    }
    let plan = plan_recovery(
        &catalogue,
        id,
        &request,
        &histories,
        &wals,
        &options.local_tz,
    )?;
    let data = repo.data_dir(id);
    if !data.is_dir() {
        return Err(Error::refused(
            Refusal::Damaged,
            format!(
                "backup {id} of server {name} has no data directory {}",
                data.display()
            ),
        ));
    }

    // Tablespaces: every relocation must name one of the backup's.
    let known = backup.tablespaces.clone().unwrap_or_default();
    for (ts, _) in &options.tablespaces {
        if !known.iter().any(|t| &t.name == ts) {
            let names: Vec<&str> = known.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "tablespace {ts:?} is not in backup {id} of server {name} (it has: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    let mut tablespaces = Vec::new();
    for t in &known {
        let relocated = options
            .tablespaces
            .iter()
            .rev()
            .find(|(n, _)| n == &t.name)
            .map(|(_, l)| l.clone())
            .or_else(|| {
                options
                    .tablespaces_under
                    .as_ref()
                    .map(|d| d.join(t.oid.to_string()))
            });
        let location = relocated
            .clone()
            .unwrap_or_else(|| PathBuf::from(&t.location));
        if location.to_string_lossy().contains(':') || !location.is_absolute() {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "tablespace {} location {} must be an absolute path without ':'",
                    t.name,
                    location.display()
                ),
            ));
        }
        let src = repo.tablespace_dir(id, t.oid);
        let in_tar = tarball::backup_tars(&data)
            .is_ok_and(|tars| tars.iter().any(|tar| tar.oid == Some(t.oid)));
        if !src.is_dir() && !in_tar {
            return Err(Error::refused(
                Refusal::Damaged,
                format!(
                    "backup {id} of server {name} lacks the copy of tablespace {} ({})",
                    t.name,
                    src.display()
                ),
            ));
        }
        tablespaces.push(RestoredTablespace {
            name: t.name.clone(),
            oid: t.oid,
            location,
            relocated: relocated.is_some(),
        });
    }

    // A delta restore rewrites what it finds (rsync --delete): into another directory
    // than the backed-up cluster's, a tablespace left at its original location would
    // be that cluster's live tablespace.
    if delta
        && backup.pgdata.as_deref().map(Path::new) != Some(dest.as_path())
        && let Some(t) = tablespaces.iter().find(|t| !t.relocated)
    {
        return Err(Error::refused(
            Refusal::Conflict,
            format!(
                "--delta-restore into {} would rewrite tablespace {} at its original location {}, which belongs to the cluster of {}: relocate it with --tablespace {}:LOCATION",
                dest.display(),
                t.name,
                t.location.display(),
                backup.pgdata.as_deref().unwrap_or("the backed-up server"),
                t.name
            ),
        ));
    }
    let ssh = options
        .remote_ssh_command
        .as_deref()
        .map(SshCommand::new)
        .transpose()?;
    if !delta {
        let mut dirs = vec![dest.clone()];
        dirs.extend(tablespaces.iter().map(|t| t.location.clone()));
        for dir in dirs {
            if !dir_is_empty(ssh.as_ref(), &dir).await? {
                return Err(Error::refused(
                    Refusal::Conflict,
                    format!(
                        "the destination directory {} is not empty (use --delta-restore to restore over it)",
                        dir.display()
                    ),
                ));
            }
        }
    }

    let wal_dest = if pitr && !options.standby_mode {
        options
            .staging_wal_directory
            .clone()
            .unwrap_or_else(|| dest.join("barman_wal"))
    } else {
        dest.join(wal_dir_name(&backup))
    };
    if wal_dest.to_string_lossy().contains(':') || !wal_dest.is_absolute() {
        return Err(Error::refused(
            Refusal::InvalidRequest,
            format!(
                "the staging WAL directory {} must be an absolute path without ':'",
                wal_dest.display()
            ),
        ));
    }
    // The staging WAL directory is removed by `recovery_end_command` once recovery
    // ends: it must hold nothing but what this restore puts there.
    let staged_wal = pitr && !options.standby_mode && !get_wal;
    if staged_wal {
        if !dir_is_empty(ssh.as_ref(), &wal_dest).await? {
            return Err(Error::refused(
                Refusal::Conflict,
                format!(
                    "the staging WAL directory {} is not empty: recovery removes it when it ends, so it must be new or empty",
                    wal_dest.display()
                ),
            ));
        }
        if wal_dest == *dest || dest.starts_with(&wal_dest) {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                format!(
                    "the staging WAL directory {} must not be the destination directory or contain it",
                    wal_dest.display()
                ),
            ));
        }
        // Removed whole at the end of recovery: never a part of the restored cluster
        // (`pg_wal`, `base`, ...) nor a tablespace.
        if let Ok(rel) = wal_dest.strip_prefix(dest)
            && let Some(first) = rel.components().next()
        {
            let first = first.as_os_str().to_string_lossy();
            if PGDATA_ENTRIES.contains(&first.as_ref()) || data.join(first.as_ref()).exists() {
                return Err(Error::refused(
                    Refusal::InvalidRequest,
                    format!(
                        "the staging WAL directory {} is part of the restored data directory ({first}): recovery removes it when it ends",
                        wal_dest.display()
                    ),
                ));
            }
        }
        for t in &tablespaces {
            if wal_dest.starts_with(&t.location) || t.location.starts_with(&wal_dest) {
                return Err(Error::refused(
                    Refusal::InvalidRequest,
                    format!(
                        "the staging WAL directory {} overlaps tablespace {} ({}): recovery removes it when it ends",
                        wal_dest.display(),
                        t.name,
                        t.location.display()
                    ),
                ));
            }
        }
    }
    let target_line = describe_target(options, &plan, &options.local_tz)?;
    Ok(Prepared {
        _lock: lock,
        catalogue,
        catalogue_warnings,
        backup,
        plan,
        pitr,
        get_wal,
        delta,
        jobs,
        network_compression: options
            .network_compression
            .unwrap_or(server.options().network_compression),
        start_batch: server.jobs_start_batch(
            options.jobs_start_batch_size,
            options.jobs_start_batch_period,
        ),
        ssh,
        tablespaces,
        wal_dest,
        target_line,
    })
}

pub(super) fn restorable(catalogue: &Catalogue, id: BackupId, server: &str) -> Result<BackupInfo> {
    let backup = catalogue.get(id).cloned().ok_or_else(|| {
        Error::Catalog(barman_catalog::Error::UnknownBackup {
            wanted: id.to_string(),
            server: server.to_owned(),
        })
    })?;
    if !backup.status.is_copy_done() {
        return Err(Error::refused(
            Refusal::BackupState,
            format!(
                "backup {id} of server {server} is {}: only DONE or WAITING_FOR_WALS backups can be restored",
                backup.status
            ),
        ));
    }
    Ok(backup)
}

pub(super) fn wal_dir_name(backup: &BackupInfo) -> &'static str {
    if backup.version.is_some_and(|v| v < 100000) {
        "pg_xlog"
    } else {
        "pg_wal"
    }
}

/// Adds what `streaming/` holds beyond the archive to the index: the `.partial`
/// segments (the newest is the one `receive-wal` is writing), or, when there is none,
/// the newest complete segment, which `archive-wal` keeps for pg_receivewal. So the
/// plan can end with the newest streamed WAL. Other complete segments there are ones
/// archive-wal could not take (it validates them): not used. Delivery finds them in
/// `streaming/` ([`WalArchive::wal_locations`], with `partial`).
pub(super) fn add_streaming_wal(archive: &WalArchive, wals: &mut WalIndex) -> Result<()> {
    let dir = archive.streaming_dir();
    let mut partials = Vec::new();
    let mut newest_complete: Option<(WalFileName, u64)> = None;
    for entry in crate::fsutil::list_dir(dir)? {
        let Ok(name) = entry.file_name().to_string_lossy().parse::<WalFileName>() else {
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        match name {
            WalFileName::Partial(_) => partials.push((name, size)),
            WalFileName::Segment(_) if newest_complete.as_ref().is_none_or(|(n, _)| name > *n) => {
                newest_complete = Some((name, size));
            }
            _ => {}
        }
    }
    if partials.is_empty() {
        partials.extend(newest_complete);
    }
    for (name, size) in partials {
        if !wals.contains(&name) {
            wals.push(XlogDbEntry {
                name,
                size,
                time: 0.0,
                compression: None,
                encryption: None,
            });
        }
    }
    Ok(())
}

pub(super) fn load_histories(
    archive: &WalArchive,
    wals: &WalIndex,
) -> Result<BTreeMap<TimelineId, TimelineHistory>> {
    let mut out = BTreeMap::new();
    for tli in wals.history_files() {
        let path = archive.path_of(&WalFileName::History(tli));
        let file = fs::File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
        let mut text = String::new();
        let wal_err = |source| Error::Wal {
            path: path.clone(),
            source,
        };
        let repository = archive.repository();
        repository.gpg().with_plain(file, &path, |plain| {
            let custom = repository.custom_compression();
            crate::compression::with_decoded(custom, plain, &path, true, |_, decoded| {
                decoded
                    .read_to_string(&mut text)
                    .map_err(|e| Error::io("reading", &path, e))
            })
        })?;
        out.insert(tli, TimelineHistory::parse(tli, &text).map_err(wal_err)?);
    }
    Ok(out)
}

/// Whether `dir` is missing or empty, on this host or over `ssh`.
async fn dir_is_empty(ssh: Option<&SshCommand>, dir: &Path) -> Result<bool> {
    match ssh {
        None => local_dir_is_empty(dir),
        Some(s) => remote_dir_is_empty(s, dir).await,
    }
}

fn local_dir_is_empty(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(Error::io("listing", dir, e)),
    }
}

async fn remote_dir_is_empty(ssh: &SshCommand, dir: &Path) -> Result<bool> {
    let path = dir.to_string_lossy().into_owned();
    // 0: missing or empty; 4: not empty; 3: not a directory.
    let script =
        r#"[ -e "$1" ] || exit 0; [ -d "$1" ] || exit 3; [ -z "$(ls -A -- "$1")" ] || exit 4"#;
    let out = ssh
        .output(&["sh", "-c", script, "sh", path.as_str()], None)
        .await?;
    match out.code {
        Some(0) => Ok(true),
        Some(3 | 4) => Ok(false),
        code => Err(Error::Remote {
            what: format!(
                "checking {path} on {}: {}",
                ssh.destination(),
                out.stderr.trim()
            ),
            code: code.unwrap_or(255),
        }),
    }
}
