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
pub(crate) struct Generated {
    pub(crate) catalogue: Catalogue,
    /// Seconds since the epoch of each backup's end (None when unset).
    pub(crate) ends: Vec<(BackupId, Option<i64>)>,
    /// The newest end time.
    pub(crate) last_end: i64,
}

pub(crate) const START: i64 = 1_790_000_000; // 2026-09-21

pub(crate) fn catalogue(rng: &mut Rng) -> Generated {
    let mut cat = Catalogue::new("pg");
    let n = rng.below(9);
    let mut t = START;
    let mut seg = 2u64;
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
        seg += 1 + rng.below(4);
        let begin =
            SegmentName::from_segment_no(TimelineId::new(tli), seg, WalSegSize::DEFAULT).unwrap();
        seg += rng.below(3);
        let end =
            SegmentName::from_segment_no(TimelineId::new(tli), seg, WalSegSize::DEFAULT).unwrap();
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
        ends,
        last_end,
    }
}
