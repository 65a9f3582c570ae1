//! Load time and memory of a one-million-entry xlog.db in the WAL index.
//!
//! `cargo run --release -p barman-benches --bin xlogdb-scale [ENTRIES]`
use barman_benches::best_of;
use barman_benches::catalog_data::xlogdb_text;
use barman_catalog::WalIndex;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let text = xlogdb_text(n);
    let load = best_of(3, || {
        drop(WalIndex::parse("xlog.db", &text).expect("valid"))
    });
    let before = rss_bytes();
    let index = WalIndex::parse("xlog.db", &text).expect("valid");
    let after = rss_bytes();
    println!(
        "{} entries ({} MiB of text): load {:.0} ms (best of 3), index memory {:.0} bytes/entry",
        index.len(),
        text.len() >> 20,
        load.as_secs_f64() * 1e3,
        (after.saturating_sub(before)) as f64 / index.len() as f64
    );
}
