//! Shared helpers of the barman-rs benchmarks: where the bench inputs are.
//!
//! Real WAL segments are made by `benches/make-wal-corpus.sh` (a throwaway PostgreSQL
//! running pgbench) into the directory named by `BARMAN_BENCH_WAL_DIR`, by default
//! `benches/.cache/wal` (outside git). Without them the benches fall back to the small
//! golden segment committed in `crates/barman-wal/tests/data/pg15`.
use std::path::{Path, PathBuf};

/// Directory holding the WAL corpus.
pub fn wal_corpus_dir() -> PathBuf {
    match std::env::var_os("BARMAN_BENCH_WAL_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/wal"),
    }
}

/// The uncompressed WAL segments of the corpus (file name, bytes), sorted by name;
/// at most `max` of them.
pub fn wal_segments(max: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(wal_corpus_dir()) {
        let mut names: Vec<_> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        names.sort();
        for n in names.into_iter().take(max) {
            if let Ok(bytes) = std::fs::read(wal_corpus_dir().join(&n)) {
                out.push((n, bytes));
            }
        }
    }
    out
}
