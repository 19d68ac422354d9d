//! `/v1/modules`: module versions, load errors, rollback; `/v1/config`:
//! the last config reload.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::admin::AdminState;
use crate::modules::{ConfigStatus, ModuleStatus, RollbackError};

#[derive(Serialize)]
struct ModulesReport {
    modules: Vec<ModuleStatus>,
    config: ConfigStatus,
}

use super::error;

pub(super) async fn list(State(state): State<AdminState>) -> Response {
    let Some(registry) = &state.modules else {
        return error(StatusCode::NOT_FOUND, "this host runs no pipelines");
    };
    let config = state
        .config_status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Json(ModulesReport {
        modules: registry.status(),
        config,
    })
    .into_response()
}

/// Optional body of a rollback: a digest prefix to go back to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub to: Option<String>,
}

pub(super) async fn rollback(
    State(state): State<AdminState>,
    Path((pipeline, module)): Path<(String, String)>,
    body: Option<Json<RollbackRequest>>,
) -> Response {
    let Some(registry) = &state.modules else {
        return error(StatusCode::NOT_FOUND, "this host runs no pipelines");
    };
    let to = body.and_then(|Json(b)| b.to);
    if let Some(fleet) = &state.fleet {
        return match fleet
            .rollback(registry, &pipeline, &module, to.as_deref(), None)
            .await
        {
            Ok((offset, status)) => super::with_offset(status, offset),
            Err(e) => super::control_error(e),
        };
    }
    match Arc::clone(registry)
        .rollback(&pipeline, &module, to.as_deref())
        .await
    {
        Ok(status) => Json(status).into_response(),
        Err(e @ RollbackError::NotFound { .. }) => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}
