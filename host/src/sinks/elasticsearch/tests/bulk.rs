//! Item-level outcomes of a usable bulk response.

use std::path::Path;

use super::mock::{Mock, Reply, by_id};
use super::{Acks, fast_config, next_dead_letter, start};
use crate::event::FailureStage;

const REJECTED: Option<&str> = Some("es_rejected_execution_exception");
const MAPPING: Option<&str> = Some("mapper_parsing_exception");

#[tokio::test]
async fn mixed_items_are_acked_retried_alone_and_dead_lettered() {
    // First request: a → 201, b → 429, c → 400. Every later one: all 201.
    let mock = Mock::start(by_id(|n, id| match (n, id) {
        (0, "b") => (429, REJECTED),
        (0, "c") => (400, MAPPING),
        _ => (201, None),
    }))
    .await;
    let mut cfg = fast_config(&mock.url());
    cfg.compression = Some(true);
    cfg.batch.max_docs = 3;
    let mut s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    for id in ["a", "b", "c"] {
        s.sink.submit(acks.doc(id, r#"{"n":1}"#)).await.unwrap();
    }

    let dead = next_dead_letter(&mut s.dead_letters).await;
    assert_eq!(dead.stage, FailureStage::Sink);
    assert_eq!(
        dead.reason,
        "ES rejected: mapper_parsing_exception: mapper_parsing_exception for [c] (status 400)"
    );
    assert_eq!(&*dead.topic, "in-dlq");
    assert_eq!(&*dead.pipeline, "p");
    assert_eq!(&dead.record.value[..], br#"{"n":1}"#);

    assert_eq!(acks.wait(2).await, ["a", "b"]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].ids, ["a", "b", "c"]);
    assert_eq!(
        reqs[1].ids,
        ["b"],
        "the retry carries only the rejected item"
    );
    assert!(reqs.iter().all(|r| r.gzip), "compression = true");

    // The sink never acknowledges a dead letter itself; the DLQ writer does.
    assert!(acks.so_far().is_empty());
    dead.ack.ack();
    assert_eq!(acks.wait(1).await, ["c"]);

    let text = s.metrics_text();
    for line in [
        r#"weir_es_items_total{pipeline="p",outcome="indexed"} 2"#,
        r#"weir_es_items_total{pipeline="p",outcome="retried"} 1"#,
        r#"weir_es_items_total{pipeline="p",outcome="dead_lettered"} 1"#,
        r#"weir_es_bulk_requests_total{status_class="2xx",outcome="partial"} 1"#,
        r#"weir_es_bulk_requests_total{status_class="2xx",outcome="success"} 1"#,
        r#"weir_es_in_flight_requests 0"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let report = s.sink.shutdown(super::WAIT).await.unwrap();
    assert_eq!(report.unacknowledged, 0);
}

#[tokio::test]
async fn overload_error_types_and_5xx_items_are_retried() {
    let mock = Mock::start(by_id(|n, id| match (n, id) {
        (0, "a") => (503, Some("unavailable_shards_exception")),
        (0, "b") => (429, Some("circuit_breaking_exception")),
        // A 500 item without an error object, in a response claiming
        // `errors: false`: the item's own status wins.
        (1, "a") => (500, None),
        _ => (200, None),
    }))
    .await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 2;
    let s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    s.sink.submit(acks.doc("a", "{}")).await.unwrap();
    s.sink.submit(acks.doc("b", "{}")).await.unwrap();
    assert_eq!(acks.wait(2).await, ["a", "b"]);
    let ids: Vec<_> = mock.requests().into_iter().map(|r| r.ids).collect();
    assert_eq!(ids, [vec!["a", "b"], vec!["a", "b"], vec!["a"]]);
}

#[tokio::test]
async fn items_past_max_attempts_are_dead_lettered() {
    let mock = Mock::start(by_id(|_, id| match id {
        "x" => (429, REJECTED),
        _ => (201, None),
    }))
    .await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 2;
    cfg.retry.max_item_attempts = Some(3);
    let mut s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    s.sink.submit(acks.doc("x", "{}")).await.unwrap();
    s.sink.submit(acks.doc("y", "{}")).await.unwrap();

    let dead = next_dead_letter(&mut s.dead_letters).await;
    assert_eq!(
        dead.reason,
        "ES rejected after 3 attempts: es_rejected_execution_exception: \
         es_rejected_execution_exception for [x] (status 429)"
    );
    assert_eq!(acks.wait(1).await, ["y"]);
    let ids: Vec<_> = mock.requests().into_iter().map(|r| r.ids).collect();
    assert_eq!(ids, [vec!["x", "y"], vec!["x"], vec!["x"]]);
}

#[tokio::test]
async fn unframeable_bodies_are_dead_lettered_without_being_sent() {
    let mock = Mock::start(Box::new(|_, _| Reply::AllCreated)).await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 3;
    cfg.compression = Some(false);
    let mut s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    s.sink
        .submit(acks.doc("ok", "{\n \"pretty\": true\n}\n"))
        .await
        .unwrap();
    s.sink
        .submit(acks.doc("bad", "{\"s\":\"raw\nnewline\"}"))
        .await
        .unwrap();
    s.sink.submit(acks.doc("arr", "[1,2]")).await.unwrap();

    let mut reasons = vec![
        next_dead_letter(&mut s.dead_letters).await.reason,
        next_dead_letter(&mut s.dead_letters).await.reason,
    ];
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "cannot encode for _bulk: document body contains a raw newline inside a JSON string (invalid JSON)",
            "cannot encode for _bulk: document body is not a JSON object",
        ]
    );
    assert_eq!(acks.wait(1).await, ["ok"]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].ids, ["ok"]);
    assert!(!reqs[0].gzip);
}

#[tokio::test]
async fn loopback_is_not_gzipped_by_default() {
    let mock = Mock::start(Box::new(|_, _| Reply::AllCreated)).await;
    let cfg = fast_config(&mock.url());
    assert_eq!(cfg.compression, None);
    let s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    s.sink.submit(acks.doc("a", "{}")).await.unwrap();
    assert_eq!(acks.wait(1).await, ["a"]);
    assert!(!mock.requests()[0].gzip, "{}", mock.url());
}

#[tokio::test]
async fn a_refused_request_is_split_until_the_culprit_is_alone() {
    // The whole request is refused (400) while it contains "poison".
    let mock = Mock::start(Box::new(|_, rec| {
        if rec.ids.iter().any(|id| id == "poison") {
            Reply::Raw(
                400,
                r#"{"error":{"type":"x_content_parse_exception","reason":"[1:9] Unexpected character"},"status":400}"#.into(),
            )
        } else {
            Reply::AllCreated
        }
    }))
    .await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 4;
    let mut s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    for id in ["a", "b", "poison", "d"] {
        s.sink.submit(acks.doc(id, "{}")).await.unwrap();
    }
    let dead = next_dead_letter(&mut s.dead_letters).await;
    assert_eq!(&dead.record.offset, &("poison".len() as i64));
    assert_eq!(
        dead.reason,
        "ES refused the document's bulk request: HTTP 400: x_content_parse_exception: [1:9] Unexpected character"
    );
    assert_eq!(acks.wait(3).await, ["a", "b", "d"]);
    // Halves go out concurrently, so compare the requests as a set.
    let mut ids: Vec<_> = mock
        .requests()
        .into_iter()
        .map(|r| r.ids.join(","))
        .collect();
    ids.sort();
    assert_eq!(ids, ["a,b", "a,b,poison,d", "d", "poison", "poison,d"]);
}
