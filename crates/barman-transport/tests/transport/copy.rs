//! The native parallel copier, compared with the source tree and with `cp -a`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use barman_transport::{Error, LocalCopier};

use crate::trees::{make_source, tree, without};

fn mtime(p: &Path) -> i64 {
    std::fs::symlink_metadata(p).unwrap().mtime()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_trees_with_one_and_two_workers() {
    let src = tempfile::tempdir().unwrap();
    make_source(src.path());
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(src.path().join("PG_VERSION"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let expected = without(
        tree(src.path()),
        &["postmaster.pid", "pg_wal/000000010000000000000001"],
    );
    for workers in [1, 2] {
        let dst = tempfile::tempdir().unwrap();
        let data = dst.path().join("base/20240101T000000/data");
        let stats = LocalCopier::new()
            .workers(workers)
            .exclude("postmaster.pid")
            .exclude("pg_wal/*")
            .copy_tree(src.path(), &data)
            .await
            .unwrap();
        assert_eq!(tree(&data), expected, "workers = {workers}");
        assert_eq!(stats.files_copied, 44, "workers = {workers}");
        assert_eq!(stats.files_linked, 0);
        assert_eq!(
            mtime(&data.join("PG_VERSION")),
            1_000_000_000,
            "times are kept"
        );
        assert_eq!(
            mtime(&data.join("base/5/big")),
            mtime(&src.path().join("base/5/big"))
        );
    }
}

#[tokio::test]
async fn link_dest_reuses_unchanged_files() {
    let src = tempfile::tempdir().unwrap();
    make_source(src.path());
    let backups = tempfile::tempdir().unwrap();
    let first = backups.path().join("1");
    LocalCopier::new()
        .copy_tree(src.path(), &first)
        .await
        .unwrap();
    std::fs::write(src.path().join("base/1/16384"), b"changed").unwrap();
    let second = backups.path().join("2");
    let stats = LocalCopier::new()
        .workers(2)
        .link_dest(&first)
        .copy_tree(src.path(), &second)
        .await
        .unwrap();
    assert_eq!((stats.files_copied, stats.files_linked), (1, 45));
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&first.join("base/5/big")),
        ino(&second.join("base/5/big"))
    );
    assert_ne!(
        ino(&first.join("base/1/16384")),
        ino(&second.join("base/1/16384"))
    );
    assert_eq!(tree(&second), tree(src.path()));
}

#[tokio::test]
async fn errors_name_the_path() {
    let dst = tempfile::tempdir().unwrap();
    let err = LocalCopier::new()
        .copy_tree(Path::new("/nonexistent/barman/source"), dst.path())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Copy { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/barman/source"),
        "{err}"
    );
}
