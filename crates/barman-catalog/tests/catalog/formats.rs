//! The on-disk formats on known samples: Barman's own test sample of backup.info,
//! xlog.db lines of every width, identity.json.

use barman_catalog::{
    BackupInfo, BackupStatus, BackupType, Error, Identity, WalIndex, XlogDbEntry,
};

/// The sample of Barman's `tests/test_infofile.py`.
const BARMAN_SAMPLE: &str = "backup_label=None
begin_offset=40
begin_time=2014-12-22 09:25:22.561207+01:00
begin_wal=000000010000000000000004
begin_xlog=0/4000028
children_backup_ids=None
config_file=/fakepath/postgresql.conf
end_offset=184
end_time=2014-12-22 09:25:27.410470+01:00
end_wal=000000010000000000000004
end_xlog=0/40000B8
error=None
hba_file=/fakepath/pg_hba.conf
ident_file=/fakepath/pg_ident.conf
mode=default
parent_backup_id=None
pgdata=/fakepath/data
server_name=fake-9.4-server
size=20935690
status=DONE
tablespaces=[('fake_tbs', 16384, '/fake_tmp/tbs')]
timeline=1
version=90400
";

#[test]
fn barman_sample_reads_and_writes_back() {
    let info = BackupInfo::parse("base/20141222T092522/backup.info", BARMAN_SAMPLE).unwrap();
    assert_eq!(info.id.to_string(), "20141222T092522");
    assert_eq!(info.status, BackupStatus::Done);
    assert_eq!(info.backup_type(), BackupType::Full);
    assert_eq!(info.tablespaces.as_ref().unwrap()[0].oid, 16384);
    assert_eq!(
        info.end_time.unwrap().to_string(),
        "2014-12-22 09:25:27.410470+01:00"
    );
    assert_eq!(info.xlog_segment_size.bytes(), 16 << 20);
    // Every sample line comes back unchanged; the keys it lacks are written as None.
    let written = info.to_string();
    for line in BARMAN_SAMPLE.lines() {
        assert!(
            written.lines().any(|l| l == line),
            "{line} missing from\n{written}"
        );
    }
    assert!(written.contains("\ncluster_size=None\n"));
    assert!(!written.contains("backup_name"), "hidden when unset");
    let keys: Vec<&str> = written
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
}

#[test]
fn backup_info_errors_name_the_place() {
    let path = "meta/20141222T092522-backup.info";
    let cases = [
        (
            "size=12\nbegin_wal=xyz\n",
            "line 2: invalid value for begin_wal: \"xyz\"",
        ),
        ("timeline=0\n", "line 1: invalid value for timeline"),
        (
            "tablespaces=[('a', 'x', '/t')]\n",
            "line 1: invalid value for tablespaces",
        ),
        (
            "copy_stats={'a': \n",
            "line 1: invalid value for copy_stats",
        ),
        ("status=BROKEN\n", "line 1: invalid value for status"),
        ("xlog_segment_size=1000\n", "power of two"),
        (
            "\n\n# comment\nno equals sign\n",
            "line 4: expected key=value",
        ),
        ("future_key=1\n", "line 1: unknown key \"future_key\""),
    ];
    for (text, expected) in cases {
        let err = BackupInfo::parse(path, text).unwrap_err().to_string();
        assert!(err.starts_with(path), "{err}");
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    assert!(matches!(
        BackupInfo::parse("backup.info", "status=DONE\n"),
        Err(Error::InvalidBackupId { .. })
    ));
}

#[test]
fn xlogdb_lines_of_every_width() {
    let text = "000000010000000000000002\t16777216\t1615159937\n\
                000000010000000000000003\t4000000\t1615159937.4639714\tgzip\n\
                000000010000000000000004.00000028.backup 300 1615159938.0 None None\n\
                00000002.history\t42\t1615159939.25\tNone\tgpg\n";
    let index = WalIndex::parse("wals/pg-xlog.db", text).unwrap();
    let written = index.to_string();
    assert_eq!(
        written,
        "000000010000000000000002\t16777216\t1615159937.0\tNone\tNone\n\
         000000010000000000000003\t4000000\t1615159937.4639714\tgzip\tNone\n\
         000000010000000000000004.00000028.backup\t300\t1615159938.0\tNone\tNone\n\
         00000002.history\t42\t1615159939.25\tNone\tgpg\n"
    );
    assert_eq!(WalIndex::parse("x", &written).unwrap().to_string(), written);
    for bad in [
        "000000010000000000000002 1",
        "000000010000000000000002 1 2 a b c",
        "foo 1 2",
        "000000010000000000000002 -1 2",
        "000000010000000000000002 1 nan",
    ] {
        assert!(XlogDbEntry::parse_line(bad).is_err(), "{bad}");
    }
    let err = WalIndex::parse(
        "wals/pg-xlog.db",
        "000000010000000000000002 1 1\n000000010000000000000003 x 1\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "wals/pg-xlog.db, line 2: invalid value for size: \"x\" (expected a byte count)"
    );
}

#[test]
fn index_queries_follow_text_order() {
    let mut lines = String::new();
    for name in [
        "000000020000000000000005",
        "00000002.history",
        "000000010000000000000004.partial",
        "000000010000000000000004",
        "000000010000000000000004.00000028.backup",
        "000000010000000100000000",
        "000000010000000000000005",
    ] {
        lines.push_str(&format!("{name} 1 1\n"));
    }
    let index = WalIndex::parse("x", &lines).unwrap();
    let names: Vec<String> = index.names().map(|n| n.to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(
        index.last_segment(1.into()).unwrap().to_string(),
        "000000010000000100000000"
    );
    assert_eq!(index.segments_on(1.into()).count(), 3);
    assert_eq!(index.timelines().len(), 2);
    assert_eq!(index.history_files().len(), 1);
    let r: Vec<String> = index
        .range(
            &"000000010000000000000004".parse().unwrap(),
            &"000000010000000000000005".parse().unwrap(),
        )
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        r,
        [
            "000000010000000000000004",
            "000000010000000000000004.00000028.backup",
            "000000010000000000000004.partial",
            "000000010000000000000005"
        ]
    );
}

#[test]
fn identity_json_as_barman_writes_it() {
    let text = "{\n    \"systemid\": \"7712020257735954489\",\n    \"version\": \"15\"\n}\n";
    let id = Identity::parse("identity.json", text).unwrap();
    assert_eq!(id.to_json(), text);
    let err = Identity::parse("/srv/barman/pg/identity.json", "{\"systemid\": 1}").unwrap_err();
    assert!(
        err.to_string().starts_with("/srv/barman/pg/identity.json"),
        "{err}"
    );
}
