//! Modules written to attack the host, each run by a hostile tenant beside
//! a well-behaved one in the same `weir run` process, on the real broker
//! and osmem. For every attack: the good tenant's records are indexed
//! exactly once and its API answers throughout; the hostile tenant's
//! records are in its own dead-letter topic with the limit named (or, for
//! a module the host refuses at load, the refusal names the limit and
//! nothing of the module runs); and a SIGTERM sent while a second wave of
//! the attack is in flight ends the process with exit 0 within
//! `kafka.drain_timeout` plus a small bound, having committed offsets only
//! for what was dead-lettered (the rest is redelivered).
//!
//! Needs the fixture modules: `cargo xtask modules`.

#[path = "rig/mod.rs"]
mod rig;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rig::*;
use sha2::{Digest, Sha256};
use weir::event::MAX_HEADER_BYTES;
use weir::sinks::dead_letter::headers;
use weir_testkit::module_wasm;

const GOOD_TOKEN: &str = "good-tenant-token-0123456789";
const EVIL_TOKEN: &str = "evil-tenant-token-0123456789";

/// `kafka.drain_timeout` of every host here: short, so a hang shows.
const DRAIN: Duration = Duration::from_secs(2);
/// What shutdown may take beyond the drain: the sink's and dead-letter
/// writer's last steps, the final commit, closing the Kafka clients.
const EXIT_MARGIN: Duration = Duration::from_secs(10);

/// Records of the good tenant (over 4 partitions).
const GOOD_RECORDS: usize = 400;
/// Records of each wave of the attack (one partition, so batches queue up
/// behind each other the way a busy partition's do).
const WAVE: usize = 12;

/// The breaker backs off briefly, so a tenant whose every batch fails
/// still gets through its records within the test.
const BREAKER: &str =
    "[tenants.breaker]\nfailure_threshold = 3\nbase_backoff = \"100ms\"\nmax_backoff = \"500ms\"\n";

/// What the host must do with the hostile tenant's records.
enum Expect {
    /// Every record is dead-lettered to the tenant's own topic with a
    /// reason that contains this (it names the limit).
    DeadLettered(&'static str),
    /// The module is refused when the tenant uploads it, naming the limit;
    /// the tenant's records keep running through its previous version.
    UploadRefused(&'static str),
}

/// One attack.
struct Case {
    /// Hostile module (a stem under `dist/modules`) and its settings.
    module: &'static str,
    settings: &'static [(&'static str, &'static str)],
    /// Extra `[quotas]` lines of the hostile tenant.
    quotas: &'static str,
    /// The hostile tenant's record `i`.
    record: fn(usize) -> String,
    expect: Expect,
}

fn sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A tenant file: one pipeline `tweets` reading `<id>.tweets` into
/// `<id>-tweets`, running `module.wasm` with `settings`.
fn tenant_file(id: &str, token: &str, quotas: &str, settings: &[(&str, &str)]) -> String {
    let mut t = format!(
        "token_sha256 = \"{}\"\n[quotas]\n{quotas}\n[pipelines.tweets]\ntopics = [\"{id}.tweets\"]\nindex = \"{id}-tweets\"\n[[pipelines.tweets.modules]]\npath = \"module.wasm\"\n",
        sha(token)
    );
    if !settings.is_empty() {
        t.push_str("[pipelines.tweets.modules.config]\n");
        for (k, v) in settings {
            t.push_str(&format!("{k} = \"{v}\"\n"));
        }
    }
    t
}

/// Calls the good tenant's API every 250 ms until stopped; every call must
/// answer 200 within 5 s.
struct ApiProbe {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl ApiProbe {
    fn start(admin: &str) -> ApiProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let url = format!("{admin}/v1/tenants/good/pipelines/tweets");
        let (s, a) = (Arc::clone(&stop), Arc::clone(&answered));
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?;
            while !s.load(Ordering::Relaxed) {
                let r = client
                    .get(&url)
                    .bearer_auth(GOOD_TOKEN)
                    .send()
                    .await
                    .context("the good tenant's API did not answer within 5 s")?;
                ensure!(
                    r.status() == 200,
                    "the good tenant's API answered {}",
                    r.status()
                );
                let body: serde_json::Value = r.json().await?;
                ensure!(
                    body["name"] == "good.tweets",
                    "unexpected pipeline status {body}"
                );
                a.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(())
        });
        ApiProbe {
            stop,
            answered,
            task,
        }
    }

    /// Stops probing; fails if any call failed or none was made.
    async fn finish(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await??;
        let n = self.answered.load(Ordering::Relaxed);
        ensure!(n > 0, "the good tenant's API was never called");
        Ok(n)
    }
}

/// The good tenant's index holds exactly its documents (count and ids),
/// each with the content its own pipeline made: nothing of the hostile
/// tenant was added or overwrote one of them.
async fn good_index_is_its_own(rig: &Rig, placed: &[(i32, i64)]) -> Result<()> {
    let ids = expected_ids("good.tweets", placed);
    assert_indexed_exactly(rig, "good-tweets", &ids, None, Duration::from_secs(5)).await?;
    for (id, doc) in scan(&rig.osmem.url(), "good-tweets").await? {
        let own = doc["id"].as_str().is_some_and(|i| i.starts_with('t'));
        ensure!(
            own,
            "good-tweets/{id} is not the good tenant's document: {doc}"
        );
    }
    Ok(())
}

/// Produces `values` to `topic` (one partition), keyless.
async fn produce(rig: &Rig, topic: &str, values: Vec<String>) -> Result<Vec<(i32, i64)>> {
    rig.kafka
        .produce(topic, values.into_iter().map(|v| (None::<String>, v)))
        .await
}

/// Runs one attack end to end; see the file's doc comment.
async fn run_case(case: Case) -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let tenants = TenantsDir::create(&rig)?;
    tenants.add_module("good", "module", "text-clean")?;
    tenants.write("good", &tenant_file("good", GOOD_TOKEN, "", &[]))?;
    let refused_upload = match &case.expect {
        // The tenant starts on a well-behaved module, then uploads.
        Expect::UploadRefused(_) => {
            tenants.add_module("evil", "module", "passthrough")?;
            tenants.write("evil", &tenant_file("evil", EVIL_TOKEN, case.quotas, &[]))?;
            true
        }
        Expect::DeadLettered(_) => {
            tenants.add_module("evil", "module", case.module)?;
            tenants.write(
                "evil",
                &tenant_file("evil", EVIL_TOKEN, case.quotas, case.settings),
            )?;
            false
        }
    };

    let good_placed = rig
        .load("good.tweets", (0..GOOD_RECORDS).map(tweet).collect())
        .await?;
    rig.kafka.create_topic("evil.tweets", 1).await?;
    let first = produce(&rig, "evil.tweets", (0..WAVE).map(case.record).collect()).await?;
    for t in ["good", "evil"] {
        rig.kafka
            .create_topic(&format!("{t}.tweets-dlq"), 1)
            .await?;
    }

    let mut config = HostConfig::new(&rig.osmem.url(), Vec::new());
    config.drain_timeout = DRAIN;
    config.extra = tenants.config(BREAKER);
    let host = Host::start(&rig, &config).await?;
    let probe = ApiProbe::start(&host.admin);

    if let Expect::UploadRefused(limit) = &case.expect {
        let r = reqwest::Client::new()
            .put(format!("{}/v1/tenants/evil/modules/module", host.admin))
            .bearer_auth(EVIL_TOKEN)
            .header("content-type", "application/wasm")
            .body(std::fs::read(module_wasm(case.module)?)?)
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        ensure!(
            status == 422,
            "the upload answered {status}, not 422: {body}"
        );
        ensure!(
            body.contains(limit),
            "the refusal does not name {limit:?}: {body}"
        );
    }

    // The good tenant: every record indexed exactly once, nothing dead.
    assert_indexed_exactly(
        &rig,
        "good-tweets",
        &expected_ids("good.tweets", &good_placed),
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;

    // The hostile tenant's first wave, to the end of its topics.
    let mut dead_so_far = Vec::new();
    match &case.expect {
        Expect::DeadLettered(limit) => {
            let dead = dead_letters_exactly(
                &rig,
                "evil.tweets-dlq",
                &first,
                (headers::SOURCE_PARTITION, headers::SOURCE_OFFSET),
                Duration::from_secs(120),
            )
            .await
            .with_context(|| host.process.log_tail())?;
            for r in &dead {
                ensure!(header(r, headers::PIPELINE) == "evil.tweets");
                let reason = header(r, headers::REASON);
                ensure!(
                    reason.contains(limit) && reason.len() <= MAX_HEADER_BYTES,
                    "the reason ({} bytes) does not name {limit:?}: {}",
                    reason.len(),
                    &reason[..reason.floor_char_boundary(500)]
                );
            }
            ensure!(
                rig.es().count("evil-tweets").await.unwrap_or(0) == 0,
                "the hostile tenant's records were indexed"
            );
            dead_so_far = first.clone();
        }
        Expect::UploadRefused(_) => {
            // Still on the version it had: indexed exactly, none dead.
            assert_indexed_exactly(
                &rig,
                "evil-tweets",
                &expected_ids("evil.tweets", &first),
                Some(&host),
                Duration::from_secs(60),
            )
            .await?;
        }
    }
    assert_committed_to_end(&rig, &config.group, "evil.tweets", Some(&host)).await?;
    assert_committed_to_end(&rig, &config.group, "good.tweets", Some(&host)).await?;
    // Nothing of either tenant crossed to the other.
    ensure!(
        topic_len(&rig, "good.tweets-dlq").await? == 0,
        "the good tenant has dead letters"
    );
    good_index_is_its_own(&rig, &good_placed).await?;

    // A second wave, in separate batches, and SIGTERM once the host has
    // taken all of it from Kafka (the attack is in flight).
    let mut second = Vec::new();
    for chunk in 0..4 {
        let values = (0..WAVE / 4).map(|i| (case.record)(WAVE + chunk * WAVE / 4 + i));
        second.extend(produce(&rig, "evil.tweets", values.collect()).await?);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumed = (2 * WAVE) as f64;
    wait_for(
        "the host to take the second wave",
        Duration::from_secs(30),
        Some(&host),
        || async {
            let n = host
                .metric("weir_records_consumed", &["tenant=\"evil\""])
                .await?;
            Ok((n >= consumed).then_some(()))
        },
    )
    .await?;
    let answered = probe.finish().await?;
    host.process.sigterm()?;
    let signalled = std::time::Instant::now();
    let Some(status) = host.process.wait_exit(DRAIN + EXIT_MARGIN).await else {
        // (the elapsed time is printed below for the record, not asserted)
        bail!(
            "weir still runs {:?} after SIGTERM (drain_timeout {DRAIN:?})\n{}",
            DRAIN + EXIT_MARGIN,
            host.process.log_tail()
        );
    };
    ensure!(
        status.success(),
        "weir exited with {status}\n{}",
        host.process.log_tail()
    );
    ensure!(
        host.process.log_tail().contains("offsets committed; bye"),
        "no final commit\n{}",
        host.process.log_tail()
    );

    good_index_is_its_own(&rig, &good_placed)
        .await
        .context("after shutdown")?;

    // Offsets were committed only for what was acknowledged: every record
    // of the second wave below the committed offset was dead-lettered (or,
    // on the kept version, indexed); the rest is redelivered on restart.
    let committed = rig
        .kafka
        .committed_offsets(&config.group, "evil.tweets")
        .await?[0]
        .unwrap_or(0);
    let settled: HashSet<(i32, i64)> = if refused_upload {
        rig.es().refresh("evil-tweets").await.ok();
        rig.es()
            .ids("evil-tweets")
            .await?
            .iter()
            .filter_map(|id| parse_id(id))
            .collect()
    } else {
        rig.kafka
            .read_to_end(
                "evil.tweets-dlq",
                dead_so_far.len(),
                Duration::from_secs(10),
            )
            .await?
            .iter()
            .map(|r| {
                Ok((
                    header(r, headers::SOURCE_PARTITION).parse()?,
                    header(r, headers::SOURCE_OFFSET).parse()?,
                ))
            })
            .collect::<Result<_>>()?
    };
    for at in second.iter().filter(|(_, o)| *o < committed) {
        ensure!(
            settled.contains(at),
            "offset {committed} committed, but the record at {at:?} was neither dead-lettered nor indexed"
        );
    }
    eprintln!(
        "good tenant's API answered {answered} times during the attack; exit {:?} after SIGTERM; committed {committed} of the hostile topic's {} records",
        signalled.elapsed(),
        2 * WAVE
    );
    Ok(())
}

/// A record of the hostile tenant: recognisable wherever it lands.
fn evil_record(i: usize) -> String {
    serde_json::json!({"id": format!("evil-{i}"), "text": "written by the hostile tenant"})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_writing_into_another_tenants_index_is_dead_lettered_and_writes_nothing()
-> Result<()> {
    run_case(Case {
        module: "fixture-hostile",
        // Every document to the good tenant's index, over one of its ids.
        settings: &[
            ("mode", "escape"),
            ("index", "good-tweets"),
            ("id", "good.tweets-0-0-0"),
        ],
        quotas: "",
        record: evil_record,
        expect: Expect::DeadLettered("index `good-tweets`"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_sleeping_in_init_of_every_batch_is_stopped_by_the_wall_clock() -> Result<()> {
    run_case(Case {
        module: "fixture-sleep",
        settings: &[("during", "batch-init"), ("sleep_ms", "60000")],
        quotas: "max_batch_time = \"1s\"\nmax_batch_wall_time = \"2s\"",
        record: evil_record,
        expect: Expect::DeadLettered("wall-clock limit exceeded"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_sleeping_in_process_is_stopped_by_the_wall_clock() -> Result<()> {
    run_case(Case {
        module: "fixture-sleep",
        settings: &[("during", "process"), ("sleep_ms", "60000")],
        quotas: "max_batch_time = \"1s\"\nmax_batch_wall_time = \"2s\"",
        record: evil_record,
        expect: Expect::DeadLettered("wall-clock limit exceeded"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_emitting_200000_documents_per_record_is_dead_lettered_whole() -> Result<()> {
    run_case(Case {
        module: "fixture-hostile",
        settings: &[("mode", "fanout"), ("n", "200000")],
        quotas: "",
        record: evil_record,
        expect: Expect::DeadLettered(
            "became 200000 documents, over the limit of 100 (max_documents_per_record)",
        ),
    })
    .await
}

/// Each record's 100 documents (about 790 bytes) are within the per-record
/// count but over the batch's byte budget; the module also traps on a
/// batch, so it is run record by record and stopped by the same budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_filling_the_batch_with_documents_is_dead_lettered_at_its_byte_limit() -> Result<()>
{
    run_case(Case {
        module: "fixture-hostile",
        settings: &[("mode", "fanout"), ("n", "100"), ("trap_after", "1")],
        quotas: "max_document_bytes = 500\nmax_batch_output_bytes = 500",
        record: evil_record,
        expect: Expect::DeadLettered("over the limit of 500 (max_batch_output_bytes)"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_with_an_oversized_describe_is_refused_at_upload() -> Result<()> {
    run_case(Case {
        module: "fixture-long-describe",
        settings: &[],
        quotas: "",
        record: evil_record,
        expect: Expect::UploadRefused("describe() returned a name of 1024 bytes; at most 128"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_failing_with_a_4_mib_reason_is_dead_lettered_with_the_reason_capped() -> Result<()>
{
    run_case(Case {
        module: "fixture-hostile",
        settings: &[("mode", "fail"), ("reason_bytes", "4194304")],
        quotas: "",
        record: evil_record,
        // Capped at 4 KiB, with a marker naming the full length.
        expect: Expect::DeadLettered("… [truncated, 4194304 bytes]"),
    })
    .await
}

/// Cloud metadata endpoints, plain and inside the IPv6 forms that carry
/// an IPv4 address.
const METADATA_URLS: &[&str] = &[
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://168.63.129.16/machine?comp=goalstate",
    "http://192.0.0.192/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[2002:a9fe:a9fe::1]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
];

fn metadata_request(i: usize) -> String {
    serde_json::json!({
        "url": METADATA_URLS[i % METADATA_URLS.len()],
        "fail_on_error": true,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_calling_cloud_metadata_addresses_is_denied() -> Result<()> {
    run_case(Case {
        module: "fixture-http",
        settings: &[],
        quotas: "",
        record: metadata_request,
        expect: Expect::DeadLettered("HttpRequestDenied"),
    })
    .await
}
