//! The input schema of `docs/schema.md` as Rust types, and the helpers every
//! source shares: news ids, RFC 3339 timestamps, a bounded "seen" set.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A record of the `tweets` topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tweet {
    /// The post's id at its source.
    pub id: String,
    /// Post text, raw (HTML for Mastodon; `text-clean` strips it).
    pub text: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Language as the source reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Author.
    pub user: User,
    /// `x`, `bluesky`, `mastodon`, `sample`, `replay`.
    pub source: String,
    /// Link to the post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Reposts at ingest time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retweet_count: Option<u64>,
    /// Likes at ingest time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like_count: Option<u64>,
}

/// A tweet's author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Author id at the source.
    pub id: String,
    /// Handle.
    pub screen_name: String,
    /// Followers at ingest time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers_count: Option<u64>,
}

/// A record of the `news` topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct News {
    /// [`news_id`] of `url`.
    pub id: String,
    /// Headline.
    pub title: String,
    /// Standfirst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Body excerpt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Article URL.
    pub url: String,
    /// The publication.
    pub source: NewsSource,
    /// Byline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// RFC 3339, UTC.
    pub published_at: String,
    /// `newsapi`, `rss`, `sample`, `replay`.
    pub feed: String,
}

/// The publication of a news item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewsSource {
    /// The source's own id for the publication, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Publication name.
    pub name: String,
}

/// The stable id of a news item: the first 32 hex characters of the
/// SHA-256 of its URL.
pub fn news_id(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    hex::encode(&digest[..16])
}

/// Parses an RFC 3339 (or, failing that, RFC 2822) timestamp and formats it
/// as RFC 3339 in UTC (`2026-11-19T12:26:47Z`, fractional seconds kept
/// when present). `None` if it is neither.
pub fn rfc3339(s: &str) -> Option<String> {
    parse_timestamp(s).map(format_utc)
}

/// Parses an RFC 3339 or, failing that, an RFC 2822 timestamp (surrounding
/// whitespace ignored) into UTC.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let parsed = DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_rfc2822(s))
        .ok()?;
    Some(parsed.with_timezone(&Utc))
}

/// Formats a UTC time as RFC 3339 (`Z`, fractional seconds only if any).
pub fn format_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 of a Unix time in microseconds.
pub fn rfc3339_from_micros(micros: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_micros(micros).map(format_utc)
}

/// `Some(trimmed)` unless the string is missing or blank.
pub fn non_blank(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A bounded set of recently seen keys (URLs, ids). When full, the oldest
/// insertion is forgotten, so memory stays flat on an endless stream.
#[derive(Debug)]
pub struct RecentSet {
    capacity: usize,
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentSet {
    /// A set remembering at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> RecentSet {
        let capacity = capacity.max(1);
        RecentSet {
            capacity,
            set: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// Records `key`; `true` if it was not in the set (first sighting).
    pub fn insert(&mut self, key: &str) -> bool {
        if self.set.contains(key) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(key.to_owned());
        self.order.push_back(key.to_owned());
        true
    }

    /// Whether `key` is remembered.
    pub fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_id_is_32_hex_of_sha256() {
        // sha256("https://example.com/a") = 3a1e4b0f...; check shape and determinism.
        let id = news_id("https://example.com/a");
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(id, news_id("https://example.com/a"));
        assert_ne!(id, news_id("https://example.com/b"));
        // Known vector: sha256("abc").
        assert_eq!(news_id("abc"), "ba7816bf8f01cfea414140de5dae2223");
    }

    #[test]
    fn timestamps_normalise_to_utc_rfc3339() {
        assert_eq!(
            rfc3339("2024-05-01T12:00:00Z").unwrap(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            rfc3339("2024-05-01T14:00:00+02:00").unwrap(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            rfc3339("2024-05-01T12:00:00.123Z").unwrap(),
            "2024-05-01T12:00:00.123Z"
        );
        assert_eq!(
            rfc3339("Wed, 01 May 2024 12:00:00 GMT").unwrap(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(rfc3339("yesterday"), None);
        assert_eq!(rfc3339(""), None);
        assert_eq!(
            rfc3339_from_micros(1_725_911_162_329_308).unwrap(),
            "2024-09-09T19:46:02.329308Z"
        );
    }

    #[test]
    fn recent_set_forgets_oldest_when_full() {
        let mut s = RecentSet::new(2);
        assert!(s.insert("a"));
        assert!(!s.insert("a"));
        assert!(s.insert("b"));
        assert!(s.insert("c"));
        assert!(!s.contains("a"));
        assert!(s.contains("b") && s.contains("c"));
        assert_eq!(s.len(), 2);
        assert!(s.insert("a"));
    }

    #[test]
    fn optional_fields_are_omitted() {
        let t = Tweet {
            id: "1".into(),
            text: "hi".into(),
            created_at: "2024-05-01T12:00:00Z".into(),
            lang: None,
            user: User {
                id: "u".into(),
                screen_name: "s".into(),
                followers_count: None,
            },
            source: "x".into(),
            url: None,
            retweet_count: None,
            like_count: None,
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"id":"1","text":"hi","created_at":"2024-05-01T12:00:00Z","user":{"id":"u","screen_name":"s"},"source":"x"}"#
        );
    }
}
