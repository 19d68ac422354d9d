//! End to end through a real Kafka-compatible broker (tansu, from
//! `cargo xtask tools`): sources wired to the Kafka sink by
//! `weir_producers::produce`, records read back with their keys.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures::SinkExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weir_producers::normalize::news_id;
use weir_producers::{Counters, SinkConfig, bluesky, newsapi, replay};
use weir_testkit::Kafka;

const READ_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn replay_produces_every_line_keyed_by_its_id() {
    let kafka = Kafka::start().await.unwrap();
    kafka.create_topic("tweets", 3).await.unwrap();
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(
            &json!({"id": format!("t{i}"), "text": format!("tweet {i}"), "source": "replay"})
                .to_string(),
        );
        text.push('\n');
        if i == 10 {
            text.push_str("\n   \n"); // blank lines are ignored
        }
    }
    text.push_str("{\"text\":\"no id\"}\n");
    let counters = Arc::new(Counters::default());
    let mut config = replay::Config::new(text);
    config.repeat = 2;
    config.rate = 2000;
    weir_producers::produce(
        SinkConfig::new(kafka.bootstrap(), "tweets"),
        counters.clone(),
        None,
        CancellationToken::new(),
        |out| replay::run(config, out, CancellationToken::new()),
    )
    .await
    .unwrap();
    let c = counters.snapshot();
    assert_eq!((c.emitted, c.produced), (82, 82), "{c}");
    assert_eq!(c.skipped("no_key"), 1);

    // Everything on the topic, not just the first 82: a duplicate or an
    // extra record fails the count.
    let records = kafka.read_to_end("tweets", 82, READ_TIMEOUT).await.unwrap();
    assert_eq!(records.len(), 82);
    let mut partition_of: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut per_key: HashMap<Option<Vec<u8>>, usize> = HashMap::new();
    for r in &records {
        let v: Value = serde_json::from_slice(&r.value).unwrap();
        match &r.key {
            Some(k) => {
                assert_eq!(v["id"].as_str().unwrap().as_bytes(), k.as_slice());
                // Same key, same partition.
                let p = *partition_of.entry(k.clone()).or_insert(r.partition);
                assert_eq!(p, r.partition);
            }
            None => assert_eq!(v["text"], "no id"),
        }
        *per_key.entry(r.key.clone()).or_default() += 1;
    }
    assert_eq!(per_key.len(), 41);
    assert!(per_key.values().all(|&n| n == 2));
    // Keys spread over more than one partition.
    let partitions: std::collections::HashSet<i32> = partition_of.values().copied().collect();
    assert!(partitions.len() > 1, "{partitions:?}");
}

#[tokio::test]
async fn newsapi_articles_reach_kafka_keyed_by_news_id() {
    let kafka = Kafka::start().await.unwrap();
    kafka.create_topic("news", 2).await.unwrap();
    let articles: Vec<Value> = (1..=3)
        .map(|n| {
            json!({"source":{"id":null,"name":"Reuters"},"author":null,"title":format!("Story {n}"),
                   "description":"d","url":format!("https://www.reuters.com/world/story-{n}"),
                   "urlToImage":null,"publishedAt":"2024-05-01T12:00:00Z","content":"c"})
        })
        .collect();
    let body = json!({"status":"ok","totalResults":3,"articles":articles});
    let app = Router::new().route(
        "/v2/everything",
        get(move || async move { axum::Json(body) }),
    );
    let base = common::serve(app).await;
    let mut config = newsapi::Config::new(
        "key",
        newsapi::Endpoint::Everything,
        vec![("q".into(), "world".into())],
    );
    config.base_url = base;
    config.max_polls = Some(1);
    let counters = Arc::new(Counters::default());
    weir_producers::produce(
        SinkConfig::new(kafka.bootstrap(), "news"),
        counters.clone(),
        None,
        CancellationToken::new(),
        |out| newsapi::run(config, out, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(counters.snapshot().produced, 3);
    let records = kafka.read_to_end("news", 3, READ_TIMEOUT).await.unwrap();
    let mut keys: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap())
        .collect();
    keys.sort();
    let mut want: Vec<String> = (1..=3)
        .map(|n| news_id(&format!("https://www.reuters.com/world/story-{n}")))
        .collect();
    want.sort();
    assert_eq!(keys, want);
    for r in &records {
        let v: Value = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(v["feed"], "newsapi");
        assert_eq!(v["source"], json!({"name": "Reuters"}));
        assert_eq!(
            v["id"].as_str().unwrap().as_bytes(),
            r.key.as_deref().unwrap()
        );
    }
}

#[tokio::test]
async fn bluesky_stream_reaches_kafka_and_stops_at_the_limit() {
    let kafka = Kafka::start().await.unwrap();
    kafka.create_topic("tweets", 2).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                for i in 0..8i64 {
                    let event = json!({"did": format!("did:plc:user{i}"), "time_us": 1_700_000_000_000_000 + i, "kind": "commit",
                        "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.post", "rkey": format!("k{i}"),
                            "record": {"$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2024-05-01T12:00:00Z", "langs": ["en"]}}});
                    if ws
                        .send(tokio_tungstenite::tungstenite::Message::text(
                            event.to_string(),
                        ))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                std::future::pending::<()>().await;
            });
        }
    });
    let mut config = bluesky::Config::new();
    config.base_url = format!("ws://{addr}");
    let counters = Arc::new(Counters::default());
    let shutdown = CancellationToken::new();
    let source_shutdown = shutdown.clone();
    // The limit cancels `shutdown` after 5 records; the source stops and
    // the sink delivers what it was given.
    tokio::time::timeout(
        READ_TIMEOUT,
        weir_producers::produce(
            SinkConfig::new(kafka.bootstrap(), "tweets"),
            counters.clone(),
            Some(5),
            shutdown,
            |out| bluesky::run(config, out, source_shutdown),
        ),
    )
    .await
    .expect("the limit stops the stream")
    .unwrap();
    assert_eq!(counters.snapshot().produced, 5);
    // Exactly the first five posts, once each.
    let records = kafka.read_to_end("tweets", 5, READ_TIMEOUT).await.unwrap();
    let mut users: Vec<String> = records
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.value).unwrap();
            let id = v["id"].as_str().unwrap();
            id.split('/').nth(2).unwrap().to_owned()
        })
        .collect();
    users.sort();
    let want: Vec<String> = (0..5).map(|i| format!("did:plc:user{i}")).collect();
    assert_eq!(users, want);
    for r in &records {
        let v: Value = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(v["source"], "bluesky");
        assert_eq!(
            v["id"].as_str().unwrap().as_bytes(),
            r.key.as_deref().unwrap()
        );
        assert!(v["id"].as_str().unwrap().starts_with("at://did:plc:user"));
    }
}

#[tokio::test]
async fn an_unreachable_broker_fails_instead_of_hanging() {
    // Nothing listens on this port: deliveries time out and produce() errs.
    let port = weir_testkit::free_port();
    let mut sink = SinkConfig::new(format!("127.0.0.1:{port}"), "tweets");
    sink.delivery_timeout = Duration::from_secs(2);
    let counters = Arc::new(Counters::default());
    let result = tokio::time::timeout(
        READ_TIMEOUT,
        weir_producers::produce(
            sink,
            counters.clone(),
            None,
            CancellationToken::new(),
            |out| {
                replay::run(
                    replay::Config::new("{\"id\":\"1\"}\n".into()),
                    out,
                    CancellationToken::new(),
                )
            },
        ),
    )
    .await
    .expect("fails within the delivery timeout");
    let err = result.unwrap_err();
    assert!(format!("{err:#}").contains("delivery"), "{err:#}");
    assert_eq!(counters.snapshot().produced, 0);
}
