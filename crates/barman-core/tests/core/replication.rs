//! The physical replication client (`barman_core::postgres::replication`) against a
//! real PostgreSQL 15 started for these tests: the replication commands, a whole WAL
//! segment streamed and validated, the server seeing our flush position, a clean stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use barman_core::postgres::replication::{ReplicationConnection, StreamEvent};
use barman_core::postgres::{ConnInfo, PgError};
use barman_testkit::PgCluster;
use barman_wal::replication::{PgTime, StandbyStatus};
use barman_wal::{Lsn, SegmentCheck, SegmentName, WalSegSize};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sqlstate(e: &PgError) -> Option<String> {
    e.sqlstate().map(str::to_owned)
}

#[test]
fn a_connection_that_fails_is_one_line_naming_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let ci = ConnInfo::parse(&format!("host={} port=5999 user=u", dir.path().display())).unwrap();
    let err = rt()
        .block_on(ReplicationConnection::connect(&ci, "barman"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PgError::Connect { .. }), "{err:?}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains(".s.PGSQL.5999"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(err.is_retryable(), "a refused connection may succeed later");
}

#[test]
fn the_replication_client_streams_real_wal() {
    let Some(bin) = barman_testkit::require() else {
        return;
    };
    let pg = Arc::new(
        PgCluster::start(
            &bin,
            &["--wal-segsize=1"],
            &["max_replication_slots = 4", "wal_sender_timeout = 60s"],
        )
        .expect("start PostgreSQL"),
    );
    let ci = ConnInfo::parse(&format!(
        "host={} port=5432 user=postgres",
        pg.dir().display()
    ))
    .unwrap();
    let size = WalSegSize::new(1 << 20).unwrap();
    rt().block_on(async {
        let mut conn = ReplicationConnection::connect(&ci, "barman_receive_wal")
            .await
            .unwrap();
        assert!(conn.server_version_num() >= 150000, "{conn:?}");

        // IDENTIFY_SYSTEM says what pg_control says.
        let sys = conn.identify_system().await.unwrap();
        let sysid: u64 = pg
            .sql("SELECT system_identifier FROM pg_control_system()")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(sys.system_id, sysid);
        assert_eq!(sys.timeline.as_u32(), 1);

        // Slots: created, found, refused twice, read.
        conn.create_physical_slot("barman_test", true).await.unwrap();
        let again = conn
            .create_physical_slot("barman_test", true)
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&again).as_deref(), Some("42710"), "{again}");
        assert!(again.to_string().contains("barman_test"), "{again}");
        let slot = conn
            .read_replication_slot("barman_test")
            .await
            .unwrap()
            .expect("the slot");
        assert!(slot.restart_lsn.is_some(), "RESERVE_WAL: {slot:?}");
        assert!(
            conn.read_replication_slot("no_such_slot")
                .await
                .unwrap()
                .is_none()
        );
        // Timeline 1 has no history file: a server error, the connection still usable.
        let no_history = conn
            .timeline_history(sys.timeline)
            .await
            .unwrap_err();
        assert!(sqlstate(&no_history).is_some(), "{no_history}");
        assert_eq!(conn.identify_system().await.unwrap().system_id, sysid);

        // Stream the segment of the current position, whole, while WAL is written.
        let start = sys.xlogpos.align_down(size.bytes());
        let segment = SegmentName::containing(sys.timeline, start, size);
        let mut stream = conn
            .start_replication(Some("barman_test"), start, sys.timeline)
            .await
            .unwrap();
        let writer = {
            let pg = pg.clone();
            tokio::task::spawn_blocking(move || {
                pg.sql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS c FROM generate_series(1, 20000) g")
                    .unwrap();
                pg.sql("SELECT pg_switch_wal()").unwrap();
            })
        };
        let mut wal = Vec::with_capacity(1 << 20);
        let mut keepalives = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while (wal.len() as u64) < size.bytes() {
            assert!(Instant::now() < deadline, "only {} bytes streamed", wal.len());
            match tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .expect("the server sends within 30 s")
                .unwrap()
            {
                StreamEvent::Data { start: at, data, .. } => {
                    // Contiguous, from the requested start.
                    assert_eq!(u64::from(at), u64::from(start) + wal.len() as u64);
                    let room = (size.bytes() as usize) - wal.len();
                    wal.extend_from_slice(&data[..data.len().min(room)]);
                }
                StreamEvent::Keepalive { reply_requested, wal_end } => {
                    keepalives += 1;
                    if reply_requested {
                        let done = Lsn::new(u64::from(start) + wal.len() as u64);
                        stream
                            .send_status(StandbyStatus::new(done, done, Lsn::INVALID, PgTime::now()))
                            .await
                            .unwrap();
                    }
                    assert!(wal_end >= start);
                }
                other => panic!("{other:?}"),
            }
        }
        writer.await.unwrap();
        // What came over the wire is a valid segment of this cluster.
        let mut v = SegmentCheck::new(segment, size).system_id(sysid).validator();
        v.feed(&wal).unwrap();
        let report = v.finish().unwrap();
        assert_eq!(report.system_id, sysid);
        assert!(report.records_checked > 0, "{report:?}");

        // The server sees our flush position: the slot keeps WAL from there on, and
        // pg_stat_replication shows it under our application_name.
        let end = Lsn::new(u64::from(start) + size.bytes());
        stream
            .send_status(StandbyStatus::new(end, end, Lsn::INVALID, PgTime::now()))
            .await
            .unwrap();
        let mut seen = String::new();
        for _ in 0..100 {
            seen = pg
                .sql("SELECT application_name || ' ' || flush_lsn FROM pg_stat_replication")
                .unwrap();
            if seen == format!("barman_receive_wal {end}") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, format!("barman_receive_wal {end}"));
        let restart = pg
            .sql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'barman_test'")
            .unwrap();
        assert_eq!(restart, end.to_string());

        // A clean stop gives the connection back.
        let mut conn = stream.stop().await.unwrap();
        assert_eq!(conn.identify_system().await.unwrap().system_id, sysid);
        conn.drop_slot("barman_test", false).await.unwrap();
        let gone = conn.drop_slot("barman_test", false).await.unwrap_err();
        assert_eq!(sqlstate(&gone).as_deref(), Some("42704"), "{gone}");
        conn.close().await;
        let _ = keepalives;
    });
}
