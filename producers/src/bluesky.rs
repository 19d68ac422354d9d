//! Bluesky Jetstream (<https://github.com/bluesky-social/jetstream>): a public
//! WebSocket that re-publishes the AT Protocol firehose as JSON.
//!
//! Connects to `<base>/subscribe?wantedCollections=app.bsky.feed.post` and
//! reads events such as
//! `{"did","time_us","kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey","record":{"text","createdAt","langs"}}}`.
//! New posts become tweets (`source: "bluesky"`); everything else (deletes,
//! updates, `identity` and `account` events) is counted as ignored.
//!
//! On a drop it reconnects with back-off and `cursor=<time_us of the last
//! event>`, so Jetstream replays from where it left off; posts already
//! emitted (the cursor event itself) are dropped by id.
//!
//! Handles are not part of post events. `user.screen_name` is the author's
//! handle when an `identity` event named it during this run, else the DID.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt as _;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::normalize::{RecentSet, Tweet, User, rfc3339, rfc3339_from_micros};
use crate::{Backoff, Counters, Emitter, Error, excerpt, sleep_or_cancel};

/// The real service (one of Bluesky's public Jetstream instances).
pub const DEFAULT_BASE_URL: &str = "wss://jetstream2.us-east.bsky.network";
const SERVICE: &str = "bluesky";
const COLLECTION: &str = "app.bsky.feed.post";

/// Jetstream settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `ws://` or `wss://` scheme and host, e.g. [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// Start from this `time_us` (replay) instead of live.
    pub cursor: Option<i64>,
    /// Keep only posts whose `langs` include one of these (empty: all).
    pub langs: Vec<String>,
    /// Reconnect back-off.
    pub backoff: Backoff,
    /// A connection silent this long is reconnected.
    pub stall_timeout: Duration,
    /// Post ids remembered to drop replays after a reconnect.
    pub dedupe_capacity: usize,
}

impl Config {
    /// Live tail of [`DEFAULT_BASE_URL`], back-off 1 s doubling to 60 s,
    /// 60 s stall timeout.
    pub fn new() -> Config {
        Config {
            base_url: DEFAULT_BASE_URL.to_owned(),
            cursor: None,
            langs: Vec::new(),
            backoff: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60)),
            stall_timeout: Duration::from_secs(60),
            dedupe_capacity: 100_000,
        }
    }

    /// The subscribe URL, resuming from `cursor` if set.
    pub fn subscribe_url(&self, cursor: Option<i64>) -> String {
        let mut url = format!(
            "{}/subscribe?wantedCollections={COLLECTION}",
            self.base_url.trim_end_matches('/')
        );
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        url
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

#[derive(Deserialize)]
struct Event {
    did: String,
    time_us: i64,
    kind: String,
    commit: Option<Commit>,
    identity: Option<Identity>,
}

#[derive(Deserialize)]
struct Commit {
    operation: String,
    collection: String,
    rkey: String,
    record: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Identity {
    handle: Option<String>,
}

#[derive(Deserialize)]
struct PostRecord {
    text: String,
    #[serde(rename = "createdAt")]
    created_at: Option<String>,
    #[serde(default)]
    langs: Vec<String>,
}

/// State that survives reconnects.
struct State {
    cursor: Option<i64>,
    seen: RecentSet,
    handles: HashMap<String, String>,
}

/// Streams posts until shut down, reconnecting with the cursor.
pub async fn run(
    mut config: Config,
    out: Emitter,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if !(config.base_url.starts_with("ws://") || config.base_url.starts_with("wss://")) {
        return Err(Error::Config(format!(
            "bluesky: base URL must be ws:// or wss://, not {}",
            config.base_url
        )));
    }
    let mut state = State {
        cursor: config.cursor,
        seen: RecentSet::new(config.dedupe_capacity),
        handles: HashMap::new(),
    };
    let mut first = true;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if !first {
            Counters::add(&out.counters().reconnects);
        }
        first = false;
        let url = config.subscribe_url(state.cursor);
        let connected = tokio::select! {
            c = tokio_tungstenite::connect_async(url.as_str()) => c,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let ws = match connected {
            Ok((ws, _response)) => ws,
            Err(e) => {
                if let tokio_tungstenite::tungstenite::Error::Http(resp) = &e
                    && resp.status() == 429
                {
                    Counters::add(&out.counters().rate_limited);
                }
                let delay = config.backoff.next_delay();
                tracing::warn!(?delay, "bluesky: connect to {url} failed: {e}; retrying");
                if !sleep_or_cancel(delay, &shutdown).await {
                    return Ok(());
                }
                continue;
            }
        };
        let why = read(ws, &mut config, &out, &shutdown, &mut state).await?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let delay = config.backoff.next_delay();
        tracing::warn!(?delay, cursor = ?state.cursor, "bluesky: disconnected ({why}); reconnecting");
        if !sleep_or_cancel(delay, &shutdown).await {
            return Ok(());
        }
    }
}

async fn read<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    config: &mut Config,
    out: &Emitter,
    shutdown: &CancellationToken,
    state: &mut State,
) -> Result<String, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(config.stall_timeout, ws.next()) => n,
            _ = shutdown.cancelled() => {
                let _ = ws.close(None).await;
                return Ok("shutdown".into());
            }
        };
        let message = match next {
            Err(_) => return Ok(format!("nothing received for {:?}", config.stall_timeout)),
            Ok(None) => return Ok("connection closed".into()),
            Ok(Some(Err(e))) => return Ok(format!("read error: {e}")),
            Ok(Some(Ok(m))) => m,
        };
        let text = match message {
            Message::Text(t) => t,
            Message::Binary(_) => {
                // Only sent when zstd compression was requested, which we don't.
                out.skip("malformed", "bluesky: unexpected binary frame");
                continue;
            }
            Message::Close(frame) => return Ok(format!("closed by server: {frame:?}")),
            // Pings are answered by tungstenite on the next read.
            _ => continue,
        };
        // Something arrived: the connection is healthy again.
        config.backoff.reset();
        handle(text.as_str(), config, out, state).await?;
    }
}

async fn handle(
    text: &str,
    config: &Config,
    out: &Emitter,
    state: &mut State,
) -> Result<(), Error> {
    let event: Event = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => {
            out.skip(
                "malformed",
                format!("bluesky event ({e}): {}", excerpt(text, 120)),
            );
            return Ok(());
        }
    };
    state.cursor = Some(state.cursor.map_or(event.time_us, |c| c.max(event.time_us)));
    match event.kind.as_str() {
        "commit" => {}
        "identity" => {
            if let Some(handle) = event.identity.and_then(|i| i.handle) {
                if state.handles.len() >= 100_000 {
                    state.handles.clear();
                }
                state.handles.insert(event.did, handle);
            }
            out.ignore("identity");
            return Ok(());
        }
        other => {
            out.ignore(other);
            return Ok(());
        }
    }
    let Some(commit) = event.commit else {
        out.skip(
            "malformed",
            format!(
                "bluesky commit event without commit: {}",
                excerpt(text, 120)
            ),
        );
        return Ok(());
    };
    if commit.collection != COLLECTION {
        out.ignore("other_collection");
        return Ok(());
    }
    if commit.operation != "create" {
        out.ignore(&commit.operation);
        return Ok(());
    }
    let record: PostRecord = match commit.record.map(serde_json::from_value) {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            out.skip("malformed", format!("bluesky post record: {e}"));
            return Ok(());
        }
        None => {
            out.skip("malformed", "bluesky create without record");
            return Ok(());
        }
    };
    if !config.langs.is_empty() && !record.langs.iter().any(|l| config.langs.contains(l)) {
        out.ignore("lang_filtered");
        return Ok(());
    }
    // createdAt is client-supplied; fall back to Jetstream's own time.
    let Some(created_at) = record
        .created_at
        .as_deref()
        .and_then(rfc3339)
        .or_else(|| rfc3339_from_micros(event.time_us))
    else {
        out.skip(
            "bad_timestamp",
            format!(
                "bluesky post {}/{} without a usable time",
                event.did, commit.rkey
            ),
        );
        return Ok(());
    };
    let id = format!("at://{}/{COLLECTION}/{}", event.did, commit.rkey);
    if !state.seen.insert(&id) {
        Counters::add(&out.counters().duplicates);
        return Ok(());
    }
    let tweet = Tweet {
        url: Some(format!(
            "https://bsky.app/profile/{}/post/{}",
            event.did, commit.rkey
        )),
        id,
        text: record.text,
        created_at,
        lang: record.langs.into_iter().next(),
        user: User {
            screen_name: state
                .handles
                .get(&event.did)
                .cloned()
                .unwrap_or_else(|| event.did.clone()),
            id: event.did,
            followers_count: None,
        },
        source: SERVICE.to_owned(),
        retweet_count: None,
        like_count: None,
    };
    out.emit(&tweet.id, &tweet).await
}
