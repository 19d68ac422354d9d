//! Python and JavaScript modules on the real rig (tansu + osmem + the weir
//! binary): the example modules `redact-py` (componentize-py) and
//! `domains-js` (componentize-js) index exactly, write their fields and
//! dead-letter bad records with their own messages; and a running pipeline
//! swaps the Python redaction module for its Rust twin without loss.

#[path = "rig/mod.rs"]
mod rig;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rig::*;
use weir::sinks::dead_letter::headers;
use weir_testkit::module_wasm;

/// A record with an email address, a phone number, a keyword and two
/// URLs; every 100th (i % 100 == 13) is not JSON.
fn contact(i: usize) -> String {
    if i % 100 == 13 {
        return format!("not json {i}");
    }
    serde_json::json!({
        "id": format!("c{i}"),
        "text": format!("Ask user{i}@example.com or +1 555 010 {:04} about Falcon: https://www.Example.com/{i} and http://docs.example.org/x", i % 10_000),
        "n": i,
    })
    .to_string()
}

/// The text `redact` makes of [`contact`]'s (keywords = "falcon").
fn redacted_text() -> &'static str {
    "Ask [EMAIL] or [PHONE] about [REDACTED]: https://www.Example.com/{i} and http://docs.example.org/x"
}

fn good_ids(topic: &str, placed: &[(i32, i64)], n: usize) -> HashSet<String> {
    placed
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 != 13 && *i < n)
        .map(|(_, (p, o))| format!("{topic}-{p}-{o}-0"))
        .collect()
}

/// 2,000 records through redact-py, then domains-js, in one pipeline:
/// exact counts and ids, both modules' fields on every document, the 20
/// non-JSON records on the dead-letter topic with the Python module's
/// message, offsets committed to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_modules_index_exactly_with_their_fields() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    const N: usize = 2_000;
    let placed = rig.load("contacts", (0..N).map(contact).collect()).await?;
    rig.kafka.create_topic("contacts-dlq", 1).await?;
    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![
            PipelineSpec::new("contacts", "contacts", "weir-contacts")
                .module("redact-py", &[("keywords", "falcon")])
                .module("domains-js", &[]),
        ],
    );
    let host = Host::start(&rig, &config).await?;
    assert_indexed_exactly(
        &rig,
        "weir-contacts",
        &good_ids("contacts", &placed, N),
        Some(&host),
        Duration::from_secs(240),
    )
    .await?;

    let docs = scan(&rig.osmem.url(), "weir-contacts").await?;
    ensure!(docs.len() == N - N / 100, "{} documents", docs.len());
    for (id, doc) in &docs {
        let i = doc["n"].as_u64().context("n")?;
        ensure!(
            doc["text"] == redacted_text().replace("{i}", &i.to_string()),
            "{id}: text {}",
            doc["text"]
        );
        ensure!(
            doc["redacted"] == serde_json::json!({"emails": 1, "phones": 1, "keywords": 1}),
            "{id}: redacted {}",
            doc["redacted"]
        );
        ensure!(
            doc["domains"] == serde_json::json!(["example.com", "docs.example.org"]),
            "{id}: domains {}",
            doc["domains"]
        );
        let provenance = doc["weir_modules"].as_array().context("provenance")?;
        // Labels are `<file stem>@<version>#<digest>`.
        // Labels are `<file stem>@<version>#<digest>`.
        let names: Vec<&str> = provenance
            .iter()
            .filter_map(|m| m.as_str()?.split('@').next())
            .collect();
        ensure!(
            names == ["redact-py", "domains-js"],
            "{id}: provenance {provenance:?}"
        );
    }

    let dead = rig
        .kafka
        .read_to_end("contacts-dlq", N / 100, Duration::from_secs(60))
        .await?;
    ensure!(dead.len() == N / 100, "{} dead letters", dead.len());
    for r in &dead {
        let reason = header(r, headers::REASON);
        let offset: i64 = header(r, headers::SOURCE_OFFSET).parse()?;
        let partition: i32 = header(r, headers::SOURCE_PARTITION).parse()?;
        let i = placed
            .iter()
            .position(|&x| x == (partition, offset))
            .context("dead letter names a produced record")?;
        ensure!(i % 100 == 13, "record {i} was dead-lettered: {reason}");
        // The Python module's own message (weir_kit's Record.json()).
        ensure!(
            reason.contains("invalid JSON at byte 0: Expecting value"),
            "{reason}"
        );
        ensure!(
            header(r, headers::STAGE) == "module:redact-py",
            "{}",
            header(r, headers::STAGE)
        );
        ensure!(r.value == format!("not json {i}").into_bytes());
    }
    assert_committed_to_end(&rig, &config.group, "contacts", Some(&host)).await?;
    Ok(())
}

/// A JavaScript module's failures carry its message: records that are JSON
/// but not objects fail in domains-js alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_failures_reach_the_dead_letter_topic_with_their_message() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let values: Vec<String> = (0..500)
        .map(|i| {
            if i % 50 == 7 {
                format!("[{i}]")
            } else {
                serde_json::json!({"text": format!("see https://site{}.example/{i}", i % 3)})
                    .to_string()
            }
        })
        .collect();
    let placed = rig.load("links", values).await?;
    rig.kafka.create_topic("links-dlq", 1).await?;
    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![
            PipelineSpec::new("links", "links", "weir-links")
                .module("domains-js", &[("target", "hosts")]),
        ],
    );
    let host = Host::start(&rig, &config).await?;
    let good: HashSet<String> = placed
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 50 != 7)
        .map(|(_, (p, o))| format!("links-{p}-{o}-0"))
        .collect();
    assert_indexed_exactly(
        &rig,
        "weir-links",
        &good,
        Some(&host),
        Duration::from_secs(120),
    )
    .await?;
    for (id, doc) in scan(&rig.osmem.url(), "weir-links").await? {
        let text = doc["text"].as_str().context("text")?;
        let site = text.split('/').nth(2).context("host in text")?;
        ensure!(doc["hosts"] == serde_json::json!([site]), "{id}: {doc}");
    }
    let dead = rig
        .kafka
        .read_to_end("links-dlq", 10, Duration::from_secs(60))
        .await?;
    ensure!(dead.len() == 10, "{} dead letters", dead.len());
    for r in &dead {
        let reason = header(r, headers::REASON);
        ensure!(
            reason.contains("expected a JSON object, found an array"),
            "{reason}"
        );
        ensure!(header(r, headers::STAGE) == "module:domains-js");
    }
    assert_committed_to_end(&rig, &config.group, "links", Some(&host)).await?;
    Ok(())
}

/// The Python redaction module is replaced by its Rust twin while records
/// flow: every record indexed exactly once with the same fields, and per
/// partition the module version changes once, from Python to Rust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_module_hot_swaps_to_its_rust_twin_without_loss() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start().await?;
    let python = std::fs::read(module_wasm("redact-py")?)?;
    let rust = std::fs::read(module_wasm("redact")?)?;
    let dir = rig.dir.path().join("modules");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("redact.wasm");
    write_atomic(&path, &python)?;

    const N: usize = 20_000;
    let placed = rig.load("contacts", (0..N).map(contact).collect()).await?;
    rig.kafka.create_topic("contacts-dlq", 1).await?;
    let config = HostConfig::new(
        &rig.osmem.url(),
        vec![
            PipelineSpec::new("contacts", "contacts", "weir-contacts").module(
                path.to_str().context("utf-8 path")?,
                &[("keywords", "falcon")],
            ),
        ],
    );
    let host = Host::start(&rig, &config).await?;
    wait_for(
        "the Python module to index",
        Duration::from_secs(120),
        Some(&host),
        || async { Ok((rig.es().count("weir-contacts").await.unwrap_or(0) > 500).then_some(())) },
    )
    .await?;
    write_atomic(&path, &rust)?;
    let rust_digest = weir::runtime::digest_of(&rust);
    wait_for(
        "the Rust twin to become active",
        Duration::from_secs(60),
        Some(&host),
        || async {
            let report = host.modules().await?;
            Ok((report["modules"][0]["active"]["digest"] == rust_digest.as_str()).then_some(()))
        },
    )
    .await?;
    ensure!(
        rig.es().count("weir-contacts").await? < (N - N / 100) as u64,
        "load finished before the swap"
    );
    assert_indexed_exactly(
        &rig,
        "weir-contacts",
        &good_ids("contacts", &placed, N),
        Some(&host),
        Duration::from_secs(300),
    )
    .await?;

    let python12 = &weir::runtime::digest_of(&python)[..12];
    let rust12 = &rust_digest[..12];
    let mut per_partition: BTreeMap<i32, Vec<(i64, bool)>> = BTreeMap::new();
    for (id, doc) in scan(&rig.osmem.url(), "weir-contacts").await? {
        let i = doc["n"].as_u64().context("n")?;
        ensure!(
            doc["text"] == redacted_text().replace("{i}", &i.to_string())
                && doc["redacted"] == serde_json::json!({"emails": 1, "phones": 1, "keywords": 1}),
            "{id}: {doc}"
        );
        let provenance = doc["weir_modules"].as_array().context("provenance")?;
        ensure!(provenance.len() == 1, "{id}: provenance {provenance:?}");
        let label = provenance[0].as_str().unwrap_or_default();
        let (name, digest) = label.split_once('#').context("label has a digest")?;
        ensure!(name.starts_with("redact@"), "{id}: {label}");
        let by_rust = match digest {
            d if d == rust12 => true,
            d if d == python12 => false,
            _ => anyhow::bail!("{id}: unknown version {label}"),
        };
        let (p, o) = parse_id(&id).context("default id")?;
        per_partition.entry(p).or_default().push((o, by_rust));
    }
    let mut seen = HashSet::new();
    for (p, mut seq) in per_partition {
        seq.sort();
        let changes = seq.windows(2).filter(|w| w[0].1 != w[1].1).count();
        ensure!(
            changes <= 1 && !(seq.first().map(|s| s.1).unwrap_or(false) && changes == 1),
            "partition {p}: version changed {changes} times or went back to Python"
        );
        seen.extend(seq.iter().map(|s| s.1));
    }
    ensure!(seen.len() == 2, "both versions processed records: {seen:?}");
    assert_committed_to_end(&rig, &config.group, "contacts", Some(&host)).await?;
    Ok(())
}
