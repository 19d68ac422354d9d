//! One sink per Elasticsearch credential: the host's, and one for each
//! tenant whose file names its own (`[elasticsearch] auth` in the tenant
//! file), so Elasticsearch itself holds every tenant to the indices its
//! credential may write.
//!
//! ```text
//! dispatch ─ send_for(tenant) ─▶ no credential of its own ─▶ host sink (host's auth)
//!                             └▶ (tenant, auth)          ─▶ that tenant's sink
//! ```
//!
//! A tenant's sink is the host's in everything but `auth`: same cluster,
//! TLS, batching, retries and metrics. It is started by the first document
//! that needs it (without the startup `GET /`, which a key scoped to a
//! prefix may not be allowed; its first bulk request tells), and each has
//! its own queue, request slots and health, so one tenant's rejected
//! credential or slow retries back up that tenant only.
//!
//! Hot reload: a changed credential rebuilds the tenant's [`TenantShare`]
//! and pipelines; their documents then key a new sink. Documents already
//! handed to the old one are sent with the old credential. A sink whose
//! every share is gone (no pipeline or batch can send to it any more) is
//! retired: its input closes, it settles what it holds, and the task ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use prometheus_client::registry::Registry;

use super::metrics::SinkMetrics;
use super::service::{client_with, refused};
use super::{Control, ElasticsearchSink, ShutdownReport, SinkError, SinkHandle, SinkHealth};
use crate::config::{ElasticsearchAuth, ElasticsearchConfig};
use crate::event::IndexRequest;
use crate::pipeline::{DeadLetterQueue, DocumentSink, TenantShare};

/// How often sinks no share can reach any more are looked for.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// Where secrets are read: the process environment in production.
pub type SecretSource = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The host's sink and the tenants' own. Cheap to clone.
#[derive(Clone)]
pub struct TenantSinks {
    host: SinkHandle,
    shared: Arc<Shared>,
}

struct Shared {
    /// The host's settings; a tenant's sink replaces only `auth`.
    config: ElasticsearchConfig,
    base_dir: PathBuf,
    metrics: SinkMetrics,
    env: SecretSource,
    state: RwLock<State>,
}

struct State {
    /// Where tenant sinks dead-letter; taken by shutdown (no sink starts
    /// after it), so the dead-letter writer sees its queue close.
    dlq: Option<DeadLetterQueue>,
    /// By tenant id: one entry per credential its shares name.
    tenants: HashMap<String, Vec<Credentialed>>,
    /// Sinks no share reaches, settling what they hold.
    retired: Vec<Arc<Mutex<Option<Control>>>>,
}

/// A tenant's sink, and the shares (running tenant configurations) that
/// send to it.
struct Credentialed {
    auth: ElasticsearchAuth,
    sink: Arc<SinkHandle>,
    users: Vec<Weak<TenantShare>>,
}

impl Credentialed {
    /// Whether `share` is known to send here.
    fn serves(&self, share: &Arc<TenantShare>) -> bool {
        self.users
            .iter()
            .any(|u| Weak::as_ptr(u) == Arc::as_ptr(share))
    }
}

/// Where a tenant's document goes.
enum Route {
    Sink(Arc<SinkHandle>),
    /// The tenant's sink cannot start (its secret is gone): dead-letter.
    Refused(String, DeadLetterQueue),
    /// Shut down: the document stays unacknowledged (redelivered).
    Closed,
}

impl TenantSinks {
    /// Starts the host's sink ([`ElasticsearchSink::start`]: validation,
    /// reachability, templates) and registers the `weir_es_*` metrics every
    /// tenant's sink shares. Secrets are read from the process environment.
    pub async fn start(
        config: &ElasticsearchConfig,
        base_dir: &Path,
        dlq: DeadLetterQueue,
        registry: &mut Registry,
    ) -> Result<Self, SinkError> {
        let env: SecretSource = Box::new(|k| std::env::var(k).ok());
        Self::start_with(config, base_dir, dlq, SinkMetrics::register(registry), env).await
    }

    /// [`TenantSinks::start`] with the metrics and the secret source given.
    pub(super) async fn start_with(
        config: &ElasticsearchConfig,
        base_dir: &Path,
        dlq: DeadLetterQueue,
        metrics: SinkMetrics,
        env: SecretSource,
    ) -> Result<Self, SinkError> {
        let host =
            ElasticsearchSink::start_with(config, base_dir, dlq.clone(), metrics.clone(), &*env)
                .await?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            base_dir: base_dir.to_path_buf(),
            metrics,
            env,
            state: RwLock::new(State {
                dlq: Some(dlq),
                tenants: HashMap::new(),
                retired: Vec::new(),
            }),
        });
        tokio::spawn(reap(Arc::downgrade(&shared)));
        Ok(Self { host, shared })
    }

    /// The host's sink (its health is the host's `/healthz`).
    pub fn host(&self) -> &SinkHandle {
        &self.host
    }

    pub fn health(&self) -> SinkHealth {
        self.host.health()
    }

    /// Stops every sink: each flushes what it holds within `deadline`;
    /// documents not indexed or dead-lettered by then stay unacknowledged.
    pub async fn shutdown(self, deadline: Duration) -> Result<ShutdownReport, SinkError> {
        let controls: Vec<_> = {
            let mut state = self.shared.write();
            state.dlq = None;
            let tenants = std::mem::take(&mut state.tenants);
            let mut controls = std::mem::take(&mut state.retired);
            controls.extend(
                tenants
                    .into_values()
                    .flatten()
                    .map(|c| Arc::clone(&c.sink.control)),
            );
            controls
        };
        let tenants = futures::future::join_all(
            controls
                .iter()
                .map(|control| super::stop(control, deadline)),
        );
        let (host, tenants) = futures::join!(self.host.shutdown(deadline), tenants);
        let mut report = host?;
        for r in tenants {
            match r {
                Ok(r) => report.unacknowledged += r.unacknowledged,
                // Already stopped.
                Err(SinkError::Closed) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// The sink for `share`'s documents (`auth` is its credential).
    fn route(&self, share: &Arc<TenantShare>, auth: &ElasticsearchAuth) -> Route {
        {
            let state = self.shared.read();
            if state.dlq.is_none() {
                return Route::Closed;
            }
            let known = state
                .tenants
                .get(&share.id)
                .and_then(|entries| entries.iter().find(|c| c.auth == *auth && c.serves(share)));
            if let Some(c) = known {
                return Route::Sink(Arc::clone(&c.sink));
            }
        }
        let mut state = self.shared.write();
        let Some(dlq) = state.dlq.clone() else {
            return Route::Closed;
        };
        prune(&mut state);
        let entries = state.tenants.entry(share.id.clone()).or_default();
        if let Some(c) = entries.iter_mut().find(|c| c.auth == *auth) {
            if !c.serves(share) {
                c.users.push(Arc::downgrade(share));
            }
            return Route::Sink(Arc::clone(&c.sink));
        }
        match self.shared.start_tenant(&share.id, auth, dlq.clone()) {
            Ok(sink) => {
                let sink = Arc::new(sink);
                entries.push(Credentialed {
                    auth: auth.clone(),
                    sink: Arc::clone(&sink),
                    users: vec![Arc::downgrade(share)],
                });
                Route::Sink(sink)
            }
            Err(e) => Route::Refused(
                format!(
                    "tenant {}: its Elasticsearch credentials cannot be used: {e}",
                    share.id
                ),
                dlq,
            ),
        }
    }

    /// Tenants' sinks running: `(sending, retired and still settling)`.
    #[cfg(test)]
    pub(super) fn tenant_sinks(&self) -> (usize, usize) {
        let mut state = self.shared.write();
        prune(&mut state);
        (
            state.tenants.values().map(Vec::len).sum(),
            state.retired.len(),
        )
    }
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A sink with the host's settings and `auth`, its logs naming the tenant.
    fn start_tenant(
        &self,
        tenant: &str,
        auth: &ElasticsearchAuth,
        dlq: DeadLetterQueue,
    ) -> Result<SinkHandle, SinkError> {
        let credentials = auth.credentials(&*self.env).map_err(SinkError::Secret)?;
        let client = client_with(&self.config, &self.base_dir, credentials)?;
        let span = tracing::info_span!("elasticsearch", tenant = %tenant);
        tracing::info!(
            tenant,
            "elasticsearch sink started with the tenant's credentials"
        );
        Ok(ElasticsearchSink::spawn(
            &self.config,
            client,
            dlq,
            self.metrics.clone(),
            span,
        ))
    }
}

/// Retires sinks no live share reaches, and forgets retired ones that
/// finished.
fn prune(state: &mut State) {
    let mut retiring = Vec::new();
    for entries in state.tenants.values_mut() {
        entries.retain_mut(|c| {
            c.users.retain(|u| u.strong_count() > 0);
            if c.users.is_empty() {
                retiring.push(Arc::clone(&c.sink.control));
            }
            !c.users.is_empty()
        });
    }
    state.tenants.retain(|_, entries| !entries.is_empty());
    state.retired.extend(retiring);
    state.retired.retain(|control| {
        control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(_, join)| !join.is_finished())
    });
}

/// Prunes every [`REAP_EVERY`] until the sinks are dropped or shut down.
async fn reap(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut state = shared.write();
        if state.dlq.is_none() {
            return;
        }
        prune(&mut state);
    }
}

impl DocumentSink for TenantSinks {
    async fn send(&self, request: IndexRequest) {
        self.host.send(request).await;
    }

    async fn send_for(&self, tenant: Option<&Arc<TenantShare>>, request: IndexRequest) {
        let Some((share, auth)) =
            tenant.and_then(|t| t.binding().elasticsearch.as_ref().map(|auth| (t, auth)))
        else {
            return self.host.send(request).await;
        };
        match self.route(share, auth) {
            Route::Sink(sink) => sink.send(request).await,
            Route::Refused(reason, dlq) => {
                tracing::error!(tenant = %share.id, %reason, "document dead-lettered");
                dlq.send(refused(request, reason)).await;
            }
            Route::Closed => {
                tracing::warn!(tenant = %share.id, "sinks shut down; document left unacknowledged");
            }
        }
    }
}
