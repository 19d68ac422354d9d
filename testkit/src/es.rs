//! [`EsClient`]: the few Elasticsearch calls tests need to check what was
//! indexed, usable against any ES-compatible URL (osmem, a real cluster, or a
//! [`FaultProxy`](crate::FaultProxy)).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

/// Page size of [`EsClient::ids`] scrolls.
const SCROLL_PAGE: usize = 5_000;

/// A small Elasticsearch client for assertions in tests.
///
/// A missing index reads as empty: [`count`](EsClient::count) is 0,
/// [`ids`](EsClient::ids) is empty, [`get`](EsClient::get) is `None`, and
/// [`refresh`](EsClient::refresh) succeeds. Any other non-2xx answer is an
/// error quoting the response body.
#[derive(Clone, Debug)]
pub struct EsClient {
    http: reqwest::Client,
    base: Url,
}

impl EsClient {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:9200`).
    ///
    /// # Panics
    /// If `url` is not an absolute URL.
    pub fn new(url: &str) -> EsClient {
        let base =
            Url::parse(url).unwrap_or_else(|e| panic!("invalid Elasticsearch URL {url:?}: {e}"));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build an HTTP client");
        EsClient { http, base }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Makes recent writes to `index` searchable.
    pub async fn refresh(&self, index: &str) -> Result<()> {
        self.call(Method::POST, &[index, "_refresh"], None).await?;
        Ok(())
    }

    /// Number of documents in `index` (0 if it does not exist). Call
    /// [`refresh`](EsClient::refresh) first to see recent writes.
    pub async fn count(&self, index: &str) -> Result<u64> {
        match self.call(Method::GET, &[index, "_count"], None).await? {
            None => Ok(0),
            Some(body) => body["count"]
                .as_u64()
                .with_context(|| format!("_count answer has no count: {body}")),
        }
    }

    /// Refreshes and counts `index` until it holds at least `at_least`
    /// documents; the last count, or an error after `timeout`.
    pub async fn wait_for_count(
        &self,
        index: &str,
        at_least: u64,
        timeout: Duration,
    ) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            self.refresh(index).await?;
            let count = self.count(index).await?;
            if count >= at_least {
                return Ok(count);
            }
            if Instant::now() >= deadline {
                bail!(
                    "index {index} holds {count} documents after {timeout:?}, expected at least {at_least}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every document id in `index`, read with a scroll (fine for 100k+
    /// documents). Empty if the index does not exist.
    pub async fn ids(&self, index: &str) -> Result<HashSet<String>> {
        let mut ids = HashSet::new();
        let query = json!({"size": SCROLL_PAGE, "_source": false, "sort": ["_doc"], "query": {"match_all": {}}});
        let Some(mut page) = self
            .call_query(
                Method::POST,
                &[index, "_search"],
                &[("scroll", "1m")],
                Some(&query),
            )
            .await?
        else {
            return Ok(ids);
        };
        loop {
            let hits = page["hits"]["hits"]
                .as_array()
                .with_context(|| format!("search answer has no hits: {page}"))?;
            if hits.is_empty() {
                break;
            }
            for hit in hits {
                let id = hit["_id"]
                    .as_str()
                    .with_context(|| format!("hit has no _id: {hit}"))?;
                ids.insert(id.to_owned());
            }
            let scroll_id = page["_scroll_id"]
                .as_str()
                .with_context(|| "scroll answer has no _scroll_id")?
                .to_owned();
            let next = json!({"scroll": "1m", "scroll_id": scroll_id});
            page = self
                .call(Method::POST, &["_search", "scroll"], Some(&next))
                .await?
                .context("scroll context vanished")?;
            // Best effort: free the server-side context once done.
            if page["hits"]["hits"].as_array().is_some_and(Vec::is_empty) {
                let clear = json!({"scroll_id": scroll_id});
                let _ = self
                    .call(Method::DELETE, &["_search", "scroll"], Some(&clear))
                    .await;
            }
        }
        Ok(ids)
    }

    /// The `_source` of document `id` in `index`, or `None` if either is missing.
    pub async fn get(&self, index: &str, id: &str) -> Result<Option<Value>> {
        match self.call(Method::GET, &[index, "_doc", id], None).await? {
            None => Ok(None),
            Some(doc) if doc["found"] == json!(false) => Ok(None),
            Some(mut doc) => Ok(Some(doc["_source"].take())),
        }
    }

    /// The composable index template `name` as the server stores it
    /// (`GET _index_template/<name>`), or `None` if there is none.
    pub async fn index_template(&self, name: &str) -> Result<Option<Value>> {
        Ok(self
            .call(Method::GET, &["_index_template", name], None)
            .await?
            .map(|mut body| body["index_templates"][0]["index_template"].take()))
    }

    /// Runs a search (`body` is the full request, e.g. `{"query": {...}}`)
    /// and returns the whole response. A missing index is an error here.
    pub async fn search(&self, index: &str, body: &Value) -> Result<Value> {
        self.call(Method::POST, &[index, "_search"], Some(body))
            .await?
            .with_context(|| format!("search on missing index {index}"))
    }

    /// Sends an NDJSON `_bulk` body (each line ending in `\n`) and returns the
    /// response, for seeding data or exercising a proxy.
    pub async fn bulk(&self, ndjson: impl Into<String>) -> Result<Value> {
        let url = self.url_for(&["_bulk"], &[]);
        let response = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-ndjson")
            .body(ndjson.into())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        Ok(read(response, &url).await?.unwrap_or(Value::Null))
    }

    fn url_for(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("base URL can have a path")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        self.call_query(method, segments, &[], body).await
    }

    /// `None` when the server answers 404 (missing index or document).
    async fn call_query(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let url = self.url_for(segments, query);
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        read(response, &url).await
    }
}

async fn read(response: reqwest::Response, url: &Url) -> Result<Option<Value>> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("read the answer of {url}"))?;
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{url} answered non-JSON: {text}"))
}
