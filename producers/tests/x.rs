//! X filtered-stream source against a local server serving the documented
//! rules and stream payloads.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{End, collect, json, serve, stream_body};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weir_producers::x::{self, Config};
use weir_producers::{Backoff, Emitter, Error};

const TOKEN: &str = "AAAAbearer";

/// One stream connection's answer.
#[derive(Clone)]
enum Conn {
    Ok(Vec<String>, End),
    Status(StatusCode, Value),
}

#[derive(Default)]
struct Fake {
    rules: Vec<Value>,
    next_rule_id: u64,
    rule_posts: Vec<Value>,
    rules_status: Option<(StatusCode, Value)>,
    conns: Vec<Conn>,
    stream_queries: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"})),
    )
        .into_response()
}

async fn get_rules(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let fake = fake.lock().unwrap();
    if let Some((s, v)) = &fake.rules_status {
        return (*s, axum::Json(v.clone())).into_response();
    }
    let body = if fake.rules.is_empty() {
        json!({"meta":{"sent":"2024-05-01T12:00:00.000Z","result_count":0}})
    } else {
        json!({"data": fake.rules, "meta":{"sent":"2024-05-01T12:00:00.000Z","result_count":fake.rules.len()}})
    };
    axum::Json(body).into_response()
}

async fn post_rules(
    State(fake): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let mut fake = fake.lock().unwrap();
    fake.rule_posts.push(body.clone());
    if let Some(ids) = body.pointer("/delete/ids").and_then(|v| v.as_array()) {
        let ids: Vec<String> = ids.iter().map(|i| i.as_str().unwrap().to_owned()).collect();
        fake.rules
            .retain(|r| !ids.contains(&r["id"].as_str().unwrap().to_owned()));
        return axum::Json(json!({"meta":{"sent":"2024-05-01T12:00:00.000Z","summary":{"deleted":ids.len(),"not_deleted":0}}})).into_response();
    }
    let mut created = Vec::new();
    let mut errors = Vec::new();
    for rule in body["add"].as_array().unwrap() {
        let value = rule["value"].as_str().unwrap();
        if value.contains("((") {
            errors.push(json!({"value": value, "details": ["Rules must contain balanced parentheses"], "title": "UnprocessableEntity", "type": "https://api.twitter.com/2/problems/invalid-rules"}));
            continue;
        }
        fake.next_rule_id += 1;
        let r = json!({"id": format!("{}", 1000 + fake.next_rule_id), "value": value, "tag": rule["tag"]});
        fake.rules.push(r.clone());
        created.push(r);
    }
    let mut answer = json!({"meta":{"sent":"2024-05-01T12:00:00.000Z","summary":{"created":created.len(),"not_created":errors.len(),"valid":created.len(),"invalid":errors.len()}}});
    if !created.is_empty() {
        answer["data"] = json!(created);
    }
    if !errors.is_empty() {
        answer["errors"] = json!(errors);
    }
    axum::Json(answer).into_response()
}

async fn stream(State(fake): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let mut fake = fake.lock().unwrap();
    fake.stream_queries.push(q.unwrap_or_default());
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
            [("content-type", "application/json")],
            stream_body(chunks, end),
        )
            .into_response(),
        Conn::Status(s, v) => (s, axum::Json(v)).into_response(),
    }
}

async fn start(fake: Fake) -> (String, Shared) {
    let fake = Arc::new(Mutex::new(fake));
    let app = Router::new()
        .route(
            "/2/tweets/search/stream/rules",
            get(get_rules).post(post_rules),
        )
        .route("/2/tweets/search/stream", get(stream))
        .with_state(fake.clone());
    (serve(app).await, fake)
}

fn config(base: &str, rules: &[&str]) -> Config {
    let mut c = Config::new(TOKEN, rules.iter().map(|s| s.to_string()).collect());
    c.base_url = base.to_owned();
    c.network_backoff = Backoff::linear(Duration::from_millis(10), Duration::from_millis(50));
    c.http_backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(50));
    c.rate_limit_backoff =
        Backoff::exponential(Duration::from_millis(20), Duration::from_millis(100));
    c
}

/// One stream line: a post by user `u<author>` plus the expansion.
fn post(id: u64, author: u64) -> String {
    json!({
        "data": {
            "id": id.to_string(),
            "text": format!("post {id} #climate"),
            "created_at": "2024-05-01T12:00:00.000Z",
            "lang": "en",
            "author_id": author.to_string(),
            "edit_history_tweet_ids": [id.to_string()],
            "public_metrics": {"retweet_count": 3, "reply_count": 1, "like_count": 7, "quote_count": 0, "bookmark_count": 0, "impression_count": 120}
        },
        "includes": {"users": [{"id": author.to_string(), "name": "User", "username": format!("u{author}"), "public_metrics": {"followers_count": 42, "following_count": 5, "tweet_count": 100, "listed_count": 0}}]},
        "matching_rules": [{"id": "1001", "tag": "weir"}]
    })
    .to_string()
        + "\r\n"
}

fn ids(records: &[weir_producers::Record]) -> Vec<String> {
    records.iter().map(|r| r.key.clone().unwrap()).collect()
}

#[tokio::test]
async fn rules_are_synced_and_posts_normalised() {
    let (base, fake) = start(Fake {
        rules: vec![
            json!({"id":"1","value":"old rule","tag":"weir"}),
            json!({"id":"2","value":"climate lang:en","tag":"someone"}),
        ],
        conns: vec![Conn::Ok(
            vec![
                "\r\n".into(),
                post(1790000000000000001, 7),
                "\r\n".into(),
                "\r\n".into(),
                post(1790000000000000002, 8),
            ],
            End::Hang,
        )],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(x::run(
        config(&base, &["climate lang:en", "#hatespeech -is:retweet"]),
        emitter,
        shutdown.clone(),
    ));
    let records = collect(&mut rx, 2).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    assert_eq!(records[0].key.as_deref(), Some("1790000000000000001"));
    assert_eq!(
        json(&records[0]),
        json!({
            "id": "1790000000000000001",
            "text": "post 1790000000000000001 #climate",
            "created_at": "2024-05-01T12:00:00Z",
            "lang": "en",
            "user": {"id": "7", "screen_name": "u7", "followers_count": 42},
            "source": "x",
            "url": "https://x.com/u7/status/1790000000000000001",
            "retweet_count": 3,
            "like_count": 7
        })
    );
    assert_eq!(json(&records[1])["user"]["screen_name"], "u8");
    assert_eq!(counters.snapshot().skipped.len(), 0);

    let fake = fake.lock().unwrap();
    // The unconfigured rule was deleted, the kept one left, the new one added.
    assert_eq!(
        fake.rule_posts,
        [
            json!({"delete": {"ids": ["1"]}}),
            json!({"add": [{"value": "#hatespeech -is:retweet", "tag": "weir"}]}),
        ]
    );
    let values: Vec<&str> = fake
        .rules
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["climate lang:en", "#hatespeech -is:retweet"]);
    assert_eq!(
        fake.stream_queries[0],
        "tweet.fields=created_at,lang,public_metrics,author_id&expansions=author_id&user.fields=username,public_metrics"
    );
}

#[tokio::test]
async fn no_configured_rules_leaves_the_apps_rules_alone() {
    let (base, fake) = start(Fake {
        rules: vec![json!({"id":"9","value":"cats"})],
        conns: vec![Conn::Ok(vec![post(1, 1)], End::Hang)],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, _) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(x::run(config(&base, &[]), emitter, shutdown.clone()));
    collect(&mut rx, 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert!(fake.lock().unwrap().rule_posts.is_empty());
}

#[tokio::test]
async fn dropped_streams_reconnect_and_continue() {
    // Connection 1 breaks after one post; connection 2 ends cleanly after
    // repeating it and sending another; connection 3 sends the last.
    let (base, fake) = start(Fake {
        conns: vec![
            Conn::Ok(vec![post(1, 1)], End::Abort),
            Conn::Ok(vec![post(1, 1), post(2, 1)], End::Close),
            Conn::Ok(vec!["\r\n".into(), post(3, 2)], End::Hang),
        ],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(x::run(config(&base, &[]), emitter, shutdown.clone()));
    let records = collect(&mut rx, 3).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ids(&records), ["1", "2", "3"]);
    let c = counters.snapshot();
    assert_eq!(c.reconnects, 2);
    assert_eq!(c.duplicates, 1);
    assert_eq!(fake.lock().unwrap().stream_queries.len(), 3);
}

#[tokio::test]
async fn a_stalled_stream_is_reconnected() {
    let (base, _) = start(Fake {
        conns: vec![
            Conn::Ok(vec![post(1, 1)], End::Hang),
            Conn::Ok(vec![post(2, 1)], End::Hang),
        ],
        ..Fake::default()
    })
    .await;
    let mut c = config(&base, &[]);
    c.stall_timeout = Duration::from_millis(300);
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(x::run(c, emitter, shutdown.clone()));
    let records = collect(&mut rx, 2).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ids(&records), ["1", "2"]);
    assert!(counters.snapshot().reconnects >= 1);
}

#[tokio::test]
async fn too_many_requests_backs_off_then_connects() {
    let too_many = Conn::Status(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"title":"ConnectionException","detail":"This stream is currently at the maximum allowed connection limit.","connection_issue":"TooManyConnections","type":"https://api.twitter.com/2/problems/streaming-connection"}),
    );
    let (base, fake) = start(Fake {
        conns: vec![
            too_many.clone(),
            too_many,
            Conn::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"title":"Service Unavailable"}),
            ),
            Conn::Ok(vec![post(5, 1)], End::Hang),
        ],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(x::run(config(&base, &[]), emitter, shutdown.clone()));
    let records = collect(&mut rx, 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ids(&records), ["5"]);
    let c = counters.snapshot();
    assert_eq!(c.rate_limited, 2);
    assert_eq!(c.reconnects, 3);
    assert_eq!(fake.lock().unwrap().stream_queries.len(), 4);
}

#[tokio::test]
async fn malformed_lines_are_skipped_and_the_stream_continues() {
    let mut no_text: Value = serde_json::from_str(&post(11, 1)).unwrap();
    no_text["data"].as_object_mut().unwrap().remove("text");
    let mut bad_date: Value = serde_json::from_str(&post(12, 1)).unwrap();
    bad_date["data"]["created_at"] = json!("Wed May 01 12:00:00 +0000 2024 but wrong");
    let mut unknown_author: Value = serde_json::from_str(&post(13, 1)).unwrap();
    unknown_author["includes"] = json!({});
    let operational = json!({"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]});
    let (base, _) = start(Fake {
        conns: vec![Conn::Ok(
            vec![
                post(10, 1),
                "{not json\r\n".into(),
                format!("{no_text}\r\n"),
                format!("{bad_date}\r\n"),
                "{\"matching_rules\":[]}\r\n".into(),
                format!("{unknown_author}\r\n"),
                format!("{operational}\r\n"),
                post(14, 1),
            ],
            End::Hang,
        )],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(x::run(config(&base, &[]), emitter, shutdown.clone()));
    let records = collect(&mut rx, 3).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ids(&records), ["10", "13", "14"]);
    // Without the user expansion the author id stands in for the handle.
    assert_eq!(
        json(&records[1])["user"],
        json!({"id": "1", "screen_name": "1"})
    );
    assert_eq!(json(&records[1])["url"], "https://x.com/i/web/status/13");
    let c = counters.snapshot();
    assert_eq!(c.skipped("malformed"), 3);
    assert_eq!(c.skipped("bad_timestamp"), 1);
}

#[tokio::test]
async fn bad_token_fails_with_a_clear_error() {
    let (base, fake) = start(Fake::default()).await;
    let mut c = config(&base, &["cats"]);
    c.bearer_token = "nope".into();
    let (emitter, _rx, _) = Emitter::channel(10);
    let err = x::run(c, emitter, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { service: "x", .. }), "{err:?}");
    assert!(err.to_string().contains("X_BEARER_TOKEN"), "{err}");
    assert!(fake.lock().unwrap().stream_queries.is_empty());
}

#[tokio::test]
async fn forbidden_stream_explains_access_tiers() {
    let (base, _) = start(Fake {
        conns: vec![Conn::Status(
            StatusCode::FORBIDDEN,
            json!({"client_id":"1","detail":"When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.","reason":"client-not-enrolled","title":"Client Forbidden","type":"https://api.twitter.com/2/problems/client-forbidden"}),
        )],
        ..Fake::default()
    })
    .await;
    let (emitter, _rx, _) = Emitter::channel(10);
    let err = x::run(config(&base, &[]), emitter, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("client-not-enrolled") && msg.contains("access tier"),
        "{msg}"
    );
}

#[tokio::test]
async fn invalid_rules_are_rejected() {
    let (base, _) = start(Fake::default()).await;
    let (emitter, _rx, _) = Emitter::channel(10);
    let err = x::run(
        config(&base, &["((unbalanced"]),
        emitter,
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("balanced parentheses"), "{err}");
}

#[tokio::test]
async fn rules_endpoint_rate_limit_is_retried() {
    let (base, fake) = start(Fake {
        rules_status: Some((StatusCode::TOO_MANY_REQUESTS, json!({"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}))),
        conns: vec![Conn::Ok(vec![post(1, 1)], End::Hang)],
        ..Fake::default()
    })
    .await;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(x::run(config(&base, &[]), emitter, shutdown.clone()));
    common::wait_until("two rate-limited rules requests", || {
        counters.snapshot().rate_limited >= 2
    })
    .await;
    fake.lock().unwrap().rules_status = None;
    collect(&mut rx, 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
