//! The 0.2 world (a host-held document) through the real runtime and
//! chain (no Kafka): 0.1 and 0.2 modules in one chain, values a 0.2 chain
//! never touches kept verbatim, and a 0.2 module attacking the host
//! through the documents it holds there, beside well-behaved records and
//! a well-behaved module.

use std::sync::Arc;

use serde_json::{Value, json};
use weir::config::{Quotas, RuntimeConfig};
use weir::pipeline::{Chain, ChainOutput, run_chain};
use weir::runtime::{HttpPolicy, InstanceLimits, LoadedModule, ModuleOptions, WasmRuntime, World};
use weir::telemetry::PipelineMetrics;

mod modules;
use modules::load_module;

fn runtime() -> Arc<WasmRuntime> {
    Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("wasm runtime"))
}

async fn load(rt: &Arc<WasmRuntime>, stem: &str, options: ModuleOptions) -> Arc<LoadedModule> {
    load_module(rt, "p", stem, &[], HttpPolicy::deny_all("p"), options).await
}

async fn run(rt: &WasmRuntime, chain: &Chain, values: &[&str]) -> ChainOutput {
    let records = modules::records("t", values);
    run_chain(rt, chain, &records, &PipelineMetrics::detached("p")).await
}

fn body(out: &ChainOutput, i: usize) -> Value {
    serde_json::from_slice(&out.docs[i].body).expect("documents are JSON")
}

const TWEET: &str = r#"{"id": 7, "text": "RT @bob: hi &amp; <b>bye</b> https://x.io #Tag", "user": {"b": 1,  "a": [1, 2]}, "lang": "en"}"#;

#[tokio::test]
async fn a_chain_runs_0_1_and_0_2_modules_side_by_side() {
    let rt = runtime();
    let clean = load(&rt, "text-clean", ModuleOptions::default()).await;
    let stamp = load(&rt, "fixture-stamp-a", ModuleOptions::default()).await;
    let enrich = load(&rt, "enrich", ModuleOptions::default()).await;
    assert_eq!(
        [clean.world(), stamp.world(), enrich.world()],
        [World::V02, World::V01, World::V02],
        "the host tells the worlds apart by their exports"
    );
    // 0.2 → 0.1 → 0.2: the host writes the document out before the 0.1
    // module and parses what it returns for the next 0.2 module.
    let chain = Chain::new(vec![clean, stamp, enrich], None);
    let out = run(&rt, &chain, &[TWEET, "not json", r#"{"text": "plain"}"#]).await;
    assert_eq!(out.docs.len(), 2, "{:?}", out.failures);
    let doc = body(&out, 0);
    assert_eq!(doc["text"], "hi & bye #Tag", "text-clean (0.2) ran");
    assert_eq!(
        doc["text_original"],
        "RT @bob: hi &amp; <b>bye</b> https://x.io #Tag"
    );
    assert_eq!(doc["stamp"], "a", "fixture-stamp (0.1) ran");
    assert_eq!(doc["hashtags"], json!(["tag"]), "enrich (0.2) ran");
    assert_eq!(doc["mentions"], json!(["bob"]));
    assert_eq!(doc["language"], "en");
    assert_eq!(doc["user"], json!({"b": 1, "a": [1, 2]}));
    assert_eq!(body(&out, 1)["stamp"], "a");
    assert_eq!(body(&out, 1)["word_count"], 1);
    // A value that is not a JSON object reaches the 0.2 module as bytes
    // and fails there, with the reason a 0.1 module would give.
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].source, 1);
    assert!(
        out.failures[0].reason == "invalid JSON at byte 1: expected ident",
        "{}",
        out.failures[0].reason
    );
}

#[tokio::test]
async fn a_0_2_chain_writes_untouched_values_verbatim_in_their_order() {
    let rt = runtime();
    let clean = load(&rt, "text-clean", ModuleOptions::default()).await;
    let pass = load(&rt, "passthrough", ModuleOptions::default()).await;
    let enrich = load(&rt, "enrich", ModuleOptions::default()).await;
    let chain = Chain::new(vec![clean, pass, enrich], Some("_weir_chain"));
    let out = run(&rt, &chain, &[TWEET]).await;
    assert_eq!(out.failures, []);
    let text = String::from_utf8(out.docs[0].body.clone()).unwrap();
    // Keys keep the input's order; the nested value is the input's bytes,
    // whitespace and all, because no module went into it.
    assert!(
        text.starts_with(r#"{"id":7,"text":"hi & bye #Tag","user":{"b": 1,  "a": [1, 2]},"lang":"en","text_original":"#),
        "{text}"
    );
    let doc = body(&out, 0);
    assert_eq!(doc["word_count"], 3);
    assert!(
        doc["_weir_chain"].as_array().is_some_and(|v| v.len() == 3),
        "provenance is still spliced in"
    );
}

#[tokio::test]
async fn a_module_attacking_through_held_documents_fails_alone() {
    let rt = runtime();
    let quotas = Quotas {
        max_memory_bytes: 8 << 20,
        max_document_bytes: 1 << 20,
        ..Quotas::default()
    };
    let options = ModuleOptions {
        limits: Some(InstanceLimits::for_tenant(rt.config(), &quotas)),
        tenant: Some("acme".into()),
        log_lines_per_second: None,
    };
    let hostile = load(&rt, "fixture-doc-hostile", options.clone()).await;
    assert_eq!(hostile.world(), World::V02);
    let chain = Chain::new(vec![hostile], None);
    let attack = |a: &str| format!(r#"{{"attack": "{a}"}}"#);
    let values = [
        r#"{"n": 1}"#.to_string(),
        attack("grow"),
        r#"{"n": 2}"#.to_string(),
        attack("churn"),
        r#"{"n": 3}"#.to_string(),
        attack("handles"),
        r#"{"n": 4}"#.to_string(),
        attack("deep-path"),
        attack("deep-value"),
        attack("forge"),
        r#"{"n": 5}"#.to_string(),
    ];
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let out = run(&rt, &chain, &values).await;

    // Every well-behaved record of the batch goes through.
    let ns: Vec<Value> = (0..out.docs.len())
        .map(|i| body(&out, i)["n"].clone())
        .collect();
    assert_eq!(ns, [json!(1), json!(2), json!(3), json!(4), json!(5)]);
    assert!((0..5).all(|i| body(&out, i)["checked"] == true));

    let reason = |source: usize| {
        out.failures
            .iter()
            .find(|f| f.source == source)
            .map_or_else(
                || panic!("record {source} should fail"),
                |f| f.reason.clone(),
            )
    };
    assert_eq!(out.failures.len(), 6, "{:?}", out.failures);
    // A document growing without end stops at the tenant's document size.
    assert!(
        reason(1).contains("past 1048576 bytes (max_document_bytes)"),
        "{}",
        reason(1)
    );
    // Rewriting one field forever, or leaking handles, is charged to the
    // module's memory limit though the document stays small.
    for source in [3, 5] {
        assert!(
            reason(source).contains("more than 8388608 bytes into host-held documents"),
            "{}",
            reason(source)
        );
    }
    assert_eq!(out.limit_failures, 3, "the three count as limit failures");
    // Paths and values are bounded: refused with the reason, no trap.
    assert!(
        reason(7).contains("40 segments, more than 32"),
        "{}",
        reason(7)
    );
    assert!(
        reason(8).contains("refused") && reason(8).contains("nest 201 levels"),
        "{}",
        reason(8)
    );
    // A handle the module was never given is not a document.
    assert!(reason(9).contains("trapped"), "{}", reason(9));

    // The next batch starts clean (a fresh Store: no handle, no charge
    // carried over), and a well-behaved module beside it is unaffected.
    let out = run(&rt, &chain, &[r#"{"n": 6}"#]).await;
    assert_eq!((out.docs.len(), out.failures.len()), (1, 0));
    let clean = load(&rt, "text-clean", options).await;
    let out = run(&rt, &Chain::new(vec![clean], None), &[TWEET]).await;
    assert_eq!(body(&out, 0)["text"], "hi & bye #Tag");
}
