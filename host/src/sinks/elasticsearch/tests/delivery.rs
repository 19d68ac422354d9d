//! Whole-request failures, backpressure, startup and shutdown.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::mock::{Mock, Reply, items_json};
use super::{Acks, WAIT, fast_config, start};
use crate::sinks::elasticsearch::{ElasticsearchSink, SinkError, SinkHandle};

/// Waits until the sink reports unhealthy (it got no usable answer).
async fn wait_unhealthy(sink: &SinkHandle) {
    tokio::time::timeout(WAIT, async {
        while sink.is_healthy() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("sink never became unhealthy");
}

#[tokio::test]
async fn a_503_request_is_retried_whole_and_acked_only_after_success() {
    let up = Arc::new(AtomicBool::new(false));
    let gate = Arc::clone(&up);
    let mock = Mock::start(Box::new(move |_, _| {
        if gate.load(Ordering::SeqCst) {
            Reply::AllCreated
        } else {
            Reply::Raw(
                503,
                r#"{"error":{"type":"cluster_block_exception","reason":"blocked"},"status":503}"#
                    .into(),
            )
        }
    }))
    .await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 3;
    let s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    for id in ["a", "b", "c"] {
        s.sink.submit(acks.doc(id, "{}")).await.unwrap();
    }
    mock.wait_requests(3).await;
    assert!(
        acks.so_far().is_empty(),
        "nothing is acknowledged before a success"
    );
    let health = s.sink.health();
    assert!(!health.healthy);
    assert_eq!(
        health.last_error.as_deref(),
        Some("HTTP 503: cluster_block_exception: blocked")
    );
    up.store(true, Ordering::SeqCst);
    assert_eq!(acks.wait(3).await, ["a", "b", "c"]);
    assert!(mock.requests().iter().all(|r| r.ids == ["a", "b", "c"]));
    assert!(s.sink.is_healthy());
}

#[tokio::test]
async fn connection_refused_then_the_server_appears() {
    let first = Mock::start(Box::new(|_, _| Reply::AllCreated)).await;
    let addr = first.addr;
    let mut cfg = fast_config(&first.url());
    cfg.batch.max_docs = 2;
    let s = start(&cfg, Path::new(".")).await;
    first.stop().await;

    let mut acks = Acks::new();
    s.sink.submit(acks.doc("a", "{}")).await.unwrap();
    s.sink.submit(acks.doc("b", "{}")).await.unwrap();
    wait_unhealthy(&s.sink).await;
    assert!(acks.so_far().is_empty());

    let second = Mock::start_on(addr, Box::new(|_, _| Reply::AllCreated)).await;
    assert_eq!(acks.wait(2).await, ["a", "b"]);
    assert_eq!(second.requests()[0].ids, ["a", "b"]);
    assert!(s.sink.is_healthy());
}

#[tokio::test]
async fn short_or_garbled_responses_retry_the_whole_request() {
    let mock = Mock::start(Box::new(|n, rec| match n {
        // One item for three documents: positions cannot be trusted.
        0 => Reply::Raw(200, items_json(&rec.ids[..1], &[(201, None)])),
        1 => Reply::Raw(
            200,
            r#"{"took":1,"errors":false,"items":[{"index":{"_id""#.into(),
        ),
        2 => Reply::Raw(200, "<html>proxy error</html>".into()),
        _ => Reply::AllCreated,
    }))
    .await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 3;
    let s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    for id in ["a", "b", "c"] {
        s.sink.submit(acks.doc(id, "{}")).await.unwrap();
    }
    assert_eq!(acks.wait(3).await, ["a", "b", "c"]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs.iter().all(|r| r.ids == ["a", "b", "c"]));
}

#[tokio::test]
async fn a_saturated_sink_stops_reading_so_producers_wait() {
    let release = Arc::new(Semaphore::new(0));
    let held = Arc::clone(&release);
    let mock = Mock::start(Box::new(move |_, _| Reply::Wait(Arc::clone(&held)))).await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 1; // also the input channel's capacity
    cfg.request.concurrency = 1;
    let s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    // 1 in flight, 1 accumulated, 1 in the channel: the 4th send must wait.
    for id in ["1", "2", "3"] {
        s.sink.submit(acks.doc(id, "{}")).await.unwrap();
    }
    mock.wait_requests(1).await;
    let sink = s.sink.clone();
    let fourth = acks.doc("4", "{}");
    let blocked = tokio::spawn(async move { sink.submit(fourth).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !blocked.is_finished(),
        "send must wait while the sink is saturated"
    );
    assert_eq!(mock.requests().len(), 1, "one request in flight at a time");

    release.add_permits(100);
    blocked.await.unwrap().unwrap();
    assert_eq!(acks.wait(4).await, ["1", "2", "3", "4"]);
    let ids: Vec<_> = mock.requests().into_iter().map(|r| r.ids).collect();
    assert_eq!(ids, [["1"], ["2"], ["3"], ["4"]]);
}

#[tokio::test]
async fn shutdown_flushes_what_is_buffered() {
    let mock = Mock::start(Box::new(|_, _| Reply::AllCreated)).await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.timeout = Duration::from_secs(3600);
    let s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    for id in ["a", "b"] {
        s.sink.submit(acks.doc(id, "{}")).await.unwrap();
    }
    let other = s.sink.clone();
    let report = s.sink.shutdown(WAIT).await.unwrap();
    assert_eq!(report.unacknowledged, 0);
    assert_eq!(acks.wait(2).await, ["a", "b"]);
    assert_eq!(mock.requests()[0].ids, ["a", "b"]);
    assert!(matches!(
        other.submit(acks.doc("late", "{}")).await,
        Err(SinkError::Closed)
    ));
    assert!(matches!(other.shutdown(WAIT).await, Err(SinkError::Closed)));
}

#[tokio::test]
async fn shutdown_deadline_leaves_unindexed_documents_unacknowledged() {
    let never = Arc::new(Semaphore::new(0));
    let mock = Mock::start(Box::new(move |_, _| Reply::Wait(Arc::clone(&never)))).await;
    let mut cfg = fast_config(&mock.url());
    cfg.batch.max_docs = 2;
    let s = start(&cfg, Path::new(".")).await;
    let mut acks = Acks::new();
    for id in ["a", "b", "c"] {
        s.sink.submit(acks.doc(id, "{}")).await.unwrap();
    }
    mock.wait_requests(1).await;
    let report = s.sink.shutdown(Duration::from_millis(200)).await.unwrap();
    assert_eq!(report.unacknowledged, 3);
    assert!(acks.so_far().is_empty());
}

#[tokio::test]
async fn startup_fails_naming_the_url_when_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = fast_config(&format!("http://127.0.0.1:{port}"));
    cfg.health.startup_timeout = Duration::from_millis(300);
    let (dlq, _rx) = crate::pipeline::DeadLetterQueue::channel(1);
    let err = ElasticsearchSink::start(&cfg, Path::new("."), dlq, &mut Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "Elasticsearch at http://127.0.0.1:{port}/ is not reachable"
        )),
        "{msg}"
    );
}
