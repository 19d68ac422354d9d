//! Weir's producers: external sources normalised into Weir's input schema
//! (`docs/schema.md`) and produced to Kafka, keyed by record id.
//!
//! | module | source | topic shape |
//! |---|---|---|
//! | [`newsapi`] | NewsAPI `/v2/top-headlines`, `/v2/everything` (polling) | news |
//! | [`x`] | X API v2 filtered stream (rules + NDJSON stream) | tweets |
//! | [`bluesky`] | Bluesky Jetstream (WebSocket) | tweets |
//! | [`mastodon`] | Mastodon streaming API (Server-Sent Events) | tweets |
//! | [`rss`] | RSS 2.0 / Atom feeds (polling, conditional GET) | news |
//! | [`replay`] | a JSON-lines file, rate-limited | as in the file |
//!
//! A source is an async function `run(config, emitter, shutdown)`: it
//! normalises items and hands them to an [`Emitter`], which passes them over
//! a bounded channel to the Kafka [`sink`]. Malformed items are skipped and
//! counted ([`Counters`]), never fatal; only authentication failures and
//! requests the service rejects as invalid end a source ([`Error`]).
//!
//! [`produce`] wires one source to the Kafka sink.

pub mod bluesky;
pub mod mastodon;
pub mod newsapi;
pub mod normalize;
pub mod replay;
pub mod rss;
pub mod sink;
pub mod x;

mod backoff;
mod counters;
mod sse;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use backoff::Backoff;
pub use counters::{Counters, Snapshot};
pub use sink::SinkConfig;

/// One record for Kafka: key (the record id, for partitioning) and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Record key; `None` produces a keyless record.
    pub key: Option<String>,
    /// Record value (a JSON document).
    pub value: Vec<u8>,
}

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service refused the credentials (bad, missing, revoked, or not
    /// entitled to the endpoint). Retrying would not help.
    #[error("{service}: authentication failed: {message}")]
    Auth {
        /// Which source (`newsapi`, `x`, ...).
        service: &'static str,
        /// What the service said.
        message: String,
    },
    /// The service rejected the request itself (invalid parameters or
    /// rules). Retrying would not help.
    #[error("{service}: request rejected: {message}")]
    Rejected {
        /// Which source.
        service: &'static str,
        /// What the service said.
        message: String,
    },
    /// Bad configuration, found before contacting anything.
    #[error("{0}")]
    Config(String),
    /// The sink stopped taking records (it failed or was dropped).
    #[error("the Kafka sink stopped accepting records")]
    SinkClosed,
    /// Anything else (I/O on a local file, ...).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Where a source puts its normalised records; also carries the counters.
///
/// Cloneable; the sink finishes when every clone is dropped.
#[derive(Clone)]
pub struct Emitter {
    tx: mpsc::Sender<Record>,
    counters: Arc<Counters>,
    limit: Option<u64>,
    emitted: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

impl Emitter {
    /// An emitter feeding `tx`. After `limit` records (if set) it cancels
    /// `shutdown`, which sources watch.
    pub fn new(
        tx: mpsc::Sender<Record>,
        counters: Arc<Counters>,
        limit: Option<u64>,
        shutdown: CancellationToken,
    ) -> Emitter {
        Emitter {
            tx,
            counters,
            limit,
            emitted: Arc::new(AtomicU64::new(0)),
            shutdown,
        }
    }

    /// A channel-backed emitter for tests and embedding: records arrive on
    /// the returned receiver.
    pub fn channel(capacity: usize) -> (Emitter, mpsc::Receiver<Record>, Arc<Counters>) {
        let (tx, rx) = mpsc::channel(capacity);
        let counters = Arc::new(Counters::default());
        (
            Emitter::new(tx, counters.clone(), None, CancellationToken::new()),
            rx,
            counters,
        )
    }

    /// The counters shared by the source and the sink.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Serialises `doc` and sends it keyed by `id`. Waits while the channel
    /// is full (backpressure from Kafka).
    pub async fn emit<T: serde::Serialize>(&self, id: &str, doc: &T) -> Result<(), Error> {
        let value = serde_json::to_vec(doc).map_err(|e| Error::Other(e.into()))?;
        self.send(Record {
            key: Some(id.to_owned()),
            value,
        })
        .await
    }

    /// Sends a ready-made record.
    pub async fn send(&self, record: Record) -> Result<(), Error> {
        if let Some(limit) = self.limit
            && self.emitted.load(Ordering::Relaxed) >= limit
        {
            return Ok(());
        }
        self.tx.send(record).await.map_err(|_| Error::SinkClosed)?;
        self.counters.emitted.fetch_add(1, Ordering::Relaxed);
        let n = self.emitted.fetch_add(1, Ordering::Relaxed) + 1;
        if self.limit == Some(n) {
            self.shutdown.cancel();
        }
        Ok(())
    }

    /// Counts a skipped (malformed or unusable) item under `reason` and
    /// logs a rate-limited warning.
    pub fn skip(&self, reason: &str, detail: impl std::fmt::Display) {
        self.counters.skip(reason, detail);
    }

    /// Counts an item deliberately not turned into a record (other event
    /// kinds, deletes, language filter...) under `kind`, silently.
    pub fn ignore(&self, kind: &str) {
        self.counters.ignore(kind);
    }
}

/// Runs `source` into the Kafka sink described by `sink` until the source
/// ends, `shutdown` is cancelled, or `limit` records were produced. Every
/// record handed over is delivered (or the call fails) before it returns.
pub async fn produce<F, Fut>(
    sink: SinkConfig,
    counters: Arc<Counters>,
    limit: Option<u64>,
    shutdown: CancellationToken,
    source: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Emitter) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let (tx, rx) = mpsc::channel(1024);
    let kafka = sink::KafkaSink::new(&sink, counters.clone())?;
    let sink_task = tokio::spawn(kafka.run(rx));
    let emitter = Emitter::new(tx, counters.clone(), limit, shutdown.clone());
    let progress = spawn_progress(counters.clone(), shutdown.clone());
    let source_result = source(emitter).await;
    progress.abort();
    // The emitter is gone: the sink drains what is queued, flushes, ends.
    let sink_result = sink_task
        .await
        .map_err(|e| anyhow::anyhow!("the Kafka sink task failed: {e}"))?;
    match (source_result, sink_result) {
        (_, Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e.into()),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Logs the counters every 30 s at `info`.
fn spawn_progress(
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => tracing::info!(counters = %counters.snapshot(), "producer progress"),
                _ = shutdown.cancelled() => return,
            }
        }
    })
}

/// Parses a duration such as `15m`, `30s`, `500ms` (humantime syntax), for
/// command-line flags.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Sleeps for `d` unless `shutdown` fires first; returns `false` if it did.
pub(crate) async fn sleep_or_cancel(d: Duration, shutdown: &CancellationToken) -> bool {
    if d.is_zero() {
        return !shutdown.is_cancelled();
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// The HTTP client the HTTP sources use: rustls, a connect timeout, a
/// `weir-producers/<version>` user agent, and no overall timeout (streams
/// are long-lived; polling sources set per-request timeouts).
pub(crate) fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(concat!("weir-producers/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Other(anyhow::anyhow!("building the HTTP client: {e}")))
}

/// The first `max` characters of a response body, for error messages.
pub(crate) fn excerpt(body: &str, max: usize) -> String {
    let body = body.trim();
    match body.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}
