//! `/v1/control/…`: what only a fleet's control topic carries — tenants
//! added, replaced and removed through the API (operator only).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{control_error, error, with_offset};
use crate::admin::AdminState;
use crate::config::valid_tenant_id;

const FILES_MODE: &str = "tenants are added and removed through the API only with control.mode = \"kafka\"; with files, add or remove the tenant's file";

/// `PUT /v1/control/tenants/{tenant}`: the tenant file's TOML as the body.
pub(super) async fn put_tenant(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(fleet) = &state.fleet else {
        return error(StatusCode::CONFLICT, FILES_MODE);
    };
    if !valid_tenant_id(&id) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{id}` is not a tenant id"),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the tenant file is not UTF-8");
    };
    match fleet.put_tenant(&id, text).await {
        Ok(offset) => with_offset(serde_json::json!({ "tenant": id }), offset),
        Err(e) => control_error(e),
    }
}

/// `DELETE /v1/control/tenants/{tenant}`
pub(super) async fn remove_tenant(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Response {
    let Some(fleet) = &state.fleet else {
        return error(StatusCode::CONFLICT, FILES_MODE);
    };
    let known = state
        .modules
        .as_ref()
        .is_some_and(|r| r.tenants().contains_key(&id));
    if !known {
        return error(StatusCode::NOT_FOUND, format!("no tenant `{id}`"));
    }
    match fleet.remove_tenant(&id).await {
        Ok(offset) => with_offset(serde_json::json!({ "tenant": id, "removed": true }), offset),
        Err(e) => control_error(e),
    }
}
