//! # classify-client
//!
//! The client side shared by Weir's classifier modules (`classify-sentiment`,
//! `detect-hate`), so each service's request and response shape lives in
//! one place:
//!
//! * [`batch`]: read the text of every record once, send the good ones in
//!   chunks of `max_batch`, write the verdict into one field, fail or mark
//!   unclassified what the classifier could not classify;
//! * [`Client`]: the configured service (`backend`: `weir`, `expertai`,
//!   `hf`, `tei`), retries, and errors that say what to fix;
//! * [`weir`], [`expertai`], [`hf`]: each service's requests and response
//!   shapes; a module's [`Task`] turns one text's answer into its verdict.
//!
//! A plain Rust library (no `cdylib`): `cargo xtask modules` does not build
//! it as a module; it is compiled into the modules that use it.

pub mod batch;
mod client;
pub mod expertai;
pub mod hf;
pub mod weir;

pub use batch::{OnError, TextClassification, text_of};
pub use client::{Client, Service, Task};
