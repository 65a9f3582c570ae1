//! PostgreSQL data page checksums (`initdb --data-checksums`), verified on the copy a
//! backup made, as pg_basebackup does while it streams: a page whose checksum does not
//! match is reported with its file and block, unless WAL replay rewrites it anyway (its
//! LSN is at or after the backup's start) or it is new (all zeros).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use barman_wal::Lsn;

/// PostgreSQL's block size (`BLCKSZ`), the only one barman-rs verifies.
pub const BLOCK_SIZE: usize = 8192;
/// Blocks per relation segment file (1 GiB / 8 KiB).
const BLOCKS_PER_SEGMENT: u32 = 131_072;

const N_SUMS: usize = 32;
const FNV_PRIME: u32 = 16_777_619;
const BASE_OFFSETS: [u32; N_SUMS] = [
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
];

fn mix(sum: u32, value: u32) -> u32 {
    let t = sum ^ value;
    t.wrapping_mul(FNV_PRIME) ^ (t >> 17)
}

/// The checksum PostgreSQL stores in `pd_checksum` for `page` at block `blkno` of its
/// relation (counted across segment files). The stored checksum itself is ignored.
pub fn page_checksum(page: &[u8; BLOCK_SIZE], blkno: u32) -> u16 {
    let mut sums = BASE_OFFSETS;
    for (i, row) in page.chunks_exact(4 * N_SUMS).enumerate() {
        for (j, word) in row.chunks_exact(4).enumerate() {
            let mut v = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            // pd_checksum (bytes 8..10 of the page) counts as zero.
            if i == 0 && j == 2 {
                v &= 0xFFFF_0000;
            }
            sums[j] = mix(sums[j], v);
        }
    }
    for _ in 0..2 {
        for s in &mut sums {
            *s = mix(*s, 0);
        }
    }
    let folded = sums.iter().fold(0u32, |acc, s| acc ^ s) ^ blkno;
    // Truncation intended: the result fits 16 bits by construction.
    ((folded % 65535) + 1) as u16
}

/// Whether `name` is a relation file that carries page checksums: `<oid>`,
/// `<oid>.<segment>`, `<oid>_fsm`, `<oid>_vm` (with segments), not `_init` forks'
/// neighbours like `pg_internal.init` or `PG_VERSION`. Returns the segment number.
pub fn relation_segment(name: &str) -> Option<u32> {
    let (stem, seg) = match name.split_once('.') {
        Some((s, n)) => (s, n.parse().ok()?),
        None => (name, 0),
    };
    let oid = stem
        .strip_suffix("_fsm")
        .or_else(|| stem.strip_suffix("_vm"))
        .or_else(|| stem.strip_suffix("_init"))
        .unwrap_or(stem);
    (!oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit())).then_some(seg)
}

/// A page whose checksum does not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPage {
    /// Block number inside the file.
    pub block: u32,
    /// The checksum the page carries.
    pub stored: u16,
    /// The checksum of its content.
    pub computed: u16,
}

/// Verifies every page of the relation segment file at `path` (segment number
/// `segment`), skipping new pages and pages with an LSN at or after `start` (WAL replay
/// restores them). A trailing partial page is ignored (the file was being extended).
///
/// # Errors
///
/// I/O errors reading the file.
pub fn verify_file(path: &Path, segment: u32, start: Lsn) -> io::Result<Vec<BadPage>> {
    let mut f = File::open(path)?;
    let mut page = [0u8; BLOCK_SIZE];
    let mut bad = Vec::new();
    let mut block = 0u32;
    loop {
        let mut filled = 0;
        while filled < BLOCK_SIZE {
            match f.read(&mut page[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled < BLOCK_SIZE {
            return Ok(bad);
        }
        if let Some(b) = check_page(
            &page,
            segment.wrapping_mul(BLOCKS_PER_SEGMENT).wrapping_add(block),
            start,
        ) {
            bad.push(BadPage { block, ..b });
        }
        block += 1;
    }
}

fn check_page(page: &[u8; BLOCK_SIZE], blkno: u32, start: Lsn) -> Option<BadPage> {
    // pd_upper == 0: a new, never initialised page (PageIsNew).
    let upper = u16::from_le_bytes([page[14], page[15]]);
    if upper == 0 {
        return None;
    }
    let lsn = (u64::from(u32::from_le_bytes([page[0], page[1], page[2], page[3]])) << 32)
        | u64::from(u32::from_le_bytes([page[4], page[5], page[6], page[7]]));
    if lsn >= start.as_u64() {
        return None;
    }
    let stored = u16::from_le_bytes([page[8], page[9]]);
    let computed = page_checksum(page, blkno);
    (stored != computed).then_some(BadPage {
        block: 0,
        stored,
        computed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_files_are_recognised() {
        assert_eq!(relation_segment("16384"), Some(0));
        assert_eq!(relation_segment("16384.2"), Some(2));
        assert_eq!(relation_segment("16384_fsm"), Some(0));
        assert_eq!(relation_segment("16384_vm.1"), Some(1));
        assert_eq!(relation_segment("PG_VERSION"), None);
        assert_eq!(relation_segment("pg_filenode.map"), None);
        assert_eq!(relation_segment("pg_internal.init"), None);
    }

    #[test]
    fn new_and_recent_pages_are_not_judged() {
        let zero = [0u8; BLOCK_SIZE];
        assert_eq!(check_page(&zero, 0, Lsn::new(1)), None);
        let mut page = [7u8; BLOCK_SIZE];
        page[..8].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x10]);
        // LSN 0/10000000 is after a start at 0/100: replay rewrites the page.
        assert_eq!(check_page(&page, 0, Lsn::new(0x100)), None);
        let bad = check_page(&page, 0, Lsn::new(0x2000_0000)).unwrap();
        assert_eq!(bad.stored, 0x0707);
    }
}
