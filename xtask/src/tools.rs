//! `cargo xtask tools` (being written).
pub fn install() -> anyhow::Result<()> { anyhow::bail!("not yet written") }
