//! Reads the control topic: to its end at start (the state a host starts
//! from), then follows it, applying each change through the registry's
//! own paths: uploads, rollback, pause, tenant files and config reload.
//!
//! The reader is an assigned consumer (no group: every host reads the
//! whole partition from the beginning) on its own thread; the end of the
//! topic is librdkafka's partition EOF, which tansu and Kafka both report
//! from the fetch's high watermark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::record::{ControlChange, ModuleRecord};
use super::state::{ChunkLimits, ControlState, short};
use super::{Refusal, Shared};
use crate::config::{Config, FLEET_MARKER, Tenant};
use crate::modules::{Registry, ReloadRequest, store_module_file};

/// What the reader thread passes on.
pub(super) enum ReaderEvent {
    Record {
        offset: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    },
    /// The partition's end: every record written so far was passed on.
    End,
    Reachable(Result<(), String>),
}

/// How often the reader checks that the broker answers.
const PROBE_EVERY: Duration = Duration::from_secs(3);

pub(super) fn reader_config(config: &Config) -> ClientConfig {
    let mut cc = ClientConfig::new();
    for (k, v) in config.kafka.consumer_props() {
        cc.set(k, v);
    }
    cc.remove("group.instance.id");
    cc.set("bootstrap.servers", &config.kafka.brokers)
        // Never joins or commits: assigned, read from the beginning.
        .set(
            "group.id",
            format!("{}-control-reader", config.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100");
    cc
}

/// Starts the reader thread; it stops when `stop` is set or the
/// receiver is gone.
pub(super) fn spawn_reader(
    cc: ClientConfig,
    topic: String,
    tx: mpsc::UnboundedSender<ReaderEvent>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer<ReaderContext> = cc.create_with_context(ReaderContext)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    Ok(std::thread::Builder::new()
        .name("weir-control".into())
        .spawn(move || {
            let mut probed = Instant::now() - PROBE_EVERY;
            while !stop.load(Ordering::Relaxed) {
                if probed.elapsed() >= PROBE_EVERY {
                    probed = Instant::now();
                    let r = consumer
                        .fetch_metadata(Some(&topic), Duration::from_secs(2))
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    if tx.send(ReaderEvent::Reachable(r)).is_err() {
                        return;
                    }
                }
                let event = match consumer.poll(Duration::from_millis(200)) {
                    None => continue,
                    Some(Ok(m)) => ReaderEvent::Record {
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    },
                    Some(Err(KafkaError::PartitionEOF(_))) => ReaderEvent::End,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "control topic read");
                        continue;
                    }
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
        })?)
}

/// The reader's client context: the end of the partition is how the
/// reader knows it caught up, not an error to log.
struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF);
        if !eof {
            tracing::warn!(error = %error, reason, "control topic reader");
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// Applies control records to this host.
pub struct Follower {
    pub(super) shared: Arc<Shared>,
    pub(super) rx: mpsc::UnboundedReceiver<ReaderEvent>,
    pub(super) state: ControlState,
    /// The config the host started with (tenants folder, defaults).
    pub(super) config: Config,
    pub(super) limits: ChunkLimits,
    /// Offset of the last record read (applied or, before start, held).
    pub(super) last: i64,
}

impl Follower {
    /// Reads until the topic's end (within `timeout`), holding every
    /// change in the state; nothing is applied yet.
    pub(super) async fn catch_up(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "control topic `{}`: not read to its end within control.apply_timeout ({}); last error: {}",
                        self.shared.topic,
                        humantime::format_duration(timeout),
                        self.shared.last_error().unwrap_or_else(|| "none".into())
                    )
                })?
                .ok_or_else(|| anyhow::anyhow!("control topic reader stopped"))?;
            match event {
                ReaderEvent::Record { offset, key, value } => {
                    self.last = offset;
                    if let Some(change) = self.parse(offset, key, value) {
                        self.hold(change);
                    }
                }
                ReaderEvent::End => {
                    self.shared.set_applied(self.last);
                    return Ok(());
                }
                ReaderEvent::Reachable(r) => self.shared.set_reachable(r),
            }
        }
    }

    fn parse(
        &self,
        offset: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    ) -> Option<ControlChange> {
        let parsed = ControlChange::parse(key.as_deref().unwrap_or_default(), value.as_deref());
        match parsed {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(offset, error = %e, "control record refused");
                self.shared.refused(offset, Refusal::bad(e.to_string()));
                None
            }
        }
    }

    /// Takes a change into the state (before start, or before applying).
    /// Returns a refusal for a chunk that does not fit.
    fn hold(&mut self, change: ControlChange) -> Option<String> {
        match change {
            ControlChange::Chunk {
                tenant,
                digest,
                index,
                header,
                bytes,
            } => {
                if let Err(e) =
                    self.state
                        .add_chunk(&tenant, &digest, index, header, bytes, self.limits)
                {
                    tracing::warn!(tenant, digest = short(&digest), error = %e, "module chunk refused");
                    return Some(e);
                }
            }
            ControlChange::Module {
                tenant,
                name,
                record,
            } => {
                self.state.modules.insert((tenant, name), record);
            }
            ControlChange::Tenant { id, text: Some(t) } => {
                self.state.tenants.insert(id, t);
            }
            ControlChange::Tenant { id, text: None } => self.state.forget_tenant(&id),
            ControlChange::Paused { pipeline, paused } => {
                self.state.paused.insert(pipeline, paused);
            }
            ControlChange::Rollback {
                pipeline,
                module,
                digest,
            } => {
                self.state.rollbacks.insert((pipeline, module), digest);
            }
        }
        *self
            .shared
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = self.state.modules.clone();
        None
    }

    fn tenants_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self
            .config
            .tenants_dir()
            .ok_or_else(|| anyhow::anyhow!("control.mode = \"kafka\" needs tenants.dir"))?;
        std::fs::create_dir_all(&dir)?;
        Ok(std::fs::canonicalize(&dir)?)
    }

    /// Before the registry is built: writes every tenant's module files
    /// and tenant file as the topic says (each module checked against its
    /// tenant's size and store limits and its digest), and removes the
    /// tenant files this host wrote for tenants the topic no longer has.
    /// Tenant files not written from the topic are left alone.
    pub fn materialize(&self) -> anyhow::Result<()> {
        let dir = self.tenants_dir()?;
        for (id, text) in &self.state.tenants {
            match self.config.tenant_from_text(id, text) {
                Ok(tenant) => self.write_modules(&tenant),
                Err(p) => {
                    tracing::error!(tenant = %id, problem = %p, "tenant in the control topic refused")
                }
            }
            write_tenant_file(&dir, id, text)?;
        }
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            let Some(id) = path
                .file_stem()
                .filter(|_| path.extension().is_some_and(|x| x == "toml"))
                .map(|s| s.to_string_lossy().into_owned())
            else {
                continue;
            };
            if self.state.tenants.contains_key(&id) {
                continue;
            }
            if std::fs::read_to_string(&path).is_ok_and(|t| t.starts_with(FLEET_MARKER)) {
                tracing::info!(tenant = %id, "tenant no longer in the control topic; its file is removed");
                std::fs::remove_file(&path)?;
            } else {
                tracing::warn!(file = %path.display(), "tenant file not in the control topic: this host alone runs it (`weir control import` puts it in the topic)");
            }
        }
        Ok(())
    }

    /// Writes `tenant`'s modules from the topic into its modules folder.
    /// A version that is incomplete or corrupted is refused; in its place
    /// goes the newest intact version the record lists, as a host that
    /// ran one keeps running it.
    fn write_modules(&self, tenant: &Tenant) {
        for ((_, name), record) in self.tenant_modules(&tenant.id) {
            let active = self.state.module_bytes(&tenant.id, &record.digest);
            let bytes = match active {
                Ok(b) => Ok(b),
                Err(e) => {
                    tracing::error!(tenant = %tenant.id, module = %name, digest = short(&record.digest), error = %e, "module version in the control topic refused");
                    record
                        .versions
                        .iter()
                        .rev()
                        .find_map(|d| self.state.module_bytes(&tenant.id, d).ok())
                        .ok_or(e)
                }
            };
            let written =
                bytes.and_then(|b| store_module_file(tenant, &name, &b).map_err(|e| e.to_string()));
            if let Err(e) = written {
                tracing::error!(tenant = %tenant.id, module = %name, error = %e, "module not written; the file on disk (if any) stays");
            }
        }
    }

    fn tenant_modules(&self, tenant: &str) -> Vec<((String, String), ModuleRecord)> {
        self.state
            .modules
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// After the registry is built from the materialized files: the run
    /// state (pauses, operator rollbacks) and the refusals it shows.
    pub async fn settle(&mut self, registry: &Registry) {
        for (pipeline, paused) in self.state.paused.clone() {
            registry.set_paused(&pipeline, paused).await;
        }
        for ((pipeline, module), digest) in self.state.rollbacks.clone() {
            if let Err(e) = registry.rollback(&pipeline, &module, Some(&digest)).await {
                tracing::warn!(pipeline, module, error = %e, "rollback in the control topic not applied");
            }
        }
        for ((tenant, name), record) in self.state.modules.clone() {
            if let Err(e) = self.state.module_bytes(&tenant, &record.digest) {
                registry.refuse_upload(&tenant, &name, &record.digest, &e);
            }
        }
    }

    /// Follows the topic until `shutdown`, applying each change.
    pub async fn run(
        mut self,
        registry: Arc<Registry>,
        reload: mpsc::UnboundedSender<ReloadRequest>,
        shutdown: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = self.rx.recv() => match e { Some(e) => e, None => break },
            };
            match event {
                ReaderEvent::Record { offset, key, value } => {
                    self.last = offset;
                    let outcome = match self.parse(offset, key, value) {
                        None => continue,
                        Some(change) => self.apply(change, &registry, &reload).await,
                    };
                    if let Err(r) = &outcome {
                        tracing::warn!(offset, error = %r.message, "control change refused on this host");
                    }
                    self.shared.applied(offset, outcome);
                }
                ReaderEvent::End => self.shared.set_applied(self.last),
                ReaderEvent::Reachable(r) => self.shared.set_reachable(r),
            }
        }
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    async fn apply(
        &mut self,
        change: ControlChange,
        registry: &Registry,
        reload: &mpsc::UnboundedSender<ReloadRequest>,
    ) -> Result<(), Refusal> {
        match change.clone() {
            ControlChange::Chunk { .. } => match self.hold(change) {
                Some(e) => Err(Refusal::bad(e)),
                None => Ok(()),
            },
            ControlChange::Module {
                tenant,
                name,
                record,
            } => {
                self.hold(change);
                self.apply_module(registry, &tenant, &name, &record).await
            }
            ControlChange::Tenant { id, text } => {
                self.hold(change);
                self.apply_tenant(registry, reload, &id, text.as_deref())
                    .await
            }
            ControlChange::Paused { pipeline, paused } => {
                self.hold(change);
                // A pipeline not running here yet takes it when it starts.
                registry.set_paused(&pipeline, paused).await;
                Ok(())
            }
            ControlChange::Rollback {
                pipeline,
                module,
                digest,
            } => {
                self.hold(change);
                registry
                    .rollback(&pipeline, &module, Some(&digest))
                    .await
                    .map(|_| ())
                    .map_err(|e| Refusal::conflict(e.to_string()))
            }
        }
    }

    /// Runs version `record.digest` of the tenant's module `name`: by
    /// rollback where every slot keeps it, else as an upload (every check
    /// an upload gets); refused (the running version stays, its status
    /// shows why) when the topic's copy is incomplete or corrupted.
    async fn apply_module(
        &self,
        registry: &Registry,
        tenant: &str,
        name: &str,
        record: &ModuleRecord,
    ) -> Result<(), Refusal> {
        let Some(owner) = registry.tenants().remove(tenant) else {
            // Written to disk when the tenant is added.
            return Ok(());
        };
        let bytes = match self.state.module_bytes(tenant, &record.digest) {
            Ok(b) => b,
            Err(e) => {
                registry.refuse_upload(tenant, name, &record.digest, &e);
                return Err(Refusal::unprocessable(e));
            }
        };
        let Some(path) = owner.module_path(name) else {
            return Err(Refusal::bad(format!("`{name}` is not a module name")));
        };
        let path = path.display().to_string();
        let slots: Vec<_> = registry
            .status()
            .into_iter()
            .filter(|m| {
                m.path == path
                    && m.pipeline
                        .strip_prefix(tenant)
                        .is_some_and(|p| p.starts_with('.'))
            })
            .collect();
        if !slots.is_empty() && slots.iter().all(|s| s.active.digest == record.digest) {
            return Ok(());
        }
        if !slots.is_empty()
            && slots
                .iter()
                .all(|s| s.versions.iter().any(|v| v.digest == record.digest))
        {
            for s in &slots {
                registry
                    .rollback(&s.pipeline, &s.module, Some(&record.digest))
                    .await
                    .map_err(|e| Refusal::conflict(e.to_string()))?;
            }
            return Ok(());
        }
        match registry.upload_module(tenant, name, bytes).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = e.to_string();
                registry.refuse_upload(tenant, name, &record.digest, &message);
                Err(Refusal::unprocessable(message))
            }
        }
    }

    /// Writes (or removes) the tenant's file, its modules first, and
    /// reloads the config: the tenant file path of today, so a tenant file
    /// with a problem is refused alone and the tenant keeps running as it
    /// was.
    async fn apply_tenant(
        &self,
        registry: &Registry,
        reload: &mpsc::UnboundedSender<ReloadRequest>,
        id: &str,
        text: Option<&str>,
    ) -> Result<(), Refusal> {
        let dir = self
            .tenants_dir()
            .map_err(|e| Refusal::unavailable(e.to_string()))?;
        let file = dir.join(format!("{id}.toml"));
        let wanted = match text {
            Some(text) => {
                let tenant = self
                    .config
                    .tenant_from_text(id, text)
                    .map_err(|p| Refusal::bad(p.to_string()))?;
                self.write_modules(&tenant);
                write_tenant_file(&dir, id, text)
                    .map_err(|e| Refusal::unavailable(e.to_string()))?;
                Some(tenant)
            }
            None => {
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Refusal::unavailable(e.to_string())),
                }
                None
            }
        };
        let (tx, rx) = oneshot::channel();
        if reload.send(tx).is_err() {
            return Err(Refusal::unavailable("the config reloader is not running"));
        }
        let status = rx
            .await
            .map_err(|_| Refusal::unavailable("the config reloader stopped"))?;
        let running = registry.tenants().remove(id);
        match (wanted, running) {
            (None, None) => Ok(()),
            (Some(w), Some(r)) if w == r => {
                for (pipeline, paused) in &self.state.paused {
                    if pipeline.starts_with(&format!("{id}.")) {
                        registry.set_paused(pipeline, *paused).await;
                    }
                }
                Ok(())
            }
            _ => Err(Refusal::unprocessable(format!(
                "tenant `{id}` was not applied: {}",
                status
                    .last_error
                    .unwrap_or_else(|| "the config reload refused it".into())
            ))),
        }
    }
}

/// Writes `<dir>/<id>.toml` (marked as the topic's copy) if it differs.
fn write_tenant_file(dir: &Path, id: &str, text: &str) -> std::io::Result<()> {
    let path = dir.join(format!("{id}.toml"));
    let content = format!("{FLEET_MARKER}{text}");
    if std::fs::read_to_string(&path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let tmp = dir.join(format!(".{id}.toml.{}.tmp", std::process::id()));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, &path)
}

/// Outcomes kept for writers waiting on them.
pub(super) const OUTCOMES_KEPT: usize = 1024;

pub(super) type Outcomes = BTreeMap<i64, Result<(), Refusal>>;
