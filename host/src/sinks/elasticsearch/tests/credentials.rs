//! Per-tenant credentials ([`TenantSinks`]) against the secured fixture:
//! each tenant's bulk requests carry its own `Authorization`, never
//! another's, and Elasticsearch's own per-item authorisation holds a
//! tenant's key to its prefix.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::secured::{IndexGrant, Secured, SecuredBuilder, Seen, api_key_header, basic_header};
use super::{Acks, WAIT, fast_config, next_dead_letter};
use crate::config::{ElasticsearchAuth, Quotas, TenantBinding};
use crate::event::DeadLetter;
use crate::pipeline::{DeadLetterQueue, DocumentSink, TenantShare};
use crate::sinks::elasticsearch::TenantSinks;
use crate::sinks::elasticsearch::metrics::SinkMetrics;

fn grant(names: &[&'static str], privileges: &[&'static str]) -> Vec<IndexGrant> {
    vec![IndexGrant {
        names: names.to_vec(),
        privileges: privileges.to_vec(),
    }]
}

/// The cluster: the host's `elastic` user may write anything; acme's key
/// is scoped as the operator's guide creates it (`acme-*`: `index`,
/// `auto_configure`); a second acme key for the credential change.
async fn cluster() -> Secured {
    SecuredBuilder::default()
        .user("elastic", "host-pw", grant(&["*"], &["all"]))
        .api_key(
            "acme-key-1",
            "acme-secret-1",
            "weir",
            grant(&["acme-*"], &["index", "auto_configure"]),
        )
        .api_key(
            "acme-key-2",
            "acme-secret-2",
            "weir",
            grant(&["acme-*"], &["index", "auto_configure"]),
        )
        .start()
        .await
}

/// What the process environment would hold.
fn env(vars: &[(&str, String)]) -> super::super::SecretSource {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Box::new(move |k| vars.get(k).cloned())
}

fn encoded(id: &str, key: &str) -> String {
    api_key_header(id, key)
        .strip_prefix("ApiKey ")
        .unwrap()
        .to_string()
}

fn share(id: &str, auth: Option<&str>) -> Arc<TenantShare> {
    Arc::new(
        TenantShare::new(&TenantBinding {
            id: id.into(),
            weight: 1,
            index_prefix: format!("{id}-"),
            quotas: Quotas::default(),
            upstreams: Default::default(),
            allowed_outbound_hosts: Vec::new(),
            elasticsearch: auth.map(|var| ElasticsearchAuth::ApiKey {
                api_key_env: var.into(),
            }),
        })
        .unwrap(),
    )
}

struct Rig {
    es: Secured,
    sinks: TenantSinks,
    dead_letters: mpsc::Receiver<DeadLetter>,
}

/// The host authenticates as `elastic`; `vars` is the environment.
async fn rig(vars: &[(&str, String)]) -> Rig {
    let es = cluster().await;
    let mut config = fast_config(&es.url());
    config.auth = ElasticsearchAuth::Basic {
        username: "elastic".into(),
        password_env: "ELASTIC_PASSWORD".into(),
    };
    let mut all = vec![("ELASTIC_PASSWORD", "host-pw".to_string())];
    all.extend(vars.iter().cloned());
    let (dlq, dead_letters) = DeadLetterQueue::channel(64);
    let sinks = TenantSinks::start_with(
        &config,
        Path::new("."),
        dlq,
        SinkMetrics::unregistered(),
        env(&all),
    )
    .await
    .expect("sinks start");
    Rig {
        es,
        sinks,
        dead_letters,
    }
}

/// The tenant (by index prefix) of every document in `s`, and the
/// `Authorization` it went out with.
fn who_sent(seen: &[Seen]) -> Vec<(String, String)> {
    seen.iter()
        .flat_map(|s| {
            let auth = s.authorization.clone().unwrap_or_default();
            s.items
                .iter()
                .map(move |(index, _)| (index.split('-').next().unwrap().to_string(), auth.clone()))
        })
        .collect()
}

/// Each document id the fixture saw, with the request's `(principal,
/// Authorization)`.
fn by_id(seen: Vec<Seen>) -> HashMap<String, (Option<String>, Option<String>)> {
    seen.into_iter()
        .flat_map(|s| {
            let who = (s.principal, s.authorization);
            s.items.into_iter().map(move |(_, id)| (id, who.clone()))
        })
        .collect()
}

#[tokio::test]
async fn each_tenants_documents_go_out_with_its_own_credentials_never_mixed() {
    let key = encoded("acme-key-1", "acme-secret-1");
    let mut r = rig(&[("WEIR_TENANT_ACME_ES_KEY", key)]).await;
    let acme = share("acme", Some("WEIR_TENANT_ACME_ES_KEY"));
    let globex = share("globex", None);
    let mut acks = Acks::new();
    for i in 0..30 {
        // Interleaved, so a request could only stay unmixed by routing.
        r.sinks
            .send_for(
                Some(&acme),
                acks.doc_in("acme-tweets", &format!("a{i:02}"), "{}"),
            )
            .await;
        r.sinks
            .send_for(
                Some(&globex),
                acks.doc_in("globex-tweets", &format!("g{i:02}"), "{}"),
            )
            .await;
        r.sinks
            .send_for(None, acks.doc_in("weir-news", &format!("h{i:02}"), "{}"))
            .await;
    }
    assert_eq!(acks.wait(90).await.len(), 90);
    let host = basic_header("elastic", "host-pw");
    let acme_header = api_key_header("acme-key-1", "acme-secret-1");
    let sent = who_sent(&r.es.seen());
    assert_eq!(sent.len(), 90, "each document sent once");
    for (tenant, auth) in &sent {
        let expected = if tenant == "acme" {
            &acme_header
        } else {
            &host
        };
        assert_eq!(auth, expected, "a {tenant} document went out with {auth}");
    }
    // Never mixed: no request holds acme's documents and anyone else's.
    for s in r.es.seen() {
        let acme_docs = s
            .items
            .iter()
            .filter(|(i, _)| i.starts_with("acme-"))
            .count();
        assert!(acme_docs == 0 || acme_docs == s.items.len(), "{s:?}");
    }
    assert!(r.dead_letters.try_recv().is_err());
}

#[tokio::test]
async fn elasticsearch_holds_a_tenants_key_to_its_prefix() {
    let key = encoded("acme-key-1", "acme-secret-1");
    let mut r = rig(&[("WEIR_TENANT_ACME_ES_KEY", key)]).await;
    let acme = share("acme", Some("WEIR_TENANT_ACME_ES_KEY"));
    let mut acks = Acks::new();
    // A new index under the prefix is created on the way (auto_configure).
    r.sinks
        .send_for(Some(&acme), acks.doc_in("acme-new", "ok", "{}"))
        .await;
    assert_eq!(acks.wait(1).await, ["ok"]);
    // A document that got past the host's own index check (as if it had a
    // bug) is refused by Elasticsearch item by item and dead-lettered.
    r.sinks
        .send_for(Some(&acme), acks.doc_in("globex-tweets", "escape", "{}"))
        .await;
    let dl = next_dead_letter(&mut r.dead_letters).await;
    assert!(
        dl.reason.contains("security_exception")
            && dl.reason.contains(
                "is unauthorized for API key id [acme-key-1] of user [weir] on indices [globex-tweets]"
            ),
        "{}",
        dl.reason
    );
}

#[tokio::test]
async fn a_tenants_rejected_credentials_hold_back_only_its_documents() {
    // The variable holds a key Elasticsearch does not know (revoked, say).
    let key = encoded("acme-key-1", "wrong");
    let r = rig(&[("WEIR_TENANT_ACME_ES_KEY", key)]).await;
    let acme = share("acme", Some("WEIR_TENANT_ACME_ES_KEY"));
    let globex = share("globex", None);
    let mut acme_acks = Acks::new();
    let mut acks = Acks::new();
    r.sinks
        .send_for(Some(&acme), acme_acks.doc_in("acme-tweets", "a", "{}"))
        .await;
    for i in 0..5 {
        r.sinks
            .send_for(
                Some(&globex),
                acks.doc_in("globex-tweets", &format!("g{i}"), "{}"),
            )
            .await;
    }
    assert_eq!(acks.wait(5).await.len(), 5);
    // acme's request is refused (401) and retried whole, acknowledging
    // nothing, while the host's sink stays healthy.
    r.es.wait_for("three refused acme requests", |seen| {
        seen.iter()
            .filter(|s| s.principal.is_none() && s.items.iter().any(|(i, _)| i == "acme-tweets"))
            .count()
            >= 3
    })
    .await;
    assert!(acme_acks.so_far().is_empty());
    assert!(r.sinks.health().healthy, "{:?}", r.sinks.health());
}

#[tokio::test]
async fn a_changed_credential_applies_to_the_next_documents_and_the_old_sink_retires() {
    let mut r = rig(&[
        (
            "WEIR_TENANT_ACME_ES_KEY",
            encoded("acme-key-1", "acme-secret-1"),
        ),
        (
            "WEIR_TENANT_ACME_ES_KEY_2",
            encoded("acme-key-2", "acme-secret-2"),
        ),
    ])
    .await;
    let old = share("acme", Some("WEIR_TENANT_ACME_ES_KEY"));
    let mut acks = Acks::new();
    r.sinks
        .send_for(Some(&old), acks.doc_in("acme-tweets", "before", "{}"))
        .await;
    assert_eq!(acks.wait(1).await, ["before"]);
    // The tenant file now names the second key: a new share, as a reload
    // builds it. A batch of the old pipeline still finishing sends with
    // the credential it was processed under.
    let new = share("acme", Some("WEIR_TENANT_ACME_ES_KEY_2"));
    r.sinks
        .send_for(Some(&new), acks.doc_in("acme-tweets", "after", "{}"))
        .await;
    r.sinks
        .send_for(Some(&old), acks.doc_in("acme-tweets", "straggler", "{}"))
        .await;
    assert_eq!(acks.wait(2).await, ["after", "straggler"]);
    let sent = by_id(r.es.seen());
    assert_eq!(sent["before"].0.as_deref(), Some("api_key:acme-key-1"));
    assert_eq!(sent["after"].0.as_deref(), Some("api_key:acme-key-2"));
    assert_eq!(sent["straggler"].0.as_deref(), Some("api_key:acme-key-1"));
    assert_eq!(r.sinks.tenant_sinks(), (2, 0));
    // The old share is gone (its pipelines and batches dropped): its sink
    // retires and its task ends; the new one keeps sending.
    drop(old);
    tokio::time::timeout(WAIT, async {
        while r.sinks.tenant_sinks() != (1, 0) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the old credential's sink never retired");
    r.sinks
        .send_for(Some(&new), acks.doc_in("acme-tweets", "later", "{}"))
        .await;
    assert_eq!(acks.wait(1).await, ["later"]);
    // Shutdown stops every sink; nothing starts after it.
    let sinks = r.sinks.clone();
    let report = r.sinks.shutdown(WAIT).await.unwrap();
    assert_eq!(report.unacknowledged, 0);
    sinks
        .send_for(Some(&new), acks.doc_in("acme-tweets", "too-late", "{}"))
        .await;
    assert_eq!(sinks.tenant_sinks(), (0, 0));
    // Nothing was dead-lettered, and after shutdown no sink holds the
    // dead-letter queue, though a clone of the sinks lives on (as the
    // admin endpoint's does until exit): its writer can finish.
    let closed = tokio::time::timeout(WAIT, r.dead_letters.recv()).await;
    assert!(matches!(closed, Ok(None)), "{closed:?}");
}

/// What the partition worker does with a processed batch: the pipeline
/// hands its tenant to the sink with every document.
#[tokio::test]
async fn a_tenant_pipelines_dispatched_documents_carry_its_credentials() {
    use crate::config::{BreakerConfig, PipelineConfig};
    use crate::event::{SourceRecord, default_doc_id};
    use crate::pipeline::{ChainOutput, OutputDoc, Pipeline, PipelineControl, dispatch_outputs};
    use crate::telemetry::PipelineMetrics;

    let key = encoded("acme-key-1", "acme-secret-1");
    let r = rig(&[("WEIR_TENANT_ACME_ES_KEY", key)]).await;
    let acme = share("acme", Some("WEIR_TENANT_ACME_ES_KEY"));
    let config: PipelineConfig =
        toml::from_str("topics = [\"acme.tweets\"]\nindex = \"acme-tweets\"").unwrap();
    let assemble = |name: &str, tenant: Option<Arc<TenantShare>>| {
        Pipeline::assemble(
            name,
            &config,
            Vec::new(),
            tenant,
            Arc::new(PipelineControl::new(BreakerConfig::default())),
            PipelineMetrics::detached(name),
        )
    };
    let tenant_pipeline = assemble("acme.tweets", Some(acme));
    let host_pipeline = assemble("tweets", None);
    let record = Arc::new(SourceRecord {
        topic: "acme.tweets".into(),
        partition: 0,
        offset: 7,
        timestamp_ms: None,
        key: None,
        headers: vec![],
        value: bytes::Bytes::from_static(b"{}"),
    });
    for (pipeline, n) in [(&tenant_pipeline, 0), (&host_pipeline, 1)] {
        let out = ChainOutput {
            docs: vec![OutputDoc {
                source: 0,
                n,
                body: b"{}".to_vec(),
                index: None,
                id: None,
            }],
            ..ChainOutput::default()
        };
        let (done, acked) = tokio::sync::oneshot::channel();
        let on_complete = Box::new(move || {
            let _ = done.send(());
        });
        dispatch_outputs(
            pipeline,
            std::slice::from_ref(&record),
            out,
            &r.sinks,
            &DeadLetterQueue::channel(1).0,
            on_complete,
        )
        .await;
        tokio::time::timeout(WAIT, acked).await.unwrap().unwrap();
    }
    let sent = by_id(r.es.seen());
    let id = |n| default_doc_id("acme.tweets", 0, 7, n);
    assert_eq!(
        sent[&id(0)].1.as_deref(),
        Some(api_key_header("acme-key-1", "acme-secret-1").as_str())
    );
    assert_eq!(
        sent[&id(1)].1.as_deref(),
        Some(basic_header("elastic", "host-pw").as_str())
    );
}
