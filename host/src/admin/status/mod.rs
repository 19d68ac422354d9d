//! The live status page: `GET /` (also `/status`) serves a plain HTML page
//! that polls `GET /v1/status` every 2 s and draws throughput per pipeline,
//! the sentiment distribution, the hate rate, the latest classified
//! documents, module versions and errors.
//!
//! Everything the page loads is compiled into the binary (`assets/`), the
//! charts are plain SVG drawn by `app.js`, and a Content-Security-Policy of
//! `'self'` keeps the browser from fetching anything else.
//!
//! Numbers come from three places: the counters in the metrics registry
//! (read through its text encoding, so they equal `/metrics`), a ring of
//! one-second samples kept by a background task (records/s), and one
//! `_msearch` over the pipelines' indices, cached for [`INDEX_TTL`].

mod indices;
mod metrics;
mod summary;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use self::indices::{IndexSide, Target};
pub use self::summary::Summary;
use super::AdminState;
use crate::config::ElasticsearchConfig;

/// How long an index query answer is reused.
pub const INDEX_TTL: Duration = Duration::from_secs(1);
/// The window of the records/s figures.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Longest wait for the index queries.
const INDEX_TIMEOUT: Duration = Duration::from_secs(5);

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// Nothing but this origin: no CDN, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// State of the status page: the sampler's ring and the index client.
pub struct StatusPage {
    started: Instant,
    ring: metrics::Ring,
    indices: indices::Indices,
    sampling: AtomicBool,
}

impl StatusPage {
    /// Builds the index client with the sink's settings (URL, auth, TLS).
    pub fn new(es: &ElasticsearchConfig, base_dir: &Path) -> anyhow::Result<Arc<Self>> {
        let client = crate::sinks::elasticsearch::service::build_client(es, base_dir)?;
        Ok(Arc::new(Self {
            started: Instant::now(),
            ring: metrics::Ring::default(),
            indices: indices::Indices::new(
                client,
                es.request.timeout.min(INDEX_TIMEOUT),
                INDEX_TTL,
            ),
            sampling: AtomicBool::new(false),
        }))
    }

    /// Starts the once-a-second sampler of `registry` (once; later calls
    /// do nothing). It stops with `stop`.
    pub fn spawn_sampler(self: &Arc<Self>, registry: Arc<Registry>, stop: CancellationToken) {
        if self.sampling.swap(true, Ordering::AcqRel) {
            return;
        }
        let page = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(metrics::PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => page.ring.push(metrics::read(&registry)),
                }
            }
        });
    }
}

/// The page, its assets and `/v1/status`.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/", get(page))
        .route("/status", get(page))
        .route(
            "/status/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/status/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route(
            "/status/favicon.svg",
            get(|| asset("image/svg+xml", FAVICON_SVG)),
        )
        .route("/v1/status", get(status))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn status(State(state): State<AdminState>) -> Response {
    let summary = summary::build(&state, state.status.as_deref()).await;
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(summary)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower_service::Service as _;

    fn state() -> AdminState {
        let mut registry = Registry::default();
        let m = crate::telemetry::Metrics::register(&mut registry);
        m.pipeline("news").records_consumed.inc_by(7);
        AdminState {
            fleet: None,
            api: Default::default(),
            registry: Arc::new(registry),
            health: Arc::new(|| {
                vec![crate::admin::ComponentHealth {
                    name: "elasticsearch".into(),
                    healthy: false,
                    detail: Some("HTTP 503".into()),
                }]
            }),
            modules: None,
            config_status: Default::default(),
            status: None,
        }
    }

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut app = crate::admin::router(state());
        let resp = app
            .call(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn serves_the_page_and_its_assets_from_the_binary() {
        for path in ["/", "/status"] {
            let (s, h, body) = get(path).await;
            assert_eq!(s, StatusCode::OK);
            assert!(
                h[header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap()
                    .contains("default-src 'none'")
            );
            assert!(body.contains("/status/app.js"));
        }
        for (path, ty) in [
            ("/status/app.js", "javascript"),
            ("/status/style.css", "css"),
            ("/status/favicon.svg", "svg"),
        ] {
            let (s, h, body) = get(path).await;
            assert_eq!(s, StatusCode::OK, "{path}");
            assert!(h[header::CONTENT_TYPE].to_str().unwrap().contains(ty));
            assert!(!body.is_empty());
        }
    }

    #[test]
    fn the_assets_load_nothing_from_elsewhere() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("style.css", STYLE_CSS),
        ] {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                let hits: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains(needle) && !l.contains("www.w3.org/2000/svg"))
                    .collect();
                assert!(hits.is_empty(), "{name} mentions {needle}: {hits:?}");
            }
        }
    }

    #[tokio::test]
    async fn status_json_without_index_state() {
        let (s, _, body) = get("/v1/status").await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["pipelines"][0]["name"], "news");
        assert_eq!(v["pipelines"][0]["records_consumed"], 7);
        assert_eq!(v["healthy"], false);
        assert_eq!(v["errors"][0]["source"], "elasticsearch");
        assert_eq!(v["errors"][0]["message"], "HTTP 503");
        assert!(v["indices"].is_null());
    }
}
