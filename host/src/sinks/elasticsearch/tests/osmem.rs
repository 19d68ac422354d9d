//! Against a real server: `osmem-server`, an in-memory OpenSearch-compatible
//! process (installed by `cargo xtask tools`).

use std::time::Duration;

use weir_testkit::Osmem;

use super::{Acks, WAIT, fast_config, next_dead_letter, start};
use crate::config::TemplateConfig;
use crate::pipeline::DeadLetterQueue;
use crate::sinks::elasticsearch::{ElasticsearchSink, SinkError};

/// A folder for the sink's config, with a `templates/` subfolder.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    dir
}

#[tokio::test]
async fn templates_documents_and_a_mapping_conflict() {
    let es = Osmem::start().await.unwrap();
    let dir = config_dir();
    let base = dir.path();
    std::fs::write(
        base.join("templates/weir-test.json"),
        r#"{"index_patterns":["weir-test-*"],"template":{"mappings":{"properties":{"n":{"type":"long"}}}}}"#,
    )
    .unwrap();
    let mut cfg = fast_config(&es.url());
    cfg.health.startup_timeout = Duration::from_secs(20);
    cfg.batch.max_docs = 4;
    cfg.templates = vec![TemplateConfig {
        name: "weir-test".into(),
        path: "templates/weir-test.json".into(),
    }];
    let mut s = start(&cfg, base).await;
    let client = es.client();
    let installed = client.index_template("weir-test").await.unwrap().unwrap();
    assert_eq!(installed["index_patterns"][0], "weir-test-*", "{installed}");

    let mut acks = Acks::new();
    for i in 0..10 {
        let body = format!(r#"{{"n":{i},"msg":"line \"{i}\"\nwith escapes"}}"#);
        s.sink
            .submit(acks.doc_in("weir-test-a", &format!("d{i}"), &body))
            .await
            .unwrap();
    }
    s.sink
        .submit(acks.doc_in("weir-test-a", "bad", r#"{"n":"abc"}"#))
        .await
        .unwrap();

    let dead = next_dead_letter(&mut s.dead_letters).await;
    assert!(
        dead.reason
            .starts_with("ES rejected: mapper_parsing_exception: failed to parse field [n]")
            && dead.reason.ends_with("(status 400)"),
        "{}",
        dead.reason
    );
    assert_eq!(&dead.record.value[..], br#"{"n":"abc"}"#);
    assert_eq!(acks.wait(10).await.len(), 10);
    assert_eq!(client.count("weir-test-a").await.unwrap(), 10);
    let doc = client.get("weir-test-a", "d3").await.unwrap().unwrap();
    assert_eq!(doc["msg"], "line \"3\"\nwith escapes");
    assert_eq!(s.sink.shutdown(WAIT).await.unwrap().unacknowledged, 0);
}

#[tokio::test]
async fn a_refused_template_fails_startup_naming_file_and_reason() {
    let es = Osmem::start().await.unwrap();
    let dir = config_dir();
    let base = dir.path();
    std::fs::write(base.join("templates/bad.json"), r#"{"index_patterns":5}"#).unwrap();
    let mut cfg = fast_config(&es.url());
    cfg.health.startup_timeout = Duration::from_secs(20);
    cfg.templates = vec![TemplateConfig {
        name: "bad".into(),
        path: "templates/bad.json".into(),
    }];
    let (dlq, _rx) = DeadLetterQueue::channel(1);
    let err = ElasticsearchSink::start(&cfg, base, dlq, &mut Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Template { .. }));
    let msg = err.to_string();
    assert!(msg.contains("templates/bad.json"), "{msg}");
    assert!(
        msg.contains("HTTP 400") && msg.contains("x_content_parse_exception"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_unreadable_template_fails_before_contacting_the_cluster() {
    let dir = config_dir();
    let base = dir.path();
    std::fs::write(base.join("templates/broken.json"), "{\"a\":").unwrap();
    let mut cfg = fast_config("http://127.0.0.1:1");
    cfg.templates = vec![
        TemplateConfig {
            name: "broken".into(),
            path: "templates/broken.json".into(),
        },
        TemplateConfig {
            name: "missing".into(),
            path: "templates/missing.json".into(),
        },
    ];
    let (dlq, _rx) = DeadLetterQueue::channel(1);
    let err = ElasticsearchSink::start(&cfg, base, dlq, &mut Default::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("index template \"broken\" from "), "{msg}");
    assert!(msg.contains("invalid JSON"), "{msg}");
}
