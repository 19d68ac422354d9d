//! `weir.toml`: one file, strict (`deny_unknown_fields` everywhere), with
//! errors that name the file, the key and the reason.

mod control;
mod elasticsearch;
mod host_pattern;
mod http;
mod kafka;
mod pipeline;
mod quotas;
mod runtime;
mod tenants;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use control::{ControlConfig, ControlMode};
pub use elasticsearch::{
    BatchConfig, ElasticsearchAuth, ElasticsearchConfig, HealthConfig, MissingSecret,
    RequestConfig, RetryConfig, TemplateConfig, TenantElasticsearch, TlsConfig, redacted,
};
pub use host_pattern::{
    HostMatch, HostPattern, PathProblem, PatternError, Scheme, UpstreamUrl, normalize_path,
};
pub use http::{HttpConfig, UpstreamAuth, UpstreamConfig};
pub use kafka::{DeadLetterDelivery, KafkaConfig, SourceBatchConfig};
pub use pipeline::{
    BreakerConfig, IndexScope, ModuleConfig, PipelineConfig, index_matches, valid_index_name,
};
pub use quotas::{QuotaOverrides, Quotas, TenantBinding};
pub use runtime::{PoolingMode, RuntimeConfig};
pub use tenants::{
    FLEET_MARKER, LoadedTenants, Tenant, TenantFile, TenantsConfig, valid_module_name,
    valid_tenant_id,
};

/// Why a configuration was refused: it could not be read, it is not valid
/// TOML of the right shape, or it names values that are wrong (every one
/// found, each with its file and key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}", lines(.0))]
    Invalid(Vec<ConfigProblem>),
}

impl ConfigError {
    /// The problems of an invalid configuration (none for the other kinds).
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

/// One wrong value: the file it is in, its key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ConfigProblem {
    pub file: PathBuf,
    /// Dotted path from the file's root, e.g. `pipelines.news.index`.
    pub key: String,
    pub reason: String,
}

fn lines(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects the problems validation finds, so one run reports them all.
#[derive(Debug)]
pub struct Problems {
    file: PathBuf,
    list: Vec<ConfigProblem>,
}

impl Problems {
    /// Problems of `file` (later ones may name other files: [`Problems::add_in`]).
    pub fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            list: Vec::new(),
        }
    }

    /// A problem of the file being validated.
    pub fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        let file = self.file.clone();
        self.add_in(&file, key, reason);
    }

    /// A problem of another file (a tenant's).
    pub fn add_in(&mut self, file: &Path, key: impl Into<String>, reason: impl Into<String>) {
        self.list.push(ConfigProblem {
            file: file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok` if nothing was found.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self.list))
        }
    }
}

/// Reads an environment variable: the process's, or one a test gives.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Environment variables that override a config value (deployment
/// addresses differ between machines; pipelines don't).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("WEIR_KAFKA_BROKERS", "kafka.brokers"),
    ("WEIR_KAFKA_GROUP_ID", "kafka.group_id"),
    ("WEIR_KAFKA_INSTANCE_ID", "kafka.instance_id"),
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
    pub reload: ReloadConfig,
    /// `[control]`: the host's files (default) or a fleet's control topic.
    #[serde(default)]
    pub control: ControlConfig,
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
    /// Longest a request may take, body read included (408 past it).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest a request body may stall between two chunks (408 past it).
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Longest a connection may take to send a request's headers, and
    /// stay idle between requests, before it is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            operator_token_sha256: None,
            max_upload_bytes: 64 << 20,
            request_timeout: Duration::from_secs(120),
            body_read_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

impl AdminConfig {
    fn validate(&self, p: &mut Problems) {
        for (key, d) in [
            ("admin.request_timeout", self.request_timeout),
            ("admin.body_read_timeout", self.body_read_timeout),
            ("admin.header_read_timeout", self.header_read_timeout),
        ] {
            if d.is_zero() {
                p.add(key, "must be greater than zero");
            }
        }
        if self.max_connections == 0 {
            p.add("admin.max_connections", "must be at least 1");
        }
    }

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

/// `[reload]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Watch module files and the config file and apply changes live.
    pub watch: bool,
    /// Quiet time after the last file event before acting on a change.
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
    /// Versions kept per module for rollback.
    pub keep_versions: usize,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            debounce: Duration::from_millis(300),
            keep_versions: 5,
        }
    }
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
    /// Environment overrides are not applied, and whether the variables
    /// tenants' Elasticsearch credentials name are set is not checked.
    pub fn from_toml(text: &str, path: &Path, base_dir: &Path) -> Result<Self, ConfigError> {
        Self::build(text, path, base_dir, None)
    }

    /// Like [`Config::from_toml`], then applies the overrides `env` returns
    /// for [`ENV_OVERRIDES`] before validating, and refuses a tenant whose
    /// Elasticsearch credentials name a variable `env` does not hold.
    pub fn from_toml_with(
        text: &str,
        path: &Path,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::build(text, path, base_dir, Some(&env))
    }

    /// Parses, loads the tenants folder and validates.
    fn build(
        text: &str,
        path: &Path,
        base_dir: &Path,
        env: Option<EnvLookup<'_>>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::parse(text, path, base_dir, env)?;
        let mut problems = Problems::new(path);
        config.load_tenants(env, &mut problems, None);
        config.validate(&mut problems);
        problems.finish()?;
        Ok(config)
    }

    /// Re-reads the config file of a running host: like [`Config::load`],
    /// except that a tenant file with a problem refuses only that tenant's
    /// change. The tenant keeps its definition in `running` (a tenant new
    /// in this reload stays out), every other change applies, and the
    /// refused files' problems are returned beside the new config. A
    /// problem in the config file itself still refuses the whole reload.
    pub fn reload(
        path: &Path,
        running: &Config,
    ) -> Result<(Self, Vec<ConfigProblem>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let env = |k: &str| std::env::var(k).ok();
        let parsed = Self::parse(&text, path, &base, Some(&env))?;
        let mut refused: Vec<ConfigProblem> = Vec::new();
        loop {
            let mut config = parsed.clone();
            let kept: BTreeSet<PathBuf> = refused.iter().map(|p| p.file.clone()).collect();
            let mut problems = Problems::new(path);
            config.load_tenants(Some(&env), &mut problems, Some((running, &kept)));
            config.validate(&mut problems);
            if problems.is_empty() {
                return Ok((config, refused));
            }
            // Only problems in tenant files not yet kept can be refused
            // alone; anything else (the config file, a kept tenant that no
            // longer fits) refuses the reload.
            let alone = problems.list.iter().all(|p| {
                p.file != path && !kept.contains(&p.file) && config.is_tenant_file(&p.file)
            });
            if !alone {
                refused.append(&mut problems.list);
                return Err(ConfigError::Invalid(refused));
            }
            refused.append(&mut problems.list);
        }
    }

    /// Puts tenant `id` back to its definition and pipelines in `running`
    /// (or takes it out, if it was not running), for a reload whose
    /// modules for that tenant failed to load; refused if the result no
    /// longer validates.
    pub fn keep_running_tenant(&mut self, id: &str, running: &Config) -> Result<(), ConfigError> {
        tenants::revert_tenant(
            id,
            &mut self.tenant_set,
            &mut self.pipelines,
            &running.tenant_set,
            &running.pipelines,
        );
        let mut problems = Problems::new(&self.path);
        self.validate(&mut problems);
        problems.finish()
    }

    /// Parses config text and applies the environment overrides; nothing
    /// is validated yet.
    fn parse(
        text: &str,
        path: &Path,
        base_dir: &Path,
        env: Option<EnvLookup<'_>>,
    ) -> Result<Self, ConfigError> {
        let overrides = |k: &str| env.and_then(|env| env(k));
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if let Some(v) = overrides("WEIR_KAFKA_BROKERS") {
            config.kafka.brokers = v;
        }
        if let Some(v) = overrides("WEIR_KAFKA_GROUP_ID") {
            config.kafka.group_id = v;
        }
        if let Some(v) = overrides("WEIR_KAFKA_INSTANCE_ID") {
            config.kafka.instance_id = Some(v);
        }
        if let Some(v) = overrides("WEIR_ELASTICSEARCH_URL") {
            config.elasticsearch.url = v;
        }
        if let Some(v) = overrides("WEIR_ADMIN_LISTEN") {
            config.admin.listen = v;
        }
        config.base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir.to_path_buf()
        };
        config.path = path.to_path_buf();
        Ok(config)
    }

    /// Whether `file` is a tenant file of this config's tenants folder.
    fn is_tenant_file(&self, file: &Path) -> bool {
        !self.tenants.dir.as_os_str().is_empty()
            && std::fs::canonicalize(self.resolve(&self.tenants.dir))
                .is_ok_and(|dir| file.parent() == Some(dir.as_path()))
    }

    /// The tenants folder, resolved against the config file's folder
    /// (`None` on a single-tenant host).
    pub fn tenants_dir(&self) -> Option<PathBuf> {
        (!self.tenants.dir.as_os_str().is_empty()).then(|| self.resolve(&self.tenants.dir))
    }

    /// Tenant `id` as its file `text` would define it in this host's
    /// tenants folder: every check a tenant file gets at load but the
    /// existence of its module files (they may not be written yet). A
    /// problem names the file `<tenants dir>/<id>.toml` and the key.
    pub fn tenant_from_text(&self, id: &str, text: &str) -> Result<Tenant, ConfigProblem> {
        self.tenant_pipelines_from_text(id, text).map(|(t, _)| t)
    }

    /// [`Config::tenant_from_text`] with the tenant's pipelines, named
    /// `<tenant>.<pipeline>`, module paths resolved into its folder.
    pub fn tenant_pipelines_from_text(
        &self,
        id: &str,
        text: &str,
    ) -> Result<(Tenant, BTreeMap<String, PipelineConfig>), ConfigProblem> {
        let dir = self.tenants_dir().unwrap_or_default();
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let file = dir.join(format!("{id}.toml"));
        let problem = |(key, reason): (String, String)| ConfigProblem {
            file: file.clone(),
            key,
            reason,
        };
        if !valid_tenant_id(id) {
            return Err(problem((
                String::new(),
                format!(
                    "`{id}` is not a tenant id: use 1-32 of a-z, 0-9 and '-', starting with a letter"
                ),
            )));
        }
        let env = |k: &str| std::env::var(k).ok();
        tenants::load_text(
            id,
            text,
            &file,
            &dir,
            &self.tenants.defaults,
            &self.tenants.env_prefix,
            self.runtime.max_memory_bytes,
            Some(&env),
        )
        .map_err(problem)
    }

    /// This config without its tenants and their pipelines: what a fleet
    /// host starts from before the control topic adds them.
    pub fn without_tenants(&self) -> Config {
        let mut c = self.clone();
        c.pipelines.retain(|_, p| p.tenant.is_none());
        c.tenant_set.clear();
        c
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_path(&self.base_dir, p)
    }

    /// Reads the tenants folder and adds the tenants' pipelines. A tenant
    /// file with problems is left out (and its problems reported). With
    /// `keep`, the tenants of the `kept` files take their running
    /// definition and pipelines instead, and their problems are not
    /// reported again. With `env`, a tenant's Elasticsearch credentials
    /// must be set in it.
    fn load_tenants(
        &mut self,
        env: Option<EnvLookup<'_>>,
        problems: &mut Problems,
        keep: Option<(&Config, &BTreeSet<PathBuf>)>,
    ) {
        if self.tenants.dir.as_os_str().is_empty() {
            return;
        }
        let dir = self.resolve(&self.tenants.dir);
        let dir = match std::fs::canonicalize(&dir) {
            Ok(dir) => dir,
            Err(e) => return problems.add("tenants.dir", format!("{}: {e}", dir.display())),
        };
        quotas::validate_quotas(
            &self.tenants.defaults,
            self.runtime.max_memory_bytes,
            "tenants.defaults.",
            problems,
        );
        let mut loaded = tenants::load_dir(
            &dir,
            &self.tenants,
            self.runtime.max_memory_bytes,
            env,
            problems,
        );
        if let Some((running, kept)) = keep {
            problems.list.retain(|p| !kept.contains(&p.file));
            loaded.keep_running(kept, &running.tenant_set, &running.pipelines);
        }
        for t in loaded.tenants.values() {
            let mut own = Problems::new(&t.file);
            for (name, u) in &t.upstreams {
                http::validate_upstream(name, u, &mut own);
            }
            problems.list.append(&mut own.list);
        }
        self.pipelines.extend(loaded.pipelines);
        self.tenant_set = loaded.tenants;
    }

    fn validate(&self, p: &mut Problems) {
        self.kafka.validate(p);
        self.runtime.validate(p);
        self.elasticsearch.validate("elasticsearch.", p);
        if let Some(Err(e)) = self.admin.address() {
            p.add("admin.listen", e);
        }
        self.admin.validate(p);
        self.control
            .validate(!self.tenants.dir.as_os_str().is_empty(), p);
        // Tenants reach the API over the network: operator endpoints (every
        // tenant's metrics and modules) may not be open to them.
        if let Some(Ok(addr)) = self.admin.address()
            && !addr.ip().is_loopback()
            && !self.tenant_set.is_empty()
            && self.admin.operator_token_sha256.is_none()
        {
            p.add(
                "admin.operator_token_sha256",
                format!(
                    "required when tenants are configured and admin.listen ({addr}) is not loopback: /metrics and /v1/modules show every tenant"
                ),
            );
        }
        if let Some(h) = &self.admin.operator_token_sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            p.add(
                "admin.operator_token_sha256",
                "must be 64 hex digits (`weir tenants token` prints one)",
            );
        }
        for (name, u) in &self.upstreams {
            http::validate_upstream(name, u, p);
        }
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        let mut dead_letter_topics = BTreeSet::new();
        for (name, pipeline) in &self.pipelines {
            // A tenant's pipeline is reported in the tenant's file.
            let file = pipeline
                .tenant
                .as_ref()
                .and_then(|b| self.tenant_set.get(&b.id))
                .map_or_else(|| self.path.clone(), |t| t.file.clone());
            let mut own = Problems::new(&file);
            pipeline.validate(name, self, &mut own);
            for t in &pipeline.topics {
                if let Some(other) = owner.insert(t, name) {
                    own.add(
                        format!("pipelines.{name}.topics"),
                        format!("topic `{t}` is already consumed by pipeline `{other}`"),
                    );
                }
            }
            dead_letter_topics.insert(pipeline.dead_letter_topic(name));
            p.list.append(&mut own.list);
        }
        for (name, pipeline) in &self.pipelines {
            let dlq = pipeline.dead_letter_topic(name);
            if owner.contains_key(dlq.as_str()) {
                p.add(
                    format!("pipelines.{name}.dead_letter_topic"),
                    format!("`{dlq}` is also consumed by a pipeline; dead letters would loop"),
                );
            }
        }
    }
}

/// `path` if absolute, else `base_dir/path` (paths in a config file are
/// relative to its folder).
pub fn resolve_path(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
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
