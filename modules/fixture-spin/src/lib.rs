//! Test fixture: loops forever when the record value contains `SPIN` (the
//! host must interrupt it), otherwise passes the JSON through.

use weir_guest::{Error, Outcome, Record};

/// Passes JSON objects through; never returns on `SPIN`.
#[weir_guest::module(world = "0.1")]
pub fn process(record: Record) -> Result<Outcome, Error> {
    if record.value.windows(4).any(|w| w == b"SPIN") {
        spin();
    }
    Ok(Outcome::emit_one(record.into_document()?))
}

/// Busy loop the optimiser cannot remove.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_json_through() {
        assert!(matches!(
            process(Record::from_value(r#"{"spin": false}"#)),
            Ok(Outcome::Emit(_))
        ));
    }
}
