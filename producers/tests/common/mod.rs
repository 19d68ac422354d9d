//! Helpers shared by the source tests: a local HTTP server, record
//! collection with a deadline, and streaming bodies that end or break.

#![allow(dead_code)]

use std::time::Duration;

use axum::body::Body;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use weir_producers::Record;

/// Generous bound for anything a test waits for; never a timing assertion.
pub const WAIT: Duration = Duration::from_secs(20);

/// Serves `app` on 127.0.0.1:0; returns `http://127.0.0.1:PORT`.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

/// Receives `n` records, failing the test if they do not come within [`WAIT`].
pub async fn collect(rx: &mut mpsc::Receiver<Record>, n: usize) -> Vec<Record> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) => got.push(r),
            Ok(None) => panic!("source ended after {} of {n} records: {got:?}", got.len()),
            Err(_) => panic!("only {} of {n} records within {WAIT:?}: {got:?}", got.len()),
        }
    }
    got
}

/// All records left once the source has finished (the sender is dropped).
pub async fn drain(rx: &mut mpsc::Receiver<Record>) -> Vec<Record> {
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(r)) => got.push(r),
            Ok(None) => return got,
            Err(_) => panic!("source did not finish within {WAIT:?}; got {got:?}"),
        }
    }
}

/// The record's value as JSON.
pub fn json(r: &Record) -> serde_json::Value {
    serde_json::from_slice(&r.value).unwrap()
}

/// Polls `cond` every 10 ms until it holds, failing after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How a streamed response ends after its chunks.
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// Normal end of body.
    Close,
    /// The connection breaks (the server aborts the body mid-stream).
    Abort,
    /// Never ends, never sends again.
    Hang,
}

/// A streaming body of `chunks` ending as `end` says.
pub fn stream_body(chunks: Vec<String>, end: End) -> Body {
    let head = futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))),
    );
    match end {
        End::Close => Body::from_stream(head),
        End::Abort => Body::from_stream(head.chain(futures::stream::once(async {
            // Let the chunks reach the client before the connection breaks.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::other("server drops the connection"))
        }))),
        End::Hang => Body::from_stream(head.chain(futures::stream::pending())),
    }
}
