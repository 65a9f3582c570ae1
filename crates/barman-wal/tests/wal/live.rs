//! WAL written live by a throwaway PostgreSQL cluster, validated segment by segment and
//! compared record by record with pg_waldump.

use std::collections::BTreeMap;
use std::io::Write;

use barman_wal::{
    Codec, CompressionLevel, Error, Lsn, PgMajorVersion, SegmentCheck, SegmentName, SegmentProblem,
    WalFileName, WalSegSize,
};

use barman_testkit::{self as pg, PgCluster};

#[test]
fn live_wal_validates_and_matches_pg_waldump() {
    let Some(bin) = pg::require() else { return };
    // 1 MiB segments: many segments and records that cross them, from little WAL; the
    // code under test takes the size from the server.
    let pg = PgCluster::start(
        &bin,
        &["--wal-segsize=1"],
        &[
            "wal_level = logical",
            "max_wal_size = 32MB",
            "wal_compression = off",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let size = WalSegSize::new(
        pg.sql("SELECT setting::bigint * 1 FROM pg_settings WHERE name = 'wal_segment_size'")
            .unwrap()
            .parse()
            .unwrap(),
    )
    .unwrap();
    let system_id: u64 = pg
        .sql("SELECT system_identifier FROM pg_control_system()")
        .unwrap()
        .parse()
        .unwrap();
    let version = PgMajorVersion::from_server_version_num(
        pg.sql("SHOW server_version_num").unwrap().parse().unwrap(),
    )
    .unwrap();

    pg.sql("CREATE TABLE t (id int PRIMARY KEY, c text)")
        .unwrap();
    pg.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        .unwrap();
    pg.sql("CHECKPOINT").unwrap();
    pg.sql("UPDATE t SET c = 'black'").unwrap();
    // A record spanning many pages, and one spanning several segments.
    pg.sql("SELECT pg_logical_emit_message(true, 'barman', repeat('x', 100000))")
        .unwrap();
    pg.sql("SELECT pg_logical_emit_message(true, 'barman', repeat('y', 3 * 1024 * 1024 + 123))")
        .unwrap();
    pg.sql("INSERT INTO t VALUES (0, 'after the big records')")
        .unwrap();
    let last = pg.sql("SELECT pg_walfile_name(pg_switch_wal())").unwrap();
    pg.wait_archived(&last).unwrap();

    let mut segments: Vec<(SegmentName, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(pg.archive()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Ok(WalFileName::Segment(s)) = name.parse::<WalFileName>()
            && s <= last.parse().unwrap()
        {
            segments.push((s, std::fs::read(pg.archive().join(&name)).unwrap()));
        }
    }
    segments.sort();
    assert!(
        segments.len() >= 5,
        "only {} segments archived",
        segments.len()
    );
    let (first, _) = segments[0];
    let (final_seg, _) = *segments.last().unwrap();

    // The oracle: every record pg_waldump finds in the archive, bucketed by segment.
    let dump = pg
        .waldump(&[
            "-p",
            &pg.archive().display().to_string(),
            &first.to_string(),
            &final_seg.to_string(),
        ])
        .unwrap();
    let mut by_segment: BTreeMap<SegmentName, Vec<Lsn>> = BTreeMap::new();
    for line in dump.lines() {
        let Some(at) = line.find("lsn: ") else {
            continue;
        };
        let lsn: Lsn = line[at + 5..]
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        by_segment
            .entry(SegmentName::containing(first.timeline(), lsn, size))
            .or_default()
            .push(lsn);
    }
    assert!(by_segment.values().map(Vec::len).sum::<usize>() > 1000);

    let mut crossing = 0;
    for (name, bytes) in &segments {
        let check = SegmentCheck::new(*name, size)
            .system_id(system_id)
            .version(version);
        let report = check
            .check_reader(&bytes[..])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = by_segment.get(name).cloned().unwrap_or_default();
        let continued = usize::from(report.continued_record.is_some());
        crossing += continued;
        assert_eq!(
            report.records_checked as usize + continued,
            expected.len(),
            "{name}: {report:?}"
        );
        if let Some(c) = report.continued_record {
            assert_eq!(Some(&c), expected.last(), "{name}");
        }
        if report.records_checked > 0 {
            assert!(expected.contains(&report.last_record.unwrap()), "{name}");
        }
        // The cheap header check agrees.
        assert_eq!(
            check
                .check_header(&bytes[..8192], bytes.len() as u64)
                .unwrap()
                .system_id,
            system_id
        );
    }
    assert!(
        crossing >= 2,
        "expected records crossing segment boundaries, saw {crossing}"
    );

    // A segment holding only the middle of the 3 MiB record: nothing but a continuation.
    let middle = segments
        .iter()
        .find(|(n, _)| !by_segment.contains_key(n))
        .expect("a segment with no record start");
    let r = SegmentCheck::new(middle.0, size)
        .system_id(system_id)
        .check_reader(&middle.1[..])
        .unwrap();
    assert_eq!((r.records_checked, r.continued_record), (0, None));

    corruption_is_found_in_real_wal(&segments, &by_segment, size, system_id);
    real_wal_streams_through_every_codec(&segments, size, system_id);
}

fn corruption_is_found_in_real_wal(
    segments: &[(SegmentName, Vec<u8>)],
    by_segment: &BTreeMap<SegmentName, Vec<Lsn>>,
    size: WalSegSize,
    system_id: u64,
) {
    // The segment with the most records, damaged in the middle of a record.
    let (name, bytes) = segments
        .iter()
        .max_by_key(|(n, _)| by_segment.get(n).map_or(0, Vec::len))
        .unwrap();
    let lsns = &by_segment[name];
    let target = lsns[lsns.len() / 2];
    let start = name.start_lsn(size).unwrap().as_u64();
    let mut bad = bytes.clone();
    let at = (target.as_u64() - start) as usize + 26;
    bad[at] ^= 0x01;
    let check = SegmentCheck::new(*name, size).system_id(system_id);
    match check.check_reader(&bad[..]).unwrap_err() {
        Error::InvalidSegment {
            segment,
            problem: SegmentProblem::BadRecordCrc { lsn, .. },
        } => {
            assert_eq!(segment, name.to_string());
            assert_eq!(lsn, target);
        }
        other => panic!("{other}"),
    }

    // A page header in the middle damaged: its address no longer matches.
    let mut bad = bytes.clone();
    bad[8192 * 5 + 8] ^= 0x01;
    let err = check.check_reader(&bad[..]).unwrap_err();
    assert!(err.to_string().contains("offset 40960"), "{err}");

    // Another cluster's WAL.
    let foreign = SegmentCheck::new(*name, size).system_id(system_id + 1);
    assert!(matches!(
        foreign.check_reader(&bytes[..]).unwrap_err(),
        Error::InvalidSegment {
            problem: SegmentProblem::WrongSystemId { .. },
            ..
        }
    ));
    // Renamed to the next segment.
    let renamed = SegmentCheck::new(name.next(size).unwrap(), size);
    assert!(matches!(
        renamed.check_reader(&bytes[..]).unwrap_err(),
        Error::InvalidSegment {
            problem: SegmentProblem::WrongPageAddress { offset: 0, .. },
            ..
        }
    ));
}

fn real_wal_streams_through_every_codec(
    segments: &[(SegmentName, Vec<u8>)],
    size: WalSegSize,
    system_id: u64,
) {
    let (name, bytes) = &segments[segments.len() / 2];
    let check = SegmentCheck::new(*name, size).system_id(system_id);
    let expected = check.check_reader(&bytes[..]).unwrap();
    for codec in Codec::ALL.into_iter().filter(|c| c.is_available()) {
        let mut e = codec.encoder(Vec::new(), CompressionLevel::Low).unwrap();
        e.write_all(bytes).unwrap();
        let packed = e.finish().unwrap();
        // Decompress and validate in one streaming pass.
        let d = Codec::decoder_detect(&packed[..]).unwrap();
        assert_eq!(d.codec(), codec);
        assert_eq!(check.check_reader(d).unwrap(), expected, "{codec}");
    }
}
