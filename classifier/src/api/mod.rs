//! HTTP API: batch endpoints, expert.ai-compatible endpoints, health and metrics.
//!
//! [`router`] builds the complete service; tests and other crates can embed
//! it in-process (e.g. with `tower::ServiceExt::oneshot`).

pub mod batch;
pub mod error;
pub mod expertai;
pub mod metrics;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
};
use serde::Serialize;

use crate::{hate::HateClassifier, vader::SentimentAnalyzer};
use error::ApiError;
use metrics::Metrics;

/// Default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Service settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub body_limit: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// Shared state: both models (loaded once), metrics and settings.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    sentiment: SentimentAnalyzer,
    hate: HateClassifier,
    metrics: Metrics,
    config: ApiConfig,
}

impl Default for AppState {
    fn default() -> Self {
        Self::new(ApiConfig::default())
    }
}

impl AppState {
    /// Loads the embedded VADER lexicons and hatesonar model.
    pub fn new(config: ApiConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                sentiment: SentimentAnalyzer::default(),
                hate: HateClassifier::default(),
                metrics: Metrics::default(),
                config,
            }),
        }
    }

    pub fn sentiment(&self) -> &SentimentAnalyzer {
        &self.inner.sentiment
    }

    pub fn hate(&self) -> &HateClassifier {
        &self.inner.hate
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// Runs CPU-bound classification off the async workers.
    async fn run_blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> T + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| ApiError::internal(format!("classification task failed: {e}")))
    }
}

/// A span of text: character offsets, zero-based, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub start: usize,
    pub end: usize,
}

impl From<(usize, usize)> for Position {
    fn from((start, end): (usize, usize)) -> Self {
        Self { start, end }
    }
}

/// The complete HTTP service.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().body_limit;
    Router::new()
        .route("/v1/sentiment", post(batch::sentiment))
        .route("/v1/hate", post(batch::hate))
        .route(
            "/v2/analyze/standard/{lang}/sentiment",
            post(expertai::sentiment),
        )
        .route("/v2/detect/hate-speech/{lang}", post(expertai::hate_speech))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}
