//! One task per assigned partition: runs its batches through the pipeline in
//! order and hands the results on.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};

use super::offsets::{OffsetTracker, Ticket};
use crate::dlq::DeadLetterQueue;
use crate::event::SourceRecord;
use crate::pipeline::{DocumentSink, Pipeline, dispatch_outputs, run_chain};
use crate::runtime::WasmRuntime;

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
    /// Bounds module instances running at once across all partitions.
    pub wasm_slots: Arc<Semaphore>,
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
        // Load the chain once: a swap during this batch applies to the next.
        let chain = pipeline.chain.load_full();
        let started = Instant::now();
        let out = {
            let _slot = shared
                .wasm_slots
                .acquire()
                .await
                .expect("semaphore never closed");
            run_chain(&shared.runtime, &chain, &records, &pipeline.metrics).await
        };
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
