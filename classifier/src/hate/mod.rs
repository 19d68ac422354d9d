//! Hate-speech and offensive-language detection with the hatesonar model.
//!
//! hatesonar==0.1.0 (Hiroki Nakayama, MIT licence) ships `model.onnx`: a
//! TF-IDF + multinomial logistic regression trained on the tweets of
//! Davidson et al. (2017), "Automated Hate Speech Detection and the Problem
//! of Offensive Language" (ICWSM). `scripts/export_hatesonar.py` exports its
//! parameters to `data/hatesonar/model.json`; this module reimplements the
//! ONNX graph and reproduces the package's probabilities exactly (see
//! `tests/hate_parity.rs`).

mod features;
mod linear;
mod model;
pub mod terms;

use serde::Serialize;

pub use features::{Token, tokenize};
pub use model::{LinearModel, ModelError};

/// Version of the Python package whose model is embedded.
pub const HATESONAR_VERSION: &str = "0.1.0";

/// How many driving terms a prediction reports at most.
pub const TOP_FEATURES: usize = 5;

/// Driving terms contributing less than this fraction of the strongest one
/// are left out (e.g. "up" next to "bitch"), so positions point at what
/// actually decided the label.
pub const MIN_RELATIVE_CONTRIBUTION: f64 = 0.05;

/// hatesonar's three classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HateLabel {
    Hate,
    Offensive,
    Neither,
}

impl HateLabel {
    const ALL: [HateLabel; 3] = [HateLabel::Hate, HateLabel::Offensive, HateLabel::Neither];
}

/// Class probabilities (float32 in the model, widened exactly).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassScores {
    pub hate: f64,
    pub offensive: f64,
    pub neither: f64,
}

impl ClassScores {
    pub fn get(&self, label: HateLabel) -> f64 {
        match label {
            HateLabel::Hate => self.hate,
            HateLabel::Offensive => self.offensive,
            HateLabel::Neither => self.neither,
        }
    }
}

/// A term that pushed the text towards the predicted class.
#[derive(Debug, Clone, PartialEq)]
pub struct DrivingTerm {
    /// The vocabulary term (lowercase).
    pub term: String,
    /// Its addition to the winning class's logit: normalised tf-idf × weight.
    pub contribution: f64,
    /// Where it occurs in the text, character offsets, end exclusive.
    pub positions: Vec<(usize, usize)>,
}

/// Result for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct HatePrediction {
    pub label: HateLabel,
    pub scores: ClassScores,
    /// Up to [`TOP_FEATURES`] terms with a positive contribution to the
    /// predicted class, largest first, each at least
    /// [`MIN_RELATIVE_CONTRIBUTION`] of the largest.
    pub top_features: Vec<DrivingTerm>,
}

/// The hatesonar classifier.
#[derive(Debug, Clone)]
pub struct HateClassifier {
    model: LinearModel,
}

impl Default for HateClassifier {
    fn default() -> Self {
        Self::new(LinearModel::embedded())
    }
}

impl HateClassifier {
    pub fn new(model: LinearModel) -> Self {
        Self { model }
    }

    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    /// Classifies one text.
    pub fn predict(&self, text: &str) -> HatePrediction {
        let tokens = features::tokenize(text);
        let vector = features::tfidf(&self.model, &tokens);
        let logits = linear::logits(&self.model, &vector);
        let winner = linear::argmax(&logits);
        let p = linear::probabilities(&logits);

        let mut top: Vec<DrivingTerm> = vector
            .iter()
            .filter_map(|f| {
                let w = f.term.weights?[winner];
                let contribution = f64::from(f.value * w);
                (contribution > 0.0).then_some((f, contribution))
            })
            .map(|(f, contribution)| DrivingTerm {
                term: f.text.to_owned(),
                contribution,
                positions: tokens
                    .iter()
                    .filter(|t| t.text == f.text)
                    .map(|t| (t.start, t.end))
                    .collect(),
            })
            .collect();
        top.sort_by(|a, b| {
            b.contribution
                .total_cmp(&a.contribution)
                .then_with(|| a.term.cmp(&b.term))
        });
        let strongest = top.first().map_or(0.0, |t| t.contribution);
        top.retain(|t| t.contribution >= MIN_RELATIVE_CONTRIBUTION * strongest);
        top.truncate(TOP_FEATURES);

        HatePrediction {
            label: HateLabel::ALL[winner],
            scores: ClassScores {
                hate: f64::from(p[0]),
                offensive: f64::from(p[1]),
                neither: f64::from(p[2]),
            },
            top_features: top,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_readme_example() {
        let p = HateClassifier::default().predict("At least I'm not a nigger");
        assert_eq!(p.label, HateLabel::Hate);
        // Reference run of hatesonar 0.1.0 (onnxruntime, float32).
        assert_eq!(p.scores.hate, 0.6892269253730774);
        assert_eq!(p.top_features[0].term, "nigger");
        assert_eq!(p.top_features[0].positions, [(19, 25)]);
    }

    #[test]
    fn negligible_contributors_are_not_driving_terms() {
        let p = HateClassifier::default().predict("shut up you stupid bitch");
        assert_eq!(p.label, HateLabel::Offensive);
        // "up" has a tiny positive offensive weight; only "bitch" matters.
        let terms: Vec<_> = p.top_features.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(terms, ["bitch"]);
    }

    #[test]
    fn empty_text_gets_the_intercept_only_distribution() {
        let p = HateClassifier::default().predict("");
        assert_eq!(p.label, HateLabel::Neither);
        assert!(p.top_features.is_empty());
    }
}
