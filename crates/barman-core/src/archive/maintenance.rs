//! Catalogue maintenance: `rebuild-xlogdb` and `check-wal-archive`.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use barman_wal::{TimelineId, WalFileName};

use super::{WalArchive, entry_for_file};
use crate::fsutil::{TempFile, create_private_dir};
use crate::{Error, Result};

/// Why [`WalArchive::rebuild_xlogdb`] left a file out of xlog.db (Barman logs a warning
/// for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A `*.tmp` file in a hash directory.
    Temporary,
    /// A directory inside a hash directory.
    Directory,
    /// Any other file that is not an archived WAL file where it is.
    Unexpected,
}

/// A file [`WalArchive::rebuild_xlogdb`] left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// What [`WalArchive::rebuild_xlogdb`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RebuildReport {
    /// Timeline history files listed.
    pub history: usize,
    /// Backup label (`.backup`) files listed.
    pub backup_labels: usize,
    /// WAL segments listed.
    pub wal_files: usize,
    /// Archived `.partial` segments listed.
    pub partial: usize,
    /// Files left out, each with the reason (Barman's warnings).
    pub skipped: Vec<SkippedFile>,
}

impl WalArchive {
    /// Barman's `rebuild-xlogdb`: writes xlog.db anew from what `wals/` holds, the
    /// history files at its top first, then each hash directory in name order with its
    /// files in name order. Each line gives the file's size and mtime and the compression
    /// or encryption found from its magic bytes (an encrypted file's compression is not
    /// known without decrypting it: `None`, as Barman writes). The new file is written to a temporary file next to
    /// xlog.db, fsynced and renamed over it, all under the xlog.db lock, so archivers
    /// wait and readers see the old or the new catalogue, never a mix.
    ///
    /// Unlike Barman, archived `.partial` segments (which barman-rs archives with a
    /// line, as after a promotion) are listed rather than skipped.
    ///
    /// # Errors
    ///
    /// I/O errors reading `wals/` or writing xlog.db; on error the old xlog.db is
    /// untouched.
    pub fn rebuild_xlogdb(&self) -> Result<RebuildReport> {
        let xlogdb_dir = self.xlogdb.parent().unwrap_or(Path::new(".")).to_owned();
        create_private_dir(&xlogdb_dir)?;
        let _lock = self.xlogdb_lock()?;
        let existed = self.xlogdb.exists();
        let mut report = RebuildReport::default();
        let xlogdb_name = self
            .xlogdb
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();

        let mut tmp = TempFile::new(&xlogdb_dir, &xlogdb_name)?;
        let tmp_path = tmp.path().to_owned();
        let write_err = |e| Error::io("writing", &tmp_path, e);
        {
            let mut out = io::BufWriter::new(tmp.file().map_err(write_err)?);
            let top = sorted_entries(&self.wals_dir)?;
            // History files first, as Barman lists them (sorted names put them before
            // the hash directories anyway, but a stray name might not).
            for (name, path) in &top {
                if path.is_dir() || name.starts_with(&xlogdb_name) || *path == tmp_path {
                    continue;
                }
                match name.parse::<WalFileName>() {
                    Ok(n @ WalFileName::History(_)) => {
                        writeln!(
                            out,
                            "{}",
                            entry_for_file(n, path, self.repository.custom_compression())?
                        )
                        .map_err(write_err)?;
                        report.history += 1;
                    }
                    _ => report.skipped.push(SkippedFile {
                        path: path.clone(),
                        reason: SkipReason::Unexpected,
                    }),
                }
            }
            for (_, dir) in top.iter().filter(|(_, p)| p.is_dir()) {
                for (name, path) in sorted_entries(dir)? {
                    if path.is_dir() {
                        report.skipped.push(SkippedFile {
                            path,
                            reason: SkipReason::Directory,
                        });
                        continue;
                    }
                    let parsed = name.parse::<WalFileName>().ok();
                    let counter = match parsed {
                        Some(WalFileName::Segment(_)) => &mut report.wal_files,
                        Some(WalFileName::BackupLabel { .. }) => &mut report.backup_labels,
                        Some(WalFileName::Partial(_)) => &mut report.partial,
                        _ => {
                            let reason = if name.ends_with(".tmp") {
                                SkipReason::Temporary
                            } else {
                                SkipReason::Unexpected
                            };
                            report.skipped.push(SkippedFile { path, reason });
                            continue;
                        }
                    };
                    let Some(n) = parsed else { continue };
                    *counter += 1;
                    writeln!(
                        out,
                        "{}",
                        entry_for_file(n, &path, self.repository.custom_compression())?
                    )
                    .map_err(write_err)?;
                }
            }
            out.flush().map_err(write_err)?;
        }
        tmp.replace(&self.xlogdb)?;
        if !existed {
            // The name before Barman 3.13, deleted when the new one is created.
            let _ = fs::remove_file(self.wals_dir.join("xlog.db"));
        }
        Ok(report)
    }

    /// Barman's `check-wal-archive`: whether the archive can safely take the WAL of a
    /// new cluster. Without `timeline` the catalogue (xlog.db, rebuilt first if missing)
    /// must be empty; with it, it must hold no WAL or history file of that timeline or a
    /// later one, nor any name that is not a WAL file name.
    ///
    /// # Errors
    ///
    /// [`Error::ArchiveNotUsable`] with Barman's reason: `Expected empty
    /// archive`, `Found N file(s) in WAL archive equal to or newer than timeline T`,
    /// `Unexpected file X found in WAL archive`, or `Cannot check WAL archive with
    /// malformed timeline 0`; I/O errors reading xlog.db.
    pub fn check_wal_archive(&self, timeline: Option<TimelineId>) -> Result<()> {
        if !self.xlogdb.exists() {
            self.rebuild_xlogdb()?;
        }
        let unusable = |reason: String| Error::ArchiveNotUsable {
            server: self.server.clone(),
            reason,
        };
        if let Some(t) = timeline
            && !t.is_valid()
        {
            return Err(unusable(format!(
                "Cannot check WAL archive with malformed timeline {}",
                t.as_u32()
            )));
        }
        let _lock = self.xlogdb_lock()?;
        let f = match fs::File::open(&self.xlogdb) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("opening", &self.xlogdb, e)),
        };
        let mut newer = 0usize;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| Error::io("reading", &self.xlogdb, e))?;
            let Some(name) = line.split_ascii_whitespace().next() else {
                continue;
            };
            let Some(t) = timeline else {
                return Err(unusable("Expected empty archive".to_owned()));
            };
            let Ok(parsed) = name.parse::<WalFileName>() else {
                return Err(unusable(format!(
                    "Unexpected file {name} found in WAL archive"
                )));
            };
            if parsed.timeline() >= t {
                newer += 1;
            }
        }
        if newer > 0 {
            return Err(unusable(format!(
                "Found {newer} file{} in WAL archive equal to or newer than timeline {}",
                if newer > 1 { "s" } else { "" },
                timeline.map_or(0, TimelineId::as_u32)
            )));
        }
        Ok(())
    }
}

/// The entries of `dir` sorted by name, as (lossy name, path); nothing if `dir` does
/// not exist.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut out = Vec::new();
    for entry in crate::fsutil::list_dir(dir)? {
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}
