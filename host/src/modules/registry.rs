//! Every running pipeline's modules, the versions kept of each, and the
//! swaps between them (file change, config change, rollback).
//!
//! A swap builds a new [`Chain`] and stores it in the pipeline's `ArcSwap`:
//! the next batch uses it, batches in flight finish on the chain they
//! loaded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::config::{BreakerConfig, Config, PipelineConfig, Tenant};
use crate::pipeline::{Chain, Pipeline, PipelineControl, Routes, TenantShare, version_label};
use crate::runtime::{
    HttpPolicy, InstanceLimits, LoadedModule, ModuleError, ModuleOptions, OutboundHttp,
    WasmRuntime, digest_of,
};
use crate::telemetry::Metrics;

/// One version of a module that passed compile, world check and `init`.
#[derive(Clone)]
pub(super) struct Version {
    pub(super) module: Arc<LoadedModule>,
    loaded_at: SystemTime,
}

/// A rejected load, kept for status.
#[derive(Debug, Clone, Serialize)]
pub struct LoadError {
    pub message: String,
    /// sha256 of the rejected bytes (empty if the file couldn't be read).
    pub digest: String,
    pub at: String,
}

/// One module position in a pipeline's chain.
#[derive(Clone)]
pub(super) struct ModuleSlot {
    pub(super) name: String,
    /// Canonical path of the component file.
    pub(super) path: PathBuf,
    pub(super) settings: Vec<(String, String)>,
    /// Oldest first; at most `keep` entries.
    versions: Vec<Version>,
    active: usize,
    last_error: Option<LoadError>,
    /// Digest of the file content last acted on (loaded or rejected): a
    /// file event only matters when the content differs, so a rollback
    /// stays in force until the file really changes.
    file_digest: String,
}

impl ModuleSlot {
    /// Loads `bytes` as a new version of this slot: its settings, the
    /// pipeline's HTTP policy and the active version's limits.
    pub(super) async fn load_version(
        &self,
        runtime: &Arc<WasmRuntime>,
        pipeline: &str,
        http: &Arc<HttpPolicy>,
        bytes: Vec<u8>,
    ) -> Result<LoadedModule, ModuleError> {
        runtime
            .load_with(
                pipeline,
                &self.name,
                bytes,
                self.settings.clone(),
                Arc::clone(http),
                self.active().module.options().clone(),
            )
            .await
    }

    /// Records a load of the file content `digest` that was refused.
    pub(super) fn reject(&mut self, message: String, digest: &str) {
        self.file_digest = digest.to_string();
        self.last_error = Some(LoadError {
            message,
            digest: digest.to_string(),
            at: rfc3339(SystemTime::now()),
        });
    }

    pub(super) fn active(&self) -> &Version {
        &self.versions[self.active]
    }

    /// Makes `module` the active version; an already-kept version becomes
    /// active again rather than being stored twice.
    pub(super) fn activate(&mut self, module: LoadedModule, keep: usize) {
        self.file_digest = module.digest.clone();
        self.versions.retain(|v| v.module.digest != module.digest);
        self.versions.push(Version {
            module: Arc::new(module),
            loaded_at: SystemTime::now(),
        });
        if self.versions.len() > keep {
            let excess = self.versions.len() - keep;
            self.versions.drain(..excess);
        }
        self.active = self.versions.len() - 1;
        self.last_error = None;
    }
}

/// A pipeline with the state needed to rebuild its chain.
///
/// Slow work (compile, `describe`, `init`) happens on a copy taken under
/// the registry's lock and is committed under it again only if the entry
/// is still the one the work started from: `build` changes when the
/// pipeline is rebuilt (new settings, HTTP policy or limits: a module
/// loaded for the old one must not be activated), `revision` on every
/// change at all.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) config: PipelineConfig,
    pub(super) http: Arc<HttpPolicy>,
    pub(super) slots: Vec<ModuleSlot>,
    pub(super) build: u64,
    pub(super) revision: u64,
}

impl Entry {
    /// Stores the slots' active versions as the pipeline's chain.
    pub(super) fn publish(&mut self, revision: u64) {
        self.revision = revision;
        let modules = self
            .slots
            .iter()
            .map(|s| Arc::clone(&s.active().module))
            .collect();
        self.pipeline
            .chain
            .store(Arc::new(Chain::for_pipeline(modules, &self.config)));
    }
}

/// Refuses a module file over its tenant's `max_module_bytes`.
pub(super) fn check_module_size(p: &PipelineConfig, len: usize) -> Result<(), String> {
    match &p.tenant {
        Some(t) if len > t.quotas.max_module_bytes => Err(format!(
            "module is {len} bytes, over the tenant's max_module_bytes ({})",
            t.quotas.max_module_bytes
        )),
        _ => Ok(()),
    }
}

/// Why a new config's pipelines were not applied (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A pipeline's modules did not load; `tenant` is its tenant, if any.
    #[error("pipeline {pipeline}: {message}")]
    Pipeline {
        pipeline: String,
        tenant: Option<String>,
        message: String,
    },
    #[error(
        "pipelines changed {0} times while the new config loaded (uploads or rollbacks); the next change retries"
    )]
    Busy(usize),
}

/// What `weir modules status` shows for one module.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleStatus {
    pub pipeline: String,
    pub module: String,
    pub path: String,
    pub active: VersionStatus,
    /// Kept versions, oldest first (rollback targets).
    pub versions: Vec<VersionStatus>,
    pub last_error: Option<LoadError>,
}

impl ModuleStatus {
    /// The status as a tenant may see it: the module path relative to its
    /// modules folder, never the host's file system layout.
    pub fn relative_to(mut self, modules_dir: &Path) -> Self {
        // modules_dir is already canonical (the tenants folder is
        // canonicalized at load), as are the registry's module paths.
        let path = Path::new(&self.path);
        self.path = match path.strip_prefix(modules_dir) {
            Ok(p) => p.display().to_string(),
            Err(_) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionStatus {
    pub digest: String,
    pub label: String,
    pub declared_name: String,
    pub declared_version: String,
    pub loaded_at: String,
}

/// Why a rollback did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("no module `{module}` in pipeline `{pipeline}`")]
    NotFound { pipeline: String, module: String },
    #[error("module `{0}` has no earlier version to roll back to")]
    NoEarlier(String),
    #[error("module `{module}` has no kept version matching `{to}`")]
    NoMatch { module: String, to: String },
}

pub(super) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(super) fn canonical(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
        .map(|d| d.join(name))
        .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// The live set of pipelines and their module versions.
pub struct Registry {
    pub(super) runtime: Arc<WasmRuntime>,
    http: OutboundHttp,
    pub(super) metrics: Metrics,
    pub(super) keep: usize,
    routes: Arc<ArcSwap<Routes>>,
    /// Held only to read or swap entries, never across a load: nothing
    /// slow (compile, `describe`, `init`, file reads) happens under it.
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Source of `Entry::build` and `Entry::revision` stamps.
    stamps: AtomicU64,
    /// Serializes the changes one tenant makes (uploads) so two of them
    /// never race on the same pipeline; other tenants never wait on it.
    change_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Snapshot for status readers (no async lock on the admin path).
    status: Mutex<Vec<ModuleStatus>>,
    /// Running tenants (shared quotas), by id.
    tenant_runtimes: Mutex<HashMap<String, Arc<TenantShare>>>,
    /// Tenants as configured, by id (tokens, folders, quotas).
    pub(super) tenants: Mutex<BTreeMap<String, Tenant>>,
    /// Run state per pipeline name, kept across rebuilds.
    controls: Mutex<HashMap<String, Arc<PipelineControl>>>,
    breaker: Mutex<BreakerConfig>,
}

impl Registry {
    /// Loads every pipeline of `config`. Fails on the first bad module.
    pub async fn build(
        runtime: Arc<WasmRuntime>,
        http: OutboundHttp,
        metrics: Metrics,
        keep: usize,
        config: &Config,
    ) -> anyhow::Result<Arc<Self>> {
        let registry = Arc::new(Self {
            runtime,
            http,
            metrics,
            keep: keep.max(1),
            routes: Arc::new(ArcSwap::from_pointee(HashMap::new())),
            entries: Mutex::new(BTreeMap::new()),
            stamps: AtomicU64::new(1),
            change_locks: Mutex::new(HashMap::new()),
            status: Mutex::new(Vec::new()),
            tenant_runtimes: Mutex::new(HashMap::new()),
            tenants: Mutex::new(config.tenant_set.clone()),
            controls: Mutex::new(HashMap::new()),
            breaker: Mutex::new(config.tenants.breaker.clone()),
        });
        let mut entries = BTreeMap::new();
        for (name, p) in &config.pipelines {
            let entry = registry.build_entry(config, name, p, None).await?;
            entries.insert(name.clone(), entry);
        }
        registry.routes.store(Arc::new(routes_of(&entries)));
        *registry.entries() = entries;
        registry.refresh_status();
        Ok(registry)
    }

    /// The entries, for a short read or swap (never held across an await:
    /// the guard is not `Send`).
    pub(super) fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh `build`/`revision` stamp.
    pub(super) fn stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed)
    }

    /// The lock that serializes `tenant`'s own changes.
    pub(super) fn change_lock(&self, tenant: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            self.change_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(tenant.to_string())
                .or_default(),
        )
    }

    /// The topic → pipeline table the source reads.
    pub fn routes(&self) -> Arc<ArcSwap<Routes>> {
        Arc::clone(&self.routes)
    }

    pub fn runtime(&self) -> &Arc<WasmRuntime> {
        &self.runtime
    }

    /// Builds a pipeline entry, reusing loaded versions from `old` where the
    /// module (name, file, settings) is unchanged.
    async fn build_entry(
        &self,
        config: &Config,
        name: &str,
        p: &PipelineConfig,
        old: Option<&Entry>,
    ) -> anyhow::Result<Entry> {
        let tenant = p
            .tenant
            .as_ref()
            .map(|b| self.tenant_runtime(b))
            .transpose()?;
        let http = match &tenant {
            Some(t) => self.http.tenant_policy_for(name, p, &t.http)?,
            None => self.http.policy_for(name, p)?,
        };
        let options = ModuleOptions {
            limits: tenant
                .as_ref()
                .map(|t| InstanceLimits::for_tenant(self.runtime.config(), &t.quotas)),
            tenant: tenant.as_ref().map(|t| t.id.clone()),
            log_lines_per_second: tenant.as_ref().map(|t| t.quotas.log_lines_per_second),
        };
        let http_same = old.is_some_and(|o| {
            o.config.allowed_outbound_hosts == p.allowed_outbound_hosts
                && o.config.http == p.http
                && o.config.tenant == p.tenant
        });
        let mut slots = Vec::with_capacity(p.modules.len());
        for m in &p.modules {
            let path = canonical(&config.resolve(&m.path));
            let settings = m.settings();
            let reuse = old.filter(|_| http_same).and_then(|o| {
                o.slots
                    .iter()
                    .find(|s| s.name == m.name() && s.path == path && s.settings == settings)
            });
            if let Some(s) = reuse {
                slots.push(ModuleSlot {
                    name: s.name.clone(),
                    path: s.path.clone(),
                    settings: s.settings.clone(),
                    versions: s.versions.clone(),
                    active: s.active,
                    last_error: s.last_error.clone(),
                    file_digest: s.file_digest.clone(),
                });
                continue;
            }
            let bytes = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("reading module {}: {e}", path.display()))?;
            check_module_size(p, bytes.len())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let module = self
                .runtime
                .load_with(
                    name,
                    &m.name(),
                    bytes,
                    settings.clone(),
                    Arc::clone(&http),
                    options.clone(),
                )
                .await?;
            tracing::info!(pipeline = name, module = %module.name, version = %version_label(&module), "module loaded");
            slots.push(ModuleSlot {
                file_digest: module.digest.clone(),
                name: m.name(),
                path,
                settings,
                versions: vec![Version {
                    module: Arc::new(module),
                    loaded_at: SystemTime::now(),
                }],
                active: 0,
                last_error: None,
            });
        }
        let modules = slots
            .iter()
            .map(|s| Arc::clone(&s.active().module))
            .collect();
        let pipeline = Arc::new(Pipeline::assemble(
            name,
            p,
            modules,
            tenant,
            self.control(name),
            self.metrics.pipeline(name),
        ));
        let build = self.stamp();
        Ok(Entry {
            pipeline,
            config: p.clone(),
            http,
            slots,
            build,
            revision: build,
        })
    }

    /// Applies a new configuration's pipelines: unchanged ones stay, changed
    /// ones are rebuilt (reusing unchanged modules), added ones start,
    /// removed ones stop. All or nothing: if any module fails, nothing
    /// changes. Returns whether the set of consumed topics changed.
    ///
    /// Modules load on a copy of the entries, with no lock held; the result
    /// is committed only if no rebuilt pipeline changed meanwhile (an
    /// upload or rollback), else the rebuild starts over from the new state.
    pub async fn apply_config(&self, config: &Config) -> Result<bool, ApplyError> {
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            let snapshot = self.entries().clone();
            let mut next = BTreeMap::new();
            for (name, p) in &config.pipelines {
                match snapshot.get(name) {
                    Some(old) if old.config == *p => {}
                    old => {
                        let entry = self.build_entry(config, name, p, old).await.map_err(|e| {
                            ApplyError::Pipeline {
                                pipeline: name.clone(),
                                tenant: p.tenant.as_ref().map(|t| t.id.clone()),
                                message: format!("{e:#}"),
                            }
                        })?;
                        next.insert(name.clone(), entry);
                    }
                }
            }
            let mut entries = self.entries();
            let unchanged = |name: &String| {
                entries.get(name).map(|e| e.revision) == snapshot.get(name).map(|e| e.revision)
            };
            if !next.keys().all(unchanged) {
                continue;
            }
            // Commit: keep unchanged entries, take the rebuilt ones.
            let old_topics: Vec<String> = sorted_topics(&entries);
            let mut merged = BTreeMap::new();
            for name in config.pipelines.keys() {
                let entry = match next.remove(name) {
                    Some(e) => e,
                    None => entries.remove(name).expect("unchanged entries exist"),
                };
                merged.insert(name.clone(), entry);
            }
            for removed in entries.keys() {
                tracing::info!(pipeline = %removed, "pipeline removed");
            }
            *entries = merged;
            self.prune(&entries, config);
            self.routes.store(Arc::new(routes_of(&entries)));
            let changed = sorted_topics(&entries) != old_topics;
            drop(entries);
            self.refresh_status();
            return Ok(changed);
        }
        Err(ApplyError::Busy(ATTEMPTS))
    }

    /// Every module file in use (canonical paths).
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let entries = self.entries();
        let mut files: Vec<PathBuf> = entries
            .values()
            .flat_map(|e| e.slots.iter().map(|s| s.path.clone()))
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// A module file changed: load it for every slot that uses it and
    /// activate it where it loads. Returns how many pipelines swapped.
    ///
    /// The loads run with no lock held; each result is committed only to
    /// the pipeline build it was loaded for.
    pub async fn reload_file(&self, path: &Path) -> usize {
        let path = canonical(path);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                if self.watched_files().contains(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "module file unreadable or deleted; keeping the running version");
                }
                return 0;
            }
        };
        let digest = digest_of(&bytes);
        let targets: Vec<(
            String,
            u64,
            usize,
            ModuleSlot,
            PipelineConfig,
            Arc<HttpPolicy>,
        )> = self
            .entries()
            .iter()
            .flat_map(|(name, e)| {
                e.slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.path == path && s.file_digest != digest)
                    .map(|(i, s)| {
                        (
                            name.clone(),
                            e.build,
                            i,
                            s.clone(),
                            e.config.clone(),
                            Arc::clone(&e.http),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut results = Vec::with_capacity(targets.len());
        for (name, build, i, slot, config, http) in targets {
            let result = match check_module_size(&config, bytes.len()) {
                Err(message) => Err(message),
                Ok(()) => slot
                    .load_version(&self.runtime, &name, &http, bytes.clone())
                    .await
                    .map_err(|e| e.to_string()),
            };
            results.push((name, build, i, result));
        }
        let mut swapped = BTreeMap::new();
        let mut entries = self.entries();
        for (name, build, i, result) in results {
            let Some(entry) = entries.get_mut(&name).filter(|e| e.build == build) else {
                continue; // rebuilt meanwhile; the new build read the file itself
            };
            let slot = &mut entry.slots[i];
            match result {
                Ok(module) => {
                    tracing::info!(pipeline = %name, module = %slot.name, version = %version_label(&module), "module swapped");
                    self.metrics.module_reload(&name, &slot.name, "ok");
                    slot.activate(module, self.keep);
                    swapped.insert(name, ());
                }
                Err(e) => {
                    tracing::error!(pipeline = %name, module = %slot.name, error = %e, "module rejected; the running version stays");
                    self.metrics.module_reload(&name, &slot.name, "rejected");
                    slot.reject(e, &digest);
                }
            }
        }
        for name in swapped.keys() {
            let revision = self.stamp();
            if let Some(entry) = entries.get_mut(name) {
                entry.publish(revision);
            }
        }
        drop(entries);
        self.refresh_status();
        swapped.len()
    }

    /// Re-activates a kept version: the one whose digest starts with `to`,
    /// or the one before the active version.
    pub async fn rollback(
        &self,
        pipeline: &str,
        module: &str,
        to: Option<&str>,
    ) -> Result<ModuleStatus, RollbackError> {
        let revision = self.stamp();
        let mut entries = self.entries();
        let not_found = || RollbackError::NotFound {
            pipeline: pipeline.into(),
            module: module.into(),
        };
        let entry = entries.get_mut(pipeline).ok_or_else(not_found)?;
        let slot = entry
            .slots
            .iter_mut()
            .find(|s| s.name == module)
            .ok_or_else(not_found)?;
        let target = match to {
            Some(prefix) => slot
                .versions
                .iter()
                .rposition(|v| v.module.digest.starts_with(prefix))
                .ok_or_else(|| RollbackError::NoMatch {
                    module: module.into(),
                    to: prefix.into(),
                })?,
            None => slot
                .active
                .checked_sub(1)
                .ok_or_else(|| RollbackError::NoEarlier(module.into()))?,
        };
        slot.active = target;
        tracing::info!(pipeline, module, version = %version_label(&slot.active().module), "module rolled back");
        self.metrics.module_reload(pipeline, module, "rollback");
        entry.publish(revision);
        drop(entries);
        self.refresh_status();
        self.status()
            .into_iter()
            .find(|s| s.pipeline == pipeline && s.module == module)
            .ok_or_else(not_found)
    }

    /// The running tenant for `binding`, reused while it still matches.
    fn tenant_runtime(
        &self,
        binding: &crate::config::TenantBinding,
    ) -> anyhow::Result<Arc<TenantShare>> {
        let mut all = self
            .tenant_runtimes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(t) = all.get(&binding.id).filter(|t| t.matches(binding)) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(TenantShare::new(binding)?);
        all.insert(binding.id.clone(), Arc::clone(&t));
        Ok(t)
    }

    /// The run state of pipeline `name`, created on first use.
    fn control(&self, name: &str) -> Arc<PipelineControl> {
        let breaker = self
            .breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Arc::clone(
            self.controls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(PipelineControl::new(breaker))),
        )
    }

    /// After a config change: forget removed pipelines' and tenants' state.
    fn prune(&self, entries: &BTreeMap<String, Entry>, config: &Config) {
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| entries.contains_key(name));
        self.tenant_runtimes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| config.tenant_set.contains_key(id));
        self.change_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| config.tenant_set.contains_key(id));
        *self.tenants.lock().unwrap_or_else(|e| e.into_inner()) = config.tenant_set.clone();
        *self.breaker.lock().unwrap_or_else(|e| e.into_inner()) = config.tenants.breaker.clone();
    }

    pub(super) fn refresh_status(&self) {
        let entries = self.entries();
        let version = |v: &Version| VersionStatus {
            digest: v.module.digest.clone(),
            label: version_label(&v.module),
            declared_name: v.module.info.name.clone(),
            declared_version: v.module.info.version.clone(),
            loaded_at: rfc3339(v.loaded_at),
        };
        let status = entries
            .iter()
            .flat_map(|(name, e)| {
                e.slots.iter().map(move |s| ModuleStatus {
                    pipeline: name.clone(),
                    module: s.name.clone(),
                    path: s.path.display().to_string(),
                    active: version(s.active()),
                    versions: s.versions.iter().map(version).collect(),
                    last_error: s.last_error.clone(),
                })
            })
            .collect();
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// Every module of every pipeline.
    pub fn status(&self) -> Vec<ModuleStatus> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn routes_of(entries: &BTreeMap<String, Entry>) -> Routes {
    let mut routes = HashMap::new();
    for e in entries.values() {
        for t in &e.config.topics {
            routes.insert(t.clone(), Arc::clone(&e.pipeline));
        }
    }
    routes
}

fn sorted_topics(entries: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut t: Vec<String> = entries
        .values()
        .flat_map(|e| e.config.topics.iter().cloned())
        .collect();
    t.sort();
    t
}
