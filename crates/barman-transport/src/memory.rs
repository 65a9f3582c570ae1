//! The in-memory reference implementation.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::storage::resolve_range;
use crate::{
    Error, GetResult, ListResult, Location, ObjectMeta, ObjectStream, PutMode, PutPayload, Result,
    Storage,
};

#[derive(Debug, Clone)]
struct Entry {
    data: Bytes,
    meta: ObjectMeta,
}

/// A [`Storage`] in memory: the reference implementation, and the test double of the
/// crates above.
///
/// Clones share the same objects. Writes are atomic and the put-if-absent mode is
/// native. A put reads its whole payload before storing it (this backend holds every
/// object in memory anyway).
///
/// # Examples
///
/// ```
/// use barman_transport::{Location, MemoryStorage, StorageExt};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let a = MemoryStorage::new();
/// let b = a.clone();
/// a.put(&Location::new("x")?, "1").await?;
/// assert_eq!(b.get_bytes(&Location::new("x")?).await?, "1");
/// # Ok::<(), barman_transport::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    objects: Arc<RwLock<BTreeMap<Location, Entry>>>,
    version: Arc<AtomicU64>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Location, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated (every
        // write is one insert or remove), so a poisoned lock is still consistent.
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Location, Entry>> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }

    fn entry(&self, location: &Location) -> Result<Entry> {
        self.read()
            .get(location)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                location: location.to_string(),
            })
    }
}

fn check_object_name(location: &Location) -> Result<()> {
    if location.is_root() {
        return Err(Error::InvalidLocation {
            location: String::new(),
            reason: "the root is not an object",
        });
    }
    Ok(())
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn put_opts(
        &self,
        location: &Location,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<ObjectMeta> {
        check_object_name(location)?;
        let data = payload
            .into_bytes()
            .await
            .map_err(|source| Error::Payload {
                location: location.to_string(),
                source,
            })?;
        let version = self.version.fetch_add(1, Ordering::Relaxed) + 1;
        let meta = ObjectMeta::new(location.clone(), data.len() as u64)
            .with_last_modified(SystemTime::now())
            .with_e_tag(version.to_string());
        let mut map = self.write();
        if mode == PutMode::Create && map.contains_key(location) {
            return Err(Error::AlreadyExists {
                location: location.to_string(),
            });
        }
        map.insert(
            location.clone(),
            Entry {
                data,
                meta: meta.clone(),
            },
        );
        Ok(meta)
    }

    async fn get_opts(&self, location: &Location, range: Option<Range<u64>>) -> Result<GetResult> {
        let entry = self.entry(location)?;
        let r = resolve_range(location, range, entry.meta.size)?;
        // Both ends are at most the length of `data`, a usize.
        let data = entry.data.slice(
            usize::try_from(r.start).unwrap_or(usize::MAX)
                ..usize::try_from(r.end).unwrap_or(usize::MAX),
        );
        let stream: ObjectStream<Bytes> = if data.is_empty() {
            Box::pin(futures::stream::empty())
        } else {
            Box::pin(futures::stream::once(async move { Ok(data) }))
        };
        Ok(GetResult::new(entry.meta, r, stream))
    }

    async fn head(&self, location: &Location) -> Result<ObjectMeta> {
        Ok(self.entry(location)?.meta)
    }

    fn list(&self, prefix: &Location) -> ObjectStream<ObjectMeta> {
        // A snapshot: the reference implementation favours simplicity over memory.
        let items: Vec<Result<ObjectMeta>> = self
            .read()
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.as_str().starts_with(prefix.as_str()))
            .filter(|(k, _)| k.starts_with(prefix) && *k != prefix)
            .map(|(_, e)| Ok(e.meta.clone()))
            .collect();
        Box::pin(futures::stream::iter(items))
    }

    async fn list_with_delimiter(&self, prefix: &Location) -> Result<ListResult> {
        let map = self.read();
        let mut prefixes: Vec<Location> = Vec::new();
        let mut objects = Vec::new();
        for (k, e) in map
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.as_str().starts_with(prefix.as_str()))
        {
            let Some(rest) = k.strip_prefix(prefix) else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            match rest.split_once('/') {
                None => objects.push(e.meta.clone()),
                Some((dir, _)) => {
                    let p = prefix.join(dir)?;
                    if prefixes.last() != Some(&p) {
                        prefixes.push(p);
                    }
                }
            }
        }
        prefixes.sort();
        prefixes.dedup();
        Ok(ListResult::new(prefixes, objects))
    }

    async fn delete(&self, location: &Location) -> Result<()> {
        self.write().remove(location);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DynStorage;
    use crate::conformance::{self, Capabilities};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let s = MemoryStorage::new();
        let prefix = Location::new("suite").unwrap();
        conformance::run_all(&s, &prefix, Capabilities::default()).await;
        let boxed: Box<DynStorage> = Box::new(s.clone());
        conformance::run_all(&boxed, &prefix, Capabilities::default()).await;
        let arc: Arc<DynStorage> = Arc::new(s);
        conformance::run_all(&arc, &Location::ROOT, Capabilities::default()).await;
    }
}
