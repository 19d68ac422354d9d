//! The no-op bulk endpoint.

use std::io::Write;

use serde_json::{Value, json};
use weir_testkit::NoopBulk;

#[tokio::test]
async fn acknowledges_every_action_in_order() -> anyhow::Result<()> {
    let noop = NoopBulk::start().await?;
    let http = reqwest::Client::new();

    let mut body = String::new();
    for i in 0..1000 {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"bench\",\"_id\":\"{i}\"}}}}\n{{\"n\":{i}}}\n"
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes())?;
    let response: Value = http
        .post(format!("{}/_bulk", noop.url()))
        .header("content-encoding", "gzip")
        .body(gz.finish()?)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(response["errors"], json!(false));
    let items = response["items"].as_array().unwrap();
    assert_eq!(items.len(), 1000);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"]["_id"], json!(i.to_string()));
        assert_eq!(item["index"]["_index"], json!("bench"));
        assert_eq!(item["index"]["status"], json!(201));
    }

    let body = "{\"create\":{}}\n{\"a\":1}\n{\"delete\":{\"_id\":\"x\"}}\n";
    let response: Value = http
        .post(format!("{}/other/_bulk", noop.url()))
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(response["items"][0]["create"]["_index"], json!("other"));
    assert!(response["items"][0]["create"]["_id"].is_string());
    assert_eq!(response["items"][1]["delete"]["_id"], json!("x"));
    assert_eq!(noop.docs(), 1002);

    let bad = http
        .post(format!("{}/_bulk", noop.url()))
        .body("not json\n")
        .send()
        .await?;
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(noop.docs(), 1002);

    let info: Value = http.get(noop.url()).send().await?.json().await?;
    assert_eq!(info["version"]["number"], json!("8.15.0"));
    let template: Value = http
        .put(format!("{}/_index_template/weir", noop.url()))
        .json(&json!({"index_patterns": ["x-*"]}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(template, json!({"acknowledged": true}));
    let health: Value = http
        .get(format!("{}/_cluster/health", noop.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], json!("green"));
    assert_eq!(noop.requests(), 6);
    Ok(())
}
