//! # Weir guest SDK
//!
//! Write a Weir pipeline module as a plain Rust function (or a small
//! stateful type), annotate it with [`#[weir_guest::module]`](module), and
//! build it for `wasm32-wasip2`: the result is a WebAssembly component the
//! Weir host loads.
//!
//! ```
//! use weir_guest::{Config, Error, Outcome, Record};
//!
//! /// Adds `"source": <topic>` to every JSON record.
//! #[weir_guest::module]
//! fn process(record: Record, config: &Config) -> Result<Outcome, Error> {
//!     let field = config.get_or("field", "source");
//!     let mut doc = record.json()?;
//!     doc.set(field, record.topic.as_str());
//!     Ok(Outcome::emit_one(doc.into_document()))
//! }
//!
//! let out = process(Record::from_value(r#"{"a":1}"#), &Config::default()).unwrap();
//! assert_eq!(out, Outcome::emit_one(weir_guest::Document::from_bytes(r#"{"a":1,"source":"test"}"#)));
//! ```
//!
//! See `docs/module-guide.md` in the Weir repository for the full guide.

// Lets the generated bindings name this crate `::weir_guest` from inside it
// as well as from module crates.
extern crate self as weir_guest;

#[doc(hidden)]
#[path = "runtime.rs"]
pub mod __private;
mod body;
mod config;
mod error;
pub mod http;
pub mod json;
pub mod log;
mod outcome;
mod processor;
mod record;

pub use body::Body;
pub use config::Config;
pub use error::{Error, Result};
pub use json::JsonDoc;
pub use outcome::{Document, Outcome};
pub use processor::Processor;
pub use record::{Header, Record};
/// The JSON library the SDK uses (so modules need not depend on it).
pub use serde_json;

pub use weir_guest_macros::module;

/// Everything a typical module needs: `use weir_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Body, Config, Document, Error, JsonDoc, Outcome, Processor, Record, log, module,
    };
    pub use serde_json::{Value, json};
}
