//! The sink task: batches input, keeps at most `concurrency` bulk requests
//! in flight, schedules retries, and stops reading its input whenever it
//! cannot make progress, so the bounded channel fills and producers wait.
//!
//! Memory is bounded by the in-flight batches, the batches waiting for a
//! retry (at most one per in-flight slot, or the halves of a split one), and
//! one batch being accumulated.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{Id, JoinSet};
use tokio::time::{Instant, sleep_until};

use super::request_builder::{BulkBatch, Pending, RequestBuilder};
use super::retry::Backoff;
use super::service::{Completion, Service, halves, item_retry_attempt};
use crate::event::IndexRequest;

/// How a sink task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Documents given up at the deadline, unacknowledged (so redelivered).
    pub unacknowledged: usize,
}

/// Work that waits for its backoff before being sent again.
enum RetryWork {
    /// Documents to encode and send as one request.
    Items(Vec<Pending>),
    /// An encoded request to resend as it is.
    Request(BulkBatch),
}

impl RetryWork {
    fn docs(&self) -> usize {
        match self {
            RetryWork::Items(items) => items.len(),
            RetryWork::Request(b) => b.items.len(),
        }
    }
}

struct Retry {
    due: Instant,
    work: RetryWork,
}

pub struct SinkTask {
    pub input: mpsc::Receiver<IndexRequest>,
    pub shutdown: oneshot::Receiver<Duration>,
    pub service: Arc<Service>,
    pub builder: RequestBuilder,
    pub backoff: Backoff,
    pub batch_timeout: Duration,
    pub concurrency: usize,
}

/// State of a running [`SinkTask`].
struct Run {
    queue: VecDeque<Pending>,
    queued_bytes: usize,
    batch_deadline: Option<Instant>,
    /// Retries in order; those that are due go before any new document.
    retries: VecDeque<Retry>,
    in_flight: JoinSet<Completion>,
    in_flight_docs: HashMap<Id, usize>,
    input_open: bool,
    deadline: Option<Instant>,
    /// Requests in flight as last reported to the metrics.
    reported_in_flight: usize,
}

impl SinkTask {
    pub async fn run(mut self) -> ShutdownReport {
        let mut run = Run {
            queue: VecDeque::new(),
            queued_bytes: 0,
            batch_deadline: None,
            retries: VecDeque::new(),
            in_flight: JoinSet::new(),
            in_flight_docs: HashMap::new(),
            input_open: true,
            deadline: None,
            reported_in_flight: 0,
        };
        let mut shutdown_pending = true;
        loop {
            self.pump(&mut run);
            if !run.input_open
                && run.queue.is_empty()
                && run.retries.is_empty()
                && run.in_flight.is_empty()
            {
                return ShutdownReport { unacknowledged: 0 };
            }
            let wake = self.next_wakeup(&run);
            let accepting = run.input_open
                && run.retries.is_empty()
                && !self.builder.is_full(run.queue.len(), run.queued_bytes);
            tokio::select! {
                biased;
                _ = sleep_until(run.deadline.unwrap_or_else(Instant::now)), if run.deadline.is_some() => {
                    return self.abandon(run);
                }
                Some(done) = run.in_flight.join_next_with_id(), if !run.in_flight.is_empty() => {
                    self.complete(&mut run, done);
                }
                grace = &mut self.shutdown, if shutdown_pending => {
                    shutdown_pending = false;
                    // Sender dropped without a shutdown: keep running until input closes.
                    if let Ok(grace) = grace {
                        tracing::info!(?grace, queued = run.queue.len(), in_flight = run.in_flight.len(), "elasticsearch sink shutting down");
                        run.deadline = Some(Instant::now() + grace);
                        self.input.close();
                    }
                }
                _ = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
                msg = self.input.recv(), if accepting => match msg {
                    Some(req) => {
                        let p = Pending::new(req);
                        if run.queue.is_empty() {
                            run.batch_deadline = Some(Instant::now() + self.batch_timeout);
                        }
                        run.queued_bytes += p.size;
                        run.queue.push_back(p);
                    }
                    None => run.input_open = false,
                },
            }
        }
    }

    /// Starts requests while slots are free: due retries first, then a
    /// batch of new documents once it is full, timed out, or being flushed.
    fn pump(&mut self, run: &mut Run) {
        let now = Instant::now();
        while run.in_flight.len() < self.concurrency {
            if let Some(i) = run.retries.iter().position(|r| r.due <= now) {
                let retry = run.retries.remove(i).expect("position is in range");
                match retry.work {
                    RetryWork::Items(items) => self.dispatch(run, items),
                    RetryWork::Request(batch) => {
                        let docs = batch.items.len();
                        let h = run.in_flight.spawn(Arc::clone(&self.service).send(batch));
                        run.in_flight_docs.insert(h.id(), docs);
                    }
                }
                continue;
            }
            if !run.retries.is_empty() || run.queue.is_empty() {
                break;
            }
            // On shutdown the input is closed and drained first (until
            // `recv` says it is empty), so the flush sends full batches.
            let flushing = !run.input_open;
            let timed_out = run.batch_deadline.is_some_and(|d| d <= now);
            if !(flushing || timed_out || self.builder.is_full(run.queue.len(), run.queued_bytes)) {
                break;
            }
            let items = self.builder.take(&mut run.queue);
            run.queued_bytes -= items.iter().map(|p| p.size).sum::<usize>();
            if run.queue.is_empty() {
                run.batch_deadline = None;
            }
            self.dispatch(run, items);
        }
        let now = run.in_flight.len();
        self.service.metrics.in_flight(run.reported_in_flight, now);
        run.reported_in_flight = now;
    }

    /// Encodes `items` and starts their request.
    fn dispatch(&mut self, run: &mut Run, items: Vec<Pending>) {
        let (items, ndjson, unencodable) = self.builder.encode(items);
        let docs = items.len() + unencodable.len();
        let fut = Arc::clone(&self.service).send_new(items, ndjson, unencodable);
        let h = run.in_flight.spawn(fut);
        run.in_flight_docs.insert(h.id(), docs);
    }

    /// When the loop must wake up without input or completions.
    fn next_wakeup(&self, run: &Run) -> Option<Instant> {
        if run.in_flight.len() >= self.concurrency {
            return None;
        }
        if let Some(due) = run.retries.iter().map(|r| r.due).min() {
            return Some(due);
        }
        run.batch_deadline.filter(|_| !run.queue.is_empty())
    }

    /// Schedules whatever a finished request handed back.
    fn complete(&self, run: &mut Run, done: Result<(Id, Completion), tokio::task::JoinError>) {
        let now = Instant::now();
        let completion = match done {
            Ok((id, c)) => {
                run.in_flight_docs.remove(&id);
                c
            }
            Err(e) => {
                let docs = run.in_flight_docs.remove(&e.id()).unwrap_or(0);
                tracing::error!(error = %e, docs, "bulk request task failed; its documents stay unacknowledged and are redelivered after a restart");
                self.service
                    .health
                    .failure(&format!("bulk request task failed: {e}"));
                return;
            }
        };
        match completion {
            Completion::Done => {}
            Completion::RetryItems(items) => {
                let due = now + self.backoff.delay(item_retry_attempt(&items));
                run.retries.push_back(Retry {
                    due,
                    work: RetryWork::Items(items),
                });
            }
            Completion::RetryRequest(batch) => {
                let due = now + self.backoff.delay(batch.failures);
                run.retries.push_back(Retry {
                    due,
                    work: RetryWork::Request(batch),
                });
            }
            Completion::Split(items) => {
                let [first, second] = halves(items);
                for half in [second, first] {
                    run.retries.push_front(Retry {
                        due: now,
                        work: RetryWork::Items(half),
                    });
                }
            }
        }
    }

    /// The shutdown deadline passed: drop everything not yet settled. Its
    /// acknowledgements are dropped unacknowledged, so it is redelivered.
    fn abandon(mut self, mut run: Run) -> ShutdownReport {
        run.in_flight.abort_all();
        let mut unacknowledged = run.queue.len()
            + run.retries.iter().map(|r| r.work.docs()).sum::<usize>()
            + run.in_flight_docs.values().sum::<usize>();
        while let Ok(req) = self.input.try_recv() {
            drop(req);
            unacknowledged += 1;
        }
        self.service.metrics.in_flight(run.reported_in_flight, 0);
        tracing::warn!(
            unacknowledged,
            "elasticsearch sink shutdown deadline passed; unindexed documents will be redelivered"
        );
        ShutdownReport { unacknowledged }
    }
}
