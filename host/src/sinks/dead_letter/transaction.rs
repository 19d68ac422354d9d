//! Exactly-once dead letters, in the shape of Kafka Streams' EOS v2: one
//! transactional producer per host (its `transactional.id` stable across
//! restarts, so a restarted host fences its crashed predecessor and the
//! broker aborts the transaction it left open), and every offset commit
//! that covers dead letters is one transaction that writes them and the
//! consumer offsets together. (One that covers none is a plain offset
//! commit: nothing must be atomic with it, and a transaction per commit
//! interval when nothing failed would only cost the broker round trips.)
//!
//! The writer ([`run_holding_writer`]) does not write: it moves each dead
//! letter into [`HeldDeadLetters`] and acknowledges it, so its batch can
//! complete and the source's committable offset can pass it. The source
//! then commits through [`TransactionalDeadLetters`] (the
//! `pipeline::TransactionalCommit` port): the held dead letters below the
//! new offsets go into the transaction, the later ones stay held for a
//! later one. If the transaction fails it is aborted (a `read_committed`
//! reader never sees its dead letters), the dead letters go back to being
//! held and the offsets do not move; a crash before the commit leaves the
//! offsets where they were, so the records, and their dead letters, come
//! again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{Notify, mpsc};

use super::{DeadLetterRecord, WriteError, classify};
use crate::event::DeadLetter;
use crate::pipeline::{CommitError, CommitOffset, TransactionalCommit};
use crate::telemetry::Metrics;

/// `(source topic, partition)` of held dead letters.
type SourcePartition = (Arc<str>, i32);

/// Dead letters waiting for the commit that covers their records, by
/// source partition and offset. Bounded: [`HeldDeadLetters::hold`] waits
/// while `capacity` are held.
pub struct HeldDeadLetters {
    state: Mutex<HashMap<SourcePartition, BTreeMap<i64, Vec<DeadLetterRecord>>>>,
    count: std::sync::atomic::AtomicUsize,
    room: Notify,
    capacity: usize,
}

impl HeldDeadLetters {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(HashMap::new()),
            count: Default::default(),
            room: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SourcePartition, BTreeMap<i64, Vec<DeadLetterRecord>>>>
    {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Dead letters held now.
    pub fn len(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds a dead letter; waits while the store is full (a commit makes
    /// room).
    pub async fn hold(&self, letter: DeadLetterRecord) {
        loop {
            let room = self.room.notified();
            if self.len() < self.capacity {
                break;
            }
            room.await;
        }
        self.put(letter);
    }

    fn put(&self, letter: DeadLetterRecord) {
        let key = (Arc::clone(&letter.record.topic), letter.record.partition);
        self.lock()
            .entry(key)
            .or_default()
            .entry(letter.record.offset)
            .or_default()
            .push(letter);
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a commit of `offsets` covers a held dead letter (see
    /// [`take_covered`](Self::take_covered)).
    pub fn covers(&self, offsets: &[CommitOffset]) -> bool {
        let state = self.lock();
        offsets.iter().any(|o| {
            state
                .get(&(Arc::clone(&o.topic), o.partition))
                .is_some_and(|held| held.range(..o.next).next().is_some())
        })
    }

    /// Takes out the dead letters a commit of `offsets` covers: those of
    /// the committed partitions whose source offset is below the partition's
    /// new position. Everything else (later records of those partitions,
    /// other partitions) stays held.
    pub fn take_covered(&self, offsets: &[CommitOffset]) -> Vec<DeadLetterRecord> {
        let mut taken = Vec::new();
        {
            let mut state = self.lock();
            for o in offsets {
                let key: SourcePartition = (Arc::clone(&o.topic), o.partition);
                let Some(held) = state.get_mut(&key) else {
                    continue;
                };
                let later = held.split_off(&o.next);
                let covered = std::mem::replace(held, later);
                if held.is_empty() {
                    state.remove(&key);
                }
                taken.extend(covered.into_values().flatten());
            }
        }
        self.count
            .fetch_sub(taken.len(), std::sync::atomic::Ordering::Relaxed);
        self.room.notify_waiters();
        taken
    }

    /// Holds dead letters again after their transaction failed.
    pub fn put_back(&self, letters: Vec<DeadLetterRecord>) {
        for letter in letters {
            self.put(letter);
        }
    }

    /// Forgets the dead letters of a source partition (revoked, or
    /// assigned anew: its uncommitted records are delivered again). Returns
    /// how many were dropped.
    pub fn release(&self, topic: &str, partition: i32) -> usize {
        let dropped = self
            .lock()
            .remove(&(Arc::from(topic), partition))
            .map_or(0, |held| held.values().map(Vec::len).sum());
        self.count
            .fetch_sub(dropped, std::sync::atomic::Ordering::Relaxed);
        self.room.notify_waiters();
        dropped
    }
}

/// Receives dead letters until the queue closes, holding each one and
/// acknowledging it: it is written by the commit that covers its record.
pub async fn run_holding_writer(mut rx: mpsc::Receiver<DeadLetter>, held: Arc<HeldDeadLetters>) {
    while let Some(dl) = rx.recv().await {
        let (letter, ack) = DeadLetterRecord::split(dl);
        held.hold(letter).await;
        ack.ack();
    }
}

/// The transactional dead-letter producer and the dead letters it holds.
pub struct TransactionalDeadLetters {
    producer: FutureProducer,
    held: Arc<HeldDeadLetters>,
    metrics: Metrics,
    /// One transaction at a time (periodic commits, revokes and the final
    /// commit come from different threads).
    txn: Mutex<()>,
}

/// Why one attempt at a transaction ended without a commit.
enum Attempt {
    /// A dead letter was refused for good and is now a reference (or given
    /// up): abort and try again at once.
    Rewritten,
    Failed(CommitError),
}

fn commit_error(e: KafkaError) -> CommitError {
    match &e {
        KafkaError::Transaction(t) if t.is_fatal() => CommitError::Fatal(e.to_string()),
        _ if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) => {
            CommitError::Fatal(e.to_string())
        }
        _ => CommitError::Retry(e.to_string()),
    }
}

impl TransactionalDeadLetters {
    /// Takes a producer created with a `transactional.id` and registers it
    /// with the broker (`init_transactions`), which fences any earlier
    /// producer with the same id and aborts its open transaction. Blocks.
    pub fn new(
        producer: FutureProducer,
        held: Arc<HeldDeadLetters>,
        metrics: Metrics,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        producer.init_transactions(timeout).map_err(|e| {
            anyhow::anyhow!("initialising the transactional dead-letter producer: {e}")
        })?;
        Ok(Self {
            producer,
            held,
            metrics,
            txn: Mutex::new(()),
        })
    }

    pub fn held(&self) -> &Arc<HeldDeadLetters> {
        &self.held
    }

    fn abort(&self, deadline: Instant) -> Result<(), CommitError> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        self.producer.abort_transaction(left).map_err(commit_error)
    }

    /// One transaction: begin, write `letters`, add `offsets`, commit.
    fn attempt(
        &self,
        letters: &mut [Option<DeadLetterRecord>],
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
        deadline: Instant,
    ) -> Result<(), Attempt> {
        let left = || deadline.saturating_duration_since(Instant::now());
        self.producer
            .begin_transaction()
            .map_err(|e| Attempt::Failed(commit_error(e)))?;
        let mut deliveries: Vec<(usize, DeliveryFuture)> = Vec::with_capacity(letters.len());
        for (i, slot) in letters.iter_mut().enumerate() {
            while let Some(letter) = slot.as_mut() {
                let e = match self.producer.send_result(letter.to_kafka()) {
                    Ok(delivery) => {
                        deliveries.push((i, delivery));
                        break;
                    }
                    Err((e, _)) => e,
                };
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) && !left().is_zero()
                {
                    // Serve delivery reports until there is room.
                    self.producer.poll(Duration::from_millis(10));
                    continue;
                }
                self.metrics.dead_letter_errors.inc();
                if classify(&e) != WriteError::Permanent {
                    return Err(Attempt::Failed(commit_error(e)));
                }
                // Refused before it was queued (librdkafka's size check):
                // the transaction is unharmed.
                if !letter.refused_for_good(&e, &self.metrics) {
                    *slot = None;
                }
            }
        }
        let results = futures::executor::block_on(futures::future::join_all(
            deliveries
                .into_iter()
                .map(|(i, d)| async move { (i, d.await) }),
        ));
        let mut rewritten = false;
        for (i, result) in results {
            let e = match result {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => e,
                Err(_canceled) => KafkaError::Canceled,
            };
            self.metrics.dead_letter_errors.inc();
            if classify(&e) != WriteError::Permanent {
                tracing::warn!(error = %e, "dead-letter write in a transaction failed");
                return Err(Attempt::Failed(commit_error(e)));
            }
            if let Some(letter) = letters[i].as_mut()
                && !letter.refused_for_good(&e, &self.metrics)
            {
                letters[i] = None;
            }
            rewritten = true;
        }
        if rewritten {
            return Err(Attempt::Rewritten);
        }
        self.producer
            .send_offsets_to_transaction(offsets, group, left())
            .map_err(|e| Attempt::Failed(commit_error(e)))?;
        self.producer
            .commit_transaction(left())
            .map_err(|e| Attempt::Failed(commit_error(e)))
    }
}

impl TransactionalCommit for TransactionalDeadLetters {
    type Group = ConsumerGroupMetadata;

    fn covers_dead_letters(&self, offsets: &[CommitOffset]) -> bool {
        self.held.covers(offsets)
    }

    fn commit(
        &self,
        offsets: &[CommitOffset],
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), CommitError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let _one = self.txn.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + timeout;
        let mut tpl = TopicPartitionList::new();
        for o in offsets {
            tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.next))
                .map_err(|e| CommitError::Retry(e.to_string()))?;
        }
        let mut letters: Vec<Option<DeadLetterRecord>> = self
            .held
            .take_covered(offsets)
            .into_iter()
            .map(Some)
            .collect();
        let result = loop {
            match self.attempt(&mut letters, &tpl, group, deadline) {
                Ok(()) => break Ok(()),
                Err(Attempt::Rewritten) => {
                    if let Err(e) = self.abort(deadline) {
                        break Err(e);
                    }
                }
                Err(Attempt::Failed(e)) => {
                    // Whatever was written in this transaction is discarded
                    // with it; a fatal error needs no abort (none is
                    // possible).
                    if let CommitError::Retry(_) = e
                        && let Err(abort) = self.abort(deadline)
                    {
                        break Err(match abort {
                            CommitError::Fatal(_) => abort,
                            CommitError::Retry(_) => e,
                        });
                    }
                    break Err(e);
                }
            }
        };
        if result.is_err() {
            self.held.put_back(letters.into_iter().flatten().collect());
        }
        result
    }

    fn release(&self, topic: &str, partition: i32) {
        let dropped = self.held.release(topic, partition);
        if dropped > 0 {
            tracing::info!(
                topic,
                partition,
                dropped,
                "held dead letters of a partition this host no longer owns dropped; its records will be redelivered"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SourceRecord;

    fn letter(topic: &str, partition: i32, offset: i64) -> DeadLetterRecord {
        DeadLetterRecord {
            pipeline: Arc::from("p"),
            topic: Arc::from("p-dlq"),
            record: Arc::new(SourceRecord {
                topic: Arc::from(topic),
                partition,
                offset,
                timestamp_ms: None,
                key: None,
                headers: Vec::new(),
                value: bytes::Bytes::from_static(b"x"),
            }),
            stage: "decode".into(),
            reason: "bad".into(),
            omitted: None,
        }
    }

    fn at(o: &CommitOffset) -> (String, i32, i64) {
        (o.topic.to_string(), o.partition, o.next)
    }

    fn positions(letters: &[DeadLetterRecord]) -> Vec<(String, i32, i64)> {
        let mut p: Vec<_> = letters
            .iter()
            .map(|l| {
                (
                    l.record.topic.to_string(),
                    l.record.partition,
                    l.record.offset,
                )
            })
            .collect();
        p.sort();
        p
    }

    fn commit(topic: &str, partition: i32, next: i64) -> CommitOffset {
        CommitOffset {
            topic: Arc::from(topic),
            partition,
            next,
        }
    }

    #[tokio::test]
    async fn a_commit_takes_exactly_the_dead_letters_below_its_offsets() {
        let held = HeldDeadLetters::new(100);
        for (t, p, o) in [
            ("a", 0, 3),
            ("a", 0, 9),
            ("a", 0, 9),
            ("a", 0, 10),
            ("a", 0, 15),
            ("a", 1, 2),
            ("b", 0, 1),
        ] {
            held.hold(letter(t, p, o)).await;
        }
        let offsets = [commit("a", 0, 10), commit("b", 0, 1)];
        assert_eq!(at(&offsets[0]), ("a".into(), 0, 10));
        assert!(held.covers(&offsets));
        assert!(
            !held.covers(&[commit("a", 0, 3), commit("b", 0, 1), commit("c", 0, 99)]),
            "nothing below a/0 3, b/0 1, or on c/0"
        );
        let taken = held.take_covered(&offsets);
        // Below 10 on a/0 (both dead letters of offset 9); not 10 itself,
        // nothing of a/1 (not in this commit), nothing of b/0 (offset 1 is
        // the new position, not below it).
        assert_eq!(
            positions(&taken),
            vec![("a".into(), 0, 3), ("a".into(), 0, 9), ("a".into(), 0, 9)]
        );
        assert_eq!(held.len(), 4);
        // Taken once: the same commit again takes nothing.
        assert!(!held.covers(&offsets));
        assert!(held.take_covered(&offsets).is_empty());
        // A failed transaction puts them back, for the next commit.
        held.put_back(taken);
        assert_eq!(held.len(), 7);
        let next = held.take_covered(&[commit("a", 0, 16), commit("a", 1, 3)]);
        assert_eq!(
            positions(&next),
            vec![
                ("a".into(), 0, 3),
                ("a".into(), 0, 9),
                ("a".into(), 0, 9),
                ("a".into(), 0, 10),
                ("a".into(), 0, 15),
                ("a".into(), 1, 2),
            ]
        );
        assert_eq!(held.len(), 1);
    }

    #[tokio::test]
    async fn a_released_partition_s_dead_letters_are_dropped_alone() {
        let held = HeldDeadLetters::new(100);
        for (p, o) in [(0, 1), (0, 2), (1, 1)] {
            held.hold(letter("a", p, o)).await;
        }
        assert_eq!(held.release("a", 0), 2);
        assert_eq!(held.release("a", 0), 0);
        assert_eq!(held.len(), 1);
        assert_eq!(
            positions(&held.take_covered(&[commit("a", 1, 5), commit("a", 0, 5)])),
            vec![("a".into(), 1, 1)]
        );
    }

    #[tokio::test]
    async fn holding_waits_for_room_that_a_commit_makes() {
        let held = Arc::new(HeldDeadLetters::new(2));
        held.hold(letter("a", 0, 1)).await;
        held.hold(letter("a", 0, 2)).await;
        let h = Arc::clone(&held);
        let third = tokio::spawn(async move { h.hold(letter("a", 0, 3)).await });
        // The third waits while two are held (it cannot have been added).
        tokio::task::yield_now().await;
        assert_eq!(held.len(), 2);
        assert!(!third.is_finished());
        assert_eq!(held.take_covered(&[commit("a", 0, 2)]).len(), 1);
        third.await.unwrap();
        assert_eq!(held.len(), 2);
    }
}
