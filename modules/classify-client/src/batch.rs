//! Batching for modules that add a classifier's verdict to each record
//! (`classify-sentiment`, `detect-hate`): parse every record once, send the
//! texts of the good ones in chunks, write the verdict into one field.

use serde::Serialize;
use weir_guest::json::{ObjectWriter, RawObject};
use weir_guest::{Config, Document, Error, Outcome, Record};

/// What to do when the classifier cannot classify a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Fail the record (dead-letter queue) with the reason.
    DeadLetter,
    /// Index it with the module's "unclassified" value.
    Unclassified,
}

impl OnError {
    /// `on_error`: `dead-letter` (default) or `unclassified`.
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

/// Where the text comes from and where the verdict goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextClassification {
    /// Fields whose strings are joined into the text.
    pub fields: Vec<String>,
    /// Output field.
    pub field: String,
    /// Texts per classifier call.
    pub max_batch: usize,
    pub on_error: OnError,
}

impl TextClassification {
    /// Reads `fields`, `field`, `max_batch` (default: `default_max_batch`,
    /// see [`Client::default_max_batch`](crate::Client::default_max_batch))
    /// and `on_error`.
    pub fn from_config(
        config: &Config,
        default_fields: Vec<&str>,
        default_field: &str,
        default_max_batch: usize,
    ) -> Result<Self, Error> {
        let fields: Vec<String> = config
            .list("fields")
            .unwrap_or(default_fields)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if fields.is_empty() {
            return Err(Error::new("config key \"fields\" names no field"));
        }
        let max_batch: usize = config.parse_or("max_batch", default_max_batch)?;
        if max_batch == 0 {
            return Err(Error::new("config key \"max_batch\" must be at least 1"));
        }
        Ok(Self {
            fields,
            field: config.get_or("field", default_field).to_owned(),
            max_batch,
            on_error: OnError::parse(config)?,
        })
    }

    /// One outcome per record: `classify` gets chunks of at most
    /// `max_batch` texts and returns one verdict (or reason) per text;
    /// `unclassified` is written instead of a failure when `on_error` says so.
    /// Verdicts are serialised straight into the output document.
    pub fn process_batch<V: Serialize, U: Serialize>(
        &self,
        batch: &[Record],
        mut classify: impl FnMut(&[&str]) -> Vec<Result<V, String>>,
        unclassified: impl Fn() -> U,
    ) -> Vec<Outcome> {
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
            results.extend(classify(chunk));
        }
        let mut results = results.into_iter();
        parsed
            .into_iter()
            .map(|p| match p {
                Err(e) => e.into(),
                Ok((object, _)) => match results.next() {
                    Some(Ok(v)) => emit(&object, &self.field, &v),
                    Some(Err(reason)) => match self.on_error {
                        OnError::DeadLetter => Outcome::fail(reason),
                        OnError::Unclassified => {
                            weir_guest::log::warn!("indexing a record unclassified: {reason}");
                            emit(&object, &self.field, &unclassified())
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

/// The object with `field` set (replacing any earlier value), key order kept.
fn emit<V: Serialize + ?Sized>(object: &RawObject<'_>, field: &str, value: &V) -> Outcome {
    let mut out = ObjectWriter::with_capacity(256);
    for (key, raw) in object.entries().filter(|(k, _)| *k != field) {
        out.raw(key, raw);
    }
    out.value(field, value);
    Outcome::emit_one(Document::from_bytes(out.finish()))
}
