//! Test fixture: declares a 1 KiB name in `describe()`, which the host
//! stamps into every document's provenance; the host refuses it at load.

use weir_guest::{Outcome, Record};

/// The name it declares (1,024 bytes).
pub const LONG_NAME: &str = include_str!("long_name.txt");

/// Passes records through.
#[weir_guest::module(name = LONG_NAME, world = "0.1")]
pub fn process(record: Record) -> Outcome {
    Outcome::emit_one(weir_guest::Document::from_bytes(record.value))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_name_is_long() {
        assert_eq!(super::LONG_NAME.len(), 1024);
    }
}
