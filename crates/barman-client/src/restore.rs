//! `barman-wal-restore`: WAL files fetched from `barman get-wal` over SSH, prefetched
//! into a spool.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use barman_wal::{Codec, WalFileName, WalSegSize};

use crate::host::{BarmanHost, client_ssh, preferred_ciphers};
use crate::spool::{
    NO_TAR_MARKER, NO_TAR_MEMORY, is_older_than, is_stale, segment_sound, spool_file_trusted,
};
use crate::{Error, Result};

/// Where the default spool of `barman-wal-restore --parallel` lives (Barman's).
pub const DEFAULT_SPOOL_DIR: &str = "/var/tmp/walrestore";

/// `barman-wal-restore`: fetches WAL files from `barman get-wal` on the Barman host
/// through the system `ssh`, for PostgreSQL's `restore_command`.
///
/// A file is always written to a temporary file in the destination's directory and
/// renamed into place, so PostgreSQL never sees a partial WAL file. Whatever arrives
/// compressed (`--gzip`, `--bzip2`, `--keep-compression`) is decompressed on the fly,
/// the codec being read from its magic bytes: the destination always holds the plain
/// WAL file.
///
/// With [`parallel`](WalRestoreClient::parallel) `N > 0`, following segments are
/// prefetched into the [spool directory](WalRestoreClient::spool_dir), and a later call
/// for a spooled file is served by a rename from the spool, without any SSH
/// connection (a spooled segment that does not look whole, or predates the last boot,
/// is fetched again). Barman's way ([`background`](WalRestoreClient::background)
/// off): `get-wal --peek N` lists the following segments, the requested one is fetched
/// into place and the next `N - 1` into the spool, in parallel, within the call. The
/// barman-rs way (background on): the call returns as soon as its own file is in place
/// and a detached process keeps up to `N` segments ahead, fetched in batches over one
/// SSH channel (`get-wal --tar`, a barman-rs extension; one `get-wal` per file from a
/// Barman host without it), all calls sharing one SSH connection.
#[derive(Clone, Debug)]
pub struct WalRestoreClient {
    /// The Barman host and how to reach it.
    pub remote: BarmanHost,
    /// Also fetch `.partial` files (`get-wal --partial`).
    pub partial: bool,
    /// Transfer compression asked of the remote side: [`Codec::Gzip`] or
    /// [`Codec::Bzip2`] (`get-wal --gzip/--bzip2`); decompressed here.
    pub compression: Option<Codec>,
    /// Transfer files as stored in the archive (`get-wal --keep-compression`);
    /// decompressed here.
    pub keep_compression: bool,
    /// How many files to peek and fetch in parallel, the requested one included
    /// (0: no prefetch).
    pub parallel: usize,
    /// Where prefetched files wait for their turn (default [`DEFAULT_SPOOL_DIR`]).
    pub spool_dir: std::path::PathBuf,
    /// With `parallel > 0`: [`restore`](WalRestoreClient::restore) fetches only the
    /// requested file and leaves the prefetch to [`prefetch_after`](
    /// WalRestoreClient::prefetch_after), which the caller runs in the background, so
    /// PostgreSQL replays while the next files arrive (barman-rs; Barman prefetches
    /// within the call).
    pub background: bool,
    /// How the background prefetch asks a barman-rs host to compress its batch stream
    /// (`get-wal --tar=CODEC`); [`Codec::None`] (the default) does not. [`Codec::Lz4`]
    /// pays where the network is slower than the replay (a 1 Gbit/s link carries about
    /// 110 MiB/s of WAL, less than PostgreSQL replays): the Barman host spends a core's
    /// fraction compressing, and SSH has a fraction of the bytes to carry. On a fast
    /// link, or both ends on one machine, it costs more CPU than it saves.
    pub prefetch_compression: Codec,
    /// The system identifier of the cluster being restored (barman-wal-restore reads
    /// it from `global/pg_control` in the data directory PostgreSQL runs it in): a
    /// spooled segment of another cluster is never handed over. `None` checks
    /// everything else.
    pub system_id: Option<u64>,
}

/// How [`WalRestoreClient::restore`] got the file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restored {
    /// Moved out of the spool directory, where an earlier call had prefetched it.
    FromSpool,
    /// Fetched from the Barman host; `prefetched` lists the following files now
    /// waiting in the spool directory.
    Fetched {
        /// The files prefetched into the spool by this call.
        prefetched: Vec<String>,
    },
    /// Fetched from the Barman host without the spool, which cannot be used (another
    /// user's, a link...): recovery goes on, without prefetching.
    Unspooled {
        /// Why the spool was not used.
        reason: String,
    },
}

/// Why [`WalRestoreClient::restore`] failed.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RestoreError {
    /// What went wrong; [`Error::exit_code`] is the exit code to use (Barman's: 2 for
    /// local errors and SSH connection problems, 3 when the destination cannot be
    /// written, else the remote `get-wal` exit code, 1 when the file is not in the
    /// archive).
    pub error: Error,
    /// Whether the fetch from the Barman host failed (SSH or `get-wal`), the case where
    /// Barman's `--sleep` waits before exiting so PostgreSQL does not retry at once.
    pub fetch_failed: bool,
}

impl RestoreError {
    fn local(error: Error) -> RestoreError {
        RestoreError {
            error,
            fetch_failed: false,
        }
    }

    fn fetch(error: Error) -> RestoreError {
        RestoreError {
            error,
            fetch_failed: true,
        }
    }

    /// The exit code to report.
    pub fn exit_code(&self) -> i32 {
        self.error.exit_code()
    }
}

fn dest_error(dest: &Path, e: impl std::fmt::Display) -> Error {
    Error::Remote {
        what: format!(
            "Cannot open '{}' (WAL_DEST) for writing: {e}",
            dest.display()
        ),
        code: 3,
    }
}

impl WalRestoreClient {
    /// A client with Barman's defaults (`barman` user, `ssh`, remote `barman`, no
    /// compression, no prefetch, spool in [`DEFAULT_SPOOL_DIR`]).
    pub fn new(barman_host: &str, server: &str) -> WalRestoreClient {
        WalRestoreClient {
            remote: BarmanHost::new(barman_host, server),
            partial: false,
            compression: None,
            keep_compression: false,
            parallel: 0,
            spool_dir: DEFAULT_SPOOL_DIR.into(),
            background: false,
            prefetch_compression: Codec::None,
            system_id: None,
        }
    }

    /// Whether the spool directory exists and is this user's private directory (not a
    /// link, no access for others): what [`prepare_spool`](Self::prepare_spool) makes.
    fn spool_is_private(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&self.spool_dir).is_ok_and(|m| {
            m.is_dir()
                && m.mode() & 0o077 == 0
                && crate::spool::effective_uid().is_none_or(|uid| uid == m.uid())
        })
    }

    /// Makes the spool directory ready: created 0700 when missing; an existing one
    /// must be a real directory (not a link) of this user, and is made 0700. Files in
    /// it are handed to PostgreSQL and its SSH control socket lives there: in a shared
    /// temporary directory, anyone else's spool (or a link planted in its place) is
    /// refused.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] (code 2) naming the directory and what is wrong with it.
    pub fn prepare_spool(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let dir = &self.spool_dir;
        let refuse = |why: String| Error::Remote {
            what: format!("spool directory {}: {why}", dir.display()),
            code: 2,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| refuse(format!("cannot be created: {e}")))?;
        let m = std::fs::symlink_metadata(dir).map_err(|e| refuse(e.to_string()))?;
        if m.file_type().is_symlink() || !m.is_dir() {
            return Err(refuse(
                "not a directory (a link is never followed)".to_owned(),
            ));
        }
        let me = crate::spool::effective_uid();
        if me.is_some_and(|uid| uid != m.uid()) {
            return Err(refuse(format!(
                "belongs to uid {}, not to this user (uid {}): use --spool-dir with a directory of your own",
                m.uid(),
                me.unwrap_or_default()
            )));
        }
        if m.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| refuse(format!("cannot be made private: {e}")))?;
        }
        Ok(())
    }

    /// With `parallel > 0` and OpenSSH's `ssh`, every call shares one SSH connection
    /// (a control master in the spool directory that lives 60 s after its last use),
    /// so a fetch costs a channel, not a handshake. `None` when the socket path would
    /// be too long for a unix socket or another ssh program is used.
    fn shared_connection_options(&self) -> Option<String> {
        let program = self.remote.ssh.split_whitespace().next()?;
        if self.parallel == 0 || Path::new(program).file_name()? != "ssh" {
            return None;
        }
        // `%C` is 40 hex digits, ssh binds a name with 17 more characters first, and
        // sun_path holds 107 and a NUL.
        let dir = self.spool_dir.to_str()?;
        if dir.len() + "/.ssh-".len() + 40 + 17 > 107 {
            return None;
        }
        let path = shlex::try_quote(&format!("{dir}/.ssh-%C"))
            .ok()?
            .into_owned();
        Some(format!(
            " -o ControlMaster=auto -o ControlPath={path} -o ControlPersist=60"
        ))
    }

    /// Whether a shared connection's socket is in the spool directory.
    fn has_shared_connection(&self) -> bool {
        std::fs::read_dir(&self.spool_dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".ssh-"))
        })
    }

    /// Whether `get-wal` sends compressed data, to decompress here: with a transfer
    /// compression or `--keep-compression` (without them it sends the plain file,
    /// which is then copied as is, whatever its first bytes look like).
    fn decodes(&self) -> bool {
        self.keep_compression || self.compression.is_some_and(|c| c != Codec::None)
    }

    /// The remote `get-wal` command line: `barman [--config=C] get-wal [options]
    /// SERVER WAL...` for `request`.
    fn remote_args(&self, wal_name: &str, request: Request<'_>) -> Result<Vec<String>> {
        let mut args = vec![self.remote.barman_command.clone()];
        if let Some(c) = &self.remote.config {
            args.push(format!("--config={c}"));
        }
        args.push("get-wal".to_owned());
        match request {
            Request::Test => args.push("--test".to_owned()),
            Request::Peek(n) => args.extend(["--peek".to_owned(), n.to_string()]),
            Request::Tar(_) => {
                args.push(format!("--tar={}", self.prefetch_compression));
                if self.keep_compression {
                    args.push("--keep-compression".to_owned());
                }
            }
            Request::Fetch => {
                match self.compression {
                    None | Some(Codec::None) => {}
                    Some(Codec::Gzip) => args.push("--gzip".to_owned()),
                    Some(Codec::Bzip2) => args.push("--bzip2".to_owned()),
                    Some(other) => {
                        return Err(Error::Remote {
                            what: format!(
                                "get-wal cannot transfer {other}-compressed files (only gzip or bzip2)"
                            ),
                            code: 2,
                        });
                    }
                }
                if self.keep_compression {
                    args.push("--keep-compression".to_owned());
                }
                if self.partial {
                    args.push("--partial".to_owned());
                }
            }
        }
        args.extend([self.remote.server.clone(), wal_name.to_owned()]);
        if let Request::Tar(more) = request {
            args.extend(more.iter().cloned());
        }
        Ok(args)
    }

    fn command(&self, wal_name: &str, request: Request<'_>) -> Result<Command> {
        let ssh = match self.shared_connection_options() {
            // The control socket lives in the spool: only in one that is ours.
            Some(mut opts) if self.spool_is_private() => {
                let r = &self.remote;
                // The cipher only matters to the call that opens the shared connection.
                if !self.has_shared_connection()
                    && let Some(ciphers) = preferred_ciphers(&self.remote.ssh_command()?)
                {
                    opts.push_str(&format!(" -o Ciphers={ciphers}"));
                }
                client_ssh(&format!("{}{opts}", r.ssh), r.port, &r.user, &r.host)?
            }
            _ => self.remote.ssh_command()?,
        };
        let argv = ssh
            .argv(&self.remote_args(wal_name, request)?)
            .map_err(|e| Error::Remote {
                what: e.to_string(),
                code: 2,
            })?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null());
        Ok(cmd)
    }

    /// Barman's mapping of the `ssh` exit status: 255 (connection) → 2, any other
    /// failure → the remote command's code.
    fn status(&self, what: &str, status: std::process::ExitStatus) -> Result<()> {
        match status.code() {
            Some(0) => Ok(()),
            Some(255) => Err(Error::Remote {
                what: format!("Connection problem with ssh to {}", self.remote.host),
                code: 2,
            }),
            Some(c) => Err(Error::Remote {
                what: format!("Remote 'barman {what}' command has failed!"),
                code: c,
            }),
            None => Err(Error::Remote {
                what: "ssh was killed by a signal".to_owned(),
                code: 2,
            }),
        }
    }

    fn spawn(cmd: &mut Command) -> Result<std::process::Child> {
        cmd.spawn().map_err(|e| Error::Remote {
            what: format!("Error executing \"ssh\": {e}"),
            code: 2,
        })
    }

    /// `--test`: checks the connection and that the Barman host can serve WAL files of
    /// the server (`get-wal --test`); the remote messages go to this process's output.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] with the exit code to use (2 for an SSH connection problem).
    pub fn test(&self) -> Result<()> {
        let status = Self::spawn(&mut self.command("dummy_wal_name", Request::Test)?)?
            .wait()
            .map_err(|e| Error::io("waiting for", "ssh", e))?;
        self.status("get-wal --test", status)
    }

    /// `get-wal --peek count`: the names of up to `count` consecutive WAL files the
    /// archive holds, from `wal_name` on (lines that are not WAL file names are
    /// dropped).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] with the exit code to use.
    pub fn peek(&self, wal_name: &str, count: usize) -> Result<Vec<String>> {
        let out = self
            .command(wal_name, Request::Peek(count))?
            .stdout(Stdio::piped())
            .output()
            .map_err(|e| Error::Remote {
                what: format!("Error executing \"ssh\": {e}"),
                code: 2,
            })?;
        self.status("get-wal --peek", out.status)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| l.parse::<barman_wal::WalFileName>().is_ok())
            .map(str::to_owned)
            .collect())
    }

    /// One `get-wal` of `wal_name` into `dest`: streamed from `ssh` through a decoder
    /// (chosen by the magic bytes) into a temporary file in `dest`'s directory, renamed
    /// over `dest` only when the remote command succeeded.
    ///
    /// # Errors
    ///
    /// [`RestoreError`]: the destination cannot be written (code 3, local), SSH or
    /// `get-wal` failed (fetch), the data cannot be decoded (code 2, fetch).
    pub fn fetch(&self, wal_name: &str, dest: &Path) -> Result<(), RestoreError> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let prefix = format!(".{wal_name}.");
        let mut tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(dir)
            .map_err(|e| RestoreError::local(dest_error(dest, e)))?;
        let mut child = Self::spawn(
            self.command(wal_name, Request::Fetch)
                .map_err(RestoreError::local)?
                .stdout(Stdio::piped()),
        )
        .map_err(RestoreError::fetch)?;
        let copied = match child.stdout.take() {
            Some(stdout) => decode_into(stdout, tmp.as_file_mut(), wal_name, self.decodes()),
            None => Err(Error::Remote {
                what: "no stdout for ssh".to_owned(),
                code: 2,
            }),
        };
        // The pipe is closed by now: a remote side still writing gets EPIPE and ends.
        let status = child
            .wait()
            .map_err(|e| RestoreError::fetch(Error::io("waiting for", "ssh", e)))?;
        // A failed remote side explains a broken stream better than the stream does.
        self.status("get-wal", status)
            .map_err(RestoreError::fetch)?;
        copied.map_err(RestoreError::fetch)?;
        tmp.as_file_mut()
            .flush()
            .map_err(|e| RestoreError::local(Error::io("writing", tmp.path(), e)))?;
        tmp.persist(dest)
            .map_err(|e| RestoreError::local(dest_error(dest, e.error)))?;
        Ok(())
    }

    /// Moves `spool_dir/wal_name` to `dest` if it is there: `Ok(true)` when done. A
    /// rename when both are on the same file system, else a copy to a temporary file
    /// next to `dest`, renamed into place, and the spool file removed.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] (code 2) when the move fails, code 3 when `dest` cannot be
    /// written.
    pub fn take_from_spool(&self, wal_name: &str, dest: &Path) -> Result<bool> {
        let spooled = self.spool_dir.join(wal_name);
        if std::fs::symlink_metadata(&spooled).is_err() || self.prepare_spool().is_err() {
            // Nothing there, or a spool that cannot be trusted: nothing is taken from it.
            return Ok(false);
        }
        if !spool_file_trusted(&spooled, wal_name, self.system_id) {
            // Fetched again from the Barman host instead.
            let _ = std::fs::remove_file(&spooled);
            return Ok(false);
        }
        let failed = |e: &dyn std::fmt::Display| Error::Remote {
            what: format!(
                "Failure moving {} to {}: {e}",
                spooled.display(),
                dest.display()
            ),
            code: 2,
        };
        match std::fs::rename(&spooled, dest) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.kind() != io::ErrorKind::CrossesDevices => return Err(failed(&e)),
            Err(_) => {}
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".barman-wal-restore.")
            .tempfile_in(dir)
            .map_err(|e| dest_error(dest, e))?;
        let mut src = File::open(&spooled).map_err(|e| failed(&e))?;
        io::copy(&mut src, tmp.as_file_mut()).map_err(|e| failed(&e))?;
        tmp.persist(dest).map_err(|e| dest_error(dest, e.error))?;
        std::fs::remove_file(&spooled).map_err(|e| failed(&e))?;
        Ok(true)
    }

    /// Barman's `restore_command` step: restores `wal_name` (`%f`) to `dest` (`%p`).
    ///
    /// 1. `dest` must not be a directory (code 3).
    /// 2. If the spool directory holds `wal_name`, it is moved to `dest` and that is
    ///    all.
    /// 3. With `parallel > 0`: the spool directory is created if needed and
    ///    `get-wal --peek parallel` lists the files from `wal_name` on; those after it
    ///    that are not spooled yet are fetched into the spool in parallel, each through
    ///    a temporary file renamed into place (a failed one leaves nothing behind).
    ///    If the list does not start with `wal_name` (not archived, or only a
    ///    `.partial` file, which peek does not list) nothing is prefetched and the plain
    ///    fetch below reports what the archive says.
    /// 4. `wal_name` is fetched into `dest` (see [`fetch`](WalRestoreClient::fetch)),
    ///    in parallel with the prefetch, which is waited for before returning.
    ///
    /// # Errors
    ///
    /// [`RestoreError`], with the exit code to use and whether the fetch failed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use barman_client::{Restored, WalRestoreClient};
    ///
    /// let mut client = WalRestoreClient::new("backup.example.com", "pg");
    /// client.parallel = 4;
    /// match client.restore("000000010000000000000042", "pg_wal/RECOVERYXLOG".as_ref()) {
    ///     Ok(Restored::FromSpool) => println!("prefetched earlier"),
    ///     Ok(_) => println!("fetched"),
    ///     Err(e) => std::process::exit(e.exit_code()),
    /// }
    /// ```
    pub fn restore(&self, wal_name: &str, dest: &Path) -> Result<Restored, RestoreError> {
        // The name becomes a path in the spool: only real WAL file names.
        if let Err(e) = wal_name.parse::<barman_wal::WalFileName>() {
            return Err(RestoreError::local(Error::Remote {
                what: format!("invalid WAL name {wal_name:?}: {e}"),
                code: 3,
            }));
        }
        if dest.is_dir() {
            return Err(RestoreError::local(Error::Remote {
                what: format!("WAL_DEST cannot be a directory: {}", dest.display()),
                code: 3,
            }));
        }
        if self
            .take_from_spool(wal_name, dest)
            .map_err(RestoreError::local)?
        {
            return Ok(Restored::FromSpool);
        }
        if self.parallel > 0
            && let Err(e) = self.prepare_spool()
        {
            return self.fetch(wal_name, dest).map(|()| Restored::Unspooled {
                reason: e.to_string(),
            });
        }
        if self.parallel > 0 && self.background {
            // A prefetch already on its way is waited for rather than fetched twice.
            if self.wait_in_flight(wal_name)
                && self
                    .take_from_spool(wal_name, dest)
                    .map_err(RestoreError::local)?
            {
                return Ok(Restored::FromSpool);
            }
            return self.fetch(wal_name, dest).map(|()| Restored::Fetched {
                prefetched: Vec::new(),
            });
        }
        let mut additional = Vec::new();
        if self.parallel > 0 {
            let list = self
                .peek(wal_name, self.parallel)
                .map_err(RestoreError::fetch)?;
            if list.first().map(String::as_str) == Some(wal_name) {
                additional = list
                    .into_iter()
                    .skip(1)
                    .filter(|n| !self.spool_dir.join(n).exists())
                    .collect();
            }
        }
        let (main, prefetched) = std::thread::scope(|s| {
            let workers: Vec<_> = additional
                .iter()
                .map(|name| s.spawn(move || (name, self.prefetch(name))))
                .collect();
            let main = self.fetch(wal_name, dest);
            let prefetched: Vec<String> = workers
                .into_iter()
                .filter_map(|w| match w.join() {
                    Ok((name, true)) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            (main, prefetched)
        });
        main.map(|()| Restored::Fetched { prefetched })
    }

    /// Whether a fetch of `wal_name` into the spool is in flight (its temporary file
    /// is there); if so, waits up to 60 s for it to end. `true` when one was seen.
    fn wait_in_flight(&self, wal_name: &str) -> bool {
        let claim = self.spool_dir.join(format!(".{wal_name}.claim"));
        let in_flight = || claim.exists() && !is_stale(&claim);
        if !in_flight() {
            return false;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while in_flight() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    /// The background half of [`restore`](WalRestoreClient::restore) with
    /// [`background`](WalRestoreClient::background): keeps up to `parallel` of the
    /// segments that follow `wal_name` in the spool.
    ///
    /// With the segment size of the restored file (see [`segment_size_of`](crate::segment_size_of)), the
    /// following names are computed here; without it they are asked of
    /// `get-wal --peek`. The spool is refilled by batches: when at least half of the
    /// `parallel` files are missing, each missing file is claimed (a `.<name>.claim` file
    /// made with `O_EXCL`, so prefetches started by successive calls never fetch the
    /// same file twice) and all of them come over one SSH channel from a barman-rs
    /// `get-wal --tar` (each decompressed into a temporary file, checked, and renamed
    /// into place as soon as it is in, its claim then released). A Barman host that does
    /// not know `--tar` (Barman's own) is noted in the spool for ten minutes and the
    /// files are fetched one `get-wal` each, in parallel. A claim older than a minute is
    /// taken as left by a crash. Returns the names fetched.
    ///
    /// # Errors
    ///
    /// The spool cannot be used, or `get-wal --peek` fails; a file that cannot be
    /// fetched is skipped (PostgreSQL's request for it will say why).
    pub fn prefetch_after(
        &self,
        wal_name: &str,
        segment_size: Option<WalSegSize>,
    ) -> Result<Vec<String>> {
        if self.parallel == 0 {
            return Ok(Vec::new());
        }
        self.prepare_spool()?;
        let following = match (wal_name.parse(), segment_size) {
            (Ok(WalFileName::Segment(seg)), Some(size)) => following(seg, size, self.parallel),
            _ => {
                let list = self.peek(wal_name, self.parallel + 1)?;
                if list.first().map(String::as_str) != Some(wal_name) {
                    return Ok(Vec::new());
                }
                list.into_iter().skip(1).collect::<Vec<_>>()
            }
        };
        let missing: Vec<String> = following
            .into_iter()
            .filter(|n| !self.spool_dir.join(n).exists() && !self.claimed(n))
            .collect();
        if missing.is_empty() || missing.len() * 2 < self.parallel {
            // Enough is spooled or on its way: a later call fetches a bigger batch.
            return Ok(Vec::new());
        }
        Ok(self.fetch_claimed(self.claim_all(missing)))
    }

    /// On a miss: `wal_name` itself, whose claim the caller holds (see
    /// [`claim`](WalRestoreClient::claim)) and waits on, then the `parallel - 1`
    /// segments that follow it, over one channel, `wal_name` first. Its claim is
    /// released in any case, so the caller learns the outcome: the file in the spool, or
    /// not (not in the archive, or the fetch failed: the caller's own fetch says why).
    /// The segment size is not known yet: the followers are named for `segment_size`
    /// when given, else for 16 MiB segments (wrong names only past the end of a log
    /// with another size, which merely go unfetched). Returns the names fetched.
    ///
    /// # Errors
    ///
    /// The spool cannot be used.
    pub fn prefetch_claimed(
        &self,
        wal_name: &str,
        segment_size: Option<WalSegSize>,
    ) -> Result<Vec<String>> {
        let claim = self.spool_dir.join(format!(".{wal_name}.claim"));
        let mut claimed = vec![(wal_name.to_owned(), claim.clone())];
        if let Ok(WalFileName::Segment(seg)) = wal_name.parse() {
            let size = segment_size.unwrap_or(WalSegSize::DEFAULT);
            let missing = following(seg, size, self.parallel.saturating_sub(1))
                .into_iter()
                .filter(|n| !self.spool_dir.join(n).exists() && !self.claimed(n))
                .collect();
            claimed.extend(self.claim_all(missing));
        }
        let fetched = self.fetch_claimed(claimed);
        let _ = std::fs::remove_file(&claim);
        Ok(fetched)
    }

    /// Claims each of `names` that no one else has.
    fn claim_all(&self, names: Vec<String>) -> Vec<(String, std::path::PathBuf)> {
        names
            .into_iter()
            .filter_map(|n| {
                let claim = self.claim(&n)?;
                Some((n, claim))
            })
            .collect()
    }

    /// Fetches the `claimed` files into the spool (one `get-wal --tar`, or one
    /// `get-wal` each from a host without it) and releases their claims.
    fn fetch_claimed(&self, claimed: Vec<(String, std::path::PathBuf)>) -> Vec<String> {
        if claimed.is_empty() {
            return Vec::new();
        }
        let no_tar = self.spool_dir.join(NO_TAR_MARKER);
        let batched = if self.compression.is_some_and(|c| c != Codec::None)
            || (no_tar.exists() && !is_older_than(&no_tar, NO_TAR_MEMORY))
        {
            None
        } else {
            self.fetch_batch(&claimed).ok()
        };
        let fetched = match batched {
            Some(got) => got,
            None => std::thread::scope(|s| {
                let workers: Vec<_> = claimed
                    .iter()
                    .map(|(name, claim)| {
                        s.spawn(move || {
                            let ok = self.prefetch(name);
                            let _ = std::fs::remove_file(claim);
                            (name, ok)
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .filter_map(|w| match w.join() {
                        Ok((name, true)) => Some(name.clone()),
                        _ => None,
                    })
                    .collect()
            }),
        };
        for (_, claim) in &claimed {
            let _ = std::fs::remove_file(claim);
        }
        fetched
    }

    /// One `get-wal --tar` for the `claimed` files: each member is decompressed into a
    /// temporary file in the spool, flushed to disk and renamed into place, and its claim
    /// released. Returns the names received (files the archive lacks are simply not
    /// sent). `Err` when the Barman host does not support `--tar` (noted in the spool),
    /// so the caller fetches file by file; a stream that breaks off keeps what arrived
    /// whole.
    fn fetch_batch(&self, claimed: &[(String, std::path::PathBuf)]) -> Result<Vec<String>> {
        let names: Vec<String> = claimed.iter().map(|(n, _)| n.clone()).collect();
        let mut child = Self::spawn(
            self.command(&names[0], Request::Tar(&names[1..]))?
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // Drained aside, so a chatty remote side cannot block on a full pipe.
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut text);
            }
            text
        });
        let mut received = Vec::new();
        if let Some(stdout) = stdout {
            let _ = self.unpack_batch(stdout, claimed, &mut received);
        }
        let status = child
            .wait()
            .map_err(|e| Error::io("waiting for", "ssh", e))?;
        let errors = errors.join().unwrap_or_default();
        if received.is_empty() && status.code() == Some(2) && errors.contains("--tar") {
            // Barman's get-wal (argparse) or an older barman-rs (clap) refused the option.
            let _ = File::create(self.spool_dir.join(NO_TAR_MARKER));
            return Err(Error::Remote {
                what: "the Barman host does not support get-wal --tar".to_owned(),
                code: 2,
            });
        }
        Ok(received)
    }

    /// Reads the tar stream of `get-wal --tar` into the spool; the names received are
    /// pushed to `received` as they land.
    fn unpack_batch(
        &self,
        stream: impl Read,
        claimed: &[(String, std::path::PathBuf)],
        received: &mut Vec<String>,
    ) -> Result<()> {
        let stream = Codec::decoder_detect(io::BufReader::with_capacity(1 << 16, stream)).map_err(
            |source| Error::Wal {
                path: "get-wal --tar".into(),
                source,
            },
        )?;
        let mut archive = tar::Archive::new(stream);
        let entries = archive
            .entries()
            .map_err(|e| Error::io("receiving", "get-wal --tar", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::io("receiving", "get-wal --tar", e))?;
            let path = entry
                .path()
                .map_err(|e| Error::io("receiving", "get-wal --tar", e))?;
            // Only the names asked for: nothing else lands in the spool.
            let Some((name, claim)) = claimed
                .iter()
                .find(|(n, _)| path.as_os_str() == std::ffi::OsStr::new(n))
            else {
                return Err(Error::Remote {
                    what: format!("get-wal --tar sent {} unasked", path.display()),
                    code: 2,
                });
            };
            let dest = self.spool_dir.join(name);
            let mut tmp = tempfile::Builder::new()
                .prefix(&format!(".{name}."))
                .tempfile_in(&self.spool_dir)
                .map_err(|e| Error::io("creating a temporary file in", &self.spool_dir, e))?;
            decode_into(&mut entry, tmp.as_file_mut(), name, true)?;
            if !segment_sound(tmp.path(), name) {
                return Err(Error::Remote {
                    what: format!("get-wal --tar sent {name} damaged"),
                    code: 2,
                });
            }
            tmp.persist(&dest)
                .map_err(|e| Error::io("renaming into", &dest, e.error))?;
            let _ = std::fs::remove_file(claim);
            received.push(name.clone());
            // The claims still waiting are alive, however long the batch takes.
            let now = std::time::SystemTime::now();
            for (n, c) in claimed {
                if !received.contains(n) {
                    let _ = File::options()
                        .write(true)
                        .open(c)
                        .and_then(|f| f.set_modified(now));
                }
            }
        }
        Ok(())
    }

    /// Whether a prefetch holds a fresh claim on `wal_name`.
    pub fn claimed(&self, wal_name: &str) -> bool {
        let claim = self.spool_dir.join(format!(".{wal_name}.claim"));
        claim.exists() && !is_stale(&claim)
    }

    /// Claims the prefetch of `wal_name` into the spool (a `.<name>.claim` file made
    /// with `O_EXCL`): the claim file's path, `None` when another prefetch holds a fresh
    /// claim, the file arrived meanwhile, or the spool cannot be written. A
    /// [`restore`](WalRestoreClient::restore) of a claimed file waits for the claim to
    /// go (see [`prefetch_claimed`](WalRestoreClient::prefetch_claimed)).
    pub fn claim(&self, wal_name: &str) -> Option<std::path::PathBuf> {
        self.prepare_spool().ok()?;
        let path = self.spool_dir.join(format!(".{wal_name}.claim"));
        for _ in 0..2 {
            match File::options().write(true).create_new(true).open(&path) {
                Ok(_) => {
                    return (!self.spool_dir.join(wal_name).exists())
                        .then_some(path.clone())
                        .or_else(|| {
                            let _ = std::fs::remove_file(&path);
                            None
                        });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_stale(&path) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Fetches `wal_name` into the spool directory; `false` when it failed (the
    /// temporary file is removed; the remote side has said why on standard error).
    fn prefetch(&self, wal_name: &str) -> bool {
        self.fetch(wal_name, &self.spool_dir.join(wal_name)).is_ok()
    }
}

/// The names of the `count` segments after `seg`.
fn following(seg: barman_wal::SegmentName, size: WalSegSize, count: usize) -> Vec<String> {
    std::iter::successors(seg.next(size), |s| s.next(size))
        .take(count)
        .map(|s| s.to_string())
        .collect()
}

/// What a remote `get-wal` is asked for.
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    /// `--test`.
    Test,
    /// `--peek N`.
    Peek(usize),
    /// One file, with the client's transfer options.
    Fetch,
    /// barman-rs `--tar`, with these names after the first.
    Tar(&'a [String]),
}

/// Copies the output of `get-wal` into `out`; with `decode`, decompressed whatever its
/// codec (read from the magic bytes).
fn decode_into(input: impl Read, out: &mut File, wal_name: &str, decode: bool) -> Result<()> {
    let mut input = io::BufReader::with_capacity(1 << 16, input);
    let mut w = io::BufWriter::with_capacity(1 << 16, out);
    let received = if decode {
        let mut decoder = Codec::decoder_detect(input).map_err(|source| Error::Wal {
            path: wal_name.into(),
            source,
        })?;
        io::copy(&mut decoder, &mut w)
    } else {
        io::copy(&mut input, &mut w)
    };
    received.map_err(|e| Error::io("receiving", wal_name, e))?;
    w.flush().map_err(|e| Error::io("writing", wal_name, e))
}
