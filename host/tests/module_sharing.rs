//! Identical modules loaded by different tenants share one compiled copy
//! (memory per tenant), while each keeps its own limits and attribution.

use std::sync::Arc;

use weir::runtime::{
    HttpPolicy, LoadedModule, ModuleOptions, RuntimeConfig, WasmRuntime, WitRecord,
};
use weir::tenancy::Quotas;

async fn load(rt: &Arc<WasmRuntime>, tenant: &str, name: &str, quotas: &Quotas) -> LoadedModule {
    let path = weir_testkit::tools::module_wasm(name)
        .unwrap_or_else(|e| panic!("{e} (run `cargo xtask modules`)"));
    let pipeline = format!("{tenant}.p");
    rt.load_with(
        &pipeline,
        name,
        std::fs::read(path).unwrap(),
        Vec::new(),
        HttpPolicy::deny_all(&pipeline),
        ModuleOptions {
            limits: Some(rt.config().tenant_limits(quotas)),
            tenant: Some(tenant.into()),
            log_lines_per_second: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{name} loads for {tenant}: {e}"))
}

/// One record that sets fixture-alloc off (it allocates without bound).
fn bomb() -> Vec<WitRecord> {
    vec![WitRecord {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        key: None,
        headers: Vec::new(),
        value: br#"{"id":1,"text":"BOMB"}"#.to_vec(),
    }]
}

#[tokio::test]
async fn tenants_share_compiled_code_but_not_limits() {
    let rt = Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("runtime"));
    let small = Quotas {
        max_memory_bytes: 8 << 20,
        ..Quotas::default()
    };
    let large = Quotas {
        max_memory_bytes: 24 << 20,
        ..Quotas::default()
    };
    let a = load(&rt, "a", "fixture-alloc", &small).await;
    let b = load(&rt, "b", "fixture-alloc", &large).await;
    assert!(a.shares_code_with(&b), "identical bytes compiled twice");
    let other = load(&rt, "b", "passthrough", &large).await;
    assert!(!a.shares_code_with(&other));

    // Each runs under its own tenant's memory limit.
    for (module, limit) in [(&a, 8usize << 20), (&b, 24 << 20)] {
        let trapped = module
            .run_batch(&rt, &bomb())
            .await
            .expect_err("the bomb hits the memory limit");
        assert!(
            trapped.message.contains("memory limit exceeded")
                && trapped.message.contains(&limit.to_string()),
            "{}",
            trapped.message
        );
    }
}
