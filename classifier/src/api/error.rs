//! JSON error bodies: Weir's own shape for `/v1` and expert.ai's for `/v2`.

use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An API error: status, machine-readable code and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }
}

/// Maps axum's JSON extractor failures: malformed or mistyped bodies are
/// 400, a body over the configured limit 413, a missing JSON content type 415.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection {
            JsonRejection::JsonSyntaxError(_) => {
                Self::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", message)
            }
            JsonRejection::JsonDataError(_) => {
                Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                message,
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body exceeds the configured limit",
            ),
            other => Self::new(other.status(), "BAD_REQUEST", message),
        }
    }
}

/// `{"error": {"code": ..., "message": ...}}` (the `/v1` API and fallbacks).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// The same error in expert.ai's shape:
/// `{"success": false, "errors": [{"code": ..., "message": ...}]}`.
#[derive(Debug, Clone)]
pub struct ExpertAiError(pub ApiError);

impl From<ApiError> for ExpertAiError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<JsonRejection> for ExpertAiError {
    fn from(rejection: JsonRejection) -> Self {
        Self(rejection.into())
    }
}

impl IntoResponse for ExpertAiError {
    fn into_response(self) -> Response {
        let ApiError {
            status,
            code,
            message,
        } = self.0;
        let body = json!({"success": false, "errors": [{"code": code, "message": message}]});
        (status, Json(body)).into_response()
    }
}
