//! One batch's turn in a pipeline, as every partition worker takes it:
//! wait while the pipeline is paused or backing off, take the tenant's
//! records/s, take a fair share of Wasm execution, run the chain, and tell
//! the circuit breaker how it went.

use std::sync::Arc;
use std::time::Instant;

use super::{ChainOutput, Pipeline, run_chain};
use crate::event::SourceRecord;
use crate::pipeline::breaker::Transition;
use crate::pipeline::scheduler::FairScheduler;
use crate::runtime::WasmRuntime;

/// Runs `records` through `pipeline` under its run state and quotas.
/// While it waits (paused, breaker open, records/s), the caller's queue
/// fills and the source holds the partition back.
pub async fn process_batch(
    rt: &WasmRuntime,
    scheduler: &FairScheduler,
    pipeline: &Pipeline,
    records: &[Arc<SourceRecord>],
) -> ChainOutput {
    // Held to the end: a half-open breaker admits one trial batch at a time.
    let _admission = pipeline.control.wait_runnable().await;
    if let Some(tenant) = &pipeline.tenant {
        tenant.admit_records(records.len()).await;
    }
    pipeline.control.record(records.len());
    // Load the chain once: a swap during this batch applies to the next.
    let chain = pipeline.chain.load_full();
    let out = {
        let (tenant, share) = pipeline.share();
        let _slot = scheduler.acquire(tenant, share).await;
        let started = Instant::now();
        let out = run_chain(rt, &chain, records, &pipeline.metrics).await;
        pipeline
            .metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        out
    };
    pipeline.metrics.batches.inc();
    // A batch in which every record failed counts against the breaker; one
    // whose records hit resource limits opens it at once (each retry of
    // those costs a full limit).
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
        None => {}
    }
    out
}
