//! Mastodon streaming source against a local server speaking the
//! documented Server-Sent Events format with Status payloads.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{End, collect, json, serve, stream_body};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weir_producers::mastodon::{self, Config};
use weir_producers::{Backoff, Emitter, Error};

#[derive(Clone)]
enum Conn {
    Ok(Vec<String>, End),
    Status(StatusCode),
}

#[derive(Default)]
struct Fake {
    conns: Vec<Conn>,
    requests: Vec<(String, Option<String>, Option<String>)>, // (uri, authorization, accept)
    require_token: Option<String>,
}

type Shared = Arc<Mutex<Fake>>;

async fn handler(
    State(fake): State<Shared>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let mut fake = fake.lock().unwrap();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let auth = header("authorization");
    fake.requests
        .push((uri.to_string(), auth.clone(), header("accept")));
    if let Some(token) = &fake.require_token
        && auth != Some(format!("Bearer {token}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "The access token is invalid"})),
        )
            .into_response();
    }
    let conn = if fake.conns.len() > 1 {
        fake.conns.remove(0)
    } else {
        fake.conns
            .first()
            .cloned()
            .unwrap_or(Conn::Ok(vec![], End::Hang))
    };
    match conn {
        Conn::Ok(chunks, end) => (
            [("content-type", "text/event-stream")],
            stream_body(chunks, end),
        )
            .into_response(),
        Conn::Status(s) => (s, axum::Json(json!({"error": "Too many requests"}))).into_response(),
    }
}

async fn start(fake: Fake) -> (String, Shared) {
    let fake = Arc::new(Mutex::new(fake));
    let app = Router::new()
        .route("/api/v1/streaming/public", get(handler))
        .route("/api/v1/streaming/public/local", get(handler))
        .route("/api/v1/streaming/hashtag", get(handler))
        .route("/api/v1/streaming/hashtag/local", get(handler))
        .with_state(fake.clone());
    (serve(app).await, fake)
}

fn config(base: &str) -> Config {
    let mut c = Config::new();
    c.base_url = base.to_owned();
    c.backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(50));
    c.rate_limit_backoff =
        Backoff::exponential(Duration::from_millis(20), Duration::from_millis(100));
    c.access_token = Some("user-token".into());
    c
}

fn status(id: &str, acct: &str) -> Value {
    json!({
        "id": id,
        "created_at": "2024-05-01T12:00:00.000Z",
        "in_reply_to_id": null,
        "in_reply_to_account_id": null,
        "sensitive": false,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": format!("https://example.social/users/{acct}/statuses/{id}"),
        "url": format!("https://example.social/@{acct}/{id}"),
        "replies_count": 0,
        "reblogs_count": 2,
        "favourites_count": 5,
        "content": format!("<p>Status {id} about <a href=\"https://example.social/tags/climate\" class=\"mention hashtag\" rel=\"tag\">#<span>climate</span></a></p>"),
        "reblog": null,
        "account": {
            "id": "109",
            "username": acct.split('@').next().unwrap(),
            "acct": acct,
            "display_name": "Someone",
            "followers_count": 321,
            "following_count": 10,
            "statuses_count": 99,
            "url": format!("https://example.social/@{acct}")
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": "climate", "url": "https://example.social/tags/climate"}],
        "emojis": []
    })
}

fn update(v: &Value) -> String {
    format!("event: update\ndata: {v}\n\n")
}

fn ids(records: &[weir_producers::Record]) -> Vec<String> {
    records.iter().map(|r| r.key.clone().unwrap()).collect()
}

#[tokio::test]
async fn hashtag_stream_statuses_are_normalised() {
    let (base, fake) = start(Fake {
        conns: vec![Conn::Ok(
            vec![
                ":)\n\n".into(),
                update(&status("112233", "alice@remote.example")),
                ":thump\n".into(),
                "event: delete\ndata: 111\n\n".into(),
                format!(
                    "event: status.update\ndata: {}\n\n",
                    status("112233", "alice@remote.example")
                ),
                // Split across chunks in the middle of the JSON.
                {
                    let s = update(&status("112234", "bob"));
                    s[..40].to_owned()
                },
                {
                    let s = update(&status("112234", "bob"));
                    s[40..].to_owned()
                },
            ],
            End::Hang,
        )],
        require_token: Some("tok".into()),
        ..Fake::default()
    })
    .await;
    let mut c = config(&base);
    c.hashtag = Some("#climate".into());
    c.access_token = Some("tok".into());
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mastodon::run(c, emitter, shutdown.clone()));
    let records = collect(&mut rx, 2).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    assert_eq!(records[0].key.as_deref(), Some("112233"));
    assert_eq!(
        json(&records[0]),
        json!({
            "id": "112233",
            "text": "<p>Status 112233 about <a href=\"https://example.social/tags/climate\" class=\"mention hashtag\" rel=\"tag\">#<span>climate</span></a></p>",
            "created_at": "2024-05-01T12:00:00Z",
            "lang": "en",
            "user": {"id": "109", "screen_name": "alice@remote.example", "followers_count": 321},
            "source": "mastodon",
            "url": "https://example.social/@alice@remote.example/112233",
            "retweet_count": 2,
            "like_count": 5
        })
    );
    assert_eq!(json(&records[1])["user"]["screen_name"], "bob");
    let c = counters.snapshot();
    assert_eq!(c.ignored("delete"), 1);
    assert_eq!(c.ignored("status.update"), 1);
    let req = &fake.lock().unwrap().requests[0];
    assert_eq!(req.0, "/api/v1/streaming/hashtag?tag=climate");
    assert_eq!(req.1.as_deref(), Some("Bearer tok"));
    assert_eq!(req.2.as_deref(), Some("text/event-stream"));
}

/// Streams one status with `configure`d settings; the request it sent
/// (path and query, `Authorization`).
async fn first_request(configure: impl FnOnce(&mut Config)) -> (String, Option<String>) {
    let (base, fake) = start(Fake {
        conns: vec![Conn::Ok(vec![update(&status("1", "a"))], End::Hang)],
        ..Fake::default()
    })
    .await;
    let mut c = config(&base);
    configure(&mut c);
    let (emitter, mut rx, _) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mastodon::run(c, emitter, shutdown.clone()));
    collect(&mut rx, 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let req = fake.lock().unwrap().requests[0].clone();
    (req.0, req.1)
}

#[tokio::test]
async fn public_stream_sends_the_user_token() {
    let (path, auth) = first_request(|c| c.local = true).await;
    assert_eq!(path, "/api/v1/streaming/public/local");
    assert_eq!(auth.as_deref(), Some("Bearer user-token"));
}

/// Since Mastodon 4.2 the public and local timelines stream only with a
/// user token: without one the source fails before connecting, saying how
/// to get one.
#[tokio::test]
async fn public_streams_without_a_token_fail_before_connecting() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    for (local, token) in [(false, None), (true, None), (false, Some("  "))] {
        let mut c = config(&base);
        c.local = local;
        c.access_token = token.map(str::to_owned);
        let (emitter, _rx, _) = Emitter::channel(10);
        let err = mastodon::run(c, emitter, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        let msg = err.to_string();
        for needle in [
            "Preferences > Development > New application",
            "read",
            "access token",
            "MASTODON_TOKEN",
        ] {
            assert!(msg.contains(needle), "{needle:?} not in {msg}");
        }
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the producer connected: {other:?}"),
    }
}

#[tokio::test]
async fn hashtag_streams_need_no_token() {
    let (path, auth) = first_request(|c| {
        c.hashtag = Some("climate".into());
        c.access_token = None;
    })
    .await;
    assert_eq!(path, "/api/v1/streaming/hashtag?tag=climate");
    assert_eq!(auth, None);
}

#[tokio::test]
async fn dropped_streams_reconnect_and_continue() {
    let (base, fake) = start(Fake {
        conns: vec![
            Conn::Ok(vec![update(&status("1", "a"))], End::Abort),
            Conn::Ok(
                vec![update(&status("1", "a")), update(&status("2", "a"))],
                End::Close,
            ),
            Conn::Ok(
                vec![":thump\n".into(), update(&status("3", "b"))],
                End::Hang,
            ),
        ],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mastodon::run(config(&base), emitter, shutdown.clone()));
    let records = collect(&mut rx, 3).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ids(&records), ["1", "2", "3"]);
    let c = counters.snapshot();
    assert_eq!(c.reconnects, 2);
    assert_eq!(c.duplicates, 1);
    assert_eq!(fake.lock().unwrap().requests.len(), 3);
}

#[tokio::test]
async fn rate_limits_and_server_errors_back_off_and_retry() {
    let (base, fake) = start(Fake {
        conns: vec![
            Conn::Status(StatusCode::TOO_MANY_REQUESTS),
            Conn::Status(StatusCode::BAD_GATEWAY),
            Conn::Ok(vec![update(&status("7", "a"))], End::Hang),
        ],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mastodon::run(config(&base), emitter, shutdown.clone()));
    let records = collect(&mut rx, 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ids(&records), ["7"]);
    let c = counters.snapshot();
    assert_eq!(c.rate_limited, 1);
    assert_eq!(c.reconnects, 2);
    assert_eq!(fake.lock().unwrap().requests.len(), 3);
}

#[tokio::test]
async fn malformed_statuses_are_skipped_and_the_stream_continues() {
    let mut no_account = status("11", "a");
    no_account.as_object_mut().unwrap().remove("account");
    let mut bad_date = status("12", "a");
    bad_date["created_at"] = json!("not a date");
    let mut boost = status("13", "a");
    boost["reblog"] = status("1", "original");
    let mut no_url = status("14", "a");
    no_url["url"] = Value::Null;
    no_url["language"] = Value::Null;
    let (base, _) = start(Fake {
        conns: vec![Conn::Ok(
            vec![
                update(&status("10", "a")),
                "event: update\ndata: {broken\n\n".into(),
                update(&no_account),
                update(&bad_date),
                update(&boost),
                "event: update\ndata: [1,2]\n\n".into(),
                update(&no_url),
            ],
            End::Hang,
        )],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mastodon::run(config(&base), emitter, shutdown.clone()));
    let records = collect(&mut rx, 2).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ids(&records), ["10", "14"]);
    // No url: the uri stands in; no language: no lang.
    let second = json(&records[1]);
    assert_eq!(second["url"], "https://example.social/users/a/statuses/14");
    assert!(second.get("lang").is_none());
    let c = counters.snapshot();
    assert_eq!(c.skipped("malformed"), 2);
    assert_eq!(c.skipped("missing_author"), 1);
    assert_eq!(c.skipped("bad_timestamp"), 1);
    assert_eq!(c.ignored("reblog"), 1);
}

#[tokio::test]
async fn unauthorised_fails_with_a_clear_error() {
    let (base, fake) = start(Fake {
        require_token: Some("right".into()),
        ..Fake::default()
    })
    .await;
    let mut c = config(&base);
    c.access_token = Some("wrong".into());
    let (emitter, _rx, _) = Emitter::channel(10);
    let err = mastodon::run(c, emitter, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Auth {
                service: "mastodon",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("401") && msg.contains("MASTODON_TOKEN"),
        "{msg}"
    );
    assert_eq!(fake.lock().unwrap().requests.len(), 1);
}

#[tokio::test]
async fn wrong_path_is_rejected_not_retried_forever() {
    let (base, _) = start(Fake::default()).await;
    let mut c = config(&base);
    c.base_url = format!("{base}/not-mastodon");
    let (emitter, _rx, _) = Emitter::channel(10);
    let err = mastodon::run(c, emitter, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("404"), "{err}");
}
