//! Sinks: where processed documents go.

pub mod elasticsearch;
