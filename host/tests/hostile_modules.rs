//! Modules written to escape their pipeline, through the real runtime and
//! chain (no Kafka): a document sent to an index the pipeline may not write,
//! a record fanned out past the tenant's quota, provenance pushing a
//! document over its size limit, and a `describe()` too long to stamp into
//! every document. Each is refused with the limit or index named, and the
//! well-behaved records of the same batch go through.

use std::sync::Arc;
use std::time::Duration;

use weir::config::{PipelineConfig, Quotas, RuntimeConfig, TenantBinding};
use weir::pipeline::{Chain, ChainOutput, run_chain};
use weir::runtime::{HttpPolicy, InstanceLimits, ModuleOptions, WasmRuntime};
use weir::telemetry::{Metrics, PipelineMetrics};

mod modules;
use modules::load_module;

fn runtime() -> Arc<WasmRuntime> {
    Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("wasm runtime"))
}

/// Tenant `acme`'s pipeline `acme.p`, writing `acme-p`, with `extra` TOML.
fn pipeline(extra: &str, quotas: &Quotas) -> PipelineConfig {
    let mut p: PipelineConfig = toml::from_str(&format!(
        "topics = [\"acme.t\"]\nindex = \"acme-p\"\n{extra}"
    ))
    .unwrap();
    p.tenant = Some(TenantBinding {
        id: "acme".into(),
        weight: 1,
        index_prefix: "acme-".into(),
        quotas: quotas.clone(),
        ..TenantBinding::default()
    });
    p
}

async fn chain(
    rt: &Arc<WasmRuntime>,
    config: &PipelineConfig,
    stem: &str,
    settings: &[(&str, &str)],
) -> Chain {
    let quotas = &config.tenant.as_ref().unwrap().quotas;
    let options = ModuleOptions {
        limits: Some(InstanceLimits::for_tenant(rt.config(), quotas)),
        tenant: Some("acme".into()),
        log_lines_per_second: Some(quotas.log_lines_per_second),
    };
    let module = load_module(
        rt,
        "acme.p",
        stem,
        settings,
        HttpPolicy::deny_all("acme.p"),
        options,
    )
    .await;
    Chain::for_pipeline(vec![module], config)
}

/// The first failure's reason contains `needle`.
fn assert_first_reason(out: &ChainOutput, needle: &str) {
    let reason = out
        .failures
        .first()
        .map_or("(no failure)", |f| f.reason.as_str());
    assert!(reason.contains(needle), "{reason}");
}

async fn run(rt: &WasmRuntime, chain: &Chain, values: &[&str]) -> ChainOutput {
    let records = modules::records("acme.t", values);
    run_chain(rt, chain, &records, &PipelineMetrics::detached("acme.p")).await
}

/// As [`run`], and how many records the host's output check refused for
/// `check`, read from the Prometheus text the host serves.
async fn run_counting(
    rt: &WasmRuntime,
    chain: &Chain,
    values: &[&str],
    check: &str,
) -> (ChainOutput, u64) {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry).pipeline("acme.p");
    let records = modules::records("acme.t", values);
    let out = run_chain(rt, chain, &records, &metrics).await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let series = format!(
        "weir_output_rejections_total{{tenant=\"acme\",pipeline=\"acme.p\",check=\"{check}\"}} "
    );
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |v| v.parse().unwrap());
    (out, count)
}

#[tokio::test]
async fn a_document_sent_to_another_tenants_index_is_dead_lettered_naming_it() {
    let rt = runtime();
    let config = pipeline("", &Quotas::default());
    let escape = chain(
        &rt,
        &config,
        "fixture-hostile",
        &[("index", "globex-orders"), ("id", "order-1")],
    )
    .await;
    let (out, counted) = run_counting(&rt, &escape, &[r#"{"a":1}"#, r#"{"a":2}"#], "index").await;
    assert!(out.docs.is_empty(), "nothing may reach globex-orders");
    assert_eq!(out.failures.len(), 2);
    assert_eq!(counted, 2, "each refused record is counted");
    for f in &out.failures {
        assert!(f.module.is_none(), "the host's check");
        assert!(
            f.reason.contains("index `globex-orders`")
                && f.reason.contains("may write `acme-p`, `acme-*`"),
            "{}",
            f.reason
        );
    }

    // Within the tenant's prefix, or a pattern the operator allowed, it goes.
    let own = chain(&rt, &config, "fixture-hostile", &[("index", "acme-other")]).await;
    let out = run(&rt, &own, &[r#"{"a":1}"#]).await;
    assert_eq!(out.failures, []);
    assert_eq!(out.docs[0].index.as_deref(), Some("acme-other"));
}

#[tokio::test]
async fn a_single_tenant_pipeline_writes_its_index_and_allowed_patterns_only() {
    let rt = runtime();
    let mut config = pipeline("allowed_indices = [\"acme-archive-*\"]", &Quotas::default());
    config.tenant = None;
    let options = ModuleOptions::default();
    let load = |index: &'static str| {
        let rt = Arc::clone(&rt);
        let options = options.clone();
        async move {
            load_module(
                &rt,
                "p",
                "fixture-hostile",
                &[("index", index)],
                HttpPolicy::deny_all("p"),
                options,
            )
            .await
        }
    };
    for (index, allowed) in [
        ("acme-archive-2026", true),
        ("acme-p", true),
        ("acme-other", false),
        ("weir-tweets", false),
    ] {
        let chain = Chain::for_pipeline(vec![load(index).await], &config);
        let out = run(&rt, &chain, &[r#"{"a":1}"#]).await;
        assert_eq!(out.docs.len() == 1, allowed, "{index}: {:?}", out.failures);
    }
}

#[tokio::test]
async fn a_record_fanned_out_past_the_quota_fails_whole() {
    let rt = runtime();
    let quotas = Quotas {
        max_documents_per_record: 10,
        ..Quotas::default()
    };
    let config = pipeline("", &quotas);
    let within = chain(
        &rt,
        &config,
        "fixture-hostile",
        &[("mode", "fanout"), ("n", "10")],
    )
    .await;
    let out = run(&rt, &within, &["{}", "{}"]).await;
    assert_eq!((out.docs.len(), out.failures.len()), (20, 0));

    let over = chain(
        &rt,
        &config,
        "fixture-hostile",
        &[("mode", "fanout"), ("n", "11")],
    )
    .await;
    let (out, counted) = run_counting(&rt, &over, &["{}", "{}"], "max_documents_per_record").await;
    assert!(
        out.docs.is_empty(),
        "none of an over-quota record's documents"
    );
    assert_eq!(out.failures.len(), 2);
    assert_eq!(counted, 2, "each refused record is counted once");
    assert_first_reason(
        &out,
        "became 11 documents, over the limit of 10 (max_documents_per_record)",
    );
}

#[tokio::test]
async fn the_size_limit_counts_what_the_host_adds() {
    let rt = runtime();
    let quotas = Quotas {
        max_document_bytes: 100,
        ..Quotas::default()
    };
    let config = pipeline("", &quotas);
    let passthrough = chain(&rt, &config, "passthrough", &[]).await;
    // 90 bytes from the module; the provenance the host splices in takes
    // it over 100.
    let body = format!(r#"{{"text":"{}"}}"#, "x".repeat(79));
    assert_eq!(body.len(), 90);
    let (out, counted) = run_counting(&rt, &passthrough, &[&body], "max_document_bytes").await;
    assert!(out.docs.is_empty());
    assert_first_reason(&out, "over the limit of 100 (max_document_bytes)");
    assert_eq!(counted, 1);
}

#[tokio::test]
async fn a_module_declaring_a_huge_name_is_refused_at_load() {
    let rt = runtime();
    let path = weir_testkit::module_wasm("fixture-long-describe")
        .unwrap_or_else(|e| panic!("{e}: run `cargo xtask modules fixture-long-describe`"));
    let err = rt
        .load_with(
            "p",
            "fixture-long-describe",
            std::fs::read(path).unwrap(),
            Vec::new(),
            HttpPolicy::deny_all("p"),
            ModuleOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("describe() returned a name of 1024 bytes; at most 128"),
        "{err}"
    );
}

/// A module that sleeps uses no CPU, so the epoch never stops it: the
/// wall-clock bound does, at load (init) and per batch (process). The
/// outer timeout only keeps a regression from hanging the suite.
#[tokio::test]
async fn a_sleeping_module_is_stopped_by_the_wall_clock() {
    let rt = runtime();
    let quotas = Quotas {
        max_batch_time: Duration::from_millis(100),
        max_batch_wall_time: Duration::from_millis(300),
        ..Quotas::default()
    };
    let config = pipeline("", &quotas);
    let sleeper = chain(&rt, &config, "fixture-sleep", &[("sleep_ms", "60000")]).await;
    let out = tokio::time::timeout(Duration::from_secs(30), run(&rt, &sleeper, &["{}"]))
        .await
        .expect("the chain returns long before the module would wake");
    assert!(out.docs.is_empty());
    assert_eq!(out.limit_failures, 1);
    assert_first_reason(
        &out,
        "wall-clock limit exceeded: the module took longer than 300ms",
    );

    let path = weir_testkit::module_wasm("fixture-sleep").unwrap();
    let options = ModuleOptions {
        limits: Some(InstanceLimits::for_tenant(rt.config(), &quotas)),
        ..ModuleOptions::default()
    };
    let load = rt.load_with(
        "acme.p",
        "fixture-sleep",
        std::fs::read(path).unwrap(),
        vec![
            ("sleep_ms".into(), "60000".into()),
            ("during".into(), "init".into()),
        ],
        HttpPolicy::deny_all("acme.p"),
        options,
    );
    let err = tokio::time::timeout(Duration::from_secs(30), load)
        .await
        .expect("the load returns long before init would")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("init failed: wall-clock limit exceeded"),
        "{err}"
    );
}

/// A module's only way out of its sandbox is `wasi:http` through the
/// policy: it sees no host environment variable, no file, cannot open a
/// socket (to a listener on this machine's loopback, which would accept
/// it) and cannot resolve a name.
#[tokio::test]
async fn a_module_reaches_no_file_variable_or_socket_of_the_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    assert!(std::env::var_os("PATH").is_some(), "the host has a PATH");

    let rt = runtime();
    let config = pipeline("", &Quotas::default());
    let probe = chain(
        &rt,
        &config,
        "fixture-hostile",
        &[("mode", "probe"), ("connect", &target)],
    )
    .await;
    let out = run(&rt, &probe, &["{}"]).await;
    assert_eq!(out.failures, []);
    let report: serde_json::Value = serde_json::from_slice(&out.docs[0].body).unwrap();
    eprintln!("what the module saw: {report}");
    assert_eq!(report["env"], "[]", "{report}");
    for probe in ["path_var", "root_dir", "cwd_dir", "passwd", "tcp", "lookup"] {
        let seen = report[probe].as_str().unwrap_or_default();
        assert!(seen.starts_with("denied: "), "{probe}: {seen}");
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the module reached the listener: {other:?}"),
    }
}

/// Every record within `max_documents_per_record` and every document
/// within `max_document_bytes`, a batch may still hold too much: the
/// records whose documents take it over `max_batch_output_bytes` fail,
/// naming the limit, and the records before them go through.
#[tokio::test]
async fn a_batch_is_bounded_in_bytes_after_every_module() {
    let rt = runtime();
    let quotas = Quotas {
        max_document_bytes: 100,
        max_batch_output_bytes: 150,
        ..Quotas::default()
    };
    let config = pipeline("", &quotas);
    // Each record: 10 documents `{"n":0}`..`{"n":9}`, 7 bytes each.
    let fanout = chain(
        &rt,
        &config,
        "fixture-hostile",
        &[("mode", "fanout"), ("n", "10")],
    )
    .await;
    let (out, counted) =
        run_counting(&rt, &fanout, &["{}", "{}", "{}"], "max_batch_output_bytes").await;
    assert_eq!(out.docs.len(), 20, "the first two records fit in 150 bytes");
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].source, 2);
    assert_first_reason(
        &out,
        "would be 210 bytes, over the limit of 150 (max_batch_output_bytes)",
    );
    assert_eq!(counted, 1);

    // Run record by record (the module traps on a batch), each call's
    // output is bounded by the module's memory but not their sum: past the
    // limit the rest of the batch is not run at all.
    let trapping = chain(
        &rt,
        &config,
        "fixture-hostile",
        &[("mode", "fanout"), ("n", "10"), ("trap_after", "1")],
    )
    .await;
    let out = run(&rt, &trapping, &["{}"; 5]).await;
    assert_eq!(out.docs.len(), 20);
    let mut failed: Vec<_> = out.failures.iter().map(|f| f.source).collect();
    failed.sort();
    assert_eq!(failed, [2, 3, 4]);
    let unrun = out
        .failures
        .iter()
        .filter(|f| {
            f.reason.contains("not run on this record")
                && f.reason.contains("(max_batch_output_bytes)")
        })
        .count();
    assert_eq!(unrun, 2, "records 3 and 4 are not run: {:?}", out.failures);
}

/// A module failing every record with a megabyte of reason leaves the host
/// holding at most what a dead letter carries per record: the reason is
/// cut (with a marker naming its size) as soon as the host receives it.
#[tokio::test]
async fn a_huge_failure_reason_is_cut_when_the_host_receives_it() {
    let rt = runtime();
    let config = pipeline("", &Quotas::default());
    let failing = chain(
        &rt,
        &config,
        "fixture-hostile",
        &[("mode", "fail"), ("reason_bytes", "1048576")],
    )
    .await;
    let out = run(&rt, &failing, &["{}", "{}", "{}"]).await;
    assert_eq!(out.failures.len(), 3);
    for f in &out.failures {
        assert!(f.reason.len() <= 4096, "{}", f.reason.len());
        assert!(
            f.reason.ends_with("… [truncated, 1048576 bytes]"),
            "{}",
            &f.reason[f.reason.len() - 40..]
        );
    }
}
