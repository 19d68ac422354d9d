//! `cargo xtask <task>`: Weir's developer tasks.

mod modules;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Weir developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the test rig's tools (tansu broker, osmem server) into .tools/.
    Tools,
    /// Build the Wasm modules (and test fixtures) into dist/modules/.
    Modules(modules::Args),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Tools => tools::install(),
        Task::Modules(args) => modules::build(&args),
    }
}
