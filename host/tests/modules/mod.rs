//! Loading a built module into a runtime, for the tests that run modules
//! in-process (no Kafka, no sink).

use std::sync::Arc;

use bytes::Bytes;
use weir::event::SourceRecord;
use weir::runtime::{HttpPolicy, LoadedModule, ModuleOptions, WasmRuntime};

/// Loads `dist/modules/<stem>.wasm` as module `stem` of `pipeline`, with
/// `config`, `http` and `options`; panics with the command that builds the
/// module if it is missing, or with the load error.
pub async fn load_module(
    rt: &Arc<WasmRuntime>,
    pipeline: &str,
    stem: &str,
    config: &[(&str, &str)],
    http: Arc<HttpPolicy>,
    options: ModuleOptions,
) -> Arc<LoadedModule> {
    let path = weir_testkit::module_wasm(stem)
        .unwrap_or_else(|e| panic!("{e}: run `cargo xtask modules {stem}`"));
    let config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let module = rt
        .load_with(
            pipeline,
            stem,
            std::fs::read(path).unwrap(),
            config,
            http,
            options,
        )
        .await
        .unwrap_or_else(|e| panic!("{stem} loads: {e}"));
    Arc::new(module)
}

/// Records of `topic`, partition 0, offsets 0.. in order, with `values`.
#[allow(dead_code)] // not every test file that loads modules builds records
pub fn records<V: AsRef<[u8]>>(topic: &str, values: &[V]) -> Vec<Arc<SourceRecord>> {
    let topic: Arc<str> = Arc::from(topic);
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Arc::new(SourceRecord {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: i as i64,
                timestamp_ms: None,
                key: None,
                headers: Vec::new(),
                value: Bytes::copy_from_slice(v.as_ref()),
            })
        })
        .collect()
}
