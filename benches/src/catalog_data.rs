//! Synthetic catalogues at scale for the catalogue benches.
use barman_catalog::{BackupId, BackupInfo, BackupStatus, Catalogue, PyDateTime};
use barman_wal::{SegmentName, TimelineId, WalSegSize};

/// An xlog.db text of `n` segments on timeline 1 (16 MiB), gzip-compressed sizes and
/// float mtimes, as a busy server's archive looks.
pub fn xlogdb_text(n: u64) -> String {
    let mut s = String::with_capacity(n as usize * 64);
    for i in 0..n {
        let seg = SegmentName::from_segment_no(TimelineId::FIRST, i + 1, WalSegSize::DEFAULT)
            .expect("in range");
        s.push_str(&format!(
            "{seg}\t{}\t{}.{:07}\tgzip\tNone\n",
            2_000_000 + i % 97_000,
            1_700_000_000 + i * 60,
            i % 9_999_999
        ));
    }
    s
}

/// A catalogue of `n` DONE backups, one every 6 hours.
pub fn catalogue(n: usize) -> Catalogue {
    let mut cat = Catalogue::new("pg");
    for i in 0..n {
        let ts = jiff::Timestamp::from_second(1_600_000_000 + i as i64 * 21_600).expect("in range");
        let id = BackupId::from_datetime(jiff::tz::Offset::UTC.to_datetime(ts));
        let mut b = BackupInfo::new(id);
        b.status = if i % 50 == 7 {
            BackupStatus::Failed
        } else {
            BackupStatus::Done
        };
        b.end_time = Some(PyDateTime::from_timestamp(ts, 0));
        b.timeline = Some(TimelineId::FIRST);
        cat.insert(b);
    }
    cat
}
