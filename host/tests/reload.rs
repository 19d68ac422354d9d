//! Hot reload on the real rig: module swaps under load, rejected files,
//! config reload that adds and removes pipelines, rollback.

#[path = "rig/mod.rs"]
mod rig;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rig::*;
use weir_testkit::{module_wasm, with_custom_section};

/// `base` with a custom section appended: a different component (new
/// digest) with the same behaviour, so many distinct versions can be told
/// apart by the provenance digest.
fn with_generation(base: &[u8], generation: u32) -> Vec<u8> {
    with_custom_section(base, "weir-test-generation", &generation.to_le_bytes())
}

fn digest12(bytes: &[u8]) -> String {
    weir::runtime::digest_of(bytes)[..12].to_string()
}

/// The active digest of `module` as the host reports it.
async fn active_digest(host: &Host, module: &str) -> Result<String> {
    let report = host.modules().await?;
    let m = report["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["module"] == module)
        .with_context(|| format!("module {module} not in status: {report}"))?;
    Ok(m["active"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn wait_active(host: &Host, module: &str, bytes: &[u8]) -> Result<()> {
    let want = weir::runtime::digest_of(bytes);
    wait_for(
        &format!("{module} to become {}", &want[..12]),
        Duration::from_secs(60),
        Some(host),
        || async { Ok((active_digest(host, module).await? == want).then_some(())) },
    )
    .await
}

struct StampFiles {
    a: Vec<u8>,
    b: Vec<u8>,
    dir: PathBuf,
}

impl StampFiles {
    fn load(rig: &Rig) -> Result<Self> {
        let dir = rig.dir.path().join("modules");
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            a: std::fs::read(module_wasm("fixture-stamp-a")?)?,
            b: std::fs::read(module_wasm("fixture-stamp-b")?)?,
            dir,
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("stamp.wasm")
    }

    fn drop_in(&self, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(), bytes)
    }
}

/// Waits until the tweets index holds its first thousand documents.
async fn indexing_started(rig: &Rig, host: &Host) -> Result<()> {
    wait_for(
        "indexing to start",
        Duration::from_secs(60),
        Some(host),
        || async { Ok((rig.es().count("weir-tweets").await.unwrap_or(0) > 1_000).then_some(())) },
    )
    .await
}

fn stamp_pipeline(path: &Path) -> Vec<PipelineSpec> {
    vec![PipelineSpec::new("tweets", "tweets", "weir-tweets").module(path.to_str().unwrap(), &[])]
}

/// 20 swaps under 100k records: exactly once, one version per document,
/// never back to an older version within a partition, same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_swaps_under_load_lose_nothing_and_never_go_back() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let stamps = StampFiles::load(&rig)?;
    let versions: Vec<Vec<u8>> = (0..=20u32)
        .map(|g| with_generation(if g % 2 == 0 { &stamps.a } else { &stamps.b }, g))
        .collect();
    let generation_of: HashMap<String, usize> = versions
        .iter()
        .enumerate()
        .map(|(g, v)| (digest12(v), g))
        .collect();
    stamps.drop_in(&versions[0])?;
    let placed = rig
        .load("tweets", (0..100_000).map(tweet).collect())
        .await?;
    let config = HostConfig::new(&rig.osmem.url(), stamp_pipeline(&stamps.path()));
    let host = Host::start(&rig, &config).await?;
    let pid = host.process.pid();
    indexing_started(&rig, &host).await?;
    for (g, v) in versions.iter().enumerate().skip(1) {
        stamps.drop_in(v)?;
        wait_active(&host, "stamp", v)
            .await
            .with_context(|| format!("generation {g}"))?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(
        rig.es().count("weir-tweets").await? < 100_000,
        "load finished before the last swap"
    );
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &placed),
        Some(&host),
        Duration::from_secs(300),
    )
    .await?;
    host.process.ensure_running()?;
    ensure!(host.process.pid() == pid);

    let docs = scan(&rig.osmem.url(), "weir-tweets").await?;
    let mut per_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    let mut seen_generations = HashSet::new();
    for (id, doc) in &docs {
        let stamp = doc["stamp"].as_str().context("stamp")?;
        let provenance = doc["weir_modules"].as_array().context("provenance field")?;
        ensure!(provenance.len() == 1, "{id}: provenance {provenance:?}");
        let label = provenance[0].as_str().unwrap();
        let (version, digest) = label.split_once('#').context("label has a digest")?;
        let g = *generation_of
            .get(digest)
            .with_context(|| format!("{id}: unknown version {label}"))?;
        ensure!(
            version.ends_with(&format!("+{stamp}")),
            "{id}: stamped {stamp} by {label}"
        );
        ensure!(
            stamp == if g % 2 == 0 { "a" } else { "b" },
            "{id}: generation {g} stamped {stamp}"
        );
        seen_generations.insert(g);
        let (p, o) = parse_id(id).context("default id")?;
        per_partition.entry(p).or_default().push((o, g));
    }
    for (p, mut seq) in per_partition {
        seq.sort();
        for w in seq.windows(2) {
            ensure!(
                w[1].1 >= w[0].1,
                "partition {p}: offset {} by generation {} after offset {} by generation {}",
                w[1].0,
                w[1].1,
                w[0].0,
                w[0].1
            );
        }
    }
    ensure!(
        seen_generations.len() >= 10,
        "only generations {seen_generations:?} processed records"
    );
    Ok(())
}

/// A corrupt file, a component with the wrong world, and one whose init
/// fails: each rejected with its reason while processing goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_modules_are_rejected_and_the_running_version_stays() -> Result<()> {
    const RECORDS: usize = 100_000;
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let stamps = StampFiles::load(&rig)?;
    stamps.drop_in(&stamps.a)?;
    let placed = rig
        .load("tweets", (0..RECORDS).map(tweet).collect())
        .await?;
    let config = HostConfig::new(&rig.osmem.url(), stamp_pipeline(&stamps.path()));
    let host = Host::start(&rig, &config).await?;
    // The bad modules arrive while records flow.
    indexing_started(&rig, &host).await?;
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (
            b"\0asm\x0d\0\x01\0 this is not a component".to_vec(),
            "not a valid component",
        ),
        (
            std::fs::read(module_wasm("fixture-wrong-world")?)?,
            "does not implement the weir:pipeline/module",
        ),
        (
            std::fs::read(module_wasm("fixture-fail-init")?)?,
            "init failed",
        ),
    ];
    for (bytes, reason) in &bad {
        stamps.drop_in(bytes)?;
        let digest = weir::runtime::digest_of(bytes);
        let message = wait_for(
            &format!("rejection: {reason}"),
            Duration::from_secs(60),
            Some(&host),
            || async {
                let report = host.modules().await?;
                let e = &report["modules"][0]["last_error"];
                Ok((e["digest"] == digest.as_str())
                    .then(|| e["message"].as_str().unwrap_or_default().to_string()))
            },
        )
        .await?;
        ensure!(
            message.contains(reason),
            "rejection reason {message:?} lacks {reason:?}"
        );
        ensure!(
            active_digest(&host, "stamp").await? == weir::runtime::digest_of(&stamps.a),
            "active version changed"
        );
    }
    ensure!(
        (rig.es().count("weir-tweets").await? as usize) < RECORDS,
        "load finished before the last bad module was rejected; the test proves nothing"
    );
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &placed),
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;
    let docs = scan(&rig.osmem.url(), "weir-tweets").await?;
    ensure!(
        docs.iter().all(|(_, d)| d["stamp"] == "a"),
        "a document was processed by a rejected module"
    );
    ensure!(
        host.metric("weir_module_reloads", &["result=\"rejected\""])
            .await?
            == 3.0
    );
    Ok(())
}

/// Config reload under load: a bad config is rejected whole; then a new
/// pipeline for a new topic starts and indexes everything, and a removed
/// pipeline commits exactly what it indexed and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_adds_and_removes_pipelines_without_loss() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let tweets = rig.load("tweets", (0..15_000).map(tweet).collect()).await?;
    let news_placed = rig.load("news", (0..40_000).map(news).collect()).await?;
    let events = rig
        .load("events", (10_000..20_000).map(tweet).collect())
        .await?;
    let tweets_p =
        || PipelineSpec::new("tweets", "tweets", "weir-tweets").module("text-clean", &[]);
    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![
            tweets_p(),
            PipelineSpec::new("news", "news", "weir-news").module("passthrough", &[]),
        ],
    );
    let host = Host::start(&rig, &config).await?;
    wait_for(
        "news indexing",
        Duration::from_secs(60),
        Some(&host),
        || async { Ok((rig.es().count("weir-news").await.unwrap_or(0) > 2_000).then_some(())) },
    )
    .await?;

    // Invalid: rejected whole, running config stays.
    let mut broken = HostConfig::new(&rig.osmem.url(), vec![tweets_p()]);
    broken.group = config.group.clone();
    broken.extra = "\n[pipelines.tweets.surprise]\n".into();
    host.rewrite_config(&rig, &broken)?;
    let error = wait_for(
        "config rejection",
        Duration::from_secs(30),
        Some(&host),
        || async {
            Ok(host.modules().await?["config"]["last_error"]
                .as_str()
                .map(String::from))
        },
    )
    .await?;
    ensure!(error.contains("unknown field `surprise`"), "{error}");

    let mut next = HostConfig::new(
        &rig.osmem.url(),
        vec![
            tweets_p(),
            PipelineSpec::new("events", "events", "weir-events").module("text-clean", &[]),
        ],
    );
    next.group = config.group.clone();
    host.rewrite_config(&rig, &next)?;

    assert_indexed_exactly(
        &rig,
        "weir-events",
        &expected_ids("events", &events),
        Some(&host),
        Duration::from_secs(240),
    )
    .await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &tweets),
        Some(&host),
        Duration::from_secs(240),
    )
    .await?;

    // The removed pipeline stopped: its index no longer grows, and what it
    // committed is exactly what it indexed, per partition.
    let es = rig.es();
    es.refresh("weir-news").await?;
    let settled = es.count("weir-news").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    es.refresh("weir-news").await?;
    ensure!(
        es.count("weir-news").await? == settled,
        "the removed pipeline is still indexing"
    );
    ensure!(
        settled < 40_000,
        "news finished before it was removed; the test proves nothing"
    );
    // Per partition, the indexed records are exactly offsets 0..committed:
    // nothing committed unindexed (loss), nothing indexed uncommitted (it
    // would be indexed again by the next consumer).
    let ids = es.ids("weir-news").await?;
    let indexed: BTreeMap<i32, Vec<i64>> =
        news_placed
            .iter()
            .fold(BTreeMap::new(), |mut by_partition, &(p, o)| {
                if ids.contains(&format!("news-{p}-{o}-0")) {
                    by_partition.entry(p).or_insert_with(Vec::new).push(o);
                }
                by_partition
            });
    let mismatch = || async {
        let committed = rig.kafka.committed_offsets(&config.group, "news").await?;
        let mut problems = Vec::new();
        for (p, c) in committed.iter().enumerate() {
            let c = c.unwrap_or(0);
            let offsets = indexed.get(&(p as i32)).map_or(&[][..], Vec::as_slice);
            let exact = offsets.len() as i64 == c && offsets.iter().all(|o| *o < c);
            if !exact {
                problems.push(format!(
                    "partition {p}: committed {c}, indexed {} (highest {:?})",
                    offsets.len(),
                    offsets.iter().max()
                ));
            }
        }
        anyhow::Ok(problems)
    };
    let exact = wait_for(
        "the removed news pipeline's commits to equal what it indexed",
        Duration::from_secs(30),
        Some(&host),
        || async { Ok(mismatch().await?.is_empty().then_some(())) },
    )
    .await;
    if let Err(e) = exact {
        return Err(e.context(format!(
            "the removed pipeline's committed offsets differ from what it indexed (removal \
             should drain and commit, docs/operators-guide.md): {:?}",
            mismatch().await?
        )));
    }
    host.process.ensure_running()?;
    Ok(())
}

/// Rollback re-activates the previous version for the next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_previous_behaviour() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let stamps = StampFiles::load(&rig)?;
    stamps.drop_in(&stamps.a)?;
    rig.kafka.create_topic("tweets", PARTITIONS).await?;
    let config = HostConfig::new(&rig.osmem.url(), stamp_pipeline(&stamps.path()));
    let host = Host::start(&rig, &config).await?;
    stamps.drop_in(&stamps.b)?;
    wait_active(&host, "stamp", &stamps.b).await?;

    let before = rig
        .kafka
        .produce(
            "tweets",
            (0..500).map(|i| (Some(format!("k{i}")), tweet(i))),
        )
        .await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &before),
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["modules", "rollback", "stamp", "--admin", &host.admin])
        .output()?;
    ensure!(
        out.status.success(),
        "weir modules rollback failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("+a#"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    ensure!(active_digest(&host, "stamp").await? == weir::runtime::digest_of(&stamps.a));

    let after = rig
        .kafka
        .produce(
            "tweets",
            (500..1_000).map(|i| (Some(format!("k{i}")), tweet(i))),
        )
        .await?;
    let mut all = expected_ids("tweets", &before);
    all.extend(expected_ids("tweets", &after));
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &all,
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;
    let es = rig.es();
    for (p, o) in &before {
        let d = es
            .get("weir-tweets", &format!("tweets-{p}-{o}-0"))
            .await?
            .context("doc")?;
        ensure!(d["stamp"] == "b", "before rollback: {d}");
    }
    for (p, o) in &after {
        let d = es
            .get("weir-tweets", &format!("tweets-{p}-{o}-0"))
            .await?
            .context("doc")?;
        ensure!(d["stamp"] == "a", "after rollback: {d}");
    }
    // Nothing earlier than the first version.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "modules",
            "rollback",
            "tweets/stamp",
            "--admin",
            &host.admin,
        ])
        .output()?;
    ensure!(
        !out.status.success(),
        "a rollback past the oldest version succeeded"
    );
    ensure!(String::from_utf8_lossy(&out.stderr).contains("no earlier version"));
    Ok(())
}
