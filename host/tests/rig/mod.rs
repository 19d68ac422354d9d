//! Shared harness for the end-to-end tests: a real tansu broker, a real
//! osmem server (optionally behind the fault proxy) and the `weir` binary
//! itself, configured through a generated `weir.toml`.

#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weir_testkit::{EsClient, Kafka, Osmem, Process, free_port, module_wasm};

/// The rig's tests each start a broker, a search server and one or two
/// hosts; run them one at a time so two cores are not oversubscribed.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const PARTITIONS: i32 = 4;

/// Everything a scenario needs running.
pub struct Rig {
    pub kafka: Kafka,
    pub osmem: Osmem,
    pub dir: tempfile::TempDir,
}

impl Rig {
    pub async fn start() -> Result<Rig> {
        let kafka = Kafka::start().await?;
        let osmem = Osmem::start().await?;
        Ok(Rig {
            kafka,
            osmem,
            dir: tempfile::tempdir()?,
        })
    }

    pub fn es(&self) -> EsClient {
        self.osmem.client()
    }

    /// Creates `topic` with [`PARTITIONS`] partitions and produces `values`
    /// keyed by position; returns the `(partition, offset)` of each.
    pub async fn load(&self, topic: &str, values: Vec<String>) -> Result<Vec<(i32, i64)>> {
        self.kafka.create_topic(topic, PARTITIONS).await?;
        self.kafka
            .produce(
                topic,
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (Some(format!("k{i}")), v)),
            )
            .await
    }
}

/// Deterministic document ids the host derives for one-document records.
pub fn expected_ids(topic: &str, placed: &[(i32, i64)]) -> HashSet<String> {
    placed
        .iter()
        .map(|(p, o)| format!("{topic}-{p}-{o}-0"))
        .collect()
}

/// A tweet-shaped record (~400 bytes) that text-clean has work to do on.
pub fn tweet(i: usize) -> String {
    serde_json::json!({
        "id": format!("t{i}"),
        "text": format!("RT @user{i}: Reading https://example.com/a/{i} &amp; thinking about <b>item {i}</b>   #weir #test @friend"),
        "created_at": "2026-11-26T12:00:00Z",
        "lang": "en",
        "user": {"id": format!("u{}", i % 97), "screen_name": format!("user{}", i % 97), "followers_count": i % 1000},
        "source": "sample",
        "retweet_count": i % 13,
        "like_count": i % 29
    })
    .to_string()
}

/// A news-shaped record.
pub fn news(i: usize) -> String {
    serde_json::json!({
        "id": format!("n{i}"),
        "title": format!("Markets &amp; <i>science</i>: story {i} https://news.example/{i}"),
        "description": format!("A   description of story {i} by @desk"),
        "url": format!("https://news.example/{i}"),
        "source": {"id": "ex", "name": "Example Times"},
        "published_at": "2026-11-25T08:00:00Z",
        "feed": "sample"
    })
    .to_string()
}

/// One pipeline in a generated config.
pub struct PipelineSpec {
    pub name: String,
    pub topic: String,
    pub index: String,
    /// `(module file: a stem under dist/modules or a path, [(key, value)])`
    pub modules: Vec<(String, Vec<(String, String)>)>,
}

impl PipelineSpec {
    pub fn new(name: &str, topic: &str, index: &str) -> Self {
        Self {
            name: name.into(),
            topic: topic.into(),
            index: index.into(),
            modules: Vec::new(),
        }
    }

    pub fn module(mut self, stem: &str, config: &[(&str, &str)]) -> Self {
        self.modules.push((
            stem.into(),
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        self
    }
}

static GROUPS: AtomicU32 = AtomicU32::new(0);

/// A `weir.toml` for the rig.
pub struct HostConfig {
    pub group: String,
    pub es_url: String,
    pub pipelines: Vec<PipelineSpec>,
    /// Extra TOML appended verbatim (e.g. `[elasticsearch.retry]`).
    pub extra: String,
    /// Extra keys of the `[kafka]` table (e.g. `dead_letters = "exactly-once"`).
    pub kafka_extra: String,
    pub templates: Vec<(String, String)>,
    /// `kafka.drain_timeout` (default 20 s).
    pub drain_timeout: Duration,
}

impl HostConfig {
    pub fn new(es_url: &str, pipelines: Vec<PipelineSpec>) -> Self {
        Self {
            group: format!(
                "weir-test-{}-{}",
                std::process::id(),
                GROUPS.fetch_add(1, Ordering::Relaxed)
            ),
            es_url: es_url.into(),
            pipelines,
            extra: String::new(),
            kafka_extra: String::new(),
            templates: Vec::new(),
            drain_timeout: Duration::from_secs(20),
        }
    }

    /// Adds an index template (name, JSON body).
    pub fn template(mut self, name: &str, body: serde_json::Value) -> Self {
        self.templates.push((name.into(), body.to_string()));
        self
    }

    /// The config text for `rig`, with the admin endpoint on `admin_port`.
    pub fn render(&self, rig: &Rig, admin_port: u16) -> Result<String> {
        let mut t = format!(
            r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
commit_interval = "200ms"
drain_timeout = "{drain}ms"
revoke_timeout = "3s"
{kafka_extra}
[kafka.consumer_properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 1000
[kafka.batch]
max_records = 200
linger = "20ms"

[elasticsearch]
url = "{es}"
"#,
            brokers = rig.kafka.bootstrap(),
            group = self.group,
            drain = self.drain_timeout.as_millis(),
            kafka_extra = self.kafka_extra,
            es = self.es_url,
        );
        if !self.templates.is_empty() {
            t.push_str("templates = [");
            for (name, body) in &self.templates {
                let path = rig.dir.path().join(format!("{name}.template.json"));
                std::fs::write(&path, body)?;
                t.push_str(&format!(
                    "{{ name = \"{name}\", path = \"{}\" }},",
                    path.display()
                ));
            }
            t.push_str("]\n");
        }
        t.push_str(
            r#"[elasticsearch.batch]
max_docs = 500
timeout = "50ms"
[elasticsearch.retry]
initial_backoff = "50ms"
max_backoff = "1s"
"#,
        );
        t.push_str(&format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n"));
        for p in &self.pipelines {
            t.push_str(&format!(
                "[pipelines.{}]\ntopics = [\"{}\"]\nindex = \"{}\"\n",
                p.name, p.topic, p.index
            ));
            for (stem, config) in &p.modules {
                let path = if stem.ends_with(".wasm") {
                    PathBuf::from(stem)
                } else {
                    module_wasm(stem)?
                };
                t.push_str(&format!(
                    "[[pipelines.{}.modules]]\npath = \"{}\"\n",
                    p.name,
                    path.display()
                ));
                if !config.is_empty() {
                    t.push_str(&format!("[pipelines.{}.modules.config]\n", p.name));
                    for (k, v) in config {
                        t.push_str(&format!("{k} = \"{v}\"\n"));
                    }
                }
            }
        }
        t.push_str(&self.extra);
        Ok(t)
    }
}

/// A running `weir run` process.
pub struct Host {
    pub process: Process,
    pub admin: String,
    pub admin_port: u16,
    pub config_path: PathBuf,
}

impl Host {
    /// Writes the config and starts `weir run`; waits for the admin endpoint.
    pub async fn start(rig: &Rig, config: &HostConfig) -> Result<Host> {
        let port = free_port();
        let text = config.render(rig, port)?;
        let path: PathBuf = rig.dir.path().join(format!("weir-{port}.toml"));
        std::fs::write(&path, text)?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.arg("run")
            .arg("-c")
            .arg(&path)
            .env("RUST_LOG", "info,weir=debug,librdkafka=warn");
        let process = Process::spawn("weir", cmd)?;
        let host = Host {
            process,
            admin: format!("http://127.0.0.1:{port}"),
            admin_port: port,
            config_path: path,
        };
        let started = Instant::now();
        loop {
            if reqwest::get(format!("{}/metrics", host.admin))
                .await
                .is_ok()
            {
                return Ok(host);
            }
            host.process.ensure_running()?;
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "weir did not open its admin endpoint in 60 s:\n{}",
                    host.process.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /v1/modules` of the running host.
    pub async fn modules(&self) -> Result<serde_json::Value> {
        Ok(reqwest::get(format!("{}/v1/modules", self.admin))
            .await?
            .json()
            .await?)
    }

    /// Replaces the host's config file (write, then rename: atomic).
    pub fn rewrite_config(&self, rig: &Rig, config: &HostConfig) -> Result<()> {
        write_atomic(
            &self.config_path,
            config.render(rig, self.admin_port)?.as_bytes(),
        )
    }

    /// Prometheus text from the admin endpoint.
    pub async fn metrics(&self) -> Result<String> {
        Ok(reqwest::get(format!("{}/metrics", self.admin))
            .await?
            .text()
            .await?)
    }

    /// Sum of every sample of `name` whose labels contain all of `labels`.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> Result<f64> {
        Ok(sum_metric(&self.metrics().await?, name, labels))
    }
}

/// Sums the samples of metric `name` (exact name, `_total` suffix allowed)
/// whose label text contains every string in `labels`.
pub fn sum_metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest),
                None => (series, ""),
            };
            let metric = metric.strip_suffix("_total").unwrap_or(metric);
            (metric == name && labels.iter().all(|want| label_text.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Polls `check` every 200 ms until it returns `Some`, or fails after
/// `timeout` with `what` and the host's log tail (above DEBUG).
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    host: Option<&Host>,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if started.elapsed() > timeout {
            let log = host
                .map(|h| h.process.log_tail_above_debug())
                .unwrap_or_default();
            bail!(
                "timed out after {timeout:?} waiting for {what}\n--- weir log tail (above DEBUG) ---\n{log}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `index` holds exactly `n` documents, then checks the id set.
pub async fn assert_indexed_exactly(
    rig: &Rig,
    index: &str,
    ids: &HashSet<String>,
    host: Option<&Host>,
    timeout: Duration,
) -> Result<()> {
    let es = rig.es();
    let n = ids.len() as u64;
    wait_for(
        &format!("{n} documents in {index}"),
        timeout,
        host,
        || async {
            es.refresh(index).await.ok();
            let c = es.count(index).await.unwrap_or(0);
            if c > n {
                bail!("{index} holds {c} documents, more than the {n} expected: duplicates");
            }
            Ok((c == n).then_some(()))
        },
    )
    .await?;
    let got = es.ids(index).await?;
    let missing: Vec<_> = ids.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(ids).take(5).collect();
    if !missing.is_empty() || !extra.is_empty() {
        bail!("{index}: id set differs: missing {missing:?}, unexpected {extra:?}");
    }
    Ok(())
}

/// Waits until the group's committed offsets equal the topic's end offsets.
pub async fn assert_committed_to_end(
    rig: &Rig,
    group: &str,
    topic: &str,
    host: Option<&Host>,
) -> Result<()> {
    let end = rig.kafka.end_offsets(topic).await?;
    let last = std::sync::Mutex::new(Vec::new());
    let waited = wait_for(
        &format!("group {group} to commit {topic} to {end:?}"),
        Duration::from_secs(30),
        host,
        || async {
            let committed = rig.kafka.committed_offsets(group, topic).await?;
            let committed: Vec<i64> = committed.into_iter().map(|o| o.unwrap_or(0)).collect();
            let done = committed == end;
            *last.lock().unwrap() = committed;
            Ok(done.then_some(()))
        },
    )
    .await;
    let last = last.into_inner().unwrap();
    waited.with_context(|| format!("committed offsets (last seen {last:?})"))
}

/// Writes `bytes` to a temporary name next to `path`, then renames it into
/// place: the convention for dropping modules and configs into watched
/// folders.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Every document of `index` as `(id, _source)`, via scroll.
pub async fn scan(es_url: &str, index: &str) -> Result<Vec<(String, serde_json::Value)>> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    let mut page: serde_json::Value = client
        .post(format!("{es_url}/{index}/_search?scroll=1m"))
        .json(&serde_json::json!({"size": 5000, "sort": ["_doc"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    loop {
        let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
        if hits.is_empty() {
            return Ok(out);
        }
        for h in hits {
            out.push((
                h["_id"].as_str().unwrap_or_default().to_string(),
                h["_source"].clone(),
            ));
        }
        let scroll_id = page["_scroll_id"]
            .as_str()
            .context("scroll id")?
            .to_string();
        page = client
            .post(format!("{es_url}/_search/scroll"))
            .json(&serde_json::json!({"scroll": "1m", "scroll_id": scroll_id}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
    }
}

/// Parses a default document id `<topic>-<partition>-<offset>-<n>`.
pub fn parse_id(id: &str) -> Option<(i32, i64)> {
    let mut parts = id.rsplitn(4, '-');
    let _n = parts.next()?;
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    Some((partition, offset))
}

/// A tenants folder (`[tenants] dir`) in the rig's temp dir: one
/// `<id>.toml` per tenant, modules under `<id>/modules/`. Files are written
/// atomically, so a watching host sees each tenant appear whole.
pub struct TenantsDir {
    pub dir: PathBuf,
}

impl TenantsDir {
    pub fn create(rig: &Rig) -> Result<TenantsDir> {
        let dir = rig.dir.path().join("tenants");
        std::fs::create_dir_all(&dir)?;
        Ok(TenantsDir { dir })
    }

    /// `[tenants]` for the host config's `extra`, plus `more` (e.g. a
    /// `[tenants.breaker]` table) verbatim.
    pub fn config(&self, more: &str) -> String {
        format!("[tenants]\ndir = \"{}\"\n{more}", self.dir.display())
    }

    /// Copies `dist/modules/<stem>.wasm` to `<id>/modules/<name>.wasm`.
    pub fn add_module(&self, id: &str, name: &str, stem: &str) -> Result<PathBuf> {
        let dir = self.dir.join(id).join("modules");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.wasm"));
        write_atomic(&path, &std::fs::read(module_wasm(stem)?)?)?;
        Ok(path)
    }

    /// Writes `<id>.toml`.
    pub fn write(&self, id: &str, toml: &str) -> Result<()> {
        write_atomic(&self.dir.join(format!("{id}.toml")), toml.as_bytes())
    }

    /// Deletes `<id>.toml` (the tenant's modules stay on disk).
    pub fn remove(&self, id: &str) -> Result<()> {
        std::fs::remove_file(self.dir.join(format!("{id}.toml")))?;
        Ok(())
    }
}

/// A `[pipelines.<name>]` table for a tenant file; module paths are
/// relative to the tenant's modules folder.
pub fn tenant_pipeline(name: &str, topic: &str, index: &str, modules: &[&str]) -> String {
    let modules: Vec<String> = modules
        .iter()
        .map(|m| format!("{{ path = \"{m}\" }}"))
        .collect();
    format!(
        "[pipelines.{name}]\ntopics = [\"{topic}\"]\nindex = \"{index}\"\nmodules = [{}]\n",
        modules.join(", ")
    )
}

/// A header of a consumed record as text (empty if absent).
pub fn header(r: &weir_testkit::ConsumedRecord, key: &str) -> String {
    r.headers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// The records of dead-letter `topic`, read to its end (once it holds at
/// least `expected.len()`), checked to be exactly one per `expected`
/// source position: none missing, none extra, none twice. A dead letter's
/// source is read from its `partition_header` and `offset_header`. Call it
/// after the pipeline committed its input, so every write is in.
pub async fn dead_letters_exactly(
    rig: &Rig,
    topic: &str,
    expected: &[(i32, i64)],
    (partition_header, offset_header): (&str, &str),
    timeout: Duration,
) -> Result<Vec<weir_testkit::ConsumedRecord>> {
    let dead = rig
        .kafka
        .read_to_end(topic, expected.len(), timeout)
        .await?;
    let mut got = Vec::with_capacity(dead.len());
    for r in &dead {
        let p = header(r, partition_header);
        let o = header(r, offset_header);
        let at: (i32, i64) = (
            p.parse()
                .with_context(|| format!("{topic}: {partition_header} {p:?}"))?,
            o.parse()
                .with_context(|| format!("{topic}: {offset_header} {o:?}"))?,
        );
        got.push(at);
    }
    let mut want = expected.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        let twice: Vec<_> = got
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .take(5)
            .collect();
        let got_set: HashSet<_> = got.iter().copied().collect();
        let want_set: HashSet<_> = want.iter().copied().collect();
        let missing: Vec<_> = want_set.difference(&got_set).take(5).collect();
        let extra: Vec<_> = got_set.difference(&want_set).take(5).collect();
        bail!(
            "{topic}: {} dead letters for {} expected: missing {missing:?}, unexpected {extra:?}, twice {twice:?}",
            got.len(),
            want.len()
        );
    }
    Ok(dead)
}

/// Records on `topic` (sum of its partitions' end offsets).
pub async fn topic_len(rig: &Rig, topic: &str) -> Result<i64> {
    Ok(rig.kafka.end_offsets(topic).await?.iter().sum())
}
