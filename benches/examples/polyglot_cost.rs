//! What a module costs in Rust, Python and JavaScript: the same redaction
//! transform (`redact`, `redact-py`, `redact-js` under `dist/modules`) on
//! the host's runtime with its default limits and the pooling allocator.
//!
//! Per module it prints
//! * **compile**: `load` with the compile cache off (Cranelift compile,
//!   then the trial instance's `describe` + `init`), and `load` again from
//!   a warm compile cache;
//! * **resident after load**: growth of this process's RSS from loading
//!   (compiled code, the trial instance's pages);
//! * **fixed cost per batch**: a fresh instance + `init` + `process([])`;
//! * **500-record batches**: a fresh instance + `init` + `process(500)`,
//!   per batch and per record;
//! * **peak per instance**: how far the process's peak RSS (VmHWM, reset
//!   through `/proc/self/clear_refs`) rises above the resident set while
//!   one 500-record batch runs: the pages one instance touches.
//!
//! ```sh
//! cargo xtask modules redact redact-py redact-js
//! cargo build --release -p weir-benches --example polyglot_cost
//! target/release/examples/polyglot_cost            # 20 batches per module
//! target/release/examples/polyglot_cost 50 redact-py
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::config::{PoolingMode, RuntimeConfig};
use weir::runtime::{HttpPolicy, LoadedModule, WasmRuntime, WitRecord as Record};

const BATCH: usize = 500;
const MODULES: [&str; 3] = ["redact", "redact-py", "redact-js"];

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn record(i: usize) -> Record {
    let value = serde_json::json!({
        "id": format!("c{i}"),
        "text": format!("Ask user{i}@example.com or +1 555 010 {:04} about Falcon: https://www.example.com/{i}", i % 10_000),
        "n": i,
    });
    Record {
        topic: "bench".into(),
        partition: 0,
        offset: i as i64,
        timestamp_ms: None,
        key: None,
        headers: Vec::new(),
        value: value.to_string().into_bytes(),
    }
}

fn runtime(compile_cache: bool, cache_dir: &std::path::Path) -> anyhow::Result<Arc<WasmRuntime>> {
    Ok(Arc::new(WasmRuntime::new(&RuntimeConfig {
        pooling: PoolingMode::On,
        compile_cache,
        cache_dir: Some(cache_dir.to_owned()),
        ..RuntimeConfig::default()
    })?))
}

async fn load(rt: &Arc<WasmRuntime>, name: &str, bytes: &[u8]) -> anyhow::Result<LoadedModule> {
    let config = vec![("keywords".to_string(), "falcon".to_string())];
    Ok(rt
        .load(
            "bench",
            name,
            bytes.to_vec(),
            config,
            HttpPolicy::deny_all("bench"),
        )
        .await?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let only: Vec<String> = args.collect();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cache = tempfile::tempdir()?;
    let records: Vec<Record> = (0..BATCH).map(record).collect();

    println!(
        "{:<10} {:>8} {:>7} {:>9} {:>10} {:>10} {:>9} {:>9} {:>10}",
        "module",
        "size MiB",
        "compile",
        "cached",
        "RSS load",
        "fixed/bat",
        "500/batch",
        "per rec",
        "peak/inst"
    );
    println!(
        "{:<10} {:>8} {:>7} {:>9} {:>10} {:>10} {:>9} {:>9} {:>10}",
        "", "", "s", "ms", "MiB", "ms", "ms", "µs", "MiB"
    );
    for name in MODULES
        .iter()
        .filter(|m| only.is_empty() || only.iter().any(|o| o == *m))
    {
        let bytes = std::fs::read(weir_testkit::module_wasm(name)?)?;
        // Cold: no compile cache. The module is dropped before the measured
        // runtime loads it, so RSS growth is measured on one copy.
        let cold_rt = runtime(false, cache.path())?;
        let started = Instant::now();
        let cold = tokio.block_on(load(&cold_rt, name, &bytes))?;
        let compile = started.elapsed();
        drop(cold);
        drop(cold_rt);

        let rt = runtime(true, cache.path())?;
        tokio.block_on(load(&rt, name, &bytes))?; // fills the cache
        let rss_before = status_kib("VmRSS:");
        let started = Instant::now();
        let module = tokio.block_on(load(&rt, name, &bytes))?;
        let cached = started.elapsed();
        let rss_load = status_kib("VmRSS:").saturating_sub(rss_before);

        let (fixed, full, peak) = tokio.block_on(async {
            // Warm up the pool slot.
            for _ in 0..3 {
                module.run_batch(&rt, &records).await?;
            }
            let started = Instant::now();
            for _ in 0..batches {
                module.run_batch(&rt, &[]).await?;
            }
            let fixed = started.elapsed() / batches as u32;
            let started = Instant::now();
            for _ in 0..batches {
                let out = module.run_batch(&rt, &records).await?;
                assert_eq!(out.len(), BATCH);
            }
            let full = started.elapsed() / batches as u32;
            let rss = status_kib("VmRSS:");
            let peak = if reset_peak() {
                module.run_batch(&rt, &records).await?;
                Some(status_kib("VmHWM:").saturating_sub(rss))
            } else {
                None
            };
            anyhow::Ok((fixed, full, peak))
        })?;
        println!(
            "{:<10} {:>8.1} {:>7.2} {:>9.1} {:>10.1} {:>10.3} {:>9.2} {:>9.1} {:>10}",
            name,
            bytes.len() as f64 / (1 << 20) as f64,
            compile.as_secs_f64(),
            ms(cached),
            rss_load as f64 / 1024.0,
            ms(fixed),
            ms(full),
            full.as_secs_f64() * 1e6 / BATCH as f64,
            peak.map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        );
    }
    Ok(())
}
