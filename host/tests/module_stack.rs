//! The shipped modules are linked with a 64 KiB stack (`.cargo/config.toml`)
//! instead of Rust's 1 MiB, so that a fresh instance's working memory sits
//! in the pages the pooling allocator keeps resident. This test holds that
//! choice to account: JSON nested as deep as serde_json accepts (128
//! levels), and far deeper, runs through every chain module without
//! exhausting the stack (a stack overflow would trap as an out-of-bounds
//! access and fail the record).

use std::sync::Arc;

use bytes::Bytes;
use weir::config::RuntimeConfig;
use weir::event::SourceRecord;
use weir::pipeline::{Chain, run_chain};
use weir::runtime::{HttpPolicy, LoadedModule, ModuleOptions, WasmRuntime};
use weir::telemetry::PipelineMetrics;

mod modules;
use modules::load_module;

/// The modules of the default chains, with the config they run under.
const MODULES: &[(&str, &[(&str, &str)])] = &[
    ("passthrough", &[]),
    ("text-clean", &[("fields", "text")]),
    ("enrich", &[]),
];

async fn load(rt: &Arc<WasmRuntime>, name: &str, config: &[(&str, &str)]) -> Arc<LoadedModule> {
    let http = HttpPolicy::deny_all("stack");
    load_module(rt, "stack", name, config, http, ModuleOptions::default()).await
}

/// A tweet whose `meta` field holds `depth` nested arrays around a string,
/// so the whole document is `depth + 1` levels deep.
fn nested_tweet(depth: usize) -> Arc<SourceRecord> {
    let meta = format!("{}\"deep\"{}", "[".repeat(depth), "]".repeat(depth));
    let value = format!(
        r#"{{"id":"n{depth}","text":"Nested &amp; deep <b>json</b>","lang":"en","meta":{meta}}}"#
    );
    Arc::new(SourceRecord {
        topic: Arc::from("stack"),
        partition: 0,
        offset: depth as i64,
        timestamp_ms: None,
        key: None,
        headers: Vec::new(),
        value: Bytes::from(value),
    })
}

#[tokio::test]
async fn deeply_nested_json_runs_through_every_chain_module_on_its_small_stack() {
    let rt = Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("runtime"));
    let metrics = PipelineMetrics::detached("stack");
    for (name, config) in MODULES {
        let chain = Chain::new(vec![load(&rt, name, config).await], None);
        // 126 arrays + the object: 127 levels, inside serde_json's 128.
        let out = run_chain(&rt, &chain, &[nested_tweet(126)], &metrics).await;
        assert!(
            out.failures.is_empty(),
            "{name} failed on JSON 127 levels deep: {:?}",
            out.failures
        );
        assert_eq!(out.docs.len(), 1, "{name}");
        let doc: serde_json::Value = serde_json::from_slice(&out.docs[0].body).unwrap();
        assert_eq!(doc["id"], "n126", "{name}");

        // Far deeper than serde_json would build a value for: the modules
        // only parse the fields they use (today all three pass it on), and
        // a module that did parse it must refuse it with the parser's
        // reason, never overflow its stack.
        let out = run_chain(&rt, &chain, &[nested_tweet(20_000)], &metrics).await;
        for failure in &out.failures {
            assert!(
                failure.reason.contains("recursion limit"),
                "{name}: expected the parser's recursion limit, got: {}",
                failure.reason
            );
        }
        assert_eq!(out.docs.len() + out.failures.len(), 1, "{name}");
        assert_eq!(out.limit_failures, 0, "{name}");
    }
}
