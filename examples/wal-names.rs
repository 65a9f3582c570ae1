//! Where does the WAL of a position live, and what does a file name mean?
//!
//! ```text
//! cargo run -p barman-examples --example wal-names -- 16/B374D848 3 [SEGMENT_SIZE_BYTES]
//! cargo run -p barman-examples --example wal-names -- 0000000300000016000000B3
//! ```
use std::error::Error;

use barman_wal::{Lsn, SegmentName, TimelineId, WalFileName, WalSegSize};

fn main() {
    if let Err(e) = example() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn example() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size = match args.get(2) {
        Some(s) => WalSegSize::new(s.parse()?)?,
        None => WalSegSize::DEFAULT,
    };
    match args.first().map(String::as_str) {
        Some(arg) if arg.contains('/') => {
            let lsn: Lsn = arg.parse()?;
            let tli: TimelineId = args
                .get(1)
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(TimelineId::FIRST);
            let seg = SegmentName::containing(tli, lsn, size);
            println!(
                "LSN {lsn} on timeline {tli} is at offset {} of segment {seg}",
                size.offset_of(lsn)
            );
            println!("archived as wals/{}/{seg}", seg.hash_dir());
        }
        Some(name) => {
            let file: WalFileName = name.parse()?;
            println!("{file:?}");
            if let Some(seg) = file.segment() {
                println!(
                    "covers {} .. {} (segment size {size})",
                    seg.start_lsn(size)?,
                    seg.end_lsn(size)?
                );
            }
            println!("hash dir: {:?}", file.hash_dir());
        }
        None => {
            return Err(
                "usage: wal-names LSN [TIMELINE [SEGMENT_SIZE]] | wal-names FILE_NAME".into(),
            );
        }
    }
    Ok(())
}
