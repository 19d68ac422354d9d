//! Configuration of the Elasticsearch sink.
//!
//! Every field has a default except `url`. Durations use humantime syntax
//! (`"200ms"`, `"30s"`). Keys named in validation errors are relative to the
//! sink's own section (e.g. `batch.max_docs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::http::Url;
use serde::{Deserialize, Serialize};

/// Settings of the Elasticsearch bulk sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URL of the cluster, `http://` or `https://`. Required.
    pub url: String,
    /// How to authenticate. Default: none.
    #[serde(default)]
    pub auth: AuthConfig,
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
pub enum AuthConfig {
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

/// A configuration value that is invalid, naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Key relative to the sink section, e.g. `batch.max_docs`.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl ElasticsearchConfig {
    /// A configuration with every default and the given URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: AuthConfig::None,
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

    /// Checks every value; returns all problems found, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errs = Vec::new();
        match Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => errs.push(ConfigError::new(
                "url",
                "must be an http:// or https:// URL",
            )),
            Err(e) => errs.push(ConfigError::new("url", format!("invalid URL: {e}"))),
        }
        if let AuthConfig::ApiKey { api_key_env: v }
        | AuthConfig::Basic {
            password_env: v, ..
        } = &self.auth
            && v.is_empty()
        {
            errs.push(ConfigError::new(
                "auth",
                "environment variable name is empty",
            ));
        }
        if self.tls.accept_invalid_certs && self.tls.ca_file.is_some() {
            errs.push(ConfigError::new(
                "tls.accept_invalid_certs",
                "cannot be combined with tls.ca_file",
            ));
        }
        let positive = [
            ("batch.max_docs", self.batch.max_docs),
            ("batch.max_bytes", self.batch.max_bytes),
            ("request.concurrency", self.request.concurrency),
        ];
        for (key, v) in positive {
            if v == 0 {
                errs.push(ConfigError::new(key, "must be greater than 0"));
            }
        }
        let durations = [
            ("batch.timeout", self.batch.timeout),
            ("request.timeout", self.request.timeout),
            ("retry.initial_backoff", self.retry.initial_backoff),
        ];
        for (key, v) in durations {
            if v.is_zero() {
                errs.push(ConfigError::new(key, "must be greater than 0"));
            }
        }
        if self.retry.max_backoff < self.retry.initial_backoff {
            errs.push(ConfigError::new(
                "retry.max_backoff",
                "must not be less than retry.initial_backoff",
            ));
        }
        if self.retry.max_item_attempts == Some(0) {
            errs.push(ConfigError::new(
                "retry.max_item_attempts",
                "must be at least 1 (omit it to retry forever)",
            ));
        }
        for (i, t) in self.templates.iter().enumerate() {
            let valid = !t.name.is_empty()
                && !t.name.starts_with(['-', '_', '.'])
                && t.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
            if !valid {
                errs.push(ConfigError::new(
                    format!("templates[{i}].name"),
                    format!(
                        "{:?} must be lowercase letters, digits, '-', '_' or '.'",
                        t.name
                    ),
                ));
            }
            if self.templates[..i].iter().any(|o| o.name == t.name) {
                errs.push(ConfigError::new(
                    format!("templates[{i}].name"),
                    format!("duplicate template name {:?}", t.name),
                ));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// Reads the secrets named by `auth` from the environment.
    pub(crate) fn credentials(&self) -> Result<Option<Credentials>, ConfigError> {
        let var = |key: &str, name: &str| {
            std::env::var(name).map_err(|_| {
                ConfigError::new(key, format!("environment variable {name} is not set"))
            })
        };
        Ok(match &self.auth {
            AuthConfig::None => None,
            AuthConfig::ApiKey { api_key_env } => Some(Credentials::EncodedApiKey(var(
                "auth.api_key_env",
                api_key_env,
            )?)),
            AuthConfig::Basic {
                username,
                password_env,
            } => Some(Credentials::Basic(
                username.clone(),
                var("auth.password_env", password_env)?,
            )),
        })
    }
}

/// `path` if absolute, else `base_dir/path`.
pub(crate) fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// The URL without any embedded password, for messages and logs.
pub(crate) fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}
