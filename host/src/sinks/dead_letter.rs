//! Writes dead letters to Kafka: the original record (key, value, headers)
//! plus headers naming the reason. Acknowledges only once the broker has it;
//! a failed write is retried with backoff until it succeeds or the host
//! shuts down (then it stays unacknowledged and is redelivered).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::event::DeadLetter;
use crate::telemetry::Metrics;

/// Header names on every dead letter.
pub mod headers {
    pub const REASON: &str = "weir.reason";
    pub const STAGE: &str = "weir.stage";
    pub const PIPELINE: &str = "weir.pipeline";
    pub const SOURCE_TOPIC: &str = "weir.source.topic";
    pub const SOURCE_PARTITION: &str = "weir.source.partition";
    pub const SOURCE_OFFSET: &str = "weir.source.offset";
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

async fn write_one(
    producer: &FutureProducer,
    dl: DeadLetter,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    let r = &dl.record;
    let partition = r.partition.to_string();
    let offset = r.offset.to_string();
    let stage = dl.stage.to_string();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut hs = OwnedHeaders::new_with_capacity(r.headers.len() + 6);
        for (k, v) in &r.headers {
            hs = hs.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        for (key, value) in [
            (headers::REASON, dl.reason.as_str()),
            (headers::STAGE, stage.as_str()),
            (headers::PIPELINE, &*dl.pipeline),
            (headers::SOURCE_TOPIC, &*r.topic),
            (headers::SOURCE_PARTITION, partition.as_str()),
            (headers::SOURCE_OFFSET, offset.as_str()),
        ] {
            hs = hs.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = FutureRecord::to(&dl.topic)
            .payload(&r.value[..])
            .headers(hs);
        if let Some(key) = &r.key {
            record = record.key(&key[..]);
        }
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {
                dl.ack.ack();
                return;
            }
            Err((e, _)) => {
                metrics.dead_letter_errors.inc();
                tracing::warn!(topic = %dl.topic, error = %e, retry_in = ?backoff, "dead-letter write failed");
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        tracing::warn!(topic = %dl.topic, "shutdown: dead letter left unacknowledged; its record will be redelivered");
                        return;
                    }
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
