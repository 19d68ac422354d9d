//! The admin endpoint: `/metrics` (Prometheus text), `/healthz`, the
//! module API (`/v1/modules`), the live status page (`/`, `/v1/status`)
//! and the tenant API (`/v1/tenants/…`, see [`api`]). Routes and who may
//! call them: [`api::routes`]; documented in `docs/openapi.json`.

pub mod api;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// One component's health.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    pub name: String,
    pub healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Reports health on demand (the sink, the consumer ...).
pub type HealthCheck = Arc<dyn Fn() -> Vec<ComponentHealth> + Send + Sync>;

#[derive(Clone)]
pub struct AdminState {
    pub registry: Arc<Registry>,
    pub health: HealthCheck,
    /// Module versions (absent when the host runs no pipelines).
    pub modules: Option<Arc<crate::modules::Registry>>,
    pub config_status: Arc<std::sync::Mutex<crate::modules::ConfigStatus>>,
    /// The status page's sampler and index queries (absent: the page shows
    /// counters and modules only).
    pub status: Option<Arc<status::StatusPage>>,
    /// The fleet's control topic (`control.mode = "kafka"`): changes are
    /// written there and answered once this host applied them; `None`:
    /// changes apply to this host directly.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
    /// Tokens and upload limit (`[admin]`); the default has no operator
    /// token, so the operator endpoints are open as before.
    pub api: api::ApiSettings,
}

/// Every route of [`api::routes`], each behind its access check.
pub fn router(state: AdminState) -> Router {
    api::router(state)
}

pub(crate) const METRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(state): State<AdminState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Serialize)]
struct HealthReport {
    healthy: bool,
    components: Vec<ComponentHealth>,
}

/// `/healthz` is open to anyone (load balancers, orchestrators), so it says
/// healthy or not and nothing more; the components and their last errors
/// (which can quote Elasticsearch) go only to whoever may see operator
/// endpoints.
async fn healthz(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let components = (state.health)();
    let healthy = components.iter().all(|c| c.healthy);
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if api::auth::sees_operator_detail(&headers, &state) {
        serde_json::to_value(HealthReport {
            healthy,
            components,
        })
        .unwrap_or_default()
    } else {
        serde_json::json!({ "healthy": healthy })
    };
    (status, axum::Json(body)).into_response()
}

/// Binds `addr` and serves until `shutdown`. Returns the bound address
/// (useful with port 0).
///
/// At most `admin.max_connections` connections are served at once (more
/// wait in the listen backlog until one closes), and a connection that
/// takes longer than `admin.header_read_timeout` to send a request's
/// headers, or idles that long between requests, is closed: a client that
/// opens connections and sends nothing, or sends its headers a byte at a
/// time, cannot keep the operator's `/healthz` from being answered.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("admin.listen: cannot bind {addr}: {e}"))?;
    let local = listener.local_addr()?;
    if let Some(page) = &state.status {
        page.spawn_sampler(Arc::clone(&state.registry), shutdown.clone());
    }
    let limits = ConnectionLimits {
        max_connections: state.api.max_connections.max(1),
        header_read_timeout: state.api.header_read_timeout,
    };
    let app = router(state);
    let handle = tokio::spawn(accept_loop(listener, app, limits, shutdown));
    Ok((local, handle))
}

#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    max_connections: usize,
    header_read_timeout: std::time::Duration,
}

/// Accepts a connection only when a slot is free, serves each on its own
/// task, and on `shutdown` stops accepting and lets requests in flight
/// finish for at most [`SHUTDOWN_GRACE`].
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // instead of spinning.
                    tracing::warn!(error = %e, "admin endpoint: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "admin connection closed");
            }
        });
    }
    // Requests in flight get a short grace, not their whole
    // request_timeout: a slow client must not hold up the host's exit.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "admin connections still open at shutdown; closing them"
        );
        connections.abort_all();
    }
}

/// How long requests in flight may still run once the endpoint stops.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
