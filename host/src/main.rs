//! `weir`: the Weir host binary.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

mod cli;

/// How long tasks still running when a command returns (a blocking call a
/// module's work left behind, such as a DNS lookup or a compile) may delay
/// the exit. Dropping the runtime would wait for them without bound.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli::dispatch(args));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
