//! `detect-hate`: adds `hate` to tweet records, from a classifier service
//! reached through the host's outbound HTTP.
//!
//! The text of a record is its `fields` (default `text`) that hold strings,
//! joined with `". "`. A whole batch goes to the classifier in as few
//! requests as the backend allows (chunks of `max_batch`).
//!
//! Config (all optional):
//! * `backend`: `weir` (default; `POST {url}/v1/hate`), `expertai` (NL API
//!   v2 `/v2/detect/hate-speech/{language}`, one request per text), `hf`
//!   (Hugging Face Inference text-classification; `url` is the model
//!   endpoint), `tei` (Text Embeddings Inference, `POST {url}/predict`);
//! * `url`: default `http://127.0.0.1:8090` (weir), `https://nlapi.expert.ai`
//!   (expertai); required for `hf` and `tei`;
//! * `fields` (default `text`), `field` (output, default `hate`);
//! * `max_batch` (default 256 for `weir`, 64 for the others), `retries` (default 2), `backoff_ms` (default 200),
//!   `timeout_ms` (first-byte timeout asked of the host; default: the host's);
//! * `on_error`: `dead-letter` (default) or `unclassified`;
//! * `label_map` (`hf`, `tei`): `MODEL_LABEL:hate|offensive|neither,...`,
//!   case-insensitive; the default knows `hate`, `offensive`, `neither` and
//!   common spellings (`non-hate`, `nothate`, `normal`, `toxic`, ...);
//! * `language` (expertai, default `en`), `model` (the name recorded in
//!   `hate.model`).
//!
//! Categories use expert.ai's hate-speech taxonomy: `hate` → "Discrimination
//! and Harassment", `offensive` → "Personal Insult". With `expertai`, any
//! category expert.ai reports is hate speech: the label is the kind of the
//! winning categories (Personal Insult → `offensive`, the rest → `hate`),
//! the scores each kind's share of the categories' `frequency`, and
//! `categories` their taxonomy paths (docs/schema.md). Credentials for
//! `expertai` or `hf` are added by the host (`[upstreams.NAME]`); the
//! module never sees them.

mod backend;
#[cfg(test)]
mod tests;

use classify_client::{Client, TextClassification};
use weir_guest::serde_json::{Value, json};
use weir_guest::{Config, Error, Outcome, Processor, Record};

pub use backend::{Hate, HateTask};

pub use classify_client::{OnError, text_of};

/// The configured classifier service.
pub type Backend = Client<HateTask>;

/// The module.
#[derive(Debug)]
pub struct DetectHate {
    classification: TextClassification,
    backend: Backend,
}

#[weir_guest::module]
impl Processor for DetectHate {
    fn init(config: &Config) -> Result<Self, Error> {
        let backend = Backend::from_config(config, HateTask)?;
        Ok(Self {
            classification: TextClassification::from_config(
                config,
                vec!["text"],
                "hate",
                backend.default_max_batch(),
            )?,
            backend,
        })
    }

    fn process(&mut self, record: Record) -> Outcome {
        self.process_batch(vec![record])
            .pop()
            .unwrap_or(Outcome::Drop)
    }

    fn process_batch(&mut self, batch: Vec<Record>) -> Vec<Outcome> {
        let backend = &self.backend;
        self.classification.process_batch(
            &batch,
            |texts| backend.classify(texts),
            || unclassified(backend.model()),
        )
    }
}

/// The `hate` of a record the classifier could not classify.
pub fn unclassified(model: &str) -> Value {
    json!({"label": "unclassified", "score": null, "scores": null, "categories": [], "terms": [], "model": model})
}
