//! `cargo xtask test`: everything the test suite needs, then the suite.
//!
//! Installs the rig's tools (tansu, osmem), builds the Wasm modules and
//! fixtures (Rust, Python, JavaScript), runs the Python and JavaScript
//! kits' and modules' native tests (pytest, node --test), then every
//! workspace test. `.ci/run` calls exactly this.

use anyhow::Result;

use crate::{cargo, modules, polyglot, tools};

#[derive(clap::Args)]
pub struct Args {
    /// Run only the Python and JavaScript native tests (pytest, node --test).
    #[arg(long)]
    pub native_only: bool,
    /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    if args.native_only {
        return polyglot::test(&cargo::workspace_root());
    }
    modules::ensure_target_installed()?;
    tools::install()?;
    modules::build(&modules::Args {
        names: Vec::new(),
        out: None,
    })?;
    polyglot::test(&cargo::workspace_root())?;
    let mut cmd = cargo::cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(&args.cargo_args);
    cargo::run(cmd)
}
