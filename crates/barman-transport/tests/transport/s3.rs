//! The object-store backend against a real S3-compatible server on 127.0.0.1
//! (`moto_server`, started and stopped by the tests).

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use barman_transport::{
    CloudOptions, Error, FaultyStorage, Location, ObjectStoreStorage, PutPayload, Storage,
    StorageExt, conformance,
};
use bytes::Bytes;

use crate::support::{free_port, require, wait_for_port, which};

/// A `moto_server` on 127.0.0.1, killed on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts the server, or returns `None` (skip) when moto is not installed.
    pub(crate) fn start() -> Option<Moto> {
        let port = free_port();
        let mut cmd = if let Some(bin) = which("moto_server") {
            Command::new(bin)
        } else {
            let has_moto = Command::new("python3")
                .args(["-c", "import moto.server"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !require("moto_server (pip install 'moto[server]')", has_moto) {
                return None;
            }
            let mut c = Command::new("python3");
            c.args(["-m", "moto.server"]);
            c
        };
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut m = Moto {
            child,
            port,
            _dir: dir,
        };
        wait_for_port(port, "moto_server", || {
            m.child.try_wait().unwrap().is_none()
        });
        Some(m)
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket with a plain HTTP request (moto does not check signatures).
    pub(crate) fn create_bucket(&self, name: &str) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    }

    pub(crate) fn storage(&self, url: &str) -> ObjectStoreStorage {
        let opts = CloudOptions::new()
            .endpoint_url(self.endpoint())
            .option("aws_access_key_id", "testing")
            .option("aws_secret_access_key", "testing")
            .option("aws_region", "us-east-1")
            .retries(2, Duration::from_secs(30));
        ObjectStoreStorage::from_url(url, &opts)
            .unwrap()
            .with_part_size(5 << 20)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
