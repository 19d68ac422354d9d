//! `weir-bench`: Weir's end-to-end benchmark scenarios on the test rig
//! (tansu on loopback, the no-op bulk endpoint, osmem). See benches/README.md.
//!
//! The two hidden subcommands are the child processes some scenarios
//! measure: `__native-host` (the host's own source and sink with a native
//! transform instead of Wasm) and `__kafka-ceiling` (a bare rdkafka
//! consumer).

mod ceiling;
mod native_host;
mod run;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "weir-bench",
    about = "Weir benchmark scenarios on the test rig",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    child: Option<Child>,
    #[command(flatten)]
    run: run::Args,
}

#[derive(Subcommand)]
enum Child {
    #[command(name = "__native-host", hide = true)]
    NativeHost(native_host::Args),
    #[command(name = "__kafka-ceiling", hide = true)]
    KafkaCeiling(ceiling::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.child {
        Some(Child::NativeHost(args)) => runtime.block_on(native_host::run(args)),
        Some(Child::KafkaCeiling(args)) => ceiling::run(&args),
        None => runtime.block_on(run::run(cli.run)),
    }
}
