//! The classification modules inside the real host: `classify-sentiment`,
//! `detect-hate` and `enrich` loaded as components, run as chains through
//! `run_chain`, calling out through the pipeline's `HttpPolicy` to
//!
//! - the real classifier service (`weir_classifier::router`, in-process on
//!   a loopback port): labels for known inputs, batching, and the
//!   expert.ai-compatible endpoints as the `expertai` backend's upstream;
//! - small axum servers replaying the documented response shapes of
//!   expert.ai, Hugging Face and TEI, including errors (401, 429, 503 then
//!   success, malformed JSON, a slow upstream, a denied host).
//!
//! Needs `cargo xtask modules text-clean classify-sentiment detect-hate
//! enrich` (the tests fail, not skip, when a component is missing).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use weir::config::RuntimeConfig;
use weir::config::{HttpConfig, UpstreamAuth, UpstreamConfig};
use weir::event::SourceRecord;
use weir::pipeline::{Chain, run_chain};
use weir::runtime::http::{HttpPolicy, Upstreams};
use weir::runtime::{LoadedModule, ModuleOptions, WasmRuntime};

mod modules;
use modules::load_module;
use weir::telemetry::PipelineMetrics;

// ------------------------------------------------------------- harness

fn runtime() -> Arc<WasmRuntime> {
    Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("wasm runtime"))
}

fn policy(allow: &[String]) -> Arc<HttpPolicy> {
    HttpPolicy::builder("test")
        .allow(allow.iter().cloned())
        .build()
        .unwrap()
}

async fn load(
    rt: &Arc<WasmRuntime>,
    stem: &str,
    config: &[(&str, &str)],
    http: &Arc<HttpPolicy>,
) -> Arc<LoadedModule> {
    load_module(
        rt,
        "test",
        stem,
        config,
        Arc::clone(http),
        ModuleOptions::default(),
    )
    .await
}

/// What a batch turned into, by record: a document or a failure reason.
#[derive(Debug)]
struct Ran {
    docs: Vec<Option<Value>>,
    failures: Vec<Option<(String, String)>>,
}

impl Ran {
    fn doc(&self, i: usize) -> &Value {
        self.docs[i]
            .as_ref()
            .unwrap_or_else(|| panic!("record {i} failed: {:?}", self.failures[i]))
    }

    /// `(module, reason)` of a failed record.
    fn failure(&self, i: usize) -> (&str, &str) {
        let (m, r) = self.failures[i]
            .as_ref()
            .unwrap_or_else(|| panic!("record {i} did not fail: {:?}", self.docs[i]));
        (m, r)
    }
}

async fn run(
    rt: &WasmRuntime,
    modules: Vec<Arc<LoadedModule>>,
    topic: &str,
    values: &[Value],
) -> Ran {
    let chain = Chain::new(modules, Some("weir_modules"));
    let topic: Arc<str> = Arc::from(topic);
    let records: Vec<Arc<SourceRecord>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Arc::new(SourceRecord {
                topic: Arc::clone(&topic),
                partition: 1,
                offset: 100 + i as i64,
                timestamp_ms: None,
                key: None,
                headers: Vec::new(),
                value: Bytes::from(v.to_string()),
            })
        })
        .collect();
    let out = run_chain(rt, &chain, &records, &PipelineMetrics::detached("test")).await;
    let mut ran = Ran {
        docs: vec![None; values.len()],
        failures: vec![None; values.len()],
    };
    for d in out.docs {
        assert!(ran.docs[d.source].is_none(), "one document per record");
        ran.docs[d.source] = Some(serde_json::from_slice(&d.body).unwrap());
    }
    for f in out.failures {
        ran.failures[f.source] = Some((f.module.unwrap_or_default(), f.reason));
    }
    ran
}

fn tweet(i: usize, text: &str) -> Value {
    json!({"id": format!("t{i}"), "text": text, "created_at": "2026-11-26T12:00:00Z", "lang": "en",
           "user": {"id": "u1", "screen_name": "someone"}, "source": "sample"})
}

fn news(i: usize, title: &str, description: Option<&str>) -> Value {
    let mut v = json!({"id": format!("n{i}"), "title": title, "url": format!("https://news.example/{i}"),
                       "source": {"name": "Example Times"}, "published_at": "2026-11-25T08:00:00Z", "feed": "sample"});
    if let Some(d) = description {
        v["description"] = json!(d);
    }
    v
}

/// The hand-labelled sentences shipped with the classifier.
fn labelled(set: &str) -> Vec<Value> {
    let path =
        weir_testkit::tools::workspace_root().join(format!("classifier/data/labelled/{set}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---------------------------------------------- the real classifier

/// What a server saw: one entry per request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn log_requests(State(log): State<Log>, request: Request, next: Next) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    log.lock().unwrap().push(Seen {
        path: parts.uri.path().to_string(),
        headers: parts.headers.clone(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The classifier service on a loopback port; logs every request.
async fn classifier() -> (String, Log) {
    let log: Log = Arc::default();
    let app = weir_classifier::router(weir_classifier::AppState::default()).layer(
        middleware::from_fn_with_state(Arc::clone(&log), log_requests),
    );
    (format!("http://{}", serve(app).await), log)
}

#[tokio::test]
async fn tweets_through_text_clean_detect_hate_enrich_against_the_classifier() {
    let (origin, log) = classifier().await;
    let rt = runtime();
    let http = policy(std::slice::from_ref(&origin));
    let modules = vec![
        load(&rt, "text-clean", &[("fields", "text")], &http).await,
        load(&rt, "detect-hate", &[("url", &origin)], &http).await,
        load(&rt, "enrich", &[("fields", "text")], &http).await,
    ];
    let cases = labelled("hate");
    let mut input = vec![
        tweet(
            0,
            "RT @bob: you are a stupid bitch https://pics.example/x #Rude",
        ),
        tweet(
            1,
            "What a beautiful sunset over the bay tonight, feeling grateful #nature @sunsets",
        ),
    ];
    input.extend(
        cases
            .iter()
            .enumerate()
            .map(|(i, c)| tweet(i + 2, c["text"].as_str().unwrap())),
    );
    let ran = run(&rt, modules, "tweets", &input).await;

    // The whole batch (37 tweets) is one request.
    let requests = log.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/v1/hate");

    let offensive = ran.doc(0);
    assert_eq!(offensive["text"], "you are a stupid bitch #Rude");
    assert_eq!(offensive["hate"]["label"], "offensive");
    assert_eq!(offensive["hate"]["categories"], json!(["Personal Insult"]));
    assert_eq!(offensive["hate"]["terms"][0], "bitch");
    assert_eq!(offensive["hate"]["model"], "hatesonar-0.1.0");
    assert_eq!(offensive["mentions"], json!(["bob"]));
    assert_eq!(offensive["url_domains"], json!(["pics.example"]));
    assert_eq!(offensive["hashtags"], json!(["rude"]));
    assert_eq!(
        offensive["weir"]["source"],
        json!({"topic": "tweets", "partition": 1, "offset": 100})
    );
    assert!(
        offensive["weir"]["ingested_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let versions = offensive["weir_modules"].as_array().unwrap();
    let names: Vec<&str> = versions
        .iter()
        .map(|v| v.as_str().unwrap().split('@').next().unwrap())
        .collect();
    assert_eq!(names, ["text-clean", "detect-hate", "enrich"]);

    let kind = ran.doc(1);
    assert_eq!(kind["hate"]["label"], "neither");
    assert_eq!(kind["hate"]["categories"], json!([]));
    assert_eq!(kind["language"], "en");
    assert_eq!(kind["mentions"], json!(["sunsets"]));
    assert_eq!(kind["word_count"], 11);

    // Every labelled sentence: exactly what the model says about the
    // cleaned text, and the human label wherever the model is known right.
    let model = weir_classifier::hate::HateClassifier::default();
    let mut right = 0;
    for (i, case) in cases.iter().enumerate() {
        let doc = ran.doc(i + 2);
        let direct = model.predict(doc["text"].as_str().unwrap());
        let label = serde_json::to_value(direct.label).unwrap();
        assert_eq!(doc["hate"]["label"], label, "{doc}");
        // serde_json's default float parsing is exact to 1 ulp.
        let scores = serde_json::to_value(direct.scores).unwrap();
        for class in ["hate", "offensive", "neither"] {
            let (got, want) = (
                doc["hate"]["scores"][class].as_f64().unwrap(),
                scores[class].as_f64().unwrap(),
            );
            assert!(
                (got - want).abs() <= 1e-15,
                "{class}: {got} vs {want}: {doc}"
            );
        }
        if case["clear"] == true && case.get("known_miss").is_none() {
            assert_eq!(doc["hate"]["label"], case["label"], "{doc}");
            right += 1;
        }
    }
    assert_eq!(right, 28);
}

#[tokio::test]
async fn news_through_text_clean_classify_sentiment_enrich_against_the_classifier() {
    let (origin, log) = classifier().await;
    let rt = runtime();
    let http = policy(std::slice::from_ref(&origin));
    let modules = vec![
        load(
            &rt,
            "text-clean",
            &[("fields", "title,description,content")],
            &http,
        )
        .await,
        load(
            &rt,
            "classify-sentiment",
            &[("url", &origin), ("max_batch", "8")],
            &http,
        )
        .await,
        load(&rt, "enrich", &[("fields", "title,description")], &http).await,
    ];
    let cases = labelled("sentiment");
    let mut input = vec![
        news(
            0,
            "Stocks rally as inflation cools &amp; markets cheer",
            Some("Investors are delighted with the strong recovery."),
        ),
        news(
            1,
            "Earthquake kills hundreds and destroys <b>city</b>",
            Some("Rescuers fear the death toll will rise. https://quake.example/live"),
        ),
        news(2, "Council publishes the meeting schedule", None),
    ];
    input.extend(
        cases
            .iter()
            .enumerate()
            .map(|(i, c)| news(i + 3, c["text"].as_str().unwrap(), None)),
    );
    let ran = run(&rt, modules, "news", &input).await;

    // 39 articles in chunks of 8: five requests.
    let requests = log.lock().unwrap().clone();
    assert_eq!(requests.len(), 5);
    assert!(requests.iter().all(|r| r.path == "/v1/sentiment"));

    let vader = weir_classifier::vader::SentimentAnalyzer::default();
    let expect = |doc: &Value| {
        let text = match doc["description"].as_str() {
            Some(d) => format!("{}. {d}", doc["title"].as_str().unwrap()),
            None => doc["title"].as_str().unwrap().to_string(),
        };
        vader.polarity_scores(&text)
    };
    let up = ran.doc(0);
    assert_eq!(
        up["title"],
        "Stocks rally as inflation cools & markets cheer"
    );
    assert_eq!(up["sentiment"]["label"], "positive");
    assert_eq!(up["sentiment"]["score"], expect(up).compound);
    assert_eq!(up["sentiment"]["model"], "vader-3.3.2");
    let down = ran.doc(1);
    assert_eq!(down["sentiment"]["label"], "negative");
    assert_eq!(down["sentiment"]["negativity"], expect(down).neg);
    assert_eq!(down["url_domains"], json!(["quake.example"]));
    assert_eq!(down["language"], "en");
    assert_eq!(ran.doc(2)["sentiment"]["label"], "neutral");

    let mut right = 0;
    for (i, case) in cases.iter().enumerate() {
        let doc = ran.doc(i + 3);
        let direct = expect(doc);
        assert_eq!(doc["sentiment"]["score"], direct.compound, "{doc}");
        assert_eq!(doc["sentiment"]["positivity"], direct.pos, "{doc}");
        assert_eq!(
            doc["sentiment"]["label"],
            serde_json::to_value(direct.label()).unwrap(),
            "{doc}"
        );
        if case["clear"] == true && case.get("known_miss").is_none() {
            assert_eq!(doc["sentiment"]["label"], case["label"], "{doc}");
            right += 1;
        }
    }
    assert_eq!(right, 31);
}

#[tokio::test]
async fn the_expertai_backend_reads_the_classifiers_v2_endpoints_with_a_host_credential() {
    const SECRET: &str = "expertai-jwt-from-the-host";
    let (origin, log) = classifier().await;
    let rt = runtime();
    let ups = upstreams("expertai", &origin, "EXPERTAI_TOKEN", SECRET);
    let http = HttpPolicy::builder("test")
        .allow([origin.clone()])
        .upstreams(ups)
        .build()
        .unwrap();
    let config = [("backend", "expertai"), ("url", origin.as_str())];
    let hate = load(&rt, "detect-hate", &config, &http).await;
    let sentiment = load(
        &rt,
        "classify-sentiment",
        &[config[0], config[1], ("fields", "text")],
        &http,
    )
    .await;
    let input = [
        tweet(0, "shut up you stupid bitch"),
        tweet(1, "The plot was good, but the ending was terrible!"),
    ];
    let ran = run(&rt, vec![hate, sentiment], "tweets", &input).await;

    let insult = ran.doc(0);
    assert_eq!(insult["hate"]["label"], "offensive");
    assert_eq!(insult["hate"]["categories"], json!(["Personal Insult"]));
    assert_eq!(insult["hate"]["terms"], json!(["bitch"]));
    // One category (Personal Insult): its share of the categories'
    // frequency is all of it (expert.ai's `score` is a cumulative rule
    // score, not a confidence).
    assert_eq!(insult["hate"]["score"], 1.0);
    assert_eq!(
        insult["hate"]["model"],
        "expert.ai weir-classifier 0.1.0; hatesonar 0.1.0"
    );
    let mixed = ran.doc(1);
    assert_eq!(mixed["hate"]["label"], "neither");
    assert_eq!(mixed["sentiment"]["label"], "negative");
    assert_eq!(mixed["sentiment"]["score"], -0.5411);
    assert_eq!(mixed["sentiment"]["positivity"], 0.146);
    assert_eq!(mixed["sentiment"]["negativity"], 0.332);

    // One request per text, each with the host's credential, which no
    // module configuration or document ever held.
    let requests = log.lock().unwrap().clone();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v2/detect/hate-speech/en",
            "/v2/detect/hate-speech/en",
            "/v2/analyze/standard/en/sentiment",
            "/v2/analyze/standard/en/sentiment"
        ]
    );
    for r in &requests {
        assert_eq!(r.headers["authorization"], format!("Bearer {SECRET}"));
        assert_eq!(r.headers["content-type"], "application/json; charset=utf-8");
        assert!(r.body.starts_with(r#"{"document":{"text":"#), "{}", r.body);
    }
    assert!(
        !ran.docs
            .iter()
            .flatten()
            .any(|d| d.to_string().contains(SECRET))
    );
}

fn upstreams(name: &str, url: &str, var: &str, secret: &str) -> Arc<Upstreams> {
    let auth = UpstreamAuth {
        bearer_env: Some(var.into()),
        ..UpstreamAuth::default()
    };
    let config = BTreeMap::from([(
        name.to_string(),
        UpstreamConfig {
            url: url.into(),
            auth,
            methods: UpstreamConfig::default_methods(),
        },
    )]);
    let env: HashMap<String, String> = HashMap::from([(var.to_string(), secret.to_string())]);
    Arc::new(Upstreams::from_config(&config, &|k| env.get(k).cloned()).unwrap())
}

// ------------------------------------------- replayed provider shapes

/// A scripted answer: status, body, delay.
type Answer = (u16, String, Duration);
type Script = Arc<dyn Fn(usize, &Seen) -> Answer + Send + Sync>;

/// A server answering the n-th request (from 0) with `script`.
async fn replay(script: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static) -> (String, Log) {
    let log: Log = Arc::default();
    let state: (Log, Script, Arc<AtomicUsize>) =
        (Arc::clone(&log), Arc::new(script), Arc::default());
    let app = Router::new()
        .fallback(
            |State((log, script, n)): State<(Log, Script, Arc<AtomicUsize>)>,
             uri: Uri,
             headers: HeaderMap,
             body: Bytes| async move {
                let seen = Seen {
                    path: uri.path().to_string(),
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let (status, body, delay) = script(n.fetch_add(1, Ordering::SeqCst), &seen);
                log.lock().unwrap().push(seen);
                tokio::time::sleep(delay).await;
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            },
        )
        .with_state(state);
    (format!("http://{}", serve(app).await), log)
}

fn ok(body: Value) -> Answer {
    (200, body.to_string(), Duration::ZERO)
}

fn status(code: u16, body: &str) -> Answer {
    (code, body.to_string(), Duration::ZERO)
}

const NEWS_TEXT: &str = "Markets rally";

async fn sentiment_once(config: &[(&str, &str)], http: &Arc<HttpPolicy>, n: usize) -> Ran {
    let rt = runtime();
    let module = load(&rt, "classify-sentiment", config, http).await;
    let input: Vec<Value> = (0..n).map(|i| news(i, NEWS_TEXT, None)).collect();
    run(&rt, vec![module], "news", &input).await
}

fn vader_answer(n: usize) -> Value {
    let one = json!({"compound": 0.3612, "pos": 0.6, "neu": 0.4, "neg": 0.0, "label": "positive"});
    json!({"model": "vader-3.3.2", "results": vec![one; n]})
}

#[tokio::test]
async fn hf_loading_503_is_retried_then_read_with_the_label_map_and_a_host_token() {
    let (origin, log) = replay(|n, _| match n {
        0 => status(
            503,
            r#"{"error":"Model org/hate is currently loading","estimated_time":0.05}"#,
        ),
        _ => ok(
            json!([[{"label": "LABEL_1", "score": 0.1}, {"label": "LABEL_0", "score": 0.9}],
                      [{"label": "LABEL_1", "score": 0.7}, {"label": "LABEL_0", "score": 0.3}]]),
        ),
    })
    .await;
    let model_url = format!("{origin}/models/org/hate");
    let http = HttpPolicy::builder("test")
        .allow([origin.clone()])
        .upstreams(upstreams("hf", &origin, "HF_TOKEN", "hf_secret"))
        .build()
        .unwrap();
    let rt = runtime();
    let config = [
        ("backend", "hf"),
        ("url", model_url.as_str()),
        ("label_map", "LABEL_0:neither,LABEL_1:offensive"),
        ("backoff_ms", "10"),
    ];
    let module = load(&rt, "detect-hate", &config, &http).await;
    let ran = run(
        &rt,
        vec![module],
        "tweets",
        &[tweet(0, "nice day"), tweet(1, "you idiot")],
    )
    .await;
    assert_eq!(ran.doc(0)["hate"]["label"], "neither");
    assert_eq!(
        ran.doc(1)["hate"],
        json!({"label": "offensive", "score": 0.7, "scores": {"hate": 0.0, "offensive": 0.7, "neither": 0.3},
               "categories": ["Personal Insult"], "terms": [], "model": "org/hate"})
    );
    let requests = log.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.path, "/models/org/hate");
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap(),
            json!({"inputs": ["nice day", "you idiot"]})
        );
        assert_eq!(r.headers["authorization"], "Bearer hf_secret");
    }
}

#[tokio::test]
async fn tei_gets_the_batch_shape_and_flat_hf_answers_are_read() {
    let (origin, log) = replay(|_, seen| match seen.path.as_str() {
        "/predict" => ok(json!([[{"label": "positive", "score": 0.8}, {"label": "negative", "score": 0.2}],
                                [{"label": "negative", "score": 0.9}, {"label": "positive", "score": 0.1}]])),
        _ => ok(json!([{"label": "NEGATIVE", "score": 0.99}, {"label": "POSITIVE", "score": 0.01}])),
    })
    .await;
    let http = policy(std::slice::from_ref(&origin));
    let rt = runtime();
    let tei = load(
        &rt,
        "classify-sentiment",
        &[("backend", "tei"), ("url", &origin)],
        &http,
    )
    .await;
    let ran = run(
        &rt,
        vec![tei],
        "news",
        &[news(0, "Good", Some("great")), news(1, "Bad", None)],
    )
    .await;
    assert_eq!(ran.doc(0)["sentiment"]["label"], "positive");
    assert_eq!(ran.doc(1)["sentiment"]["label"], "negative");
    assert_eq!(ran.doc(1)["sentiment"]["negativity"], 0.9);
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        serde_json::from_str::<Value>(&seen[0].body).unwrap(),
        json!({"inputs": [["Good. great"], ["Bad"]], "truncate": true})
    );

    let hf_url = format!("{origin}/models/distilbert-sst2");
    let hf = load(
        &rt,
        "classify-sentiment",
        &[("backend", "hf"), ("url", &hf_url)],
        &http,
    )
    .await;
    let ran = run(&rt, vec![hf], "news", &[news(0, "Awful", None)]).await;
    assert_eq!(ran.doc(0)["sentiment"]["label"], "negative");
    assert_eq!(ran.doc(0)["sentiment"]["model"], "distilbert-sst2");
}

#[tokio::test]
async fn provider_errors_dead_letter_with_clear_reasons_or_go_unclassified() {
    // 401: not retried.
    let (origin, log) = replay(|_, _| {
        status(
            401,
            r#"{"success":false,"errors":[{"code":"UNAUTHORIZED","message":"invalid token"}]}"#,
        )
    })
    .await;
    let ran = sentiment_once(
        &[("url", &origin), ("backoff_ms", "10")],
        &policy(std::slice::from_ref(&origin)),
        2,
    )
    .await;
    let (module, reason) = ran.failure(0);
    assert_eq!(module, "classify-sentiment");
    assert_eq!(
        reason,
        format!(
            r#"POST {origin}/v1/sentiment: HTTP 401: {{"success":false,"errors":[{{"code":"UNAUTHORIZED","message":"invalid token"}}]}}"#
        )
    );
    assert_eq!(ran.failure(1).1, reason);
    assert_eq!(log.lock().unwrap().len(), 1);

    // 429, then 503, then success: retried within `retries` (2).
    let (origin, log) = replay(|n, _| match n {
        0 => status(429, r#"{"error":"rate limited","error_type":"Overloaded"}"#),
        1 => status(503, ""),
        _ => ok(vader_answer(3)),
    })
    .await;
    let ran = sentiment_once(
        &[("url", &origin), ("backoff_ms", "10")],
        &policy(std::slice::from_ref(&origin)),
        3,
    )
    .await;
    assert!((0..3).all(|i| ran.doc(i)["sentiment"]["label"] == "positive"));
    assert_eq!(log.lock().unwrap().len(), 3);

    // 503 throughout: unavailable after 1 + retries attempts.
    let (origin, log) = replay(|_, _| status(503, "upstream down")).await;
    let ran = sentiment_once(
        &[("url", &origin), ("backoff_ms", "10")],
        &policy(std::slice::from_ref(&origin)),
        1,
    )
    .await;
    assert_eq!(
        ran.failure(0).1,
        format!(
            "classifier unavailable after 3 attempts: POST {origin}/v1/sentiment: HTTP 503: upstream down"
        )
    );
    assert_eq!(log.lock().unwrap().len(), 3);

    // ... or indexed as unclassified.
    let config = [
        ("url", origin.as_str()),
        ("backoff_ms", "10"),
        ("retries", "0"),
        ("on_error", "unclassified"),
    ];
    let ran = sentiment_once(&config, &policy(std::slice::from_ref(&origin)), 1).await;
    assert_eq!(ran.doc(0)["sentiment"]["label"], "unclassified");
    assert_eq!(ran.doc(0)["title"], NEWS_TEXT);

    // Malformed JSON with a 200: a decode error, not retried.
    let (origin, log) =
        replay(|_, _| status(200, r#"{"model":"vader-3.3.2","results":[{"compound":"#)).await;
    let ran = sentiment_once(
        &[("url", &origin)],
        &policy(std::slice::from_ref(&origin)),
        1,
    )
    .await;
    let reason = ran.failure(0).1;
    assert!(
        reason.starts_with(&format!(
            "POST {origin}/v1/sentiment: unexpected response: EOF while parsing"
        )),
        "{reason}"
    );
    assert!(
        reason.contains(r#"body starts "{\"model\":\"vader-3.3.2\""#),
        "{reason}"
    );
    assert_eq!(log.lock().unwrap().len(), 1);

    // Valid JSON of the wrong shape.
    let (origin, _) = replay(|_, _| {
        ok(json!({"model": "m", "results": [{"compound": 0.1, "label": "positive"}]}))
    })
    .await;
    let ran = sentiment_once(
        &[("url", &origin)],
        &policy(std::slice::from_ref(&origin)),
        1,
    )
    .await;
    assert!(
        ran.failure(0)
            .1
            .contains("unexpected response: missing field `pos`"),
        "{:?}",
        ran.failures
    );
}

#[tokio::test]
async fn expertai_shapes_replayed_including_its_error_envelope() {
    let (origin, log) = replay(|_, seen| {
        let text = serde_json::from_str::<Value>(&seen.body).unwrap()["document"]["text"].as_str().unwrap().to_string();
        if text == "fail" {
            return status(400, r#"{"success":false,"errors":[{"code":"BAD_REQUEST","message":"document too long"}]}"#);
        }
        let categories = if text.contains("idiot") {
            json!([{"id": "1000", "label": "Personal Insult", "hierarchy": ["Personal Insult"], "namespace": "hate_speech",
                    "score": 88, "frequency": 100.0, "winner": true, "positions": [{"start": 4, "end": 9}]}])
        } else {
            json!([])
        };
        ok(json!({"success": true, "data": {"content": text, "language": "en", "version": "sensei 3",
                  "categories": categories, "extractions": []}}))
    })
    .await;
    let rt = runtime();
    let http = policy(std::slice::from_ref(&origin));
    let module = load(
        &rt,
        "detect-hate",
        &[("backend", "expertai"), ("url", &origin)],
        &http,
    )
    .await;
    let ran = run(
        &rt,
        vec![module],
        "tweets",
        &[tweet(0, "you idiot"), tweet(1, "fail"), tweet(2, "hello")],
    )
    .await;
    assert_eq!(
        ran.doc(0)["hate"],
        // `score: 88` is cumulative, not a confidence: the only category,
        // with all of the frequency, makes the label and its share.
        json!({"label": "offensive", "score": 1.0, "scores": {"hate": 0.0, "offensive": 1.0, "neither": 0.0},
               "categories": ["Personal Insult"], "terms": ["idiot"], "model": "expert.ai sensei 3"})
    );
    assert_eq!(
        ran.failure(1).1,
        format!(
            r#"POST {origin}/v2/detect/hate-speech/en: HTTP 400: {{"success":false,"errors":[{{"code":"BAD_REQUEST","message":"document too long"}}]}}"#
        )
    );
    assert_eq!(ran.doc(2)["hate"]["label"], "neither");
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_denied_or_slow_classifier_is_an_error_value_never_a_trap() {
    // Not in the allowlist (another loopback port): denied before sending.
    let (origin, log) = replay(|_, _| ok(vader_answer(1))).await;
    let elsewhere = policy(&["http://127.0.0.1:1".to_string()]);
    let ran = sentiment_once(&[("url", &origin)], &elsewhere, 1).await;
    assert_eq!(
        ran.failure(0).1,
        format!(
            "POST {origin}/v1/sentiment: denied by the host's HTTP policy (HttpRequestDenied): add the classifier's origin to the pipeline's allowed_outbound_hosts"
        )
    );
    // By name: `localhost` resolves to loopback, which the IP pattern does not name.
    let by_name = origin.replace("127.0.0.1", "localhost");
    let ran = sentiment_once(
        &[("url", &by_name)],
        &policy(std::slice::from_ref(&origin)),
        1,
    )
    .await;
    assert!(
        ran.failure(0).1.contains("HttpRequestDenied"),
        "{:?}",
        ran.failures
    );
    assert!(log.lock().unwrap().is_empty());

    // Slower than the pipeline's first-byte timeout: a timeout, retried, then dead-lettered.
    let (origin, log) =
        replay(|_, _| (200, vader_answer(1).to_string(), Duration::from_secs(3))).await;
    let config = HttpConfig {
        first_byte_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let slow = HttpPolicy::builder("test")
        .allow([origin.clone()])
        .config(config)
        .build()
        .unwrap();
    let ran = sentiment_once(
        &[("url", &origin), ("retries", "1"), ("backoff_ms", "10")],
        &slow,
        1,
    )
    .await;
    let reason = ran.failure(0).1;
    assert!(
        reason.starts_with("classifier unavailable after 2 attempts: "),
        "{reason}"
    );
    assert!(reason.contains("timed out ("), "{reason}");
    assert_eq!(log.lock().unwrap().len(), 2);
}
