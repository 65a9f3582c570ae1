//! Temporary files a crash left in a server's repository: `.barman-tmp.*` files (the
//! atomic writes of WAL files, xlog.db, `backup.info`, `identity.json`, and the members
//! of a `barman-wal-archive` stream spooled in `incoming/`), and the staging
//! directories of `import-backup` (in `base/`) and `sync-wals` (in the backup
//! directory). `cron` removes those older than [`LEFTOVER_AGE`] whose writer is gone
//! (its pid is in the name); `check` fails while any remains.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::archive::WalArchive;
use crate::fsutil::list_dir;
use crate::repo::BackupRepo;
use crate::{Error, Result};

/// How old a temporary file must be to count as left behind: no write of a WAL file or
/// of a catalogue file takes this long.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

/// The prefix of every temporary file barman-rs writes into a repository.
pub(crate) const TEMP_PREFIX: &str = barman_transport::TEMP_FILE_PREFIX;

/// The prefix of `import-backup`'s staging directories, in `base/`.
pub(crate) const IMPORT_STAGING: &str = ".import-";

/// The prefix of `sync-wals`'s staging directories, in the backup directory.
pub(crate) const SYNC_WALS_STAGING: &str = ".sync-wals.";

/// The end of a staging directory's name: the writer's pid, so that [`find`] can tell
/// whether it still runs.
pub(crate) fn staging_suffix() -> String {
    format!(".{}.0", std::process::id())
}

/// A temporary file (or staging directory) left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// Where it is.
    pub path: PathBuf,
    /// How long ago it was last written.
    pub age: Duration,
}

/// The directories of a server's repository where temporary files are made (not the
/// backup trees under `base/`, which an unfinished backup leaves FAILED).
fn directories(archive: &WalArchive, repo: &BackupRepo) -> Result<Vec<PathBuf>> {
    let mut dirs = vec![
        repo.backup_dir().to_owned(),
        repo.meta_dir().to_owned(),
        archive.wals_dir().to_owned(),
        archive.incoming_dir().to_owned(),
        archive.streaming_dir().to_owned(),
        archive.errors_dir().to_owned(),
    ];
    if let Some(d) = archive.xlogdb_path().parent() {
        dirs.push(d.to_owned());
    }
    // The hash directories of wals/ (16 hexadecimal digits).
    for e in list_dir(archive.wals_dir())? {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    dirs.dedup();
    Ok(dirs)
}

/// Whether the process that made the temporary file `name` still runs (the name ends
/// with `.<pid>.<attempt>`); `false` when the name says nothing.
fn writer_alive(name: &str) -> bool {
    let mut fields = name.rsplit('.');
    let _attempt = fields.next();
    fields
        .next()
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists())
}

/// The temporary files of the repository older than `older_than` at `now` whose writer
/// is gone.
///
/// # Errors
///
/// I/O errors listing a directory.
pub fn find(
    archive: &WalArchive,
    repo: &BackupRepo,
    now: Timestamp,
    older_than: Duration,
) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for dir in directories(archive, repo)? {
        for e in list_dir(&dir)? {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(TEMP_PREFIX) || writer_alive(&name) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            let age = age_of(&meta, now);
            if meta.is_file() && age >= older_than {
                out.push(Leftover {
                    path: e.path(),
                    age,
                });
            }
        }
    }
    // Staging directories whose writer is gone (a crash, a SIGKILL).
    for (dir, prefix) in [
        (repo.base_dir(), IMPORT_STAGING),
        (repo.backup_dir(), SYNC_WALS_STAGING),
    ] {
        for e in list_dir(dir)? {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(prefix) || writer_alive(&name) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            let age = age_of(&meta, now);
            if meta.is_dir() && age >= older_than {
                out.push(Leftover {
                    path: e.path(),
                    age,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn age_of(meta: &fs::Metadata, now: Timestamp) -> Duration {
    meta.modified()
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok())
        .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
        .unwrap_or_default()
}

/// Removes what [`find`] finds (older than [`LEFTOVER_AGE`]), durably, and returns it.
///
/// # Errors
///
/// I/O errors listing a directory or removing a file.
pub fn sweep(archive: &WalArchive, repo: &BackupRepo, now: Timestamp) -> Result<Vec<Leftover>> {
    let found = find(archive, repo, now, LEFTOVER_AGE)?;
    for l in &found {
        let removed = if fs::symlink_metadata(&l.path).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&l.path)
        } else {
            fs::remove_file(&l.path)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("removing", &l.path, e)),
        }
        if let Some(dir) = l.path.parent() {
            crate::fsutil::sync_dir(dir)?;
        }
    }
    Ok(found)
}
