//! `weir modules status | rollback`: talk to a running host's admin API.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    /// The running host's admin address.
    #[arg(
        long,
        env = "WEIR_ADMIN",
        default_value = "http://127.0.0.1:9464",
        global = true
    )]
    admin: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Active version, kept versions and last load error of every module.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-activate a kept version (default: the one before the active one).
    Rollback {
        /// `MODULE` or `PIPELINE/MODULE` (needed when several pipelines use it).
        target: String,
        /// A digest prefix of the version to activate.
        #[arg(long)]
        to: Option<String>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    let base = args.admin.trim_end_matches('/');
    let report: Value = client
        .get(format!("{base}/v1/modules"))
        .send()
        .await
        .with_context(|| format!("reaching the admin endpoint at {base}"))?
        .error_for_status()?
        .json()
        .await?;
    match args.command {
        Command::Status { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_status(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rollback { target, to } => {
            let (pipeline, module) = resolve(&report, &target)?;
            let resp = client
                .post(format!("{base}/v1/modules/{pipeline}/{module}/rollback"))
                .json(&serde_json::json!({ "to": to }))
                .send()
                .await?;
            let ok = resp.status().is_success();
            let body: Value = resp.json().await?;
            if !ok {
                bail!(
                    "rollback refused: {}",
                    body["error"].as_str().unwrap_or("unknown error")
                );
            }
            println!(
                "{pipeline}/{module}: active {}",
                body["active"]["label"].as_str().unwrap_or("?")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn modules(report: &Value) -> impl Iterator<Item = &Value> {
    report["modules"].as_array().into_iter().flatten()
}

/// `MODULE` or `PIPELINE/MODULE` → the one module it names.
fn resolve(report: &Value, target: &str) -> anyhow::Result<(String, String)> {
    if let Some((p, m)) = target.split_once('/') {
        return Ok((p.to_string(), m.to_string()));
    }
    let matches: Vec<String> = modules(report)
        .filter(|m| m["module"] == target)
        .filter_map(|m| m["pipeline"].as_str().map(String::from))
        .collect();
    match matches.as_slice() {
        [one] => Ok((one.clone(), target.to_string())),
        [] => bail!("no module named `{target}` is running"),
        many => bail!(
            "`{target}` runs in several pipelines ({}); use PIPELINE/{target}",
            many.join(", ")
        ),
    }
}

fn print_status(report: &Value) {
    for m in modules(report) {
        println!(
            "{}/{}  active {}  ({} kept)",
            m["pipeline"].as_str().unwrap_or("?"),
            m["module"].as_str().unwrap_or("?"),
            m["active"]["label"].as_str().unwrap_or("?"),
            m["versions"].as_array().map_or(0, Vec::len)
        );
        if let Some(e) = m["last_error"].as_object() {
            println!(
                "    last rejected: {} ({})",
                e["message"].as_str().unwrap_or(""),
                e["at"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(e) = report["config"]["last_error"].as_str() {
        println!("config: last reload rejected: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn resolves_unique_and_refuses_ambiguous_names() {
        let report = serde_json::json!({"modules": [
            {"pipeline": "tweets", "module": "text-clean"},
            {"pipeline": "news", "module": "text-clean"},
            {"pipeline": "news", "module": "sentiment"},
        ]});
        assert_eq!(
            resolve(&report, "sentiment").unwrap(),
            ("news".into(), "sentiment".into())
        );
        assert!(
            resolve(&report, "text-clean")
                .unwrap_err()
                .to_string()
                .contains("several pipelines")
        );
        assert_eq!(
            resolve(&report, "tweets/text-clean").unwrap(),
            ("tweets".into(), "text-clean".into())
        );
        assert!(resolve(&report, "nope").is_err());
    }
}
