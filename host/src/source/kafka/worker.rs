//! One task per assigned partition: runs its batches through the pipeline in
//! order and hands the results on.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::offsets::{OffsetTracker, Ticket};
use crate::dlq::DeadLetterQueue;
use crate::event::SourceRecord;
use crate::pipeline::{DocumentSink, Pipeline, dispatch_outputs, process_batch};
use crate::runtime::WasmRuntime;
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
        let out = process_batch(&shared.runtime, &shared.scheduler, &pipeline, &records).await;
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
