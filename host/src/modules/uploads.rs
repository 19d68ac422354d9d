//! What the admin API does to the registry on a tenant's behalf: status of
//! its pipelines, pause/resume, and module uploads that are validated and
//! activated like a hot-reload drop.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::registry::{Registry, canonical, check_module_size};
use super::{LoadError, ModuleStatus};
use crate::config::Tenant;
use crate::pipeline::{ControlStatus, version_label};
use crate::runtime::digest_of;

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

/// Why an upload was not accepted; nothing was written or activated.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no tenant `{0}`")]
    UnknownTenant(String),
    #[error("`{0}` is not a module name: use 1-64 of a-z, 0-9, '-' and '_'")]
    InvalidName(String),
    #[error("module is {len} bytes, over the tenant's max_module_bytes ({limit})")]
    TooLarge { len: usize, limit: usize },
    #[error("{0}")]
    Rejected(String),
    #[error("storing the module: {0}")]
    Io(#[from] std::io::Error),
}

/// What an accepted upload did.
#[derive(Debug, Clone, Serialize)]
pub struct UploadReport {
    pub tenant: String,
    pub module: String,
    pub digest: String,
    pub bytes: usize,
    /// `pipeline/module` slots now running this version (empty: stored for
    /// later use, no pipeline of the tenant lists it yet).
    pub activated: Vec<String>,
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
        let entries = self.entries.lock().await;
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
        let entries = self.entries.lock().await;
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

    /// Stores `bytes` as the tenant's module `name` and activates it in
    /// every pipeline slot that uses that file — only if it compiles,
    /// matches the world and passes `init` with each slot's settings.
    /// Otherwise nothing is written and the running versions stay.
    pub async fn upload_module(
        &self,
        tenant: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<UploadReport, UploadError> {
        let owner = self
            .tenants()
            .remove(tenant)
            .ok_or_else(|| UploadError::UnknownTenant(tenant.into()))?;
        let path = owner
            .module_path(name)
            .ok_or_else(|| UploadError::InvalidName(name.into()))?;
        if bytes.len() > owner.quotas.max_module_bytes {
            return Err(UploadError::TooLarge {
                len: bytes.len(),
                limit: owner.quotas.max_module_bytes,
            });
        }
        std::fs::create_dir_all(&owner.modules_dir)?;
        let path = canonical(&path);
        let digest = digest_of(&bytes);
        let mut entries = self.entries.lock().await;
        // Load for every slot first; commit only if all of them load.
        let mut loaded = Vec::new();
        for (pname, entry) in entries.iter() {
            if entry.pipeline.tenant.as_ref().map(|t| t.id.as_str()) != Some(tenant) {
                continue;
            }
            for (i, slot) in entry
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.path == path)
            {
                check_module_size(&entry.config, bytes.len()).map_err(UploadError::Rejected)?;
                let module = self
                    .runtime
                    .load_with(
                        pname,
                        &slot.name,
                        bytes.clone(),
                        slot.settings.clone(),
                        Arc::clone(&entry.http),
                        slot.active().module.options().clone(),
                    )
                    .await
                    .map_err(|e| {
                        self.metrics.module_reload(pname, &slot.name, "rejected");
                        UploadError::Rejected(e.to_string())
                    })?;
                loaded.push((pname.clone(), i, module));
            }
        }
        if loaded.is_empty() {
            self.runtime
                .check_component(name, bytes.clone())
                .await
                .map_err(|e| UploadError::Rejected(e.to_string()))?;
        }
        write_atomically(&path, &bytes)?;
        let mut activated = Vec::new();
        for (pname, i, module) in loaded {
            let entry = entries.get_mut(&pname).expect("held under the lock");
            let slot = &mut entry.slots[i];
            tracing::info!(pipeline = %pname, module = %slot.name, version = %version_label(&module), "module uploaded and activated");
            self.metrics.module_reload(&pname, &slot.name, "ok");
            activated.push(format!("{pname}/{}", slot.name));
            slot.activate(module, self.keep);
            entry.publish();
        }
        drop(entries);
        self.refresh_status().await;
        Ok(UploadReport {
            tenant: tenant.into(),
            module: name.into(),
            digest,
            bytes: bytes.len(),
            activated,
        })
    }
}

/// Writes `bytes` next to `path` and renames it into place, so the file
/// watcher never sees half a module.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("wasm.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
