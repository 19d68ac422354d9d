//! Delivery under failure, on the real rig: a host killed with SIGKILL, an
//! Elasticsearch outage, partial bulk rejections, graceful shutdown under
//! load, and a second host taking over a dead one's partitions.

#[path = "rig/mod.rs"]
mod rig;

use std::time::Duration;

use anyhow::{Result, ensure};
use rig::*;
use weir_testkit::{Fault, FaultProxy};

fn tweets_pipeline() -> Vec<PipelineSpec> {
    vec![PipelineSpec::new("tweets", "tweets", "weir-tweets").module("text-clean", &[])]
}

async fn count(rig: &Rig, index: &str) -> u64 {
    let es = rig.es();
    es.refresh(index).await.ok();
    es.count(index).await.unwrap_or(0)
}

/// Waits until at least `n` documents are in `index`.
async fn wait_count_at_least(rig: &Rig, index: &str, n: u64, host: &Host) -> Result<u64> {
    wait_for(
        &format!("at least {n} documents"),
        Duration::from_secs(120),
        Some(host),
        || async {
            let c = count(rig, index).await;
            Ok((c >= n).then_some(c))
        },
    )
    .await
}

/// `kill -9` mid-indexing, restart: every record is indexed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_restart_loses_and_duplicates_nothing() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let placed = rig.load("tweets", (0..50_000).map(tweet).collect()).await?;
    let config = HostConfig::new(&rig.osmem.url(), tweets_pipeline());
    let first = Host::start(&rig, &config).await?;
    let seen = wait_count_at_least(&rig, "weir-tweets", 10_000, &first).await?;
    first.process.kill9()?;
    let at_kill = count(&rig, "weir-tweets").await;
    ensure!(
        at_kill < 50_000,
        "the host finished before it could be killed ({seen} seen)"
    );
    let second = Host::start(&rig, &config).await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &placed),
        Some(&second),
        Duration::from_secs(240),
    )
    .await?;
    assert_committed_to_end(&rig, &config.group, "tweets", Some(&second)).await?;
    Ok(())
}

/// Waits until the host has retried Elasticsearch `n` more times.
async fn after_retries(host: &Host, n: f64) -> Result<()> {
    let from = host.metric("weir_es_retries", &[]).await?;
    wait_for(
        &format!("{n} more Elasticsearch retries"),
        Duration::from_secs(60),
        Some(host),
        || async { Ok((host.metric("weir_es_retries", &[]).await? >= from + n).then_some(())) },
    )
    .await
}

/// Elasticsearch unreachable for a while mid-stream: no offset moves while
/// it is down, then everything is indexed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_outage_holds_offsets_and_loses_nothing() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let placed = rig.load("tweets", (0..20_000).map(tweet).collect()).await?;
    let proxy = FaultProxy::start(rig.osmem.url()).await?;
    let config = HostConfig::new(&proxy.url(), tweets_pipeline());
    let host = Host::start(&rig, &config).await?;
    wait_count_at_least(&rig, "weir-tweets", 3_000, &host).await?;

    proxy.set(Fault::Refuse).await?;
    // Clocked by the host's own retries, not by sleeps: once it reports the
    // sink down, the acknowledgements of requests that completed before
    // the outage have settled when the offsets stay put across a retry;
    // then they must stay put across several more.
    wait_for(
        "healthz to report the sink down",
        Duration::from_secs(60),
        Some(&host),
        || async {
            let status = reqwest::get(format!("{}/healthz", host.admin))
                .await?
                .status();
            Ok((status == 503).then_some(()))
        },
    )
    .await?;
    let mut before = rig.kafka.committed_offsets(&config.group, "tweets").await?;
    loop {
        after_retries(&host, 1.0).await?;
        let now = rig.kafka.committed_offsets(&config.group, "tweets").await?;
        if now == before {
            break;
        }
        before = now;
    }
    let indexed_before = count(&rig, "weir-tweets").await;
    after_retries(&host, 3.0).await?;
    let during = rig.kafka.committed_offsets(&config.group, "tweets").await?;
    ensure!(
        before == during,
        "offsets moved while Elasticsearch was down: {before:?} -> {during:?}"
    );
    ensure!(
        count(&rig, "weir-tweets").await == indexed_before,
        "documents indexed through a refusing proxy?"
    );
    let committed: i64 = during.iter().map(|o| o.unwrap_or(0)).sum();
    ensure!(
        committed as u64 <= indexed_before,
        "committed {committed} records but only {indexed_before} are indexed"
    );
    let health = reqwest::get(format!("{}/healthz", host.admin)).await?;
    ensure!(
        health.status() == 503,
        "healthz should report the sink down, got {}",
        health.status()
    );

    proxy.set(Fault::None).await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &placed),
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;
    assert_committed_to_end(&rig, &config.group, "tweets", Some(&host)).await?;
    ensure!(
        host.metric("weir_es_retries", &[]).await? > 0.0,
        "retries not visible in metrics"
    );
    Ok(())
}

/// 10% of bulk items rejected with 429: all eventually indexed, retries
/// visible in metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_bulk_rejections_are_retried_item_by_item() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let placed = rig.load("tweets", (0..10_000).map(tweet).collect()).await?;
    let proxy = FaultProxy::start(rig.osmem.url()).await?;
    proxy
        .set(Fault::BulkItems {
            status: 429,
            ratio: 0.1,
        })
        .await?;
    let config = HostConfig::new(&proxy.url(), tweets_pipeline());
    let host = Host::start(&rig, &config).await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &placed),
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;
    ensure!(
        proxy.faulted_items() >= 1_000,
        "proxy faulted only {} items",
        proxy.faulted_items()
    );
    let retried = host
        .metric("weir_es_items", &["outcome=\"retried\""])
        .await?;
    ensure!(
        retried >= proxy.faulted_items() as f64,
        "metrics show {retried} retried items, proxy faulted {}",
        proxy.faulted_items()
    );
    let dead = host
        .metric("weir_es_items", &["outcome=\"dead_lettered\""])
        .await?;
    ensure!(
        dead == 0.0,
        "{dead} items dead-lettered; 429s must be retried"
    );
    assert_committed_to_end(&rig, &config.group, "tweets", Some(&host)).await?;
    Ok(())
}

/// SIGTERM under load: exit 0 within the drain timeout with offsets
/// committed exactly up to what was indexed, so a restart re-delivers
/// nothing already indexed and the count ends exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_commits_what_was_indexed() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let placed = rig.load("tweets", (0..30_000).map(tweet).collect()).await?;
    let config = HostConfig::new(&rig.osmem.url(), tweets_pipeline());
    let host = Host::start(&rig, &config).await?;
    wait_count_at_least(&rig, "weir-tweets", 5_000, &host).await?;
    host.process.sigterm()?;
    let status = host.process.wait_exit(Duration::from_secs(25)).await;
    ensure!(
        status.is_some_and(|s| s.success()),
        "weir did not exit 0 within the drain timeout: {status:?}\n{}",
        host.process.log_tail()
    );

    // Everything indexed is committed and nothing committed is unindexed:
    // per partition, indexed offsets are exactly 0..committed.
    let committed = rig.kafka.committed_offsets(&config.group, "tweets").await?;
    let es = rig.es();
    es.refresh("weir-tweets").await?;
    let ids = es.ids("weir-tweets").await?;
    for (p, c) in committed.iter().enumerate() {
        let c = c.unwrap_or(0);
        let indexed = placed
            .iter()
            .filter(|(pp, o)| *pp == p as i32 && ids.contains(&format!("tweets-{pp}-{o}-0")))
            .count() as i64;
        ensure!(
            indexed == c,
            "partition {p}: {indexed} indexed but committed offset {c}"
        );
    }
    let total_committed: i64 = committed.iter().map(|c| c.unwrap_or(0)).sum();
    ensure!(
        total_committed < 30_000,
        "everything finished before SIGTERM; the test proves nothing"
    );

    let second = Host::start(&rig, &config).await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &placed),
        Some(&second),
        Duration::from_secs(180),
    )
    .await?;
    let redelivered = second.metric("weir_records_consumed", &[]).await?;
    ensure!(
        redelivered as i64 == 30_000 - total_committed,
        "the restarted host consumed {redelivered} records, expected {}",
        30_000 - total_committed
    );
    Ok(())
}

/// Two hosts in one group split the partitions; one is killed with SIGKILL
/// mid-stream and the other takes its partitions over: every record
/// indexed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_takes_over_a_killed_hosts_partitions() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let placed = rig.load("tweets", (0..40_000).map(tweet).collect()).await?;
    let config = HostConfig::new(&rig.osmem.url(), tweets_pipeline());
    let a = Host::start(&rig, &config).await?;
    let b = Host::start(&rig, &config).await?;
    // Both members hold partitions once the group has rebalanced.
    wait_for(
        "both hosts to hold partitions",
        Duration::from_secs(60),
        Some(&b),
        || async {
            let pa = a.metric("weir_assigned_partitions", &[]).await?;
            let pb = b.metric("weir_assigned_partitions", &[]).await?;
            Ok((pa > 0.0 && pb > 0.0 && pa + pb == PARTITIONS as f64).then_some(()))
        },
    )
    .await?;
    wait_count_at_least(&rig, "weir-tweets", 12_000, &b).await?;
    a.process.kill9()?;
    ensure!(
        count(&rig, "weir-tweets").await < 40_000,
        "finished before the kill; the test proves nothing"
    );
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &placed),
        Some(&b),
        Duration::from_secs(240),
    )
    .await?;
    ensure!(
        b.metric("weir_assigned_partitions", &[]).await? == PARTITIONS as f64,
        "survivor does not hold every partition"
    );
    assert_committed_to_end(&rig, &config.group, "tweets", Some(&b)).await?;
    Ok(())
}
