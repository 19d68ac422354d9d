//! End to end on the real rig (tansu + osmem + the weir binary): the happy
//! path at volume, bad input, and a module that traps.

#[path = "rig/mod.rs"]
mod rig;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use rig::*;
use weir::sinks::dead_letter::headers;

/// 10,000 tweets and 10,000 news items through text-clean into two
/// indices: counts and ids exact, documents cleaned, offsets committed to
/// the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tweets_and_news_are_cleaned_and_indexed_exactly_once() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let tweets = rig.load("tweets", (0..10_000).map(tweet).collect()).await?;
    let news_placed = rig.load("news", (0..10_000).map(news).collect()).await?;

    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![
            PipelineSpec::new("tweets", "tweets", "weir-tweets")
                .module("text-clean", &[("fields", "text")]),
            PipelineSpec::new("news", "news", "weir-news")
                .module("text-clean", &[("fields", "title,description")]),
        ],
    );
    let host = Host::start(&rig, &config).await?;
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &expected_ids("tweets", &tweets),
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;
    assert_indexed_exactly(
        &rig,
        "weir-news",
        &expected_ids("news", &news_placed),
        Some(&host),
        Duration::from_secs(180),
    )
    .await?;

    // Spot checks: the record at partition/offset of tweet 7 is cleaned and
    // keeps its original.
    let (p, o) = tweets[7];
    let doc = rig
        .es()
        .get("weir-tweets", &format!("tweets-{p}-{o}-0"))
        .await?
        .expect("tweet 7 indexed");
    assert_eq!(doc["id"], "t7");
    let text = doc["text"].as_str().unwrap();
    assert!(!text.contains("https://"), "URL left in {text:?}");
    assert!(!text.contains("@user7"), "mention left in {text:?}");
    assert!(
        !text.contains("<b>") && !text.contains("&amp;"),
        "markup left in {text:?}"
    );
    assert!(text.contains("item 7"), "content lost: {text:?}");
    assert!(
        doc["text_original"]
            .as_str()
            .unwrap()
            .contains("https://example.com/a/7")
    );
    let (p, o) = news_placed[3];
    let doc = rig
        .es()
        .get("weir-news", &format!("news-{p}-{o}-0"))
        .await?
        .expect("news 3 indexed");
    assert!(!doc["title"].as_str().unwrap().contains("<i>"));
    assert!(
        doc["title_original"]
            .as_str()
            .unwrap()
            .contains("<i>science</i>")
    );

    assert_committed_to_end(&rig, &config.group, "tweets", Some(&host)).await?;
    assert_committed_to_end(&rig, &config.group, "news", Some(&host)).await?;
    assert_eq!(
        host.metric("weir_records_consumed", &["pipeline=\"tweets\""])
            .await?,
        10_000.0
    );
    Ok(())
}

/// Records that are not JSON, and documents the index's mapping rejects,
/// land on the dead-letter topic with the reason; the rest are indexed and
/// offsets move past all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_goes_to_the_dead_letter_topic_with_its_reason() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let mut values = Vec::new();
    let mut kinds = Vec::new();
    for i in 0..2_000 {
        let (v, kind) = match i % 100 {
            13 => (format!("not json {i}"), "garbage"),
            57 => (
                tweet(i).replace("\"retweet_count\":", "\"retweet_count\":\"lots\",\"was\":"),
                "mapping",
            ),
            _ => (tweet(i), "ok"),
        };
        values.push(v);
        kinds.push(kind);
    }
    let placed = rig.load("tweets", values).await?;
    rig.kafka.create_topic("tweets-dlq", 1).await?;
    let template = serde_json::json!({
        "index_patterns": ["weir-tweets*"],
        "template": {"mappings": {"properties": {"retweet_count": {"type": "integer"}}}}
    });
    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![PipelineSpec::new("tweets", "tweets", "weir-tweets").module("text-clean", &[])],
    )
    .template("weir-tweets", template);
    let host = Host::start(&rig, &config).await?;

    let good: HashSet<String> = placed
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| **k == "ok")
        .map(|((p, o), _)| format!("tweets-{p}-{o}-0"))
        .collect();
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &good,
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;

    // Committed to the end: every dead letter was written before that.
    assert_committed_to_end(&rig, &config.group, "tweets", Some(&host)).await?;
    let bad: Vec<(i32, i64)> = placed
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| **k != "ok")
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(bad.len(), 40);
    let dead = dead_letters_exactly(
        &rig,
        "tweets-dlq",
        &bad,
        (headers::SOURCE_PARTITION, headers::SOURCE_OFFSET),
        Duration::from_secs(60),
    )
    .await?;
    let mut garbage = 0;
    let mut mapping = 0;
    for r in &dead {
        let reason = header(r, headers::REASON);
        let offset: i64 = header(r, headers::SOURCE_OFFSET).parse()?;
        let partition: i32 = header(r, headers::SOURCE_PARTITION).parse()?;
        let i = placed
            .iter()
            .position(|&x| x == (partition, offset))
            .expect("dead letter names a produced record");
        match kinds[i] {
            "garbage" => {
                garbage += 1;
                assert!(reason.contains("invalid JSON at byte 1"), "{reason}");
                assert_eq!(header(r, headers::STAGE), "module:text-clean");
                assert_eq!(
                    r.value,
                    format!("not json {i}").into_bytes(),
                    "original record preserved"
                );
            }
            "mapping" => {
                mapping += 1;
                assert!(
                    reason.starts_with("ES rejected: mapper_parsing_exception"),
                    "{reason}"
                );
                assert_eq!(header(r, headers::STAGE), "sink");
            }
            other => panic!("record {i} ({other}) was dead-lettered: {reason}"),
        }
        assert_eq!(header(r, headers::PIPELINE), "tweets");
        assert_eq!(header(r, headers::SOURCE_TOPIC), "tweets");
    }
    assert_eq!((garbage, mapping), (20, 20));
    Ok(())
}

/// A module that traps on some records: those records are dead-lettered
/// with the trap message, the rest of their batches are indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_module_fails_only_its_poison_records() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let values: Vec<String> = (0..3_000)
        .map(|i| {
            if i % 250 == 0 {
                tweet(i).replace("thinking", "TRAP")
            } else {
                tweet(i)
            }
        })
        .collect();
    let poison: Vec<bool> = (0..3_000).map(|i| i % 250 == 0).collect();
    let placed = rig.load("tweets", values).await?;
    rig.kafka.create_topic("tweets-dlq", 1).await?;
    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![
            PipelineSpec::new("tweets", "tweets", "weir-tweets")
                .module("text-clean", &[])
                .module("fixture-trap", &[]),
        ],
    );
    let host = Host::start(&rig, &config).await?;
    let good: HashSet<String> = placed
        .iter()
        .zip(&poison)
        .filter(|(_, bad)| !**bad)
        .map(|((p, o), _)| format!("tweets-{p}-{o}-0"))
        .collect();
    assert_indexed_exactly(
        &rig,
        "weir-tweets",
        &good,
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;
    assert_committed_to_end(&rig, &config.group, "tweets", Some(&host)).await?;
    let poisoned: Vec<(i32, i64)> = placed
        .iter()
        .zip(&poison)
        .filter(|(_, bad)| **bad)
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(poisoned.len(), 12);
    // Exactly the 12 poison records, each once.
    let dead = dead_letters_exactly(
        &rig,
        "tweets-dlq",
        &poisoned,
        (headers::SOURCE_PARTITION, headers::SOURCE_OFFSET),
        Duration::from_secs(60),
    )
    .await?;
    for r in &dead {
        let reason = r
            .headers
            .iter()
            .find(|(k, _)| k == headers::REASON)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap();
        assert!(reason.contains("fixture trap: poison record"), "{reason}");
        assert!(reason.contains("wasm trap"), "{reason}");
    }
    assert!(
        host.metric("weir_module_records_failed", &["module=\"fixture-trap\""])
            .await?
            >= 12.0
    );
    Ok(())
}
