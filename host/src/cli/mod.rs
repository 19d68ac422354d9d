//! Command-line interface.

mod admin_api;
mod check;
mod control;
mod modules;
mod pipelines;
mod process;
mod produce;
mod tenants;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use weir::config::{Config, LogConfig, LogFormat};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Kafka -> WebAssembly modules -> Elasticsearch"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipelines of a config file until SIGTERM/SIGINT.
    Run {
        #[arg(short, long, default_value = "weir.toml")]
        config: PathBuf,
    },
    /// Validate a config file and compile every module it names.
    Check {
        #[arg(short, long, default_value = "weir.toml")]
        config: PathBuf,
    },
    /// Run a chain of modules over JSON lines from stdin (no Kafka, no
    /// Elasticsearch): documents to stdout, failures to stderr.
    Process(process::ProcessArgs),
    /// Produce records to Kafka from a source (JSON-lines replay, ...).
    Produce(produce::ProduceArgs),
    /// Module versions of a running host: status, rollback, push (upload).
    Modules(modules::ModulesArgs),
    /// Tenants of a running host (list, show), and new API tokens.
    Tenants(tenants::TenantsArgs),
    /// Pause or resume a tenant's pipeline on a running host.
    Pipelines(pipelines::PipelinesArgs),
    /// A fleet's control topic: import a host's files into it.
    Control(control::ControlArgs),
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => {
            let config = Config::load(&config)?;
            init_logging(&config.log);
            let shutdown = CancellationToken::new();
            spawn_signal_handler(shutdown.clone());
            weir::app::run(config, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            init_logging(&LogConfig {
                filter: "warn".into(),
                ..LogConfig::default()
            });
            check::run(&config).await
        }
        Command::Process(args) => {
            init_logging(&LogConfig {
                filter: "warn".into(),
                ..LogConfig::default()
            });
            process::run(args).await
        }
        Command::Modules(args) => modules::run(args).await,
        Command::Control(args) => {
            init_logging(&LogConfig {
                filter: "warn".into(),
                ..LogConfig::default()
            });
            control::run(args).await
        }
        Command::Tenants(args) => tenants::run(args).await,
        Command::Pipelines(args) => pipelines::run(args).await,
        Command::Produce(args) => {
            init_logging(&LogConfig {
                filter: "warn".into(),
                ..LogConfig::default()
            });
            produce::run(args).await
        }
    }
}

fn init_logging(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// First SIGTERM/SIGINT: graceful drain. Second: exit at once.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            count += 1;
            if count == 1 {
                tracing::info!("signal received: draining (send again to exit immediately)");
                shutdown.cancel();
            } else {
                tracing::warn!("second signal: exiting without draining");
                std::process::exit(130);
            }
        }
    });
}
