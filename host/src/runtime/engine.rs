//! The wasmtime engine Weir runs every module on, and its epoch ticker.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{self, Compiled};
use super::cache::CompileCache;
use super::ctx::ModuleCtx;
use super::limits::InstanceLimits;
use crate::config::{PoolingMode, Problems, RuntimeConfig};

/// A configured engine plus the linker that provides every import a module
/// may use. One per process; cheap to share behind an `Arc`.
pub struct WasmRuntime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<ModuleCtx>,
    pub(crate) limits: InstanceLimits,
    pub(crate) config: RuntimeConfig,
    pooling: bool,
    pub(crate) cache: Option<Arc<CompileCache>>,
    /// Compiled, world-checked modules by digest while any loaded module
    /// holds them: tenants (or pipelines) loading identical bytes share one
    /// copy of the code instead of deserializing their own.
    pub(crate) compiled: Mutex<HashMap<String, Weak<Compiled<ModuleCtx>>>>,
    _ticker: EpochTicker,
}

impl WasmRuntime {
    /// Builds the engine. With `pooling = "auto"`, the pooling allocator is
    /// probed and the on-demand allocator used if the machine cannot reserve
    /// the pool (e.g. a low virtual-memory ulimit).
    pub fn new(config: &RuntimeConfig) -> anyhow::Result<Self> {
        let mut problems = Problems::new(Path::new("[runtime]"));
        config.validate(&mut problems);
        problems.finish()?;
        let limits = InstanceLimits::for_runtime(config);
        let (engine, pooling) = match config.pooling {
            PoolingMode::Off => (Engine::new(&base_config(config))?, false),
            PoolingMode::On => (
                Engine::new(&pooled_config(config))
                    .map_err(anyhow::Error::from)
                    .context("runtime.pooling = \"on\" but the pooling allocator is unavailable")?,
                true,
            ),
            PoolingMode::Auto => match Engine::new(&pooled_config(config)) {
                Ok(engine) => (engine, true),
                Err(e) => {
                    tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                    (Engine::new(&base_config(config))?, false)
                }
            },
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // wasi:http/outgoing-handler + types; requests go through the
        // pipeline's HttpPolicy (runtime/http). Modules that don't import
        // it are unaffected.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::wasi::logging::logging::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |ctx| ctx,
        )?;
        // The 0.2 world's host-held documents (0.1 modules don't import them).
        bindings::v02::types::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |ctx| ctx,
        )?;
        let cache = if config.compile_cache {
            let dir = config.cache_dir.clone().or_else(super::cache::default_dir);
            match dir.map(|d| {
                (
                    CompileCache::open(&d, &engine, config.compile_cache_max_bytes),
                    d,
                )
            }) {
                Some((Ok(c), d)) => {
                    tracing::debug!(dir = %d.display(), "compile cache");
                    Some(Arc::new(c))
                }
                Some((Err(e), d)) => {
                    tracing::warn!(dir = %d.display(), error = %e, "compile cache unavailable; compiling every start");
                    None
                }
                None => None,
            }
        } else {
            None
        };
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick);
        Ok(Self {
            engine,
            linker,
            limits,
            config: config.clone(),
            pooling,
            cache,
            compiled: Mutex::default(),
            _ticker: ticker,
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }
}

fn base_config(rc: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    // Memories never need more than the configured maximum; smaller
    // reservations keep many idle pipelines cheap.
    c.memory_reservation(rc.max_memory_bytes.next_power_of_two() as u64);
    c
}

fn pooled_config(rc: &RuntimeConfig) -> Config {
    let mut c = base_config(rc);
    let n = rc.pool_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        // A component built by rustc holds a few core instances (the program
        // plus shims) and usually one memory.
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memory_size(rc.max_memory_bytes)
        // Reset the first pages of a slot's memory and tables with memset
        // instead of madvise: a fresh Store per batch makes instance
        // teardown hot. Where PAGEMAP_SCAN is missing (as on these
        // machines) wasmtime cannot see which pages were written, so this
        // only helps if a module's working pages come first: modules linked
        // with a 64 KiB stack (.cargo/config.toml) keep stack, data and
        // first heap pages here; with Rust's 1 MiB default they sit beyond
        // it and every batch pays madvise, TLB shootdowns and page faults.
        .linear_memory_keep_resident(128 << 10)
        .table_keep_resident(16 << 10);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// Increments the engine's epoch every tick on a background thread, for as
/// long as it lives; dropping it stops the thread.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawn epoch ticker thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
