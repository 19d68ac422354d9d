//! The Kafka source: a consumer group member that batches records per
//! partition, hands each sealed batch to its partition's worker (see
//! `pipeline::worker`), and stores an offset only once everything derived
//! from it is acknowledged.

mod context;
pub mod offsets;
mod transactional;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerGroupMetadata, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use context::{RebalanceEvent, SourceContext};
pub use offsets::{OffsetTracker, Ticket, TopicPartition};
pub use transactional::TransactionalOffsets;

use crate::config::KafkaConfig;
use crate::event::SourceRecord;
use crate::pipeline::{PartitionBatch, PartitionWorkers, Routes, TransactionalCommit};
use crate::telemetry::Metrics;

type WeirConsumer = StreamConsumer<SourceContext>;

/// Messages taken from the consumer queue in one go when they are already
/// there, without going back through the loop's `select!` (whose branches
/// cost more than handling a message). Small enough that rebalance events,
/// control messages and the tick wait at most a few hundred microseconds.
const BURST: usize = 256;

/// How long a sealed batch may wait for its partition's worker before the
/// partition is paused. Until then the loop stops taking messages instead:
/// pausing makes librdkafka drop what it has prefetched for the partition
/// and fetch it again on resume (the broker decodes and sends it twice),
/// whereas not polling just lets librdkafka's prefetch queue fill up to
/// `queued.max.messages.kbytes`. The bound keeps one slow partition from
/// holding up the others (and the consumer's own polling) for longer.
const STALL_BEFORE_PAUSE: Duration = Duration::from_millis(250);

/// How long workers stopped at the drain deadline get to unwind. An
/// aborted task ends at its next await point, and a module yields at every
/// epoch tick, so this is ample; it only bounds a worker stuck outside
/// async code.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// How long one transactional commit may take (periodic and on revoke;
/// the final one gets what is left of `kafka.drain_timeout`).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the consumer with the properties at-least-once needs.
fn consumer(cfg: &KafkaConfig, ctx: SourceContext) -> anyhow::Result<WeirConsumer> {
    let transactional = ctx.txn.is_some();
    let mut cc = ClientConfig::new();
    // Defaults a user may override through [kafka.properties].
    cc.set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Consumer lag for metrics and status (context.rs).
        .set("statistics.interval.ms", "5000")
        .set("queued.max.messages.kbytes", "16384");
    for (k, v) in cfg.consumer_props() {
        cc.set(k, v);
    }
    // What at-least-once rests on: offsets are stored by us, only after
    // acknowledgement, and committed periodically by librdkafka; with
    // exactly-once dead letters, committed by us in the dead-letter
    // producer's transactions instead.
    cc.set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group_id)
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", (!transactional).to_string())
        .set(
            "auto.commit.interval.ms",
            cfg.commit_interval.as_millis().max(1).to_string(),
        );
    cc.create_with_context(ctx)
        .context("creating the Kafka consumer")
}

/// Sent to the source when the set of consumed topics changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceControl {
    Resubscribe,
}

/// Per-partition batching state.
struct PartitionSlot {
    pipeline_topic: Arc<str>,
    acc: Vec<Arc<SourceRecord>>,
    bytes: usize,
    first_at: Instant,
    tx: mpsc::Sender<PartitionBatch>,
    /// Batches that found the worker's queue full. While they are young
    /// the source stops polling; after [`STALL_BEFORE_PAUSE`] (or when
    /// `max_in_flight_batches` of them pile up) the partition is paused
    /// until they are handed over.
    waiting: VecDeque<PartitionBatch>,
    /// When `waiting` became non-empty.
    waiting_since: Instant,
    paused: bool,
    worker: JoinHandle<()>,
}

/// The running source. Drive it with [`KafkaSource::run`].
pub struct KafkaSource {
    consumer: Arc<WeirConsumer>,
    events: mpsc::UnboundedReceiver<RebalanceEvent>,
    routes: Arc<ArcSwap<Routes>>,
    workers: Arc<dyn PartitionWorkers>,
    tracker: Arc<OffsetTracker>,
    cfg: KafkaConfig,
    metrics: Metrics,
    topics: HashMap<String, Arc<str>>,
    control: Option<mpsc::UnboundedReceiver<SourceControl>>,
    /// Workers of revoked partitions, finishing what they had queued; the
    /// drain stops them too at its deadline.
    retired: Vec<JoinHandle<()>>,
    /// With exactly-once dead letters: the offsets awaiting their
    /// transaction.
    txn: Option<Arc<TransactionalOffsets>>,
}

impl KafkaSource {
    /// A source whose offsets librdkafka commits (at-least-once dead
    /// letters).
    pub fn new(
        cfg: &KafkaConfig,
        routes: Arc<ArcSwap<Routes>>,
        workers: Arc<dyn PartitionWorkers>,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        Self::build(cfg, routes, workers, metrics, None)
    }

    /// A source that commits its offsets through `port`, in one
    /// transaction with the dead letters they cover (exactly-once dead
    /// letters).
    pub fn transactional(
        cfg: &KafkaConfig,
        routes: Arc<ArcSwap<Routes>>,
        workers: Arc<dyn PartitionWorkers>,
        metrics: Metrics,
        port: Arc<dyn TransactionalCommit<Group = ConsumerGroupMetadata>>,
    ) -> anyhow::Result<Self> {
        let txn = Arc::new(TransactionalOffsets::new(port, metrics.clone()));
        Self::build(cfg, routes, workers, metrics, Some(txn))
    }

    fn build(
        cfg: &KafkaConfig,
        routes: Arc<ArcSwap<Routes>>,
        workers: Arc<dyn PartitionWorkers>,
        metrics: Metrics,
        txn: Option<Arc<TransactionalOffsets>>,
    ) -> anyhow::Result<Self> {
        let handle: Arc<std::sync::OnceLock<Weak<WeirConsumer>>> = Arc::default();
        let store_handle = Arc::clone(&handle);
        let store_txn = txn.clone();
        let tracker = Arc::new(OffsetTracker::new(Box::new(
            move |topic, partition, next| {
                if let Some(txn) = &store_txn {
                    txn.store(topic, partition, next);
                    return;
                }
                let Some(consumer) = store_handle.get().and_then(Weak::upgrade) else {
                    return;
                };
                let mut tpl = TopicPartitionList::new();
                if tpl
                    .add_partition_offset(topic, partition, Offset::Offset(next))
                    .is_ok()
                    && let Err(e) = consumer.store_offsets(&tpl)
                {
                    tracing::debug!(topic, partition, next, error = %e, "offset not stored (partition no longer assigned?)");
                }
            },
        )));
        let (events_tx, events) = mpsc::unbounded_channel();
        let consumer = Arc::new(consumer(
            cfg,
            SourceContext {
                tracker: Arc::clone(&tracker),
                metrics: metrics.clone(),
                events: events_tx,
                revoke_timeout: cfg.revoke_timeout,
                txn: txn.clone(),
            },
        )?);
        let _ = handle.set(Arc::downgrade(&consumer));
        Ok(Self {
            consumer,
            events,
            routes,
            workers,
            tracker,
            cfg: cfg.clone(),
            metrics,
            topics: HashMap::new(),
            control: None,
            retired: Vec::new(),
            txn,
        })
    }

    /// Lets the config reloader tell the source to re-subscribe when the
    /// set of routed topics changed.
    pub fn with_control(mut self, control: mpsc::UnboundedReceiver<SourceControl>) -> Self {
        self.control = Some(control);
        self
    }

    /// Offsets that are stored and awaiting commit, per partition.
    pub fn tracker(&self) -> &Arc<OffsetTracker> {
        &self.tracker
    }

    /// Subscribes to every routed topic.
    pub fn subscribe(&self) -> anyhow::Result<()> {
        let routes = self.routes.load();
        let mut topics: Vec<&str> = routes.keys().map(String::as_str).collect();
        topics.sort_unstable();
        if topics.is_empty() {
            // No pipeline yet (a fleet host before its first tenant, or
            // after its last): librdkafka refuses an empty subscription.
            self.consumer.unsubscribe();
            tracing::info!(group = %self.cfg.group_id, "no pipelines: consuming nothing");
            return Ok(());
        }
        self.consumer
            .subscribe(&topics)
            .context("subscribing to topics")?;
        tracing::info!(?topics, group = %self.cfg.group_id, "subscribed");
        Ok(())
    }

    /// Consumes until `shutdown` fires, then drains in-flight batches (up to
    /// `kafka.drain_timeout`) and returns the consumer for the final commit.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<Drained> {
        self.subscribe()?;
        let mut slots: HashMap<TopicPartition, PartitionSlot> = HashMap::new();
        let consumer = Arc::clone(&self.consumer);
        let mut control = self.control.take();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One stream for the whole run: `recv()` builds one per message,
        // registering and unregistering a waker each time.
        let mut messages = consumer.stream();
        // A re-subscription waiting for removed pipelines' batches, and
        // until when it waits.
        let mut resubscribe_by: Option<Instant> = None;
        // Exactly-once dead letters: a transactional commit every
        // commit_interval, one at a time, off the loop's thread.
        let mut commit_every = tokio::time::interval(self.cfg.commit_interval);
        commit_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut committing: Option<JoinHandle<()>> = None;
        loop {
            if let Some(fatal) = self.txn.as_ref().and_then(|t| t.fatal()) {
                anyhow::bail!("exactly-once dead letters: {fatal}");
            }
            // A partition whose worker is full and whose batch is still
            // young holds up polling (see STALL_BEFORE_PAUSE); its worker
            // taking a batch wakes the loop.
            let held_by = slots
                .values()
                .find(|s| !s.waiting.is_empty() && !s.paused)
                .map(|s| s.tx.clone());
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(event) = self.events.recv() => self.on_rebalance(event, &mut slots),
                Some(SourceControl::Resubscribe) = next_control(&mut control) => {
                    // Batches of topics no pipeline consumes any more finish
                    // first (up to drain_timeout), so the rebalance that
                    // re-subscribing starts commits all they indexed.
                    resubscribe_by = Some(Instant::now() + self.cfg.drain_timeout);
                    self.resubscribe_when_drained(&slots, &mut resubscribe_by);
                }
                // The tick comes before messages: under load the message
                // branch is always ready, and a tick that never ran would
                // leave paused partitions paused and partial batches unsealed.
                _ = commit_every.tick(), if self.txn.is_some() && committing.is_none() => {
                    committing = self.txn.clone().map(|txn| {
                        let consumer = Arc::clone(&self.consumer);
                        tokio::task::spawn_blocking(move || {
                            let _ = txn.commit_pending(&*consumer, TRANSACTION_TIMEOUT);
                        })
                    });
                }
                _ = async { committing.as_mut().expect("guarded").await }, if committing.is_some() => {
                    committing = None;
                }
                _ = tick.tick() => {
                    self.on_tick(&mut slots);
                    self.resubscribe_when_drained(&slots, &mut resubscribe_by);
                }
                Some(()) = has_room(held_by.as_ref()) => self.on_tick(&mut slots),
                msg = messages.next(), if held_by.is_none() => {
                    let mut next = msg;
                    let mut taken = 1;
                    loop {
                        match next {
                            Some(Ok(m)) => {
                                if self.on_message(&m, &mut slots) {
                                    break;
                                }
                            }
                            Some(Err(e)) => tracing::warn!(error = %e, "Kafka consumer error"),
                            None => break,
                        }
                        // Every message taken from the stream is handled:
                        // check the bounds before taking the next one.
                        if taken == BURST || !self.events.is_empty() {
                            break;
                        }
                        match messages.next().now_or_never() {
                            Some(m) => next = m,
                            None => break,
                        }
                        taken += 1;
                    }
                }
            }
        }
        drop(messages);
        tracing::info!("shutdown: draining in-flight batches");
        let deadline = Instant::now() + self.cfg.drain_timeout;
        self.drain(slots, deadline).await;
        if let Some(c) = committing {
            let _ = c.await;
        }
        Ok(Drained {
            consumer: self.consumer,
            tracker: Arc::clone(&self.tracker),
            deadline,
            txn: self.txn,
        })
    }

    /// Re-subscribes once no partition of an unrouted topic (its pipeline
    /// removed) has a batch in flight, or at the deadline.
    fn resubscribe_when_drained(
        &self,
        slots: &HashMap<TopicPartition, PartitionSlot>,
        by: &mut Option<Instant>,
    ) {
        let Some(deadline) = *by else { return };
        let routes = self.routes.load();
        let unrouted: Vec<TopicPartition> = slots
            .keys()
            .filter(|tp| !routes.contains_key(&*tp.0))
            .cloned()
            .collect();
        let drained = self.tracker.is_drained(&unrouted);
        if !drained && Instant::now() < deadline {
            return;
        }
        if !drained {
            tracing::warn!(
                partitions = unrouted.len(),
                "removed pipelines still had batches in flight at drain_timeout; they will be redelivered"
            );
        }
        *by = None;
        if let Err(e) = self.subscribe() {
            tracing::error!(error = %e, "re-subscribing after a config change failed");
        }
    }

    /// Adds the message to its partition's batch; `true` when that left a
    /// batch waiting for a full worker (the loop must stop taking messages).
    fn on_message(
        &mut self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        slots: &mut HashMap<TopicPartition, PartitionSlot>,
    ) -> bool {
        let topic = match self.topics.get(m.topic()) {
            Some(t) => Arc::clone(t),
            None => {
                let t: Arc<str> = Arc::from(m.topic());
                self.topics.insert(m.topic().to_string(), Arc::clone(&t));
                t
            }
        };
        let record = SourceRecord {
            topic: Arc::clone(&topic),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key().map(Bytes::copy_from_slice),
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.map(Bytes::copy_from_slice)))
                        .collect()
                })
                .unwrap_or_default(),
            value: m.payload().map(Bytes::copy_from_slice).unwrap_or_default(),
        };
        let tp: TopicPartition = (topic, m.partition());
        let size = record.size_hint();
        let slot = match slots.get_mut(&tp) {
            Some(s) => s,
            None => {
                let (tx, rx) = mpsc::channel(self.cfg.max_in_flight_batches);
                let worker = Arc::clone(&self.workers).spawn(rx);
                slots.entry(tp.clone()).or_insert(PartitionSlot {
                    pipeline_topic: Arc::clone(&tp.0),
                    acc: Vec::new(),
                    bytes: 0,
                    first_at: Instant::now(),
                    tx,
                    waiting: VecDeque::new(),
                    waiting_since: Instant::now(),
                    paused: false,
                    worker,
                })
            }
        };
        if slot.acc.is_empty() {
            slot.first_at = Instant::now();
        }
        slot.acc.push(Arc::new(record));
        slot.bytes += size;
        if slot.acc.len() >= self.cfg.batch.max_records || slot.bytes >= self.cfg.batch.max_bytes {
            self.seal(&tp, slot);
            return !slot.waiting.is_empty() && !slot.paused;
        }
        false
    }

    /// Closes the slot's accumulating batch and hands it to its worker.
    fn seal(&self, tp: &TopicPartition, slot: &mut PartitionSlot) {
        let records = std::mem::take(&mut slot.acc);
        slot.bytes = 0;
        let Some(last) = records.last() else { return };
        let routes = self.routes.load();
        let Some(pipeline) = routes.get(&*slot.pipeline_topic) else {
            tracing::warn!(topic = %slot.pipeline_topic, "no pipeline for topic; records left uncommitted");
            return;
        };
        let Some(ticket) = self.tracker.begin(tp, last.offset) else {
            // Revoked meanwhile: the next owner will deliver these again.
            return;
        };
        pipeline
            .metrics
            .records_consumed
            .inc_by(records.len() as u64);
        // Holding up polling is worth it only for a wait that ends soon by
        // itself. A tenant's worker routinely waits on its quotas, and a
        // paused or backing-off pipeline waits for seconds: stalling the
        // loop for those would make every other pipeline (and tenant) wait
        // too, so their partitions are paused at once instead.
        let held_back = pipeline.tenant.is_some() || pipeline.control.is_held_back();
        let (tracker, owner) = (Arc::clone(&self.tracker), Arc::clone(&self.tracker));
        let current = ticket.clone();
        let batch = PartitionBatch {
            pipeline: Arc::clone(pipeline),
            records,
            on_complete: Box::new(move || tracker.complete(&ticket)),
            is_current: Box::new(move || owner.is_current(&current)),
        };
        if !slot.waiting.is_empty() {
            slot.waiting.push_back(batch);
            if slot.waiting.len() >= self.cfg.max_in_flight_batches {
                self.set_paused(tp, slot, true);
            }
            return;
        }
        match slot.tx.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => {
                slot.waiting.push_back(batch);
                slot.waiting_since = Instant::now();
                if held_back {
                    self.set_paused(tp, slot, true);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!(topic = %tp.0, partition = tp.1, "partition worker stopped; records will be redelivered");
            }
        }
    }

    fn set_paused(&self, tp: &TopicPartition, slot: &mut PartitionSlot, paused: bool) {
        if slot.paused == paused {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.0, tp.1);
        let result = if paused {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        match result {
            Ok(()) => {
                slot.paused = paused;
                if paused {
                    self.metrics.paused_partitions.inc();
                } else {
                    self.metrics.paused_partitions.dec();
                }
            }
            Err(e) => {
                tracing::warn!(topic = %tp.0, partition = tp.1, error = %e, "pause/resume failed")
            }
        }
    }

    fn on_tick(&self, slots: &mut HashMap<TopicPartition, PartitionSlot>) {
        let linger = self.cfg.batch.linger;
        for (tp, slot) in slots.iter_mut() {
            while let Some(batch) = slot.waiting.pop_front() {
                match slot.tx.try_send(batch) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(batch)) => {
                        slot.waiting.push_front(batch);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            if slot.waiting.is_empty() && slot.paused {
                self.set_paused(tp, slot, false);
            } else if !slot.waiting.is_empty()
                && !slot.paused
                && slot.waiting_since.elapsed() >= STALL_BEFORE_PAUSE
            {
                self.set_paused(tp, slot, true);
            }
            if !slot.acc.is_empty() && slot.first_at.elapsed() >= linger {
                self.seal(tp, slot);
            }
        }
    }

    fn on_rebalance(
        &mut self,
        event: RebalanceEvent,
        slots: &mut HashMap<TopicPartition, PartitionSlot>,
    ) {
        match event {
            RebalanceEvent::Assigned(tps) => {
                // librdkafka keeps an application pause on a partition across
                // revoke and re-assign; a partition revoked while paused
                // would come back paused with no slot to resume it.
                let mut tpl = TopicPartitionList::new();
                for tp in tps
                    .iter()
                    .filter(|tp| !slots.get(*tp).is_some_and(|s| s.paused))
                {
                    tpl.add_partition(&tp.0, tp.1);
                }
                if tpl.count() > 0
                    && let Err(e) = self.consumer.resume(&tpl)
                {
                    tracing::warn!(error = %e, "resuming newly assigned partitions failed");
                }
            }
            RebalanceEvent::Revoked(tps) => self.on_revoked(tps, slots),
        }
    }

    fn on_revoked(
        &mut self,
        tps: Vec<TopicPartition>,
        slots: &mut HashMap<TopicPartition, PartitionSlot>,
    ) {
        self.retired.retain(|w| !w.is_finished());
        for tp in tps {
            if let Some(slot) = slots.remove(&tp) {
                if slot.paused {
                    self.metrics.paused_partitions.dec();
                }
                // Dropping the sender lets the worker finish what it has
                // queued; those completions no longer move offsets.
                drop(slot.tx);
                self.retired.push(slot.worker);
            }
        }
    }

    /// Hands every sealed batch to its worker and waits for the workers
    /// until `deadline`. Workers still running then are stopped: their
    /// batches' futures (module instances included) are dropped, and with
    /// them the acknowledgements not yet given, so those batches complete
    /// never and their records are redelivered. Whatever a module does,
    /// the drain ends by `deadline` plus [`ABORT_GRACE`].
    async fn drain(
        &mut self,
        mut slots: HashMap<TopicPartition, PartitionSlot>,
        deadline: Instant,
    ) {
        let mut workers = std::mem::take(&mut self.retired);
        for (tp, mut slot) in slots.drain() {
            self.seal(&tp, &mut slot);
            for batch in slot.waiting.drain(..) {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if tokio::time::timeout(remaining, slot.tx.send(batch))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            drop(slot.tx);
            workers.push(slot.worker);
        }
        let finished = tokio::time::timeout_at(
            deadline.into(),
            futures::future::join_all(workers.iter_mut()),
        )
        .await
        .is_ok();
        if finished {
            return;
        }
        // Handles already polled to completion must not be polled again.
        let mut running: Vec<JoinHandle<()>> =
            workers.into_iter().filter(|w| !w.is_finished()).collect();
        tracing::warn!(
            workers = running.len(),
            "drain timeout reached: stopping the batches still processing; what they did not settle is redelivered"
        );
        for w in &running {
            w.abort();
        }
        if tokio::time::timeout(ABORT_GRACE, futures::future::join_all(running.iter_mut()))
            .await
            .is_err()
        {
            tracing::error!(
                "partition workers did not stop within {ABORT_GRACE:?} of being aborted; exiting without them"
            );
        }
    }
}

/// Resolves once `tx` has room for a batch; never without a sender.
async fn has_room(tx: Option<&mpsc::Sender<PartitionBatch>>) -> Option<()> {
    match tx {
        Some(tx) => tx.reserve().await.ok().map(drop),
        None => std::future::pending().await,
    }
}

async fn next_control(
    control: &mut Option<mpsc::UnboundedReceiver<SourceControl>>,
) -> Option<SourceControl> {
    match control {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A stopped source, kept so the final commit happens after the sink and the
/// dead-letter queue have flushed.
pub struct Drained {
    consumer: Arc<WeirConsumer>,
    tracker: Arc<OffsetTracker>,
    /// End of the drain window (`kafka.drain_timeout` after shutdown began).
    pub deadline: Instant,
    txn: Option<Arc<TransactionalOffsets>>,
}

impl Drained {
    /// Batches still unacknowledged (they will be redelivered).
    pub fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }

    /// Forgets the batches still in flight, after the final commit: they
    /// were stopped at the drain deadline and will be redelivered, so
    /// closing the consumer does not wait `revoke_timeout` for them.
    pub fn release(&self) {
        self.tracker.revoke_all();
    }

    /// Commits every stored offset synchronously; with exactly-once dead
    /// letters, as one last transaction with the dead letters they cover,
    /// bounded by what is left of the drain window (at least a second).
    pub fn commit(&self) -> anyhow::Result<()> {
        if let Some(txn) = &self.txn {
            let left = self
                .deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            return txn
                .commit_pending(&*self.consumer, left)
                .context("final transactional offset commit");
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("No offset stored") => Ok(()),
            Err(e) => Err(e).context("final offset commit"),
        }
    }
}
