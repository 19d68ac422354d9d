//! NewsAPI source against a local server serving NewsAPI's documented
//! response shapes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{collect, drain, json, serve};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weir_producers::newsapi::{self, Config, Endpoint};
use weir_producers::normalize::news_id;
use weir_producers::{Backoff, Emitter, Error};

const KEY: &str = "test-key-123";

/// What the fake NewsAPI answers: one entry per request, in order; the
/// last one repeats.
#[derive(Default)]
struct Fake {
    answers: Vec<(StatusCode, Value)>,
    requests: Vec<(String, Option<String>)>, // (query, X-Api-Key)
}

async fn handler(
    State(fake): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut fake = fake.lock().unwrap();
    let key = headers
        .get("x-api-key")
        .map(|v| v.to_str().unwrap().to_owned());
    let query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let n = fake.requests.len();
    fake.requests.push((query, key.clone()));
    if key.as_deref() != Some(KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"status":"error","code":"apiKeyInvalid","message":"Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org to create a free API key."})),
        )
            .into_response();
    }
    let (status, body) = fake
        .answers
        .get(n)
        .or(fake.answers.last())
        .cloned()
        .unwrap();
    (status, axum::Json(body)).into_response()
}

async fn start(answers: Vec<(StatusCode, Value)>) -> (String, Arc<Mutex<Fake>>) {
    let fake = Arc::new(Mutex::new(Fake {
        answers,
        requests: Vec::new(),
    }));
    let app = Router::new()
        .route("/v2/top-headlines", get(handler))
        .route("/v2/everything", get(handler))
        .with_state(fake.clone());
    (serve(app).await, fake)
}

fn config(base: &str, endpoint: Endpoint) -> Config {
    let mut c = Config::new(KEY, endpoint, vec![("country".into(), "us".into())]);
    if endpoint == Endpoint::Everything {
        c.params = vec![
            ("q".into(), "climate".into()),
            ("sortBy".into(), "publishedAt".into()),
        ];
    }
    c.base_url = base.to_owned();
    c.interval = Duration::from_millis(10);
    c.rate_limit_backoff =
        Backoff::exponential(Duration::from_millis(20), Duration::from_millis(100));
    c.error_backoff = Backoff::exponential(Duration::from_millis(20), Duration::from_millis(100));
    c.max_polls = Some(1);
    c
}

fn article(n: u32) -> Value {
    json!({
        "source": {"id": "bbc-news", "name": "BBC News"},
        "author": format!("Reporter {n}"),
        "title": format!("Headline {n}"),
        "description": format!("Standfirst {n}"),
        "url": format!("https://www.bbc.co.uk/news/article-{n}"),
        "urlToImage": "https://ichef.bbci.co.uk/x.jpg",
        "publishedAt": "2024-05-01T12:34:56Z",
        "content": format!("Body {n}… [+1234 chars]")
    })
}

fn ok(total: u64, articles: Vec<Value>) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({"status":"ok","totalResults":total,"articles":articles}),
    )
}

async fn run(
    config: Config,
) -> (
    Result<(), Error>,
    Vec<weir_producers::Record>,
    weir_producers::Snapshot,
) {
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let task = tokio::spawn(newsapi::run(config, emitter, CancellationToken::new()));
    let records = drain(&mut rx).await;
    let result = task.await.unwrap();
    (result, records, counters.snapshot())
}

#[tokio::test]
async fn articles_are_normalised_to_the_news_schema() {
    let mut sparse = article(2);
    sparse["source"]["id"] = Value::Null;
    sparse["author"] = Value::Null;
    sparse["description"] = Value::Null;
    sparse["content"] = Value::Null;
    sparse["publishedAt"] = json!("2024-05-01T14:00:00+02:00");
    let (base, fake) = start(vec![ok(2, vec![article(1), sparse])]).await;
    let (result, records, counters) = run(config(&base, Endpoint::TopHeadlines)).await;
    result.unwrap();
    assert_eq!(records.len(), 2);
    let url1 = "https://www.bbc.co.uk/news/article-1";
    assert_eq!(records[0].key.as_deref(), Some(news_id(url1).as_str()));
    assert_eq!(
        json(&records[0]),
        json!({
            "id": news_id(url1),
            "title": "Headline 1",
            "description": "Standfirst 1",
            "content": "Body 1… [+1234 chars]",
            "url": url1,
            "source": {"id": "bbc-news", "name": "BBC News"},
            "author": "Reporter 1",
            "published_at": "2024-05-01T12:34:56Z",
            "feed": "newsapi"
        })
    );
    let url2 = "https://www.bbc.co.uk/news/article-2";
    assert_eq!(
        json(&records[1]),
        json!({
            "id": news_id(url2),
            "title": "Headline 2",
            "url": url2,
            "source": {"name": "BBC News"},
            "published_at": "2024-05-01T12:00:00Z",
            "feed": "newsapi"
        })
    );
    assert_eq!(counters.emitted, 2);
    let requests = &fake.lock().unwrap().requests;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0, "country=us&pageSize=100&page=1");
    assert_eq!(requests[0].1.as_deref(), Some(KEY));
}

#[tokio::test]
async fn pages_are_followed_and_urls_deduped_across_polls() {
    // Poll 1: pages 1 and 2 of 3 results (page size 2). Poll 2: the newest
    // article first, then two already seen.
    let (base, fake) = start(vec![
        ok(3, vec![article(1), article(2)]),
        ok(3, vec![article(3)]),
        ok(3, vec![article(4), article(1)]),
        ok(3, vec![article(2)]),
    ])
    .await;
    let mut c = config(&base, Endpoint::Everything);
    c.page_size = 2;
    c.max_pages = 5;
    c.max_polls = Some(2);
    let (result, records, counters) = run(c).await;
    result.unwrap();
    let titles: Vec<String> = records
        .iter()
        .map(|r| json(r)["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        titles,
        ["Headline 1", "Headline 2", "Headline 3", "Headline 4"]
    );
    assert_eq!(counters.duplicates, 2);
    let queries: Vec<String> = fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(
        queries,
        [
            "q=climate&sortBy=publishedAt&pageSize=2&page=1",
            "q=climate&sortBy=publishedAt&pageSize=2&page=2",
            "q=climate&sortBy=publishedAt&pageSize=2&page=1",
            "q=climate&sortBy=publishedAt&pageSize=2&page=2",
        ]
    );
}

#[tokio::test]
async fn rate_limited_requests_back_off_and_retry() {
    let limited = (
        StatusCode::TOO_MANY_REQUESTS,
        json!({"status":"error","code":"rateLimited","message":"You have made too many requests recently. Developer accounts are limited to 100 requests over a 24 hour period (50 requests available every 12 hours). Please upgrade to a paid plan if you need more requests."}),
    );
    let (base, fake) = start(vec![limited.clone(), limited, ok(1, vec![article(1)])]).await;
    let (result, records, counters) = run(config(&base, Endpoint::TopHeadlines)).await;
    result.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(counters.rate_limited, 2);
    // The same request was sent again after each 429.
    let requests = &fake.lock().unwrap().requests;
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| r.0 == "country=us&pageSize=100&page=1")
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let (base, fake) = start(vec![
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"status":"error","code":"unexpectedError","message":"boom"}),
        ),
        ok(1, vec![article(1)]),
    ])
    .await;
    let (result, records, counters) = run(config(&base, Endpoint::TopHeadlines)).await;
    result.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(counters.retries, 1);
    assert_eq!(fake.lock().unwrap().requests.len(), 2);
}

#[tokio::test]
async fn malformed_articles_are_skipped_and_counted() {
    let mut no_url = article(2);
    no_url["url"] = Value::Null;
    let mut no_title = article(3);
    no_title.as_object_mut().unwrap().remove("title");
    let mut bad_date = article(4);
    bad_date["publishedAt"] = json!("last Tuesday");
    let mut no_source = article(5);
    no_source["source"] = json!({"id": null, "name": ""});
    let removed = json!({"source":{"id":null,"name":"[Removed]"},"author":null,"title":"[Removed]","description":"[Removed]","url":"https://removed.com","urlToImage":null,"publishedAt":"1970-01-01T00:00:00Z","content":"[Removed]"});
    let (base, _) = start(vec![ok(
        8,
        vec![
            article(1),
            no_url,
            json!(42),
            no_title,
            bad_date,
            no_source,
            removed,
            article(6),
        ],
    )])
    .await;
    let (result, records, counters) = run(config(&base, Endpoint::TopHeadlines)).await;
    result.unwrap();
    let titles: Vec<String> = records
        .iter()
        .map(|r| json(r)["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Headline 1", "Headline 6"]);
    assert_eq!(counters.skipped("missing_url"), 1);
    assert_eq!(counters.skipped("malformed"), 1);
    assert_eq!(counters.skipped("missing_title"), 1);
    assert_eq!(counters.skipped("bad_timestamp"), 1);
    assert_eq!(counters.skipped("missing_source"), 1);
    assert_eq!(counters.ignored("removed"), 1);
}

#[tokio::test]
async fn invalid_api_key_fails_with_a_clear_error() {
    let (base, fake) = start(vec![ok(1, vec![article(1)])]).await;
    let mut c = config(&base, Endpoint::TopHeadlines);
    c.api_key = "wrong".into();
    let (result, records, _) = run(c).await;
    assert!(records.is_empty());
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Auth {
                service: "newsapi",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("apiKeyInvalid") && msg.contains("NEWSAPI_KEY"),
        "{msg}"
    );
    assert_eq!(
        fake.lock().unwrap().requests.len(),
        1,
        "no retries on a bad key"
    );
}

#[tokio::test]
async fn invalid_parameters_are_rejected_and_plan_cap_ends_paging() {
    let (base, _) = start(vec![(
        StatusCode::BAD_REQUEST,
        json!({"status":"error","code":"parameterInvalid","message":"You've included a parameter in your request which is currently not supported."}),
    )])
    .await;
    let (result, _, _) = run(config(&base, Endpoint::TopHeadlines)).await;
    assert!(matches!(result, Err(Error::Rejected { .. })), "{result:?}");

    // The free plan's 100-result cap ends paging without an error.
    let (base, fake) = start(vec![
        ok(500, vec![article(1)]),
        (
            StatusCode::UPGRADE_REQUIRED,
            json!({"status":"error","code":"maximumResultsReached","message":"You have requested too many results."}),
        ),
    ])
    .await;
    let mut c = config(&base, Endpoint::TopHeadlines);
    c.page_size = 1;
    c.max_pages = 10;
    let (result, records, _) = run(c).await;
    result.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(fake.lock().unwrap().requests.len(), 2);
}

#[tokio::test]
async fn missing_key_or_query_fails_before_any_request() {
    let mut c = Config::new(
        "",
        Endpoint::TopHeadlines,
        vec![("country".into(), "us".into())],
    );
    c.base_url = "http://127.0.0.1:9".into();
    let (result, _, _) = run(c).await;
    assert!(
        matches!(&result, Err(Error::Config(m)) if m.contains("NEWSAPI_KEY")),
        "{result:?}"
    );
    let mut c = Config::new(KEY, Endpoint::Everything, vec![]);
    c.base_url = "http://127.0.0.1:9".into();
    let (result, _, _) = run(c).await;
    assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
}

#[tokio::test]
async fn polling_continues_until_shutdown() {
    let (base, fake) = start(vec![ok(1, vec![article(1)])]).await;
    let mut c = config(&base, Endpoint::TopHeadlines);
    c.max_polls = None;
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(newsapi::run(c, emitter, shutdown.clone()));
    collect(&mut rx, 1).await;
    common::wait_until("three polls", || fake.lock().unwrap().requests.len() >= 3).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(counters.snapshot().emitted, 1);
    assert!(counters.snapshot().duplicates >= 2);
}
