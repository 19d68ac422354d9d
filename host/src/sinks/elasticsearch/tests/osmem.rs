//! Against a real server: `osmem-server`, an in-memory OpenSearch-compatible
//! process (installed by `cargo xtask tools`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::transport::Transport;
use serde_json::Value;

use super::{Acks, WAIT, fast_config, next_dead_letter, start};
use crate::config::TemplateConfig;
use crate::pipeline::DeadLetterQueue;
use crate::sinks::elasticsearch::{ElasticsearchSink, SinkError};

/// `OSMEM_BIN`, else `<workspace>/.tools/bin/osmem-server`, else the
/// unpacked wheel under `/tmp/tools`. Never skips: a missing binary fails.
fn osmem_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("OSMEM_BIN") {
        return bin.into();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let candidates = [
        workspace.join(".tools/bin/osmem-server"),
        PathBuf::from("/tmp/tools/x/osmem_server/bin/osmem-server"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "osmem-server not found (looked at $OSMEM_BIN, {}): run `cargo xtask tools`",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A running osmem-server, killed on drop.
struct Osmem {
    url: String,
    _child: tokio::process::Child,
}

impl Osmem {
    /// Starts it on a free port; the sink's startup check waits for it.
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(osmem_bin())
            .args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"])
            .args(["-parent-pid", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn osmem-server");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }

    async fn get(&self, path: &str) -> Value {
        let client = Elasticsearch::new(Transport::single_node(&self.url).unwrap());
        let resp = client
            .send::<(), ()>(Method::Get, path, HeaderMap::new(), None, None, None)
            .await
            .unwrap();
        resp.json().await.unwrap()
    }
}

/// A fresh folder under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("weir-es-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    dir
}

#[tokio::test]
async fn templates_documents_and_a_mapping_conflict() {
    let es = Osmem::start();
    let base = temp_dir("happy");
    std::fs::write(
        base.join("templates/weir-test.json"),
        r#"{"index_patterns":["weir-test-*"],"template":{"mappings":{"properties":{"n":{"type":"long"}}}}}"#,
    )
    .unwrap();
    let mut cfg = fast_config(&es.url);
    cfg.health.startup_timeout = Duration::from_secs(20);
    cfg.batch.max_docs = 4;
    cfg.templates = vec![TemplateConfig {
        name: "weir-test".into(),
        path: "templates/weir-test.json".into(),
    }];
    let mut s = start(&cfg, &base).await;
    let installed = es.get("/_index_template/weir-test").await;
    assert_eq!(
        installed["index_templates"][0]["index_template"]["index_patterns"][0], "weir-test-*",
        "{installed}"
    );

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
    let count = es.get("/weir-test-a/_count").await;
    assert_eq!(count["count"], 10, "{count}");
    let doc = es.get("/weir-test-a/_doc/d3").await;
    assert_eq!(doc["_source"]["msg"], "line \"3\"\nwith escapes");
    assert_eq!(s.sink.shutdown(WAIT).await.unwrap().unacknowledged, 0);
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test]
async fn a_refused_template_fails_startup_naming_file_and_reason() {
    let es = Osmem::start();
    let base = temp_dir("badtpl");
    std::fs::write(base.join("templates/bad.json"), r#"{"index_patterns":5}"#).unwrap();
    let mut cfg = fast_config(&es.url);
    cfg.health.startup_timeout = Duration::from_secs(20);
    cfg.templates = vec![TemplateConfig {
        name: "bad".into(),
        path: "templates/bad.json".into(),
    }];
    let (dlq, _rx) = DeadLetterQueue::channel(1);
    let err = ElasticsearchSink::start(&cfg, &base, dlq, &mut Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Template { .. }));
    let msg = err.to_string();
    assert!(msg.contains("templates/bad.json"), "{msg}");
    assert!(
        msg.contains("HTTP 400") && msg.contains("x_content_parse_exception"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test]
async fn an_unreadable_template_fails_before_contacting_the_cluster() {
    let base = temp_dir("nofile");
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
    let err = ElasticsearchSink::start(&cfg, &base, dlq, &mut Default::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("index template \"broken\" from "), "{msg}");
    assert!(msg.contains("invalid JSON"), "{msg}");
    let _ = std::fs::remove_dir_all(base);
}
