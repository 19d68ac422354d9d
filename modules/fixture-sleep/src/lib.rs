//! Test fixture: sleeps (`wasi:clocks`, no CPU) for `sleep_ms` in `init`
//! or in `process` (setting `during`), as a module holding its slot on
//! purpose would; otherwise passes records through.

use std::time::Duration;

use weir_guest::{Config, Document, Error, Outcome, Processor, Record};

/// How long `process` sleeps per batch record (0 after an `init` sleep).
pub struct Sleeper {
    per_record: Duration,
}

#[weir_guest::module]
impl Processor for Sleeper {
    fn init(config: &Config) -> Result<Self, Error> {
        let sleep = Duration::from_millis(config.parse_or("sleep_ms", 60_000)?);
        match config.get_or("during", "process") {
            "init" => {
                std::thread::sleep(sleep);
                Ok(Sleeper {
                    per_record: Duration::ZERO,
                })
            }
            "process" => Ok(Sleeper { per_record: sleep }),
            other => Err(Error::new(format!("unknown `during` {other:?}"))),
        }
    }

    fn process(&mut self, record: Record) -> Outcome {
        std::thread::sleep(self.per_record);
        Outcome::emit_one(Document::from_bytes(record.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_sleep_passes_records_through() {
        let config = Config::from_pairs([("sleep_ms", "1")]);
        let mut m = Sleeper::init(&config).unwrap();
        assert_eq!(
            m.process(Record::from_value("{}")),
            Outcome::emit_one(Document::from_bytes("{}"))
        );
    }
}
