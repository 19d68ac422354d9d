//! `[kafka]`: the source consumer, and the producer dead letters go through.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Problems, Scalar};

/// librdkafka properties Weir sets itself; setting them would break the
/// delivery guarantee, so the config refuses them.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.offset.store",
    "enable.auto.commit",
    "auto.commit.interval.ms",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// Consumer group; hosts with the same group split the partitions.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// librdkafka properties for both consumer and producer (SASL, TLS ...).
    #[serde(default)]
    pub properties: BTreeMap<String, Scalar>,
    /// librdkafka properties for the consumer only.
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, Scalar>,
    /// librdkafka properties for the dead-letter producer only.
    #[serde(default)]
    pub producer_properties: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub batch: SourceBatchConfig,
    /// Batches per partition that may be queued or processing at once
    /// before the partition is paused.
    #[serde(default = "default_in_flight")]
    pub max_in_flight_batches: usize,
    /// How often stored (fully acknowledged) offsets are committed.
    #[serde(default = "default_commit_interval", with = "humantime_serde")]
    pub commit_interval: Duration,
    /// On SIGTERM/SIGINT, how long in-flight batches may take to finish.
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// On a partition revoke, how long to wait for its in-flight batches
    /// before committing and letting it go.
    #[serde(default = "default_revoke", with = "humantime_serde")]
    pub revoke_timeout: Duration,
}

/// `[kafka.batch]`: how records of one partition are grouped for modules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceBatchConfig {
    pub max_records: usize,
    pub max_bytes: usize,
    /// Longest a partial batch waits for more records.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
}

impl Default for SourceBatchConfig {
    fn default() -> Self {
        Self {
            max_records: 500,
            max_bytes: 1 << 20,
            linger: Duration::from_millis(50),
        }
    }
}

fn default_group() -> String {
    "weir".into()
}
fn default_in_flight() -> usize {
    4
}
fn default_commit_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_drain() -> Duration {
    Duration::from_secs(30)
}
fn default_revoke() -> Duration {
    Duration::from_secs(5)
}

impl KafkaConfig {
    pub(super) fn validate(&self, p: &mut Problems) {
        if self.brokers.trim().is_empty() {
            p.add("kafka.brokers", "must name at least one broker");
        }
        if self.group_id.trim().is_empty() {
            p.add("kafka.group_id", "must not be empty");
        }
        for (table, props) in [
            ("properties", &self.properties),
            ("consumer_properties", &self.consumer_properties),
            ("producer_properties", &self.producer_properties),
        ] {
            for key in props.keys().filter(|k| RESERVED.contains(&k.as_str())) {
                p.add(
                    format!("kafka.{table}.\"{key}\""),
                    "is set by Weir (see kafka.brokers, kafka.group_id, kafka.commit_interval)",
                );
            }
        }
        for (key, value) in [
            ("kafka.batch.max_records", self.batch.max_records),
            ("kafka.batch.max_bytes", self.batch.max_bytes),
            ("kafka.max_in_flight_batches", self.max_in_flight_batches),
        ] {
            if value == 0 {
                p.add(key, "must be at least 1");
            }
        }
    }

    /// Properties for the consumer, most specific last.
    pub fn consumer_props(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .chain(&self.consumer_properties)
            .map(|(k, v)| (k.as_str(), v.0.as_str()))
    }

    /// Properties for the dead-letter producer, most specific last.
    pub fn producer_props(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .chain(&self.producer_properties)
            .map(|(k, v)| (k.as_str(), v.0.as_str()))
    }
}
