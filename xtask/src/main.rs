//! `cargo xtask <task>`: Weir's developer tasks.

mod bench;
mod cargo;
mod demo;
mod modules;
mod polyglot;
mod test;
mod tools;
mod wit;

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
    /// Run the whole test suite (installs tools, builds modules first).
    Test(test::Args),
    /// Run Weir's main job on embedded defaults: broker, search server,
    /// samples, the default pipelines; prints what got indexed.
    Demo(demo::Args),
    /// Run the benchmark suite (benches/README.md): scenarios on the rig,
    /// a table and JSON under target/weir-bench/.
    Bench(bench::Args),
    /// Write the module contract (wit/) as one binary WIT package,
    /// dist/weir-pipeline-<version>.wasm, for authors outside this repository.
    Wit(wit::Args),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Tools => tools::install(),
        Task::Modules(args) => modules::build(&args),
        Task::Test(args) => test::run(&args),
        Task::Demo(args) => demo::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Wit(args) => wit::run(&args),
    }
}
