//! The osmem server and the ES client helpers.

use std::time::Duration;

use serde_json::json;
use weir_testkit::Osmem;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reads_back_what_was_indexed() -> anyhow::Result<()> {
    let osmem = Osmem::start().await?;
    let es = osmem.client();
    // A missing index reads as empty.
    assert_eq!(es.count("docs").await?, 0);
    assert!(es.ids("docs").await?.is_empty());
    assert_eq!(es.get("docs", "a").await?, None);
    es.refresh("docs").await?;

    // More than two scroll pages and more than the 10,000-hit result window.
    let total = 12_000;
    for chunk in (0..total).collect::<Vec<_>>().chunks(3_000) {
        let mut body = String::new();
        for i in chunk {
            body.push_str(&format!(
                "{{\"index\":{{\"_index\":\"docs\",\"_id\":\"id/{i}\"}}}}\n{{\"n\":{i},\"even\":{}}}\n",
                i % 2 == 0
            ));
        }
        let response = es.bulk(body).await?;
        assert_eq!(response["errors"], json!(false), "{response}");
    }
    assert_eq!(
        es.wait_for_count("docs", total as u64, Duration::from_secs(60))
            .await?,
        total as u64
    );
    let ids = es.ids("docs").await?;
    assert_eq!(ids.len(), total);
    assert!(ids.contains("id/0") && ids.contains(&format!("id/{}", total - 1)));

    // Ids with a slash are escaped in the URL.
    assert_eq!(
        es.get("docs", "id/7").await?,
        Some(json!({"n": 7, "even": false}))
    );
    assert_eq!(es.get("docs", "id/none").await?, None);

    let found = es
        .search("docs", &json!({"query": {"term": {"n": 42}}, "size": 5}))
        .await?;
    assert_eq!(found["hits"]["hits"][0]["_id"], json!("id/42"));
    assert!(es.search("nope", &json!({})).await.is_err());
    Ok(())
}
