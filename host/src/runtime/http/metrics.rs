//! Metrics of module-initiated HTTP: requests by pipeline, destination and
//! outcome, and their latency.
//!
//! The `host` label is the allowlist pattern a request matched (e.g.
//! `*.expert.ai:443`), not the host the module asked for: its values are
//! bounded by configuration, so a module cannot inflate the metric's
//! cardinality. Requests that match no pattern are counted under `-`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived (any status).
    Ok,
    /// The policy refused it (allowlist, address, credential).
    Denied,
    /// A connect, first-byte, total or concurrency-slot timeout.
    Timeout,
    /// The request or response body exceeded its limit.
    TooLarge,
    /// Anything else: DNS, connection, TLS, protocol.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Timeout => "timeout",
            Self::TooLarge => "too_large",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    pipeline: String,
    host: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    pipeline: String,
    host: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~65 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// Handles for the outbound HTTP metric families; cheap to clone.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    seconds: Family<LatencyLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    /// Registers `weir_http_requests` and `weir_http_request_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::detached();
        let r = registry.sub_registry_with_prefix("weir");
        r.register(
            "http_requests",
            "Outbound HTTP requests made by modules, by pipeline, allowlist pattern and outcome",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from a module's request to its fully read response (requests that got one)",
            m.seconds.clone(),
        );
        m
    }

    /// Metrics that record nowhere visible (for `weir process` and tests);
    /// [`HttpMetrics::count`] still reads them.
    pub fn detached() -> Self {
        Self {
            requests: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram),
        }
    }

    /// Records one finished request.
    pub fn record(&self, pipeline: &str, host: &str, outcome: Outcome, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                pipeline: pipeline.to_string(),
                host: host.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
        if outcome == Outcome::Ok {
            self.seconds
                .get_or_create(&LatencyLabels {
                    pipeline: pipeline.to_string(),
                    host: host.to_string(),
                })
                .observe(seconds);
        }
    }

    /// Requests counted so far with these labels.
    pub fn count(&self, pipeline: &str, host: &str, outcome: Outcome) -> u64 {
        self.requests
            .get_or_create(&RequestLabels {
                pipeline: pipeline.to_string(),
                host: host.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_outcome_and_exports_text() {
        let mut registry = Registry::default();
        let m = HttpMetrics::register(&mut registry);
        m.record("tweets", "127.0.0.1:8090", Outcome::Ok, 0.01);
        m.record("tweets", "-", Outcome::Denied, 0.0);
        assert_eq!(m.count("tweets", "127.0.0.1:8090", Outcome::Ok), 1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"weir_http_requests_total{pipeline="tweets",host="-",outcome="denied"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("weir_http_request_duration_seconds_count"),
            "{text}"
        );
    }
}
