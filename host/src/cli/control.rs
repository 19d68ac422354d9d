//! `weir control import`: a host's files into a fleet's control topic.

use std::path::PathBuf;
use std::process::ExitCode;

use weir::config::Config;

#[derive(clap::Args)]
pub struct ControlArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write this host's tenants (their files) and their modules folders
    /// into the control topic named by `[control]`, once, before the
    /// fleet's hosts switch to `control.mode = "kafka"`.
    Import {
        #[arg(short, long, default_value = "weir.toml")]
        config: PathBuf,
    },
}

pub async fn run(args: ControlArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Import { config } => {
            let config = Config::load(&config)?;
            let report = weir::fleet::import(&config).await?;
            for (module, digest) in &report.modules {
                println!("module {module} {}", &digest[..12]);
            }
            for t in &report.tenants {
                println!("tenant {t}");
            }
            println!(
                "imported {} tenants and {} modules into `{}` (last offset {})",
                report.tenants.len(),
                report.modules.len(),
                config.control.topic,
                report.last_offset
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
