//! `[control]`: where a host's control plane lives. `files` (the default)
//! is one host's folders and file watching; `kafka` is a compacted topic
//! every host of a fleet reads and writes (see `fleet/`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Problems;

/// Where module versions, tenants, rollbacks and pauses come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlMode {
    /// The host's own files: the modules folders and tenant files, watched.
    #[default]
    Files,
    /// The control topic, shared by every host of the fleet.
    Kafka,
}

/// `[control]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    pub mode: ControlMode,
    /// The control topic (created if missing: one partition, compacted).
    pub topic: String,
    /// Module bytes per control record; keep it well under the broker's
    /// `message.max.bytes` (1 MiB by default).
    pub chunk_bytes: usize,
    /// How long a write through the admin API waits for this host to
    /// apply it (read-your-writes) before answering 504.
    #[serde(with = "humantime_serde")]
    pub apply_timeout: Duration,
    /// Replication factor the topic is created with; -1: the broker's
    /// `default.replication.factor`.
    pub replication_factor: i32,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            mode: ControlMode::Files,
            topic: "weir-control".into(),
            chunk_bytes: 512 << 10,
            apply_timeout: Duration::from_secs(60),
            replication_factor: -1,
        }
    }
}

/// Smallest and largest `control.chunk_bytes`.
const CHUNK_BYTES: std::ops::RangeInclusive<usize> = 1024..=(16 << 20);

impl ControlConfig {
    pub(super) fn validate(&self, tenants_dir_set: bool, p: &mut Problems) {
        if self.topic.is_empty()
            || self.topic.len() > 249
            || !self
                .topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            p.add(
                "control.topic",
                format!(
                    "`{}` is not a topic name (1-249 of a-z, A-Z, 0-9, '.', '_', '-')",
                    self.topic
                ),
            );
        }
        if !CHUNK_BYTES.contains(&self.chunk_bytes) {
            p.add(
                "control.chunk_bytes",
                format!(
                    "must be between {} and {} bytes (and under the broker's message.max.bytes)",
                    CHUNK_BYTES.start(),
                    CHUNK_BYTES.end()
                ),
            );
        }
        if self.apply_timeout.is_zero() {
            p.add("control.apply_timeout", "must be greater than zero");
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            p.add(
                "control.replication_factor",
                "must be -1 (the broker's default) or at least 1",
            );
        }
        if self.mode == ControlMode::Kafka && !tenants_dir_set {
            p.add(
                "control.mode",
                "`kafka` needs tenants.dir: the control topic carries tenants, and each host keeps their files there",
            );
        }
    }
}
