//! The index side of the status page: documents per index, the sentiment
//! distribution, the hate rate and the latest classified documents, from
//! one `_msearch` over the pipelines' indices, cached briefly so page
//! refreshes don't load the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::{Value, json};

use crate::sinks::elasticsearch::response::error_summary;

/// Fields the page reads (see `docs/schema.md`).
pub const SENTIMENT_FIELD: &str = "sentiment.label";
pub const HATE_FIELD: &str = "hate.label";
pub const INGESTED_FIELD: &str = "weir.ingested_at";
/// Hate labels that count as flagged.
pub const FLAGGED: [&str; 2] = ["hate", "offensive"];
/// The label a classifier gives when it could not classify.
pub const UNCLASSIFIED: &str = "unclassified";
/// Latest classified documents shown.
pub const LATEST: usize = 10;
/// Longest text shown for a latest item, in characters.
const TEXT_CHARS: usize = 240;

/// One index and the pipelines writing to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub index: String,
    pub pipelines: Vec<String>,
}

/// Label counts of one field.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Labels {
    /// Documents carrying the field.
    pub total: u64,
    pub labels: BTreeMap<String, u64>,
}

impl Labels {
    fn add(&mut self, other: &BTreeMap<String, u64>) {
        for (k, n) in other {
            *self.labels.entry(k.clone()).or_default() += n;
            self.total += n;
        }
    }
}

/// `hate.label` counts and the share flagged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hate {
    /// Documents carrying `hate.label`.
    pub total: u64,
    pub labels: BTreeMap<String, u64>,
    /// Labelled anything but `unclassified`.
    pub classified: u64,
    /// Labelled `hate` or `offensive`.
    pub flagged: u64,
    /// `flagged / classified`; absent while nothing is classified.
    pub rate: Option<f64>,
}

/// One index's numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexStats {
    pub index: String,
    pub pipelines: Vec<String>,
    /// Documents in the index (0 while it doesn't exist).
    pub documents: u64,
    pub sentiment: BTreeMap<String, u64>,
    pub hate: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A recently indexed, classified document.
#[derive(Debug, Clone, Serialize)]
pub struct Latest {
    pub index: String,
    pub pipeline: Option<String>,
    pub id: String,
    /// `weir.ingested_at`, else the document's own time field.
    pub at: Option<String>,
    /// `text` or `title`, shortened.
    pub text: String,
    /// `sentiment` or `hate`.
    pub kind: &'static str,
    pub label: String,
    pub score: Option<f64>,
    /// Who or what published it (`user.screen_name`, `source.name`).
    pub by: Option<String>,
    #[serde(skip)]
    sort: i64,
}

/// Everything the page shows from the indices.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexSide {
    pub fetched_at: Option<String>,
    pub took_ms: u64,
    /// The cluster did not answer: the numbers are the last good ones.
    pub stale: bool,
    pub per_index: Vec<IndexStats>,
    pub sentiment: Labels,
    pub hate: Hate,
    pub latest: Vec<Latest>,
    pub errors: Vec<String>,
}

struct Cached {
    at: Instant,
    targets: Vec<Target>,
    side: Arc<IndexSide>,
}

/// Queries the indices, at most once per `ttl`.
pub struct Indices {
    client: Elasticsearch,
    timeout: Duration,
    ttl: Duration,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl Indices {
    pub fn new(client: Elasticsearch, timeout: Duration, ttl: Duration) -> Self {
        Self {
            client,
            timeout,
            ttl,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The index side for `targets`, from the cache when it is fresh.
    /// Concurrent callers wait for one query instead of each sending one.
    pub async fn get(&self, targets: Vec<Target>) -> Arc<IndexSide> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && c.at.elapsed() < self.ttl
            && c.targets == targets
        {
            return Arc::clone(&c.side);
        }
        let started = Instant::now();
        let side = match self.query(&targets).await {
            Ok(mut side) => {
                side.took_ms = started.elapsed().as_millis() as u64;
                Arc::new(side)
            }
            Err(e) => {
                let mut side = cache
                    .as_ref()
                    .filter(|c| c.targets == targets)
                    .map(|c| (*c.side).clone())
                    .unwrap_or_default();
                side.stale = true;
                side.errors = vec![format!("querying the indices: {e}")];
                Arc::new(side)
            }
        };
        *cache = Some(Cached {
            at: Instant::now(),
            targets,
            side: Arc::clone(&side),
        });
        side
    }

    async fn query(&self, targets: &[Target]) -> Result<IndexSide, String> {
        if targets.is_empty() {
            return Ok(IndexSide {
                fetched_at: Some(now()),
                ..IndexSide::default()
            });
        }
        let body = msearch_body(targets);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        let resp = self
            .client
            .send::<String, ()>(
                Method::Post,
                "/_msearch",
                headers,
                None,
                Some(body),
                Some(self.timeout),
            )
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status_code().as_u16();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        if !(200..300).contains(&status) {
            return Err(format!("HTTP {status}: {}", error_summary(&bytes)));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("unreadable _msearch answer: {e}"))?;
        Ok(summarise(targets, &value))
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Searches per target, in order: count, label aggregations, latest.
pub const SEARCHES_PER_TARGET: usize = 3;

/// The `_msearch` NDJSON for `targets`.
pub fn msearch_body(targets: &[Target]) -> String {
    let mut out = String::new();
    for t in targets {
        let header = json!({ "index": t.index }).to_string();
        let searches = [
            json!({ "size": 0, "track_total_hits": true }),
            json!({
                "size": 0,
                "aggs": {
                    "sentiment": { "terms": { "field": SENTIMENT_FIELD, "size": 20 } },
                    "hate": { "terms": { "field": HATE_FIELD, "size": 20 } }
                }
            }),
            json!({
                "size": LATEST,
                "_source": ["text", "title", "sentiment.label", "sentiment.score", "hate.label", "hate.score",
                            INGESTED_FIELD, "created_at", "published_at", "user.screen_name", "source"],
                "query": { "bool": {
                    "should": [ { "exists": { "field": SENTIMENT_FIELD } }, { "exists": { "field": HATE_FIELD } } ],
                    "minimum_should_match": 1
                } },
                "sort": [
                    { INGESTED_FIELD: { "order": "desc", "unmapped_type": "date" } },
                    { "_doc": { "order": "desc" } }
                ]
            }),
        ];
        for s in searches {
            out.push_str(&header);
            out.push('\n');
            out.push_str(&s.to_string());
            out.push('\n');
        }
    }
    out
}

/// `None` for a missing index (counts as empty), `Some(reason)` otherwise.
fn response_error(r: &Value) -> Option<Option<String>> {
    let e = r.get("error")?;
    if e["type"] == "index_not_found_exception" {
        return Some(None);
    }
    let reason = e["root_cause"][0]["reason"]
        .as_str()
        .or_else(|| e["reason"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string());
    Some(Some(reason))
}

fn buckets(agg: &Value) -> BTreeMap<String, u64> {
    agg["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let key = match &b["key"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key, b["doc_count"].as_u64()?))
        })
        .collect()
}

fn shorten(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= TEXT_CHARS {
        return s;
    }
    let mut out: String = s.chars().take(TEXT_CHARS - 1).collect();
    out.push('…');
    out
}

fn latest_item(t: &Target, hit: &Value) -> Option<Latest> {
    let src = &hit["_source"];
    let (kind, field) = if src["sentiment"]["label"].is_string() {
        ("sentiment", &src["sentiment"])
    } else {
        ("hate", &src["hate"])
    };
    let label = field["label"].as_str()?.to_string();
    let text = src["text"]
        .as_str()
        .or_else(|| src["title"].as_str())
        .unwrap_or_default();
    let at = [
        &src["weir"]["ingested_at"],
        &src["created_at"],
        &src["published_at"],
    ]
    .into_iter()
    .find_map(|v| v.as_str())
    .map(str::to_string);
    let by = src["user"]["screen_name"]
        .as_str()
        .map(|s| format!("@{s}"))
        .or_else(|| src["source"]["name"].as_str().map(str::to_string));
    Some(Latest {
        index: t.index.clone(),
        pipeline: t.pipelines.first().cloned(),
        id: hit["_id"].as_str().unwrap_or_default().to_string(),
        at,
        text: shorten(text),
        kind,
        label,
        score: field["score"].as_f64(),
        by,
        sort: hit["sort"][0].as_i64().unwrap_or(i64::MIN),
    })
}

/// Folds the `_msearch` answer into the page's numbers.
pub fn summarise(targets: &[Target], answer: &Value) -> IndexSide {
    let empty = Vec::new();
    let responses = answer["responses"].as_array().unwrap_or(&empty);
    let mut side = IndexSide {
        fetched_at: Some(now()),
        ..IndexSide::default()
    };
    let mut hate = Labels::default();
    let mut latest = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let at = |k: usize| {
            responses
                .get(i * SEARCHES_PER_TARGET + k)
                .unwrap_or(&Value::Null)
        };
        let mut stats = IndexStats {
            index: t.index.clone(),
            pipelines: t.pipelines.clone(),
            ..IndexStats::default()
        };
        let mut errors = Vec::new();
        let (count, aggs, hits) = (at(0), at(1), at(2));
        match response_error(count) {
            Some(Some(e)) => errors.push(format!("count: {e}")),
            Some(None) => {}
            None => stats.documents = count["hits"]["total"]["value"].as_u64().unwrap_or(0),
        }
        match response_error(aggs) {
            Some(Some(e)) => errors.push(format!(
                "{SENTIMENT_FIELD}/{HATE_FIELD} (keyword fields?): {e}"
            )),
            Some(None) => {}
            None => {
                stats.sentiment = buckets(&aggs["aggregations"]["sentiment"]);
                stats.hate = buckets(&aggs["aggregations"]["hate"]);
            }
        }
        match response_error(hits) {
            Some(Some(e)) => errors.push(format!("latest: {e}")),
            Some(None) => {}
            None => latest.extend(
                hits["hits"]["hits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| latest_item(t, h)),
            ),
        }
        if !errors.is_empty() {
            let e = errors.join("; ");
            side.errors.push(format!("{}: {e}", t.index));
            stats.error = Some(e);
        }
        side.sentiment.add(&stats.sentiment);
        hate.add(&stats.hate);
        side.per_index.push(stats);
    }
    let unclassified = hate.labels.get(UNCLASSIFIED).copied().unwrap_or(0);
    let flagged = FLAGGED.iter().filter_map(|l| hate.labels.get(*l)).sum();
    let classified = hate.total - unclassified;
    side.hate = Hate {
        total: hate.total,
        labels: hate.labels,
        classified,
        flagged,
        rate: (classified > 0).then(|| flagged as f64 / classified as f64),
    };
    // Newest first across indices; stable, so each index keeps its order.
    latest.sort_by_key(|l| std::cmp::Reverse(l.sort));
    latest.truncate(LATEST);
    side.latest = latest;
    side
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Vec<Target> {
        vec![
            Target {
                index: "n".into(),
                pipelines: vec!["news".into()],
            },
            Target {
                index: "t".into(),
                pipelines: vec!["tweets".into()],
            },
        ]
    }

    #[test]
    fn body_has_three_searches_per_index() {
        let body = msearch_body(&targets());
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2 * 2 * SEARCHES_PER_TARGET);
        assert_eq!(lines[0]["index"], "n");
        assert_eq!(lines[6]["index"], "t");
        assert_eq!(
            lines[3]["aggs"]["sentiment"]["terms"]["field"],
            SENTIMENT_FIELD
        );
    }

    #[test]
    fn folds_counts_labels_rate_and_latest() {
        let hit =
            |id: &str, src: Value, sort: i64| json!({"_id": id, "_source": src, "sort": [sort, 0]});
        let answer = json!({"responses": [
            {"hits": {"total": {"value": 5}}},
            {"aggregations": {"sentiment": {"buckets": [{"key": "positive", "doc_count": 3}, {"key": "negative", "doc_count": 2}]},
                              "hate": {"buckets": []}}},
            {"hits": {"hits": [hit("n1", json!({"title": "Good  news", "sentiment": {"label": "positive", "score": 0.8},
                                                 "source": {"name": "Example Times"}}), 20)]}},
            {"hits": {"total": {"value": 4}}},
            {"aggregations": {"sentiment": {"buckets": []},
                              "hate": {"buckets": [{"key": "neither", "doc_count": 2}, {"key": "hate", "doc_count": 1},
                                                   {"key": "unclassified", "doc_count": 1}]}}},
            {"hits": {"hits": [hit("t1", json!({"text": "x", "hate": {"label": "hate"}, "user": {"screen_name": "a"}}), 30)]}}
        ]});
        let side = summarise(&targets(), &answer);
        assert_eq!(side.per_index[0].documents, 5);
        assert_eq!(side.per_index[1].documents, 4);
        assert_eq!(side.sentiment.total, 5);
        assert_eq!(side.sentiment.labels["positive"], 3);
        assert_eq!(side.hate.total, 4);
        assert_eq!(side.hate.classified, 3);
        assert_eq!(side.hate.flagged, 1);
        assert!((side.hate.rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(side.latest.len(), 2);
        assert_eq!(side.latest[0].id, "t1");
        assert_eq!(side.latest[0].by.as_deref(), Some("@a"));
        assert_eq!(side.latest[1].text, "Good news");
        assert_eq!(side.latest[1].by.as_deref(), Some("Example Times"));
        assert!(side.errors.is_empty());
    }

    #[test]
    fn a_missing_index_is_empty_and_other_errors_are_reported() {
        let missing = json!({"error": {"type": "index_not_found_exception", "reason": "no such index"}, "status": 404});
        let bad = json!({"error": {"type": "search_phase_execution_exception", "root_cause": [{"reason": "Text fields are not optimised"}]}, "status": 400});
        let answer = json!({"responses": [missing, missing, missing, {"hits": {"total": {"value": 1}}}, bad, {"hits": {"hits": []}}]});
        let side = summarise(&targets(), &answer);
        assert_eq!(side.per_index[0].documents, 0);
        assert!(side.per_index[0].error.is_none());
        assert_eq!(side.per_index[1].documents, 1);
        assert!(
            side.per_index[1]
                .error
                .as_deref()
                .unwrap()
                .contains("Text fields")
        );
        assert_eq!(side.errors.len(), 1);
        assert_eq!(side.hate.rate, None);
    }
}
