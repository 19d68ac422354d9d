//! A tenant's limits on its module instances, through the real runtime and
//! chain (no Kafka): each runaway module is stopped by the limit it hit, the
//! reason names that limit, and a looping module costs a bounded number of
//! runs per batch rather than one full CPU budget per record.

use std::sync::Arc;
use std::time::Duration;

use weir::config::Quotas;
use weir::config::RuntimeConfig;
use weir::event::SourceRecord;
use weir::pipeline::{Chain, ChainOutput, run_chain};
use weir::runtime::{HttpPolicy, InstanceLimits, LoadedModule, ModuleOptions, WasmRuntime};
use weir::telemetry::PipelineMetrics;

mod modules;
use modules::load_module;

fn runtime() -> Arc<WasmRuntime> {
    Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("wasm runtime"))
}

async fn load(rt: &Arc<WasmRuntime>, name: &str, quotas: &Quotas) -> Arc<LoadedModule> {
    load_for(rt, "acme", name, quotas).await
}

/// Loads module `name` into `<tenant>.p` under `quotas`.
async fn load_for(
    rt: &Arc<WasmRuntime>,
    tenant: &str,
    name: &str,
    quotas: &Quotas,
) -> Arc<LoadedModule> {
    let pipeline = format!("{tenant}.p");
    let options = ModuleOptions {
        limits: Some(InstanceLimits::for_tenant(rt.config(), quotas)),
        tenant: Some(tenant.into()),
        log_lines_per_second: Some(quotas.log_lines_per_second),
    };
    let http = HttpPolicy::deny_all(&pipeline);
    load_module(rt, &pipeline, name, &[], http, options).await
}

fn records(values: &[String]) -> Vec<Arc<SourceRecord>> {
    modules::records("acme.t", values)
}

async fn run(rt: &WasmRuntime, chain: Chain, values: &[String]) -> ChainOutput {
    run_chain(
        rt,
        &chain,
        &records(values),
        &PipelineMetrics::detached("acme.p"),
    )
    .await
}

/// Records whose text sets the fixtures off (`SPIN` loops, `BOMB` allocates).
fn tweets(n: usize, trigger: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"id":{i},"text":"{trigger} {i}"}}"#))
        .collect()
}

#[tokio::test]
async fn a_looping_module_is_stopped_by_the_tenants_cpu_limit_and_not_rerun_per_record() {
    let rt = runtime();
    let quotas = Quotas {
        max_batch_time: Duration::from_millis(50),
        ..Quotas::default()
    };
    let spin = load(&rt, "fixture-spin", &quotas).await;
    let out = run(&rt, Chain::new(vec![spin], None), &tweets(10, "SPIN")).await;
    assert!(out.docs.is_empty());
    assert_eq!(out.failures.len(), 10, "every record fails");
    assert_eq!(out.limit_failures, 10, "all of them on the CPU limit");
    let reasons: Vec<&str> = out.failures.iter().map(|f| f.reason.as_str()).collect();
    // The batch, then three records alone, hit the limit; the other seven
    // are failed unrun with the same reason.
    let ran = reasons
        .iter()
        .filter(|r| r.contains("trapped: CPU time limit exceeded"))
        .count();
    let unrun = reasons
        .iter()
        .filter(|r| r.contains("not run on this record") && r.contains("CPU time limit exceeded"))
        .count();
    assert_eq!((ran, unrun), (3, 7), "{reasons:#?}");
    assert!(
        reasons[0].contains("50ms"),
        "the reason names the limit: {}",
        reasons[0]
    );
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_tenants_memory_limit() {
    let rt = runtime();
    let quotas = Quotas {
        max_memory_bytes: 8 << 20,
        ..Quotas::default()
    };
    let alloc = load(&rt, "fixture-alloc", &quotas).await;
    let out = run(&rt, Chain::new(vec![alloc], None), &tweets(2, "BOMB")).await;
    assert_eq!(out.failures.len(), 2);
    for f in &out.failures {
        assert!(
            f.reason.contains("memory limit exceeded") && f.reason.contains(&(8 << 20).to_string()),
            "{}",
            f.reason
        );
    }
}

/// Identical modules loaded by different tenants share one compiled copy
/// (memory per tenant), while each keeps its own limits.
#[tokio::test]
async fn tenants_share_compiled_code_but_not_limits() {
    let rt = runtime();
    let quotas = |max_memory_bytes| Quotas {
        max_memory_bytes,
        ..Quotas::default()
    };
    let a = load_for(&rt, "a", "fixture-alloc", &quotas(8 << 20)).await;
    let b = load_for(&rt, "b", "fixture-alloc", &quotas(24 << 20)).await;
    assert!(a.shares_code_with(&b), "identical bytes compiled twice");
    let other = load_for(&rt, "b", "passthrough", &quotas(24 << 20)).await;
    assert!(!a.shares_code_with(&other));

    // Each runs under its own tenant's memory limit.
    for (module, limit) in [(a, 8usize << 20), (b, 24 << 20)] {
        let out = run(&rt, Chain::new(vec![module], None), &tweets(1, "BOMB")).await;
        assert_eq!(out.failures.len(), 1);
        let reason = &out.failures[0].reason;
        assert!(
            reason.contains("memory limit exceeded") && reason.contains(&limit.to_string()),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn documents_over_the_tenants_size_limit_fail_alone() {
    let rt = runtime();
    let passthrough = load(&rt, "passthrough", &Quotas::default()).await;
    let small = r#"{"text":"ok"}"#.to_string();
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(500));
    let chain = Chain::new(vec![passthrough], None).with_max_document_bytes(Some(100));
    let out = run(&rt, chain, &[small.clone(), big, small]).await;
    assert_eq!(
        out.docs.iter().map(|d| d.source).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(out.failures.len(), 1);
    assert_eq!(
        out.limit_failures, 0,
        "the size check is not a module limit"
    );
    assert_eq!(out.failures[0].source, 1);
    assert!(
        out.failures[0].module.is_none(),
        "the host's check, not a module"
    );
    assert!(
        out.failures[0]
            .reason
            .contains("over the limit of 100 (max_document_bytes)"),
        "{}",
        out.failures[0].reason
    );
}

/// Simulated time: the clock moves only when the test moves it, so "within
/// the second" holds however slow the machine is.
#[tokio::test(start_paused = true)]
async fn a_chatty_module_is_held_to_its_log_rate() {
    let rt = runtime();
    // text-clean logs one line per instance (its init).
    let quiet = Quotas {
        log_lines_per_second: 1,
        ..Quotas::default()
    };
    let limited = load(&rt, "text-clean", &quiet).await;
    for _ in 0..5 {
        run(
            &rt,
            Chain::new(vec![Arc::clone(&limited)], None),
            &tweets(1, "hi"),
        )
        .await;
    }
    // One line a second, burst of one: the load's trial instance took it,
    // the five batches that follow within the second are dropped.
    assert_eq!(limited.log_lines_dropped(), 5);
    // A second later the bucket holds one line again: one more batch logs,
    // the next is dropped.
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..2 {
        run(
            &rt,
            Chain::new(vec![Arc::clone(&limited)], None),
            &tweets(1, "hi"),
        )
        .await;
    }
    assert_eq!(limited.log_lines_dropped(), 6);

    let chatty = Quotas {
        log_lines_per_second: 1_000,
        ..Quotas::default()
    };
    let free = load(&rt, "text-clean", &chatty).await;
    for _ in 0..5 {
        run(
            &rt,
            Chain::new(vec![Arc::clone(&free)], None),
            &tweets(1, "hi"),
        )
        .await;
    }
    assert_eq!(free.log_lines_dropped(), 0);
}

/// The records/s quota through the per-batch step every partition worker
/// takes (`process_batch`), with two workers of one tenant competing for
/// it. Simulated time: only the bucket's waits advance the clock, so the
/// figure is exact, not a timing.
#[tokio::test(start_paused = true)]
async fn a_tenants_records_per_second_quota_holds_across_its_workers() {
    use std::sync::atomic::{AtomicU64, Ordering};

    use arc_swap::ArcSwap;
    use weir::config::BreakerConfig;
    use weir::config::TenantBinding;
    use weir::pipeline::FairScheduler;
    use weir::pipeline::TenantShare;
    use weir::pipeline::{Pipeline, PipelineControl, process_batch};

    const RATE: u64 = 2_000;
    let rt = runtime();
    let quotas = Quotas {
        records_per_second: RATE,
        ..Quotas::default()
    };
    let tenant = TenantShare::new(&TenantBinding {
        id: "acme".into(),
        weight: 1,
        index_prefix: "acme-".into(),
        quotas: quotas.clone(),
        ..TenantBinding::default()
    })
    .unwrap();
    let pipeline = Arc::new(Pipeline {
        name: Arc::from("acme.p"),
        index: Arc::from("acme-p"),
        dead_letter_topic: Arc::from("acme.dlq"),
        chain: ArcSwap::from_pointee(Chain::new(
            vec![load(&rt, "passthrough", &quotas).await],
            None,
        )),
        metrics: PipelineMetrics::detached("acme.p"),
        tenant: Some(Arc::new(tenant)),
        control: Arc::new(PipelineControl::new(BreakerConfig::default())),
    });
    let scheduler = Arc::new(FairScheduler::new(2));
    let batch = records(&tweets(100, "quota"));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (rt, scheduler, pipeline, batch, done) = (
                Arc::clone(&rt),
                Arc::clone(&scheduler),
                Arc::clone(&pipeline),
                batch.clone(),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                loop {
                    let out = process_batch(&rt, &scheduler, &pipeline, &batch).await;
                    assert_eq!(out.docs.len(), 100, "{:?}", out.failures);
                    done.fetch_add(100, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let processed = done.load(Ordering::Relaxed);
    workers.iter().for_each(|w| w.abort());
    // 10 s at RATE, plus the one-second burst the bucket starts with.
    let expected = (RATE * 10 + RATE) as f64;
    assert!(
        (processed as f64 - expected).abs() <= expected * 0.1,
        "{processed} records in 10 s against a quota of {RATE}/s (+{RATE} burst)"
    );
}
