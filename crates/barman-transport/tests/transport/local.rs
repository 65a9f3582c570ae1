//! The local backend on a full disk and in a directory it may not write.

use std::path::{Path, PathBuf};
use std::process::Command;

use barman_transport::{
    Error, LocalStorage, Location, PutPayload, Storage, StorageExt, TEMP_FILE_PREFIX,
};
use bytes::Bytes;

use crate::support::is_root;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn full_disk_gives_an_error_and_no_partial_file() {
    let Some(fs) = barman_testkit::tools::SmallFs::mount("1m") else {
        return;
    };
    let s = LocalStorage::new(fs.path().join("repo")).unwrap();
    let loc = Location::new("wals/0000000100000000/000000010000000000000001").unwrap();
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 64 * 1024])));
    let err = s
        .put(&loc, PutPayload::from_stream(futures::stream::iter(chunks)))
        .await
        .expect_err("4 MiB cannot fit in 1 MiB");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::Backend {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains("No space left"), "{msg}");
    assert!(
        msg.contains(&fs.path().display().to_string()),
        "the message names the path: {msg}"
    );
    assert!(!s.exists(&loc).await.unwrap());
    let left = files_under(fs.path());
    assert!(left.is_empty(), "partial files left: {left:?}");
    // The space is back: a small object fits.
    s.put(&loc, vec![1u8; 100_000]).await.unwrap();
    assert_eq!(s.head(&loc).await.unwrap().size, 100_000);
    // An overwrite that does not fit keeps the old object.
    let big = (0..32).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![8u8; 64 * 1024])));
    assert!(
        s.put(&loc, PutPayload::from_stream(futures::stream::iter(big)))
            .await
            .is_err()
    );
    assert_eq!(s.get_bytes(&loc).await.unwrap(), vec![1u8; 100_000]);
    assert!(files_under(fs.path()).iter().all(|p| {
        !p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(TEMP_FILE_PREFIX)
    }));
}

/// Makes `dir` unwritable: `chmod 0500` for an ordinary user; root ignores modes, so
/// for root the immutable attribute (`chattr +i`), when the filesystem has it.
struct ReadOnlyDir(PathBuf, bool);

impl ReadOnlyDir {
    fn new(dir: &Path) -> Option<ReadOnlyDir> {
        if is_root() {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .output()
                .is_ok_and(|o| o.status.success());
            ok.then(|| ReadOnlyDir(dir.to_owned(), true))
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
            Some(ReadOnlyDir(dir.to_owned(), false))
        }
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
        }
    }
}

#[tokio::test]
async fn permission_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStorage::new(dir.path()).unwrap();
    s.put(&Location::new("locked/old").unwrap(), "x")
        .await
        .unwrap();
    let locked = dir.path().join("locked");
    let Some(_guard) = ReadOnlyDir::new(&locked) else {
        // Root ignores modes: without the immutable attribute the test cannot run
        // (with BARMAN_REQUIRE_TOOLS=1, as in CI, that is a failure).
        barman_testkit::tools::require("chattr +i on the temporary directory", false);
        return;
    };
    let err = s
        .put(&Location::new("locked/new").unwrap(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("locked/new"), "names the location: {msg}");
    assert!(
        msg.contains(&locked.display().to_string()),
        "names the real path: {msg}"
    );
    assert!(!err.is_retryable());
    let err = s
        .put(&Location::new("locked/sub/new").unwrap(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&locked.join("sub").display().to_string()),
        "{err}"
    );
    // Reading still works.
    assert_eq!(
        s.get_bytes(&Location::new("locked/old").unwrap())
            .await
            .unwrap(),
        "x"
    );
}
