//! Cutting batches from the queue of waiting documents and encoding them
//! into one `_bulk` body, reusing a single buffer across batches.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::encoder::{self, BodyError};
use crate::config::BatchConfig;
use crate::event::IndexRequest;

/// A document waiting to be indexed.
#[derive(Debug)]
pub struct Pending {
    pub req: IndexRequest,
    /// Times Elasticsearch rejected it with a retryable item error.
    pub rejections: u32,
    /// Encoded size upper bound, for batch sizing.
    pub size: usize,
}

impl Pending {
    pub fn new(req: IndexRequest) -> Self {
        let size = encoder::encoded_size_hint(&req.index, &req.id, &req.body);
        Self {
            req,
            rejections: 0,
            size,
        }
    }
}

/// A bulk body ready to send, kept for whole-request retries.
#[derive(Debug, Clone)]
pub struct WireBody {
    /// NDJSON, or its gzip when `gzip`.
    pub bytes: Bytes,
    pub gzip: bool,
    /// Length of the NDJSON before compression.
    pub ndjson_len: usize,
}

/// Documents sent together in one bulk request, in body order.
#[derive(Debug)]
pub struct BulkBatch {
    pub items: Vec<Pending>,
    pub body: WireBody,
    /// Times this exact request failed as a whole (drives its backoff).
    pub failures: u32,
}

/// Documents whose body cannot be framed, with the reason.
pub type Unencodable = Vec<(Pending, BodyError)>;

/// Cuts and encodes batches. Owns the reusable NDJSON buffer.
#[derive(Debug)]
pub struct RequestBuilder {
    max_docs: usize,
    max_bytes: usize,
    buf: BytesMut,
}

impl RequestBuilder {
    pub fn new(cfg: &BatchConfig) -> Self {
        Self {
            max_docs: cfg.max_docs,
            max_bytes: cfg.max_bytes,
            buf: BytesMut::new(),
        }
    }

    /// Whether `docs`/`bytes` of waiting documents make a full batch.
    pub fn is_full(&self, docs: usize, bytes: usize) -> bool {
        docs >= self.max_docs || bytes >= self.max_bytes
    }

    /// Removes the next batch's documents from the front of `queue`: up to
    /// `max_docs`, and up to `max_bytes` unless the first one alone is larger.
    pub fn take(&self, queue: &mut VecDeque<Pending>) -> Vec<Pending> {
        let (mut n, mut bytes) = (0, 0);
        for p in queue.iter() {
            if n == self.max_docs || (n > 0 && bytes + p.size > self.max_bytes) {
                break;
            }
            n += 1;
            bytes += p.size;
        }
        queue.drain(..n).collect()
    }

    /// Encodes `items` into one NDJSON body. Documents that cannot be framed
    /// are returned apart, to be dead-lettered; the body is `None` when no
    /// document is left.
    pub fn encode(&mut self, items: Vec<Pending>) -> (Vec<Pending>, Option<Bytes>, Unencodable) {
        let mut ok = Vec::with_capacity(items.len());
        let mut bad = Vec::new();
        // Reclaims the previous body's allocation once that body is dropped.
        self.buf.clear();
        self.buf.reserve(items.iter().map(|p| p.size).sum());
        for p in items {
            match encoder::encode_index(&mut self.buf, &p.req.index, &p.req.id, &p.req.body) {
                Ok(()) => ok.push(p),
                Err(e) => bad.push((p, e)),
            }
        }
        let body = (!ok.is_empty()).then(|| self.buf.split().freeze());
        (ok, body, bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Ack, SourceRecord};
    use std::sync::Arc;

    pub(crate) fn doc(id: &str, body: &str) -> Pending {
        let origin = Arc::new(SourceRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: None,
            headers: vec![],
            value: Bytes::new(),
        });
        Pending::new(IndexRequest {
            index: "i".into(),
            id: id.to_owned(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            pipeline: "p".into(),
            origin,
            dead_letter_topic: "dlq".into(),
            ack: Ack::batch(1, Box::new(|| {})).pop().unwrap(),
        })
    }

    #[test]
    fn takes_up_to_max_docs_and_max_bytes() {
        let b = RequestBuilder::new(&BatchConfig {
            max_docs: 3,
            max_bytes: 200,
            ..BatchConfig::default()
        });
        let mut q: VecDeque<_> = (0..5).map(|i| doc(&i.to_string(), "{}")).collect();
        assert_eq!(b.take(&mut q).len(), 3);
        assert_eq!(q.len(), 2);
        let big = "{\"a\":\"".to_owned() + &"x".repeat(300) + "\"}";
        let mut q: VecDeque<_> = [doc("a", &big), doc("b", "{}")].into();
        assert_eq!(b.take(&mut q).len(), 1, "an oversized document goes alone");
        let mut q: VecDeque<_> = [doc("a", "{}"), doc("b", &big)].into();
        assert_eq!(b.take(&mut q).len(), 1, "the byte limit holds");
    }

    #[test]
    fn encodes_in_order_and_sets_aside_bad_bodies() {
        let mut b = RequestBuilder::new(&BatchConfig::default());
        let items = vec![doc("1", "{\"a\":1}"), doc("2", "[]"), doc("3", "{}\n")];
        let (ok, body, bad) = b.encode(items);
        assert_eq!(
            ok.iter().map(|p| p.req.id.as_str()).collect::<Vec<_>>(),
            ["1", "3"]
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].1, BodyError::NotAnObject);
        assert_eq!(
            &body.unwrap()[..],
            b"{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"a\":1}\n\
              {\"index\":{\"_index\":\"i\",\"_id\":\"3\"}}\n{}\n"
        );
        let (ok, body, bad) = b.encode(vec![doc("4", "")]);
        assert!(ok.is_empty() && body.is_none() && bad.len() == 1);
    }
}
