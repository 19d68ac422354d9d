//! A fleet of `weir run` hosts sharing one control plane, the control
//! topic (`control.mode = "kafka"`): real tansu and osmem, real processes.
//!
//! One rig, one scenario, asserted step by step:
//! 1. three hosts in one group on a 6-partition topic; a module version
//!    uploaded through host A while records flow runs on every host; per
//!    partition the stamp in the indexed documents goes old -> new once;
//! 2. a rollback through host C and a pause/resume through host B apply
//!    on all three;
//! 3. host A is killed (-9): B and C take its partitions; a fourth host
//!    started with an empty tenants folder gets the whole state from the
//!    topic;
//! 4. a corrupted and a truncated version written into the topic, and a
//!    complete one whose `init` fails, are refused by every host, the
//!    running version stays and says why; so is a module record that
//!    names another tenant as its writer;
//! 5. a tenant added through one host consumes on all; removed through
//!    another, it stops on all;
//!
//! then every record is indexed exactly once; and with the broker stopped
//! the hosts keep their state and say the control topic is unreachable.

mod rig;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rig::{Host, HostConfig, Rig, SERIAL, expected_ids, scan, tenant_pipeline, wait_for};
use serde_json::Value;
use sha2::{Digest, Sha256};
use weir_testkit::module_wasm;

const TOPIC: &str = "acme.events";
const INDEX: &str = "acme-events";
const CONTROL: &str = "weir-control";
const ACME_TOKEN: &str = "acme-token-0123456789";
const GLOBEX_TOKEN: &str = "globex-token-0123456789";
/// How long a change may take to reach every host.
const CONVERGE: Duration = Duration::from_secs(60);

fn sha(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

fn acme_file() -> String {
    format!(
        "token_sha256 = \"{}\"\n{}",
        sha(ACME_TOKEN),
        tenant_pipeline("events", TOPIC, INDEX, &["tag.wasm"])
    )
}

/// One fleet host: its own tenants folder, the shared control topic.
async fn start_host(rig: &Rig, group: &str, name: &str) -> Result<Host> {
    let dir = rig.dir.path().join(name).join("tenants");
    std::fs::create_dir_all(&dir)?;
    let mut config = HostConfig::new(&rig.osmem.url(), Vec::new());
    config.group = group.into();
    config.extra = fleet_toml(&dir);
    Host::start(rig, &config).await
}

fn fleet_toml(tenants: &std::path::Path) -> String {
    format!(
        "[tenants]\ndir = \"{}\"\n[control]\nmode = \"kafka\"\ntopic = \"{CONTROL}\"\nreplication_factor = 1\n# small chunks: every module spans several records\nchunk_bytes = 65536\n",
        tenants.display()
    )
}

async fn get(host: &Host, path: &str, token: Option<&str>) -> Result<Value> {
    let mut req = reqwest::Client::new().get(format!("{}{path}", host.admin));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    ensure!(status.is_success(), "GET {path}: {status} {body}");
    Ok(body)
}

/// A write through the admin API: the answer's body, which must be 200
/// and name the control offset it was written at.
async fn write(req: reqwest::RequestBuilder, what: &str) -> Result<(i64, Value)> {
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    ensure!(status.is_success(), "{what}: {status} {body}");
    let offset = body["control_offset"]
        .as_i64()
        .with_context(|| format!("{what}: no control_offset in {body}"))?;
    Ok((offset, body))
}

/// Runs `weir <args> <path> --admin <host>`; fails unless it succeeds.
fn cli(args: &[&str], path: &std::path::Path, host: &Host) -> Result<()> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .arg(path)
        .args(["--admin", &host.admin])
        .output()?;
    ensure!(
        out.status.success(),
        "weir {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn applied_offset(host: &Host) -> Result<i64> {
    let status = get(host, "/v1/status", None).await?;
    status["control"]["applied_offset"]
        .as_i64()
        .with_context(|| format!("no control status in {status}"))
}

/// The active digest (and last error) of pipeline/module on `host`.
async fn module_state(
    host: &Host,
    pipeline: &str,
    module: &str,
) -> Result<Option<(String, Option<String>)>> {
    let report = host.modules().await?;
    Ok(report["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["pipeline"] == pipeline && m["module"] == module)
        .map(|m| {
            (
                m["active"]["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m["last_error"]["message"].as_str().map(str::to_string),
            )
        }))
}

/// Fails unless `host` runs `digest` as acme.events' `tag` (`when` says
/// in what situation); returns that module's last error.
async fn ensure_acme_runs(host: &Host, digest: &str, when: &str) -> Result<Option<String>> {
    let (running, error) = module_state(host, "acme.events", "tag")
        .await?
        .context("acme.events/tag is gone")?;
    ensure!(running == digest, "{}: runs {running} {when}", host.admin);
    Ok(error)
}

/// Waits until `host` applied the control topic up to `offset`, then
/// until `check` holds on it.
async fn once_applied<T, F, Fut>(host: &Host, offset: i64, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    wait_for(
        &format!("{what} on {}", host.admin),
        CONVERGE,
        Some(host),
        || {
            let checked = check();
            async move {
                if applied_offset(host).await? < offset {
                    return Ok(None);
                }
                checked.await
            }
        },
    )
    .await
}

/// Waits until every host applied `offset` and runs `digest` in
/// acme.events.
async fn converge_on(hosts: &[&Host], offset: i64, digest: &str, what: &str) -> Result<()> {
    for host in hosts {
        once_applied(host, offset, what, || async {
            let running = module_state(host, "acme.events", "tag").await?;
            Ok(running.is_some_and(|(d, _)| d == digest).then_some(()))
        })
        .await?;
    }
    Ok(())
}

/// The indexed documents of [`INDEX`] by partition: `(offset, stamp)`,
/// in offset order.
async fn stamps(rig: &Rig) -> Result<BTreeMap<i32, Vec<(i64, String)>>> {
    rig.es().refresh(INDEX).await.ok();
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (id, doc) in scan(&rig.osmem.url(), INDEX).await? {
        let (p, o) = rig::parse_id(&id).with_context(|| format!("id {id}"))?;
        let stamp = doc["stamp"].as_str().unwrap_or_default().to_string();
        by_partition.entry(p).or_default().push((o, stamp));
    }
    for docs in by_partition.values_mut() {
        docs.sort();
    }
    Ok(by_partition)
}

/// Waits until each of the 6 partitions has a document stamped `stamp`.
async fn every_partition_stamped(rig: &Rig, stamp: &str, host: &Host) -> Result<()> {
    wait_for(
        &format!("a document stamped {stamp} in every partition"),
        CONVERGE,
        Some(host),
        || async {
            let all = stamps(rig).await.unwrap_or_default();
            let n = all
                .values()
                .filter(|docs| docs.iter().any(|(_, s)| s == stamp))
                .count();
            Ok((n == 6).then_some(()))
        },
    )
    .await
}

/// Where a record landed and the phase it was produced in.
type Placed = (i32, i64, &'static str);

/// Produces records to [`TOPIC`] in the background, each naming the
/// phase of the scenario it was produced in; keeps where each landed.
struct Traffic {
    phase: Arc<Mutex<&'static str>>,
    placed: Arc<Mutex<Vec<Placed>>>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Traffic {
    fn start(rig: &Rig) -> Traffic {
        let phase = Arc::new(Mutex::new("a"));
        let placed = Arc::new(Mutex::new(Vec::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", rig.kafka.bootstrap())
            .set("linger.ms", "5")
            .create()
            .expect("a producer");
        let (p, pl, s) = (Arc::clone(&phase), Arc::clone(&placed), stop.clone());
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            while !s.is_cancelled() {
                let now = *p.lock().unwrap();
                let mut at = Vec::new();
                for i in n..n + 12 {
                    let key = format!("k{i}");
                    let value = serde_json::json!({"n": i, "phase": now}).to_string();
                    let (part, off) = producer
                        .send(
                            FutureRecord::to(TOPIC).key(&key).payload(&value),
                            Duration::from_secs(10),
                        )
                        .await
                        .map(|d| (d.partition, d.offset))
                        .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
                    at.push((part, off));
                }
                n += 12;
                pl.lock()
                    .unwrap()
                    .extend(at.into_iter().map(|(part, off)| (part, off, now)));
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            Ok(())
        });
        Traffic {
            phase,
            placed,
            stop,
            task,
        }
    }

    fn phase(&self, p: &'static str) {
        *self.phase.lock().unwrap() = p;
    }

    fn produced(&self) -> usize {
        self.placed.lock().unwrap().len()
    }

    async fn finish(self) -> Result<Vec<Placed>> {
        self.stop.cancel();
        self.task.await??;
        Ok(self.placed.lock().unwrap().clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_follows_one_control_topic() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    rig.kafka.create_topic(TOPIC, 6).await?;
    rig.kafka.create_topic("acme.events-dlq", 1).await?;
    rig.kafka.create_topic("globex.events", 2).await?;
    rig.kafka.create_topic("globex.events-dlq", 1).await?;
    let stamp_a = std::fs::read(module_wasm("fixture-stamp-a")?)?;
    let stamp_b = std::fs::read(module_wasm("fixture-stamp-b")?)?;
    let stamp_unset = std::fs::read(module_wasm("fixture-stamp")?)?;
    let (digest_a, digest_b) = (sha(&stamp_a), sha(&stamp_b));
    let group = format!("weir-fleet-{}", std::process::id());

    // Host A's files (a tenant and its module), imported into the topic
    // once, as an operator moving from files to a fleet would.
    let a_tenants = rig.dir.path().join("a").join("tenants");
    std::fs::create_dir_all(a_tenants.join("acme/modules"))?;
    std::fs::write(a_tenants.join("acme/modules/tag.wasm"), &stamp_a)?;
    std::fs::write(a_tenants.join("acme.toml"), acme_file())?;
    let import_config = rig.dir.path().join("import.toml");
    let mut import = HostConfig::new(&rig.osmem.url(), Vec::new());
    import.group = group.clone();
    import.extra = fleet_toml(&a_tenants);
    std::fs::write(
        &import_config,
        import.render(&rig, weir_testkit::free_port())?,
    )?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["control", "import", "-c"])
        .arg(&import_config)
        .output()?;
    ensure!(
        out.status.success(),
        "weir control import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("imported 1 tenants and 1 modules"),
        "import said: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // B and C start with empty tenants folders: all they run comes from
    // the topic.
    let a = start_host(&rig, &group, "a").await?;
    let b = start_host(&rig, &group, "b").await?;
    let c = start_host(&rig, &group, "c").await?;
    for h in [&a, &b, &c] {
        converge_on(&[h], -1, &digest_a, "the imported version").await?;
    }
    let traffic = Traffic::start(&rig);
    every_partition_stamped(&rig, "a", &a).await?;

    // 1. An upload through A runs on every host.
    let (offset, report) = write(
        client()
            .put(format!("{}/v1/tenants/acme/modules/tag", a.admin))
            .bearer_auth(ACME_TOKEN)
            .header("content-type", "application/wasm")
            .body(stamp_b.clone()),
        "upload through A",
    )
    .await?;
    ensure!(
        report["digest"] == digest_b.as_str()
            && report["activated"] == serde_json::json!(["acme.events/tag"]),
        "A answered before running the upload: {report}"
    );
    traffic.phase("between-a-and-b");
    converge_on(&[&a, &b, &c], offset, &digest_b, "the upload").await?;
    traffic.phase("b");
    every_partition_stamped(&rig, "b", &a).await?;

    // 2. Rollback through C, pause and resume through B.
    let (offset, status) = write(
        client()
            .post(format!(
                "{}/v1/tenants/acme/pipelines/events/modules/tag/rollback",
                c.admin
            ))
            .bearer_auth(ACME_TOKEN),
        "rollback through C",
    )
    .await?;
    ensure!(
        status["active"]["digest"] == digest_a.as_str(),
        "C answered before rolling back: {status}"
    );
    traffic.phase("between-b-and-a");
    converge_on(&[&a, &b, &c], offset, &digest_a, "the rollback").await?;
    traffic.phase("a-again");
    for (verb, paused) in [("pause", true), ("resume", false)] {
        let (offset, answer) = write(
            client()
                .post(format!(
                    "{}/v1/tenants/acme/pipelines/events/{verb}",
                    b.admin
                ))
                .bearer_auth(ACME_TOKEN),
            verb,
        )
        .await?;
        ensure!(answer["pipeline"]["paused"] == paused, "{verb}: {answer}");
        for h in [&a, &b, &c] {
            once_applied(h, offset, verb, || async {
                let p = get(h, "/v1/tenants/acme/pipelines/events", Some(ACME_TOKEN)).await?;
                Ok((p["paused"] == paused).then_some(()))
            })
            .await?;
        }
    }

    // 3. A dies mid-stream; B and C carry on, and a fourth host with an
    // empty disk gets the whole state from the topic.
    let seen = traffic.produced();
    a.process.kill9()?;
    let d = start_host(&rig, &group, "d").await?;
    ensure!(
        std::fs::read_dir(rig.dir.path().join("d/tenants"))?.count() > 0,
        "D wrote nothing from the topic"
    );
    converge_on(&[&b, &c, &d], offset, &digest_a, "the state on B, C and D").await?;
    wait_for("D consuming", CONVERGE, Some(&d), || async {
        let p = get(&d, "/v1/tenants/acme/pipelines/events", Some(ACME_TOKEN)).await?;
        Ok(
            (p["records_consumed"].as_u64().unwrap_or(0) > 0 && traffic.produced() > seen + 100)
                .then_some(()),
        )
    })
    .await?;

    // 4. A truncated and a corrupted version in the topic, and a complete
    // one whose bytes fail the upload checks (written as if by acme,
    // straight to the topic, so no host's API checked it): refused by
    // every host; the running version stays and says why.
    let unset = sha(&stamp_unset);
    let header = |chunks: u32, size: usize| {
        format!("{{\"chunks\":{chunks},\"size\":{size}}}\n").into_bytes()
    };
    let half = stamp_unset.len() / 2;
    let mut truncated = header(2, stamp_unset.len());
    truncated.extend_from_slice(&stamp_unset[..half]);
    let module = |digest: &str| {
        serde_json::json!({"digest": digest, "versions": [digest_a, digest]}).to_string()
    };
    let wrong = "0".repeat(64);
    let mut corrupted = header(1, stamp_unset.len());
    corrupted.extend_from_slice(&stamp_unset);
    let hostile = std::fs::read(module_wasm("fixture-fail-init")?)?;
    let hostile_digest = sha(&hostile);
    let pieces: Vec<&[u8]> = hostile.chunks(65536).collect();
    let mut hostile_records: Vec<(Option<String>, Vec<u8>)> = pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut value = format!(
                "{{\"chunks\":{},\"size\":{},\"by\":\"acme\"}}\n",
                pieces.len(),
                hostile.len()
            )
            .into_bytes();
            value.extend_from_slice(piece);
            (Some(format!("blob/acme/{hostile_digest}/{i}")), value)
        })
        .collect();
    hostile_records.push((
        Some("module/acme/tag".into()),
        serde_json::json!({
            "by": "acme",
            "digest": hostile_digest,
            "versions": [digest_a, hostile_digest],
        })
        .to_string()
        .into_bytes(),
    ));
    for (records, why) in [
        (
            vec![
                (Some("garbage key".to_string()), b"not a record".to_vec()),
                (Some(format!("blob/acme/{unset}/0")), truncated),
                (Some("module/acme/tag".into()), module(&unset).into_bytes()),
            ],
            "chunk 1 of 2 is missing",
        ),
        (
            vec![
                (Some(format!("blob/acme/{wrong}/0")), corrupted),
                (Some("module/acme/tag".into()), module(&wrong).into_bytes()),
            ],
            "is corrupted",
        ),
        (hostile_records, "fixture: init refuses"),
    ] {
        let placed = rig.kafka.produce(CONTROL, records).await?;
        let at = placed.last().context("produced")?.1;
        for h in [&b, &c, &d] {
            once_applied(h, at, "refusal", || async {
                let error = ensure_acme_runs(h, &digest_a, "after a bad version").await?;
                Ok(error.is_some_and(|e| e.contains(why)).then_some(()))
            })
            .await?;
        }
    }
    for h in [&b, &c, &d] {
        ensure!(
            h.metric("weir_control_refused", &[]).await? >= 4.0,
            "{}: refusals not counted",
            h.admin
        );
    }
    // A forged writer: globex's name on acme's module record, pointing at
    // a complete, valid version (b, uploaded in step 1). Every host
    // refuses it for its writer and counts it; acme keeps running a.
    let mut refused_before = Vec::new();
    for h in [&b, &c, &d] {
        refused_before.push(h.metric("weir_control_refused", &[]).await?);
    }
    let forged = serde_json::json!({
        "by": "globex",
        "digest": digest_b,
        "versions": [digest_a, digest_b],
    });
    let placed = rig
        .kafka
        .produce(
            CONTROL,
            [(Some("module/acme/tag".to_string()), forged.to_string())],
        )
        .await?;
    let at = placed.last().context("produced")?.1;
    for (h, before) in [&b, &c, &d].into_iter().zip(refused_before) {
        once_applied(h, at, "the forged record refused", || async {
            let refused = h.metric("weir_control_refused", &[]).await?;
            Ok((refused > before).then_some(()))
        })
        .await?;
        ensure_acme_runs(h, &digest_a, "after a forged record").await?;
    }

    // 5. A tenant added through D consumes on all; removed through B, it
    // stops on all.
    let globex = |pipelines: &str| format!("token_sha256 = \"{}\"\n{pipelines}", sha(GLOBEX_TOKEN));
    // Added with the CLI (through D's API), then given a module and a
    // pipeline through the API.
    let globex_file = rig.dir.path().join("globex.toml");
    std::fs::write(&globex_file, globex(""))?;
    cli(&["tenants", "put", "globex", "--file"], &globex_file, &d)?;
    let early = client()
        .put(format!("{}/v1/control/tenants/globex", d.admin))
        .body(globex(&tenant_pipeline(
            "events",
            "globex.events",
            "globex-events",
            &["tag.wasm"],
        )))
        .send()
        .await?;
    ensure!(
        early.status() == reqwest::StatusCode::CONFLICT
            && early.text().await?.contains("upload the module first"),
        "a pipeline whose module is nowhere was not refused"
    );
    write(
        client()
            .put(format!("{}/v1/tenants/globex/modules/tag", d.admin))
            .bearer_auth(GLOBEX_TOKEN)
            .body(stamp_b.clone()),
        "globex's upload",
    )
    .await?;
    let (offset, _) = write(
        client()
            .put(format!("{}/v1/control/tenants/globex", d.admin))
            .body(globex(&tenant_pipeline(
                "events",
                "globex.events",
                "globex-events",
                &["tag.wasm"],
            ))),
        "globex's pipeline",
    )
    .await?;
    let globex_placed = rig
        .kafka
        .produce(
            "globex.events",
            (0..60).map(|i| (Some(format!("g{i}")), format!("{{\"g\":{i}}}"))),
        )
        .await?;
    for h in [&b, &c, &d] {
        once_applied(h, offset, "globex", || async {
            let running = module_state(h, "globex.events", "tag").await?;
            Ok(running.is_some().then_some(()))
        })
        .await?;
    }
    rig::assert_indexed_exactly(
        &rig,
        "globex-events",
        &expected_ids("globex.events", &globex_placed),
        Some(&d),
        CONVERGE,
    )
    .await?;
    let (offset, _) = write(
        client().delete(format!("{}/v1/control/tenants/globex", b.admin)),
        "remove globex",
    )
    .await?;
    for h in [&b, &c, &d] {
        once_applied(h, offset, "globex gone", || async {
            let gone = client()
                .get(format!("{}/v1/tenants/globex", h.admin))
                .bearer_auth(GLOBEX_TOKEN)
                .send()
                .await?
                .status()
                == reqwest::StatusCode::UNAUTHORIZED;
            let running = module_state(h, "globex.events", "tag").await?;
            Ok((gone && running.is_none()).then_some(()))
        })
        .await?;
    }

    // Once gone everywhere, the CLI says so.
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["tenants", "remove", "globex", "--admin", &c.admin])
        .output()?;
    ensure!(
        !unknown.status.success()
            && String::from_utf8_lossy(&unknown.stderr).contains("no tenant `globex`"),
        "removing a removed tenant: {}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    // Every record indexed once. Per partition, in offset order, the
    // stamp went from the old version to the new once, and back once
    // with the rollback: never back and forth. (A record is stamped when
    // it is processed, which may be after a later change when its
    // partition lagged; nothing produced after the rollback reached every
    // host is stamped with the uploaded version.)
    let placed = traffic.finish().await?;
    let ids = expected_ids(
        TOPIC,
        &placed.iter().map(|(p, o, _)| (*p, *o)).collect::<Vec<_>>(),
    );
    rig::assert_indexed_exactly(&rig, INDEX, &ids, Some(&b), Duration::from_secs(120)).await?;
    let phases: BTreeMap<(i32, i64), &str> =
        placed.iter().map(|(p, o, ph)| ((*p, *o), *ph)).collect();
    let mut switched = HashSet::new();
    for (p, docs) in stamps(&rig).await? {
        let mut runs: Vec<&str> = docs.iter().map(|(_, s)| s.as_str()).collect();
        runs.dedup();
        ensure!(
            runs == ["a", "b", "a"],
            "partition {p}: stamps went {runs:?}, not a -> b -> a once each"
        );
        for (o, stamp) in &docs {
            let phase = phases.get(&(p, *o)).copied().unwrap_or_default();
            ensure!(
                phase != "a-again" || stamp == "a",
                "partition {p} offset {o}: produced after the rollback, stamped {stamp}"
            );
        }
        switched.insert(p);
    }
    ensure!(
        switched.len() == 6,
        "only partitions {switched:?} saw records"
    );

    // The control topic unreachable (the broker stopped): hosts keep
    // their last state and say so in /healthz and the metrics; back, they
    // are healthy again.
    rig.kafka.process().freeze()?;
    for h in [&b, &c, &d] {
        control_reachable_says(h, false).await?;
        ensure_acme_runs(h, &digest_a, "without the topic").await?;
    }
    rig.kafka.process().thaw()?;
    for h in [&b, &c, &d] {
        control_reachable_says(h, true).await?;
    }
    Ok(())
}

/// Waits until `host`'s `/healthz` and `weir_control_reachable` say the
/// control topic is `reachable` (healthy) or not (503, with an unhealthy
/// `control` component).
async fn control_reachable_says(host: &Host, reachable: bool) -> Result<()> {
    wait_for(
        &format!(
            "{} to say the control topic reachable: {reachable}",
            host.admin
        ),
        CONVERGE,
        Some(host),
        || async {
            let (status, control) = health(host).await?;
            let healthz = if reachable {
                status.is_success()
            } else {
                status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && control.is_some_and(|c| c["healthy"] == false)
            };
            let gauge = host.metric("weir_control_reachable", &[]).await?;
            let gauge_says = gauge == if reachable { 1.0 } else { 0.0 };
            Ok((healthz && gauge_says).then_some(()))
        },
    )
    .await
}

/// `/healthz` of `host`: its status and the `control` component.
async fn health(host: &Host) -> Result<(reqwest::StatusCode, Option<Value>)> {
    let resp = reqwest::get(format!("{}/healthz", host.admin)).await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    let control = body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "control")
        .cloned();
    Ok((status, control))
}
