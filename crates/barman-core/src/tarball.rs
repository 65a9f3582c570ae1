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

use crate::{Error, Result};

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

fn open(path: &Path) -> Result<tar::Archive<impl Read>> {
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let decoder =
        Codec::decoder_detect(io::BufReader::with_capacity(1 << 20, file)).map_err(|e| {
            Error::Wal {
                path: path.to_owned(),
                source: e,
            }
        })?;
    Ok(tar::Archive::new(decoder))
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
pub(crate) fn for_each_file(
    path: &Path,
    mut each: impl FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut archive = open(path)?;
    let bad = |e: io::Error| Error::io("reading", path, e);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_relative(&name) else {
            return Err(Error::refused(format!(
                "{}: member {:?} escapes the archive's root",
                path.display(),
                name.display()
            )));
        };
        each(&rel.to_string_lossy(), &mut entry)?;
    }
    Ok(())
}

/// The content of member `name` of the tar at `path`, `None` when it has none.
pub(crate) fn read_member(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let mut found = None;
    let mut archive = open(path)?;
    let bad = |e: io::Error| Error::io("reading", path, e);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let member = entry.path().map_err(bad)?.into_owned();
        if safe_relative(&member).is_some_and(|p| p == Path::new(name)) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(bad)?;
            found = Some(bytes);
            break;
        }
    }
    Ok(found)
}

/// What [`unpack`] wrote.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Unpacked {
    pub files: u64,
    pub bytes: u64,
}

/// Unpacks the tar at `path` into the directory `dest` (created if missing): regular
/// files (mode and modification time kept, fsynced when `fsync`), directories and
/// symbolic links; members for which `skip` says yes are left out. A member whose path
/// is absolute or has `..`, or would be written through a symbolic link of the archive,
/// is an error and stops the unpacking.
pub(crate) fn unpack(
    path: &Path,
    dest: &Path,
    skip: &dyn Fn(&str) -> bool,
    fsync: bool,
) -> Result<Unpacked> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = open(path)?;
    let bad = |e: io::Error| Error::io("reading", path, e);
    let mut done = Unpacked::default();
    let mut dirs = vec![dest.to_owned()];
    let mut links: Vec<PathBuf> = Vec::new();
    // The root has no entry in the tar: private, as PostgreSQL wants its data directory.
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(dest)
        .map_err(|e| Error::io("creating", dest, e))?;
    let mut buf = vec![0u8; 1 << 20];
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_relative(&name) else {
            return Err(Error::refused(format!(
                "{}: member {:?} escapes the archive's root: nothing of it is written",
                path.display(),
                name.display()
            )));
        };
        let rel_s = rel.to_string_lossy().into_owned();
        if skip(&rel_s) {
            continue;
        }
        if links.iter().any(|l| rel.starts_with(l) && rel != *l) {
            return Err(Error::refused(format!(
                "{}: member {rel_s:?} would be written through a symbolic link of the archive",
                path.display()
            )));
        }
        let target = dest.join(&rel);
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o600) & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(|e| Error::io("creating", &target, e))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))
                .map_err(|e| Error::io("setting the mode of", &target, e))?;
            dirs.push(target);
        } else if kind.is_symlink() {
            let to = entry
                .link_name()
                .map_err(bad)?
                .ok_or_else(|| Error::refused(format!("{rel_s}: a link without a target")))?;
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
            }
            std::os::unix::fs::symlink(&to, &target)
                .map_err(|e| Error::io("linking", &target, e))?;
            links.push(rel);
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
            }
            let mut out = File::create(&target).map_err(|e| Error::io("creating", &target, e))?;
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
        }
        // Other kinds (devices, fifos) have no place in a data directory.
    }
    if fsync {
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

    #[test]
    fn unpack_reads_members_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("base.tar.gz");
        let plain = tar_with(&[("PG_VERSION", b"15\n"), ("./base/1/1259", b"page")]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&plain).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(
            read_member(&gz, "base/1/1259").unwrap().as_deref(),
            Some(&b"page"[..])
        );
        assert_eq!(read_member(&gz, "nope").unwrap(), None);
        let out = dir.path().join("out");
        let done = unpack(&gz, &out, &|p| p == "PG_VERSION", true).unwrap();
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
        let e = unpack(&evil, &out2, &|_| false, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("escapes") && e.contains("../../escaped"), "{e}");
        assert!(!dir.path().join("escaped").exists());
        assert_eq!(backup_tars(dir.path()).unwrap()[1].oid, Some(16384));
    }
}
