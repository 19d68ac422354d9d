//! A fleet's control plane, carried by a Kafka topic
//! (`control.mode = "kafka"`).
//!
//! Every host reads the control topic from the beginning at start
//! ([`Follower::catch_up`]), writes the tenants and modules it holds into
//! its tenants folder ([`Follower::materialize`]) before the pipelines are
//! built, and then follows it ([`Follower::run`]), applying each change
//! through the registry's own paths (upload, rollback, pause, config
//! reload). The admin API of any host writes changes to the topic through
//! [`Fleet`] and answers once its own host applied them (read-your-writes),
//! with the control offset. Record formats: [`record`].

mod follower;
mod import;
pub mod record;
mod state;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

pub use follower::Follower;
use follower::{OUTCOMES_KEPT, Outcomes};
pub use import::{ImportReport, import};
use record::{ControlKey, ModuleRecord, PausedRecord, RollbackRecord, TenantRecord};
use state::{ChunkLimits, ControlState};

use crate::config::Config;
use crate::modules::{ModuleStatus, Registry, UploadError, UploadReport};
use crate::runtime::digest_of;

/// Why a change was refused, with the HTTP status the API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn bad(m: impl Into<String>) -> Self {
        Self::new(400, m)
    }
    pub(crate) fn not_found(m: impl Into<String>) -> Self {
        Self::new(404, m)
    }
    pub(crate) fn conflict(m: impl Into<String>) -> Self {
        Self::new(409, m)
    }
    pub(crate) fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(422, m)
    }
    pub(crate) fn unavailable(m: impl Into<String>) -> Self {
        Self::new(503, m)
    }
}

/// Why a write through the control topic did not answer with success.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Refused before anything was written (the checks of an upload).
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// Refused before writing, or by this host when it applied the change.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the control topic is unavailable: {0}")]
    Unavailable(String),
    /// Written, but this host did not apply it in time.
    #[error(
        "written at control offset {0}, not yet applied on this host within control.apply_timeout"
    )]
    NotApplied(i64),
}

/// The control plane as `/v1/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ControlPlaneStatus {
    pub mode: &'static str,
    pub topic: String,
    /// Offset of the last control record this host applied (-1: none).
    pub applied_offset: i64,
    /// Whether the broker answered the last check.
    pub reachable: bool,
    pub last_error: Option<String>,
    /// Control records this host refused.
    pub refused: u64,
}

/// What the follower and the writers share.
pub(crate) struct Shared {
    topic: String,
    applied: watch::Sender<i64>,
    outcomes: Mutex<Outcomes>,
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    stop: Arc<AtomicBool>,
    /// The module records read so far (writers build on them).
    modules: Mutex<BTreeMap<(String, String), ModuleRecord>>,
    applied_gauge: Gauge<i64, AtomicI64>,
    reachable_gauge: Gauge<i64, AtomicI64>,
    refused: Counter,
}

impl Shared {
    fn set_applied(&self, offset: i64) {
        self.applied.send_if_modified(|a| {
            let newer = offset > *a;
            if newer {
                *a = offset;
            }
            newer
        });
        self.applied_gauge.set(*self.applied.borrow());
    }

    fn applied(&self, offset: i64, outcome: Result<(), Refusal>) {
        if outcome.is_err() {
            self.refused.inc();
        }
        {
            let mut o = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            o.insert(offset, outcome);
            while o.len() > OUTCOMES_KEPT {
                o.pop_first();
            }
        }
        self.set_applied(offset);
    }

    fn refused(&self, offset: i64, refusal: Refusal) {
        self.applied(offset, Err(refusal));
    }

    fn set_reachable(&self, r: Result<(), String>) {
        let ok = r.is_ok();
        if let Err(e) = r {
            if self.reachable.load(Ordering::Relaxed) {
                tracing::warn!(topic = %self.topic, error = %e, "control topic unreachable; running the last state");
            }
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        } else if !self.reachable.load(Ordering::Relaxed) {
            tracing::info!(topic = %self.topic, "control topic reachable");
        }
        self.reachable.store(ok, Ordering::Relaxed);
        self.reachable_gauge.set(i64::from(ok));
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A fleet host's handle on the control topic: writes changes and waits
/// for this host to apply them.
pub struct Fleet {
    shared: Arc<Shared>,
    producer: FutureProducer,
    config: Config,
}

impl Fleet {
    /// Creates the control topic if missing, starts reading it and reads
    /// it to its end (within `control.apply_timeout`). Registers the
    /// `weir_control_*` metrics.
    pub async fn connect(
        config: &Config,
        metrics: &mut prometheus_client::registry::Registry,
    ) -> anyhow::Result<(Arc<Fleet>, Follower)> {
        let topic = config.control.topic.clone();
        create_topic(config).await?;
        let shared = Arc::new(Shared {
            topic: topic.clone(),
            applied: watch::Sender::new(-1),
            outcomes: Mutex::new(BTreeMap::new()),
            reachable: AtomicBool::new(true),
            last_error: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            modules: Mutex::new(BTreeMap::new()),
            applied_gauge: Gauge::default(),
            reachable_gauge: Gauge::default(),
            refused: Counter::default(),
        });
        shared.applied_gauge.set(-1);
        shared.reachable_gauge.set(1);
        metrics.register(
            "weir_control_applied_offset",
            "Offset of the last control-topic record this host applied",
            shared.applied_gauge.clone(),
        );
        metrics.register(
            "weir_control_reachable",
            "1 while the control topic's broker answers, 0 while it does not (the host runs its last state)",
            shared.reachable_gauge.clone(),
        );
        metrics.register(
            "weir_control_refused",
            "Control-topic records this host refused (malformed, not the writer's, over quota, corrupted)",
            shared.refused.clone(),
        );
        let (tx, rx) = mpsc::unbounded_channel();
        follower::spawn_reader(
            follower::reader_config(config),
            topic,
            tx,
            Arc::clone(&shared.stop),
        )?;
        let producer = producer(config)?;
        let defaults = &config.tenants.defaults;
        let limits = ChunkLimits {
            max_module_bytes: config.admin.max_upload_bytes as u64,
            max_held_bytes: defaults
                .max_stored_module_bytes
                .max(defaults.max_module_bytes as u64)
                .saturating_mul(config.reload.keep_versions.max(1) as u64 + 1),
        };
        let mut follower = Follower {
            shared: Arc::clone(&shared),
            rx,
            state: ControlState::default(),
            config: config.clone(),
            limits,
            last: -1,
        };
        follower.catch_up(config.control.apply_timeout).await?;
        tracing::info!(topic = %config.control.topic, offset = *shared.applied.borrow(), "control topic read to its end");
        let fleet = Arc::new(Fleet {
            shared,
            producer,
            config: config.clone(),
        });
        Ok((fleet, follower))
    }

    pub fn status(&self) -> ControlPlaneStatus {
        ControlPlaneStatus {
            mode: "kafka",
            topic: self.shared.topic.clone(),
            applied_offset: *self.shared.applied.borrow(),
            reachable: self.shared.reachable.load(Ordering::Relaxed),
            last_error: self.shared.last_error(),
            refused: self.shared.refused.get(),
        }
    }

    /// Healthy while the broker answers; the detail is the last error.
    pub fn health(&self) -> (bool, Option<String>) {
        let reachable = self.shared.reachable.load(Ordering::Relaxed);
        (
            reachable,
            (!reachable).then(|| {
                format!(
                    "control topic unreachable, running the last state: {}",
                    self.shared.last_error().unwrap_or_default()
                )
            }),
        )
    }

    /// Stops the reader thread.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// Produces `records` in order (idempotent, acks=all); returns the
    /// offset of the last.
    async fn write(&self, records: Vec<(String, Option<Vec<u8>>)>) -> Result<i64, ControlError> {
        let delivered = produce_all(&self.producer, &self.shared.topic, &records);
        match tokio::time::timeout(self.config.control.apply_timeout, delivered).await {
            Ok(result) => result.map_err(ControlError::Unavailable),
            Err(_) => Err(ControlError::Unavailable(
                "not delivered within control.apply_timeout".into(),
            )),
        }
    }

    /// Waits until this host applied `offset`; its outcome there.
    async fn applied(&self, offset: i64) -> Result<i64, ControlError> {
        let mut rx = self.shared.applied.subscribe();
        let wait = rx.wait_for(|a| *a >= offset);
        match tokio::time::timeout(self.config.control.apply_timeout, wait).await {
            Ok(Ok(_)) => {}
            _ => return Err(ControlError::NotApplied(offset)),
        }
        let outcome = self
            .shared
            .outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&offset)
            .cloned();
        match outcome {
            Some(Err(r)) => Err(ControlError::Refused(r)),
            _ => Ok(offset),
        }
    }

    async fn write_and_apply(
        &self,
        records: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<i64, ControlError> {
        let offset = self.write(records).await?;
        self.applied(offset).await
    }

    fn module_record(&self, tenant: &str, name: &str) -> Option<ModuleRecord> {
        self.shared
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(tenant.to_string(), name.to_string()))
            .cloned()
    }

    /// A tenant's upload: checked here as an upload is (nothing written if
    /// refused), written as chunks and a module record, applied on every
    /// host. Returns the control offset and what this host activated.
    pub async fn upload(
        &self,
        registry: &Registry,
        tenant: &str,
        name: &str,
        bytes: Vec<u8>,
        by: Option<&str>,
    ) -> Result<(i64, UploadReport), ControlError> {
        let mut report = registry.check_upload(tenant, name, bytes.clone()).await?;
        let digest = digest_of(&bytes);
        let mut versions = self
            .module_record(tenant, name)
            .map(|r| r.versions)
            .unwrap_or_default();
        versions.retain(|d| *d != digest);
        versions.push(digest.clone());
        let keep = self
            .config
            .reload
            .keep_versions
            .clamp(1, record::MAX_VERSIONS);
        if versions.len() > keep {
            versions.drain(..versions.len() - keep);
        }
        let mut records: Vec<(String, Option<Vec<u8>>)> =
            record::chunk_records(tenant, &digest, &bytes, self.config.control.chunk_bytes, by)
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect();
        let module = ModuleRecord {
            by: by.map(str::to_string),
            digest: digest.clone(),
            versions,
        };
        records.push((
            ControlKey::Module {
                tenant: tenant.into(),
                name: name.into(),
            }
            .render(),
            Some(serde_json::to_vec(&module).expect("serializes")),
        ));
        let offset = self.write_and_apply(records).await?;
        let path = registry
            .tenants()
            .remove(tenant)
            .and_then(|t| t.module_path(name))
            .map(|p| p.display().to_string());
        report.activated = registry
            .status()
            .into_iter()
            .filter(|m| Some(&m.path) == path.as_ref() && m.active.digest == digest)
            .map(|m| format!("{}/{}", m.pipeline, m.module))
            .collect();
        Ok((offset, report))
    }

    /// Rolls module `module` of `pipeline` back (to the kept version whose
    /// digest starts with `to`, or the one before the active) on every
    /// host. A tenant's pipeline: its module record names the version; an
    /// operator pipeline: a rollback record.
    pub async fn rollback(
        &self,
        registry: &Registry,
        pipeline: &str,
        module: &str,
        to: Option<&str>,
        by: Option<&str>,
    ) -> Result<(i64, ModuleStatus), ControlError> {
        let not_found =
            || Refusal::not_found(format!("no module `{module}` in pipeline `{pipeline}`"));
        let status = registry
            .status()
            .into_iter()
            .find(|m| m.pipeline == pipeline && m.module == module)
            .ok_or_else(not_found)?;
        let target = match to {
            Some(prefix) => status
                .versions
                .iter()
                .rev()
                .find(|v| v.digest.starts_with(prefix))
                .ok_or_else(|| {
                    Refusal::conflict(format!(
                        "module `{module}` has no kept version matching `{prefix}`"
                    ))
                })?,
            None => status
                .versions
                .iter()
                .position(|v| v.digest == status.active.digest)
                .and_then(|i| i.checked_sub(1))
                .map(|i| &status.versions[i])
                .ok_or_else(|| {
                    Refusal::conflict(format!(
                        "module `{module}` has no earlier version to roll back to"
                    ))
                })?,
        }
        .digest
        .clone();
        let owner = registry
            .pipelines(None)
            .await
            .into_iter()
            .find(|p| p.name == pipeline)
            .and_then(|p| p.tenant);
        let (key, value) = match owner {
            Some(tenant) => {
                let dir = registry
                    .tenants()
                    .remove(&tenant)
                    .map(|t| t.modules_dir)
                    .ok_or_else(not_found)?;
                let name = std::path::Path::new(&status.path)
                    .strip_prefix(&dir)
                    .ok()
                    .and_then(|p| p.to_str())
                    .and_then(|p| p.strip_suffix(".wasm"))
                    .filter(|n| crate::config::valid_module_name(n))
                    .ok_or_else(|| {
                        Refusal::conflict(format!(
                            "module `{module}` is not a file `<name>.wasm` of the tenant's modules folder, so the control topic cannot name it"
                        ))
                    })?
                    .to_string();
                let mut record = self.module_record(&tenant, &name).ok_or_else(|| {
                    Refusal::conflict(format!(
                        "module `{name}` of tenant `{tenant}` is not in the control topic: upload it (or `weir control import`) first"
                    ))
                })?;
                if !record.versions.contains(&target) {
                    return Err(Refusal::conflict(format!(
                        "version {} of `{name}` is not in the control topic (it predates the fleet): upload it again",
                        state::short(&target)
                    ))
                    .into());
                }
                record.by = by.map(str::to_string);
                record.digest = target.clone();
                (
                    ControlKey::Module { tenant, name }.render(),
                    serde_json::to_vec(&record),
                )
            }
            None => (
                ControlKey::Rollback {
                    pipeline: pipeline.into(),
                    module: module.into(),
                }
                .render(),
                serde_json::to_vec(&RollbackRecord {
                    by: None,
                    digest: target.clone(),
                }),
            ),
        };
        let offset = self
            .write_and_apply(vec![(key, Some(value.expect("serializes")))])
            .await?;
        let status = registry
            .status()
            .into_iter()
            .find(|m| m.pipeline == pipeline && m.module == module)
            .ok_or_else(not_found)?;
        Ok((offset, status))
    }

    /// Pauses or resumes `pipeline` on every host; returns the control
    /// offset and whether this host's state changed.
    pub async fn set_paused(
        &self,
        registry: &Registry,
        pipeline: &str,
        paused: bool,
        by: Option<&str>,
    ) -> Result<(i64, bool), ControlError> {
        let before = registry
            .pipelines(None)
            .await
            .into_iter()
            .find(|p| p.name == pipeline)
            .ok_or_else(|| Refusal::not_found(format!("no pipeline `{pipeline}`")))?
            .control
            .paused;
        let value = serde_json::to_vec(&PausedRecord {
            by: by.map(str::to_string),
            paused,
        })
        .expect("serializes");
        let offset = self
            .write_and_apply(vec![(
                ControlKey::Paused(pipeline.into()).render(),
                Some(value),
            )])
            .await?;
        Ok((offset, before != paused))
    }

    /// Adds or replaces tenant `id` (its file's text) on every host. The
    /// text is checked here first as the tenant's file would be.
    pub async fn put_tenant(&self, id: &str, text: &str) -> Result<i64, ControlError> {
        let (tenant, pipelines) = self
            .config
            .tenant_pipelines_from_text(id, text)
            .map_err(|p| Refusal::bad(p.to_string()))?;
        // Every host must find the modules it names: in the topic (or,
        // for a tenant imported from this host, on its disk).
        for (name, p) in &pipelines {
            let short = name.strip_prefix(&format!("{id}.")).unwrap_or(name);
            for (i, m) in p.modules.iter().enumerate() {
                let module = m
                    .path
                    .strip_prefix(&tenant.modules_dir)
                    .ok()
                    .and_then(|p| p.to_str())
                    .and_then(|p| p.strip_suffix(".wasm"))
                    .unwrap_or_default();
                let in_topic = self.module_record(id, module).is_some();
                if !in_topic && !m.path.is_file() {
                    return Err(Refusal::conflict(format!(
                        "{}: pipelines.{short}.modules[{i}].path: `{}` is not in the control topic: upload the module first (add the tenant without this pipeline, upload, then add the pipeline)",
                        tenant.file.display(),
                        m.path.strip_prefix(&tenant.modules_dir).unwrap_or(&m.path).display()
                    ))
                    .into());
                }
            }
        }
        let value = serde_json::to_vec(&TenantRecord {
            by: None,
            text: text.into(),
        })
        .expect("serializes");
        self.write_and_apply(vec![(ControlKey::Tenant(id.into()).render(), Some(value))])
            .await
    }

    /// Removes tenant `id` from every host (a tombstone).
    pub async fn remove_tenant(&self, id: &str) -> Result<i64, ControlError> {
        self.write_and_apply(vec![(ControlKey::Tenant(id.into()).render(), None)])
            .await
    }
}

/// Produces `records` (key, value or tombstone) to partition 0 of
/// `topic`, in order; the offset of the last once all are delivered.
async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Option<Vec<u8>>)],
) -> Result<i64, String> {
    let mut deliveries = Vec::with_capacity(records.len());
    for (key, value) in records {
        let mut record = FutureRecord::<str, [u8]>::to(topic)
            .key(key.as_str())
            .partition(0);
        if let Some(v) = value {
            record = record.payload(v.as_slice());
        }
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| format!("control topic `{topic}`: {e}"))?;
        deliveries.push(delivery);
    }
    let mut last = -1;
    for d in deliveries {
        let delivery = d
            .await
            .map_err(|_| format!("control topic `{topic}`: delivery dropped"))?
            .map_err(|(e, _)| format!("control topic `{topic}`: {e}"))?;
        last = last.max(delivery.offset);
    }
    Ok(last)
}

pub(crate) fn producer(config: &Config) -> anyhow::Result<FutureProducer> {
    let mut cc = ClientConfig::new();
    for (k, v) in config.kafka.producer_props() {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", &config.kafka.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set(
            "message.max.bytes",
            (config.control.chunk_bytes + 64 * 1024).to_string(),
        );
    cc.create().context("creating the control-topic producer")
}

/// Creates the control topic (one partition, compacted) unless it exists.
pub async fn create_topic(config: &Config) -> anyhow::Result<()> {
    let mut cc = ClientConfig::new();
    for (k, v) in config.kafka.producer_props() {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", &config.kafka.brokers);
    let admin: AdminClient<_> = cc
        .create()
        .context("creating the control-topic admin client")?;
    let topic = &config.control.topic;
    let replication = TopicReplication::Fixed(config.control.replication_factor);
    let new = NewTopic::new(topic, 1, replication).set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&new], &options)
        .await
        .with_context(|| format!("control.topic: creating `{topic}`"))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic, "control topic created (1 partition, compacted)"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => anyhow::bail!("control.topic: creating `{topic}`: {code}"),
        }
    }
    Ok(())
}
