//! The units that flow through Weir and the acknowledgement that ties every
//! one of them back to the Kafka offset it came from.
//!
//! At-least-once delivery rests on one rule: an offset becomes committable
//! only when every [`Ack`] handed out for its batch has been acknowledged,
//! i.e. each derived document was indexed or dead-lettered. An `Ack` that is
//! dropped without [`Ack::ack`] (shutdown, crash, a bug) never counts, so the
//! records are delivered again instead of being lost.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

/// One Kafka record exactly as consumed, kept alive until everything derived
/// from it is acknowledged so it can be dead-lettered verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub value: Bytes,
}

impl SourceRecord {
    /// Approximate bytes this record holds in memory (for backpressure).
    pub fn size_hint(&self) -> usize {
        self.value.len()
            + self.key.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
            + 64
    }
}

/// Called once when every unit of a batch has been acknowledged.
pub type OnComplete = Box<dyn FnOnce() + Send + Sync>;

struct AckState {
    remaining: AtomicUsize,
    on_complete: std::sync::Mutex<Option<OnComplete>>,
}

/// One unit of acknowledgement owed to a source batch.
///
/// Create all units of a batch at once with [`Ack::batch`]; each derived
/// deliverable (a document to index, a dead letter to write) carries one.
#[must_use = "an Ack that is never acknowledged holds its offset back forever"]
pub struct Ack {
    state: Arc<AckState>,
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("remaining", &self.state.remaining.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ack {
    /// Hands out `units` acknowledgement units; `on_complete` runs when the
    /// last one is acknowledged. With `units == 0`, `on_complete` runs now.
    pub fn batch(units: usize, on_complete: OnComplete) -> Vec<Ack> {
        if units == 0 {
            on_complete();
            return Vec::new();
        }
        let state = Arc::new(AckState {
            remaining: AtomicUsize::new(units),
            on_complete: std::sync::Mutex::new(Some(on_complete)),
        });
        (0..units)
            .map(|_| Ack {
                state: Arc::clone(&state),
            })
            .collect()
    }

    /// Acknowledges this unit: its deliverable reached the sink or the
    /// dead-letter queue and will not be lost if the process dies now.
    pub fn ack(self) {
        if self.state.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let done = self
                .state
                .on_complete
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(done) = done {
                done();
            }
        }
    }
}

/// A document bound for the search sink.
#[derive(Debug)]
pub struct IndexRequest {
    /// Target index (already resolved: module override or pipeline index).
    pub index: Arc<str>,
    /// Document id (module override or the deterministic default).
    pub id: String,
    /// The JSON document.
    pub body: Bytes,
    /// Pipeline that produced it (for metrics and dead-lettering).
    pub pipeline: Arc<str>,
    /// The record it was derived from, dead-lettered if the sink rejects it.
    pub origin: Arc<SourceRecord>,
    /// The pipeline's dead-letter topic, for documents the sink rejects.
    pub dead_letter_topic: Arc<str>,
    pub ack: Ack,
}

/// Where a failure happened, named in the dead letter's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureStage {
    /// The record's value could not be decoded before any module ran.
    Decode,
    /// A module failed the record or trapped on its batch.
    Module { name: String },
    /// The search sink rejected the document permanently.
    Sink,
}

impl std::fmt::Display for FailureStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureStage::Decode => f.write_str("decode"),
            FailureStage::Module { name } => write!(f, "module:{name}"),
            FailureStage::Sink => f.write_str("sink"),
        }
    }
}

/// Largest value of a header the host adds to a dead letter, in bytes; a
/// module's failure reason is cut to it as soon as the host receives it.
pub const MAX_HEADER_BYTES: usize = 4096;

/// `value` cut to at most `max` bytes on a UTF-8 boundary, ending in
/// `… [truncated, N bytes]` (N: the original length) when it was cut (a
/// `max` shorter than that marker yields the marker alone).
pub fn cap(value: &str, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return Cow::Borrowed(value);
    }
    let marker = format!("… [truncated, {} bytes]", value.len());
    let keep = value.floor_char_boundary(max.saturating_sub(marker.len()));
    Cow::Owned(format!("{}{marker}", &value[..keep]))
}

/// A record that could not be delivered, with the reason.
#[derive(Debug)]
pub struct DeadLetter {
    pub pipeline: Arc<str>,
    /// Kafka topic the dead letter is written to.
    pub topic: Arc<str>,
    pub record: Arc<SourceRecord>,
    pub stage: FailureStage,
    pub reason: String,
    pub ack: Ack,
}

/// Deterministic document id for the `n`th output of a record.
///
/// Redelivery of the same record yields the same ids, so the index write
/// overwrites instead of duplicating.
pub fn default_doc_id(topic: &str, partition: i32, offset: i64, n: usize) -> String {
    format!("{topic}-{partition}-{offset}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_whole() {
        assert!(matches!(cap("boom", 4096), Cow::Borrowed("boom")));
        let exact = "x".repeat(4096);
        assert_eq!(cap(&exact, 4096), exact);
    }

    #[test]
    fn long_values_are_cut_with_a_marker_naming_the_original_size() {
        let long = "a".repeat(10_000);
        let capped = cap(&long, 4096);
        assert!(capped.len() <= 4096, "{}", capped.len());
        assert!(capped.ends_with("… [truncated, 10000 bytes]"), "{capped}");
        assert!(capped.starts_with(&"a".repeat(4000)));
    }

    #[test]
    fn cuts_land_on_a_utf8_boundary() {
        // 3-byte characters: no cut point lines up with the byte budget.
        let long = "€".repeat(5_000);
        for max in [4096, 4095, 4094, 100, 40] {
            let capped = cap(&long, max);
            assert!(capped.len() <= max, "{max}: {}", capped.len());
            let kept = capped.strip_suffix("… [truncated, 15000 bytes]").unwrap();
            assert!(kept.chars().all(|c| c == '€'), "{max}");
            assert!(
                max - capped.len() < 3,
                "{max}: cut more than one character short"
            );
        }
        // A budget smaller than the marker keeps only the marker.
        assert_eq!(cap(&long, 5), "… [truncated, 15000 bytes]");
    }
    use std::sync::atomic::AtomicBool;

    #[test]
    fn completes_only_after_every_unit() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let mut acks = Ack::batch(3, Box::new(move || d.store(true, Ordering::SeqCst)));
        acks.pop().unwrap().ack();
        acks.pop().unwrap().ack();
        assert!(!done.load(Ordering::SeqCst));
        acks.pop().unwrap().ack();
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn dropped_unit_never_completes() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let mut acks = Ack::batch(2, Box::new(move || d.store(true, Ordering::SeqCst)));
        acks.pop().unwrap().ack();
        drop(acks);
        assert!(!done.load(Ordering::SeqCst));
    }

    #[test]
    fn empty_batch_completes_immediately() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        assert!(Ack::batch(0, Box::new(move || d.store(true, Ordering::SeqCst))).is_empty());
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(default_doc_id("tweets", 3, 42, 0), "tweets-3-42-0");
        assert_ne!(
            default_doc_id("tweets", 3, 42, 0),
            default_doc_id("tweets", 3, 42, 1)
        );
    }
}
