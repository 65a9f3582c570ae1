//! `archive-wal`: the classic path, from `incoming/` and `streaming/` into the archive.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use barman_catalog::XlogDbEntry;
use barman_wal::WalFileName;

use super::{Stored, WalArchive, remove_durably};
use crate::fsutil::Lock;
use crate::{Error, Result};

/// Which archiver a file came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Archiver {
    /// `streaming/`, written by `pg_receivewal` (`streaming_archiver = on`).
    Streaming,
    /// `incoming/`, written by `archive_command` (`archiver = on`).
    File,
}

/// Why a file went to `errors/`; the suffix of its new name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not a WAL file (its name, or not a regular file): `.unknown`.
    Unknown,
    /// Already archived with different content: `.duplicate`.
    Duplicate,
}

impl ErrorKind {
    /// The suffix Barman gives such files in `errors/`.
    pub fn suffix(self) -> &'static str {
        match self {
            ErrorKind::Unknown => "unknown",
            ErrorKind::Duplicate => "duplicate",
        }
    }
}

/// A file [`WalArchive::archive_wal`] archived.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchivedFile {
    /// Where it came from.
    pub archiver: Archiver,
    /// Its xlog.db line.
    pub entry: XlogDbEntry,
}

/// A file [`WalArchive::archive_wal`] moved to `errors/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovedToErrors {
    /// Where it came from.
    pub archiver: Archiver,
    /// Its name in `incoming/` or `streaming/`.
    pub name: String,
    /// Why.
    pub kind: ErrorKind,
    /// Its path in `errors/`.
    pub kept_as: PathBuf,
}

/// A file [`WalArchive::archive_wal`] could not archive and left where it was.
#[derive(Debug)]
pub struct FailedFile {
    /// Where it came from.
    pub archiver: Archiver,
    /// The file.
    pub path: PathBuf,
    /// Why (invalid content, a foreign cluster, an I/O error, ...).
    pub error: Error,
}

/// What [`WalArchive::archive_wal`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ArchiveReport {
    /// Files archived, in archiving order.
    pub archived: Vec<ArchivedFile>,
    /// Files already archived with the same content: their copy was deleted.
    pub duplicates: Vec<(Archiver, WalFileName)>,
    /// Files moved to `errors/`.
    pub errors: Vec<MovedToErrors>,
    /// Files that could not be archived, left in place for the next run.
    pub failed: Vec<FailedFile>,
    /// Files of `streaming/` left there on purpose: the `.partial` segment being
    /// written, or the newest complete segment when there is no `.partial`.
    pub kept: Vec<PathBuf>,
    /// Files beyond the batch sizes, left for the next run.
    pub deferred: usize,
}

/// The next batch of one archiver.
struct Batch {
    files: Vec<(PathBuf, WalFileName)>,
    unknown: Vec<PathBuf>,
    kept: Vec<PathBuf>,
    deferred: usize,
}

impl WalArchive {
    /// [`archive_wal`](Self::archive_wal) for an async caller, on a blocking thread (it
    /// runs hook scripts and sleeps between their retries). Best effort, as before a
    /// backup's end or a recovery: another `archive-wal` may be running, and a file it
    /// cannot archive is cron's to report.
    pub(crate) async fn archive_wal_best_effort(&self) {
        let archive = self.clone();
        let _ = tokio::task::spawn_blocking(move || archive.archive_wal()).await;
    }

    /// Barman's `archive-wal`: moves the WAL files waiting in `streaming/` (when
    /// `streaming_archiver` is on) and then in `incoming/` (when `archiver` is on, or
    /// when neither is, as Barman forces it) into the archive.
    ///
    /// Each directory is listed in name order, at most `streaming_archiver_batch_size`
    /// / `archiver_batch_size` entries per run (0: all), ignoring `*.tmp` and hidden
    /// files. In `streaming/`, `.partial` files are kept, except that when there are
    /// several all but the newest are archived (after the complete segments); when there
    /// is none, the newest complete file is kept, so `pg_receivewal` finds its position
    /// on restart. Names that are not WAL file names, and entries that are not regular
    /// files, go to `errors/<name>.<UTC yyyymmddTHHMMSSZ>.unknown`.
    ///
    /// Each WAL file is stored exactly as [`put_wal`](WalArchive::put_wal) stores it
    /// (validation, compression, durable no-replace install, xlog.db line under the
    /// xlog.db lock), and its source is removed only once the archived copy and its line
    /// are durable. Already archived with the same content: the source is deleted; with
    /// different content: it goes to `errors/` as `.duplicate`. A file that fails is
    /// left in place and reported in [`ArchiveReport::failed`]; the others proceed.
    ///
    /// The whole run holds the server's `archive-wal` lock.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] when another `archive-wal` (barman-rs or Barman) runs for
    /// the server; I/O errors listing the directories or taking the lock.
    pub fn archive_wal(&self) -> Result<ArchiveReport> {
        self.usable()?;
        let lock_path = self
            .lock_dir
            .join(format!(".{}-archive-wal.lock", self.server));
        let Some(_lock) = Lock::try_acquire(&lock_path)? else {
            return Err(Error::Busy {
                operation: "archive-wal",
                server: self.server.clone(),
            });
        };
        let mut report = ArchiveReport::default();
        let file_archiver = self.archiver || !self.streaming_archiver;
        if self.streaming_archiver {
            let batch = self.batch(Archiver::Streaming)?;
            self.run_batch(Archiver::Streaming, batch, &mut report)?;
        }
        if file_archiver {
            let batch = self.batch(Archiver::File)?;
            self.run_batch(Archiver::File, batch, &mut report)?;
        }
        Ok(report)
    }

    fn batch(&self, archiver: Archiver) -> Result<Batch, Error> {
        let (dir, size) = match archiver {
            Archiver::Streaming => (&self.streaming_dir, self.streaming_archiver_batch_size),
            Archiver::File => (&self.incoming_dir, self.archiver_batch_size),
        };
        let mut names = list_visible(dir)?;
        names.sort_by(|a, b| a.1.cmp(&b.1));
        let total = names.len();
        if size > 0 {
            names.truncate(size);
        }
        let mut batch = Batch {
            files: Vec::new(),
            unknown: Vec::new(),
            kept: Vec::new(),
            deferred: total - names.len(),
        };
        let mut partials = Vec::new();
        for (name, path) in names {
            if name.ends_with(".tmp") {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                // Renamed or removed since the listing.
                continue;
            };
            let parsed = name.parse::<WalFileName>().ok();
            match parsed {
                Some(n) if meta.is_file() => match (archiver, n) {
                    (Archiver::Streaming, WalFileName::Partial(_)) => partials.push((path, n)),
                    _ => batch.files.push((path, n)),
                },
                _ => batch.unknown.push(path),
            }
        }
        if archiver == Archiver::Streaming {
            if partials.len() > 1 {
                let newest = partials.pop();
                batch.files.append(&mut partials);
                batch.kept.extend(newest.map(|(p, _)| p));
            } else if partials.is_empty() {
                batch.kept.extend(batch.files.pop().map(|(p, _)| p));
            } else {
                batch.kept.extend(partials.into_iter().map(|(p, _)| p));
            }
        }
        Ok(batch)
    }

    fn run_batch(
        &self,
        archiver: Archiver,
        batch: Batch,
        report: &mut ArchiveReport,
    ) -> Result<(), Error> {
        report.deferred += batch.deferred;
        report.kept.extend(batch.kept);
        for (path, name) in batch.files {
            match self.store(&path, name) {
                Ok(Stored::Archived(entry)) => {
                    report.archived.push(ArchivedFile { archiver, entry });
                    if let Err(error) = remove_durably(&path) {
                        report.failed.push(FailedFile {
                            archiver,
                            path,
                            error,
                        });
                    }
                }
                Ok(Stored::Identical) => {
                    report.duplicates.push((archiver, name));
                    if let Err(error) = remove_durably(&path) {
                        report.failed.push(FailedFile {
                            archiver,
                            path,
                            error,
                        });
                    }
                }
                Ok(Stored::Different) => {
                    let file_name = file_name_of(&path);
                    match self.set_aside(&path, &file_name, ErrorKind::Duplicate, false) {
                        Ok(kept_as) => report.errors.push(MovedToErrors {
                            archiver,
                            name: file_name,
                            kind: ErrorKind::Duplicate,
                            kept_as,
                        }),
                        Err(error) => report.failed.push(FailedFile {
                            archiver,
                            path,
                            error,
                        }),
                    }
                }
                // A pre_archive_retry_script asked to stop: the rest of this batch
                // waits for the next run (as Barman's archiver returns there).
                Err(error @ Error::HookAborted { .. }) => {
                    report.failed.push(FailedFile {
                        archiver,
                        path,
                        error,
                    });
                    return Ok(());
                }
                Err(error) => report.failed.push(FailedFile {
                    archiver,
                    path,
                    error,
                }),
            }
        }
        for path in batch.unknown {
            let file_name = file_name_of(&path);
            let moved = if path.is_dir() {
                // Barman moves whole directories too; a rename is all it takes.
                self.move_dir_aside(&path, &file_name)
            } else {
                self.set_aside(&path, &file_name, ErrorKind::Unknown, false)
            };
            match moved {
                Ok(kept_as) => report.errors.push(MovedToErrors {
                    archiver,
                    name: file_name,
                    kind: ErrorKind::Unknown,
                    kept_as,
                }),
                Err(error) => report.failed.push(FailedFile {
                    archiver,
                    path,
                    error,
                }),
            }
        }
        Ok(())
    }

    fn move_dir_aside(&self, path: &Path, file_name: &str) -> Result<PathBuf, Error> {
        crate::fsutil::create_private_dir(&self.errors_dir)?;
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let dest = self.errors_dir.join(format!("{file_name}.{stamp}.unknown"));
        if dest.exists() {
            return Err(Error::io(
                "moving to",
                &dest,
                io::Error::from(io::ErrorKind::AlreadyExists),
            ));
        }
        fs::rename(path, &dest).map_err(|e| Error::io("moving to", &dest, e))?;
        crate::fsutil::sync_dir(&self.errors_dir)?;
        crate::fsutil::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        Ok(dest)
    }
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The entries of `dir` whose name does not start with a dot (what Barman's `glob("*")`
/// sees), as (name, path); nothing when `dir` does not exist. A name that is not UTF-8
/// is given lossily (it is never a WAL file name) with its true path.
fn list_visible(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut names = Vec::new();
    for entry in crate::fsutil::list_dir(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push((name, entry.path()));
        }
    }
    Ok(names)
}
