//! The spool of prefetched WAL files: what may be handed to PostgreSQL, claims, and
//! the segment size read from a file.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use barman_wal::{SegmentCheck, WalFileName, WalSegSize};

/// A claim file last modified more than a minute ago (or unreadable).
pub(crate) fn is_stale(path: &Path) -> bool {
    is_older_than(path, std::time::Duration::from_secs(60))
}

/// The spool file that notes a Barman host without `get-wal --tar`.
pub(crate) const NO_TAR_MARKER: &str = ".no-get-wal-tar";

/// How long [`NO_TAR_MARKER`] is believed (the Barman host may be upgraded).
pub(crate) const NO_TAR_MEMORY: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `path` was last modified more than `age` ago (or cannot be read).
pub(crate) fn is_older_than(path: &Path, age: std::time::Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_or(true, |t| t.elapsed().is_ok_and(|a| a > age))
}

/// The WAL segment size written in the long header of the segment at `path` (what
/// [`WalRestoreClient::prefetch_after`](crate::WalRestoreClient::prefetch_after) needs to name the following segments); `None`
/// for a file that does not start with a valid long header (a history file, say).
///
/// ```
/// use barman_wal::{Lsn, PageHeader, PgMajorVersion, TimelineId, WalSegSize};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("000000010000000000000003");
/// let h = PageHeader::first_of_segment(PgMajorVersion::V15, TimelineId::FIRST,
///     Lsn::new(0x300_0000), 42, WalSegSize::DEFAULT);
/// std::fs::write(&path, h.to_bytes())?;
/// assert_eq!(barman_client::segment_size_of(&path), Some(WalSegSize::DEFAULT));
/// std::fs::write(&path, b"1\t0/3000000\tno recovery target specified\n")?;
/// assert_eq!(barman_client::segment_size_of(&path), None);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn segment_size_of(path: &Path) -> Option<WalSegSize> {
    first_page(path).and_then(|(header, _)| size_in(&header))
}

/// The page header at the start of the file at `path`, and the file's length.
fn first_page(path: &Path) -> Option<(barman_wal::PageHeader, u64)> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut head = Vec::with_capacity(64);
    file.take(64).read_to_end(&mut head).ok()?;
    Some((barman_wal::PageHeader::parse(&head)?, len))
}

/// The segment size a long header of a known PostgreSQL version gives.
fn size_in(header: &barman_wal::PageHeader) -> Option<WalSegSize> {
    header.version()?;
    WalSegSize::new(u64::from(header.segment_size()?)).ok()
}

/// Whether the segment `name` at `path` looks whole: a known PostgreSQL page magic, a
/// long header whose segment size is the file's size, and the page address of the
/// segment's start. Files that are not segments pass.
pub(crate) fn segment_sound(path: &Path, name: &str) -> bool {
    let Ok(WalFileName::Segment(seg)) = name.parse::<WalFileName>() else {
        return true;
    };
    first_page(path).is_some_and(|(header, len)| {
        size_in(&header).is_some_and(|size| {
            size.bytes() == len && seg.start_lsn(size).ok() == Some(header.page_address())
        })
    })
}

/// Whether a spooled file can be handed to PostgreSQL: a regular file (never a link)
/// of this user, written since the machine last booted (spooled files are not flushed
/// to disk, which would put the disk on the prefetch's path, so one written before a
/// crash may have been cut short), and as sound as the archive requires: a segment's
/// every page header and record CRC, its size, and the cluster's `system_id` when
/// known; a history file's lines.
pub(crate) fn spool_file_trusted(path: &Path, name: &str, system_id: Option<u64>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() || crate::spool::effective_uid().is_some_and(|uid| uid != meta.uid()) {
        return false;
    }
    if let (Ok(written), Some(boot)) = (meta.modified(), boot_time())
        && written < boot
    {
        return false;
    }
    match name.parse::<WalFileName>() {
        Ok(WalFileName::Segment(seg)) => {
            let Some(size) = segment_size_of(path) else {
                return false;
            };
            let mut check = SegmentCheck::new(seg, size);
            if let Some(id) = system_id {
                check = check.system_id(id);
            }
            File::open(path).ok().is_some_and(|f| {
                check
                    .check_reader(io::BufReader::with_capacity(1 << 16, f))
                    .is_ok()
            })
        }
        Ok(WalFileName::History(tli)) => std::fs::read_to_string(path)
            .ok()
            .is_some_and(|text| barman_wal::TimelineHistory::parse(tli, &text).is_ok()),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// When the machine booted (Linux: `btime` in `/proc/stat`).
fn boot_time() -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The effective user id of this process (`/proc/self/status`), `None` where it cannot
/// be read.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
