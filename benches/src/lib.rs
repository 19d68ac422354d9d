//! Weir's benchmark suite: shared pieces of the `weir-bench` binary and the
//! criterion micro benchmarks.
//!
//! - [`corpus`]: deterministic tweet-shaped records (~400 bytes of JSON).
//! - [`native`]: text-clean + enrich as plain Rust (no Wasm), the
//!   `native` scenario's transform.
//! - [`procstat`]: CPU seconds and peak RSS of a process from `/proc`.
//! - [`prom`]: the batch-latency histogram scraped from `/metrics`.

pub mod corpus;
pub mod native;
pub mod procstat;
pub mod prom;
/// text-clean's own source (`modules/text-clean/src`), compiled natively.
/// Not a dependency: the module crate is `cdylib` only, and adding an
/// `rlib` crate type costs the shipped component its LTO (measured: 159 ->
/// 196 KiB).
#[path = "../../modules/text-clean/src/lib.rs"]
#[allow(dead_code, clippy::all)]
pub mod text_clean;
