//! `[elasticsearch]`: configuration of the Elasticsearch sink
//! (`sinks/elasticsearch/`).
//!
//! Every field has a default except `url`. Durations use humantime syntax
//! (`"200ms"`, `"30s"`). Keys named in validation errors are relative to the
//! sink's own section (e.g. `batch.max_docs`).

use std::path::PathBuf;
use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::http::Url;
use serde::{Deserialize, Serialize};

use super::Problems;

/// Settings of the Elasticsearch bulk sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URL of the cluster, `http://` or `https://`. Required.
    pub url: String,
    /// How to authenticate. Default: none.
    #[serde(default)]
    pub auth: ElasticsearchAuth,
    /// TLS settings for `https://` URLs. Default: system roots, full validation.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Gzip-compress bulk request bodies (level 1). Default (unset): on,
    /// except when the URL's host is loopback (`localhost`, `127.0.0.0/8`,
    /// `::1`), where compressing saves no network and costs CPU on both
    /// ends of the same machine (~2.5 µs per 400-byte document to gzip here,
    /// ~1.5 to gunzip). See [`ElasticsearchConfig::gzip`].
    #[serde(default)]
    pub compression: Option<bool>,
    /// When a batch is cut and sent.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Bulk request limits.
    #[serde(default)]
    pub request: RequestConfig,
    /// Backoff and retry limits.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Startup reachability check.
    #[serde(default)]
    pub health: HealthConfig,
    /// Index templates installed at startup, in order. Default: none.
    #[serde(default)]
    pub templates: Vec<TemplateConfig>,
}

/// Credentials. Secrets never appear in the config file: it names the
/// environment variables that hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ElasticsearchAuth {
    /// No `Authorization` header (the default).
    #[default]
    None,
    /// `Authorization: ApiKey <value>`; the variable holds the *encoded*
    /// key (the `encoded` field Elasticsearch returns when creating it).
    ApiKey { api_key_env: String },
    /// HTTP basic auth with the password read from `password_env`.
    Basic {
        username: String,
        password_env: String,
    },
}

impl ElasticsearchAuth {
    /// The environment variables the credential is read from, with their
    /// keys relative to `auth` (none for [`ElasticsearchAuth::None`]).
    pub fn variables(&self) -> Vec<(&'static str, &str)> {
        match self {
            ElasticsearchAuth::None => Vec::new(),
            ElasticsearchAuth::ApiKey { api_key_env } => vec![("api_key_env", api_key_env)],
            ElasticsearchAuth::Basic { password_env, .. } => vec![("password_env", password_env)],
        }
    }

    /// The credential, its secret read through `env`; the error names the
    /// key (`auth.…`) whose variable `env` does not hold.
    pub fn credentials(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Credentials>, MissingSecret> {
        let var = |key: &str, name: &str| {
            env(name).ok_or_else(|| MissingSecret {
                key: format!("auth.{key}"),
                variable: name.to_string(),
            })
        };
        Ok(match self {
            ElasticsearchAuth::None => None,
            ElasticsearchAuth::ApiKey { api_key_env } => {
                Some(Credentials::EncodedApiKey(var("api_key_env", api_key_env)?))
            }
            ElasticsearchAuth::Basic {
                username,
                password_env,
            } => Some(Credentials::Basic(
                username.clone(),
                var("password_env", password_env)?,
            )),
        })
    }
}

/// A tenant file's `[elasticsearch]`: the credentials the tenant's bulk
/// requests are sent with (every other setting is the host's). Without
/// it, the tenant's documents go out with the host's `[elasticsearch] auth`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantElasticsearch {
    /// `{ type = "api_key", api_key_env = "…" }` or `{ type = "basic",
    /// username = "…", password_env = "…" }`; the variables must be the
    /// tenant's own (`<tenants.env_prefix><ID>_…`).
    pub auth: ElasticsearchAuth,
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) to trust in addition to the
    /// system roots. Default: none. Relative to the config file's folder.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate validation entirely (testing only). Default: `false`.
    #[serde(default)]
    pub accept_invalid_certs: bool,
}

/// Batch cutting: a batch is sent when any limit is reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Documents per bulk request. Default: 1000.
    #[serde(default = "default_max_docs")]
    pub max_docs: usize,
    /// Uncompressed NDJSON bytes per bulk request. Default: 5 MiB. A single
    /// larger document is sent alone.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// How long a partial batch waits for more documents. Default: 200ms.
    #[serde(default = "default_batch_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Bulk request settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    /// Per-request timeout (connect to last response byte). Default: 30s.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Maximum bulk requests in flight. Default: 4.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

/// Retry policy: exponential backoff with full jitter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Backoff ceiling of the first retry. Default: 100ms.
    #[serde(default = "default_initial_backoff", with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Backoff ceiling cap. Default: 10s.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Times a document may be rejected with a retryable error (429, 5xx,
    /// rejected execution) before it is dead-lettered. Default: unset, i.e.
    /// retry forever, because dropping a document would be loss.
    #[serde(default)]
    pub max_item_attempts: Option<u32>,
}

/// Startup reachability check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// How long startup keeps retrying `GET /` before failing. Default: 10s.
    #[serde(default = "default_startup_timeout", with = "humantime_serde")]
    pub startup_timeout: Duration,
}

/// One index template: `PUT _index_template/{name}` with the file's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Template name (lowercase letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// JSON file with the template body. Relative to the config file's folder.
    pub path: PathBuf,
}

fn default_max_docs() -> usize {
    1000
}
fn default_max_bytes() -> usize {
    5 * 1024 * 1024
}
fn default_batch_timeout() -> Duration {
    Duration::from_millis(200)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_concurrency() -> usize {
    4
}
fn default_initial_backoff() -> Duration {
    Duration::from_millis(100)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(10)
}
fn default_startup_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_docs: default_max_docs(),
            max_bytes: default_max_bytes(),
            timeout: default_batch_timeout(),
        }
    }
}
impl Default for RequestConfig {
    fn default() -> Self {
        Self {
            timeout: default_request_timeout(),
            concurrency: default_concurrency(),
        }
    }
}
impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            max_item_attempts: None,
        }
    }
}
impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            startup_timeout: default_startup_timeout(),
        }
    }
}

/// A secret the configuration names but the environment does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: environment variable {variable} is not set")]
pub struct MissingSecret {
    /// Key relative to the section, e.g. `auth.api_key_env`.
    pub key: String,
    pub variable: String,
}

impl ElasticsearchConfig {
    /// A configuration with every default and the given URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: ElasticsearchAuth::None,
            tls: TlsConfig::default(),
            compression: None,
            batch: BatchConfig::default(),
            request: RequestConfig::default(),
            retry: RetryConfig::default(),
            health: HealthConfig::default(),
            templates: Vec::new(),
        }
    }

    /// Whether bulk bodies are gzipped: `compression` when set, else
    /// whether the URL's host is not loopback.
    pub fn gzip(&self) -> bool {
        self.compression.unwrap_or_else(|| {
            !Url::parse(&self.url).is_ok_and(|url| {
                let host = url.host_str().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
        })
    }

    /// Checks every value, reporting each problem under `prefix` (the
    /// section's key, e.g. `elasticsearch.`).
    pub fn validate(&self, prefix: &str, p: &mut Problems) {
        match Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => p.add(format!("{prefix}url"), "must be an http:// or https:// URL"),
            Err(e) => p.add(format!("{prefix}url"), format!("invalid URL: {e}")),
        }
        if let ElasticsearchAuth::ApiKey { api_key_env: v }
        | ElasticsearchAuth::Basic {
            password_env: v, ..
        } = &self.auth
            && v.is_empty()
        {
            p.add(
                format!("{prefix}auth"),
                "environment variable name is empty",
            );
        }
        if self.tls.accept_invalid_certs && self.tls.ca_file.is_some() {
            p.add(
                format!("{prefix}tls.accept_invalid_certs"),
                "cannot be combined with tls.ca_file",
            );
        }
        let positive = [
            ("batch.max_docs", self.batch.max_docs),
            ("batch.max_bytes", self.batch.max_bytes),
            ("request.concurrency", self.request.concurrency),
        ];
        for (key, v) in positive {
            if v == 0 {
                p.add(format!("{prefix}{key}"), "must be greater than 0");
            }
        }
        let durations = [
            ("batch.timeout", self.batch.timeout),
            ("request.timeout", self.request.timeout),
            ("retry.initial_backoff", self.retry.initial_backoff),
        ];
        for (key, v) in durations {
            if v.is_zero() {
                p.add(format!("{prefix}{key}"), "must be greater than 0");
            }
        }
        if self.retry.max_backoff < self.retry.initial_backoff {
            p.add(
                format!("{prefix}retry.max_backoff"),
                "must not be less than retry.initial_backoff",
            );
        }
        if self.retry.max_item_attempts == Some(0) {
            p.add(
                format!("{prefix}retry.max_item_attempts"),
                "must be at least 1 (omit it to retry forever)",
            );
        }
        for (i, t) in self.templates.iter().enumerate() {
            let valid = !t.name.is_empty()
                && !t.name.starts_with(['-', '_', '.'])
                && t.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
            if !valid {
                p.add(
                    format!("{prefix}templates[{i}].name"),
                    format!(
                        "{:?} must be lowercase letters, digits, '-', '_' or '.'",
                        t.name
                    ),
                );
            }
            if self.templates[..i].iter().any(|o| o.name == t.name) {
                p.add(
                    format!("{prefix}templates[{i}].name"),
                    format!("duplicate template name {:?}", t.name),
                );
            }
        }
    }

    /// Reads the secrets named by `auth` from the environment; the error
    /// names the key whose variable is not set.
    pub fn credentials(&self) -> Result<Option<Credentials>, MissingSecret> {
        self.auth.credentials(&|name| std::env::var(name).ok())
    }
}

/// The URL without any embedded password, for messages and logs.
pub fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests;
