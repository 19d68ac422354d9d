//! Watches the module files, the config file and the tenants folder,
//! debounced, and applies what changed: a module file is reloaded (and
//! swapped if it loads); the config is re-read (and applied whole if valid)
//! when `weir.toml` or any `*.toml` in the tenants folder changes, so a
//! tenant is added or removed by adding or removing its file.
//!
//! Half-written files: a file still being copied fails to compile and is
//! rejected (the old version stays); the debounce lets most writes finish
//! first, and writing to a temporary name then renaming into place — the
//! convention documented for module authors — makes the swap atomic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ApplyError;
use super::Registry;
use crate::config::{Config, ConfigProblem};
use crate::source::kafka::SourceControl;
use crate::telemetry::Metrics;

/// The outcome of the latest config reload, for status.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConfigStatus {
    pub path: String,
    pub last_applied: Option<String>,
    pub last_error: Option<String>,
}

/// A request to re-read and apply the config now; answered with the
/// config status after the reload (a fleet host's follower asks this after
/// writing a tenant file from the control topic).
pub type ReloadRequest = tokio::sync::oneshot::Sender<ConfigStatus>;

pub struct Reloader {
    pub registry: Arc<Registry>,
    /// Watch the files (`reload.watch`); without it, only requests reload.
    pub watch: bool,
    /// Reloads asked for by the control plane.
    pub requests: Option<mpsc::UnboundedReceiver<ReloadRequest>>,
    pub config_path: PathBuf,
    pub debounce: Duration,
    pub source: mpsc::UnboundedSender<SourceControl>,
    pub metrics: Metrics,
    /// The running config; replaced only by a valid new one.
    pub config: Config,
    pub status: Arc<std::sync::Mutex<ConfigStatus>>,
}

fn canonical_dir(p: &Path) -> Option<PathBuf> {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).ok()
}

impl Reloader {
    /// Re-reads and applies the config at once; returns the config status.
    pub async fn reload_now(&mut self) -> ConfigStatus {
        self.reload_config().await;
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut requests = self.requests.take();
        if !self.watch {
            // Requests only: no file is watched.
            let Some(requests) = requests.as_mut() else {
                return Ok(());
            };
            loop {
                let reply = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    r = requests.recv() => match r { Some(r) => r, None => return Ok(()) },
                };
                let _ = reply.send(self.reload_now().await);
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher: RecommendedWatcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Only content and name changes: reading a file (as the reload
                // itself does) raises access events that must not loop back.
                if let Ok(event) = event
                    && matches!(
                        event.kind,
                        notify::EventKind::Create(_)
                            | notify::EventKind::Modify(_)
                            | notify::EventKind::Remove(_)
                    )
                    && !matches!(
                        event.kind,
                        notify::EventKind::Modify(notify::event::ModifyKind::Metadata(_))
                    )
                {
                    for p in event.paths {
                        let _ = tx.send(p);
                    }
                }
            })?;
        let config_file = canonical_dir(&self.config_path)
            .and_then(|d| self.config_path.file_name().map(|n| d.join(n)))
            .unwrap_or_else(|| self.config_path.clone());
        let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
        self.watch_dirs(&mut watcher, &mut watched, &config_file)
            .await;
        tracing::info!(
            dirs = watched.len(),
            "watching modules and config for changes"
        );

        loop {
            let asked = async {
                match requests.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = asked => {
                    match r {
                        Some(reply) => {
                            let status = self.reload_now().await;
                            self.watch_dirs(&mut watcher, &mut watched, &config_file).await;
                            let _ = reply.send(status);
                        }
                        None => requests = None,
                    }
                    continue;
                }
                p = rx.recv() => match p { Some(p) => p, None => return Ok(()) },
            };
            // Debounce: collect until quiet for `debounce`.
            let mut changed = BTreeSet::from([first]);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    p = tokio::time::timeout(self.debounce, rx.recv()) => match p {
                        Ok(Some(p)) => { changed.insert(p); }
                        Ok(None) | Err(_) => break,
                    },
                }
            }
            let tenants_dir = self.tenants_dir();
            let tenant_file_changed = |p: &PathBuf| {
                tenants_dir
                    .as_deref()
                    .is_some_and(|d| p.parent() == Some(d))
                    && p.extension().is_some_and(|x| x == "toml")
            };
            if changed.contains(&config_file) || changed.iter().any(tenant_file_changed) {
                self.reload_config().await;
                self.watch_dirs(&mut watcher, &mut watched, &config_file)
                    .await;
            }
            let files = self.registry.watched_files();
            for path in changed.iter().filter(|p| files.contains(p)) {
                self.registry.reload_file(path).await;
            }
        }
    }

    async fn watch_dirs(
        &self,
        watcher: &mut RecommendedWatcher,
        watched: &mut BTreeSet<PathBuf>,
        config_file: &Path,
    ) {
        let mut dirs: BTreeSet<PathBuf> = self
            .registry
            .watched_files()
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        if let Some(d) = config_file.parent() {
            dirs.insert(d.to_path_buf());
        }
        if let Some(d) = self.tenants_dir() {
            dirs.insert(d);
        }
        for d in dirs {
            if watched.contains(&d) {
                continue;
            }
            match watcher.watch(&d, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(d);
                }
                Err(e) => {
                    tracing::warn!(dir = %d.display(), error = %e, "cannot watch folder; changes there need a restart")
                }
            }
        }
    }

    /// The running config's tenants folder (canonical), if it has one.
    fn tenants_dir(&self) -> Option<PathBuf> {
        if self.config.tenants.dir.as_os_str().is_empty() {
            return None;
        }
        std::fs::canonicalize(self.config.resolve(&self.config.tenants.dir)).ok()
    }

    /// Re-reads and applies the config. A tenant file with a problem
    /// refuses only that tenant's change (it keeps running as it was); the
    /// rest applies, and the refused file and key are logged, counted
    /// (`result="tenant_rejected"`) and shown in the config status.
    async fn reload_config(&mut self) {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let result = match Config::reload(&self.config_path, &self.config) {
            Err(e) => Err(e.to_string()),
            Ok((new, refused)) => {
                warn_on_restart_only_changes(&self.config, &new);
                self.apply(new, refused).await
            }
        };
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(refused) if refused.is_empty() => {
                tracing::info!(path = %self.config_path.display(), "config reloaded");
                self.metrics.config_reload("ok");
                status.last_applied = Some(now);
                status.last_error = None;
            }
            Ok(refused) => {
                for p in &refused {
                    tracing::error!(file = %p.file.display(), key = %p.key, reason = %p.reason, "tenant file rejected; that tenant keeps its running config");
                }
                tracing::info!(path = %self.config_path.display(), "config reloaded except the rejected tenant files");
                self.metrics.config_reload("tenant_rejected");
                let lines: Vec<String> = refused.iter().map(ToString::to_string).collect();
                status.last_applied = Some(now.clone());
                status.last_error = Some(format!(
                    "{now}: tenant files rejected (those tenants keep their running config): {}",
                    lines.join("; ")
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, "config rejected; the running config stays");
                self.metrics.config_reload("rejected");
                status.last_error = Some(format!("{now}: {e}"));
            }
        }
    }
}

impl Reloader {
    /// Applies `new`. A tenant whose modules fail to load keeps its running
    /// pipelines (its problem joins `refused`) and the rest is applied
    /// again without its change; any other failure refuses the reload.
    async fn apply(
        &mut self,
        mut new: Config,
        mut refused: Vec<ConfigProblem>,
    ) -> Result<Vec<ConfigProblem>, String> {
        let mut reverted = BTreeSet::new();
        loop {
            match self.registry.apply_config(&new).await {
                Ok(topics_changed) => {
                    if topics_changed {
                        let _ = self.source.send(SourceControl::Resubscribe);
                    }
                    self.config = new;
                    return Ok(refused);
                }
                Err(ApplyError::Pipeline {
                    pipeline,
                    tenant: Some(id),
                    message,
                }) if reverted.insert(id.clone()) => {
                    let Some(file) = new.tenant_set.get(&id).map(|t| t.file.clone()) else {
                        return Err(format!("pipeline {pipeline}: {message}"));
                    };
                    let short = pipeline
                        .strip_prefix(&format!("{id}."))
                        .unwrap_or(&pipeline);
                    refused.push(ConfigProblem {
                        file,
                        key: format!("pipelines.{short}.modules"),
                        reason: message,
                    });
                    new.keep_running_tenant(&id, &self.config)
                        .map_err(|e| e.to_string())?;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Sections that only take effect at startup.
fn warn_on_restart_only_changes(old: &Config, new: &Config) {
    let differs = |a: &dyn erased::Ser, b: &dyn erased::Ser| a.value() != b.value();
    for (name, a, b) in [
        (
            "kafka",
            &old.kafka as &dyn erased::Ser,
            &new.kafka as &dyn erased::Ser,
        ),
        ("elasticsearch", &old.elasticsearch, &new.elasticsearch),
        ("runtime", &old.runtime, &new.runtime),
        ("admin", &old.admin, &new.admin),
        ("reload", &old.reload, &new.reload),
        ("control", &old.control, &new.control),
        ("upstreams", &old.upstreams, &new.upstreams),
    ] {
        if differs(a, b) {
            tracing::warn!(
                section = name,
                "changes to this section take effect at the next restart"
            );
        }
    }
}

/// Compares config sections by their serialized form.
mod erased {
    pub trait Ser {
        fn value(&self) -> Option<toml::Value>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> Option<toml::Value> {
            toml::Value::try_from(self).ok()
        }
    }
}
