//! `/v1/tenants/…`: a tenant's settings, pipelines, module uploads,
//! rollback, pause/resume and metrics. Every handler but `list` starts
//! with [`Scope`], which has already checked the caller against the
//! `{tenant}` of the path.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::Serialize;

use super::auth::{Caller, Principal, Scope};
use super::modules::RollbackRequest;
use super::{control_error, error, with_offset};
use crate::admin::AdminState;
use crate::config::valid_module_name;
use crate::config::{Quotas, Tenant};
use crate::fleet::ControlError;
use crate::modules::{PipelineStatus, RollbackError, UploadError};

/// A tenant as the API shows it (no file paths, no token hash).
#[derive(Debug, Serialize)]
struct TenantView {
    id: String,
    weight: u32,
    index_prefix: String,
    topic_prefixes: Vec<String>,
    allowed_outbound_hosts: Vec<String>,
    quotas: Quotas,
    /// Pipeline names without the `<id>.` prefix.
    pipelines: Vec<String>,
    /// Whether a token is configured for the tenant.
    has_token: bool,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            has_token: t.token_sha256.is_some(),
            id: t.id,
            weight: t.weight,
            index_prefix: t.index_prefix,
            topic_prefixes: t.topic_prefixes,
            allowed_outbound_hosts: t.allowed_outbound_hosts,
            quotas: t.quotas,
            pipelines: t.pipelines,
        }
    }
}

/// `GET /v1/tenants`: every tenant for the operator, itself for a tenant.
pub(super) async fn list(Caller(principal): Caller, State(state): State<AdminState>) -> Response {
    let tenants = state
        .modules
        .as_ref()
        .map(|r| r.tenants())
        .unwrap_or_default();
    let tenants: Vec<TenantView> = tenants
        .into_values()
        .filter(|t| match &principal {
            Principal::Operator => true,
            Principal::Tenant(id) => *id == t.id,
        })
        .map(TenantView::from)
        .collect();
    Json(serde_json::json!({ "tenants": tenants })).into_response()
}

/// `GET /v1/tenants/{tenant}`
pub(super) async fn show(scope: Scope) -> Response {
    Json(TenantView::from(scope.tenant)).into_response()
}

/// `GET /v1/tenants/{tenant}/pipelines`
pub(super) async fn pipelines(scope: Scope) -> Response {
    let pipelines = scope.registry.pipelines(Some(&scope.tenant.id)).await;
    Json(serde_json::json!({ "pipelines": pipelines })).into_response()
}

/// The tenant's pipeline `name` (given without the `<tenant>.` prefix).
async fn owned_pipeline(scope: &Scope, name: &str) -> Result<PipelineStatus, Response> {
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            format!("no pipeline `{name}` in tenant `{}`", scope.tenant.id),
        )
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(not_found());
    }
    let full = format!("{}.{name}", scope.tenant.id);
    scope
        .registry
        .pipelines(Some(&scope.tenant.id))
        .await
        .into_iter()
        .find(|p| p.name == full)
        .ok_or_else(not_found)
}

/// `GET /v1/tenants/{tenant}/pipelines/{pipeline}`
pub(super) async fn pipeline(
    scope: Scope,
    Path((_, pipeline)): Path<(String, String)>,
) -> Response {
    match owned_pipeline(&scope, &pipeline).await {
        Ok(p) => Json(p).into_response(),
        Err(r) => r,
    }
}

/// `PUT /v1/tenants/{tenant}/modules/{name}`: raw component bytes,
/// validated and activated like a hot-reload drop.
pub(super) async fn upload(
    scope: Scope,
    State(state): State<AdminState>,
    Path((_, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    // Everything that can be refused without the body is, before reading it.
    if !valid_module_name(&name) {
        return error(StatusCode::BAD_REQUEST, UploadError::InvalidName(name));
    }
    if let Some(ct) = request.headers().get(header::CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/wasm" && essence != "application/octet-stream" {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type `{essence}`: send the component as application/wasm or application/octet-stream"
                ),
            );
        }
    }
    let bytes = match read_upload(request, &scope, &state).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let result = match &scope.fleet {
        Some(fleet) => fleet
            .upload(
                &scope.registry,
                &scope.tenant.id,
                &name,
                bytes,
                scope.writer(),
            )
            .await
            .map(|(offset, report)| with_offset(report, offset)),
        None => scope
            .registry
            .upload_module(&scope.tenant.id, &name, bytes)
            .await
            .map(|r| Json(r).into_response())
            .map_err(ControlError::Upload),
    };
    let e = match result {
        Ok(response) => return response,
        Err(ControlError::Upload(e)) => e,
        Err(e) => return control_error(e),
    };
    upload_error(&scope, &name, e)
}

/// The answer to a refused upload.
fn upload_error(scope: &Scope, name: &str, e: UploadError) -> Response {
    match e {
        UploadError::UnknownTenant(id) => super::auth::no_tenant(&id),
        e @ UploadError::InvalidName(_) => error(StatusCode::BAD_REQUEST, e),
        e @ UploadError::TooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, e),
        e @ UploadError::Rejected(_) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        e @ UploadError::StoreFull { .. } => error(StatusCode::CONFLICT, e),
        e @ UploadError::Io(_) => {
            tracing::error!(tenant = %scope.tenant.id, module = %name, error = %e, "module upload failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

/// Reads an upload's body chunk by chunk, refusing it (413) as soon as it
/// crosses the tenant's `max_module_bytes` or `admin.max_upload_bytes`,
/// whichever is smaller: a body without `Content-Length` (chunked) is
/// never buffered past the limit. A declared length over it is refused
/// before reading anything; a body that stalls past
/// `admin.body_read_timeout` answers 408.
async fn read_upload(
    request: Request,
    scope: &Scope,
    state: &AdminState,
) -> Result<Vec<u8>, Response> {
    let module_limit = scope.tenant.quotas.max_module_bytes;
    let upload_limit = state.api.max_upload_bytes;
    let too_large = |len: usize| {
        let message = if module_limit <= upload_limit {
            UploadError::TooLarge {
                len,
                limit: module_limit,
            }
            .to_string()
        } else {
            format!(
                "request body is over the upload limit of {upload_limit} bytes (admin.max_upload_bytes)"
            )
        };
        error(StatusCode::PAYLOAD_TOO_LARGE, message)
    };
    let limit = module_limit.min(upload_limit);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if let Some(len) = declared.filter(|&len| len > limit) {
        return Err(too_large(len));
    }
    let mut body = request.into_body().into_data_stream();
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            if is_timeout(&e) {
                error(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body stalled longer than admin.body_read_timeout",
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body: {e}"),
                )
            }
        })?;
        if bytes.len() + chunk.len() > limit {
            tracing::warn!(tenant = %scope.tenant.id, limit, "module upload refused while reading: over the limit");
            return Err(too_large(bytes.len() + chunk.len()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Whether a body error is the body read timeout's.
fn is_timeout(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// `POST /v1/tenants/{tenant}/pipelines/{pipeline}/modules/{module}/rollback`
pub(super) async fn rollback(
    scope: Scope,
    Path((_, pipeline, module)): Path<(String, String, String)>,
    body: Option<Json<RollbackRequest>>,
) -> Response {
    let p = match owned_pipeline(&scope, &pipeline).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let to = body.and_then(|Json(b)| b.to);
    if let Some(fleet) = &scope.fleet {
        return match fleet
            .rollback(
                &scope.registry,
                &p.name,
                &module,
                to.as_deref(),
                scope.writer(),
            )
            .await
        {
            Ok((offset, status)) => {
                with_offset(status.relative_to(&scope.tenant.modules_dir), offset)
            }
            Err(e) => control_error(e),
        };
    }
    match scope
        .registry
        .rollback(&p.name, &module, to.as_deref())
        .await
    {
        Ok(status) => Json(status.relative_to(&scope.tenant.modules_dir)).into_response(),
        Err(RollbackError::NotFound { .. }) => error(
            StatusCode::NOT_FOUND,
            format!("no module `{module}` in pipeline `{pipeline}`"),
        ),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// What pause/resume answer.
#[derive(Serialize)]
struct RunStateChange {
    /// Whether the call changed the state (false: it already was).
    changed: bool,
    pipeline: PipelineStatus,
}

async fn set_paused(scope: Scope, pipeline: &str, paused: bool) -> Response {
    let p = match owned_pipeline(&scope, pipeline).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (changed, offset) = match &scope.fleet {
        Some(fleet) => match fleet
            .set_paused(&scope.registry, &p.name, paused, scope.writer())
            .await
        {
            Ok((offset, changed)) => (changed, Some(offset)),
            Err(e) => return control_error(e),
        },
        None => match scope.registry.set_paused(&p.name, paused).await {
            Some(changed) => (changed, None),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no pipeline `{pipeline}` in tenant `{}`", scope.tenant.id),
                );
            }
        },
    };
    match owned_pipeline(&scope, pipeline).await {
        Ok(pipeline) => {
            let change = RunStateChange { changed, pipeline };
            match offset {
                Some(offset) => with_offset(change, offset),
                None => Json(change).into_response(),
            }
        }
        Err(r) => r,
    }
}

/// `POST /v1/tenants/{tenant}/pipelines/{pipeline}/pause`
pub(super) async fn pause(scope: Scope, Path((_, pipeline)): Path<(String, String)>) -> Response {
    set_paused(scope, &pipeline, true).await
}

/// `POST /v1/tenants/{tenant}/pipelines/{pipeline}/resume`
pub(super) async fn resume(scope: Scope, Path((_, pipeline)): Path<(String, String)>) -> Response {
    set_paused(scope, &pipeline, false).await
}

/// `GET /v1/tenants/{tenant}/metrics`: the `/metrics` series labelled
/// with the tenant.
pub(super) async fn metrics(scope: Scope, State(state): State<AdminState>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e);
    }
    (
        [(header::CONTENT_TYPE, crate::admin::METRICS_CONTENT_TYPE)],
        super::tenant_series(&text, &scope.tenant.id),
    )
        .into_response()
}
