//! Every field Weir adds to a document (the shipped modules' outputs and
//! the host's provenance field) is mapped explicitly by the shipped index
//! templates: none is left to dynamic mapping.
//!
//! The field list is not written down here: the shipped configs'
//! pipelines (config/weir.toml, deploy/weir.compose.toml) run their real
//! modules (dist/modules, `cargo xtask modules`) through the host's own
//! chain, with the real classifier service on loopback, over the shipped
//! samples; whatever the output has beyond the input must be mapped.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use common::mapping::{Template, templates};
use common::{read, read_jsonl, repo_path};

use weir::config::{Config, RuntimeConfig};
use weir::event::SourceRecord;
use weir::pipeline::{Chain, run_chain};
use weir::runtime::{HttpPolicy, WasmRuntime};
use weir::telemetry::PipelineMetrics;

/// Sample records per topic run through each pipeline.
const SAMPLE: usize = 60;

/// Serves the classifier service on a loopback port; its origin.
async fn classifier() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = weir_classifier::router(weir_classifier::AppState::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Dotted paths of every object member, array elements' members under the
/// array's path.
fn paths(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if !v.is_null() {
                    out.insert(path.clone());
                }
                paths(&path, v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| paths(prefix, i, out)),
        _ => {}
    }
}

fn module_path(stem: &str) -> std::path::PathBuf {
    let path = repo_path(&format!("dist/modules/{stem}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask modules`",
        path.display()
    );
    path
}

/// The fields each pipeline of `config` adds to the samples of its topic,
/// by index, with one example document each.
async fn added_fields(config: &Config, origin: &str) -> BTreeMap<String, BTreeSet<String>> {
    let runtime = Arc::new(WasmRuntime::new(&RuntimeConfig::default()).unwrap());
    let mut added: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, pipeline) in &config.pipelines {
        // The classifier modules call the service; it runs on loopback here
        // instead of at the configured origin.
        let http = HttpPolicy::builder(name)
            .allow([origin.to_owned()])
            .config(weir::config::HttpConfig {
                allow_private: true,
                ..pipeline.http.clone()
            })
            .build()
            .unwrap_or_else(|e| panic!("pipelines.{name}: {}", e.error));
        let mut modules = Vec::new();
        for m in &pipeline.modules {
            let stem = m.path.file_stem().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(module_path(&stem)).unwrap();
            let mut settings = m.settings();
            for (k, v) in &mut settings {
                if k == "url"
                    && pipeline
                        .allowed_outbound_hosts
                        .iter()
                        .any(|h| v.starts_with(h))
                {
                    *v = origin.to_owned();
                }
            }
            let loaded = runtime
                .load(name, &m.name(), bytes, settings, Arc::clone(&http))
                .await
                .unwrap_or_else(|e| panic!("pipelines.{name}: {stem}: {e}"));
            modules.push(Arc::new(loaded));
        }
        let chain = Chain::new(modules, pipeline.provenance_field.as_deref());
        for topic in &pipeline.topics {
            let file = format!("samples/{topic}.jsonl");
            let lines: Vec<String> = read(&file)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(SAMPLE)
                .map(str::to_owned)
                .collect();
            assert!(!lines.is_empty(), "{file} has no records");
            let topic_name: Arc<str> = Arc::from(topic.as_str());
            let records: Vec<Arc<SourceRecord>> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    Arc::new(SourceRecord {
                        topic: Arc::clone(&topic_name),
                        partition: 0,
                        offset: i as i64,
                        timestamp_ms: None,
                        key: None,
                        headers: Vec::new(),
                        value: Bytes::from(l.clone()),
                    })
                })
                .collect();
            let out = run_chain(&runtime, &chain, &records, &PipelineMetrics::detached(name)).await;
            assert!(
                out.failures.is_empty(),
                "pipelines.{name}: samples failed: {:?}",
                out.failures
                    .iter()
                    .map(|f| format!("{:?}: {}", f.module, f.reason))
                    .collect::<Vec<_>>()
            );
            assert_eq!(out.docs.len(), records.len(), "pipelines.{name}");
            let inputs = read_jsonl(&file);
            for doc in &out.docs {
                let body: Value = serde_json::from_slice(&doc.body).unwrap();
                let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
                paths("", &inputs[doc.source], &mut before);
                paths("", &body, &mut after);
                let index = doc.index.clone().unwrap_or_else(|| pipeline.index.clone());
                added
                    .entry(index)
                    .or_default()
                    .extend(after.difference(&before).cloned());
            }
        }
    }
    added
}

fn template_for<'a>(all: &'a BTreeMap<String, Template>, index: &str) -> &'a Template {
    all.values()
        .find(|t| {
            t.index_patterns
                .iter()
                .any(|p| common::glob_match(p, index))
        })
        .unwrap_or_else(|| panic!("no shipped template covers index {index}"))
}

fn check(config: &Config, what: &str, added: &BTreeMap<String, BTreeSet<String>>) {
    let all = templates();
    let mut unmapped = Vec::new();
    for (name, pipeline) in &config.pipelines {
        let fields = &added[&pipeline.index];
        // The host's own field is among them, under the configured name
        // (the host's default, which these configs do not override).
        let provenance = pipeline
            .provenance_field
            .as_deref()
            .expect("a provenance field");
        assert!(
            fields.contains(provenance),
            "{what}: pipelines.{name}: documents lack the provenance field {provenance:?}: {fields:?}"
        );
        // Enough is exercised to mean something: module objects and leaves.
        assert!(fields.len() > 8, "{what}: pipelines.{name}: {fields:?}");
    }
    for (index, fields) in added {
        let t = template_for(&all, index);
        for f in fields {
            if t.mapping.type_of(f).is_none() {
                unmapped.push(format!("{}: `{f}` (index {index})", t.file));
            }
        }
    }
    assert!(
        unmapped.is_empty(),
        "{what}: fields Weir adds that the templates leave to dynamic mapping:\n  {}",
        unmapped.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_weir_adds_is_mapped_in_the_templates() {
    let origin = classifier().await;

    let demo = Config::load(&repo_path("config/weir.toml"))
        .unwrap_or_else(|e| panic!("config/weir.toml: {e}"));
    let added = added_fields(&demo, &origin).await;
    check(&demo, "config/weir.toml", &added);

    // The compose config names paths inside the image; lay them out.
    let dir = tempfile::tempdir().unwrap();
    let text = read("deploy/weir.compose.toml");
    let compose: toml::Value = toml::from_str(&text).unwrap();
    let mut files: Vec<String> = Vec::new();
    for p in compose["pipelines"].as_table().unwrap().values() {
        for m in p["modules"].as_array().unwrap() {
            files.push(m["path"].as_str().unwrap().to_owned());
        }
    }
    for t in compose["elasticsearch"]["templates"].as_array().unwrap() {
        files.push(t["path"].as_str().unwrap().to_owned());
    }
    for f in &files {
        let at = dir.path().join(f);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, b"").unwrap();
    }
    let compose = Config::from_toml(&text, Path::new("deploy/weir.compose.toml"), dir.path())
        .unwrap_or_else(|e| panic!("deploy/weir.compose.toml: {e}"));
    let added = added_fields(&compose, &origin).await;
    check(&compose, "deploy/weir.compose.toml", &added);
}
