//! Pipelines: a chain of modules between a set of topics and an index, and
//! everything that moves one batch through it: the per-partition
//! [`worker`], the per-batch [`step`] (admission, the fair [`scheduler`],
//! the circuit [`breaker`], the [`chain`] of modules), and [`dispatch`] to
//! the output ports (a [`DocumentSink`], the [`DeadLetterQueue`]).

pub mod breaker;
pub mod chain;
pub mod control;
pub mod dispatch;
pub mod provenance;
pub mod scheduler;
pub mod step;
pub mod tenant;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use chain::{ChainOutput, Failure, OutputDoc, run_chain, validate_document};
pub use control::{ControlStatus, PipelineControl};
pub use dispatch::{
    CommitError, CommitOffset, DeadLetterQueue, DocumentSink, TransactionalCommit, dispatch_outputs,
};
pub use provenance::{Chain, version_label};
pub use scheduler::{FairScheduler, SlotShare};
pub use step::process_batch;
pub use tenant::TenantShare;
pub use worker::{IsCurrent, PartitionBatch, PartitionWorkers, Workers};

use crate::config::PipelineConfig;
use crate::runtime::LoadedModule;
use crate::telemetry::PipelineMetrics;

/// A running pipeline. Its module chain is swappable: a batch loads the
/// chain once when it starts and finishes on that version.
pub struct Pipeline {
    pub name: Arc<str>,
    pub index: Arc<str>,
    pub dead_letter_topic: Arc<str>,
    pub chain: ArcSwap<Chain>,
    pub metrics: PipelineMetrics,
    /// The tenant it belongs to (`None` on a single-tenant host).
    pub tenant: Option<Arc<TenantShare>>,
    /// Pause flag, circuit breaker, throughput: survives rebuilds.
    pub control: Arc<PipelineControl>,
}

impl Pipeline {
    /// A pipeline as `config` describes it, running `modules` (one active
    /// version per entry of its chain). `control` outlives rebuilds.
    pub fn assemble(
        name: &str,
        config: &PipelineConfig,
        modules: Vec<Arc<LoadedModule>>,
        tenant: Option<Arc<TenantShare>>,
        control: Arc<PipelineControl>,
        metrics: PipelineMetrics,
    ) -> Self {
        Self {
            name: Arc::from(name),
            index: Arc::from(config.index.as_str()),
            dead_letter_topic: Arc::from(config.dead_letter_topic(name)),
            chain: ArcSwap::from_pointee(Chain::for_pipeline(modules, config)),
            metrics,
            tenant,
            control,
        }
    }

    /// The scheduling key and weight of the pipeline's Wasm work.
    pub fn share(&self) -> (&str, SlotShare) {
        self.tenant
            .as_deref()
            .map_or(("", SlotShare::default()), |t| {
                (
                    t.id.as_str(),
                    SlotShare {
                        weight: t.weight,
                        cap: t.quotas.max_concurrent_batches,
                    },
                )
            })
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("index", &self.index)
            .field(
                "modules",
                &self
                    .chain
                    .load()
                    .modules
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Which pipeline consumes which topic.
pub type Routes = HashMap<String, Arc<Pipeline>>;
