//! Work over many servers, a bounded number at a time, so that one slow or hung server
//! never delays the others (cron, archive-wal).

/// How many servers are handled at a time by default.
pub const DEFAULT_JOBS: usize = 8;

/// Calls `f` with each of `items` and its index, from at most `jobs` threads at once
/// (at least one), taking the items in order; returns once every call has returned.
///
/// ```
/// use std::sync::Mutex;
/// let seen = Mutex::new(Vec::new());
/// barman_core::parallel::each(&["a", "b", "c"], 2, &|i, s| seen.lock().unwrap().push((i, *s)));
/// let mut seen = seen.into_inner().unwrap();
/// seen.sort();
/// assert_eq!(seen, [(0, "a"), (1, "b"), (2, "c")]);
/// ```
pub fn each<T: Sync>(items: &[T], jobs: usize, f: &(dyn Fn(usize, &T) + Sync)) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    f(i, item);
                }
            });
        }
    });
}
