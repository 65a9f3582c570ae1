//! File-tree copies with the system `rsync`, locally or over `ssh`.

use std::path::PathBuf;
use std::process::Stdio;

use crate::ssh::command_failed;
use crate::{Error, Result, SshCommand, quote_for_shell};

/// One side of an rsync copy: a local directory, or a directory on a host reached by
/// [`SshCommand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsyncPath {
    /// A directory on this host.
    Local(PathBuf),
    /// A directory on a remote host.
    Remote(SshCommand, String),
}

impl RsyncPath {
    fn ssh(&self) -> Option<&SshCommand> {
        match self {
            RsyncPath::Local(_) => None,
            RsyncPath::Remote(s, _) => Some(s),
        }
    }

    /// The argument naming this directory's *content* (with a trailing `/`).
    fn arg(&self) -> String {
        let with_slash = |p: String| if p.ends_with('/') { p } else { p + "/" };
        match self {
            RsyncPath::Local(p) => with_slash(p.display().to_string()),
            RsyncPath::Remote(s, p) => format!("{}:{}", s.destination(), with_slash(p.clone())),
        }
    }
}

/// Copies a directory tree with the system `rsync`, the way Barman's `rsync` backup
/// method and remote recovery do: hard links to a previous copy for unchanged files
/// (`--link-dest`), a bandwidth limit, network compression, exclusions, and several
/// `rsync` processes in parallel over a partitioned file list.
///
/// `rsync`'s exit code 24 ("some files vanished before they could be transferred") is
/// not an error: files of a running PostgreSQL come and go during a backup, and WAL
/// replay repairs them.
///
/// # Examples
///
/// ```no_run
/// use barman_transport::{Rsync, RsyncPath, SshCommand};
///
/// # #[allow(dead_code)]
/// # async fn f() -> Result<(), barman_transport::Error> {
/// let pg = SshCommand::new("ssh postgres@pg")?;
/// Rsync::new()
///     .workers(4)
///     .link_dest("/var/lib/barman/pg/base/20240101T000000/data")
///     .exclude("/pg_wal/*")
///     .exclude("/postmaster.pid")
///     .bwlimit_kib(50_000)
///     .copy_tree(
///         &RsyncPath::Remote(pg, "/var/lib/postgresql/15/main".into()),
///         &RsyncPath::Local("/var/lib/barman/pg/base/20240102T000000/data".into()),
///     )
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Rsync {
    program: PathBuf,
    link_dest: Vec<PathBuf>,
    bwlimit_kib: Option<u64>,
    compress: bool,
    excludes: Vec<String>,
    workers: usize,
    start_batch: Option<(usize, std::time::Duration)>,
    extra: Vec<String>,
}

impl Default for Rsync {
    fn default() -> Self {
        Rsync {
            program: PathBuf::from("rsync"),
            link_dest: Vec::new(),
            bwlimit_kib: None,
            compress: false,
            excludes: Vec::new(),
            workers: 1,
            start_batch: None,
            extra: Vec::new(),
        }
    }
}

impl Rsync {
    /// An `rsync -a` copy with one process.
    pub fn new() -> Rsync {
        Rsync::default()
    }

    /// The `rsync` program (default: `rsync` on `PATH`).
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// A previous copy on the destination side whose unchanged files are hard-linked
    /// instead of copied (`--link-dest`; several may be given).
    pub fn link_dest(mut self, dir: impl Into<PathBuf>) -> Self {
        self.link_dest.push(dir.into());
        self
    }

    /// At most `kib` KiB per second (`--bwlimit`), for each rsync process.
    pub fn bwlimit_kib(mut self, kib: u64) -> Self {
        self.bwlimit_kib = Some(kib);
        self
    }

    /// Compress data on the network (`-z`).
    pub fn compress(mut self, yes: bool) -> Self {
        self.compress = yes;
        self
    }

    /// An `--exclude` pattern, in rsync's syntax (a leading `/` anchors at the top of
    /// the tree).
    pub fn exclude(mut self, pattern: impl Into<String>) -> Self {
        self.excludes.push(pattern.into());
        self
    }

    /// How many rsync processes copy files at once (default 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Starts the workers in batches of at most `size`, one batch every `period` (Barman's
    /// `parallel_jobs_start_batch_size` and `_period`), so that many workers do not open
    /// their SSH connections at once (sshd's `MaxStartups` refuses the excess). Default:
    /// all at once.
    pub fn start_batches(mut self, size: usize, period: std::time::Duration) -> Self {
        self.start_batch = Some((size.max(1), period));
        self
    }

    /// The delay before worker `i` (0-based) starts.
    fn start_delay(&self, i: usize) -> std::time::Duration {
        match self.start_batch {
            Some((size, period)) => {
                period.saturating_mul(u32::try_from(i / size).unwrap_or(u32::MAX))
            }
            None => std::time::Duration::ZERO,
        }
    }

    /// Another rsync option, passed as it is (for example `--checksum`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra.push(arg.into());
        self
    }

    fn base_args(&self, ssh: Option<&SshCommand>) -> Result<Vec<String>> {
        let mut a = vec!["-a".to_owned()];
        if self.compress {
            a.push("-z".into());
        }
        if let Some(k) = self.bwlimit_kib {
            a.push(format!("--bwlimit={k}"));
        }
        for d in &self.link_dest {
            let abs = if d.is_absolute() {
                d.clone()
            } else {
                std::env::current_dir()
                    .map_err(|source| Error::Copy {
                        path: d.clone(),
                        source,
                    })?
                    .join(d)
            };
            a.push(format!("--link-dest={}", abs.display()));
        }
        if let Some(s) = ssh {
            a.extend(remote_args(s)?);
        }
        a.extend(self.extra.iter().cloned());
        Ok(a)
    }

    fn exclude_args(&self) -> Vec<String> {
        self.excludes
            .iter()
            .map(|e| format!("--exclude={e}"))
            .collect()
    }

    async fn run(&self, args: Vec<String>) -> Result<Vec<u8>> {
        let out = tokio::process::Command::new(&self.program)
            .args(&args)
            // Whatever the caller's environment says, paths are protected (`-s`).
            .env_remove("RSYNC_OLD_ARGS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| Error::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        match out.status.code() {
            Some(0 | 24) => Ok(out.stdout),
            code => {
                let mut argv = vec![self.program.display().to_string()];
                argv.extend(args);
                Err(command_failed(
                    quote_for_shell(&argv)?,
                    code,
                    &String::from_utf8_lossy(&out.stderr),
                    // Socket or stream errors, timeouts, ssh failures.
                    matches!(code, Some(10 | 12 | 30 | 35 | 255)),
                ))
            }
        }
    }

    /// Lists the non-directory entries under `src` with their sizes.
    async fn list(&self, src: &RsyncPath) -> Result<Vec<(String, u64)>> {
        let mut args = vec![
            "-a".to_owned(),
            "--list-only".into(),
            "--no-h".into(),
            "-8".into(),
        ];
        if let Some(s) = src.ssh() {
            args.extend(remote_args(s)?);
        }
        args.extend(self.exclude_args());
        args.push(src.arg());
        let out = self.run(args).await?;
        Ok(parse_list(&String::from_utf8_lossy(&out)))
    }

    /// Copies the content of `src` into `dst`. At most one side is remote. A local
    /// `dst` is created with its parents (mode 0700) if missing; a remote one must
    /// have an existing parent.
    ///
    /// With one worker this is a single `rsync -a`. With more, the file list is read
    /// first (`rsync --list-only`), the directories are created by one pass, the files
    /// are split into `workers` lists of about equal size, each copied by its own
    /// `rsync --files-from`, and a last pass sets the directories' times and modes.
    ///
    /// Dropping the future kills the rsync processes.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when both sides are remote; [`Error::Spawn`] when `rsync`
    /// cannot be started; [`Error::Command`] when it fails (retryable for network
    /// failures).
    pub async fn copy_tree(&self, src: &RsyncPath, dst: &RsyncPath) -> Result<()> {
        let ssh = prepare_sides(src, dst)?;
        let base = self.base_args(ssh)?;
        if self.workers <= 1 {
            let mut args = base;
            args.extend(self.exclude_args());
            args.push(src.arg());
            args.push(dst.arg());
            self.run(args).await?;
            return Ok(());
        }

        // Directories first (excluded ones stay excluded).
        let mut dirs = base.clone();
        dirs.extend(self.exclude_args());
        dirs.extend(["--include=*/".to_owned(), "--exclude=*".to_owned()]);
        dirs.push(src.arg());
        dirs.push(dst.arg());
        self.run(dirs.clone()).await?;

        let files = self.list(src).await?;
        let lists = partition(files, self.workers);
        let tmp = list_dir()?;
        let mut runs = Vec::new();
        for (i, list) in lists.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
            let path = write_list(&tmp, &format!("files.{i}"), list)?;
            let mut args = base.clone();
            args.push(format!("--files-from={}", path.display()));
            args.push("--from0".into());
            args.push(src.arg());
            args.push(dst.arg());
            let delay = self.start_delay(runs.len());
            let run = self.run(args);
            runs.push(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                run.await
            });
        }
        futures::future::try_join_all(runs).await?;
        // Directory times and modes, now that their content is written.
        self.run(dirs).await?;
        Ok(())
    }
}

impl Rsync {
    /// Copies the files named in `files` (paths relative to `src`) into `dst`, with
    /// their directories, in one `rsync --files-from`. At most one side is remote; a
    /// local `dst` is created (mode 0700) if missing.
    ///
    /// # Errors
    ///
    /// Those of [`Rsync::copy_tree`]; a file missing from `src` fails the copy.
    pub async fn copy_files(
        &self,
        src: &RsyncPath,
        dst: &RsyncPath,
        files: &[String],
    ) -> Result<()> {
        let ssh = prepare_sides(src, dst)?;
        let tmp = list_dir()?;
        let list = write_list(&tmp, "files", files)?;
        let mut args = self.base_args(ssh)?;
        args.push(format!("--files-from={}", list.display()));
        args.push("--from0".into());
        args.push(src.arg());
        args.push(dst.arg());
        self.run(args).await?;
        Ok(())
    }
}

/// The remote side of a copy (at most one may be remote); a local destination is
/// created (mode 0700) if missing.
fn prepare_sides<'a>(src: &'a RsyncPath, dst: &'a RsyncPath) -> Result<Option<&'a SshCommand>> {
    let ssh = match (src.ssh(), dst.ssh()) {
        (Some(_), Some(_)) => {
            return Err(Error::Config {
                what: "rsync paths",
                value: format!("{} -> {}", src.arg(), dst.arg()),
                reason: "at most one side can be remote".into(),
            });
        }
        (a, b) => a.or(b),
    };
    if let RsyncPath::Local(d) = dst {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(d)
            .map_err(|source| Error::Copy {
                path: d.clone(),
                source,
            })?;
    }
    Ok(ssh)
}

/// A private temporary directory for `--files-from` lists.
fn list_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("barman-rsync.")
        .tempdir()
        .map_err(|source| Error::Copy {
            path: std::env::temp_dir(),
            source,
        })
}

/// Writes `names` NUL-separated (`--from0`) into `dir/file`; returns its path.
fn write_list(dir: &tempfile::TempDir, file: &str, names: &[String]) -> Result<PathBuf> {
    let path = dir.path().join(file);
    let mut content = Vec::new();
    for name in names {
        content.extend_from_slice(name.as_bytes());
        content.push(0);
    }
    std::fs::write(&path, content).map_err(|source| Error::Copy {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Splits files into `n` lists of about equal total size (largest first, each to the
/// lightest list).
fn partition(mut files: Vec<(String, u64)>, n: usize) -> Vec<Vec<String>> {
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut lists: Vec<(u64, Vec<String>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for (name, size) in files {
        if let Some(l) = lists.iter_mut().min_by_key(|l| l.0) {
            // Count each file at least 4 KiB so many small files also spread.
            l.0 += size.max(4096);
            l.1.push(name);
        }
    }
    lists.into_iter().map(|l| l.1).collect()
}

/// The options of an rsync over `ssh`: the remote shell, and `-s` (`--protect-args`,
/// `--secluded-args` since 3.2.6): file names and options go to the remote rsync
/// through its protocol, never through the remote shell, which would split a path at
/// its spaces or run what it quotes (rsync before 3.2.4 protects nothing by default).
fn remote_args(ssh: &SshCommand) -> Result<Vec<String>> {
    Ok(vec![
        "-s".to_owned(),
        "-e".to_owned(),
        quote_for_shell(&ssh.transport_argv())?,
    ])
}

/// Parses `rsync --list-only --no-h -8` output into (name, size) of non-directories.
fn parse_list(out: &str) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for line in out.lines() {
        // "-rw-r--r--         1234 2024/01/01 12:00:00 name"
        let mut rest = line;
        let mut fields = Vec::with_capacity(4);
        for _ in 0..4 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let Some(name) = rest.strip_prefix(' ') else {
            continue;
        };
        let (perms, size) = (fields[0], fields[1]);
        let kind = perms.chars().next();
        if perms.len() != 10 || kind == Some('d') || kind.is_none() {
            continue;
        }
        let name = if kind == Some('l') {
            name.rsplit_once(" -> ").map_or(name, |(n, _)| n)
        } else {
            name
        };
        let size = size.replace(',', "").parse().unwrap_or(0);
        v.push((unescape(name), size));
    }
    v
}

/// Undoes rsync's `\#ooo` escaping of unprintable bytes in names.
fn unescape(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'#')
            && let Some(oct) = b.get(i + 2..i + 5)
            && oct.iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(
                oct.iter()
                    .fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')),
            );
            i += 5;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_start_in_batches() {
        use std::time::Duration;
        let all = Rsync::new().workers(25);
        assert!((0..25).all(|i| all.start_delay(i).is_zero()));
        let batched = Rsync::new()
            .workers(25)
            .start_batches(10, Duration::from_secs(2));
        let delays: Vec<u64> = (0..25).map(|i| batched.start_delay(i).as_secs()).collect();
        assert_eq!(&delays[..10], &[0; 10]);
        assert_eq!(&delays[10..20], &[2; 10]);
        assert_eq!(&delays[20..], &[4; 5]);
        // A batch of 0 is a batch of 1.
        let one = Rsync::new().start_batches(0, Duration::from_secs(1));
        assert_eq!(one.start_delay(3), Duration::from_secs(3));
    }

    #[test]
    fn list_parsing() {
        let out = "drwx------           4096 2024/01/01 12:00:00 .\n\
                   -rw-------             10 2024/01/01 12:00:00 PG_VERSION\n\
                   -rw-------        1234567 2024/01/01 12:00:00 base/1/with space\n\
                   lrwxrwxrwx             12 2024/01/01 12:00:00 pg_tblspc/16384 -> /srv/ts\n\
                   -rw-------              3 2024/01/01 12:00:00 new\\#012line\n";
        assert_eq!(
            parse_list(out),
            vec![
                ("PG_VERSION".into(), 10),
                ("base/1/with space".into(), 1234567),
                ("pg_tblspc/16384".into(), 12),
                ("new\nline".into(), 3),
            ]
        );
    }

    #[test]
    fn partitioning() {
        let files = vec![
            ("d".into(), 10_000),
            ("a".into(), 100_000),
            ("c".into(), 50_000),
            ("b".into(), 60_000),
        ];
        let p = partition(files, 2);
        assert_eq!(
            p,
            vec![
                vec!["a".to_string(), "d".into()],
                vec!["b".into(), "c".into()]
            ]
        );
        assert_eq!(partition(vec![], 3), vec![Vec::<String>::new(); 3]);
    }
}
