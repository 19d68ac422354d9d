//! The tenant admin API, in-process: a real module registry built from a
//! config folder with two tenants (`acme`, `globex`) and one single-tenant
//! pipeline (`ops`), driven through the admin router with `oneshot`.
//! No Kafka, no Elasticsearch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

use weir::admin::api::{Access, ApiSettings, routes, tenant_series};
use weir::admin::{AdminState, router};
use weir::telemetry::Metrics;

const ACME_TOKEN: &str = "acme-token-0123456789";
const GLOBEX_TOKEN: &str = "globex-token-0123456789";
const OPERATOR_TOKEN: &str = "operator-token-0123456789";
const WRONG_TOKEN: &str = "not-a-token-anyone-has";
/// `[admin] max_upload_bytes`: over text-clean (163 KB), under acme's quota.
const MAX_UPLOAD: usize = 400_000;
/// globex's `max_module_bytes`: over passthrough (75 KB), under text-clean.
const GLOBEX_MAX_MODULE: usize = 100_000;

const UMBRELLA_TOKEN: &str = "umbrella-token-0123456789";
/// How long fixture-sleep's `init` sleeps in umbrella's `slow` pipeline.
const SLEEP_MS: u64 = 10_000;
const UMBRELLA_TOML: &str = r#"
token_sha256 = "TOKEN_SHA"
[quotas]
max_module_bytes = 100000
max_stored_modules = 3
max_stored_module_bytes = 229000
[pipelines.slow]
topics = ["umbrella.slow"]
index = "umbrella-slow"
[[pipelines.slow.modules]]
path = "sleeper.wasm"
config = { during = "init", sleep_ms = "SLEEP_MS" }
"#;

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A module built by `cargo xtask modules`.
fn dist(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dist/modules")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the modules first: `cargo xtask modules`",
            path.display()
        )
    })
}

struct Host {
    dir: tempfile::TempDir,
    state: AdminState,
    app: Router,
    registry: Arc<weir::modules::Registry>,
    metrics: Metrics,
    config: weir::config::Config,
}

impl Host {
    async fn new(operator_token: bool) -> Self {
        Self::build(operator_token, false).await
    }

    /// With a third tenant, `umbrella` ([`UMBRELLA_TOML`]): small stored
    /// module caps and a slot whose module sleeps `SLEEP_MS` in `init`.
    async fn with_umbrella() -> Self {
        Self::build(false, true).await
    }

    async fn build(operator_token: bool, umbrella: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let operator = if operator_token {
            format!("operator_token_sha256 = \"{}\"\n", sha(OPERATOR_TOKEN))
        } else {
            String::new()
        };
        std::fs::write(
            root.join("weir.toml"),
            format!(
                r#"
[kafka]
brokers = "127.0.0.1:9092"
[elasticsearch]
url = "http://127.0.0.1:9200"
[admin]
max_upload_bytes = {MAX_UPLOAD}
{operator}
[tenants]
dir = "tenants"

[pipelines.ops]
topics = ["ops-in"]
index = "ops"
modules = [{{ path = "ops/passthrough.wasm" }}]
"#
            ),
        )
        .unwrap();
        std::fs::create_dir_all(root.join("ops")).unwrap();
        std::fs::write(root.join("ops/passthrough.wasm"), dist("passthrough")).unwrap();
        std::fs::create_dir_all(root.join("tenants/acme/modules")).unwrap();
        std::fs::create_dir_all(root.join("tenants/globex/modules")).unwrap();
        std::fs::write(
            root.join("tenants/acme.toml"),
            format!(
                r#"
token_sha256 = "{}"
[quotas]
max_module_bytes = 1000000
[pipelines.tweets]
topics = ["acme.tweets"]
index = "acme-tweets"
modules = [{{ path = "text-clean.wasm" }}]
"#,
                sha(ACME_TOKEN)
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("tenants/acme/modules/text-clean.wasm"),
            dist("text-clean"),
        )
        .unwrap();
        std::fs::write(
            root.join("tenants/globex.toml"),
            format!(
                r#"
token_sha256 = "{}"
[quotas]
max_module_bytes = {GLOBEX_MAX_MODULE}
[pipelines.news]
topics = ["globex.news"]
index = "globex-news"
modules = [{{ path = "passthrough.wasm" }}]
"#,
                sha(GLOBEX_TOKEN)
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("tenants/globex/modules/passthrough.wasm"),
            dist("passthrough"),
        )
        .unwrap();
        if umbrella {
            std::fs::create_dir_all(root.join("tenants/umbrella/modules")).unwrap();
            std::fs::write(
                root.join("tenants/umbrella.toml"),
                UMBRELLA_TOML
                    .replace("TOKEN_SHA", &sha(UMBRELLA_TOKEN))
                    .replace("SLEEP_MS", &SLEEP_MS.to_string()),
            )
            .unwrap();
            // Passthrough ignores the sleep settings; fixture-sleep obeys them.
            std::fs::write(
                root.join("tenants/umbrella/modules/sleeper.wasm"),
                dist("passthrough"),
            )
            .unwrap();
        }

        let config = weir::config::Config::load(&root.join("weir.toml")).unwrap();
        let runtime = Arc::new(weir::runtime::WasmRuntime::new(&config.runtime).unwrap());
        let mut prom = prometheus_client::registry::Registry::default();
        let http = weir::runtime::OutboundHttp::new(&config, &mut prom).unwrap();
        let metrics = Metrics::register(&mut prom);
        let registry = weir::modules::Registry::build(runtime, http, metrics.clone(), 5, &config)
            .await
            .unwrap();
        let state = AdminState {
            fleet: None,
            registry: Arc::new(prom),
            health: Arc::new(Vec::new),
            modules: Some(Arc::clone(&registry)),
            config_status: Default::default(),
            status: None,
            api: ApiSettings::from(&config.admin),
        };
        Host {
            dir,
            app: router(state.clone()),
            state,
            registry,
            metrics,
            config,
        }
    }

    async fn call(&self, req: Req<'_>) -> Resp {
        let mut b = Request::builder().method(req.method).uri(req.path);
        if let Some(t) = req.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = req.content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        if req.content_length {
            b = b.header(header::CONTENT_LENGTH, req.body.len());
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::from(req.body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap();
        Resp {
            status,
            headers,
            body: body.to_vec(),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Req::new("GET", path).token(token)).await
    }

    /// `PUT /v1/tenants/{tenant}/modules/{name}` with `dist(module)`.
    async fn upload(&self, tenant: &str, name: &str, module: &str, token: &str) -> Resp {
        self.call(
            Req::new("PUT", format!("/v1/tenants/{tenant}/modules/{name}"))
                .wasm(dist(module))
                .token(Some(token)),
        )
        .await
    }

    async fn post(&self, path: impl Into<String>, token: &str) -> Resp {
        self.call(Req::new("POST", path).token(Some(token))).await
    }

    /// The active digest of a module slot, from the registry itself.
    fn active(&self, pipeline: &str, module: &str) -> String {
        self.registry
            .status()
            .into_iter()
            .find(|m| m.pipeline == pipeline && m.module == module)
            .unwrap_or_else(|| panic!("no module {pipeline}/{module}"))
            .active
            .digest
    }

    async fn paused(&self, pipeline: &str) -> bool {
        self.registry
            .pipelines(None)
            .await
            .into_iter()
            .find(|p| p.name == pipeline)
            .unwrap()
            .control
            .paused
    }

    /// Every file under the config folder with a digest of its content.
    fn files(&self) -> BTreeMap<PathBuf, String> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    out.insert(p, hex::encode(Sha256::digest(&bytes)));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

struct Req<'a> {
    method: &'a str,
    path: String,
    token: Option<&'a str>,
    body: Vec<u8>,
    content_type: Option<&'a str>,
    content_length: bool,
}

impl<'a> Req<'a> {
    fn new(method: &'a str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            token: None,
            body: Vec::new(),
            content_type: None,
            content_length: false,
        }
    }
    fn token(mut self, t: Option<&'a str>) -> Self {
        self.token = t;
        self
    }
    fn wasm(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self.content_type = Some("application/wasm");
        self
    }
    fn json(mut self, v: Value) -> Self {
        self.body = serde_json::to_vec(&v).unwrap();
        self.content_type = Some("application/json");
        self
    }
    fn with_content_length(mut self) -> Self {
        self.content_length = true;
        self
    }
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.text()))
            .to_string()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn tenant_ids(r: &Resp) -> Vec<String> {
    r.json()["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// `path` matches the route template `template` (`{x}` = one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// One request per tenant route, on acme's paths, each answering 200 to
/// acme's token when run in this order.
fn acme_probes() -> Vec<Req<'static>> {
    vec![
        Req::new("GET", "/v1/tenants"),
        Req::new("GET", "/v1/tenants/acme"),
        Req::new("GET", "/v1/tenants/acme/pipelines"),
        Req::new("GET", "/v1/tenants/acme/pipelines/tweets"),
        Req::new("PUT", "/v1/tenants/acme/modules/text-clean").wasm(dist("passthrough")),
        Req::new(
            "POST",
            "/v1/tenants/acme/pipelines/tweets/modules/text-clean/rollback",
        ),
        Req::new("POST", "/v1/tenants/acme/pipelines/tweets/pause"),
        Req::new("POST", "/v1/tenants/acme/pipelines/tweets/resume"),
        Req::new("GET", "/v1/tenants/acme/metrics"),
    ]
}

fn assert_covers(probes: &[(&str, String)], access: &[Access]) {
    for r in routes().iter().filter(|r| access.contains(&r.access)) {
        assert!(
            probes
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(r.method) && matches_template(r.path, p)),
            "no probe for {} {}",
            r.method,
            r.path
        );
    }
}

fn assert_unauthorized(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Bearer",
        "{what}: WWW-Authenticate"
    );
    assert!(!r.error().is_empty(), "{what}");
}

#[tokio::test]
async fn every_tenant_endpoint_refuses_missing_wrong_and_foreign_tokens() {
    let host = Host::new(false).await;
    let probes = acme_probes();
    assert_covers(
        &probes
            .iter()
            .map(|r| (r.method, r.path.clone()))
            .collect::<Vec<_>>(),
        &[Access::Tenant],
    );
    let digest = host.active("acme.tweets", "text-clean");
    let files = host.files();

    for make in [None, Some(WRONG_TOKEN), Some(OPERATOR_TOKEN), Some("")] {
        for p in acme_probes() {
            let what = format!("{} {} with {make:?}", p.method, p.path);
            let r = host.call(p.token(make)).await;
            assert_unauthorized(&r, &what);
        }
    }
    // globex's token on acme's paths: 404, worded as for a tenant that
    // doesn't exist; the list shows only globex.
    for p in acme_probes() {
        let what = format!("{} {} with globex's token", p.method, p.path);
        let list = p.path == "/v1/tenants";
        let r = host.call(p.token(Some(GLOBEX_TOKEN))).await;
        if list {
            assert_eq!(r.status, StatusCode::OK, "{what}");
            let ids = tenant_ids(&r);
            assert_eq!(ids, ["globex"], "{what}");
        } else {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.text());
            assert_eq!(
                r.json(),
                serde_json::json!({"error": "no tenant `acme`"}),
                "{what}"
            );
        }
    }
    let unknown = host
        .get("/v1/tenants/initech/pipelines", Some(GLOBEX_TOKEN))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json(),
        serde_json::json!({"error": "no tenant `initech`"})
    );
    // Nothing the refused requests carried took effect.
    assert_eq!(host.active("acme.tweets", "text-clean"), digest);
    assert!(!host.paused("acme.tweets").await);
    assert_eq!(host.files(), files);

    // acme's own token: every probe answers 200.
    for p in acme_probes() {
        let what = format!("{} {} with acme's token", p.method, p.path);
        let r = host.call(p.token(Some(ACME_TOKEN))).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
    }
    // The upload and the rollback after it leave the original active.
    assert_eq!(host.active("acme.tweets", "text-clean"), digest);
}

#[tokio::test]
async fn a_tenant_cannot_read_or_change_another_tenant() {
    let host = Host::new(false).await;
    let digest = host.active("globex.news", "passthrough");
    let files = host.files();
    for path in [
        "/v1/tenants/globex",
        "/v1/tenants/globex/pipelines",
        "/v1/tenants/globex/pipelines/news",
        "/v1/tenants/globex/metrics",
    ] {
        let r = host.get(path, Some(ACME_TOKEN)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.error(), "no tenant `globex`", "{path}");
    }
    // Pushing a valid module to globex's folder.
    let r = host
        .call(
            Req::new("PUT", "/v1/tenants/globex/modules/passthrough")
                .wasm(dist("fixture-trap"))
                .token(Some(ACME_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for action in ["pause", "resume"] {
        let r = host
            .call(
                Req::new(
                    "POST",
                    format!("/v1/tenants/globex/pipelines/news/{action}"),
                )
                .token(Some(ACME_TOKEN)),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    let r = host
        .call(
            Req::new(
                "POST",
                "/v1/tenants/globex/pipelines/news/modules/passthrough/rollback",
            )
            .token(Some(ACME_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Nor through its own tenant's paths.
    for pipeline in ["news", "globex.news", "..%2Fglobex.news", "ops"] {
        let r = host
            .call(
                Req::new(
                    "POST",
                    format!("/v1/tenants/acme/pipelines/{pipeline}/pause"),
                )
                .token(Some(ACME_TOKEN)),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{pipeline}: {}", r.text());
    }
    assert_eq!(host.active("globex.news", "passthrough"), digest);
    assert!(!host.paused("globex.news").await);
    assert!(!host.paused("ops").await);
    assert_eq!(host.files(), files);

    // Its own pipelines list holds only its own.
    let r = host
        .get("/v1/tenants/acme/pipelines", Some(ACME_TOKEN))
        .await;
    let names: Vec<String> = r.json()["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["acme.tweets"]);
}

#[tokio::test]
async fn module_names_that_could_escape_are_refused_and_nothing_is_written() {
    let host = Host::new(false).await;
    let digest = host.active("acme.tweets", "text-clean");
    let files = host.files();
    for name in [
        "..%2Fx",
        "a%2Fb",
        ".hidden",
        "UPPER",
        "..",
        "%2E%2E",
        "..%2F..%2Fweir",
        "a.b",
        "x%00",
        "-dash",
        "sp%20ace",
        &"a".repeat(65),
    ] {
        let r = host
            .call(
                Req::new("PUT", format!("/v1/tenants/acme/modules/{name}"))
                    .wasm(dist("passthrough"))
                    .token(Some(ACME_TOKEN)),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.text());
        assert!(r.error().contains("is not a module name"), "{name}");
    }
    assert_eq!(host.files(), files, "nothing written anywhere");
    assert_eq!(host.active("acme.tweets", "text-clean"), digest);
}

#[tokio::test]
async fn oversize_uploads_are_refused_with_413_and_nothing_changes() {
    let host = Host::new(false).await;
    let acme = host.active("acme.tweets", "text-clean");
    let globex = host.active("globex.news", "passthrough");
    let files = host.files();

    // Over globex's max_module_bytes (a valid component, 163 KB), with and
    // without a Content-Length header.
    for with_length in [false, true] {
        let mut req = Req::new("PUT", "/v1/tenants/globex/modules/passthrough")
            .wasm(dist("text-clean"))
            .token(Some(GLOBEX_TOKEN));
        if with_length {
            req = req.with_content_length();
        }
        let r = host.call(req).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        assert!(
            r.error().contains(&GLOBEX_MAX_MODULE.to_string()),
            "names the limit: {}",
            r.error()
        );
    }
    // Over [admin] max_upload_bytes (acme's own quota is larger).
    let mut big = dist("text-clean");
    big.resize(MAX_UPLOAD + 1, 0);
    for with_length in [false, true] {
        let mut req = Req::new("PUT", "/v1/tenants/acme/modules/text-clean")
            .wasm(big.clone())
            .token(Some(ACME_TOKEN));
        if with_length {
            req = req.with_content_length();
        }
        let r = host.call(req).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        assert!(
            r.error().contains(&MAX_UPLOAD.to_string()),
            "names the limit: {}",
            r.error()
        );
    }
    assert_eq!(host.active("acme.tweets", "text-clean"), acme);
    assert_eq!(host.active("globex.news", "passthrough"), globex);
    assert_eq!(host.files(), files, "no file written or changed");
}

#[tokio::test]
async fn invalid_modules_are_refused_with_422_and_the_old_version_stays() {
    let host = Host::new(false).await;
    let digest = host.active("acme.tweets", "text-clean");
    let files = host.files();
    for (what, bytes, expect) in [
        ("wrong world", dist("fixture-wrong-world"), ""),
        ("garbage", b"\0asm garbage, not a component".to_vec(), ""),
        (
            "init fails",
            dist("fixture-fail-init"),
            "fixture: init refuses",
        ),
    ] {
        let r = host
            .call(
                Req::new("PUT", "/v1/tenants/acme/modules/text-clean")
                    .wasm(bytes.clone())
                    .token(Some(ACME_TOKEN)),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            r.text()
        );
        let message = r.error();
        assert!(
            !message.is_empty() && message.contains(expect),
            "{what}: {message}"
        );
        // Also as a module no pipeline uses yet: checked all the same.
        if what != "init fails" {
            let r = host
                .call(
                    Req::new("PUT", "/v1/tenants/acme/modules/spare")
                        .wasm(bytes)
                        .token(Some(ACME_TOKEN)),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{what} (spare)");
        }
        assert_eq!(host.active("acme.tweets", "text-clean"), digest, "{what}");
        assert_eq!(host.files(), files, "{what}: nothing written");
    }
    // A wrong content type is refused before anything is read.
    let mut req = Req::new("PUT", "/v1/tenants/acme/modules/text-clean")
        .json(serde_json::json!({}))
        .token(Some(ACME_TOKEN));
    req.content_type = Some("application/json");
    let r = host.call(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The refusals are visible in the pipeline's status.
    let r = host
        .get("/v1/tenants/acme/pipelines/tweets", Some(ACME_TOKEN))
        .await;
    assert_eq!(r.json()["modules"][0]["active"]["digest"], digest.as_str());
}

#[tokio::test]
async fn a_valid_upload_activates_and_rollback_restores() {
    let host = Host::new(false).await;
    let original = host.active("acme.tweets", "text-clean");
    let new = dist("passthrough");
    let r = host
        .call(
            Req::new("PUT", "/v1/tenants/acme/modules/text-clean")
                .wasm(new.clone())
                .token(Some(ACME_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let report = r.json();
    let digest = hex::encode(Sha256::digest(&new));
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["bytes"], new.len());
    assert_eq!(
        report["activated"],
        serde_json::json!(["acme.tweets/text-clean"])
    );
    assert_eq!(host.active("acme.tweets", "text-clean"), digest);
    assert_eq!(
        std::fs::read(host.dir.path().join("tenants/acme/modules/text-clean.wasm")).unwrap(),
        new
    );
    let p = host
        .get("/v1/tenants/acme/pipelines/tweets", Some(ACME_TOKEN))
        .await
        .json();
    assert_eq!(p["modules"][0]["active"]["digest"], digest.as_str());
    assert_eq!(p["modules"][0]["versions"].as_array().unwrap().len(), 2);
    // A tenant sees its module paths inside its folder, not the host's layout.
    assert_eq!(p["modules"][0]["path"], "text-clean.wasm");

    // Back to the previous version, then forward again by digest prefix.
    let rollback = "/v1/tenants/acme/pipelines/tweets/modules/text-clean/rollback";
    let r = host
        .call(Req::new("POST", rollback).token(Some(ACME_TOKEN)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["active"]["digest"], original.as_str());
    assert_eq!(host.active("acme.tweets", "text-clean"), original);
    let r = host
        .call(
            Req::new("POST", rollback)
                .json(serde_json::json!({"to": &digest[..12]}))
                .token(Some(ACME_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(host.active("acme.tweets", "text-clean"), digest);
    let r = host
        .call(
            Req::new("POST", rollback)
                .json(serde_json::json!({"to": "ffffffffffff"}))
                .token(Some(ACME_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = host
        .call(
            Req::new(
                "POST",
                "/v1/tenants/acme/pipelines/tweets/modules/nope/rollback",
            )
            .token(Some(ACME_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A module no pipeline uses yet (one that traps on every record, but
    // passes init) is stored and activated nowhere.
    let r = host
        .call(
            Req::new("PUT", "/v1/tenants/acme/modules/trap")
                .wasm(dist("fixture-trap"))
                .token(Some(ACME_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["activated"], serde_json::json!([]));
    assert_eq!(
        std::fs::read(host.dir.path().join("tenants/acme/modules/trap.wasm")).unwrap(),
        dist("fixture-trap")
    );
    // globex's module is untouched by all of it.
    assert_eq!(
        host.active("globex.news", "passthrough"),
        hex::encode(Sha256::digest(dist("passthrough")))
    );
}

#[tokio::test]
async fn pause_and_resume_flip_the_pipeline_state() {
    let host = Host::new(false).await;
    let paused = |r: &Resp| r.json()["paused"].as_bool().unwrap();
    let status = "/v1/tenants/acme/pipelines/tweets";
    assert!(!paused(&host.get(status, Some(ACME_TOKEN)).await));

    let act = |verb: &'static str| {
        Req::new("POST", format!("/v1/tenants/acme/pipelines/tweets/{verb}"))
            .token(Some(ACME_TOKEN))
    };
    let r = host.call(act("pause")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["changed"], true);
    assert_eq!(r.json()["pipeline"]["paused"], true);
    assert!(paused(&host.get(status, Some(ACME_TOKEN)).await));
    assert!(host.paused("acme.tweets").await);
    assert!(!host.paused("globex.news").await, "only acme's pipeline");

    let r = host.call(act("pause")).await;
    assert_eq!(r.json()["changed"], false, "already paused");

    let r = host.call(act("resume")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["changed"], true);
    assert!(!paused(&host.get(status, Some(ACME_TOKEN)).await));
    assert!(!host.paused("acme.tweets").await);

    let r = host
        .call(Req::new("POST", "/v1/tenants/acme/pipelines/nope/pause").token(Some(ACME_TOKEN)))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), "no pipeline `nope` in tenant `acme`");
}

#[tokio::test]
async fn tenant_metrics_hold_only_that_tenants_series() {
    let host = Host::new(false).await;
    host.metrics
        .pipeline("acme.tweets")
        .records_consumed
        .inc_by(11);
    host.metrics
        .pipeline("globex.news")
        .records_consumed
        .inc_by(22);
    host.metrics.pipeline("ops").records_consumed.inc_by(33);

    let all = host.get("/metrics", None).await;
    assert_eq!(all.status, StatusCode::OK);
    let all = all.text();
    assert!(all.contains("tenant=\"globex\"") && all.contains("tenant=\"\""));

    let r = host.get("/v1/tenants/acme/metrics", Some(ACME_TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("weir_records_consumed_total{tenant=\"acme\",pipeline=\"acme.tweets\"} 11"),
        "{text}"
    );
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!samples.is_empty());
    for s in &samples {
        assert!(s.contains("tenant=\"acme\""), "{s}");
        assert!(all.lines().any(|l| l == *s), "{s} is a line of /metrics");
    }
    // Exactly the acme-labelled samples of /metrics.
    let expected: Vec<&str> = all
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("tenant=\"acme\""))
        .collect();
    assert_eq!(samples, expected);
    // Metadata only for families with a kept sample.
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = l.split(' ').nth(2).unwrap();
        assert!(
            samples.iter().any(|s| s.starts_with(family)),
            "{family} has no sample"
        );
    }
    assert!(!text.contains("globex") && !text.contains("tenant=\"\""));
}

#[test]
fn tenant_series_reads_labels_exactly() {
    let text = "# HELP a_total A.\n# TYPE a_total counter\n\
        a_total{tenant=\"acme\",pipeline=\"acme.x\"} 1\n\
        a_total{tenant=\"globex\",pipeline=\"globex.x\"} 2\n\
        a_total{tenant=\"\",pipeline=\"ops\"} 3\n\
        # HELP b B.\n# TYPE b gauge\nb{topic=\"t\"} 4\n\
        # HELP c C.\n# TYPE c counter\n\
        c_total{pipeline=\"x\",note=\"tenant=\\\"acme\\\"\",tenant=\"globex\"} 5\n\
        c_total{xtenant=\"acme\",tenant=\"acme\"} 6\n# EOF\n";
    assert_eq!(
        tenant_series(text, "acme"),
        "# HELP a_total A.\n# TYPE a_total counter\n\
         a_total{tenant=\"acme\",pipeline=\"acme.x\"} 1\n\
         # HELP c C.\n# TYPE c counter\n\
         c_total{xtenant=\"acme\",tenant=\"acme\"} 6\n# EOF\n"
    );
    assert_eq!(tenant_series(text, "nobody"), "# EOF\n");
}

#[tokio::test]
async fn the_operator_token_guards_operator_endpoints_and_sees_every_tenant() {
    let host = Host::new(true).await;
    // Give the operator rollback something to roll back to.
    let r = host
        .call(
            Req::new("PUT", "/v1/tenants/acme/modules/text-clean")
                .wasm(dist("passthrough"))
                .token(Some(OPERATOR_TOKEN)),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the operator may push: {}",
        r.text()
    );

    let mut operator: Vec<Req> = ["/metrics", "/v1/modules"]
        .into_iter()
        .chain(weir::admin::api::STATUS_PAGE_ROUTES.iter().copied())
        .map(|p| Req::new("GET", p))
        .collect();
    operator.push(Req::new(
        "POST",
        "/v1/modules/acme.tweets/text-clean/rollback",
    ));
    // A fleet's tenant routes: guarded alike; a files-mode host refuses
    // them (409) even to the operator.
    let fleet_only = [
        ("PUT", "/v1/control/tenants/acme"),
        ("DELETE", "/v1/control/tenants/acme"),
    ];
    let mut covered: Vec<(&str, String)> = operator
        .iter()
        .map(|r| (r.method, r.path.clone()))
        .chain(fleet_only.iter().map(|(m, p)| (*m, p.to_string())))
        .collect();
    covered.push(("GET", "/healthz".into()));
    assert_covers(&covered, &[Access::Operator, Access::Open]);
    for (method, path) in fleet_only {
        for make in [None, Some(WRONG_TOKEN)] {
            let r = host.call(Req::new(method, path).token(make)).await;
            assert_unauthorized(&r, &format!("{method} {path} with {make:?}"));
        }
        let r = host
            .call(Req::new(method, path).token(Some(ACME_TOKEN)))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
        let r = host
            .call(Req::new(method, path).token(Some(OPERATOR_TOKEN)))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{method} {path}");
        assert!(r.error().contains("control.mode"), "{}", r.text());
    }

    for make in [None, Some(WRONG_TOKEN)] {
        for p in &operator {
            let r = host
                .call(Req::new(p.method, p.path.clone()).token(make))
                .await;
            assert_unauthorized(&r, &format!("{} {} with {make:?}", p.method, p.path));
        }
    }
    for p in &operator {
        let r = host
            .call(Req::new(p.method, p.path.clone()).token(Some(ACME_TOKEN)))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{} {}", p.method, p.path);
        assert!(r.error().contains("operator"));
    }
    for p in operator {
        let what = format!("{} {}", p.method, p.path);
        let r = host.call(p.token(Some(OPERATOR_TOKEN))).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
    }
    assert_eq!(
        host.active("acme.tweets", "text-clean"),
        hex::encode(Sha256::digest(dist("text-clean"))),
        "the operator's rollback took effect"
    );
    // Open to anyone, but only the operator sees the components (their
    // last errors can quote Elasticsearch).
    for token in [None, Some(WRONG_TOKEN), Some(ACME_TOKEN)] {
        let r = host.get("/healthz", token).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json(), serde_json::json!({"healthy": true}), "{token:?}");
    }
    let r = host.get("/healthz", Some(OPERATOR_TOKEN)).await.json();
    assert_eq!(r["healthy"], true);
    assert!(r["components"].is_array(), "{r}");

    // The operator sees and acts on every tenant.
    let r = host.get("/v1/tenants", Some(OPERATOR_TOKEN)).await;
    let ids = tenant_ids(&r);
    assert_eq!(ids, ["acme", "globex"]);
    for path in [
        "/v1/tenants/acme/pipelines/tweets",
        "/v1/tenants/globex",
        "/v1/tenants/globex/pipelines/news",
        "/v1/tenants/globex/metrics",
    ] {
        let r = host.get(path, Some(OPERATOR_TOKEN)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let r = host
        .call(
            Req::new("POST", "/v1/tenants/globex/pipelines/news/pause").token(Some(OPERATOR_TOKEN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(host.paused("globex.news").await);
    let r = host.get("/v1/tenants/initech", Some(OPERATOR_TOKEN)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), "no tenant `initech`");
    // Tenants still only see themselves.
    let r = host.get("/v1/tenants/globex", Some(ACME_TOKEN)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_an_operator_token_operator_endpoints_stay_open_and_tenant_ones_do_not() {
    let host = Host::new(false).await;
    for path in ["/metrics", "/v1/modules", "/healthz", "/", "/v1/status"] {
        let r = host.get(path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let r = host.get("/v1/modules", None).await.json();
    assert_eq!(r["modules"].as_array().unwrap().len(), 3);
    for path in ["/v1/tenants", "/v1/tenants/acme"] {
        assert_unauthorized(&host.get(path, None).await, path);
        assert_unauthorized(&host.get(path, Some(OPERATOR_TOKEN)).await, path);
    }
}

#[tokio::test]
async fn the_openapi_file_documents_exactly_the_served_routes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    let mut documented = BTreeSet::new();
    for (p, item) in doc["paths"].as_object().unwrap() {
        for (m, _) in item.as_object().unwrap() {
            if methods.contains(&m.as_str()) {
                documented.insert((m.clone(), p.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "served but not in docs/openapi.json"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in docs/openapi.json but not served"
    );

    let resolve = |v: &Value| -> Value {
        match v["$ref"].as_str() {
            Some(r) => {
                let mut cur = &doc;
                for part in r.trim_start_matches("#/").split('/') {
                    cur = &cur[part];
                }
                assert!(!cur.is_null(), "dangling {r}");
                cur.clone()
            }
            None => v.clone(),
        }
    };
    for r in routes() {
        let op = &doc["paths"][r.path][r.method];
        let what = format!("{} {}", r.method, r.path);
        let responses = op["responses"].as_object().unwrap();
        for (_, resp) in responses {
            resolve(resp);
        }
        assert!(responses.contains_key("200"), "{what}: 200");
        match r.access {
            Access::Open => assert_eq!(op["security"], serde_json::json!([]), "{what}"),
            Access::Operator => {
                assert_eq!(
                    op["security"],
                    serde_json::json!([{"bearer": []}, {}]),
                    "{what}"
                );
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{what}"
                );
            }
            Access::Tenant => {
                assert!(
                    op.get("security").is_none(),
                    "{what}: the global bearer requirement"
                );
                assert!(responses.contains_key("401"), "{what}");
                if r.path.contains("{tenant}") {
                    assert!(responses.contains_key("404"), "{what}");
                }
            }
        }
        let params: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(&resolve)
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        let in_path: BTreeSet<String> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(String::from)
            .collect();
        assert_eq!(params, in_path, "{what}: path parameters");
    }
    let upload = doc["paths"]["/v1/tenants/{tenant}/modules/{name}"]["put"]["responses"]
        .as_object()
        .unwrap();
    for code in ["400", "401", "404", "413", "415", "422"] {
        assert!(upload.contains_key(code), "upload documents {code}");
    }

    // Every documented route is served (status page routes included, whose
    // router lives elsewhere): with the operator's token each answers
    // something other than the router's own 404/405.
    let host = Host::new(true).await;
    for r in routes() {
        let path = r
            .path
            .replace("{tenant}", "acme")
            .replace(
                "{pipeline}/{module}/rollback",
                "acme.tweets/text-clean/rollback",
            )
            .replace("{pipeline}", "tweets")
            .replace("{module}", "text-clean")
            .replace("{name}", "spare");
        let resp = host
            .call(Req::new(&r.method.to_uppercase(), path.clone()).token(Some(OPERATOR_TOKEN)))
            .await;
        assert_ne!(resp.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert!(
            resp.status != StatusCode::NOT_FOUND || !resp.body.is_empty(),
            "{} {path}: not routed",
            r.method
        );
    }
}

/// Runs the `weir` binary; returns (success, stdout, stderr).
async fn weir_cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(args)
        .env_remove("WEIR_TOKEN")
        .env_remove("WEIR_ADMIN")
        .env_remove("WEIR_TENANT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_pushes_rolls_back_and_pauses_through_the_api() {
    let host = Host::new(false).await;
    let (addr, stop, server) = serve_tcp(&host, |_| {}).await;
    let url = format!("http://{addr}");
    let admin = ["--admin", url.as_str()];
    let with = |rest: &[&'static str], token: &'static str| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        v.extend(admin.iter().map(|s| s.to_string()));
        v.extend(["--token".to_string(), token.to_string()]);
        v
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        weir_cli(&refs, &[]).await
    };

    // A new token and the line that configures it.
    let (ok, out, _) = weir_cli(&["tenants", "token"], &[]).await;
    assert!(ok);
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("weir_"))
        .expect("a token line");
    assert_eq!(token.len(), 5 + 64);
    assert!(
        out.contains(&format!("token_sha256 = \"{}\"", sha(token))),
        "{out}"
    );

    let (ok, out, err) = run(with(&["tenants", "list"], ACME_TOKEN)).await;
    assert!(ok, "{err}");
    assert!(out.contains("acme") && !out.contains("globex"), "{out}");
    let (ok, out, err) = run(with(&["tenants", "show", "acme"], ACME_TOKEN)).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("acme.tweets") && out.contains("text-clean"),
        "{out}"
    );
    let (ok, _, err) = run(with(&["tenants", "show", "globex"], ACME_TOKEN)).await;
    assert!(!ok);
    assert!(err.contains("no tenant `globex`"), "{err}");

    // Push: accepted and activated; refused with the server's message.
    let wasm = host.dir.path().join("upload.wasm");
    std::fs::write(&wasm, dist("passthrough")).unwrap();
    let wasm = wasm.to_str().unwrap().to_string();
    let push = |file: &str, name: &str, tenant: &str| {
        vec![
            "modules".to_string(),
            "push".into(),
            file.into(),
            "--tenant".into(),
            tenant.into(),
            "--name".into(),
            name.into(),
            "--admin".into(),
            url.clone(),
        ]
    };
    let (ok, out, err) = weir_cli(
        &push(&wasm, "text-clean", "acme")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("WEIR_TOKEN", ACME_TOKEN)],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("activated in: acme.tweets/text-clean"),
        "{out}"
    );
    assert_eq!(
        host.active("acme.tweets", "text-clean"),
        hex::encode(Sha256::digest(dist("passthrough")))
    );
    let bad = host.dir.path().join("bad.wasm");
    std::fs::write(&bad, dist("fixture-wrong-world")).unwrap();
    let (ok, _, err) = weir_cli(
        &push(bad.to_str().unwrap(), "text-clean", "acme")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("WEIR_TOKEN", ACME_TOKEN)],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("refused") && err.contains("422"), "{err}");
    let (ok, _, err) = weir_cli(
        &push(&wasm, "passthrough", "globex")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("WEIR_TOKEN", ACME_TOKEN)],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("no tenant `globex`"), "{err}");

    // Status and rollback, scoped to the tenant.
    let (ok, out, err) = run(with(&["modules", "status", "--tenant", "acme"], ACME_TOKEN)).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("acme.tweets/text-clean") && out.contains("(2 kept)"),
        "{out}"
    );
    let (ok, out, err) = run(with(
        &["modules", "rollback", "text-clean", "--tenant", "acme"],
        ACME_TOKEN,
    ))
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("acme.tweets/text-clean: active"), "{out}");
    assert_eq!(
        host.active("acme.tweets", "text-clean"),
        hex::encode(Sha256::digest(dist("text-clean")))
    );

    // Pause and resume.
    let (ok, out, err) = run(with(&["pipelines", "pause", "acme", "tweets"], ACME_TOKEN)).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "acme.tweets: paused");
    assert!(host.paused("acme.tweets").await);
    let (ok, out, _) = run(with(&["pipelines", "resume", "acme", "tweets"], ACME_TOKEN)).await;
    assert!(ok);
    assert_eq!(out.trim(), "acme.tweets: running");
    assert!(!host.paused("acme.tweets").await);

    // No token: the server's message and a hint.
    let (ok, _, err) = run(vec![
        "tenants".into(),
        "list".into(),
        "--admin".into(),
        url.clone(),
    ])
    .await;
    assert!(!ok);
    assert!(
        err.contains("missing bearer token") && err.contains("WEIR_TOKEN"),
        "{err}"
    );

    stop.cancel();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_whose_init_sleeps_does_not_hold_up_another_tenants_control_plane() {
    let host = Arc::new(Host::with_umbrella().await);
    // globex gets a second version first, so it has something to roll
    // back to while umbrella's upload runs.
    let original = host.active("globex.news", "passthrough");
    let r = host
        .upload("globex", "passthrough", "fixture-trap", GLOBEX_TOKEN)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_ne!(host.active("globex.news", "passthrough"), original);

    // umbrella uploads fixture-sleep into a slot whose settings make its
    // init sleep SLEEP_MS.
    let upload = {
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            host.upload("umbrella", "sleeper", "fixture-sleep", UMBRELLA_TOKEN)
                .await
        })
    };
    // Let the upload reach its load (compile, then init) first; the lock
    // it used to hold was taken before compiling.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(!upload.is_finished(), "the upload sleeps in init");

    let r = host
        .get("/v1/tenants/globex/pipelines", Some(GLOBEX_TOKEN))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["pipelines"][0]["name"], "globex.news");
    for (action, paused) in [("pause", true), ("resume", false)] {
        let r = host
            .post(
                format!("/v1/tenants/globex/pipelines/news/{action}"),
                GLOBEX_TOKEN,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.text());
        assert_eq!(host.paused("globex.news").await, paused, "{action}");
    }
    let r = host
        .post(
            "/v1/tenants/globex/pipelines/news/modules/passthrough/rollback",
            GLOBEX_TOKEN,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(host.active("globex.news", "passthrough"), original);
    // umbrella's own listing does not wait on its upload either.
    let r = host
        .get("/v1/tenants/umbrella/pipelines", Some(UMBRELLA_TOKEN))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        !upload.is_finished(),
        "every call above answered while the upload was still in init"
    );

    let r = upload.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["activated"],
        serde_json::json!(["umbrella.slow/sleeper"])
    );
    assert_eq!(
        host.active("umbrella.slow", "sleeper"),
        hex::encode(Sha256::digest(dist("fixture-sleep")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_uploads_to_one_slot_are_serialized_and_the_last_one_wins() {
    let host = Arc::new(Host::new(false).await);
    let mut tasks = Vec::new();
    for module in ["passthrough", "fixture-trap", "fixture-spin"] {
        let host = Arc::clone(&host);
        tasks.push(tokio::spawn(async move {
            let r = host
                .upload("globex", "passthrough", module, GLOBEX_TOKEN)
                .await;
            (
                r.status,
                r.json()["digest"].as_str().unwrap_or("").to_string(),
            )
        }));
    }
    let mut digests = BTreeSet::new();
    for t in tasks {
        let (status, digest) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        digests.insert(digest);
    }
    // Every upload activated its version, and the slot ends on the one
    // whose file is on disk: no upload's activation was lost to another's.
    let on_disk = hex::encode(Sha256::digest(
        std::fs::read(
            host.dir
                .path()
                .join("tenants/globex/modules/passthrough.wasm"),
        )
        .unwrap(),
    ));
    assert_eq!(host.active("globex.news", "passthrough"), on_disk);
    let kept: BTreeSet<String> = host
        .registry
        .status()
        .into_iter()
        .find(|m| m.pipeline == "globex.news")
        .unwrap()
        .versions
        .into_iter()
        .map(|v| v.digest)
        .collect();
    assert_eq!(kept, digests, "each upload's version was kept");
}

/// A body that yields `chunk`-byte pieces forever, counting what was
/// taken from it.
fn endless_body(chunk: usize, taken: Arc<std::sync::atomic::AtomicUsize>) -> Body {
    let piece = bytes::Bytes::from(vec![0u8; chunk]);
    Body::from_stream(futures::stream::repeat_with(move || {
        taken.fetch_add(piece.len(), std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(piece.clone())
    }))
}

#[tokio::test]
async fn a_streamed_upload_is_refused_once_it_crosses_the_tenants_limit() {
    let host = Host::new(false).await;
    let before = host.active("globex.news", "passthrough");
    let files = host.files();
    // No Content-Length, no end: only reading it tells the size.
    const CHUNK: usize = 8 * 1024;
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let req = Request::builder()
        .method("PUT")
        .uri("/v1/tenants/globex/modules/passthrough")
        .header(header::AUTHORIZATION, format!("Bearer {GLOBEX_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/wasm")
        .body(endless_body(CHUNK, Arc::clone(&taken)))
        .unwrap();
    let resp = host.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let message = String::from_utf8_lossy(&body);
    assert!(
        message.contains("max_module_bytes") && message.contains(&GLOBEX_MAX_MODULE.to_string()),
        "names the tenant's limit: {message}"
    );
    let taken = taken.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        taken <= GLOBEX_MAX_MODULE + 2 * CHUNK,
        "read {taken} bytes: stopped at the tenant's {GLOBEX_MAX_MODULE}, not at admin.max_upload_bytes ({MAX_UPLOAD})"
    );
    assert_eq!(host.active("globex.news", "passthrough"), before);
    assert_eq!(host.files(), files, "nothing written");
}

#[tokio::test]
async fn stored_module_caps_refuse_an_upload_naming_the_cap() {
    let host = Host::with_umbrella().await;
    // sleeper.wasm (passthrough, 75 KB) is stored; two more fit the count
    // (3) and the bytes (229 KB).
    for (name, module) in [("b", "passthrough"), ("c", "fixture-sleep")] {
        let r = host.upload("umbrella", name, module, UMBRELLA_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
    }
    let files = host.files();
    // d would be a fourth file; replacing c adds no file, but 75 KB for
    // its 69 KB goes over the bytes.
    for (name, module, cap) in [
        ("d", "fixture-trap", "max_stored_modules (3)"),
        ("c", "fixture-alloc", "max_stored_module_bytes (229000)"),
    ] {
        let r = host.upload("umbrella", name, module, UMBRELLA_TOKEN).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{name}: {}", r.text());
        assert!(r.error().contains(cap), "names {cap}: {}", r.error());
    }
    assert_eq!(host.files(), files, "nothing written");
    // A replacement that fits is taken.
    let r = host
        .upload("umbrella", "c", "fixture-sleep", UMBRELLA_TOKEN)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Other tenants have their own caps (the defaults).
    let r = host
        .upload("acme", "extra", "passthrough", ACME_TOKEN)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

// The admin endpoint over TCP: timeouts and the connection cap.

/// Serves `host`'s admin state on a free loopback port with `tune`d
/// limits; stops when the returned token is cancelled.
async fn serve_tcp(
    host: &Host,
    tune: impl FnOnce(&mut ApiSettings),
) -> (
    std::net::SocketAddr,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let mut state = host.state.clone();
    tune(&mut state.api);
    let stop = tokio_util::sync::CancellationToken::new();
    let (addr, task) = weir::admin::serve("127.0.0.1:0".parse().unwrap(), state, stop.clone())
        .await
        .unwrap();
    (addr, stop, task)
}

/// Reads one HTTP/1.1 response (status and body, by Content-Length);
/// `None` if the server closed the connection first.
async fn read_response<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Option<(u16, String)> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.ok()?;
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Sends `GET path` on `stream` (kept alive) and reads the answer.
async fn get_on(stream: &mut tokio::net::TcpStream, path: &str) -> Option<(u16, String)> {
    use tokio::io::AsyncWriteExt as _;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: weir\r\n\r\n").as_bytes())
        .await
        .ok()?;
    read_response(stream).await
}

/// `GET /healthz` on a new connection.
async fn healthz(addr: std::net::SocketAddr) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    get_on(&mut s, "/healthz").await.map(|(status, _)| status)
}

/// A connection that has sent the head of globex's upload of
/// `passthrough` with `framing` (`Content-Length: N` or
/// `Transfer-Encoding: chunked`) and nothing more.
async fn open_upload(
    addr: std::net::SocketAddr,
    framing: &str,
) -> (
    tokio::net::tcp::OwnedReadHalf,
    tokio::net::tcp::OwnedWriteHalf,
) {
    use tokio::io::AsyncWriteExt as _;
    let (r, mut w) = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap()
        .into_split();
    let head = format!(
        "PUT /v1/tenants/globex/modules/passthrough HTTP/1.1\r\nHost: weir\r\nAuthorization: Bearer {GLOBEX_TOKEN}\r\nContent-Type: application/wasm\r\n{framing}\r\n\r\n"
    );
    w.write_all(head.as_bytes()).await.unwrap();
    (r, w)
}

/// Writes `bytes` one at a time, `gap` apart, until the server closes the
/// connection (`true`) or all were sent (`false`).
async fn dribble(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    bytes: &[u8],
    gap: std::time::Duration,
) -> bool {
    use tokio::io::AsyncWriteExt as _;
    for b in bytes {
        if w.write_all(std::slice::from_ref(b)).await.is_err() {
            return true;
        }
        tokio::time::sleep(gap).await;
    }
    false
}

const GAP: std::time::Duration = std::time::Duration::from_millis(100);
/// Bound on how long a test waits for a condition that must come true.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_another_clients_requests_answer() {
    let host = Host::new(false).await;
    let (addr, stop, _) = serve_tcp(&host, |s| {
        s.header_read_timeout = std::time::Duration::from_secs(1);
        s.body_read_timeout = std::time::Duration::from_secs(1);
        s.request_timeout = std::time::Duration::from_secs(3);
    })
    .await;
    // Headers a byte every 100 ms: 600 bytes would take a minute.
    let mut slow_headers = b"GET /healthz HTTP/1.1\r\nHost: weir\r\nX-Slow: ".to_vec();
    slow_headers.resize(600, b'a');
    let headers = tokio::spawn(async move {
        let (mut r, mut w) = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap()
            .into_split();
        let cut = dribble(&mut w, &slow_headers, GAP).await;
        (cut, read_response(&mut r).await)
    });
    // An upload whose body comes a byte every 100 ms (never stalls 1 s,
    // but would take a minute): the request timeout ends it.
    let slow_body = {
        tokio::spawn(async move {
            let (mut r, mut w) = open_upload(addr, "Content-Length: 600").await;
            let writer = tokio::spawn(async move { dribble(&mut w, &[0u8; 600], GAP).await });
            let answer = read_response(&mut r).await;
            writer.abort();
            answer
        })
    };
    // An upload whose body stops after its headers: the body timeout.
    let stalled = tokio::spawn(async move {
        let (mut r, _w) = open_upload(addr, "Content-Length: 50000").await;
        read_response(&mut r).await
    });

    // Meanwhile another client's requests answer.
    for _ in 0..5 {
        assert_eq!(healthz(addr).await, Some(200));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (status, body) = get_on(&mut s, "/v1/modules").await.expect("answered");
        assert_eq!(status, 200, "{body}");
    }

    let (cut, answer) = tokio::time::timeout(DEADLINE, headers)
        .await
        .expect("the slow-headers client was cut off")
        .unwrap();
    assert!(
        cut,
        "the server closed the connection before the headers ended"
    );
    // hyper answers a header timeout by closing (with or without a 408).
    assert!(answer.as_ref().is_none_or(|(s, _)| *s == 408), "{answer:?}");

    let answer = tokio::time::timeout(DEADLINE, slow_body)
        .await
        .expect("the slow-body upload was ended")
        .unwrap();
    assert_eq!(answer.map(|(s, _)| s), Some(408));

    let (status, body) = tokio::time::timeout(DEADLINE, stalled)
        .await
        .expect("the stalled upload was ended")
        .unwrap()
        .expect("answered before closing");
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("admin.body_read_timeout"), "{body}");
    // None of the three changed the module.
    assert_eq!(
        host.active("globex.news", "passthrough"),
        hex::encode(Sha256::digest(dist("passthrough")))
    );
    stop.cancel();
}

/// A host serving at most 2 connections with `header_read_timeout`.
async fn serve_capped(
    header_read_timeout: std::time::Duration,
) -> (
    Host,
    std::net::SocketAddr,
    tokio_util::sync::CancellationToken,
) {
    let host = Host::new(false).await;
    let (addr, stop, _) = serve_tcp(&host, |s| {
        s.max_connections = 2;
        s.header_read_timeout = header_read_timeout;
    })
    .await;
    (host, addr, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_and_healthz_answers_when_one_closes() {
    let (_host, addr, stop) = serve_capped(std::time::Duration::from_secs(600)).await;
    // Two kept-alive connections, each proven accepted by an answer.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(get_on(&mut s, "/healthz").await.map(|r| r.0), Some(200));
        held.push(s);
    }
    let mut third = tokio::spawn(healthz(addr));
    // The cap holds: no answer while both connections stay open.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), &mut third)
            .await
            .is_err(),
        "a third connection was served past max_connections = 2"
    );
    drop(held.pop());
    let status = tokio::time::timeout(DEADLINE, third)
        .await
        .expect("answered once a connection closed")
        .unwrap();
    assert_eq!(status, Some(200));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_filling_the_cap_are_closed_and_healthz_answers() {
    let (_host, addr, stop) = serve_capped(std::time::Duration::from_secs(1)).await;
    // Twice the cap in connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let status = tokio::time::timeout(DEADLINE, healthz(addr))
        .await
        .expect("healthz answered while idle connections held every slot");
    assert_eq!(status, Some(200));
    // The idle ones were closed by the server, not by this test.
    for mut s in idle {
        let n = tokio::time::timeout(
            DEADLINE,
            tokio::io::AsyncReadExt::read(&mut s, &mut [0u8; 64]),
        )
        .await
        .expect("the server closed the idle connection");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_over_the_tenants_limit_is_refused_over_http() {
    use tokio::io::AsyncWriteExt as _;
    let host = Host::new(false).await;
    let before = host.active("globex.news", "passthrough");
    let files = host.files();
    let (addr, stop, _) = serve_tcp(&host, |_| {}).await;
    let (mut r, mut w) = open_upload(addr, "Transfer-Encoding: chunked").await;
    // 8 KiB chunks up to admin.max_upload_bytes and beyond; the server
    // answers long before.
    let writer = tokio::spawn(async move {
        let chunk = [0u8; 8192];
        for _ in 0..(2 * MAX_UPLOAD / chunk.len()) {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if w.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n").await;
    });
    let (status, body) = tokio::time::timeout(DEADLINE, read_response(&mut r))
        .await
        .expect("answered")
        .expect("a response before the connection closed");
    writer.abort();
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("max_module_bytes") && body.contains(&GLOBEX_MAX_MODULE.to_string()),
        "names the tenant's limit: {body}"
    );
    assert_eq!(host.active("globex.news", "passthrough"), before);
    assert_eq!(host.files(), files, "nothing written");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_tenant_file_on_reload_refuses_only_that_tenants_change() {
    let host = Host::new(false).await;
    let root = host.dir.path().to_path_buf();
    let status = Arc::new(std::sync::Mutex::new(weir::modules::ConfigStatus::default()));
    let (source, _source_rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let reloader = weir::modules::Reloader {
        watch: true,
        requests: None,
        registry: Arc::clone(&host.registry),
        config_path: root.join("weir.toml"),
        debounce: std::time::Duration::from_millis(100),
        source,
        metrics: host.metrics.clone(),
        config: host.config.clone(),
        status: Arc::clone(&status),
    };
    let task = tokio::spawn(reloader.run(stop.clone()));
    let acme_before = host.active("acme.tweets", "text-clean");
    let (acme_path, globex_path) = (
        root.join("tenants/acme.toml"),
        root.join("tenants/globex.toml"),
    );
    let acme_toml = std::fs::read_to_string(&acme_path).unwrap();
    let globex_toml = std::fs::read_to_string(&globex_path).unwrap();
    let last_error = || {
        status
            .lock()
            .unwrap()
            .last_error
            .clone()
            .unwrap_or_default()
    };
    // acme's file breaks; globex adds a pipeline.
    let globex_new = format!(
        "{globex_toml}\n[pipelines.extra]\ntopics = [\"globex.extra\"]\nindex = \"globex-extra\"\nmodules = [{{ path = \"passthrough.wasm\" }}]\n"
    );
    // Written again each round: the watcher may not be up for the first.
    let acme_bad = format!("bogus = 1\n{acme_toml}");
    write_until(
        &[(&acme_path, &acme_bad), (&globex_path, &globex_new)],
        "globex's change",
        || async { pipeline_names(&host).await.contains("globex.extra") },
    )
    .await;
    // acme runs on as it was, and its token still works.
    assert!(pipeline_names(&host).await.contains("acme.tweets"));
    assert_eq!(host.active("acme.tweets", "text-clean"), acme_before);
    let r = host.get("/v1/tenants/acme", Some(ACME_TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The refusal names the file and the key, in status, metrics and log.
    let error = last_error();
    assert!(
        error.contains("acme.toml") && error.contains("bogus"),
        "{error}"
    );
    assert!(!error.contains("globex.toml"), "{error}");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &host.state.registry).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("weir_config_reloads_total{result=\"tenant_rejected\"}")),
        "{text}"
    );

    // Fixed, acme's change applies too.
    let acme_fixed = acme_toml.replace(
        "max_module_bytes = 1000000",
        "max_module_bytes = 1000000\nrecords_per_second = 9",
    );
    write_until(
        &[(&acme_path, &acme_fixed)],
        "acme's fixed file",
        || async { host.registry.tenants()["acme"].quotas.records_per_second == 9 },
    )
    .await;
    assert_eq!(status.lock().unwrap().last_error, None);

    // A tenant file that validates but names a module whose init fails:
    // that tenant keeps its running pipelines, the other's change applies.
    std::fs::write(
        root.join("tenants/globex/modules/fail.wasm"),
        dist("fixture-fail-init"),
    )
    .unwrap();
    let globex_bad = format!(
        "{globex_new}\n[pipelines.bad]\ntopics = [\"globex.bad\"]\nindex = \"globex-bad\"\nmodules = [{{ path = \"fail.wasm\" }}]\n"
    );
    let acme_again = acme_fixed.replace("records_per_second = 9", "records_per_second = 11");
    write_until(
        &[(&globex_path, &globex_bad), (&acme_path, &acme_again)],
        "acme's change",
        || async { host.registry.tenants()["acme"].quotas.records_per_second == 11 },
    )
    .await;
    let names = pipeline_names(&host).await;
    assert!(
        names.contains("globex.extra") && !names.contains("globex.bad"),
        "{names:?}"
    );
    let error = last_error();
    assert!(
        error.contains("globex.toml: pipelines.bad.modules") && error.contains("init refuses"),
        "{error}"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
}

async fn pipeline_names(host: &Host) -> BTreeSet<String> {
    host.registry
        .pipelines(None)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_hold_up_the_endpoints_shutdown() {
    let host = Host::new(false).await;
    // Default limits: the request timeout (120 s) would end this client
    // long after the deadline below.
    let (addr, stop, task) = serve_tcp(&host, |_| {}).await;
    let (mut r, mut w) = open_upload(addr, "Content-Length: 100000").await;
    let writer = tokio::spawn(async move { dribble(&mut w, &[0u8; 100_000], GAP).await });
    assert_eq!(healthz(addr).await, Some(200), "the endpoint is serving");
    stop.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the endpoint stopped while the slow upload was still sending")
        .unwrap();
    // The slow client's connection was closed by the server.
    assert!(
        tokio::time::timeout(DEADLINE, read_response(&mut r))
            .await
            .is_ok()
    );
    writer.abort();
}

/// Writes `files` (again every 500 ms: the watcher may miss writes made
/// before it is up) until `applied` holds; fails after [`DEADLINE`].
async fn write_until<F, Fut>(files: &[(&PathBuf, &String)], what: &str, applied: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !applied().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} was not applied"
        );
        for (path, text) in files {
            std::fs::write(path, text).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
