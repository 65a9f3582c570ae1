//! Trust, point 11: no input panics barman-core's parsers. Near-valid inputs (a valid
//! text with one mutation, `barman_testkit::mutate`) walk deep into each: connection
//! strings (keyword/value and URI), password files, the INI reader, the whole
//! configuration, and the checksum file of a `barman-wal-archive` stream.

use barman_core::config::{Config, Ini, MemorySource};
use barman_core::postgres::{ConnInfo, pgpass_lookup};
use barman_testkit::mutate::{config, near_valid};
use proptest::prelude::*;

fn conninfo() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("host=pg port=5432 user=barman dbname=postgres password='s e\\'cret' sslmode=verify-full".to_owned()),
        Just("host=/var/run/postgresql,pg2 port=5432,5433 target_session_attrs=read-write application_name=x".to_owned()),
        Just("postgresql://barman:secret@pg:5432/postgres?sslmode=require&application_name=x".to_owned()),
        Just("postgres://[::1]:5433,pg2/db?host=/tmp&connect_timeout=10".to_owned()),
    ]
}

fn pgpass() -> impl Strategy<Value = String> {
    Just(
        "# comment\npg:5432:postgres:barman:se\\:cr\\\\et\n*:*:*:*:fallback\nhost:*:db:user:pw\n"
            .to_owned(),
    )
}

fn ini() -> impl Strategy<Value = String> {
    Just(
        "[DEFAULT]\nbase = /srv\n[barman]\nbarman_home = %(base)s/barman\nlog_level = INFO\n\n; a comment\n[pg]\ndescription = \"multi\n  line\"\nconninfo: host=pg\n  user=barman\nbackup_method = postgres\nretention_policy = RECOVERY WINDOW OF 2 WEEKS\ncompression = gzip\n"
            .to_owned(),
    )
}

fn configuration() -> impl Strategy<Value = String> {
    Just(
        "[barman]\nbarman_home = /srv/barman\nbarman_user = barman\ncompression = lz4\nminimum_redundancy = 1\n\n[pg]\nconninfo = host=pg user=barman\nstreaming_conninfo = host=pg\nbackup_method = postgres\narchiver = on\nbackup_options = concurrent_backup\nrecovery_options = get-wal,delta-restore\nretention_policy = REDUNDANCY 3\nwal_retention_policy = main\nlast_backup_maximum_age = 1 week\nlast_backup_minimum_size = 1 Gi\nbandwidth_limit = 1000\nparallel_jobs = 2\nslot_name = barman\nstreaming_archiver = on\ntablespace_bandwidth_limit = tbs1:100 tbs2:200\n"
            .to_owned(),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn conninfo_near_valid_never_panics(s in near_valid(conninfo())) {
        if let Ok(ci) = ConnInfo::parse(&s) {
            // What parses encodes and parses back to the same thing.
            prop_assert_eq!(ConnInfo::parse(&ci.encode()).unwrap(), ci.clone());
            let _ = ci.to_string();
        }
    }

    #[test]
    fn pgpass_near_valid_never_panics(file in near_valid(pgpass()), host in near_valid(Just("pg".to_owned()))) {
        let _ = pgpass_lookup(&file, &host, "5432", "postgres", "barman");
    }

    #[test]
    fn ini_near_valid_never_panics(s in near_valid(ini())) {
        let _ = Ini::default().read("barman.conf", &s);
    }

    #[test]
    fn configuration_near_valid_never_panics(s in near_valid(configuration())) {
        if let Err(e) = Config::load("/etc/barman.conf", &s, &MemorySource::default()) {
            // One line, whatever went wrong.
            prop_assert_eq!(e.to_string().lines().count(), 1, "{}", e);
        }
    }
}
