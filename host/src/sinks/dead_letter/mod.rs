//! Writes dead letters to Kafka: the original record (key, value, headers)
//! plus headers naming the reason. At-least-once ([`run_writer`]):
//! acknowledges only once the broker has it. Exactly-once
//! ([`run_holding_writer`], `transaction.rs`): holds it for the offset
//! commit's transaction.
//!
//! Every header the host adds is capped at
//! [`MAX_HEADER_BYTES`](crate::event::MAX_HEADER_BYTES) (cut on a
//! UTF-8 boundary, ending in `… [truncated, N bytes]`), so a module's
//! `fail(reason)` cannot make a dead letter of any size.
//!
//! A failed write is classified ([`classify`]):
//! - **transient** (broker down, timeouts, queue full, unknown topic,
//!   authorization, a corrupt message in transit, …): retried with backoff
//!   until it succeeds or the host shuts down (then it stays
//!   unacknowledged and is redelivered). An operator can fix all of these
//!   without losing a dead letter.
//! - **permanent** for this record (too large for the producer's
//!   `message.max.bytes` or the topic's `max.message.bytes`, or refused by
//!   the broker's record validation): retrying can never succeed, and an
//!   unacknowledged record holds its partition's offsets back for good. It
//!   is counted (`weir_dead_letter_permanent_errors`), logged, and a
//!   **reference** dead letter is written instead: the original key, no
//!   value, none of the original headers, the host's headers (source topic,
//!   partition, offset, capped reason) and `weir.omitted.*` headers saying
//!   what was left out and why. The original stays findable at its source
//!   position. If even the reference is refused for good, the dead letter
//!   is logged with its source position and acknowledged: nothing more can
//!   be written for it, and holding the offset back would stall the
//!   partition forever.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::event::{Ack, DeadLetter, MAX_HEADER_BYTES, SourceRecord, cap};
use crate::telemetry::Metrics;

mod transaction;

pub use transaction::{HeldDeadLetters, TransactionalDeadLetters, run_holding_writer};

/// Header names on every dead letter.
pub mod headers {
    pub const REASON: &str = "weir.reason";
    pub const STAGE: &str = "weir.stage";
    pub const PIPELINE: &str = "weir.pipeline";
    pub const SOURCE_TOPIC: &str = "weir.source.topic";
    pub const SOURCE_PARTITION: &str = "weir.source.partition";
    pub const SOURCE_OFFSET: &str = "weir.source.offset";
    /// On a reference dead letter: the size in bytes of the original value
    /// that was left out.
    pub const OMITTED_VALUE_BYTES: &str = "weir.omitted.value_bytes";
    /// On a reference dead letter: how many original headers were left out.
    pub const OMITTED_HEADERS: &str = "weir.omitted.headers";
    /// On a reference dead letter: why the full dead letter was refused.
    pub const OMITTED_REASON: &str = "weir.omitted.reason";
}

/// What a failed dead-letter write means for that dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// Retry: the same write can succeed later.
    Transient,
    /// This record can never be written as it is.
    Permanent,
}

/// Classifies a produce error (see the module docs for the reasoning).
pub fn classify(e: &KafkaError) -> WriteError {
    use RDKafkaErrorCode::*;
    match e.rdkafka_error_code() {
        // librdkafka's local check against message.max.bytes, the broker's
        // against the topic's max.message.bytes (MessageBatchTooLarge is
        // Kafka's RECORD_LIST_TOO_LARGE), and its record validation (e.g. a
        // compacted topic and a record without a key): the same bytes are
        // refused every time.
        Some(MessageSizeTooLarge | MessageBatchTooLarge | InvalidRecord) => WriteError::Permanent,
        // InvalidMessage/CorruptMessage is a CRC failure in transit, which
        // Kafka's own clients retry; authorization and unknown topics are
        // fixed by the operator and hold every dead letter, not this one.
        _ => WriteError::Transient,
    }
}

/// Writes dead letters until the queue closes, then waits (up to
/// `drain`) for the writes in flight.
pub async fn run_writer(
    producer: FutureProducer,
    mut rx: mpsc::Receiver<DeadLetter>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let producer = Arc::new(producer);
    let slots = Arc::new(Semaphore::new(256));
    let mut tasks = JoinSet::new();
    while let Some(dl) = rx.recv().await {
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("never closed");
        let producer = Arc::clone(&producer);
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            write_one(&producer, dl, &metrics, &shutdown).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// A dead letter as it is written: a [`DeadLetter`] without its
/// acknowledgement (which the writer keeps, or has already given).
#[derive(Debug, Clone)]
pub struct DeadLetterRecord {
    pub pipeline: Arc<str>,
    /// Kafka topic the dead letter is written to.
    pub topic: Arc<str>,
    pub record: Arc<SourceRecord>,
    pub stage: String,
    pub reason: String,
    /// Set once the full dead letter was refused for good (the producer's
    /// error): it is then written as a reference.
    pub omitted: Option<String>,
}

impl DeadLetterRecord {
    /// The record to write and the acknowledgement of its unit.
    pub fn split(dl: DeadLetter) -> (Self, Ack) {
        let letter = Self {
            stage: dl.stage.to_string(),
            pipeline: dl.pipeline,
            topic: dl.topic,
            record: dl.record,
            reason: dl.reason,
            omitted: None,
        };
        (letter, dl.ack)
    }

    /// The Kafka record: the full one, or (once `omitted` is set) the
    /// reference that replaces it after a permanent error.
    fn to_kafka(&self) -> FutureRecord<'_, [u8], [u8]> {
        let value: &[u8] = if self.omitted.is_some() {
            &[]
        } else {
            &self.record.value
        };
        let mut record = FutureRecord::to(&self.topic)
            .payload(value)
            .headers(self.headers());
        if let Some(key) = &self.record.key {
            record = record.key(&key[..]);
        }
        record
    }

    fn headers(&self) -> OwnedHeaders {
        let r = &self.record;
        let omitted = self.omitted.as_deref();
        let mut hs = OwnedHeaders::new_with_capacity(r.headers.len() + 9);
        if omitted.is_none() {
            for (k, v) in &r.headers {
                hs = hs.insert(Header {
                    key: k,
                    value: v.as_deref(),
                });
            }
        }
        let mut ours = vec![
            (headers::REASON, self.reason.clone()),
            (headers::STAGE, self.stage.clone()),
            (headers::PIPELINE, self.pipeline.to_string()),
            (headers::SOURCE_TOPIC, r.topic.to_string()),
            (headers::SOURCE_PARTITION, r.partition.to_string()),
            (headers::SOURCE_OFFSET, r.offset.to_string()),
        ];
        if let Some(why) = omitted {
            ours.extend([
                (headers::OMITTED_VALUE_BYTES, r.value.len().to_string()),
                (headers::OMITTED_HEADERS, r.headers.len().to_string()),
                (headers::OMITTED_REASON, why.to_string()),
            ]);
        }
        for (key, value) in &ours {
            hs = hs.insert(Header {
                key,
                value: Some(cap(value, MAX_HEADER_BYTES).as_bytes()),
            });
        }
        hs
    }

    /// After a permanent error `e` writing this dead letter: `true` if it
    /// should now be written as a reference, `false` if even the reference
    /// was refused (nothing more can be written for it). Counts and logs.
    fn refused_for_good(&mut self, e: &KafkaError, metrics: &Metrics) -> bool {
        let r = &self.record;
        metrics.dead_letter_permanent_errors.inc();
        if self.omitted.is_none() {
            tracing::error!(
                topic = %self.topic, source_topic = %r.topic, partition = r.partition,
                offset = r.offset, value_bytes = r.value.len(), error = %e,
                "dead letter refused for good; writing a reference to its source record instead"
            );
            self.omitted = Some(e.to_string());
            return true;
        }
        tracing::error!(
            topic = %self.topic, source_topic = %r.topic, partition = r.partition,
            offset = r.offset, error = %e,
            "even the reference dead letter was refused; giving it up so the partition moves on (the record stays at its source position)"
        );
        false
    }
}

async fn write_one(
    producer: &FutureProducer,
    dl: DeadLetter,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    let (mut letter, ack) = DeadLetterRecord::split(dl);
    let mut backoff = Duration::from_millis(100);
    loop {
        let e = match producer
            .send(letter.to_kafka(), Duration::from_secs(30))
            .await
        {
            Ok(_) => {
                ack.ack();
                return;
            }
            Err((e, _)) => e,
        };
        metrics.dead_letter_errors.inc();
        if classify(&e) == WriteError::Permanent {
            if !letter.refused_for_good(&e, metrics) {
                ack.ack();
                return;
            }
            continue;
        }
        tracing::warn!(topic = %letter.topic, error = %e, retry_in = ?backoff, "dead-letter write failed");
        tokio::select! {
            _ = shutdown.cancelled() => {
                tracing::warn!(topic = %letter.topic, "shutdown: dead letter left unacknowledged; its record will be redelivered");
                return;
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_validation_errors_are_permanent_the_rest_transient() {
        use RDKafkaErrorCode::*;
        for code in [MessageSizeTooLarge, MessageBatchTooLarge, InvalidRecord] {
            assert_eq!(
                classify(&KafkaError::MessageProduction(code)),
                WriteError::Permanent,
                "{code:?}"
            );
        }
        for code in [
            MessageTimedOut,
            QueueFull,
            BrokerTransportFailure,
            AllBrokersDown,
            RequestTimedOut,
            NotEnoughReplicas,
            LeaderNotAvailable,
            NotLeaderForPartition,
            UnknownTopicOrPartition,
            TopicAuthorizationFailed,
            InvalidMessage,
        ] {
            assert_eq!(
                classify(&KafkaError::MessageProduction(code)),
                WriteError::Transient,
                "{code:?}"
            );
        }
        assert_eq!(classify(&KafkaError::Canceled), WriteError::Transient);
    }
}
