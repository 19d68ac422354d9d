//! One task per assigned partition: runs its batches through the pipeline
//! in order and hands the results on. The source seals batches and starts
//! a worker per partition through [`PartitionWorkers`]; it never sees the
//! runtime, the scheduler or the outputs.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    DeadLetterQueue, DocumentSink, FairScheduler, Pipeline, dispatch_outputs, process_batch,
};
use crate::event::{OnComplete, SourceRecord};
use crate::runtime::WasmRuntime;

/// Records of one partition, in offset order, sealed by the source.
pub struct PartitionBatch {
    pub pipeline: Arc<Pipeline>,
    pub records: Vec<Arc<SourceRecord>>,
    /// Runs once everything derived from the batch is acknowledged (the
    /// source then lets its offset be committed).
    pub on_complete: OnComplete,
    /// Whether the source still owns the batch's partition. Once it does
    /// not (revoked, its offsets committed), the batch is dropped: the
    /// partition's next owner consumes it again from the committed offset,
    /// so nothing is indexed that was not committed.
    pub is_current: IsCurrent,
}

/// See [`PartitionBatch::is_current`].
pub type IsCurrent = Box<dyn Fn() -> bool + Send + Sync>;

/// Starts a partition's worker: it takes batches from `batches` until the
/// sender is dropped.
pub trait PartitionWorkers: Send + Sync {
    fn spawn(self: Arc<Self>, batches: mpsc::Receiver<PartitionBatch>) -> JoinHandle<()>;
}

/// What every partition worker shares: the runtime, the fair scheduler of
/// Wasm slots (module instances running at once across all partitions,
/// shared between tenants by weight) and the outputs.
pub struct Workers<S> {
    runtime: Arc<WasmRuntime>,
    scheduler: Arc<FairScheduler>,
    sink: S,
    dlq: DeadLetterQueue,
}

impl<S: DocumentSink> Workers<S> {
    /// Workers sharing `runtime.max_concurrency` Wasm slots.
    pub fn new(runtime: Arc<WasmRuntime>, sink: S, dlq: DeadLetterQueue) -> Arc<Self> {
        let scheduler = Arc::new(FairScheduler::new(runtime.config().max_concurrency));
        Arc::new(Self {
            runtime,
            scheduler,
            sink,
            dlq,
        })
    }

    pub fn scheduler(&self) -> &Arc<FairScheduler> {
        &self.scheduler
    }

    async fn run(self: Arc<Self>, mut batches: mpsc::Receiver<PartitionBatch>) {
        while let Some(batch) = batches.recv().await {
            let PartitionBatch {
                pipeline,
                records,
                on_complete,
                is_current,
            } = batch;
            if !is_current() {
                continue;
            }
            let out = process_batch(&self.runtime, &self.scheduler, &pipeline, &records).await;
            // Revoked while it ran (a rebalance, or its pipeline removed):
            // its outputs would be indexed with its offset already settled.
            if !is_current() {
                continue;
            }
            dispatch_outputs(&pipeline, &records, out, &self.sink, &self.dlq, on_complete).await;
        }
    }
}

impl<S: DocumentSink> PartitionWorkers for Workers<S> {
    fn spawn(self: Arc<Self>, batches: mpsc::Receiver<PartitionBatch>) -> JoinHandle<()> {
        tokio::spawn(self.run(batches))
    }
}
