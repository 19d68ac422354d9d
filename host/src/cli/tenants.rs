//! `weir tenants list | show | token | put | remove`.

use std::process::ExitCode;

use anyhow::Context;
use rand::TryRngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::admin_api::{Api, Endpoint, segment};

#[derive(clap::Args)]
pub struct TenantsArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Tenants the token may see (the operator: all; a tenant: itself).
    List {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// One tenant: settings, quotas and its pipelines with status.
    Show {
        id: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a new API token: prints it once, and the hash line for the
    /// tenant's file (or `[admin]` for the operator).
    Token,
    /// Add or replace a tenant on every host of a fleet
    /// (`control.mode = "kafka"`) from its tenant file; operator only.
    Put {
        id: String,
        /// The tenant file (`<id>.toml`'s content).
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Remove a tenant from every host of a fleet; operator only.
    Remove { id: String },
}

pub async fn run(args: TenantsArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.endpoint);
    match args.command {
        Command::Token => {
            let (token, hash) = new_token()?;
            println!("token (shown once; give it to its holder, the host keeps only the hash):");
            println!("  {token}");
            println!("for tenants/<id>.toml:");
            println!("  token_sha256 = \"{hash}\"");
            println!("or, for the operator, in [admin] of weir.toml:");
            println!("  operator_token_sha256 = \"{hash}\"");
            Ok(ExitCode::SUCCESS)
        }
        Command::Put { id, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let v = api
                .send(
                    api.request(
                        reqwest::Method::PUT,
                        &format!("/v1/control/tenants/{}", segment(&id)),
                    )
                    .header("content-type", "application/toml")
                    .body(text),
                )
                .await?;
            println!(
                "tenant {id} applied on this host at control offset {}",
                v["control_offset"]
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Remove { id } => {
            let v = api
                .send(api.request(
                    reqwest::Method::DELETE,
                    &format!("/v1/control/tenants/{}", segment(&id)),
                ))
                .await?;
            println!(
                "tenant {id} removed on this host at control offset {}",
                v["control_offset"]
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::List { json } => {
            let v = api.get("/v1/tenants").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for t in v["tenants"].as_array().into_iter().flatten() {
                    print_tenant_line(t);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id, json } => {
            let tenant = api.get(&format!("/v1/tenants/{}", segment(&id))).await?;
            let pipelines = api
                .get(&format!("/v1/tenants/{}/pipelines", segment(&id)))
                .await?;
            if json {
                let both =
                    serde_json::json!({"tenant": tenant, "pipelines": pipelines["pipelines"]});
                println!("{}", serde_json::to_string_pretty(&both)?);
            } else {
                print_tenant_line(&tenant);
                println!(
                    "  quotas: {}",
                    serde_json::to_string(&tenant["quotas"]).unwrap_or_default()
                );
                for p in pipelines["pipelines"].as_array().into_iter().flatten() {
                    print_pipeline(p);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// 32 random bytes from the OS, hex; and their sha256, hex.
pub fn new_token() -> anyhow::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .context("reading the OS random source")?;
    let token = format!("weir_{}", hex::encode(bytes));
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    Ok((token, hash))
}

fn print_tenant_line(t: &Value) {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    println!(
        "{}  weight {}  index {}*  topics {}*  pipelines [{}]{}",
        t["id"].as_str().unwrap_or("?"),
        t["weight"],
        t["index_prefix"].as_str().unwrap_or("?"),
        list(&t["topic_prefixes"]),
        list(&t["pipelines"]),
        if t["has_token"] == false {
            "  (no token: no API access)"
        } else {
            ""
        },
    );
}

pub fn print_pipeline(p: &Value) {
    println!(
        "  {}  {}  breaker {}  {:.1} rec/s  {} consumed  {} batches",
        p["name"].as_str().unwrap_or("?"),
        if p["paused"] == true {
            "PAUSED"
        } else {
            "running"
        },
        p["breaker"]["state"].as_str().unwrap_or("?"),
        p["records_per_second"].as_f64().unwrap_or(0.0),
        p["records_consumed"],
        p["batches"],
    );
    for m in p["modules"].as_array().into_iter().flatten() {
        println!(
            "    {}  active {}  ({} kept)",
            m["module"].as_str().unwrap_or("?"),
            m["active"]["label"].as_str().unwrap_or("?"),
            m["versions"].as_array().map_or(0, Vec::len)
        );
    }
    for e in p["last_errors"].as_array().into_iter().flatten() {
        println!(
            "    last rejected: {} ({})",
            e["message"].as_str().unwrap_or(""),
            e["at"].as_str().unwrap_or("")
        );
    }
}
