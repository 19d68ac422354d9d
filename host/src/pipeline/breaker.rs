//! Circuit breaker: backs a failing pipeline off instead of hot-looping on
//! batches that keep failing.

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

use crate::config::BreakerConfig;

/// A change of state worth logging and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Batches are held back for `backoff`.
    Opened { backoff: Duration },
    /// A trial batch succeeded; batches flow again.
    Closed,
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    /// The open period is over; the next result decides.
    HalfOpen,
}

/// A breaker's state for the status API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub trips: u64,
    /// Milliseconds left in the open period; 0 unless open.
    pub open_until_ms: u64,
}

/// One pipeline's breaker: `failure_threshold` consecutive failed batches
/// open it for a backoff (`base_backoff`, doubling per consecutive trip up
/// to `max_backoff`); then it half-opens and lets one trial batch (the
/// probe) through while the pipeline's other workers wait: success closes
/// it and resets the backoff, failure re-opens it for the next one. A
/// failing pipeline with many workers thus costs one batch per backoff,
/// not one per worker.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
    /// Wakes the workers waiting behind a probe when it ends.
    probe_ended: Notify,
}

/// What [`CircuitBreaker::wait_ready`] hands out: hold it until the batch's
/// result is recorded. The one for a half-open breaker's trial batch lets
/// the next worker in when dropped, even if the batch was cancelled before
/// its result was recorded.
#[derive(Debug)]
#[must_use = "a half-open breaker admits the next batch when this is dropped"]
pub struct Admission<'a> {
    probe: Option<&'a CircuitBreaker>,
}

impl Admission<'_> {
    /// Whether this batch is the half-open breaker's trial.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.probe {
            breaker.lock().probing = false;
            breaker.probe_ended.notify_waiters();
        }
    }
}

#[derive(Debug)]
struct State {
    open_until: Option<Instant>,
    half_open: bool,
    /// A half-open trial batch is running.
    probing: bool,
    consecutive_failures: u32,
    /// Trips since the breaker last closed from half-open.
    consecutive_trips: u32,
    trips: u64,
}

impl State {
    /// Half-opens once the open period is over.
    fn refresh(&mut self, now: Instant) {
        if self.open_until.is_some_and(|until| until <= now) {
            self.open_until = None;
            self.half_open = true;
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                open_until: None,
                half_open: false,
                probing: false,
                consecutive_failures: 0,
                consecutive_trips: 0,
                trips: 0,
            }),
            probe_ended: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.refresh(Instant::now());
        state
    }

    /// Returns at once while closed. While open, sleeps until the open
    /// period ends; while half-open, the first caller becomes the probe and
    /// the others wait until its result is in (or it is dropped).
    pub async fn wait_ready(&self) -> Admission<'_> {
        loop {
            // Registered before the state is read, so a probe ending in
            // between still wakes this caller.
            let probe_ended = self.probe_ended.notified();
            let open_until = {
                let mut s = self.lock();
                if s.open_until.is_none() && !s.half_open {
                    return Admission { probe: None };
                }
                if s.open_until.is_none() && !s.probing {
                    s.probing = true;
                    return Admission { probe: Some(self) };
                }
                s.open_until
            };
            match open_until {
                Some(until) => tokio::time::sleep_until(until).await,
                None => probe_ended.await,
            }
        }
    }

    /// Records one batch's outcome. Results arriving while open (batches
    /// started before the trip) are ignored.
    pub fn record(&self, success: bool) -> Option<Transition> {
        let mut s = self.lock();
        if s.open_until.is_some() {
            return None;
        }
        if success {
            s.consecutive_failures = 0;
            if !std::mem::take(&mut s.half_open) {
                return None;
            }
            s.consecutive_trips = 0;
            return Some(Transition::Closed);
        }
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        if !s.half_open && s.consecutive_failures < self.config.failure_threshold.max(1) {
            return None;
        }
        s.half_open = false;
        s.trips += 1;
        s.consecutive_trips = s.consecutive_trips.saturating_add(1);
        let doublings = (s.consecutive_trips - 1).min(31);
        let backoff = self
            .config
            .base_backoff
            .saturating_mul(1 << doublings)
            .min(self.config.max_backoff);
        s.open_until = Some(Instant::now() + backoff);
        Some(Transition::Opened { backoff })
    }

    /// The current state, for the status API.
    /// Records a failed batch whose records hit resource limits (CPU,
    /// memory): each retry costs a full limit, so the breaker opens at once
    /// instead of after `failure_threshold` batches.
    pub fn record_limit_failure(&self) -> Option<Transition> {
        {
            let mut s = self.lock();
            if s.open_until.is_some() {
                return None;
            }
            let threshold = self.config.failure_threshold.max(1);
            s.consecutive_failures = s.consecutive_failures.max(threshold - 1);
        }
        self.record(false)
    }

    pub fn status(&self) -> BreakerStatus {
        let s = self.lock();
        let state = match (s.open_until, s.half_open) {
            (Some(_), _) => BreakerState::Open,
            (None, true) => BreakerState::HalfOpen,
            (None, false) => BreakerState::Closed,
        };
        let left = s.open_until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        });
        BreakerStatus {
            state,
            consecutive_failures: s.consecutive_failures,
            trips: s.trips,
            open_until_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Times the breaker has opened.
    pub fn trips(&self) -> u64 {
        self.lock().trips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, base_ms: u64, max_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: threshold,
            base_backoff: Duration::from_millis(base_ms),
            max_backoff: Duration::from_millis(max_ms),
        })
    }

    fn opened(ms: u64) -> Option<Transition> {
        Some(Transition::Opened {
            backoff: Duration::from_millis(ms),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_exactly_at_the_threshold() {
        let b = breaker(3, 1000, 60_000);
        assert_eq!(b.record(false), None);
        assert_eq!(b.record(false), None);
        assert_eq!(b.status().state, BreakerState::Closed);
        assert_eq!(b.status().consecutive_failures, 2);
        assert_eq!(b.record(false), opened(1000));
        let status = b.status();
        assert_eq!(status.state, BreakerState::Open);
        assert_eq!((status.trips, status.open_until_ms), (1, 1000));
        assert_eq!(b.trips(), 1);
        // Late results while open change nothing.
        assert_eq!(b.record(true), None);
        assert_eq!(b.record(false), None);
        assert_eq!(b.trips(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_ready_blocks_for_the_backoff() {
        let b = breaker(1, 1500, 60_000);
        let start = Instant::now();
        drop(b.wait_ready().await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(b.record(false), opened(1500));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(b.status().open_until_ms, 1000);
        drop(b.wait_ready().await);
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        assert_eq!(b.status().state, BreakerState::HalfOpen);
        assert_eq!(b.status().open_until_ms, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_success_closes_and_resets_the_backoff() {
        let b = breaker(2, 100, 10_000);
        b.record(false);
        assert_eq!(b.record(false), opened(100));
        drop(b.wait_ready().await);
        assert_eq!(b.record(false), opened(200));
        drop(b.wait_ready().await);
        assert_eq!(b.record(true), Some(Transition::Closed));
        let status = b.status();
        assert_eq!(status.state, BreakerState::Closed);
        assert_eq!((status.consecutive_failures, status.trips), (0, 2));
        // Closed again: the threshold applies, and the backoff starts over.
        assert_eq!(b.record(false), None);
        assert_eq!(b.record(false), opened(100));
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_failure_reopens_doubling_up_to_the_cap() {
        let b = breaker(3, 1000, 5000);
        b.record(false);
        b.record(false);
        let mut backoffs = vec![b.record(false)];
        for _ in 0..4 {
            let start = Instant::now();
            drop(b.wait_ready().await);
            let Some(Transition::Opened { backoff }) = backoffs.last().copied().flatten() else {
                panic!("not open: {backoffs:?}");
            };
            assert_eq!(start.elapsed(), backoff);
            backoffs.push(b.record(false));
        }
        let expected = [1000, 2000, 4000, 5000, 5000].map(opened);
        assert_eq!(backoffs, expected);
        assert_eq!(b.trips(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn successes_reset_the_failure_count() {
        let b = breaker(3, 1000, 60_000);
        for _ in 0..3 {
            assert_eq!(b.record(false), None);
            assert_eq!(b.record(false), None);
            assert_eq!(b.record(true), None);
            assert_eq!(b.status().consecutive_failures, 0);
        }
        b.record(false);
        b.record(false);
        assert_eq!(b.record(false), opened(1000));
    }

    /// Starts a worker that waits for admission, reports whether it is the
    /// probe, and holds the admission until told to let go.
    fn worker(
        b: &std::sync::Arc<CircuitBreaker>,
        admitted: &tokio::sync::mpsc::UnboundedSender<(bool, tokio::sync::oneshot::Sender<()>)>,
    ) {
        let (b, admitted) = (std::sync::Arc::clone(b), admitted.clone());
        tokio::spawn(async move {
            let admission = b.wait_ready().await;
            let (release, released) = tokio::sync::oneshot::channel();
            admitted.send((admission.is_probe(), release)).unwrap();
            let _ = released.await;
            drop(admission);
        });
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_one_probe_while_the_others_wait() {
        let b = std::sync::Arc::new(breaker(1, 1000, 60_000));
        assert!(!b.wait_ready().await.is_probe(), "closed: no probe");
        assert_eq!(b.record(false), opened(1000));
        let (tx, mut admitted) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..3 {
            worker(&b, &tx);
        }
        tokio::time::advance(Duration::from_millis(1000)).await;
        let (is_probe, release) = admitted.recv().await.unwrap();
        assert!(is_probe);
        tokio::task::yield_now().await;
        assert!(
            admitted.try_recv().is_err(),
            "a second batch passed a half-open breaker"
        );
        // The probe fails: the others stay held for the next, doubled backoff.
        assert_eq!(b.record(false), opened(2000));
        release.send(()).unwrap();
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(admitted.try_recv().is_err());
        // Then exactly one of them probes, and its success lets the rest in.
        tokio::time::advance(Duration::from_millis(1)).await;
        let (is_probe, release) = admitted.recv().await.unwrap();
        assert!(is_probe);
        tokio::task::yield_now().await;
        assert!(admitted.try_recv().is_err());
        assert_eq!(b.record(true), Some(Transition::Closed));
        release.send(()).unwrap();
        // The third worker, held behind both probes, passes as an ordinary batch.
        let (is_probe, _release) = admitted.recv().await.unwrap();
        assert!(!is_probe, "closed again: no probe");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_without_a_result_lets_the_next_batch_probe() {
        let b = std::sync::Arc::new(breaker(1, 100, 60_000));
        assert_eq!(b.record(false), opened(100));
        tokio::time::advance(Duration::from_millis(100)).await;
        let probe = b.wait_ready().await;
        assert!(probe.is_probe());
        let (tx, mut admitted) = tokio::sync::mpsc::unbounded_channel();
        worker(&b, &tx);
        tokio::task::yield_now().await;
        assert!(admitted.try_recv().is_err());
        // A cancelled batch (rebalance, shutdown) records nothing.
        drop(probe);
        let (is_probe, _release) = admitted.recv().await.unwrap();
        assert!(is_probe, "the next batch is the probe");
        assert_eq!(b.status().state, BreakerState::HalfOpen);
    }

    #[test]
    fn config_and_status_serde() {
        let config: BreakerConfig = toml::from_str("base_backoff = \"250ms\"").unwrap();
        assert_eq!(config.base_backoff, Duration::from_millis(250));
        assert_eq!(config.failure_threshold, 5);
        assert_eq!(config.max_backoff, Duration::from_secs(60));
        assert!(toml::from_str::<BreakerConfig>("threshold = 3").is_err());
        let status = BreakerStatus {
            state: BreakerState::HalfOpen,
            consecutive_failures: 1,
            trips: 2,
            open_until_ms: 0,
        };
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!({
                "state": "half_open", "consecutive_failures": 1, "trips": 2, "open_until_ms": 0,
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_failed_by_limits_opens_at_once() {
        let b = breaker(5, 100, 1_000);
        assert_eq!(b.record_limit_failure(), opened(100));
        assert_eq!(b.status().state, BreakerState::Open);
        // Still open: nothing more is counted.
        assert_eq!(b.record_limit_failure(), None);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(b.status().state, BreakerState::HalfOpen);
        assert_eq!(b.record_limit_failure(), opened(200));
    }
}
