//! [`NoopBulk`]: a do-nothing Elasticsearch bulk endpoint for benchmarks.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::bulk;
use crate::server::{Reply, Server, json};

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    docs: AtomicU64,
    generated_ids: AtomicU64,
}

/// An endpoint that acknowledges bulk requests as fast as it can without
/// storing anything: **for benchmarks, not correctness** (nothing is indexed,
/// searched, validated against mappings, or ever rejected).
///
/// - `POST`/`PUT` `/_bulk` and `/{index}/_bulk`: the body (gzip if
///   `content-encoding: gzip`) is split into actions, and the reply has one
///   successful item per action, in order, with its `_index` and `_id`
///   (`index`/`create` → 201 `created`, `update`/`delete` → 200). A body
///   that is not valid bulk NDJSON gets a 400.
/// - `GET /`: an Elasticsearch 8.15.0 info document.
/// - `PUT /_index_template/*`: `{"acknowledged":true}`.
/// - `GET /_cluster/health`: green.
/// - anything else: 404.
pub struct NoopBulk {
    server: Server,
    counters: Arc<Counters>,
}

impl NoopBulk {
    /// Starts the endpoint on a free port of 127.0.0.1.
    pub async fn start() -> Result<NoopBulk> {
        let counters = Arc::new(Counters::default());
        let for_server = counters.clone();
        let server = Server::start(move |req| handle(for_server.clone(), req)).await?;
        Ok(NoopBulk { server, counters })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Bulk actions acknowledged so far.
    pub fn docs(&self) -> u64 {
        self.counters.docs.load(Ordering::Relaxed)
    }

    /// Requests received so far (of any kind).
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }
}

async fn handle(counters: Arc<Counters>, req: Request<Incoming>) -> Reply {
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let method = &parts.method;
    if (method == Method::POST || method == Method::PUT) && bulk::is_bulk_path(path) {
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => return error(400, &e.to_string()),
        };
        return match bulk_reply(&counters, &parts.headers, path, body) {
            Ok(reply) => json(200, reply),
            Err(e) => error(400, &format!("{e:#}")),
        };
    }
    if (method == Method::GET || method == Method::HEAD) && path == "/" {
        json(200, INFO)
    } else if method == Method::PUT && path.starts_with("/_index_template/") {
        json(200, r#"{"acknowledged":true}"#)
    } else if method == Method::GET && path == "/_cluster/health" {
        json(200, HEALTH)
    } else {
        error(404, &format!("no handler for {method} {path}"))
    }
}

fn bulk_reply(
    counters: &Counters,
    headers: &hyper::HeaderMap,
    path: &str,
    body: bytes::Bytes,
) -> Result<String> {
    let body = bulk::decode_body(headers, body)?;
    let items = bulk::parse(&body, bulk::path_index(path).as_deref())?;
    counters
        .docs
        .fetch_add(items.len() as u64, Ordering::Relaxed);
    let mut out = String::with_capacity(40 + items.len() * 80);
    out.push_str(r#"{"took":0,"errors":false,"items":["#);
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let (status, result) = match item.action.as_str() {
            "index" | "create" => (201, "created"),
            "update" => (200, "updated"),
            _ => (200, "deleted"),
        };
        let id = match &item.id {
            Some(id) => id.clone(),
            None => format!(
                "noop-{}",
                counters.generated_ids.fetch_add(1, Ordering::Relaxed)
            ),
        };
        write!(
            out,
            r#"{{"{}":{{"_index":{},"_id":{},"_version":1,"result":"{result}","status":{status}}}}}"#,
            item.action,
            serde_json::to_string(item.index.as_deref().unwrap_or("_unknown"))?,
            serde_json::to_string(&id)?,
        )?;
    }
    out.push_str("]}");
    Ok(out)
}

fn error(status: u16, reason: &str) -> Reply {
    let body = serde_json::json!({
        "error": {"type": "weir_testkit_noop_bulk", "reason": reason},
        "status": status,
    });
    json(status, body.to_string())
}

const INFO: &str = r#"{"name":"weir-testkit-noop-bulk","cluster_name":"weir-testkit","cluster_uuid":"weir-testkit-noop-bulk","version":{"number":"8.15.0","build_flavor":"default","build_type":"docker","lucene_version":"9.11.1","minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}"#;

const HEALTH: &str = r#"{"cluster_name":"weir-testkit","status":"green","timed_out":false,"number_of_nodes":1,"number_of_data_nodes":1,"active_primary_shards":0,"active_shards":0,"relocating_shards":0,"initializing_shards":0,"unassigned_shards":0}"#;
