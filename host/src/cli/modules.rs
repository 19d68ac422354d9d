//! `weir modules status | rollback | push`: talk to a running host's admin
//! API — the operator's `/v1/modules`, or with `--tenant` a tenant's
//! `/v1/tenants/<id>/…`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;

use super::admin_api::{Api, Endpoint, require_tenant, segment};

#[derive(clap::Args)]
pub struct ModulesArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Act as / on this tenant (its pipelines, its modules folder).
    #[arg(long, env = "WEIR_TENANT", global = true)]
    tenant: Option<String>,
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
    /// Upload a component to a tenant's modules folder; it is validated and
    /// activated in every pipeline that uses that module, or refused.
    Push {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Module name (its file is `<name>.wasm`); default: the file stem.
        #[arg(long)]
        name: Option<String>,
    },
}

pub async fn run(args: ModulesArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.endpoint);
    let tenant = args.tenant.as_deref();
    match args.command {
        Command::Status { json } => {
            let report = fetch(&api, tenant).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_status(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rollback { target, to } => {
            let report = fetch(&api, tenant).await?;
            let (pipeline, module) = resolve(&report, &target)?;
            let path = match tenant {
                Some(t) => format!(
                    "/v1/tenants/{}/pipelines/{}/modules/{}/rollback",
                    segment(t),
                    segment(pipeline.strip_prefix(&format!("{t}.")).unwrap_or(&pipeline)),
                    segment(&module)
                ),
                None => format!(
                    "/v1/modules/{}/{}/rollback",
                    segment(&pipeline),
                    segment(&module)
                ),
            };
            let body = api
                .send(
                    api.request(Method::POST, &path)
                        .json(&serde_json::json!({ "to": to })),
                )
                .await
                .context("rollback refused")?;
            println!(
                "{pipeline}/{module}: active {}",
                body["active"]["label"].as_str().unwrap_or("?")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Push { file, name } => {
            let tenant = require_tenant(tenant, "`weir modules push`")?;
            let name = match name {
                Some(n) => n,
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            if !weir::config::valid_module_name(&name) {
                bail!(
                    "`{name}` is not a module name: use 1-64 of a-z, 0-9, '-' and '_' (--name sets it)"
                );
            }
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let report = api
                .send(
                    api.request(
                        Method::PUT,
                        &format!(
                            "/v1/tenants/{}/modules/{}",
                            segment(&tenant),
                            segment(&name)
                        ),
                    )
                    .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                    .body(bytes),
                )
                .await
                .with_context(|| format!("module `{name}` refused"))?;
            println!(
                "accepted {tenant}/{name} sha256:{} ({} bytes)",
                report["digest"].as_str().unwrap_or("?"),
                report["bytes"]
            );
            let activated: Vec<&str> = report["activated"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if activated.is_empty() {
                println!("stored; no pipeline of {tenant} uses `{name}` yet");
            } else {
                println!("activated in: {}", activated.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The modules report: the host's (`/v1/modules`), or with a tenant the
/// modules of its pipelines in the same shape.
async fn fetch(api: &Api, tenant: Option<&str>) -> anyhow::Result<Value> {
    let Some(t) = tenant else {
        return api.get("/v1/modules").await;
    };
    let v = api
        .get(&format!("/v1/tenants/{}/pipelines", segment(t)))
        .await?;
    let modules: Vec<Value> = v["pipelines"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["modules"].as_array().cloned().unwrap_or_default())
        .collect();
    Ok(serde_json::json!({ "modules": modules }))
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
