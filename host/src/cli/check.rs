//! `weir check`: fail fast on a bad config or module, before deploying it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use weir::config::Config;
use weir::runtime::{OutboundHttp, WasmRuntime};

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let runtime = Arc::new(WasmRuntime::new(&config.runtime)?);
    let http = OutboundHttp::new(&config, &mut Default::default())?;
    for u in http.upstreams().iter() {
        if let Some(problem) = u.problem() {
            println!(
                "upstream {}: WARN no credential ({problem}); module requests to it will be denied",
                u.name
            );
        }
    }
    let mut failed = false;
    for (name, p) in &config.pipelines {
        println!("pipeline {name}: {} -> {}", p.topics.join(", "), p.index);
        let policy = http.policy_for(name, p)?;
        if !p.allowed_outbound_hosts.is_empty() {
            println!("  http {}", policy.allowed().join(", "));
        }
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
            match runtime
                .load(name, &m.name(), bytes, m.settings(), Arc::clone(&policy))
                .await
            {
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
