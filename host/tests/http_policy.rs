//! Host-provided HTTP, end to end: the `fixture-http` component performs
//! requests from inside Wasm through `wasi:http/outgoing-handler`, against
//! small axum servers on 127.0.0.1, under different pipeline policies.
//!
//! Needs `cargo xtask modules fixture-http` (the tests fail, not skip,
//! when the component is missing).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use serde_json::{Value, json};

use weir::config::RuntimeConfig;
use weir::config::{HttpConfig, UpstreamAuth, UpstreamConfig};
use weir::runtime::http::{
    HttpMetrics, HttpPolicy, OutboundRules, Outcome, StaticResolver, Upstreams,
};
use weir::runtime::{LoadedModule, WasmRuntime, WitOutcome, WitRecord};

// ---------------------------------------------------------------- upstream

/// What the local upstream saw.
#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    headers: Mutex<Vec<HeaderMap>>,
    token_fetches: AtomicUsize,
    /// Tokens the `/api` route accepts; the token endpoint issues `t<N>`.
    valid_tokens: Mutex<Vec<String>>,
}

struct Upstream {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl Upstream {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }
}

async fn record(State(seen): State<Arc<Seen>>, headers: HeaderMap) {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    seen.headers.lock().unwrap().push(headers);
}

async fn start_upstream() -> Upstream {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route(
            "/echo",
            any(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes| async move {
                    record(State(seen), headers).await;
                    body
                },
            ),
        )
        .route(
            "/big",
            any(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    record(State(seen), headers).await;
                    vec![b'x'; 2 << 20]
                },
            ),
        )
        .route(
            "/big-chunked",
            any(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    record(State(seen), headers).await;
                    let chunks =
                        (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 64 << 10])));
                    Body::from_stream(futures::stream::iter(chunks))
                },
            ),
        )
        .route(
            "/slow-head",
            any(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    record(State(seen), headers).await;
                    // Never answers: only a timeout ends the request.
                    std::future::pending::<()>().await;
                    "never"
                },
            ),
        )
        .route(
            "/slow-body",
            any(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    record(State(seen), headers).await;
                    // Never ends: only a timeout ends the request.
                    let chunks = futures::stream::unfold(0, |i| async move {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        Some((
                            Ok::<_, std::io::Error>(Bytes::from_static(b"chunk ")),
                            i + 1,
                        ))
                    });
                    Body::from_stream(chunks)
                },
            ),
        )
        .route(
            "/busy",
            any(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
                    record(State(Arc::clone(&seen)), headers).await;
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                    "done"
                },
            ),
        )
        .route(
            "/token",
            post(|State(seen): State<Arc<Seen>>, body: Bytes| async move {
                let login: Value = serde_json::from_slice(&body).unwrap_or_default();
                if login != json!({"username": "weir-user", "password": "weir-pass"}) {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let n = seen.token_fetches.fetch_add(1, Ordering::SeqCst) + 1;
                let token = format!("t{n}");
                seen.valid_tokens.lock().unwrap().push(token.clone());
                (StatusCode::OK, token)
            }),
        )
        .route(
            "/api/analyze",
            any(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    record(State(Arc::clone(&seen)), headers).await;
                    let ok = seen
                        .valid_tokens
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|t| auth == format!("Bearer {t}"));
                    if ok {
                        (StatusCode::OK, "analyzed").into_response()
                    } else {
                        StatusCode::UNAUTHORIZED.into_response()
                    }
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Upstream { addr, seen }
}

// ------------------------------------------------------------------ module

fn runtime() -> Arc<WasmRuntime> {
    Arc::new(WasmRuntime::new(&RuntimeConfig::default()).expect("wasm runtime"))
}

async fn load(rt: &Arc<WasmRuntime>, policy: Arc<HttpPolicy>) -> LoadedModule {
    let path = weir_testkit::tools::module_wasm("fixture-http")
        .expect("run `cargo xtask modules fixture-http` first");
    let bytes = std::fs::read(path).unwrap();
    rt.load("test", "fixture-http", bytes, Vec::new(), policy)
        .await
        .expect("fixture-http loads")
}

fn wit_record(spec: &Value) -> WitRecord {
    WitRecord {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        key: None,
        headers: Vec::new(),
        value: serde_json::to_vec(spec).unwrap(),
    }
}

/// Runs one request through the module; returns what it emitted. A trap
/// fails the test: every failure must reach the guest as a value.
async fn call(rt: &WasmRuntime, module: &LoadedModule, spec: Value) -> Value {
    let outcomes = module
        .run_batch(rt, &[wit_record(&spec)])
        .await
        .expect("the module must not trap");
    match &outcomes[..] {
        [WitOutcome::Emit(docs)] if docs.len() == 1 => {
            serde_json::from_slice(&docs[0].body).unwrap()
        }
        other => panic!("expected one emitted document, got {other:?}"),
    }
}

fn error_of(out: &Value) -> &str {
    out["error"].as_str().unwrap_or("")
}

fn policy(allow: &[String], config: HttpConfig) -> Arc<HttpPolicy> {
    HttpPolicy::builder("test")
        .allow(allow.iter().cloned())
        .config(config)
        .build()
        .unwrap()
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn an_allowed_host_gets_its_response() {
    let up = start_upstream().await;
    let rt = runtime();
    let metrics = HttpMetrics::detached();
    let p = HttpPolicy::builder("test")
        .allow([up.origin()])
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let m = load(&rt, p).await;
    let out = call(
        &rt,
        &m,
        json!({"url": up.url("/echo"), "method": "POST", "body": "{\"text\":\"hello\"}"}),
    )
    .await;
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["body"], "{\"text\":\"hello\"}");
    assert_eq!(out["error"], Value::Null);
    assert_eq!(up.hits(), 1);
    let label = format!("{}:{}", up.addr.ip(), up.addr.port());
    assert_eq!(metrics.count("test", &label, Outcome::Ok), 1);
}

#[tokio::test]
async fn a_host_outside_the_allowlist_is_denied_as_a_value() {
    let allowed = start_upstream().await;
    let other = start_upstream().await;
    let rt = runtime();
    let metrics = HttpMetrics::detached();
    let p = HttpPolicy::builder("test")
        .allow([allowed.origin()])
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let m = load(&rt, p).await;
    for url in [
        other.url("/echo"),                       // same IP, other port
        "http://example.com/".to_string(),        // another host
        format!("https://{}/echo", allowed.addr), // other scheme
    ] {
        let out = call(&rt, &m, json!({"url": url})).await;
        assert!(error_of(&out).contains("HttpRequestDenied"), "{url}: {out}");
    }
    assert_eq!(other.hits(), 0);
    assert_eq!(allowed.hits(), 0);
    assert_eq!(metrics.count("test", "-", Outcome::Denied), 3);

    // The same instance still works for the allowed host afterwards.
    let out = call(&rt, &m, json!({"url": allowed.url("/echo")})).await;
    assert_eq!(out["status"], 200, "{out}");
}

#[tokio::test]
async fn no_allowlist_means_no_http_but_the_module_still_loads() {
    let up = start_upstream().await;
    let rt = runtime();
    let m = load(&rt, HttpPolicy::deny_all("test")).await;
    let out = call(&rt, &m, json!({"url": up.url("/echo")})).await;
    assert!(error_of(&out).contains("HttpRequestDenied"), "{out}");
    assert_eq!(up.hits(), 0);

    // A module that does not import wasi:http is unaffected.
    let path = weir_testkit::tools::module_wasm("passthrough").unwrap();
    let passthrough = rt
        .load(
            "test",
            "passthrough",
            std::fs::read(path).unwrap(),
            Vec::new(),
            HttpPolicy::deny_all("test"),
        )
        .await
        .unwrap();
    let out = passthrough
        .run_batch(&rt, &[wit_record(&json!({"a": 1}))])
        .await
        .unwrap();
    assert!(matches!(&out[..], [WitOutcome::Emit(d)] if d[0].body == br#"{"a":1}"#));
}

#[tokio::test]
async fn loopback_by_ip_outside_the_allowlist_is_denied() {
    let up = start_upstream().await;
    let rt = runtime();
    let m = load(
        &rt,
        policy(&["https://api.example.com".into()], HttpConfig::default()),
    )
    .await;
    for url in [
        up.url("/echo"),
        format!("http://127.0.0.2:{}/echo", up.addr.port()),
        format!("http://[::1]:{}/echo", up.addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}/echo", up.addr.port()),
    ] {
        let out = call(&rt, &m, json!({"url": url})).await;
        assert!(error_of(&out).contains("HttpRequestDenied"), "{url}: {out}");
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn names_resolving_to_loopback_are_denied_unless_named() {
    let up = start_upstream().await;
    let port = up.addr.port();
    let rt = runtime();

    // `localhost` is not `127.0.0.1`: a pattern naming the IP does not
    // admit the name.
    let m = load(&rt, policy(&[up.origin()], HttpConfig::default())).await;
    let out = call(
        &rt,
        &m,
        json!({"url": format!("http://localhost:{port}/echo")}),
    )
    .await;
    assert!(error_of(&out).contains("HttpRequestDenied"), "{out}");

    // Names the allowlist admits (exactly or by wildcard) but that resolve
    // to loopback are refused after resolution, allow_private or not.
    let table: HashMap<String, Vec<IpAddr>> = [
        (
            "api.localhost".to_string(),
            vec!["127.0.0.1".parse().unwrap()],
        ),
        (
            "classifier.test".to_string(),
            vec!["127.0.0.1".parse().unwrap()],
        ),
        (
            "mixed.test".to_string(),
            vec![
                "93.184.216.34".parse().unwrap(),
                "127.0.0.1".parse().unwrap(),
            ],
        ),
    ]
    .into();
    let metrics = HttpMetrics::detached();
    let p = HttpPolicy::builder("test")
        .allow([
            format!("http://*.localhost:{port}"),
            format!("http://classifier.test:{port}"),
            format!("http://mixed.test:{port}"),
        ])
        .config(HttpConfig {
            allow_private: true,
            ..HttpConfig::default()
        })
        .resolver(Arc::new(StaticResolver(table)))
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let m = load(&rt, p).await;
    for host in ["api.localhost", "classifier.test", "mixed.test"] {
        let out = call(
            &rt,
            &m,
            json!({"url": format!("http://{host}:{port}/echo")}),
        )
        .await;
        assert!(
            error_of(&out).contains("HttpRequestDenied"),
            "{host}: {out}"
        );
    }
    assert_eq!(
        metrics.count("test", &format!("*.localhost:{port}"), Outcome::Denied),
        1
    );
    assert_eq!(up.hits(), 0);

    // Naming localhost explicitly allows it (real resolution).
    let m = load(
        &rt,
        policy(&[format!("http://localhost:{port}")], HttpConfig::default()),
    )
    .await;
    let out = call(
        &rt,
        &m,
        json!({"url": format!("http://localhost:{port}/echo"), "method": "POST", "body": "hi"}),
    )
    .await;
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn an_oversized_response_is_an_error_value() {
    let up = start_upstream().await;
    let rt = runtime();
    let config = HttpConfig {
        max_response_bytes: 1 << 20,
        ..HttpConfig::default()
    };
    let m = load(&rt, policy(&[up.origin()], config)).await;
    // Declared length: refused before reading.
    let out = call(&rt, &m, json!({"url": up.url("/big")})).await;
    assert!(
        error_of(&out).contains("HttpResponseBodySize(Some(2097152))"),
        "{out}"
    );
    // Chunked: refused once the limit is crossed.
    let out = call(&rt, &m, json!({"url": up.url("/big-chunked")})).await;
    assert!(
        error_of(&out).contains("HttpResponseBodySize(None)"),
        "{out}"
    );
    // An oversized request body, likewise.
    let small = HttpConfig {
        max_request_bytes: 1024,
        ..HttpConfig::default()
    };
    let m = load(&rt, policy(&[up.origin()], small)).await;
    let out = call(
        &rt,
        &m,
        json!({"url": up.url("/echo"), "method": "POST", "body": "z".repeat(4000)}),
    )
    .await;
    assert!(error_of(&out).contains("HttpRequestBodySize"), "{out}");
}

#[tokio::test]
async fn a_slow_upstream_times_out() {
    let up = start_upstream().await;
    let rt = runtime();
    let config = HttpConfig {
        first_byte_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_millis(1500),
        ..HttpConfig::default()
    };
    let m = load(&rt, policy(&[up.origin()], config)).await;
    // The upstream never finishes, so only a timeout ends each call; the
    // deadline, far above the configured timeouts and below the defaults
    // (30 s, 60 s), shows it was the configured one, not a measurement.
    let deadline = Duration::from_secs(20);
    let out = tokio::time::timeout(
        deadline,
        call(&rt, &m, json!({"url": up.url("/slow-head")})),
    )
    .await
    .expect("the configured first-byte timeout ends the call");
    assert!(error_of(&out).contains("ConnectionReadTimeout"), "{out}");

    // The head comes at once, the body trickles on past the total timeout.
    let out = tokio::time::timeout(
        deadline,
        call(&rt, &m, json!({"url": up.url("/slow-body")})),
    )
    .await
    .expect("the configured total timeout ends the call");
    assert!(error_of(&out).contains("HttpResponseTimeout"), "{out}");
}

#[tokio::test]
async fn connect_timeouts_and_refusals_are_values_too() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let rt = runtime();
    let m = load(
        &rt,
        policy(&[format!("http://{closed}")], HttpConfig::default()),
    )
    .await;
    let out = call(&rt, &m, json!({"url": format!("http://{closed}/")})).await;
    assert!(error_of(&out).contains("ConnectionRefused"), "{out}");
}

#[tokio::test]
async fn concurrency_is_limited_per_pipeline() {
    let up = start_upstream().await;
    let rt = runtime();
    let config = HttpConfig {
        max_concurrency: 2,
        ..HttpConfig::default()
    };
    let m = Arc::new(load(&rt, policy(&[up.origin()], config)).await);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (rt, m, url) = (Arc::clone(&rt), Arc::clone(&m), up.url("/busy"));
        tasks.push(tokio::spawn(async move {
            call(&rt, &m, json!({"url": url})).await
        }));
    }
    for t in tasks {
        let out = t.await.unwrap();
        assert_eq!(out["status"], 200, "{out}");
    }
    assert_eq!(up.hits(), 6);
    assert!(up.seen.max_in_flight.load(Ordering::SeqCst) <= 2);
}

fn upstreams(entries: Vec<(&str, String, UpstreamAuth)>, env: &[(&str, &str)]) -> Arc<Upstreams> {
    let config = entries
        .into_iter()
        .map(|(name, url, auth)| {
            (
                name.to_string(),
                UpstreamConfig {
                    url,
                    auth,
                    methods: UpstreamConfig::default_methods(),
                },
            )
        })
        .collect();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(Upstreams::from_config(&config, &|k| env.get(k).cloned()).unwrap())
}

/// fixture-http allowed to reach `up`, whose `/echo` is an upstream
/// with `auth` (secrets read from `env`).
async fn with_echo_upstream(
    rt: &Arc<WasmRuntime>,
    up: &Upstream,
    auth: UpstreamAuth,
    env: &[(&str, &str)],
) -> LoadedModule {
    let p = HttpPolicy::builder("test")
        .allow([up.origin()])
        .upstreams(upstreams(vec![("echo", up.url("/echo"), auth)], env))
        .build()
        .unwrap();
    load(rt, p).await
}

#[tokio::test]
async fn a_bearer_secret_reaches_the_upstream_and_never_the_module() {
    const SECRET: &str = "s3cr3t-expertai-token";
    let up = start_upstream().await;
    let other = start_upstream().await;
    let rt = runtime();
    let ups = upstreams(
        vec![(
            "expertai",
            up.origin(),
            UpstreamAuth {
                bearer_env: Some("EXPERTAI_TOKEN".into()),
                ..UpstreamAuth::default()
            },
        )],
        &[("EXPERTAI_TOKEN", SECRET)],
    );
    let p = HttpPolicy::builder("test")
        .allow([up.origin(), other.origin()])
        .upstreams(ups)
        .build()
        .unwrap();
    let m = load(&rt, p).await;
    let out = call(
        &rt,
        &m,
        json!({"url": up.url("/echo"), "method": "POST", "body": "x",
               "headers": {"authorization": "Bearer module-own", "x-trace": "1"}}),
    )
    .await;
    assert_eq!(out["status"], 200, "{out}");

    // The upstream saw the host's credential, once, replacing the module's.
    let seen = up.seen.headers.lock().unwrap().pop().unwrap();
    let auth: Vec<_> = seen
        .get_all("authorization")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(auth, vec![format!("Bearer {SECRET}")]);
    assert_eq!(seen.get("x-trace").unwrap(), "1");

    // The module's view of its own request: its own header, no secret.
    assert_eq!(
        out["request_headers"]["authorization"], "Bearer module-own",
        "{out}"
    );
    assert!(
        !out.to_string().contains(SECRET),
        "the module saw the secret: {out}"
    );

    // Another origin gets no credential.
    let out = call(&rt, &m, json!({"url": other.url("/echo")})).await;
    assert_eq!(out["status"], 200);
    let seen = other.seen.headers.lock().unwrap().pop().unwrap();
    assert!(seen.get("authorization").is_none());
}

#[tokio::test]
async fn an_upstream_without_its_secret_is_denied_not_sent_bare() {
    let up = start_upstream().await;
    let rt = runtime();
    let auth = UpstreamAuth {
        header: Some("X-Api-Key".into()),
        value_env: Some("NEWSAPI_KEY_NOT_SET".into()),
        ..UpstreamAuth::default()
    };
    let m = with_echo_upstream(&rt, &up, auth, &[]).await;
    let out = call(&rt, &m, json!({"url": up.url("/echo")})).await;
    assert!(error_of(&out).contains("HttpRequestDenied"), "{out}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn a_token_upstream_logs_in_caches_and_refreshes_on_401() {
    let up = start_upstream().await;
    let rt = runtime();
    let ups = upstreams(
        vec![(
            "expertai",
            up.url("/api"),
            UpstreamAuth {
                token_url: Some(up.url("/token")),
                username_env: Some("EAI_USER".into()),
                password_env: Some("EAI_PASS".into()),
                ..UpstreamAuth::default()
            },
        )],
        &[("EAI_USER", "weir-user"), ("EAI_PASS", "weir-pass")],
    );
    let p = HttpPolicy::builder("test")
        .allow([up.origin()])
        .upstreams(ups)
        .build()
        .unwrap();
    let m = load(&rt, p).await;
    let spec = json!({"url": up.url("/api/analyze"), "method": "POST", "body": "{}"});

    for _ in 0..3 {
        let out = call(&rt, &m, spec.clone()).await;
        assert_eq!(out["status"], 200, "{out}");
        assert_eq!(out["body"], "analyzed");
        assert!(!out.to_string().contains("Bearer t"), "{out}");
    }
    assert_eq!(
        up.seen.token_fetches.load(Ordering::SeqCst),
        1,
        "the token is cached"
    );

    // The upstream revokes t1: the next request gets a 401, the host logs
    // in again and retries once, and the module only sees the success.
    up.seen.valid_tokens.lock().unwrap().clear();
    let out = call(&rt, &m, spec.clone()).await;
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(up.seen.token_fetches.load(Ordering::SeqCst), 2);
    let last = up.seen.headers.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.get("authorization").unwrap(), "Bearer t2");
}

/// A tenant's token endpoint is reached like its modules' requests, through
/// the tenant's allowlist and the address rules, never as a trusted host
/// request: an endpoint outside them is never contacted, and the module's
/// request fails instead of going out without its credential.
#[tokio::test]
async fn a_tenants_token_endpoint_goes_through_the_tenants_rules() {
    let up = start_upstream().await;
    let rt = runtime();
    let config: BTreeMap<String, UpstreamConfig> = [(
        "expertai".to_string(),
        UpstreamConfig {
            url: up.url("/api"),
            auth: UpstreamAuth {
                token_url: Some(up.url("/token")),
                username_env: Some("WEIR_TENANT_ACME_USER".into()),
                password_env: Some("WEIR_TENANT_ACME_PASS".into()),
                ..UpstreamAuth::default()
            },
            methods: UpstreamConfig::default_methods(),
        },
    )]
    .into();
    // The credentials the test upstream's token endpoint accepts, so only
    // the gate can keep the fetch from counting.
    let env = |k: &str| match k {
        "WEIR_TENANT_ACME_USER" => Some("weir-user".to_string()),
        "WEIR_TENANT_ACME_PASS" => Some("weir-pass".to_string()),
        _ => None,
    };
    let spec = json!({"url": up.url("/api/analyze"), "method": "POST", "body": "{}"});
    for (tenant_allows, reached) in [
        (vec![up.origin()], true),
        (vec!["http://elsewhere.example".to_string()], false),
    ] {
        let rules = OutboundRules::parse(&tenant_allows, false).unwrap();
        let ups = Arc::new(Upstreams::for_tenant(&config, &env, Arc::new(rules)).unwrap());
        let p = HttpPolicy::builder("acme.p")
            .allow([up.origin()])
            .upstreams(ups)
            .build()
            .unwrap();
        let m = load(&rt, p).await;
        let before = up.seen.token_fetches.load(Ordering::SeqCst);
        let out = call(&rt, &m, spec.clone()).await;
        let fetched = up.seen.token_fetches.load(Ordering::SeqCst) - before;
        if reached {
            assert_eq!(out["status"], 200, "{out}");
            assert_eq!(fetched, 1);
        } else {
            assert_eq!(
                fetched, 0,
                "the token endpoint outside the tenant's rules was contacted"
            );
            assert!(out["status"] != 200, "{out}");
        }
    }
}

/// Pooled vs unpooled client: many small POSTs from a module to a local
/// server. Prints figures; run with
/// `cargo test -p weir --release --test http_policy -- --ignored --nocapture pooled_vs_unpooled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures"]
async fn pooled_vs_unpooled() {
    let up = start_upstream().await;
    let rt = runtime();
    let n: u64 = std::env::var("WEIR_HTTP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let spec = json!({"url": up.url("/echo"), "method": "POST", "body": "{\"text\":\"a short tweet to classify\"}", "repeat": n});
    for (label, idle) in [
        ("pooled (keep-alive)", 32usize),
        ("unpooled (connection per request)", 0),
    ] {
        let config = HttpConfig {
            pool_max_idle_per_host: idle,
            ..HttpConfig::default()
        };
        let m = Arc::new(load(&rt, policy(&[up.origin()], config)).await);
        // Warm-up (instantiation, first connection).
        call(
            &rt,
            &m,
            json!({"url": up.url("/echo"), "method": "POST", "body": "{}", "repeat": 10}),
        )
        .await;

        let started = Instant::now();
        let out = call(&rt, &m, spec.clone()).await;
        let elapsed = started.elapsed();
        assert_eq!(out["ok"], n, "{out}");
        println!(
            "{label:36} sequential: {n} POSTs in {:>7.1} ms  {:>8.0} req/s  {:>7.1} µs/request",
            elapsed.as_secs_f64() * 1e3,
            n as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / n as f64
        );

        let instances = 4u64;
        let per = n / instances;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..instances {
            let (rt, m) = (Arc::clone(&rt), Arc::clone(&m));
            let spec = json!({"url": up.url("/echo"), "method": "POST", "body": "{\"text\":\"a short tweet\"}", "repeat": per});
            tasks.push(tokio::spawn(async move { call(&rt, &m, spec).await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap()["ok"], per);
        }
        let elapsed = started.elapsed();
        println!(
            "{label:36} 4 instances: {} POSTs in {:>7.1} ms  {:>8.0} req/s",
            per * instances,
            elapsed.as_secs_f64() * 1e3,
            (per * instances) as f64 / elapsed.as_secs_f64()
        );
    }
}

/// A tenant's requests/s quota is shared by all its pipelines: past the
/// one-second burst, requests are refused as values (never sent), and the
/// refusals are counted as denied.
#[tokio::test]
async fn a_tenants_request_rate_quota_spans_its_pipelines() {
    let up = start_upstream().await;
    let rt = runtime();
    let rate = Arc::new(weir::runtime::rate::RateLimiter::new(3.0, 3.0));
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    let metrics = HttpMetrics::detached();
    let tenant_policy = |pipeline: &str| {
        HttpPolicy::builder(pipeline)
            .allow([up.origin()])
            .tenant_quota(Arc::clone(&permits), Some(Arc::clone(&rate)))
            .metrics(metrics.clone())
            .build()
            .unwrap()
    };
    let a = load(&rt, tenant_policy("acme.a")).await;
    let b = load(&rt, tenant_policy("acme.b")).await;
    let mut ok = 0;
    let mut refused = Vec::new();
    for i in 0..8 {
        let m = if i % 2 == 0 { &a } else { &b };
        let out = call(&rt, m, json!({"url": up.url("/echo")})).await;
        if out["status"] == 200 {
            ok += 1;
        } else {
            refused.push(out);
        }
    }
    // Loading ran no requests, so the burst of 3 is intact; the whole
    // loop takes far less than the second another token needs.
    assert_eq!(ok, 3, "refused: {refused:?}");
    assert_eq!(up.hits(), 3, "refused requests must not be sent");
    for out in &refused {
        assert!(error_of(out).contains("ConnectionLimitReached"), "{out}");
    }
    let label = format!("{}:{}", up.addr.ip(), up.addr.port());
    let denied = metrics.count("acme.a", &label, Outcome::Denied)
        + metrics.count("acme.b", &label, Outcome::Denied);
    assert_eq!(denied, 5);
}

/// A tenant's concurrency quota is one pool for all its pipelines.
#[tokio::test]
async fn a_tenants_concurrency_quota_spans_its_pipelines() {
    let up = start_upstream().await;
    let rt = runtime();
    let permits = Arc::new(tokio::sync::Semaphore::new(2));
    let tenant_policy = |pipeline: &str| {
        HttpPolicy::builder(pipeline)
            .allow([up.origin()])
            .tenant_quota(Arc::clone(&permits), None)
            .build()
            .unwrap()
    };
    let a = Arc::new(load(&rt, tenant_policy("acme.a")).await);
    let b = Arc::new(load(&rt, tenant_policy("acme.b")).await);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let m = Arc::clone(if i % 2 == 0 { &a } else { &b });
        let (rt, url) = (Arc::clone(&rt), up.url("/busy"));
        tasks.push(tokio::spawn(async move {
            call(&rt, &m, json!({"url": url})).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap()["status"], 200);
    }
    assert_eq!(up.hits(), 6);
    assert!(
        up.seen.max_in_flight.load(Ordering::SeqCst) <= 2,
        "two pipelines, one pool of 2"
    );
}

#[tokio::test]
async fn credentials_go_only_with_normal_paths_and_allowed_methods() {
    const SECRET: &str = "s3cr3t-news-key";
    let up = start_upstream().await;
    let rt = runtime();
    let auth = UpstreamAuth {
        bearer_env: Some("NEWS_TOKEN".into()),
        ..UpstreamAuth::default()
    };
    let m = with_echo_upstream(&rt, &up, auth, &[("NEWS_TOKEN", SECRET)]).await;

    // An escaped unreserved character is matched, and sent, decoded.
    let out = call(&rt, &m, json!({"url": up.url("/%65cho?q=/../x")})).await;
    assert_eq!(out["status"], 200, "{out}");
    let seen = up.seen.headers.lock().unwrap().pop().unwrap();
    assert_eq!(
        seen.get("authorization").unwrap(),
        &format!("Bearer {SECRET}")
    );
    assert_eq!(up.hits(), 1);

    // Paths a server may resolve elsewhere never leave with (or without)
    // the credential; nor do methods the upstream does not allow.
    for (url, method) in [
        (up.url("/echo/../echo"), "GET"),
        (up.url("/echo/%2e%2E/echo"), "GET"),
        (up.url("/echo//x"), "GET"),
        (up.url("/echo%2fx"), "GET"),
        (up.url("/echo"), "DELETE"),
        (up.url("/echo"), "PUT"),
    ] {
        let out = call(&rt, &m, json!({"url": url, "method": method, "body": ""})).await;
        assert!(
            error_of(&out).contains("HttpRequestDenied"),
            "{method} {url}: {out}"
        );
    }
    assert_eq!(up.hits(), 1, "a refused request reached the upstream");
}
