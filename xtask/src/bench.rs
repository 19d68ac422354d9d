//! `cargo xtask bench [--records N] [--scenarios a,b] [--micro] [-- ARGS]`:
//! the benchmark suite (benches/README.md).
//!
//! Installs the rig's tools if missing, builds the Wasm modules, builds
//! `weir` (`cargo build --release -p weir`, on its own so its features are
//! the ones users get) and `weir-bench`, then runs the scenarios; with
//! `--micro`, also the criterion micro benchmarks.

use anyhow::Result;

use crate::{cargo, modules, tools};

#[derive(clap::Args)]
pub struct Args {
    /// Records in the corpus (weir-bench default: 1,000,000).
    #[arg(long)]
    pub records: Option<u64>,
    /// Scenarios, comma-separated: raw,native,native-clean,wasm-3,classify,osmem.
    #[arg(long)]
    pub scenarios: Option<String>,
    /// Also run the criterion micro benchmarks (`cargo bench -p weir-benches`).
    #[arg(long)]
    pub micro: bool,
    /// Only the micro benchmarks.
    #[arg(long)]
    pub micro_only: bool,
    /// More arguments for weir-bench (after `--`), e.g. `--perf wasm-3`.
    #[arg(last = true)]
    pub extra: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    tools::install()?;
    modules::build(&modules::Args {
        names: Vec::new(),
        out: None,
    })?;
    if !args.micro_only {
        let mut weir = cargo::cargo();
        weir.args(["build", "--release", "-p", "weir"]);
        cargo::run(weir)?;
        let mut bench = cargo::cargo();
        bench.args([
            "build",
            "--release",
            "-p",
            "weir-benches",
            "--bin",
            "weir-bench",
        ]);
        cargo::run(bench)?;
        let mut cmd =
            std::process::Command::new(cargo::target_dir().join("release").join("weir-bench"));
        cmd.current_dir(cargo::workspace_root()).arg("--no-build");
        if let Some(n) = args.records {
            cmd.args(["--records", &n.to_string()]);
        }
        if let Some(s) = &args.scenarios {
            cmd.args(["--scenarios", s]);
        }
        cmd.args(&args.extra);
        cargo::run(cmd)?;
    }
    if args.micro || args.micro_only {
        let mut micro = cargo::cargo();
        micro.args(["bench", "-p", "weir-benches", "--bench", "micro"]);
        cargo::run(micro)?;
    }
    Ok(())
}
