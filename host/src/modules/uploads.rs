//! Module uploads on a tenant's behalf: validated and activated like a
//! hot-reload drop, or refused with the old version kept.
//!
//! Compile, `describe` and `init` of an upload run with no registry lock
//! held: the tenant's slots are copied, the module is loaded for each copy,
//! and the results are committed in one short critical section only if
//! those pipelines were not rebuilt meanwhile (else the loads start over).
//! The tenant's own uploads are serialized by its change lock, so other
//! tenants' requests never wait on an upload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::registry::{Entry, ModuleSlot, Registry, canonical, check_module_size};
use crate::config::{PipelineConfig, Tenant};
use crate::pipeline::version_label;
use crate::runtime::{HttpPolicy, LoadedModule, digest_of};

/// Why an upload was not accepted; nothing was written or activated.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no tenant `{0}`")]
    UnknownTenant(String),
    #[error("`{0}` is not a module name: use 1-64 of a-z, 0-9, '-' and '_'")]
    InvalidName(String),
    #[error("module is {len} bytes, over the tenant's max_module_bytes ({limit})")]
    TooLarge { len: usize, limit: usize },
    /// The tenant's modules folder is full: `quota` is the key named.
    #[error("{reason}, over the tenant's {quota} ({limit})")]
    StoreFull {
        quota: &'static str,
        limit: u64,
        reason: String,
    },
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

/// One slot the upload loads into, copied from the registry with the
/// pipeline build it belongs to.
struct Target {
    pipeline: String,
    build: u64,
    index: usize,
    slot: ModuleSlot,
    config: PipelineConfig,
    http: Arc<HttpPolicy>,
}

/// Times the loads start over when a pipeline is rebuilt under them.
const ATTEMPTS: usize = 3;

impl Registry {
    /// Stores `bytes` as the tenant's module `name` and activates it in
    /// every pipeline slot that uses that file — only if it compiles,
    /// matches the world and passes `init` with each slot's settings, and
    /// fits the tenant's stored-module caps. Otherwise nothing is written
    /// and the running versions stay.
    pub async fn upload_module(
        &self,
        tenant: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<UploadReport, UploadError> {
        self.load_upload(tenant, name, bytes, true).await
    }

    /// Everything [`Registry::upload_module`] checks (name, size, stored
    /// caps, compile, world, `init` in every slot that uses the file),
    /// with nothing written or activated: a fleet host checks an upload
    /// before it writes it to the control topic.
    pub async fn check_upload(
        &self,
        tenant: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<UploadReport, UploadError> {
        self.load_upload(tenant, name, bytes, false).await
    }

    /// Records that the tenant's module `name` (content `digest`) was
    /// refused before it could load (a fleet host's incomplete or
    /// corrupted copy): every slot running that file keeps its version and
    /// shows the error. Returns the slots marked.
    pub fn refuse_upload(&self, tenant: &str, name: &str, digest: &str, message: &str) -> usize {
        let Some(path) = self
            .tenants()
            .remove(tenant)
            .and_then(|t| t.module_path(name))
        else {
            return 0;
        };
        let path = canonical(&path);
        let mut marked = 0;
        for t in self.upload_targets(tenant, &path) {
            if let Some(entry) = self.entries().get_mut(&t.pipeline) {
                self.metrics
                    .module_reload(&t.pipeline, &t.slot.name, "rejected");
                entry.slots[t.index].reject(message.to_string(), digest);
                marked += 1;
            }
        }
        self.refresh_status();
        marked
    }

    async fn load_upload(
        &self,
        tenant: &str,
        name: &str,
        bytes: Vec<u8>,
        commit: bool,
    ) -> Result<UploadReport, UploadError> {
        let owner = self
            .tenants()
            .remove(tenant)
            .ok_or_else(|| UploadError::UnknownTenant(tenant.into()))?;
        let path = module_path(&owner, name, bytes.len())?;
        // One upload of this tenant at a time: the store check and the
        // slots it loads into stay true until it commits.
        let serial = self.change_lock(tenant);
        let _serial = serial.lock().await;
        check_store(&owner, &path, bytes.len())?;
        std::fs::create_dir_all(&owner.modules_dir)?;
        let path = canonical(&path);
        let digest = digest_of(&bytes);
        let report = |activated| UploadReport {
            tenant: tenant.into(),
            module: name.into(),
            digest: digest.clone(),
            bytes: bytes.len(),
            activated,
        };
        for _ in 0..ATTEMPTS {
            let targets = self.upload_targets(tenant, &path);
            // Load for every slot first (no lock held); commit only if all
            // of them load.
            let mut loaded = Vec::with_capacity(targets.len());
            for t in &targets {
                check_module_size(&t.config, bytes.len()).map_err(UploadError::Rejected)?;
                let module = t
                    .slot
                    .load_version(&self.runtime, &t.pipeline, &t.http, bytes.clone())
                    .await
                    .map_err(|e| {
                        self.metrics
                            .module_reload(&t.pipeline, &t.slot.name, "rejected");
                        UploadError::Rejected(e.to_string())
                    })?;
                loaded.push(module);
            }
            if targets.is_empty() {
                self.runtime
                    .check_component(name, bytes.clone())
                    .await
                    .map_err(|e| UploadError::Rejected(e.to_string()))?;
            }
            if !commit {
                return Ok(report(Vec::new()));
            }
            if !self.still_current(&targets) {
                continue;
            }
            write_atomically(&path, &bytes)?;
            let Some(activated) = self.commit_upload(&targets, loaded) else {
                continue;
            };
            self.refresh_status();
            return Ok(report(activated));
        }
        Err(UploadError::Rejected(format!(
            "the tenant's pipelines were rebuilt {ATTEMPTS} times during the upload (config reloads); retry"
        )))
    }

    /// Copies of the tenant's slots that run the file at `path`.
    fn upload_targets(&self, tenant: &str, path: &Path) -> Vec<Target> {
        let entries = self.entries();
        let mut targets = Vec::new();
        for (pname, entry) in entries.iter() {
            if entry.pipeline.tenant.as_ref().map(|t| t.id.as_str()) != Some(tenant) {
                continue;
            }
            for (index, slot) in entry.slots.iter().enumerate() {
                if slot.path == path {
                    targets.push(Target {
                        pipeline: pname.clone(),
                        build: entry.build,
                        index,
                        slot: slot.clone(),
                        config: entry.config.clone(),
                        http: Arc::clone(&entry.http),
                    });
                }
            }
        }
        targets
    }

    /// Whether every target's pipeline is still the build it was copied from.
    fn still_current(&self, targets: &[Target]) -> bool {
        current(&self.entries(), targets)
    }

    /// Activates each loaded module in its slot, in one critical section;
    /// `None` (nothing activated) if a pipeline was rebuilt meanwhile.
    fn commit_upload(&self, targets: &[Target], loaded: Vec<LoadedModule>) -> Option<Vec<String>> {
        let mut entries = self.entries();
        if !current(&entries, targets) {
            return None;
        }
        let mut activated = Vec::new();
        for (t, module) in targets.iter().zip(loaded) {
            let revision = self.stamp();
            let entry = entries.get_mut(&t.pipeline).expect("checked above");
            let slot = &mut entry.slots[t.index];
            tracing::info!(pipeline = %t.pipeline, module = %slot.name, version = %version_label(&module), "module uploaded and activated");
            self.metrics.module_reload(&t.pipeline, &slot.name, "ok");
            activated.push(format!("{}/{}", t.pipeline, slot.name));
            slot.activate(module, self.keep);
            entry.publish(revision);
        }
        Some(activated)
    }
}

fn current(entries: &BTreeMap<String, Entry>, targets: &[Target]) -> bool {
    targets
        .iter()
        .all(|t| entries.get(&t.pipeline).is_some_and(|e| e.build == t.build))
}

/// Where tenant `owner`'s module `name` of `len` bytes goes, if the name
/// is one and the size within the tenant's `max_module_bytes`.
fn module_path(owner: &Tenant, name: &str, len: usize) -> Result<PathBuf, UploadError> {
    let path = owner
        .module_path(name)
        .ok_or_else(|| UploadError::InvalidName(name.into()))?;
    if len > owner.quotas.max_module_bytes {
        return Err(UploadError::TooLarge {
            len,
            limit: owner.quotas.max_module_bytes,
        });
    }
    Ok(path)
}

/// Writes `bytes` as tenant `owner`'s module `name` without loading it,
/// after the checks an upload gets before it loads (name, size, stored
/// caps); unchanged content is not rewritten. A fleet host fills a
/// tenant's modules folder this way before the tenant's pipelines load
/// (they load, and are checked, with the tenant's file).
pub fn store_module_file(owner: &Tenant, name: &str, bytes: &[u8]) -> Result<(), UploadError> {
    let path = module_path(owner, name, bytes.len())?;
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    check_store(owner, &path, bytes.len())?;
    std::fs::create_dir_all(&owner.modules_dir)?;
    write_atomically(&path, bytes)?;
    Ok(())
}

/// Refuses an upload that would take the tenant's modules folder over
/// `max_stored_modules` or `max_stored_module_bytes`. The file being
/// replaced (same name) does not count.
fn check_store(owner: &Tenant, path: &Path, len: usize) -> Result<(), UploadError> {
    let (mut count, mut bytes) = (0usize, 0u64);
    if let Ok(dir) = std::fs::read_dir(&owner.modules_dir) {
        for entry in dir.flatten() {
            let p = entry.path();
            if p == path || p.extension().is_none_or(|x| x != "wasm") {
                continue;
            }
            if let Ok(meta) = entry.metadata()
                && meta.is_file()
            {
                count += 1;
                bytes += meta.len();
            }
        }
    }
    let q = &owner.quotas;
    if count + 1 > q.max_stored_modules {
        return Err(UploadError::StoreFull {
            quota: "max_stored_modules",
            limit: q.max_stored_modules as u64,
            reason: format!("the tenant already stores {count} other modules"),
        });
    }
    let total = bytes + len as u64;
    if total > q.max_stored_module_bytes {
        return Err(UploadError::StoreFull {
            quota: "max_stored_module_bytes",
            limit: q.max_stored_module_bytes,
            reason: format!(
                "stored modules would take {total} bytes ({bytes} stored + {len} uploaded)"
            ),
        });
    }
    Ok(())
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
