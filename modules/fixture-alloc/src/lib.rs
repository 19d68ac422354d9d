//! Test fixture: allocates (and touches) memory without bound when the
//! record value contains `BOMB` (the host's memory limit must stop it),
//! otherwise passes the JSON through.

use weir_guest::{Error, Outcome, Record};

/// Passes JSON objects through; exhausts memory on `BOMB`.
#[weir_guest::module(world = "0.1")]
pub fn process(record: Record) -> Result<Outcome, Error> {
    if record.value.windows(4).any(|w| w == b"BOMB") {
        exhaust_memory();
    }
    Ok(Outcome::emit_one(record.into_document()?))
}

/// Keeps allocating 1 MiB blocks, writing to each so none is optimised
/// away, until the allocator fails (which aborts the instance).
fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        if let Some(last) = block.last_mut() {
            *last = hoard.len() as u8;
        }
        hoard.push(std::hint::black_box(block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_json_through() {
        assert!(matches!(
            process(Record::from_value(r#"{"bomb": false}"#)),
            Ok(Outcome::Emit(_))
        ));
    }
}
