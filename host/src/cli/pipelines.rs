//! `weir pipelines pause | resume <tenant> <pipeline>`.

use std::process::ExitCode;

use reqwest::Method;

use super::admin_api::{Api, Endpoint, segment};

#[derive(clap::Args)]
pub struct PipelinesArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Stop taking records (the batch in flight finishes; Kafka holds the rest).
    Pause {
        tenant: String,
        /// The pipeline's name in the tenant's file (no `<tenant>.` prefix).
        pipeline: String,
    },
    /// Take records again.
    Resume { tenant: String, pipeline: String },
}

pub async fn run(args: PipelinesArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.endpoint);
    match args.command {
        Command::Pause { tenant, pipeline } => set_paused(&api, &tenant, &pipeline, true).await,
        Command::Resume { tenant, pipeline } => set_paused(&api, &tenant, &pipeline, false).await,
    }
}

pub async fn set_paused(
    api: &Api,
    tenant: &str,
    pipeline: &str,
    paused: bool,
) -> anyhow::Result<ExitCode> {
    let verb = if paused { "pause" } else { "resume" };
    let v = api
        .send(api.request(
            Method::POST,
            &format!(
                "/v1/tenants/{}/pipelines/{}/{verb}",
                segment(tenant),
                segment(pipeline)
            ),
        ))
        .await?;
    let name = v["pipeline"]["name"].as_str().unwrap_or(pipeline);
    let state = if v["pipeline"]["paused"] == true {
        "paused"
    } else {
        "running"
    };
    if v["changed"] == true {
        println!("{name}: {state}");
    } else {
        println!("{name}: already {state}");
    }
    Ok(ExitCode::SUCCESS)
}
