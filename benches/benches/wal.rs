//! Criterion benches of barman-wal: name parsing, segment validation, codecs on real WAL.
//!
//! `cargo bench -p barman-benches --bench wal [-- FILTER]`; inputs: see `benches/README.md`.
use std::hint::black_box;
use std::time::Duration;

use barman_benches::{COMPARED, compress, decompress, wal_segments};
use barman_wal::{Lsn, SegmentCheck, SegmentName, WalFileName, WalSegSize};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn names(c: &mut Criterion) {
    let mut g = c.benchmark_group("names");
    let segs: Vec<String> = (0..1000u64)
        .map(|i| {
            SegmentName::containing(
                1.into(),
                Lsn::new(i * 0x0123_4567_89AB),
                WalSegSize::DEFAULT,
            )
            .to_string()
        })
        .collect();
    g.throughput(Throughput::Elements(segs.len() as u64));
    g.bench_function("parse SegmentName", |b| {
        b.iter(|| {
            for s in &segs {
                black_box(s.parse::<SegmentName>().ok());
            }
        })
    });
    g.bench_function("parse WalFileName", |b| {
        b.iter(|| {
            for s in &segs {
                black_box(s.parse::<WalFileName>().ok());
            }
        })
    });
    let parsed: Vec<SegmentName> = segs.iter().map(|s| s.parse().unwrap()).collect();
    g.bench_function("format SegmentName", |b| {
        b.iter(|| {
            for s in &parsed {
                black_box(s.to_string());
            }
        })
    });
    let lsns: Vec<String> = (0..1000u64)
        .map(|i| Lsn::new(i * 0x0009_8765_4321).to_string())
        .collect();
    g.bench_function("parse Lsn", |b| {
        b.iter(|| {
            for s in &lsns {
                black_box(s.parse::<Lsn>().ok());
            }
        })
    });
    g.finish();
}

fn validation(c: &mut Criterion) {
    let segs = wal_segments(4);
    let (name, bytes) = &segs[segs.len() / 2];
    let size = WalSegSize::new(bytes.len() as u64).unwrap_or(WalSegSize::DEFAULT);
    let check = SegmentCheck::new(*name, size);
    let mut g = c.benchmark_group("validate");
    g.bench_function("long header", |b| {
        b.iter(|| {
            black_box(
                check
                    .check_header(&bytes[..8192], bytes.len() as u64)
                    .unwrap(),
            )
        })
    });
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("pages", |b| {
        b.iter(|| {
            black_box(
                check
                    .clone()
                    .records(false)
                    .check_reader(&bytes[..])
                    .unwrap(),
            )
        })
    });
    g.bench_function("records + crc32c", |b| {
        b.iter(|| black_box(check.check_reader(&bytes[..]).unwrap()))
    });
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let segs = wal_segments(4);
    let input: Vec<u8> = segs.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let mut g = c.benchmark_group("codec");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Bytes(input.len() as u64));
    for &(codec, level) in COMPARED {
        let id = format!("{codec}-{level}");
        let packed = compress(codec, level, &input);
        eprintln!(
            "{id}: ratio {:.3} on {} bytes",
            packed.len() as f64 / input.len() as f64,
            input.len()
        );
        g.bench_with_input(BenchmarkId::new("compress", &id), &input, |b, i| {
            b.iter(|| black_box(compress(codec, level, i)))
        });
        let mut out = Vec::with_capacity(input.len());
        g.bench_with_input(BenchmarkId::new("decompress", &id), &packed, |b, p| {
            b.iter(|| decompress(p, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, names, validation, codecs);
criterion_main!(benches);
