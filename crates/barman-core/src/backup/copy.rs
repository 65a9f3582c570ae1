//! The copy of a concurrent backup (`rsync` over SSH, `local-rsync`): `pg_backup_start`, the files, `pg_backup_stop`, checksums and the manifest.

#[allow(clippy::wildcard_imports)]
use super::*;

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

/// Runs `SELECT 1` on the backup's session every `every` until it fails; returns that
/// error (the connection is lost).
pub(super) async fn keepalive(pg: &PgServer, every: Duration) -> Error {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = pg.ping().await {
            return e;
        }
    }
}

/// The manifest records of a tree rsync wrote: sizes, times and CRC-32C read back from
/// the copy (a file hard-linked to `link` reuses the checksum `known` has for it).
pub(super) fn checksum_tree(
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

pub(super) fn add_stats(total: &mut CopyStats, s: &CopyStats) {
    total.files_copied += s.files_copied;
    total.files_linked += s.files_linked;
    total.bytes_copied += s.bytes_copied;
    total.bytes_reused += s.bytes_reused;
    total.files_vanished += s.files_vanished;
}

/// The CRC-32C checksums a previous backup's manifest records, by path.
pub(super) fn known_checksums(data_dir: &Path) -> HashMap<PathBuf, u32> {
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

impl Job<'_> {
    pub(super) async fn concurrent(
        &mut self,
        pg: &PgServer,
        fast: bool,
        how: &Copy<'_>,
    ) -> Result<()> {
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
        self.repo.write_info_async(&self.info).await?;

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
                crate::blocking(
                    "verifying the pages of",
                    self.repo.data_dir(id),
                    move || verify_pages(&repo, id, &list, lsn),
                )
                .await?
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
    pub(super) async fn copy_files(
        &mut self,
        how: &Copy<'_>,
        pgdata: &str,
    ) -> Result<Vec<CopiedFile>> {
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
                        let mut rsync = Rsync::new()
                            .workers(how.jobs)
                            .start_batches(how.start_batch.0, how.start_batch.1)
                            .compress(how.compress);
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
                                crate::blocking("checksumming", dest.clone(), move || {
                                    checksum_tree(&d, l.as_deref(), &k, &x)
                                })
                                .await
                                .and_then(|r| r)
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
}
