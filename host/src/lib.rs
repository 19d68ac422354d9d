//! Weir host library: everything the `weir` binary is made of, exposed so
//! integration tests and benchmarks can drive the pieces directly.
//!
//! Layers, each importing only from those listed before it (enforced by
//! `host/tests/layering.rs`; the picture is `docs/architecture.md`):
//!
//! 1. [`event`], [`telemetry`], [`net`]: the units that flow, the metrics,
//!    what kind of address an IP is.
//! 2. [`config`]: every configuration type and its validation.
//! 3. [`runtime`]: the Wasm runtime (engine, modules, limits, outbound HTTP).
//! 4. [`pipeline`]: a batch through a chain of modules, per-partition
//!    workers, scheduling, breaker, and the output ports it dispatches to.
//! 5. [`sinks`], [`source`]: Elasticsearch and the dead-letter writer;
//!    the Kafka consumer.
//! 6. [`modules`]: module versions, hot reload, uploads.
//! 7. [`admin`]: the HTTP API and status page.
//! 8. [`app`]: `weir run` wiring; then the `cli` of the binary.

pub mod admin;
pub mod app;
pub mod config;
pub mod event;
pub mod fleet;
pub mod modules;
pub mod net;
pub mod pipeline;
pub mod runtime;
pub mod sinks;
pub mod source;
pub mod telemetry;
