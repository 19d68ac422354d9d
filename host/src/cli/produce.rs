//! `weir produce`: feed Kafka from a source. `jsonl` replays a file of JSON
//! lines (demos, load tests); live sources (NewsAPI, X, Bluesky, Mastodon,
//! RSS) come as further subcommands.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

#[derive(clap::Subcommand)]
enum Source {
    /// Replay a JSON-lines file onto a topic.
    Jsonl(JsonlArgs),
}

#[derive(clap::Args)]
struct JsonlArgs {
    /// File to replay (`-` for stdin).
    #[arg(long)]
    file: PathBuf,
    #[arg(long)]
    topic: String,
    #[arg(long, env = "WEIR_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Top-level JSON field whose value becomes the record key (partitioning).
    #[arg(long, default_value = "id")]
    key_field: String,
    /// Replay the file this many times.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.source {
        Source::Jsonl(a) => jsonl(a).await,
    }
}

fn key_of(line: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn jsonl(a: JsonlArgs) -> anyhow::Result<ExitCode> {
    let text = if a.file.as_os_str() == "-" {
        let mut s = String::new();
        for line in std::io::stdin().lock().lines() {
            s.push_str(&line?);
            s.push('\n');
        }
        s
    } else {
        std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file.display()))?
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("linger.ms", "10")
        .create()
        .context("creating the Kafka producer")?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // The send futures borrow their keys, so keys live as long as `lines`.
    let keys: Vec<String> = lines.iter().map(|l| key_of(l, &a.key_field).unwrap_or_default()).collect();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut pending = futures::stream::FuturesUnordered::new();
    for _ in 0..a.repeat {
        for (line, key) in lines.iter().zip(&keys) {
            if a.rate > 0 {
                let due = started + Duration::from_secs_f64(sent as f64 / a.rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            let mut record = FutureRecord::to(&a.topic).payload(line.as_bytes());
            if !key.is_empty() {
                record = record.key(key.as_bytes());
            }
            pending.push(producer.send(record, Duration::from_secs(30)));
            sent += 1;
            if pending.len() >= 10_000 {
                drain(&mut pending, 5_000).await?;
            }
        }
    }
    drain(&mut pending, 0).await?;
    producer.flush(Duration::from_secs(30)).context("flushing the producer")?;
    eprintln!(
        "produced {sent} records to {} in {:.1}s",
        a.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn drain<F>(pending: &mut futures::stream::FuturesUnordered<F>, keep: usize) -> anyhow::Result<()>
where
    F: std::future::Future<Output = rdkafka::producer::future_producer::OwnedDeliveryResult>,
{
    use futures::StreamExt;
    while pending.len() > keep {
        if let Some(Err((e, _))) = pending.next().await {
            anyhow::bail!("delivery failed: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn key_from_string_or_number_field() {
        assert_eq!(key_of(r#"{"id":"a1"}"#, "id").as_deref(), Some("a1"));
        assert_eq!(key_of(r#"{"id":42}"#, "id").as_deref(), Some("42"));
        assert_eq!(key_of(r#"{"x":1}"#, "id"), None);
        assert_eq!(key_of("not json", "id"), None);
    }
}
