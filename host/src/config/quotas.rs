//! Quotas: the limits a tenant's pipelines run under (`[tenants.defaults]`
//! and a tenant's `[quotas]`), and what a tenant's pipeline carries of its
//! tenant.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ElasticsearchAuth, Problems, UpstreamConfig};

/// Limits one tenant runs under. In `[tenants.defaults]` every key has a
/// default; in a tenant's `[quotas]` any key overrides it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// Linear memory one module instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// CPU time one module may spend on one batch.
    #[serde(with = "humantime_serde")]
    pub max_batch_time: Duration,
    /// Wall-clock time one module may take on one batch, waiting included.
    #[serde(with = "humantime_serde")]
    pub max_batch_wall_time: Duration,
    /// Table elements one instance may grow to.
    pub max_table_elements: usize,
    /// Instances (core instances inside a component) one Store may create.
    pub max_instances: usize,
    /// Largest module file accepted (drop-in or upload), in bytes.
    pub max_module_bytes: usize,
    /// Module files the tenant's modules folder may hold (an upload that
    /// would add one more is refused).
    pub max_stored_modules: usize,
    /// Bytes of module files the tenant's modules folder may hold (an
    /// upload that would go over it is refused).
    pub max_stored_module_bytes: u64,
    /// Records/s across the tenant's pipelines; 0 = unlimited.
    pub records_per_second: u64,
    /// Outbound HTTP requests/s across the tenant's modules; 0 = unlimited.
    pub http_requests_per_second: u64,
    /// Outbound HTTP requests in flight at once across the tenant's modules.
    pub http_concurrency: usize,
    /// Largest document a module may emit, in bytes, counted with
    /// everything the host adds (larger: dead letter).
    pub max_document_bytes: usize,
    /// Documents one record may turn into across the chain (more: the
    /// record is dead-lettered, none of its documents indexed).
    pub max_documents_per_record: usize,
    /// Bytes of documents one batch may hold after any module of the chain
    /// (the records whose documents go over it are dead-lettered, and a
    /// module run record by record is not run on the rest).
    pub max_batch_output_bytes: usize,
    /// Log lines/s a module may write through `wasi:logging`; the rest are
    /// dropped and counted.
    pub log_lines_per_second: u64,
    /// Wasm execution slots (of `runtime.max_concurrency`) the tenant's
    /// batches may hold at once; 0 = as many as are free. Bounds what a
    /// module that sleeps or loops can take from other tenants before the
    /// fair scheduler has measured it.
    pub max_concurrent_batches: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 << 20,
            max_batch_time: Duration::from_secs(5),
            max_batch_wall_time: Duration::from_secs(30),
            max_table_elements: 100_000,
            max_instances: 16,
            max_module_bytes: 32 << 20,
            max_stored_modules: 32,
            max_stored_module_bytes: 256 << 20,
            records_per_second: 0,
            http_requests_per_second: 0,
            http_concurrency: 16,
            max_document_bytes: 1 << 20,
            max_documents_per_record: 100,
            max_batch_output_bytes: 64 << 20,
            log_lines_per_second: 100,
            max_concurrent_batches: 0,
        }
    }
}

/// A tenant's `[quotas]`: every key optional, falling back to the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<usize>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_batch_time: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_batch_wall_time: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_table_elements: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_module_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stored_modules: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stored_module_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_requests_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_document_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_documents_per_record: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_output_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_batches: Option<usize>,
}

impl QuotaOverrides {
    /// The quotas in force: each override, else the default.
    pub fn resolve(&self, d: &Quotas) -> Quotas {
        Quotas {
            max_memory_bytes: self.max_memory_bytes.unwrap_or(d.max_memory_bytes),
            max_batch_time: self.max_batch_time.unwrap_or(d.max_batch_time),
            max_batch_wall_time: self.max_batch_wall_time.unwrap_or(d.max_batch_wall_time),
            max_table_elements: self.max_table_elements.unwrap_or(d.max_table_elements),
            max_instances: self.max_instances.unwrap_or(d.max_instances),
            max_module_bytes: self.max_module_bytes.unwrap_or(d.max_module_bytes),
            max_stored_modules: self.max_stored_modules.unwrap_or(d.max_stored_modules),
            max_stored_module_bytes: self
                .max_stored_module_bytes
                .unwrap_or(d.max_stored_module_bytes),
            records_per_second: self.records_per_second.unwrap_or(d.records_per_second),
            http_requests_per_second: self
                .http_requests_per_second
                .unwrap_or(d.http_requests_per_second),
            http_concurrency: self.http_concurrency.unwrap_or(d.http_concurrency),
            max_document_bytes: self.max_document_bytes.unwrap_or(d.max_document_bytes),
            max_documents_per_record: self
                .max_documents_per_record
                .unwrap_or(d.max_documents_per_record),
            max_batch_output_bytes: self
                .max_batch_output_bytes
                .unwrap_or(d.max_batch_output_bytes),
            log_lines_per_second: self.log_lines_per_second.unwrap_or(d.log_lines_per_second),
            max_concurrent_batches: self
                .max_concurrent_batches
                .unwrap_or(d.max_concurrent_batches),
        }
    }
}

/// What a tenant's pipeline carries of its tenant: who owns it and the
/// quotas it runs under (a change to either rebuilds the pipeline).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TenantBinding {
    pub id: String,
    pub weight: u32,
    /// Every index the pipeline's documents may go to starts with this.
    pub index_prefix: String,
    pub quotas: Quotas,
    /// The tenant's credentials, for its modules' requests only.
    #[serde(skip)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// The tenant's `allowed_outbound_hosts`: also the only places its
    /// upstreams' token endpoints may be.
    pub allowed_outbound_hosts: Vec<String>,
    /// The credentials the tenant's documents are indexed with (`None`:
    /// the host's); a change rebuilds the tenant's pipelines, whose next
    /// documents go out with the new ones.
    #[serde(skip)]
    pub elasticsearch: Option<ElasticsearchAuth>,
}

/// Checks quotas (`[tenants.defaults]` or a tenant's), keys under `prefix`.
pub(super) fn validate_quotas(q: &Quotas, runtime_memory: usize, prefix: &str, p: &mut Problems) {
    if let Err((key, reason)) = quota_problem(q, runtime_memory) {
        p.add(format!("{prefix}{key}"), reason);
    }
}

/// Checks values serde cannot; the key is relative to the quotas table.
pub(super) fn quota_problem(q: &Quotas, runtime_memory: usize) -> Result<(), (String, String)> {
    if q.max_memory_bytes < (1 << 16) {
        return Err((
            "max_memory_bytes".into(),
            "must be at least one Wasm page (65536)".into(),
        ));
    }
    if q.max_memory_bytes > runtime_memory {
        return Err((
            "max_memory_bytes".into(),
            format!(
                "{} exceeds runtime.max_memory_bytes ({runtime_memory}), which sizes the instance pool",
                q.max_memory_bytes
            ),
        ));
    }
    if q.max_batch_time.is_zero() {
        return Err(("max_batch_time".into(), "must be greater than zero".into()));
    }
    if q.max_batch_wall_time < q.max_batch_time {
        return Err((
            "max_batch_wall_time".into(),
            "must be at least max_batch_time".into(),
        ));
    }
    if q.max_instances == 0 {
        return Err(("max_instances".into(), "must be at least 1".into()));
    }
    if q.http_concurrency == 0 {
        return Err(("http_concurrency".into(), "must be at least 1".into()));
    }
    if q.max_document_bytes == 0 || q.max_module_bytes == 0 {
        return Err((
            "max_document_bytes".into(),
            "must be greater than zero".into(),
        ));
    }
    if q.max_stored_modules == 0 {
        return Err(("max_stored_modules".into(), "must be at least 1".into()));
    }
    if q.max_stored_module_bytes < q.max_module_bytes as u64 {
        return Err((
            "max_stored_module_bytes".into(),
            format!(
                "{} is less than max_module_bytes ({}): not even one module of the largest size would fit",
                q.max_stored_module_bytes, q.max_module_bytes
            ),
        ));
    }
    if q.max_batch_output_bytes < q.max_document_bytes {
        return Err((
            "max_batch_output_bytes".into(),
            format!(
                "{} is less than max_document_bytes ({}): a batch could not hold one document of the largest size",
                q.max_batch_output_bytes, q.max_document_bytes
            ),
        ));
    }
    if q.max_documents_per_record == 0 {
        return Err((
            "max_documents_per_record".into(),
            "must be at least 1".into(),
        ));
    }
    Ok(())
}
