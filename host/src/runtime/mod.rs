//! The Wasm runtime: one engine, modules compiled once and pre-instantiated,
//! a fresh Store for every batch.

mod bindings;
pub mod cache;
pub mod ctx;
pub mod engine;
pub mod http;
pub mod limits;
pub mod module;

pub use bindings::types::{
    Document as WitDocument, Header as WitHeader, Outcome as WitOutcome, Record as WitRecord,
};
pub use engine::{EpochTicker, WasmRuntime};
pub use http::{HttpPolicy, OutboundHttp};
pub use limits::InstanceLimits;
pub use limits::{LimitExceeded, PoolingMode, RuntimeConfig};
pub use module::{LoadedModule, ModuleError, ModuleInfo, ModuleOptions, Trapped, digest_of};
