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
    /// Index documents go to (a module may override it per document).
    pub index: String,
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

impl PipelineConfig {
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
        if self.index.is_empty()
            || self.index.starts_with(['-', '_', '+'])
            || self
                .index
                .chars()
                .any(|c| c.is_ascii_uppercase() || r#"\/*?"<>| ,#:"#.contains(c))
        {
            p.add(
                key("index"),
                format!(
                    "`{}` is not a valid index name (lowercase, no \\ / * ? \" < > | , # : or spaces)",
                    self.index
                ),
            );
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
