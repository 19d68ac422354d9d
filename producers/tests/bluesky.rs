//! Bluesky Jetstream source against a local WebSocket server sending
//! Jetstream's documented event shapes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{collect, json};
use futures::SinkExt as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_util::sync::CancellationToken;
use weir_producers::bluesky::{self, Config};
use weir_producers::{Backoff, Emitter};

/// How one connection ends after its messages.
#[derive(Clone, Copy)]
enum End {
    /// TCP connection dropped without a close frame.
    Drop,
    /// Stays open.
    Hang,
}

/// A WebSocket server: connection `i` gets `script[i]` (the last repeats);
/// request URIs are recorded.
async fn start(script: Vec<(Vec<String>, End)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let uris = Arc::new(Mutex::new(Vec::new()));
    let seen = uris.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (messages, end) = script.get(n).or(script.last()).cloned().unwrap();
            n += 1;
            let seen = seen.clone();
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)] // tungstenite's callback signature
                let callback = |req: &Request, resp: Response| {
                    seen.lock().unwrap().push(req.uri().to_string());
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                for m in messages {
                    if ws.send(Message::text(m)).await.is_err() {
                        return;
                    }
                }
                match end {
                    End::Drop => {
                        // Let the messages reach the client, then drop the TCP
                        // stream without a close handshake.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        drop(ws);
                    }
                    End::Hang => {
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    (format!("ws://{addr}"), uris)
}

fn config(base: &str) -> Config {
    let mut c = Config::new();
    c.base_url = base.to_owned();
    c.backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(50));
    c
}

fn post(did: &str, rkey: &str, time_us: i64, text: &str) -> Value {
    json!({
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": "3l3qo2vuowo2b",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": {
                "$type": "app.bsky.feed.post",
                "createdAt": "2024-09-09T19:46:02.102Z",
                "langs": ["en", "de"],
                "text": text
            },
            "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"
        }
    })
}

const DID: &str = "did:plc:eygmaihciaxprqvxpfvl6flk";

#[tokio::test]
async fn posts_are_normalised_and_other_events_ignored() {
    let identity = json!({"did": "did:plc:named", "time_us": 1_725_911_162_000_001i64, "kind": "identity", "identity": {"did": "did:plc:named", "handle": "alice.bsky.social", "seq": 1, "time": "2024-09-09T19:46:02.000Z"}});
    let account = json!({"did": DID, "time_us": 1_725_911_162_000_002i64, "kind": "account", "account": {"active": true, "did": DID, "seq": 2, "time": "2024-09-09T19:46:02.000Z"}});
    let delete = json!({"did": DID, "time_us": 1_725_911_162_000_003i64, "kind": "commit", "commit": {"rev": "x", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": "old"}});
    let like = json!({"did": DID, "time_us": 1_725_911_162_000_004i64, "kind": "commit", "commit": {"rev": "x", "operation": "create", "collection": "app.bsky.feed.like", "rkey": "l1", "record": {"subject": {}}}});
    let mut no_date = post(
        "did:plc:named",
        "3kb",
        1_725_911_162_329_308,
        "no date here",
    );
    no_date["commit"]["record"]
        .as_object_mut()
        .unwrap()
        .remove("createdAt");
    no_date["commit"]["record"]
        .as_object_mut()
        .unwrap()
        .remove("langs");
    let messages = vec![
        post(
            DID,
            "3l3qo2vutsw2b",
            1_725_911_162_000_000,
            "Hello from the firehose",
        )
        .to_string(),
        identity.to_string(),
        account.to_string(),
        delete.to_string(),
        like.to_string(),
        no_date.to_string(),
    ];
    let (base, uris) = start(vec![(messages, End::Hang)]).await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bluesky::run(config(&base), emitter, shutdown.clone()));
    let records = collect(&mut rx, 2).await;
    common::wait_until("all events handled", || {
        counters.snapshot().ignored("create") + counters.snapshot().ignored("other_collection") >= 1
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let id = format!("at://{DID}/app.bsky.feed.post/3l3qo2vutsw2b");
    assert_eq!(records[0].key.as_deref(), Some(id.as_str()));
    assert_eq!(
        json(&records[0]),
        json!({
            "id": id,
            "text": "Hello from the firehose",
            "created_at": "2024-09-09T19:46:02.102Z",
            "lang": "en",
            "user": {"id": DID, "screen_name": DID},
            "source": "bluesky",
            "url": format!("https://bsky.app/profile/{DID}/post/3l3qo2vutsw2b")
        })
    );
    // The handle learnt from the identity event; the time from time_us.
    assert_eq!(
        json(&records[1]),
        json!({
            "id": "at://did:plc:named/app.bsky.feed.post/3kb",
            "text": "no date here",
            "created_at": "2024-09-09T19:46:02.329308Z",
            "user": {"id": "did:plc:named", "screen_name": "alice.bsky.social"},
            "source": "bluesky",
            "url": "https://bsky.app/profile/did:plc:named/post/3kb"
        })
    );
    let c = counters.snapshot();
    assert_eq!(c.ignored("identity"), 1);
    assert_eq!(c.ignored("account"), 1);
    assert_eq!(c.ignored("delete"), 1);
    assert_eq!(c.ignored("other_collection"), 1);
    assert!(c.skipped.is_empty(), "{c}");
    assert_eq!(
        uris.lock().unwrap()[0],
        "/subscribe?wantedCollections=app.bsky.feed.post"
    );
}

#[tokio::test]
async fn reconnects_resume_from_the_last_cursor() {
    let (base, uris) = start(vec![
        (
            vec![
                post(DID, "a", 100, "one").to_string(),
                post(DID, "b", 200, "two").to_string(),
            ],
            End::Drop,
        ),
        // Jetstream replays from the cursor, so "b" comes again.
        (
            vec![
                post(DID, "b", 200, "two").to_string(),
                post(DID, "c", 300, "three").to_string(),
            ],
            End::Drop,
        ),
        (vec![post(DID, "d", 400, "four").to_string()], End::Hang),
    ])
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bluesky::run(config(&base), emitter, shutdown.clone()));
    let records = collect(&mut rx, 4).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let texts: Vec<String> = records
        .iter()
        .map(|r| json(r)["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
    let uris = uris.lock().unwrap().clone();
    assert_eq!(
        uris[..3],
        [
            "/subscribe?wantedCollections=app.bsky.feed.post".to_owned(),
            "/subscribe?wantedCollections=app.bsky.feed.post&cursor=200".to_owned(),
            "/subscribe?wantedCollections=app.bsky.feed.post&cursor=300".to_owned(),
        ]
    );
    let c = counters.snapshot();
    assert_eq!(c.reconnects, 2);
    assert_eq!(c.duplicates, 1);
}

#[tokio::test]
async fn a_configured_cursor_and_language_filter_apply() {
    let mut german = post(DID, "g", 600, "Guten Tag");
    german["commit"]["record"]["langs"] = json!(["de"]);
    let (base, uris) = start(vec![(
        vec![german.to_string(), post(DID, "e", 700, "hello").to_string()],
        End::Hang,
    )])
    .await;
    let mut c = config(&base);
    c.cursor = Some(500);
    c.langs = vec!["en".into()];
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bluesky::run(c, emitter, shutdown.clone()));
    let records = collect(&mut rx, 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(json(&records[0])["text"], "hello");
    assert_eq!(counters.snapshot().ignored("lang_filtered"), 1);
    assert_eq!(
        uris.lock().unwrap()[0],
        "/subscribe?wantedCollections=app.bsky.feed.post&cursor=500"
    );
}

#[tokio::test]
async fn malformed_events_are_skipped_and_the_stream_continues() {
    let mut no_text = post(DID, "n", 2, "x");
    no_text["commit"]["record"]
        .as_object_mut()
        .unwrap()
        .remove("text");
    let mut no_record = post(DID, "r", 3, "x");
    no_record["commit"]
        .as_object_mut()
        .unwrap()
        .remove("record");
    let mut no_commit = post(DID, "c", 4, "x");
    no_commit.as_object_mut().unwrap().remove("commit");
    let (base, _) = start(vec![(
        vec![
            post(DID, "1", 1, "first").to_string(),
            "{not json".into(),
            json!({"kind": "commit"}).to_string(),
            no_text.to_string(),
            no_record.to_string(),
            no_commit.to_string(),
            post(DID, "5", 5, "last").to_string(),
        ],
        End::Hang,
    )])
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bluesky::run(config(&base), emitter, shutdown.clone()));
    let records = collect(&mut rx, 2).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let texts: Vec<String> = records
        .iter()
        .map(|r| json(r)["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["first", "last"]);
    assert_eq!(counters.snapshot().skipped("malformed"), 5);
}

#[tokio::test]
async fn refused_connections_are_retried() {
    // Nothing listens at first: connects fail and are retried with back-off
    // until the server appears on that port.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bluesky::run(
        config(&format!("ws://{addr}")),
        emitter,
        shutdown.clone(),
    ));
    common::wait_until("two failed attempts", || {
        counters.snapshot().reconnects >= 2
    })
    .await;
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        ws.send(Message::text(post(DID, "z", 9, "finally").to_string()))
            .await
            .unwrap();
        std::future::pending::<()>().await;
    });
    let records = collect(&mut rx, 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(json(&records[0])["text"], "finally");
}

#[tokio::test]
async fn wss_uses_rustls_without_panicking() {
    // A TCP server that closes at once: the TLS client config is built (a
    // missing or ambiguous rustls crypto provider would panic here), the
    // handshake fails, and the source retries.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            drop(tcp);
        }
    });
    let (emitter, _rx, counters) = Emitter::channel(10);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bluesky::run(
        config(&format!("wss://localhost:{}", addr.port())),
        emitter,
        shutdown.clone(),
    ));
    common::wait_until("TLS attempts retried", || {
        counters.snapshot().reconnects >= 2
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
