//! `cargo xtask demo`: Weir's main job on embedded defaults.
//!
//! Installs the rig's tools if missing, builds the host and the modules,
//! starts a tansu broker and an osmem server on free loopback ports,
//! replays the shipped samples onto `tweets` and `news`, runs `weir run`
//! with `config/weir.toml`, shows progress and the live status page's URL,
//! prints counts per index and a few documents, and stops everything
//! (`--keep`: keeps it all, status page included, up until Ctrl-C).
//!
//! The samples are replayed with `--retime`: their timestamps are moved so
//! the newest is now, so they land in the dashboard's "last 7 days".
//!
//! Every child runs in its own process group (`weir_testkit::Process`), so
//! the terminal's Ctrl-C reaches only this process, which then stops them
//! in order: exactly one SIGTERM to weir (it drains and commits), then the
//! classifier, osmem and tansu.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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

/// Where `config/weir.toml` expects the classifier service.
const CLASSIFIER: &str = "127.0.0.1:8090";

const STREAMS: [(&str, &str, &str); 2] = [
    ("tweets", "samples/tweets.jsonl", "weir-tweets"),
    ("news", "samples/news.jsonl", "weir-news"),
];

pub fn run(args: &Args) -> Result<()> {
    modules::ensure_target_installed()?;
    tools::install()?;
    modules::build(&modules::Args {
        names: Vec::new(),
        out: None,
    })?;
    let mut build = cargo::cargo();
    build.args(["build", "-p", "weir", "-p", "weir-classifier"]);
    cargo::run(build)?;
    let bin = cargo::target_dir().join("debug");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(demo(args, &bin.join("weir"), &bin.join("weir-classifier")))
}

/// `GET /healthz` of whatever listens on `addr`: whether it is a classifier.
fn classifier_healthy(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
        && response.contains(r#"{"status":"ok"}"#)
}

/// Starts the classifier on [`CLASSIFIER`], or reuses one already there.
async fn start_classifier(bin: &Path) -> Result<Option<Process>> {
    if TcpListener::bind(CLASSIFIER).is_err() {
        if classifier_healthy(CLASSIFIER) {
            eprintln!("demo: using the classifier already listening on {CLASSIFIER}");
            return Ok(None);
        }
        bail!(
            "port {CLASSIFIER} is taken by something that is not weir-classifier; config/weir.toml sends \
             classification requests there (allowed_outbound_hosts and the modules' `url`): free the port and retry"
        );
    }
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", CLASSIFIER]).env("RUST_LOG", "warn");
    let process = Process::spawn("weir-classifier", cmd)?;
    let started = Instant::now();
    while !classifier_healthy(CLASSIFIER) {
        process.ensure_running()?;
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "weir-classifier did not answer /healthz on {CLASSIFIER} in 30 s\n{}",
                process.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "demo: classifier on http://{CLASSIFIER} (log: {})",
        process.log_path().display()
    );
    Ok(Some(process))
}

fn lines(path: &Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).count() as u64)
}

async fn demo(args: &Args, weir: &Path, classifier_bin: &Path) -> Result<()> {
    let root = cargo::workspace_root();
    let classifier = start_classifier(classifier_bin).await?;
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
    eprintln!(
        "demo: weir running (log: {}); metrics at http://{admin}/metrics",
        host.log_path().display()
    );
    eprintln!(
        "demo: live status page at http://{admin}/ (open it in a browser; --keep leaves it up)"
    );

    let mut expected = Vec::new();
    for (topic, file, index) in STREAMS {
        let path = root.join(file);
        expected.push((index, lines(&path)? * args.repeat as u64));
        let mut produce = Command::new(weir);
        produce
            .args([
                "produce",
                "jsonl",
                "--retime",
                "--topic",
                topic,
                "--brokers",
            ])
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

    wait_indexed(&es, &kafka, &expected, &host).await?;
    print_summary(&es, &kafka, &expected).await?;
    if args.keep {
        eprintln!(
            "demo: running; status page at http://{admin}/, metrics at http://{admin}/metrics — Ctrl-C to stop"
        );
        tokio::signal::ctrl_c().await?;
    }
    stop(&host, Duration::from_secs(30)).await?;
    if let Some(classifier) = &classifier {
        stop(classifier, Duration::from_secs(10)).await?;
    }
    stop(osmem.process(), Duration::from_secs(10)).await?;
    stop(kafka.process(), Duration::from_secs(10)).await?;
    eprintln!("demo: done");
    Ok(())
}

/// Sends `process` one SIGTERM and waits for a clean exit (status 0).
async fn stop(process: &Process, timeout: Duration) -> Result<()> {
    let name = process.name();
    eprintln!("demo: stopping {name} (SIGTERM)");
    process.sigterm()?;
    match process.wait_exit(timeout).await {
        Some(s) if s.success() => Ok(()),
        other => bail!(
            "{name} did not stop cleanly: {other:?}{}",
            process.log_excerpt()
        ),
    }
}

/// Records dead-lettered from `index`'s pipeline so far.
async fn dead_lettered(kafka: &Kafka, index: &str) -> u64 {
    let topic = format!("{}-dlq", index.trim_start_matches("weir-"));
    kafka
        .end_offsets(&topic)
        .await
        .map_or(0, |o| o.iter().sum::<i64>() as u64)
}

async fn wait_indexed(
    es: &EsClient,
    kafka: &Kafka,
    expected: &[(&str, u64)],
    host: &Process,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut done = true;
        let mut line = String::new();
        for (index, want) in expected {
            es.refresh(index).await.ok();
            let got = es.count(index).await.unwrap_or(0);
            let dlq = dead_lettered(kafka, index).await;
            done &= got + dlq >= *want;
            line.push_str(&format!("{index}: {got}/{want}"));
            if dlq > 0 {
                line.push_str(&format!(" ({dlq} dead-lettered)"));
            }
            line.push_str("   ");
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

async fn print_summary(es: &EsClient, kafka: &Kafka, expected: &[(&str, u64)]) -> Result<()> {
    println!("\n{:<14} {:>8} {:>14}", "index", "docs", "dead-lettered");
    for (index, _) in expected {
        println!(
            "{:<14} {:>8} {:>14}",
            index,
            es.count(index).await?,
            dead_lettered(kafka, index).await
        );
    }

    println!("\n--- weir-tweets: a few classified tweets ---");
    let hits = es
        .search("weir-tweets", &serde_json::json!({"size": 4, "query": {"terms": {"hate.label": ["offensive", "hate"]}}, "sort": [{"_id": "asc"}]}))
        .await?;
    for hit in hits["hits"]["hits"].as_array().into_iter().flatten() {
        let d = &hit["_source"];
        println!(
            "[{} {:.2}] {}  terms={} hashtags={} mentions={} language={}",
            d["hate"]["label"].as_str().unwrap_or("?"),
            d["hate"]["score"].as_f64().unwrap_or(0.0),
            d["text"].as_str().unwrap_or(""),
            d["hate"]["terms"],
            d["hashtags"],
            d["mentions"],
            d["language"].as_str().unwrap_or("?"),
        );
    }
    println!("\n--- weir-news: a few classified articles ---");
    let hits = es
        .search(
            "weir-news",
            &serde_json::json!({"size": 4, "sort": [{"_id": "asc"}]}),
        )
        .await?;
    for hit in hits["hits"]["hits"].as_array().into_iter().flatten() {
        let d = &hit["_source"];
        println!(
            "[{} {:+.3}] {}",
            d["sentiment"]["label"].as_str().unwrap_or("?"),
            d["sentiment"]["score"].as_f64().unwrap_or(0.0),
            d["title"].as_str().unwrap_or(""),
        );
    }
    let one = es
        .search(
            "weir-tweets",
            &serde_json::json!({"size": 1, "sort": [{"_id": "asc"}]}),
        )
        .await?;
    if let Some(doc) = one["hits"]["hits"][0].get("_source") {
        println!(
            "\n--- one whole document (weir-tweets) ---\n{}",
            serde_json::to_string_pretty(doc)?
        );
    }

    println!("\n--- label distributions (terms aggregations) ---");
    for (index, field) in [
        ("weir-tweets", "hate.label"),
        ("weir-news", "sentiment.label"),
    ] {
        let agg = es
            .search(index, &serde_json::json!({"size": 0, "aggs": {"labels": {"terms": {"field": field, "size": 10}}}}))
            .await?;
        let buckets: Vec<String> = agg["aggregations"]["labels"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("{} {}", b["key"].as_str().unwrap_or("?"), b["doc_count"]))
            .collect();
        println!("{index:<12} {field:<16} {}", buckets.join(", "));
    }
    Ok(())
}
