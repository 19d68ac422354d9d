//! `text-clean`: cleans free-text fields of JSON records for indexing.
//!
//! For each configured field holding a string, in this order:
//! 1. strip HTML markup (tags, comments, `<script>`/`<style>` contents);
//! 2. decode HTML character references (`&amp;`, `&#39;`, `&#x27;`, ...);
//! 3. drop URLs (`http://`, `https://`, `www.`) and `@mentions` (not
//!    e-mail addresses), collapse whitespace and trim;
//! 4. drop a leading `RT` retweet marker (standard in tweet cleaning: once
//!    `RT @user:` loses its mention, the marker is noise); `strip_rt=false`
//!    keeps it.
//!
//! Markup is stripped before references are decoded, so escaped text such
//! as `&lt;3` stays text (`<3`) instead of being mistaken for a tag.
//!
//! Config:
//! * `fields`: comma-separated top-level fields to clean (default `text`);
//! * `original_suffix`: the uncleaned text is kept in `<field><suffix>`
//!   (default `_original`; empty: not kept);
//! * `strip_rt`: `true` (default) or `false`.
//!
//! A record missing a field, or whose field is not a string, keeps that
//! field as is. A value that is not a JSON object fails the record.

mod entities;
mod markup;
mod scan;

use weir_guest::json::{ObjectWriter, RawObject, RawValue, raw_str};
use weir_guest::{Config, Document, Error, JsonDoc, Outcome, Processor, Record};

/// Cleans one piece of text (all four steps above).
pub fn clean_text(text: &str, strip_rt: bool) -> String {
    let stripped = markup::strip(text);
    let decoded = entities::decode(&stripped);
    let mut out = String::with_capacity(decoded.len());
    scan::clean_tokens(&decoded, scan::Options { strip_rt }, &mut out);
    out
}

/// The module: its settings, parsed once per instance.
#[derive(Debug)]
pub struct TextClean {
    fields: Vec<String>,
    original_suffix: String,
    strip_rt: bool,
}

#[weir_guest::module]
impl Processor for TextClean {
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
        weir_guest::log::debug!("cleaning fields {fields:?}");
        Ok(Self {
            fields,
            original_suffix: config.get_or("original_suffix", "_original").to_owned(),
            strip_rt: config.parse_or("strip_rt", true)?,
        })
    }

    fn process(&mut self, record: Record) -> Outcome {
        if record.value.is_held() {
            // 0.2: clean the fields of the host's document in place.
            let mut doc = match record.json() {
                Ok(doc) => doc,
                Err(e) => return e.into(),
            };
            return match self.clean_doc(&mut doc) {
                Ok(()) => Outcome::emit_one(doc.into_document()),
                Err(e) => e.into(),
            };
        }
        match self.clean_object(&record.value) {
            Ok(Some(body)) => Outcome::emit_one(Document::from_bytes(body)),
            Ok(None) => Outcome::emit_one(Document::from_bytes(record.value)),
            Err(err) => err.into(),
        }
    }
}

/// A field to rewrite.
struct Cleaned<'a> {
    field: &'a str,
    text: String,
    original: &'a RawValue,
    /// Entry index of the field's last occurrence (the one that counts).
    position: usize,
}

impl TextClean {
    /// Cleans the configured fields of a document the host holds (0.2):
    /// only those fields cross into the module. `<field><suffix>` replaces
    /// an existing one in place, or goes at the end.
    pub fn clean_doc(&self, doc: &mut JsonDoc) -> Result<(), Error> {
        for field in &self.fields {
            let Some(text) = doc.get_str(field).map(str::to_owned) else {
                continue;
            };
            let cleaned = clean_text(&text, self.strip_rt);
            if !self.original_suffix.is_empty() {
                doc.put(&format!("{field}{}", self.original_suffix), text)?;
            }
            doc.put(field, cleaned)?;
        }
        Ok(())
    }

    /// The JSON object `value` with the configured fields cleaned; `None`
    /// when no field is present (the value is then emitted as is).
    ///
    /// The object is parsed one level deep: untouched values are copied
    /// verbatim and keys keep their order, with `<field><suffix>` written
    /// right after each cleaned field (replacing any existing one).
    pub fn clean_object(&self, value: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let object = RawObject::parse(value)?;
        let mut cleaned: Vec<Cleaned<'_>> = Vec::new();
        for field in &self.fields {
            let last = object
                .entries()
                .enumerate()
                .filter(|(_, (k, _))| k == field)
                .last();
            let Some((position, (_, original))) = last else {
                continue;
            };
            if let Some(text) = raw_str(original) {
                cleaned.push(Cleaned {
                    field,
                    text: clean_text(&text, self.strip_rt),
                    original,
                    position,
                });
            }
        }
        if cleaned.is_empty() {
            return Ok(None);
        }

        let keep_original = !self.original_suffix.is_empty();
        let original_keys: Vec<String> = if keep_original {
            cleaned
                .iter()
                .map(|c| format!("{}{}", c.field, self.original_suffix))
                .collect()
        } else {
            Vec::new()
        };
        let mut out = ObjectWriter::with_capacity(value.len() * 2);
        for (index, (key, raw)) in object.entries().enumerate() {
            if original_keys.iter().any(|k| k == key) {
                continue;
            }
            match cleaned.iter().zip(0..).find(|(c, _)| c.field == key) {
                Some((c, i)) if c.position == index => {
                    out.value(key, c.text.as_str());
                    if keep_original {
                        out.raw(&original_keys[i], c.original);
                    }
                }
                Some(_) => {} // an earlier duplicate of a cleaned field
                None => out.raw(key, raw),
            }
        }
        Ok(Some(out.finish()))
    }
}

#[cfg(test)]
mod tests;
