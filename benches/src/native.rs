//! The `native` scenario's transform: the same logic as the Wasm chain, as
//! plain Rust in the host process.
//!
//! - clean: text-clean's own code ([`crate::text_clean::TextClean`],
//!   compiled natively), configured like the default tweets pipeline (`fields = "text"`);
//! - enrich: hashtags, mentions, URL domains, word count and source
//!   coordinates (the `enrich` fields of docs/schema.md, minus language
//!   detection and timestamps), with a full serde_json parse and
//!   re-serialisation, as a module built on the guest SDK's `JsonDoc` would.
//!
//! [`Transform::CleanValidate`] mirrors the `wasm-3` chain used while no
//! `enrich` module exists (text-clean -> passthrough -> passthrough): clean,
//! then validate the JSON twice.

use crate::text_clean::TextClean;
use serde_json::{Map, Value};
use weir_guest::{Config, Processor};

/// Which logic the native transform runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Transform {
    /// text-clean + enrich.
    CleanEnrich,
    /// text-clean + two JSON validations (what passthrough does).
    CleanValidate,
}

/// A configured native transform. `Send + Sync`: one per process.
#[derive(Debug)]
pub struct Native {
    clean: TextClean,
    transform: Transform,
}

impl Native {
    pub fn new(transform: Transform) -> Self {
        let clean = TextClean::init(&Config::from_pairs([("fields", "text")]))
            .unwrap_or_else(|e| panic!("text-clean init: {e}"));
        Self { clean, transform }
    }

    /// Transforms one record value into the document to index.
    pub fn apply(
        &self,
        value: &[u8],
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Vec<u8>, String> {
        let cleaned = match self.clean.clean_object(value).map_err(|e| e.to_string())? {
            Some(body) => body,
            None => value.to_vec(),
        };
        match self.transform {
            Transform::CleanEnrich => enrich(&cleaned, topic, partition, offset),
            Transform::CleanValidate => {
                for _ in 0..2 {
                    weir::pipeline::validate_document(&cleaned)?;
                }
                Ok(cleaned)
            }
        }
    }
}

/// Adds `hashtags`, `mentions`, `url_domains`, `word_count` and
/// `weir.source` to a JSON object. Entities come from the original text
/// (`text_original`, kept by text-clean) when there is one.
pub fn enrich(body: &[u8], topic: &str, partition: i32, offset: i64) -> Result<Vec<u8>, String> {
    let mut doc: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let source_text = doc
        .get("text_original")
        .or_else(|| doc.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (mut hashtags, mut mentions, mut domains) = (Vec::new(), Vec::new(), Vec::new());
    for token in source_text.split_whitespace() {
        let trimmed = token.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '_');
        if let Some(tag) = trimmed.strip_prefix('#').filter(|t| !t.is_empty()) {
            push_unique(&mut hashtags, tag.to_lowercase());
        } else if let Some(user) = trimmed.strip_prefix('@').filter(|t| !t.is_empty()) {
            push_unique(&mut mentions, user.to_lowercase());
        } else if let Some(rest) = token
            .strip_prefix("https://")
            .or_else(|| token.strip_prefix("http://"))
        {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.strip_prefix("www.").unwrap_or(host);
            if !host.is_empty() {
                push_unique(&mut domains, host.to_lowercase());
            }
        }
    }
    let words = doc
        .get("text")
        .and_then(Value::as_str)
        .map_or(0, |t| t.split_whitespace().count());
    doc.insert("hashtags".into(), Value::from(hashtags));
    doc.insert("mentions".into(), Value::from(mentions));
    doc.insert("url_domains".into(), Value::from(domains));
    doc.insert("word_count".into(), Value::from(words));
    doc.insert(
        "weir".into(),
        serde_json::json!({
            "source": {"topic": topic, "partition": partition, "offset": offset},
            "modules": ["text-clean@native", "enrich@native"],
        }),
    );
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}
