//! What to do with each bulk outcome, and how long to wait before retrying.
//!
//! Rules (the heart of the sink's delivery guarantee):
//! - an item with a 2xx status is indexed: acknowledge it;
//! - an item rejected with 429, a 5xx, or an overload error type
//!   (`es_rejected_execution_exception`, `circuit_breaking_exception`) is
//!   retried alone, never with its already indexed neighbours;
//! - an item rejected with any other 4xx is permanent: dead-letter it;
//! - a request that got no usable answer (connection error, timeout,
//!   HTTP 429/5xx, unparsable or short response) is retried whole, and
//!   nothing in it is acknowledged until a retry succeeds.

use std::time::Duration;

use rand::Rng;

use crate::config::RetryConfig;

/// Decision for one bulk response item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemAction {
    /// Indexed; acknowledge.
    Ack,
    /// Transient rejection; send the item again after a backoff.
    Retry,
    /// Permanent rejection; dead-letter the item.
    DeadLetter,
}

/// Error types Elasticsearch uses for load shedding, whatever the status.
const OVERLOAD_TYPES: [&str; 2] = [
    "es_rejected_execution_exception",
    "circuit_breaking_exception",
];

/// Classifies one item by its status and error type.
pub fn classify_item(status: u16, error_type: Option<&str>) -> ItemAction {
    if error_type.is_some_and(|t| OVERLOAD_TYPES.contains(&t)) {
        return ItemAction::Retry;
    }
    match status {
        200..=299 => ItemAction::Ack,
        429 => ItemAction::Retry,
        400..=499 => ItemAction::DeadLetter,
        // 5xx, and anything unexpected: retrying is never loss.
        _ => ItemAction::Retry,
    }
}

/// Decision for a whole bulk request by its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    /// Parse the body and classify each item.
    ReadItems,
    /// Send the same request again after a backoff.
    Retry,
    /// The request itself was refused (400 malformed, 413 too large): one
    /// of its documents is at fault. Split the batch to isolate it; a single
    /// document refused this way is dead-lettered.
    Split,
}

/// Classifies a bulk response by its HTTP status.
///
/// 401/403/404 and other 4xx are configuration problems (credentials, URL,
/// proxy), not document problems: they are retried (and make the sink
/// unhealthy) rather than dead-lettering every document.
pub fn classify_request(status: u16) -> RequestAction {
    match status {
        200..=299 => RequestAction::ReadItems,
        400 | 413 => RequestAction::Split,
        _ => RequestAction::Retry,
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(cfg: &RetryConfig) -> Self {
        Self {
            initial: cfg.initial_backoff,
            max: cfg.max_backoff,
        }
    }

    /// The ceiling before retry number `attempt` (1-based):
    /// `min(max, initial * 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(30);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A delay drawn uniformly from `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_classification_table() {
        use ItemAction::*;
        let table: &[(u16, Option<&str>, ItemAction)] = &[
            (200, None, Ack),
            (201, None, Ack),
            (429, Some("es_rejected_execution_exception"), Retry),
            (429, None, Retry),
            (500, Some("some_exception"), Retry),
            (503, Some("unavailable_shards_exception"), Retry),
            (400, Some("es_rejected_execution_exception"), Retry),
            (503, Some("circuit_breaking_exception"), Retry),
            (400, Some("mapper_parsing_exception"), DeadLetter),
            (400, Some("document_parsing_exception"), DeadLetter),
            (400, Some("illegal_argument_exception"), DeadLetter),
            (400, Some("strict_dynamic_mapping_exception"), DeadLetter),
            (404, Some("index_not_found_exception"), DeadLetter),
            (409, Some("version_conflict_engine_exception"), DeadLetter),
            (0, None, Retry),
        ];
        for &(status, ty, want) in table {
            assert_eq!(
                classify_item(status, ty),
                want,
                "status {status} type {ty:?}"
            );
        }
    }

    #[test]
    fn request_classification_table() {
        use RequestAction::*;
        for (status, want) in [
            (200, ReadItems),
            (400, Split),
            (413, Split),
            (401, Retry),
            (403, Retry),
            (404, Retry),
            (429, Retry),
            (500, Retry),
            (502, Retry),
            (503, Retry),
        ] {
            assert_eq!(classify_request(status), want, "status {status}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let b = Backoff::new(&RetryConfig::default());
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(5), Duration::from_millis(1600));
        assert_eq!(b.ceiling(8), Duration::from_secs(10));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(10));
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
    }

    #[test]
    fn jittered_delay_stays_within_bounds() {
        let b = Backoff::new(&RetryConfig::default());
        for attempt in [1, 3, 10, 1000] {
            for _ in 0..200 {
                assert!(b.delay(attempt) <= b.ceiling(attempt));
            }
        }
        // Full jitter spreads delays over the range, not at its top.
        let spread: Vec<_> = (0..200).map(|_| b.delay(10)).collect();
        assert!(spread.iter().any(|d| *d < Duration::from_secs(5)));
        assert!(spread.iter().any(|d| *d > Duration::from_secs(5)));
    }
}
