//! RSS/Atom source against a local server serving RSS 2.0 and Atom
//! documents with ETag / Last-Modified validators.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{drain, json, serve};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use weir_producers::normalize::news_id;
use weir_producers::rss::{self, Config};
use weir_producers::{Backoff, Emitter, Record, Snapshot};

/// One answer of a feed.
#[derive(Clone)]
enum Answer {
    /// 200 with this body, ETag and Last-Modified; 304 if the request's
    /// validators match.
    Doc {
        body: String,
        etag: String,
        last_modified: String,
    },
    Status(StatusCode, Option<&'static str>),
}

#[derive(Default)]
struct Fake {
    /// Per feed name: answers in order (the last repeats).
    feeds: std::collections::HashMap<String, Vec<Answer>>,
    /// (feed, If-None-Match, If-Modified-Since, status sent)
    requests: Vec<(String, Option<String>, Option<String>, u16)>,
}

type Shared = Arc<Mutex<Fake>>;

async fn handler(
    State(fake): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fake = fake.lock().unwrap();
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (inm, ims) = (h("if-none-match"), h("if-modified-since"));
    let answers = fake.feeds.get_mut(&name).expect("known feed");
    let answer = if answers.len() > 1 {
        answers.remove(0)
    } else {
        answers[0].clone()
    };
    let (status, resp) = match answer {
        Answer::Doc { etag, .. } if inm.as_deref() == Some(etag.as_str()) => {
            (304, StatusCode::NOT_MODIFIED.into_response())
        }
        Answer::Doc {
            body,
            etag,
            last_modified,
        } => (
            200,
            (
                [
                    ("content-type", "application/rss+xml; charset=utf-8"),
                    ("etag", etag.as_str()),
                    ("last-modified", last_modified.as_str()),
                ],
                body,
            )
                .into_response(),
        ),
        Answer::Status(s, retry_after) => {
            let mut r = s.into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            (s.as_u16(), r)
        }
    };
    fake.requests.push((name, inm, ims, status));
    resp
}

async fn start(feeds: Vec<(&str, Vec<Answer>)>) -> (String, Shared) {
    let fake = Arc::new(Mutex::new(Fake {
        feeds: feeds.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        requests: Vec::new(),
    }));
    let app = Router::new()
        .route("/feeds/{name}", get(handler))
        .with_state(fake.clone());
    (serve(app).await, fake)
}

fn config(feeds: Vec<String>) -> Config {
    let mut c = Config::new(feeds);
    c.interval = Duration::from_millis(10);
    c.backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(50));
    c.max_polls = Some(1);
    c
}

async fn run(c: Config) -> (Vec<Record>, Snapshot) {
    let (emitter, mut rx, counters) = Emitter::channel(100);
    let task = tokio::spawn(rss::run(c, emitter, CancellationToken::new()));
    let records = drain(&mut rx).await;
    task.await.unwrap().unwrap();
    (records, counters.snapshot())
}

fn rss_doc(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(slug, title)| {
            format!(
                "<item><title>{title}</title><link>https://news.example/{slug}</link>\
                 <description>About {title}.</description>\
                 <author>desk@news.example (News Desk)</author>\
                 <pubDate>Wed, 01 May 2024 12:00:00 +0200</pubDate>\
                 <guid>https://news.example/{slug}</guid></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Example News</title><link>https://news.example/</link><description>All the news</description>\
         {items}</channel></rss>"
    )
}

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom Weekly</title>
  <id>urn:uuid:60a76c80-d399-11d9-b91C-0003939e0af6</id>
  <updated>2024-05-02T09:00:00Z</updated>
  <entry>
    <title>Atom entry one</title>
    <link rel="alternate" href="https://atom.example/2024/05/one"/>
    <link rel="enclosure" href="https://atom.example/one.mp3"/>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <published>2024-05-02T08:00:00Z</published>
    <updated>2024-05-02T09:00:00Z</updated>
    <summary>Short summary.</summary>
    <content type="html">&lt;p&gt;Full &lt;b&gt;content&lt;/b&gt;.&lt;/p&gt;</content>
    <author><name>Jane Doe</name></author>
  </entry>
  <entry>
    <title>Atom entry without a date</title>
    <link href="https://atom.example/2024/05/two"/>
    <id>urn:uuid:2</id>
  </entry>
</feed>"#;

fn doc(body: String, etag: &str) -> Answer {
    Answer::Doc {
        body,
        etag: etag.to_owned(),
        last_modified: "Wed, 01 May 2024 10:00:00 GMT".to_owned(),
    }
}

#[tokio::test]
async fn rss_and_atom_entries_are_normalised() {
    let (base, _) = start(vec![
        (
            "rss",
            vec![doc(rss_doc(&[("a", "Rates held steady")]), "\"r1\"")],
        ),
        ("atom", vec![doc(ATOM.to_owned(), "\"a1\"")]),
    ])
    .await;
    let (records, counters) = run(config(vec![
        format!("{base}/feeds/rss"),
        format!("{base}/feeds/atom"),
    ]))
    .await;
    assert_eq!(records.len(), 3, "{counters}");
    let url = "https://news.example/a";
    assert_eq!(records[0].key.as_deref(), Some(news_id(url).as_str()));
    assert_eq!(
        json(&records[0]),
        json!({
            "id": news_id(url),
            "title": "Rates held steady",
            "description": "About Rates held steady.",
            "url": url,
            "source": {"name": "Example News"},
            "author": "News Desk",
            "published_at": "2024-05-01T10:00:00Z",
            "feed": "rss"
        })
    );
    let one = "https://atom.example/2024/05/one";
    assert_eq!(
        json(&records[1]),
        json!({
            "id": news_id(one),
            "title": "Atom entry one",
            "description": "Short summary.",
            "content": "<p>Full <b>content</b>.</p>",
            "url": one,
            "source": {"name": "Atom Weekly"},
            "author": "Jane Doe",
            "published_at": "2024-05-02T08:00:00Z",
            "feed": "rss"
        })
    );
    // Undated entries get the time they were first seen: a valid RFC 3339 time.
    let two = json(&records[2]);
    assert_eq!(two["url"], "https://atom.example/2024/05/two");
    assert!(weir_producers::normalize::rfc3339(two["published_at"].as_str().unwrap()).is_some());
}

#[tokio::test]
async fn polls_are_conditional_and_links_deduped() {
    let (base, fake) = start(vec![(
        "rss",
        vec![
            doc(rss_doc(&[("a", "First"), ("b", "Second")]), "\"v1\""),
            // Same validators: the server answers 304.
            doc(rss_doc(&[("a", "First"), ("b", "Second")]), "\"v1\""),
            // Changed: one new item on top of the old ones.
            doc(
                rss_doc(&[("c", "Third"), ("a", "First"), ("b", "Second")]),
                "\"v2\"",
            ),
        ],
    )])
    .await;
    let mut c = config(vec![format!("{base}/feeds/rss")]);
    c.max_polls = Some(3);
    let (records, counters) = run(c).await;
    let titles: Vec<String> = records
        .iter()
        .map(|r| json(r)["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["First", "Second", "Third"]);
    assert_eq!(counters.not_modified, 1);
    assert_eq!(counters.duplicates, 2);
    let requests = fake.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        (requests[0].1.clone(), requests[0].2.clone(), requests[0].3),
        (None, None, 200)
    );
    let lm = Some("Wed, 01 May 2024 10:00:00 GMT".to_owned());
    assert_eq!(
        (requests[1].1.clone(), requests[1].2.clone(), requests[1].3),
        (Some("\"v1\"".into()), lm.clone(), 304)
    );
    assert_eq!(
        (requests[2].1.clone(), requests[2].2.clone(), requests[2].3),
        (Some("\"v1\"".into()), lm, 200)
    );
}

#[tokio::test]
async fn rate_limited_feeds_are_retried_after_retry_after() {
    let (base, fake) = start(vec![(
        "rss",
        vec![
            Answer::Status(StatusCode::TOO_MANY_REQUESTS, Some("0")),
            Answer::Status(StatusCode::SERVICE_UNAVAILABLE, None),
            doc(rss_doc(&[("a", "Finally")]), "\"x\""),
        ],
    )])
    .await;
    let (records, counters) = run(config(vec![format!("{base}/feeds/rss")])).await;
    assert_eq!(records.len(), 1);
    assert_eq!(counters.rate_limited, 1);
    assert_eq!(counters.retries, 2);
    let statuses: Vec<u16> = fake.lock().unwrap().requests.iter().map(|r| r.3).collect();
    assert_eq!(statuses, [429, 503, 200]);
}

#[tokio::test]
async fn a_feed_that_keeps_failing_is_given_up_until_the_next_poll() {
    let (base, fake) = start(vec![
        (
            "down",
            vec![Answer::Status(StatusCode::TOO_MANY_REQUESTS, None)],
        ),
        ("ok", vec![doc(rss_doc(&[("a", "Still here")]), "\"x\"")]),
    ])
    .await;
    let mut c = config(vec![
        format!("{base}/feeds/down"),
        format!("{base}/feeds/ok"),
    ]);
    c.max_retries = 2;
    let (records, counters) = run(c).await;
    assert_eq!(records.len(), 1);
    assert_eq!(counters.skipped("feed_unavailable"), 1);
    assert_eq!(counters.rate_limited, 3);
    assert_eq!(
        fake.lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.0 == "down")
            .count(),
        3
    );
}

#[tokio::test]
async fn malformed_entries_and_feeds_are_skipped_others_continue() {
    let broken_items = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Mixed</title>\
        <item><title>No link here</title><description>x</description></item>\
        <item><link>https://mixed.example/no-title</link></item>\
        <item><title>Good one</title><link>https://mixed.example/good</link><pubDate>not a date</pubDate></item>\
        </channel></rss>";
    let (base, _) = start(vec![
        (
            "garbage",
            vec![doc("<html><body>Not a feed".to_owned(), "\"g\"")],
        ),
        ("mixed", vec![doc(broken_items.to_owned(), "\"m\"")]),
        (
            "locked",
            vec![Answer::Status(StatusCode::UNAUTHORIZED, None)],
        ),
        ("gone", vec![Answer::Status(StatusCode::NOT_FOUND, None)]),
    ])
    .await;
    let feeds = ["garbage", "mixed", "locked", "gone"]
        .iter()
        .map(|f| format!("{base}/feeds/{f}"))
        .collect();
    let (records, counters) = run(config(feeds)).await;
    let titles: Vec<String> = records
        .iter()
        .map(|r| json(r)["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Good one"], "{counters}");
    assert_eq!(counters.skipped("unparseable_feed"), 1);
    assert_eq!(counters.skipped("missing_url"), 1);
    assert_eq!(counters.skipped("missing_title"), 1);
    assert_eq!(counters.skipped("feed_unauthorized"), 1);
    assert_eq!(counters.skipped("feed_error"), 1);
}

#[tokio::test]
async fn bad_configuration_fails_fast() {
    let (emitter, _rx, _) = Emitter::channel(1);
    let err = rss::run(config(vec![]), emitter.clone(), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no feeds"), "{err}");
    let err = rss::run(
        config(vec!["not a url".into()]),
        emitter,
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not a URL"), "{err}");
}
