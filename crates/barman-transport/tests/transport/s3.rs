//! The object-store backend against a real S3-compatible server on 127.0.0.1
//! (`moto_server`, started and stopped by the tests).

use std::time::Duration;

use barman_transport::{
    CloudOptions, Error, FaultyStorage, Location, ObjectStoreStorage, PutPayload, Storage,
    StorageExt, conformance,
};
use bytes::Bytes;

use barman_testkit::moto::Moto;

/// The object-store storage of a URL in the moto server.
pub(crate) trait MotoStorage {
    fn storage(&self, url: &str) -> ObjectStoreStorage;
}

impl MotoStorage for Moto {
    fn storage(&self, url: &str) -> ObjectStoreStorage {
        let mut opts = CloudOptions::new()
            .endpoint_url(self.endpoint())
            .retries(2, Duration::from_secs(30));
        for (k, v) in self.options() {
            opts = opts.option(k, v);
        }
        ObjectStoreStorage::from_url(url, &opts)
            .unwrap()
            .with_part_size(5 << 20)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_against_moto() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("barman-conformance");
    let s = moto.storage("s3://barman-conformance/repo");
    let caps = conformance::Capabilities::default().with_large_object_size(12 << 20);
    conformance::run_all(&s, &Location::new("suite").unwrap(), caps).await;
    // Through the bucket root as well, and through a trait object.
    let root: Box<dyn Storage> = Box::new(moto.storage("s3://barman-conformance"));
    conformance::run_all(&root, &Location::new("other").unwrap(), caps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_cut_midway_leaves_no_object() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("barman-cut");
    let s = FaultyStorage::new(moto.storage("s3://barman-cut"));
    let loc = Location::new("base/20240101T000000/data.tar").unwrap();
    let chunks = || (0..16).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i as u8; 1 << 20])));
    // 11 MiB pass (two 5 MiB parts are uploaded), then the source dies.
    s.cut_puts_after(11 << 20);
    let err = s
        .put(
            &loc,
            PutPayload::from_stream(futures::stream::iter(chunks())),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Payload { .. }), "{err:?}");
    assert!(
        !s.exists(&loc).await.unwrap(),
        "a cut multipart upload is visible"
    );
    s.clear_faults();
    s.put(
        &loc,
        PutPayload::from_stream(futures::stream::iter(chunks())),
    )
    .await
    .unwrap();
    assert_eq!(s.head(&loc).await.unwrap().size, 16 << 20);
    let r = s
        .get_range(&loc, (5 << 20) - 1..(5 << 20) + 1)
        .await
        .unwrap();
    assert_eq!(&r[..], &[4, 5]);
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_naming_bucket_and_object() {
    // Trust, point 18: this claimed to test bad credentials (moto accepts any) and
    // passed on any message holding an "x".
    let Some(moto) = Moto::start() else { return };
    let s = moto.storage("s3://no-such-bucket");
    let err = s
        .put(&Location::new("wals/probe-object").unwrap(), "x")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("wals/probe-object"), "names the object: {msg}");
    assert!(
        msg.contains("NoSuchBucket") || msg.contains("no-such-bucket"),
        "says why: {msg}"
    );
    assert!(matches!(
        s.head(&Location::new("x").unwrap()).await,
        Err(Error::NotFound { .. })
    ));
}
