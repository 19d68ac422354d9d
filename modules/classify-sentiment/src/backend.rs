//! Sentiment as a [`Task`] of the shared classifier client: the classes,
//! the endpoints, and each service's answer in the schema's terms.

use classify_client::{Task, expertai, weir};
use serde::{Deserialize, Serialize};
use weir_guest::serde_json::Value;
use weir_guest::{Config, Error};

/// One text's sentiment, in the schema's terms; serialises as the
/// schema's `sentiment` object (fields in sorted order, as a
/// `serde_json::Map` kept them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentiment {
    pub label: &'static str,
    pub model: String,
    /// 0..1
    pub negativity: f64,
    /// 0..1
    pub positivity: f64,
    /// -1..1
    pub score: f64,
}

/// One element of the Weir classifier's `results` for `/v1/sentiment`:
/// what the verdict uses of it.
#[derive(Debug, Deserialize)]
pub struct WeirSentiment {
    compound: f64,
    pos: f64,
    neg: f64,
    label: String,
}

const LABELS: [&str; 3] = ["positive", "negative", "neutral"];

/// The sentiment task.
#[derive(Debug)]
pub struct SentimentTask {
    /// `|score|` below it is neutral (expert.ai, hf, tei).
    neutral: f64,
}

impl SentimentTask {
    /// Reads `neutral_threshold` (default 0.05).
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            neutral: config.parse_or("neutral_threshold", 0.05)?,
        })
    }

    fn label_for(&self, score: f64) -> &'static str {
        if score >= self.neutral {
            "positive"
        } else if score <= -self.neutral {
            "negative"
        } else {
            "neutral"
        }
    }
}

impl Task for SentimentTask {
    type Verdict = Sentiment;
    const CLASSES: [&'static str; 3] = LABELS;
    const DEFAULT_LABEL_MAP: &'static str =
        "positive:positive,negative:negative,neutral:neutral,pos:positive,neg:negative,neu:neutral";
    const WEIR_PATH: &'static str = "/v1/sentiment";
    type WeirResult = WeirSentiment;

    fn expertai_path(language: &str) -> String {
        format!("/v2/analyze/standard/{language}/sentiment")
    }

    fn weir_verdict(&self, r: WeirSentiment, model: &str) -> Result<Sentiment, String> {
        Ok(Sentiment {
            score: r.compound,
            label: LABELS[weir::label(&r.label, &LABELS)?],
            positivity: r.pos,
            negativity: r.neg,
            model: model.to_owned(),
        })
    }

    fn expertai_verdict(
        &self,
        data: &Value,
        _text: &str,
        model: &str,
    ) -> Result<Sentiment, String> {
        let s = expertai::Sentiment::parse(data)?;
        let score = (s.overall / 100.0).clamp(-1.0, 1.0);
        Ok(Sentiment {
            score,
            label: self.label_for(score),
            positivity: (s.positivity / 100.0).clamp(0.0, 1.0),
            negativity: (s.negativity.abs() / 100.0).clamp(0.0, 1.0),
            model: model.to_owned(),
        })
    }

    fn class_scores_verdict(&self, scores: [f64; 3], model: &str) -> Sentiment {
        let [positivity, negativity, neutral] = scores;
        let score = (positivity - negativity).clamp(-1.0, 1.0);
        let label = if neutral >= positivity.max(negativity) {
            "neutral"
        } else {
            self.label_for(score)
        };
        Sentiment {
            score,
            label,
            positivity,
            negativity,
            model: model.to_owned(),
        }
    }
}
