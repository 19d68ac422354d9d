//! Test fixture for hot reload: adds `"stamp": "<STAMP>"` to every JSON
//! object, where STAMP is the `WEIR_FIXTURE_STAMP` environment variable at
//! build time (`unset` when not set), and reports version
//! `<crate version>+<STAMP>`. `cargo xtask modules` builds it with `a` and
//! `b` into `fixture-stamp-a.wasm` and `fixture-stamp-b.wasm`.

use weir_guest::{Error, Outcome, Record};

/// The build-time stamp.
pub const STAMP: &str = match option_env!("WEIR_FIXTURE_STAMP") {
    Some(stamp) => stamp,
    None => "unset",
};

/// The version `describe()` reports.
pub fn version() -> String {
    format!("{}+{STAMP}", env!("CARGO_PKG_VERSION"))
}

/// Adds the stamp.
#[weir_guest::module(version = version(), world = "0.1")]
pub fn process(record: Record) -> Result<Outcome, Error> {
    let mut doc = record.json()?;
    doc.set("stamp", STAMP);
    Ok(Outcome::emit_one(doc.into_document()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_documents() {
        let Ok(Outcome::Emit(docs)) = process(Record::from_value(r#"{"a": 1}"#)) else {
            panic!("expected a document");
        };
        let body: weir_guest::serde_json::Value =
            weir_guest::serde_json::from_slice(&docs[0].body).unwrap();
        assert_eq!(
            body,
            weir_guest::serde_json::json!({"a": 1, "stamp": STAMP})
        );
        assert!(version().ends_with(&format!("+{STAMP}")));
    }
}
