//! Bandwidth limits for any byte stream: token buckets shared by the streams they limit.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug)]
struct Bucket {
    rate: u64,
    burst: f64,
    /// Bytes that may pass now; negative when streams are in debt.
    tokens: f64,
    last: Instant,
}

/// A rate limit in bytes per second, shared by every stream given a clone of it: clones
/// draw from the same bucket, so one limiter caps the sum of their throughput (a
/// server-wide `bandwidth_limit`), and separate limiters cap separate streams (a
/// `tablespace_bandwidth_limit` rule each).
///
/// The bucket starts empty; after an idle spell a stream may run ahead by a small burst
/// (a tenth of a second of traffic, at least 64 KiB); beyond it, it waits. Uses tokio's
/// clock, so tests can pause time.
///
/// # Examples
///
/// ```
/// use barman_transport::{Limited, RateLimiter};
/// use tokio::io::AsyncReadExt;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?.block_on(async {
/// let limit = RateLimiter::new(1 << 20); // 1 MiB/s
/// let data = vec![0u8; 3 << 20];
/// let start = tokio::time::Instant::now();
/// let mut reader = Limited::new(&data[..], vec![limit]);
/// let mut out = Vec::new();
/// reader.read_to_end(&mut out).await?;
/// let secs = start.elapsed().as_secs_f64();
/// assert!((2.8..3.2).contains(&secs), "{secs}");
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    bucket: Arc<Mutex<Bucket>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("bytes_per_second", &self.rate())
            .finish()
    }
}

impl RateLimiter {
    /// A limit of `bytes_per_second` (at least 1).
    ///
    /// ```
    /// assert_eq!(barman_transport::RateLimiter::new(1000).rate(), 1000);
    /// ```
    pub fn new(bytes_per_second: u64) -> RateLimiter {
        let rate = bytes_per_second.max(1);
        let burst = (rate as f64 / 10.0).max(65536.0);
        RateLimiter {
            bucket: Arc::new(Mutex::new(Bucket {
                rate,
                burst,
                tokens: 0.0,
                last: Instant::now(),
            })),
        }
    }

    /// A limit given in KiB per second, as Barman's `bandwidth_limit` and rsync's
    /// `--bwlimit` are; `0` means no limit.
    ///
    /// ```
    /// use barman_transport::RateLimiter;
    /// assert_eq!(RateLimiter::from_kib_per_second(0).map(|l| l.rate()), None);
    /// assert_eq!(RateLimiter::from_kib_per_second(4).map(|l| l.rate()), Some(4096));
    /// ```
    pub fn from_kib_per_second(kib: u64) -> Option<RateLimiter> {
        (kib > 0).then(|| RateLimiter::new(kib.saturating_mul(1024)))
    }

    /// The rate in bytes per second.
    ///
    /// ```
    /// assert_eq!(barman_transport::RateLimiter::new(5).rate(), 5);
    /// ```
    pub fn rate(&self) -> u64 {
        self.bucket.lock().map_or(1, |b| b.rate)
    }

    /// Takes `bytes` from the bucket and says how long the stream must now wait.
    fn take(&self, bytes: usize) -> Duration {
        let Ok(mut b) = self.bucket.lock() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let refill = now.duration_since(b.last).as_secs_f64() * b.rate as f64;
        b.tokens = (b.tokens + refill).min(b.burst);
        b.last = now;
        b.tokens -= bytes as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / b.rate as f64)
        }
    }

    /// Like [`acquire`](Self::acquire), for threads outside an async runtime: sleeps the
    /// thread.
    ///
    /// ```
    /// let limit = barman_transport::RateLimiter::new(10 << 20);
    /// let start = std::time::Instant::now();
    /// limit.acquire_blocking(1 << 20);
    /// limit.acquire_blocking(1 << 20);
    /// assert!(start.elapsed().as_secs_f64() >= 0.1);
    /// ```
    pub fn acquire_blocking(&self, bytes: usize) {
        let wait = self.take(bytes);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// Waits until `bytes` more may pass.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let limit = barman_transport::RateLimiter::new(1 << 20);
    /// let start = tokio::time::Instant::now();
    /// limit.acquire(1 << 20).await;
    /// assert!(start.elapsed().as_secs_f64() >= 0.99);
    /// # });
    /// ```
    pub async fn acquire(&self, bytes: usize) {
        let wait = self.take(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A reader or writer whose throughput obeys one or more [`RateLimiter`]s (for example the
/// server's limit and a tablespace's): the strictest one sets the pace.
///
/// Reading or writing passes bytes through at once and then pauses for as long as the
/// limits require, so memory use is unchanged.
#[derive(Debug)]
pub struct Limited<T> {
    inner: T,
    limiters: Vec<RateLimiter>,
    pause: Option<Pin<Box<Sleep>>>,
}

impl<T> Limited<T> {
    /// Wraps `inner`; with no limiter it is passed through untouched.
    ///
    /// ```
    /// let l = barman_transport::Limited::new(&b"abc"[..], vec![]);
    /// assert_eq!(l.into_inner(), b"abc");
    /// ```
    pub fn new(inner: T, limiters: Vec<RateLimiter>) -> Limited<T> {
        Limited {
            inner,
            limiters,
            pause: None,
        }
    }

    /// The wrapped reader or writer.
    ///
    /// ```
    /// let l = barman_transport::Limited::new(5u8, vec![]);
    /// assert_eq!(l.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.inner
    }

    fn wait_paused(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(p) = self.pause.as_mut() {
            ready!(p.as_mut().poll(cx));
            self.pause = None;
        }
        Poll::Ready(())
    }

    fn charge(&mut self, bytes: usize) {
        let wait = self
            .limiters
            .iter()
            .map(|l| l.take(bytes))
            .max()
            .unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            self.pause = Some(Box::pin(tokio::time::sleep(wait)));
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.wait_paused(cx));
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        self.charge(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.wait_paused(cx));
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, data))?;
        self.charge(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.wait_paused(cx));
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn read_all(data: &[u8], limiters: Vec<RateLimiter>) -> f64 {
        let start = Instant::now();
        let mut r = Limited::new(data, limiters);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out.len(), data.len());
        start.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn reads_at_the_rate() {
        for rate in [100_000u64, 1 << 20, 50 << 20] {
            let data = vec![7u8; (rate * 4) as usize];
            let secs = read_all(&data, vec![RateLimiter::new(rate)]).await;
            assert!(
                (3.8..4.2).contains(&secs),
                "rate {rate}: {secs}s for 4 s of data"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_strictest_limit_wins_and_clones_share_the_bucket() {
        let global = RateLimiter::new(1 << 20);
        let tablespace = RateLimiter::new(256 << 10);
        let data = vec![1u8; 1 << 20];
        let secs = read_all(&data, vec![global.clone(), tablespace]).await;
        assert!((3.8..4.2).contains(&secs), "{secs}");
        // Two streams through one limiter share it: 2 MiB at 1 MiB/s take 2 s together.
        let start = Instant::now();
        let (a, b) = tokio::join!(
            read_all(&data, vec![global.clone()]),
            read_all(&data, vec![global.clone()])
        );
        let total = start.elapsed().as_secs_f64();
        assert!((1.8..2.3).contains(&total), "{total} ({a}, {b})");
    }

    #[tokio::test(start_paused = true)]
    async fn writes_at_the_rate() {
        let mut w = Limited::new(Vec::new(), vec![RateLimiter::new(512 << 10)]);
        let start = Instant::now();
        for _ in 0..64 {
            w.write_all(&[0u8; 32 << 10]).await.unwrap();
        }
        w.shutdown().await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!((3.8..4.2).contains(&secs), "{secs}");
        assert_eq!(w.into_inner().len(), 2 << 20);
    }

    #[tokio::test(start_paused = true)]
    async fn no_limiter_no_wait() {
        let data = vec![0u8; 10 << 20];
        assert_eq!(read_all(&data, vec![]).await, 0.0);
    }
}
