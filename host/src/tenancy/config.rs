//! `[tenants]` in `weir.toml` and one `tenants/<id>.toml` per tenant.
//!
//! A tenant's pipelines join the host's pipelines under the name
//! `<tenant>.<pipeline>`; everything they touch is checked against what the
//! tenant owns (topic and index prefixes, its modules folder, its outbound
//! hosts) when the config is loaded, so a bad tenant file is refused whole,
//! naming the file and the key, and the running config stays.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::breaker::BreakerConfig;
use crate::config::{PipelineConfig, UpstreamConfig};

/// `[tenants]`: where tenant files live and what every tenant gets.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantsConfig {
    /// Folder with one `<id>.toml` per tenant, relative to the config
    /// file; `""` (the default) means a single-tenant host.
    pub dir: PathBuf,
    /// `[tenants.defaults]`: quotas of a tenant whose file doesn't set them.
    pub defaults: Quotas,
    /// `[tenants.breaker]`: when a failing pipeline backs off.
    pub breaker: BreakerConfig,
}

impl Default for TenantsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            defaults: Quotas::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

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
    /// Table elements one instance may grow to.
    pub max_table_elements: usize,
    /// Instances (core instances inside a component) one Store may create.
    pub max_instances: usize,
    /// Largest module file accepted (drop-in or upload), in bytes.
    pub max_module_bytes: usize,
    /// Records/s across the tenant's pipelines; 0 = unlimited.
    pub records_per_second: u64,
    /// Outbound HTTP requests/s across the tenant's modules; 0 = unlimited.
    pub http_requests_per_second: u64,
    /// Outbound HTTP requests in flight at once across the tenant's modules.
    pub http_concurrency: usize,
    /// Largest document a module may emit, in bytes (larger: dead letter).
    pub max_document_bytes: usize,
    /// Log lines/s a module may write through `wasi:logging`; the rest are
    /// dropped and counted.
    pub log_lines_per_second: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 << 20,
            max_batch_time: Duration::from_secs(5),
            max_table_elements: 100_000,
            max_instances: 16,
            max_module_bytes: 32 << 20,
            records_per_second: 0,
            http_requests_per_second: 0,
            http_concurrency: 16,
            max_document_bytes: 1 << 20,
            log_lines_per_second: 100,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_table_elements: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_module_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_requests_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_document_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines_per_second: Option<u64>,
}

impl QuotaOverrides {
    /// The quotas in force: each override, else the default.
    pub fn resolve(&self, d: &Quotas) -> Quotas {
        Quotas {
            max_memory_bytes: self.max_memory_bytes.unwrap_or(d.max_memory_bytes),
            max_batch_time: self.max_batch_time.unwrap_or(d.max_batch_time),
            max_table_elements: self.max_table_elements.unwrap_or(d.max_table_elements),
            max_instances: self.max_instances.unwrap_or(d.max_instances),
            max_module_bytes: self.max_module_bytes.unwrap_or(d.max_module_bytes),
            records_per_second: self.records_per_second.unwrap_or(d.records_per_second),
            http_requests_per_second: self
                .http_requests_per_second
                .unwrap_or(d.http_requests_per_second),
            http_concurrency: self.http_concurrency.unwrap_or(d.http_concurrency),
            max_document_bytes: self.max_document_bytes.unwrap_or(d.max_document_bytes),
            log_lines_per_second: self.log_lines_per_second.unwrap_or(d.log_lines_per_second),
        }
    }
}

/// `tenants/<id>.toml`: what one tenant owns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// sha256 (hex) of the tenant's admin API token; `weir tenants token`
    /// makes a token and prints this line. No hash: no API access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Share of Wasm execution when tenants compete (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Every index the tenant's pipelines write to starts with this;
    /// default `<id>-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_prefix: Option<String>,
    /// Topics the tenant may consume and dead-letter to start with one of
    /// these; default `["<id>."]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topic_prefixes: Vec<String>,
    /// The tenant's modules folder, relative to the tenants folder; module
    /// paths in its pipelines are relative to it and may not leave it.
    /// Default `<id>/modules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_dir: Option<PathBuf>,
    /// Hosts the tenant's pipelines may list in their
    /// `allowed_outbound_hosts` (each pipeline entry must appear here).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub quotas: QuotaOverrides,
    /// The tenant's credentials, added only to its own modules' requests.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineConfig>,
}

fn default_weight() -> u32 {
    1
}

/// A loaded tenant, with defaults applied and paths resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: String,
    /// The file it came from.
    pub file: PathBuf,
    #[serde(skip)]
    pub token_sha256: Option<String>,
    pub weight: u32,
    pub index_prefix: String,
    pub topic_prefixes: Vec<String>,
    pub modules_dir: PathBuf,
    pub allowed_outbound_hosts: Vec<String>,
    pub quotas: Quotas,
    #[serde(skip)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Pipeline names without the `<id>.` prefix.
    pub pipelines: Vec<String>,
}

impl Tenant {
    /// Whether `topic` is one the tenant may consume or dead-letter to.
    pub fn owns_topic(&self, topic: &str) -> bool {
        self.topic_prefixes
            .iter()
            .any(|p| topic.starts_with(p.as_str()) && topic.len() > p.len())
    }

    pub fn owns_index(&self, index: &str) -> bool {
        index.starts_with(self.index_prefix.as_str()) && index.len() > self.index_prefix.len()
    }

    /// Where a module named `name` lives (`<modules_dir>/<name>.wasm`);
    /// `None` for a name that isn't a plain `[a-z0-9_-]` identifier.
    pub fn module_path(&self, name: &str) -> Option<PathBuf> {
        valid_module_name(name).then(|| self.modules_dir.join(format!("{name}.wasm")))
    }

    /// `status` as the tenant may see it: the module path relative to its
    /// modules folder, never the host's file system layout.
    pub fn relative_status(
        &self,
        mut status: crate::reload::ModuleStatus,
    ) -> crate::reload::ModuleStatus {
        // modules_dir is already canonical (the tenants folder is
        // canonicalized at load), as are the registry's module paths.
        let path = Path::new(&status.path);
        status.path = match path.strip_prefix(&self.modules_dir) {
            Ok(p) => p.display().to_string(),
            Err(_) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        status
    }
}

/// A module name an API caller may use: 1–64 of `[a-z0-9_-]`, starting
/// with a letter or digit (so no `..`, `/`, or hidden files).
pub fn valid_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A tenant id: 1–32 of `[a-z0-9-]`, starting with a letter.
pub fn valid_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id.as_bytes()[0].is_ascii_lowercase()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Why a tenant file was refused: the file, the key, the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct TenantError {
    pub file: PathBuf,
    pub key: String,
    pub reason: String,
}

/// Everything read from the tenants folder: the tenants and their
/// pipelines, named `<tenant>.<pipeline>` and ready to join the host's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedTenants {
    pub tenants: BTreeMap<String, Tenant>,
    pub pipelines: BTreeMap<String, PipelineConfig>,
}

/// Reads every `*.toml` in `dir` (sorted; other files are ignored).
pub fn load_dir(
    dir: &Path,
    defaults: &Quotas,
    runtime_memory: usize,
) -> Result<LoadedTenants, TenantError> {
    let err = |file: &Path, key: &str, reason: String| TenantError {
        file: file.to_path_buf(),
        key: key.to_string(),
        reason,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        err(
            dir,
            "tenants.dir",
            format!("cannot read the tenants folder: {e}"),
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    let mut out = LoadedTenants::default();
    for file in files {
        let id = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !valid_tenant_id(&id) {
            return Err(err(
                &file,
                "",
                format!(
                    "`{id}` is not a tenant id: use 1-32 of a-z, 0-9 and '-', starting with a letter"
                ),
            ));
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| err(&file, "", format!("cannot read: {e}")))?;
        let spec: TenantFile = toml::from_str(&text)
            .map_err(|e| err(&file, "", e.to_string().trim_end().to_string()))?;
        let (tenant, pipelines) = resolve(&id, &file, dir, spec, defaults, runtime_memory)
            .map_err(|(key, reason)| err(&file, &key, reason))?;
        out.pipelines.extend(pipelines);
        out.tenants.insert(id, tenant);
    }
    check_overlaps(&out)?;
    Ok(out)
}

type Invalid = (String, String);

fn resolve(
    id: &str,
    file: &Path,
    dir: &Path,
    spec: TenantFile,
    defaults: &Quotas,
    runtime_memory: usize,
) -> Result<(Tenant, BTreeMap<String, PipelineConfig>), Invalid> {
    let quotas = spec.quotas.resolve(defaults);
    validate_quotas(&quotas, runtime_memory).map_err(|(k, r)| (format!("quotas.{k}"), r))?;
    if spec.weight == 0 || spec.weight > 1000 {
        return Err(("weight".into(), "must be between 1 and 1000".into()));
    }
    if let Some(h) = &spec.token_sha256
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err((
            "token_sha256".into(),
            "must be 64 hex digits (`weir tenants token` prints one)".into(),
        ));
    }
    let index_prefix = spec.index_prefix.unwrap_or_else(|| format!("{id}-"));
    if index_prefix.len() < 2
        || index_prefix
            .chars()
            .any(|c| c.is_ascii_uppercase() || r#"\/*?"<>| ,#:"#.contains(c))
    {
        return Err((
            "index_prefix".into(),
            format!("`{index_prefix}` is not a usable index prefix"),
        ));
    }
    let topic_prefixes = if spec.topic_prefixes.is_empty() {
        vec![format!("{id}.")]
    } else {
        spec.topic_prefixes
    };
    if let Some(p) = topic_prefixes.iter().find(|p| p.len() < 2) {
        return Err((
            "topic_prefixes".into(),
            format!("`{p}` is too short to own topics"),
        ));
    }
    let modules_rel = spec
        .modules_dir
        .unwrap_or_else(|| Path::new(id).join("modules"));
    if !is_inside(&modules_rel) {
        return Err((
            "modules_dir".into(),
            "must be a relative path inside the tenants folder".into(),
        ));
    }
    let modules_dir = dir.join(&modules_rel);
    let tenant = Tenant {
        id: id.to_string(),
        file: file.to_path_buf(),
        token_sha256: spec.token_sha256.map(|h| h.to_ascii_lowercase()),
        weight: spec.weight,
        index_prefix,
        topic_prefixes,
        modules_dir,
        allowed_outbound_hosts: spec.allowed_outbound_hosts,
        quotas,
        upstreams: spec.upstreams,
        pipelines: spec.pipelines.keys().cloned().collect(),
    };
    let mut pipelines = BTreeMap::new();
    for (name, mut p) in spec.pipelines {
        let key = |k: &str| format!("pipelines.{name}.{k}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                format!("pipelines.{name}"),
                "a pipeline name uses only letters, digits, '-' and '_'".into(),
            ));
        }
        if let Some(t) = p.topics.iter().find(|t| !tenant.owns_topic(t)) {
            return Err((
                key("topics"),
                format!(
                    "topic `{t}` is not the tenant's (topic_prefixes: {:?})",
                    tenant.topic_prefixes
                ),
            ));
        }
        if !tenant.owns_index(&p.index) {
            return Err((
                key("index"),
                format!(
                    "index `{}` does not start with the tenant's prefix `{}`",
                    p.index, tenant.index_prefix
                ),
            ));
        }
        let dlq = p
            .dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}{name}-dlq", tenant.topic_prefixes[0]));
        if !tenant.owns_topic(&dlq) {
            return Err((
                key("dead_letter_topic"),
                format!(
                    "`{dlq}` is not the tenant's (topic_prefixes: {:?})",
                    tenant.topic_prefixes
                ),
            ));
        }
        p.dead_letter_topic = Some(dlq);
        if let Some(h) = p
            .allowed_outbound_hosts
            .iter()
            .find(|h| !tenant.allowed_outbound_hosts.contains(h))
        {
            return Err((
                key("allowed_outbound_hosts"),
                format!("`{h}` is not in the tenant's allowed_outbound_hosts"),
            ));
        }
        for (i, m) in p.modules.iter_mut().enumerate() {
            if !is_inside(&m.path) {
                return Err((
                    format!("pipelines.{name}.modules[{i}].path"),
                    format!("`{}` leaves the tenant's modules folder", m.path.display()),
                ));
            }
            m.path = tenant.modules_dir.join(&m.path);
        }
        p.tenant = Some(super::TenantBinding {
            id: id.to_string(),
            weight: tenant.weight,
            quotas: tenant.quotas.clone(),
            upstreams: tenant.upstreams.clone(),
        });
        pipelines.insert(format!("{id}.{name}"), p);
    }
    Ok((tenant, pipelines))
}

/// A relative path with only normal components (no `..`, no root).
fn is_inside(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Checks values serde cannot; the key is relative to the quotas table.
pub fn validate_quotas(q: &Quotas, runtime_memory: usize) -> Result<(), Invalid> {
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
    Ok(())
}

/// No two tenants may claim overlapping topic or index prefixes.
fn check_overlaps(t: &LoadedTenants) -> Result<(), TenantError> {
    let all: Vec<&Tenant> = t.tenants.values().collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            let overlap = |x: &str, y: &str| x.starts_with(y) || y.starts_with(x);
            if let Some((x, y)) = a
                .topic_prefixes
                .iter()
                .flat_map(|x| b.topic_prefixes.iter().map(move |y| (x, y)))
                .find(|(x, y)| overlap(x, y))
            {
                return Err(TenantError {
                    file: b.file.clone(),
                    key: "topic_prefixes".into(),
                    reason: format!("`{y}` overlaps tenant `{}`'s `{x}`", a.id),
                });
            }
            if overlap(&a.index_prefix, &b.index_prefix) {
                return Err(TenantError {
                    file: b.file.clone(),
                    key: "index_prefix".into(),
                    reason: format!(
                        "`{}` overlaps tenant `{}`'s `{}`",
                        b.index_prefix, a.id, a.index_prefix
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
