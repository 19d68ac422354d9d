//! `cargo xtask modules` (being written).
#[derive(clap::Args)]
pub struct Args {}
pub fn build(_args: &Args) -> anyhow::Result<()> { anyhow::bail!("not yet written") }
