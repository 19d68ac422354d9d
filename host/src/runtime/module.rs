//! Compiling, validating and pre-instantiating a module (`ModulePre`), and
//! running one batch through it in a fresh Store.

use std::sync::{Arc, Weak};

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{Compiled, ModulePre, guest, types, v02};
use super::ctx::ModuleCtx;
use super::doc::HeldDoc;
use super::engine::WasmRuntime;
use super::http::HttpPolicy;
use super::limits::{InstanceLimits, LimitExceeded};
use super::log::LogContext;
use crate::event::SourceRecord;

/// How a module is loaded beyond its bytes and settings: the limits its
/// instances run under and whose it is. Defaults: the runtime's limits,
/// no tenant.
#[derive(Debug, Clone, Default)]
pub struct ModuleOptions {
    /// Instance limits (a tenant's quotas); `None`: the runtime's.
    pub limits: Option<InstanceLimits>,
    pub tenant: Option<String>,
    /// Log lines/s through `wasi:logging`; `None`: the runtime's setting.
    pub log_lines_per_second: Option<u64>,
}

/// Why a module file was not accepted. The old version (if any) keeps
/// running; the message is the compiler's or validator's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error("module {name}: not a valid component: {message}")]
    Compile { name: String, message: String },
    #[error(
        "module {name}: does not implement the weir:pipeline/module world (0.1 or 0.2): {message}"
    )]
    World { name: String, message: String },
    #[error("module {name}: init failed: {message}")]
    Init { name: String, message: String },
}

/// Longest `describe()` name or version a module may declare.
pub const MAX_DESCRIBE_BYTES: usize = 128;

/// What a module declares about itself via `describe`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuleInfo {
    pub name: String,
    pub version: String,
}

/// A compiled, validated, pre-instantiated module with its configuration:
/// everything needed to run a batch except the Store.
pub struct LoadedModule {
    /// The name the pipeline config gives this module.
    pub name: String,
    /// sha256 of the component bytes: the version's identity.
    pub digest: String,
    pub info: ModuleInfo,
    pub(crate) pre: Arc<Compiled<ModuleCtx>>,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) log_context: Arc<LogContext>,
    /// The pipeline's outbound HTTP policy, given to every instance.
    pub(crate) http: Arc<HttpPolicy>,
    /// Limits every instance runs under.
    pub(crate) limits: InstanceLimits,
    /// How it was loaded (kept so a reload of the same slot matches).
    pub(crate) options: ModuleOptions,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("name", &self.name)
            .field("digest", &self.short_digest())
            .field("info", &self.info)
            .finish()
    }
}

/// A module stopped while processing a batch (trap, panic, limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Trapped {
    pub message: String,
    /// The limit that stopped it, when one did.
    pub limit: Option<LimitExceeded>,
}

/// The sha256 of a component's bytes, hex-encoded.
pub fn digest_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl WasmRuntime {
    /// Compiles `bytes`, checks the world, runs `describe` and `init` with
    /// `config` once. CPU-heavy: call from a blocking-capable context (it
    /// compiles on the current thread; see [`WasmRuntime::load_blocking`]).
    /// `http` is the pipeline's outbound HTTP policy
    /// ([`HttpPolicy::deny_all`] for none); `init` already runs under it.
    pub async fn load(
        self: &Arc<Self>,
        pipeline: &str,
        name: &str,
        bytes: Vec<u8>,
        config: Vec<(String, String)>,
        http: Arc<HttpPolicy>,
    ) -> Result<LoadedModule, ModuleError> {
        self.load_with(
            pipeline,
            name,
            bytes,
            config,
            http,
            ModuleOptions::default(),
        )
        .await
    }

    /// [`WasmRuntime::load`] with limits and attribution (a tenant's module).
    pub async fn load_with(
        self: &Arc<Self>,
        pipeline: &str,
        name: &str,
        bytes: Vec<u8>,
        config: Vec<(String, String)>,
        http: Arc<HttpPolicy>,
        options: ModuleOptions,
    ) -> Result<LoadedModule, ModuleError> {
        let digest = digest_of(&bytes);
        let pre = self.compile(name, &digest, bytes).await?;
        let mut module = LoadedModule {
            name: name.to_string(),
            digest,
            info: ModuleInfo {
                name: String::new(),
                version: String::new(),
            },
            pre,
            config,
            http,
            log_context: Arc::new(LogContext::new(
                options.tenant.clone(),
                pipeline,
                name,
                options
                    .log_lines_per_second
                    .unwrap_or(self.config.module_log_lines_per_second),
            )),
            limits: options
                .limits
                .clone()
                .unwrap_or_else(|| self.limits.clone()),
            options,
        };
        // One trial instance: describe + init must succeed before the
        // module may replace anything.
        let init_err = |message: String| ModuleError::Init {
            name: name.to_string(),
            message,
        };
        let limit = module.limits.max_batch_wall_time;
        tokio::time::timeout(limit, self.trial(&mut module, init_err))
            .await
            .unwrap_or_else(|_| Err(init_err(LimitExceeded::WallTime(limit).to_string())))?;
        Ok(module)
    }

    /// describe + init in one trial instance; sets the module's info.
    async fn trial(
        &self,
        module: &mut LoadedModule,
        init_err: impl Fn(String) -> ModuleError,
    ) -> Result<(), ModuleError> {
        let (mut store, instance) = module
            .instantiate(self)
            .await
            .map_err(|t| init_err(t.message))?;
        let info = instance
            .describe(&mut store)
            .await
            .map_err(|e| init_err(trap_message(&store, e).message))?;
        for (what, value) in [("name", &info.name), ("version", &info.version)] {
            if value.len() > MAX_DESCRIBE_BYTES || value.chars().any(char::is_control) {
                return Err(init_err(format!(
                    "describe() returned a {what} of {} bytes; at most {MAX_DESCRIBE_BYTES} printable bytes (it is stamped into every document's provenance)",
                    value.len()
                )));
            }
        }
        module.info = ModuleInfo {
            name: info.name,
            version: info.version,
        };
        instance
            .init(&mut store, &module.config)
            .await
            .map_err(|e| init_err(trap_message(&store, e).message))?
            .map_err(&init_err)?;
        Ok(())
    }
}

impl WasmRuntime {
    /// Compiles `bytes` and checks it implements the module world, without
    /// running it (for a module no pipeline uses yet).
    pub async fn check_component(
        self: &Arc<Self>,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), ModuleError> {
        let digest = digest_of(&bytes);
        self.compile(name, &digest, bytes).await.map(drop)
    }

    /// Compiles (or takes from the compile cache) and checks the world;
    /// a module already loaded with the same digest is shared instead.
    async fn compile(
        self: &Arc<Self>,
        name: &str,
        digest: &str,
        bytes: Vec<u8>,
    ) -> Result<Arc<Compiled<ModuleCtx>>, ModuleError> {
        if let Some(pre) = self.shared_compiled(digest) {
            return Ok(pre);
        }
        let rt = Arc::clone(self);
        let key = digest.to_string();
        let compile_err = |message: String| ModuleError::Compile {
            name: name.to_string(),
            message,
        };
        let component = tokio::task::spawn_blocking(move || {
            if let Some(cached) = rt.cache.as_ref().and_then(|c| c.get(&rt.engine, &key)) {
                return Ok(cached);
            }
            let compiled = Component::new(&rt.engine, &bytes)?;
            if let Some(cache) = &rt.cache {
                cache.put(&key, &compiled);
            }
            Ok::<_, wasmtime::Error>(compiled)
        })
        .await
        .map_err(|e| compile_err(e.to_string()))?
        .map_err(|e| compile_err(format!("{e:#}")))?;
        let world_err = |e: wasmtime::Error| ModuleError::World {
            name: name.to_string(),
            message: format!("{e:#}"),
        };
        let world = World::of(&self.engine, &component);
        let instance_pre = self.linker.instantiate_pre(&component).map_err(world_err)?;
        let pre = Arc::new(match world {
            World::V01 => Compiled::V01(ModulePre::new(instance_pre).map_err(world_err)?),
            World::V02 => Compiled::V02(v02::DocModulePre::new(instance_pre).map_err(world_err)?),
        });
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        compiled.retain(|_, held| held.strong_count() > 0);
        compiled.insert(digest.to_string(), Arc::downgrade(&pre));
        Ok(pre)
    }

    /// The compiled module for `digest`, if a loaded module still holds it.
    fn shared_compiled(&self, digest: &str) -> Option<Arc<Compiled<ModuleCtx>>> {
        let compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        compiled.get(digest).and_then(Weak::upgrade)
    }
}

impl LoadedModule {
    /// Whether this module and `other` run the same compiled code (loaded
    /// from identical bytes while one of them was loaded).
    pub fn shares_code_with(&self, other: &LoadedModule) -> bool {
        Arc::ptr_eq(&self.pre, &other.pre)
    }

    /// First 12 hex digits of the digest, for logs and status.
    pub fn short_digest(&self) -> &str {
        &self.digest[..12.min(self.digest.len())]
    }

    /// The outbound HTTP policy this module runs under (reuse it when
    /// reloading the module into the same pipeline).
    pub fn http_policy(&self) -> &Arc<HttpPolicy> {
        &self.http
    }

    /// How this version was loaded (limits, tenant).
    pub fn options(&self) -> &ModuleOptions {
        &self.options
    }

    /// Log lines this version's instances had dropped by the log limiter.
    pub fn log_lines_dropped(&self) -> u64 {
        self.log_context.dropped()
    }

    /// Which world the module's component exports.
    pub fn world(&self) -> World {
        match &*self.pre {
            Compiled::V01(_) => World::V01,
            Compiled::V02(_) => World::V02,
        }
    }

    async fn instantiate(&self, rt: &WasmRuntime) -> Result<(Store<ModuleCtx>, Instance), Trapped> {
        let mut store = Store::new(
            &rt.engine,
            ModuleCtx::new(
                &self.limits,
                Arc::clone(&self.log_context),
                Arc::clone(&self.http),
            ),
        );
        store.limiter(|ctx| &mut ctx.limits);
        let budget = self.limits.max_batch_time;
        store.epoch_deadline_callback(move |mut cx| {
            let ctx = cx.data_mut();
            if ctx.ticks_left == 0 {
                return Err(wasmtime::Error::new(LimitExceeded::CpuTime(budget)));
            }
            ctx.ticks_left -= 1;
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        let instance = match &*self.pre {
            Compiled::V01(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(|i| Instance::V01(i.weir_pipeline_processor().clone())),
            Compiled::V02(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(|i| Instance::V02(i.weir_pipeline_processor().clone())),
        }
        .map_err(|e| trap_message(&store, e))?;
        Ok((store, instance))
    }

    /// Runs one batch of 0.1-shaped records (value bytes in, document
    /// bytes out) in a fresh instance, whatever world the module exports:
    /// for a 0.2 module the values cross as [`Body::for_world`] decides
    /// (held from [`HOLD_MIN_BYTES`]) and the documents it returns are
    /// written out. The chain uses
    /// [`LoadedModule::run`]; this is for callers that hold records.
    pub async fn run_batch(
        &self,
        rt: &WasmRuntime,
        batch: &[types::Record],
    ) -> Result<Vec<types::Outcome>, Trapped> {
        let sources: Vec<SourceRecord> = batch.iter().map(source_of).collect();
        let bodies: Vec<Body> = batch
            .iter()
            .map(|r| Body::Bytes(bytes::Bytes::copy_from_slice(&r.value)).for_world(self.world()))
            .collect();
        let records: Vec<BatchRecord<'_>> = sources
            .iter()
            .zip(&bodies)
            .map(|(source, body)| BatchRecord { source, body })
            .collect();
        let outcomes = self.run(rt, &records).await?;
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                ModuleOutcome::Emit(docs) => types::Outcome::Emit(
                    docs.into_iter()
                        .map(|d| types::Document {
                            body: d.body.into_bytes(),
                            index: d.index,
                            id: d.id,
                        })
                        .collect(),
                ),
                ModuleOutcome::Drop => types::Outcome::Drop,
                ModuleOutcome::Fail(reason) => types::Outcome::Fail(reason),
            })
            .collect())
    }

    /// Runs one batch in a fresh instance: `init(config)` then
    /// `process(batch)`. Returns one outcome per record, or why the module
    /// stopped. Bodies should be in the module's world
    /// ([`Body::for_world`]); others are converted here.
    pub async fn run(
        &self,
        rt: &WasmRuntime,
        batch: &[BatchRecord<'_>],
    ) -> Result<Vec<ModuleOutcome>, Trapped> {
        // CPU time is bounded by the epoch, but a module that sleeps or
        // waits on the host uses none: the wall clock bounds it too. The
        // call is dropped (wasmtime cancels it) and its Store with it.
        let limit = self.limits.max_batch_wall_time;
        tokio::time::timeout(limit, self.run_unbounded(rt, batch))
            .await
            .unwrap_or_else(|_| {
                let limit = LimitExceeded::WallTime(limit);
                Err(Trapped {
                    message: limit.to_string(),
                    limit: Some(limit),
                })
            })
    }

    async fn run_unbounded(
        &self,
        rt: &WasmRuntime,
        batch: &[BatchRecord<'_>],
    ) -> Result<Vec<ModuleOutcome>, Trapped> {
        let (mut store, instance) = self.instantiate(rt).await?;
        match instance.init(&mut store, &self.config).await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                return Err(Trapped {
                    message: format!("init failed: {message}"),
                    limit: None,
                });
            }
            Err(e) => return Err(trap_message(&store, e)),
        }
        let outcomes = match instance {
            Instance::V01(guest) => {
                let records: Vec<types::Record> = batch
                    .iter()
                    .map(|r| r.source.wit(r.body.to_bytes()))
                    .collect();
                let outcomes = guest
                    .call_process(&mut store, &records)
                    .await
                    .map_err(|e| trap_message(&store, e))?;
                outcomes
                    .into_iter()
                    .map(ModuleOutcome::from_v01)
                    .collect::<Vec<_>>()
            }
            Instance::V02(guest) => {
                let mut records = Vec::with_capacity(batch.len());
                for r in batch {
                    let value = match r.body {
                        Body::Doc(doc) => v02::types::Body::Doc(
                            store
                                .data_mut()
                                .hold(doc.clone())
                                .map_err(|e| trap_message(&store, e))?,
                        ),
                        Body::Bytes(bytes) => v02::types::Body::Bytes(bytes.to_vec()),
                    };
                    records.push(r.source.wit_v02(value));
                }
                let outcomes = guest
                    .call_process(&mut store, &records)
                    .await
                    .map_err(|e| trap_message(&store, e))?;
                let mut taken = Vec::with_capacity(outcomes.len());
                for outcome in outcomes {
                    taken.push(
                        ModuleOutcome::from_v02(outcome, store.data_mut())
                            .map_err(|e| trap_message(&store, e))?,
                    );
                }
                taken
            }
        };
        if outcomes.len() != batch.len() {
            return Err(Trapped {
                message: format!(
                    "process returned {} outcomes for {} records",
                    outcomes.len(),
                    batch.len()
                ),
                limit: None,
            });
        }
        Ok(outcomes)
    }
}

/// Which version of the `weir:pipeline/module` world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum World {
    /// JSON bytes in, JSON bytes out.
    #[serde(rename = "0.1")]
    V01,
    /// A host-held document (`doc`) in and out.
    #[serde(rename = "0.2")]
    V02,
}

impl World {
    /// The world `component` exports: 0.2 when it exports the 0.2
    /// `processor`, else 0.1 (whose check then names what is missing).
    fn of(engine: &wasmtime::Engine, component: &Component) -> World {
        let v02 = component
            .component_type()
            .exports(engine)
            .any(|(name, _)| name == "weir:pipeline/processor@0.2.0");
        if v02 { World::V02 } else { World::V01 }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            World::V01 => "0.1",
            World::V02 => "0.2",
        })
    }
}

/// One instance's exports, in its world.
enum Instance {
    V01(guest::Guest),
    V02(v02::guest::Guest),
}

impl Instance {
    async fn describe(&self, store: &mut Store<ModuleCtx>) -> wasmtime::Result<ModuleInfo> {
        Ok(match self {
            Instance::V01(g) => {
                let i = g.call_describe(store).await?;
                ModuleInfo {
                    name: i.name,
                    version: i.version,
                }
            }
            Instance::V02(g) => {
                let i = g.call_describe(store).await?;
                ModuleInfo {
                    name: i.name,
                    version: i.version,
                }
            }
        })
    }

    async fn init(
        &self,
        store: &mut Store<ModuleCtx>,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Instance::V01(g) => g.call_init(store, config).await,
            Instance::V02(g) => g.call_init(store, config).await,
        }
    }
}

/// A record value or document body between modules: bytes, or a document
/// the host holds parsed (for 0.2 modules).
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(bytes::Bytes),
    Doc(HeldDoc),
}

/// Bytes below which a record value crosses into a 0.2 module as
/// `body::bytes` (the module parses it itself, as in 0.1) rather than
/// being parsed by the host and held as a `doc`.
///
/// A held document saves every module a parse and a write of the whole
/// value but costs a host call per field read or written (≈ 0.3–0.4 µs
/// each; text-clean → enrich → passthrough makes about 12 per record).
/// `benches/examples/doc_chain.rs` (benches/PROFILE.md, "The document
/// model"): at 438 B three modules took 14.9 µs per record with bytes and
/// 19.8 µs held, at 3,040 B 37.2 µs with bytes and 22.5 µs held; the
/// byte cost grows ≈ 8 µs per KB for three modules while the held cost
/// barely moves, so they meet near 1 KB.
pub const HOLD_MIN_BYTES: usize = 1024;

impl Body {
    /// The body as a module of `world` takes it. For 0.2: a document the
    /// host already holds stays held; bytes of at least
    /// [`HOLD_MIN_BYTES`] that hold one JSON object are parsed here, once,
    /// and held; smaller bytes (and bytes that are not one JSON object)
    /// stay bytes and the module parses them. For 0.1: bytes (a held
    /// document written out).
    pub fn for_world(self, world: World) -> Body {
        match (world, self) {
            (World::V02, Body::Bytes(bytes)) if bytes.len() < HOLD_MIN_BYTES => Body::Bytes(bytes),
            (World::V02, Body::Bytes(bytes)) => match HeldDoc::parse(bytes.clone()) {
                Ok(doc) => Body::Doc(doc),
                Err(_) => Body::Bytes(bytes),
            },
            (World::V01, Body::Doc(doc)) => Body::Bytes(doc.to_json().into()),
            (_, same) => same,
        }
    }

    /// The body's bytes (a held document written out).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Body::Bytes(bytes) => bytes.to_vec(),
            Body::Doc(doc) => doc.to_json(),
        }
    }

    /// The body's bytes, without a copy where it can.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Bytes(bytes) => bytes.into(),
            Body::Doc(doc) => doc.to_json(),
        }
    }

    /// Bytes the body is (or will be when written).
    pub fn len(&self) -> usize {
        match self {
            Body::Bytes(bytes) => bytes.len(),
            Body::Doc(doc) => doc.len(),
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One record as a module sees it: the source record's coordinates, key
/// and headers, with the body the chain has made of its value so far.
#[derive(Debug, Clone, Copy)]
pub struct BatchRecord<'a> {
    pub source: &'a SourceRecord,
    pub body: &'a Body,
}

/// A document a module emitted.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub body: Body,
    pub index: Option<String>,
    pub id: Option<String>,
}

/// What became of one record, in either world.
#[derive(Debug, Clone)]
pub enum ModuleOutcome {
    Emit(Vec<Emitted>),
    Drop,
    Fail(String),
}

impl ModuleOutcome {
    fn from_v01(outcome: types::Outcome) -> ModuleOutcome {
        match outcome {
            types::Outcome::Emit(docs) => ModuleOutcome::Emit(
                docs.into_iter()
                    .map(|d| Emitted {
                        body: Body::Bytes(d.body.into()),
                        index: d.index,
                        id: d.id,
                    })
                    .collect(),
            ),
            types::Outcome::Drop => ModuleOutcome::Drop,
            types::Outcome::Fail(reason) => ModuleOutcome::Fail(reason),
        }
    }

    /// Takes the documents a 0.2 module handed back out of its table.
    fn from_v02(
        outcome: v02::types::Outcome,
        ctx: &mut ModuleCtx,
    ) -> wasmtime::Result<ModuleOutcome> {
        Ok(match outcome {
            v02::types::Outcome::Emit(docs) => {
                let mut emitted = Vec::with_capacity(docs.len());
                for d in docs {
                    let body = match d.body {
                        v02::types::Body::Doc(doc) => Body::Doc(ctx.take(doc)?),
                        v02::types::Body::Bytes(bytes) => Body::Bytes(bytes.into()),
                    };
                    emitted.push(Emitted {
                        body,
                        index: d.index,
                        id: d.id,
                    });
                }
                ModuleOutcome::Emit(emitted)
            }
            v02::types::Outcome::Drop => ModuleOutcome::Drop,
            v02::types::Outcome::Fail(reason) => ModuleOutcome::Fail(reason),
        })
    }
}

impl SourceRecord {
    /// This record with `value`, as the 0.1 world takes it.
    fn wit(&self, value: Vec<u8>) -> types::Record {
        types::Record {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.as_ref().map(|k| k.to_vec()),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| types::Header {
                    key: k.clone(),
                    value: v.as_ref().map(|v| v.to_vec()),
                })
                .collect(),
            value,
        }
    }

    /// This record with `value`, as the 0.2 world takes it.
    fn wit_v02(&self, value: v02::types::Body) -> v02::types::Record {
        v02::types::Record {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.as_ref().map(|k| k.to_vec()),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| v02::types::Header {
                    key: k.clone(),
                    value: v.as_ref().map(|v| v.to_vec()),
                })
                .collect(),
            value,
        }
    }
}

/// The source record a 0.1-shaped record stands for (its value aside).
fn source_of(r: &types::Record) -> SourceRecord {
    SourceRecord {
        topic: r.topic.as_str().into(),
        partition: r.partition,
        offset: r.offset,
        timestamp_ms: r.timestamp_ms,
        key: r.key.clone().map(Into::into),
        headers: r
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone().map(Into::into)))
            .collect(),
        value: bytes::Bytes::new(),
    }
}

/// Turns a wasmtime error into a reason a person can act on: the limit
/// that stopped the module, or its panic message (captured from stderr)
/// plus the trap.
fn trap_message(store: &Store<ModuleCtx>, e: wasmtime::Error) -> Trapped {
    if let Some(limit) = e.downcast_ref::<LimitExceeded>() {
        return Trapped {
            message: limit.to_string(),
            limit: Some(limit.clone()),
        };
    }
    let text = format!("{e:#}");
    if text.contains("forcing trap when growing memory") || text.contains("growing memory") {
        let limit = LimitExceeded::Memory(store.data().limits_memory());
        return Trapped {
            message: limit.to_string(),
            limit: Some(limit),
        };
    }
    if text.contains("count too high") {
        let limit = LimitExceeded::Instances(store.data().limits_instances());
        return Trapped {
            message: limit.to_string(),
            limit: Some(limit),
        };
    }
    let trap = e
        .downcast_ref::<wasmtime::Trap>()
        .map(|t| t.to_string())
        .unwrap_or_else(|| first_line(&text).to_string());
    let stderr = store.data().stderr_tail();
    let panic = stderr
        .lines()
        .rev()
        .find(|l| l.contains("panicked"))
        .unwrap_or("");
    let message = if panic.is_empty() {
        trap
    } else {
        format!("{} ({trap})", panic.trim())
    };
    Trapped {
        message,
        limit: None,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object_of(len: usize) -> bytes::Bytes {
        // `{"p":"xxx…"}` of exactly `len` bytes.
        let pad = "x".repeat(len - 8);
        let text = format!(r#"{{"p":"{pad}"}}"#);
        assert_eq!(text.len(), len);
        text.into()
    }

    #[test]
    fn a_0_2_module_gets_small_values_as_bytes_and_large_ones_held() {
        let small = Body::Bytes(object_of(HOLD_MIN_BYTES - 1)).for_world(World::V02);
        assert!(matches!(&small, Body::Bytes(b) if b.len() == HOLD_MIN_BYTES - 1));
        let large = Body::Bytes(object_of(HOLD_MIN_BYTES)).for_world(World::V02);
        let Body::Doc(doc) = &large else {
            panic!("a value of HOLD_MIN_BYTES is held: {large:?}")
        };
        assert_eq!(doc.to_json(), object_of(HOLD_MIN_BYTES).to_vec());
        // Large bytes that are not one JSON object stay bytes.
        let text = bytes::Bytes::from("x".repeat(HOLD_MIN_BYTES * 2));
        assert!(matches!(
            Body::Bytes(text).for_world(World::V02),
            Body::Bytes(_)
        ));
    }

    #[test]
    fn a_held_document_stays_held_down_a_0_2_chain_however_small() {
        let doc = HeldDoc::parse(bytes::Bytes::from_static(br#"{"a":1}"#)).unwrap();
        let body = Body::Doc(doc).for_world(World::V02);
        assert!(matches!(&body, Body::Doc(_)));
        // Before a 0.1 module it is written out, and a small value then
        // crosses into the next 0.2 module as bytes.
        let body = body.for_world(World::V01);
        assert!(matches!(&body, Body::Bytes(b) if b.as_ref() == br#"{"a":1}"#));
        assert!(matches!(body.for_world(World::V02), Body::Bytes(_)));
    }
}
