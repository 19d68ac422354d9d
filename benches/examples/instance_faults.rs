//! One module's fixed cost per batch, with the page faults behind it: a
//! fresh pooled instance + `init` + `process([])`, N times, printing µs
//! and minor page faults (from `/proc/self/stat`) per batch. A module whose
//! working pages lie beyond the pool's kept-resident prefix faults every
//! batch (benches/PROFILE.md, "Instantiation").
//!
//! ```sh
//! cargo build --release -p weir-benches --example instance_faults
//! target/release/examples/instance_faults text-clean 20000
//! ```
//!
//! Arguments: a module under `dist/modules` (default passthrough; text-clean
//! gets `fields=text`) and the number of batches (default 20,000).

use std::sync::Arc;
use std::time::Instant;

use weir::config::{PoolingMode, RuntimeConfig};
use weir::runtime::{HttpPolicy, LoadedModule, WasmRuntime};

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    after_comm
        .split(' ')
        .nth(7)
        .and_then(|f| f.parse().ok())
        .expect("minflt field")
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "passthrough".into());
    let batches: usize = args.next().map_or(Ok(20_000), |n| n.parse())?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rt = Arc::new(WasmRuntime::new(&RuntimeConfig {
        pooling: PoolingMode::On,
        ..RuntimeConfig::default()
    })?);
    let bytes = std::fs::read(weir_testkit::module_wasm(&name)?)?;
    let config = match name.as_str() {
        "text-clean" => vec![("fields".to_string(), "text".to_string())],
        _ => Vec::new(),
    };
    let module: Arc<LoadedModule> = Arc::new(tokio.block_on(rt.load(
        "bench",
        &name,
        bytes,
        config,
        HttpPolicy::deny_all("bench"),
    ))?);
    tokio.block_on(async {
        // Warm up: the first instances fault in the pool's pages once.
        for _ in 0..1000 {
            module.run_batch(&rt, &[]).await?;
        }
        let faults = minor_faults();
        let started = Instant::now();
        for _ in 0..batches {
            module.run_batch(&rt, &[]).await?;
        }
        let elapsed = started.elapsed();
        println!(
            "{name}: {:.2} µs per batch, {:.2} minor page faults per batch ({batches} batches)",
            elapsed.as_secs_f64() * 1e6 / batches as f64,
            (minor_faults() - faults) as f64 / batches as f64
        );
        anyhow::Ok(())
    })
}
