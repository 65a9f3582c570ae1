//! `receive-wal` (`barman_core::receive`) against a real PostgreSQL 15 that names our
//! stream in `synchronous_standby_names`: every COMMIT returns (so its WAL was flushed
//! here), completed segments appear in `streaming/` and archive as any WAL, the
//! newest `.partial` holds the last commit, a second run resumes, a missing slot and a
//! second receiver are refused.

use std::sync::Arc;
use std::time::Duration;

use barman_core::archive::WalArchive;
use barman_core::config::{Config, MemorySource};
use barman_core::postgres::ConnInfo;
use barman_core::receive::{ReceiveOptions, receive_wal};
use barman_core::{Error, Refusal};
use barman_testkit::PgCluster;
use barman_wal::{Lsn, WalFileName};

fn config(home: &std::path::Path, socket: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        "[barman]\nbarman_home = {}\nbarman_lock_directory = {}/locks\n[pg]\nconninfo = host={} user=postgres dbname=postgres\nstreaming_conninfo = host={} user=postgres\nbackup_method = postgres\narchiver = on\nstreaming_archiver = on\nslot_name = barman\n{extra}",
        home.display(),
        home.display(),
        socket.display(),
        socket.display()
    );
    Config::load("/etc/barman.conf", &text, &MemorySource::default()).unwrap()
}

#[test]
fn receive_wal_streams_synchronously_into_streaming() {
    let Some(bin) = barman_testkit::require() else {
        return;
    };
    let pg = Arc::new(
        PgCluster::start(
            &bin,
            &["--wal-segsize=1"],
            &[
                "max_replication_slots = 4",
                "synchronous_standby_names = 'barman_receive_wal'",
                "synchronous_commit = on",
            ],
        )
        .expect("start PostgreSQL"),
    );
    let home = tempfile::tempdir().unwrap();
    let ci = ConnInfo::parse(&format!("host={} user=postgres", pg.dir().display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // create_slot = manual and no slot: refused, naming the slot and the fix.
    let manual = config(home.path(), pg.dir(), "");
    let err = rt
        .block_on(receive_wal(
            manual.global(),
            manual.server("pg").unwrap(),
            &ci,
            &ReceiveOptions::default(),
            std::future::pending(),
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: Refusal::ServerState,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("'barman'") && err.to_string().contains("--create-slot"),
        "{err}"
    );

    let cfg = config(home.path(), pg.dir(), "create_slot = auto\n");
    let (global, server) = (cfg.global().clone(), cfg.server("pg").unwrap().clone());
    let archive = WalArchive::for_server(&global, &server);
    let streaming = archive.streaming_dir().to_owned();

    // The receiver runs on its own thread (as `barman receive-wal` would); the
    // commits, with synchronous replication, only return once it flushed them.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let receiver = {
        let (global, server, ci) = (global.clone(), server.clone(), ci.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(receive_wal(
                    &global,
                    &server,
                    &ci,
                    &ReceiveOptions::default()
                        .with_reconnect_delay(Duration::from_millis(100), Duration::from_secs(1))
                        .with_notify(|m| eprintln!("{m}")),
                    async move {
                        let _ = stop_rx.await;
                    },
                ))
        })
    };
    // A second receiver for the same server is refused while the first runs.
    let mut second = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        if pg.sql("SELECT count(*) FROM pg_stat_replication").unwrap() == "1" {
            second = Some(
                rt.block_on(receive_wal(
                    &global,
                    &server,
                    &ci,
                    &ReceiveOptions::default(),
                    std::future::pending(),
                ))
                .unwrap_err(),
            );
            break;
        }
    }
    let Some(second) = second else {
        panic!("the receiver did not connect: {:?}", receiver.join());
    };
    assert!(
        matches!(
            second,
            Error::Refused {
                kind: Refusal::Busy,
                ..
            }
        ),
        "{second:?}"
    );
    assert_eq!(
        pg.sql("SELECT sync_state FROM pg_stat_replication")
            .unwrap(),
        "sync"
    );

    pg.sql("CREATE TABLE t (id int, c text)").unwrap();
    for i in 0..30 {
        // Each COMMIT returns only once our flush position passed it.
        pg.sql(&format!(
            "INSERT INTO t SELECT g, md5(g::text) FROM generate_series({}, {}) g",
            i * 1000,
            i * 1000 + 999
        ))
        .unwrap();
    }
    // The primary restarts: the stream comes back (a synchronous COMMIT after the
    // restart returns only once the receiver is connected again and flushed it).
    pg.restart().unwrap();
    pg.sql("INSERT INTO t VALUES (-1, 'after the restart')")
        .unwrap();
    let committed: Lsn = pg
        .sql("SELECT pg_current_wal_flush_lsn()")
        .unwrap()
        .parse()
        .unwrap();
    let flushed: Lsn = pg
        .sql("SELECT flush_lsn FROM pg_stat_replication")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        flushed >= committed,
        "flushed {flushed} < committed {committed}"
    );
    let _ = stop_tx.send(());
    let report = receiver.join().unwrap().unwrap();
    assert!(report.completed.len() >= 2, "{report:?}");
    assert!(report.flushed >= committed, "{report:?}");
    assert!(report.reconnects >= 1, "{report:?}");

    // Complete segments and one .partial; the partial is a whole segment in size.
    let mut names: Vec<String> = std::fs::read_dir(&streaming)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let partials: Vec<_> = names.iter().filter(|n| n.ends_with(".partial")).collect();
    assert_eq!(partials.len(), 1, "{names:?}");
    assert_eq!(
        std::fs::metadata(streaming.join(partials[0]))
            .unwrap()
            .len(),
        1 << 20
    );
    for c in &report.completed {
        assert!(names.contains(&c.to_string()), "{c} in {names:?}");
    }

    // archive-wal validates and archives the complete segments (all but the newest
    // when there is a .partial, as Barman).
    let archived = archive.archive_wal().unwrap();
    let _ = archived;
    for c in &report.completed {
        assert!(archive.path_of(c).exists(), "{c} archived");
    }

    // A new run resumes from the .partial: the same segment streamed again.
    let partial: WalFileName = partials[0].parse().unwrap();
    let again = rt
        .block_on(receive_wal(
            &global,
            &server,
            &ci,
            &ReceiveOptions::default().with_max_segments(1),
            async {
                // Fill the segment so it completes.
                tokio::task::spawn_blocking({
                    let pg = pg.clone();
                    move || pg.sql("SELECT pg_switch_wal()").unwrap()
                })
                .await
                .unwrap();
                std::future::pending::<()>().await;
            },
        ))
        .unwrap();
    assert_eq!(
        again.completed.first().and_then(|c| c.segment()),
        partial.segment(),
        "{again:?}"
    );
}

/// Runs `receive_wal` on its own thread until `stop` is sent.
fn spawn_receiver(
    cfg: &Config,
    ci: &ConnInfo,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<barman_core::Result<barman_core::receive::ReceiveReport>>,
) {
    let (global, server, ci) = (
        cfg.global().clone(),
        cfg.server("pg").unwrap().clone(),
        ci.clone(),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(receive_wal(
                &global,
                &server,
                &ci,
                &ReceiveOptions::default()
                    .with_reconnect_delay(Duration::from_millis(100), Duration::from_secs(1))
                    .with_notify(|m| eprintln!("{m}")),
                async move {
                    let _ = stop_rx.await;
                },
            ))
    });
    (stop_tx, handle)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// receive-wal streams from a standby; the standby is promoted: the stream follows
/// the new timeline (the history file fetched into streaming/, the old timeline's
/// last segment kept as a .partial), and archive-wal archives what it streamed.
#[test]
fn a_promotion_is_followed_onto_the_new_timeline() {
    let Some(bin) = barman_testkit::require() else {
        return;
    };
    let mut primary = PgCluster::start(&bin, &["--wal-segsize=1"], &["max_replication_slots = 4"])
        .expect("start PostgreSQL");
    primary.sql("CREATE TABLE t (id int, c text)").unwrap();
    let standby = primary.start_standby().expect("start a standby");
    let home = tempfile::tempdir().unwrap();
    let cfg = config(home.path(), standby.dir(), "create_slot = auto\n");
    let ci = ConnInfo::parse(&format!("host={} user=postgres", standby.dir().display())).unwrap();
    let archive = WalArchive::for_server(cfg.global(), cfg.server("pg").unwrap());
    let streaming = archive.streaming_dir().to_owned();
    let (stop, receiver) = spawn_receiver(&cfg, &ci);
    wait_for("receive-wal streaming from the standby", || {
        standby
            .sql("SELECT count(*) FROM pg_stat_replication")
            .unwrap()
            == "1"
    });
    primary
        .sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        .unwrap();
    primary.sql("SELECT pg_switch_wal()").unwrap();
    let end_of_tli1: Lsn = primary
        .sql("SELECT pg_current_wal_lsn()")
        .unwrap()
        .parse()
        .unwrap();
    wait_for("the standby replays the primary's WAL", || {
        standby
            .sql(&format!(
                "SELECT pg_last_wal_replay_lsn() >= '{end_of_tli1}'"
            ))
            .unwrap()
            == "t"
    });
    // The primary goes away; the standby is promoted and takes writes on timeline 2.
    primary.stop().unwrap();
    standby.promote().unwrap();
    standby
        .sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        .unwrap();
    let switched = standby
        .sql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    assert!(switched.starts_with("00000002"), "{switched}");
    wait_for("the new timeline's segment streamed", || {
        streaming.join(&switched).is_file()
    });
    let _ = stop.send(());
    let report = receiver.join().unwrap().unwrap();
    assert_eq!(
        report.history_files,
        [WalFileName::History(barman_wal::TimelineId::new(2))],
        "{report:?}"
    );
    let history = std::fs::read_to_string(streaming.join("00000002.history")).unwrap();
    assert!(history.starts_with("1\t"), "{history}");
    // The old timeline's last segment stays a .partial (as pg_receivewal leaves it).
    let names: Vec<String> = std::fs::read_dir(&streaming)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("00000001") && n.ends_with(".partial")),
        "{names:?}"
    );
    // archive-wal takes the history file and the complete segments of both timelines.
    archive.archive_wal().unwrap();
    assert!(
        archive
            .path_of(&WalFileName::History(barman_wal::TimelineId::new(2)))
            .exists()
    );
    assert!(archive.path_of(&switched.parse().unwrap()).exists());
}

/// The Barman host's disk fills up while a synchronous COMMIT waits: the stream stops
/// with an I/O error and PostgreSQL keeps the COMMIT waiting rather than losing it;
/// once space returns (archive-wal moves the complete segments out of streaming/), a
/// new receive-wal resumes and the COMMIT returns.
#[test]
fn a_full_disk_stops_the_stream_and_the_commit_waits_until_space_returns() {
    let Some(bin) = barman_testkit::require() else {
        return;
    };
    // Room for two 1 MiB segments and a half.
    let Some(small) = barman_testkit::tools::SmallFs::mount("2600k") else {
        return;
    };
    let pg = Arc::new(
        PgCluster::start(&bin, &["--wal-segsize=1"], &["max_replication_slots = 4"])
            .expect("start PostgreSQL"),
    );
    // The table first, then the COMMITs wait for receive-wal.
    pg.sql("CREATE TABLE t (id int, c text)").unwrap();
    pg.sql("ALTER SYSTEM SET synchronous_standby_names = 'barman_receive_wal'")
        .unwrap();
    pg.sql("SELECT pg_reload_conf()").unwrap();
    let home = tempfile::tempdir().unwrap();
    let cfg = config(
        home.path(),
        pg.dir(),
        &format!(
            "create_slot = auto\nstreaming_wals_directory = {}/streaming\n",
            small.path().display()
        ),
    );
    let ci = ConnInfo::parse(&format!("host={} user=postgres", pg.dir().display())).unwrap();
    let archive = WalArchive::for_server(cfg.global(), cfg.server("pg").unwrap());
    let (stop, receiver) = spawn_receiver(&cfg, &ci);
    wait_for("receive-wal streaming synchronously", || {
        pg.sql("SELECT sync_state FROM pg_stat_replication")
            .unwrap()
            == "sync"
    });
    // About 3 MiB of WAL in one transaction: more than the disk holds.
    let commit = {
        let pg = pg.clone();
        std::thread::spawn(move || {
            pg.sql(
                "INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 9000) g",
            )
            .unwrap();
        })
    };
    wait_for("the stream stopped by the full disk", || {
        receiver.is_finished()
    });
    let err = receiver.join().unwrap().unwrap_err();
    drop(stop);
    assert!(
        matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(28)),
        "no space left: {err:?}"
    );
    // PostgreSQL waits for us: the COMMIT has not returned.
    wait_for("the COMMIT waiting for the synchronous standby", || {
        pg.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
            .unwrap()
            == "1"
    });
    assert!(
        !commit.is_finished(),
        "the COMMIT returned without our flush"
    );
    // Space returns as archive-wal moves complete segments out; receive-wal restarts
    // (cron would) and resumes from where it was, until the COMMIT returns.
    let mut restarts = 0;
    while !commit.is_finished() {
        restarts += 1;
        assert!(restarts < 20, "the COMMIT never returned");
        archive.archive_wal().unwrap();
        let (stop, receiver) = spawn_receiver(&cfg, &ci);
        wait_for("the COMMIT, or the stream stopped", || {
            commit.is_finished() || receiver.is_finished()
        });
        let _ = stop.send(());
        match receiver.join().unwrap() {
            Ok(_) => {}
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(28) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    commit.join().unwrap();
    assert_eq!(pg.sql("SELECT count(*) FROM t").unwrap(), "9000");
}

/// The same synchronous stream from the other PostgreSQL majors CI installs (13 and
/// 17): each COMMIT returns once streamed, a segment closed by `pg_switch_wal()`
/// completes, and archive-wal validates and archives what was streamed.
#[test]
fn receive_wal_streams_from_other_majors() {
    for (major, bin) in barman_testkit::other_majors() {
        let pg = PgCluster::start(
            &bin,
            &["--wal-segsize=1"],
            &[
                "max_replication_slots = 4",
                "synchronous_standby_names = 'barman_receive_wal'",
            ],
        )
        .unwrap_or_else(|e| panic!("PostgreSQL {major}: {e}"));
        assert!(
            pg.sql("SHOW server_version_num")
                .unwrap()
                .starts_with(&major.to_string()),
            "PostgreSQL {major}"
        );
        let home = tempfile::tempdir().unwrap();
        let cfg = config(home.path(), pg.dir(), "create_slot = auto\n");
        let ci = ConnInfo::parse(&format!("host={} user=postgres", pg.dir().display())).unwrap();
        let archive = WalArchive::for_server(cfg.global(), cfg.server("pg").unwrap());
        let (stop, receiver) = spawn_receiver(&cfg, &ci);
        wait_for("receive-wal streaming synchronously", || {
            pg.sql("SELECT sync_state FROM pg_stat_replication")
                .unwrap()
                == "sync"
        });
        pg.sql("CREATE TABLE t (id int, c text)").unwrap();
        for i in 0..10 {
            pg.sql(&format!(
                "INSERT INTO t SELECT g, md5(g::text) FROM generate_series({}, {}) g",
                i * 1000,
                i * 1000 + 999
            ))
            .unwrap();
        }
        let committed: Lsn = pg
            .sql("SELECT pg_current_wal_flush_lsn()")
            .unwrap()
            .parse()
            .unwrap();
        let flushed: Lsn = pg
            .sql("SELECT flush_lsn FROM pg_stat_replication")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            flushed >= committed,
            "PostgreSQL {major}: {flushed} < {committed}"
        );
        let switched = pg.sql("SELECT pg_walfile_name(pg_switch_wal())").unwrap();
        wait_for("the switched segment streamed", || {
            archive.streaming_dir().join(&switched).is_file()
        });
        let _ = stop.send(());
        let report = receiver.join().unwrap().unwrap();
        assert!(
            !report.completed.is_empty(),
            "PostgreSQL {major}: {report:?}"
        );
        let archived = archive.archive_wal().unwrap();
        assert!(
            archived.failed.is_empty() && archived.errors.is_empty(),
            "PostgreSQL {major}: {archived:?}"
        );
        for c in &report.completed {
            assert!(
                archive.path_of(c).exists(),
                "PostgreSQL {major}: {c} archived"
            );
        }
    }
}

/// A streaming connection that reaches another cluster than the one `identity.json`
/// records is refused before anything is written into streaming/.
#[test]
fn a_stream_from_another_cluster_is_refused() {
    let Some(bin) = barman_testkit::require() else {
        return;
    };
    let pg = PgCluster::start(&bin, &["--wal-segsize=1"], &["max_replication_slots = 4"])
        .expect("start PostgreSQL");
    let home = tempfile::tempdir().unwrap();
    let cfg = config(home.path(), pg.dir(), "create_slot = auto\n");
    std::fs::create_dir_all(home.path().join("pg")).unwrap();
    std::fs::write(
        home.path().join("pg/identity.json"),
        "{\"systemid\": \"7000000000000000001\", \"version\": \"15\"}\n",
    )
    .unwrap();
    let ci = ConnInfo::parse(&format!("host={} user=postgres", pg.dir().display())).unwrap();
    let err = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(receive_wal(
            cfg.global(),
            cfg.server("pg").unwrap(),
            &ci,
            &ReceiveOptions::default(),
            std::future::pending(),
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: Refusal::Conflict,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("7000000000000000001"), "{err}");
    assert!(err.to_string().contains("another cluster"), "{err}");
    let streamed = std::fs::read_dir(home.path().join("pg/streaming"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(streamed, 0, "nothing streamed");
}
