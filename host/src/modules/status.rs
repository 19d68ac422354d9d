//! What the admin API reads and sets of the running pipelines: their
//! status (run state, modules, lag), the tenants, pause and resume.

use std::collections::BTreeMap;

use serde::Serialize;

use super::registry::Registry;
use super::{LoadError, ModuleStatus};
use crate::config::Tenant;
use crate::pipeline::ControlStatus;

/// One pipeline as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    pub name: String,
    /// `None` on a single-tenant host.
    pub tenant: Option<String>,
    pub topics: Vec<String>,
    pub index: String,
    pub dead_letter_topic: String,
    #[serde(flatten)]
    pub control: ControlStatus,
    pub records_consumed: u64,
    pub batches: u64,
    /// Records waiting in Kafka for this pipeline (its topics' consumer
    /// lag, from librdkafka's statistics every 5 s); `None` until known.
    pub lag: Option<i64>,
    pub modules: Vec<ModuleStatus>,
    /// Module loads that were refused, newest state per module.
    pub last_errors: Vec<LoadError>,
}

impl Registry {
    /// Tenants as configured, by id.
    pub fn tenants(&self) -> BTreeMap<String, Tenant> {
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Pipelines with their run state and modules; only `tenant`'s when
    /// given.
    pub async fn pipelines(&self, tenant: Option<&str>) -> Vec<PipelineStatus> {
        let modules = self.status();
        // A tenant sees its module paths inside its folder only.
        let owner = tenant.and_then(|t| self.tenants().remove(t));
        let entries = self.entries();
        entries
            .values()
            .filter(|e| {
                tenant.is_none() || e.pipeline.tenant.as_ref().map(|t| t.id.as_str()) == tenant
            })
            .map(|e| {
                let name = e.pipeline.name.to_string();
                let mods: Vec<ModuleStatus> = modules
                    .iter()
                    .filter(|m| m.pipeline == name)
                    .cloned()
                    .map(|m| match &owner {
                        Some(t) => m.relative_to(&t.modules_dir),
                        None => m,
                    })
                    .collect();
                PipelineStatus {
                    tenant: e.pipeline.tenant.as_ref().map(|t| t.id.clone()),
                    topics: e.config.topics.clone(),
                    index: e.pipeline.index.to_string(),
                    dead_letter_topic: e.pipeline.dead_letter_topic.to_string(),
                    control: e.pipeline.control.status(),
                    records_consumed: e.pipeline.metrics.records_consumed.get(),
                    batches: e.pipeline.metrics.batches.get(),
                    lag: self.metrics.lag_of(&e.config.topics),
                    last_errors: mods.iter().filter_map(|m| m.last_error.clone()).collect(),
                    modules: mods,
                    name,
                }
            })
            .collect()
    }

    /// Pauses or resumes a pipeline. `None` if there is no such pipeline;
    /// otherwise whether the state changed.
    pub async fn set_paused(&self, pipeline: &str, paused: bool) -> Option<bool> {
        let entries = self.entries();
        let entry = entries.get(pipeline)?;
        let changed = entry.pipeline.control.set_paused(paused);
        if changed {
            tracing::info!(
                pipeline,
                paused,
                "pipeline {}",
                if paused { "paused" } else { "resumed" }
            );
        }
        Some(changed)
    }
}
