//! `classify-sentiment`: adds `sentiment` to news records, from a
//! classifier service reached through the host's outbound HTTP.
//!
//! The text of a record is its `fields` (default `title,description`) that
//! hold strings, joined with `". "`. A whole batch goes to the classifier in
//! as few requests as the backend allows (chunks of `max_batch`).
//!
//! Config (all optional):
//! * `backend`: `weir` (default; `POST {url}/v1/sentiment`), `expertai`
//!   (NL API v2, one request per text), `hf` (Hugging Face Inference
//!   text-classification; `url` is the model endpoint), `tei` (Text
//!   Embeddings Inference, `POST {url}/predict`);
//! * `url`: default `http://127.0.0.1:8090` (weir), `https://nlapi.expert.ai`
//!   (expertai); required for `hf` and `tei`;
//! * `fields` (default `title,description`), `field` (output, default `sentiment`);
//! * `max_batch` (default 64), `retries` (default 2), `backoff_ms` (default 200),
//!   `timeout_ms` (first-byte timeout asked of the host; default: the host's);
//! * `on_error`: `dead-letter` (default) or `unclassified`;
//! * `label_map` (`hf`, `tei`): `MODEL_LABEL:positive|negative|neutral,...`,
//!   case-insensitive; default maps `positive`/`negative`/`neutral` and
//!   `pos`/`neg`/`neu` to themselves;
//! * `neutral_threshold` (default 0.05: `|score|` below it is neutral, for
//!   `expertai`, `hf`, `tei`), `language` (expertai, default `en`),
//!   `model` (the name recorded in `sentiment.model`).
//!
//! Credentials for `expertai` or `hf` are added by the host
//! (`[upstreams.NAME]`); the module never sees them.

mod backend;
#[cfg(test)]
mod tests;

use weir_guest::json::{ObjectWriter, RawObject};
use weir_guest::serde_json::{Value, json};
use weir_guest::{Config, Document, Error, Outcome, Processor, Record, log};

pub use backend::{Backend, Sentiment};

/// What to do when the classifier cannot classify a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Fail the record (dead-letter queue) with the reason.
    DeadLetter,
    /// Index it with `label: "unclassified"`.
    Unclassified,
}

impl OnError {
    pub fn parse(config: &Config) -> Result<Self, Error> {
        match config.get_or("on_error", "dead-letter") {
            "dead-letter" => Ok(Self::DeadLetter),
            "unclassified" => Ok(Self::Unclassified),
            other => Err(Error::new(format!(
                "config key \"on_error\": {other:?} is not one of dead-letter, unclassified"
            ))),
        }
    }
}

/// The module.
#[derive(Debug)]
pub struct ClassifySentiment {
    fields: Vec<String>,
    field: String,
    max_batch: usize,
    on_error: OnError,
    backend: Backend,
}

#[weir_guest::module]
impl Processor for ClassifySentiment {
    fn init(config: &Config) -> Result<Self, Error> {
        let fields: Vec<String> = config
            .list("fields")
            .unwrap_or_else(|| vec!["title", "description"])
            .into_iter()
            .map(str::to_owned)
            .collect();
        if fields.is_empty() {
            return Err(Error::new("config key \"fields\" names no field"));
        }
        let max_batch: usize = config.parse_or("max_batch", 64)?;
        if max_batch == 0 {
            return Err(Error::new("config key \"max_batch\" must be at least 1"));
        }
        Ok(Self {
            fields,
            field: config.get_or("field", "sentiment").to_owned(),
            max_batch,
            on_error: OnError::parse(config)?,
            backend: Backend::from_config(config)?,
        })
    }

    fn process(&mut self, record: Record) -> Outcome {
        self.process_batch(vec![record])
            .pop()
            .unwrap_or(Outcome::Drop)
    }

    fn process_batch(&mut self, batch: Vec<Record>) -> Vec<Outcome> {
        // Parse every record once; collect the texts of the good ones.
        let parsed: Vec<Result<(RawObject<'_>, String), Error>> = batch
            .iter()
            .map(|r| {
                let object = RawObject::parse(&r.value)?;
                let text = text_of(&object, &self.fields)?;
                Ok((object, text))
            })
            .collect();
        let texts: Vec<&str> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|(_, t)| t.as_str()))
            .collect();
        let mut results = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.max_batch) {
            results.extend(self.backend.classify(chunk));
        }
        let mut results = results.into_iter();
        parsed
            .into_iter()
            .map(|p| match p {
                Err(e) => e.into(),
                Ok((object, _)) => match results.next() {
                    Some(Ok(s)) => emit(&object, &self.field, &s.to_json()),
                    Some(Err(reason)) => match self.on_error {
                        OnError::DeadLetter => Outcome::fail(reason),
                        OnError::Unclassified => {
                            log::warn!("indexing a record unclassified: {reason}");
                            emit(&object, &self.field, &unclassified(self.backend.model()))
                        }
                    },
                    None => Outcome::fail("module bug: no classification for this record"),
                },
            })
            .collect()
    }
}

/// The fields that hold strings, joined with `". "`.
pub fn text_of(object: &RawObject<'_>, fields: &[String]) -> Result<String, Error> {
    let parts: Vec<_> = fields.iter().filter_map(|f| object.get_str(f)).collect();
    if parts.is_empty() {
        return Err(Error::new(format!(
            "no text to classify: none of the fields {} is a string",
            fields.join(", ")
        )));
    }
    Ok(parts.join(". "))
}

/// The `sentiment` of a record the classifier could not classify.
pub fn unclassified(model: &str) -> Value {
    json!({"score": null, "label": "unclassified", "positivity": null, "negativity": null, "model": model})
}

/// The object with `field` set (replacing any earlier value), key order kept.
fn emit(object: &RawObject<'_>, field: &str, value: &Value) -> Outcome {
    let mut out = ObjectWriter::with_capacity(256);
    for (key, raw) in object.entries().filter(|(k, _)| *k != field) {
        out.raw(key, raw);
    }
    out.value(field, value);
    Outcome::emit_one(Document::from_bytes(out.finish()))
}
