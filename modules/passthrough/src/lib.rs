//! Emits each record's value unchanged as the document. The value must be a
//! JSON object; anything else fails with `invalid JSON at byte N: …` or
//! `expected a JSON object, found …`.

use weir_guest::{Error, Outcome, Record};

/// Forwards the value as is (validated, not re-serialised).
#[weir_guest::module]
pub fn process(record: Record) -> Result<Outcome, Error> {
    Ok(Outcome::emit_one(record.into_document()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_passes_through_byte_for_byte() {
        let value = br#"{ "b": 1,  "a": [true] }"#;
        let outcome = process(Record::from_value(&value[..])).unwrap();
        let Outcome::Emit(docs) = outcome else {
            panic!("expected emit, got {outcome:?}")
        };
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].body, value);
        assert_eq!(
            (docs[0].index.as_deref(), docs[0].id.as_deref()),
            (None, None)
        );
    }

    #[test]
    fn broken_json_names_the_byte() {
        let err = process(Record::from_value(r#"{"a": 1,}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at byte 8: key must be a string"
        );
    }

    #[test]
    fn non_object_is_rejected() {
        let err = process(Record::from_value("[1]")).unwrap_err();
        assert_eq!(err.to_string(), "expected a JSON object, found an array");
    }
}
