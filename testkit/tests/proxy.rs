//! The fault proxy in front of a real osmem server.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};
use weir_testkit::{EsClient, Fault, FaultProxy, Osmem};

fn bulk_body(index: &str, ids: impl IntoIterator<Item = usize>) -> String {
    let mut body = String::new();
    for i in ids {
        body.push_str(&json!({"index": {"_index": index, "_id": format!("doc-{i}")}}).to_string());
        body.push('\n');
        body.push_str(&json!({"n": i, "text": "hello"}).to_string());
        body.push('\n');
    }
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A refused connection, or (for a connection pooled before the switch to
/// [`Fault::Refuse`]) one reset by the proxy.
fn refused_or_reset(error: &reqwest::Error) -> bool {
    if error.is_connect() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionReset
        {
            return true;
        }
        source = e.source();
    }
    false
}

fn item_statuses(response: &Value) -> Vec<u64> {
    response["items"]
        .as_array()
        .expect("items array")
        .iter()
        .map(|item| {
            let (_, result) = item.as_object().unwrap().iter().next().unwrap();
            result["status"].as_u64().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_items_fault_rejects_a_tenth_and_indexes_the_rest() -> anyhow::Result<()> {
    let osmem = Osmem::start().await?;
    let proxy = FaultProxy::start(osmem.url()).await?;
    proxy
        .set(Fault::BulkItems {
            status: 429,
            ratio: 0.1,
        })
        .await?;
    let http = reqwest::Client::new();

    // 500 items, gzip-compressed like the host sends them.
    let body = bulk_body("logs", 0..500);
    let response: Value = http
        .post(format!("{}/_bulk", proxy.url()))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzip(body.as_bytes()))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(response["errors"], json!(true));
    let statuses = item_statuses(&response);
    assert_eq!(statuses.len(), 500, "one item per action");
    let rejected: Vec<usize> = (0..500).filter(|&i| statuses[i] == 429).collect();
    assert_eq!(rejected, (0..50).map(|k| k * 10 + 9).collect::<Vec<_>>());
    assert!(
        statuses.iter().all(|&s| s == 429 || s == 201),
        "{statuses:?}"
    );
    assert_eq!(proxy.faulted_items(), 50);
    // Items keep their positions: each one names its own document.
    for (i, item) in response["items"].as_array().unwrap().iter().enumerate() {
        assert_eq!(item["index"]["_id"], json!(format!("doc-{i}")), "item {i}");
        assert_eq!(item["index"]["_index"], json!("logs"));
    }
    let failed = &response["items"][rejected[0]]["index"];
    assert_eq!(
        failed["error"]["type"],
        json!("es_rejected_execution_exception")
    );
    assert_eq!(
        failed["error"]["reason"],
        json!("rejected by weir-testkit fault proxy")
    );

    // A plain (uncompressed) bulk to /{index}/_bulk with create and delete.
    let mut body = String::new();
    for i in 500..520 {
        body.push_str(&format!(
            "{{\"create\":{{\"_id\":\"doc-{i}\"}}}}\n{{\"n\":{i}}}\n"
        ));
    }
    body.push_str("{\"delete\":{\"_id\":\"doc-0\"}}\n");
    let response: Value = http
        .post(format!("{}/logs/_bulk", proxy.url()))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    let statuses = item_statuses(&response);
    assert_eq!(statuses.len(), 21);
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 2);
    assert_eq!((statuses[9], statuses[19]), (429, 429));
    assert_eq!(response["items"][9]["create"]["_id"], json!("doc-509"));
    assert_eq!(response["items"][9]["create"]["_index"], json!("logs"));
    assert_eq!(response["items"][20]["delete"]["_id"], json!("doc-0"));

    // Only what was not rejected reached osmem.
    let es = osmem.client();
    es.refresh("logs").await?;
    let ids = es.ids("logs").await?;
    // The proxy fails every 10th item it sees, counting across requests:
    // doc-9, doc-19, ..., doc-499, then doc-509 and doc-519; doc-0 was
    // indexed by the first request and deleted by the second.
    let expected: std::collections::HashSet<String> = (1..520)
        .filter(|i| i % 10 != 9)
        .map(|i| format!("doc-{i}"))
        .collect();
    assert_eq!(expected.len(), 467);
    assert_eq!(ids, expected);
    assert_eq!(es.count("logs").await?, expected.len() as u64);
    assert!(proxy.requests() >= 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_status_refuse_and_stall() -> anyhow::Result<()> {
    let osmem = Osmem::start().await?;
    let proxy = FaultProxy::start(osmem.url()).await?;
    let http = reqwest::Client::new();

    // None: the same answer as osmem itself, gzip request bodies included.
    let direct: Value = http.get(osmem.url()).send().await?.json().await?;
    let proxied: Value = http.get(proxy.url()).send().await?.json().await?;
    assert_eq!(direct, proxied);
    let response = http
        .post(format!("{}/_bulk?refresh=true", proxy.url()))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzip(bulk_body("plain", 0..3).as_bytes()))
        .send()
        .await?;
    assert!(response.status().is_success());
    let response: Value = response.json().await?;
    assert_eq!(response["errors"], json!(false));
    assert_eq!(EsClient::new(&proxy.url()).count("plain").await?, 3);

    // Status: every request gets it, with an ES-style body.
    proxy.set(Fault::Status(503)).await?;
    let response = http.get(proxy.url()).send().await?;
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await?;
    assert_eq!(body["status"], json!(503));
    assert!(body["error"]["type"].is_string());

    // Refuse: new connections are refused; the pooled one was reset.
    proxy.set(Fault::Refuse).await?;
    let error = http.get(proxy.url()).send().await.expect_err("refused");
    assert!(refused_or_reset(&error), "{error:?}");
    let fresh = reqwest::Client::new()
        .get(proxy.url())
        .send()
        .await
        .expect_err("refused");
    assert!(fresh.is_connect(), "{fresh:?}");

    // None again: same port, working.
    proxy.set(Fault::None).await?;
    assert!(http.get(proxy.url()).send().await?.status().is_success());

    // Stall: held past a short client timeout, then released.
    proxy.set(Fault::Stall(Duration::from_secs(5))).await?;
    let stalled = http
        .get(proxy.url())
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("held back");
    assert!(stalled.is_timeout(), "{stalled:?}");
    proxy.set(Fault::Stall(Duration::from_millis(10))).await?;
    assert!(http.get(proxy.url()).send().await?.status().is_success());

    assert!(
        proxy
            .set(Fault::BulkItems {
                status: 429,
                ratio: 1.5
            })
            .await
            .is_err()
    );
    assert!(proxy.set(Fault::Status(42)).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_client_sees_refuse_as_a_connection_error() -> anyhow::Result<()> {
    use elasticsearch::Elasticsearch;
    use elasticsearch::http::transport::Transport;

    let osmem = Osmem::start().await?;
    let proxy = FaultProxy::start(osmem.url()).await?;
    let client = Elasticsearch::new(Transport::single_node(&proxy.url())?);
    assert!(client.ping().send().await?.status_code().is_success());

    proxy.set(Fault::Refuse).await?;
    let error = client.ping().send().await.expect_err("refused");
    let cause = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<reqwest::Error>())
        .expect("a transport (reqwest) error");
    assert!(refused_or_reset(cause), "{cause:?}");

    proxy.set(Fault::Status(429)).await?;
    let response = client.ping().send().await?;
    assert_eq!(response.status_code().as_u16(), 429);

    proxy.set(Fault::None).await?;
    assert!(client.ping().send().await?.status_code().is_success());
    Ok(())
}
