//! Golden fixtures captured from a real PostgreSQL 15 by `tests/data/make-fixtures.sh`.
//! Values are read from `facts.env` and `pg_waldump` output, never restated here.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use barman_wal::{
    BackupLabel, Codec, Error, Lsn, PageHeader, PgMajorVersion, SegmentCheck, SegmentName,
    SegmentProblem, TablespaceMap, TimelineHistory, TimelineId, WalFileName, WalSegSize,
    XLP_LONG_HEADER,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pg15")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

fn facts() -> HashMap<String, String> {
    text("facts.env")
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('\'').to_owned())
        })
        .collect()
}

fn fact(f: &HashMap<String, String>, k: &str) -> String {
    f.get(k)
        .unwrap_or_else(|| panic!("facts.env has no {k}"))
        .clone()
}

fn size() -> WalSegSize {
    WalSegSize::new(fact(&facts(), "WAL_SEG_SIZE").parse().unwrap()).unwrap()
}

fn system_id() -> u64 {
    fact(&facts(), "SYSTEM_ID").parse().unwrap()
}

fn version() -> PgMajorVersion {
    PgMajorVersion::from_server_version_num(fact(&facts(), "PG_VERSION_NUM").parse().unwrap())
        .unwrap()
}

/// The whole fixture segment, decompressed through codec detection.
fn whole_segment() -> (SegmentName, Vec<u8>) {
    let f = facts();
    let name: SegmentName = fact(&f, "SEG_GZ").parse().unwrap();
    let gz = read(&format!("{name}.gz"));
    let mut d = Codec::decoder_detect(&gz[..]).unwrap();
    assert_eq!(d.codec(), Codec::Gzip);
    let mut bytes = Vec::new();
    d.read_to_end(&mut bytes).unwrap();
    (name, bytes)
}

/// Record LSNs listed by pg_waldump for the fixture segment.
fn waldump_lsns() -> Vec<(Lsn, String)> {
    let f = facts();
    text(&format!("{}.waldump.txt", fact(&f, "SEG_GZ")))
        .lines()
        .filter_map(|l| {
            let at = l.find("lsn: ")?;
            let lsn = l[at + 5..].split(',').next()?.trim().parse().ok()?;
            let desc = l.split("desc: ").nth(1).unwrap_or("").to_owned();
            Some((lsn, desc))
        })
        .collect()
}

fn problem(e: Error) -> SegmentProblem {
    match e {
        Error::InvalidSegment { problem, .. } => problem,
        other => panic!("expected an invalid segment, got {other:?}"),
    }
}

#[test]
fn first_pages_have_the_recorded_headers() {
    let f = facts();
    assert_eq!(version(), PgMajorVersion::V15);
    let magic = u16::from_str_radix(fact(&f, "PAGE_MAGIC").trim_start_matches("0x"), 16).unwrap();
    assert_eq!(version().wal_magic(), magic);
    for key in ["SEG_TL1_FIRST", "SEG_AFTER_SWITCH", "SEG_TL2"] {
        let name: SegmentName = fact(&f, key).parse().unwrap();
        let page = read(&format!("{name}.page0"));
        let h = PageHeader::parse(&page).unwrap();
        assert_eq!(h.magic(), magic);
        assert_eq!(
            h.info(),
            u16::from_str_radix(
                fact(&f, &format!("{key}_PAGE0_INFO")).trim_start_matches("0x"),
                16
            )
            .unwrap()
        );
        assert_ne!(h.info() & XLP_LONG_HEADER, 0);
        assert_eq!(
            h.timeline().to_string(),
            fact(&f, &format!("{key}_PAGE0_TLI"))
        );
        assert_eq!(
            h.page_address().to_string(),
            fact(&f, &format!("{key}_PAGE0_PAGEADDR"))
        );
        assert_eq!(h.page_address(), name.start_lsn(size()).unwrap());
        assert_eq!(h.system_id(), Some(system_id()));
        assert_eq!(h.segment_size().map(u64::from), Some(size().bytes()));
        assert_eq!(
            h.block_size(),
            Some(fact(&f, "BLOCK_SIZE").parse().unwrap())
        );
        // The header check accepts each real first page, including the timeline-2
        // segment whose first page still carries timeline 1.
        let check = SegmentCheck::new(name, size())
            .system_id(system_id())
            .version(version());
        let report = check.check_header(&page, size().bytes()).unwrap();
        assert_eq!(report.system_id, system_id());
    }
}

#[test]
fn header_check_refuses_foreign_renamed_and_truncated_files() {
    let f = facts();
    let name: SegmentName = fact(&f, "SEG_AFTER_SWITCH").parse().unwrap();
    let page = read(&format!("{name}.page0"));
    let check = SegmentCheck::new(name, size()).system_id(system_id());

    let other_cluster = SegmentCheck::new(name, size()).system_id(system_id() ^ 1);
    assert!(matches!(
        problem(other_cluster.check_header(&page, size().bytes()).unwrap_err()),
        SegmentProblem::WrongSystemId { found, .. } if found == system_id()
    ));

    let renamed = name.next(size()).unwrap();
    let err = SegmentCheck::new(renamed, size())
        .check_header(&page, size().bytes())
        .unwrap_err();
    assert!(err.to_string().contains(&renamed.to_string()), "{err}");
    assert!(matches!(
        problem(err),
        SegmentProblem::WrongPageAddress { offset: 0, .. }
    ));

    // A page of timeline 1 in a file named for timeline 2 is legitimate (a switch
    // copies the old segment), but not the other way round.
    let tl2: SegmentName = fact(&f, "SEG_TL2").parse().unwrap();
    let tl2_page = read(&format!("{tl2}.page0"));
    let mut newer = tl2_page.clone();
    newer[4..8].copy_from_slice(&3u32.to_le_bytes());
    assert!(matches!(
        problem(
            SegmentCheck::new(tl2, size())
                .check_header(&newer, size().bytes())
                .unwrap_err()
        ),
        SegmentProblem::TimelineAhead { .. }
    ));

    assert!(matches!(
        problem(check.check_header(&page, size().bytes() - 1).unwrap_err()),
        SegmentProblem::Truncated { .. }
    ));
    assert!(
        check
            .clone()
            .partial(true)
            .check_header(&page, size().bytes() - 8192)
            .is_ok()
    );
    assert!(matches!(
        problem(check.check_header(&page, size().bytes() + 1).unwrap_err()),
        SegmentProblem::TooLong { .. }
    ));
    let wrong_version = SegmentCheck::new(name, size()).version(PgMajorVersion::V16);
    assert!(matches!(
        problem(
            wrong_version
                .check_header(&page, size().bytes())
                .unwrap_err()
        ),
        SegmentProblem::WrongVersion {
            found_version: PgMajorVersion::V15,
            ..
        }
    ));
    let bigger = SegmentCheck::new(name, WalSegSize::new(64 << 20).unwrap());
    assert!(matches!(
        problem(bigger.check_header(&page, 64 << 20).unwrap_err()),
        SegmentProblem::WrongPageAddress { .. } | SegmentProblem::WrongSegmentSize { .. }
    ));
}

#[test]
fn whole_segment_records_match_pg_waldump() {
    let f = facts();
    let (name, bytes) = whole_segment();
    assert_eq!(bytes.len() as u64, size().bytes());
    let lsns = waldump_lsns();
    assert_eq!(lsns.len().to_string(), fact(&f, "SEG_GZ_RECORDS"));
    let check = SegmentCheck::new(name, size())
        .system_id(system_id())
        .version(version());
    // Fed in odd-sized pieces, to cross page boundaries mid-header.
    let mut v = check.validator();
    for chunk in bytes.chunks(1013) {
        v.feed(chunk).unwrap();
    }
    let report = v.finish().unwrap();
    assert_eq!(report.records_checked as usize, lsns.len());
    assert_eq!(report.last_record, Some(lsns.last().unwrap().0));
    assert!(lsns.last().unwrap().1.starts_with("SWITCH"));
    assert!(report.switched);
    assert!(report.end_of_wal.unwrap() > lsns.last().unwrap().0);
    assert_eq!(report.version, version());
    assert_eq!(check.check_reader(&bytes[..]).unwrap(), report);
    // Page headers only.
    let pages = check
        .clone()
        .records(false)
        .check_reader(&bytes[..])
        .unwrap();
    assert_eq!(pages.records_checked, 0);
    assert!(pages.pages_checked >= 1);
}

#[test]
fn whole_segment_corruptions_are_named() {
    let (name, bytes) = whole_segment();
    let lsns = waldump_lsns();
    let check = SegmentCheck::new(name, size()).system_id(system_id());
    let start = name.start_lsn(size()).unwrap().as_u64();

    // A flipped bit inside the third record's data.
    let (third, _) = lsns[2];
    let mut bad = bytes.clone();
    bad[(third.as_u64() - start) as usize + 30] ^= 0x20;
    match problem(check.check_reader(&bad[..]).unwrap_err()) {
        SegmentProblem::BadRecordCrc { lsn, .. } => assert_eq!(lsn, third),
        other => panic!("{other:?}"),
    }
    // The same file as a partial segment: valid WAL ends at the bad record.
    let partial = check.clone().partial(true).check_reader(&bad[..]).unwrap();
    assert_eq!(partial.end_of_wal, Some(third));
    assert_eq!(partial.records_checked, 2);

    // A broken back link.
    let mut bad = bytes.clone();
    let (fourth, _) = lsns[3];
    bad[(fourth.as_u64() - start) as usize + 8] ^= 0x08;
    assert!(matches!(
        problem(check.check_reader(&bad[..]).unwrap_err()),
        SegmentProblem::BadRecordCrc { .. } | SegmentProblem::BadPrevLink { .. }
    ));

    // The switch record zeroed: the WAL stops early in a complete segment.
    let (switch, _) = *lsns.last().unwrap();
    let mut bad = bytes.clone();
    let at = (switch.as_u64() - start) as usize;
    bad[at..at + 24].fill(0);
    match problem(check.check_reader(&bad[..]).unwrap_err()) {
        SegmentProblem::EndsEarly { end } => assert_eq!(end, switch),
        other => panic!("{other:?}"),
    }

    // Truncated by one page.
    let short = &bytes[..bytes.len() - 8192];
    assert!(matches!(
        problem(check.check_reader(short).unwrap_err()),
        SegmentProblem::Truncated { .. }
    ));
    // One byte too many.
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        problem(check.check_reader(&long[..]).unwrap_err()),
        SegmentProblem::TooLong { .. }
    ));
}

#[test]
fn history_file_from_a_promotion() {
    let f = facts();
    let file: WalFileName = fact(&f, "HISTORY_FILE").parse().unwrap();
    let WalFileName::History(tli) = file else {
        panic!("{file:?}")
    };
    let raw = text(&file.to_string());
    let h = TimelineHistory::parse(tli, &raw).unwrap();
    assert_eq!(h.entries().len(), 1);
    let e = &h.entries()[0];
    assert_eq!(e.parent(), TimelineId::FIRST);
    assert_eq!(e.switchpoint().to_string(), fact(&f, "TL2_SWITCH_LSN"));
    assert!(
        e.reason().contains(&fact(&f, "RESTORE_POINT_NAME")),
        "{}",
        e.reason()
    );
    assert_eq!(h.to_string(), raw, "written back byte for byte");
    assert_eq!(h.timeline_at(e.switchpoint()), tli);
    assert_eq!(
        h.timeline_at(Lsn::new(e.switchpoint().as_u64() - 1)),
        TimelineId::FIRST
    );
}

#[test]
fn backup_label_history_file_and_tablespace_map() {
    let f = facts();
    let raw = text("backup_label");
    let label = BackupLabel::parse(&raw).unwrap();
    assert_eq!(label.to_string(), raw, "written back byte for byte");
    assert!(!label.is_history_file());
    assert_eq!(label.method(), "streamed");
    assert_eq!(label.start_timeline(), Some(TimelineId::FIRST));
    assert_eq!(
        label.start_segment(),
        SegmentName::containing(label.timeline(), label.start_lsn(), size())
    );

    let backup_file = fact(&f, "BACKUP_FILES");
    assert_eq!(label.history_file_name(size()).to_string(), backup_file);
    assert!(matches!(
        backup_file.parse::<WalFileName>().unwrap(),
        WalFileName::BackupLabel { .. }
    ));
    let hist_raw = text(&backup_file);
    let hist = BackupLabel::parse(&hist_raw).unwrap();
    assert_eq!(hist.to_string(), hist_raw);
    assert!(hist.is_history_file());
    assert_eq!(hist.start_lsn(), label.start_lsn());
    assert_eq!(hist.label(), label.label());
    let (stop, stop_seg) = hist.stop().unwrap();
    assert!(stop > hist.start_lsn());
    assert_eq!(
        stop_seg,
        SegmentName::containing(hist.timeline(), stop, size())
    );
    assert_eq!(hist.stop_timeline(), Some(TimelineId::FIRST));

    let raw = text("tablespace_map");
    let map = TablespaceMap::parse(&raw).unwrap();
    assert_eq!(map.to_string(), raw);
    assert_eq!(map.links().len(), 1);
    assert_eq!(map.links()[0].oid().to_string(), fact(&f, "TABLESPACE_OID"));
    assert!(map.links()[0].path().ends_with("/tablespace dir"));
}

/// The real first pages, and the first pages of the real segment, with one mutation:
/// the page header reader, the header check and the streaming validator give a value or
/// an error, never a panic, and a header that reads writes back its own bytes.
mod near_valid_pages {
    use barman_testkit::mutate::{self, near_valid_bytes};
    use proptest::prelude::*;

    use super::*;

    fn inputs() -> Vec<(SegmentName, Vec<u8>)> {
        let f = facts();
        let mut out = Vec::new();
        for key in ["SEG_TL1_FIRST", "SEG_AFTER_SWITCH", "SEG_TL2"] {
            let name: SegmentName = fact(&f, key).parse().unwrap();
            out.push((name, read(&format!("{name}.page0"))));
        }
        let (name, whole) = whole_segment();
        out.push((name, whole[..3 * 8192].to_vec()));
        out
    }

    proptest! {
        #![proptest_config(mutate::config())]

        #[test]
        fn near_valid_pages_never_panic(
            (name, bytes, partial) in proptest::sample::select(inputs()).prop_flat_map(|(name, bytes)| {
                (Just(name), near_valid_bytes(Just(bytes)), any::<bool>())
            })
        ) {
            if let Some(h) = PageHeader::parse(&bytes) {
                let written = h.to_bytes();
                prop_assert_eq!(&written[..20], &bytes[..20]);
                if h.is_long() {
                    prop_assert_eq!(&written[24..40], &bytes[24..40]);
                }
            }
            let check = SegmentCheck::new(name, size()).partial(partial);
            let _ = check.check_header(&bytes, size().bytes());
            let mut v = check.validator();
            let (a, b) = bytes.split_at(bytes.len() / 3);
            if v.feed(a).is_ok() && v.feed(b).is_ok() {
                let _ = v.finish();
            }
        }
    }
}
