//! The 0.2 world (a host-held document) through the real runtime and
//! chain (no Kafka): 0.1 and 0.2 modules in one chain, values a 0.2 chain
//! never touches kept verbatim, and a 0.2 module attacking the host
//! through the documents it holds there, beside well-behaved records and
//! a well-behaved module.

use std::sync::Arc;

use serde_json::{Value, json};
use weir::config::{Quotas, RuntimeConfig};
use weir::pipeline::{Chain, ChainOutput, run_chain};
use weir::runtime::{
    HOLD_MIN_BYTES, HttpPolicy, InstanceLimits, LoadedModule, ModuleOptions, WasmRuntime, World,
};
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

/// The JSON object `value` with a `pad` field that takes it to
/// `HOLD_MIN_BYTES`, so it crosses into 0.2 modules as a held document
/// (a smaller value crosses as bytes).
fn held(value: &str) -> String {
    let open = &value[..value.len() - 1];
    let pad = "p".repeat(HOLD_MIN_BYTES.saturating_sub(open.len() + 11));
    let large = format!(r#"{open}, "pad": "{pad}"}}"#);
    assert!(large.len() >= HOLD_MIN_BYTES);
    large
}

fn large_tweet() -> String {
    assert!(TWEET.len() < HOLD_MIN_BYTES);
    held(TWEET)
}

#[tokio::test]
async fn small_and_large_values_go_through_0_2_and_mixed_chains_alike() {
    let rt = runtime();
    let clean = load(&rt, "text-clean", ModuleOptions::default()).await;
    let pass = load(&rt, "passthrough", ModuleOptions::default()).await;
    let stamp = load(&rt, "fixture-stamp-a", ModuleOptions::default()).await;
    let enrich = load(&rt, "enrich", ModuleOptions::default()).await;
    let large = large_tweet();
    let chains = [
        ("0.2 only", vec![clean.clone(), pass, enrich.clone()]),
        ("0.2 → 0.1 → 0.2", vec![clean, stamp, enrich]),
    ];
    for (name, modules) in chains {
        let mixed = modules.iter().any(|m| m.world() == World::V01);
        let chain = Chain::new(modules, None);
        // Small crosses as bytes, large as a held document (see the
        // runtime's unit tests of `Body::for_world`); both in one batch.
        let out = run(&rt, &chain, &[TWEET, &large]).await;
        assert_eq!(out.failures, [], "{name}");
        assert_eq!(out.docs.len(), 2, "{name}");
        let (mut small, mut big) = (body(&out, 0), body(&out, 1));
        let input: Value = serde_json::from_str(&large).unwrap();
        assert_eq!(big["pad"], input["pad"], "{name}");
        // enrich's `weir` object names each record's own offset.
        assert_eq!(small["weir"]["source"]["offset"], 0, "{name}");
        assert_eq!(big["weir"]["source"]["offset"], 1, "{name}");
        for doc in [&mut small, &mut big] {
            let fields = doc.as_object_mut().unwrap();
            fields.remove("weir");
            fields.remove("pad");
        }
        assert_eq!(small, big, "{name}: the same edits whatever the form");
        assert_eq!(small["text"], "hi & bye #Tag", "{name}");
        assert_eq!(
            small["text_original"], "RT @bob: hi &amp; <b>bye</b> https://x.io #Tag",
            "{name}"
        );
        assert_eq!(small["hashtags"], json!(["tag"]), "{name}");
        assert_eq!(small["mentions"], json!(["bob"]), "{name}");
        assert_eq!(small["word_count"], 3, "{name}");
        assert_eq!(small["user"], json!({"b": 1, "a": [1, 2]}), "{name}");
        assert_eq!(small.get("stamp").is_some(), mixed, "{name}");
    }
}

#[tokio::test]
async fn a_0_2_chain_writes_untouched_values_verbatim_in_their_order() {
    let rt = runtime();
    let clean = load(&rt, "text-clean", ModuleOptions::default()).await;
    let pass = load(&rt, "passthrough", ModuleOptions::default()).await;
    let enrich = load(&rt, "enrich", ModuleOptions::default()).await;
    let chain = Chain::new(vec![clean, pass, enrich], Some("_weir_chain"));
    // Large enough to be held (a small value crosses as bytes and is
    // parsed by each module, as in 0.1).
    let out = run(&rt, &chain, &[&large_tweet()]).await;
    assert_eq!(out.failures, []);
    let text = String::from_utf8(out.docs[0].body.clone()).unwrap();
    // Keys keep the input's order; the nested value is the input's bytes,
    // whitespace and all, because no module went into it.
    assert!(
        text.starts_with(
            r#"{"id":7,"text":"hi & bye #Tag","user":{"b": 1,  "a": [1, 2]},"lang":"en","pad":"ppp"#
        ),
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
    // Padded so that each crosses as a held document.
    let attack = |a: &str| held(&format!(r#"{{"attack": "{a}"}}"#));
    let values = [
        held(r#"{"n": 1}"#),
        attack("grow"),
        held(r#"{"n": 2}"#),
        attack("churn"),
        held(r#"{"n": 3}"#),
        attack("handles"),
        held(r#"{"n": 4}"#),
        attack("deep-path"),
        attack("deep-value"),
        attack("forge"),
        held(r#"{"n": 5}"#),
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
    let out = run(&rt, &chain, &[&held(r#"{"n": 6}"#)]).await;
    assert_eq!((out.docs.len(), out.failures.len()), (1, 0));
    let clean = load(&rt, "text-clean", options).await;
    let out = run(&rt, &Chain::new(vec![clean], None), &[TWEET]).await;
    assert_eq!(body(&out, 0)["text"], "hi & bye #Tag");
}
