//! Hate speech as a [`Task`] of the shared classifier client: the classes,
//! the endpoints, and each service's answer in the schema's terms.

use classify_client::expertai::{Branch, HateSpeech};
use classify_client::{Task, weir};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use weir_guest::serde_json::Value;

/// One text's hate-speech classification, in the schema's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Hate {
    pub label: &'static str,
    /// Probability (or, for expert.ai, the share of the detected
    /// categories) of `label`.
    pub score: f64,
    /// `[hate, offensive, neither]`
    pub scores: [f64; 3],
    pub categories: Vec<String>,
    pub terms: Vec<String>,
    pub model: String,
}

/// The schema's `hate` object, written straight into the document (keys
/// in the order a `serde_json::Map` keeps them: sorted).
impl Serialize for Hate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let [hate, offensive, neither] = self.scores;
        let mut out = serializer.serialize_struct("Hate", 6)?;
        out.serialize_field("categories", &self.categories)?;
        out.serialize_field("label", self.label)?;
        out.serialize_field("model", &self.model)?;
        out.serialize_field("score", &self.score)?;
        out.serialize_field(
            "scores",
            &Scores {
                hate,
                neither,
                offensive,
            },
        )?;
        out.serialize_field("terms", &self.terms)?;
        out.end()
    }
}

#[derive(Serialize)]
struct Scores {
    hate: f64,
    neither: f64,
    offensive: f64,
}

/// One element of the Weir classifier's `results` for `/v1/hate`: what
/// the verdict uses of it (a driving term's `contribution` and
/// `positions` are skipped unread).
#[derive(Debug, Deserialize)]
pub struct WeirHate {
    label: String,
    scores: WeirScores,
    #[serde(default)]
    top_features: Vec<WeirTerm>,
}

#[derive(Debug, Deserialize)]
struct WeirScores {
    hate: f64,
    offensive: f64,
    neither: f64,
}

#[derive(Debug, Deserialize)]
struct WeirTerm {
    term: String,
}

impl Hate {
    /// From class scores: the label is the highest (ties: the more severe).
    fn from_scores(scores: [f64; 3], terms: Vec<String>, model: &str) -> Self {
        let i = (0..3).fold(0, |best, i| if scores[i] > scores[best] { i } else { best });
        Self::labelled(i, scores, terms, model)
    }

    /// Class `i` with its score and top-level category.
    fn labelled(i: usize, scores: [f64; 3], terms: Vec<String>, model: &str) -> Self {
        Self {
            label: LABELS[i],
            score: scores[i],
            scores,
            categories: categories_of(LABELS[i]),
            terms,
            model: model.to_owned(),
        }
    }
}

const LABELS: [&str; 3] = ["hate", "offensive", "neither"];
const HATE: usize = 0;
const OFFENSIVE: usize = 1;
const NEITHER: usize = 2;

/// The expert.ai taxonomy's top-level category for a model class.
fn categories_of(label: &str) -> Vec<String> {
    match label {
        "hate" => vec![Branch::DiscriminationAndHarassment.label().to_owned()],
        "offensive" => vec![Branch::PersonalInsult.label().to_owned()],
        _ => Vec::new(),
    }
}

/// The class an expert.ai category counts for: Personal Insult is
/// offensive; Discrimination and Harassment, Threat and Violence (and any
/// category outside the documented taxonomy: it is still hate speech
/// detected) are hate.
fn class_of(branch: Option<Branch>) -> usize {
    match branch {
        Some(Branch::PersonalInsult) => OFFENSIVE,
        _ => HATE,
    }
}

/// The hate-speech task.
#[derive(Debug)]
pub struct HateTask;

impl Task for HateTask {
    type Verdict = Hate;
    const CLASSES: [&'static str; 3] = LABELS;
    const DEFAULT_LABEL_MAP: &'static str = "hate:hate,offensive:offensive,neither:neither,hate_speech:hate,hateful:hate,offensive_language:offensive,\
         toxic:offensive,non-hate:neither,non_hate:neither,nothate:neither,not-hate:neither,normal:neither,\
         non-toxic:neither,non_toxic:neither,not-offensive:neither,not_offensive:neither,none:neither";
    const WEIR_PATH: &'static str = "/v1/hate";
    type WeirResult = WeirHate;

    fn expertai_path(language: &str) -> String {
        format!("/v2/detect/hate-speech/{language}")
    }

    fn weir_verdict(&self, r: WeirHate, model: &str) -> Result<Hate, String> {
        let WeirScores {
            hate,
            offensive,
            neither,
        } = r.scores;
        let i = weir::label(&r.label, &LABELS)?;
        let terms = r.top_features.into_iter().map(|t| t.term).collect();
        Ok(Hate::labelled(i, [hate, offensive, neither], terms, model))
    }

    /// Any category means hate speech: the label is the class the winning
    /// categories belong to (the larger frequency among the winners; ties:
    /// hate), the scores are each class's share of the categories'
    /// frequencies (so `neither` is 0), `categories` the detected
    /// categories' paths in the taxonomy (winners first), `terms` the
    /// winners' positions in the text. No category: `neither`, score 1.
    fn expertai_verdict(&self, data: &Value, text: &str, model: &str) -> Result<Hate, String> {
        let found = HateSpeech::parse(data)?;
        let Some(label) = found.winning::<3>(class_of) else {
            return Ok(Hate::from_scores([0.0, 0.0, 1.0], Vec::new(), model));
        };
        let scores: [f64; 3] = found.shares(class_of);
        debug_assert_eq!(scores[NEITHER], 0.0);
        Ok(Hate {
            label: LABELS[label],
            score: scores[label],
            scores,
            categories: found.labels(),
            terms: found.terms(text),
            model: model.to_owned(),
        })
    }

    fn class_scores_verdict(&self, scores: [f64; 3], model: &str) -> Hate {
        Hate::from_scores(scores, Vec::new(), model)
    }
}
