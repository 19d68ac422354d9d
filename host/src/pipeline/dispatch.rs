//! Hands a processed batch to the sink and the dead-letter queue, with one
//! acknowledgement unit per deliverable. The pipeline names neither
//! concrete output: documents go to a [`DocumentSink`] (the Elasticsearch
//! sink implements it) and dead letters into a [`DeadLetterQueue`], a
//! channel whose other end a writer drains (`sinks/dead_letter/`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{ChainOutput, Pipeline, TenantShare};
use crate::event::{
    Ack, DeadLetter, FailureStage, IndexRequest, OnComplete, SourceRecord, default_doc_id,
};

/// Where indexed documents go: the Elasticsearch sink in production, other
/// implementations in `weir process`, tests and benchmarks.
pub trait DocumentSink: Send + Sync + 'static {
    /// Queues a document; waits while the sink is full (backpressure).
    fn send(&self, request: IndexRequest) -> impl Future<Output = ()> + Send;

    /// Queues a document of `tenant`'s pipeline (`None`: an untenanted
    /// one). A sink that writes with per-tenant credentials picks the
    /// tenant's here; by default every document goes to [`DocumentSink::send`].
    fn send_for(
        &self,
        tenant: Option<&Arc<TenantShare>>,
        request: IndexRequest,
    ) -> impl Future<Output = ()> + Send {
        let _ = tenant;
        self.send(request)
    }
}

impl DocumentSink for tokio::sync::mpsc::Sender<IndexRequest> {
    async fn send(&self, request: IndexRequest) {
        let _ = tokio::sync::mpsc::Sender::send(self, request).await;
    }
}

/// Handle to the dead-letter writer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DeadLetterQueue {
    tx: mpsc::Sender<DeadLetter>,
}

impl DeadLetterQueue {
    /// A queue and the receiving end its writer drains. `capacity` bounds
    /// the dead letters waiting to be written (backpressure on producers).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<DeadLetter>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx }, rx)
    }

    /// Queues a dead letter; waits while the queue is full. The dead
    /// letter's `ack` is acknowledged by the writer once the broker has it.
    /// If the writer is gone (shutdown) the dead letter is dropped
    /// unacknowledged, so its offset is never committed and it is redelivered.
    pub async fn send(&self, dead_letter: DeadLetter) {
        if let Err(e) = self.tx.send(dead_letter).await {
            tracing::warn!(record = ?e.0.record.offset, "dead-letter writer stopped; record will be redelivered");
        }
    }
}

/// One partition's position in a commit: every record before `next` is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: Arc<str>,
    pub partition: i32,
    pub next: i64,
}

/// Why a transactional commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Nothing was committed (the transaction was aborted or never began);
    /// the same offsets can be committed again later.
    #[error("transactional commit failed (will retry): {0}")]
    Retry(String),
    /// The producer can never commit again (fenced by a newer host with
    /// the same transactional id, or a fatal producer error): the process
    /// must stop.
    #[error("transactional commit impossible: {0}")]
    Fatal(String),
}

/// Exactly-once dead letters: the dead-letter writer holds the dead letters
/// it receives, and the source commits its offsets through this port, so
/// the offsets and the dead letters of the records they cover go to Kafka
/// in one transaction (the Kafka Streams shape). The source knows no
/// dead-letter queue; the writer knows no consumer.
pub trait TransactionalCommit: Send + Sync + 'static {
    /// The consumer's group membership a transaction's offsets are sent
    /// with (Kafka's consumer group metadata); the port names no client.
    type Group;

    /// Whether dead letters are held below `offsets`: a commit of them
    /// writes those in a transaction. One that covers none needs no
    /// transaction, and the source commits it as a plain offset commit.
    fn covers_dead_letters(&self, offsets: &[CommitOffset]) -> bool;

    /// Writes the held dead letters whose source positions are below
    /// `offsets` and commits `offsets` for the consumer `group`, as one
    /// transaction; held dead letters of later records stay held. Blocks
    /// (up to about `timeout`).
    fn commit(
        &self,
        offsets: &[CommitOffset],
        group: &Self::Group,
        timeout: Duration,
    ) -> Result<(), CommitError>;

    /// Forgets the held dead letters of a partition this host no longer
    /// owns: its records after the last commit will be redelivered, and
    /// dead-lettered again, wherever it goes.
    fn release(&self, topic: &str, partition: i32);
}

/// Sends every document and dead letter of a batch on its way. `on_complete`
/// runs once all of them are acknowledged (immediately for an empty batch).
pub async fn dispatch_outputs<S: DocumentSink>(
    pipeline: &Pipeline,
    records: &[Arc<SourceRecord>],
    out: ChainOutput,
    sink: &S,
    dlq: &DeadLetterQueue,
    on_complete: OnComplete,
) {
    let mut acks = Ack::batch(out.docs.len() + out.failures.len(), on_complete).into_iter();
    for failure in out.failures {
        let stage = match failure.module {
            Some(name) => FailureStage::Module { name },
            None => FailureStage::Decode,
        };
        pipeline.metrics.dead_letter(&stage.to_string());
        dlq.send(DeadLetter {
            pipeline: Arc::clone(&pipeline.name),
            topic: Arc::clone(&pipeline.dead_letter_topic),
            record: Arc::clone(&records[failure.source]),
            stage,
            reason: failure.reason,
            ack: acks.next().expect("one ack per deliverable"),
        })
        .await;
    }
    for doc in out.docs {
        let origin = &records[doc.source];
        let index = match doc.index {
            Some(i) => Arc::from(i),
            None => Arc::clone(&pipeline.index),
        };
        let id = doc.id.unwrap_or_else(|| {
            default_doc_id(&origin.topic, origin.partition, origin.offset, doc.n)
        });
        let request = IndexRequest {
            index,
            id,
            body: Bytes::from(doc.body),
            pipeline: Arc::clone(&pipeline.name),
            origin: Arc::clone(origin),
            dead_letter_topic: Arc::clone(&pipeline.dead_letter_topic),
            ack: acks.next().expect("one ack per deliverable"),
        };
        sink.send_for(pipeline.tenant.as_ref(), request).await;
    }
}
