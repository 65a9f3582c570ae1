//! The fuzz targets of barman-wal, as plain functions.
//!
//! Each target takes any bytes, panics on a bug (a broken round-trip invariant, an
//! overflow, an out-of-bounds slice) and returns whether the input was accepted (parsed
//! to a value), which lets the stable runner (`tests/seeds.rs`, `barman-fuzz-runner`)
//! keep accepted mutants to mutate further. The libFuzzer binaries under
//! `fuzz_targets/` call the same functions, so `cargo fuzz run` and the stable runner
//! check the same properties.
#![deny(missing_docs)]

use std::io::Read;

use barman_wal::{
    BackupLabel, Codec, Lsn, PageHeader, SegmentCheck, SegmentName, TablespaceMap, TimelineHistory,
    TimelineId, WalFileName, WalSegSize,
};

/// A target: its name and its body, which panics on a bug and returns whether it
/// accepted the input (the runner's `barman_fuzz_runner::Target`).
pub type Target = (&'static str, fn(&[u8]) -> bool);

/// Every target, by name (the names of `fuzz_targets/*.rs` and `seeds/*/`).
pub const TARGETS: &[Target] = &[
    ("lsn", lsn),
    ("wal_file_name", wal_file_name),
    ("history_file", history_file),
    ("backup_label", backup_label),
    ("page_header", page_header),
    ("decompress", decompress),
    ("replication_message", replication_message),
];

/// `X/Y` LSNs: canonical text parses back to the same LSN, and the value is the one the
/// two hex numbers of the input say.
pub fn lsn(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(lsn) = s.parse::<Lsn>() else {
        return false;
    };
    assert_eq!(lsn.to_string().parse::<Lsn>().unwrap(), lsn);
    let (hi, lo) = s.split_once('/').unwrap();
    let v = (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap();
    assert_eq!(u64::from(lsn), v);
    true
}

/// WAL file names: the canonical name parses back to the same name, equals the input up
/// to case, and starts with its hash directory.
pub fn wal_file_name(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(name) = s.parse::<WalFileName>() else {
        return false;
    };
    let canonical = name.to_string();
    assert_eq!(canonical.parse::<WalFileName>().unwrap(), name);
    assert_eq!(canonical.to_lowercase(), s.to_lowercase());
    assert!(canonical.starts_with(&name.hash_dir()));
    true
}

/// Timeline history files: a parsed history writes a text that parses back to it, and
/// every position is on one of its timelines.
pub fn history_file(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let tli = TimelineId::new(1000);
    let Ok(h) = TimelineHistory::parse(tli, s) else {
        return false;
    };
    assert_eq!(TimelineHistory::parse(tli, &h.to_string()).unwrap(), h);
    for e in h.entries() {
        let at = h.timeline_at(e.switchpoint());
        assert!(h.timelines().any(|t| t == at));
    }
    true
}

/// `backup_label`, backup history files and `tablespace_map`: what parses writes a text
/// that parses back to it.
pub fn backup_label(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let mut accepted = false;
    if let Ok(l) = BackupLabel::parse(s) {
        assert_eq!(BackupLabel::parse(&l.to_string()).unwrap(), l);
        let _ = l.history_file_name(WalSegSize::DEFAULT);
        accepted = true;
    }
    if let Ok(m) = TablespaceMap::parse(s) {
        assert_eq!(TablespaceMap::parse(&m.to_string()).unwrap(), m);
        accepted = true;
    }
    accepted
}

/// WAL page headers and the segment validator: a header that reads writes back its own
/// bytes; the header check and the streaming validator (fed in uneven pieces) never
/// panic. The segment is the one of the first page's address, at the size its long
/// header gives (16 MiB otherwise).
pub fn page_header(data: &[u8]) -> bool {
    let header = PageHeader::parse(data);
    if let Some(h) = header {
        let written = h.to_bytes();
        assert_eq!(&written[..20], &data[..20]);
        if h.is_long() {
            assert_eq!(&written[24..40], &data[24..40]);
        }
    }
    let size = header
        .and_then(|h| h.segment_size())
        .and_then(|s| WalSegSize::new(u64::from(s)).ok())
        .unwrap_or(WalSegSize::DEFAULT);
    let tli = header
        .map(|h| h.timeline())
        .filter(|t| t.is_valid())
        .unwrap_or(TimelineId::FIRST);
    let start = header.map_or(Lsn::INVALID, |h| h.page_address());
    let name = SegmentName::containing(tli, start, size);
    let mut accepted = false;
    for partial in [false, true] {
        let check = SegmentCheck::new(name, size).partial(partial);
        accepted |= check.check_header(data, data.len() as u64).is_ok();
        let mut v = check.validator();
        let (a, b) = data.split_at(data.len() / 3);
        if v.feed(a).is_ok() && v.feed(b).is_ok() {
            accepted |= v.finish().is_ok();
        }
    }
    accepted
}

/// Every codec through magic detection: an error or some output, never a panic;
/// output is bounded. Accepted: a compressed stream that decodes (anything without a
/// known magic passes through as is, which proves nothing).
pub fn decompress(data: &[u8]) -> bool {
    let Ok(d) = Codec::decoder_detect(data) else {
        return false;
    };
    let compressed = d.codec() != Codec::None;
    let mut out = Vec::new();
    d.take(64 << 20).read_to_end(&mut out).is_ok() && compressed
}

/// The payloads of replication `CopyData` messages: a decoded server message encodes
/// back to the same bytes (nothing is lost or invented), and so does a decoded standby
/// status update.
pub fn replication_message(data: &[u8]) -> bool {
    use barman_wal::replication::{ServerMessage, StandbyStatus};
    let mut accepted = false;
    match ServerMessage::parse(data) {
        Ok(ServerMessage::XLogData(x)) => {
            let mut again = vec![b'w'];
            again.extend_from_slice(&u64::from(x.wal_start).to_be_bytes());
            again.extend_from_slice(&u64::from(x.wal_end).to_be_bytes());
            again.extend_from_slice(&x.send_time.as_micros().to_be_bytes());
            again.extend_from_slice(x.data);
            assert_eq!(again, data);
            accepted = true;
        }
        Ok(ServerMessage::Keepalive(k)) => {
            let mut again = vec![b'k'];
            again.extend_from_slice(&u64::from(k.wal_end).to_be_bytes());
            again.extend_from_slice(&k.send_time.as_micros().to_be_bytes());
            again.push(u8::from(k.reply_requested));
            assert_eq!(again.len(), data.len());
            assert_eq!(again[..17], data[..17]);
            assert_eq!(again[17] != 0, data[17] != 0);
            accepted = true;
        }
        Ok(_) => accepted = true,
        Err(_) => {}
    }
    if let Ok(s) = StandbyStatus::parse(data) {
        let bytes = s.encode();
        assert_eq!(StandbyStatus::parse(&bytes).unwrap(), s);
        assert_eq!(bytes[..33], data[..33]);
        accepted = true;
    }
    accepted
}
