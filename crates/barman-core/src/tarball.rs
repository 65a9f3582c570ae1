//! The tar files of a compressed `postgres`-method backup (`base.tar[.gz|.lz4|.zst]` and
//! one `<oid>.tar[...]` per tablespace, as `pg_basebackup --format=tar` writes them):
//! finding them, reading one member, and unpacking them safely.
//!
//! Everything is streamed: a tar is read once through its decoder (the codec is told by
//! the magic bytes), one member at a time, with a buffer of a megabyte at most.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use barman_wal::Codec;

use crate::encryption::Gpg;
use crate::{Error, Refusal, Result};

/// One tar of a backup: the data directory's (`oid` `None`) or a tablespace's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BackupTar {
    /// The tablespace's OID, `None` for `base.tar`.
    pub oid: Option<u32>,
    /// Where the file is.
    pub path: PathBuf,
}

/// The tars in `dir`, `base.tar` first, then the tablespaces by OID.
pub(crate) fn backup_tars(dir: &Path) -> Result<Vec<BackupTar>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))? {
        let e = e.map_err(|e| Error::io("listing", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((stem, _)) = name.split_once(".tar") else {
            continue;
        };
        let oid = if stem == "base" {
            None
        } else if let Ok(oid) = stem.parse::<u32>() {
            Some(oid)
        } else {
            continue;
        };
        out.push(BackupTar {
            oid,
            path: e.path(),
        });
    }
    out.sort_by_key(|t| (t.oid.is_some(), t.oid));
    Ok(out)
}

/// A tar archive read from a decoded (and, when encrypted, decrypted) stream.
pub(crate) type Archive<'a> = tar::Archive<Box<dyn Read + 'a>>;

/// Runs `body` over the tar at `path`, decrypted with `gpg` when it is encrypted and
/// decompressed whatever its codec. With `whole`, the stream is then read to its end,
/// so that the compression's checksum and the encryption's integrity check are
/// verified even though a tar ends before its last padding.
fn with_archive<T>(
    path: &Path,
    gpg: &Gpg,
    whole: bool,
    body: impl FnOnce(&mut Archive<'_>) -> Result<T>,
) -> Result<T> {
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    gpg.with_plain(io::BufReader::with_capacity(1 << 20, file), path, |plain| {
        let decoder =
            Codec::decoder_detect(io::BufReader::with_capacity(1 << 20, plain)).map_err(|e| {
                Error::Wal {
                    path: path.to_owned(),
                    source: e,
                }
            })?;
        let mut archive: Archive<'_> = tar::Archive::new(Box::new(decoder));
        let value = body(&mut archive)?;
        if whole {
            io::copy(&mut archive.into_inner(), &mut io::sink())
                .map_err(|e| Error::io("reading", path, e))?;
        }
        Ok(value)
    })
}

/// A member's path as a relative path of normal components (`./` dropped); `None` for
/// an absolute path or one with `..`, which must never be written.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Calls `each` with the relative path and the reader of every regular file in the tar
/// at `path`, in the order of the tar.
#[cfg(feature = "postgres")]
pub(crate) fn for_each_file(
    path: &Path,
    gpg: &Gpg,
    mut each: impl FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    with_archive(path, gpg, true, |archive| {
        for_each_in(path, archive, &mut each)
    })
}

#[cfg(feature = "postgres")]
fn for_each_in(
    path: &Path,
    archive: &mut Archive<'_>,
    each: &mut impl FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let bad = |e: io::Error| Error::io("reading", path, e);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_relative(&name) else {
            return Err(Error::refused(
                Refusal::Damaged,
                format!(
                    "{}: member {:?} escapes the archive's root",
                    path.display(),
                    name.display()
                ),
            ));
        };
        each(&rel.to_string_lossy(), &mut entry)?;
    }
    Ok(())
}

/// The content of member `name` of the tar at `path`, `None` when it has none.
pub(crate) fn read_member(path: &Path, gpg: &Gpg, name: &str) -> Result<Option<Vec<u8>>> {
    with_archive(path, gpg, false, |archive| {
        let bad = |e: io::Error| Error::io("reading", path, e);
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let member = entry.path().map_err(bad)?.into_owned();
            if safe_relative(&member).is_some_and(|p| p == Path::new(name)) {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(bad)?;
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    })
}

/// What [`unpack`] wrote.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Unpacked {
    pub files: u64,
    pub bytes: u64,
}

/// Unpacks the tar at `path` into the directory `dest` (created if missing): regular
/// files (mode and modification time kept, fsynced when `fsync`), directories and
/// symbolic links; members for which `skip` says yes are left out.
///
/// The tar comes from the database server, which must not be able to write anywhere
/// else on this host: a member whose path is absolute or has `..`, whose path passes
/// through a symbolic link (one of the archive's or one already in `dest`), or that
/// would replace a link or an existing file, is an error and stops the unpacking.
/// Nothing is ever written, created or chmod-ed through a link.
pub(crate) fn unpack(
    path: &Path,
    gpg: &Gpg,
    dest: &Path,
    skip: &dyn Fn(&str) -> bool,
    fsync: bool,
) -> Result<Unpacked> {
    with_archive(path, gpg, true, |archive| {
        unpack_from(path, archive, dest, skip, fsync)
    })
}

fn unpack_from(
    path: &Path,
    archive: &mut Archive<'_>,
    dest: &Path,
    skip: &dyn Fn(&str) -> bool,
    fsync: bool,
) -> Result<Unpacked> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let bad = |e: io::Error| Error::io("reading", path, e);
    let mut done = Unpacked::default();
    let mut dirs = vec![dest.to_owned()];
    // The root has no entry in the tar: private, as PostgreSQL wants its data directory.
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(dest)
        .map_err(|e| Error::io("creating", dest, e))?;
    let mut buf = vec![0u8; 1 << 20];
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_relative(&name) else {
            return Err(Error::refused(
                Refusal::Damaged,
                format!(
                    "{}: member {:?} escapes the archive's root: nothing of it is written",
                    path.display(),
                    name.display()
                ),
            ));
        };
        let rel_s = rel.to_string_lossy().into_owned();
        if skip(&rel_s) {
            continue;
        }
        let refuse = |why: &str| {
            Error::refused(
                Refusal::Damaged,
                format!(
                    "{}: member {rel_s:?} {why}: the unpacking stopped",
                    path.display()
                ),
            )
        };
        // Every directory on the way is created here or is a real directory: never a
        // link, whoever made it.
        let mut parent = dest.to_owned();
        if let Some(up) = rel.parent() {
            for c in up.components() {
                parent.push(c);
                match fs::symlink_metadata(&parent) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(refuse("would be written through a symbolic link"));
                    }
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(refuse("has a file where a directory should be")),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700)
                            .create(&parent)
                            .map_err(|e| Error::io("creating", &parent, e))?;
                        dirs.push(parent.clone());
                    }
                    Err(e) => return Err(Error::io("reading", &parent, e)),
                }
            }
        }
        let target = dest.join(&rel);
        let existing = match fs::symlink_metadata(&target) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("reading", &target, e)),
        };
        if existing
            .as_ref()
            .is_some_and(|m| m.file_type().is_symlink())
        {
            return Err(refuse("would replace or follow a symbolic link"));
        }
        let header = entry.header();
        let kind = header.entry_type();
        // No set-user-id, set-group-id or sticky bit from the server: a data directory
        // needs none, and a restore running as root must not create such files.
        let mode = header.mode().unwrap_or(0o600) & 0o777;
        let mtime = header.mtime().unwrap_or(0);
        if kind.is_dir() {
            match existing {
                Some(m) if !m.is_dir() => return Err(refuse("is a directory over a file")),
                Some(_) => {}
                None => fs::create_dir(&target).map_err(|e| Error::io("creating", &target, e))?,
            }
            // Checked above: `target` is a real directory, not a link.
            fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))
                .map_err(|e| Error::io("setting the mode of", &target, e))?;
            dirs.push(target);
        } else if kind.is_symlink() {
            if existing.is_some() {
                return Err(refuse("is a link over an existing file"));
            }
            let to = entry
                .link_name()
                .map_err(bad)?
                .ok_or_else(|| refuse("is a link without a target"))?;
            std::os::unix::fs::symlink(&to, &target)
                .map_err(|e| Error::io("linking", &target, e))?;
        } else if kind.is_file() {
            if existing.is_some() {
                return Err(refuse("appears twice or replaces a directory"));
            }
            // O_EXCL: a link planted meanwhile is never followed.
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .map_err(|e| Error::io("creating", &target, e))?;
            loop {
                let n = entry.read(&mut buf).map_err(bad)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])
                    .map_err(|e| Error::io("writing", &target, e))?;
                done.bytes += n as u64;
            }
            out.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io("setting the mode of", &target, e))?;
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
            out.set_modified(when)
                .map_err(|e| Error::io("setting the time of", &target, e))?;
            if fsync {
                out.sync_all()
                    .map_err(|e| Error::io("syncing", &target, e))?;
            }
            done.files += 1;
        } else if kind.is_hard_link() {
            return Err(refuse("is a hard link, which no backup holds"));
        } else if !(kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink())
        {
            // Devices, fifos and the like have no place in a backup: refused, never
            // skipped without a word.
            return Err(refuse("is neither a file, a directory nor a link"));
        }
    }
    if fsync {
        if let Some(up) = dest.parent() {
            dirs.push(up.to_owned());
        }
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            crate::fsutil::sync_dir(&d)?;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`: write the raw name as a hostile archive would.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A tar of these members: `(name, Some(content))` a file, `(name, None)` a
    /// directory, `(name, Link(target))` via [`link`].
    fn hostile_tar(entries: &[(&str, Member<'_>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, member) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o4755);
            let data: &[u8] = match member {
                Member::File(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    d
                }
                Member::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    b""
                }
                Member::Link(to) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_link_name(to).unwrap();
                    b""
                }
            };
            h.set_size(data.len() as u64);
            h.set_path(name).unwrap();
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    enum Member<'a> {
        File(&'a [u8]),
        Dir,
        Link(&'a Path),
    }

    /// Trust, point 4: a symbolic link member followed by a file, a directory or a file
    /// below it of the same name wrote (or chmod-ed) outside the destination.
    #[test]
    fn unpack_never_writes_through_a_link_of_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("victim"), b"production").unwrap();
        let victim = outside.join("victim");
        let cases: Vec<(&str, Vec<(&str, Member<'_>)>)> = vec![
            (
                "file over a link to a file",
                vec![
                    ("PG_VERSION", Member::File(b"15\n")),
                    ("l", Member::Link(&victim)),
                    ("l", Member::File(b"evil")),
                ],
            ),
            (
                "directory over a link to a directory",
                vec![("d", Member::Link(&outside)), ("d", Member::Dir)],
            ),
            (
                "file below a link to a directory",
                vec![
                    ("d", Member::Link(&outside)),
                    ("d/victim", Member::File(b"evil")),
                ],
            ),
            (
                "file below a link, by a longer path",
                vec![
                    ("a", Member::Dir),
                    ("a/d", Member::Link(&outside)),
                    ("a/d/new", Member::File(b"evil")),
                ],
            ),
        ];
        for (i, (what, members)) in cases.into_iter().enumerate() {
            let tar = dir.path().join(format!("{i}.tar"));
            fs::write(&tar, hostile_tar(&members)).unwrap();
            let out = dir.path().join(format!("out{i}"));
            let e = unpack(&tar, &Gpg::default(), &out, &|_| false, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("link"), "{what}: {e}");
            assert_eq!(fs::read(&victim).unwrap(), b"production", "{what}");
            assert!(!outside.join("new").exists(), "{what}");
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&outside).unwrap().permissions().mode() & 0o7777;
            assert_ne!(mode & 0o4000, 0o4000, "{what}: chmod through the link");
        }

        // A link already in the destination (planted, or left by an earlier member's
        // directory) is not followed either.
        let out = dir.path().join("planted");
        fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("base")).unwrap();
        let tar = dir.path().join("planted.tar");
        fs::write(&tar, hostile_tar(&[("base/victim", Member::File(b"evil"))])).unwrap();
        let e = unpack(&tar, &Gpg::default(), &out, &|_| false, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read(&victim).unwrap(), b"production");

        // A legitimate archive with a link (pg_tblspc) and set-user-id modes: the link
        // is made, the modes lose the special bits.
        let ok = dir.path().join("ok.tar");
        fs::write(
            &ok,
            hostile_tar(&[
                ("pg_tblspc", Member::Dir),
                ("pg_tblspc/16385", Member::Link(Path::new("/srv/tbs"))),
                ("base/1/1259", Member::File(b"page")),
            ]),
        )
        .unwrap();
        let out = dir.path().join("ok");
        unpack(&ok, &Gpg::default(), &out, &|_| false, true).unwrap();
        assert_eq!(
            fs::read_link(out.join("pg_tblspc/16385")).unwrap(),
            Path::new("/srv/tbs")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(out.join("base/1/1259"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }

    #[test]
    fn unpack_reads_members_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("base.tar.gz");
        let plain = tar_with(&[("PG_VERSION", b"15\n"), ("./base/1/1259", b"page")]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&plain).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(
            read_member(&gz, &Gpg::default(), "base/1/1259")
                .unwrap()
                .as_deref(),
            Some(&b"page"[..])
        );
        assert_eq!(read_member(&gz, &Gpg::default(), "nope").unwrap(), None);
        let out = dir.path().join("out");
        let done = unpack(&gz, &Gpg::default(), &out, &|p| p == "PG_VERSION", true).unwrap();
        assert_eq!((done.files, done.bytes), (1, 4));
        assert_eq!(fs::read(out.join("base/1/1259")).unwrap(), b"page");
        assert!(!out.join("PG_VERSION").exists());
        assert_eq!(
            backup_tars(dir.path()).unwrap(),
            [BackupTar {
                oid: None,
                path: gz.clone()
            }]
        );

        let evil = dir.path().join("16384.tar");
        fs::write(&evil, tar_with(&[("ok", b"x"), ("../../escaped", b"x")])).unwrap();
        let out2 = dir.path().join("out2");
        let e = unpack(&evil, &Gpg::default(), &out2, &|_| false, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("escapes") && e.contains("../../escaped"), "{e}");
        assert!(!dir.path().join("escaped").exists());
        assert_eq!(backup_tars(dir.path()).unwrap()[1].oid, Some(16384));
    }

    /// A hard link, a fifo or a device member is refused, never skipped without a word.
    #[test]
    fn unpack_refuses_what_no_backup_holds() {
        for (kind, why) in [
            (tar::EntryType::Link, "is a hard link"),
            (
                tar::EntryType::Fifo,
                "is neither a file, a directory nor a link",
            ),
            (
                tar::EntryType::Char,
                "is neither a file, a directory nor a link",
            ),
        ] {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o600);
            h.set_path("data/odd").unwrap();
            if kind == tar::EntryType::Link {
                h.set_link_name("data/PG_VERSION").unwrap();
            }
            h.set_cksum();
            b.append(&h, &b""[..]).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let tar = dir.path().join("odd.tar");
            std::fs::write(&tar, b.into_inner().unwrap()).unwrap();
            let err = unpack(
                &tar,
                &Gpg::default(),
                &dir.path().join("out"),
                &|_| false,
                false,
            )
            .unwrap_err();
            assert!(err.to_string().contains(why), "{kind:?}: {err}");
        }
    }
}
