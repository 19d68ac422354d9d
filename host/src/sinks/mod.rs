//! Sinks: where processed documents and dead letters go. Each implements
//! an output port the pipeline defines (`pipeline::DocumentSink`, the
//! receiving end of `pipeline::DeadLetterQueue`).

pub mod dead_letter;
pub mod elasticsearch;
