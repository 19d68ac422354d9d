//! The admin API's routes, who may call each, and the tenant endpoints
//! (`/v1/tenants/…`).
//!
//! [`routes`] is the one list of what the endpoint serves: the router is
//! built from it and the OpenAPI test (`docs/openapi.json`) compares
//! against it, so a route cannot be added without documenting it.

pub(crate) mod auth;
mod control;
mod metrics;
mod modules;
mod tenants;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use std::time::Duration;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

pub use self::auth::Principal;
pub use self::metrics::tenant_series;
use super::AdminState;
use crate::config::AdminConfig;
use crate::fleet::ControlError;
use serde::Serialize;

/// What the API needs of `[admin]`.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// sha256 of the operator's token; `None`: the operator endpoints are
    /// open (as before tokens existed) and no token is the operator's.
    pub operator_token_sha256: Option<String>,
    /// Largest request body read (a module upload), in bytes.
    pub max_upload_bytes: usize,
    /// `admin.request_timeout`: a whole request, body included.
    pub request_timeout: Duration,
    /// `admin.body_read_timeout`: a stall between two body chunks.
    pub body_read_timeout: Duration,
    /// `admin.header_read_timeout`: a request's headers, and idle time
    /// between requests on one connection.
    pub header_read_timeout: Duration,
    /// `admin.max_connections`: connections served at once.
    pub max_connections: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self::from(&AdminConfig::default())
    }
}

impl From<&AdminConfig> for ApiSettings {
    fn from(c: &AdminConfig) -> Self {
        Self {
            operator_token_sha256: c
                .operator_token_sha256
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
            max_upload_bytes: c.max_upload_bytes,
            request_timeout: c.request_timeout,
            body_read_timeout: c.body_read_timeout,
            header_read_timeout: c.header_read_timeout,
            max_connections: c.max_connections,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (`/healthz`).
    Open,
    /// The operator token when one is configured; open otherwise.
    Operator,
    /// Always a token: a tenant's (its own paths only) or the operator's.
    Tenant,
}

/// One served route: method (lowercase, as in OpenAPI), path (axum and
/// OpenAPI share the `{param}` syntax) and access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        access,
    }
}

/// The status page's routes (served by `admin::status::routes`, all GET,
/// operator access).
pub const STATUS_PAGE_ROUTES: &[&str] = &[
    "/",
    "/status",
    "/status/app.js",
    "/status/style.css",
    "/status/favicon.svg",
    "/v1/status",
];

/// Every route the admin endpoint serves.
pub fn routes() -> Vec<Route> {
    let mut all: Vec<Route> = table().into_iter().map(|(r, _)| r).collect();
    all.extend(
        STATUS_PAGE_ROUTES
            .iter()
            .map(|p| route("get", p, Access::Operator)),
    );
    all
}

/// The routes with their handlers (status page aside).
fn table() -> Vec<(Route, MethodRouter<AdminState>)> {
    use Access::{Open, Operator, Tenant};
    // The upload handler reads its body as a stream under its own limit.
    let upload = put(tenants::upload).layer(DefaultBodyLimit::disable());
    vec![
        (route("get", "/metrics", Operator), get(super::metrics)),
        (route("get", "/healthz", Open), get(super::healthz)),
        (route("get", "/v1/modules", Operator), get(modules::list)),
        (
            route("post", "/v1/modules/{pipeline}/{module}/rollback", Operator),
            post(modules::rollback),
        ),
        (route("get", "/v1/tenants", Tenant), get(tenants::list)),
        (
            route("get", "/v1/tenants/{tenant}", Tenant),
            get(tenants::show),
        ),
        (
            route("get", "/v1/tenants/{tenant}/pipelines", Tenant),
            get(tenants::pipelines),
        ),
        (
            route("get", "/v1/tenants/{tenant}/pipelines/{pipeline}", Tenant),
            get(tenants::pipeline),
        ),
        (
            route("put", "/v1/tenants/{tenant}/modules/{name}", Tenant),
            upload,
        ),
        (
            route(
                "post",
                "/v1/tenants/{tenant}/pipelines/{pipeline}/modules/{module}/rollback",
                Tenant,
            ),
            post(tenants::rollback),
        ),
        (
            route(
                "post",
                "/v1/tenants/{tenant}/pipelines/{pipeline}/pause",
                Tenant,
            ),
            post(tenants::pause),
        ),
        (
            route(
                "post",
                "/v1/tenants/{tenant}/pipelines/{pipeline}/resume",
                Tenant,
            ),
            post(tenants::resume),
        ),
        (
            route("get", "/v1/tenants/{tenant}/metrics", Tenant),
            get(tenants::metrics),
        ),
        (
            route("put", "/v1/control/tenants/{tenant}", Operator),
            put(control::put_tenant),
        ),
        (
            route("delete", "/v1/control/tenants/{tenant}", Operator),
            delete(control::remove_tenant),
        ),
    ]
}

/// The admin router: open routes as they are, operator routes (and the
/// status page) behind the operator check, tenant routes checking their
/// caller in their extractors; every request under `request_timeout` and
/// its body under `body_read_timeout` (tower-http layers, 408 past them).
pub(super) fn router(state: AdminState) -> Router {
    let request_timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.api.request_timeout);
    let body_timeout = RequestBodyTimeoutLayer::new(state.api.body_read_timeout);
    let mut open = Router::new();
    let mut operator = Router::new();
    let mut tenant = Router::new();
    for (r, handler) in table() {
        match r.access {
            Access::Open => open = open.route(r.path, handler),
            Access::Operator => operator = operator.route(r.path, handler),
            Access::Tenant => tenant = tenant.route(r.path, handler),
        }
    }
    let operator =
        operator
            .merge(super::status::routes())
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_operator,
            ));
    open.merge(operator)
        .merge(tenant)
        .layer(body_timeout)
        .layer(request_timeout)
        .with_state(state)
}

/// A change's answer through the control topic: `body` (a JSON object)
/// with the `control_offset` it was written at.
pub(crate) fn with_offset(body: impl Serialize, offset: i64) -> Response {
    let mut value = serde_json::to_value(body).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("control_offset".into(), offset.into());
    }
    Json(value).into_response()
}

/// The answer to a change the control topic did not carry through.
pub(crate) fn control_error(e: ControlError) -> Response {
    let status = match &e {
        ControlError::Upload(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ControlError::Refused(r) => {
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
        }
        ControlError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::NotApplied(_) => StatusCode::GATEWAY_TIMEOUT,
    };
    error(status, e)
}

/// A JSON error body: `{"error": "..."}`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(serde_json::json!({"error": message.to_string()})),
    )
        .into_response()
}
