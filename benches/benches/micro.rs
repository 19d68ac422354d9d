//! Micro benchmarks of the host's per-batch and per-record costs.
//!
//! - `instantiate/{pooled,on-demand}/{empty,1 record}`: `LoadedModule::run_batch`
//!   with passthrough, i.e. a fresh Store + instance from the
//!   pre-instantiated module + `init(config)` + `process(batch)`: the fixed
//!   cost every batch pays once per module.
//! - `chain-passthrough/{1,16,128,1024}`: `run_chain` with passthrough over
//!   batches of tweets (throughput in records), so the per-record cost of a
//!   module call (copies into and out of the guest, the guest's JSON
//!   validation, the host's output validation) can be read against the
//!   per-batch cost.
//! - `chain-wasm3/500` vs `native/500`: the wasm-3 chain (text-clean ->
//!   passthrough -> passthrough) against the same logic as native Rust,
//!   for a batch of the host's default size.
//! - `doc-model/{300,3000,30000}`: holding a 0.2 document as a serde_json
//!   tree against the lazy `HeldDoc`, parse alone and parse + set + write.
//! - `host-json/validate` and `bulk/{encode,gzip-1}`: the host-side
//!   per-document costs (JSON validation, `_bulk` NDJSON encoding into a
//!   reused buffer, gzip level 1 of a 1000-document body).
//!
//! Needs the modules built (`cargo xtask modules`). Figures print; nothing
//! is asserted.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use weir::config::{PoolingMode, RuntimeConfig};
use weir::event::SourceRecord;
use weir::pipeline::{Chain, run_chain, validate_document};
use weir::runtime::{HttpPolicy, LoadedModule, WasmRuntime, WitRecord};
use weir::sinks::elasticsearch::encoder;
use weir::telemetry::PipelineMetrics;
use weir_benches::corpus;
use weir_benches::native::{Native, Transform};

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn load(
    rt: &Arc<WasmRuntime>,
    tokio: &tokio::runtime::Runtime,
    name: &str,
    config: &[(&str, &str)],
) -> Arc<LoadedModule> {
    let path = weir_testkit::module_wasm(name).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(path).expect("read module");
    let config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let http = HttpPolicy::deny_all("bench");
    Arc::new(
        tokio
            .block_on(rt.load("bench", name, bytes, config, http))
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn source_records(n: usize) -> Vec<Arc<SourceRecord>> {
    let topic: Arc<str> = Arc::from("bench-tweets");
    (0..n as u64)
        .map(|i| {
            let (key, value) = corpus::tweet(i);
            Arc::new(SourceRecord {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: i as i64,
                timestamp_ms: Some(1_764_000_000_000),
                key: Some(Bytes::from(key)),
                headers: Vec::new(),
                value: Bytes::from(value),
            })
        })
        .collect()
}

fn wit_record(r: &SourceRecord) -> WitRecord {
    WitRecord {
        topic: r.topic.to_string(),
        partition: r.partition,
        offset: r.offset,
        timestamp_ms: r.timestamp_ms,
        key: r.key.as_ref().map(|k| k.to_vec()),
        headers: Vec::new(),
        value: r.value.to_vec(),
    }
}

fn instantiation(c: &mut Criterion) {
    let tokio = tokio();
    let one = [wit_record(&source_records(1)[0])];
    let mut g = c.benchmark_group("instantiate");
    for (label, pooling) in [("pooled", PoolingMode::On), ("on-demand", PoolingMode::Off)] {
        let config = RuntimeConfig {
            pooling,
            ..RuntimeConfig::default()
        };
        let rt = match WasmRuntime::new(&config) {
            Ok(rt) => Arc::new(rt),
            Err(e) => {
                eprintln!("instantiate/{label}: skipped: {e:#}");
                continue;
            }
        };
        let module = load(&rt, &tokio, "passthrough", &[]);
        g.bench_function(BenchmarkId::new(label, "empty"), |b| {
            b.to_async(&tokio)
                .iter(|| async { black_box(module.run_batch(&rt, &[]).await.expect("runs")) })
        });
        g.bench_function(BenchmarkId::new(label, "1 record"), |b| {
            b.to_async(&tokio)
                .iter(|| async { black_box(module.run_batch(&rt, &one).await.expect("runs")) })
        });
        let clean = load(&rt, &tokio, "text-clean", &[("fields", "text")]);
        g.bench_function(BenchmarkId::new(label, "text-clean empty"), |b| {
            b.to_async(&tokio)
                .iter(|| async { black_box(clean.run_batch(&rt, &[]).await.expect("runs")) })
        });
    }
    g.finish();
}

fn per_record(c: &mut Criterion) {
    let tokio = tokio();
    let rt = Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("runtime"));
    let metrics = PipelineMetrics::detached("bench");
    let passthrough = load(&rt, &tokio, "passthrough", &[]);
    let records = source_records(1024);
    let mut g = c.benchmark_group("chain-passthrough");
    for n in [1usize, 16, 128, 1024] {
        g.throughput(Throughput::Elements(n as u64));
        let chain = Chain::new(vec![Arc::clone(&passthrough)], None);
        g.bench_with_input(BenchmarkId::from_parameter(n), &records[..n], |b, batch| {
            b.to_async(&tokio)
                .iter(|| async { black_box(run_chain(&rt, &chain, batch, &metrics).await) })
        });
    }
    g.finish();

    let clean = load(&rt, &tokio, "text-clean", &[("fields", "text")]);
    let wasm3 = Chain::new(
        vec![clean, Arc::clone(&passthrough), Arc::clone(&passthrough)],
        None,
    );
    let batch = &records[..500];
    let mut g = c.benchmark_group("chain-wasm3");
    g.throughput(Throughput::Elements(500));
    g.bench_function("500", |b| {
        b.to_async(&tokio)
            .iter(|| async { black_box(run_chain(&rt, &wasm3, batch, &metrics).await) })
    });
    g.finish();

    let mut g = c.benchmark_group("native");
    g.throughput(Throughput::Elements(500));
    for (label, t) in [
        ("clean-validate", Transform::CleanValidate),
        ("clean-enrich", Transform::CleanEnrich),
    ] {
        let native = Native::new(t);
        g.bench_function(BenchmarkId::new(label, 500), |b| {
            b.iter(|| {
                for r in batch {
                    black_box(
                        native
                            .apply(&r.value, &r.topic, r.partition, r.offset)
                            .expect("transforms"),
                    );
                }
            })
        });
    }
    g.finish();
}

fn host_side(c: &mut Criterion) {
    let records = source_records(1000);
    let native = Native::new(Transform::CleanValidate);
    let docs: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| {
            let body = native
                .apply(&r.value, &r.topic, r.partition, r.offset)
                .expect("transforms");
            (
                weir::event::default_doc_id(&r.topic, r.partition, r.offset, 0),
                body,
            )
        })
        .collect();

    let mut g = c.benchmark_group("host-json");
    g.throughput(Throughput::Elements(docs.len() as u64));
    g.bench_function("validate", |b| {
        b.iter(|| {
            for (_, body) in &docs {
                black_box(validate_document(body)).expect("valid");
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("bulk");
    g.throughput(Throughput::Elements(docs.len() as u64));
    let mut buf = BytesMut::new();
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            for (id, body) in &docs {
                encoder::encode_index(&mut buf, "bench", id, body).expect("encodes");
            }
            black_box(buf.len())
        })
    });
    let ndjson = buf.split().freeze();
    g.bench_function("gzip-1", |b| {
        b.iter(|| black_box(encoder::gzip(&ndjson, encoder::GZIP_LEVEL)))
    });
    g.finish();
    let gz = encoder::gzip(&ndjson, encoder::GZIP_LEVEL);
    eprintln!(
        "bulk body of {} docs: {} bytes NDJSON, {} bytes gzip-1 ({:.1}x)",
        docs.len(),
        ndjson.len(),
        gz.len(),
        ndjson.len() as f64 / gz.len() as f64
    );
}

/// How the host should hold a 0.2 document: a serde_json tree, or the
/// lazy `HeldDoc` (validated whole, split one level, values kept as
/// ranges of the record's buffer). Parse alone, and parse + one top-level
/// set + write (what a chain that touches one field costs the host).
fn document_model(c: &mut Criterion) {
    use weir::runtime::HeldDoc;
    let path = ["text".to_string()];
    for size in [300, 3_000, 30_000] {
        let docs: Vec<Bytes> = (0..64)
            .map(|i| Bytes::from(corpus::padded_tweet(i, size)))
            .collect();
        let mut g = c.benchmark_group(format!("doc-model/{size}"));
        g.throughput(Throughput::Elements(docs.len() as u64));
        g.bench_function("serde_json-tree/parse", |b| {
            b.iter(|| {
                for d in &docs {
                    black_box(serde_json::from_slice::<serde_json::Value>(d).expect("json"));
                }
            })
        });
        g.bench_function("held-doc/parse", |b| {
            b.iter(|| {
                for d in &docs {
                    black_box(HeldDoc::parse(d.clone()).expect("json"));
                }
            })
        });
        g.bench_function("serde_json-tree/parse-set-write", |b| {
            b.iter(|| {
                for d in &docs {
                    let mut v = serde_json::from_slice::<serde_json::Value>(d).expect("json");
                    v["text"] = serde_json::Value::from("cleaned");
                    black_box(serde_json::to_vec(&v).expect("writes"));
                }
            })
        });
        g.bench_function("held-doc/parse-set-write", |b| {
            b.iter(|| {
                for d in &docs {
                    let mut h = HeldDoc::parse(d.clone()).expect("json");
                    h.set(&path, weir::runtime::DocValue::Text("cleaned".into()))
                        .expect("sets");
                    black_box(h.to_json());
                }
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = instantiation, per_record, host_side, document_model
}
criterion_main!(micro);
