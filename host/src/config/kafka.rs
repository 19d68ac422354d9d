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
    "transactional.id",
];

/// How dead letters reach their topic (`kafka.dead_letters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadLetterDelivery {
    /// Written as they come, acknowledged on delivery: after a crash, the
    /// dead letters of records after the last commit are written again
    /// (readers dedupe on the `weir.source.*` headers).
    #[default]
    AtLeastOnce,
    /// Held until the offsets covering them are committed, then written in
    /// the same Kafka transaction as those offsets: each dead letter once
    /// for `read_committed` readers, whatever crashes.
    ExactlyOnce,
}

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
    /// How dead letters are delivered: at-least-once (default) or
    /// exactly-once (Kafka transactions; needs `instance_id`).
    #[serde(default)]
    pub dead_letters: DeadLetterDelivery,
    /// This host's stable name within the group (the same across its
    /// restarts, different from every other host of the group). With
    /// exactly-once dead letters it names the transactional producer, so a
    /// restarted host fences its crashed predecessor.
    #[serde(default)]
    pub instance_id: Option<String>,
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
        if self.dead_letters == DeadLetterDelivery::ExactlyOnce {
            match self.instance_id.as_deref().map(str::trim) {
                None | Some("") => p.add(
                    "kafka.instance_id",
                    "is required with kafka.dead_letters = \"exactly-once\": a name for this host that stays the same across its restarts and differs from every other host of the group",
                ),
                Some(_) => {}
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

    /// The dead-letter producer's `transactional.id` with exactly-once dead
    /// letters: `weir-dlq.<group_id>.<instance_id>`, stable across restarts
    /// so that a restarted host fences its predecessor and aborts the
    /// transaction it left open. `None` in at-least-once mode.
    pub fn transactional_id(&self) -> Option<String> {
        match (self.dead_letters, &self.instance_id) {
            (DeadLetterDelivery::ExactlyOnce, Some(instance)) => {
                Some(format!("weir-dlq.{}.{}", self.group_id, instance.trim()))
            }
            _ => None,
        }
    }

    /// Properties for the dead-letter producer, most specific last.
    pub fn producer_props(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .chain(&self.producer_properties)
            .map(|(k, v)| (k.as_str(), v.0.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn kafka(extra: &str) -> Result<Config, crate::config::ConfigError> {
        let text = format!(
            "[kafka]\nbrokers = \"127.0.0.1:9092\"\ngroup_id = \"g\"\n{extra}\n[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\n"
        );
        Config::from_toml(&text, Path::new("weir.toml"), Path::new("."))
    }

    #[test]
    fn dead_letters_are_at_least_once_unless_exactly_once_is_asked_for() {
        let c = kafka("").unwrap();
        assert_eq!(c.kafka.dead_letters, DeadLetterDelivery::AtLeastOnce);
        assert_eq!(c.kafka.transactional_id(), None);
        let c = kafka("dead_letters = \"exactly-once\"\ninstance_id = \"host-a\"").unwrap();
        assert_eq!(c.kafka.dead_letters, DeadLetterDelivery::ExactlyOnce);
        assert_eq!(
            c.kafka.transactional_id().as_deref(),
            Some("weir-dlq.g.host-a")
        );
    }

    #[test]
    fn exactly_once_without_an_instance_id_is_refused_naming_the_key() {
        let msg = kafka("dead_letters = \"exactly-once\"")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("weir.toml: kafka.instance_id: is required"),
            "{msg}"
        );
        let msg = kafka("dead_letters = \"exactly-twice\"")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("exactly-twice"), "{msg}");
        let msg = kafka("[kafka.producer_properties]\n\"transactional.id\" = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("kafka.producer_properties.\"transactional.id\""),
            "{msg}"
        );
    }
}
