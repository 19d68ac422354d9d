//! [`FaultProxy`]: an HTTP reverse proxy in front of an Elasticsearch-compatible
//! server whose misbehaviour is switched at run time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, HOST, HeaderMap, HeaderName,
    TRANSFER_ENCODING,
};
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

use crate::bulk::{self, BulkItem};
use crate::server::{Reply, Server, json as json_reply};

/// What the proxy does to the requests it receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Transparent: method, path, query, headers (including
    /// `content-encoding`) and body are forwarded as they are, and the
    /// upstream's response comes back unchanged.
    None,
    /// The proxy closes its listening socket, so new connections are refused
    /// (`ECONNREFUSED`: `reqwest::Error::is_connect()`, also under the
    /// `elasticsearch` client), and resets (RST) every connection already
    /// open, in-flight requests included. [`FaultProxy::set`] then waits
    /// 100 ms so that clients drop their reset pooled connections; a client
    /// too busy to notice may still send one request on such a connection
    /// and get "connection reset" (a reqwest request error) instead of a
    /// connect error. Leaving this state listens again on the same port.
    Refuse,
    /// Every request is answered with this status and an ES-style error body,
    /// without reaching the upstream.
    Status(u16),
    /// Every request is held this long, then forwarded.
    Stall(Duration),
    /// `_bulk` requests lose about `ratio` (0.0..=1.0) of their items: those
    /// items are not forwarded, and the response carries, at their original
    /// positions, failed items with this `status` (`429` gives an
    /// `es_rejected_execution_exception`). The choice is deterministic: with
    /// ratio 0.1, every 10th item the proxy sees (counted across requests)
    /// fails. Other requests pass through unchanged.
    BulkItems {
        /// Status of each synthetic failed item.
        status: u16,
        /// Share of items to fail.
        ratio: f64,
    },
}

/// Pause after resetting connections in [`Fault::Refuse`].
const REFUSE_GRACE: Duration = Duration::from_millis(100);

struct Shared {
    upstream: String,
    client: reqwest::Client,
    fault: Mutex<Fault>,
    requests: AtomicU64,
    faulted_items: AtomicU64,
    /// Bulk items seen under [`Fault::BulkItems`]; drives the selection.
    bulk_items_seen: AtomicU64,
}

/// A fault-injecting reverse proxy on 127.0.0.1.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use weir_testkit::{Fault, FaultProxy, Osmem};
/// let osmem = Osmem::start().await?;
/// let proxy = FaultProxy::start(osmem.url()).await?;
/// // point the system under test at proxy.url(), then:
/// proxy.set(Fault::BulkItems { status: 429, ratio: 0.1 }).await?;
/// # Ok(()) }
/// ```
pub struct FaultProxy {
    server: Server,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a transparent ([`Fault::None`]) proxy to `upstream`
    /// (e.g. `http://127.0.0.1:9200`).
    pub async fn start(upstream: impl Into<String>) -> Result<FaultProxy> {
        let upstream = upstream.into().trim_end_matches('/').to_owned();
        reqwest::Url::parse(&upstream).with_context(|| format!("upstream URL {upstream:?}"))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .no_gzip()
            .build()
            .context("build the proxy's HTTP client")?;
        let shared = Arc::new(Shared {
            upstream,
            client,
            fault: Mutex::new(Fault::None),
            requests: AtomicU64::new(0),
            faulted_items: AtomicU64::new(0),
            bulk_items_seen: AtomicU64::new(0),
        });
        let for_server = shared.clone();
        let server = Server::start(move |req| handle(for_server.clone(), req)).await?;
        Ok(FaultProxy { server, shared })
    }

    /// Base URL of the proxy, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Switches behaviour; takes effect for every request that arrives after
    /// this returns (entering or leaving [`Fault::Refuse`] is complete too).
    /// Also restarts the [`Fault::BulkItems`] selection.
    pub async fn set(&self, fault: Fault) -> Result<()> {
        if let Fault::BulkItems { ratio, .. } = fault
            && !(0.0..=1.0).contains(&ratio)
        {
            bail!("Fault::BulkItems ratio must be within 0.0..=1.0, got {ratio}");
        }
        if let Fault::Status(status) | Fault::BulkItems { status, .. } = fault
            && hyper::StatusCode::from_u16(status).is_err()
        {
            bail!("{status} is not an HTTP status code");
        }
        let refuse = fault == Fault::Refuse;
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
        self.shared.bulk_items_seen.store(0, Ordering::SeqCst);
        if refuse {
            self.server.refuse().await?;
            // Give clients a moment to notice their pooled connections were
            // reset, so their next request opens a new (refused) one.
            tokio::time::sleep(REFUSE_GRACE).await;
            Ok(())
        } else {
            self.server.accept().await
        }
    }

    /// The current behaviour.
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// Requests received so far (under any fault but [`Fault::Refuse`]).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Bulk items answered with a synthetic failure so far.
    pub fn faulted_items(&self) -> u64 {
        self.shared.faulted_items.load(Ordering::SeqCst)
    }
}

impl Shared {
    fn fault(&self) -> Fault {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return error_reply(400, "weir_testkit_proxy_exception", &e.to_string()),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let result = match shared.fault() {
        // A request that slipped in just before the switch: its connection
        // is about to be reset, so never answer it.
        Fault::Refuse => std::future::pending().await,
        Fault::Status(status) => {
            return error_reply(
                status,
                status_error_type(status),
                "injected by weir-testkit fault proxy",
            );
        }
        Fault::Stall(duration) => {
            tokio::time::sleep(duration).await;
            forward(&shared, &parts.method, path_and_query, &parts.headers, body).await
        }
        Fault::BulkItems { status, ratio } if is_bulk_request(&parts.method, parts.uri.path()) => {
            fault_bulk(&shared, &parts, body, status, ratio).await
        }
        Fault::None | Fault::BulkItems { .. } => {
            forward(&shared, &parts.method, path_and_query, &parts.headers, body).await
        }
    };
    result.unwrap_or_else(|e| error_reply(502, "weir_testkit_proxy_exception", &format!("{e:#}")))
}

fn is_bulk_request(method: &Method, path: &str) -> bool {
    (method == Method::POST || method == Method::PUT) && bulk::is_bulk_path(path)
}

/// Headers that describe one hop or are recomputed for the new body.
fn skip_header(name: &HeaderName) -> bool {
    name == HOST
        || name == CONNECTION
        || name == CONTENT_LENGTH
        || name == TRANSFER_ENCODING
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

async fn forward(
    shared: &Shared,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Reply> {
    let url = format!("{}{}", shared.upstream, path_and_query);
    let mut request = shared.client.request(method.clone(), &url).body(body);
    for (name, value) in headers {
        if !skip_header(name) {
            request = request.header(name, value);
        }
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("forward {method} {url}"))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("read the response to {method} {url}"))?;
    let mut reply = Response::builder().status(status);
    for (name, value) in &headers {
        if !skip_header(name) {
            reply = reply.header(name, value);
        }
    }
    Ok(reply.body(http_body_util::Full::new(body))?)
}

async fn fault_bulk(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    raw_body: Bytes,
    status: u16,
    ratio: f64,
) -> Result<Reply> {
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let decoded = bulk::decode_body(&parts.headers, raw_body.clone())?;
    let default_index = bulk::path_index(parts.uri.path());
    let items = bulk::parse(&decoded, default_index.as_deref())?;

    // Item n (counted across requests) fails when floor((n+1)·ratio) steps
    // up, in integer parts-per-million to avoid float rounding.
    let ppm = (ratio * 1e6).round() as u64;
    let faulted: Vec<bool> = items
        .iter()
        .map(|_| {
            let n = shared.bulk_items_seen.fetch_add(1, Ordering::SeqCst);
            (n + 1) * ppm / 1_000_000 > n * ppm / 1_000_000
        })
        .collect();
    let fault_count = faulted.iter().filter(|&&f| f).count();
    shared
        .faulted_items
        .fetch_add(fault_count as u64, Ordering::SeqCst);
    if fault_count == 0 {
        return forward(
            shared,
            &parts.method,
            path_and_query,
            &parts.headers,
            raw_body,
        )
        .await;
    }

    let mut upstream_items: Vec<Value> = Vec::new();
    let mut took = json!(0);
    let mut base = Response::builder().status(200);
    if fault_count < items.len() {
        let mut kept = Vec::with_capacity(decoded.len());
        for (item, _) in items.iter().zip(&faulted).filter(|(_, f)| !**f) {
            bulk::write_raw(item, &mut kept);
        }
        // The kept items go upstream uncompressed, and we ask for a plain
        // response so that it can be spliced.
        let mut headers = parts.headers.clone();
        headers.remove(CONTENT_ENCODING);
        headers.remove(ACCEPT_ENCODING);
        let reply = forward(shared, &parts.method, path_and_query, &headers, kept.into()).await?;
        let (reply_parts, reply_body) = reply.into_parts();
        let reply_body = reply_body.collect().await?.to_bytes();
        if !reply_parts.status.is_success() {
            // Nothing to splice into: pass the upstream's failure through.
            return Ok(Response::from_parts(reply_parts, reply_body.into()));
        }
        let reply_body = bulk::decode_body(&reply_parts.headers, reply_body)?;
        let mut parsed: Value =
            serde_json::from_slice(&reply_body).context("upstream bulk response is not JSON")?;
        took = parsed["took"].take();
        upstream_items = match parsed["items"].take() {
            Value::Array(items) => items,
            _ => bail!("upstream bulk response has no items array"),
        };
        let expected = items.len() - fault_count;
        if upstream_items.len() != expected {
            bail!(
                "upstream answered {} bulk items for {expected} forwarded",
                upstream_items.len()
            );
        }
        for (name, value) in &reply_parts.headers {
            if !skip_header(name) && name != CONTENT_ENCODING {
                base = base.header(name, value);
            }
        }
    } else {
        base = base.header(hyper::header::CONTENT_TYPE, "application/json");
    }

    let mut from_upstream = upstream_items.into_iter();
    let merged: Vec<Value> = items
        .iter()
        .zip(&faulted)
        .map(|(item, &f)| {
            if f {
                Ok(failed_item(item, status))
            } else {
                from_upstream
                    .next()
                    .ok_or_else(|| anyhow!("upstream bulk items ran out"))
            }
        })
        .collect::<Result<_>>()?;
    let body = serde_json::to_vec(&json!({"took": took, "errors": true, "items": merged}))?;
    Ok(base.body(http_body_util::Full::new(body.into()))?)
}

fn failed_item(item: &BulkItem<'_>, status: u16) -> Value {
    json!({
        item.action.as_str(): {
            "_index": item.index,
            "_id": item.id,
            "status": status,
            "error": {
                "type": status_error_type(status),
                "reason": "rejected by weir-testkit fault proxy",
            },
        }
    })
}

/// The Elasticsearch exception type usually seen with `status`.
fn status_error_type(status: u16) -> &'static str {
    match status {
        400 => "mapper_parsing_exception",
        404 => "index_not_found_exception",
        409 => "version_conflict_engine_exception",
        429 => "es_rejected_execution_exception",
        503 => "unavailable_shards_exception",
        _ => "weir_testkit_fault",
    }
}

fn error_reply(status: u16, kind: &str, reason: &str) -> Reply {
    let body = json!({
        "error": {
            "root_cause": [{"type": kind, "reason": reason}],
            "type": kind,
            "reason": reason,
        },
        "status": status,
    });
    json_reply(status, serde_json::to_vec(&body).expect("serialisable"))
}
