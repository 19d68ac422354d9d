//! Elasticsearch sink: documents are batched into `_bulk` requests and each
//! one is acknowledged only once Elasticsearch indexed it, or dead-lettered
//! when Elasticsearch rejects it permanently.
//!
//! ```text
//! SinkHandle::submit ─▶ bounded channel ─▶ sink task ─▶ ≤ concurrency bulk requests
//!                                          ▲   │            │ 2xx item      → ack
//!                                          │   │            │ 429/5xx item  → retry that item
//!                                          │   │            │ other 4xx     → DeadLetterQueue
//!                                          └───┴─ retries ◀─┘ no answer     → retry whole request
//! ```
//!
//! Delivery rules (see [`retry`] for the classification):
//! - an `Ack` is acknowledged only for a document with a 2xx item status;
//!   dead-lettered documents hand their `Ack` to the [`DeadLetterQueue`],
//!   which acknowledges once the dead letter is written;
//! - retryable item rejections resend only those documents, with
//!   exponential backoff and full jitter, ahead of new input, and forever
//!   unless `retry.max_item_attempts` is set;
//! - while retries wait or all request slots are busy with a full batch
//!   accumulated, the sink stops reading its input so producers block;
//! - on shutdown whatever is not indexed or dead-lettered by the deadline
//!   stays unacknowledged, to be redelivered.
//!
//! Configuration (`[elasticsearch]`, `config/elasticsearch.rs`; every key
//! but `url` optional; defaults shown):
//!
//! ```toml
//! url = "https://es.example:9200"
//! compression = true                  # gzip bulk bodies (level 1); unset: on unless the host is loopback
//! auth = { type = "none" }            # | { type = "api_key", api_key_env = "VAR" }
//!                                     # | { type = "basic", username = "u", password_env = "VAR" }
//! tls = { accept_invalid_certs = false }  # ca_file = "ca.pem" (relative to the config file)
//! batch = { max_docs = 1000, max_bytes = 5242880, timeout = "200ms" }
//! request = { timeout = "30s", concurrency = 4 }
//! retry = { initial_backoff = "100ms", max_backoff = "10s" }  # max_item_attempts unset = forever
//! health = { startup_timeout = "10s" }
//! templates = [{ name = "logs", path = "templates/logs.json" }]
//! ```
//!
//! A tenant with its own credentials gets its own sink ([`TenantSinks`],
//! `tenants.rs`), so Elasticsearch enforces its index prefix too.
//!
//! Files: [`encoder`] (NDJSON and gzip),
//! [`request_builder`] (batches), [`service`] (one request and its
//! outcome), [`response`] (bulk response parsing), [`retry`] (rules and
//! backoff), [`health`], [`templates`], [`metrics`], and `task` (the loop).

pub mod encoder;
pub mod health;
pub mod metrics;
pub mod request_builder;
pub mod response;
pub mod retry;
pub mod service;
mod task;
pub mod templates;
mod tenants;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use self::health::HealthState;
pub use self::health::SinkHealth;
use self::metrics::SinkMetrics;
pub use self::task::ShutdownReport;
pub use self::tenants::{SecretSource, TenantSinks};
use crate::config::redacted;
use crate::config::{ConfigError, ElasticsearchConfig, MissingSecret, Problems};
use crate::event::IndexRequest;
use crate::pipeline::{DeadLetterQueue, DocumentSink};

/// Why the sink could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid elasticsearch sink configuration: {0}")]
    Config(ConfigError),
    #[error("elasticsearch.{0}")]
    Secret(MissingSecret),
    #[error("cannot load the CA certificate {}: {reason}", file.display())]
    Tls { file: PathBuf, reason: String },
    #[error("cannot build the Elasticsearch client: {0}")]
    Client(String),
    #[error("Elasticsearch at {url} is not reachable (gave up after {waited:.1?}): {reason}")]
    Unreachable {
        url: String,
        waited: Duration,
        reason: String,
    },
    #[error("index template {name:?} from {}: {reason}", file.display())]
    Template {
        name: String,
        file: PathBuf,
        reason: String,
    },
    /// The sink task stopped; the document was not accepted.
    #[error("the elasticsearch sink is shut down")]
    Closed,
    #[error("the elasticsearch sink task failed: {0}")]
    Task(String),
}

/// Entry point of the sink.
#[derive(Debug)]
pub struct ElasticsearchSink;

impl ElasticsearchSink {
    /// Validates `config`, checks the cluster answers (retrying for up to
    /// `health.startup_timeout`), installs the index templates (paths
    /// relative to `base_dir`, the config file's folder), registers the
    /// `weir_es_*` metrics and starts the sink task.
    pub async fn start(
        config: &ElasticsearchConfig,
        base_dir: &Path,
        dlq: DeadLetterQueue,
        registry: &mut Registry,
    ) -> Result<SinkHandle, SinkError> {
        let metrics = SinkMetrics::register(registry);
        let env = |k: &str| std::env::var(k).ok();
        Self::start_with(config, base_dir, dlq, metrics, &env).await
    }

    /// [`ElasticsearchSink::start`] with metrics already registered and
    /// secrets read through `env`.
    async fn start_with(
        config: &ElasticsearchConfig,
        base_dir: &Path,
        dlq: DeadLetterQueue,
        metrics: SinkMetrics,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<SinkHandle, SinkError> {
        let mut problems = Problems::new(Path::new("[elasticsearch]"));
        config.validate("", &mut problems);
        problems.finish().map_err(SinkError::Config)?;
        let credentials = config.auth.credentials(env).map_err(SinkError::Secret)?;
        let client = service::client_with(config, base_dir, credentials)?;
        let templates = templates::load(&config.templates, base_dir)?;
        let url = elasticsearch::http::Url::parse(&config.url)
            .map(|u| redacted(&u))
            .unwrap_or_else(|_| config.url.clone());
        health::wait_reachable(
            &client,
            &url,
            config.health.startup_timeout,
            config.request.timeout,
        )
        .await?;
        templates::install(&client, &templates, config.request.timeout).await?;
        let sink = Self::spawn(config, client, dlq, metrics, tracing::Span::none());
        tracing::info!(%url, templates = templates.len(), "elasticsearch sink started");
        Ok(sink)
    }

    /// Starts the sink task for `client`, its logs inside `span`.
    fn spawn(
        config: &ElasticsearchConfig,
        client: elasticsearch::Elasticsearch,
        dlq: DeadLetterQueue,
        metrics: SinkMetrics,
        span: tracing::Span,
    ) -> SinkHandle {
        let health = HealthState::new();
        let service = Arc::new(service::Service {
            client,
            dlq,
            metrics,
            health: Arc::clone(&health),
            compression: config.gzip(),
            max_item_attempts: config.retry.max_item_attempts,
        });
        let (tx, input) = mpsc::channel(config.batch.max_docs);
        let (stop_tx, shutdown) = oneshot::channel();
        let task = task::SinkTask {
            input,
            shutdown,
            service,
            builder: request_builder::RequestBuilder::new(&config.batch),
            backoff: retry::Backoff::new(&config.retry),
            batch_timeout: config.batch.timeout,
            concurrency: config.request.concurrency,
        };
        let join = tokio::spawn(task.run().instrument(span));
        SinkHandle {
            tx,
            health,
            control: Arc::new(Mutex::new(Some((stop_tx, join)))),
        }
    }
}

type Control = (oneshot::Sender<Duration>, JoinHandle<ShutdownReport>);

/// Handle to a running sink. Cheap to clone; every clone feeds the same task.
#[derive(Debug, Clone)]
pub struct SinkHandle {
    tx: mpsc::Sender<IndexRequest>,
    health: Arc<HealthState>,
    control: Arc<Mutex<Option<Control>>>,
}

impl SinkHandle {
    /// Queues a document; waits while the sink is saturated (backpressure).
    /// Fails only once the sink is shut down, dropping `request`
    /// unacknowledged so it is redelivered.
    pub async fn submit(&self, request: IndexRequest) -> Result<(), SinkError> {
        self.tx.send(request).await.map_err(|_| SinkError::Closed)
    }

    /// Stops accepting documents, flushes what is queued and waits for
    /// requests and retries to settle, for at most `deadline`. Documents not
    /// indexed or dead-lettered by then stay unacknowledged.
    pub async fn shutdown(self, deadline: Duration) -> Result<ShutdownReport, SinkError> {
        let SinkHandle { tx, control, .. } = self;
        drop(tx);
        stop(&control, deadline).await
    }

    /// Health for the host's `/healthz`: the outcome of the last request.
    pub fn health(&self) -> SinkHealth {
        self.health.snapshot()
    }

    /// Whether the last request to the cluster got a usable answer.
    pub fn is_healthy(&self) -> bool {
        self.health.is_healthy()
    }
}

/// Tells the sink task behind `control` to finish within `deadline`, and
/// waits for its report.
async fn stop(
    control: &Mutex<Option<Control>>,
    deadline: Duration,
) -> Result<ShutdownReport, SinkError> {
    let control = control.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some((stop, join)) = control else {
        return Err(SinkError::Closed);
    };
    // If the task already ended, `join` still holds its report.
    let _ = stop.send(deadline);
    join.await.map_err(|e| SinkError::Task(e.to_string()))
}

impl DocumentSink for SinkHandle {
    async fn send(&self, request: IndexRequest) {
        if let Err(e) = self.submit(request).await {
            // The sink is gone (shutdown): the document stays unacknowledged
            // and its record is redelivered after restart.
            tracing::warn!(error = %e, "sink closed; document left unacknowledged");
        }
    }
}
