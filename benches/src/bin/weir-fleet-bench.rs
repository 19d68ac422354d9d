//! A fleet's control plane (issue 13), printed, not asserted:
//!
//! - **convergence**: `--hosts` `weir run` processes share one control
//!   topic (tansu) and one tenant whose pipeline runs module `tag`;
//!   `--uploads` uploads of a new version (fixture-stamp-a with a custom
//!   section naming the round, so every upload is a new digest), each
//!   through the next host's API in turn. Per upload: the time from
//!   sending it to its 200 answer (check, write, apply on that host), and
//!   from the 200 answer until every host's `/v1/status` shows
//!   `control.applied_offset` at or past the answer's `control_offset`
//!   (each host polled every 2 ms); p50, p99 and max of each.
//!   Each host has its own compile cache, so each compiles each version.
//! - **idle cost**: then, with no record and no change flowing, each
//!   host's CPU (% of one core, `/proc/<pid>/stat` over `--idle`) and RSS.
//!
//! `cargo build --release -p weir -p weir-benches && target/release/weir-fleet-bench`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use serde_json::Value;
use weir_benches::procstat;
use weir_testkit::with_custom_section;
use weir_testkit::{Kafka, Osmem, Process, free_port, module_wasm};

#[derive(Parser)]
struct Args {
    /// Hosts in the fleet.
    #[arg(long, default_value_t = 3)]
    hosts: usize,
    /// Uploads timed.
    #[arg(long, default_value_t = 20)]
    uploads: usize,
    /// How long idle CPU is measured over.
    #[arg(long, default_value = "10s")]
    idle: humantime::Duration,
    /// The `weir` binary (default: next to this one).
    #[arg(long)]
    weir_bin: Option<PathBuf>,
}

const TOKEN: &str = "bench-token-0123456789";

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

struct FleetHost {
    process: Process,
    admin: String,
}

fn host_config(root: &Path, kafka: &Kafka, es: &str, port: u16) -> Result<PathBuf> {
    let tenants = root.join("tenants");
    std::fs::create_dir_all(&tenants)?;
    let path = root.join("weir.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[kafka]
brokers = "{brokers}"
group_id = "weir-fleet-bench"
[kafka.consumer_properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 1000
[elasticsearch]
url = "{es}"
[admin]
listen = "127.0.0.1:{port}"
[runtime]
# Its own compile cache, as on its own machine: every host compiles
# every version.
cache_dir = "{cache}"
[tenants]
dir = "{tenants}"
[control]
mode = "kafka"
replication_factor = 1
"#,
            brokers = kafka.bootstrap(),
            tenants = tenants.display(),
            cache = root.join("cache").display(),
        ),
    )?;
    Ok(path)
}

async fn start_host(weir: &Path, config: &Path, port: u16) -> Result<FleetHost> {
    let mut cmd = Command::new(weir);
    cmd.arg("run").arg("-c").arg(config).env("RUST_LOG", "warn");
    let process = Process::spawn("weir", cmd)?;
    let admin = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{admin}/metrics")).await.is_err() {
        process.ensure_running()?;
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "weir did not open its admin endpoint:\n{}",
            process.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(FleetHost { process, admin })
}

/// A write through the API; its control offset.
async fn write(req: reqwest::RequestBuilder, what: &str) -> Result<i64> {
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    ensure!(status.is_success(), "{what}: {status} {body}");
    body["control_offset"]
        .as_i64()
        .with_context(|| format!("{what}: no control_offset"))
}

async fn applied(client: &reqwest::Client, host: &FleetHost) -> Result<i64> {
    let status: Value = client
        .get(format!("{}/v1/status", host.admin))
        .send()
        .await?
        .json()
        .await?;
    status["control"]["applied_offset"]
        .as_i64()
        .context("no control status")
}

/// Waits until `host` applied `offset`; when it first saw it.
async fn until_applied(client: &reqwest::Client, host: &FleetHost, offset: i64) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if applied(client, host).await? >= offset {
            return Ok(Instant::now());
        }
        ensure!(
            Instant::now() < deadline,
            "{} never applied {offset}",
            host.admin
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn percentiles(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        at(0.5),
        at(0.99),
        ms[ms.len() - 1],
        ms.len()
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let weir = match &args.weir_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("exe has a folder")?
            .join("weir"),
    };
    ensure!(weir.is_file(), "no weir binary at {}", weir.display());
    let kafka = Kafka::start().await?;
    let osmem = Osmem::start().await?;
    kafka.create_topic("bench.events", 6).await?;
    kafka.create_topic("bench.events-dlq", 1).await?;
    let work = tempfile::tempdir()?;
    let mut hosts = Vec::new();
    for i in 0..args.hosts {
        let port = free_port();
        let config = host_config(
            &work.path().join(format!("h{i}")),
            &kafka,
            &osmem.url(),
            port,
        )?;
        hosts.push(start_host(&weir, &config, port).await?);
    }
    let client = reqwest::Client::new();
    let base = std::fs::read(module_wasm("fixture-stamp-a")?)?;
    let tenant =
        |pipelines: &str| format!("token_sha256 = \"{}\"\n{pipelines}", sha(TOKEN.as_bytes()));
    let first = &hosts[0];
    write(
        client
            .put(format!("{}/v1/control/tenants/bench", first.admin))
            .body(tenant("")),
        "add the tenant",
    )
    .await?;
    write(
        client
            .put(format!("{}/v1/tenants/bench/modules/tag", first.admin))
            .bearer_auth(TOKEN)
            .body(base.clone()),
        "first upload",
    )
    .await?;
    let offset = write(
        client
            .put(format!("{}/v1/control/tenants/bench", first.admin))
            .body(tenant(
                "[pipelines.events]\ntopics = [\"bench.events\"]\nindex = \"bench-events\"\nmodules = [{ path = \"tag.wasm\" }]\n",
            )),
        "the tenant's pipeline",
    )
    .await?;
    for h in &hosts {
        until_applied(&client, h, offset).await?;
    }

    let (mut answer_ms, mut converge_ms) = (Vec::new(), Vec::new());
    for round in 0..args.uploads {
        let bytes = with_custom_section(
            &base,
            "weir-bench-tenant",
            format!("round-{round}").as_bytes(),
        );
        let via = &hosts[round % hosts.len()];
        let sent = Instant::now();
        let offset = write(
            client
                .put(format!("{}/v1/tenants/bench/modules/tag", via.admin))
                .bearer_auth(TOKEN)
                .header("content-type", "application/wasm")
                .body(bytes),
            "upload",
        )
        .await?;
        let answered = Instant::now();
        let seen =
            futures::future::try_join_all(hosts.iter().map(|h| until_applied(&client, h, offset)))
                .await?;
        let all = seen.into_iter().max().unwrap_or(answered);
        answer_ms.push((answered - sent).as_secs_f64() * 1e3);
        converge_ms.push(all.saturating_duration_since(answered).as_secs_f64() * 1e3);
    }
    println!(
        "fleet of {} hosts, {} uploads of a {} KiB module (each a new digest), round-robin over the hosts",
        hosts.len(),
        args.uploads,
        base.len() / 1024
    );
    percentiles(
        "upload answered (check + write + apply on the receiving host)",
        answer_ms,
    );
    percentiles("200 answer -> every host applied", converge_ms);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: Duration = args.idle.into();
    let before: Vec<f64> = hosts
        .iter()
        .map(|h| procstat::cpu_seconds(h.process.pid()))
        .collect::<Result<_>>()?;
    let t0 = Instant::now();
    tokio::time::sleep(idle).await;
    let elapsed = t0.elapsed().as_secs_f64();
    for (i, (h, b)) in hosts.iter().zip(before).enumerate() {
        let cpu = procstat::cpu_seconds(h.process.pid())? - b;
        let rss = procstat::rss_bytes(h.process.pid())?;
        println!(
            "host {i} idle: CPU {:.2}% of a core over {:.0} s, RSS {:.1} MiB",
            cpu / elapsed * 100.0,
            elapsed,
            rss as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
