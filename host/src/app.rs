//! `weir run`: wires config, runtime, source, sink, dead-letter queue and
//! admin endpoint together, and shuts them down in the order that keeps
//! at-least-once: source drained, sink flushed, dead letters written, then
//! the final offset commit.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState, ComponentHealth};
use crate::config::{Config, KafkaConfig, PipelineConfig};
use crate::dlq::{DeadLetterQueue, writer};
use crate::pipeline::{Pipeline, Routes};
use crate::runtime::{LoadedModule, WasmRuntime};
use crate::sinks::elasticsearch::ElasticsearchSink;
use crate::source::kafka::KafkaSource;
use crate::telemetry::Metrics;

/// Compiles and initialises every module of a pipeline.
pub async fn load_pipeline_modules(
    runtime: &Arc<WasmRuntime>,
    config: &Config,
    name: &str,
    pipeline: &PipelineConfig,
) -> anyhow::Result<Vec<Arc<LoadedModule>>> {
    let mut modules = Vec::with_capacity(pipeline.modules.len());
    for m in &pipeline.modules {
        let path = config.resolve(&m.path);
        let bytes = std::fs::read(&path).with_context(|| format!("reading module {}", path.display()))?;
        let module = runtime.load(name, &m.name(), bytes, m.settings()).await?;
        tracing::info!(
            pipeline = name,
            module = %module.name,
            declared = %format!("{}@{}", module.info.name, module.info.version),
            digest = module.short_digest(),
            "module loaded"
        );
        modules.push(Arc::new(module));
    }
    Ok(modules)
}

/// Builds every pipeline and the topic routing table.
pub async fn build_routes(runtime: &Arc<WasmRuntime>, config: &Config, metrics: &Metrics) -> anyhow::Result<Routes> {
    let mut routes = HashMap::new();
    for (name, p) in &config.pipelines {
        let modules = load_pipeline_modules(runtime, config, name, p).await?;
        let pipeline = Arc::new(Pipeline {
            name: Arc::from(name.as_str()),
            index: Arc::from(p.index.as_str()),
            dead_letter_topic: Arc::from(p.dead_letter_topic(name)),
            modules: ArcSwap::from_pointee(modules),
            metrics: metrics.pipeline(name),
        });
        for t in &p.topics {
            routes.insert(t.clone(), Arc::clone(&pipeline));
        }
    }
    Ok(routes)
}

fn dead_letter_producer(cfg: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    let mut cc = ClientConfig::new();
    cc.set("linger.ms", "5");
    for (k, v) in cfg.producer_props() {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", &cfg.brokers);
    cc.create().context("creating the dead-letter producer")
}

/// Runs the host until `shutdown` fires, then drains and commits.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    tracing::info!(pooling = runtime.pooling(), "wasm runtime ready");
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let routes = build_routes(&runtime, &config, &metrics).await?;

    let (dlq, dlq_rx) = DeadLetterQueue::channel(1024);
    let dlq_stop = CancellationToken::new();
    let dlq_writer = tokio::spawn(writer::run_writer(
        dead_letter_producer(&config.kafka)?,
        dlq_rx,
        metrics.clone(),
        dlq_stop.clone(),
    ));

    let sink = ElasticsearchSink::start(&config.elasticsearch, &config.base_dir, dlq.clone(), &mut registry)
        .await
        .context("starting the Elasticsearch sink")?;

    let admin_stop = CancellationToken::new();
    let admin_task = match config.admin.address() {
        Some(addr) => {
            let addr = addr.map_err(|e| anyhow::anyhow!("admin.listen: {e}"))?;
            let sink_health = sink.clone();
            let state = AdminState {
                registry: Arc::new(registry),
                health: Arc::new(move || {
                    let h = sink_health.health();
                    vec![ComponentHealth {
                        name: "elasticsearch".into(),
                        healthy: h.healthy,
                        detail: h.last_error.clone(),
                    }]
                }),
            };
            let (bound, task) = admin::serve(addr, state, admin_stop.clone()).await?;
            tracing::info!(%bound, "admin endpoint listening (/metrics, /healthz)");
            Some(task)
        }
        None => None,
    };

    let source = KafkaSource::new(
        &config.kafka,
        Arc::new(ArcSwap::from_pointee(routes)),
        Arc::clone(&runtime),
        sink.clone(),
        dlq.clone(),
        metrics.clone(),
    )?;
    let drained = source.run(shutdown).await?;

    // Flush the sink, then let the dead-letter writer finish, all within
    // the drain window; anything unacknowledged by then is redelivered.
    let window = drained.deadline.saturating_duration_since(std::time::Instant::now());
    match sink.shutdown(window).await {
        Ok(report) => tracing::info!(?report, "sink flushed"),
        Err(e) => tracing::warn!(error = %e, "sink shutdown"),
    }
    drop(dlq);
    let remaining = drained.deadline.saturating_duration_since(std::time::Instant::now());
    let dlq_stop_guard = dlq_stop.clone();
    let mut dlq_writer = dlq_writer;
    if tokio::time::timeout(remaining, &mut dlq_writer).await.is_err() {
        dlq_stop_guard.cancel();
        let _ = dlq_writer.await;
    }
    drained.commit()?;
    let left = drained.in_flight();
    if left > 0 {
        tracing::warn!(batches = left, "stopped with unacknowledged batches; they will be redelivered");
    }
    tracing::info!("offsets committed; bye");
    admin_stop.cancel();
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    Ok(())
}
