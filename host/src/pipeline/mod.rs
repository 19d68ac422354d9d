//! Pipelines: a chain of modules between a set of topics and an index.

pub mod chain;
pub mod dispatch;
pub mod provenance;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use chain::{ChainOutput, Failure, OutputDoc, run_chain, validate_document};
pub use dispatch::{DocumentSink, dispatch_outputs};
pub use provenance::{Chain, version_label};

use crate::telemetry::PipelineMetrics;

/// A running pipeline. Its module chain is swappable: a batch loads the
/// chain once when it starts and finishes on that version.
pub struct Pipeline {
    pub name: Arc<str>,
    pub index: Arc<str>,
    pub dead_letter_topic: Arc<str>,
    pub chain: ArcSwap<Chain>,
    pub metrics: PipelineMetrics,
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
