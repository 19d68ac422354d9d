//! Runs the wasm-3 chain's modules the way the host does (fresh Store and
//! instance per batch, `init` then `process`), on an engine with wasmtime's
//! perf-map profiling on, so `perf record` can name the guest's functions
//! (the host's engine has no profiler, so guest code shows as `[JIT]`).
//!
//! ```sh
//! # modules with their name section (the `wasm` profile strips it):
//! CARGO_PROFILE_WASM_STRIP=false CARGO_TARGET_DIR=/tmp/wasm-names \
//!   cargo build --target wasm32-wasip2 --profile wasm -p text-clean -p passthrough
//! cargo build --release -p weir-benches --example guest_profile
//! perf record -F 999 -g -o guest.data -- \
//!   target/release/examples/guest_profile 2000 \
//!   /tmp/wasm-names/wasm32-wasip2/wasm/text_clean.wasm:fields=text \
//!   /tmp/wasm-names/wasm32-wasip2/wasm/passthrough.wasm \
//!   /tmp/wasm-names/wasm32-wasip2/wasm/passthrough.wasm
//! perf report -i guest.data --no-children --sort sym
//! ```
//!
//! Arguments: batches, then one `module.wasm[:key=value,...]` per module.
//! Batches are 500 corpus records; each module's output feeds the next.
//!
//! Modules that call a service over `wasi:http` (detect-hate) get the
//! host's outbound HTTP, allowing the origins in `WEIR_PROFILE_ALLOW`
//! (comma-separated, e.g. `http://127.0.0.1:8090` with a weir-classifier
//! listening there); without it their requests are denied.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, ProfilingStrategy, Store};

use ::weir::runtime::HttpPolicy;
use ::weir::runtime::ctx::ModuleCtx;
use ::weir::runtime::limits::InstanceLimits;
use ::weir::runtime::log::LogContext;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "weir:pipeline/module",
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::ModulePre;
use bindings::wasi::logging::logging;
use bindings::weir::pipeline::types::{Outcome, Record};

impl logging::Host for ModuleCtx {
    async fn log(&mut self, _level: logging::Level, _context: String, _message: String) {}
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let batches: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .profiler(ProfilingStrategy::PerfMap);
    let engine = Engine::new(&config)?;
    let mut linker: Linker<ModuleCtx> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    logging::add_to_linker::<_, HasSelf<_>>(&mut linker, |ctx| ctx)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let limits = InstanceLimits {
        max_memory_bytes: 64 << 20,
        max_table_elements: 100_000,
        max_instances: 16,
        max_tables: 16,
        max_memories: 4,
        cpu_ticks_per_call: u64::MAX,
        max_batch_time: std::time::Duration::MAX,
        max_batch_wall_time: std::time::Duration::MAX,
        max_document_bytes: None,
    };
    let mut modules = Vec::new();
    for spec in &args[1..] {
        let (path, settings) = spec.split_once(':').unwrap_or((spec, ""));
        let settings: Vec<(String, String)> = settings
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let component = Component::from_file(&engine, path)?;
        let pre = ModulePre::new(linker.instantiate_pre(&component)?)?;
        modules.push((pre, settings));
    }
    let batch: Vec<Record> = (0..500u64)
        .map(|i| {
            let (key, value) = weir_benches::corpus::tweet(i);
            Record {
                topic: "bench-tweets".into(),
                partition: 0,
                offset: i as i64,
                timestamp_ms: Some(1_764_000_000_000),
                key: Some(key.into_bytes()),
                headers: Vec::new(),
                value: value.into_bytes(),
            }
        })
        .collect();
    let log = Arc::new(LogContext::new(None, "bench", "m", 0));
    let allow = std::env::var("WEIR_PROFILE_ALLOW").unwrap_or_default();
    let http = HttpPolicy::builder("bench")
        .allow(allow.split(',').filter(|a| !a.is_empty()))
        .config(::weir::config::HttpConfig {
            allow_private: true,
            ..Default::default()
        })
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..batches {
            let mut records = batch.clone();
            for (pre, settings) in &modules {
                let mut store = Store::new(
                    &engine,
                    ModuleCtx::new(&limits, Arc::clone(&log), Arc::clone(&http)),
                );
                let instance = pre.instantiate_async(&mut store).await?;
                let guest = instance.weir_pipeline_processor();
                guest
                    .call_init(&mut store, settings)
                    .await?
                    .map_err(anyhow::Error::msg)?;
                let outcomes = guest.call_process(&mut store, &records).await?;
                records = records
                    .into_iter()
                    .zip(outcomes)
                    .flat_map(|(r, o)| match o {
                        Outcome::Emit(docs) => docs
                            .into_iter()
                            .map(|d| Record {
                                value: d.body,
                                ..r.clone()
                            })
                            .collect::<Vec<_>>(),
                        _ => Vec::new(),
                    })
                    .collect();
            }
            std::hint::black_box(&records);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let n = batches * batch.len();
    eprintln!(
        "{n} records through {} modules in {secs:.2} s: {:.2} µs/record",
        modules.len(),
        secs / n as f64 * 1e6
    );
    Ok(())
}
