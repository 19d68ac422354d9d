//! Multi-tenancy: tenants own pipelines, modules, index and topic
//! prefixes, outbound HTTP and secrets, and run under quotas.
//!
//! - [`config`]: `tenants/<id>.toml`, quotas (defaults plus overrides);
//! - [`rate`]: token buckets (records/s, HTTP requests/s, log lines/s);
//! - [`scheduler`]: weighted fair sharing of Wasm execution slots;
//! - [`breaker`]: backs a failing pipeline off instead of hot-looping.

pub mod breaker;
pub mod config;
pub mod rate;
pub mod runtime;
pub mod scheduler;

use serde::Serialize;

pub use config::{Quotas, Tenant, TenantsConfig};
pub use runtime::TenantRuntime;

/// What a tenant's pipeline carries of its tenant: who owns it and the
/// quotas it runs under (a change to either rebuilds the pipeline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantBinding {
    pub id: String,
    pub weight: u32,
    pub quotas: Quotas,
    /// The tenant's credentials, for its modules' requests only.
    #[serde(skip)]
    pub upstreams: std::collections::BTreeMap<String, crate::config::UpstreamConfig>,
}
