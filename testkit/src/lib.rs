//! Weir's test rig: real external services in child processes, and HTTP
//! stand-ins that misbehave on demand.
//!
//! - [`Kafka`]: a `tansu` broker (in-memory) with produce / consume /
//!   offset helpers.
//! - [`Osmem`]: an `osmem-server` (in-memory, OpenSearch-compatible) standing
//!   in for Elasticsearch; [`EsClient`] checks what was indexed.
//! - [`FaultProxy`]: a reverse proxy that refuses, stalls, fails or partially
//!   rejects bulk requests ([`Fault`]).
//! - [`NoopBulk`]: a bulk endpoint that acknowledges everything, for
//!   benchmarks.
//! - [`Process`]: any child process (such as the `weir` binary under test),
//!   killed with its test and with its output captured.
//!
//! The binaries come from `cargo xtask tools` and Wasm modules from
//! `cargo xtask modules`; when they are missing, [`tools`] errors say so, and
//! tests fail rather than skip.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use weir_testkit::{Kafka, Osmem};
//!
//! let kafka = Kafka::start().await?;
//! kafka.create_topic("events", 3).await?;
//! let placed = kafka
//!     .produce("events", (0..1000).map(|i| (Some(format!("k{i}")), format!("{{\"n\":{i}}}"))))
//!     .await?;
//! assert_eq!(placed.len(), 1000);
//! let osmem = Osmem::start().await?;
//! // ... run weir against kafka.bootstrap() and osmem.url() ...
//! let indexed = osmem.client().wait_for_count("events", 1000, Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```

mod bulk;
mod es;
mod kafka;
mod noop_bulk;
mod osmem;
mod process;
mod proxy;
mod server;
pub mod tools;
mod wasm;

pub use es::EsClient;
pub use kafka::{ConsumedRecord, Isolation, Kafka};
pub use noop_bulk::NoopBulk;
pub use osmem::Osmem;
pub use process::{Process, free_port};
pub use proxy::{Fault, FaultProxy};
pub use tools::{ToolError, module_wasm, osmem_bin, tansu_bin};
pub use wasm::with_custom_section;
