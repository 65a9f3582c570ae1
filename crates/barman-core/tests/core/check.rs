//! `barman check` and `barman status` against real PostgreSQL servers, one well
//! configured, one not.

use barman_core::check::{self, NagiosServer};
use barman_core::config::{Config, MemorySource};
use barman_core::postgres::{ConnInfo, PgServer};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn server_config(
    home: &std::path::Path,
    socket: &std::path::Path,
) -> (
    barman_core::config::GlobalConfig,
    barman_core::config::ServerConfig,
) {
    let text = format!(
        "[barman]\nbarman_home = {}\n\n[pg]\ndescription = \"Test\"\nconninfo = host={} port=5432 user=postgres dbname=postgres\nbackup_method = postgres\nstreaming_conninfo = host={} user=postgres\narchiver = on\nretention_policy = REDUNDANCY 2\nminimum_redundancy = 0\n",
        home.display(),
        socket.display(),
        socket.display()
    );
    let config = Config::load("/etc/barman.conf", &text, &MemorySource::default()).unwrap();
    (
        config.global().clone(),
        config.server("pg").unwrap().clone(),
    )
}

fn inspect(
    global: &barman_core::config::GlobalConfig,
    cfg: &barman_core::config::ServerConfig,
) -> check::RepoState {
    check::RepoState::inspect(
        global,
        cfg,
        jiff::Timestamp::now(),
        &jiff::tz::TimeZone::system(),
    )
}

/// The server's `streaming_conninfo`.
fn streaming(cfg: &barman_core::config::ServerConfig) -> ConnInfo {
    ConnInfo::parse(cfg.options().streaming_conninfo.as_deref().unwrap()).unwrap()
}

fn names(results: &[check::CheckResult]) -> Vec<(String, bool)> {
    results.iter().map(|r| (r.name.clone(), r.ok)).collect()
}

#[test]
fn check_and_status_on_good_and_bad_servers() {
    let Some(bin) = barman_testkit::require() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();

    // Well configured.
    let pg = barman_testkit::PgCluster::start(&bin, &[], &[]).expect("start PostgreSQL");
    let (global, cfg) = server_config(home.path(), pg.dir());
    let ci = ConnInfo::parse(cfg.options().conninfo.as_deref().unwrap()).unwrap();
    let (results, status) = rt().block_on(async {
        let s = PgServer::connect(&ci, "barman").await.unwrap();
        let results = check::check(
            &global,
            &cfg,
            Some(&ci),
            Some(&streaming(&cfg)),
            None,
            jiff::Timestamp::now(),
        )
        .await;
        let remote = s.remote_status(None).await;
        let status = check::status(&cfg, Some(&remote), &inspect(&global, &cfg));
        (results, status)
    });
    // No WAL archived yet: only `WAL archive` fails.
    let failed: Vec<_> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(failed, ["WAL archive"], "{results:#?}");
    assert!(home.path().join("pg/wals").is_dir() && home.path().join("pg/meta").is_dir());
    let got: Vec<String> = results.iter().map(|r| r.name.clone()).collect();
    assert_eq!(
        got,
        [
            "WAL archive",
            "PostgreSQL",
            "superuser or standard user with backup privileges",
            "PostgreSQL streaming",
            "wal_level",
            "directories",
            "retention policy settings",
            "backup maximum age",
            "backup minimum size",
            "wal maximum age",
            "wal size",
            "compression settings",
            "failed backups",
            "minimum redundancy requirements",
            "pg_basebackup",
            "pg_basebackup compatible",
            "pg_basebackup supports tablespaces mapping",
            "systemid coherence",
            "archive_mode",
            "archive_command",
            "continuous archiving",
            "archiver errors",
        ]
    );
    // With a WAL catalogue, the matching identity, everything passes.
    std::fs::write(home.path().join("pg/wals/pg-xlog.db"), "x\n").unwrap();
    let sysid = pg
        .sql("SELECT system_identifier FROM pg_control_system()")
        .unwrap();
    std::fs::write(
        home.path().join("pg/identity.json"),
        format!("{{\n    \"systemid\": \"{sysid}\",\n    \"version\": \"15\"\n}}\n"),
    )
    .unwrap();
    let results = rt().block_on(async {
        check::check(
            &global,
            &cfg,
            Some(&ci),
            Some(&streaming(&cfg)),
            None,
            jiff::Timestamp::now(),
        )
        .await
    });
    assert!(results.iter().all(|r| r.ok), "{results:#?}");
    let (text, code) = check::nagios(&[NagiosServer {
        name: "pg",
        active: true,
        results: &results,
    }]);
    assert_eq!(
        text,
        "BARMAN OK - Ready to serve the Espresso backup for pg|pg=0B pg_wals=0B\n"
    );
    assert_eq!(code, 0);

    let labels: Vec<&str> = status.iter().map(|s| s.label).collect();
    assert_eq!(
        &labels[..8],
        [
            "Description",
            "Active",
            "Disabled",
            "Active configuration model",
            "PostgreSQL version",
            "Cluster state",
            "Current data size",
            "PostgreSQL Data directory",
        ]
    );
    let value = |label: &str| {
        status
            .iter()
            .find(|s| s.label == label)
            .map(|s| s.value.clone())
    };
    assert_eq!(value("Cluster state").as_deref(), Some("in production"));
    assert_eq!(
        value("Last archived WAL").as_deref(),
        Some("No WAL segment shipped yet")
    );
    assert_eq!(value("Failures of WAL archiver").as_deref(), Some("0"));
    assert_eq!(
        value("Retention policies").as_deref(),
        Some("enforced (mode: auto, retention: REDUNDANCY 2, WAL retention: MAIN)")
    );
    assert_eq!(
        value("Minimum redundancy requirements").as_deref(),
        Some("satisfied (0/0)")
    );
    assert_eq!(value("Current WAL segment").map(|s| s.len()), Some(24));
    // A changed system id is caught.
    std::fs::write(
        home.path().join("pg/identity.json"),
        "{\"systemid\": \"1\"}",
    )
    .unwrap();
    let results = rt().block_on(async {
        check::check(
            &global,
            &cfg,
            Some(&ci),
            Some(&streaming(&cfg)),
            None,
            jiff::Timestamp::now(),
        )
        .await
    });
    assert!(names(&results).contains(&("systemid coherence".into(), false)));
    drop(pg);

    // Badly configured: wal_level minimal, archive_mode off.
    let bad = barman_testkit::PgCluster::start(
        &bin,
        &[],
        &[
            "wal_level = minimal",
            "archive_mode = off",
            "max_wal_senders = 0",
        ],
    )
    .expect("start PostgreSQL");
    let home = tempfile::tempdir().unwrap();
    let (global, cfg) = server_config(home.path(), bad.dir());
    let ci = ConnInfo::parse(cfg.options().conninfo.as_deref().unwrap()).unwrap();
    let results = rt().block_on(async {
        check::check(
            &global,
            &cfg,
            Some(&ci),
            Some(&streaming(&cfg)),
            None,
            jiff::Timestamp::now(),
        )
        .await
    });
    let failed: Vec<_> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.name.as_str())
        .collect();
    // With archive_mode off, PostgreSQL shows archive_command as "(disabled)".
    assert_eq!(
        failed,
        [
            "WAL archive",
            "PostgreSQL streaming",
            "wal_level",
            "archive_mode",
            "archive_command"
        ],
        "{results:#?}"
    );
    let hint = |n: &str| {
        results
            .iter()
            .find(|r| r.name == n)
            .and_then(|r| r.hint.clone())
    };
    assert_eq!(
        hint("wal_level").as_deref(),
        Some("please set it to a higher level than 'minimal'")
    );
    assert_eq!(
        hint("archive_mode").as_deref(),
        Some("please set it to 'on' or 'always'")
    );
    let (text, code) = check::nagios(&[NagiosServer {
        name: "pg",
        active: true,
        results: &results,
    }]);
    assert!(
        text.starts_with("BARMAN CRITICAL - server pg has issues * pg FAILED: WAL archive, PostgreSQL streaming, wal_level, archive_mode, archive_command|pg=0B pg_wals=0B\npg.WAL archive: FAILED (please make sure WAL shipping is setup)\n"),
        "{text}"
    );
    assert_eq!(code, 2);
    drop(bad);

    // No server at all: `PostgreSQL` fails, status says so.
    let results = rt().block_on(check::check(
        &global,
        &cfg,
        None,
        None,
        None,
        jiff::Timestamp::now(),
    ));
    assert!(names(&results).contains(&("PostgreSQL".into(), false)));
    let status = check::status(&cfg, None, &inspect(&global, &cfg));
    assert!(
        status
            .iter()
            .any(|s| s.value == "FAILED trying to get PostgreSQL version")
    );
}

#[test]
fn status_says_whether_the_configuration_disables_the_server() {
    let home = tempfile::tempdir().unwrap();
    let text = format!(
        "[barman]\nbarman_home = {}\n[ok]\nconninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\n[off]\nconninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\nwals_directory = s3://bucket/wals\n",
        home.path().display()
    );
    let config = Config::load("/etc/barman.conf", &text, &MemorySource::default()).unwrap();
    let disabled = |name: &str| {
        let s = config.server(name).unwrap();
        check::status(s, None, &inspect(config.global(), s))
            .into_iter()
            .find(|i| i.key == "disabled")
            .map(|i| i.value)
    };
    assert_eq!(disabled("ok").as_deref(), Some("False"));
    assert_eq!(disabled("off").as_deref(), Some("True"));
}
