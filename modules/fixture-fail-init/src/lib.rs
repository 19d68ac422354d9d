//! Test fixture: `init` always fails with `fixture: init refuses`, so the
//! host must reject the module.

use weir_guest::{Config, Error, Outcome, Processor, Record};

/// Never successfully initialised.
pub struct FailInit;

#[weir_guest::module(world = "0.1")]
impl Processor for FailInit {
    fn init(_config: &Config) -> Result<Self, Error> {
        Err(Error::new("fixture: init refuses"))
    }

    fn process(&mut self, _record: Record) -> Outcome {
        Outcome::fail("fixture: process called although init failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_refuses() {
        let err = FailInit::init(&Config::default()).err().unwrap();
        assert_eq!(err.to_string(), "fixture: init refuses");
    }
}
