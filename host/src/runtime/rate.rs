//! Token buckets: [`RateLimiter`] for per-tenant quotas (records/s, HTTP
//! requests/s) and [`LogLimiter`] for module log lines.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

/// Tokens a waiter may still be short of and count as served (float slack).
const EPSILON: f64 = 1e-6;

/// The bucket, kept as running totals so a waiter's place never moves:
/// a caller is served once `produced` reaches its threshold.
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    burst: f64,
    /// Tokens refilled so far, at most `consumed + burst`.
    produced: f64,
    /// Tokens taken so far, including waiters' reservations.
    consumed: f64,
    last: Instant,
    /// Callers holding a reservation; totals are rebased when there are none.
    waiters: usize,
}

impl Bucket {
    fn new(per_second: f64, burst: f64) -> Self {
        check(per_second, burst);
        Self {
            per_second,
            burst,
            produced: burst,
            consumed: 0.0,
            last: Instant::now(),
            waiters: 0,
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.produced = (self.produced + elapsed * self.per_second).min(self.consumed + self.burst);
        if self.waiters == 0 {
            self.produced -= self.consumed;
            self.consumed = 0.0;
        }
    }

    fn try_take(&mut self, n: f64) -> bool {
        self.refill();
        let enough = self.produced - self.consumed + EPSILON >= n;
        if enough {
            self.consumed += n;
        }
        enough
    }
}

fn check(per_second: f64, burst: f64) {
    let ok = per_second > 0.0 && per_second.is_finite() && burst >= 0.0 && burst.is_finite();
    assert!(ok, "bad limits: {per_second}/s, burst {burst}");
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A token bucket refilled at `per_second` up to `burst` tokens.
///
/// [`acquire`](Self::acquire) serves callers in arrival order; a request
/// larger than `burst` is taken whole once the bucket is full, leaving it in
/// debt that later callers wait out, so sustained throughput is `per_second`
/// whatever the request sizes. A cancelled `acquire` gives its tokens back.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Mutex<Bucket>,
    /// Wakes sleeping waiters when the rate changes.
    changed: Notify,
}

impl RateLimiter {
    /// A full bucket. Panics unless `per_second > 0` and `burst >= 0`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            bucket: Mutex::new(Bucket::new(per_second, burst)),
            changed: Notify::new(),
        }
    }

    /// Waits until `n` tokens are available and takes them.
    pub async fn acquire(&self, n: u64) {
        let n = n as f64;
        // Served once `produced` reaches `threshold`: every earlier
        // reservation plus this one's need (the whole burst at most).
        let threshold = {
            let mut b = lock(&self.bucket);
            b.refill();
            let threshold = b.consumed + n.min(b.burst);
            b.consumed += n;
            if b.produced + EPSILON >= threshold {
                return;
            }
            b.waiters += 1;
            threshold
        };
        let mut reservation = Reservation {
            limiter: self,
            n,
            done: false,
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wait = {
                let mut b = lock(&self.bucket);
                b.refill();
                let short = threshold - b.produced;
                if short <= EPSILON {
                    b.waiters -= 1;
                    reservation.done = true;
                    return;
                }
                Duration::try_from_secs_f64(short / b.per_second)
                    .unwrap_or(Duration::MAX)
                    .max(Duration::from_nanos(1))
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changed => {}
            }
        }
    }

    /// Takes `n` tokens if they are there now, never going into debt nor
    /// ahead of waiting callers.
    pub fn try_acquire(&self, n: u64) -> bool {
        lock(&self.bucket).try_take(n as f64)
    }

    /// Changes the limits in place: tokens and debt are kept (tokens capped
    /// at the new `burst`), and waiters recompute their wait at the new rate.
    pub fn set_rate(&self, per_second: f64, burst: f64) {
        check(per_second, burst);
        let mut b = lock(&self.bucket);
        b.refill();
        (b.per_second, b.burst) = (per_second, burst);
        b.produced = b.produced.min(b.consumed + burst);
        drop(b);
        self.changed.notify_waiters();
    }

    /// The refill rate, tokens per second.
    pub fn per_second(&self) -> f64 {
        lock(&self.bucket).per_second
    }
}

/// Gives a cancelled `acquire`'s tokens back.
struct Reservation<'a> {
    limiter: &'a RateLimiter,
    n: f64,
    done: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut b = lock(&self.limiter.bucket);
            b.refill();
            // As if produced for those behind: they move up by `n`.
            b.produced += self.n;
            b.waiters -= 1;
            drop(b);
            self.limiter.changed.notify_waiters();
        }
    }
}

/// What [`LogLimiter::admit`] decided for one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAdmission {
    /// Write the line; `suppressed_before` lines were dropped since the
    /// last one written.
    Allow { suppressed_before: u64 },
    /// Drop the line.
    Drop,
}

/// Flood control for module log lines: `lines_per_second` sustained, with a
/// burst of one second's worth; dropped lines are counted, not queued.
#[derive(Debug)]
pub struct LogLimiter {
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    bucket: Bucket,
    suppressed: u64,
    dropped_total: u64,
}

impl LogLimiter {
    /// Panics unless `lines_per_second > 0`.
    pub fn new(lines_per_second: f64) -> Self {
        Self {
            state: Mutex::new(LogState {
                bucket: Bucket::new(lines_per_second, lines_per_second.max(1.0)),
                suppressed: 0,
                dropped_total: 0,
            }),
        }
    }

    /// Decides for one line.
    pub fn admit(&self) -> LogAdmission {
        let mut s = lock(&self.state);
        if s.bucket.try_take(1.0) {
            LogAdmission::Allow {
                suppressed_before: std::mem::take(&mut s.suppressed),
            }
        } else {
            s.suppressed += 1;
            s.dropped_total += 1;
            LogAdmission::Drop
        }
    }

    /// Lines dropped since creation.
    pub fn dropped_total(&self) -> u64 {
        lock(&self.state).dropped_total
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Runs `tasks` acquirers of `n` tokens each for 10 simulated seconds;
    /// returns tokens granted per task.
    async fn run_for_10s(limiter: Arc<RateLimiter>, tasks: usize, n: u64) -> Vec<u64> {
        let counts: Vec<_> = (0..tasks).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let handles: Vec<_> = counts
            .iter()
            .map(|count| {
                let (limiter, count) = (limiter.clone(), count.clone());
                tokio::spawn(async move {
                    loop {
                        limiter.acquire(n).await;
                        count.fetch_add(n, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(10)).await;
        handles.iter().for_each(|h| h.abort());
        counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    fn assert_within(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= expected * tolerance,
            "{actual} not within {tolerance} of {expected}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sustained_rate_single_and_concurrent_acquirers() {
        let granted = run_for_10s(Arc::new(RateLimiter::new(1000.0, 50.0)), 1, 7).await;
        assert_within(granted[0] as f64, 10_000.0 + 50.0, 0.01);
        // Four at once: the same total, shared evenly (FIFO).
        let granted = run_for_10s(Arc::new(RateLimiter::new(1000.0, 20.0)), 4, 5).await;
        let total: u64 = granted.iter().sum();
        assert_within(total as f64, 10_000.0 + 20.0, 0.01);
        granted
            .iter()
            .for_each(|&g| assert_within(g as f64, total as f64 / 4.0, 0.02));
        // Requests over the burst: the first is taken from the full bucket.
        let granted = run_for_10s(Arc::new(RateLimiter::new(100.0, 10.0)), 2, 25).await;
        assert_within(granted.iter().sum::<u64>() as f64, 1000.0 + 25.0, 0.03);
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_honoured_and_capped() {
        let limiter = RateLimiter::new(10.0, 5.0);
        assert!((0..5).all(|_| limiter.try_acquire(1)));
        assert!(!limiter.try_acquire(1));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(limiter.try_acquire(1));
        assert!(!limiter.try_acquire(1));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(limiter.try_acquire(5));
        assert!(!limiter.try_acquire(1));
    }

    #[tokio::test(start_paused = true)]
    async fn request_over_burst_goes_into_debt() {
        let limiter = RateLimiter::new(10.0, 5.0);
        let start = Instant::now();
        limiter.acquire(20).await; // bucket full: taken at once, 15 in debt
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(!limiter.try_acquire(1));
        limiter.acquire(1).await; // debt of 15, then 1: 1.6 s
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(1600) && waited < Duration::from_millis(1610));
        limiter.acquire(20).await; // waits for a full bucket: 0.5 s more
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(2100) && waited < Duration::from_millis(2110));
    }

    #[tokio::test(start_paused = true)]
    async fn set_rate_takes_effect_for_waiters_and_keeps_state() {
        let limiter = Arc::new(RateLimiter::new(1.0, 1.0));
        limiter.acquire(1).await;
        let start = Instant::now();
        let waiter = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(1).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        limiter.set_rate(1000.0, 1.0);
        assert_eq!(limiter.per_second(), 1000.0);
        waiter.await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(110));
        // Debt is kept across a change.
        limiter.acquire(1000).await;
        limiter.set_rate(100.0, 10.0);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!limiter.try_acquire(1)); // 999 owed, 900 refilled
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(limiter.try_acquire(10)); // the new burst
        assert!(!limiter.try_acquire(1));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_acquire_returns_its_tokens() {
        let limiter = Arc::new(RateLimiter::new(1.0, 1.0));
        assert!(limiter.try_acquire(1));
        let start = Instant::now();
        let spawn_acquire = |n| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(n).await })
        };
        let big = spawn_acquire(5);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let small = spawn_acquire(1); // queued behind `big`: 6 s
        tokio::time::sleep(Duration::from_millis(10)).await;
        big.abort();
        small.await.unwrap();
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(1) && waited < Duration::from_millis(1010));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.try_acquire(1));
        assert!(!limiter.try_acquire(1));
    }

    #[tokio::test(start_paused = true)]
    async fn log_limiter_counts_suppressed_lines() {
        let logs = LogLimiter::new(2.0);
        let admitted = (0..5).map(|_| logs.admit()).collect::<Vec<_>>();
        use LogAdmission::*;
        let allow = |n| Allow {
            suppressed_before: n,
        };
        assert_eq!(admitted, [allow(0), allow(0), Drop, Drop, Drop]);
        assert_eq!(logs.dropped_total(), 3);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(logs.admit(), allow(3));
        assert_eq!(logs.admit(), Drop);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(logs.admit(), allow(1));
        assert_eq!(logs.dropped_total(), 4);
    }
}
