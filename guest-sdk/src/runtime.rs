//! Glue between the generated bindings and the SDK types. Everything here
//! is used by the code `#[weir_guest::module]` expands to, and is not part
//! of the public API.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Once;

use std::rc::Rc;

use crate::{Body, Config, Error, Header, Outcome, Processor, Record};

/// Bindings for `wit/pipeline.wit`, world `module` (0.1). Headers are the
/// SDK's own type (same layout); records, documents and outcomes are
/// converted (moves, no copies).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "module",
        with: {
            "weir:pipeline/types@0.1.0/header": crate::Header,
            "wasi:logging/logging@0.1.0-draft": generate,
        },
        pub_export_macro: true,
        export_macro_name: "__weir_export",
        default_bindings_module: "::weir_guest::__private::bindings",
        runtime_path: "::weir_guest::__private::wit_bindgen::rt",
    });
}

/// Bindings for `wit/v0.2/pipeline.wit`: the document world.
#[allow(missing_docs, clippy::all)]
pub mod bindings_v02 {
    wit_bindgen::generate!({
        path: "../wit/v0.2",
        world: "doc-module",
        with: {
            "wasi:logging/logging@0.1.0-draft": crate::__private::bindings::wasi::logging::logging,
        },
        pub_export_macro: true,
        export_macro_name: "__weir_export_v02",
        default_bindings_module: "::weir_guest::__private::bindings_v02",
        runtime_path: "::weir_guest::__private::wit_bindgen::rt",
    });
}

pub use bindings::__weir_export as export;
pub use bindings::exports::weir::pipeline::processor::{Guest, ModuleInfo};
pub use bindings_v02::__weir_export_v02 as export_v02;
pub use bindings_v02::exports::weir::pipeline::processor::{
    Guest as GuestV02, ModuleInfo as ModuleInfoV02,
};
pub use wit_bindgen;

use bindings::weir::pipeline::types as v01;
use bindings_v02::weir::pipeline::types as v02;

/// What the exported `process` runs: the module's state, type-erased.
trait Batch {
    fn run(&mut self, batch: Vec<Record>) -> Vec<Outcome>;
}

impl<P: Processor> Batch for P {
    fn run(&mut self, batch: Vec<Record>) -> Vec<Outcome> {
        self.process_batch(batch)
    }
}

thread_local! {
    /// The state `init` built; `process` uses it.
    static STATE: RefCell<Option<Box<dyn Batch>>> = const { RefCell::new(None) };
}

/// `init`: builds `P` from the settings and keeps it for `process`.
pub fn init<P: Processor + 'static>(config: Vec<(String, String)>) -> Result<(), String> {
    install_panic_hook();
    let state = P::init(&Config::from(config)).map_err(Error::into_message)?;
    STATE.with(|cell| *cell.borrow_mut() = Some(Box::new(state)));
    Ok(())
}

/// `process` of the 0.1 world: records with value bytes in, document
/// bytes out.
pub fn process_v01(batch: Vec<v01::Record>) -> Vec<v01::Outcome> {
    let batch = batch
        .into_iter()
        .map(|r| Record {
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key: r.key,
            headers: r.headers,
            value: Body::from_vec(r.value),
        })
        .collect();
    process(batch)
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Emit(docs) => v01::Outcome::Emit(
                docs.into_iter()
                    .map(|d| v01::Document {
                        body: d.body.into_vec(),
                        index: d.index,
                        id: d.id,
                    })
                    .collect(),
            ),
            Outcome::Drop => v01::Outcome::Drop,
            Outcome::Fail(reason) => v01::Outcome::Fail(reason),
        })
        .collect()
}

/// `process` of the 0.2 world: records whose values the host holds;
/// documents handed back as they are (no bytes unless the module made
/// some).
pub fn process_v02(batch: Vec<v02::Record>) -> Vec<v02::Outcome> {
    let batch = batch
        .into_iter()
        .map(|r| Record {
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key: r.key,
            headers: r
                .headers
                .into_iter()
                .map(|h| Header {
                    key: h.key,
                    value: h.value,
                })
                .collect(),
            value: match r.value {
                v02::Body::Doc(doc) => Body::from_doc(Rc::new(doc)),
                v02::Body::Bytes(bytes) => Body::from_vec(bytes),
            },
        })
        .collect();
    process(batch)
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Emit(docs) => v02::Outcome::Emit(
                docs.into_iter()
                    .map(|d| v02::Document {
                        body: d.body.into_wit(),
                        index: d.index,
                        id: d.id,
                    })
                    .collect(),
            ),
            Outcome::Drop => v02::Outcome::Drop,
            Outcome::Fail(reason) => v02::Outcome::Fail(reason),
        })
        .collect()
}

/// Runs the batch through the state, guaranteeing one outcome per record.
fn process(batch: Vec<Record>) -> Vec<Outcome> {
    install_panic_hook();
    let expected = batch.len();
    let outcomes = STATE.with(|cell| match cell.borrow_mut().as_mut() {
        Some(state) => state.run(batch),
        None => fail_all(expected, "module bug: process called before init"),
    });
    if outcomes.len() == expected {
        outcomes
    } else {
        let reason = format!(
            "module bug: process_batch returned {} outcomes for {expected} records",
            outcomes.len()
        );
        fail_all(expected, &reason)
    }
}

fn fail_all(count: usize, reason: &str) -> Vec<Outcome> {
    vec![Outcome::Fail(reason.to_owned()); count]
}

/// What a per-record function may return: [`Outcome`], or
/// `Result<Outcome, E>` whose error becomes [`Outcome::Fail`].
#[diagnostic::on_unimplemented(
    message = "a `#[weir_guest::module]` function must return `Outcome` or `Result<Outcome, Error>`, not `{Self}`"
)]
pub trait IntoOutcome {
    /// Converts to the outcome reported to the host.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Outcome {
        self
    }
}

impl<E> IntoOutcome for Result<Outcome, E>
where
    Error: From<E>,
{
    fn into_outcome(self) -> Outcome {
        self.into()
    }
}

/// Replaces the default multi-line panic message with one line,
/// `panicked at file:line: message`, written to stderr before the trap.
/// The host captures stderr and puts it in the dead-letter reason.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let _ = std::io::stderr().write_all(panic_line(info).as_bytes());
        }))
    });
}

fn panic_line(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = info.payload_as_str().unwrap_or("Box<dyn Any>");
    let mut line = String::from("panicked at ");
    match info.location() {
        Some(at) => {
            let _ = write!(line, "{}:{}", at.file(), at.line());
        }
        None => line.push_str("<unknown>"),
    }
    line.push_str(": ");
    // One line, whatever the message contains.
    line.extend(
        message
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
    );
    line.push('\n');
    line
}
