//! Criterion benches of barman-catalog: xlog.db at a million entries, retention over
//! ten thousand backups.
//!
//! `cargo bench -p barman-benches --bench catalog`; memory per entry:
//! `cargo run --release -p barman-benches --bin xlogdb-scale`.
use std::hint::black_box;
use std::time::Duration;

use barman_benches::catalog_data::{catalogue, xlogdb_text};
use barman_catalog::{RetentionPolicy, WalIndex};
use barman_wal::{SegmentName, TimelineId, WalFileName, WalSegSize};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn xlogdb(c: &mut Criterion) {
    let n = 1_000_000u64;
    let text = xlogdb_text(n);
    let mut g = c.benchmark_group("xlogdb");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(n));
    g.bench_function("parse 1M entries", |b| {
        b.iter(|| black_box(WalIndex::parse("xlog.db", &text).unwrap()))
    });
    let index = WalIndex::parse("xlog.db", &text).unwrap();
    g.throughput(Throughput::Elements(1));
    let probe = WalFileName::Segment(
        SegmentName::from_segment_no(TimelineId::FIRST, n / 2, WalSegSize::DEFAULT).unwrap(),
    );
    g.bench_function("lookup in 1M", |b| b.iter(|| black_box(index.get(&probe))));
    g.bench_function("last segment of timeline in 1M", |b| {
        b.iter(|| black_box(index.last_segment(TimelineId::FIRST)))
    });
    g.finish();
}

fn retention(c: &mut Criterion) {
    let cat = catalogue(10_000);
    let now = jiff::Timestamp::from_second(1_600_000_000 + 10_000 * 21_600).unwrap();
    let mut g = c.benchmark_group("retention");
    g.throughput(Throughput::Elements(10_000));
    for policy in ["REDUNDANCY 30", "RECOVERY WINDOW OF 4 WEEKS"] {
        let p: RetentionPolicy = policy.parse().unwrap();
        g.bench_function(format!("{policy} over 10k backups"), |b| {
            b.iter(|| black_box(p.evaluate(&cat, 3, now, &jiff::tz::TimeZone::UTC)))
        });
    }
    g.finish();
}

criterion_group!(benches, xlogdb, retention);
criterion_main!(benches);
