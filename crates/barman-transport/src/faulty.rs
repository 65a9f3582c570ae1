//! A fault-injecting wrapper for tests.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use crate::{
    Error, GetResult, ListResult, Location, ObjectMeta, ObjectStream, PutMode, PutPayload, Result,
    Storage,
};

/// The operations of [`Storage`], to say which one a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`Storage::put_opts`].
    Put,
    /// [`Storage::get_opts`].
    Get,
    /// [`Storage::head`].
    Head,
    /// [`Storage::list`].
    List,
    /// [`Storage::list_with_delimiter`].
    ListWithDelimiter,
    /// [`Storage::delete`].
    Delete,
}

#[derive(Debug, Default)]
struct State {
    calls: HashMap<Operation, u64>,
    /// Absolute call numbers (1-based) that fail, per operation.
    failing: HashMap<Operation, Vec<u64>>,
    cut_puts_after: Option<u64>,
    cut_gets_after: Option<u64>,
    latency: Duration,
}

/// A [`Storage`] wrapper that fails on demand, for the tests of the crates above:
/// fail the Nth call of an operation, cut put or get streams short, add latency.
///
/// Injected failures are retryable [`Error::Backend`] errors whose message contains
/// `injected fault`; a cut put payload makes the inner storage see a failing stream,
/// so it exercises the real clean-up path.
///
/// # Examples
///
/// ```
/// use barman_transport::{FaultyStorage, Location, MemoryStorage, Operation, StorageExt};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let s = FaultyStorage::new(MemoryStorage::new());
/// let loc = Location::new("wals/x")?;
/// s.fail_nth(Operation::Put, 1);            // the next put fails...
/// let err = s.put(&loc, "data").await.unwrap_err();
/// assert!(err.is_retryable());
/// s.put(&loc, "data").await?;                // ...and the retry succeeds
/// assert_eq!(s.calls(Operation::Put), 2);
///
/// s.cut_puts_after(2);                        // a source that dies after 2 bytes
/// assert!(s.put(&Location::new("wals/y")?, "data").await.is_err());
/// assert!(!s.exists(&Location::new("wals/y")?).await?);
/// # Ok::<(), barman_transport::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FaultyStorage<S> {
    inner: S,
    state: Arc<Mutex<State>>,
}

impl<S: Storage> FaultyStorage<S> {
    /// Wraps `inner`, with no faults yet.
    pub fn new(inner: S) -> FaultyStorage<S> {
        FaultyStorage {
            inner,
            state: Arc::default(),
        }
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the `nth` call of `op` from now (1 = the next one) fail.
    pub fn fail_nth(&self, op: Operation, nth: u64) {
        let mut st = self.state();
        let at = st.calls.get(&op).copied().unwrap_or(0) + nth;
        st.failing.entry(op).or_default().push(at);
    }

    /// Makes the next `n` calls of `op` fail.
    pub fn fail_next(&self, op: Operation, n: u64) {
        for i in 1..=n {
            self.fail_nth(op, i);
        }
    }

    /// From now on, the payload of every put fails after `bytes` bytes, as if its
    /// source died (`None` to stop).
    pub fn cut_puts_after(&self, bytes: impl Into<Option<u64>>) {
        self.state().cut_puts_after = bytes.into();
    }

    /// From now on, every get stream fails after `bytes` bytes, as if the connection
    /// dropped (`None` to stop).
    pub fn cut_gets_after(&self, bytes: impl Into<Option<u64>>) {
        self.state().cut_gets_after = bytes.into();
    }

    /// Adds `latency` before every call.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Removes every fault (call counts are kept).
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.failing.clear();
        st.cut_puts_after = None;
        st.cut_gets_after = None;
        st.latency = Duration::ZERO;
    }

    /// How many calls of `op` were made so far.
    pub fn calls(&self, op: Operation) -> u64 {
        self.state().calls.get(&op).copied().unwrap_or(0)
    }

    /// Counts the call and says whether it must fail, and how long to wait first.
    fn enter(&self, op: Operation, location: &Location) -> (Result<()>, Duration) {
        let mut st = self.state();
        let n = {
            let c = st.calls.entry(op).or_insert(0);
            *c += 1;
            *c
        };
        let fail = st
            .failing
            .get_mut(&op)
            .map(|v| {
                let before = v.len();
                v.retain(|at| *at != n);
                v.len() != before
            })
            .unwrap_or(false);
        let r = if fail {
            Err(injected(location, format!("{op:?} call {n}")))
        } else {
            Ok(())
        };
        (r, st.latency)
    }

    async fn gate(&self, op: Operation, location: &Location) -> Result<()> {
        let (r, latency) = self.enter(op, location);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        r
    }
}

fn injected(location: &Location, what: String) -> Error {
    Error::Backend {
        transport: "faulty",
        location: location.to_string(),
        retryable: true,
        source: format!("injected fault: {what}").into(),
    }
}

/// Passes `limit` bytes of `s`, then yields `err()` once and ends (a stream shorter
/// than `limit` passes whole).
fn cut<E: Send + 'static>(
    s: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    limit: u64,
    err: impl FnOnce() -> E + Send + 'static,
) -> impl futures::Stream<Item = std::result::Result<Bytes, E>> + Send + 'static {
    futures::stream::unfold(
        (Box::pin(s), 0u64, Some(err)),
        move |(mut s, passed, err)| async move {
            let err = err?;
            if passed >= limit {
                return Some((Err(err()), (s, passed, None)));
            }
            match s.next().await {
                None => None,
                Some(Ok(mut b)) => {
                    let room = usize::try_from(limit - passed).unwrap_or(usize::MAX);
                    b.truncate(room);
                    let passed = passed + b.len() as u64;
                    Some((Ok(b), (s, passed, Some(err))))
                }
                Some(Err(e)) => Some((Err(e), (s, passed, Some(err)))),
            }
        },
    )
}

#[async_trait]
impl<S: Storage> Storage for FaultyStorage<S> {
    async fn put_opts(
        &self,
        location: &Location,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<ObjectMeta> {
        self.gate(Operation::Put, location).await?;
        let cut_after = self.state().cut_puts_after;
        let payload = match cut_after {
            Some(limit) => PutPayload::from_stream(cut(payload.into_stream(), limit, || {
                io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "injected fault: payload cut",
                )
            })),
            None => payload,
        };
        self.inner.put_opts(location, payload, mode).await
    }

    async fn get_opts(&self, location: &Location, range: Option<Range<u64>>) -> Result<GetResult> {
        self.gate(Operation::Get, location).await?;
        let r = self.inner.get_opts(location, range).await?;
        let cut_after = self.state().cut_gets_after;
        match cut_after {
            None => Ok(r),
            Some(limit) => {
                let meta = r.meta().clone();
                let range = r.range();
                let loc = location.clone();
                let s = cut(r.into_stream(), limit, move || {
                    injected(&loc, "get stream cut".into())
                });
                Ok(GetResult::new(meta, range, Box::pin(s)))
            }
        }
    }

    async fn head(&self, location: &Location) -> Result<ObjectMeta> {
        self.gate(Operation::Head, location).await?;
        self.inner.head(location).await
    }

    fn list(&self, prefix: &Location) -> ObjectStream<ObjectMeta> {
        // `list` is not async: the latency is paid by the first item.
        let (r, latency) = self.enter(Operation::List, prefix);
        let inner = match r {
            Ok(()) => self.inner.list(prefix),
            Err(e) => Box::pin(futures::stream::once(async move { Err(e) })),
        };
        if latency.is_zero() {
            return inner;
        }
        Box::pin(
            futures::stream::once(tokio::time::sleep(latency))
                .filter_map(|()| futures::future::ready(None))
                .chain(inner),
        )
    }

    async fn list_with_delimiter(&self, prefix: &Location) -> Result<ListResult> {
        self.gate(Operation::ListWithDelimiter, prefix).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn delete(&self, location: &Location) -> Result<()> {
        self.gate(Operation::Delete, location).await?;
        self.inner.delete(location).await
    }
}
