//! Multi-tenant hosting on the real rig: tenants defined by files in a
//! tenants folder, each with its own topics, index, dead-letter topic and
//! quotas. A runaway tenant and a memory bomb are stopped by their limits
//! and dead-lettered to their own topics while a quiet tenant indexes
//! everything; tenants come and go by adding and removing their files.
//!
//! Needs the fixture modules: `cargo xtask modules`.

#[path = "rig/mod.rs"]
mod rig;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rig::*;
use sha2::{Digest, Sha256};
use weir::sinks::dead_letter::headers;

/// The breaker backs off briefly here, so a tenant whose every batch fails
/// still gets through its records within the test.
const BREAKER: &str =
    "[tenants.breaker]\nfailure_threshold = 3\nbase_backoff = \"100ms\"\nmax_backoff = \"500ms\"\n";

const B_TOKEN: &str = "tenant-b-token-0123456789";

async fn count(rig: &Rig, index: &str) -> u64 {
    let es = rig.es();
    es.refresh(index).await.ok();
    es.count(index).await.unwrap_or(0)
}

/// Every record of `topic`'s dead letters is one of `placed`, once, from
/// `pipeline`, and its reason names the limit (`limit`).
async fn assert_dead_lettered_for_limit(
    rig: &Rig,
    host: &Host,
    tenant: &str,
    placed: &[(i32, i64)],
    limit: &str,
) -> Result<()> {
    let topic = format!("{tenant}.tweets-dlq");
    let dead = rig
        .kafka
        .read_to_end(&topic, placed.len(), Duration::from_secs(240))
        .await
        .with_context(|| format!("{tenant}'s dead letters\n{}", host.process.log_tail()))?;
    let wanted: HashSet<(i32, i64)> = placed.iter().copied().collect();
    let mut seen = HashSet::new();
    let (mut by_trap, mut unrun) = (0, 0);
    for r in &dead {
        let reason = header(r, headers::REASON);
        ensure!(
            reason.contains(limit),
            "{topic}: reason does not name the {limit:?}: {reason}"
        );
        if reason.contains("not run on this record") {
            ensure!(reason.contains("exceeded a limit"), "{reason}");
            unrun += 1;
        } else {
            by_trap += 1;
        }
        ensure!(header(r, headers::PIPELINE) == format!("{tenant}.tweets"));
        ensure!(header(r, headers::SOURCE_TOPIC) == format!("{tenant}.tweets"));
        let at = (
            header(r, headers::SOURCE_PARTITION).parse()?,
            header(r, headers::SOURCE_OFFSET).parse()?,
        );
        ensure!(
            wanted.contains(&at),
            "{topic}: dead letter for {at:?}, not a record of {tenant}"
        );
        ensure!(seen.insert(at), "{topic}: {at:?} dead-lettered twice");
    }
    // Nothing more arrives later (the DLQ holds each record exactly once).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let total = topic_len(rig, &topic).await?;
    ensure!(
        total == placed.len() as i64,
        "{topic} holds {total} records, expected {}",
        placed.len()
    );
    eprintln!(
        "{topic}: {by_trap} records stopped by the limit, {unrun} failed unrun after the streak"
    );
    Ok(())
}

/// Three tenants on one host: `a` cleans tweets, `b`'s module loops forever
/// (stopped by a 100 ms CPU quota per batch), `c`'s allocates without bound
/// (stopped by a 16 MiB memory quota). `a` indexes exactly its records;
/// `b`'s and `c`'s are in their own dead-letter topics with the limit named;
/// `b`'s breaker tripped; nothing crosses between tenants; the host runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_tenants_are_contained_and_the_quiet_one_indexes_everything() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let tenants = TenantsDir::create(&rig)?;
    tenants.add_module("a", "clean", "text-clean")?;
    tenants.write(
        "a",
        &tenant_pipeline("tweets", "a.tweets", "a-tweets", &["clean.wasm"]),
    )?;
    tenants.add_module("b", "spin", "fixture-spin")?;
    tenants.write(
        "b",
        &format!(
            "token_sha256 = \"{}\"\n[quotas]\nmax_batch_time = \"100ms\"\n{}",
            hex::encode(Sha256::digest(B_TOKEN.as_bytes())),
            tenant_pipeline("tweets", "b.tweets", "b-tweets", &["spin.wasm"])
        ),
    )?;
    tenants.add_module("c", "alloc", "fixture-alloc")?;
    tenants.write(
        "c",
        &format!(
            "[quotas]\nmax_memory_bytes = {}\n{}",
            16 << 20,
            tenant_pipeline("tweets", "c.tweets", "c-tweets", &["alloc.wasm"])
        ),
    )?;

    // Every record of b and c sets its module off.
    let a_placed = rig
        .load("a.tweets", (0..3_000).map(tweet).collect())
        .await?;
    let b_placed = rig
        .load(
            "b.tweets",
            (0..1_000)
                .map(|i| tweet(i).replace("thinking", "SPIN"))
                .collect(),
        )
        .await?;
    let c_placed = rig
        .load(
            "c.tweets",
            (0..1_000)
                .map(|i| tweet(i).replace("thinking", "BOMB"))
                .collect(),
        )
        .await?;
    for t in ["a", "b", "c"] {
        rig.kafka
            .create_topic(&format!("{t}.tweets-dlq"), 1)
            .await?;
    }

    let mut config = HostConfig::new(&rig.osmem.url(), Vec::new());
    config.extra = tenants.config(BREAKER);
    let host = Host::start(&rig, &config).await?;
    let pid = host.process.pid();

    assert_indexed_exactly(
        &rig,
        "a-tweets",
        &expected_ids("a.tweets", &a_placed),
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;
    assert_dead_lettered_for_limit(&rig, &host, "b", &b_placed, "CPU time limit exceeded").await?;
    assert_dead_lettered_for_limit(&rig, &host, "c", &c_placed, "memory limit exceeded").await?;

    // Contained: nothing of b or c indexed anywhere, nothing in a's DLQ.
    ensure!(
        count(&rig, "b-tweets").await == 0,
        "b's records were indexed"
    );
    ensure!(
        count(&rig, "c-tweets").await == 0,
        "c's records were indexed"
    );
    ensure!(
        topic_len(&rig, "a.tweets-dlq").await? == 0,
        "a has dead letters"
    );
    ensure!(count(&rig, "a-tweets").await == 3_000, "a's index grew");

    // b's breaker opened; it shows in metrics (tenant-labelled) and status.
    let trips = host.metric("weir_breaker_trips", &["tenant=\"b\""]).await?;
    ensure!(
        trips > 0.0,
        "b's breaker never tripped\n{}",
        host.metrics().await?
    );
    ensure!(
        host.metric("weir_breaker_trips", &["tenant=\"a\""]).await? == 0.0,
        "a's breaker tripped"
    );
    let status: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/tenants/b/pipelines/tweets", host.admin))
        .bearer_auth(B_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    ensure!(
        status["breaker"]["trips"].as_u64().unwrap_or(0) > 0,
        "b's status shows no trips: {status}"
    );
    host.process.ensure_running()?;
    ensure!(host.process.pid() == pid);
    Ok(())
}

/// Only tenant `a` at first; `d`'s file (and module) appears and `d`'s
/// records are indexed without a restart; `a`'s file is removed and `a`
/// stops consuming while `d` goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_added_and_removed_by_config_reload() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let tenants = TenantsDir::create(&rig)?;
    tenants.add_module("a", "clean", "text-clean")?;
    tenants.write(
        "a",
        &tenant_pipeline("tweets", "a.tweets", "a-tweets", &["clean.wasm"]),
    )?;
    let a_placed = rig
        .load("a.tweets", (0..1_000).map(tweet).collect())
        .await?;
    let d_placed = rig.load("d.news", (0..1_000).map(news).collect()).await?;
    rig.kafka.create_topic("a.tweets-dlq", 1).await?;
    rig.kafka.create_topic("d.news-dlq", 1).await?;

    let mut config = HostConfig::new(&rig.osmem.url(), Vec::new());
    config.extra = tenants.config("");
    let host = Host::start(&rig, &config).await?;
    let pid = host.process.pid();
    assert_indexed_exactly(
        &rig,
        "a-tweets",
        &expected_ids("a.tweets", &a_placed),
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;
    ensure!(
        count(&rig, "d-news").await == 0,
        "d indexed before it existed"
    );

    // Add d: module first, then its file (which is what the watcher acts on).
    tenants.add_module("d", "clean", "text-clean")?;
    tenants.write(
        "d",
        &tenant_pipeline("news", "d.news", "d-news", &["clean.wasm"]),
    )?;
    assert_indexed_exactly(
        &rig,
        "d-news",
        &expected_ids("d.news", &d_placed),
        Some(&host),
        Duration::from_secs(120),
    )
    .await
    .context("d's records after adding d's file")?;

    // Remove a: its pipeline goes away; records produced to its topic
    // afterwards are not indexed, while d's still are.
    tenants.remove("a")?;
    wait_for(
        "a's pipeline to be removed",
        Duration::from_secs(60),
        Some(&host),
        || async {
            let report = host.modules().await?;
            let pipelines: HashSet<String> = report["modules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["pipeline"].as_str().map(str::to_string))
                .collect();
            Ok((!pipelines.contains("a.tweets") && pipelines.contains("d.news")).then_some(()))
        },
    )
    .await?;
    rig.kafka
        .produce(
            "a.tweets",
            (1_000..1_500).map(|i| (Some(format!("k{i}")), tweet(i))),
        )
        .await?;
    let d_more = rig
        .kafka
        .produce(
            "d.news",
            (1_000..1_500).map(|i| (Some(format!("k{i}")), news(i))),
        )
        .await?;
    // d's later records indexed: the host has consumed past the point
    // where a's new records were produced.
    let mut d_all = expected_ids("d.news", &d_placed);
    d_all.extend(expected_ids("d.news", &d_more));
    assert_indexed_exactly(
        &rig,
        "d-news",
        &d_all,
        Some(&host),
        Duration::from_secs(120),
    )
    .await
    .context("d's records after removing a")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        count(&rig, "a-tweets").await == 1_000,
        "a's index grew after a was removed"
    );
    ensure!(
        host.metric("weir_config_reloads", &["result=\"ok\""])
            .await?
            >= 2.0,
        "expected two applied reloads"
    );
    ensure!(
        host.metric("weir_config_reloads", &["result=\"rejected\""])
            .await?
            == 0.0,
        "a reload was rejected:\n{}",
        host.process.log_tail()
    );
    host.process.ensure_running()?;
    ensure!(host.process.pid() == pid, "the host restarted");
    Ok(())
}

/// Tenant `h` may make 5 outbound requests/s (a one-second burst); tenant
/// `g` has no HTTP quota. Both run fixture-http against the same local
/// upstream, in-process (the registry built from the tenants folder, no
/// Kafka): `h`'s 30 requests in one go get the burst and the rest are
/// refused as a value (ConnectionLimitReached) without reaching the
/// upstream; `g`'s 30 all pass, so the bucket is `h`'s alone; after a
/// second `h` may send again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_http_quota_is_enforced() -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::any({
            let hits = Arc::clone(&hits);
            move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::write(
        root.join("weir.toml"),
        "[kafka]\nbrokers = \"127.0.0.1:1\"\n[elasticsearch]\nurl = \"http://127.0.0.1:1\"\n[tenants]\ndir = \"tenants\"\n",
    )?;
    let fixture = std::fs::read(weir_testkit::module_wasm("fixture-http")?)?;
    for (id, quota) in [("h", "[quotas]\nhttp_requests_per_second = 5\n"), ("g", "")] {
        std::fs::create_dir_all(root.join(format!("tenants/{id}/modules")))?;
        std::fs::write(
            root.join(format!("tenants/{id}/modules/http.wasm")),
            &fixture,
        )?;
        std::fs::write(
            root.join(format!("tenants/{id}.toml")),
            format!(
                "allowed_outbound_hosts = [\"{origin}\"]\n{quota}{}allowed_outbound_hosts = [\"{origin}\"]\n",
                tenant_pipeline(
                    "calls",
                    &format!("{id}.calls"),
                    &format!("{id}-calls"),
                    &["http.wasm"]
                )
            ),
        )?;
    }
    let config = weir::config::Config::load(&root.join("weir.toml"))?;
    let runtime = Arc::new(weir::runtime::WasmRuntime::new(&config.runtime)?);
    let mut prom = prometheus_client::registry::Registry::default();
    let http = weir::runtime::OutboundHttp::new(&config, &mut prom)?;
    let metrics = weir::telemetry::Metrics::register(&mut prom);
    let registry =
        weir::modules::Registry::build(Arc::clone(&runtime), http, metrics, 5, &config).await?;
    let routes = registry.routes().load_full();

    // One record asking for `repeat` requests; returns the module's tally.
    let call = |tenant: &str, repeat: usize| {
        let pipeline = Arc::clone(&routes[&format!("{tenant}.calls")]);
        let runtime = Arc::clone(&runtime);
        let value =
            serde_json::json!({"url": format!("{origin}/echo"), "repeat": repeat}).to_string();
        async move {
            let record = Arc::new(weir::event::SourceRecord {
                topic: Arc::from(pipeline.name.as_ref()),
                partition: 0,
                offset: 0,
                timestamp_ms: None,
                key: None,
                headers: Vec::new(),
                value: value.into(),
            });
            let out = weir::pipeline::run_chain(
                &runtime,
                &pipeline.chain.load_full(),
                &[record],
                &pipeline.metrics,
            )
            .await;
            ensure!(out.failures.is_empty(), "{:?}", out.failures);
            let doc: serde_json::Value = serde_json::from_slice(&out.docs[0].body)?;
            Ok::<_, anyhow::Error>(doc)
        }
    };

    let h = call("h", 30).await?;
    eprintln!("h, 30 requests at once: {h}");
    let (ok, failed) = (
        h["ok"].as_u64().unwrap_or(0),
        h["failed"].as_u64().unwrap_or(0),
    );
    // The burst (5) passes and the bucket refuses part of the rest. How
    // many refilled while the requests ran depends on the machine's speed;
    // the exact arithmetic is checked on virtual time by the unit test
    // `http_quota_is_a_one_second_bucket_at_the_tenants_rate`.
    ensure!(
        ok >= 5 && failed > 0,
        "h: {ok} requests passed, {failed} refused, quota 5/s: {h}"
    );
    ensure!(ok + failed == 30, "{h}");
    ensure!(
        h["error"]
            .as_str()
            .unwrap_or("")
            .contains("ConnectionLimitReached"),
        "h's refused requests should read as ConnectionLimitReached: {h}"
    );
    ensure!(
        hits.load(Ordering::SeqCst) as u64 == ok,
        "refused requests reached the upstream"
    );

    let g = call("g", 30).await?;
    ensure!(
        g["ok"] == 30 && g["failed"] == 0,
        "g has no HTTP quota and is not h: {g}"
    );

    // The bucket refills at 5/s: after at least 1.2 s (a loaded machine
    // only makes it longer, so more refilled) h may send 3 again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let again = call("h", 3).await?;
    ensure!(again["ok"] == 3, "h's bucket refills: {again}");
    Ok(())
}
