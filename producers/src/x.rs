//! X API v2 filtered stream (<https://docs.x.com/x-api/posts/filtered-stream/introduction>).
//!
//! 1. Rules: `GET /2/tweets/search/stream/rules`, then `POST` the same path
//!    with `{"delete":{"ids":[...]}}` for rules not configured and
//!    `{"add":[{"value","tag"}]}` for configured rules missing, so the
//!    app's rules end up exactly the configured ones. With no rules
//!    configured, the app's rules are left alone.
//! 2. Stream: `GET /2/tweets/search/stream?tweet.fields=created_at,lang,public_metrics,author_id&expansions=author_id&user.fields=username,public_metrics`,
//!    newline-delimited JSON `{"data":{...},"includes":{"users":[...]},"matching_rules":[...]}`
//!    with a blank keep-alive line every 20 s.
//!
//! Reconnects follow X's "handling disconnections" guide: after an
//! established stream drops, reconnect at once; then back off linearly
//! (+250 ms up to 16 s) for network errors, exponentially (5 s doubling to
//! 320 s) for HTTP errors, and exponentially from 1 minute for 429. A stream
//! silent for longer than the stall timeout (default 30 s: the 20 s
//! keep-alive plus slack) counts as dropped. 401 and 403 (bad token, or an
//! access tier without the filtered stream) end the source with
//! [`Error::Auth`].

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::normalize::{RecentSet, Tweet, User, non_blank, rfc3339};
use crate::{Backoff, Counters, Emitter, Error, excerpt, sleep_or_cancel};

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://api.x.com";
/// Environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "X_BEARER_TOKEN";
const SERVICE: &str = "x";
const RULES_PATH: &str = "/2/tweets/search/stream/rules";
const STREAM_PATH: &str = "/2/tweets/search/stream";
const STREAM_QUERY: &str = "tweet.fields=created_at,lang,public_metrics,author_id&expansions=author_id&user.fields=username,public_metrics";

/// Filtered-stream settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Scheme and host, e.g. [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// App-only bearer token.
    pub bearer_token: String,
    /// Rule values (X's rule syntax, e.g. `climate lang:en -is:retweet`).
    /// Empty: keep the app's existing rules.
    pub rules: Vec<String>,
    /// Tag given to the rules this producer adds.
    pub rule_tag: String,
    /// A stream silent (no post, no keep-alive) this long is reconnected.
    pub stall_timeout: Duration,
    /// Back-off after network errors (linear).
    pub network_backoff: Backoff,
    /// Back-off after HTTP errors (exponential).
    pub http_backoff: Backoff,
    /// Back-off after 429 (exponential).
    pub rate_limit_backoff: Backoff,
    /// Post ids remembered to drop repeats across reconnects.
    pub dedupe_capacity: usize,
}

impl Config {
    /// X's documented reconnect schedule, a 30 s stall timeout, tag `weir`.
    pub fn new(bearer_token: impl Into<String>, rules: Vec<String>) -> Config {
        Config {
            base_url: DEFAULT_BASE_URL.to_owned(),
            bearer_token: bearer_token.into(),
            rules,
            rule_tag: "weir".to_owned(),
            stall_timeout: Duration::from_secs(30),
            network_backoff: Backoff::linear(Duration::from_millis(250), Duration::from_secs(16)),
            http_backoff: Backoff::exponential(Duration::from_secs(5), Duration::from_secs(320)),
            rate_limit_backoff: Backoff::exponential(
                Duration::from_secs(60),
                Duration::from_secs(960),
            ),
            dedupe_capacity: 100_000,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.trim_end_matches('/'))
    }
}

/// A rule as the rules endpoint lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Rule {
    /// Rule id.
    pub id: String,
    /// Rule text.
    pub value: String,
    /// Optional tag.
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Deserialize)]
struct RulesList {
    #[serde(default)]
    data: Vec<Rule>,
}

/// Makes the app's rules exactly `config.rules` (no-op when empty).
/// Returns the rules in force afterwards.
pub async fn sync_rules(
    client: &reqwest::Client,
    config: &mut Config,
    out: &Emitter,
    shutdown: &CancellationToken,
) -> Result<Vec<Rule>, Error> {
    let existing: RulesList = serde_json::from_value(
        request_json(client, config, reqwest::Method::GET, None, out, shutdown).await?,
    )
    .map_err(|e| Error::Rejected {
        service: SERVICE,
        message: format!("unexpected rules listing: {e}"),
    })?;
    if config.rules.is_empty() {
        return Ok(existing.data);
    }
    let stale: Vec<&str> = existing
        .data
        .iter()
        .filter(|r| !config.rules.contains(&r.value))
        .map(|r| r.id.as_str())
        .collect();
    if !stale.is_empty() {
        let body = json!({ "delete": { "ids": stale } });
        let answer = request_json(
            client,
            config,
            reqwest::Method::POST,
            Some(body),
            out,
            shutdown,
        )
        .await?;
        check_rule_errors(&answer)?;
        tracing::info!(deleted = stale.len(), "x: deleted rules not configured");
    }
    let missing: Vec<serde_json::Value> = config
        .rules
        .iter()
        .filter(|v| !existing.data.iter().any(|r| &r.value == *v))
        .map(|v| json!({ "value": v, "tag": config.rule_tag }))
        .collect();
    if !missing.is_empty() {
        let body = json!({ "add": missing });
        let answer = request_json(
            client,
            config,
            reqwest::Method::POST,
            Some(body),
            out,
            shutdown,
        )
        .await?;
        check_rule_errors(&answer)?;
        tracing::info!(added = missing.len(), "x: added configured rules");
    }
    let after: RulesList = serde_json::from_value(
        request_json(client, config, reqwest::Method::GET, None, out, shutdown).await?,
    )
    .map_err(|e| Error::Rejected {
        service: SERVICE,
        message: format!("unexpected rules listing: {e}"),
    })?;
    Ok(after.data)
}

/// Invalid or duplicate rules come back as `errors` (with `meta.summary.invalid`).
fn check_rule_errors(answer: &serde_json::Value) -> Result<(), Error> {
    let invalid = answer
        .pointer("/meta/summary/invalid")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let errors: Vec<String> = answer
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|errs| {
            errs.iter()
                // A rule that already exists is not a problem.
                .filter(|e| e.get("title").and_then(|t| t.as_str()) != Some("DuplicateRule"))
                .map(|e| {
                    let title = e.get("title").and_then(|t| t.as_str()).unwrap_or("error");
                    let value = e.get("value").and_then(|t| t.as_str()).unwrap_or("");
                    let detail = e
                        .get("details")
                        .or_else(|| e.get("detail"))
                        .map(|d| d.to_string())
                        .unwrap_or_default();
                    format!("{title} {value:?} {detail}")
                })
                .collect()
        })
        .unwrap_or_default();
    if !errors.is_empty() || (invalid > 0 && answer.get("errors").is_none()) {
        return Err(Error::Rejected {
            service: SERVICE,
            message: format!("rules not accepted: {}", errors.join("; ")),
        });
    }
    Ok(())
}

/// A rules-endpoint request with 429 / 5xx / network retries.
async fn request_json(
    client: &reqwest::Client,
    config: &mut Config,
    method: reqwest::Method,
    body: Option<serde_json::Value>,
    out: &Emitter,
    shutdown: &CancellationToken,
) -> Result<serde_json::Value, Error> {
    let url = config.url(RULES_PATH);
    loop {
        if shutdown.is_cancelled() {
            return Err(Error::Other(anyhow::anyhow!(
                "x: shut down while managing rules"
            )));
        }
        let mut req = client
            .request(method.clone(), &url)
            .bearer_auth(&config.bearer_token)
            .timeout(Duration::from_secs(30));
        if let Some(body) = &body {
            req = req.json(body);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                Counters::add(&out.counters().retries);
                let delay = config.network_backoff.next_delay();
                tracing::warn!(?delay, "x rules: request failed: {e}; retrying");
                sleep_or_cancel(delay, shutdown).await;
                continue;
            }
        };
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        match status.as_u16() {
            200..=299 => {
                config.network_backoff.reset();
                config.http_backoff.reset();
                config.rate_limit_backoff.reset();
                return serde_json::from_str(&text).map_err(|e| Error::Rejected {
                    service: SERVICE,
                    message: format!(
                        "rules endpoint answered non-JSON ({e}): {}",
                        excerpt(&text, 200)
                    ),
                });
            }
            401 | 403 => return Err(auth_error(status, &text)),
            429 => {
                Counters::add(&out.counters().rate_limited);
                let delay = config.rate_limit_backoff.next_delay();
                tracing::warn!(?delay, "x rules: rate limited (429); backing off");
                sleep_or_cancel(delay, shutdown).await;
            }
            500..=599 => {
                Counters::add(&out.counters().retries);
                let delay = config.http_backoff.next_delay();
                tracing::warn!(?delay, %status, "x rules: server error; retrying");
                sleep_or_cancel(delay, shutdown).await;
            }
            _ => {
                return Err(Error::Rejected {
                    service: SERVICE,
                    message: format!("rules endpoint: HTTP {status}: {}", excerpt(&text, 300)),
                });
            }
        }
    }
}

fn auth_error(status: reqwest::StatusCode, body: &str) -> Error {
    let hint = if status.as_u16() == 403 {
        " (a 403 usually means the app's access tier does not include the filtered stream, \
         or the app is not attached to a project)"
    } else {
        ""
    };
    Error::Auth {
        service: SERVICE,
        message: format!(
            "HTTP {status}: {}{hint} (check {TOKEN_ENV})",
            excerpt(body, 300)
        ),
    }
}

#[derive(Deserialize)]
struct StreamLine {
    data: Option<serde_json::Value>,
    #[serde(default)]
    includes: Includes,
    errors: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize, Default)]
struct Includes {
    #[serde(default)]
    users: Vec<XUser>,
}

#[derive(Deserialize)]
struct XUser {
    id: String,
    username: Option<String>,
    public_metrics: Option<UserMetrics>,
}

#[derive(Deserialize)]
struct UserMetrics {
    followers_count: Option<u64>,
}

#[derive(Deserialize)]
struct XPost {
    id: String,
    text: String,
    created_at: Option<String>,
    lang: Option<String>,
    author_id: Option<String>,
    public_metrics: Option<PostMetrics>,
}

#[derive(Deserialize)]
struct PostMetrics {
    retweet_count: Option<u64>,
    like_count: Option<u64>,
}

/// Syncs rules, then streams until shut down, reconnecting as X documents.
pub async fn run(
    mut config: Config,
    out: Emitter,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if config.bearer_token.trim().is_empty() {
        return Err(Error::Config(format!(
            "x: no bearer token (set {TOKEN_ENV})"
        )));
    }
    let client = crate::http_client()?;
    match sync_rules(&client, &mut config, &out, &shutdown).await {
        Ok(rules) => {
            if rules.is_empty() {
                tracing::warn!("x: the app has no stream rules; the stream will deliver nothing");
            }
        }
        Err(_) if shutdown.is_cancelled() => return Ok(()),
        Err(e) => return Err(e),
    }
    let url = format!("{}?{STREAM_QUERY}", config.url(STREAM_PATH));
    let mut seen = RecentSet::new(config.dedupe_capacity);
    let mut first = true;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if !first {
            Counters::add(&out.counters().reconnects);
        }
        first = false;
        let sent = tokio::select! {
            r = client.get(&url).bearer_auth(&config.bearer_token).send() => r,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let delay = config.network_backoff.next_delay();
                tracing::warn!(?delay, "x stream: connect failed: {e}; reconnecting");
                if !sleep_or_cancel(delay, &shutdown).await {
                    return Ok(());
                }
                continue;
            }
        };
        let status = resp.status();
        match status.as_u16() {
            200 => {}
            401 | 403 => {
                let body = resp.text().await.unwrap_or_default();
                return Err(auth_error(status, &body));
            }
            429 => {
                Counters::add(&out.counters().rate_limited);
                let body = resp.text().await.unwrap_or_default();
                let delay = config.rate_limit_backoff.next_delay();
                tracing::warn!(
                    ?delay,
                    "x stream: 429 ({}); backing off",
                    excerpt(&body, 200)
                );
                if !sleep_or_cancel(delay, &shutdown).await {
                    return Ok(());
                }
                continue;
            }
            400..=499 => {
                let body = resp.text().await.unwrap_or_default();
                return Err(Error::Rejected {
                    service: SERVICE,
                    message: format!("stream: HTTP {status}: {}", excerpt(&body, 300)),
                });
            }
            _ => {
                let delay = config.http_backoff.next_delay();
                tracing::warn!(?delay, %status, "x stream: HTTP error; reconnecting");
                if !sleep_or_cancel(delay, &shutdown).await {
                    return Ok(());
                }
                continue;
            }
        }
        // Connected.
        config.network_backoff.reset();
        config.http_backoff.reset();
        config.rate_limit_backoff.reset();
        // The first reconnect after a drop is immediate (linear back-off
        // starts at 0); failures after it grow.
        let why = read_stream(resp, &config, &out, &shutdown, &mut seen).await?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        tracing::warn!("x stream: disconnected ({why}); reconnecting");
        let delay = config.network_backoff.next_delay();
        if !sleep_or_cancel(delay, &shutdown).await {
            return Ok(());
        }
    }
}

/// Reads one connection until it ends; returns why it ended.
async fn read_stream(
    resp: reqwest::Response,
    config: &Config,
    out: &Emitter,
    shutdown: &CancellationToken,
    seen: &mut RecentSet,
) -> Result<String, Error> {
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(config.stall_timeout, body.next()) => n,
            _ = shutdown.cancelled() => return Ok("shutdown".into()),
        };
        let chunk = match next {
            Err(_) => {
                return Ok(format!(
                    "no data or keep-alive for {:?}",
                    config.stall_timeout
                ));
            }
            Ok(None) => return Ok("stream ended".into()),
            Ok(Some(Err(e))) => return Ok(format!("read error: {e}")),
            Ok(Some(Ok(chunk))) => chunk,
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if line.is_empty() {
                continue; // keep-alive
            }
            handle_line(line, out, seen).await?;
        }
    }
}

async fn handle_line(line: &str, out: &Emitter, seen: &mut RecentSet) -> Result<(), Error> {
    let parsed: StreamLine = match serde_json::from_str(line) {
        Ok(p) => p,
        Err(e) => {
            out.skip(
                "malformed",
                format!("x stream line is not JSON ({e}): {}", excerpt(line, 120)),
            );
            return Ok(());
        }
    };
    let Some(data) = parsed.data else {
        match parsed.errors {
            // E.g. operational-disconnect: the server closes the stream next.
            Some(errors) => tracing::warn!(
                "x stream error: {}",
                excerpt(&serde_json::Value::from(errors).to_string(), 300)
            ),
            None => out.skip(
                "malformed",
                format!("x stream line without data: {}", excerpt(line, 120)),
            ),
        }
        return Ok(());
    };
    let users: HashMap<&str, &XUser> = parsed
        .includes
        .users
        .iter()
        .map(|u| (u.id.as_str(), u))
        .collect();
    match normalise(data, &users) {
        Ok(tweet) => {
            if seen.insert(&tweet.id) {
                out.emit(&tweet.id, &tweet).await?;
            } else {
                Counters::add(&out.counters().duplicates);
            }
        }
        Err((reason, detail)) => out.skip(reason, detail),
    }
    Ok(())
}

fn normalise(
    data: serde_json::Value,
    users: &HashMap<&str, &XUser>,
) -> Result<Tweet, (&'static str, String)> {
    let post: XPost =
        serde_json::from_value(data).map_err(|e| ("malformed", format!("x post: {e}")))?;
    let created_at = post.created_at.as_deref().and_then(rfc3339).ok_or((
        "bad_timestamp",
        format!("x post {} without a valid created_at", post.id),
    ))?;
    let author_id = non_blank(post.author_id.as_deref()).ok_or((
        "missing_author",
        format!("x post {} without author_id", post.id),
    ))?;
    let user = users.get(author_id.as_str());
    let username = user.and_then(|u| non_blank(u.username.as_deref()));
    let url = match &username {
        Some(name) => format!("https://x.com/{name}/status/{}", post.id),
        None => format!("https://x.com/i/web/status/{}", post.id),
    };
    let metrics = post.public_metrics;
    Ok(Tweet {
        text: post.text,
        created_at,
        lang: non_blank(post.lang.as_deref()),
        user: User {
            // Without the expansion (an author X did not include), the id
            // stands in for the handle.
            screen_name: username.unwrap_or_else(|| author_id.clone()),
            id: author_id,
            followers_count: user
                .and_then(|u| u.public_metrics.as_ref())
                .and_then(|m| m.followers_count),
        },
        source: SERVICE.to_owned(),
        url: Some(url),
        retweet_count: metrics.as_ref().and_then(|m| m.retweet_count),
        like_count: metrics.as_ref().and_then(|m| m.like_count),
        id: post.id,
    })
}
