//! librdkafka callbacks: rebalances (commit before letting a partition go)
//! and commit results (metrics).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
    StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::offsets::{OffsetTracker, TopicPartition};
use super::transactional::{GroupMember, TransactionalOffsets};
use crate::pipeline::{CommitError, CommitOffset};
use crate::telemetry::{Metrics, PartitionLabels, ResultLabels};

/// What the source loop must know about a rebalance.
#[derive(Debug)]
pub enum RebalanceEvent {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
}

pub struct SourceContext {
    pub(super) tracker: Arc<OffsetTracker>,
    pub(super) metrics: Metrics,
    pub(super) events: mpsc::UnboundedSender<RebalanceEvent>,
    pub(super) revoke_timeout: Duration,
    /// Exactly-once dead letters: offsets are committed in transactions.
    pub(super) txn: Option<Arc<TransactionalOffsets>>,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect()
}

/// The part of librdkafka's statistics JSON Weir reads: per partition,
/// how far the group's position is behind the high watermark.
#[derive(serde::Deserialize)]
struct Stats {
    #[serde(default)]
    topics: HashMap<String, TopicStats>,
}

#[derive(serde::Deserialize)]
struct TopicStats {
    #[serde(default)]
    partitions: HashMap<String, PartitionStats>,
}

#[derive(serde::Deserialize)]
struct PartitionStats {
    partition: i32,
    /// -1 when unknown (not fetching, or no watermark yet).
    consumer_lag: i64,
}

/// Partition lags from a statistics document: `(topic, partition, lag)`
/// for the partitions librdkafka knows a lag of (it lists `-1`, the
/// internal unassigned partition, and unknown lags too).
fn lags(json: &[u8]) -> Vec<(String, i32, i64)> {
    let Ok(stats) = serde_json::from_slice::<Stats>(json) else {
        return Vec::new();
    };
    let mut out: Vec<_> = stats
        .topics
        .into_iter()
        .flat_map(|(topic, t)| {
            t.partitions
                .into_values()
                .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                .map(move |p| (topic.clone(), p.partition, p.consumer_lag))
        })
        .collect();
    out.sort();
    out
}

impl ClientContext for SourceContext {
    /// Every `statistics.interval.ms`: consumer lag per partition into
    /// `weir_consumer_lag` (and the pipelines' status).
    fn stats_raw(&self, statistics: &[u8]) {
        for (topic, partition, lag) in lags(statistics) {
            self.metrics.set_consumer_lag(&topic, partition, lag);
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let tps = partitions(tpl);
            // Give in-flight batches a moment so their offsets are committed
            // by us rather than redelivered to the next owner.
            let drained = self.tracker.wait_drained(&tps, self.revoke_timeout);
            if !drained {
                tracing::warn!(
                    partitions = tps.len(),
                    "revoked with batches still in flight; they will be redelivered"
                );
            }
            let stop_tracking = || {
                for tp in &tps {
                    self.tracker.revoke(tp);
                }
            };
            if let Some(txn) = &self.txn {
                // Failures are logged (and a fatal one stops the source).
                txn.revoke(consumer, &tps, self.revoke_timeout, stop_tracking);
            } else {
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => {}
                    // Nothing stored since the last commit.
                    Err(e) if e.to_string().contains("No offset stored") => {}
                    Err(e) => tracing::warn!(error = %e, "commit on revoke failed"),
                }
                stop_tracking();
            }
            self.metrics.assigned_partitions.dec_by(tps.len() as i64);
            tracing::info!(partitions = ?tps, "partitions revoked");
            let _ = self.events.send(RebalanceEvent::Revoked(tps));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let tps = partitions(tpl);
                for tp in &tps {
                    if let Some(txn) = &self.txn {
                        txn.forget(tp);
                    }
                    self.tracker.assign(tp.clone());
                }
                self.metrics.assigned_partitions.inc_by(tps.len() as i64);
                tracing::info!(partitions = ?tps, "partitions assigned");
                let _ = self.events.send(RebalanceEvent::Assigned(tps));
            }
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let label = ResultLabels {
            result: if result.is_ok() { "ok" } else { "error" }.into(),
        };
        self.metrics.commits.get_or_create(&label).inc();
        match result {
            Ok(()) => {
                for e in offsets.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        self.metrics
                            .committed_offset
                            .get_or_create(&PartitionLabels {
                                topic: e.topic().to_string(),
                                partition: e.partition(),
                            })
                            .set(o);
                    }
                }
            }
            Err(e) if e.to_string().contains("No offset stored") => {}
            Err(e) => tracing::warn!(error = %e, "offset commit failed"),
        }
    }
}

// The source's consumers, as `TransactionalOffsets` commits through them:
// the rebalance callback's `BaseConsumer` and the loop's `StreamConsumer`.
impl GroupMember for BaseConsumer<SourceContext> {
    fn membership(&self) -> Option<ConsumerGroupMetadata> {
        self.group_metadata()
    }

    fn commit_plain(&self, offsets: &[CommitOffset]) -> Result<(), CommitError> {
        commit_plain(self, offsets)
    }
}

impl GroupMember for StreamConsumer<SourceContext> {
    fn membership(&self) -> Option<ConsumerGroupMetadata> {
        self.group_metadata()
    }

    fn commit_plain(&self, offsets: &[CommitOffset]) -> Result<(), CommitError> {
        commit_plain(self, offsets)
    }
}

fn commit_plain(
    consumer: &impl Consumer<SourceContext>,
    offsets: &[CommitOffset],
) -> Result<(), CommitError> {
    let mut tpl = TopicPartitionList::new();
    for o in offsets {
        tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.next))
            .map_err(|e| CommitError::Retry(e.to_string()))?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| CommitError::Retry(format!("offset commit: {e}")))
}

#[cfg(test)]
mod tests {
    use super::lags;

    #[test]
    fn lags_come_from_known_assigned_partitions_only() {
        let json = br#"{"name":"c","topics":{
            "tweets":{"topic":"tweets","partitions":{
                "0":{"partition":0,"consumer_lag":12,"hi_offset":40},
                "1":{"partition":1,"consumer_lag":-1},
                "-1":{"partition":-1,"consumer_lag":-1}}},
            "news":{"partitions":{"3":{"partition":3,"consumer_lag":0}}}}}"#;
        assert_eq!(
            lags(json),
            vec![("news".to_string(), 3, 0), ("tweets".to_string(), 0, 12)]
        );
        assert!(lags(b"not json").is_empty());
    }
}
