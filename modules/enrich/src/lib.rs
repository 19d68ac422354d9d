//! `enrich`: adds what can be computed from a record alone.
//!
//! * `hashtags`, `mentions`, `url_domains`: from the raw text, i.e.
//!   `<field>_original` when present (text-clean removes URLs and mentions
//!   from the field itself), else the field; lower-cased, de-duplicated,
//!   in order of appearance;
//! * `language`: ISO 639-1 code detected by `whatlang` (compiled in) on the
//!   cleaned fields; when detection is less confident than `min_confidence`,
//!   the record's own `language_fallback` field (default `lang`), else `und`;
//! * `word_count`: words of the cleaned fields;
//! * `weir`: `{ingested_at, source: {topic, partition, offset}}`.
//!
//! Config: `fields` (default `text`; news: `title,description`),
//! `original_suffix` (default `_original`), `min_confidence` (default 0.5),
//! `languages` (restrict detection, e.g. `en,de,fr`; default all),
//! `language_fallback` (default `lang`; empty for none).

mod lang;
#[cfg(test)]
mod tests;
mod text;

use weir_guest::json::{ObjectWriter, RawObject};
use weir_guest::serde_json::json;
use weir_guest::{Config, Document, Error, Outcome, Processor, Record};

pub use text::{Extracted, extract, rfc3339_millis, word_count};

/// Fields this module writes (earlier values are replaced).
const OUTPUT: [&str; 6] = [
    "hashtags",
    "mentions",
    "url_domains",
    "language",
    "word_count",
    "weir",
];

/// The module.
pub struct Enrich {
    fields: Vec<String>,
    original_suffix: String,
    fallback: String,
    detector: lang::Detector,
}

#[weir_guest::module]
impl Processor for Enrich {
    fn init(config: &Config) -> Result<Self, Error> {
        let fields: Vec<String> = config
            .list("fields")
            .unwrap_or_else(|| vec!["text"])
            .into_iter()
            .map(str::to_owned)
            .collect();
        if fields.is_empty() {
            return Err(Error::new("config key \"fields\" names no field"));
        }
        let min_confidence: f64 = config.parse_or("min_confidence", 0.5)?;
        if !(0.0..=1.0).contains(&min_confidence) {
            return Err(Error::new(
                "config key \"min_confidence\" must be between 0 and 1",
            ));
        }
        Ok(Self {
            fields,
            original_suffix: config.get_or("original_suffix", "_original").to_owned(),
            fallback: config.get_or("language_fallback", "lang").to_owned(),
            detector: lang::Detector::new(config.list("languages"), min_confidence)?,
        })
    }

    fn process(&mut self, record: Record) -> Outcome {
        match self.enrich(&record, std::time::SystemTime::now()) {
            Ok(body) => Outcome::emit_one(Document::from_bytes(body)),
            Err(e) => e.into(),
        }
    }
}

impl Enrich {
    /// The record's object with the enrichment fields, `now` as ingest time.
    pub fn enrich(&self, record: &Record, now: std::time::SystemTime) -> Result<Vec<u8>, Error> {
        let object = RawObject::parse(&record.value)?;
        let mut raw = Vec::new();
        let mut clean = Vec::new();
        for field in &self.fields {
            let original = object.get_str(&format!("{field}{}", self.original_suffix));
            if let Some(text) = object.get_str(field) {
                raw.push(original.clone().unwrap_or_else(|| text.clone()));
                clean.push(text);
            } else if let Some(original) = original {
                raw.push(original);
            }
        }
        let found = extract(raw.iter().map(|t| t.as_ref()));
        let clean = clean.join("\n");
        let fallback = (!self.fallback.is_empty())
            .then(|| object.get_str(&self.fallback))
            .flatten();
        let language = self.detector.detect(&clean).map_or_else(
            || fallback.map_or_else(|| "und".to_owned(), |l| l.to_lowercase()),
            str::to_owned,
        );

        let mut out = ObjectWriter::with_capacity(record.value.len() + 256);
        for (key, value) in object.entries().filter(|(k, _)| !OUTPUT.contains(k)) {
            out.raw(key, value);
        }
        out.value("hashtags", &found.hashtags);
        out.value("mentions", &found.mentions);
        out.value("url_domains", &found.url_domains);
        out.value("language", &language);
        out.value("word_count", &word_count(&clean));
        out.value(
            "weir",
            &json!({
                "ingested_at": rfc3339_millis(now),
                "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            }),
        );
        Ok(out.finish())
    }
}
