//! `GET /v1/status`: the JSON the status page polls.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::indices::{IndexSide, Target};
use super::metrics::{self, Counts, History, round2};
use super::{RATE_WINDOW, StatusPage};
use crate::admin::{AdminState, ComponentHealth};
use crate::modules::{ConfigStatus, LoadError};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub generated_at: String,
    /// The host's version.
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// Every component healthy (as `/healthz`).
    pub healthy: bool,
    pub health: Vec<ComponentHealth>,
    /// The window of `records_per_second`.
    pub rate_window_seconds: u64,
    pub pipelines: Vec<PipelineSummary>,
    /// Per-second rates, oldest first, for the chart.
    pub throughput: History,
    pub modules: Vec<ModuleRow>,
    /// Absent when the host has no status page state (no index queries).
    pub indices: Option<IndexSide>,
    pub config: ConfigStatus,
    /// The fleet's control topic, on a host that follows one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<crate::fleet::ControlPlaneStatus>,
    /// Load errors, sink health, dead letters, index query problems.
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Serialize)]
pub struct PipelineSummary {
    pub name: String,
    pub topics: Vec<String>,
    pub index: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub records_consumed: u64,
    pub documents_indexed: u64,
    pub dead_letters: u64,
    pub dead_letters_by_stage: BTreeMap<String, u64>,
    /// Over the last `rate_window_seconds`; absent until two samples exist.
    pub records_per_second: Option<f64>,
    pub indexed_per_second: Option<f64>,
    /// `name@version#digest` of each module, in chain order.
    pub modules: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ModuleRow {
    pub pipeline: String,
    pub module: String,
    /// Name and version the component declares.
    pub declared: String,
    pub digest: String,
    pub loaded_at: String,
    pub path: String,
    /// Versions kept for rollback (the active one included).
    pub kept_versions: usize,
    pub last_error: Option<LoadError>,
}

#[derive(Debug, Serialize)]
pub struct ErrorItem {
    /// `error` or `warning`.
    pub severity: &'static str,
    /// What it concerns: `elasticsearch`, `module tweets/detect-hate`, ...
    pub source: String,
    pub message: String,
    pub at: Option<String>,
}

impl ErrorItem {
    fn new(
        severity: &'static str,
        source: impl Into<String>,
        message: impl Into<String>,
        at: Option<String>,
    ) -> Self {
        Self {
            severity,
            source: source.into(),
            message: message.into(),
            at,
        }
    }
}

/// A pipeline as the live routing table has it.
struct Live {
    topics: Vec<String>,
    index: String,
    dead_letter_topic: String,
    modules: Vec<String>,
}

fn live_pipelines(state: &AdminState) -> BTreeMap<String, Live> {
    let mut out: BTreeMap<String, Live> = BTreeMap::new();
    let Some(registry) = &state.modules else {
        return out;
    };
    let routes = registry.routes().load_full();
    for (topic, p) in routes.iter() {
        let live = out.entry(p.name.to_string()).or_insert_with(|| Live {
            topics: Vec::new(),
            index: p.index.to_string(),
            dead_letter_topic: p.dead_letter_topic.to_string(),
            modules: p
                .chain
                .load()
                .modules
                .iter()
                .map(|m| crate::pipeline::version_label(m))
                .collect(),
        });
        live.topics.push(topic.clone());
    }
    for l in out.values_mut() {
        l.topics.sort();
    }
    out
}

/// The indices to query: each pipeline's, once.
pub fn targets(state: &AdminState) -> Vec<Target> {
    let mut by_index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, live) in live_pipelines(state) {
        by_index.entry(live.index).or_default().push(name);
    }
    by_index
        .into_iter()
        .map(|(index, pipelines)| Target { index, pipelines })
        .collect()
}

fn count(x: f64) -> u64 {
    x.max(0.0).round() as u64
}

/// Builds the summary: counters read now, rates from the sampler, the
/// index side from the (briefly cached) index queries.
pub async fn build(state: &AdminState, page: Option<&StatusPage>) -> Summary {
    let counts: Counts = metrics::read(&state.registry);
    let live = live_pipelines(state);
    let rates = page.map(|p| p.ring.rates(RATE_WINDOW)).unwrap_or_default();
    let indices = match page {
        Some(p) => Some(IndexSide::clone(&*p.indices.get(targets(state)).await)),
        None => None,
    };
    let health = (state.health)();
    let mut errors = Vec::new();
    for c in health.iter().filter(|c| !c.healthy) {
        errors.push(ErrorItem::new(
            "error",
            c.name.clone(),
            c.detail.clone().unwrap_or_else(|| "unhealthy".into()),
            None,
        ));
    }

    let names: std::collections::BTreeSet<&String> = live.keys().chain(counts.keys()).collect();
    let mut pipelines = Vec::new();
    for name in names {
        let c = counts.get(name).cloned().unwrap_or_default();
        let l = live.get(name);
        let r = rates.get(name);
        let dead = count(c.dead_letter_total());
        if dead > 0 {
            let stages: Vec<String> = c
                .dead_letters
                .iter()
                .filter(|(_, n)| **n > 0.0)
                .map(|(s, n)| format!("{s} {}", count(*n)))
                .collect();
            let reasons = l
                .map(|l| format!("; the reasons are in topic {}", l.dead_letter_topic))
                .unwrap_or_default();
            errors.push(ErrorItem::new(
                "warning",
                format!("pipeline {name}"),
                format!(
                    "{dead} record(s) dead-lettered ({}){reasons}",
                    stages.join(", ")
                ),
                None,
            ));
        }
        pipelines.push(PipelineSummary {
            name: name.clone(),
            topics: l.map(|l| l.topics.clone()).unwrap_or_default(),
            index: l.map(|l| l.index.clone()),
            dead_letter_topic: l.map(|l| l.dead_letter_topic.clone()),
            records_consumed: count(c.consumed),
            documents_indexed: count(c.indexed),
            dead_letters: dead,
            dead_letters_by_stage: c
                .dead_letters
                .iter()
                .map(|(s, n)| (s.clone(), count(*n)))
                .collect(),
            records_per_second: r.map(|r| round2(r.consumed)),
            indexed_per_second: r.map(|r| round2(r.indexed)),
            modules: l.map(|l| l.modules.clone()).unwrap_or_default(),
        });
    }

    let mut modules = Vec::new();
    if let Some(registry) = &state.modules {
        for m in registry.status() {
            if let Some(e) = &m.last_error {
                errors.push(ErrorItem::new(
                    "error",
                    format!("module {}/{}", m.pipeline, m.module),
                    format!("load rejected, running version kept: {}", e.message),
                    Some(e.at.clone()),
                ));
            }
            modules.push(ModuleRow {
                declared: format!("{}@{}", m.active.declared_name, m.active.declared_version),
                digest: m.active.digest.chars().take(12).collect(),
                loaded_at: m.active.loaded_at.clone(),
                kept_versions: m.versions.len(),
                pipeline: m.pipeline,
                module: m.module,
                path: m.path,
                last_error: m.last_error,
            });
        }
    }

    let config = state
        .config_status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(e) = &config.last_error {
        errors.push(ErrorItem::new("error", "config reload", e.clone(), None));
    }
    if let Some(side) = &indices {
        for e in &side.errors {
            errors.push(ErrorItem::new(
                "warning",
                "index queries",
                e.clone(),
                side.fetched_at.clone(),
            ));
        }
    }

    Summary {
        generated_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: page.map(|p| p.started.elapsed().as_secs()).unwrap_or(0),
        healthy: health.iter().all(|c| c.healthy),
        health,
        rate_window_seconds: RATE_WINDOW.as_secs(),
        pipelines,
        throughput: page.map(|p| p.ring.history()).unwrap_or_default(),
        modules,
        indices,
        config,
        control: state.fleet.as_ref().map(|f| f.status()),
        errors,
    }
}
