//! librdkafka callbacks: rebalances (commit before letting a partition go)
//! and commit results (metrics).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::offsets::{OffsetTracker, TopicPartition};
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
}

fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect()
}

impl ClientContext for SourceContext {}

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
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => {}
                // Nothing stored since the last commit.
                Err(e) if e.to_string().contains("No offset stored") => {}
                Err(e) => tracing::warn!(error = %e, "commit on revoke failed"),
            }
            for tp in &tps {
                self.tracker.revoke(tp);
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
