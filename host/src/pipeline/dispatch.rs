//! Hands a processed batch to the sink and the dead-letter queue, with one
//! acknowledgement unit per deliverable.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::{ChainOutput, Pipeline};
use crate::dlq::DeadLetterQueue;
use crate::event::{
    Ack, DeadLetter, FailureStage, IndexRequest, OnComplete, SourceRecord, default_doc_id,
};

/// Where indexed documents go: the Elasticsearch sink in production, other
/// implementations in `weir process`, tests and benchmarks.
pub trait DocumentSink: Send + Sync + 'static {
    /// Queues a document; waits while the sink is full (backpressure).
    fn send(&self, request: IndexRequest) -> impl Future<Output = ()> + Send;
}

impl DocumentSink for crate::sinks::elasticsearch::SinkHandle {
    async fn send(&self, request: IndexRequest) {
        if let Err(e) = crate::sinks::elasticsearch::SinkHandle::send(self, request).await {
            // The sink is gone (shutdown): the document stays unacknowledged
            // and its record is redelivered after restart.
            tracing::warn!(error = %e, "sink closed; document left unacknowledged");
        }
    }
}

impl DocumentSink for tokio::sync::mpsc::Sender<IndexRequest> {
    async fn send(&self, request: IndexRequest) {
        let _ = tokio::sync::mpsc::Sender::send(self, request).await;
    }
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
        sink.send(IndexRequest {
            index,
            id,
            body: Bytes::from(doc.body),
            pipeline: Arc::clone(&pipeline.name),
            origin: Arc::clone(origin),
            dead_letter_topic: Arc::clone(&pipeline.dead_letter_topic),
            ack: acks.next().expect("one ack per deliverable"),
        })
        .await;
    }
}
