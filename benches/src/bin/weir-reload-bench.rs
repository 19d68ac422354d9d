//! Hot-reload figures (issue 4), printed, not asserted:
//!
//! - compile + validate + init time per module, cold and from the cache;
//! - time from renaming a new module version into place to the first batch
//!   processed by it (median, p99 over N swaps), and the longest gap between
//!   consecutive batches around swaps, with the real watcher, debounce and
//!   registry running in-process while a loop processes batches;
//! - `weir run` startup (spawn to admin endpoint up) with a cold and a warm
//!   compile cache.
//!
//! `cargo run --release -p weir-benches --bin weir-reload-bench -- --swaps 20`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use prometheus_client::registry::Registry as PromRegistry;
use tokio_util::sync::CancellationToken;
use weir::config::Config;
use weir::config::RuntimeConfig;
use weir::event::SourceRecord;
use weir::modules::{Registry, Reloader};
use weir::pipeline::run_chain;
use weir::runtime::{HttpPolicy, OutboundHttp, WasmRuntime};
use weir::telemetry::{Metrics, PipelineMetrics};
use weir_testkit::{Kafka, NoopBulk, Process, free_port, module_wasm};

#[derive(Parser)]
struct Args {
    /// Swaps to time.
    #[arg(long, default_value_t = 20)]
    swaps: usize,
    /// Debounce the watcher uses (the default config's is 300ms).
    #[arg(long, default_value = "300ms")]
    debounce: humantime::Duration,
    /// Records per batch in the processing loop.
    #[arg(long, default_value_t = 200)]
    batch: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn median_ms(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    compile_times().await?;
    swap_latency(&args).await?;
    startup().await?;
    Ok(())
}

async fn compile_times() -> Result<()> {
    println!("\n== compile + validate + init per module (ms, median of 5) ==");
    println!(
        "{:<14} {:>10} {:>10} {:>10}",
        "module", "size KiB", "cold", "cached"
    );
    let cache = tempfile::tempdir()?;
    for name in ["passthrough", "text-clean", "fixture-stamp"] {
        let bytes = std::fs::read(module_wasm(name)?)?;
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..5 {
            let rt = Arc::new(WasmRuntime::new(&RuntimeConfig {
                compile_cache: false,
                ..RuntimeConfig::default()
            })?);
            let t = Instant::now();
            rt.load(
                "bench",
                name,
                bytes.clone(),
                Vec::new(),
                HttpPolicy::deny_all("bench"),
            )
            .await?;
            cold.push(t.elapsed().as_secs_f64() * 1e3);
            let rt = Arc::new(WasmRuntime::new(&RuntimeConfig {
                cache_dir: Some(cache.path().to_path_buf()),
                ..RuntimeConfig::default()
            })?);
            rt.load(
                "bench",
                name,
                bytes.clone(),
                Vec::new(),
                HttpPolicy::deny_all("bench"),
            )
            .await?;
            let t = Instant::now();
            rt.load(
                "bench",
                name,
                bytes.clone(),
                Vec::new(),
                HttpPolicy::deny_all("bench"),
            )
            .await?;
            warm.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{:<14} {:>10.1} {:>10.1} {:>10.1}",
            name,
            bytes.len() as f64 / 1024.0,
            median_ms(cold).0,
            median_ms(warm).0
        );
    }
    Ok(())
}

fn config_text(module: &Path, debounce: &str) -> String {
    format!(
        r#"
[kafka]
brokers = "127.0.0.1:1"
[elasticsearch]
url = "http://127.0.0.1:1"
[reload]
debounce = "{debounce}"
[pipelines.bench]
topics = ["bench"]
index = "bench"
[[pipelines.bench.modules]]
name = "stamp"
path = "{}"
"#,
        module.display()
    )
}

async fn swap_latency(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let module_path = dir.path().join("stamp.wasm");
    let a = std::fs::read(module_wasm("fixture-stamp-a")?)?;
    let b = std::fs::read(module_wasm("fixture-stamp-b")?)?;
    std::fs::write(&module_path, &a)?;
    let config_path = dir.path().join("weir.toml");
    std::fs::write(
        &config_path,
        config_text(&module_path, &args.debounce.to_string()),
    )?;
    let config = Config::load(&config_path)?;

    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    let mut prom = PromRegistry::default();
    let metrics = Metrics::register(&mut prom);
    let http = OutboundHttp::new(&config, &mut prom)?;
    let registry = Registry::build(Arc::clone(&runtime), http, metrics.clone(), 5, &config).await?;
    let (control, _rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let reloader = Reloader {
        watch: true,
        requests: None,
        registry: Arc::clone(&registry),
        config_path: config_path.clone(),
        debounce: *args.debounce,
        source: control,
        metrics,
        config: config.clone(),
        status: Arc::default(),
    };
    let watcher = tokio::spawn(reloader.run(stop.clone()));

    // The processing loop: records (time, digest of the chain used).
    let pipeline = Arc::clone(registry.routes().load().get("bench").context("pipeline")?);
    let topic: Arc<str> = Arc::from("bench");
    let records: Vec<Arc<SourceRecord>> = (0..args.batch)
        .map(|i| {
            Arc::new(SourceRecord {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: i as i64,
                timestamp_ms: None,
                key: None,
                headers: Vec::new(),
                value: Bytes::from(format!(r#"{{"id":{i},"text":"hello world {i}"}}"#)),
            })
        })
        .collect();
    let log: Arc<std::sync::Mutex<Vec<(Instant, String)>>> = Arc::default();
    let loop_stop = CancellationToken::new();
    let processing = {
        let log = Arc::clone(&log);
        let rt = Arc::clone(&runtime);
        let stop = loop_stop.clone();
        let metrics = PipelineMetrics::detached("bench");
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let chain = pipeline.chain.load_full();
                let digest = chain.modules[0].digest.clone();
                let _ = run_chain(&rt, &chain, &records, &metrics).await;
                log.lock().unwrap().push((Instant::now(), digest));
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    let mut swap_times = Vec::new();
    for i in 0..args.swaps {
        let next = if i % 2 == 0 { &b } else { &a };
        let digest = weir::runtime::digest_of(next);
        let tmp = dir.path().join("stamp.wasm.part");
        std::fs::write(&tmp, next)?;
        let t0 = Instant::now();
        std::fs::rename(&tmp, &module_path)?;
        swap_times.push(t0);
        let deadline = t0 + Duration::from_secs(30);
        loop {
            let seen = log
                .lock()
                .unwrap()
                .iter()
                .find(|(t, d)| *t >= t0 && *d == digest)
                .map(|(t, _)| *t);
            if let Some(t) = seen {
                latencies.push((t - t0).as_secs_f64() * 1e3);
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "swap {i} not seen within 30 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop_stop.cancel();
    processing.await?;
    stop.cancel();
    let _ = watcher.await;

    let log = log.lock().unwrap();
    let gaps: Vec<f64> = log
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64() * 1e3)
        .collect();
    let mut sorted_gaps = gaps.clone();
    sorted_gaps.sort_by(f64::total_cmp);
    let typical_gap = percentile(&sorted_gaps, 0.5);
    let swap_gap = log
        .windows(2)
        .filter(|w| {
            swap_times
                .iter()
                .any(|t| w[0].0 <= *t + Duration::from_secs(2) && w[1].0 >= *t)
        })
        .map(|w| (w[1].0 - w[0].0).as_secs_f64() * 1e3)
        .fold(0.0, f64::max);
    let (p50, p99) = median_ms(latencies.clone());
    println!(
        "\n== swap: rename -> first batch on the new version ({} swaps, debounce {}) ==",
        latencies.len(),
        args.debounce
    );
    println!(
        "median {p50:.1} ms   p99 {p99:.1} ms   max {:.1} ms",
        latencies.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "batches of {}: {} processed, typical gap {typical_gap:.2} ms, longest gap within 2 s of a swap {swap_gap:.2} ms",
        args.batch,
        log.len()
    );
    Ok(())
}

async fn startup() -> Result<()> {
    println!("\n== weir run startup: spawn -> admin endpoint up (s) ==");
    let weir = std::env::var("WEIR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
                .join("release/weir")
        });
    anyhow::ensure!(
        weir.exists(),
        "{} missing: cargo build --release -p weir (or set WEIR_BIN)",
        weir.display()
    );
    let kafka = Kafka::start().await?;
    let bulk = NoopBulk::start().await?;
    let cache = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let modules: Vec<PathBuf> = ["text-clean", "passthrough", "fixture-stamp"]
        .iter()
        .map(|m| module_wasm(m))
        .collect::<Result<_, _>>()?;
    let mut text = format!(
        "[kafka]\nbrokers = \"{}\"\n[elasticsearch]\nurl = \"{}\"\n[runtime]\ncache_dir = \"{}\"\n",
        kafka.bootstrap(),
        bulk.url(),
        cache.path().display()
    );
    for p in 0..3 {
        text.push_str(&format!(
            "[pipelines.p{p}]\ntopics = [\"t{p}\"]\nindex = \"i{p}\"\n"
        ));
        for m in &modules {
            text.push_str(&format!(
                "[[pipelines.p{p}.modules]]\npath = \"{}\"\n",
                m.display()
            ));
        }
    }
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, text)?;
    for label in ["cold cache", "warm cache"] {
        let port = free_port();
        let mut cmd = std::process::Command::new(&weir);
        cmd.args(["run", "-c"])
            .arg(&config)
            .env("WEIR_ADMIN_LISTEN", format!("127.0.0.1:{port}"));
        let t = Instant::now();
        let p = Process::spawn("weir", cmd)?;
        loop {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok()
            {
                break;
            }
            p.ensure_running()?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!(
            "{label}: {:.2} s (3 pipelines x 3 modules)",
            t.elapsed().as_secs_f64()
        );
        p.sigterm()?;
        p.wait_exit(Duration::from_secs(30)).await;
    }
    Ok(())
}
