//! The PostgreSQL layer: conninfo properties, and every query against a real
//! PostgreSQL started for this file.

use barman_core::postgres::{ConnInfo, PgError, PgServer, SwitchWal};
use barman_core::{Error, Result};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
    "sslmode",
    "connect_timeout",
];

proptest! {
    #[test]
    fn conninfo_round_trip(pairs in proptest::collection::vec(
        (proptest::sample::select(KEYS), "[^\\x00]{0,12}"), 0..8)
    ) {
        let mut ci = ConnInfo::default();
        for (k, v) in &pairs {
            ci.set(k, v.clone()).unwrap();
        }
        let text = ci.encode();
        prop_assert_eq!(ConnInfo::parse(&text).unwrap(), ci);
    }

    #[test]
    fn conninfo_never_panics(s in "\\PC{0,40}") {
        let _ = ConnInfo::parse(&s);
        let _ = ConnInfo::parse(&format!("postgresql://{s}"));
        if let Ok(ci) = ConnInfo::parse(&s) {
            let _ = ci.with_pgpass(&s).to_string();
        }
    }

    #[test]
    fn pgpass_never_panics(file in "\\PC{0,60}", host in "\\PC{0,8}") {
        let _ = barman_core::postgres::pgpass_lookup(&file, &host, "5432", "db", "u");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn unknown_host_is_a_one_line_error_naming_it() {
    let ci =
        ConnInfo::parse("host=no-such-host.invalid port=5432 user=u connect_timeout=3").unwrap();
    let err = rt().block_on(PgServer::connect(&ci, "barman")).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Postgres(PgError::Connect { .. })),
        "{err:?}"
    );
    assert!(msg.contains("host=no-such-host.invalid"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn queries_against_postgres_15() -> Result<()> {
    let Some(bin) = barman_testkit::require() else {
        return Ok(());
    };
    let pg = barman_testkit::PgCluster::start(&bin, &[], &["max_replication_slots = 4"])
        .expect("start PostgreSQL");
    let ci = ConnInfo::parse(&format!(
        "host={} port=5432 user=postgres dbname=postgres",
        pg.dir().display()
    ))?;
    rt().block_on(async {
        let s = PgServer::connect(&ci, "barman_test").await?;
        assert!(s.server_version_num() >= 90600);
        assert_eq!(s.user(), "postgres");
        let v = s.server_txt_version().await?;
        assert!(v.chars().next().is_some_and(|c| c.is_ascii_digit()), "{v}");
        assert!(!s.is_in_recovery().await?);
        let sysid = s.system_identifier().await?;
        assert_eq!(
            sysid.to_string(),
            pg.sql("SELECT system_identifier FROM pg_control_system()")
                .unwrap()
        );
        assert_eq!(s.wal_segment_size().await?, 16 << 20);
        let wal = s.current_wal().await?;
        assert_eq!(wal.file_name.as_deref().map(str::len), Some(24));
        let settings = s.settings().await?;
        assert_eq!(settings.archive_mode.as_deref(), Some("on"));
        assert!(
            settings
                .archive_command
                .as_deref()
                .unwrap_or("")
                .contains("cp %p")
        );
        assert_eq!(settings.wal_level.as_deref(), Some("replica"));
        assert_eq!(settings.max_wal_senders.as_deref(), Some("4"));
        assert_eq!(settings.max_replication_slots.as_deref(), Some("4"));
        assert_eq!(
            settings.data_directory.map(std::path::PathBuf::from),
            Some(pg.data())
        );
        assert!(s.is_superuser().await?);
        assert!(s.has_backup_privileges().await?);
        assert!(s.has_checkpoint_privileges().await?);
        assert!(s.has_monitoring_privileges().await?);
        assert!(s.current_size().await? > 0);
        // A search_path made empty by Barman's options.
        assert_eq!(s.setting("search_path").await?.as_deref(), Some(""));
        assert_eq!(
            s.setting("application_name").await?.as_deref(),
            Some("barman_test")
        );

        // Switch: with activity, then without, then forced.
        pg.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
            .unwrap();
        let closed = match s.switch_wal(false).await? {
            SwitchWal::Switched(name) => name,
            other => panic!("expected a switch, got {other:?}"),
        };
        assert_eq!(closed, wal.file_name.clone().unwrap());
        pg.wait_archived(&closed).unwrap();
        assert_eq!(s.switch_wal(false).await?, SwitchWal::NotNeeded);
        assert!(matches!(s.switch_wal(true).await?, SwitchWal::Switched(_)));
        s.checkpoint().await?;

        let stats = s.archiver_stats().await?;
        assert!(stats.archived_count >= 1, "{stats:?}");
        assert!(stats.last_archived_wal.is_some() && stats.last_archived_time.is_some());
        assert_eq!(stats.failed_count, 0);
        assert!(stats.is_archiving);

        assert_eq!(s.replication_slot("barman").await?, None);
        pg.sql("SELECT pg_create_physical_replication_slot('barman')")
            .unwrap();
        let slot = s.replication_slot("barman").await?.unwrap();
        assert!(!slot.active && slot.restart_lsn.is_none());
        pg.sql("SELECT pg_drop_replication_slot('barman')").unwrap();
        pg.sql("SELECT pg_create_physical_replication_slot('barman', true)")
            .unwrap();
        let slot = s.replication_slot("barman").await?.unwrap();
        assert!(slot.restart_lsn.is_some());

        let lsn = s.create_restore_point("barman_test").await?.unwrap();
        assert!(lsn > wal.lsn);

        let status = s.remote_status(Some("barman")).await;
        assert!(status.errors.is_empty(), "{:?}", status.errors);
        assert_eq!(status.systemid, Some(sysid));
        assert_eq!(status.version_supported(), Some(true));
        assert!(status.replication_slot.is_some());

        // A user without privileges: no backup privileges, switch-wal refused.
        pg.sql("CREATE ROLE plain LOGIN").unwrap();
        let mut plain_ci = ci.clone();
        plain_ci.set("user", "plain")?;
        let p = PgServer::connect(&plain_ci, "barman").await?;
        assert!(!p.has_backup_privileges().await?);
        assert!(!p.has_checkpoint_privileges().await?);
        assert_eq!(p.setting("data_directory").await?, None);
        let e = p.switch_wal(false).await.unwrap_err().to_string();
        assert!(e.contains("\"plain\"") && e.contains("privileges"), "{e}");
        let e = p.checkpoint().await.unwrap_err().to_string();
        assert!(e.contains("pg_checkpoint"), "{e}");

        // A failing query names the server.
        let e = s.setting("no_such_setting").await.unwrap_err().to_string();
        assert!(
            e.contains(&pg.dir().display().to_string()) && !e.contains('\n'),
            "{e}"
        );

        // A URI with the socket directory percent-encoded reaches the same server.
        let dir = pg.dir().display().to_string().replace('/', "%2F");
        let uri = ConnInfo::parse(&format!("postgresql://postgres@{dir}:5432/postgres"))?;
        let u = PgServer::connect(&uri, "barman").await?;
        assert_eq!(u.system_identifier().await?, sysid);
        Ok(())
    })
}
