//! Random catalogues, deterministic (seeded), shared by the oracle and property tests.

use barman_catalog::{BackupId, BackupInfo, BackupStatus, Catalogue, KeepTarget, PyDateTime};
use barman_wal::{SegmentName, TimelineId, WalSegSize};

/// xorshift64*: small, deterministic, good enough to spread test cases.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A generated catalogue plus what the oracle needs to know about it.
///
/// Its backups have one WAL segment size (1 MiB to 1 GiB), and their WAL may start near
/// the beginning of the WAL, just before a log boundary or just before the end of the
/// LSN space: ranges of segments cross log ids, whose last segment number depends on
/// the size (0xFF for 16 MiB, 0xFFF for 1 MiB, 0x3 for 1 GiB).
pub(crate) struct Generated {
    pub(crate) catalogue: Catalogue,
    /// The WAL segment size of every backup of the catalogue.
    pub(crate) size: WalSegSize,
    /// Seconds since the epoch of each backup's end (None when unset).
    pub(crate) ends: Vec<(BackupId, Option<i64>)>,
    /// The newest end time.
    pub(crate) last_end: i64,
}

impl Generated {
    /// The lowest `begin_wal` and highest `end_wal` segment numbers of the backups.
    pub(crate) fn segment_span(&self) -> Option<(u64, u64)> {
        let numbers = || {
            self.catalogue
                .iter()
                .flat_map(|b| [b.begin_wal, b.end_wal])
                .flatten()
                .map(|s| s.segment_no(self.size).unwrap())
        };
        Some((numbers().min()?, numbers().max()?))
    }

    /// An archive around the backups' WAL: segment numbers from `before` segments before
    /// the first backup's begin to `after` past the last backup's end (within the LSN
    /// space).
    pub(crate) fn archive_span(&self, before: u64, after: u64) -> Option<(u64, u64)> {
        let (lo, hi) = self.segment_span()?;
        let last = (1u64 << 32) * self.size.segments_per_log() - 1;
        Some((
            lo.saturating_sub(before).max(1),
            hi.saturating_add(after).min(last),
        ))
    }
}

pub(crate) const START: i64 = 1_790_000_000; // 2026-09-21

/// Most backups a generated catalogue has.
pub(crate) const MAX_BACKUPS: u64 = 40;

/// The most segment numbers a catalogue's backups span (each backup moves on by at most
/// 4 + 2 segments).
const MAX_SPAN: u64 = MAX_BACKUPS * 6;

/// A WAL segment size: any power of two from 1 MiB to 1 GiB, 16 MiB more often.
pub(crate) fn segment_size(rng: &mut Rng) -> WalSegSize {
    let shift = if rng.chance(30) {
        24
    } else {
        20 + rng.below(11)
    };
    WalSegSize::new(1 << shift).unwrap()
}

/// The segment number of a first backup: near the start of the WAL, just before a log
/// boundary (the last segments of a log id, whose number of segments depends on the
/// segment size), anywhere, or just before the end of the LSN space (log id FFFFFFFF),
/// leaving room for `span` more segments.
pub(crate) fn first_segment(rng: &mut Rng, size: WalSegSize, span: u64) -> u64 {
    let per_log = size.segments_per_log();
    let last = (1u64 << 32) * per_log - 1;
    let room = last - span;
    match rng.below(4) {
        0 => 1 + rng.below(8),
        1 => {
            let log = rng.below(1 << 32);
            (log * per_log)
                .saturating_sub(1 + rng.below(4))
                .clamp(1, room)
        }
        2 => 1 + rng.below(room),
        _ => room - rng.below(per_log.min(64)),
    }
}

pub(crate) fn catalogue(rng: &mut Rng) -> Generated {
    let mut cat = Catalogue::new("pg");
    let n = if rng.chance(20) {
        rng.below(MAX_BACKUPS + 1)
    } else {
        rng.below(13)
    };
    let size = segment_size(rng);
    let mut t = START;
    let mut seg = first_segment(rng, size, MAX_SPAN);
    let mut tli = 1u32;
    let mut ends = Vec::new();
    let mut last_end = START;
    let mut ids: Vec<BackupId> = Vec::new();
    for _ in 0..n {
        t += 3600 + rng.below(5 * 86400) as i64;
        let dt = jiff::tz::Offset::UTC.to_datetime(jiff::Timestamp::from_second(t).unwrap());
        let id = BackupId::from_datetime(dt);
        let mut b = BackupInfo::new(id);
        b.status = *rng.pick(&[
            BackupStatus::Done,
            BackupStatus::Done,
            BackupStatus::Done,
            BackupStatus::Done,
            BackupStatus::Done,
            BackupStatus::Failed,
            BackupStatus::WaitingForWals,
            BackupStatus::Started,
            BackupStatus::Empty,
            BackupStatus::Syncing,
        ]);
        b.mode = Some((*rng.pick(&["postgres", "rsync-concurrent"])).to_owned());
        if rng.chance(10) {
            tli += 1;
        }
        b.timeline = Some(TimelineId::new(tli));
        b.xlog_segment_size = size;
        seg += 1 + rng.below(4);
        let begin = SegmentName::from_segment_no(TimelineId::new(tli), seg, size).unwrap();
        seg += rng.below(3);
        let end = SegmentName::from_segment_no(TimelineId::new(tli), seg, size).unwrap();
        b.begin_wal = Some(begin);
        b.end_wal = Some(end);
        let end_t = t + 60 + rng.below(7200) as i64;
        let has_end = b.status == BackupStatus::Done || rng.chance(60);
        if has_end {
            b.end_time = Some(PyDateTime::from_timestamp(
                jiff::Timestamp::from_second(end_t).unwrap(),
                0,
            ));
            last_end = last_end.max(end_t);
        }
        ends.push((id, has_end.then_some(end_t)));
        // Incremental on top of an earlier postgres backup.
        if b.mode.as_deref() == Some("postgres") && !ids.is_empty() && rng.chance(25) {
            let parent = *rng.pick(&ids);
            if cat.get(parent).and_then(|p| p.mode.clone()).as_deref() == Some("postgres") {
                b.parent_backup_id = Some(parent);
                let mut p = cat.get(parent).unwrap().clone();
                p.children_backup_ids.get_or_insert_with(Vec::new).push(id);
                cat.insert(p);
            }
        }
        if b.status == BackupStatus::Done && b.parent_backup_id.is_none() && rng.chance(20) {
            cat.set_keep(
                id,
                Some(*rng.pick(&[KeepTarget::Full, KeepTarget::Standalone])),
            );
        }
        ids.push(id);
        cat.insert(b);
    }
    Generated {
        catalogue: cat,
        size,
        ends,
        last_end,
    }
}
