//! The seed system end to end on the real rig: tansu + osmem + the
//! classifier service + the `weir` binary running the shipped
//! `config/weir.toml` (only addresses rewritten), so the default pipelines
//! themselves are under test:
//!
//!   tweets -> text-clean -> detect-hate        -> enrich -> weir-tweets
//!   news   -> text-clean -> classify-sentiment -> enrich -> weir-news
//!
//! Known inputs get known labels; the shipped samples are indexed exactly,
//! nothing is dead-lettered, and the label distributions equal what the
//! classifier returns for the same texts when asked directly.
//!
//! Needs `cargo xtask tools` and `cargo xtask modules` (as the other rig
//! tests do).

#[path = "rig/mod.rs"]
mod rig;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use rig::*;
use serde_json::{Value, json};
use weir_testkit::{Process, free_port};

/// Requests per path that reached the classifier.
type Hits = Arc<std::sync::Mutex<HashMap<String, usize>>>;

async fn count(State(hits): State<Hits>, request: Request, next: Next) -> Response {
    *hits
        .lock()
        .unwrap()
        .entry(request.uri().path().to_string())
        .or_default() += 1;
    next.run(request).await
}

/// The classifier service on a free loopback port, in-process.
async fn classifier() -> Result<(String, Hits)> {
    let hits: Hits = Arc::default();
    let app = weir_classifier::router(weir_classifier::AppState::default())
        .layer(middleware::from_fn_with_state(Arc::clone(&hits), count));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((origin, hits))
}

/// `config/weir.toml` with the rig's addresses: brokers, search server,
/// admin port, the classifier's origin (allowlist and module `url`), and
/// absolute paths for the templates and modules. Pipelines, modules and
/// their settings stay as shipped.
fn shipped_config(rig: &Rig, group: &str, classifier: &str, admin_port: u16) -> Result<String> {
    let root = weir_testkit::tools::workspace_root();
    let dir = root.join("config");
    let text = std::fs::read_to_string(dir.join("weir.toml"))?;
    let mut config: toml::Table = toml::from_str(&text)?;
    let absolute =
        |p: &toml::Value| toml::Value::String(dir.join(p.as_str().unwrap()).display().to_string());

    let kafka = config["kafka"].as_table_mut().context("[kafka]")?;
    kafka.insert("brokers".into(), rig.kafka.bootstrap().into());
    kafka.insert("group_id".into(), group.into());
    let es = config["elasticsearch"]
        .as_table_mut()
        .context("[elasticsearch]")?;
    es.insert("url".into(), rig.osmem.url().into());
    for t in es["templates"].as_array_mut().context("templates")? {
        let t = t.as_table_mut().unwrap();
        let path = absolute(&t["path"]);
        t.insert("path".into(), path);
    }
    config["admin"]
        .as_table_mut()
        .unwrap()
        .insert("listen".into(), format!("127.0.0.1:{admin_port}").into());

    let pipelines = config["pipelines"].as_table_mut().context("[pipelines]")?;
    assert_eq!(pipelines.keys().collect::<Vec<_>>(), ["news", "tweets"]);
    for (name, p) in pipelines.iter_mut() {
        let p = p.as_table_mut().unwrap();
        assert_eq!(
            p["allowed_outbound_hosts"],
            toml::Value::from(vec!["http://127.0.0.1:8090"]),
            "{name}"
        );
        p.insert(
            "allowed_outbound_hosts".into(),
            toml::Value::from(vec![classifier]),
        );
        for m in p["modules"].as_array_mut().unwrap() {
            let m = m.as_table_mut().unwrap();
            let path = absolute(&m["path"]);
            m.insert("path".into(), path);
            if let Some(settings) = m.get_mut("config").and_then(toml::Value::as_table_mut)
                && settings.contains_key("url")
            {
                settings.insert("url".into(), classifier.into());
            }
        }
    }
    Ok(toml::to_string(&config)?)
}

async fn start_weir(rig: &Rig, config: &str, admin_port: u16) -> Result<Host> {
    let path = rig.dir.path().join("weir.toml");
    std::fs::write(&path, config)?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .env("RUST_LOG", "info,weir=debug,librdkafka=warn");
    let host = Host {
        process: Process::spawn("weir", cmd)?,
        admin: format!("http://127.0.0.1:{admin_port}"),
        admin_port,
        config_path: path,
    };
    let started = Instant::now();
    while reqwest::get(format!("{}/metrics", host.admin))
        .await
        .is_err()
    {
        host.process.ensure_running()?;
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "weir did not open its admin endpoint in 60 s:\n{}",
                host.process.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(host)
}

fn lines(path: &Path) -> Result<Vec<Value>> {
    std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

async fn produce(rig: &Rig, topic: &str, records: &[Value]) -> Result<HashSet<String>> {
    let placed = rig
        .kafka
        .produce(
            topic,
            records
                .iter()
                .map(|r| (Some(r["id"].as_str().unwrap().to_string()), r.to_string())),
        )
        .await?;
    Ok(expected_ids(topic, &placed))
}

/// Every document of `index`, by its `id` field.
async fn by_id(rig: &Rig, index: &str) -> Result<HashMap<String, Value>> {
    Ok(scan(&rig.osmem.url(), index)
        .await?
        .into_iter()
        .map(|(_, d)| (d["id"].as_str().unwrap_or_default().to_string(), d))
        .collect())
}

/// The classifier's own answer for `texts`, asked directly.
async fn classify_directly(origin: &str, path: &str, texts: &[String]) -> Result<Vec<Value>> {
    let response: Value = reqwest::Client::new()
        .post(format!("{origin}{path}"))
        .json(&json!({"texts": texts}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(response["results"].as_array().context("results")?.clone())
}

fn histogram<'a>(labels: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for l in labels {
        *h.entry(l.to_string()).or_default() += 1;
    }
    h
}

fn tweet(id: &str, text: &str) -> Value {
    json!({"id": id, "text": text, "created_at": "2026-11-26T12:00:00Z", "lang": "en",
           "user": {"id": "u-known", "screen_name": "known"}, "source": "sample"})
}

fn article(id: &str, title: &str, description: &str) -> Value {
    json!({"id": id, "title": title, "description": description, "url": format!("https://news.example/{id}"),
           "source": {"id": "ex", "name": "Example Times"}, "published_at": "2026-11-25T08:00:00Z", "feed": "sample"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_pipelines_classify_tweets_and_news_end_to_end() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let root = weir_testkit::tools::workspace_root();
    let rig = Rig::start().await?;
    let (origin, hits) = classifier().await?;

    // A hate example from the classifier's hand-labelled set (clear, and
    // not a known miss), so this file needs no slur of its own.
    let labelled = lines(&root.join("classifier/data/labelled/hate.jsonl"))?;
    let hate_text = labelled
        .iter()
        .find(|c| c["label"] == "hate" && c["clear"] == true && c.get("known_miss").is_none())
        .and_then(|c| c["text"].as_str())
        .context("a clear hate example")?
        .to_string();
    let mut tweets = vec![
        tweet(
            "known-offensive",
            "RT @Bob: you are a stupid bitch https://pics.example/x #Rude",
        ),
        tweet(
            "known-kind",
            "What a beautiful sunset over the bay tonight #nature @sunsets",
        ),
        tweet("known-hate", &hate_text),
    ];
    let sample_tweets = lines(&root.join("samples/tweets.jsonl"))?;
    tweets.extend(sample_tweets.iter().cloned());
    let mut news = vec![
        article(
            "known-positive",
            "Stocks rally as markets cheer a strong recovery",
            "Investors are delighted with the excellent results.",
        ),
        article(
            "known-negative",
            "Earthquake kills hundreds and destroys the city",
            "Rescuers fear the terrible death toll will rise.",
        ),
        article(
            "known-neutral",
            "Council publishes the meeting schedule",
            "The meeting is at 3pm on Tuesday.",
        ),
    ];
    let sample_news = lines(&root.join("samples/news.jsonl"))?;
    news.extend(sample_news.iter().cloned());

    for topic in ["tweets", "news"] {
        rig.kafka.create_topic(topic, PARTITIONS).await?;
        rig.kafka.create_topic(&format!("{topic}-dlq"), 1).await?;
    }
    let tweet_ids = produce(&rig, "tweets", &tweets).await?;
    let news_ids = produce(&rig, "news", &news).await?;

    let group = format!("weir-seed-{}", std::process::id());
    let admin_port = free_port();
    let host = start_weir(
        &rig,
        &shipped_config(&rig, &group, &origin, admin_port)?,
        admin_port,
    )
    .await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &tweet_ids,
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;
    assert_indexed_exactly(
        &rig,
        "weir-news",
        &news_ids,
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;
    assert_committed_to_end(&rig, &group, "tweets", Some(&host)).await?;
    assert_committed_to_end(&rig, &group, "news", Some(&host)).await?;
    for dlq in ["tweets-dlq", "news-dlq"] {
        assert_eq!(
            rig.kafka.end_offsets(dlq).await?,
            [0],
            "{dlq}: nothing dead-lettered\n{}",
            host.process.log_tail()
        );
    }

    // What the pipelines sent the classifier (before this test asks it anything).
    let hits = hits.lock().unwrap().clone();

    // Known tweets.
    let indexed = by_id(&rig, "weir-tweets").await?;
    assert_eq!(indexed.len(), tweets.len());
    let d = &indexed["known-offensive"];
    assert_eq!(d["text"], "you are a stupid bitch #Rude");
    assert_eq!(d["hate"]["label"], "offensive", "{d}");
    assert_eq!(d["hate"]["categories"], json!(["Personal Insult"]));
    assert_eq!(d["hate"]["terms"][0], "bitch");
    assert_eq!(d["hate"]["model"], "hatesonar-0.1.0");
    assert_eq!(d["mentions"], json!(["bob"]));
    assert_eq!(d["hashtags"], json!(["rude"]));
    assert_eq!(d["url_domains"], json!(["pics.example"]));
    assert_eq!(d["language"], "en");
    assert_eq!(d["weir"]["source"]["topic"], "tweets");
    let modules: Vec<&str> = d["weir_modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().split('@').next().unwrap())
        .collect();
    assert_eq!(modules, ["text-clean", "detect-hate", "enrich"]);
    assert_eq!(indexed["known-kind"]["hate"]["label"], "neither");
    assert_eq!(indexed["known-kind"]["mentions"], json!(["sunsets"]));
    assert_eq!(indexed["known-hate"]["hate"]["label"], "hate");
    assert_eq!(
        indexed["known-hate"]["hate"]["categories"][0],
        "Discrimination and Harassment"
    );

    // Known news.
    let articles = by_id(&rig, "weir-news").await?;
    assert_eq!(articles.len(), news.len());
    assert_eq!(
        articles["known-positive"]["sentiment"]["label"], "positive",
        "{}",
        articles["known-positive"]
    );
    assert_eq!(articles["known-negative"]["sentiment"]["label"], "negative");
    assert_eq!(articles["known-neutral"]["sentiment"]["label"], "neutral");
    assert_eq!(
        articles["known-neutral"]["sentiment"]["model"],
        "vader-3.3.2"
    );
    let modules: Vec<&str> = articles["known-positive"]["weir_modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().split('@').next().unwrap())
        .collect();
    assert_eq!(modules, ["text-clean", "classify-sentiment", "enrich"]);

    // The samples: each document's label is the classifier's answer for
    // the same (cleaned) text asked directly, so the distributions agree.
    let sample_docs: Vec<&Value> = sample_news
        .iter()
        .map(|r| &articles[r["id"].as_str().unwrap()])
        .collect();
    let texts: Vec<String> = sample_docs
        .iter()
        .map(|d| match d["description"].as_str() {
            Some(desc) => format!("{}. {desc}", d["title"].as_str().unwrap()),
            None => d["title"].as_str().unwrap().to_string(),
        })
        .collect();
    let direct = classify_directly(&origin, "/v1/sentiment", &texts).await?;
    for (d, want) in sample_docs.iter().zip(&direct) {
        assert_eq!(d["sentiment"]["label"], want["label"], "{d}");
        assert_eq!(d["sentiment"]["score"], want["compound"], "{d}");
    }
    let news_labels = histogram(
        sample_docs
            .iter()
            .map(|d| d["sentiment"]["label"].as_str().unwrap()),
    );
    assert_eq!(
        news_labels,
        histogram(direct.iter().map(|r| r["label"].as_str().unwrap()))
    );
    eprintln!("samples/news.jsonl sentiment: {news_labels:?}");
    let expected: BTreeMap<String, usize> = [("negative", 67), ("neutral", 67), ("positive", 66)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    assert_eq!(
        news_labels, expected,
        "samples/news.jsonl changed? update the figures"
    );

    let sample_tweet_docs: Vec<&Value> = sample_tweets
        .iter()
        .map(|r| &indexed[r["id"].as_str().unwrap()])
        .collect();
    let texts: Vec<String> = sample_tweet_docs
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_string())
        .collect();
    let direct = classify_directly(&origin, "/v1/hate", &texts).await?;
    for (d, want) in sample_tweet_docs.iter().zip(&direct) {
        assert_eq!(d["hate"]["label"], want["label"], "{d}");
    }
    let hate_labels = histogram(
        sample_tweet_docs
            .iter()
            .map(|d| d["hate"]["label"].as_str().unwrap()),
    );
    eprintln!("samples/tweets.jsonl hate: {hate_labels:?}");
    let expected: BTreeMap<String, usize> = [("hate", 12), ("neither", 257), ("offensive", 31)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    assert_eq!(
        hate_labels, expected,
        "samples/tweets.jsonl changed? update the figures"
    );

    // Terms aggregation, as the dashboard and the demo use it.
    rig.es().refresh("weir-news").await?;
    let agg = rig
        .es()
        .search(
            "weir-news",
            &json!({"size": 0, "aggs": {"labels": {"terms": {"field": "sentiment.label"}}}}),
        )
        .await?;
    let buckets: BTreeMap<String, u64> = agg["aggregations"]["labels"]["buckets"]
        .as_array()
        .context("terms buckets")?
        .iter()
        .map(|b| {
            (
                b["key"].as_str().unwrap().to_string(),
                b["doc_count"].as_u64().unwrap(),
            )
        })
        .collect();
    let all: BTreeMap<String, u64> = [("negative", 68), ("neutral", 68), ("positive", 67)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    assert_eq!(buckets, all);

    // Batching: far fewer classifier requests than records.
    let (hate_requests, sentiment_requests) = (hits["/v1/hate"], hits["/v1/sentiment"]);
    eprintln!(
        "classifier requests: /v1/hate {hate_requests} for {} tweets, /v1/sentiment {sentiment_requests} for {} articles",
        tweets.len(),
        news.len()
    );
    assert!(hate_requests * 4 <= tweets.len(), "{hits:?}");
    assert!(sentiment_requests * 4 <= news.len(), "{hits:?}");
    assert_eq!(
        host.metric("weir_records_consumed", &["pipeline=\"tweets\""])
            .await?,
        tweets.len() as f64
    );
    Ok(())
}
