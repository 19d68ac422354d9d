//! The scenarios: start the rig, produce the corpus once, run each scenario
//! as a child process, measure it from outside, print a table, write JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use weir_benches::native::Transform;
use weir_benches::procstat;
use weir_benches::prom::Histogram;
use weir_testkit::{EsClient, Kafka, NoopBulk, Osmem, Process, free_port, module_wasm, tools};

/// Topic the 1M-record corpus is produced to.
const TOPIC: &str = "bench-tweets";
/// Index the bench pipelines write to (the no-op endpoint ignores it).
const INDEX: &str = "bench";
const BATCH_HISTOGRAM: &str = "weir_batch_duration_seconds";
/// Gauges sampled during the steady state, to see where a run waits.
const SAMPLED_GAUGES: [&str; 2] = ["weir_paused_partitions", "weir_es_in_flight_requests"];

/// The value of an unlabelled gauge in Prometheus text (0 when absent).
fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// weir with zero modules -> no-op bulk, plus a bare rdkafka consumer.
    Raw,
    /// text-clean + enrich as native Rust in the host -> no-op bulk.
    Native,
    /// text-clean + 2 JSON validations natively (the logic of the current wasm-3 chain).
    NativeClean,
    /// text-clean -> enrich|passthrough -> passthrough as Wasm -> no-op bulk.
    #[value(name = "wasm-3")]
    Wasm3,
    /// The tweets pipeline with detect-hate over HTTP to weir-classifier.
    Classify,
    /// The default config (config/weir.toml) into osmem.
    Osmem,
}

#[derive(clap::Args)]
pub struct Args {
    /// Records in the corpus (tweet-shaped JSON, ~400 bytes each).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Records for the osmem scenario (osmem indexes ~6k docs/s).
    #[arg(long, default_value_t = 100_000)]
    osmem_records: u64,
    /// Scenarios to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "raw,native,native-clean,wasm-3,classify,osmem"
    )]
    scenarios: Vec<Scenario>,
    /// Partitions of the corpus topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// `kafka.batch.max_records` for the bench pipelines (host default: 500).
    #[arg(long)]
    source_batch: Option<usize>,
    /// The weir binary (default: next to this one, built with `cargo build --release -p weir`).
    #[arg(long)]
    weir_bin: Option<PathBuf>,
    /// Don't run `cargo build --release -p weir` first.
    #[arg(long)]
    no_build: bool,
    /// Use passthrough as wasm-3's middle module even when an `enrich`
    /// module is built (isolates the host's per-module overhead).
    #[arg(long)]
    no_enrich: bool,
    /// `max_batch` for detect-hate in the classify scenario (texts per
    /// classifier request; default: the module's).
    #[arg(long)]
    classify_max_batch: Option<usize>,
    /// Record a `perf record` profile of these scenarios' host process over
    /// the steady-state window (files next to the JSON results).
    #[arg(long, value_enum, value_delimiter = ',')]
    perf: Vec<Scenario>,
    /// Options for `perf record` (before `-p PID -o FILE`).
    #[arg(long, default_value = "-F 499 -g", allow_hyphen_values = true)]
    perf_args: String,
    /// Give up on a scenario when no document arrives for this long (seconds).
    #[arg(long, default_value_t = 120)]
    stall_timeout: u64,
    /// Where results go (default: $CARGO_TARGET_DIR/weir-bench).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One row of the results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub scenario: String,
    /// What the row measures, in a few words.
    pub what: String,
    /// `ok`, `skipped: ...` or `failed: ...`.
    pub status: String,
    pub records: u64,
    /// Steady state: documents after the first one / time since the first one.
    pub records_per_s: Option<f64>,
    /// Host process CPU (user + system) per million records, steady state.
    pub cpu_s_per_million: Option<f64>,
    /// CPU of the whole host process lifetime (startup, module compilation, join).
    pub cpu_total_s: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub batch_p50_ms: Option<f64>,
    pub batch_p99_ms: Option<f64>,
    pub batch_mean_ms: Option<f64>,
    pub batches: Option<f64>,
    /// Process start to the first indexed document (startup + group join).
    pub startup_s: Option<f64>,
    /// First indexed document to the last.
    pub steady_s: Option<f64>,
    /// Broker (tansu) CPU per million records over the same window.
    pub broker_cpu_s_per_million: Option<f64>,
    /// CPU per million records of the bulk endpoint's process: this
    /// process for the no-op endpoint (it runs here), osmem-server for osmem.
    pub bench_cpu_s_per_million: Option<f64>,
    /// CPU per million records of the service the pipeline calls
    /// (weir-classifier in `classify` and `osmem`), over the same window.
    pub service_cpu_s_per_million: Option<f64>,
    /// CPUs' worth of work other processes on the machine did during the
    /// window (machine busy time minus host, broker, bench and service): how
    /// disturbed the run was. Near 0 on an idle machine.
    pub others_cores: Option<f64>,
    /// Share of the window the host's threads spent runnable but waiting
    /// for a CPU (summed over threads, per second of window).
    pub host_runq_wait: Option<f64>,
    pub perf_data: Option<String>,
    /// Host CPU per million records by thread name (steady state).
    pub threads_cpu_s_per_million: Vec<(String, f64)>,
    /// Gauges sampled every 50 ms over the window: mean values
    /// (`weir_paused_partitions`, `weir_es_in_flight_requests`).
    pub gauges_mean: Vec<(String, f64)>,
    /// The host's /metrics at the end of the window.
    pub metrics_file: Option<String>,
}

impl Row {
    fn new(scenario: &str, what: &str, records: u64) -> Self {
        Row {
            scenario: scenario.into(),
            what: what.into(),
            records,
            status: "ok".into(),
            ..Row::default()
        }
    }
    fn skipped(scenario: &str, why: &str) -> Self {
        Row {
            scenario: scenario.into(),
            status: format!("skipped: {why}"),
            ..Row::default()
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    started_at: String,
    host: HostInfo,
    records: u64,
    corpus_avg_bytes: f64,
    produce_records_per_s: f64,
    weir_bin: String,
    source_batch: Option<usize>,
    wasm3_chain: Vec<String>,
    rows: &'a [Row],
    ratios: Vec<(String, f64)>,
}

#[derive(Serialize)]
struct HostInfo {
    cpus: usize,
    kernel: String,
}

/// Where things are.
struct Env {
    weir: PathBuf,
    out_dir: PathBuf,
    work: tempfile::TempDir,
    stamp: String,
    args: Args,
}

pub async fn run(args: Args) -> Result<()> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let stamp = started_at.replace([':', '-'], "");
    let weir = match &args.weir_bin {
        Some(p) => p.clone(),
        None => {
            if !args.no_build {
                cargo_build(&["build", "--release", "-p", "weir"])?;
            }
            std::env::current_exe()?
                .parent()
                .context("exe has a folder")?
                .join("weir")
        }
    };
    anyhow::ensure!(
        weir.is_file(),
        "weir binary not found at {}",
        weir.display()
    );
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("weir-bench"));
    std::fs::create_dir_all(&out_dir)?;
    let env = Env {
        weir,
        out_dir,
        work: tempfile::Builder::new().prefix("weir-bench-").tempdir()?,
        stamp,
        args,
    };
    let a = &env.args;
    eprintln!(
        "weir-bench: {} records, scenarios {:?}, weir = {}",
        a.records,
        a.scenarios,
        env.weir.display()
    );

    let needs_corpus = a.scenarios.iter().any(|s| *s != Scenario::Osmem);
    let kafka = Kafka::start().await?;
    let bulk = NoopBulk::start().await?;
    let (mut produce_rate, mut avg_bytes) = (0.0, 0.0);
    if needs_corpus {
        kafka.create_topic(TOPIC, a.partitions).await?;
        let (rate, avg) = produce(&kafka, TOPIC, a.records).await?;
        (produce_rate, avg_bytes) = (rate, avg);
    }

    let chain = wasm3_chain(a.no_enrich);
    let mut rows: Vec<Row> = Vec::new();
    for scenario in a.scenarios.clone() {
        let result = match scenario {
            Scenario::Raw => {
                let mut both = Vec::new();
                both.push(
                    host_row(
                        &env,
                        &kafka,
                        &bulk,
                        "raw",
                        "weir, 0 modules: consume, copy, JSON validation, bulk encode+gzip+HTTP",
                        &[],
                        None,
                        &[],
                        None,
                    )
                    .await,
                );
                both.push(
                    kafka_ceiling(&env, &kafka)
                        .await
                        .unwrap_or_else(|e| failed("raw-kafka", e)),
                );
                rows.extend(both);
                continue;
            }
            Scenario::Native => {
                host_row(
                    &env,
                    &kafka,
                    &bulk,
                    "native",
                    "host pieces, text-clean + enrich in native Rust",
                    &[],
                    Some(Transform::CleanEnrich),
                    &[],
                    None,
                )
                .await
            }
            Scenario::NativeClean => {
                host_row(
                    &env,
                    &kafka,
                    &bulk,
                    "native-clean",
                    "host pieces, text-clean + 2 validations in native Rust",
                    &[],
                    Some(Transform::CleanValidate),
                    &[],
                    None,
                )
                .await
            }
            Scenario::Wasm3 => {
                let what = format!(
                    "weir run, Wasm: {}",
                    chain
                        .iter()
                        .map(|m| m.0.as_str())
                        .collect::<Vec<_>>()
                        .join(" -> ")
                );
                host_row(
                    &env,
                    &kafka,
                    &bulk,
                    "wasm-3",
                    &what,
                    &chain,
                    None,
                    &[],
                    None,
                )
                .await
            }
            Scenario::Classify => classify(&env, &kafka, &bulk).await,
            Scenario::Osmem => osmem(&env, &kafka)
                .await
                .unwrap_or_else(|e| failed("osmem", e)),
        };
        rows.push(result);
        eprintln!("{}", table(&rows[rows.len() - 1..], false));
        eprintln!("{}", threads_line(&rows[rows.len() - 1]));
    }

    let ratios = ratios(&rows);
    println!();
    println!(
        "weir-bench: {} records (~{:.0} bytes JSON) on {} partitions of tansu (loopback), {} CPUs; corpus produced at {:.0} records/s",
        a.records,
        avg_bytes,
        a.partitions,
        cpus(),
        produce_rate
    );
    println!("{}", table(&rows, true));
    println!("host CPU s/M by thread | gauges sampled every 50 ms (mean):");
    for r in &rows {
        if !r.threads_cpu_s_per_million.is_empty() {
            println!("{}", threads_line(r));
        }
    }
    for (name, value) in &ratios {
        println!("  {name}: {value:.2}");
    }
    println!("notes:");
    println!(
        "  records/s and CPU are steady state: from the first indexed document (after the consumer-group join) to the last."
    );
    println!(
        "  CPU = utime+stime of the measured process (/proc/<pid>/stat); RSS = VmHWM. broker/sink = CPU s/M of tansu and of the bulk endpoint's process (weir-bench itself for the no-op endpoint; osmem-server for osmem); service = CPU s/M of weir-classifier (classify, osmem)."
    );
    println!(
        "  raw includes the host's JSON validation and bulk encoding (the host has no consume-only mode); raw-kafka is a bare rdkafka consumer (consume, store offsets, commit)."
    );
    println!(
        "  native/native-clean batch latency covers the chain (copy + validation) only: the native transform runs as documents are handed to the sink."
    );
    println!(
        "  batch latency = weir_batch_duration_seconds (run_chain per source batch) from /metrics, interpolated in exponential buckets (factor 2)."
    );
    println!(
        "  others = CPUs' worth of work by other processes on the machine during the window; runq = host threads' run-queue wait per second: both near 0 on an idle machine."
    );
    println!(
        "  2 cores are shared by tansu, the host and the bulk endpoint: figures are for this machine, not a host in isolation."
    );

    let report = Report {
        started_at,
        host: HostInfo {
            cpus: cpus(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
        },
        records: a.records,
        corpus_avg_bytes: avg_bytes,
        produce_records_per_s: produce_rate,
        weir_bin: env.weir.display().to_string(),
        source_batch: a.source_batch,
        wasm3_chain: chain.iter().map(|m| m.0.clone()).collect(),
        rows: &rows,
        ratios,
    };
    let path = env.out_dir.join(format!("results-{}.json", env.stamp));
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    println!("results: {}", path.display());
    drop(bulk);
    drop(kafka);
    Ok(())
}

fn failed(scenario: &str, e: anyhow::Error) -> Row {
    eprintln!("weir-bench: {scenario} failed: {e:#}");
    Row {
        scenario: scenario.into(),
        status: format!("failed: {}", format!("{e:#}").lines().next().unwrap_or("")),
        ..Row::default()
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools::workspace_root().join("target"))
}

fn cargo_build(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(tools::workspace_root());
    // Build next to this binary (`<target>/release/weir-bench`), whatever
    // the caller's environment says, so `weir` and `weir-classifier` are
    // found beside it.
    if std::env::var_os("CARGO_TARGET_DIR").is_none()
        && let Some(target) = std::env::current_exe()?.parent().and_then(Path::parent)
    {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    eprintln!("weir-bench: cargo {}", args.join(" "));
    let status = cmd.status().context("run cargo")?;
    anyhow::ensure!(
        status.success(),
        "cargo {} failed ({status})",
        args.join(" ")
    );
    Ok(())
}

/// Produces records `0..n` of the corpus; returns (records/s, average bytes).
async fn produce(kafka: &Kafka, topic: &str, n: u64) -> Result<(f64, f64)> {
    let t = Instant::now();
    let mut bytes = 0usize;
    // In chunks, so the delivery futures of 1M records are not all held at once.
    let chunk = 100_000u64;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let records: Vec<_> = (start..end).map(weir_benches::corpus::tweet).collect();
        bytes += records.iter().map(|(_, v)| v.len()).sum::<usize>();
        kafka
            .produce(topic, records.into_iter().map(|(k, v)| (Some(k), v)))
            .await?;
        start = end;
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!("weir-bench: produced {n} records to {topic} in {secs:.1} s");
    Ok((n as f64 / secs, bytes as f64 / n.max(1) as f64))
}

/// The wasm-3 chain: (module name, path, config).
type ChainModule = (String, PathBuf, Vec<(&'static str, &'static str)>);

fn wasm3_chain(no_enrich: bool) -> Vec<ChainModule> {
    let mut chain = Vec::new();
    if let Ok(p) = module_wasm("text-clean") {
        chain.push(("text-clean".into(), p, vec![("fields", "text")]));
    }
    match module_wasm("enrich").ok().filter(|_| !no_enrich) {
        Some(p) => chain.push(("enrich".into(), p, vec![])),
        None => {
            if let Ok(p) = module_wasm("passthrough") {
                chain.push(("passthrough-1".into(), p, vec![]));
            }
        }
    }
    if let Ok(p) = module_wasm("passthrough") {
        chain.push(("passthrough-2".into(), p, vec![]));
    }
    chain
}

/// A weir.toml for one bench pipeline on the corpus topic.
fn bench_config(
    env: &Env,
    es_url: &str,
    kafka: &Kafka,
    group: &str,
    admin_port: u16,
    modules: &[ChainModule],
    allowed_hosts: &[String],
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[kafka]\nbrokers = {:?}\ngroup_id = {group:?}",
        kafka.bootstrap()
    );
    let _ = writeln!(
        t,
        "[kafka.consumer_properties]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 1000"
    );
    if let Some(n) = env.args.source_batch {
        let _ = writeln!(t, "[kafka.batch]\nmax_records = {n}");
    }
    let _ = writeln!(t, "[elasticsearch]\nurl = {es_url:?}");
    let _ = writeln!(t, "[admin]\nlisten = \"127.0.0.1:{admin_port}\"");
    let _ = writeln!(t, "[log]\nfilter = \"warn\"");
    let _ = writeln!(
        t,
        "[pipelines.bench]\ntopics = [{TOPIC:?}]\nindex = {INDEX:?}\ndead_letter_topic = \"bench-dlq\""
    );
    if !allowed_hosts.is_empty() {
        let _ = writeln!(t, "allowed_outbound_hosts = {allowed_hosts:?}");
    }
    for (name, path, config) in modules {
        let _ = writeln!(
            t,
            "[[pipelines.bench.modules]]\nname = {name:?}\npath = {:?}",
            path.display().to_string()
        );
        if !config.is_empty() {
            let _ = writeln!(t, "[pipelines.bench.modules.config]");
            for (k, v) in config {
                let _ = writeln!(t, "{k} = {v:?}");
            }
        }
    }
    t
}

/// What counts documents as they are indexed.
enum Counter<'a> {
    Noop(&'a NoopBulk),
    Es(EsClient, &'static str),
}

impl Counter<'_> {
    async fn count(&self) -> Result<u64> {
        match self {
            Counter::Noop(b) => Ok(b.docs()),
            Counter::Es(client, index) => {
                // Not there before the first bulk request creates it.
                if client.refresh(index).await.is_err() {
                    return Ok(0);
                }
                client.count(index).await
            }
        }
    }
    fn poll_interval(&self) -> Duration {
        match self {
            Counter::Noop(_) => Duration::from_millis(5),
            Counter::Es(..) => Duration::from_millis(200),
        }
    }
}

/// A host scenario on the corpus: `weir run` with `modules`, or the native
/// host with `transform`.
#[allow(clippy::too_many_arguments)]
async fn host_row(
    env: &Env,
    kafka: &Kafka,
    bulk: &NoopBulk,
    scenario: &str,
    what: &str,
    modules: &[ChainModule],
    transform: Option<Transform>,
    allowed_hosts: &[String],
    service_pid: Option<u32>,
) -> Row {
    let attempt = async {
        let admin_port = free_port();
        let group = format!("bench-{scenario}-{}", env.stamp);
        let config = bench_config(
            env,
            &bulk.url(),
            kafka,
            &group,
            admin_port,
            modules,
            allowed_hosts,
        );
        let path = env.work.path().join(format!("{scenario}.toml"));
        std::fs::write(&path, config)?;
        let cmd = match transform {
            None => {
                let mut c = Command::new(&env.weir);
                c.arg("run").arg("--config").arg(&path);
                c
            }
            Some(t) => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg("__native-host")
                    .arg("--config")
                    .arg(&path)
                    .arg("--transform");
                c.arg(match t {
                    Transform::CleanEnrich => "clean-enrich",
                    Transform::CleanValidate => "clean-validate",
                });
                c
            }
        };
        let scenario_enum = match scenario {
            "wasm-3" => Some(Scenario::Wasm3),
            "native" => Some(Scenario::Native),
            "native-clean" => Some(Scenario::NativeClean),
            "raw" => Some(Scenario::Raw),
            "classify" => Some(Scenario::Classify),
            _ => None,
        };
        let perf = scenario_enum.is_some_and(|s| env.args.perf.contains(&s));
        let me = std::process::id();
        measure(
            env,
            kafka,
            scenario,
            what,
            cmd,
            &Counter::Noop(bulk),
            env.args.records,
            Some(admin_port),
            perf,
            me,
            service_pid,
        )
        .await
    };
    attempt.await.unwrap_or_else(|e| failed(scenario, e))
}

/// Spawns the host, waits for the first document and the last, and
/// measures the window in between.
#[allow(clippy::too_many_arguments)]
async fn measure(
    env: &Env,
    kafka: &Kafka,
    scenario: &str,
    what: &str,
    cmd: Command,
    counter: &Counter<'_>,
    expected: u64,
    admin_port: Option<u16>,
    perf: bool,
    sink_pid: u32,
    service_pid: Option<u32>,
) -> Result<Row> {
    eprintln!("weir-bench: {scenario}: {what}");
    let baseline = counter.count().await?;
    let spawned = Instant::now();
    let host = Process::spawn(scenario, cmd)?;
    let pid = host.pid();
    let stall = Duration::from_secs(env.args.stall_timeout);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let scrape = |port: Option<u16>| {
        let http = http.clone();
        async move {
            match port {
                None => Ok::<_, anyhow::Error>(None),
                Some(p) => {
                    let text = http
                        .get(format!("http://127.0.0.1:{p}/metrics"))
                        .send()
                        .await?
                        .text()
                        .await?;
                    Ok(Some((Histogram::parse(&text, BATCH_HISTOGRAM), text)))
                }
            }
        }
    };

    // Startup and group join: wait for the first indexed document.
    let (t0, docs0) = loop {
        tokio::time::sleep(counter.poll_interval()).await;
        let c = counter.count().await? - baseline;
        if c > 0 {
            break (Instant::now(), c);
        }
        host.ensure_running()?;
        if spawned.elapsed() > stall {
            bail!("no document within {stall:?}{}", host.log_excerpt());
        }
    };
    let cpu0 = procstat::cpu_seconds(pid)?;
    let threads0 = procstat::cpu_by_thread(pid)?;
    let broker_pid = kafka.process().pid();
    let broker0 = procstat::cpu_seconds(broker_pid)?;
    let self0 = procstat::cpu_seconds(sink_pid)?;
    let service_cpu = || service_pid.map_or(Ok(0.0), procstat::cpu_seconds);
    let service0 = service_cpu()?;
    let machine0 = procstat::machine_busy_seconds()?;
    let runq0 = procstat::runqueue_wait_seconds(pid)?;
    let h0 = scrape(admin_port).await?;
    let perf_file = env
        .out_dir
        .join(format!("perf-{scenario}-{}.data", env.stamp));
    let recorder = if perf {
        Some(start_perf(&env.args.perf_args, pid, &perf_file).await?)
    } else {
        None
    };

    // Steady state until every record is indexed.
    let (mut last, mut last_change) = (docs0, Instant::now());
    let mut gauges: Vec<(String, f64)> = SAMPLED_GAUGES
        .iter()
        .map(|g| (g.to_string(), 0.0))
        .collect();
    let (mut samples, mut last_sample) = (0u32, Instant::now());
    let (t1, docs1) = loop {
        tokio::time::sleep(counter.poll_interval()).await;
        if let Some(p) = admin_port
            && last_sample.elapsed() >= Duration::from_millis(50)
        {
            last_sample = Instant::now();
            if let Ok(resp) = http
                .get(format!("http://127.0.0.1:{p}/metrics"))
                .send()
                .await
                && let Ok(text) = resp.text().await
            {
                samples += 1;
                for (name, sum) in gauges.iter_mut() {
                    *sum += gauge(&text, name);
                }
            }
        }
        let c = counter.count().await? - baseline;
        if c >= expected {
            break (Instant::now(), c);
        }
        if c != last {
            (last, last_change) = (c, Instant::now());
        } else if last_change.elapsed() > stall {
            host.ensure_running()?;
            bail!(
                "stalled at {c} of {expected} documents{}",
                host.log_excerpt()
            );
        }
    };
    let cpu1 = procstat::cpu_seconds(pid)?;
    let threads1 = procstat::cpu_by_thread(pid)?;
    let broker1 = procstat::cpu_seconds(broker_pid)?;
    let self1 = procstat::cpu_seconds(sink_pid)?;
    let service1 = service_cpu()?;
    let machine1 = procstat::machine_busy_seconds()?;
    let runq1 = procstat::runqueue_wait_seconds(pid)?;
    if let Some(r) = recorder {
        stop_perf(r).await;
    }
    let h1 = scrape(admin_port).await?;
    let rss = procstat::peak_rss_bytes(pid)?;
    host.sigterm()?;
    if host.wait_exit(Duration::from_secs(30)).await.is_none() {
        eprintln!("weir-bench: {scenario} did not exit within 30 s of SIGTERM; killing it");
    }
    let cpu_total = procstat::cpu_seconds(pid).unwrap_or(cpu1);

    let docs = (docs1 - docs0) as f64;
    let secs = (t1 - t0).as_secs_f64();
    let mut row = Row::new(scenario, what, expected);
    row.records_per_s = Some(docs / secs);
    row.cpu_s_per_million = Some((cpu1 - cpu0) / docs * 1e6);
    row.cpu_total_s = Some(cpu_total);
    row.peak_rss_mib = Some(rss as f64 / (1024.0 * 1024.0));
    row.startup_s = Some((t0 - spawned).as_secs_f64());
    row.steady_s = Some(secs);
    row.broker_cpu_s_per_million = Some((broker1 - broker0) / docs * 1e6);
    row.bench_cpu_s_per_million = Some((self1 - self0) / docs * 1e6);
    if service_pid.is_some() {
        row.service_cpu_s_per_million = Some((service1 - service0) / docs * 1e6);
    }
    let ours = (cpu1 - cpu0) + (broker1 - broker0) + (self1 - self0) + (service1 - service0);
    row.others_cores = Some(((machine1 - machine0 - ours) / secs).max(0.0));
    row.host_runq_wait = Some((runq1 - runq0) / secs);
    row.gauges_mean = gauges
        .into_iter()
        .map(|(n, s)| (n, s / f64::from(samples.max(1))))
        .collect();
    let mut threads: Vec<(String, f64)> = threads1
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                (c - threads0.get(name).copied().unwrap_or(0.0)) / docs * 1e6,
            )
        })
        .filter(|(_, c)| *c > 0.0)
        .collect();
    threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    row.threads_cpu_s_per_million = threads;
    if let (Some((h0, _)), Some((h1, text))) = (h0, h1) {
        let file = env
            .out_dir
            .join(format!("metrics-{scenario}-{}.txt", env.stamp));
        std::fs::write(&file, &text)?;
        row.metrics_file = Some(file.display().to_string());
        let h = h1.since(&h0);
        row.batch_p50_ms = h.quantile(0.5).map(|s| s * 1e3);
        row.batch_p99_ms = h.quantile(0.99).map(|s| s * 1e3);
        row.batch_mean_ms = h.mean().map(|s| s * 1e3);
        row.batches = Some(h.count);
    }
    if perf {
        row.perf_data = Some(perf_file.display().to_string());
    }
    Ok(row)
}

async fn start_perf(perf_args: &str, pid: u32, file: &Path) -> Result<Process> {
    let mut cmd = Command::new("perf");
    cmd.arg("record")
        .args(perf_args.split_whitespace())
        .arg("-p")
        .arg(pid.to_string())
        .arg("-o")
        .arg(file);
    let p = Process::spawn("perf", cmd)?;
    // perf needs a moment to attach to every thread.
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.ensure_running()?;
    Ok(p)
}

async fn stop_perf(p: Process) {
    let _ = p.signal(libc::SIGINT);
    if p.wait_exit(Duration::from_secs(60)).await.is_none() {
        eprintln!("weir-bench: perf did not stop:{}", p.log_excerpt());
    }
}

/// The Kafka ceiling: a bare rdkafka consumer in a child process.
async fn kafka_ceiling(env: &Env, kafka: &Kafka) -> Result<Row> {
    let what = "bare rdkafka consumer: consume, store offsets, commit";
    eprintln!("weir-bench: raw-kafka: {what}");
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("__kafka-ceiling")
        .args(["--brokers", &kafka.bootstrap(), "--topic", TOPIC])
        .args(["--group", &format!("bench-raw-kafka-{}", env.stamp)])
        .args(["--records", &env.args.records.to_string()]);
    let child = Process::spawn("raw-kafka", cmd)?;
    let broker_pid = kafka.process().pid();
    let broker0 = procstat::cpu_seconds(broker_pid)?;
    let Some(status) = child.wait_exit(Duration::from_secs(600)).await else {
        bail!(
            "the ceiling consumer did not finish within 600 s{}",
            child.log_excerpt()
        );
    };
    let broker1 = procstat::cpu_seconds(broker_pid)?;
    let log = std::fs::read_to_string(child.log_path())?;
    let Some(line) = log.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        bail!(
            "the ceiling consumer exited ({status}) without a result{}",
            child.log_excerpt()
        );
    };
    let r: serde_json::Value = serde_json::from_str(line)?;
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let docs = f("steady_records");
    let mut row = Row::new("raw-kafka", what, env.args.records);
    row.records_per_s = Some(docs / f("steady_s"));
    row.cpu_s_per_million = Some(f("steady_cpu_s") / docs * 1e6);
    row.cpu_total_s = Some(f("cpu_total_s"));
    row.peak_rss_mib = Some(f("peak_rss_bytes") / (1024.0 * 1024.0));
    row.startup_s = Some(f("startup_s"));
    row.steady_s = Some(f("steady_s"));
    // Includes the group join here: a rough figure only.
    row.broker_cpu_s_per_million = Some((broker1 - broker0) / docs * 1e6);
    Ok(row)
}

/// The tweets pipeline with detect-hate calling weir-classifier over HTTP.
async fn classify(env: &Env, kafka: &Kafka, bulk: &NoopBulk) -> Row {
    let Ok(detect) = module_wasm("detect-hate") else {
        eprintln!("weir-bench: classify: skipped: detect-hate module not built");
        return Row::skipped("classify", "detect-hate module not built");
    };
    let attempt = async {
        let port = free_port();
        let classifier = start_classifier(env, port).await?;
        let url: &'static str = Box::leak(format!("http://127.0.0.1:{port}").into_boxed_str());
        let mut modules: Vec<ChainModule> = Vec::new();
        if let Ok(p) = module_wasm("text-clean") {
            modules.push(("text-clean".into(), p, vec![("fields", "text")]));
        }
        let mut settings = vec![("backend", "weir"), ("url", url)];
        if let Some(n) = env.args.classify_max_batch {
            settings.push(("max_batch", Box::leak(n.to_string().into_boxed_str())));
        }
        modules.push(("detect-hate".into(), detect, settings));
        if let Ok(p) = module_wasm("enrich") {
            modules.push(("enrich".into(), p, vec![]));
        }
        let what = format!(
            "weir run: {} (classifier over HTTP)",
            modules
                .iter()
                .map(|m| m.0.as_str())
                .collect::<Vec<_>>()
                .join(" -> ")
        );
        // The pipeline may call the classifier, and nothing else.
        let allowed = [url.to_string()];
        let row = host_row(
            env,
            kafka,
            bulk,
            "classify",
            &what,
            &modules,
            None,
            &allowed,
            Some(classifier.pid()),
        )
        .await;
        drop(classifier);
        Ok::<_, anyhow::Error>(row)
    };
    attempt.await.unwrap_or_else(|e| failed("classify", e))
}

/// The default configuration (config/weir.toml, addresses from the
/// environment) into osmem: the figure users see in the demo.
/// Builds and starts weir-classifier on `port` (what `config/weir.toml`'s
/// and the classify scenario's pipelines call).
async fn start_classifier(env: &Env, port: u16) -> Result<Process> {
    cargo_build(&["build", "--release", "-p", "weir-classifier"])?;
    let bin = env.weir.with_file_name("weir-classifier");
    let mut cmd = Command::new(&bin);
    cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
    let classifier = Process::spawn("weir-classifier", cmd)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    classifier.ensure_running()?;
    Ok(classifier)
}

async fn osmem(env: &Env, kafka: &Kafka) -> Result<Row> {
    let n = env.args.osmem_records;
    let osmem = Osmem::start().await?;
    // config/weir.toml's detect-hate calls the classifier on :8090, as in
    // the demo; without it every record would be a dead letter.
    let classifier = start_classifier(env, 8090).await.map_err(|e| {
        anyhow::anyhow!("weir-classifier on 127.0.0.1:8090 (is the port taken?): {e:#}")
    })?;
    kafka.create_topic("tweets", 4).await?;
    kafka.create_topic("news", 1).await?;
    produce(kafka, "tweets", n).await?;
    let config = tools::workspace_root().join("config").join("weir.toml");
    let admin_port = free_port();
    let mut cmd = Command::new(&env.weir);
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .env("WEIR_KAFKA_BROKERS", kafka.bootstrap())
        .env("WEIR_KAFKA_GROUP_ID", format!("bench-osmem-{}", env.stamp))
        .env("WEIR_ELASTICSEARCH_URL", osmem.url())
        .env("WEIR_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("RUST_LOG", "warn");
    let counter = Counter::Es(osmem.client(), "weir-tweets");
    let perf = env.args.perf.contains(&Scenario::Osmem);
    let row = measure(
        env,
        kafka,
        "osmem",
        "config/weir.toml (tweets: text-clean -> detect-hate -> enrich, classifier on :8090) into osmem",
        cmd,
        &counter,
        n,
        Some(admin_port),
        perf,
        osmem.process().pid(),
        Some(classifier.pid()),
    )
    .await?;
    drop(classifier);
    drop(osmem);
    Ok(row)
}

fn ratios(rows: &[Row]) -> Vec<(String, f64)> {
    let get = |name: &str| rows.iter().find(|r| r.scenario == name && r.status == "ok");
    let mut out = Vec::new();
    if let Some(w) = get("wasm-3") {
        for base in ["native", "native-clean", "raw", "raw-kafka"] {
            if let Some(b) = get(base) {
                if let (Some(x), Some(y)) = (w.records_per_s, b.records_per_s) {
                    out.push((format!("wasm-3 / {base} records/s"), x / y));
                }
                if let (Some(x), Some(y)) = (w.cpu_s_per_million, b.cpu_s_per_million) {
                    out.push((format!("wasm-3 / {base} CPU per record"), x / y));
                }
            }
        }
    }
    out
}

fn threads_line(r: &Row) -> String {
    let parts: Vec<String> = r
        .threads_cpu_s_per_million
        .iter()
        .map(|(n, c)| format!("{n} {c:.2}"))
        .collect();
    let gauges: Vec<String> = r
        .gauges_mean
        .iter()
        .map(|(n, v)| format!("{n} {v:.2}"))
        .collect();
    format!(
        "  {:<13} {} | mean {}",
        r.scenario,
        parts.join(", "),
        gauges.join(", ")
    )
}

fn table(rows: &[Row], header: bool) -> String {
    let mut t = String::new();
    if header {
        let _ = writeln!(
            t,
            "{:<13} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>6} {:>8}  what / status",
            "scenario",
            "records/s",
            "CPU s/M",
            "RSS MiB",
            "p50 ms",
            "p99 ms",
            "join s",
            "broker",
            "sink",
            "service",
            "others",
            "runq",
            "N",
        );
    }
    let num = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |x| format!("{x:.prec$}"));
    for r in rows {
        let detail = if r.status == "ok" {
            r.what.clone()
        } else {
            r.status.clone()
        };
        let _ = writeln!(
            t,
            "{:<13} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>6} {:>8}  {}",
            r.scenario,
            num(r.records_per_s, 0),
            num(r.cpu_s_per_million, 2),
            num(r.peak_rss_mib, 0),
            num(r.batch_p50_ms, 2),
            num(r.batch_p99_ms, 2),
            num(r.startup_s, 1),
            num(r.broker_cpu_s_per_million, 2),
            num(r.bench_cpu_s_per_million, 2),
            num(r.service_cpu_s_per_million, 2),
            num(r.others_cores, 2),
            num(r.host_runq_wait, 2),
            r.records,
            detail
        );
    }
    t.trim_end().to_string()
}
