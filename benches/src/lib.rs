//! Shared helpers of the barman-rs benchmarks: the WAL corpus and codec measurements.
//!
//! Real WAL segments are made by `benches/make-wal-corpus.sh` (a throwaway PostgreSQL
//! running pgbench) into the directory named by `BARMAN_BENCH_WAL_DIR`, by default
//! `benches/.cache/wal` (outside git). Without them the benches fall back to the small
//! golden segment committed in `crates/barman-wal/tests/data/pg15`, and say so.
pub mod catalog_data;
pub mod harness;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use barman_wal::{Codec, CompressionLevel, SegmentName};

/// Directory holding the WAL corpus.
pub fn wal_corpus_dir() -> PathBuf {
    match std::env::var_os("BARMAN_BENCH_WAL_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/wal"),
    }
}

/// The uncompressed WAL segments of the corpus (name, bytes), sorted by name; at most
/// `max` of them. Falls back to the committed fixture segment when there is no corpus.
pub fn wal_segments(max: usize) -> Vec<(SegmentName, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(wal_corpus_dir()) {
        let mut names: Vec<SegmentName> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        names.sort();
        for n in names.into_iter().take(max) {
            if let Ok(bytes) = std::fs::read(wal_corpus_dir().join(n.to_string())) {
                out.push((n, bytes));
            }
        }
    }
    if out.is_empty() {
        eprintln!(
            "no WAL corpus in {} (run benches/make-wal-corpus.sh); using the small fixture segment",
            wal_corpus_dir().display()
        );
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/barman-wal/tests/data/pg15");
        let name: SegmentName = "000000010000000000000002".parse().expect("a valid name");
        let gz = std::fs::read(dir.join(format!("{name}.gz"))).expect("the fixture segment");
        let mut bytes = Vec::new();
        decompress(&gz, &mut bytes);
        out.push((name, bytes));
    }
    out
}

/// The codec and level pairs compared with the C tools (`barman-bench`, codecs).
pub const COMPARED: &[(Codec, i32)] = &[
    (Codec::Gzip, 1),
    (Codec::Gzip, 6),
    (Codec::Zstd, 1),
    (Codec::Zstd, 3),
    (Codec::Lz4, 1),
    (Codec::Bzip2, 9),
    (Codec::Xz, 3),
    (Codec::Snappy, 0),
];

/// Compresses `data` with `codec` at `level` into a fresh buffer.
pub fn compress(codec: Codec, level: i32, data: &[u8]) -> Vec<u8> {
    let mut e = codec
        .encoder(
            Vec::with_capacity(data.len() / 2),
            CompressionLevel::Exact(level),
        )
        .expect("codec enabled");
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// Decompresses `data` (codec detected from its magic) into `out`, reusing its buffer.
pub fn decompress(data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    Codec::decoder_detect(data)
        .expect("codec enabled")
        .read_to_end(out)
        .expect("valid stream");
}

/// Best-of-`runs` wall time of `f`.
pub fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}
