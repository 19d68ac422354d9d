//! Test fixture: sleeps (`wasi:clocks`, no CPU) for `sleep_ms` in `init`
//! or in `process` (setting `during`), as a module holding its slot on
//! purpose would; otherwise passes records through.
//!
//! `during = "batch-init"` is the evasive form: the host's load check runs
//! `describe` then `init` in one trial instance, and a batch instance runs
//! only `init`, so this module sleeps in `init` only in instances that
//! were not asked to `describe` themselves: it loads quickly and then
//! holds every batch's slot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weir_guest::{Config, Document, Error, Outcome, Processor, Record};

/// Set by `describe`, i.e. in the host's load-time trial instance only
/// (each instance has its own copy).
static DESCRIBED: AtomicBool = AtomicBool::new(false);

/// The name `describe` reports, noting that it was asked.
fn described() -> &'static str {
    DESCRIBED.store(true, Ordering::Relaxed);
    env!("CARGO_PKG_NAME")
}

/// How long `process` sleeps per batch record (0 after an `init` sleep).
pub struct Sleeper {
    per_record: Duration,
}

#[weir_guest::module(name = described(), world = "0.1")]
impl Processor for Sleeper {
    fn init(config: &Config) -> Result<Self, Error> {
        let sleep = Duration::from_millis(config.parse_or("sleep_ms", 60_000)?);
        let during = config.get_or("during", "process");
        let in_init = match during {
            "init" => true,
            "batch-init" => !DESCRIBED.load(Ordering::Relaxed),
            "process" => false,
            other => return Err(Error::new(format!("unknown `during` {other:?}"))),
        };
        if in_init {
            std::thread::sleep(sleep);
        }
        Ok(Sleeper {
            per_record: if during == "process" {
                sleep
            } else {
                Duration::ZERO
            },
        })
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

    #[test]
    fn batch_init_does_not_sleep_once_described() {
        assert_eq!(described(), "fixture-sleep");
        let config = Config::from_pairs([("sleep_ms", "60000"), ("during", "batch-init")]);
        let mut m = Sleeper::init(&config).unwrap();
        assert_eq!(
            m.process(Record::from_value("{}")),
            Outcome::emit_one(Document::from_bytes("{}"))
        );
    }
}
