//! Module uploads on a tenant's behalf: validated and activated like a
//! hot-reload drop, or refused with the old version kept.

use std::path::Path;

use serde::Serialize;

use super::registry::{Registry, canonical, check_module_size};
use crate::pipeline::version_label;
use crate::runtime::digest_of;

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
                let module = slot
                    .load_version(&self.runtime, pname, &entry.http, bytes.clone())
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
