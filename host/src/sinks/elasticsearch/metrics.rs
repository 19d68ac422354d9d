//! Prometheus metrics of the sink (prefix `weir_es_`) and the per-batch
//! tracing summaries that replace per-item log lines.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Implements `EncodeLabelValue` with snake_case names for a label enum.
macro_rules! label_values {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    };
}

label_values!(RequestOutcome { Success => "success", Partial => "partial", Retry => "retry", Split => "split" });
label_values!(ItemOutcome { Indexed => "indexed", Retried => "retried", DeadLettered => "dead_lettered" });
label_values!(StatusClass { S2xx => "2xx", S4xx => "4xx", S5xx => "5xx", Other => "other", None => "none" });
label_values!(RetryKind { Request => "request", Item => "item" });

/// How a bulk request ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Every item indexed.
    Success,
    /// A usable response with some items retried or dead-lettered.
    Partial,
    /// No usable response: the whole request is retried.
    Retry,
    /// Refused as a whole (400/413): the batch is split.
    Split,
}

/// What happened to an item.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ItemOutcome {
    Indexed,
    Retried,
    DeadLettered,
}

/// Status class of a bulk response (`none` when there was no response).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum StatusClass {
    S2xx,
    S4xx,
    S5xx,
    Other,
    None,
}

impl StatusClass {
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(200..=299) => Self::S2xx,
            Some(400..=499) => Self::S4xx,
            Some(500..=599) => Self::S5xx,
            Some(_) => Self::Other,
            None => Self::None,
        }
    }
}

/// What a retry resends.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum RetryKind {
    Request,
    Item,
}

/// Pipeline name as a label value, without copying it into a `String`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct PipelineLabel(pub Arc<str>);

impl EncodeLabelValue for PipelineLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    status_class: StatusClass,
    outcome: RequestOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemLabels {
    pipeline: PipelineLabel,
    outcome: ItemOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    kind: RetryKind,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    encoding: &'static str,
}

/// The sink's metrics. Cheap to clone (all handles are shared).
#[derive(Debug, Clone)]
pub struct SinkMetrics {
    requests: Family<RequestLabels, Counter>,
    items: Family<ItemLabels, Counter>,
    retries: Family<RetryLabels, Counter>,
    latency: Histogram,
    bytes: Family<BytesLabels, Counter>,
    in_flight: Gauge,
}

impl SinkMetrics {
    /// Creates the metrics and registers them under `weir_es_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        let r = registry.sub_registry_with_prefix("weir_es");
        r.register(
            "bulk_requests",
            "Bulk requests by response status class and outcome",
            m.requests.clone(),
        );
        r.register(
            "items",
            "Documents by outcome (indexed, retried, dead_lettered) and pipeline",
            m.items.clone(),
        );
        r.register(
            "retries",
            "Retries scheduled, whole requests or items",
            m.retries.clone(),
        );
        r.register(
            "bulk_request_duration_seconds",
            "Bulk request latency, send to response parsed",
            m.latency.clone(),
        );
        r.register(
            "bulk_bytes",
            "Bulk body bytes sent: uncompressed NDJSON and on the wire",
            m.bytes.clone(),
        );
        r.register(
            "in_flight_requests",
            "Bulk requests in flight",
            m.in_flight.clone(),
        );
        m
    }

    /// Metrics not registered anywhere (tests).
    pub fn unregistered() -> Self {
        Self {
            requests: Family::default(),
            items: Family::default(),
            retries: Family::default(),
            latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            bytes: Family::default(),
            in_flight: Gauge::default(),
        }
    }

    pub fn request(&self, status: Option<u16>, outcome: RequestOutcome, seconds: f64) {
        let labels = RequestLabels {
            status_class: StatusClass::of(status),
            outcome,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.observe(seconds);
    }

    /// Adds per-pipeline item counts (one label lookup per pipeline, not per item).
    pub fn items(&self, outcome: ItemOutcome, counts: &[(Arc<str>, u64)]) {
        for (pipeline, n) in counts {
            let labels = ItemLabels {
                pipeline: PipelineLabel(Arc::clone(pipeline)),
                outcome,
            };
            self.items.get_or_create(&labels).inc_by(*n);
        }
        if outcome == ItemOutcome::Retried {
            let n = counts.iter().map(|(_, n)| n).sum();
            self.retries
                .get_or_create(&RetryLabels {
                    kind: RetryKind::Item,
                })
                .inc_by(n);
        }
    }

    pub fn request_retry(&self) {
        self.retries
            .get_or_create(&RetryLabels {
                kind: RetryKind::Request,
            })
            .inc();
    }

    pub fn bytes_sent(&self, uncompressed: usize, wire: usize) {
        for (encoding, n) in [("uncompressed", uncompressed), ("wire", wire)] {
            self.bytes
                .get_or_create(&BytesLabels { encoding })
                .inc_by(n as u64);
        }
    }

    /// One sink's requests in flight went from `from` to `to` (sinks that
    /// share these metrics, one per credential, add up in the gauge).
    pub fn in_flight(&self, from: usize, to: usize) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.in_flight.inc_by(n(to) - n(from));
    }

    #[cfg(test)]
    pub fn item_count(&self, pipeline: &str, outcome: ItemOutcome) -> u64 {
        self.items
            .get_or_create(&ItemLabels {
                pipeline: PipelineLabel(pipeline.into()),
                outcome,
            })
            .get()
    }
}

/// Counts per key, for a batch; tiny (a handful of pipelines or error types).
#[derive(Debug, Default)]
pub struct Tally<K> {
    pub entries: Vec<(K, u64)>,
}

impl<K: PartialEq> Tally<K> {
    pub fn add(&mut self, key: K) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => self.entries.push((key, 1)),
        }
    }
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|(_, n)| n).sum()
    }
}

impl<K: std::fmt::Display> std::fmt::Display for Tally<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, n)) in self.entries.iter().enumerate() {
            write!(f, "{}{k}×{n}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}
