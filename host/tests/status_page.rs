//! The live status page in a real browser: the rig (tansu + osmem + the
//! weir binary) indexes a known set of classified documents through
//! pass-through pipelines, headless Chromium loads the admin port's page,
//! and the numbers it renders must equal the indices' own counts. The
//! screenshot is kept as `$CARGO_TARGET_DIR/weir-artifacts/status-page.png`.
//!
//! Needs Debian's `chromium` (CI installs it; this test installs nothing):
//! `apt-get update && apt-get install -y chromium fonts-dejavu-core`.

#[path = "rig/mod.rs"]
mod rig;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use rig::*;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "apt-get update && apt-get install -y chromium fonts-dejavu-core";

/// Tweet texts by the hate label the fixture gives them.
const NEITHER_TWEETS: [&str; 6] = [
    "Loving the new bike lanes downtown, commute was a breeze today #city",
    "Anyone else stuck on the 8:15 train again? Third time this week",
    "Our team shipped the release two days early, proud of everyone",
    "Coffee, rain, and a good book: perfect Sunday #slowliving",
    "Farmers market has the first strawberries of the season!",
    "Power cut on Elm Street for two hours, no word from the utility",
];
const OFFENSIVE_TWEETS: [&str; 2] = [
    "That referee is a clown, absolutely useless, get him off the pitch",
    "Shut up already, nobody asked for your idiotic opinion",
];
const HATE_TWEETS: [&str; 1] =
    ["[test fixture: a post attacking a group of people, wording withheld]"];
/// News titles by the sentiment label the fixture gives them.
const POSITIVE_TITLES: [&str; 3] = [
    "Local startup wins national award for water filtration design",
    "Volunteers restore historic lighthouse ahead of festival",
    "Students set regional record at robotics championship",
];
const NEGATIVE_TITLES: [&str; 3] = [
    "Storm leaves thousands without power across the region",
    "Hospital waiting times rise for the fourth month in a row",
    "Bridge closure expected to last until the end of summer",
];
const NEUTRAL_TITLES: [&str; 2] = [
    "City council publishes agenda for Thursday's meeting",
    "Quarterly report shows unemployment holding steady",
];

fn pick<'a>(texts: &[&'a str], i: usize) -> &'a str {
    texts[i % texts.len()]
}

const PUBLICATIONS: [&str; 3] = ["Example Times", "The Daily Sample", "Metro Wire"];

fn hate_label(i: usize) -> &'static str {
    match i % 10 {
        0 => "hate",
        3 | 5 => "offensive",
        9 => "unclassified",
        _ => "neither",
    }
}

fn sentiment_label(i: usize) -> &'static str {
    match i % 12 {
        11 => "unclassified",
        0 | 2 | 5 | 7 | 9 => "positive",
        1 | 4 | 6 => "negative",
        _ => "neutral",
    }
}

/// Ingestion time of document `k` of `n` in a wave produced at `wave_at`:
/// spread over the second before it, so waves never overlap and tweets
/// and news interleave.
fn ingested_at(wave_at: SystemTime, k: usize, n: usize, nudge_ms: u64) -> String {
    let offset = Duration::from_millis(k as u64 * 900 / n as u64 + nudge_ms);
    humantime::format_rfc3339_millis(wave_at - Duration::from_secs(1) + offset).to_string()
}

/// A tweet as detect-hate and enrich would leave it.
fn classified_tweet(i: usize, at: String) -> String {
    let label = hate_label(i);
    json!({
        "id": format!("t{i}"),
        "text": match label {
            "hate" => pick(&HATE_TWEETS, i).to_string(),
            "offensive" => pick(&OFFENSIVE_TWEETS, i).to_string(),
            _ => pick(&NEITHER_TWEETS, i).to_string(),
        },
        "created_at": "2026-11-26T12:00:00Z",
        "user": {"id": format!("u{}", i % 17), "screen_name": format!("reader{}", i % 17)},
        "source": "sample",
        "hate": if label == "unclassified" {
            json!({"label": label, "model": "test"})
        } else {
            json!({"label": label, "score": 0.55 + (i % 5) as f64 / 12.0, "model": "test"})
        },
        "weir": {"ingested_at": at, "modules": ["detect-hate@0.1.0"]}
    })
    .to_string()
}

/// A tweet the index's mapping rejects (`hate.score` is a float): the sink
/// dead-letters it.
fn unmappable_tweet(i: usize) -> String {
    json!({"id": format!("bad{i}"), "text": "unmappable", "hate": {"label": "neither", "score": "very"}}).to_string()
}

fn classified_news(i: usize, at: String) -> String {
    let label = sentiment_label(i);
    let magnitude = 0.3 + (i % 7) as f64 / 10.0;
    let score = match label {
        "positive" => magnitude,
        "negative" => -magnitude,
        _ => 0.0,
    };
    json!({
        "id": format!("n{i}"),
        "title": match label {
            "positive" => pick(&POSITIVE_TITLES, i),
            "negative" => pick(&NEGATIVE_TITLES, i),
            _ => pick(&NEUTRAL_TITLES, i),
        },
        "url": format!("https://news.example/{i}"),
        "source": {"id": "ex", "name": PUBLICATIONS[i % PUBLICATIONS.len()]},
        "published_at": "2026-11-25T08:00:00Z",
        "feed": "sample",
        "sentiment": if label == "unclassified" {
            json!({"label": label, "model": "test"})
        } else {
            json!({"label": label, "score": score, "model": "test"})
        },
        "weir": {"ingested_at": at, "modules": ["classify-sentiment@0.1.0"]}
    })
    .to_string()
}

fn template() -> Value {
    json!({
        "index_patterns": ["status-*"],
        "template": {"mappings": {"properties": {
            "sentiment": {"properties": {"label": {"type": "keyword"}, "score": {"type": "float"}}},
            "hate": {"properties": {"label": {"type": "keyword"}, "score": {"type": "float"}}},
            "weir": {"properties": {"ingested_at": {"type": "date"}}}
        }}}
    })
}

/// Where the test keeps its screenshot.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // <target>/debug/weir
            Path::new(env!("CARGO_BIN_EXE_weir"))
                .ancestors()
                .nth(2)
                .expect("target dir")
                .to_path_buf()
        });
    target.join("weir-artifacts")
}

/// Runs headless Chromium on `url` with `extra` (e.g. `--dump-dom`).
async fn chromium(url: &str, extra: &[&str]) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,1600",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {CHROMIUM}"))?;
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .context("chromium did not finish in 90 s")??;
    if !out.status.success() {
        bail!(
            "chromium {extra:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One element of the dumped DOM, found by id.
struct Element {
    /// The `data-value` attribute, if any.
    value: Option<String>,
    /// Text up to the first child tag.
    text: String,
}

fn element(dom: &str, id: &str) -> Result<Element> {
    let needle = format!("id=\"{id}\"");
    let at = dom
        .find(&needle)
        .with_context(|| format!("no #{id} in the page"))?;
    let open = dom[..at].rfind('<').context("tag start")?;
    let close = at + dom[at..].find('>').context("tag end")?;
    let tag = &dom[open..close];
    let value = tag
        .split_once("data-value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_string());
    let rest = &dom[close + 1..];
    let text = rest[..rest.find('<').unwrap_or(rest.len())]
        .trim()
        .to_string();
    Ok(Element { value, text })
}

/// The integer an element shows ("1,234" reads as 1234), checked against
/// its `data-value`.
fn shown_count(dom: &str, id: &str) -> Result<u64> {
    let e = element(dom, id)?;
    let shown: u64 = e
        .text
        .replace(',', "")
        .parse()
        .with_context(|| format!("#{id} shows {:?}", e.text))?;
    let raw: u64 = e
        .value
        .as_deref()
        .unwrap_or("")
        .parse()
        .with_context(|| format!("#{id} data-value {:?}", e.value))?;
    ensure!(shown == raw, "#{id} shows {shown} but holds {raw}");
    Ok(shown)
}

/// `terms` counts of `field` in `index`, straight from the search server.
async fn terms(es_url: &str, index: &str, field: &str) -> Result<BTreeMap<String, u64>> {
    let v: Value = reqwest::Client::new()
        .post(format!("{es_url}/{index}/_search"))
        .json(&json!({"size": 0, "aggs": {"t": {"terms": {"field": field, "size": 50}}}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v["aggregations"]["t"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["key"].as_str().unwrap_or_default().to_string(),
                b["doc_count"].as_u64().unwrap_or(0),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_what_the_indices_hold() -> Result<()> {
    if !Path::new(CHROMIUM).exists() {
        bail!(
            "{CHROMIUM} is missing: this test drives headless Chromium. Install it with `{INSTALL}` (CI's .ci/run does)."
        );
    }
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    for topic in ["tweets", "news"] {
        rig.kafka.create_topic(topic, PARTITIONS).await?;
        rig.kafka.create_topic(&format!("{topic}-dlq"), 1).await?;
    }
    // Index names that are not the defaults: the page must take them from
    // the pipelines' config.
    let (tweets_index, news_index) = ("status-tweets", "status-news");
    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![
            PipelineSpec::new("tweets", "tweets", tweets_index).module("passthrough", &[]),
            PipelineSpec::new("news", "news", news_index).module("passthrough", &[]),
        ],
    )
    .template("status-test", template());
    let host = Host::start(&rig, &config).await?;

    // Waves a second apart, so the throughput chart has a shape.
    let (waves, tweets_per_wave, news_per_wave, bad_per_wave) = (6, 50, 30, 1);
    let mut produced = (0u64, 0u64);
    let mut good_ids: HashSet<String> = HashSet::new();
    let mut news_ids: HashSet<String> = HashSet::new();
    for w in 0..waves {
        let wave_at = SystemTime::now();
        let mut tweets = Vec::new();
        let mut good = Vec::new();
        for k in 0..tweets_per_wave + bad_per_wave {
            let i = w * tweets_per_wave + k;
            if k < tweets_per_wave {
                tweets.push((
                    Some(format!("t{i}")),
                    classified_tweet(i, ingested_at(wave_at, k, tweets_per_wave, 0)),
                ));
                good.push(true);
            } else {
                tweets.push((Some(format!("bad{w}")), unmappable_tweet(w)));
                good.push(false);
            }
        }
        let placed = rig.kafka.produce("tweets", tweets).await?;
        for ((p, o), ok) in placed.iter().zip(good) {
            if ok {
                good_ids.insert(format!("tweets-{p}-{o}-0"));
            }
        }
        let news: Vec<_> = (0..news_per_wave)
            .map(|k| {
                let i = w * news_per_wave + k;
                (
                    Some(format!("n{i}")),
                    classified_news(i, ingested_at(wave_at, k, news_per_wave, 7)),
                )
            })
            .collect();
        let placed = rig.kafka.produce("news", news).await?;
        news_ids.extend(placed.iter().map(|(p, o)| format!("news-{p}-{o}-0")));
        produced.0 += (tweets_per_wave + bad_per_wave) as u64;
        produced.1 += news_per_wave as u64;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let dead_expected = (waves * bad_per_wave) as u64;
    assert_indexed_exactly(
        &rig,
        tweets_index,
        &good_ids,
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;
    assert_indexed_exactly(
        &rig,
        news_index,
        &news_ids,
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;

    // What the indices hold, asked of the search server directly.
    let es = rig.es();
    let url = rig.osmem.url();
    let tweet_docs = es.count(tweets_index).await?;
    let news_docs = es.count(news_index).await?;
    let sentiment = terms(&url, news_index, "sentiment.label").await?;
    let hate = terms(&url, tweets_index, "hate.label").await?;
    let flagged = hate.get("hate").unwrap_or(&0) + hate.get("offensive").unwrap_or(&0);
    let classified: u64 = hate
        .iter()
        .filter(|(k, _)| *k != "unclassified")
        .map(|(_, n)| n)
        .sum();
    // And what we put there, so a broken query can't agree with itself.
    assert_eq!(tweet_docs, (waves * tweets_per_wave) as u64);
    assert_eq!(sentiment.values().sum::<u64>(), news_docs);
    assert_eq!(hate.values().sum::<u64>(), tweet_docs);
    let expected_flagged = (0..waves * tweets_per_wave)
        .filter(|i| matches!(hate_label(*i), "hate" | "offensive"))
        .count() as u64;
    assert_eq!(flagged, expected_flagged);

    // The JSON endpoint agrees once its cache and the dead letters settle.
    let status = wait_for(
        "/v1/status to show every document and dead letter",
        Duration::from_secs(30),
        Some(&host),
        || async {
            let v: Value = reqwest::get(format!("{}/v1/status", host.admin))
                .await?
                .json()
                .await?;
            let docs: u64 = v["indices"]["per_index"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["documents"].as_u64())
                .sum();
            let dead: u64 = v["pipelines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["dead_letters"].as_u64())
                .sum();
            let sampled = v["throughput"]["t"]
                .as_array()
                .is_some_and(|t| t.len() >= 3);
            Ok((docs == tweet_docs + news_docs && dead == dead_expected && sampled).then_some(v))
        },
    )
    .await?;
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("status.json"),
        serde_json::to_string_pretty(&status)?,
    )?;
    let pipeline = |name: &str| {
        status["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(pipeline("tweets")["index"], tweets_index);
    assert_eq!(pipeline("news")["index"], news_index);
    assert_eq!(status["indices"]["hate"]["flagged"], flagged);
    assert_eq!(status["modules"].as_array().map(Vec::len), Some(2));

    // The page, rendered by a real browser.
    let page = format!("{}/", host.admin);
    let dom = chromium(&page, &["--dump-dom"]).await?;
    ensure!(
        dom.contains("data-loaded="),
        "the page never rendered a status:\n{dom}"
    );
    ensure!(
        element(&dom, "health")?.text == "healthy",
        "health pill: {:?}",
        element(&dom, "health")?.text
    );

    assert_eq!(
        shown_count(&dom, "records-tweets")?,
        produced.0,
        "records consumed, tweets"
    );
    assert_eq!(
        shown_count(&dom, "records-news")?,
        produced.1,
        "records consumed, news"
    );
    assert_eq!(
        shown_count(&dom, "indexed-tweets")?,
        tweet_docs,
        "documents indexed, tweets"
    );
    assert_eq!(
        shown_count(&dom, "indexed-news")?,
        news_docs,
        "documents indexed, news"
    );
    assert_eq!(
        shown_count(&dom, "dead-tweets")?,
        dead_expected,
        "dead letters, tweets"
    );
    assert_eq!(shown_count(&dom, "dead-news")?, 0, "dead letters, news");
    assert_eq!(
        shown_count(&dom, &format!("docs-{tweets_index}"))?,
        tweet_docs
    );
    assert_eq!(shown_count(&dom, &format!("docs-{news_index}"))?, news_docs);

    for label in ["positive", "neutral", "negative", "unclassified"] {
        let want = sentiment.get(label).copied().unwrap_or(0);
        assert_eq!(
            shown_count(&dom, &format!("sentiment-{label}"))?,
            want,
            "sentiment {label}"
        );
    }
    assert_eq!(shown_count(&dom, "sentiment-total")?, news_docs);
    for label in ["hate", "offensive", "neither", "unclassified"] {
        let want = hate.get(label).copied().unwrap_or(0);
        assert_eq!(
            shown_count(&dom, &format!("hate-{label}"))?,
            want,
            "hate {label}"
        );
    }
    assert_eq!(shown_count(&dom, "hate-flagged")?, flagged);
    assert_eq!(shown_count(&dom, "hate-classified")?, classified);
    let rate = element(&dom, "hate-rate")?;
    let want_rate = flagged as f64 / classified as f64;
    let held: f64 = rate
        .value
        .as_deref()
        .unwrap_or("")
        .parse()
        .context("hate-rate data-value")?;
    assert!(
        (held - want_rate).abs() < 1e-9,
        "hate rate holds {held}, indices say {want_rate}"
    );
    assert_eq!(rate.text, format!("{:.1}%", want_rate * 100.0));

    // Latest classified: newest first, as the indices order them.
    let newest: Value = reqwest::Client::new()
        .post(format!("{url}/{tweets_index},{news_index}/_search"))
        .json(&json!({"size": 10, "sort": [{"weir.ingested_at": {"order": "desc"}}]}))
        .send()
        .await?
        .json()
        .await?;
    let want_ids: Vec<&str> = newest["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["_id"].as_str())
        .collect();
    let latest = &dom[dom.find("id=\"latest\"").context("#latest")?..];
    let latest = &latest[..latest.find("</table>").unwrap_or(latest.len())];
    let shown_ids: Vec<&str> = latest
        .split("data-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert_eq!(shown_ids, want_ids, "latest classified documents");

    // Module versions and the errors list.
    for p in ["tweets", "news"] {
        element(&dom, &format!("module-{p}-passthrough"))
            .with_context(|| format!("module row for {p}"))?;
    }
    let errors = &dom[dom.find("id=\"errors\"").context("#errors")?..];
    let errors = &errors[..errors.find("</ul>").unwrap_or(errors.len())];
    ensure!(
        errors.contains("pipeline tweets") && errors.contains(&format!("{dead_expected} record(s) dead-lettered (sink {dead_expected}); the reasons are in topic tweets-dlq")),
        "the errors list does not report the dead letters: {errors}"
    );
    ensure!(dom.contains("<polyline"), "no throughput line drawn");

    // The picture people look at.
    let png = dir.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    chromium(&page, &[&format!("--screenshot={}", png.display())]).await?;
    let bytes =
        std::fs::read(&png).with_context(|| format!("no screenshot at {}", png.display()))?;
    ensure!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "screenshot looks empty ({} bytes)",
        bytes.len()
    );
    println!("status page screenshot: {}", png.display());
    Ok(())
}
