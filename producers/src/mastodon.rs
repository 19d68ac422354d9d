//! Mastodon streaming API (<https://docs.joinmastodon.org/methods/streaming/>):
//! `GET /api/v1/streaming/public[/local]` or
//! `/api/v1/streaming/hashtag[/local]?tag=NAME`, Server-Sent Events where
//! `event: update` carries a Status as JSON in `data:`; `:thump` comments
//! are heartbeats. Other events (`delete`, `status.update`, ...) are
//! counted as ignored.
//!
//! The stream cannot resume: on a drop it reconnects with back-off (1 s
//! doubling to 60 s by default) and posts delivered during the gap are
//! missed. Statuses seen before a reconnect are dropped by id. Since
//! Mastodon 4.2 the public and local timelines stream only with a user
//! access token: without one the source fails before connecting, with
//! [`Error::Config`] saying how to get one ([`TOKEN_HELP`]). Hashtag
//! streams work without. 401 ends the source with [`Error::Auth`].

use std::time::Duration;

use futures::StreamExt as _;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::normalize::{RecentSet, Tweet, User, non_blank, rfc3339};
use crate::sse;
use crate::{Backoff, Counters, Emitter, Error, excerpt, sleep_or_cancel};

/// The real service (the flagship server; any Mastodon server works).
pub const DEFAULT_BASE_URL: &str = "https://mastodon.social";
/// Environment variable holding the user access token.
pub const TOKEN_ENV: &str = "MASTODON_TOKEN";
/// How to get a user access token.
pub const TOKEN_HELP: &str = "on your Mastodon server open Preferences > Development > \
     New application, give it the read scope, submit, open the application and copy \
     \"Your access token\" into the MASTODON_TOKEN environment variable";
const SERVICE: &str = "mastodon";

/// Streaming settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Scheme and host of the server (or of its streaming host).
    pub base_url: String,
    /// Sent as `Authorization: Bearer` when set.
    pub access_token: Option<String>,
    /// Stream this hashtag (without `#`) instead of the public timeline.
    pub hashtag: Option<String>,
    /// Only posts from the server's own users.
    pub local: bool,
    /// Reconnect back-off.
    pub backoff: Backoff,
    /// Back-off after 429.
    pub rate_limit_backoff: Backoff,
    /// A connection silent this long (no heartbeat either) is reconnected.
    pub stall_timeout: Duration,
    /// Status ids remembered to drop repeats across reconnects.
    pub dedupe_capacity: usize,
}

impl Config {
    /// Public federated timeline of [`DEFAULT_BASE_URL`]; set
    /// `access_token` (required for it since Mastodon 4.2).
    pub fn new() -> Config {
        Config {
            base_url: DEFAULT_BASE_URL.to_owned(),
            access_token: None,
            hashtag: None,
            local: false,
            backoff: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60)),
            rate_limit_backoff: Backoff::exponential(
                Duration::from_secs(60),
                Duration::from_secs(900),
            ),
            stall_timeout: Duration::from_secs(90),
            dedupe_capacity: 100_000,
        }
    }

    /// The stream URL for these settings.
    pub fn stream_url(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        let local = if self.local { "/local" } else { "" };
        match &self.hashtag {
            Some(tag) => {
                let tag = tag.trim_start_matches('#');
                let mut url =
                    reqwest::Url::parse(&format!("{base}/api/v1/streaming/hashtag{local}"))
                        .unwrap_or_else(|_| reqwest::Url::parse("http://invalid/").unwrap());
                url.query_pairs_mut().append_pair("tag", tag);
                url.to_string()
            }
            None => format!("{base}/api/v1/streaming/public{local}"),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

#[derive(Deserialize)]
struct Status {
    id: String,
    created_at: Option<String>,
    language: Option<String>,
    url: Option<String>,
    uri: Option<String>,
    content: Option<String>,
    account: Option<Account>,
    reblogs_count: Option<u64>,
    favourites_count: Option<u64>,
    reblog: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Account {
    id: String,
    acct: Option<String>,
    followers_count: Option<u64>,
}

/// Streams statuses until shut down, reconnecting with back-off.
pub async fn run(
    mut config: Config,
    out: Emitter,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if reqwest::Url::parse(&config.base_url).is_err() {
        return Err(Error::Config(format!(
            "mastodon: invalid base URL {}",
            config.base_url
        )));
    }
    let has_token = config
        .access_token
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty());
    if config.hashtag.is_none() && !has_token {
        let which = if config.local { "local" } else { "public" };
        return Err(Error::Config(format!(
            "mastodon: the {which} timeline streams only with a user access token (Mastodon 4.2 \
             and later): {TOKEN_HELP}"
        )));
    }
    let client = crate::http_client()?;
    let url = config.stream_url();
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
        let mut req = client.get(&url).header("Accept", "text/event-stream");
        if let Some(token) = config.access_token.as_deref().filter(|t| !t.is_empty()) {
            req = req.bearer_auth(token);
        }
        let sent = tokio::select! {
            r = req.send() => r,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let delay = config.backoff.next_delay();
                tracing::warn!(?delay, "mastodon: connect to {url} failed: {e}; retrying");
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
                return Err(Error::Auth {
                    service: SERVICE,
                    message: format!(
                        "HTTP {status}: {} (the token in {TOKEN_ENV} was refused; to get a user \
                         token: {TOKEN_HELP})",
                        excerpt(&body, 300)
                    ),
                });
            }
            429 => {
                Counters::add(&out.counters().rate_limited);
                let delay = config.rate_limit_backoff.next_delay();
                tracing::warn!(?delay, "mastodon: rate limited (429); backing off");
                if !sleep_or_cancel(delay, &shutdown).await {
                    return Ok(());
                }
                continue;
            }
            400..=499 => {
                let body = resp.text().await.unwrap_or_default();
                return Err(Error::Rejected {
                    service: SERVICE,
                    message: format!(
                        "{url}: HTTP {status}: {} (some servers serve streaming from a separate host: \
                         see configuration.urls.streaming in /api/v2/instance)",
                        excerpt(&body, 300)
                    ),
                });
            }
            _ => {
                let delay = config.backoff.next_delay();
                tracing::warn!(?delay, %status, "mastodon: HTTP error; retrying");
                if !sleep_or_cancel(delay, &shutdown).await {
                    return Ok(());
                }
                continue;
            }
        }
        config.backoff.reset();
        config.rate_limit_backoff.reset();
        let why = read(resp, &config, &out, &shutdown, &mut seen).await?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let delay = config.backoff.next_delay();
        tracing::warn!(?delay, "mastodon: disconnected ({why}); reconnecting");
        if !sleep_or_cancel(delay, &shutdown).await {
            return Ok(());
        }
    }
}

async fn read(
    resp: reqwest::Response,
    config: &Config,
    out: &Emitter,
    shutdown: &CancellationToken,
    seen: &mut RecentSet,
) -> Result<String, Error> {
    let mut body = resp.bytes_stream();
    let mut parser = sse::Parser::default();
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(config.stall_timeout, body.next()) => n,
            _ = shutdown.cancelled() => return Ok("shutdown".into()),
        };
        let chunk = match next {
            Err(_) => return Ok(format!("nothing received for {:?}", config.stall_timeout)),
            Ok(None) => return Ok("stream ended".into()),
            Ok(Some(Err(e))) => return Ok(format!("read error: {e}")),
            Ok(Some(Ok(c))) => c,
        };
        for event in parser.feed(&chunk) {
            if event.event != "update" {
                out.ignore(&event.event);
                continue;
            }
            match normalise(&event.data) {
                Ok(tweet) => {
                    if seen.insert(&tweet.id) {
                        out.emit(&tweet.id, &tweet).await?;
                    } else {
                        Counters::add(&out.counters().duplicates);
                    }
                }
                Err(Skip::Ignore(kind)) => out.ignore(kind),
                Err(Skip::Bad(reason, detail)) => out.skip(reason, detail),
            }
        }
    }
}

enum Skip {
    Ignore(&'static str),
    Bad(&'static str, String),
}

fn normalise(data: &str) -> Result<Tweet, Skip> {
    let status: Status = serde_json::from_str(data).map_err(|e| {
        Skip::Bad(
            "malformed",
            format!("mastodon status ({e}): {}", excerpt(data, 120)),
        )
    })?;
    if status.reblog.as_ref().is_some_and(|r| !r.is_null()) {
        // A boost: the original post is what matters, and it streams itself.
        return Err(Skip::Ignore("reblog"));
    }
    let created_at = status
        .created_at
        .as_deref()
        .and_then(rfc3339)
        .ok_or_else(|| {
            Skip::Bad(
                "bad_timestamp",
                format!("mastodon status {} without a valid created_at", status.id),
            )
        })?;
    let account = status.account.ok_or_else(|| {
        Skip::Bad(
            "missing_author",
            format!("mastodon status {} without account", status.id),
        )
    })?;
    let acct = non_blank(account.acct.as_deref()).ok_or_else(|| {
        Skip::Bad(
            "missing_author",
            format!("mastodon status {} without account.acct", status.id),
        )
    })?;
    Ok(Tweet {
        text: status.content.unwrap_or_default(),
        created_at,
        lang: non_blank(status.language.as_deref()),
        user: User {
            id: account.id,
            screen_name: acct,
            followers_count: account.followers_count,
        },
        source: SERVICE.to_owned(),
        url: non_blank(status.url.as_deref()).or_else(|| non_blank(status.uri.as_deref())),
        retweet_count: status.reblogs_count,
        like_count: status.favourites_count,
        id: status.id,
    })
}
