//! `redact`: replaces email addresses, phone numbers and configured
//! keywords in text fields with `[EMAIL]`, `[PHONE]` and `[REDACTED]`, and
//! adds `redacted: {"emails": n, "phones": n, "keywords": n}`.
//!
//! The Rust twin of `modules/redact-py` (same patterns, config and output),
//! so either can replace the other in a running pipeline.
//!
//! Config:
//! * `fields`: comma-separated top-level fields (default `text`);
//! * `keywords`: comma-separated words, redacted case-insensitively as
//!   whole words;
//! * `emails`, `phones`: `true` (default) or `false` (also `1`/`0`,
//!   `yes`/`no`, `on`/`off`).
//!
//! A value that is not a JSON object fails the record.

use regex::{Regex, RegexBuilder};
use weir_guest::serde_json::{Value, json};
use weir_guest::{Config, Error, Outcome, Processor, Record};

const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}";
const PHONE: &str = r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}";

/// The module: its patterns, compiled once per instance.
pub struct Redact {
    fields: Vec<String>,
    emails: Option<Regex>,
    phones: Option<Regex>,
    keywords: Option<Regex>,
}

fn switch(config: &Config, key: &str) -> Result<bool, Error> {
    let Some(raw) = config.get(key) else {
        return Ok(true);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::new(format!(
            "config key {key:?}: cannot parse {raw:?} as true/false"
        ))),
    }
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

#[weir_guest::module]
impl Processor for Redact {
    fn init(config: &Config) -> Result<Self, Error> {
        let fields = config
            .list("fields")
            .unwrap_or_else(|| vec!["text"])
            .into_iter()
            .map(str::to_owned)
            .collect();
        let words = config.list("keywords").unwrap_or_default();
        let keywords = if words.is_empty() {
            None
        } else {
            let alternatives: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
            let pattern = format!(r"\b(?:{})\b", alternatives.join("|"));
            Some(
                RegexBuilder::new(&pattern)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| Error::new(format!("config key \"keywords\": {e}")))?,
            )
        };
        Ok(Self {
            fields,
            emails: switch(config, "emails")?.then(|| compile(EMAIL)),
            phones: switch(config, "phones")?.then(|| compile(PHONE)),
            keywords,
        })
    }

    fn process(&mut self, record: Record) -> Outcome {
        let mut doc = match record.json() {
            Ok(doc) => doc,
            Err(e) => return e.into(),
        };
        let mut counts = [0u64; 3];
        for field in &self.fields {
            let Some(mut text) = doc.get_str(field).map(str::to_owned) else {
                continue;
            };
            let passes = [
                (&self.emails, "[EMAIL]"),
                (&self.phones, "[PHONE]"),
                (&self.keywords, "[REDACTED]"),
            ];
            for (count, (pattern, mask)) in counts.iter_mut().zip(passes) {
                if let Some(pattern) = pattern {
                    *count += pattern.find_iter(&text).count() as u64;
                    text = pattern.replace_all(&text, mask).into_owned();
                }
            }
            doc.set(field.clone(), Value::String(text));
        }
        doc.set(
            "redacted",
            json!({"emails": counts[0], "phones": counts[1], "keywords": counts[2]}),
        );
        Outcome::emit_one(doc.into_document())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(value: Value, config: &[(&str, &str)]) -> Value {
        let mut redact = Redact::init(&Config::from_pairs(config.iter().copied())).unwrap();
        let Outcome::Emit(docs) = redact.process(Record::from_value(value.to_string())) else {
            panic!("not emitted")
        };
        weir_guest::serde_json::from_slice(&docs[0].body).unwrap()
    }

    // The same cases as modules/redact-py/tests/test_app.py.
    #[test]
    fn emails_and_phones_are_replaced_and_counted() {
        let out = run(
            json!({"text": "mail ann.lee@example.co.uk or call +44 20 7946 0958", "id": 7}),
            &[],
        );
        assert_eq!(
            out,
            json!({"text": "mail [EMAIL] or call [PHONE]", "id": 7,
                   "redacted": {"emails": 1, "phones": 1, "keywords": 0}})
        );
    }

    #[test]
    fn keywords_are_whole_words_case_insensitive() {
        let out = run(
            json!({"text": "Project Falcon, falconry and FALCON."}),
            &[("keywords", "falcon, secret")],
        );
        assert_eq!(out["text"], "Project [REDACTED], falconry and [REDACTED].");
        assert_eq!(out["redacted"]["keywords"], 2);
    }

    #[test]
    fn only_configured_fields_and_switches() {
        let out = run(
            json!({"title": "a@b.io", "text": "a@b.io 555-123-4567"}),
            &[("fields", "text"), ("phones", "false")],
        );
        assert_eq!(
            out,
            json!({"title": "a@b.io", "text": "[EMAIL] 555-123-4567",
                   "redacted": {"emails": 1, "phones": 0, "keywords": 0}})
        );
    }

    #[test]
    fn invalid_json_and_bad_settings_fail_with_the_reason() {
        let mut redact = Redact::init(&Config::default()).unwrap();
        assert_eq!(
            redact.process(Record::from_value("[1]")),
            Outcome::fail("expected a JSON object, found an array")
        );
        let err = Redact::init(&Config::from_pairs([("emails", "maybe")]))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            r#"config key "emails": cannot parse "maybe" as true/false"#
        );
    }
}
