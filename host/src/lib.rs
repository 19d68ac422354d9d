//! Weir host library: everything the `weir` binary is made of, exposed so
//! integration tests and benchmarks can drive the pieces directly.

pub mod admin;
pub mod app;
pub mod config;
pub mod dlq;
pub mod event;
pub mod pipeline;
pub mod reload;
pub mod runtime;
pub mod sinks;
pub mod source;
pub mod telemetry;
pub mod tenancy;
