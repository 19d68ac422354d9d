//! Host-provided outbound HTTP for modules (`wasi:http/outgoing-handler`),
//! policed in one place and fail-closed.
//!
//! - [`policy`]: every yes/no decision (allowlist patterns, address rules);
//! - [`hooks`]: the `wasi:http` hook each request passes through, and its
//!   flow (admit → slot → body → credential → send → read);
//! - [`client`]: the pooled client whose connector resolves once, checks,
//!   and connects to the checked address;
//! - [`upstreams`]: credentials the host adds for `[upstreams.NAME]`;
//! - [`metrics`]: requests by pipeline/pattern/outcome and latency.
//!
//! One [`HttpPolicy`] per pipeline (its rules, limits, connection pool and
//! concurrency slots) is shared by all of the pipeline's module instances;
//! [`OutboundHttp`] holds what pipelines share (upstream credentials and
//! their token caches, metrics). A module that does not import `wasi:http`
//! is unaffected; one that does, in a pipeline with an empty allowlist,
//! gets `HttpRequestDenied` for every request.

pub mod client;
pub mod hooks;
pub mod metrics;
pub mod policy;
pub mod upstreams;

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

pub use client::{HttpClient, Resolve, StaticResolver, SystemResolver};
pub use hooks::ModuleHttp;
pub use metrics::{HttpMetrics, Outcome};
pub use policy::{Denial, OutboundRules};
pub use upstreams::Upstreams;

use super::rate::RateLimiter;
use crate::config::{Config, HttpConfig, PatternError, PipelineConfig};

/// A pipeline's outbound HTTP: rules, limits, pool, concurrency slots.
pub struct HttpPolicy {
    pub(crate) pipeline: String,
    pub(crate) rules: Arc<OutboundRules>,
    pub(crate) config: HttpConfig,
    /// `None` when nothing is allowed: no pool to keep.
    pub(crate) client: Option<HttpClient>,
    pub(crate) permits: Arc<Semaphore>,
    /// A tenant's requests/s quota, shared by its pipelines.
    pub(crate) rate: Option<Arc<RateLimiter>>,
    pub(crate) upstreams: Arc<Upstreams>,
    pub(crate) metrics: HttpMetrics,
}

impl std::fmt::Debug for HttpPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPolicy")
            .field("pipeline", &self.pipeline)
            .field(
                "allowed",
                &self
                    .rules
                    .patterns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("allow_private", &self.rules.allow_private)
            .finish()
    }
}

/// A pattern that did not parse, with its position in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed_outbound_hosts[{index}]: {error}")]
pub struct PolicyError {
    pub index: usize,
    pub error: PatternError,
}

impl HttpPolicy {
    /// No outbound HTTP at all.
    pub fn deny_all(pipeline: &str) -> Arc<Self> {
        Self::builder(pipeline)
            .build()
            .expect("an empty allowlist always builds")
    }

    /// Starts a policy for `pipeline`: nothing allowed, default limits, no
    /// upstreams, detached metrics, the system resolver.
    pub fn builder(pipeline: &str) -> HttpPolicyBuilder {
        HttpPolicyBuilder {
            pipeline: pipeline.to_string(),
            allowed: Vec::new(),
            config: HttpConfig::default(),
            upstreams: Upstreams::none(),
            metrics: HttpMetrics::detached(),
            resolver: Arc::new(SystemResolver),
            shared_permits: None,
            rate: None,
        }
    }

    /// The allowlist patterns, as configured.
    pub fn allowed(&self) -> Vec<String> {
        self.rules
            .patterns
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The limits in force.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    pub fn metrics(&self) -> &HttpMetrics {
        &self.metrics
    }
}

/// Builds an [`HttpPolicy`].
pub struct HttpPolicyBuilder {
    pipeline: String,
    allowed: Vec<String>,
    config: HttpConfig,
    upstreams: Arc<Upstreams>,
    metrics: HttpMetrics,
    resolver: Arc<dyn Resolve>,
    shared_permits: Option<Arc<Semaphore>>,
    rate: Option<Arc<RateLimiter>>,
}

impl HttpPolicyBuilder {
    /// A tenant's quotas: concurrency slots shared by all its pipelines
    /// (instead of the pipeline's own) and a requests/s limit.
    pub fn tenant_quota(mut self, permits: Arc<Semaphore>, rate: Option<Arc<RateLimiter>>) -> Self {
        self.shared_permits = Some(permits);
        self.rate = rate;
        self
    }

    /// `allowed_outbound_hosts` patterns.
    pub fn allow<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.allowed.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Limits (`[pipelines.NAME.http]`).
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    pub fn upstreams(mut self, upstreams: Arc<Upstreams>) -> Self {
        self.upstreams = upstreams;
        self
    }

    pub fn metrics(mut self, metrics: HttpMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Name resolution for the connector (tests inject a fixed table).
    pub fn resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    pub fn build(self) -> Result<Arc<HttpPolicy>, PolicyError> {
        let rules = Arc::new(
            OutboundRules::parse(&self.allowed, self.config.allow_private)
                .map_err(|(index, error)| PolicyError { index, error })?,
        );
        let client = (!rules.patterns.is_empty()).then(|| {
            HttpClient::new(
                client::Gate::Rules(Arc::clone(&rules)),
                self.resolver,
                client::ClientOptions {
                    connect_timeout: self.config.connect_timeout,
                    pool_idle_timeout: self.config.pool_idle_timeout,
                    pool_max_idle_per_host: self.config.pool_max_idle_per_host,
                },
            )
        });
        Ok(Arc::new(HttpPolicy {
            pipeline: self.pipeline,
            permits: self
                .shared_permits
                .unwrap_or_else(|| Arc::new(Semaphore::new(self.config.max_concurrency.max(1)))),
            rate: self.rate,
            rules,
            config: self.config,
            client,
            upstreams: self.upstreams,
            metrics: self.metrics,
        }))
    }
}

/// One tenant's outbound HTTP, shared by all its pipelines: concurrency
/// slots, a requests/s bucket, and its own upstream credentials (never
/// another tenant's, never the host's).
#[derive(Debug)]
pub struct HttpQuota {
    pub permits: Arc<Semaphore>,
    pub rate: Option<Arc<RateLimiter>>,
    pub upstreams: Arc<Upstreams>,
}

/// What every pipeline's HTTP shares: upstream credentials (one token
/// cache each) and the metrics. One per host process.
pub struct OutboundHttp {
    upstreams: Arc<Upstreams>,
    metrics: HttpMetrics,
}

impl OutboundHttp {
    /// Reads upstream secrets from the environment and registers the
    /// metrics. An upstream whose variables are not set is logged; its
    /// requests will be denied.
    pub fn new(config: &Config, registry: &mut Registry) -> anyhow::Result<Self> {
        let upstreams = Upstreams::from_config(&config.upstreams, &|k| std::env::var(k).ok())?;
        for u in upstreams.iter() {
            if let Some(problem) = u.problem() {
                tracing::warn!(upstream = %u.name, %problem, "upstream has no credential; module requests to it will be denied");
            }
        }
        Ok(Self {
            upstreams: Arc::new(upstreams),
            metrics: HttpMetrics::register(registry),
        })
    }

    /// The policy of one pipeline.
    pub fn policy_for(
        &self,
        name: &str,
        pipeline: &PipelineConfig,
    ) -> anyhow::Result<Arc<HttpPolicy>> {
        HttpPolicy::builder(name)
            .allow(pipeline.allowed_outbound_hosts.iter().cloned())
            .config(pipeline.http.clone())
            .upstreams(Arc::clone(&self.upstreams))
            .metrics(self.metrics.clone())
            .build()
            .map_err(|e| anyhow::anyhow!("pipelines.{name}.{e}"))
    }

    /// A tenant pipeline's policy: its allowlist and limits, the tenant's
    /// shared concurrency slots and requests/s quota, and the tenant's
    /// upstream credentials only.
    pub fn tenant_policy_for(
        &self,
        name: &str,
        pipeline: &PipelineConfig,
        quota: &HttpQuota,
    ) -> anyhow::Result<Arc<HttpPolicy>> {
        HttpPolicy::builder(name)
            .allow(pipeline.allowed_outbound_hosts.iter().cloned())
            .config(pipeline.http.clone())
            .upstreams(Arc::clone(&quota.upstreams))
            .tenant_quota(Arc::clone(&quota.permits), quota.rate.clone())
            .metrics(self.metrics.clone())
            .build()
            .map_err(|e| anyhow::anyhow!("pipelines.{name}.{e}"))
    }

    pub fn upstreams(&self) -> &Arc<Upstreams> {
        &self.upstreams
    }
}
