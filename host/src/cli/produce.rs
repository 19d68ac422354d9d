//! `weir produce`: feed Kafka from a source. Each subcommand wraps one
//! source of the `weir-producers` crate: `jsonl` replays a file of JSON
//! lines (demos, load tests, dead letters); `newsapi`, `x`, `bluesky`,
//! `mastodon` and `rss` normalise live sources into the schema of
//! `docs/schema.md`. Records are keyed by their id.
//!
//! Secrets come only from the environment (`NEWSAPI_KEY`, `X_BEARER_TOKEN`,
//! `MASTODON_TOKEN`), never from flags, so they stay out of process lists
//! and shell history.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_producers::{
    Counters, Emitter, Error, SinkConfig, bluesky, mastodon, newsapi, parse_duration, replay, rss,
    x,
};

#[derive(clap::Args)]
pub struct ProduceArgs {
    #[command(subcommand)]
    source: Source,
}

#[derive(clap::Subcommand)]
enum Source {
    /// Replay a JSON-lines file onto a topic, keyed by a field.
    Jsonl(JsonlArgs),
    /// Poll NewsAPI (top headlines or everything) onto the news topic.
    #[command(
        after_help = "Environment:\n  NEWSAPI_KEY  NewsAPI key (required; sent as the X-Api-Key header)"
    )]
    Newsapi(NewsapiArgs),
    /// Stream X (Twitter) API v2 filtered-stream posts onto the tweets topic.
    #[command(
        after_help = "Environment:\n  X_BEARER_TOKEN  app-only bearer token (required; the filtered stream needs an \
                      X API access tier that includes it)"
    )]
    X(XArgs),
    /// Stream new Bluesky posts from a public Jetstream onto the tweets topic.
    Bluesky(BlueskyArgs),
    /// Stream a Mastodon server's public or hashtag timeline onto the tweets topic.
    #[command(
        after_help = "Environment:\n  MASTODON_TOKEN  user access token, required for the public and local \
                      timelines (Mastodon 4.2+): Preferences > Development > New application, \
                      scope read, copy \"Your access token\"; hashtag streams work without"
    )]
    Mastodon(MastodonArgs),
    /// Poll RSS / Atom feeds onto the news topic.
    Rss(RssArgs),
}

/// Kafka settings shared by every subcommand.
#[derive(clap::Args)]
struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "WEIR_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// librdkafka `linger.ms`: how long to wait to fill a batch.
    #[arg(long, default_value_t = 10)]
    linger_ms: u32,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(clap::Args)]
struct JsonlArgs {
    /// File to replay (`-` for stdin).
    #[arg(long)]
    file: PathBuf,
    /// Kafka topic.
    #[arg(long)]
    topic: String,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Top-level JSON field whose value becomes the record key (partitioning).
    #[arg(long, default_value = "id")]
    key_field: String,
    /// Replay the file this many times.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Skip lines that are not JSON objects (by default they are sent as
    /// they are, without a key, and counted).
    #[arg(long)]
    skip_invalid: bool,
    /// Shift every record's timestamps (`created_at`, `published_at`) by
    /// one offset so the newest is now, keeping their spacing: replayed
    /// samples land in dashboards' recent time ranges. Lines without a
    /// readable timestamp are sent unchanged (and counted as skipped).
    #[arg(long)]
    retime: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum NewsEndpoint {
    /// /v2/top-headlines (needs --query, --country, --category or --sources)
    TopHeadlines,
    /// /v2/everything (needs --query, --sources or --domains)
    Everything,
}

#[derive(clap::Args)]
struct NewsapiArgs {
    /// Kafka topic.
    #[arg(long, default_value = "news")]
    topic: String,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Service base URL (a mirror or a test server instead of the real one).
    #[arg(long, default_value = newsapi::DEFAULT_BASE_URL)]
    base_url: String,
    #[arg(long, value_enum, default_value = "top-headlines")]
    endpoint: NewsEndpoint,
    /// Search terms (`q`).
    #[arg(long, short)]
    query: Option<String>,
    /// 2-letter country code (top-headlines).
    #[arg(long)]
    country: Option<String>,
    /// business, entertainment, general, health, science, sports, technology (top-headlines).
    #[arg(long)]
    category: Option<String>,
    /// Comma-separated source ids.
    #[arg(long)]
    sources: Option<String>,
    /// Comma-separated domains (everything).
    #[arg(long)]
    domains: Option<String>,
    /// 2-letter language code (everything).
    #[arg(long)]
    language: Option<String>,
    /// relevancy, popularity or publishedAt (everything).
    #[arg(long)]
    sort_by: Option<String>,
    /// Any other query parameter, as KEY=VALUE (repeatable).
    #[arg(long = "param", value_parser = parse_key_value)]
    params: Vec<(String, String)>,
    /// Articles per page (1-100).
    #[arg(long, default_value_t = 100)]
    page_size: u32,
    /// Pages per poll (the free plan stops at 100 results).
    #[arg(long, default_value_t = 1)]
    max_pages: u32,
    /// Pause between polls (the free plan allows 100 requests a day).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    interval: Duration,
    /// Poll once and exit.
    #[arg(long)]
    once: bool,
}

#[derive(clap::Args)]
struct XArgs {
    /// Kafka topic.
    #[arg(long, default_value = "tweets")]
    topic: String,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Service base URL (a mirror or a test server instead of the real one).
    #[arg(long, default_value = x::DEFAULT_BASE_URL)]
    base_url: String,
    /// A filtered-stream rule (repeatable), e.g. 'climate lang:en -is:retweet'.
    /// The app's rules are made exactly these (others are deleted); with no
    /// --rule the app's existing rules are used as they are.
    #[arg(long = "rule", visible_alias = "query")]
    rules: Vec<String>,
    /// Tag given to the rules added.
    #[arg(long, default_value = "weir")]
    rule_tag: String,
    /// Reconnect when nothing (not even the 20 s keep-alive) arrives for this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    stall_timeout: Duration,
}

#[derive(clap::Args)]
struct BlueskyArgs {
    /// Kafka topic.
    #[arg(long, default_value = "tweets")]
    topic: String,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Jetstream instance (ws:// or wss://).
    #[arg(long, default_value = bluesky::DEFAULT_BASE_URL)]
    base_url: String,
    /// Start from this Jetstream cursor (Unix microseconds) instead of live.
    #[arg(long)]
    cursor: Option<i64>,
    /// Keep only posts tagged with one of these languages (repeatable), e.g. en.
    #[arg(long = "lang")]
    langs: Vec<String>,
}

#[derive(clap::Args)]
struct MastodonArgs {
    /// Kafka topic.
    #[arg(long, default_value = "tweets")]
    topic: String,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The server (or its streaming host).
    #[arg(long, default_value = mastodon::DEFAULT_BASE_URL)]
    base_url: String,
    /// Stream this hashtag instead of the public timeline.
    #[arg(long)]
    hashtag: Option<String>,
    /// Only posts from the server's own users.
    #[arg(long)]
    local: bool,
}

#[derive(clap::Args)]
struct RssArgs {
    /// Kafka topic.
    #[arg(long, default_value = "news")]
    topic: String,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Feed URL (repeatable); a path is resolved against --base-url.
    #[arg(long = "feed", required = true)]
    feeds: Vec<String>,
    /// Base for feed paths (RSS has no single service, so no default).
    #[arg(long)]
    base_url: Option<String>,
    /// Pause between polls.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    interval: Duration,
    /// Poll once and exit.
    #[arg(long)]
    once: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let s = shutdown.clone();
    match args.source {
        Source::Jsonl(a) => {
            let mut config = replay::Config::new(replay::read_input(&a.file)?);
            config.rate = a.rate;
            config.key_field = a.key_field;
            config.repeat = a.repeat;
            config.skip_invalid = a.skip_invalid;
            if a.retime {
                config.retime_to_now();
            }
            produce(&a.topic, &a.kafka, shutdown, |out| {
                replay::run(config, out, s)
            })
            .await
        }
        Source::Newsapi(a) => {
            let key = secret(newsapi::KEY_ENV).ok_or_else(|| {
                anyhow::anyhow!("newsapi: set {} to your NewsAPI key", newsapi::KEY_ENV)
            })?;
            let mut params: Vec<(String, String)> = [
                ("q", a.query),
                ("country", a.country),
                ("category", a.category),
                ("sources", a.sources),
                ("domains", a.domains),
                ("language", a.language),
                ("sortBy", a.sort_by),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect();
            params.extend(a.params);
            let endpoint = match a.endpoint {
                NewsEndpoint::TopHeadlines => newsapi::Endpoint::TopHeadlines,
                NewsEndpoint::Everything => newsapi::Endpoint::Everything,
            };
            let mut config = newsapi::Config::new(key, endpoint, params);
            config.base_url = a.base_url;
            config.page_size = a.page_size;
            config.max_pages = a.max_pages;
            config.interval = a.interval;
            config.max_polls = a.once.then_some(1);
            produce(&a.topic, &a.kafka, shutdown, |out| {
                newsapi::run(config, out, s)
            })
            .await
        }
        Source::X(a) => {
            let token = secret(x::TOKEN_ENV).ok_or_else(|| {
                anyhow::anyhow!("x: set {} to your app's bearer token", x::TOKEN_ENV)
            })?;
            let mut config = x::Config::new(token, a.rules);
            config.base_url = a.base_url;
            config.rule_tag = a.rule_tag;
            config.stall_timeout = a.stall_timeout;
            produce(&a.topic, &a.kafka, shutdown, |out| x::run(config, out, s)).await
        }
        Source::Bluesky(a) => {
            let mut config = bluesky::Config::new();
            config.base_url = a.base_url;
            config.cursor = a.cursor;
            config.langs = a.langs;
            produce(&a.topic, &a.kafka, shutdown, |out| {
                bluesky::run(config, out, s)
            })
            .await
        }
        Source::Mastodon(a) => {
            let mut config = mastodon::Config::new();
            config.base_url = a.base_url;
            config.access_token = secret(mastodon::TOKEN_ENV);
            config.hashtag = a.hashtag;
            config.local = a.local;
            produce(&a.topic, &a.kafka, shutdown, |out| {
                mastodon::run(config, out, s)
            })
            .await
        }
        Source::Rss(a) => {
            let feeds = a
                .feeds
                .iter()
                .map(|f| resolve_feed(a.base_url.as_deref(), f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut config = rss::Config::new(feeds);
            config.interval = a.interval;
            config.max_polls = a.once.then_some(1);
            produce(&a.topic, &a.kafka, shutdown, |out| rss::run(config, out, s)).await
        }
    }
}

fn resolve_feed(base: Option<&str>, feed: &str) -> anyhow::Result<String> {
    if is_absolute_url(feed) {
        return Ok(feed.to_owned());
    }
    match base {
        Some(base) => Ok(format!(
            "{}/{}",
            base.trim_end_matches('/'),
            feed.trim_start_matches('/')
        )),
        None => anyhow::bail!("rss: feed {feed:?} is not a URL (give a full URL or --base-url)"),
    }
}

fn is_absolute_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

async fn produce<F, Fut>(
    topic: &str,
    kafka: &KafkaArgs,
    shutdown: CancellationToken,
    source: F,
) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Emitter) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut sink = SinkConfig::new(&kafka.brokers, topic);
    sink.linger_ms = kafka.linger_ms;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let result =
        weir_producers::produce(sink, counters.clone(), kafka.limit, shutdown, source).await;
    let snapshot = counters.snapshot();
    eprintln!(
        "produced {} records to {topic} in {:.1}s ({snapshot})",
        snapshot.produced,
        started.elapsed().as_secs_f64()
    );
    result?;
    Ok(ExitCode::SUCCESS)
}

/// First SIGTERM/SIGINT: stop the source and deliver what is queued.
/// Second: exit at once.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            count += 1;
            if count == 1 {
                eprintln!("stopping: delivering queued records (signal again to exit at once)");
                shutdown.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{parse_key_value, resolve_feed};

    #[test]
    fn key_value_params() {
        assert_eq!(
            parse_key_value("from=2024-05-01").unwrap(),
            ("from".into(), "2024-05-01".into())
        );
        assert_eq!(
            parse_key_value("q=a=b").unwrap(),
            ("q".into(), "a=b".into())
        );
        assert!(parse_key_value("nope").is_err());
    }

    #[test]
    fn feed_paths_resolve_against_the_base() {
        assert_eq!(
            resolve_feed(None, "https://a.example/rss").unwrap(),
            "https://a.example/rss"
        );
        assert_eq!(
            resolve_feed(Some("http://127.0.0.1:8080/"), "/feeds/x.xml").unwrap(),
            "http://127.0.0.1:8080/feeds/x.xml"
        );
        assert!(resolve_feed(None, "feeds/x.xml").is_err());
    }
}
