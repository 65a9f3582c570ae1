//! `put-wal` with Barman's tar stream (what `barman-wal-archive` sends over SSH).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::time::{Duration, SystemTime};

use barman_wal::{WalFileName, WalSegSize};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::{ErrorKind, PutOutcome, Stored, WalArchive};
use crate::fsutil::{TempFile, create_private_dir};
use crate::{Error, Result};

/// Largest checksum file read from a stream.
const SUMS_MAX: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Sha256,
    Md5,
}

/// A file of the stream, spooled to a temporary file in `incoming/`.
struct Member {
    name: WalFileName,
    tmp: TempFile,
    sha256: String,
}

impl WalArchive {
    /// Archives the files of a put-wal tar stream, Barman's protocol between
    /// `barman-wal-archive` and `barman put-wal`.
    ///
    /// The stream holds regular files without a directory part (a leading `./` is
    /// stripped) and a `SHA256SUMS` or `MD5SUMS` file of `<hex digest> <space or *><name>`
    /// lines. Each file is spooled to a temporary file in `incoming/` (never held in
    /// memory) while its checksum is computed; once the stream ends and every file has
    /// its matching checksum, each is archived in stream order exactly like
    /// [`put_wal`](WalArchive::put_wal): validated, compressed, durably installed and
    /// listed in xlog.db. Unlike Barman, which only drops the files in `incoming/`, the
    /// WAL is archived when this returns.
    ///
    /// # Errors
    ///
    /// Before anything is archived: [`Error::Tar`] for an unreadable stream,
    /// [`Error::UnsupportedFileType`] (directories, links, ...),
    /// [`Error::UnsupportedFilename`] (a `/` in the name, or not a WAL file name),
    /// [`Error::MemberTooBig`], [`Error::MissingChecksum`],
    /// [`Error::BadChecksum`], [`Error::ChecksumWithoutFile`]. While
    /// archiving: the errors of `put_wal`, which stop the run (files archived before stay
    /// archived); a file already archived with different content is set aside in
    /// `errors/` as `.duplicate` and reported as [`Error::DuplicateDifferent`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use barman_core::archive::WalArchive;
    /// use barman_core::config::{Config, MemorySource};
    ///
    /// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n", &MemorySource::default())?;
    /// let archive = WalArchive::for_server(config.global(), config.server("pg").unwrap());
    /// for outcome in archive.put_wal_tar(std::io::stdin().lock())? {
    ///     println!("{outcome:?}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_wal_tar(&self, reader: impl Read) -> Result<Vec<PutOutcome>> {
        self.usable()?;
        let server = self.server.clone();
        let tar_err = |source| Error::Tar {
            server: server.clone(),
            source,
        };
        let mut archive = tar::Archive::new(reader);
        let mut members: Vec<Member> = Vec::new();
        let mut sums: BTreeMap<String, (Algorithm, String)> = BTreeMap::new();
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = raw.strip_prefix("./").unwrap_or(&raw).to_owned();
            if !(kind.is_file() || kind.is_contiguous()) {
                return Err(Error::UnsupportedFileType {
                    kind: char::from(kind.as_byte()),
                    name,
                    server,
                });
            }
            if name.contains('/') {
                return Err(Error::UnsupportedFilename { name, server });
            }
            let algorithm = match name.as_str() {
                "SHA256SUMS" => Some(Algorithm::Sha256),
                "MD5SUMS" => Some(Algorithm::Md5),
                _ => None,
            };
            if let Some(algorithm) = algorithm {
                let mut text = Vec::new();
                (&mut entry)
                    .take(SUMS_MAX)
                    .read_to_end(&mut text)
                    .map_err(tar_err)?;
                for (file, digest) in parse_sums(&String::from_utf8_lossy(&text)) {
                    sums.insert(file, (algorithm, digest));
                }
                continue;
            }
            let Ok(wal_name) = name.parse::<WalFileName>() else {
                return Err(Error::UnsupportedFilename { name, server });
            };
            let size = entry.size();
            if size > WalSegSize::MAX_BYTES {
                return Err(Error::MemberTooBig { name, size, server });
            }
            let mtime = member_mtime(&mut entry);
            let mut hasher = Sha256::new();
            let (mut tmp, _) = self.spool(
                &name,
                &mut entry,
                &mut |chunk| hasher.update(chunk),
                &tar_err,
            )?;
            let sha256 = hex(&hasher.finalize());
            if let Some(t) = mtime {
                let _ = tmp.file().map(|f| f.set_modified(t));
            }
            // A later member of the same name replaces an earlier one, as in Barman.
            members.retain(|m| m.name != wal_name);
            members.push(Member {
                name: wal_name,
                tmp,
                sha256,
            });
        }

        // Every checksum must match a file, every file must have a matching checksum.
        for (file, (algorithm, expected)) in &sums {
            let Some(m) = members
                .iter()
                .find(|m| m.name.to_string() == *file || raw_eq(m, file))
            else {
                return Err(Error::ChecksumWithoutFile {
                    name: file.clone(),
                    server,
                });
            };
            let found = match algorithm {
                Algorithm::Sha256 => m.sha256.clone(),
                Algorithm::Md5 => md5_of(m.tmp.path())?,
            };
            if !found.eq_ignore_ascii_case(expected) {
                return Err(Error::BadChecksum {
                    name: file.clone(),
                    found,
                    expected: expected.clone(),
                    server,
                });
            }
        }
        for m in &members {
            if !sums
                .keys()
                .any(|k| m.name.to_string() == *k || raw_eq(m, k))
            {
                return Err(Error::MissingChecksum {
                    name: m.name.to_string(),
                    server,
                });
            }
        }

        let mut outcomes = Vec::with_capacity(members.len());
        for m in members {
            match self.store(m.tmp.path(), m.name)? {
                Stored::Archived(entry) => outcomes.push(PutOutcome::Archived(entry)),
                Stored::Identical => outcomes.push(PutOutcome::AlreadyArchived(m.name)),
                Stored::Different => {
                    let kept_as = self.set_aside(
                        m.tmp.path(),
                        &m.name.to_string(),
                        ErrorKind::Duplicate,
                        false,
                    )?;
                    return Err(Error::DuplicateDifferent {
                        name: m.name.to_string(),
                        kept_as,
                    });
                }
            }
        }
        Ok(outcomes)
    }
}

impl WalArchive {
    /// Archives a WAL file read from `reader` under `name` (a segment, `.partial`,
    /// `.backup` or `.history` file name), as [`put_wal`](Self::put_wal) archives a
    /// file: for an application that receives WAL from elsewhere than a file named
    /// after it (a network stream, an object store). The bytes are spooled to a
    /// temporary file in `incoming/` (never held in memory, at most the largest WAL
    /// segment size), then validated and stored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidWalName`] for `name`; [`Error::MemberTooBig`] for a stream
    /// longer than any WAL file; an error of `reader`; then those of
    /// [`put_wal`](Self::put_wal), a different copy being set aside in `errors/`.
    ///
    /// ```no_run
    /// use barman_core::archive::WalArchive;
    /// use barman_core::config::{Config, MemorySource};
    ///
    /// let config = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /srv/barman\n[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n", &MemorySource::default())?;
    /// let archive = WalArchive::for_server(config.global(), config.server("pg").unwrap());
    /// let body: &[u8] = &[]; // the segment's bytes, from wherever they come
    /// archive.put_wal_from("000000010000000000000003", body)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_wal_from(&self, name: &str, reader: impl Read) -> Result<PutOutcome> {
        self.usable()?;
        let wal_name: WalFileName = name.parse().map_err(|source| Error::InvalidWalName {
            name: name.to_owned(),
            source,
        })?;
        let mut limited = reader.take(WalSegSize::MAX_BYTES + 1);
        let read_err = |e| Error::io("reading the WAL stream of", name, e);
        let (tmp, size) = self.spool(name, &mut limited, &mut |_| {}, &read_err)?;
        if size > WalSegSize::MAX_BYTES {
            return Err(Error::MemberTooBig {
                name: name.to_owned(),
                size,
                server: self.server.clone(),
            });
        }
        match self.store(tmp.path(), wal_name)? {
            Stored::Archived(entry) => Ok(PutOutcome::Archived(entry)),
            Stored::Identical => Ok(PutOutcome::AlreadyArchived(wal_name)),
            Stored::Different => {
                let name = wal_name.to_string();
                let kept_as = self.set_aside(tmp.path(), &name, ErrorKind::Duplicate, false)?;
                Err(Error::DuplicateDifferent { name, kept_as })
            }
        }
    }

    /// Copies `reader` into a new temporary file in `incoming/` (0600, `.barman-tmp.`,
    /// so archive-wal never picks it up), calling `seen` with every chunk; its errors
    /// through `read_err`. Returns the file and the number of bytes.
    fn spool(
        &self,
        name: &str,
        reader: &mut dyn Read,
        seen: &mut dyn FnMut(&[u8]),
        read_err: &dyn Fn(io::Error) -> Error,
    ) -> Result<(TempFile, u64)> {
        create_private_dir(&self.incoming_dir)?;
        let mut tmp = TempFile::new(&self.incoming_dir, name)?;
        let tmp_path = tmp.path().to_owned();
        let write_err = |e| Error::io("writing", &tmp_path, e);
        let file = tmp.file().map_err(write_err)?;
        let mut out = io::BufWriter::with_capacity(1 << 16, file);
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            seen(chunk);
            out.write_all(chunk).map_err(write_err)?;
            size += n as u64;
        }
        out.flush().map_err(write_err)?;
        drop(out);
        Ok((tmp, size))
    }
}

/// Whether the checksum line's `file` names member `m` with another letter case (WAL
/// file names parse in either case; the checksum line carries the name as sent).
fn raw_eq(m: &Member, file: &str) -> bool {
    file.parse::<WalFileName>().is_ok_and(|n| n == m.name)
}

/// The lines of a checksum file: `<hex digest><space><space or *><name>`; other lines
/// are ignored, as Barman warns about and skips them.
fn parse_sums(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        let b = line.as_bytes();
        let Some(i) = (0..b.len().saturating_sub(1))
            .find(|&i| b[i] == b' ' && (b[i + 1] == b' ' || b[i + 1] == b'*'))
        else {
            continue;
        };
        let digest = &line[..i];
        let path = &line[i + 2..];
        let path = path.strip_prefix("./").unwrap_or(path);
        out.push((path.to_owned(), digest.to_owned()));
    }
    out
}

/// The member's modification time, with the sub-second part of a pax `mtime` record
/// when there is one.
fn member_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> Option<SystemTime> {
    if let Ok(Some(pax)) = entry.pax_extensions() {
        for ext in pax.flatten() {
            if ext.key() == Ok("mtime")
                && let Some(t) = ext
                    .value()
                    .ok()
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0)
            {
                return SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(t));
            }
        }
    }
    let secs = entry.header().mtime().ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn md5_of(path: &std::path::Path) -> Result<String, Error> {
    let mut f = BufReader::with_capacity(
        1 << 16,
        File::open(path).map_err(|e| Error::io("opening", path, e))?,
    );
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_lines_as_barman_splits_them() {
        let sums = parse_sums(
            "abc  000000010000000000000001\ndef *./000000010000000000000002\r\nbad-line\n\n",
        );
        assert_eq!(
            sums,
            vec![
                ("000000010000000000000001".into(), "abc".into()),
                ("000000010000000000000002".into(), "def".into())
            ]
        );
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0, 0xAB, 0x10]), "00ab10");
    }
}
