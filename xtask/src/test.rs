//! `cargo xtask test`: everything the test suite needs, then the suite.
//!
//! Installs the rig's tools (tansu, osmem), builds the Wasm modules and
//! fixtures, and runs every workspace test. `.ci/run` calls exactly this.

use anyhow::Result;

use crate::{cargo, modules, tools};

#[derive(clap::Args)]
pub struct Args {
    /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    modules::ensure_target_installed()?;
    tools::install()?;
    modules::build(&modules::Args {
        names: Vec::new(),
        out: None,
    })?;
    let mut cmd = cargo::cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(&args.cargo_args);
    cargo::run(cmd)
}
