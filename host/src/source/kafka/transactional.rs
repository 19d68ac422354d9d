//! Offset commits with exactly-once dead letters: the offsets the tracker
//! makes committable are not stored in the consumer (librdkafka's
//! auto-commit is off) but collected here, and committed every
//! `kafka.commit_interval`, on revoke and at shutdown through the
//! `pipeline::TransactionalCommit` port, which writes them in one Kafka
//! transaction with the dead letters of the records they cover.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;

use super::offsets::TopicPartition;
use crate::pipeline::{CommitError, CommitOffset, TransactionalCommit};
use crate::telemetry::{Metrics, PartitionLabels, ResultLabels};

/// Committable offsets waiting for their transaction.
pub struct TransactionalOffsets {
    pending: Mutex<HashMap<TopicPartition, i64>>,
    port: Arc<dyn TransactionalCommit>,
    metrics: Metrics,
    /// Set when the producer can never commit again (fenced): the source
    /// stops with this error.
    fatal: Mutex<Option<String>>,
}

impl TransactionalOffsets {
    pub fn new(port: Arc<dyn TransactionalCommit>, metrics: Metrics) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            port,
            metrics,
            fatal: Mutex::new(None),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, i64>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tracker's store callback: `next` is committable for the partition.
    pub fn store(&self, topic: &str, partition: i32, next: i64) {
        self.pending().insert((Arc::from(topic), partition), next);
    }

    /// The error that ended transactional commits, if one did.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Commits every pending offset, with the dead letters it covers, as
    /// one transaction. Blocks up to about `timeout`. On failure nothing
    /// moved: the offsets stay pending for the next commit.
    pub fn commit_pending(
        &self,
        group: Option<ConsumerGroupMetadata>,
        timeout: Duration,
    ) -> Result<(), CommitError> {
        if let Some(fatal) = self.fatal() {
            return Err(CommitError::Fatal(fatal));
        }
        let offsets: Vec<CommitOffset> = self
            .pending()
            .iter()
            .map(|((topic, partition), next)| CommitOffset {
                topic: Arc::clone(topic),
                partition: *partition,
                next: *next,
            })
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        let result = match group {
            Some(group) => self.port.commit(&offsets, &group, timeout),
            None => Err(CommitError::Retry("no consumer group metadata yet".into())),
        };
        let label = ResultLabels {
            result: if result.is_ok() { "ok" } else { "error" }.into(),
        };
        self.metrics.commits.get_or_create(&label).inc();
        match &result {
            Ok(()) => {
                let mut pending = self.pending();
                for o in &offsets {
                    let tp = (Arc::clone(&o.topic), o.partition);
                    if pending.get(&tp) == Some(&o.next) {
                        pending.remove(&tp);
                    }
                    self.metrics
                        .committed_offset
                        .get_or_create(&PartitionLabels {
                            topic: o.topic.to_string(),
                            partition: o.partition,
                        })
                        .set(o.next);
                }
            }
            Err(CommitError::Retry(e)) => {
                tracing::warn!(error = %e, "transactional offset commit failed; offsets and dead letters stay for the next one");
            }
            Err(CommitError::Fatal(e)) => {
                tracing::error!(error = %e, "the transactional dead-letter producer can no longer commit (fenced by another host with the same kafka.instance_id?)");
                *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
            }
        }
        result
    }

    /// A partition this host no longer owns (after its revoke commit), or
    /// owns anew: its uncommitted offset and held dead letters are dropped;
    /// the records after its last commit are delivered again.
    pub fn forget(&self, tp: &TopicPartition) {
        self.pending().remove(tp);
        self.port.release(&tp.0, tp.1);
    }
}
