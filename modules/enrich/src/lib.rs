//! `enrich`: adds what can be computed from a record alone.
//!
//! * `hashtags`, `mentions`, `url_domains`: from the raw text, i.e.
//!   `<field>_original` when present (text-clean removes URLs and mentions
//!   from the field itself), else the field; lower-cased, de-duplicated,
//!   in order of appearance;
//! * `language`: the language the record already carries in its
//!   `language_field` (default `lang`, as the tweets producers write it),
//!   lower-cased primary subtag (`en-GB` → `en`); when the record has none
//!   (absent, empty, `und`, or one of X's private `q..` / `zxx` codes),
//!   the ISO 639-1 code `whatlang` (compiled in) detects on the first
//!   `detect_max_chars` characters of the cleaned fields, among
//!   `languages`; when detection is less confident than `min_confidence`,
//!   `und`. Detection is the expensive part (~65 µs per record over 7
//!   languages, ~230 µs over all 69, in Wasm), so it runs only when needed;
//! * `word_count`: words of the cleaned fields;
//! * `weir`: `{ingested_at, source: {topic, partition, offset}}`.
//!
//! Config: `fields` (default `text`; news: `title,description`),
//! `original_suffix` (default `_original`), `min_confidence` (default 0.5),
//! `languages` (candidates for detection, ISO 639-1 or 639-3 codes; default
//! [`DEFAULT_LANGUAGES`], `all` for every language whatlang knows),
//! `detect_max_chars` (default 200), `language_field` (default `lang`; empty
//! for none; `language_fallback` is its former name), `language_detection`
//! (`missing`: only when the record carries no language, the default;
//! `always`: detect first and use the record's field only when detection is
//! unsure; `never`).

mod lang;
#[cfg(test)]
mod tests;
mod text;

use std::borrow::Cow;
use weir_guest::json::{ObjectWriter, RawObject};
use weir_guest::serde_json::json;

use weir_guest::{Config, Document, Error, JsonDoc, Outcome, Processor, Record};

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

/// Detection candidates when `languages` is not set: the languages of the
/// seed data and the demo's feeds.
pub const DEFAULT_LANGUAGES: &str = "en,de,fr,es,it,pt,nl";

/// When to run language detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detection {
    /// Only when the record carries no language.
    Missing,
    /// Always; the record's language only when detection is unsure.
    Always,
    /// Never: the record's language or `und`.
    Never,
}

/// The module.
pub struct Enrich {
    fields: Vec<String>,
    original_suffix: String,
    language_field: String,
    detection: Detection,
    detect_max_chars: usize,
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
        let detection = match config.get_or("language_detection", "missing").trim() {
            "missing" => Detection::Missing,
            "always" => Detection::Always,
            "never" => Detection::Never,
            other => {
                return Err(Error::new(format!(
                    "config key \"language_detection\": expected missing, always or never, found {other:?}"
                )));
            }
        };
        let languages = config
            .list("languages")
            .unwrap_or_else(|| DEFAULT_LANGUAGES.split(',').collect());
        let languages = match languages.as_slice() {
            ["all"] => None,
            _ => Some(languages),
        };
        Ok(Self {
            fields,
            original_suffix: config.get_or("original_suffix", "_original").to_owned(),
            language_field: config
                .get("language_field")
                .or_else(|| config.get("language_fallback"))
                .unwrap_or("lang")
                .trim()
                .to_owned(),
            detection,
            detect_max_chars: config.parse_or("detect_max_chars", 200)?,
            detector: lang::Detector::new(languages, min_confidence)?,
        })
    }

    fn process(&mut self, record: Record) -> Outcome {
        let now = std::time::SystemTime::now();
        if record.value.is_held() {
            // 0.2: edit the host's document in place.
            let mut doc = match record.json() {
                Ok(doc) => doc,
                Err(e) => return e.into(),
            };
            return match self.enrich_doc(&record, &mut doc, now) {
                Ok(()) => Outcome::emit_one(doc.into_document()),
                Err(e) => e.into(),
            };
        }
        match self.enrich(&record, now) {
            Ok(body) => Outcome::emit_one(Document::from_bytes(body)),
            Err(e) => e.into(),
        }
    }
}

/// The first `max_chars` characters of `text`.
fn prefix(text: &str, max_chars: usize) -> &str {
    text.char_indices()
        .nth(max_chars)
        .map_or(text, |(end, _)| &text[..end])
}

/// What enrichment adds to one record.
struct Enrichment {
    found: Extracted,
    language: String,
    word_count: usize,
    weir: weir_guest::serde_json::Value,
}

impl Enrich {
    /// The record's object with the enrichment fields, `now` as ingest time.
    pub fn enrich(&self, record: &Record, now: std::time::SystemTime) -> Result<Vec<u8>, Error> {
        let object = RawObject::parse(&record.value)?;
        let e = self.enrichment(record, now, |key| object.get_str(key));
        let mut out = ObjectWriter::with_capacity(record.value.len() + 256);
        for (key, value) in object.entries().filter(|(k, _)| !OUTPUT.contains(k)) {
            out.raw(key, value);
        }
        out.value("hashtags", &e.found.hashtags);
        out.value("mentions", &e.found.mentions);
        out.value("url_domains", &e.found.url_domains);
        out.value("language", &e.language);
        out.value("word_count", &e.word_count);
        out.value("weir", &e.weir);
        Ok(out.finish())
    }

    /// The same on a document the host holds (0.2): reads the text fields
    /// and sets the enrichment fields in place; nothing else is parsed or
    /// written.
    pub fn enrich_doc(
        &self,
        record: &Record,
        doc: &mut JsonDoc,
        now: std::time::SystemTime,
    ) -> Result<(), Error> {
        let e = self.enrichment(record, now, |key| doc.get_str(key).map(Cow::Borrowed));
        doc.put("hashtags", e.found.hashtags)?;
        doc.put("mentions", e.found.mentions)?;
        doc.put("url_domains", e.found.url_domains)?;
        doc.put("language", e.language)?;
        doc.put("word_count", e.word_count)?;
        doc.put("weir", e.weir)?;
        Ok(())
    }

    /// The enrichment of a record whose top-level strings `get` reads.
    fn enrichment<'a>(
        &self,
        record: &Record,
        now: std::time::SystemTime,
        get: impl Fn(&str) -> Option<Cow<'a, str>>,
    ) -> Enrichment {
        let mut raw = Vec::new();
        let mut clean = Vec::new();
        for field in &self.fields {
            let original = get(&format!("{field}{}", self.original_suffix));
            if let Some(text) = get(field) {
                raw.push(original.clone().unwrap_or_else(|| text.clone()));
                clean.push(text);
            } else if let Some(original) = original {
                raw.push(original);
            }
        }
        let found = extract(raw.iter().map(|t| t.as_ref()));
        let clean = clean.join("\n");
        let own = (!self.language_field.is_empty())
            .then(|| get(&self.language_field))
            .flatten()
            .and_then(|l| lang::normalize(&l));
        let detect = || {
            self.detector
                .detect(prefix(&clean, self.detect_max_chars))
                .map(str::to_owned)
        };
        let language = match (self.detection, own) {
            (Detection::Missing | Detection::Never, Some(own)) => Some(own),
            (Detection::Missing, None) => detect(),
            (Detection::Always, own) => detect().or(own),
            (Detection::Never, None) => None,
        }
        .unwrap_or_else(|| "und".to_owned());
        Enrichment {
            found,
            language,
            word_count: word_count(&clean),
            weir: json!({
                "ingested_at": rfc3339_millis(now),
                "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            }),
        }
    }
}
