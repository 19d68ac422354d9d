//! Weir host library: everything the `weir` binary is made of, exposed so
//! integration tests and benchmarks can drive the pieces directly.

pub mod dlq;
pub mod event;
pub mod sinks;
