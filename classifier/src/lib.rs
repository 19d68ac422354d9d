//! Weir's classifier service: offline sentiment (VADER 3.3.2) and hate-speech
//! detection (hatesonar 0.1.0) behind a batch JSON API and expert.ai NL API
//! v2-compatible endpoints.
//!
//! * [`vader`]: a Rust port of vaderSentiment 3.3.2 with its lexicons embedded.
//! * [`hate`]: hatesonar's TF-IDF + logistic-regression model, exported to JSON
//!   and reimplemented to reproduce the package's float32 probabilities.
//! * [`api`]: the axum service; [`api::router`] embeds it in-process.

pub mod api;
pub mod hate;
mod pyround;
pub mod vader;

pub use api::{ApiConfig, AppState, router};
