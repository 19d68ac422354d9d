//! Configuration parsing, defaults, validation and secrets.

use std::time::Duration;

use std::path::Path;

use crate::config::{ElasticsearchAuth, ElasticsearchConfig, Problems};

fn parse(toml_text: &str) -> Result<ElasticsearchConfig, toml::de::Error> {
    toml::from_str(toml_text)
}

#[test]
fn defaults() {
    let c = parse(r#"url = "http://es:9200""#).unwrap();
    assert_eq!(c, ElasticsearchConfig::new("http://es:9200"));
    assert_eq!(c.auth, ElasticsearchAuth::None);
    assert_eq!(c.compression, None);
    assert!(c.gzip());
    for (url, compression, gzip) in [
        ("http://localhost:9200", None, false),
        ("http://LocalHost:9200", None, false),
        ("http://127.0.0.1:9200", None, false),
        ("http://127.4.5.6:9200", None, false),
        ("http://[::1]:9200", None, false),
        ("https://es.example:9200", None, true),
        ("http://10.0.0.1:9200", None, true),
        ("http://localhost:9200", Some(true), true),
        ("https://es.example:9200", Some(false), false),
    ] {
        let mut c = ElasticsearchConfig::new(url);
        c.compression = compression;
        assert_eq!(c.gzip(), gzip, "{url} {compression:?}");
    }
    assert!(!c.tls.accept_invalid_certs);
    assert_eq!(c.batch.max_docs, 1000);
    assert_eq!(c.batch.max_bytes, 5 * 1024 * 1024);
    assert_eq!(c.batch.timeout, Duration::from_millis(200));
    assert_eq!(c.request.timeout, Duration::from_secs(30));
    assert_eq!(c.request.concurrency, 4);
    assert_eq!(c.retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(c.retry.max_backoff, Duration::from_secs(10));
    assert_eq!(c.retry.max_item_attempts, None);
    assert_eq!(c.health.startup_timeout, Duration::from_secs(10));
    assert!(c.templates.is_empty());
    assert!(valid(&c));
}

#[test]
fn full_example() {
    let c = parse(
        r#"
        url = "https://es.internal:9200"
        compression = false
        auth = { type = "basic", username = "weir", password_env = "WEIR_ES_PASSWORD" }
        tls = { ca_file = "certs/ca.pem" }
        batch = { max_docs = 500, max_bytes = 1048576, timeout = "1s" }
        request = { timeout = "5s", concurrency = 8 }
        retry = { initial_backoff = "50ms", max_backoff = "30s", max_item_attempts = 10 }
        health = { startup_timeout = "1m" }
        templates = [{ name = "logs", path = "templates/logs.json" }]
        "#,
    )
    .unwrap();
    assert_eq!(
        c.auth,
        ElasticsearchAuth::Basic {
            username: "weir".into(),
            password_env: "WEIR_ES_PASSWORD".into()
        }
    );
    assert_eq!(c.batch.timeout, Duration::from_secs(1));
    assert_eq!(c.retry.max_item_attempts, Some(10));
    assert_eq!(c.health.startup_timeout, Duration::from_secs(60));
    assert_eq!(c.templates[0].path.to_str(), Some("templates/logs.json"));
    assert!(valid(&c));
    let k = parse(
        r#"url = "http://x:1"
        auth = { type = "api_key", api_key_env = "K" }"#,
    )
    .unwrap();
    assert_eq!(
        k.auth,
        ElasticsearchAuth::ApiKey {
            api_key_env: "K".into()
        }
    );
}

#[test]
fn unknown_keys_are_rejected() {
    for bad in [
        "url = \"http://x:1\"\nbatch_size = 3",
        "url = \"http://x:1\"\nbatch = { max_doc = 3 }",
        "url = \"http://x:1\"\nauth = { type = \"basic\", username = \"u\", password = \"p\" }",
        "url = \"http://x:1\"\nauth = { type = \"token\" }",
    ] {
        assert!(parse(bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn validation_names_every_bad_key() {
    let mut c = ElasticsearchConfig::new("ftp://x");
    c.batch.max_docs = 0;
    c.request.concurrency = 0;
    c.batch.timeout = Duration::ZERO;
    c.retry.max_backoff = Duration::from_millis(1);
    c.retry.max_item_attempts = Some(0);
    c.tls.accept_invalid_certs = true;
    c.tls.ca_file = Some("ca.pem".into());
    c.templates = toml::from_str::<ElasticsearchConfig>(
        "url = \"http://x:1\"\ntemplates = [{ name = \"Logs\", path = \"a\" }, { name = \"ok\", path = \"b\" }, { name = \"ok\", path = \"c\" }]",
    )
    .unwrap()
    .templates;
    let mut problems = Problems::new(Path::new("weir.toml"));
    c.validate("", &mut problems);
    let keys: Vec<String> = problems
        .finish()
        .unwrap_err()
        .problems()
        .iter()
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(
        keys,
        [
            "url",
            "tls.accept_invalid_certs",
            "batch.max_docs",
            "request.concurrency",
            "batch.timeout",
            "retry.max_backoff",
            "retry.max_item_attempts",
            "templates[0].name",
            "templates[2].name",
        ]
    );
}

#[test]
fn secrets_come_from_the_named_variables() {
    let mut c = ElasticsearchConfig::new("http://x:1");
    c.auth = ElasticsearchAuth::ApiKey {
        api_key_env: "WEIR_TEST_SURELY_UNSET_API_KEY".into(),
    };
    let err = c.credentials().unwrap_err();
    assert_eq!(err.key, "auth.api_key_env");
    assert_eq!(
        err.to_string(),
        "auth.api_key_env: environment variable WEIR_TEST_SURELY_UNSET_API_KEY is not set"
    );
    // PATH is set in every test environment; it stands in for a secret.
    c.auth = ElasticsearchAuth::Basic {
        username: "u".into(),
        password_env: "PATH".into(),
    };
    assert!(matches!(
        c.credentials().unwrap(),
        Some(elasticsearch::auth::Credentials::Basic(u, _)) if u == "u"
    ));
}

fn valid(c: &ElasticsearchConfig) -> bool {
    let mut problems = Problems::new(Path::new("weir.toml"));
    c.validate("", &mut problems);
    problems.is_empty()
}
