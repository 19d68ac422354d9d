//! One task per assigned partition: runs its batches through the pipeline in
//! order and hands the results on.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::offsets::{OffsetTracker, Ticket};
use crate::dlq::DeadLetterQueue;
use crate::event::SourceRecord;
use crate::pipeline::{DocumentSink, Pipeline, dispatch_outputs, run_chain};
use crate::runtime::WasmRuntime;
use crate::tenancy::breaker::Transition;
use crate::tenancy::scheduler::FairScheduler;

/// Records of one partition, in offset order, registered with the tracker.
pub struct Batch {
    pub pipeline: Arc<Pipeline>,
    pub records: Vec<Arc<SourceRecord>>,
    pub ticket: Ticket,
}

/// What every partition worker shares.
pub struct WorkerShared<S> {
    pub runtime: Arc<WasmRuntime>,
    pub sink: S,
    pub dlq: DeadLetterQueue,
    pub tracker: Arc<OffsetTracker>,
    /// Module instances running at once across all partitions, shared
    /// between tenants by weight.
    pub scheduler: Arc<FairScheduler>,
}

pub async fn run_partition<S: DocumentSink>(
    shared: Arc<WorkerShared<S>>,
    mut rx: mpsc::Receiver<Batch>,
) {
    while let Some(batch) = rx.recv().await {
        let Batch {
            pipeline,
            records,
            ticket,
        } = batch;
        // Paused, or backing off after repeated failures: wait here; the
        // partition's queue fills and the source pauses the partition.
        pipeline.control.wait_runnable().await;
        if let Some(tenant) = &pipeline.tenant {
            tenant.admit_records(records.len()).await;
        }
        pipeline.control.record(records.len());
        // Load the chain once: a swap during this batch applies to the next.
        let chain = pipeline.chain.load_full();
        let started = Instant::now();
        let out = {
            let (tenant, weight) = pipeline.share();
            let _slot = shared.scheduler.acquire(tenant, weight).await;
            run_chain(&shared.runtime, &chain, &records, &pipeline.metrics).await
        };
        // A batch in which every record failed counts against the breaker.
        // One whose records hit resource limits opens it at once: retrying
        // costs a full limit each time.
        let failed = !records.is_empty() && out.failures.len() == records.len();
        let transition = if failed && out.limit_failures > 0 {
            pipeline.control.breaker.record_limit_failure()
        } else {
            pipeline.control.breaker.record(!failed)
        };
        match transition {
            Some(Transition::Opened { backoff }) => {
                pipeline.metrics.breaker_trips.inc();
                tracing::warn!(pipeline = %pipeline.name, ?backoff, "every record of recent batches failed; backing off (circuit breaker open)");
            }
            Some(Transition::Closed) => {
                tracing::info!(pipeline = %pipeline.name, "batches succeed again (circuit breaker closed)");
            }
            _ => {}
        }
        pipeline
            .metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        pipeline.metrics.batches.inc();
        let tracker = Arc::clone(&shared.tracker);
        dispatch_outputs(
            &pipeline,
            &records,
            out,
            &shared.sink,
            &shared.dlq,
            Box::new(move || tracker.complete(&ticket)),
        )
        .await;
    }
}
