//! `weir.toml`: one file, strict (`deny_unknown_fields` everywhere), with
//! errors that name the file, the key and the reason.

mod http;
mod kafka;
mod pipeline;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use http::{AuthConfig, HttpConfig, UpstreamConfig};
pub use kafka::{KafkaConfig, SourceBatchConfig};
pub use pipeline::{ModuleConfig, PipelineConfig};

use crate::runtime::RuntimeConfig;
use crate::sinks::elasticsearch::ElasticsearchConfig;
use crate::tenancy::config::{Tenant, TenantsConfig};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {reason}")]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// Environment variables that override a config value (deployment
/// addresses differ between machines; pipelines don't).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("WEIR_KAFKA_BROKERS", "kafka.brokers"),
    ("WEIR_KAFKA_GROUP_ID", "kafka.group_id"),
    ("WEIR_ELASTICSEARCH_URL", "elasticsearch.url"),
    ("WEIR_ADMIN_LISTEN", "admin.listen"),
];

/// The whole configuration of one Weir host.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub elasticsearch: ElasticsearchConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub reload: crate::reload::ReloadConfig,
    /// Pipelines by name: `[pipelines.tweets]`.
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineConfig>,
    /// Services whose credentials the host adds to module requests:
    /// `[upstreams.expertai]` (see `config/http.rs`).
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// `[tenants]`: the tenants folder and default quotas (multi-tenant
    /// hosting); tenant pipelines join `pipelines` as `<tenant>.<name>`.
    #[serde(default)]
    pub tenants: TenantsConfig,
    /// The tenants read from `tenants.dir`, by id.
    #[serde(skip)]
    pub tenant_set: BTreeMap<String, Tenant>,
    /// Folder of the config file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[admin]`: the HTTP endpoint for `/metrics` and `/healthz`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address to listen on; empty string disables the endpoint.
    pub listen: String,
    /// sha256 (hex) of the operator's API token (`weir tenants token`
    /// prints a token and its hash). When set, every endpoint but
    /// `/healthz` requires a token; tenants' endpoints always do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_token_sha256: Option<String>,
    /// Largest request body (a module upload) the API reads, in bytes;
    /// a tenant's own `max_module_bytes` applies within it.
    pub max_upload_bytes: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            operator_token_sha256: None,
            max_upload_bytes: 64 << 20,
        }
    }
}

impl AdminConfig {
    pub fn address(&self) -> Option<Result<SocketAddr, String>> {
        if self.listen.is_empty() {
            return None;
        }
        Some(self.listen.parse().map_err(|e| format!("{e}")))
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info,weir=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml_with(&text, path, &base, |k| std::env::var(k).ok())
    }

    /// Parses and validates config text; `path` is only used in messages.
    /// Environment overrides are not applied.
    pub fn from_toml(text: &str, path: &Path, base_dir: &Path) -> Result<Self, ConfigError> {
        Self::from_toml_with(text, path, base_dir, |_| None)
    }

    /// Like [`Config::from_toml`], then applies the overrides `env` returns
    /// for [`ENV_OVERRIDES`] before validating.
    pub fn from_toml_with(
        text: &str,
        path: &Path,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if let Some(v) = env("WEIR_KAFKA_BROKERS") {
            config.kafka.brokers = v;
        }
        if let Some(v) = env("WEIR_KAFKA_GROUP_ID") {
            config.kafka.group_id = v;
        }
        if let Some(v) = env("WEIR_ELASTICSEARCH_URL") {
            config.elasticsearch.url = v;
        }
        if let Some(v) = env("WEIR_ADMIN_LISTEN") {
            config.admin.listen = v;
        }
        config.base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir.to_path_buf()
        };
        config.path = path.to_path_buf();
        config.load_tenants()?;
        config
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                reason,
            })?;
        Ok(config)
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Reads the tenants folder and adds the tenants' pipelines.
    fn load_tenants(&mut self) -> Result<(), ConfigError> {
        if self.tenants.dir.as_os_str().is_empty() {
            return Ok(());
        }
        let dir = self.resolve(&self.tenants.dir);
        let dir = std::fs::canonicalize(&dir).map_err(|e| ConfigError::Invalid {
            path: self.path.clone(),
            key: "tenants.dir".into(),
            reason: format!("{}: {e}", dir.display()),
        })?;
        crate::tenancy::config::validate_quotas(
            &self.tenants.defaults,
            self.runtime.max_memory_bytes,
        )
        .map_err(|(k, reason)| ConfigError::Invalid {
            path: self.path.clone(),
            key: format!("tenants.defaults.{k}"),
            reason,
        })?;
        let loaded = crate::tenancy::config::load_dir(
            &dir,
            &self.tenants.defaults,
            self.runtime.max_memory_bytes,
        )
        .map_err(|e| ConfigError::Invalid {
            path: e.file,
            key: e.key,
            reason: e.reason,
        })?;
        for t in loaded.tenants.values() {
            for (name, u) in &t.upstreams {
                http::validate_upstream(name, u).map_err(|(key, reason)| ConfigError::Invalid {
                    path: t.file.clone(),
                    key,
                    reason,
                })?;
            }
        }
        self.pipelines.extend(loaded.pipelines);
        self.tenant_set = loaded.tenants;
        Ok(())
    }

    fn validate(&self) -> Result<(), (String, String)> {
        self.kafka.validate()?;
        self.runtime.validate().map_err(split_key)?;
        if let Err(errors) = self.elasticsearch.validate() {
            let first = &errors[0];
            return Err((
                format!("elasticsearch.{}", first.key),
                first.message.clone(),
            ));
        }
        if let Some(Err(e)) = self.admin.address() {
            return Err(("admin.listen".into(), e));
        }
        // Tenants reach the API over the network: operator endpoints (every
        // tenant's metrics and modules) may not be open to them.
        if let Some(Ok(addr)) = self.admin.address()
            && !addr.ip().is_loopback()
            && !self.tenant_set.is_empty()
            && self.admin.operator_token_sha256.is_none()
        {
            return Err((
                "admin.operator_token_sha256".into(),
                format!(
                    "required when tenants are configured and admin.listen ({addr}) is not loopback: /metrics and /v1/modules show every tenant"
                ),
            ));
        }
        if let Some(h) = &self.admin.operator_token_sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err((
                "admin.operator_token_sha256".into(),
                "must be 64 hex digits (`weir tenants token` prints one)".into(),
            ));
        }
        for (name, u) in &self.upstreams {
            http::validate_upstream(name, u)?;
        }
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        let mut dead_letter_topics = BTreeSet::new();
        for (name, p) in &self.pipelines {
            p.validate(name, self)?;
            for t in &p.topics {
                if let Some(other) = owner.insert(t, name) {
                    return Err((
                        format!("pipelines.{name}.topics"),
                        format!("topic `{t}` is already consumed by pipeline `{other}`"),
                    ));
                }
            }
            dead_letter_topics.insert(p.dead_letter_topic(name));
        }
        for (name, p) in &self.pipelines {
            let dlq = p.dead_letter_topic(name);
            if owner.contains_key(dlq.as_str()) {
                return Err((
                    format!("pipelines.{name}.dead_letter_topic"),
                    format!("`{dlq}` is also consumed by a pipeline; dead letters would loop"),
                ));
            }
        }
        Ok(())
    }
}

/// Splits "key: reason" messages from sub-validators into their parts.
fn split_key(message: String) -> (String, String) {
    match message.split_once(": ") {
        Some((k, r)) if !k.contains(' ') => (k.to_string(), r.to_string()),
        _ => (String::new(), message),
    }
}

/// A TOML scalar (string, integer, float or boolean) read as a string, so
/// `session.timeout.ms = 6000` and `= "6000"` both work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl Serialize for Scalar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(Scalar(s)),
            toml::Value::Integer(i) => Ok(Scalar(i.to_string())),
            toml::Value::Float(f) => Ok(Scalar(f.to_string())),
            toml::Value::Boolean(b) => Ok(Scalar(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, number or boolean, found {}",
                other.type_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
