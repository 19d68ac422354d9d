//! Sink tests: the whole sink against mock bulk servers that replay exact
//! response shapes, and against a real osmem server. No timing assertions:
//! tests wait on acknowledgements and dead letters with generous timeouts.

mod bulk;
mod credentials;
mod delivery;
mod mock;
mod osmem;
mod secured;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

use super::{ElasticsearchSink, SinkHandle};
use crate::config::ElasticsearchConfig;
use crate::event::{Ack, DeadLetter, IndexRequest, SourceRecord};
use crate::pipeline::DeadLetterQueue;

/// Generous bound for anything the tests wait for.
pub const WAIT: Duration = Duration::from_secs(30);

/// Hands out documents whose acknowledgements it observes.
pub struct Acks {
    tx: mpsc::UnboundedSender<String>,
    rx: mpsc::UnboundedReceiver<String>,
}

impl Acks {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx }
    }

    /// A document for index `test` of pipeline `p`; its id is reported when acknowledged.
    pub fn doc(&self, id: &str, body: &str) -> IndexRequest {
        self.doc_in("test", id, body)
    }

    pub fn doc_in(&self, index: &str, id: &str, body: &str) -> IndexRequest {
        let tx = self.tx.clone();
        let reported = id.to_owned();
        let ack = Ack::batch(1, Box::new(move || drop(tx.send(reported))))
            .pop()
            .expect("one unit");
        IndexRequest {
            index: index.into(),
            id: id.to_owned(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            pipeline: "p".into(),
            origin: Arc::new(SourceRecord {
                topic: "in".into(),
                partition: 0,
                offset: id.len() as i64,
                timestamp_ms: None,
                key: None,
                headers: vec![],
                value: Bytes::copy_from_slice(body.as_bytes()),
            }),
            dead_letter_topic: "in-dlq".into(),
            ack,
        }
    }

    /// Waits for `n` more acknowledgements; returns their ids, sorted.
    pub async fn wait(&mut self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(id)) => ids.push(id),
                _ => panic!(
                    "only {} of {n} acknowledgements arrived: {ids:?}",
                    ids.len()
                ),
            }
        }
        ids.sort();
        ids
    }

    /// Acknowledgements that already arrived, without waiting.
    pub fn so_far(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        while let Ok(id) = self.rx.try_recv() {
            ids.push(id);
        }
        ids.sort();
        ids
    }
}

/// Waits for the next dead letter.
pub async fn next_dead_letter(rx: &mut mpsc::Receiver<DeadLetter>) -> DeadLetter {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no dead letter arrived")
        .expect("dead-letter queue closed")
}

/// A config for `url` with short batch and backoff times, so tests run fast.
pub fn fast_config(url: &str) -> ElasticsearchConfig {
    let mut c = ElasticsearchConfig::new(url);
    c.batch.timeout = Duration::from_millis(20);
    c.retry.initial_backoff = Duration::from_millis(5);
    c.retry.max_backoff = Duration::from_millis(50);
    c.health.startup_timeout = Duration::from_secs(5);
    c.request.timeout = Duration::from_secs(10);
    c
}

/// A started sink plus what the test inspects.
pub struct Started {
    pub sink: SinkHandle,
    pub dead_letters: mpsc::Receiver<DeadLetter>,
    pub registry: Registry,
}

pub async fn start(config: &ElasticsearchConfig, base_dir: &Path) -> Started {
    let (dlq, dead_letters) = DeadLetterQueue::channel(64);
    let mut registry = Registry::default();
    let sink = ElasticsearchSink::start(config, base_dir, dlq, &mut registry)
        .await
        .expect("sink starts");
    Started {
        sink,
        dead_letters,
        registry,
    }
}

impl Started {
    /// The registry in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
}
