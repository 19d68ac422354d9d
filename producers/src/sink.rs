//! The Kafka side: a `FutureProducer` that sends each [`Record`] keyed by
//! its id, keeps a bounded number of deliveries in flight, and fails on the
//! first delivery error (after librdkafka's own retries).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use tokio::sync::mpsc;

use crate::{Counters, Record};

/// Where and how to produce.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic every record goes to.
    pub topic: String,
    /// `linger.ms`: how long librdkafka waits to fill a batch.
    pub linger_ms: u32,
    /// Deliveries awaited at most at once; sending pauses above it.
    pub max_in_flight: usize,
    /// `message.timeout.ms`: how long librdkafka keeps retrying a record
    /// before reporting it failed.
    pub delivery_timeout: Duration,
    /// Further librdkafka settings (`security.protocol`, ...).
    pub extra: Vec<(String, String)>,
}

impl SinkConfig {
    /// Defaults: `linger.ms=10`, 10,000 deliveries in flight, 30 s delivery
    /// timeout.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> SinkConfig {
        SinkConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            linger_ms: 10,
            max_in_flight: 10_000,
            delivery_timeout: Duration::from_secs(30),
            extra: Vec::new(),
        }
    }
}

/// A Kafka producer for one topic.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    max_in_flight: usize,
    in_flight: FuturesUnordered<DeliveryFuture>,
    counters: Arc<Counters>,
}

impl KafkaSink {
    /// Creates the producer (no connection is made until the first send).
    pub fn new(config: &SinkConfig, counters: Arc<Counters>) -> anyhow::Result<KafkaSink> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("linger.ms", config.linger_ms.to_string())
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .set("log_level", "4");
        for (k, v) in &config.extra {
            client.set(k, v);
        }
        let producer: FutureProducer = client.create().context("creating the Kafka producer")?;
        Ok(KafkaSink {
            producer,
            topic: config.topic.clone(),
            max_in_flight: config.max_in_flight.max(1),
            in_flight: FuturesUnordered::new(),
            counters,
        })
    }

    /// Enqueues one record (waiting while librdkafka's queue is full) and
    /// reaps finished deliveries; waits while too many are in flight.
    pub async fn send(&mut self, record: &Record) -> anyhow::Result<()> {
        while self.in_flight.len() >= self.max_in_flight {
            self.reap_one().await?;
        }
        loop {
            let mut r = FutureRecord::to(&self.topic).payload(&record.value);
            if let Some(key) = &record.key {
                r = r.key(key);
            }
            match self.producer.send_result(r) {
                Ok(delivery) => {
                    self.in_flight.push(delivery);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        self.reap_one().await?;
                    }
                }
                Err((e, _)) => {
                    return Err(e).with_context(|| format!("producing to {}", self.topic));
                }
            }
        }
    }

    async fn reap_one(&mut self) -> anyhow::Result<()> {
        match self.in_flight.next().await {
            None => Ok(()),
            Some(Ok(Ok(_))) => {
                Counters::add(&self.counters.produced);
                Ok(())
            }
            Some(Ok(Err((e, _)))) => {
                Err(e).with_context(|| format!("delivery to {} failed", self.topic))
            }
            Some(Err(_)) => bail!("the producer dropped a delivery report for {}", self.topic),
        }
    }

    /// Waits for every delivery in flight, then flushes the producer.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30)))
            .await
            .context("flush task panicked")?
            .context("flushing the Kafka producer")?;
        Ok(())
    }

    /// Sends everything `rx` yields until every sender is gone, reaping
    /// deliveries as they complete, then flushes. Fails on the first
    /// delivery error; dropping `rx` then tells the source to stop.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Record>) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                biased;
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    match done {
                        Ok(Ok(_)) => Counters::add(&self.counters.produced),
                        Ok(Err((e, _))) => {
                            return Err(e).with_context(|| format!("delivery to {} failed", self.topic));
                        }
                        Err(_) => bail!("the producer dropped a delivery report for {}", self.topic),
                    }
                }
                record = rx.recv() => match record {
                    Some(record) => self.send(&record).await?,
                    None => break,
                },
            }
        }
        self.flush().await
    }
}
