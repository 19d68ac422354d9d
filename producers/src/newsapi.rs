//! NewsAPI (<https://newsapi.org/docs>): polls `/v2/top-headlines` or
//! `/v2/everything`, follows pages, and emits each article once (dedupe by
//! URL across polls, bounded).
//!
//! Response: `{"status":"ok","totalResults":n,"articles":[{"source":{"id","name"},
//! "author","title","description","url","urlToImage","publishedAt","content"}]}`;
//! errors: `{"status":"error","code":"rateLimited|apiKeyInvalid|...","message"}`.
//!
//! - `rateLimited` (HTTP 429) and `apiKeyExhausted`: back off (doubling) and
//!   retry the same request.
//! - `apiKeyInvalid`, `apiKeyMissing`, `apiKeyDisabled` (HTTP 401): [`Error::Auth`].
//! - `parameterInvalid`, `parametersMissing`, `sourcesTooMany`,
//!   `sourceDoesNotExist`: [`Error::Rejected`].
//! - `maximumResultsReached` (the free plan's 100-result cap): stop paging
//!   for this poll.
//! - network errors, 5xx, `unexpectedError`: back off and retry.

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::normalize::{News, NewsSource, RecentSet, news_id, non_blank, rfc3339};
use crate::{Backoff, Counters, Emitter, Error, excerpt, sleep_or_cancel};

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://newsapi.org";
/// Environment variable holding the API key.
pub const KEY_ENV: &str = "NEWSAPI_KEY";
const SERVICE: &str = "newsapi";

/// Which endpoint to poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/top-headlines`: needs one of `q`, `country`, `category`, `sources`.
    TopHeadlines,
    /// `/v2/everything`: needs one of `q`, `sources`, `domains`.
    Everything,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::TopHeadlines => "/v2/top-headlines",
            Endpoint::Everything => "/v2/everything",
        }
    }
}

/// What to poll and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Scheme and host, e.g. [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// Sent as the `X-Api-Key` header.
    pub api_key: String,
    /// Endpoint polled.
    pub endpoint: Endpoint,
    /// Query parameters (`q`, `country`, `category`, `sources`, `domains`,
    /// `language`, `sortBy`, `from`, ...), passed as given.
    pub params: Vec<(String, String)>,
    /// `pageSize` (NewsAPI's maximum is 100).
    pub page_size: u32,
    /// Pages fetched per poll at most.
    pub max_pages: u32,
    /// Pause between polls.
    pub interval: Duration,
    /// Stop after this many polls (`None`: until shut down).
    pub max_polls: Option<u64>,
    /// Back-off after `rateLimited` / 429.
    pub rate_limit_backoff: Backoff,
    /// Back-off after network errors and 5xx.
    pub error_backoff: Backoff,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// URLs remembered for dedupe.
    pub dedupe_capacity: usize,
}

impl Config {
    /// Defaults suited to the free "Developer" plan (100 requests a day):
    /// one page of 100 every 15 minutes; rate-limit back-off from 1 minute
    /// doubling to 1 hour; error back-off 5 s doubling to 5 minutes.
    pub fn new(
        api_key: impl Into<String>,
        endpoint: Endpoint,
        params: Vec<(String, String)>,
    ) -> Config {
        Config {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: api_key.into(),
            endpoint,
            params,
            page_size: 100,
            max_pages: 1,
            interval: Duration::from_secs(15 * 60),
            max_polls: None,
            rate_limit_backoff: Backoff::exponential(
                Duration::from_secs(60),
                Duration::from_secs(3600),
            ),
            error_backoff: Backoff::exponential(Duration::from_secs(5), Duration::from_secs(300)),
            request_timeout: Duration::from_secs(30),
            dedupe_capacity: 100_000,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.api_key.trim().is_empty() {
            return Err(Error::Config(format!(
                "newsapi: no API key (set {KEY_ENV})"
            )));
        }
        let has = |k: &str| self.params.iter().any(|(p, v)| p == k && !v.is_empty());
        let ok = match self.endpoint {
            Endpoint::TopHeadlines => ["q", "country", "category", "sources"]
                .iter()
                .any(|k| has(k)),
            Endpoint::Everything => ["q", "qInTitle", "sources", "domains"]
                .iter()
                .any(|k| has(k)),
        };
        if !ok {
            return Err(Error::Config(match self.endpoint {
                Endpoint::TopHeadlines => {
                    "newsapi top-headlines needs one of q, country, category, sources".into()
                }
                Endpoint::Everything => {
                    "newsapi everything needs one of q, qInTitle, sources, domains".into()
                }
            }));
        }
        if (has("country") || has("category")) && has("sources") {
            return Err(Error::Config(
                "newsapi: sources cannot be combined with country or category".into(),
            ));
        }
        if !(1..=100).contains(&self.page_size) {
            return Err(Error::Config("newsapi: page size must be 1..=100".into()));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: Option<String>,
    code: Option<String>,
    message: Option<String>,
    #[serde(rename = "totalResults")]
    total_results: Option<u64>,
    articles: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Article {
    source: Option<ArticleSource>,
    author: Option<String>,
    title: Option<String>,
    description: Option<String>,
    url: Option<String>,
    #[serde(rename = "publishedAt")]
    published_at: Option<String>,
    content: Option<String>,
}

#[derive(Deserialize)]
struct ArticleSource {
    id: Option<String>,
    name: Option<String>,
}

/// Result of one page request.
enum Page {
    Articles {
        articles: Vec<serde_json::Value>,
        total: u64,
    },
    /// `maximumResultsReached`: no further pages on this plan.
    End,
}

/// Polls until shut down (or `max_polls`), emitting news records.
pub async fn run(
    mut config: Config,
    out: Emitter,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    config.validate()?;
    let client = crate::http_client()?;
    let mut seen = RecentSet::new(config.dedupe_capacity);
    let mut polls = 0u64;
    loop {
        for page in 1..=config.max_pages.max(1) {
            let Some(result) = fetch(&client, &mut config, page, &out, &shutdown).await? else {
                return Ok(()); // shut down while waiting
            };
            let (articles, total) = match result {
                Page::Articles { articles, total } => (articles, total),
                Page::End => break,
            };
            let n = articles.len() as u64;
            for raw in articles {
                if let Some(news) = normalise(raw, &out) {
                    if seen.insert(&news.url) {
                        out.emit(&news.id, &news).await?;
                    } else {
                        Counters::add(&out.counters().duplicates);
                    }
                }
            }
            if n == 0 || u64::from(page) * u64::from(config.page_size) >= total {
                break;
            }
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

/// Fetches one page, retrying rate limits and transient errors.
/// `Ok(None)`: shut down while backing off.
async fn fetch(
    client: &reqwest::Client,
    config: &mut Config,
    page: u32,
    out: &Emitter,
    shutdown: &CancellationToken,
) -> Result<Option<Page>, Error> {
    let url = format!(
        "{}{}",
        config.base_url.trim_end_matches('/'),
        config.endpoint.path()
    );
    loop {
        if shutdown.is_cancelled() {
            return Ok(None);
        }
        let mut query = config.params.clone();
        query.push(("pageSize".into(), config.page_size.to_string()));
        query.push(("page".into(), page.to_string()));
        let sent = client
            .get(&url)
            .header("X-Api-Key", &config.api_key)
            .query(&query)
            .timeout(config.request_timeout)
            .send()
            .await;
        let (status, body) = match sent {
            Ok(resp) => {
                let status = resp.status();
                match resp.text().await {
                    Ok(body) => (status, body),
                    Err(e) => {
                        retry_after_error(
                            config,
                            out,
                            format!("reading the response: {e}"),
                            shutdown,
                        )
                        .await;
                        continue;
                    }
                }
            }
            Err(e) => {
                retry_after_error(config, out, format!("request failed: {e}"), shutdown).await;
                continue;
            }
        };
        let envelope: Option<Envelope> = serde_json::from_str(&body).ok();
        let code = envelope
            .as_ref()
            .and_then(|e| e.code.clone())
            .unwrap_or_default();
        let message = envelope
            .as_ref()
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| excerpt(&body, 300));
        let is_error = !status.is_success()
            || envelope.as_ref().and_then(|e| e.status.as_deref()) == Some("error");
        if !is_error {
            let Some(envelope) = envelope else {
                retry_after_error(
                    config,
                    out,
                    format!("unparseable response: {}", excerpt(&body, 200)),
                    shutdown,
                )
                .await;
                continue;
            };
            config.rate_limit_backoff.reset();
            config.error_backoff.reset();
            let articles = envelope.articles.unwrap_or_default();
            let total = envelope.total_results.unwrap_or(articles.len() as u64);
            return Ok(Some(Page::Articles { articles, total }));
        }
        let what = if code.is_empty() {
            format!("HTTP {status}: {message}")
        } else {
            format!("HTTP {status}, {code}: {message}")
        };
        match (status.as_u16(), code.as_str()) {
            (_, "apiKeyInvalid" | "apiKeyMissing" | "apiKeyDisabled") | (401, _) => {
                return Err(Error::Auth {
                    service: SERVICE,
                    message: format!("{what} (check {KEY_ENV})"),
                });
            }
            (_, "rateLimited" | "apiKeyExhausted") | (429, _) => {
                Counters::add(&out.counters().rate_limited);
                let delay = config.rate_limit_backoff.next_delay();
                tracing::warn!(?delay, "newsapi rate limited ({what}); backing off");
                if !sleep_or_cancel(delay, shutdown).await {
                    return Ok(None);
                }
            }
            (_, "maximumResultsReached") => return Ok(Some(Page::End)),
            (_, "unexpectedError") | (500..=599, _) => {
                retry_after_error(config, out, what, shutdown).await;
            }
            _ => {
                return Err(Error::Rejected {
                    service: SERVICE,
                    message: what,
                });
            }
        }
    }
}

async fn retry_after_error(
    config: &mut Config,
    out: &Emitter,
    what: String,
    shutdown: &CancellationToken,
) {
    Counters::add(&out.counters().retries);
    let delay = config.error_backoff.next_delay();
    tracing::warn!(?delay, "newsapi: {what}; retrying");
    sleep_or_cancel(delay, shutdown).await;
}

/// One NewsAPI article as a news record; `None` (counted) if unusable.
fn normalise(raw: serde_json::Value, out: &Emitter) -> Option<News> {
    let article: Article = match serde_json::from_value(raw) {
        Ok(a) => a,
        Err(e) => {
            out.skip("malformed", format!("newsapi article: {e}"));
            return None;
        }
    };
    let Some(url) = non_blank(article.url.as_deref()) else {
        out.skip("missing_url", "newsapi article without url");
        return None;
    };
    let Some(title) = non_blank(article.title.as_deref()) else {
        out.skip(
            "missing_title",
            format!("newsapi article without title: {url}"),
        );
        return None;
    };
    // NewsAPI keeps taken-down articles as placeholders.
    if title == "[Removed]" || url == "https://removed.com" {
        out.ignore("removed");
        return None;
    }
    let Some(published_at) = article.published_at.as_deref().and_then(rfc3339) else {
        out.skip(
            "bad_timestamp",
            format!("newsapi article without a valid publishedAt: {url}"),
        );
        return None;
    };
    let source = article.source.unwrap_or(ArticleSource {
        id: None,
        name: None,
    });
    let Some(name) = non_blank(source.name.as_deref()) else {
        out.skip(
            "missing_source",
            format!("newsapi article without source.name: {url}"),
        );
        return None;
    };
    Some(News {
        id: news_id(&url),
        title,
        description: non_blank(article.description.as_deref()),
        content: non_blank(article.content.as_deref()),
        url,
        source: NewsSource {
            id: non_blank(source.id.as_deref()),
            name,
        },
        author: non_blank(article.author.as_deref()),
        published_at,
        feed: SERVICE.to_owned(),
    })
}
