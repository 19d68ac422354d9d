//! Weir's batch-native endpoints: `POST /v1/sentiment` and `POST /v1/hate`.
//!
//! Request `{"texts": ["…", …]}`; response `{"model": "…", "results": […]}`
//! with one result per text, in request order.

use axum::{Json, extract::State, extract::rejection::JsonRejection};
use serde::{Deserialize, Serialize};

use super::{AppState, Position, error::ApiError};
use crate::{
    hate::{ClassScores, HATESONAR_VERSION, HateLabel, HatePrediction},
    vader::{PolarityScores, SentimentLabel, VADER_VERSION},
};

/// Request body of both batch endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub texts: Vec<String>,
}

/// Response body of both batch endpoints.
#[derive(Debug, Serialize)]
pub struct BatchResponse<T> {
    pub model: String,
    pub results: Vec<T>,
}

/// One sentiment result: VADER scores (rounded as vaderSentiment returns them).
#[derive(Debug, Serialize)]
pub struct SentimentResult {
    pub compound: f64,
    pub pos: f64,
    pub neu: f64,
    pub neg: f64,
    pub label: SentimentLabel,
}

impl From<PolarityScores> for SentimentResult {
    fn from(s: PolarityScores) -> Self {
        Self {
            compound: s.compound,
            pos: s.pos,
            neu: s.neu,
            neg: s.neg,
            label: s.label(),
        }
    }
}

/// One hate-speech result.
#[derive(Debug, Serialize)]
pub struct HateResult {
    pub label: HateLabel,
    pub scores: ClassScores,
    pub top_features: Vec<TopFeature>,
}

/// A term that drove the decision towards `label`.
#[derive(Debug, Serialize)]
pub struct TopFeature {
    pub term: String,
    /// Addition to the winning class's logit (normalised tf-idf × weight).
    pub contribution: f64,
    pub positions: Vec<Position>,
}

impl From<HatePrediction> for HateResult {
    fn from(p: HatePrediction) -> Self {
        Self {
            label: p.label,
            scores: p.scores,
            top_features: p
                .top_features
                .into_iter()
                .map(|t| TopFeature {
                    term: t.term,
                    contribution: t.contribution,
                    positions: t.positions.into_iter().map(Position::from).collect(),
                })
                .collect(),
        }
    }
}

/// `POST /v1/sentiment`.
pub async fn sentiment(
    State(state): State<AppState>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Json<BatchResponse<SentimentResult>>, ApiError> {
    let Json(request) = body?;
    state
        .metrics()
        .add_texts("/v1/sentiment", request.texts.len());
    let results = state
        .run_blocking(move |s| {
            request
                .texts
                .iter()
                .map(|t| s.sentiment().polarity_scores(t).into())
                .collect()
        })
        .await?;
    Ok(Json(BatchResponse {
        model: format!("vader-{VADER_VERSION}"),
        results,
    }))
}

/// `POST /v1/hate`.
pub async fn hate(
    State(state): State<AppState>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Json<BatchResponse<HateResult>>, ApiError> {
    let Json(request) = body?;
    state.metrics().add_texts("/v1/hate", request.texts.len());
    let results = state
        .run_blocking(move |s| {
            request
                .texts
                .iter()
                .map(|t| s.hate().predict(t).into())
                .collect()
        })
        .await?;
    Ok(Json(BatchResponse {
        model: format!("hatesonar-{HATESONAR_VERSION}"),
        results,
    }))
}
