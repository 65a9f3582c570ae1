//! Side-by-side table of our codecs and the C tools on the same WAL segments.
//!
//! Measures every codec/level pair of `COMPARED` like `compare-c-tools.sh` measures the C
//! tools (whole corpus, best of 3, single thread, MB/s of uncompressed data), then joins
//! `benches/.cache/c-tools.tsv` if that script has run.
//!
//! `cargo run --release -p barman-benches --bin codec-table`
use std::collections::HashMap;
use std::path::Path;

use barman_benches::{COMPARED, best_of, compress, decompress, wal_segments};

fn main() {
    let segs = wal_segments(64);
    let files: Vec<&[u8]> = segs.iter().map(|(_, b)| b.as_slice()).collect();
    let total: usize = files.iter().map(|f| f.len()).sum();
    let c_tools = read_c_tools(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/c-tools.tsv"));
    println!("{} segments, {} MiB of WAL\n", files.len(), total >> 20);
    println!(
        "| codec | level | ours comp MB/s | C comp MB/s | comp ours/C | ours decomp MB/s | C decomp MB/s | decomp ours/C | ours ratio | C ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &(codec, level) in COMPARED {
        let mut packed: Vec<Vec<u8>> = Vec::new();
        let comp = best_of(3, || {
            packed = files.iter().map(|f| compress(codec, level, f)).collect()
        });
        let mut out = Vec::with_capacity(16 << 20);
        let decomp = best_of(3, || packed.iter().for_each(|p| decompress(p, &mut out)));
        let ratio = packed.iter().map(Vec::len).sum::<usize>() as f64 / total as f64;
        let mbps = |d: std::time::Duration| total as f64 / 1e6 / d.as_secs_f64();
        let (oc, od) = (mbps(comp), mbps(decomp));
        let key = (codec.name().to_owned(), level.to_string());
        let c = c_tools
            .get(&key)
            .or_else(|| c_tools.get(&(codec.name().to_owned(), String::new())));
        let fmt = |v: Option<f64>, p: usize| v.map_or("-".to_owned(), |v| format!("{v:.p$}"));
        println!(
            "| {codec} | {level} | {oc:.0} | {} | {} | {od:.0} | {} | {} | {ratio:.3} | {} |",
            fmt(c.map(|c| c.0), 0),
            fmt(c.map(|c| oc / c.0), 2),
            fmt(c.map(|c| c.1), 0),
            fmt(c.map(|c| od / c.1), 2),
            fmt(c.map(|c| c.2), 3),
        );
    }
}

/// `codec level comp_mbps decomp_mbps ratio` rows written by compare-c-tools.sh.
fn read_c_tools(path: &Path) -> HashMap<(String, String), (f64, f64, f64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!(
            "no {} (run benches/compare-c-tools.sh for the C columns)",
            path.display()
        );
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let num = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some((
                (f.first()?.to_string(), f.get(1)?.to_string()),
                (num(2)?, num(3)?, num(4)?),
            ))
        })
        .collect()
}
