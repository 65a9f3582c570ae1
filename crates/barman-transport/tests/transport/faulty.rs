//! The fault-injecting wrapper over the real backends.

use std::time::Duration;

use barman_transport::{
    Error, FaultyStorage, LocalStorage, Location, MemoryStorage, Operation, Storage, StorageExt,
    conformance,
};
use futures::TryStreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_faults_it_passes_the_conformance_suite() {
    let s = FaultyStorage::new(MemoryStorage::new());
    conformance::run_all(
        &s,
        &Location::new("suite").unwrap(),
        conformance::Capabilities::default(),
    )
    .await;
}

async fn cut_streams<S: Storage>(s: FaultyStorage<S>) {
    let loc = Location::new("seg").unwrap();
    s.put(&loc, vec![5u8; 300_000]).await.unwrap();

    // A put whose source dies midway leaves nothing, and the old object intact.
    s.cut_puts_after(100_000);
    let err = s.put(&loc, vec![6u8; 300_000]).await.unwrap_err();
    assert!(matches!(err, Error::Payload { .. }), "{err:?}");
    let fresh = Location::new("fresh").unwrap();
    assert!(s.put(&fresh, vec![6u8; 300_000]).await.is_err());
    assert!(!s.exists(&fresh).await.unwrap());
    // Smaller than the cut: passes.
    s.put(&Location::new("small").unwrap(), "tiny")
        .await
        .unwrap();
    s.cut_puts_after(None);
    assert_eq!(s.get_bytes(&loc).await.unwrap(), vec![5u8; 300_000]);

    // A get cut midway is an error, never a short success.
    s.cut_gets_after(1000);
    let err = s.get_bytes(&loc).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("injected fault"), "{err}");
    s.clear_faults();
    assert_eq!(s.get_bytes(&loc).await.unwrap().len(), 300_000);
}

#[tokio::test]
async fn cut_streams_memory() {
    cut_streams(FaultyStorage::new(MemoryStorage::new())).await;
}

#[tokio::test]
async fn cut_streams_local() {
    let dir = tempfile::tempdir().unwrap();
    cut_streams(FaultyStorage::new(LocalStorage::new(dir.path()).unwrap())).await;
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "only seg and small: {names:?}");
}

#[tokio::test]
async fn nth_call_fails_and_retries_succeed() {
    let s = FaultyStorage::new(MemoryStorage::new());
    let loc = Location::new("x").unwrap();
    s.fail_nth(Operation::Put, 2);
    s.put(&loc, "1").await.unwrap();
    assert!(s.put(&loc, "2").await.unwrap_err().is_retryable());
    s.put(&loc, "3").await.unwrap();
    assert_eq!(s.calls(Operation::Put), 3);

    s.fail_next(Operation::Head, 2);
    assert!(s.head(&loc).await.is_err());
    assert!(s.exists(&loc).await.is_err());
    assert!(s.exists(&loc).await.unwrap());

    s.fail_nth(Operation::List, 1);
    assert!(
        s.list(&Location::ROOT)
            .try_collect::<Vec<_>>()
            .await
            .is_err()
    );
    assert_eq!(
        s.list(&Location::ROOT)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        1
    );
    s.fail_nth(Operation::Delete, 1);
    assert!(s.delete(&loc).await.is_err());
    s.fail_nth(Operation::Get, 1);
    assert!(s.get_bytes(&loc).await.is_err());
    assert_eq!(s.get_bytes(&loc).await.unwrap(), "3");
    s.fail_nth(Operation::ListWithDelimiter, 1);
    assert!(s.list_with_delimiter(&Location::ROOT).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn latency_is_added() {
    let s = FaultyStorage::new(MemoryStorage::new());
    s.set_latency(Duration::from_millis(250));
    let t = tokio::time::Instant::now();
    s.put(&Location::new("x").unwrap(), "1").await.unwrap();
    let _ = s
        .list(&Location::ROOT)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(500));
}
