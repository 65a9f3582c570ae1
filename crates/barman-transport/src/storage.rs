//! The `Storage` trait, its value types and the `StorageExt` conveniences.

use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::io::AsyncRead;

use crate::{Error, Location, Result};

/// A boxed, `Send` stream of results: what listings and downloads return.
pub type ObjectStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send + 'static>>;

/// A boxed, `Send` stream of chunks with I/O errors: the data given to a put.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// A storage as a trait object.
pub type DynStorage = dyn Storage;

/// How a put treats an object already at the location.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutMode {
    /// Replace it (atomically: readers see the old or the new object, nothing else).
    #[default]
    Overwrite,
    /// Fail with [`Error::AlreadyExists`] and leave it untouched. Atomic: of several
    /// concurrent writers, exactly one succeeds.
    Create,
}

/// What is known about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectMeta {
    /// Its name.
    pub location: Location,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, where the backend says.
    pub last_modified: Option<SystemTime>,
    /// An opaque version tag, where the backend has one.
    pub e_tag: Option<String>,
}

impl ObjectMeta {
    /// Metadata with only a location and a size.
    ///
    /// ```
    /// # use barman_transport::{Location, ObjectMeta};
    /// let m = ObjectMeta::new(Location::new("a")?, 3);
    /// assert_eq!((m.size, m.last_modified), (3, None));
    /// # Ok::<(), barman_transport::Error>(())
    /// ```
    pub fn new(location: Location, size: u64) -> ObjectMeta {
        ObjectMeta {
            location,
            size,
            last_modified: None,
            e_tag: None,
        }
    }

    /// The same, with a modification time.
    pub fn with_last_modified(mut self, t: SystemTime) -> ObjectMeta {
        self.last_modified = Some(t);
        self
    }

    /// The same, with a version tag.
    pub fn with_e_tag(mut self, e_tag: impl Into<String>) -> ObjectMeta {
        self.e_tag = Some(e_tag.into());
        self
    }
}

/// The result of a listing one level deep ([`Storage::list_with_delimiter`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListResult {
    /// The "directories" directly under the prefix, sorted.
    pub common_prefixes: Vec<Location>,
    /// The objects directly under the prefix, sorted by location.
    pub objects: Vec<ObjectMeta>,
}

impl ListResult {
    /// A listing with these prefixes and objects.
    pub fn new(common_prefixes: Vec<Location>, objects: Vec<ObjectMeta>) -> ListResult {
        ListResult {
            common_prefixes,
            objects,
        }
    }
}

/// The data of a put: bytes already in memory, or a stream read chunk by chunk (and
/// never held whole in memory by the backends that can stream).
///
/// # Examples
///
/// ```
/// use barman_transport::PutPayload;
///
/// let small = PutPayload::from("hello");
/// assert_eq!(small.size_hint(), Some(5));
///
/// let file = tokio::io::empty(); // any tokio::io::AsyncRead
/// let streamed = PutPayload::from_reader(file);
/// assert_eq!(streamed.size_hint(), None);
/// ```
pub struct PutPayload(Payload);

enum Payload {
    Bytes(Bytes),
    Stream(ByteStream),
}

impl PutPayload {
    /// Data that comes from a stream of chunks. An `Err` item aborts the put, which
    /// then leaves nothing behind.
    pub fn from_stream(s: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> PutPayload {
        PutPayload(Payload::Stream(Box::pin(s)))
    }

    /// Data read from an [`AsyncRead`] in chunks of 64 KiB.
    pub fn from_reader(r: impl AsyncRead + Send + 'static) -> PutPayload {
        PutPayload::from_stream(tokio_util::io::ReaderStream::with_capacity(r, 64 * 1024))
    }

    /// The size, when the data is already in memory.
    pub fn size_hint(&self) -> Option<u64> {
        match &self.0 {
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Stream(_) => None,
        }
    }

    /// The data as a stream of chunks (one chunk for in-memory data).
    pub fn into_stream(self) -> ByteStream {
        match self.0 {
            Payload::Bytes(b) if b.is_empty() => Box::pin(futures::stream::empty()),
            Payload::Bytes(b) => Box::pin(futures::stream::once(async move { Ok(b) })),
            Payload::Stream(s) => s,
        }
    }

    /// Reads the whole data into memory.
    ///
    /// # Errors
    ///
    /// The first error of the stream.
    pub async fn into_bytes(self) -> io::Result<Bytes> {
        match self.0 {
            Payload::Bytes(b) => Ok(b),
            Payload::Stream(mut s) => {
                let mut buf = BytesMut::new();
                while let Some(chunk) = s.next().await {
                    buf.extend_from_slice(&chunk?);
                }
                Ok(buf.freeze())
            }
        }
    }
}

impl fmt::Debug for PutPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Payload::Bytes(b) => write!(f, "PutPayload({} bytes)", b.len()),
            Payload::Stream(_) => f.write_str("PutPayload(stream)"),
        }
    }
}

impl From<Bytes> for PutPayload {
    fn from(b: Bytes) -> Self {
        PutPayload(Payload::Bytes(b))
    }
}

impl From<Vec<u8>> for PutPayload {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<&'static [u8]> for PutPayload {
    fn from(v: &'static [u8]) -> Self {
        Bytes::from_static(v).into()
    }
}

impl From<&'static str> for PutPayload {
    fn from(v: &'static str) -> Self {
        Bytes::from_static(v.as_bytes()).into()
    }
}

impl From<String> for PutPayload {
    fn from(v: String) -> Self {
        Bytes::from(v).into()
    }
}

/// The answer to a get: the object's metadata, the byte range returned and the data
/// as a stream.
pub struct GetResult {
    meta: ObjectMeta,
    range: Range<u64>,
    stream: ObjectStream<Bytes>,
}

impl GetResult {
    /// Puts the parts together (for implementations of [`Storage`]).
    pub fn new(meta: ObjectMeta, range: Range<u64>, stream: ObjectStream<Bytes>) -> GetResult {
        GetResult {
            meta,
            range,
            stream,
        }
    }

    /// The whole object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    /// The bytes of the object this answer holds.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// The data, chunk by chunk.
    pub fn into_stream(self) -> ObjectStream<Bytes> {
        self.stream
    }

    /// The data as an [`AsyncRead`]; errors become [`io::Error`]s wrapping an
    /// [`Error`].
    pub fn into_reader(self) -> impl AsyncRead + Send + Unpin + 'static {
        tokio_util::io::StreamReader::new(self.stream.map_err(io::Error::other))
    }

    /// Reads all the data into memory.
    ///
    /// # Errors
    ///
    /// The first error of the stream, and [`Error::Backend`] when the stream ends
    /// before the announced length (a cut connection).
    pub async fn bytes(self) -> Result<Bytes> {
        let want = self.range.end - self.range.start;
        let location = self.meta.location;
        let mut buf = BytesMut::with_capacity(usize::try_from(want.min(64 << 20)).unwrap_or(0));
        let mut s = self.stream;
        while let Some(chunk) = s.next().await {
            buf.extend_from_slice(&chunk?);
        }
        if buf.len() as u64 != want {
            return Err(Error::Backend {
                transport: "get",
                location: location.to_string(),
                retryable: true,
                source: format!("expected {want} bytes, received {}", buf.len()).into(),
            });
        }
        Ok(buf.freeze())
    }
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Checks a requested range against an object's size and returns the range to send:
/// `start <= end` is required, `start` may not pass the end, `end` is clipped to it.
pub(crate) fn resolve_range(
    location: &Location,
    range: Option<Range<u64>>,
    size: u64,
) -> Result<Range<u64>> {
    match range {
        None => Ok(0..size),
        Some(r) if r.start > r.end || r.start > size => Err(Error::InvalidRange {
            location: location.to_string(),
            start: r.start,
            end: r.end,
            size,
        }),
        Some(r) => Ok(r.start..r.end.min(size)),
    }
}

/// Where objects live: a directory, a bucket, memory.
///
/// The trait is small on purpose: six operations every backend can do well. The
/// conveniences (`put`, `get_bytes`, `exists`, …) are in [`StorageExt`], implemented
/// for every `Storage`.
///
/// Every method is cancel safe in this sense: dropping the future of a put leaves
/// either the old object or the new one, never a partial one (a temporary file may be
/// left behind by a crash, never by a drop).
///
/// # Examples
///
/// ```
/// use barman_transport::{Location, MemoryStorage, PutMode, Storage, StorageExt};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let storage = MemoryStorage::new();
/// let loc = Location::new("wals/0000000100000000/000000010000000000000001")?;
/// storage.put(&loc, "WAL bytes").await?;
/// assert_eq!(storage.get_bytes(&loc).await?, "WAL bytes");
/// assert_eq!(storage.get_range(&loc, 4..9).await?, "bytes");
///
/// // A second archiver with the same segment does not overwrite it.
/// let again = storage.put_opts(&loc, "other".into(), PutMode::Create).await;
/// assert!(matches!(again, Err(barman_transport::Error::AlreadyExists { .. })));
/// # Ok::<(), barman_transport::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Stores `payload` at `location`.
    ///
    /// **Atomic**: until the put returns, readers see the previous object (or none);
    /// afterwards they see the whole new one. If the payload stream fails, or the
    /// future is dropped, nothing is changed. The object is durable once this returns
    /// `Ok` (fsync for the local filesystem, a completed upload for object stores).
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`] with [`PutMode::Create`] when an object is there;
    /// [`Error::Unsupported`] when the backend cannot honour the mode;
    /// [`Error::Payload`] when the payload stream fails; backend errors.
    async fn put_opts(
        &self,
        location: &Location,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<ObjectMeta>;

    /// Reads the object at `location`, or the bytes `range` of it: `range.end` past
    /// the end is clipped, `range.start` past the end is an error.
    ///
    /// The returned stream reads the object as it was when the get started
    /// (a concurrent overwrite does not mix two versions).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::InvalidRange`], backend errors (also as items of
    /// the stream).
    async fn get_opts(&self, location: &Location, range: Option<Range<u64>>) -> Result<GetResult>;

    /// The metadata of the object at `location`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] and backend errors.
    async fn head(&self, location: &Location) -> Result<ObjectMeta>;

    /// Every object under `prefix` (segment-wise: `a/b` lists `a/b/c`, not `a/bc`),
    /// recursively, in no particular order, as a stream: listings are never loaded
    /// whole. [`Location::ROOT`] lists everything.
    fn list(&self, prefix: &Location) -> ObjectStream<ObjectMeta>;

    /// The objects and "directories" directly under `prefix`.
    ///
    /// # Errors
    ///
    /// Backend errors. A missing prefix is an empty listing.
    async fn list_with_delimiter(&self, prefix: &Location) -> Result<ListResult>;

    /// Removes the object at `location`. Removing a missing object succeeds, so a
    /// retried delete is harmless. Durable when it returns.
    ///
    /// # Errors
    ///
    /// Backend errors.
    async fn delete(&self, location: &Location) -> Result<()>;
}

macro_rules! forward_storage {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<S: Storage + ?Sized> Storage for $ty {
            async fn put_opts(
                &self,
                location: &Location,
                payload: PutPayload,
                mode: PutMode,
            ) -> Result<ObjectMeta> {
                (**self).put_opts(location, payload, mode).await
            }
            async fn get_opts(
                &self,
                location: &Location,
                range: Option<Range<u64>>,
            ) -> Result<GetResult> {
                (**self).get_opts(location, range).await
            }
            async fn head(&self, location: &Location) -> Result<ObjectMeta> {
                (**self).head(location).await
            }
            fn list(&self, prefix: &Location) -> ObjectStream<ObjectMeta> {
                (**self).list(prefix)
            }
            async fn list_with_delimiter(&self, prefix: &Location) -> Result<ListResult> {
                (**self).list_with_delimiter(prefix).await
            }
            async fn delete(&self, location: &Location) -> Result<()> {
                (**self).delete(location).await
            }
        }
    };
}

forward_storage!(Box<S>);
forward_storage!(Arc<S>);

/// Conveniences on top of [`Storage`], for every implementation.
///
/// # Examples
///
/// ```
/// use barman_transport::{Location, MemoryStorage, Storage, StorageExt};
/// use futures::TryStreamExt;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let s = MemoryStorage::new();
/// let loc = Location::new("meta/20240101T000000-backup.info")?;
/// assert!(!s.exists(&loc).await?);
/// s.put_if_absent(&loc, "status=DONE\n").await?;
/// assert!(s.exists(&loc).await?);
/// let all: Vec<_> = s.list(&Location::new("meta")?).try_collect().await?;
/// assert_eq!(all.len(), 1);
/// # Ok::<(), barman_transport::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[async_trait]
pub trait StorageExt: Storage {
    /// [`Storage::put_opts`] with [`PutMode::Overwrite`].
    async fn put(
        &self,
        location: &Location,
        payload: impl Into<PutPayload> + Send,
    ) -> Result<ObjectMeta> {
        self.put_opts(location, payload.into(), PutMode::Overwrite)
            .await
    }

    /// [`Storage::put_opts`] with [`PutMode::Create`]: fails with
    /// [`Error::AlreadyExists`] if an object is there.
    async fn put_if_absent(
        &self,
        location: &Location,
        payload: impl Into<PutPayload> + Send,
    ) -> Result<ObjectMeta> {
        self.put_opts(location, payload.into(), PutMode::Create)
            .await
    }

    /// The whole object, as a stream.
    async fn get(&self, location: &Location) -> Result<GetResult> {
        self.get_opts(location, None).await
    }

    /// The whole object, in memory.
    async fn get_bytes(&self, location: &Location) -> Result<Bytes> {
        self.get_opts(location, None).await?.bytes().await
    }

    /// The bytes `range` of the object, in memory (clipped at its end).
    async fn get_range(&self, location: &Location, range: Range<u64>) -> Result<Bytes> {
        self.get_opts(location, Some(range)).await?.bytes().await
    }

    /// Whether an object is at `location`.
    async fn exists(&self, location: &Location) -> Result<bool> {
        match self.head(location).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<T: Storage + ?Sized> StorageExt for T {}
