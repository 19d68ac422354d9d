//! Multi-tenant figures (issue 5), printed, not asserted:
//!
//! - **memory per idle tenant pipeline**: a tenants folder with N tenants,
//!   each with one pipeline of 3 modules (text-clean → passthrough →
//!   text-clean), loaded with `Registry::build` in a fresh child process per
//!   N; VmRSS (and its anonymous / file-backed parts) before and after, the
//!   difference per pipeline, and the build time (compile cache cold at the
//!   start of each child: the first tenant's modules compile, the rest load
//!   from the cache unless `--distinct` makes every tenant's modules
//!   different);
//! - **instantiation cost per batch** with the pooling allocator on and off:
//!   `run_chain` over one batch, many times (a fresh instance of every
//!   module per batch), for a 1-module chain on 1 record (≈ one
//!   instantiation) and the 3-module chain on 1 and `--batch` records;
//! - **isolation**: tenant a's records/s alone vs alongside tenant b,
//!   whose module spins (100 ms CPU quota), and tenant c, whose module
//!   allocates without bound (16 MiB quota), each with `--partitions`
//!   workers running the partition worker's per-batch step
//!   (`pipeline::process_batch`: pause/breaker, records/s, fair scheduler
//!   slot, `run_chain`) minus Kafka and the sink. `--rounds` rounds of a
//!   window alone (b, c paused) then one alongside, in one registry so the
//!   breakers carry over; per round the change and the Wasm slot time b
//!   and c held;
//! - **hostile** (issue 12, only with `--sections hostile`): tenant a's
//!   records/s alone vs beside one tenant whose module attacks on purpose
//!   (sleeps in `process`; fans each record out past
//!   `max_documents_per_record`; fails every record with a 4 MiB reason),
//!   one variant after the other, `--hostile-rounds` pairs of
//!   `--hostile-window` each, outputs dispatched as the partition worker
//!   does into drained channels; per variant the ratio beside/alone.
//!
//! `cargo run --release -p weir-benches --bin weir-tenants-bench -- --tenants 1,50,200`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use prometheus_client::registry::Registry as PromRegistry;
use tokio_util::sync::CancellationToken;
use weir::config::Config;
use weir::event::{IndexRequest, SourceRecord};
use weir::modules::Registry;
use weir::pipeline::FairScheduler;
use weir::pipeline::{DeadLetterQueue, Pipeline, dispatch_outputs, run_chain};
use weir::runtime::{OutboundHttp, WasmRuntime};
use weir::telemetry::Metrics;
use weir_testkit::module_wasm;
use weir_testkit::with_custom_section;

#[derive(Parser)]
struct Args {
    /// Tenant counts to measure memory for, each in its own process.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 50, 200])]
    tenants: Vec<usize>,
    /// Give every tenant its own module bytes (a custom section with the
    /// tenant id), so nothing loads from another tenant's cache entry.
    #[arg(long)]
    distinct: bool,
    /// Records per batch for the instantiation and isolation figures.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Batches timed per instantiation figure.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// How long each isolation window runs (0s: skip the isolation figures).
    #[arg(long, default_value = "2s")]
    isolation: humantime::Duration,
    /// Isolation rounds, each a window of a alone then one alongside b and c.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// How long each window of the hostile figures runs.
    #[arg(long, default_value = "5s")]
    hostile_window: humantime::Duration,
    /// Rounds per hostile variant, each a window alone then one beside it.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..))]
    hostile_rounds: u16,
    /// Workers (partitions) per tenant in the isolation figures.
    #[arg(long, default_value_t = 2)]
    partitions: usize,
    /// Which figures to print: memory, instantiation, isolation, hostile
    /// (not by default: about 10 minutes).
    #[arg(long, value_delimiter = ',', default_values_t = ["memory".to_string(), "instantiation".into(), "isolation".into()])]
    sections: Vec<String>,
    /// Internal: measure N tenants in this process and print one row.
    #[arg(long, hide = true)]
    child: Option<usize>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.child {
        return memory_child(n, args.distinct).await;
    }
    let wants = |s: &str| args.sections.iter().any(|x| x == s);
    if wants("memory") {
        memory(&args)?;
    }
    if wants("instantiation") {
        instantiation(&args).await?;
    }
    if wants("isolation") && !args.isolation.is_zero() {
        isolation(&args).await?;
    }
    if wants("hostile") {
        hostile(&args).await?;
    }
    Ok(())
}

// ------------------------------------------------------------------ setup

/// `/proc/self/status` fields in KiB: VmRSS, RssAnon, RssFile.
fn rss() -> [u64; 3] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    [field("VmRSS:"), field("RssAnon:"), field("RssFile:")]
}

/// A config folder: `weir.toml` with `[tenants] dir = "tenants"` and a
/// compile cache inside the folder, plus `extra` TOML.
fn write_config(root: &Path, extra: &str) -> Result<PathBuf> {
    let path = root.join("weir.toml");
    std::fs::create_dir_all(root.join("tenants"))?;
    std::fs::write(
        &path,
        format!(
            r#"
[kafka]
brokers = "127.0.0.1:1"
[elasticsearch]
url = "http://127.0.0.1:1"
[runtime]
cache_dir = "{}"
{extra}
[tenants]
dir = "tenants"
"#,
            root.join("cache").display()
        ),
    )?;
    Ok(path)
}

/// Writes tenant `id`: `modules` as `(file name, bytes)` into its modules
/// folder, and `toml` as its file.
fn write_tenant(root: &Path, id: &str, modules: &[(&str, &[u8])], toml: &str) -> Result<()> {
    let dir = root.join("tenants").join(id).join("modules");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in modules {
        std::fs::write(dir.join(name), bytes)?;
    }
    std::fs::write(root.join("tenants").join(format!("{id}.toml")), toml)?;
    Ok(())
}

/// The 3-module chain every memory-bench tenant runs.
const CHAIN3: &str = r#"modules = [{ path = "clean.wasm" }, { path = "pass.wasm" }, { path = "clean.wasm", name = "clean2" }]"#;

async fn build_registry(config: &Config) -> Result<(Arc<WasmRuntime>, Arc<Registry>)> {
    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    let mut prom = PromRegistry::default();
    let http = OutboundHttp::new(config, &mut prom)?;
    let metrics = Metrics::register(&mut prom);
    let registry = Registry::build(Arc::clone(&runtime), http, metrics, 5, config).await?;
    Ok((runtime, registry))
}

fn pipeline(registry: &Registry, name: &str) -> Result<Arc<Pipeline>> {
    let routes = registry.routes().load_full();
    routes
        .values()
        .find(|p| &*p.name == name)
        .cloned()
        .with_context(|| format!("pipeline {name} not built"))
}

/// A tweet-shaped record (~400 bytes) with `marker` in its text.
fn records(topic: &str, n: usize, marker: &str) -> Vec<Arc<SourceRecord>> {
    let topic: Arc<str> = Arc::from(topic);
    (0..n)
        .map(|i| {
            let value = serde_json::json!({
                "id": format!("t{i}"),
                "text": format!("RT @user{i}: Reading https://example.com/a/{i} &amp; {marker} about <b>item {i}</b>   #weir #bench @friend"),
                "created_at": "2026-11-26T12:00:00Z",
                "lang": "en",
                "user": {"id": format!("u{}", i % 97), "screen_name": format!("user{}", i % 97), "followers_count": i % 1000},
                "retweet_count": i % 13,
                "like_count": i % 29
            });
            Arc::new(SourceRecord {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: i as i64,
                timestamp_ms: None,
                key: None,
                headers: Vec::new(),
                value: Bytes::from(value.to_string()),
            })
        })
        .collect()
}

// ----------------------------------------------------------------- memory

fn memory(args: &Args) -> Result<()> {
    println!(
        "\n== memory per idle tenant pipeline (3 modules each; one process per row{}) ==",
        if args.distinct {
            "; every tenant's modules distinct"
        } else {
            ""
        }
    );
    println!(
        "{:>7} {:>8} {:>8} {:>11} {:>10} {:>10} {:>10} {:>13} {:>10}",
        "tenants",
        "modules",
        "build s",
        "RSS before",
        "RSS after",
        "anon",
        "file",
        "per pipeline",
        "marginal"
    );
    let exe = std::env::current_exe()?;
    let mut previous: Option<(usize, f64)> = None;
    for &n in &args.tenants {
        let mut cmd = Command::new(&exe);
        cmd.arg("--child").arg(n.to_string());
        if args.distinct {
            cmd.arg("--distinct");
        }
        let out = cmd.output()?;
        if !out.status.success() {
            bail!(
                "child for {n} tenants failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // "<build s> <before> <after> <anon> <file>" (KiB).
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        anyhow::ensure!(v.len() == 5, "child printed {text:?}");
        let (build, before, after, anon, file) = (v[0], v[1], v[2], v[3], v[4]);
        let mib = |k: f64| k / 1024.0;
        let marginal = previous
            .filter(|(pn, _)| *pn < n)
            .map(|(pn, pafter)| format!("{:.0}", (after - pafter) / (n - pn) as f64))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>7} {:>8} {:>8.2} {:>11.1} {:>10.1} {:>10.1} {:>10.1} {:>13.0} {:>10}",
            n,
            n * 3,
            build,
            mib(before),
            mib(after),
            mib(anon),
            mib(file),
            (after - before) / n as f64,
            marginal,
        );
        previous = Some((n, after));
    }
    println!(
        "(RSS, anon, file in MiB, after the build; before = runtime and instance pool created, nothing loaded;\n \
         per pipeline = (after - before) / tenants and marginal = the slope from the row above, in KiB)"
    );
    Ok(())
}

async fn memory_child(n: usize, distinct: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let config_path = write_config(root, "")?;
    let clean = std::fs::read(module_wasm("text-clean")?)?;
    let pass = std::fs::read(module_wasm("passthrough")?)?;
    for i in 0..n {
        let id = format!("t{i}");
        let (c, p) = if distinct {
            (
                with_custom_section(&clean, "weir-bench-tenant", id.as_bytes()),
                with_custom_section(&pass, "weir-bench-tenant", id.as_bytes()),
            )
        } else {
            (clean.clone(), pass.clone())
        };
        write_tenant(
            root,
            &id,
            &[("clean.wasm", &c), ("pass.wasm", &p)],
            &format!(
                "[pipelines.tweets]\ntopics = [\"{id}.tweets\"]\nindex = \"{id}-tweets\"\n{CHAIN3}\n"
            ),
        )?;
    }
    let config = Config::load(&config_path)?;
    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    let before = rss();
    let mut prom = PromRegistry::default();
    let http = OutboundHttp::new(&config, &mut prom)?;
    let metrics = Metrics::register(&mut prom);
    let t = Instant::now();
    let registry = Registry::build(Arc::clone(&runtime), http, metrics, 5, &config).await?;
    let build = t.elapsed();
    let after = rss();
    let built = registry.routes().load().len();
    anyhow::ensure!(built == n, "{built} pipelines built for {n} tenants");
    println!(
        "{:.3} {} {} {} {}",
        build.as_secs_f64(),
        before[0],
        after[0],
        after[1],
        after[2]
    );
    drop(registry);
    Ok(())
}

// ---------------------------------------------------------- instantiation

async fn instantiation(args: &Args) -> Result<()> {
    const ROUNDS: usize = 5;
    println!(
        "\n== run_chain per batch (a fresh instance of each module per batch; µs, best of {ROUNDS} rounds of {} batches, pooling on/off interleaved) ==",
        args.iterations / ROUNDS
    );
    println!(
        "{:<8} {:>16} {:>16} {:>18} {:>14}",
        "pooling",
        "1 module, 1 rec",
        "3 modules, 1 rec",
        format!("3 modules, {} rec", args.batch),
        "µs/record"
    );
    let clean = std::fs::read(module_wasm("text-clean")?)?;
    let pass = std::fs::read(module_wasm("passthrough")?)?;
    // Both registries first, so the rounds can alternate between them and
    // load from other processes on the machine hits both alike.
    let mut setups = Vec::new();
    for pooling in ["on", "off"] {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        let config_path = write_config(root, &format!("pooling = \"{pooling}\""))?;
        write_tenant(
            root,
            "t0",
            &[("clean.wasm", &clean), ("pass.wasm", &pass)],
            &format!(
                "[pipelines.chain]\ntopics = [\"t0.chain\"]\nindex = \"t0-chain\"\n{CHAIN3}\n\
                 [pipelines.one]\ntopics = [\"t0.one\"]\nindex = \"t0-one\"\nmodules = [{{ path = \"pass.wasm\" }}]\n"
            ),
        )?;
        let config = Config::load(&config_path)?;
        let (rt, registry) = build_registry(&config).await?;
        let one = pipeline(&registry, "t0.one")?;
        let chain = pipeline(&registry, "t0.chain")?;
        setups.push((pooling, rt, one, chain, dir, registry));
    }
    let single = records("t0.one", 1, "thinking");
    let batch = records("t0.chain", args.batch, "thinking");
    let per_round = (args.iterations / ROUNDS).max(1);
    // best[setup][figure], µs per batch.
    let mut best = vec![[f64::INFINITY; 3]; setups.len()];
    for round in 0..=ROUNDS {
        for (i, (_, rt, one, chain, _, _)) in setups.iter().enumerate() {
            for (f, (p, recs)) in [(one, &single), (chain, &single), (chain, &batch)]
                .into_iter()
                .enumerate()
            {
                let c = p.chain.load_full();
                let t = Instant::now();
                for _ in 0..per_round {
                    let out = run_chain(rt, &c, recs, &p.metrics).await;
                    assert!(out.failures.is_empty(), "{:?}", out.failures);
                }
                let us = t.elapsed().as_secs_f64() * 1e6 / per_round as f64;
                // Round 0 warms up (first instances, caches) and is not counted.
                if round > 0 {
                    best[i][f] = best[i][f].min(us);
                }
            }
        }
    }
    for (i, (pooling, ..)) in setups.iter().enumerate() {
        let [a, b, c] = best[i];
        println!(
            "{:<8} {:>16.1} {:>16.1} {:>18.1} {:>14.2}",
            pooling,
            a,
            b,
            c,
            c / args.batch as f64
        );
    }
    Ok(())
}

// --------------------------------------------------------------- isolation

/// Where the hostile figures' workers dispatch their outputs.
type Outputs = (tokio::sync::mpsc::Sender<IndexRequest>, DeadLetterQueue);

/// Runs one tenant's pipeline like the partition worker does, `workers`
/// times in parallel, until `stop`; counts records and batches. With
/// `outputs`, each batch's documents and failures are dispatched there as
/// the worker does, so what a module makes the host carry is carried.
#[allow(clippy::too_many_arguments)]
fn spawn_workers(
    rt: &Arc<WasmRuntime>,
    scheduler: &Arc<FairScheduler>,
    pipeline: &Arc<Pipeline>,
    recs: &[Arc<SourceRecord>],
    workers: usize,
    outputs: Option<&Outputs>,
    stop: &CancellationToken,
    done: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (rt, scheduler, pipeline, stop, done) = (
                Arc::clone(rt),
                Arc::clone(scheduler),
                Arc::clone(pipeline),
                stop.clone(),
                Arc::clone(done),
            );
            let outputs = outputs.cloned();
            let recs = recs.to_vec();
            tokio::spawn(async move {
                // The host's own per-batch step, cancelled only when the
                // phase ends (a batch cut short never reaches the breaker,
                // so a timeout here would keep a failing tenant spinning).
                while !stop.is_cancelled() {
                    let step = async {
                        let out =
                            weir::pipeline::process_batch(&rt, &scheduler, &pipeline, &recs).await;
                        if let Some((sink, dlq)) = &outputs {
                            dispatch_outputs(&pipeline, &recs, out, sink, dlq, Box::new(|| {}))
                                .await;
                        }
                    };
                    tokio::select! {
                        () = step => {
                            done.fetch_add(recs.len() as u64, Ordering::Relaxed);
                        }
                        () = stop.cancelled() => break,
                    }
                }
            })
        })
        .collect()
}

/// The isolation figures' config: tenant a runs text-clean, b a module
/// that loops on every record (100 ms CPU quota), c one that allocates
/// without bound (16 MiB quota). Returns the config file.
fn write_isolation_tenants(root: &Path) -> Result<PathBuf> {
    let config_path = write_config(root, "")?;
    write_tenant(
        root,
        "a",
        &[("clean.wasm", &std::fs::read(module_wasm("text-clean")?)?)],
        "[pipelines.tweets]\ntopics = [\"a.tweets\"]\nindex = \"a-tweets\"\nmodules = [{ path = \"clean.wasm\" }]\n",
    )?;
    write_tenant(
        root,
        "b",
        &[("spin.wasm", &std::fs::read(module_wasm("fixture-spin")?)?)],
        "[quotas]\nmax_batch_time = \"100ms\"\n[pipelines.tweets]\ntopics = [\"b.tweets\"]\nindex = \"b-tweets\"\nmodules = [{ path = \"spin.wasm\" }]\n",
    )?;
    write_tenant(
        root,
        "c",
        &[("alloc.wasm", &std::fs::read(module_wasm("fixture-alloc")?)?)],
        "[quotas]\nmax_memory_bytes = 16777216\n[pipelines.tweets]\ntopics = [\"c.tweets\"]\nindex = \"c-tweets\"\nmodules = [{ path = \"alloc.wasm\" }]\n",
    )?;
    Ok(config_path)
}

async fn isolation(args: &Args) -> Result<()> {
    println!(
        "\n== isolation: tenant a (text-clean, {} records/batch) alone vs alongside b (spin) and c (alloc); {} workers per tenant, {} slots; {} rounds of 2 × {} ==",
        args.batch,
        args.partitions,
        weir::config::RuntimeConfig::default().max_concurrency,
        args.rounds,
        args.isolation
    );
    let dir = tempfile::tempdir()?;
    let config_path = write_isolation_tenants(dir.path())?;
    let config = Config::load(&config_path)?;
    let (rt, registry) = build_registry(&config).await?;
    let scheduler = Arc::new(FairScheduler::new(rt.config().max_concurrency));
    let stop = CancellationToken::new();
    let a_done = Arc::new(AtomicU64::new(0));
    let noise_done = Arc::new(AtomicU64::new(0));
    let a = pipeline(&registry, "a.tweets")?;
    let noisy = [
        pipeline(&registry, "b.tweets")?,
        pipeline(&registry, "c.tweets")?,
    ];
    // Warm a up (first instantiations, caches); b and c start paused.
    let recs_a = records("a.tweets", args.batch, "thinking");
    for _ in 0..20 {
        run_chain(&rt, &a.chain.load_full(), &recs_a, &a.metrics).await;
    }
    let mut tasks = Vec::new();
    for (p, marker) in noisy.iter().zip(["SPIN", "BOMB"]) {
        p.control.set_paused(true);
        let recs = records(&p.name, args.batch, marker);
        tasks.extend(spawn_workers(
            &rt,
            &scheduler,
            p,
            &recs,
            args.partitions,
            None,
            &stop,
            &noise_done,
        ));
    }
    tasks.extend(spawn_workers(
        &rt,
        &scheduler,
        &a,
        &recs_a,
        args.partitions,
        None,
        &stop,
        &a_done,
    ));

    // a's records/s over one window.
    let window = |a_done: &Arc<AtomicU64>| {
        let (a_done, len) = (Arc::clone(a_done), *args.isolation);
        async move {
            let (t, before) = (Instant::now(), a_done.load(Ordering::Relaxed));
            tokio::time::sleep(len).await;
            (a_done.load(Ordering::Relaxed) - before) as f64 / t.elapsed().as_secs_f64()
        }
    };
    // Slot time b and c have held so far: the Wasm capacity a could lose.
    let noise_held = || -> Duration {
        scheduler
            .usage()
            .into_iter()
            .filter(|(tenant, _)| tenant != "a")
            .map(|(_, held)| held)
            .sum()
    };
    println!(
        "{:<6} {:>12} {:>14} {:>8} {:>13} {:>12} {:>10}  breakers (b, c)",
        "round", "a alone/s", "a alongside/s", "change", "b/c slot use", "b/c batches", "b/c trips",
    );
    let (mut sum_alone, mut sum_noisy, mut changes) = (0.0, 0.0, Vec::new());
    let mut total_held = Duration::ZERO;
    for round in 1..=args.rounds {
        // Alone: b and c paused; a batch of theirs already running
        // finishes first (≤ 4 × 100 ms).
        for p in &noisy {
            p.control.set_paused(true);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let alone = window(&a_done).await;
        // Alongside: b and c resume with their breakers where they were,
        // so later rounds show the backed-off steady state.
        for p in &noisy {
            p.control.set_paused(false);
        }
        let noise_before = noise_done.load(Ordering::Relaxed);
        let held_before = noise_held();
        let trips_before: u64 = noisy.iter().map(|p| p.control.breaker.trips()).sum();
        let alongside = window(&a_done).await;
        // Includes a batch still finishing when the window ends.
        let held = noise_held() - held_before;
        total_held += held;
        let share =
            held.as_secs_f64() / (args.isolation.as_secs_f64() * scheduler.slots() as f64) * 100.0;
        let batches = (noise_done.load(Ordering::Relaxed) - noise_before) / args.batch as u64;
        let trips = noisy.iter().map(|p| p.control.breaker.trips()).sum::<u64>() - trips_before;
        let change = (alongside / alone - 1.0) * 100.0;
        let states = noisy
            .iter()
            .map(|p| format!("{:?}", p.control.breaker.status().state))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{round:<6} {alone:>12.0} {alongside:>14.0} {change:>7.1}% {share:>12.1}% {batches:>12} {trips:>10}  {states}"
        );
        sum_alone += alone;
        sum_noisy += alongside;
        changes.push(change);
    }
    stop.cancel();
    for p in &noisy {
        p.control.set_paused(false);
    }
    for task in tasks {
        task.await?;
    }
    changes.sort_by(f64::total_cmp);
    println!(
        "all rounds: a alongside b and c {:+.1}% (total), median round {:+.1}%, worst round {:+.1}%; b and c held {:.1}% of the slot time alongside",
        (sum_noisy / sum_alone - 1.0) * 100.0,
        changes[changes.len() / 2],
        changes[0],
        total_held.as_secs_f64()
            / (args.isolation.as_secs_f64() * f64::from(args.rounds) * scheduler.slots() as f64)
            * 100.0
    );
    Ok(())
}

// ---------------------------------------------------------------- hostile

/// A hostile tenant of the `hostile` figures.
struct Hostile {
    /// Tenant id (its pipeline is `<id>.tweets`).
    id: &'static str,
    /// What its module does, for the table.
    what: &'static str,
    /// How long a batch of it already running may still hold a slot after
    /// it is paused (the sleeper: its first call and 3 single records, each
    /// stopped at the 1 s wall-clock bound).
    settle: Duration,
}

const HOSTILE: [Hostile; 4] = [
    Hostile {
        id: "sleep",
        what: "fixture-sleep: sleeps 60 s per record in process (max_batch_wall_time 1s)",
        settle: Duration::from_millis(4500),
    },
    Hostile {
        id: "sleepcap",
        what: "the same sleeper with max_concurrent_batches = 1",
        settle: Duration::from_millis(4500),
    },
    Hostile {
        id: "fanout",
        what: "fixture-hostile fanout: 1000 documents per record (max_documents_per_record 100)",
        settle: Duration::from_millis(500),
    },
    Hostile {
        id: "reason",
        what: "fixture-hostile fail: every record fails with a 4 MiB reason",
        settle: Duration::from_millis(500),
    },
];

/// Tenant a (text-clean) and one tenant per [`HOSTILE`] entry, each with
/// the default quotas but the sleeper's wall-clock bound (and its CPU
/// bound, which may not exceed it). Returns the config.
fn write_hostile_tenants(root: &Path) -> Result<PathBuf> {
    let config_path = write_config(root, "")?;
    let pipeline = |id: &str, module: &str, settings: &str| {
        format!(
            "[pipelines.tweets]\ntopics = [\"{id}.tweets\"]\nindex = \"{id}-tweets\"\nmodules = [{{ path = \"{module}\", config = {{ {settings} }} }}]\n"
        )
    };
    // (tenant, module, file, [quotas], init settings)
    let tenants = [
        ("a", "text-clean", "clean.wasm", "", ""),
        (
            "sleep",
            "fixture-sleep",
            "sleep.wasm",
            "[quotas]\nmax_batch_time = \"1s\"\nmax_batch_wall_time = \"1s\"\n",
            "during = \"process\", sleep_ms = 60000",
        ),
        (
            "sleepcap",
            "fixture-sleep",
            "sleep.wasm",
            "[quotas]\nmax_batch_time = \"1s\"\nmax_batch_wall_time = \"1s\"\nmax_concurrent_batches = 1\n",
            "during = \"process\", sleep_ms = 60000",
        ),
        (
            "fanout",
            "fixture-hostile",
            "hostile.wasm",
            "",
            "mode = \"fanout\", n = 1000",
        ),
        (
            "reason",
            "fixture-hostile",
            "hostile.wasm",
            "",
            "mode = \"fail\", reason_bytes = 4194304",
        ),
    ];
    for (id, module, file, quotas, settings) in tenants {
        let bytes = std::fs::read(module_wasm(module)?)?;
        let toml = format!("{quotas}{}", pipeline(id, file, settings));
        write_tenant(root, id, &[(file, &bytes)], &toml)?;
    }
    Ok(config_path)
}

/// The good tenant's records/s alone vs beside each hostile tenant in turn,
/// paired: `--rounds` rounds of a window alone (every hostile tenant
/// paused) then one beside the variant's hostile tenant, in one registry so
/// its breaker carries over from round to round.
async fn hostile(args: &Args) -> Result<()> {
    let window_len = *args.hostile_window;
    println!(
        "\n== hostile: tenant a (text-clean, {} records/batch) alone vs beside one hostile tenant; {} workers per tenant, {} slots; per variant {} rounds of 2 × {} ==",
        args.batch,
        args.partitions,
        weir::config::RuntimeConfig::default().max_concurrency,
        args.hostile_rounds,
        args.hostile_window
    );
    let dir = tempfile::tempdir()?;
    let config = Config::load(&write_hostile_tenants(dir.path())?)?;
    let (rt, registry) = build_registry(&config).await?;
    let scheduler = Arc::new(FairScheduler::new(rt.config().max_concurrency));
    // Outputs drained as fast as they come (no Elasticsearch, no Kafka):
    // what is measured is the host's share, not a sink's.
    let (sink, mut docs) = tokio::sync::mpsc::channel::<IndexRequest>(4096);
    let (dlq, mut letters) = DeadLetterQueue::channel(1024);
    let drained = Arc::new(AtomicU64::new(0));
    let (d1, d2) = (Arc::clone(&drained), Arc::clone(&drained));
    tokio::spawn(async move {
        while let Some(doc) = docs.recv().await {
            doc.ack.ack();
            d1.fetch_add(1, Ordering::Relaxed);
        }
    });
    tokio::spawn(async move {
        while let Some(letter) = letters.recv().await {
            letter.ack.ack();
            d2.fetch_add(1, Ordering::Relaxed);
        }
    });
    let outputs = (sink, dlq);
    let stop = CancellationToken::new();
    let a_done = Arc::new(AtomicU64::new(0));
    let noise_done = Arc::new(AtomicU64::new(0));
    let a = pipeline(&registry, "a.tweets")?;
    let recs_a = records("a.tweets", args.batch, "thinking");
    for _ in 0..20 {
        run_chain(&rt, &a.chain.load_full(), &recs_a, &a.metrics).await;
    }
    let mut tasks = Vec::new();
    let mut hostile = Vec::new();
    for h in &HOSTILE {
        let p = pipeline(&registry, &format!("{}.tweets", h.id))?;
        p.control.set_paused(true);
        let recs = records(&p.name, args.batch, "hostile");
        tasks.extend(spawn_workers(
            &rt,
            &scheduler,
            &p,
            &recs,
            args.partitions,
            Some(&outputs),
            &stop,
            &noise_done,
        ));
        hostile.push(p);
    }
    tasks.extend(spawn_workers(
        &rt,
        &scheduler,
        &a,
        &recs_a,
        args.partitions,
        Some(&outputs),
        &stop,
        &a_done,
    ));
    let window = || {
        let a_done = Arc::clone(&a_done);
        async move {
            let (t, before) = (Instant::now(), a_done.load(Ordering::Relaxed));
            tokio::time::sleep(window_len).await;
            (a_done.load(Ordering::Relaxed) - before) as f64 / t.elapsed().as_secs_f64()
        }
    };
    let held_by = |id: &str| -> Duration {
        scheduler
            .usage()
            .into_iter()
            .filter(|(tenant, _)| tenant == id)
            .map(|(_, held)| held)
            .sum()
    };
    let mut summary = Vec::new();
    for (h, p) in HOSTILE.iter().zip(&hostile) {
        println!("\n-- beside `{}`: {}", h.id, h.what);
        println!(
            "{:<6} {:>12} {:>12} {:>8} {:>10} {:>11} {:>7} {:>10}  breaker",
            "round", "a alone/s", "a beside/s", "change", "slot use", "records/s", "trips", "RSS",
        );
        let (mut sum_alone, mut sum_beside, mut changes) = (0.0, 0.0, Vec::new());
        for round in 1..=args.hostile_rounds {
            // Alone: the hostile tenant paused; a batch of its already
            // running finishes first.
            p.control.set_paused(true);
            tokio::time::sleep(h.settle).await;
            let alone = window().await;
            p.control.set_paused(false);
            let (held0, noise0) = (held_by(h.id), noise_done.load(Ordering::Relaxed));
            let trips0 = p.control.breaker.trips();
            let beside = window().await;
            let held = held_by(h.id) - held0;
            let share =
                held.as_secs_f64() / (window_len.as_secs_f64() * scheduler.slots() as f64) * 100.0;
            let noise_rate =
                (noise_done.load(Ordering::Relaxed) - noise0) as f64 / window_len.as_secs_f64();
            let trips = p.control.breaker.trips() - trips0;
            let change = (beside / alone - 1.0) * 100.0;
            println!(
                "{round:<6} {alone:>12.0} {beside:>12.0} {change:>7.1}% {share:>9.1}% {noise_rate:>11.0} {trips:>7} {:>6} MiB  {:?}",
                rss()[0] / 1024,
                p.control.breaker.status().state
            );
            sum_alone += alone;
            sum_beside += beside;
            changes.push(change);
        }
        p.control.set_paused(true);
        changes.sort_by(f64::total_cmp);
        let ratio = sum_beside / sum_alone;
        println!(
            "beside `{}`: a's records/s beside/alone = {ratio:.3} ({:+.1}%), median round {:+.1}%, worst round {:+.1}%",
            h.id,
            (ratio - 1.0) * 100.0,
            changes[changes.len() / 2],
            changes[0]
        );
        summary.push((h.id, ratio));
    }
    stop.cancel();
    for p in &hostile {
        p.control.set_paused(false);
    }
    for task in tasks {
        task.await?;
    }
    println!("\nsummary (a beside / a alone, target ≥ 0.90):");
    for (id, ratio) in summary {
        let verdict = if ratio >= 0.9 {
            "within 10%"
        } else {
            "MISSES 10%"
        };
        println!("  {id:<8} {ratio:.3}  {verdict}");
    }
    println!(
        "outputs drained: {} documents and dead letters",
        drained.load(Ordering::Relaxed)
    );
    Ok(())
}
