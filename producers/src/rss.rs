//! RSS 2.0 / RSS 1.0 / Atom feeds, parsed with `feed-rs`, polled with
//! conditional GETs (`If-None-Match` from the last `ETag`,
//! `If-Modified-Since` from the last `Last-Modified`; 304 means nothing
//! new). Entries become news records with `feed: "rss"` and
//! `source.name` = the feed's title; each link is emitted once (dedupe by
//! link across polls, bounded).
//!
//! One feed's trouble never stops the others: 429/503 are retried after
//! `Retry-After` (or back-off) a few times per poll, other errors (401,
//! 404, unparseable XML) are counted and the feed is tried again next poll.
//!
//! An entry without a date gets the time it was first seen.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::normalize::{News, NewsSource, RecentSet, format_utc, news_id, non_blank};
use crate::{Backoff, Counters, Emitter, Error, sleep_or_cancel};

const SERVICE: &str = "rss";

/// Feed polling settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Feed URLs.
    pub feeds: Vec<String>,
    /// Pause between polls.
    pub interval: Duration,
    /// Stop after this many polls (`None`: until shut down).
    pub max_polls: Option<u64>,
    /// Retries of one feed per poll after 429 / 5xx / network errors.
    pub max_retries: u32,
    /// Back-off between those retries (when no `Retry-After` is given).
    pub backoff: Backoff,
    /// Longest `Retry-After` honoured within a poll.
    pub max_retry_after: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Links remembered for dedupe.
    pub dedupe_capacity: usize,
}

impl Config {
    /// Poll every 10 minutes; 3 retries per poll, back-off 2 s doubling.
    pub fn new(feeds: Vec<String>) -> Config {
        Config {
            feeds,
            interval: Duration::from_secs(600),
            max_polls: None,
            max_retries: 3,
            backoff: Backoff::exponential(Duration::from_secs(2), Duration::from_secs(60)),
            max_retry_after: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            dedupe_capacity: 100_000,
        }
    }
}

/// Validators remembered per feed for conditional GETs.
#[derive(Default, Clone, Debug)]
struct FeedState {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Polls every feed until shut down (or `max_polls`).
pub async fn run(config: Config, out: Emitter, shutdown: CancellationToken) -> Result<(), Error> {
    if config.feeds.is_empty() {
        return Err(Error::Config("rss: no feeds given".into()));
    }
    for feed in &config.feeds {
        if reqwest::Url::parse(feed).is_err() {
            return Err(Error::Config(format!("rss: not a URL: {feed}")));
        }
    }
    let client = crate::http_client()?;
    let mut states = vec![FeedState::default(); config.feeds.len()];
    let mut seen = RecentSet::new(config.dedupe_capacity);
    let mut polls = 0u64;
    loop {
        for (feed, state) in config.feeds.iter().zip(states.iter_mut()) {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let Some(body) = fetch(&client, &config, feed, state, &out, &shutdown).await else {
                continue;
            };
            let parsed = match feed_rs::parser::parse(body.as_ref()) {
                Ok(p) => p,
                Err(e) => {
                    out.skip("unparseable_feed", format!("rss {feed}: {e}"));
                    continue;
                }
            };
            emit_entries(feed, parsed, &out, &mut seen).await?;
        }
        polls += 1;
        if config.max_polls.is_some_and(|max| polls >= max) {
            return Ok(());
        }
        if !sleep_or_cancel(config.interval, &shutdown).await {
            return Ok(());
        }
    }
}

/// One conditional GET with retries; `None` when there is nothing to parse
/// (304, or an error already counted).
async fn fetch(
    client: &reqwest::Client,
    config: &Config,
    feed: &str,
    state: &mut FeedState,
    out: &Emitter,
    shutdown: &CancellationToken,
) -> Option<bytes::Bytes> {
    let mut backoff = config.backoff.clone();
    backoff.reset();
    for attempt in 0..=config.max_retries {
        if attempt > 0 {
            Counters::add(&out.counters().retries);
        }
        let mut req = client
            .get(feed)
            .timeout(config.request_timeout)
            .header(
                "Accept",
                "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5",
            );
        if let Some(etag) = &state.etag {
            req = req.header("If-None-Match", etag);
        }
        if let Some(lm) = &state.last_modified {
            req = req.header("If-Modified-Since", lm);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(?delay, "rss {feed}: request failed: {e}");
                if !sleep_or_cancel(delay, shutdown).await {
                    return None;
                }
                continue;
            }
        };
        let status = resp.status();
        match status.as_u16() {
            200..=299 => {
                let header = |name: &str| {
                    resp.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let (etag, last_modified) = (header("etag"), header("last-modified"));
                match resp.bytes().await {
                    Ok(body) => {
                        state.etag = etag;
                        state.last_modified = last_modified;
                        return Some(body);
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(?delay, "rss {feed}: reading the body failed: {e}");
                        if !sleep_or_cancel(delay, shutdown).await {
                            return None;
                        }
                    }
                }
            }
            304 => {
                Counters::add(&out.counters().not_modified);
                return None;
            }
            429 | 500..=599 => {
                if status.as_u16() == 429 {
                    Counters::add(&out.counters().rate_limited);
                }
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let delay = match retry_after {
                    Some(d) => d.min(config.max_retry_after),
                    None => backoff.next_delay(),
                };
                if attempt == config.max_retries {
                    break;
                }
                tracing::warn!(?delay, %status, "rss {feed}: backing off");
                if !sleep_or_cancel(delay, shutdown).await {
                    return None;
                }
            }
            401 | 403 => {
                out.skip(
                    "feed_unauthorized",
                    format!("rss {feed}: HTTP {status}: the feed needs credentials this producer does not send"),
                );
                return None;
            }
            _ => {
                out.skip("feed_error", format!("rss {feed}: HTTP {status}"));
                return None;
            }
        }
    }
    out.skip(
        "feed_unavailable",
        format!(
            "rss {feed}: still failing after {} retries; trying again next poll",
            config.max_retries
        ),
    );
    None
}

async fn emit_entries(
    feed_url: &str,
    feed: feed_rs::model::Feed,
    out: &Emitter,
    seen: &mut RecentSet,
) -> Result<(), Error> {
    let feed_title = feed
        .title
        .as_ref()
        .and_then(|t| non_blank(Some(&t.content)))
        .or_else(|| {
            reqwest::Url::parse(feed_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
        })
        .unwrap_or_else(|| feed_url.to_owned());
    for entry in feed.entries {
        // Prefer the alternate (HTML) link; Atom may list several.
        let link = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .or_else(|| entry.links.first())
            .map(|l| l.href.trim().to_owned())
            .filter(|h| !h.is_empty());
        let Some(url) = link else {
            out.skip(
                "missing_url",
                format!("rss {feed_url}: entry {:?} without a link", entry.id),
            );
            continue;
        };
        let Some(title) = entry
            .title
            .as_ref()
            .and_then(|t| non_blank(Some(&t.content)))
        else {
            out.skip(
                "missing_title",
                format!("rss {feed_url}: entry {url} without a title"),
            );
            continue;
        };
        if !seen.insert(&url) {
            Counters::add(&out.counters().duplicates);
            continue;
        }
        let published_at = format_utc(entry.published.or(entry.updated).unwrap_or_else(Utc::now));
        let description = entry
            .summary
            .as_ref()
            .and_then(|s| non_blank(Some(&s.content)));
        let content = entry
            .content
            .as_ref()
            .and_then(|c| non_blank(c.body.as_deref()));
        let author = entry
            .authors
            .first()
            .and_then(|a| non_blank(a.name.as_deref()).or_else(|| non_blank(a.email.as_deref())))
            // RSS 2.0 `<author>email (Name)</author>` leaves "(Name)".
            .map(
                |n| match n.strip_prefix('(').and_then(|n| n.strip_suffix(')')) {
                    Some(inner) if !inner.trim().is_empty() => inner.trim().to_owned(),
                    _ => n,
                },
            );
        let news = News {
            id: news_id(&url),
            title,
            description,
            content,
            url,
            source: NewsSource {
                id: None,
                name: feed_title.clone(),
            },
            author,
            published_at,
            feed: SERVICE.to_owned(),
        };
        out.emit(&news.id, &news).await?;
    }
    Ok(())
}
