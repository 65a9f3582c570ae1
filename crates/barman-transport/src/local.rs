//! The local filesystem backend.

use std::fs;
use std::io::{self, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::durable::{FsError, TEMP_FILE_PREFIX, TempFile};
use crate::error::PathError;
use crate::storage::resolve_range;
use crate::{
    Error, GetResult, ListResult, Location, ObjectMeta, ObjectStream, PutMode, PutPayload, Result,
    Storage,
};

const TRANSPORT: &str = "local";

/// The chunks of a get: read by one blocking task, handed over through a channel.
const GET_CHUNK: usize = 256 * 1024;

/// A [`Storage`] in a directory of the local filesystem.
///
/// - **Atomic and durable puts**: the data goes to a temporary file in the destination
///   directory, which is fsynced, renamed over the destination (or hard-linked, for
///   [`PutMode::Create`], which fails atomically if the name exists), and the
///   directory is fsynced. A failed or cancelled put removes its temporary file.
/// - **Private**: files are created with mode 0600 and directories with 0700.
/// - **Streaming**: a put writes the payload's chunks as they come, a get reads 256 KiB
///   at a time, never a whole file; each from one blocking task (no hop to the blocking
///   pool per chunk).
/// - **Confined**: [`Location`] already refuses `..` and absolute names; in addition
///   no read, write, listing or delete follows a symlink to a place outside the root
///   (symlinks that stay inside are followed; symlinked directories are not descended
///   by [`Storage::list`]).
/// - Directories are created on demand and never removed (a delete leaves an empty
///   directory, which [`Storage::list_with_delimiter`] still reports as a prefix).
///
/// # Examples
///
/// ```
/// use barman_transport::{LocalStorage, Location, StorageExt};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let storage = LocalStorage::new(dir.path())?;
/// storage.put(&Location::new("wals/00000001.history")?, "1\t0/3000000\tno recovery target\n").await?;
/// assert!(dir.path().join("wals/00000001.history").is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: Arc<PathBuf>,
}

impl LocalStorage {
    /// A storage rooted at `root`, which is created (mode 0700, durably) if missing.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or resolved.
    pub fn new(root: impl AsRef<Path>) -> Result<LocalStorage> {
        let root = root.as_ref();
        let loc = root.display().to_string();
        // Durably: each directory made is fsynced into its parent.
        crate::durable::create_private_dir(root).map_err(|e| {
            Error::from_io(TRANSPORT, &loc, Some(root), "create directory", e.source)
        })?;
        let canonical = fs::canonicalize(root)
            .map_err(|e| Error::from_io(TRANSPORT, &loc, Some(root), "resolve", e))?;
        Ok(LocalStorage {
            root: Arc::new(canonical),
        })
    }

    /// The root directory, with symlinks resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T, F>(location: &Location, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend {
            transport: TRANSPORT,
            location: location.to_string(),
            retryable: false,
            source: Box::new(e),
        })?
}

fn io_err(location: &Location, op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::from_io(TRANSPORT, location.as_str(), Some(path), op, e)
}

fn escapes(location: &Location) -> Error {
    Error::InvalidLocation {
        location: location.to_string(),
        reason: "a symlink leads outside the storage root",
    }
}

fn check_object_name(location: &Location) -> Result<()> {
    match location.file_name() {
        None => Err(Error::InvalidLocation {
            location: String::new(),
            reason: "the root is not an object",
        }),
        Some(n) if n.starts_with(TEMP_FILE_PREFIX) => Err(Error::InvalidLocation {
            location: location.to_string(),
            reason: "names starting with .barman-tmp. are reserved for temporary files",
        }),
        Some(_) => Ok(()),
    }
}

fn fsync_dir(location: &Location, dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(location, "fsync directory", dir))
}

fn meta_of(location: &Location, m: &fs::Metadata) -> ObjectMeta {
    let mut meta = ObjectMeta::new(location.clone(), m.len()).with_e_tag(format!(
        "{:x}-{:x}-{:x}",
        m.ino(),
        m.mtime_nsec() as u64 ^ ((m.mtime() as u64) << 30),
        m.len()
    ));
    if let Ok(t) = m.modified() {
        meta = meta.with_last_modified(t);
    }
    meta
}

/// Resolves an existing path under the root, refusing one that a symlink leads out of.
fn resolve_existing(root: &Path, location: &Location) -> Result<PathBuf> {
    let path = root.join(location.as_str());
    let canonical = fs::canonicalize(&path).map_err(io_err(location, "resolve", &path))?;
    if !canonical.starts_with(root) {
        return Err(escapes(location));
    }
    Ok(canonical)
}

/// Makes sure the parent directory of `location` exists, creating it segment by
/// segment (mode 0700), and returns it resolved. Never creates anything outside the
/// root: each existing segment is resolved and checked before the next is created.
fn ensure_parent(root: &Path, location: &Location) -> Result<PathBuf> {
    let mut dir = root.to_owned();
    let Some(parent) = location.parent() else {
        return Ok(dir);
    };
    for seg in parent.segments() {
        let next = dir.join(seg);
        let mut created = false;
        loop {
            match fs::symlink_metadata(&next) {
                Ok(m) if m.is_dir() => break,
                Ok(m) if m.file_type().is_symlink() => {
                    let canonical =
                        fs::canonicalize(&next).map_err(io_err(location, "resolve", &next))?;
                    if !canonical.starts_with(root) {
                        return Err(escapes(location));
                    }
                    if !canonical.is_dir() {
                        return Err(not_a_directory(location, &next));
                    }
                    dir = canonical;
                    break;
                }
                Ok(_) => return Err(not_a_directory(location, &next)),
                Err(e) if e.kind() == io::ErrorKind::NotFound && !created => {
                    match fs::DirBuilder::new().mode(0o700).create(&next) {
                        Ok(()) => fsync_dir(location, &dir)?,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io_err(location, "create directory", &next)(e)),
                    }
                    created = true;
                }
                Err(e) => return Err(io_err(location, "inspect", &next)(e)),
            }
        }
        if !fs::symlink_metadata(&next).is_ok_and(|m| m.file_type().is_symlink()) {
            dir = next;
        }
    }
    Ok(dir)
}

fn not_a_directory(location: &Location, path: &Path) -> Error {
    Error::Backend {
        transport: TRANSPORT,
        location: location.to_string(),
        retryable: false,
        source: Box::new(PathError::new(
            "create directory",
            Some(path),
            io::Error::new(
                io::ErrorKind::NotADirectory,
                "a non-directory is in the way",
            ),
        )),
    }
}

fn fs_err(location: &Location) -> impl FnOnce(FsError) -> Error + '_ {
    move |e| Error::from_io(TRANSPORT, location.as_str(), Some(&e.path), e.op, e.source)
}

#[async_trait]
impl Storage for LocalStorage {
    async fn put_opts(
        &self,
        location: &Location,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<ObjectMeta> {
        check_object_name(location)?;
        let root = self.root.clone();
        let loc = location.clone();
        let parent = blocking(location, move || ensure_parent(&root, &loc)).await?;
        let loc = location.clone();
        let dir = parent.clone();
        let mut tmp = blocking(location, move || {
            TempFile::new(&dir, "put").map_err(fs_err(&loc))
        })
        .await?;
        let path = tmp.path().to_owned();
        // Written and fsynced here, streaming; on any failure `tmp` is dropped, which
        // removes the temporary file.
        let std_file = tmp
            .take_file()
            .ok_or_else(|| io_err(location, "create", &path)(io::Error::other("no file")))?;
        // One blocking task writes and fsyncs the whole file, fed chunk by chunk: no
        // hop to the blocking pool per chunk.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let writer = {
            let (loc, path) = (location.clone(), path.clone());
            tokio::task::spawn_blocking(move || {
                let mut file = std_file;
                while let Some(chunk) = rx.blocking_recv() {
                    io::Write::write_all(&mut file, &chunk)
                        .map_err(io_err(&loc, "write", &path))?;
                }
                file.sync_all().map_err(io_err(&loc, "fsync", &path))
            })
        };
        let mut stream = payload.into_stream();
        let mut fed = Ok(());
        while let Some(chunk) = stream.next().await {
            match chunk {
                // A failed writer closes the channel; its error is reported below.
                Ok(chunk) => {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                Err(source) => {
                    fed = Err(Error::Payload {
                        location: location.to_string(),
                        source,
                    });
                    break;
                }
            }
        }
        drop(tx);
        // A payload that failed leaves nothing: `tmp`, dropped on return, removes the
        // temporary file.
        fed?;
        writer.await.map_err(|e| Error::Backend {
            transport: TRANSPORT,
            location: location.to_string(),
            retryable: false,
            source: Box::new(e),
        })??;

        let loc = location.clone();
        let name = location.file_name().unwrap_or_default().to_owned();
        blocking(location, move || {
            let dest = parent.join(&name);
            match mode {
                PutMode::Create => {
                    if !tmp.install_new(&dest).map_err(fs_err(&loc))? {
                        return Err(Error::AlreadyExists {
                            location: loc.to_string(),
                        });
                    }
                }
                _ => tmp.replace(&dest).map_err(fs_err(&loc))?,
            }
            let m = fs::symlink_metadata(&dest).map_err(io_err(&loc, "inspect", &dest))?;
            Ok(meta_of(&loc, &m))
        })
        .await
    }

    async fn get_opts(&self, location: &Location, range: Option<Range<u64>>) -> Result<GetResult> {
        check_object_name(location).map_err(|_| Error::NotFound {
            location: location.to_string(),
        })?;
        let root = self.root.clone();
        let loc = location.clone();
        let (file, meta, r) = blocking(location, move || {
            let path = resolve_existing(&root, &loc)?;
            let mut file = fs::File::open(&path).map_err(io_err(&loc, "open", &path))?;
            let m = file.metadata().map_err(io_err(&loc, "inspect", &path))?;
            if !m.is_file() {
                return Err(Error::NotFound {
                    location: loc.to_string(),
                });
            }
            let meta = meta_of(&loc, &m);
            let r = resolve_range(&loc, range, meta.size)?;
            file.seek(SeekFrom::Start(r.start))
                .map_err(io_err(&loc, "seek", &path))?;
            Ok((file, meta, r))
        })
        .await?;
        // One blocking task reads the range and hands it over chunk by chunk; it stops
        // when the reader goes away.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(8);
        let len = r.end - r.start;
        let loc = location.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut left = file.take(len);
            loop {
                let want =
                    usize::try_from(left.limit()).map_or(GET_CHUNK, |l| l.clamp(1, GET_CHUNK));
                let mut buf = BytesMut::zeroed(want);
                let n = match left.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let err = Error::from_io(TRANSPORT, loc.as_str(), None, "read", e);
                        let _ = tx.blocking_send(Err(err));
                        return;
                    }
                };
                buf.truncate(n);
                if tx.blocking_send(Ok(buf.freeze())).is_err() {
                    return;
                }
            }
        });
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(GetResult::new(meta, r, Box::pin(stream)))
    }

    async fn head(&self, location: &Location) -> Result<ObjectMeta> {
        check_object_name(location).map_err(|_| Error::NotFound {
            location: location.to_string(),
        })?;
        let root = self.root.clone();
        let loc = location.clone();
        blocking(location, move || {
            let path = resolve_existing(&root, &loc)?;
            let m = fs::metadata(&path).map_err(io_err(&loc, "inspect", &path))?;
            if !m.is_file() {
                return Err(Error::NotFound {
                    location: loc.to_string(),
                });
            }
            Ok(meta_of(&loc, &m))
        })
        .await
    }

    fn list(&self, prefix: &Location) -> ObjectStream<ObjectMeta> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ObjectMeta>>(256);
        let root = self.root.clone();
        let prefix = prefix.clone();
        tokio::task::spawn_blocking(move || walk(&root, &prefix, &tx));
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }

    async fn list_with_delimiter(&self, prefix: &Location) -> Result<ListResult> {
        let root = self.root.clone();
        let loc = prefix.clone();
        blocking(prefix, move || {
            let dir = match resolve_existing(&root, &loc) {
                Ok(d) if d.is_dir() => d,
                Ok(_) | Err(Error::NotFound { .. }) => return Ok(ListResult::default()),
                Err(e) => return Err(e),
            };
            let mut prefixes = Vec::new();
            let mut objects = Vec::new();
            for (name, child, ft) in read_dir_sorted(&loc, &dir)? {
                let Ok(child_loc) = loc.join(&name) else {
                    continue;
                };
                match classify(&root, &child, ft) {
                    Kind::Dir(_) => prefixes.push(child_loc),
                    Kind::File(m) => objects.push(meta_of(&child_loc, &m)),
                    Kind::Skip => {}
                }
            }
            Ok(ListResult::new(prefixes, objects))
        })
        .await
    }

    async fn delete(&self, location: &Location) -> Result<()> {
        check_object_name(location)?;
        let root = self.root.clone();
        let loc = location.clone();
        blocking(location, move || {
            let parent_loc = loc.parent().unwrap_or_default();
            let parent = match resolve_existing(&root, &parent_loc) {
                Ok(p) => p,
                Err(Error::NotFound { .. }) => return Ok(()),
                Err(Error::InvalidLocation { .. }) => return Err(escapes(&loc)),
                Err(e) => return Err(e),
            };
            let path = parent.join(loc.file_name().unwrap_or_default());
            match fs::remove_file(&path) {
                Ok(()) => fsync_dir(&loc, &parent),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound
                            | io::ErrorKind::IsADirectory
                            | io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(())
                }
                Err(e) => Err(io_err(&loc, "remove", &path)(e)),
            }
        })
        .await
    }
}

enum Kind {
    Dir(PathBuf),
    File(fs::Metadata),
    Skip,
}

/// What a directory entry is for listing: real directories and files, and symlinks
/// that resolve inside the root (directories behind symlinks are prefixes but are not
/// descended).
fn classify(root: &Path, path: &Path, ft: fs::FileType) -> Kind {
    if ft.is_dir() {
        return Kind::Dir(path.to_owned());
    }
    if ft.is_file() {
        return match fs::symlink_metadata(path) {
            Ok(m) => Kind::File(m),
            Err(_) => Kind::Skip,
        };
    }
    if ft.is_symlink()
        && let Ok(c) = fs::canonicalize(path)
        && c.starts_with(root)
        && let Ok(m) = fs::metadata(&c)
    {
        if m.is_file() {
            return Kind::File(m);
        }
        if m.is_dir() {
            return Kind::Dir(PathBuf::new());
        }
    }
    Kind::Skip
}

/// The entries of a directory with UTF-8 names, sorted, without temporary files.
fn read_dir_sorted(loc: &Location, dir: &Path) -> Result<Vec<(String, PathBuf, fs::FileType)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(loc, "read directory", dir))? {
        let entry = entry.map_err(io_err(loc, "read directory", dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with(TEMP_FILE_PREFIX) {
            continue;
        }
        let ft = entry
            .file_type()
            .map_err(io_err(loc, "inspect", &entry.path()))?;
        out.push((name, entry.path(), ft));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Walks the tree under `prefix`, sending every object; stops when the receiver goes.
fn walk(root: &Path, prefix: &Location, tx: &tokio::sync::mpsc::Sender<Result<ObjectMeta>>) {
    let start = match resolve_existing(root, prefix) {
        Ok(d) if d.is_dir() => d,
        Ok(_) | Err(Error::NotFound { .. }) => return,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let mut stack = vec![(start, prefix.clone())];
    while let Some((dir, loc)) = stack.pop() {
        let entries = match read_dir_sorted(&loc, &dir) {
            Ok(e) => e,
            Err(e) => {
                if tx.blocking_send(Err(e)).is_err() {
                    return;
                }
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for (name, path, ft) in entries {
            let Ok(child) = loc.join(&name) else {
                continue;
            };
            match classify(root, &path, ft) {
                Kind::Dir(p) if !p.as_os_str().is_empty() => subdirs.push((p, child)),
                Kind::File(m) if tx.blocking_send(Ok(meta_of(&child, &m))).is_err() => return,
                _ => {}
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, Capabilities};
    use crate::{DynStorage, StorageExt};
    use futures::TryStreamExt;
    use std::os::unix::fs::PermissionsExt;

    fn caps() -> Capabilities {
        Capabilities::default().with_prefixes_vanish(false)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().join("repo")).unwrap();
        let prefix = Location::new("suite").unwrap();
        conformance::run_all(&s, &prefix, caps()).await;
        let boxed: Box<DynStorage> = Box::new(s.clone());
        conformance::run_all(&boxed, &prefix, caps()).await;
        let arc: Arc<DynStorage> = Arc::new(s);
        conformance::run_all(&arc, &Location::ROOT, caps()).await;
        // No temporary file is left anywhere.
        let mut stack = vec![dir.path().to_owned()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                assert!(
                    !e.file_name()
                        .to_string_lossy()
                        .starts_with(TEMP_FILE_PREFIX),
                    "{e:?} left"
                );
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }

    #[tokio::test]
    async fn modes_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().join("repo")).unwrap();
        s.put(&Location::new("a/b/c").unwrap(), "x").await.unwrap();
        let mode = |p: &str| {
            fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("repo"), 0o700);
        assert_eq!(mode("repo/a"), 0o700);
        assert_eq!(mode("repo/a/b"), 0o700);
        assert_eq!(mode("repo/a/b/c"), 0o600);
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), "s").unwrap();
        let s = LocalStorage::new(dir.path().join("repo")).unwrap();
        std::os::unix::fs::symlink(&outside, s.root().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), s.root().join("secret")).unwrap();
        let l = |n: &str| Location::new(n).unwrap();
        let bad = |r: Result<()>| matches!(r, Err(Error::InvalidLocation { .. }));
        assert!(
            bad(s.get_bytes(&l("out/secret")).await.map(drop)),
            "read through a dir link"
        );
        assert!(
            bad(s.get_bytes(&l("secret")).await.map(drop)),
            "read through a file link"
        );
        assert!(bad(s.head(&l("secret")).await.map(drop)));
        assert!(
            bad(s.put(&l("out/new"), "x").await.map(drop)),
            "write through a dir link"
        );
        assert!(bad(s.put(&l("out/deeper/new"), "x").await.map(drop)));
        assert!(
            !outside.join("deeper").exists(),
            "a directory was created outside"
        );
        assert!(!outside.join("new").exists());
        assert!(
            bad(s.delete(&l("out/secret")).await),
            "delete through a dir link"
        );
        assert!(outside.join("secret").exists());
        assert!(
            s.list(&Location::ROOT)
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .is_empty()
        );
        assert!(bad(s
            .list(&l("out"))
            .try_collect::<Vec<_>>()
            .await
            .map(drop)));
        // Overwriting the file link replaces the link, not the outside file.
        s.put(&l("secret"), "mine").await.unwrap();
        assert_eq!(fs::read_to_string(outside.join("secret")).unwrap(), "s");
        assert_eq!(s.get_bytes(&l("secret")).await.unwrap(), "mine");
        // Links that stay inside are fine.
        std::os::unix::fs::symlink(s.root().join("secret"), s.root().join("alias")).unwrap();
        assert_eq!(s.get_bytes(&l("alias")).await.unwrap(), "mine");
    }

    #[tokio::test]
    async fn reserved_names_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path()).unwrap();
        let tmp = Location::new(format!("a/{TEMP_FILE_PREFIX}x")).unwrap();
        assert!(matches!(
            s.put(&tmp, "x").await,
            Err(Error::InvalidLocation { .. })
        ));
        s.put(&Location::new("d/f").unwrap(), "x").await.unwrap();
        // A directory is not an object.
        assert!(matches!(
            s.head(&Location::new("d").unwrap()).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            s.get_bytes(&Location::new("d").unwrap()).await,
            Err(Error::NotFound { .. })
        ));
        s.delete(&Location::new("d").unwrap()).await.unwrap();
        assert!(dir.path().join("d/f").exists());
        // A file in the way of a directory.
        let e = s
            .put(&Location::new("d/f/g").unwrap(), "x")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("d/f"), "{e}");
    }
}
