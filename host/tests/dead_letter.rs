//! The dead-letter writer against the real broker (tansu): a dead letter
//! too large for the topic becomes a reference record and is acknowledged
//! instead of being retried forever; host headers are capped.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use prometheus_client::registry::Registry;
use rdkafka::producer::FutureProducer;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use weir::event::MAX_HEADER_BYTES;
use weir::event::{Ack, DeadLetter, FailureStage, SourceRecord};
use weir::sinks::dead_letter::{headers, run_writer};
use weir::telemetry::Metrics;
use weir_testkit::Kafka;

/// The producer's `message.max.bytes`: librdkafka refuses larger records
/// itself with MessageSizeTooLarge (tansu does not enforce the topic's
/// `max.message.bytes`, so the producer's limit stands in for it).
const MAX_MESSAGE_BYTES: usize = 64 << 10;

fn dead_letter(offset: i64, value: Vec<u8>, reason: String, ack: Ack) -> DeadLetter {
    DeadLetter {
        pipeline: Arc::from("news"),
        topic: Arc::from("news-dlq"),
        record: Arc::new(SourceRecord {
            topic: Arc::from("news"),
            partition: 0,
            offset,
            timestamp_ms: None,
            key: Some(Bytes::from(format!("key-{offset}"))),
            headers: vec![("trace".into(), Some(Bytes::from_static(b"t-1")))],
            value: Bytes::from(value),
        }),
        stage: FailureStage::Module {
            name: "hostile".into(),
        },
        reason,
        ack,
    }
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_too_large_for_the_topic_becomes_a_reference_and_is_acknowledged()
-> Result<()> {
    let kafka = Kafka::start().await?;
    kafka.create_topic("news-dlq", 1).await?;
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", kafka.bootstrap())
        .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string());
    let producer: FutureProducer = config.create().context("dead-letter producer")?;
    let metrics = Metrics::register(&mut Registry::default());

    let (done_tx, done_rx) = oneshot::channel();
    let mut acks = Ack::batch(
        2,
        Box::new(move || {
            let _ = done_tx.send(());
        }),
    );
    let huge_reason = "é".repeat(1 << 20); // 2 MiB of two-byte characters
    let (tx, rx) = mpsc::channel(8);
    tx.send(dead_letter(
        7,
        vec![b'x'; 1 << 20],
        huge_reason,
        acks.pop().unwrap(),
    ))
    .await?;
    tx.send(dead_letter(
        8,
        b"{\"small\":true}".to_vec(),
        "r".repeat(10_000),
        acks.pop().unwrap(),
    ))
    .await?;
    drop(tx);
    let shutdown = CancellationToken::new();
    let writer = tokio::spawn(run_writer(producer, rx, metrics.clone(), shutdown.clone()));

    // Both dead letters are acknowledged: the batch completes (a writer
    // retrying forever never gets here).
    tokio::time::timeout(Duration::from_secs(60), done_rx)
        .await
        .context("the dead letters were not acknowledged within 60 s")??;
    tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .context("the writer did not finish after its queue closed")??;
    assert_eq!(metrics.dead_letter_permanent_errors.get(), 1);

    let mut records = kafka
        .read_to_end("news-dlq", 2, Duration::from_secs(60))
        .await?;
    assert_eq!(records.len(), 2, "exactly one record per dead letter");
    records.sort_by_key(|r| r.key.clone());

    // The reference: original key, no value, no original headers, the
    // source position, the capped reason and what was left out.
    let reference = &records[0];
    assert_eq!(reference.key.as_deref(), Some(&b"key-7"[..]));
    assert!(reference.value.is_empty());
    let h = &reference.headers;
    assert_eq!(header(h, headers::SOURCE_TOPIC), Some("news"));
    assert_eq!(header(h, headers::SOURCE_PARTITION), Some("0"));
    assert_eq!(header(h, headers::SOURCE_OFFSET), Some("7"));
    assert_eq!(header(h, headers::STAGE), Some("module:hostile"));
    assert_eq!(header(h, headers::OMITTED_VALUE_BYTES), Some("1048576"));
    assert_eq!(header(h, headers::OMITTED_HEADERS), Some("1"));
    assert!(
        header(h, headers::OMITTED_REASON)
            .unwrap()
            .contains("too large"),
        "{:?}",
        header(h, headers::OMITTED_REASON)
    );
    assert_eq!(header(h, "trace"), None);
    let reason = header(h, headers::REASON).unwrap();
    assert!(reason.len() <= MAX_HEADER_BYTES, "{}", reason.len());
    assert!(reason.ends_with("… [truncated, 2097152 bytes]"), "{reason}");
    assert!(reason.starts_with("éé"));

    // The small one is written whole, its long reason capped.
    let full = &records[1];
    assert_eq!(full.key.as_deref(), Some(&b"key-8"[..]));
    assert_eq!(full.value, b"{\"small\":true}");
    assert_eq!(header(&full.headers, "trace"), Some("t-1"));
    assert_eq!(header(&full.headers, headers::OMITTED_VALUE_BYTES), None);
    let reason = header(&full.headers, headers::REASON).unwrap();
    assert!(reason.len() <= MAX_HEADER_BYTES);
    assert!(reason.ends_with("… [truncated, 10000 bytes]"), "{reason}");
    Ok(())
}
