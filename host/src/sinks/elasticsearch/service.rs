//! One bulk request, end to end: send the body, read the answer, and settle
//! every document in it (acknowledge, dead-letter, or hand back for retry).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, Url};

use super::SinkError;
use super::encoder::{self, BodyError};
use super::health::HealthState;
use super::metrics::{ItemOutcome, RequestOutcome, SinkMetrics, Tally};
use super::request_builder::{BulkBatch, Pending, WireBody};
use super::response::{self, error_summary};
use super::retry::{ItemAction, RequestAction, classify_item, classify_request};
use crate::config::{ElasticsearchConfig, Problems, resolve_path as resolve};
use crate::event::{DeadLetter, FailureStage, IndexRequest};
use crate::pipeline::DeadLetterQueue;

/// Builds the client: one node, auth, TLS roots, request timeout. Bodies
/// are compressed by the sink itself (once, reused across retries), not by
/// the transport, which would recompress on every send.
pub fn build_client(
    cfg: &ElasticsearchConfig,
    base_dir: &Path,
) -> Result<Elasticsearch, SinkError> {
    let credentials = cfg.credentials().map_err(SinkError::Secret)?;
    client_with(cfg, base_dir, credentials)
}

/// Like [`build_client`], with `credentials` instead of `cfg.auth`'s (a
/// tenant's).
pub fn client_with(
    cfg: &ElasticsearchConfig,
    base_dir: &Path,
    credentials: Option<Credentials>,
) -> Result<Elasticsearch, SinkError> {
    let url = Url::parse(&cfg.url).map_err(|e| {
        let mut problems = Problems::new(Path::new("[elasticsearch]"));
        problems.add("url", e.to_string());
        SinkError::Config(problems.finish().expect_err("one problem was added"))
    })?;
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(cfg.request.timeout)
        .request_body_compression(false);
    if let Some(creds) = credentials {
        builder = builder.auth(creds);
    }
    if cfg.tls.accept_invalid_certs {
        builder = builder.cert_validation(CertificateValidation::None);
    } else if let Some(ca) = &cfg.tls.ca_file {
        let file = resolve(base_dir, ca);
        let tls_err = |reason: String| SinkError::Tls {
            file: file.clone(),
            reason,
        };
        let pem = std::fs::read(&file).map_err(|e| tls_err(e.to_string()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| tls_err(e.to_string()))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder
        .build()
        .map_err(|e| SinkError::Client(e.to_string()))?;
    Ok(Elasticsearch::new(transport))
}

/// What the sink task must do after a request finished.
#[derive(Debug)]
pub enum Completion {
    /// Every document was acknowledged or dead-lettered.
    Done,
    /// These documents were rejected transiently; resend them (alone).
    RetryItems(Vec<Pending>),
    /// No usable answer; resend the same request.
    RetryRequest(BulkBatch),
    /// Refused as a whole; resend as smaller batches to isolate the culprit.
    Split(Vec<Pending>),
}

/// Everything a request needs, shared by all in-flight requests.
#[derive(Debug)]
pub struct Service {
    pub client: Elasticsearch,
    pub dlq: DeadLetterQueue,
    pub metrics: SinkMetrics,
    pub health: Arc<HealthState>,
    pub compression: bool,
    pub max_item_attempts: Option<u32>,
}

impl Service {
    /// Dead-letters documents that could not be encoded, then sends `items`
    /// (whose NDJSON is `ndjson`) and settles them.
    pub async fn send_new(
        self: Arc<Self>,
        items: Vec<Pending>,
        ndjson: Option<Bytes>,
        unencodable: Vec<(Pending, BodyError)>,
    ) -> Completion {
        if !unencodable.is_empty() {
            tracing::warn!(event = "es_items_unencodable", count = unencodable.len(), first = %unencodable[0].1, "documents cannot be encoded for _bulk; dead-lettering");
            let letters = unencodable
                .into_iter()
                .map(|(p, e)| (p, format!("cannot encode for _bulk: {e}")));
            self.dead_letter(letters.collect()).await;
        }
        let Some(ndjson) = ndjson else {
            return Completion::Done;
        };
        let ndjson_len = ndjson.len();
        let body = if self.compression {
            let gz =
                tokio::task::spawn_blocking(move || encoder::gzip(&ndjson, encoder::GZIP_LEVEL))
                    .await
                    .expect("gzip task panicked");
            WireBody {
                bytes: gz,
                gzip: true,
                ndjson_len,
            }
        } else {
            WireBody {
                bytes: ndjson,
                gzip: false,
                ndjson_len,
            }
        };
        self.send(BulkBatch {
            items,
            body,
            failures: 0,
        })
        .await
    }

    /// Sends `batch` once and settles its documents.
    pub async fn send(self: Arc<Self>, batch: BulkBatch) -> Completion {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        if batch.body.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        self.metrics
            .bytes_sent(batch.body.ndjson_len, batch.body.bytes.len());
        let started = Instant::now();
        let sent = self
            .client
            .send::<_, ()>(
                Method::Post,
                "/_bulk",
                headers,
                None,
                Some(batch.body.bytes.clone()),
                None,
            )
            .await;
        let (status, body) = match sent {
            Ok(resp) => {
                let status = resp.status_code().as_u16();
                match resp.bytes().await {
                    Ok(body) => (status, body),
                    Err(e) => {
                        return self.retry_request(batch, Some(status), started, e.to_string());
                    }
                }
            }
            Err(e) => return self.retry_request(batch, None, started, e.to_string()),
        };
        match classify_request(status) {
            RequestAction::ReadItems => self.settle(batch, status, &body, started).await,
            RequestAction::Retry => {
                let why = format!("HTTP {status}: {}", error_summary(&body));
                self.retry_request(batch, Some(status), started, why)
            }
            RequestAction::Split => {
                self.health.success();
                let secs = started.elapsed().as_secs_f64();
                self.metrics
                    .request(Some(status), RequestOutcome::Split, secs);
                let why = format!("HTTP {status}: {}", error_summary(&body));
                let mut items = batch.items;
                if items.len() > 1 {
                    tracing::warn!(event = "es_request_split", docs = items.len(), reason = %why, "bulk request refused as a whole; splitting it to isolate the document at fault");
                    return Completion::Split(items);
                }
                tracing::warn!(event = "es_request_refused", reason = %why, "bulk request with a single document refused; dead-lettering it");
                let reason = format!("ES refused the document's bulk request: {why}");
                self.dead_letter(vec![(items.remove(0), reason)]).await;
                Completion::Done
            }
        }
    }

    fn retry_request(
        &self,
        mut batch: BulkBatch,
        status: Option<u16>,
        started: Instant,
        why: String,
    ) -> Completion {
        self.health.failure(&why);
        self.metrics.request(
            status,
            RequestOutcome::Retry,
            started.elapsed().as_secs_f64(),
        );
        self.metrics.request_retry();
        batch.failures += 1;
        tracing::warn!(event = "es_request_retried", docs = batch.items.len(), failures = batch.failures, reason = %why, "bulk request failed; retrying it whole, nothing acknowledged");
        Completion::RetryRequest(batch)
    }

    /// Reads a 2xx bulk response and settles each document by position.
    async fn settle(
        &self,
        batch: BulkBatch,
        status: u16,
        body: &[u8],
        started: Instant,
    ) -> Completion {
        let parsed = match response::parse(body, batch.items.len()) {
            Ok(p) => p,
            Err(e) => return self.retry_request(batch, Some(status), started, e.to_string()),
        };
        self.health.success();
        let secs = started.elapsed().as_secs_f64();
        // Every item is classified by its own status even when `errors` is
        // false: a 2xx-only response acks everything all the same, and an
        // inconsistent one (a proxy, a bug) never gets a failed item acked.
        let mut indexed = Tally::<Arc<str>>::default();
        let (mut retry, mut letters) = (Vec::new(), Vec::new());
        let mut retried = Tally::<Arc<str>>::default();
        let (mut retry_types, mut dead_types) =
            (Tally::<String>::default(), Tally::<String>::default());
        let mut first_reason = None;
        for (mut p, item) in batch.items.into_iter().zip(&parsed.items) {
            let r = &item.index;
            let ty = r.error.as_ref().map(|e| &*e.ty);
            let describe = || match &r.error {
                Some(e) => format!("{} (status {})", e.describe(), r.status),
                None => format!("status {}", r.status),
            };
            match classify_item(r.status, ty) {
                ItemAction::Ack => {
                    indexed.add(Arc::clone(&p.req.pipeline));
                    p.req.ack.ack();
                }
                ItemAction::Retry => {
                    p.rejections += 1;
                    if self
                        .max_item_attempts
                        .is_some_and(|max| p.rejections >= max)
                    {
                        dead_types.add(ty.unwrap_or("none").to_owned());
                        let reason = format!(
                            "ES rejected after {} attempts: {}",
                            p.rejections,
                            describe()
                        );
                        first_reason.get_or_insert_with(|| reason.clone());
                        letters.push((p, reason));
                    } else {
                        retried.add(Arc::clone(&p.req.pipeline));
                        retry_types.add(ty.unwrap_or("none").to_owned());
                        retry.push(p);
                    }
                }
                ItemAction::DeadLetter => {
                    dead_types.add(ty.unwrap_or("none").to_owned());
                    let reason = format!("ES rejected: {}", describe());
                    first_reason.get_or_insert_with(|| reason.clone());
                    letters.push((p, reason));
                }
            }
        }
        drop(parsed);
        let outcome = if retry.is_empty() && letters.is_empty() {
            RequestOutcome::Success
        } else {
            RequestOutcome::Partial
        };
        self.metrics.request(Some(status), outcome, secs);
        self.metrics.items(ItemOutcome::Indexed, &indexed.entries);
        self.metrics.items(ItemOutcome::Retried, &retried.entries);
        if retried.total() > 0 {
            tracing::warn!(event = "es_items_retried", indexed = indexed.total(), retried = retried.total(), types = %retry_types, "bulk items rejected transiently; retrying only those");
        }
        if !letters.is_empty() {
            tracing::warn!(event = "es_items_dead_lettered", indexed = indexed.total(), dead_lettered = letters.len(), types = %dead_types, first = first_reason.as_deref().unwrap_or(""), "bulk items rejected permanently; dead-lettering");
            self.dead_letter(letters).await;
        }
        if retry.is_empty() {
            Completion::Done
        } else {
            Completion::RetryItems(retry)
        }
    }

    /// Hands documents to the DLQ, which acknowledges each once written.
    async fn dead_letter(&self, letters: Vec<(Pending, String)>) {
        let mut pipelines = Tally::<Arc<str>>::default();
        for (p, _) in &letters {
            pipelines.add(Arc::clone(&p.req.pipeline));
        }
        self.metrics
            .items(ItemOutcome::DeadLettered, &pipelines.entries);
        for (p, reason) in letters {
            self.dlq.send(refused(p.req, reason)).await;
        }
    }
}

/// The dead letter of a document the sink could not index, for `reason`.
pub fn refused(req: IndexRequest, reason: String) -> DeadLetter {
    DeadLetter {
        pipeline: req.pipeline,
        topic: req.dead_letter_topic,
        record: req.origin,
        stage: FailureStage::Sink,
        reason,
        ack: req.ack,
    }
}

/// Splits a refused batch in two halves, preserving order.
pub fn halves(mut items: Vec<Pending>) -> [Vec<Pending>; 2] {
    let second = items.split_off(items.len() / 2);
    [items, second]
}

/// The backoff attempt number of resent documents: their most rejections.
pub fn item_retry_attempt(items: &[Pending]) -> u32 {
    items.iter().map(|p| p.rejections).max().unwrap_or(1)
}
