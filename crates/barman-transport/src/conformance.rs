//! The conformance suite every [`Storage`](crate::Storage) implementation must pass.
//!
//! Each function takes the storage as `&DynStorage` and a `prefix` under which it
//! works. **It deletes everything under that prefix**, first and last: point it at a
//! scratch area. The functions panic (with a message naming the check) on the first
//! failure, as tests do. They need a tokio runtime with the timer enabled.
//!
//! Optional semantics are [`Capabilities`]; [`run_all`] runs the whole suite.
//!
//! # Examples
//!
//! ```
//! use barman_transport::{conformance, Location, MemoryStorage};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_time().build()?.block_on(async {
//! let storage = MemoryStorage::new();
//! conformance::run_all(&storage, &Location::new("conformance")?, conformance::Capabilities::default()).await;
//! # Ok::<(), barman_transport::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::{DynStorage, Error, Location, PutMode, PutPayload, StorageExt};

/// What a backend is expected to do beyond the required semantics.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`PutMode::Create`] is atomic; when false it must fail with
    /// [`Error::Unsupported`].
    pub put_if_absent: bool,
    /// Size of the object written by [`large_object`], large enough to go through the
    /// backend's multipart path.
    pub large_object_size: u64,
    /// Whether deleting the last object under a prefix also removes the prefix from
    /// [`Storage::list_with_delimiter`](crate::Storage::list_with_delimiter) (true for
    /// object stores, false for the local filesystem, which keeps directories).
    pub prefixes_vanish: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            put_if_absent: true,
            large_object_size: 12 << 20,
            prefixes_vanish: true,
        }
    }
}

impl Capabilities {
    /// The default capabilities with another `put_if_absent`.
    pub fn with_put_if_absent(mut self, yes: bool) -> Self {
        self.put_if_absent = yes;
        self
    }
    /// The default capabilities with another large-object size.
    pub fn with_large_object_size(mut self, bytes: u64) -> Self {
        self.large_object_size = bytes;
        self
    }
    /// The default capabilities with another `prefixes_vanish`.
    pub fn with_prefixes_vanish(mut self, yes: bool) -> Self {
        self.prefixes_vanish = yes;
        self
    }
}

/// Runs every check of the suite, each under its own sub-prefix of `prefix`.
pub async fn run_all(s: &DynStorage, prefix: &Location, caps: Capabilities) {
    let p = |n: &str| prefix.join(n).unwrap();
    put_get_delete_list(s, &p("basic"), caps).await;
    get_ranges(s, &p("ranges")).await;
    missing_objects(s, &p("missing")).await;
    overwrite(s, &p("overwrite")).await;
    put_if_absent(s, &p("create"), caps.put_if_absent).await;
    put_is_atomic(s, &p("atomic")).await;
    cut_payload_leaves_nothing(s, &p("cut")).await;
    large_object(s, &p("large"), caps.large_object_size).await;
    concurrent_writers(s, &p("concurrent"), caps.put_if_absent).await;
    odd_names(s, &p("odd")).await;
    invalid_names(s).await;
}

/// Deletes every object under `prefix`.
pub async fn clear(s: &DynStorage, prefix: &Location) {
    let all: Vec<_> = s
        .list(prefix)
        .try_collect()
        .await
        .expect("list for cleanup");
    for m in all {
        s.delete(&m.location).await.expect("delete for cleanup");
    }
}

async fn names_under(s: &DynStorage, prefix: &Location) -> Vec<String> {
    let mut v: Vec<String> = s
        .list(prefix)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    v.sort();
    v
}

/// Put, get, head, list (recursive and one level), delete.
pub async fn put_get_delete_list(s: &DynStorage, prefix: &Location, caps: Capabilities) {
    clear(s, prefix).await;
    let l = |n: &str| prefix.join(n).unwrap();
    let files = [
        ("a/1", "one"),
        ("a/2", "two!"),
        ("a/b/3", ""),
        ("ab", "x"),
        ("c", "cc"),
    ];
    for (n, data) in files {
        let meta = s.put(&l(n), data).await.expect("put");
        assert_eq!(meta.size, data.len() as u64, "put returns the size of {n}");
        assert_eq!(meta.location, l(n), "put returns the location of {n}");
    }
    for (n, data) in files {
        assert_eq!(s.get_bytes(&l(n)).await.expect("get"), data, "get {n}");
        let head = s.head(&l(n)).await.expect("head");
        assert_eq!(head.size, data.len() as u64, "head size of {n}");
        assert!(s.exists(&l(n)).await.unwrap(), "exists {n}");
        let got = s.get(&l(n)).await.unwrap();
        assert_eq!(got.meta().size, data.len() as u64);
        assert_eq!(got.range(), 0..data.len() as u64);
    }
    let p = |v: &[&str]| v.iter().map(|n| l(n).to_string()).collect::<Vec<_>>();
    assert_eq!(
        names_under(s, prefix).await,
        p(&["a/1", "a/2", "a/b/3", "ab", "c"]),
        "list all"
    );
    assert_eq!(
        names_under(s, &l("a")).await,
        p(&["a/1", "a/2", "a/b/3"]),
        "prefix is segment-wise"
    );
    assert_eq!(names_under(s, &l("a/b")).await, p(&["a/b/3"]));
    assert!(
        names_under(s, &l("nothing")).await.is_empty(),
        "missing prefix lists nothing"
    );
    assert!(
        names_under(s, &l("c")).await.is_empty(),
        "an object is not a prefix of itself"
    );

    let top = s
        .list_with_delimiter(prefix)
        .await
        .expect("list_with_delimiter");
    let objs: Vec<_> = top.objects.iter().map(|m| m.location.to_string()).collect();
    assert_eq!(objs, p(&["ab", "c"]), "objects one level down");
    assert_eq!(top.common_prefixes, vec![l("a")], "prefixes one level down");
    let a = s.list_with_delimiter(&l("a")).await.unwrap();
    assert_eq!(a.common_prefixes, vec![l("a/b")]);
    assert_eq!(a.objects.len(), 2);
    assert_eq!(a.objects[1].size, 4, "sizes in delimited listings");
    let none = s.list_with_delimiter(&l("nothing")).await.unwrap();
    assert!(none.objects.is_empty() && none.common_prefixes.is_empty());

    s.delete(&l("a/b/3")).await.expect("delete");
    assert!(
        matches!(s.head(&l("a/b/3")).await, Err(Error::NotFound { .. })),
        "deleted"
    );
    assert!(!s.exists(&l("a/b/3")).await.unwrap());
    s.delete(&l("a/b/3"))
        .await
        .expect("deleting a missing object succeeds");
    assert_eq!(names_under(s, prefix).await, p(&["a/1", "a/2", "ab", "c"]));
    if caps.prefixes_vanish {
        let a = s.list_with_delimiter(&l("a")).await.unwrap();
        assert!(a.common_prefixes.is_empty(), "empty prefix vanished");
    }
    clear(s, prefix).await;
    assert!(names_under(s, prefix).await.is_empty(), "cleared");
}

/// Range gets: inside, clipped at the end, empty, and invalid.
pub async fn get_ranges(s: &DynStorage, prefix: &Location) {
    clear(s, prefix).await;
    let loc = prefix.join("r").unwrap();
    s.put(&loc, "0123456789").await.unwrap();
    assert_eq!(s.get_range(&loc, 2..5).await.unwrap(), "234");
    assert_eq!(s.get_range(&loc, 0..10).await.unwrap(), "0123456789");
    assert_eq!(
        s.get_range(&loc, 7..100).await.unwrap(),
        "789",
        "end clipped"
    );
    assert_eq!(s.get_range(&loc, 3..3).await.unwrap(), "", "empty range");
    assert_eq!(
        s.get_range(&loc, 10..20).await.unwrap(),
        "",
        "range at the end"
    );
    let r = s.get_opts(&loc, Some(4..6)).await.unwrap();
    assert_eq!((r.range(), r.meta().size), (4..6, 10));
    assert!(
        matches!(
            s.get_range(&loc, 11..20).await,
            Err(Error::InvalidRange { .. })
        ),
        "start past the end"
    );
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 5..2;
    assert!(matches!(
        s.get_range(&loc, backwards).await,
        Err(Error::InvalidRange { .. })
    ));
    let empty = prefix.join("empty").unwrap();
    s.put(&empty, "").await.unwrap();
    assert_eq!(s.get_bytes(&empty).await.unwrap(), "");
    assert_eq!(s.head(&empty).await.unwrap().size, 0);
    clear(s, prefix).await;
}

/// Missing objects are [`Error::NotFound`] for every read.
pub async fn missing_objects(s: &DynStorage, prefix: &Location) {
    clear(s, prefix).await;
    let loc = prefix.join("no/such/object").unwrap();
    let nf = |r: Result<_, Error>| matches!(r, Err(Error::NotFound { .. }));
    assert!(nf(s.get_bytes(&loc).await.map(|_| ())), "get missing");
    assert!(
        nf(s.get_range(&loc, 0..1).await.map(|_| ())),
        "range get missing"
    );
    assert!(nf(s.head(&loc).await.map(|_| ())), "head missing");
    assert!(!s.exists(&loc).await.unwrap());
    let err = s.head(&loc).await.unwrap_err();
    assert!(!err.is_retryable(), "not found is not retryable");
    assert!(
        err.to_string().contains("no/such/object"),
        "the error names the location: {err}"
    );
}

/// A second put replaces the first.
pub async fn overwrite(s: &DynStorage, prefix: &Location) {
    clear(s, prefix).await;
    let loc = prefix.join("o").unwrap();
    s.put(&loc, "first version").await.unwrap();
    s.put(&loc, "second").await.unwrap();
    assert_eq!(s.get_bytes(&loc).await.unwrap(), "second");
    assert_eq!(s.head(&loc).await.unwrap().size, 6);
    clear(s, prefix).await;
}

/// [`PutMode::Create`]: atomic when `supported`, [`Error::Unsupported`] otherwise.
pub async fn put_if_absent(s: &DynStorage, prefix: &Location, supported: bool) {
    clear(s, prefix).await;
    let loc = prefix.join("wal").unwrap();
    let first = s.put_if_absent(&loc, "original").await;
    if !supported {
        assert!(
            matches!(first, Err(Error::Unsupported { .. })),
            "unsupported: {first:?}"
        );
        return;
    }
    first.expect("first create");
    let second = s.put_if_absent(&loc, "intruder").await;
    assert!(
        matches!(second, Err(Error::AlreadyExists { .. })),
        "second create: {second:?}"
    );
    assert_eq!(s.get_bytes(&loc).await.unwrap(), "original", "untouched");
    s.put_opts(&loc, "replaced".into(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(s.get_bytes(&loc).await.unwrap(), "replaced");
    clear(s, prefix).await;
}

fn chunk(seed: u64, i: u64, len: usize) -> Bytes {
    // A cheap deterministic pattern that differs per chunk and per seed.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v.into()
}

/// While a put streams its data, the object is invisible (or still the old one), and
/// it appears whole when the put returns.
pub async fn put_is_atomic(s: &DynStorage, prefix: &Location) {
    clear(s, prefix).await;
    let loc = prefix.join("slow").unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(1);
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let put = s.put(&loc, PutPayload::from_stream(stream));
    let check = async {
        tx.send(Ok(chunk(1, 0, 100_000))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            matches!(s.head(&loc).await, Err(Error::NotFound { .. })),
            "visible while written"
        );
        assert!(
            names_under(s, prefix).await.is_empty(),
            "listed while written"
        );
        tx.send(Ok(chunk(1, 1, 100_000))).await.unwrap();
        drop(tx);
    };
    let (put, ()) = futures::join!(put, check);
    assert_eq!(put.expect("slow put").size, 200_000);
    let got = s.get_bytes(&loc).await.unwrap();
    assert_eq!(got.len(), 200_000);
    assert_eq!(&got[100_000..], &chunk(1, 1, 100_000)[..]);
    assert_eq!(
        names_under(s, prefix).await,
        vec![loc.to_string()],
        "nothing else left behind"
    );
    clear(s, prefix).await;
}

/// A payload stream that fails midway leaves no object (and the previous one intact).
pub async fn cut_payload_leaves_nothing(s: &DynStorage, prefix: &Location) {
    clear(s, prefix).await;
    let cut = || {
        PutPayload::from_stream(futures::stream::iter(vec![
            Ok(chunk(2, 0, 300_000)),
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "source went away",
            )),
            Ok(chunk(2, 1, 10)),
        ]))
    };
    let loc = prefix.join("new").unwrap();
    let err = s
        .put(&loc, cut())
        .await
        .expect_err("a cut payload must fail");
    assert!(
        matches!(err, Error::Payload { .. }),
        "payload error expected: {err:?}"
    );
    assert!(
        matches!(s.head(&loc).await, Err(Error::NotFound { .. })),
        "no object after a cut put"
    );
    assert!(
        names_under(s, prefix).await.is_empty(),
        "nothing listed after a cut put"
    );

    let old = prefix.join("old").unwrap();
    s.put(&old, "previous").await.unwrap();
    assert!(s.put(&old, cut()).await.is_err());
    assert_eq!(
        s.get_bytes(&old).await.unwrap(),
        "previous",
        "old object intact"
    );
    assert!(s.put_if_absent(&loc, cut()).await.is_err());
    assert_eq!(names_under(s, prefix).await, vec![old.to_string()]);
    clear(s, prefix).await;
}

/// An object of `size` bytes streamed in 1 MiB chunks, read back as a stream, by
/// ranges, and compared.
pub async fn large_object(s: &DynStorage, prefix: &Location, size: u64) {
    clear(s, prefix).await;
    const CH: u64 = 1 << 20;
    let loc = prefix.join("large").unwrap();
    let n = size.div_ceil(CH);
    let gen_chunk = move |i: u64| chunk(3, i, (size - i * CH).min(CH) as usize);
    let stream = futures::stream::iter((0..n).map(move |i| Ok(gen_chunk(i))));
    let meta = s
        .put(&loc, PutPayload::from_stream(stream))
        .await
        .expect("large put");
    assert_eq!(meta.size, size);
    assert_eq!(s.head(&loc).await.unwrap().size, size);

    // Compare as a stream, without holding the object.
    let mut got = s.get(&loc).await.unwrap().into_stream();
    let mut expected = bytes::BytesMut::new();
    let mut next = 0u64;
    let mut total = 0u64;
    while let Some(c) = got.next().await {
        let c = c.expect("large get chunk");
        let mut c = &c[..];
        while !c.is_empty() {
            if expected.is_empty() {
                expected.extend_from_slice(&gen_chunk(next));
                next += 1;
            }
            let k = c.len().min(expected.len());
            assert!(
                c[..k] == expected[..k],
                "large object differs near byte {total}"
            );
            let _ = expected.split_to(k);
            c = &c[k..];
            total += k as u64;
        }
    }
    assert_eq!(total, size, "large object length");
    // A range across a chunk boundary.
    if size > CH + 10 {
        let r = s.get_range(&loc, CH - 5..CH + 5).await.unwrap();
        assert_eq!(&r[..5], &gen_chunk(0)[(CH - 5) as usize..]);
        assert_eq!(&r[5..], &gen_chunk(1)[..5]);
    }
    clear(s, prefix).await;
}

/// Concurrent writers of one location: every read sees one writer's whole object;
/// with put-if-absent exactly one writer wins. Concurrent writers of different
/// locations all succeed.
pub async fn concurrent_writers(s: &DynStorage, prefix: &Location, put_if_absent: bool) {
    clear(s, prefix).await;
    const N: u8 = 8;
    const LEN: usize = 256 * 1024;
    let loc = prefix.join("same").unwrap();
    s.put(&loc, vec![0u8; LEN]).await.unwrap();
    let writers = futures::future::join_all((1..=N).map(|i| {
        let loc = loc.clone();
        async move { s.put(&loc, vec![i; LEN]).await }
    }));
    let readers = futures::future::join_all((0..N).map(|_| {
        let loc = loc.clone();
        async move {
            let b = s.get_bytes(&loc).await.expect("read during writes");
            assert_eq!(b.len(), LEN, "torn read length");
            assert!(b.iter().all(|x| *x == b[0]), "torn read: mixed writers");
        }
    }));
    let (w, _) = futures::join!(writers, readers);
    for r in w {
        r.expect("concurrent overwrite");
    }
    let last = s.get_bytes(&loc).await.unwrap();
    assert!((1..=N).contains(&last[0]) && last.iter().all(|x| *x == last[0]));

    if put_if_absent {
        let loc = prefix.join("create").unwrap();
        let results = futures::future::join_all((1..=N).map(|i| {
            let loc = loc.clone();
            async move { s.put_if_absent(&loc, vec![i; 1000]).await }
        }))
        .await;
        let won: Vec<_> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .collect();
        assert_eq!(won.len(), 1, "exactly one creator wins: {results:?}");
        assert!(
            results
                .iter()
                .filter(|r| r.is_err())
                .all(|r| matches!(r, Err(Error::AlreadyExists { .. }))),
            "losers get AlreadyExists: {results:?}"
        );
        let winner = won[0].0 as u8 + 1;
        assert_eq!(s.get_bytes(&loc).await.unwrap(), vec![winner; 1000]);
    }

    let many = futures::future::join_all((0..32u32).map(|i| {
        let loc = prefix.join(&format!("many/{i:02}")).unwrap();
        async move { s.put(&loc, format!("object {i}")).await }
    }))
    .await;
    assert!(many.iter().all(|r| r.is_ok()), "parallel puts: {many:?}");
    assert_eq!(
        names_under(s, &prefix.join("many").unwrap()).await.len(),
        32
    );
    clear(s, prefix).await;
}

/// Names with spaces, punctuation, percent signs and non-ASCII letters are stored and
/// listed exactly.
pub async fn odd_names(s: &DynStorage, prefix: &Location) {
    clear(s, prefix).await;
    let names = [
        "with space",
        "percent%20encoded",
        "hash#question?",
        "plus+equals=amp&",
        "quotes'\"",
        "brackets[{<>}]",
        "tilde~caret^pipe|",
        "ünïcødé/日本語",
        ".hidden",
        "..double",
        "semi;colon:comma,",
        "dollar$bang!at@star*",
        "back\\slash",
        "trailing.",
    ];
    for (i, n) in names.iter().enumerate() {
        let loc = prefix.join(n).unwrap();
        s.put(&loc, format!("content {i}"))
            .await
            .unwrap_or_else(|e| panic!("put {n:?}: {e}"));
    }
    for (i, n) in names.iter().enumerate() {
        let loc = prefix.join(n).unwrap();
        let got = s
            .get_bytes(&loc)
            .await
            .unwrap_or_else(|e| panic!("get {n:?}: {e}"));
        assert_eq!(got, format!("content {i}"), "content of {n:?}");
    }
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| prefix.join(n).unwrap().to_string())
        .collect();
    expected.sort();
    assert_eq!(
        names_under(s, prefix).await,
        expected,
        "odd names listed exactly"
    );
    clear(s, prefix).await;
}

/// Locations that would leave the storage cannot even be built, and the root is not
/// an object.
pub async fn invalid_names(s: &DynStorage) {
    for bad in ["../escape", "/etc/passwd", "a/../../b", "a//b", "a/"] {
        assert!(Location::new(bad).is_err(), "{bad:?} accepted");
    }
    assert!(
        s.put(&Location::ROOT, "x").await.is_err(),
        "put at the root"
    );
}
