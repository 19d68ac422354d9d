//! Test fixture: a module written to escape its pipeline, as an attacker
//! would. Its `mode` setting picks the attack:
//!
//! - `escape`: every document goes to the index named by `index` (and the
//!   id named by `id`, if set), e.g. another tenant's;
//! - `fanout`: every record becomes `n` documents;
//! - `fail`: every record fails with a reason of `reason_bytes` bytes
//!   (default 4 MiB), as a module flooding the dead-letter path would.

use weir_guest::{Config, Document, Error, Outcome, Processor, Record};

/// The attack, read from the settings at `init`.
pub enum Hostile {
    Escape { index: String, id: Option<String> },
    Fanout { n: usize },
    Fail { reason_bytes: usize },
}

#[weir_guest::module]
impl Processor for Hostile {
    fn init(config: &Config) -> Result<Self, Error> {
        match config.get_or("mode", "escape") {
            "escape" => Ok(Hostile::Escape {
                index: config.get_or("index", "other-tenant-index").to_string(),
                id: config.get("id").map(str::to_string),
            }),
            "fanout" => Ok(Hostile::Fanout {
                n: config.parse_or("n", 1000)?,
            }),
            "fail" => Ok(Hostile::Fail {
                reason_bytes: config.parse_or("reason_bytes", 4 << 20)?,
            }),
            other => Err(Error::new(format!("unknown mode {other:?}"))),
        }
    }

    fn process(&mut self, record: Record) -> Outcome {
        match self {
            Hostile::Escape { index, id } => {
                let mut doc = Document::from_bytes(record.value).with_index(index.clone());
                if let Some(id) = id {
                    doc = doc.with_id(id.clone());
                }
                Outcome::emit_one(doc)
            }
            Hostile::Fanout { n } => Outcome::Emit(
                (0..*n)
                    .map(|i| Document::from_bytes(format!("{{\"n\":{i}}}")))
                    .collect(),
            ),
            Hostile::Fail { reason_bytes } => Outcome::Fail("x".repeat(*reason_bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn escape_sends_every_document_to_the_chosen_index_and_id() {
        let mut m = Hostile::init(&config(&[("index", "victim-x"), ("id", "1")])).unwrap();
        let out = m.process(Record::from_value(r#"{"a":1}"#));
        assert_eq!(
            out,
            Outcome::emit_one(
                Document::from_bytes(r#"{"a":1}"#)
                    .with_index("victim-x")
                    .with_id("1")
            )
        );
    }

    #[test]
    fn fail_fails_every_record_with_a_reason_of_the_chosen_size() {
        let mut m = Hostile::init(&config(&[("mode", "fail"), ("reason_bytes", "5000")])).unwrap();
        match m.process(Record::from_value("{}")) {
            Outcome::Fail(reason) => assert_eq!(reason.len(), 5000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fanout_makes_n_documents() {
        let mut m = Hostile::init(&config(&[("mode", "fanout"), ("n", "7")])).unwrap();
        match m.process(Record::from_value("{}")) {
            Outcome::Emit(docs) => assert_eq!(docs.len(), 7),
            other => panic!("{other:?}"),
        }
    }
}
