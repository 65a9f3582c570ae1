//! The `postgres` backup method: pg_basebackup, its secrets kept off the command line, its tar or plain output.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A connection string for a program's command line, its secrets moved to private
/// files (0600, removed when dropped): the password to a password file (`passfile`),
/// the TLS key's passphrase to a connection service file (`service`, found through
/// `PGSERVICEFILE`).
pub(super) struct Unsecret {
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
pub(super) fn without_secrets(conninfo: &str) -> Result<Unsecret> {
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

impl Job<'_> {
    pub(super) async fn postgres(&mut self, options: &BackupOptions, fast: bool) -> Result<()> {
        let id = self.info.id;
        let data_dir = self.repo.data_dir(id);
        fsutil::create_private_dir(&self.repo.backup_path(id))?;
        let begin = Timestamp::now();
        self.info.mode = Some("postgres".to_owned());
        self.info.begin_time = Some(py_time(begin));
        self.info.status = BackupStatus::Started;
        self.repo.write_info_async(&self.info).await?;
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
                let gone = dir.clone();
                match crate::blocking("removing", &dir, move || fs::remove_dir_all(gone)).await? {
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
            let bytes = tarball::read_member(&base.path, &Gpg::default(), "backup_label")?
                .ok_or_else(|| {
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
        let gpg = Gpg::for_server(self.server);
        if gpg.encrypts() && tar_format {
            self.phase = "encrypting the backup";
            self.info.encryption = gpg.name().map(str::to_owned);
            let dir = data_dir.clone();
            crate::blocking("encrypting", &data_dir, move || encrypt_tars(&gpg, &dir)).await??;
        }
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

/// Encrypts every tar of a `postgres`-method backup in `dir` (`base.tar.gz`,
/// `<oid>.tar.gz`, ...) into `<name>.gpg` and removes the clear one, as Barman's
/// `_encrypt_tar_backup`. Each encrypted file is durable before its original goes.
fn encrypt_tars(gpg: &Gpg, dir: &Path) -> Result<()> {
    for tar in tarball::backup_tars(dir)? {
        let Some(name) = tar.path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let after_tar = name.split_once(".tar").map_or("", |(_, rest)| rest);
        // `.tar` or `.tar.<one extension>`: an encrypted one (`.tar.gz.gpg`) is done.
        if after_tar.matches('.').count() > 1 || after_tar.ends_with(".gpg") {
            continue;
        }
        let encrypted = dir.join(format!("{name}.gpg"));
        gpg.encrypt_file(&tar.path, &encrypted)?;
        fsutil::sync_dir(dir)?;
        fsutil::remove_file(&tar.path)?;
    }
    Ok(())
}
