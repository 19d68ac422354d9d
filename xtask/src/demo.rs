//! `cargo xtask demo`: Weir's main job on embedded defaults.
//!
//! Installs the rig's tools if missing, builds the host and the modules,
//! starts a tansu broker and an osmem server on free loopback ports,
//! replays the shipped samples onto `tweets` and `news`, runs `weir run`
//! with `config/weir.toml`, shows progress and the live status page's URL,
//! prints counts per index and a few documents, and stops everything
//! (`--keep`: keeps it all, status page included, up until Ctrl-C).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weir_testkit::{EsClient, Kafka, Osmem, Process, free_port};

use crate::{cargo, modules, tools};

#[derive(clap::Args)]
pub struct Args {
    /// Keep everything running after the samples are indexed, until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// Replay each sample file this many times (more load).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

const STREAMS: [(&str, &str, &str); 2] = [
    ("tweets", "samples/tweets.jsonl", "weir-tweets"),
    ("news", "samples/news.jsonl", "weir-news"),
];

pub fn run(args: &Args) -> Result<()> {
    tools::install()?;
    modules::build(&modules::Args {
        names: Vec::new(),
        out: None,
    })?;
    let mut build = cargo::cargo();
    build.args(["build", "-p", "weir"]);
    cargo::run(build)?;
    let weir = cargo::target_dir().join("debug").join("weir");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(demo(args, &weir))
}

fn lines(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).count() as u64)
}

async fn demo(args: &Args, weir: &Path) -> Result<()> {
    let root = cargo::workspace_root();
    eprintln!("demo: starting tansu (Kafka) and osmem (Elasticsearch stand-in)");
    let kafka = Kafka::start().await?;
    let osmem = Osmem::start().await?;
    let es = osmem.client();
    for (topic, _, _) in STREAMS {
        kafka.create_topic(topic, 4).await?;
        kafka.create_topic(&format!("{topic}-dlq"), 1).await?;
    }

    let admin = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(weir);
    cmd.args(["run", "-c"])
        .arg(root.join("config/weir.toml"))
        .env("WEIR_KAFKA_BROKERS", kafka.bootstrap())
        .env("WEIR_ELASTICSEARCH_URL", osmem.url())
        .env("WEIR_ADMIN_LISTEN", &admin)
        .env("WEIR_KAFKA_GROUP_ID", "weir-demo");
    let host = Process::spawn("weir", cmd)?;
    eprintln!("demo: weir running (log: {}); metrics at http://{admin}/metrics", host.log_path().display());
    eprintln!("demo: live status page at http://{admin}/ (open it in a browser; --keep leaves it up)");

    let mut expected = Vec::new();
    for (topic, file, index) in STREAMS {
        let path = root.join(file);
        expected.push((index, lines(&path)? * args.repeat as u64));
        let mut produce = Command::new(weir);
        produce
            .args(["produce", "jsonl", "--topic", topic, "--brokers"])
            .arg(kafka.bootstrap())
            .arg("--file")
            .arg(&path)
            .arg("--repeat")
            .arg(args.repeat.to_string());
        let status = produce.status().context("running weir produce")?;
        if !status.success() {
            bail!("weir produce failed for {topic}");
        }
    }

    wait_indexed(&es, &expected, &host).await?;
    print_summary(&es, &expected).await?;
    if args.keep {
        eprintln!("demo: running; status page at http://{admin}/, metrics at http://{admin}/metrics — Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    eprintln!("demo: stopping weir (SIGTERM)");
    host.sigterm()?;
    match host.wait_exit(Duration::from_secs(30)).await {
        Some(s) if s.success() => {}
        other => bail!("weir did not stop cleanly: {other:?}\n{}", host.log_tail()),
    }
    eprintln!("demo: done");
    Ok(())
}

async fn wait_indexed(es: &EsClient, expected: &[(&str, u64)], host: &Process) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut done = true;
        let mut line = String::new();
        for (index, want) in expected {
            es.refresh(index).await.ok();
            let got = es.count(index).await.unwrap_or(0);
            done &= got >= *want;
            line.push_str(&format!("{index}: {got}/{want}   "));
        }
        eprint!("\rdemo: indexed {line}");
        if done {
            eprintln!("({:.1}s)", started.elapsed().as_secs_f64());
            return Ok(());
        }
        host.ensure_running()?;
        if started.elapsed() > Duration::from_secs(300) {
            bail!("samples not indexed within 300 s\n{}", host.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn print_summary(es: &EsClient, expected: &[(&str, u64)]) -> Result<()> {
    println!("\n{:<14} {:>8}", "index", "docs");
    for (index, _) in expected {
        println!("{:<14} {:>8}", index, es.count(index).await?);
    }
    for (index, _) in expected {
        let hits = es
            .search(index, &serde_json::json!({"size": 3, "sort": [{"_id": "asc"}]}))
            .await?;
        println!("\n--- {index}: a few documents ---");
        for hit in hits["hits"]["hits"].as_array().into_iter().flatten() {
            println!("{}", serde_json::to_string(&hit["_source"])?);
        }
    }
    Ok(())
}
