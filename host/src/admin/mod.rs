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
    let app = router(state);
    let handle = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "admin endpoint failed");
        }
    });
    Ok((local, handle))
}
