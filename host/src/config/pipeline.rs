//! `[pipelines.NAME]`: topics in, a chain of modules, an index out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, Problems, Scalar, TenantBinding};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Kafka topics this pipeline consumes.
    pub topics: Vec<String>,
    /// Index documents go to (a module may override it per document, within
    /// `allowed_indices`).
    pub index: String,
    /// Other indices a module may send this pipeline's documents to:
    /// names, or patterns with `*` (`weir-news-*`). A document a module
    /// sends anywhere else is dead-lettered naming the index. A tenant's
    /// pipeline may always write under the tenant's `index_prefix`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_indices: Vec<String>,
    /// Topic dead letters go to; default `<pipeline>-dlq`.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Top-level document field listing the module versions that produced
    /// the document (`name@version#sha256-prefix`); `""` turns it off.
    #[serde(default = "default_provenance")]
    pub provenance_field: Option<String>,
    /// Modules, run in order. Empty: records are indexed as they are.
    #[serde(default)]
    pub modules: Vec<ModuleConfig>,
    /// Where the pipeline's modules may send HTTP requests:
    /// `scheme://host[:port]` patterns, `*.` for subdomains. Empty: none.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// `[pipelines.NAME.http]`: timeouts and limits of those requests.
    #[serde(default)]
    pub http: super::HttpConfig,
    /// Set for a tenant's pipeline (never read from TOML): its owner and
    /// the quotas it runs under.
    #[serde(skip)]
    pub tenant: Option<TenantBinding>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// Name in logs, metrics and dead-letter reasons; default: file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Path of the component (`.wasm`), relative to the config file.
    pub path: PathBuf,
    /// Settings passed to the module's `init`.
    #[serde(default)]
    pub config: BTreeMap<String, Scalar>,
}

fn default_provenance() -> Option<String> {
    Some("weir_modules".into())
}

impl ModuleConfig {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "module".into())
        })
    }

    pub fn settings(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect()
    }
}

/// An Elasticsearch index name: lowercase, not starting with `-`, `_` or
/// `+`, none of `\ / * ? " < > | , # :` or spaces.
pub fn valid_index_name(index: &str) -> bool {
    !index.is_empty()
        && !index.starts_with(['-', '_', '+'])
        && !index
            .chars()
            .any(|c| c.is_ascii_uppercase() || r#"\/*?"<>| ,#:"#.contains(c))
}

/// Whether `index` matches `pattern`, where `*` stands for any run of
/// characters.
pub fn index_matches(pattern: &str, index: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = index.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The indices a pipeline's documents may go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexScope {
    pub index: String,
    pub allowed: Vec<String>,
    /// A tenant's pipeline: anything under the tenant's prefix.
    pub tenant_prefix: Option<String>,
}

impl IndexScope {
    /// Whether a document may go to `index`: the pipeline's own index, one
    /// matching `allowed_indices`, or one under the tenant's prefix.
    pub fn allows(&self, index: &str) -> bool {
        index == self.index
            || self.allowed.iter().any(|p| index_matches(p, index))
            || self
                .tenant_prefix
                .as_deref()
                .is_some_and(|p| index.starts_with(p) && index.len() > p.len())
    }
}

impl std::fmt::Display for IndexScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.index)?;
        for p in &self.allowed {
            write!(f, ", `{p}`")?;
        }
        if let Some(p) = &self.tenant_prefix {
            write!(f, ", `{p}*`")?;
        }
        Ok(())
    }
}

impl PipelineConfig {
    /// Where the pipeline's documents may go.
    pub fn index_scope(&self) -> IndexScope {
        IndexScope {
            index: self.index.clone(),
            allowed: self.allowed_indices.clone(),
            tenant_prefix: self.tenant.as_ref().map(|t| t.index_prefix.clone()),
        }
    }

    pub fn dead_letter_topic(&self, name: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{name}-dlq"))
    }

    pub(super) fn validate(&self, name: &str, config: &Config, p: &mut Problems) {
        let key = |k: &str| format!("pipelines.{name}.{k}");
        // A tenant's pipelines are named `<tenant>.<name>`, both parts
        // checked when the tenant file was read.
        if self.tenant.is_none()
            && (name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            p.add(
                format!("pipelines.{name}"),
                "a pipeline name uses only letters, digits, '-' and '_'",
            );
        }
        if self.topics.is_empty() {
            p.add(key("topics"), "must list at least one topic");
        }
        if let Some(t) = self.topics.iter().find(|t| t.trim().is_empty()) {
            p.add(key("topics"), format!("invalid topic name `{t}`"));
        }
        if !valid_index_name(&self.index) {
            p.add(
                key("index"),
                format!(
                    "`{}` is not a valid index name (lowercase, no \\ / * ? \" < > | , # : or spaces)",
                    self.index
                ),
            );
        }
        for (i, pattern) in self.allowed_indices.iter().enumerate() {
            if !valid_index_name(&pattern.replace('*', "x")) || pattern.starts_with('*') {
                p.add(
                    format!("pipelines.{name}.allowed_indices[{i}]"),
                    format!(
                        "`{pattern}` is not an index name or pattern (lowercase, `*` anywhere but first)"
                    ),
                );
            }
        }
        super::http::validate_pipeline(name, &self.allowed_outbound_hosts, &self.http, p);
        let mut names = std::collections::BTreeSet::new();
        for (i, m) in self.modules.iter().enumerate() {
            let path = config.resolve(&m.path);
            if !path.is_file() {
                p.add(
                    format!("pipelines.{name}.modules[{i}].path"),
                    format!(
                        "{} does not exist (build modules with `cargo xtask modules`)",
                        path.display()
                    ),
                );
            }
            if !names.insert(m.name()) {
                p.add(
                    format!("pipelines.{name}.modules[{i}].name"),
                    format!(
                        "`{}` appears twice in this pipeline; give one a `name`",
                        m.name()
                    ),
                );
            }
        }
    }
}

/// When a pipeline's breaker opens and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failed batches that open the breaker.
    pub failure_threshold: u32,
    /// First open period; doubles with each consecutive trip.
    #[serde(with = "humantime_serde")]
    pub base_backoff: Duration,
    /// Longest open period.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}
