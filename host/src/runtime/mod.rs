//! The Wasm runtime: one engine, modules compiled once and pre-instantiated,
//! a fresh Store for every batch, and the host capabilities modules get
//! (outbound HTTP, logging) with the limits they run under.

mod bindings;
pub mod cache;
pub mod ctx;
pub mod doc;
pub mod engine;
pub mod http;
pub mod limits;
pub mod log;
pub mod module;
pub mod rate;

pub use bindings::types::{
    Document as WitDocument, Header as WitHeader, Outcome as WitOutcome, Record as WitRecord,
};
pub use bindings::v02::types::{DocError, Value as DocValue};
pub use doc::HeldDoc;
pub use engine::{EpochTicker, WasmRuntime};
pub use http::{HttpPolicy, HttpQuota, OutboundHttp};
pub use limits::{InstanceLimits, LimitExceeded};
pub use module::{
    BatchRecord, Body, Emitted, HOLD_MIN_BYTES, LoadedModule, ModuleError, ModuleInfo,
    ModuleOptions, ModuleOutcome, Trapped, World, digest_of,
};
