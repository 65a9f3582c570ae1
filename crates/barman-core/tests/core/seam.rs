//! The repository seam (`barman_core::repository`): the archive, get-wal,
//! delete/retention and catalogue flows run unchanged over every storage: in memory,
//! the local disk, behind a fault injector (a fault at every step), and the object
//! store on a local S3 server (moto). The WAL is real, from the PostgreSQL cluster of
//! the archive tests; without PostgreSQL the tests are skipped.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use barman_catalog::{BackupId, BackupInfo, BackupStatus, KeepTarget, WalCleanup};
use barman_core::Error;
use barman_core::repository::{Repository, Stored};
use barman_testkit::moto::Moto;
use barman_transport::{
    CloudOptions, DynStorage, FaultyStorage, LocalStorage, Location, MemoryStorage,
    ObjectStoreStorage, Operation, StorageExt,
};
use barman_wal::{Codec, CompressionLevel, WalFileName};

use crate::archive::wal;

/// The WAL files of the tests, written out as PostgreSQL would hand them over.
struct Sources {
    dir: tempfile::TempDir,
    /// Segments in order, then the backup label.
    files: Vec<(WalFileName, PathBuf)>,
}

impl Sources {
    fn new() -> Option<Sources> {
        let wal = wal()?;
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (name, bytes) in wal.segments.iter().chain([&wal.label]) {
            let path = dir.path().join(name);
            fs::write(&path, bytes).unwrap();
            files.push((name.parse().unwrap(), path));
        }
        Some(Sources { dir, files })
    }

    fn segment(&self, i: usize) -> (WalFileName, &Path) {
        let (name, path) = &self.files[i];
        (*name, path)
    }

    fn segments(&self) -> usize {
        self.files.len() - 1
    }

    fn write(&self, name: &str, bytes: &[u8]) -> (WalFileName, PathBuf) {
        let path = self.dir.path().join("extra").join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        let file = path.file_name().unwrap().to_str().unwrap();
        (file.parse().unwrap(), path)
    }

    /// Every source file's bytes and mtime: they must never change.
    fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
        walk(self.dir.path())
            .into_iter()
            .map(|p| {
                let m = fs::metadata(&p).unwrap();
                (p.clone(), (fs::read(&p).unwrap(), m.modified().unwrap()))
            })
            .collect()
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The archived `name`, decompressed, or `None`.
async fn archived(repo: &Repository, name: &WalFileName) -> Option<Vec<u8>> {
    repo.copy_wal_to(name, Vec::new(), true)
        .await
        .unwrap()
        .map(|(v, _)| v)
}

fn backup(id: &str, wal: &WalFileName) -> BackupInfo {
    let mut b = BackupInfo::new(id.parse().unwrap());
    b.status = BackupStatus::Done;
    b.timeline = Some(wal.timeline());
    b.begin_wal = wal.segment();
    b.end_wal = wal.segment();
    b
}

const HISTORY_A: &str = "1\t0/3000000\tno recovery target specified\n";
const HISTORY_B: &str = "1\t0/5000000\tno recovery target specified\n";

/// The flows of core's tests over one storage.
async fn flows(storage: Arc<DynStorage>, codec: Codec) {
    let Some(src) = Sources::new() else { return };
    let before = src.snapshot();
    let repo =
        Repository::new("pg", storage.clone()).with_compression(codec, CompressionLevel::default());

    // Archive: every file once, then the same again (PostgreSQL retrying).
    assert_eq!(repo.identity().await.unwrap(), None);
    for (name, path) in &src.files {
        match repo.store_wal(path, *name).await.unwrap() {
            Stored::Archived { size } => assert!(size > 0),
            other => panic!("{name}: {other:?}"),
        }
    }
    let identity = repo
        .identity()
        .await
        .unwrap()
        .expect("identity.json written");
    let header =
        barman_wal::PageHeader::parse(&fs::read(src.segment(0).1).unwrap()[..8192]).unwrap();
    assert_eq!(Some(identity.system_id().unwrap()), header.system_id());
    for (name, path) in &src.files {
        assert_eq!(
            repo.store_wal(path, *name).await.unwrap(),
            Stored::Identical,
            "{name}"
        );
    }

    // A history file: the same name with other content is refused, the stored one stays.
    let (hist, a) = src.write("00000002.history", HISTORY_A.as_bytes());
    assert!(matches!(
        repo.store_wal(&a, hist).await.unwrap(),
        Stored::Archived { .. }
    ));
    let (_, b) = src.write("b/00000002.history", HISTORY_B.as_bytes());
    assert_eq!(repo.store_wal(&b, hist).await.unwrap(), Stored::Different);
    assert_eq!(archived(&repo, &hist).await.unwrap(), HISTORY_A.as_bytes());

    // Invalid content is never visible: the last segment's bytes under the next name.
    let (last, last_path) = src.segment(src.segments() - 1);
    let next = WalFileName::Segment(
        last.segment()
            .unwrap()
            .next(barman_wal::WalSegSize::new(1 << 20).unwrap())
            .unwrap(),
    );
    let (_, bad) = src.write(&next.to_string(), &fs::read(last_path).unwrap());
    let err = repo.store_wal(&bad, next).await.unwrap_err();
    assert!(matches!(err, Error::Wal { .. }), "{err}");
    assert!(!repo.has_wal(&next).await.unwrap());
    // Nor is a segment of another cluster.
    let (seg0, seg0_path) = src.segment(0);
    let mut foreign = fs::read(seg0_path).unwrap();
    foreign[24..32].copy_from_slice(&(header.system_id().unwrap() ^ 1).to_le_bytes());
    let (_, f) = src.write(&format!("c/{seg0}"), &foreign);
    let err = repo.store_wal(&f, seg0).await.unwrap_err();
    assert!(matches!(err, Error::ForeignCluster { .. }), "{err}");

    // get-wal: decompressed as archived, raw in the repository's codec.
    for (name, path) in &src.files {
        assert_eq!(
            archived(&repo, name).await.unwrap(),
            fs::read(path).unwrap(),
            "{name}"
        );
    }
    let (raw, _) = repo
        .copy_wal_to(&seg0, Vec::new(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Codec::detect(&raw), codec);
    assert!(archived(&repo, &next).await.is_none());

    // The catalogue: two backups, the newer kept.
    let (first, second) = (src.segment(1).0, src.segment(3).0);
    let old: BackupId = "20261201T000000".parse().unwrap();
    let new: BackupId = "20261202T000000".parse().unwrap();
    repo.write_info(&backup(old.as_str(), &first))
        .await
        .unwrap();
    repo.write_info(&backup(new.as_str(), &second))
        .await
        .unwrap();
    repo.write_keep(new, Some(KeepTarget::Full)).await.unwrap();
    storage
        .put(
            &Location::new(format!("base/{old}/data.tar")).unwrap(),
            "tar",
        )
        .await
        .unwrap();
    let (cat, unreadable) = repo.catalogue().await.unwrap();
    assert!(unreadable.is_empty());
    assert_eq!(cat.iter().map(|b| b.id).collect::<Vec<_>>(), vec![old, new]);
    assert_eq!(cat.keep(new), Some(KeepTarget::Full));
    assert_eq!(
        repo.read_info(new).await.unwrap().unwrap(),
        *cat.get(new).unwrap()
    );

    // Retention deletes the older backup and the WAL only it needed.
    let mut index = repo.wal_index().await.unwrap();
    assert_eq!(index.len(), src.files.len() + 1);
    let expect_compression = (codec != Codec::None).then(|| codec.name().to_owned());
    assert!(
        index
            .iter()
            .filter(|e| !e.name.is_history())
            .all(|e| e.compression == expect_compression)
    );
    let plan = WalCleanup::plan(&cat, old, true, false).expect("a cleanup");
    let removed = plan.apply(&mut index);
    assert!(!removed.is_empty());
    for e in &removed {
        repo.remove_wal(&e.name).await.unwrap();
    }
    repo.remove_backup(old).await.unwrap();
    let left: Vec<WalFileName> = repo
        .list_wals()
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(left, index.names().collect::<Vec<_>>());
    assert!(left.contains(&second) && !left.contains(&first) && left.contains(&hist));
    let (cat, _) = repo.catalogue().await.unwrap();
    assert_eq!(cat.iter().map(|b| b.id).collect::<Vec<_>>(), vec![new]);
    assert!(
        !storage
            .exists(&Location::new(format!("base/{old}/data.tar")).unwrap())
            .await
            .unwrap()
    );

    // A delete that started reads as FAILED until it finishes.
    repo.mark_deleting(new).await.unwrap();
    let (cat, _) = repo.catalogue().await.unwrap();
    assert_eq!(cat.get(new).unwrap().status, BackupStatus::Failed);
    repo.clear_deleting(new).await.unwrap();
    repo.write_keep(new, None).await.unwrap();
    assert_eq!(repo.read_keep(new).await.unwrap(), None);

    // PostgreSQL's files were only read.
    let after = src.snapshot();
    for (path, content) in &before {
        assert_eq!(after.get(path), Some(content), "{} changed", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flows_over_memory() {
    flows(Arc::new(MemoryStorage::new()), Codec::Gzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flows_over_the_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    flows(
        Arc::new(LocalStorage::new(dir.path()).unwrap()),
        Codec::Zstd,
    )
    .await;
    // Private, and nothing temporary left behind.
    for p in walk(dir.path()) {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            p.display()
        );
        assert!(
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".barman-tmp")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flows_over_s3() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("barman-seam");
    let mut opts = CloudOptions::new()
        .endpoint_url(moto.endpoint())
        .retries(2, Duration::from_secs(30));
    for (k, v) in moto.options() {
        opts = opts.option(k, v);
    }
    let s3 = ObjectStoreStorage::from_url("s3://barman-seam/pg", &opts).unwrap();
    flows(Arc::new(s3), Codec::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flows_behind_a_fault_injector_without_faults() {
    flows(
        Arc::new(FaultyStorage::new(MemoryStorage::new())),
        Codec::Bzip2,
    )
    .await;
}

/// One archiving session: two segments, the backup label, a history file, a backup.info.
async fn session(
    repo: &Repository,
    src: &Sources,
    hist: &(WalFileName, PathBuf),
) -> Result<(), Error> {
    for i in [0, 1, src.files.len() - 1] {
        let (name, path) = &src.files[i];
        repo.store_wal(path, *name).await?;
    }
    repo.store_wal(&hist.1, hist.0).await?;
    repo.write_info(&backup("20261201T000000", &src.segment(0).0))
        .await
}

/// What a session leaves must be whole wherever it stopped: each WAL file absent or
/// equal to its source, backup.info absent or whole.
async fn assert_whole(
    repo: &Repository,
    src: &Sources,
    hist: &(WalFileName, PathBuf),
    complete: bool,
) {
    for (name, path) in [
        &src.files[0],
        &src.files[1],
        src.files.last().unwrap(),
        hist,
    ] {
        match archived(repo, name).await {
            Some(bytes) => assert_eq!(bytes, fs::read(path).unwrap(), "{name} partial"),
            None => assert!(!complete, "{name} lost"),
        }
    }
    let id = "20261201T000000".parse().unwrap();
    match repo.read_info(id).await.unwrap() {
        Some(info) => assert_eq!(info.status, BackupStatus::Done),
        None => assert!(!complete, "backup.info lost"),
    }
    if complete {
        assert!(repo.identity().await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_every_step_leaves_no_partial_object_and_a_retry_succeeds() {
    let Some(src) = Sources::new() else { return };
    let hist = src.write("00000002.history", HISTORY_A.as_bytes());
    let ops = [
        Operation::Put,
        Operation::Get,
        Operation::Head,
        Operation::List,
        Operation::ListWithDelimiter,
        Operation::Delete,
    ];
    // How many calls of each operation a clean session makes.
    let clean = FaultyStorage::new(MemoryStorage::new());
    let repo = Repository::new("pg", Arc::new(clean.clone()))
        .with_compression(Codec::Lz4, CompressionLevel::default());
    session(&repo, &src, &hist).await.unwrap();
    let counts: Vec<(Operation, u64)> = ops.iter().map(|op| (*op, clean.calls(*op))).collect();
    assert!(
        counts
            .iter()
            .any(|(op, n)| *op == Operation::Put && *n >= 5),
        "{counts:?}"
    );

    let mut faults = 0;
    for (op, n) in counts {
        for nth in 1..=n {
            let faulty = FaultyStorage::new(MemoryStorage::new());
            let repo = Repository::new("pg", Arc::new(faulty.clone()))
                .with_compression(Codec::Lz4, CompressionLevel::default());
            faulty.fail_nth(op, nth);
            let first = session(&repo, &src, &hist).await;
            faulty.clear_faults();
            if let Err(e) = &first {
                faults += 1;
                assert!(e.is_retryable(), "{op:?} #{nth}: {e} should be retryable");
            }
            assert_whole(&repo, &src, &hist, first.is_ok()).await;
            // The retry (PostgreSQL offers the files again) completes it.
            session(&repo, &src, &hist)
                .await
                .unwrap_or_else(|e| panic!("{op:?} #{nth}: retry: {e}"));
            assert_whole(&repo, &src, &hist, true).await;
        }
    }
    assert!(faults > 0);

    // A source that dies midway: nothing visible, and the retry succeeds.
    for cut in [0, 1000, 100_000] {
        let faulty = FaultyStorage::new(MemoryStorage::new());
        let repo = Repository::new("pg", Arc::new(faulty.clone()));
        faulty.cut_puts_after(cut);
        let (name, path) = src.segment(0);
        assert!(repo.store_wal(path, name).await.is_err());
        assert!(!repo.has_wal(&name).await.unwrap());
        assert!(repo.list_wals().await.unwrap().is_empty());
        faulty.clear_faults();
        assert!(matches!(
            repo.store_wal(path, name).await.unwrap(),
            Stored::Archived { .. }
        ));
        let mut stored = Vec::new();
        let (bytes, _) = repo
            .copy_wal_to(&name, Vec::new(), true)
            .await
            .unwrap()
            .unwrap();
        stored.extend(bytes);
        let mut expected = Vec::new();
        fs::File::open(path)
            .unwrap()
            .read_to_end(&mut expected)
            .unwrap();
        assert_eq!(stored, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_file_store_it_once() {
    let Some(src) = Sources::new() else { return };
    let repo = Repository::new("pg", Arc::new(MemoryStorage::new()))
        .with_compression(Codec::Gzip, CompressionLevel::default());
    let (name, path) = src.segment(2);
    let path = path.to_owned();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (repo, path) = (repo.clone(), path.clone());
            tokio::spawn(async move { repo.store_wal(&path, name).await.unwrap() })
        })
        .collect();
    let mut archived_once = 0;
    for t in tasks {
        match t.await.unwrap() {
            Stored::Archived { .. } => archived_once += 1,
            Stored::Identical => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(archived_once, 1);
    assert_eq!(
        archived(&repo, &name).await.unwrap(),
        fs::read(&path).unwrap()
    );
}
