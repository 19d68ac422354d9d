//! `__native-host`: `weir run` with the Wasm chain replaced by native Rust.
//!
//! Built from the host's own library pieces, wired as `weir::app::run`
//! wires them: `KafkaSource` (batching, partition workers, ack-gated
//! offsets), a pipeline with **zero modules** (so `run_chain` only copies
//! each value and validates it as a JSON object), the Elasticsearch sink
//! (bulk encoding, gzip, HTTP) and the admin endpoint (`/metrics`). The
//! native transform runs in a [`DocumentSink`] wrapper, i.e. in the
//! partition worker as each document is handed to the sink, record by
//! record: the same task, and the same point in the flow, where the chain's
//! output would be handed over.
//!
//! Differences from a Wasm run, by construction: JSON validation happens on
//! the input rather than on the last module's output (same cost), and the
//! `weir_batch_duration_seconds` histogram covers only the chain (copy +
//! validation), not the transform.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use bytes::Bytes;
use prometheus_client::registry::Registry;
use rdkafka::config::ClientConfig;
use tokio_util::sync::CancellationToken;

use weir::admin::{self, AdminState};
use weir::config::Config;
use weir::event::IndexRequest;
use weir::pipeline::{DeadLetterQueue, DocumentSink, Workers};
use weir::runtime::WasmRuntime;
use weir::sinks::dead_letter;
use weir::sinks::elasticsearch::{ElasticsearchSink, SinkHandle};
use weir::source::kafka::KafkaSource;
use weir::telemetry::Metrics;
use weir_benches::native::{Native, Transform};

#[derive(clap::Args)]
pub struct Args {
    /// A weir.toml whose pipelines have no modules.
    #[arg(long)]
    config: PathBuf,
    #[arg(long, value_enum)]
    transform: Transform,
}

/// Applies the native transform, then hands the document to the real sink.
struct NativeSink {
    inner: SinkHandle,
    native: Arc<Native>,
}

impl DocumentSink for NativeSink {
    async fn send(&self, mut request: IndexRequest) {
        let origin = &request.origin;
        match self.native.apply(
            &request.body,
            &origin.topic,
            origin.partition,
            origin.offset,
        ) {
            Ok(body) => request.body = Bytes::from(body),
            // Never happens with the bench corpus; the document goes on as is.
            Err(e) => tracing::warn!(error = %e, "native transform failed"),
        }
        DocumentSink::send(&self.inner, request).await;
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log.filter))
        .with_writer(std::io::stderr)
        .try_init();
    anyhow::ensure!(
        config.pipelines.values().all(|p| p.modules.is_empty()),
        "the native host runs pipelines without modules"
    );
    // Unused by a chain of zero modules, but the source wants one.
    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let routes = weir::app::build_routes(&runtime, &config, &metrics).await?;

    let (dlq, dlq_rx) = DeadLetterQueue::channel(1024);
    let producer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("linger.ms", "5")
        .create()
        .context("dead-letter producer")?;
    let dlq_stop = CancellationToken::new();
    tokio::spawn(dead_letter::run_writer(
        producer,
        dlq_rx,
        metrics.clone(),
        dlq_stop.clone(),
    ));

    let sink = ElasticsearchSink::start(
        &config.elasticsearch,
        &config.base_dir,
        dlq.clone(),
        &mut registry,
    )
    .await?;
    let admin_stop = CancellationToken::new();
    if let Some(addr) = config.admin.address() {
        let addr = addr.map_err(anyhow::Error::msg)?;
        let state = AdminState {
            fleet: None,
            registry: Arc::new(registry),
            health: Arc::new(Vec::new),
            modules: None,
            config_status: Arc::default(),
            status: None,
            api: Default::default(),
        };
        admin::serve(addr, state, admin_stop.clone()).await?;
    }

    let native = Arc::new(Native::new(args.transform));
    let source = KafkaSource::new(
        &config.kafka,
        Arc::new(ArcSwap::from_pointee(routes)),
        Workers::new(
            runtime,
            NativeSink {
                inner: sink.clone(),
                native,
            },
            dlq,
        ),
        metrics,
    )?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        on_signal.cancel();
    });
    let drained = source.run(shutdown).await?;
    let _ = sink.shutdown(Duration::from_secs(10)).await;
    dlq_stop.cancel();
    drained.commit()?;
    admin_stop.cancel();
    Ok(())
}
