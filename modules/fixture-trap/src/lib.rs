//! Test fixture: panics with `fixture trap: poison record` when the record
//! value contains `TRAP` (the instance traps; the host dead-letters the
//! record with the panic message), otherwise passes the JSON through.

use weir_guest::{Error, Outcome, Record};

/// Passes JSON objects through; panics on `TRAP`.
#[weir_guest::module(world = "0.1")]
pub fn process(record: Record) -> Result<Outcome, Error> {
    if record.value.windows(4).any(|w| w == b"TRAP") {
        panic!("fixture trap: poison record");
    }
    Ok(Outcome::emit_one(record.into_document()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_json_through() {
        let outcome = process(Record::from_value(r#"{"ok": 1}"#)).unwrap();
        assert_eq!(
            outcome,
            Outcome::emit_one(weir_guest::Document::from_bytes(r#"{"ok": 1}"#))
        );
    }

    #[test]
    #[should_panic(expected = "fixture trap: poison record")]
    fn panics_on_trap() {
        let _ = process(Record::from_value(r#"{"x": "TRAP"}"#));
    }
}
