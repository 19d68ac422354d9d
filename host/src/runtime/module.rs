//! Compiling, validating and pre-instantiating a module (`ModulePre`), and
//! running one batch through it in a fresh Store.

use std::sync::{Arc, Weak};

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{ModulePre, guest, types};
use super::ctx::ModuleCtx;
use super::engine::WasmRuntime;
use super::http::HttpPolicy;
use super::limits::{InstanceLimits, LimitExceeded};
use super::log::LogContext;

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
    #[error("module {name}: does not implement the weir:pipeline/module@0.1 world: {message}")]
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
    pub(crate) pre: Arc<ModulePre<ModuleCtx>>,
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
            .call_describe(&mut store)
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
            .call_init(&mut store, &module.config)
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
    ) -> Result<Arc<ModulePre<ModuleCtx>>, ModuleError> {
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
        let instance_pre = self.linker.instantiate_pre(&component).map_err(world_err)?;
        let pre = Arc::new(ModulePre::new(instance_pre).map_err(world_err)?);
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        compiled.retain(|_, held| held.strong_count() > 0);
        compiled.insert(digest.to_string(), Arc::downgrade(&pre));
        Ok(pre)
    }

    /// The compiled module for `digest`, if a loaded module still holds it.
    fn shared_compiled(&self, digest: &str) -> Option<Arc<ModulePre<ModuleCtx>>> {
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

    async fn instantiate(
        &self,
        rt: &WasmRuntime,
    ) -> Result<(Store<ModuleCtx>, guest::Guest), Trapped> {
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
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| trap_message(&store, e))?;
        let processor = instance.weir_pipeline_processor().clone();
        Ok((store, processor))
    }

    /// Runs one batch in a fresh instance: `init(config)` then
    /// `process(batch)`. Returns one outcome per record, or why the module
    /// stopped.
    pub async fn run_batch(
        &self,
        rt: &WasmRuntime,
        batch: &[types::Record],
    ) -> Result<Vec<types::Outcome>, Trapped> {
        // CPU time is bounded by the epoch, but a module that sleeps or
        // waits on the host uses none: the wall clock bounds it too. The
        // call is dropped (wasmtime cancels it) and its Store with it.
        let limit = self.limits.max_batch_wall_time;
        tokio::time::timeout(limit, self.run_batch_unbounded(rt, batch))
            .await
            .unwrap_or_else(|_| {
                let limit = LimitExceeded::WallTime(limit);
                Err(Trapped {
                    message: limit.to_string(),
                    limit: Some(limit),
                })
            })
    }

    async fn run_batch_unbounded(
        &self,
        rt: &WasmRuntime,
        batch: &[types::Record],
    ) -> Result<Vec<types::Outcome>, Trapped> {
        let (mut store, guest) = self.instantiate(rt).await?;
        match guest.call_init(&mut store, &self.config).await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                return Err(Trapped {
                    message: format!("init failed: {message}"),
                    limit: None,
                });
            }
            Err(e) => return Err(trap_message(&store, e)),
        }
        let outcomes = guest
            .call_process(&mut store, batch)
            .await
            .map_err(|e| trap_message(&store, e))?;
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
