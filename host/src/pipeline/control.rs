//! A pipeline's run state that outlives rebuilds of the pipeline itself:
//! paused by an operator or tenant, backing off after repeated failures,
//! and how many records it has taken lately.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::breaker::{Admission, BreakerState, BreakerStatus, CircuitBreaker};
use crate::config::BreakerConfig;

/// Kept by the registry per pipeline name; the partition workers consult it
/// before every batch.
#[derive(Debug)]
pub struct PipelineControl {
    paused: watch::Sender<bool>,
    pub breaker: CircuitBreaker,
    meter: Mutex<Meter>,
}

/// Records per second over the last completed window.
#[derive(Debug)]
struct Meter {
    window_start: Instant,
    count: u64,
    last_rate: f64,
}

const WINDOW: Duration = Duration::from_secs(5);

/// What status shows of a pipeline's run state.
#[derive(Debug, Clone, Serialize)]
pub struct ControlStatus {
    pub paused: bool,
    pub breaker: BreakerStatus,
    pub records_per_second: f64,
}

impl PipelineControl {
    pub fn new(breaker: BreakerConfig) -> Self {
        Self {
            paused: watch::Sender::new(false),
            breaker: CircuitBreaker::new(breaker),
            meter: Mutex::new(Meter {
                window_start: Instant::now(),
                count: 0,
                last_rate: 0.0,
            }),
        }
    }

    /// Pauses or resumes; returns whether that changed anything. A paused
    /// pipeline finishes the batch it is on and takes no more; its
    /// partitions back up and Kafka holds the rest.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused
            .send_if_modified(|p| std::mem::replace(p, paused) != paused)
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Paused, or its breaker not closed: its batches will wait for a
    /// while (the source pauses such a partition at once).
    pub fn is_held_back(&self) -> bool {
        self.is_paused() || self.breaker.status().state != BreakerState::Closed
    }

    /// Returns once the pipeline may run a batch: not paused, and its
    /// breaker admitting it (see [`CircuitBreaker::wait_ready`]). Hold the
    /// admission until the batch's result is recorded.
    pub async fn wait_runnable(&self) -> Admission<'_> {
        let mut rx = self.paused.subscribe();
        let _ = rx.wait_for(|p| !*p).await;
        self.breaker.wait_ready().await
    }

    /// Counts records taken into processing.
    pub fn record(&self, n: usize) {
        let mut m = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        m.roll();
        m.count += n as u64;
    }

    pub fn status(&self) -> ControlStatus {
        let mut m = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        m.roll();
        ControlStatus {
            paused: self.is_paused(),
            breaker: self.breaker.status(),
            records_per_second: m.last_rate,
        }
    }
}

impl Meter {
    fn roll(&mut self) {
        let elapsed = self.window_start.elapsed();
        if elapsed >= WINDOW {
            // An idle stretch longer than a window reads as zero.
            self.last_rate = if elapsed >= 2 * WINDOW {
                0.0
            } else {
                self.count as f64 / elapsed.as_secs_f64()
            };
            self.count = 0;
            self.window_start = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paused_pipeline_waits_until_resumed() {
        let c = std::sync::Arc::new(PipelineControl::new(BreakerConfig::default()));
        assert!(c.set_paused(true));
        assert!(!c.set_paused(true), "already paused");
        let waiter = tokio::spawn({
            let c = std::sync::Arc::clone(&c);
            async move { drop(c.wait_runnable().await) }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!waiter.is_finished());
        c.set_paused(false);
        waiter.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_meter_reports_the_last_window() {
        let c = PipelineControl::new(BreakerConfig::default());
        c.record(400);
        tokio::time::advance(Duration::from_secs(3)).await;
        c.record(600);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.status().records_per_second, 200.0);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(c.status().records_per_second, 0.0);
    }
}
