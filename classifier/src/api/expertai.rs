//! expert.ai NL API v2-compatible endpoints, so clients written for
//! expert.ai's `analyze/standard/{lang}/sentiment` and
//! `detect/hate-speech/{lang}` work against this service unchanged.
//!
//! Mapping (documented in the README):
//! * sentiment: `overall` = compound × 100, `positivity` = pos × 100,
//!   `negativity` = −neg × 100 (2 decimals); `items` are the tokens that
//!   scored, with their final VADER valence; `syncon` is always −1 (no
//!   knowledge graph).
//! * hate speech: label hate → category 2000 "Discrimination and Harassment"
//!   (plus a subcategory when a driving term is in [`crate::hate::terms`]),
//!   offensive → 1000 "Personal Insult", neither → no category. As
//!   documented by expert.ai, `score` is cumulative and unbounded (here:
//!   the category's driving terms' contributions to the model's logit,
//!   summed and rounded, at least 1), `frequency` the category's share of
//!   the listed scores in percent (summing to exactly 100), `winner` marks
//!   the categories with the highest score, `positions` the driving terms'
//!   character offsets (zero-based, end exclusive).

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{
    AppState, Position,
    error::{ApiError, ExpertAiError},
};
use crate::{
    hate::{DrivingTerm, HATESONAR_VERSION, HateLabel, HatePrediction, terms},
    pyround::py_round,
    vader::{Analysis, VADER_VERSION},
};

/// Languages served (VADER's lexicon and the hatesonar model are English).
const SUPPORTED_LANGUAGES: &[&str] = &["en"];

/// `{"document": {"text": "..."}}`.
#[derive(Debug, Deserialize)]
pub struct AnalysisRequest {
    pub document: Document,
}

#[derive(Debug, Deserialize)]
pub struct Document {
    pub text: String,
}

/// `{"success": true, "data": ...}`.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    pub success: bool,
    pub data: T,
}

#[derive(Debug, Serialize)]
pub struct SentimentData {
    pub content: String,
    pub language: &'static str,
    pub version: String,
    pub knowledge: Vec<serde_json::Value>,
    pub sentiment: Sentiment,
}

#[derive(Debug, Serialize)]
pub struct Sentiment {
    /// −100..100
    pub overall: f64,
    /// 0..100
    pub positivity: f64,
    /// −100..0
    pub negativity: f64,
    pub items: Vec<SentimentItem>,
}

#[derive(Debug, Serialize)]
pub struct SentimentItem {
    pub lemma: String,
    pub syncon: i64,
    pub sentiment: f64,
    pub items: Vec<SentimentItem>,
}

#[derive(Debug, Serialize)]
pub struct HateSpeechData {
    pub content: String,
    pub language: &'static str,
    pub version: String,
    pub categories: Vec<Category>,
    pub extractions: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct Category {
    pub id: &'static str,
    pub label: &'static str,
    pub hierarchy: Vec<&'static str>,
    pub namespace: &'static str,
    pub score: u32,
    pub frequency: f64,
    pub winner: bool,
    pub positions: Vec<Position>,
}

fn check_language(lang: &str) -> Result<&'static str, ExpertAiError> {
    SUPPORTED_LANGUAGES
        .iter()
        .find(|l| **l == lang)
        .copied()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED_LANGUAGE",
                format!(
                    "language {lang:?} is not supported; supported: {}",
                    SUPPORTED_LANGUAGES.join(", ")
                ),
            )
            .into()
        })
}

fn version(model: &str) -> String {
    format!("weir-classifier {}; {model}", env!("CARGO_PKG_VERSION"))
}

/// `POST /v2/analyze/standard/{lang}/sentiment`.
pub async fn sentiment(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    body: Result<Json<AnalysisRequest>, JsonRejection>,
) -> Result<Json<Envelope<SentimentData>>, ExpertAiError> {
    let language = check_language(&lang)?;
    let Json(request) = body?;
    state
        .metrics()
        .add_texts("/v2/analyze/standard/{lang}/sentiment", 1);
    let text = request.document.text;
    let (text, analysis) = state
        .run_blocking(move |s| {
            let analysis = s.sentiment().analyze(&text);
            (text, analysis)
        })
        .await?;
    Ok(Json(Envelope {
        success: true,
        data: SentimentData {
            content: text,
            language,
            version: version(&format!("vader {VADER_VERSION}")),
            knowledge: Vec::new(),
            sentiment: sentiment_of(&analysis),
        },
    }))
}

fn sentiment_of(analysis: &Analysis) -> Sentiment {
    let s = analysis.scores;
    // `0.0 - x` rather than `-x` so that no negativity renders as 0.0, not -0.0.
    let negativity = 0.0 - py_round(s.neg * 100.0, 2);
    Sentiment {
        overall: py_round(s.compound * 100.0, 2),
        positivity: py_round(s.pos * 100.0, 2),
        negativity,
        items: analysis
            .tokens
            .iter()
            .map(|t| SentimentItem {
                lemma: t.lemma.clone(),
                syncon: -1,
                sentiment: py_round(t.valence, 4),
                items: Vec::new(),
            })
            .collect(),
    }
}

/// `POST /v2/detect/hate-speech/{lang}`.
pub async fn hate_speech(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    body: Result<Json<AnalysisRequest>, JsonRejection>,
) -> Result<Json<Envelope<HateSpeechData>>, ExpertAiError> {
    let language = check_language(&lang)?;
    let Json(request) = body?;
    state
        .metrics()
        .add_texts("/v2/detect/hate-speech/{lang}", 1);
    let text = request.document.text;
    let (text, prediction) = state
        .run_blocking(move |s| {
            let prediction = s.hate().predict(&text);
            (text, prediction)
        })
        .await?;
    Ok(Json(Envelope {
        success: true,
        data: HateSpeechData {
            content: text,
            language,
            version: version(&format!("hatesonar {HATESONAR_VERSION}")),
            categories: categories_of(&prediction),
            extractions: Vec::new(),
        },
    }))
}

const DISCRIMINATION: &str = "Discrimination and Harassment";
const PERSONAL_INSULT: &str = "Personal Insult";

/// expert.ai categories for a prediction (see the module docs for the mapping).
pub fn categories_of(prediction: &HatePrediction) -> Vec<Category> {
    // A category's terms: all driving terms, or those a subcategory lists.
    let terms_of = |terms: &[&str]| -> Vec<&DrivingTerm> {
        prediction
            .top_features
            .iter()
            .filter(|t| terms.is_empty() || terms.contains(&t.term.as_str()))
            .collect()
    };
    let category = |id, label, hierarchy, terms: Vec<&DrivingTerm>| {
        let mut positions: Vec<Position> = terms
            .iter()
            .flat_map(|t| t.positions.iter().copied().map(Position::from))
            .collect();
        positions.sort_by_key(|p| (p.start, p.end));
        Category {
            id,
            label,
            hierarchy,
            namespace: "hate_speech",
            score: cumulative_score(&terms),
            frequency: 0.0,
            winner: false,
            positions,
        }
    };
    let mut categories = match prediction.label {
        HateLabel::Neither => Vec::new(),
        HateLabel::Offensive => vec![category(
            "1000",
            PERSONAL_INSULT,
            vec![PERSONAL_INSULT],
            terms_of(&[]),
        )],
        HateLabel::Hate => {
            let drivers: Vec<&str> = prediction
                .top_features
                .iter()
                .map(|t| t.term.as_str())
                .collect();
            let mut out = vec![category(
                "2000",
                DISCRIMINATION,
                vec![DISCRIMINATION],
                terms_of(&[]),
            )];
            for sub in terms::subcategories_for(&drivers) {
                let matched: Vec<&str> = drivers
                    .iter()
                    .copied()
                    .filter(|d| sub.terms.contains(d))
                    .collect();
                out.push(category(
                    sub.id,
                    sub.label,
                    vec![DISCRIMINATION, sub.label],
                    terms_of(&matched),
                ));
            }
            out
        }
    };
    let best = categories.iter().map(|c| c.score).max().unwrap_or(0);
    for c in &mut categories {
        c.winner = c.score == best;
    }
    let frequencies = frequencies(&categories.iter().map(|c| c.score).collect::<Vec<_>>());
    for (c, f) in categories.iter_mut().zip(frequencies) {
        c.frequency = f;
    }
    categories
}

/// What the rules would have accumulated: the driving terms' contributions
/// to the class's logit, summed and rounded, at least 1 for a listed
/// category (expert.ai's scores are cumulative and unbounded, not
/// probabilities).
fn cumulative_score(terms: &[&DrivingTerm]) -> u32 {
    let sum: f64 = terms.iter().map(|t| t.contribution.max(0.0)).sum();
    (py_round(sum, 0) as u32).max(1)
}

/// Each score's percentage of their sum, 2 decimals, adjusted on the
/// largest so that they add up to exactly 100 (nothing listed: none).
fn frequencies(scores: &[u32]) -> Vec<f64> {
    let total: u32 = scores.iter().sum();
    if total == 0 {
        return vec![0.0; scores.len()];
    }
    // In hundredths of a percent, so the sum is exact.
    let mut hundredths: Vec<i64> = scores
        .iter()
        .map(|s| py_round(10_000.0 * f64::from(*s) / f64::from(total), 0) as i64)
        .collect();
    let rest = 10_000 - hundredths.iter().sum::<i64>();
    if let Some(largest) = (0..scores.len()).max_by_key(|i| (scores[*i], std::cmp::Reverse(*i))) {
        hundredths[largest] += rest;
    }
    hundredths.into_iter().map(|h| h as f64 / 100.0).collect()
}
