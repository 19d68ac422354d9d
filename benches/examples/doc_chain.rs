//! The cost of a Wasm chain against its length and the document size, for
//! two builds of the same modules side by side in one process: `before`
//! (e.g. 0.1 modules, JSON bytes in and out) and `after` (0.2 modules
//! editing a host-held document).
//!
//! ```sh
//! cargo run --release -p weir-benches --example doc_chain -- BEFORE_DIR AFTER_DIR [BATCH]
//! ```
//!
//! Each directory holds `text-clean.wasm`, `enrich.wasm` and
//! `passthrough.wasm`. Chains: 1 = text-clean; 3 = text-clean, enrich,
//! passthrough (the wasm-3 scenario); 6 = that twice. Documents: the
//! bench corpus's tweets (~300 B), and the same tweets with an untouched
//! nested `extra` value bringing them to ~3 KB and ~30 KB. Every cell runs
//! `run_chain` on batches of BATCH records (default 200) on one thread and
//! reports the thread's CPU time per record (from
//! `/proc/thread-self/schedstat`), the median of 5 alternating rounds of
//! before and after. The load average is printed at the start and the end:
//! the figures are only comparable within one run.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir::config::RuntimeConfig;
use weir::event::SourceRecord;
use weir::pipeline::{Chain, run_chain};
use weir::runtime::{HttpPolicy, LoadedModule, WasmRuntime};
use weir::telemetry::PipelineMetrics;
use weir_benches::corpus;

/// Thread CPU time so far.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat's first field");
    Duration::from_nanos(ns)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn records(size: usize, batch: usize) -> Vec<Arc<SourceRecord>> {
    let topic: Arc<str> = Arc::from("bench-tweets");
    (0..batch as u64)
        .map(|i| {
            Arc::new(SourceRecord {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: i as i64,
                timestamp_ms: Some(1_764_000_000_000),
                key: None,
                headers: Vec::new(),
                value: Bytes::from(corpus::padded_tweet(i, size)),
            })
        })
        .collect()
}

async fn load(rt: &Arc<WasmRuntime>, dir: &str, name: &str) -> Arc<LoadedModule> {
    let bytes = std::fs::read(format!("{dir}/{name}.wasm"))
        .unwrap_or_else(|e| panic!("{dir}/{name}.wasm: {e}"));
    Arc::new(
        rt.load(
            "bench",
            name,
            bytes,
            Vec::new(),
            HttpPolicy::deny_all("bench"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}")),
    )
}

async fn chain_of(rt: &Arc<WasmRuntime>, dir: &str, len: usize) -> Chain {
    let clean = load(rt, dir, "text-clean").await;
    let enrich = load(rt, dir, "enrich").await;
    let pass = load(rt, dir, "passthrough").await;
    let three = [clean, enrich, pass];
    let modules: Vec<_> = three.iter().cycle().take(len).cloned().collect();
    Chain::new(modules, None)
}

/// CPU per record of one round (enough batches for ~0.2 s of CPU).
async fn round(rt: &WasmRuntime, chain: &Chain, batch: &[Arc<SourceRecord>]) -> f64 {
    let metrics = PipelineMetrics::detached("bench");
    let start = thread_cpu();
    let mut records = 0usize;
    while thread_cpu() - start < Duration::from_millis(200) || records < batch.len() * 2 {
        let out = run_chain(rt, chain, batch, &metrics).await;
        assert_eq!(out.failures.len(), 0, "{:?}", out.failures.first());
        records += batch.len();
    }
    (thread_cpu() - start).as_secs_f64() * 1e6 / records as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (before, after) = match (args.get(1), args.get(2)) {
        (Some(b), Some(a)) => (b.clone(), a.clone()),
        _ => {
            eprintln!("usage: doc_chain BEFORE_DIR AFTER_DIR [BATCH]");
            std::process::exit(2);
        }
    };
    let batch: usize = args.get(3).map_or(200, |b| b.parse().expect("BATCH"));
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let rt = Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("runtime"));
    println!(
        "doc_chain: batch {batch}, {} CPUs, load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    println!("| modules | doc bytes | before µs/rec | after µs/rec | after/before |");
    println!("|--:|--:|--:|--:|--:|");
    tokio.block_on(async {
        for len in [1, 3, 6] {
            let b = chain_of(&rt, &before, len).await;
            let a = chain_of(&rt, &after, len).await;
            for size in [300, 3_000, 30_000] {
                let batch = records(size, batch);
                let bytes = batch.iter().map(|r| r.value.len()).sum::<usize>() / batch.len();
                // Warm both, then alternate so drift hits both alike.
                round(&rt, &b, &batch).await;
                round(&rt, &a, &batch).await;
                let (mut bs, mut as_) = (Vec::new(), Vec::new());
                for _ in 0..5 {
                    bs.push(round(&rt, &b, &batch).await);
                    as_.push(round(&rt, &a, &batch).await);
                }
                let (bm, am) = (median(bs), median(as_));
                println!("| {len} | {bytes} | {bm:.1} | {am:.1} | {:.2} |", am / bm);
            }
        }
    });
    println!("load average at end: {}", loadavg());
}
