//! `weir run`: wires config, runtime, source, sink, dead-letter queue and
//! admin endpoint together, and shuts them down in the order that keeps
//! at-least-once: source drained, sink flushed, dead letters written, then
//! the final offset commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState, ComponentHealth};
use crate::config::{Config, ControlMode, DeadLetterDelivery, KafkaConfig};
use crate::fleet::Fleet;
use crate::modules::{ConfigStatus, Registry as ModuleRegistry, Reloader};
use crate::pipeline::{DeadLetterQueue, Routes, Workers};
use crate::runtime::{OutboundHttp, WasmRuntime};
use crate::sinks::dead_letter;
use crate::sinks::elasticsearch::TenantSinks;
use crate::source::kafka::KafkaSource;
use crate::telemetry::Metrics;

/// Builds every pipeline (each with its outbound HTTP policy) and returns
/// the topic routing table. For embedders and benchmarks that don't need
/// hot reload; `run` keeps the [`Registry`] itself.
pub async fn build_routes(
    runtime: &Arc<WasmRuntime>,
    config: &Config,
    metrics: &Metrics,
) -> anyhow::Result<Routes> {
    let http = OutboundHttp::new(config, &mut Registry::default())?;
    let modules =
        ModuleRegistry::build(Arc::clone(runtime), http, metrics.clone(), 1, config).await?;
    Ok(modules.routes().load_full().as_ref().clone())
}

fn dead_letter_producer(cfg: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    let mut cc = ClientConfig::new();
    cc.set("linger.ms", "5");
    for (k, v) in cfg.producer_props() {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", &cfg.brokers);
    if let Some(id) = cfg.transactional_id() {
        cc.set("transactional.id", id);
    }
    cc.create().context("creating the dead-letter producer")
}

/// Dead letters held between commits at most (exactly-once mode); past
/// it, failing records wait for the next commit.
const HELD_DEAD_LETTERS: usize = 100_000;

/// How long registering the transactional producer with the broker (and
/// aborting a predecessor's open transaction) may take at startup.
const INIT_TRANSACTIONS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What a task told to stop at shutdown gets beyond the drain deadline
/// before it is aborted (see [`stop_task`]).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Waits for `task` until `deadline`, or [`STOP_GRACE`] if that is later;
/// then aborts it.
async fn stop_task<T>(mut task: tokio::task::JoinHandle<T>, deadline: Instant, what: &str) {
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(STOP_GRACE);
    if tokio::time::timeout(wait, &mut task).await.is_ok() {
        return;
    }
    tracing::warn!(
        task = what,
        "still running at the shutdown deadline; stopped"
    );
    task.abort();
}

/// Runs the host until `shutdown` fires, then drains and commits. Returns
/// within `kafka.drain_timeout` plus a few seconds whatever modules do: at
/// the drain deadline in-flight batches are dropped (their records are
/// redelivered), and every task still running is stopped.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    tracing::info!(pooling = runtime.pooling(), "wasm runtime ready");
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let http = OutboundHttp::new(&config, &mut registry)?;
    // A fleet host starts from the control topic: read to its end, its
    // tenants and modules written into the tenants folder, and its
    // tenants applied through a config reload (one refused tenant stays
    // out alone) once the operator's own pipelines are built.
    let mut fleet = None;
    let mut follower = None;
    if config.control.mode == ControlMode::Kafka {
        let (f, fo) = Fleet::connect(&config, &mut registry).await?;
        fo.materialize()?;
        fleet = Some(f);
        follower = Some(fo);
    }
    let start_config = match &fleet {
        Some(_) => config.without_tenants(),
        None => config.clone(),
    };
    let modules = ModuleRegistry::build(
        Arc::clone(&runtime),
        http,
        metrics.clone(),
        config.reload.keep_versions,
        &start_config,
    )
    .await?;
    let config_status = Arc::new(std::sync::Mutex::new(ConfigStatus {
        path: config.path.display().to_string(),
        ..ConfigStatus::default()
    }));
    let (control_tx, control_rx) = tokio::sync::mpsc::unbounded_channel();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut reloader = (config.reload.watch || fleet.is_some()).then(|| Reloader {
        registry: Arc::clone(&modules),
        watch: config.reload.watch,
        requests: fleet.is_some().then_some(reload_rx),
        config_path: config.path.clone(),
        debounce: config.reload.debounce,
        source: control_tx,
        metrics: metrics.clone(),
        config: start_config,
        status: Arc::clone(&config_status),
    });
    if let (Some(fo), Some(r)) = (follower.as_mut(), reloader.as_mut()) {
        let status = r.reload_now().await;
        if let Some(e) = status.last_error {
            tracing::error!(error = %e, "tenants from the control topic: not all applied");
        }
        fo.settle(&modules).await;
    }

    let (dlq, dlq_rx) = DeadLetterQueue::channel(1024);
    let dlq_stop = CancellationToken::new();
    let producer = dead_letter_producer(&config.kafka)?;
    let (dlq_writer, transactions) = match config.kafka.dead_letters {
        DeadLetterDelivery::AtLeastOnce => (
            tokio::spawn(dead_letter::run_writer(
                producer,
                dlq_rx,
                metrics.clone(),
                dlq_stop.clone(),
            )),
            None,
        ),
        DeadLetterDelivery::ExactlyOnce => {
            let held = Arc::new(dead_letter::HeldDeadLetters::new(HELD_DEAD_LETTERS));
            let (h, m) = (Arc::clone(&held), metrics.clone());
            // Fences a crashed predecessor with the same transactional id
            // (aborting its open transaction) before anything is consumed.
            let txn = tokio::task::spawn_blocking(move || {
                dead_letter::TransactionalDeadLetters::new(
                    producer,
                    h,
                    m,
                    INIT_TRANSACTIONS_TIMEOUT,
                )
            })
            .await??;
            tracing::info!(id = ?config.kafka.transactional_id(), "exactly-once dead letters: transactional producer ready");
            (
                tokio::spawn(dead_letter::run_holding_writer(dlq_rx, held)),
                Some(Arc::new(txn)),
            )
        }
    };

    // The host's sink, plus one per tenant credential as its documents come.
    let sink = TenantSinks::start(
        &config.elasticsearch,
        &config.base_dir,
        dlq.clone(),
        &mut registry,
    )
    .await
    .context("starting the Elasticsearch sink")?;

    let admin_stop = CancellationToken::new();
    let admin_task = match config.admin.address() {
        Some(addr) => {
            let addr = addr.map_err(|e| anyhow::anyhow!("admin.listen: {e}"))?;
            let sink_health = sink.clone();
            let control_health = fleet.clone();
            let state = AdminState {
                fleet: fleet.clone(),
                registry: Arc::new(registry),
                modules: Some(Arc::clone(&modules)),
                config_status: Arc::clone(&config_status),
                api: admin::api::ApiSettings::from(&config.admin),
                status: Some(admin::status::StatusPage::new(
                    &config.elasticsearch,
                    &config.base_dir,
                )?),
                health: Arc::new(move || {
                    let h = sink_health.health();
                    let mut all = vec![ComponentHealth {
                        name: "elasticsearch".into(),
                        healthy: h.healthy,
                        detail: h.last_error.clone(),
                    }];
                    if let Some(f) = &control_health {
                        let (healthy, detail) = f.health();
                        all.push(ComponentHealth {
                            name: "control".into(),
                            healthy,
                            detail,
                        });
                    }
                    all
                }),
            };
            let (bound, task) = admin::serve(addr, state, admin_stop.clone()).await?;
            tracing::info!(%bound, "admin endpoint listening (/metrics, /healthz, status page at /)");
            Some(task)
        }
        None => None,
    };

    let workers = Workers::new(Arc::clone(&runtime), sink.clone(), dlq.clone());
    let source = match &transactions {
        None => KafkaSource::new(&config.kafka, modules.routes(), workers, metrics.clone())?,
        Some(txn) => KafkaSource::transactional(
            &config.kafka,
            modules.routes(),
            workers,
            metrics.clone(),
            Arc::clone(txn) as _,
        )?,
    }
    .with_control(control_rx);

    let reload_stop = CancellationToken::new();
    let reloader = reloader.map(|reloader| {
        let stop = reload_stop.clone();
        tokio::spawn(async move {
            if let Err(e) = reloader.run(stop).await {
                tracing::error!(error = %e, "hot reload stopped: file watching unavailable");
            }
        })
    });
    let follower = follower
        .map(|fo| tokio::spawn(fo.run(Arc::clone(&modules), reload_tx, reload_stop.clone())));

    let drained = source.run(shutdown).await?;
    reload_stop.cancel();
    if let Some(f) = &fleet {
        f.stop();
    }
    if let Some(f) = follower {
        stop_task(f, drained.deadline, "control follower").await;
    }
    if let Some(r) = reloader {
        // A reload may be running a module's init (bounded by its wall
        // time, which can be longer than what is left of the drain).
        stop_task(r, drained.deadline, "hot reload").await;
    }

    // Flush the sink, then let the dead-letter writer finish, all within
    // the drain window; anything unacknowledged by then is redelivered.
    let window = drained.deadline.saturating_duration_since(Instant::now());
    match sink.shutdown(window).await {
        Ok(report) => tracing::info!(?report, "sink flushed"),
        Err(e) => tracing::warn!(error = %e, "sink shutdown"),
    }
    drop(dlq);
    let remaining = drained.deadline.saturating_duration_since(Instant::now());
    let mut dlq_writer = dlq_writer;
    if tokio::time::timeout(remaining, &mut dlq_writer)
        .await
        .is_err()
    {
        // Cancelled, the writer stops retrying; a write still waiting for
        // the broker is given up after the grace (unacknowledged, so its
        // record is redelivered).
        dlq_stop.cancel();
        stop_task(dlq_writer, Instant::now(), "dead-letter writer").await;
    }
    drained.commit()?;
    if let Some(held) = transactions
        .as_ref()
        .map(|t| t.held().len())
        .filter(|n| *n > 0)
    {
        tracing::warn!(
            dead_letters = held,
            "stopped with dead letters of uncommitted records; they will be written when those records are redelivered"
        );
    }
    let left = drained.in_flight();
    if left > 0 {
        tracing::warn!(
            batches = left,
            "stopped with unacknowledged batches; they will be redelivered"
        );
    }
    drained.release();
    tracing::info!("offsets committed; bye");
    admin_stop.cancel();
    if let Some(t) = admin_task {
        // Graceful shutdown waits for open connections; a client holding
        // one open does not hold the process.
        stop_task(t, Instant::now(), "admin endpoint").await;
    }
    Ok(())
}
