//! A scripted `_bulk` server: records every request (decompressed) and
//! answers with exact Elasticsearch response shapes chosen per request.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;

use super::WAIT;

/// One bulk request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `_id` of each action, in order.
    pub ids: Vec<String>,
    /// The request had `Content-Encoding: gzip`.
    pub gzip: bool,
}

/// How to answer a bulk request.
pub enum Reply {
    /// 200 with one item per document: `(status, error type)` by position.
    Items(Vec<(u16, Option<&'static str>)>),
    /// Every document indexed (201).
    AllCreated,
    /// Any status with a raw body.
    Raw(u16, String),
    /// Wait for a permit (none until the test adds some), then answer
    /// [`Reply::AllCreated`].
    Wait(Arc<Semaphore>),
}

/// Chooses the reply to the `n`th (0-based) bulk request.
pub type Responder = Box<dyn Fn(usize, &Recorded) -> Reply + Send + Sync>;

struct MockState {
    responder: Responder,
    requests: Mutex<Vec<Recorded>>,
    arrived: Notify,
}

/// A running mock server.
pub struct Mock {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<()>>,
}

impl Mock {
    pub async fn start(responder: Responder) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), responder).await
    }

    pub async fn start_on(addr: SocketAddr, responder: Responder) -> Self {
        let state = Arc::new(MockState {
            responder,
            requests: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route(
                "/",
                get(|| async { r#"{"version":{"number":"8.15.0"},"tagline":"mock"}"# }),
            )
            .route("/_bulk", post(bulk))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind mock");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            state,
            stop: Some(stop),
            served: Some(served),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` bulk requests arrived.
    pub async fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        let wait = async {
            loop {
                let arrived = self.state.arrived.notified();
                let reqs = self.requests();
                if reqs.len() >= n {
                    return reqs;
                }
                arrived.await;
            }
        };
        match tokio::time::timeout(WAIT, wait).await {
            Ok(reqs) => reqs,
            Err(_) => panic!(
                "only {} of {n} bulk requests arrived",
                self.requests().len()
            ),
        }
    }

    /// Stops listening and closes every connection.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.served.take().unwrap().await.unwrap();
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(served) = &self.served {
            served.abort();
        }
    }
}

async fn bulk(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let text = ndjson(&headers, &body);
    assert!(text.ends_with('\n'), "bulk body must end with a newline");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() % 2, 0, "action/source pairs");
    let ids = lines
        .chunks(2)
        .map(|pair| {
            let action: Value = serde_json::from_str(pair[0]).expect("action line is JSON");
            let _: Value = serde_json::from_str(pair[1]).expect("source line is JSON");
            action["index"]["_id"].as_str().expect("_id").to_owned()
        })
        .collect();
    let rec = Recorded { ids, gzip };
    let n = {
        let mut reqs = state.requests.lock().unwrap();
        reqs.push(rec.clone());
        reqs.len() - 1
    };
    state.arrived.notify_waiters();
    let mut reply = (state.responder)(n, &rec);
    if let Reply::Wait(release) = reply {
        drop(release.acquire().await.expect("semaphore open"));
        reply = Reply::AllCreated;
    }
    match reply {
        Reply::Items(items) => (StatusCode::OK, items_json(&rec.ids, &items)),
        Reply::AllCreated => {
            let items = vec![(201, None); rec.ids.len()];
            (StatusCode::OK, items_json(&rec.ids, &items))
        }
        Reply::Raw(status, body) => (StatusCode::from_u16(status).unwrap(), body),
        Reply::Wait(_) => unreachable!(),
    }
}

/// A bulk request's NDJSON body, gunzipped if it was sent gzipped.
pub fn ndjson(headers: &HeaderMap, body: &[u8]) -> String {
    let mut ndjson = Vec::new();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut ndjson)
            .expect("valid gzip");
    } else {
        ndjson.extend_from_slice(body);
    }
    String::from_utf8(ndjson).expect("utf-8 body")
}

/// A `_bulk` response exactly as Elasticsearch shapes it.
pub fn items_json(ids: &[String], items: &[(u16, Option<&str>)]) -> String {
    let items: Vec<Value> = ids
        .iter()
        .zip(items)
        .map(|(id, &(status, ty))| match ty {
            None => json!({"index": {"_index": "test", "_id": id, "_version": 1, "result": "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1, "status": status}}),
            Some(ty) => json!({"index": {"_index": "test", "_id": id, "status": status,
                "error": {"type": ty, "reason": format!("{ty} for [{id}]")}}}),
        })
        .collect();
    let errors = items.iter().any(|i| i["index"]["error"].is_object());
    json!({"took": 3, "errors": errors, "items": items}).to_string()
}

/// Replies by document id: `f(id)` gives `(status, error type)`.
pub fn by_id(
    f: impl Fn(usize, &str) -> (u16, Option<&'static str>) + Send + Sync + 'static,
) -> Responder {
    Box::new(move |n, rec| Reply::Items(rec.ids.iter().map(|id| f(n, id)).collect()))
}
