//! VADER sentiment analysis, a Rust port of vaderSentiment 3.3.2.
//!
//! Follows `vaderSentiment/vaderSentiment.py` of the PyPI package
//! vaderSentiment==3.3.2 (C.J. Hutto, MIT licence) rule for rule, with its
//! lexicons embedded from `data/vader/`. Scores match the Python package to
//! within 1e-9 on the shipped reference set (see `tests/vader_parity.rs`).
//!
//! Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model
//! for Sentiment Analysis of Social Media Text. ICWSM-14.

mod lexicon;
pub mod pystr;
mod rules;
mod score;
mod text;
mod valence;

use serde::Serialize;

pub use lexicon::{Lexicon, LexiconError};

use crate::pyround::py_round;
use text::SentiText;

/// Version of the Python package this port reproduces.
pub const VADER_VERSION: &str = "3.3.2";

/// Compound score at or above which a text is labelled positive (and at or
/// below whose negation negative), the thresholds recommended by VADER.
pub const LABEL_THRESHOLD: f64 = 0.05;

/// VADER's scores for one text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PolarityScores {
    pub neg: f64,
    pub neu: f64,
    pub pos: f64,
    pub compound: f64,
}

impl PolarityScores {
    /// Rounded as `polarity_scores` returns them: 3 decimals, compound 4.
    fn rounded(self) -> Self {
        Self {
            neg: py_round(self.neg, 3),
            neu: py_round(self.neu, 3),
            pos: py_round(self.pos, 3),
            compound: py_round(self.compound, 4),
        }
    }

    /// positive / negative / neutral by the ±0.05 compound thresholds.
    pub fn label(&self) -> SentimentLabel {
        if self.compound >= LABEL_THRESHOLD {
            SentimentLabel::Positive
        } else if self.compound <= -LABEL_THRESHOLD {
            SentimentLabel::Negative
        } else {
            SentimentLabel::Neutral
        }
    }
}

/// Coarse sentiment label derived from the compound score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Negative,
    Neutral,
}

/// A token that carried sentiment, with its final valence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredToken {
    /// Lowercased token (a lexicon word or emoticon).
    pub lemma: String,
    /// Valence after negation, boosters, emphasis, idioms and the "but" rule.
    pub valence: f64,
}

/// Full result for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Scores as the Python package returns them (rounded).
    pub scores: PolarityScores,
    /// The same scores before rounding.
    pub raw: PolarityScores,
    /// Tokens with a non-zero final valence, in text order.
    pub tokens: Vec<ScoredToken>,
}

/// VADER's `SentimentIntensityAnalyzer`.
#[derive(Debug, Clone)]
pub struct SentimentAnalyzer {
    lexicon: Lexicon,
}

impl Default for SentimentAnalyzer {
    fn default() -> Self {
        Self::new(Lexicon::embedded())
    }
}

impl SentimentAnalyzer {
    pub fn new(lexicon: Lexicon) -> Self {
        Self { lexicon }
    }

    /// `polarity_scores(text)`: rounded neg/neu/pos/compound.
    pub fn polarity_scores(&self, text: &str) -> PolarityScores {
        self.analyze(text).scores
    }

    /// Scores plus the tokens that produced them.
    pub fn analyze(&self, text: &str) -> Analysis {
        let text = text::replace_emoji(text, &self.lexicon);
        let st = SentiText::new(&text);

        let mut sentiments = Vec::with_capacity(st.len());
        for i in 0..st.len() {
            let word = st.lower[i].as_str();
            // Boosters, and "kind" in "kind of", only modify their neighbours.
            let modifier = rules::booster(word).is_some()
                || (i + 1 < st.len() && word == "kind" && st.lower[i + 1] == "of");
            sentiments.push(if modifier {
                0.0
            } else {
                valence::token_valence(&self.lexicon, &st, i)
            });
        }
        score::but_check(&st.lower, &mut sentiments);

        let raw = score::score_valence(&sentiments, &text);
        let tokens = st
            .lower
            .iter()
            .zip(&sentiments)
            .filter(|(_, v)| **v != 0.0)
            .map(|(lemma, &valence)| ScoredToken {
                lemma: lemma.clone(),
                valence,
            })
            .collect();
        Analysis {
            scores: raw.rounded(),
            raw,
            tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_examples() {
        let vader = SentimentAnalyzer::default();
        let s = vader.polarity_scores("VADER is smart, handsome, and funny.");
        assert_eq!(
            s,
            PolarityScores {
                neg: 0.0,
                neu: 0.254,
                pos: 0.746,
                compound: 0.8316
            }
        );
        assert_eq!(s.label(), SentimentLabel::Positive);
        assert_eq!(vader.polarity_scores("").label(), SentimentLabel::Neutral);
        assert_eq!(
            vader.polarity_scores("The movie was bad.").label(),
            SentimentLabel::Negative
        );
    }

    #[test]
    fn reports_the_scoring_tokens() {
        let a = SentimentAnalyzer::default().analyze("The plot was good, but the ending was bad");
        let lemmas: Vec<_> = a.tokens.iter().map(|t| t.lemma.as_str()).collect();
        assert_eq!(lemmas, ["good", "bad"]);
        assert_eq!(a.tokens[0].valence, 1.9 * 0.5);
        assert_eq!(a.tokens[1].valence, -2.5 * 1.5);
    }
}
