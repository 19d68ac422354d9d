//! `weir check`: fail fast on a bad config or module, before deploying it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use weir::config::Config;
use weir::runtime::WasmRuntime;

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    let mut failed = false;
    for (name, p) in &config.pipelines {
        println!("pipeline {name}: {} -> {}", p.topics.join(", "), p.index);
        for m in &p.modules {
            let path = config.resolve(&m.path);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    println!("  FAIL {}: cannot read {}: {e}", m.name(), path.display());
                    failed = true;
                    continue;
                }
            };
            match runtime.load(name, &m.name(), bytes, m.settings()).await {
                Ok(module) => println!(
                    "  ok   {} ({}@{}, sha256 {})",
                    module.name,
                    module.info.name,
                    module.info.version,
                    module.short_digest()
                ),
                Err(e) => {
                    println!("  FAIL {e}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        println!("{}: invalid", path.display());
        Ok(ExitCode::FAILURE)
    } else {
        println!("{}: ok", path.display());
        Ok(ExitCode::SUCCESS)
    }
}
