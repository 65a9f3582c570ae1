//! `barman-wal-archive`: a WAL file sent to `barman put-wal` over SSH, as Barman's tar
//! stream with a checksum file.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use barman_transport::SshCommand;
use barman_wal::{Codec, CompressionLevel};
use sha2::Digest;

use crate::host::BarmanHost;
use crate::{Error, Result};

/// The client-side compression asked for on a command line: a codec name (`gzip`,
/// `bzip2`, `xz`, `snappy`, `zstd`, `lz4`) or none, and a level (`low`, `medium`, `high`
/// or a number).
///
/// # Errors
///
/// [`Error::Remote`] (exit code 2) for an unknown codec, one this build lacks, or a bad
/// level.
///
/// ```
/// use barman_client::compression_choice;
/// assert!(compression_choice(None, "medium")?.is_none());
/// assert!(compression_choice(Some("gzip"), "high")?.is_some());
/// assert!(compression_choice(Some("gzip"), "fastest").is_err());
/// # Ok::<(), barman_client::Error>(())
/// ```
pub fn compression_choice(
    name: Option<&str>,
    level: &str,
) -> Result<Option<(Codec, CompressionLevel)>> {
    let bad = |what: String| Error::Remote { what, code: 2 };
    let level: CompressionLevel = level
        .parse()
        .map_err(|e: barman_wal::Error| bad(e.to_string()))?;
    let Some(name) = name else { return Ok(None) };
    let codec = Codec::from_barman_name(name).map_err(|e| bad(e.to_string()))?;
    if !codec.is_available() {
        return Err(bad(format!(
            "{codec} compression is not available in this build"
        )));
    }
    Ok(Some((codec, level)))
}

/// `barman-wal-archive`: sends a WAL file to `barman put-wal` on the Barman host, as a
/// tar stream with a `SHA256SUMS` (or `MD5SUMS`) member, through the system `ssh`.
#[derive(Clone, Debug)]
pub struct WalArchiveClient {
    /// The Barman host and how to reach it.
    pub remote: BarmanHost,
    /// Use `MD5SUMS` instead of `SHA256SUMS` (for old Barman servers).
    pub md5: bool,
    /// Compress the WAL before sending it.
    pub compression: Option<(Codec, CompressionLevel)>,
}

impl WalArchiveClient {
    /// A client with Barman's defaults (`barman` user, `ssh`, remote `barman`, SHA-256).
    pub fn new(barman_host: &str, server: &str) -> WalArchiveClient {
        WalArchiveClient {
            remote: BarmanHost::new(barman_host, server),
            md5: false,
            compression: None,
        }
    }

    fn ssh_command(&self) -> Result<SshCommand> {
        self.remote.ssh_command()
    }

    fn remote_args(&self, test: bool) -> Vec<String> {
        let mut args = vec![self.remote.barman_command.clone()];
        if let Some(c) = &self.remote.config {
            args.push(format!("--config={c}"));
        }
        args.extend(["put-wal".to_owned(), self.remote.server.clone()]);
        if test {
            args.push("--test".to_owned());
        }
        args
    }

    fn spawn(&self, test: bool, stdin: Stdio) -> Result<std::process::Child> {
        let argv = self
            .ssh_command()?
            .argv(&self.remote_args(test))
            .map_err(|e| Error::Remote {
                what: e.to_string(),
                code: 2,
            })?;
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(stdin)
            .spawn()
            .map_err(|e| Error::Remote {
                what: format!("cannot run {}: {e}", argv[0]),
                code: 2,
            })
    }

    fn finish(&self, status: std::process::ExitStatus) -> Result<()> {
        match status.code() {
            Some(0) => Ok(()),
            Some(255) => Err(Error::Remote {
                what: format!("connection problem with ssh to {}", self.remote.host),
                code: 3,
            }),
            Some(c) => Err(Error::Remote {
                what: "remote 'barman put-wal' command has failed".to_owned(),
                code: c,
            }),
            None => Err(Error::Remote {
                what: "ssh was killed by a signal".to_owned(),
                code: 2,
            }),
        }
    }

    /// `--test`: checks that the Barman host accepts WAL files for the server.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] with the exit code to use (3 for an SSH connection problem).
    pub fn test(&self) -> Result<()> {
        let status = self
            .spawn(true, Stdio::null())?
            .wait()
            .map_err(|e| Error::io("waiting for", "ssh", e))?;
        self.finish(status)
    }

    /// Sends `wal_path`. Streams: the WAL is never held in memory whole (a compressed
    /// copy is made in a temporary file first when compression is asked for, because a
    /// tar header carries the size).
    ///
    /// # Errors
    ///
    /// I/O errors reading the WAL; [`Error::Remote`] with the exit code to use.
    pub fn archive(&self, wal_path: &Path) -> Result<()> {
        if wal_path.is_dir() {
            return Err(Error::Remote {
                what: format!("WAL_PATH cannot be a directory: {}", wal_path.display()),
                code: 2,
            });
        }
        let name = wal_path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Remote {
                what: format!("invalid WAL path {}", wal_path.display()),
                code: 2,
            })?
            .to_owned();
        let mut source = File::open(wal_path).map_err(|e| Error::io("opening", wal_path, e))?;
        let mut compressed = None;
        if let Some((codec, level)) = self.compression {
            let mut tmp = tempfile::tempfile()
                .map_err(|e| Error::io("creating a temporary file for", wal_path, e))?;
            let mut enc = codec.encoder(&mut tmp, level).map_err(|e| Error::Wal {
                path: wal_path.to_owned(),
                source: e,
            })?;
            io::copy(&mut source, &mut enc).map_err(|e| Error::io("compressing", wal_path, e))?;
            enc.finish()
                .map_err(|e| Error::io("compressing", wal_path, e))?;
            use std::io::Seek;
            tmp.rewind()
                .map_err(|e| Error::io("compressing", wal_path, e))?;
            compressed = Some(tmp);
        }
        let (mut data, size): (Box<dyn Read>, u64) = match compressed {
            Some(f) => {
                let len = f
                    .metadata()
                    .map_err(|e| Error::io("reading", wal_path, e))?
                    .len();
                (Box::new(f), len)
            }
            None => {
                let len = source
                    .metadata()
                    .map_err(|e| Error::io("reading", wal_path, e))?
                    .len();
                (Box::new(source), len)
            }
        };
        let mut child = self.spawn(false, Stdio::piped())?;
        let stdin = child.stdin.take().ok_or_else(|| Error::Remote {
            what: "no stdin for ssh".to_owned(),
            code: 2,
        })?;
        let sent = write_tar(stdin, &name, &mut data, size, self.md5);
        let status = child
            .wait()
            .map_err(|e| Error::io("waiting for", "ssh", e))?;
        // A failed remote side explains a broken pipe better than the pipe does.
        self.finish(status)?;
        sent.map_err(|e| Error::io("sending", wal_path, e))
    }
}

pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Md5(md5::Md5),
}

impl Hasher {
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Md5(h) => h.update(b),
        }
    }
    fn hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Md5(h) => hex::encode(h.finalize()),
        }
    }
}

struct HashingReader<'a> {
    inner: &'a mut dyn Read,
    hasher: &'a mut Hasher,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Barman's put-wal stream: the file, then `SHA256SUMS` (`<hex> *<name>`).
fn write_tar(
    out: impl Write,
    name: &str,
    data: &mut dyn Read,
    size: u64,
    md5: bool,
) -> io::Result<()> {
    let mut hasher = if md5 {
        Hasher::Md5(md5::Md5::new())
    } else {
        Hasher::Sha256(sha2::Sha256::new())
    };
    let mut builder = tar::Builder::new(out);
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(
        &mut header,
        name,
        HashingReader {
            inner: data,
            hasher: &mut hasher,
        },
    )?;
    let sums = format!("{} *{name}\n", hasher.hex());
    let mut header = tar::Header::new_gnu();
    header.set_size(sums.len() as u64);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(
        &mut header,
        if md5 { "MD5SUMS" } else { "SHA256SUMS" },
        sums.as_bytes(),
    )?;
    builder.into_inner()?.flush()
}
