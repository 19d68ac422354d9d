//! `__kafka-ceiling`: the most a Kafka consumer gets from the broker here.
//! A bare librdkafka consumer in the same group setup as the host (same
//! fetch queue size, offsets stored per message after "processing",
//! auto-commit every second), which does nothing with the records. Prints
//! one `RESULT {json}` line measured from its first record on.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;

use weir_benches::procstat;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    records: u64,
}

pub fn run(args: &Args) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", "16384")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("log_level", "3")
        .create()
        .context("create the consumer")?;
    consumer.subscribe(&[&args.topic])?;
    let pid = std::process::id();
    let started = Instant::now();
    let mut first: Option<(Instant, f64)> = None;
    let mut n = 0u64;
    let mut bytes = 0usize;
    while n < args.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if first.is_none() {
                    first = Some((Instant::now(), procstat::cpu_seconds(pid)?));
                }
                bytes += m.payload().map_or(0, <[u8]>::len);
                consumer.store_offset_from_message(&m)?;
                n += 1;
            }
            Some(Err(e)) => eprintln!("consumer error: {e}"),
            None => {}
        }
        if first.is_none() && started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("no record within 120 s");
        }
    }
    let end = Instant::now();
    let cpu_end = procstat::cpu_seconds(pid)?;
    let (t0, cpu0) = first.expect("records were read");
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .context("final commit")?;
    let result = serde_json::json!({
        "records": n,
        "bytes": bytes,
        "startup_s": (t0 - started).as_secs_f64(),
        // The first record is the start mark; the rest are the steady state.
        "steady_records": n - 1,
        "steady_s": (end - t0).as_secs_f64(),
        "steady_cpu_s": cpu_end - cpu0,
        "cpu_total_s": procstat::cpu_seconds(pid)?,
        "peak_rss_bytes": procstat::peak_rss_bytes(pid)?,
    });
    println!("RESULT {result}");
    Ok(())
}
