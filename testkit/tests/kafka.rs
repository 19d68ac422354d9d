//! The Kafka rig against a real tansu broker.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use weir_testkit::Kafka;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_end_offsets_and_consume() -> anyhow::Result<()> {
    let kafka = Kafka::start().await?;
    kafka.create_topic("events", 3).await?;
    assert_eq!(kafka.partition_count("events").await?, 3);

    let n = 20_000;
    let placed = kafka
        .produce(
            "events",
            (0..n).map(|i| {
                (
                    Some(format!("key-{i}")),
                    format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(380)),
                )
            }),
        )
        .await?;
    assert_eq!(placed.len(), n);
    // Offsets are dense per partition: 0..count.
    let mut per_partition = vec![Vec::new(); 3];
    for &(partition, offset) in &placed {
        per_partition[partition as usize].push(offset);
    }
    for offsets in &mut per_partition {
        offsets.sort_unstable();
        assert_eq!(*offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
    assert!(
        per_partition.iter().all(|o| !o.is_empty()),
        "keys spread over every partition"
    );

    let ends = kafka.end_offsets("events").await?;
    let expected_ends: Vec<i64> = per_partition.iter().map(|o| o.len() as i64).collect();
    assert_eq!(ends, expected_ends);

    let records = kafka
        .read_to_end("events", n, Duration::from_secs(60))
        .await?;
    assert_eq!(records.len(), n);
    let keys: HashSet<Vec<u8>> = records.iter().filter_map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), n, "every record read once");
    let first = records
        .iter()
        .find(|r| r.key.as_deref() == Some(b"key-7"))
        .expect("key-7 read");
    assert!(first.value.starts_with(b"{\"n\":7,"));
    assert!(placed.contains(&(first.partition, first.offset)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_loads_100k_records() -> anyhow::Result<()> {
    let kafka = Kafka::start().await?;
    kafka.create_topic("bulk", 4).await?;
    let value = vec![b'v'; 400];
    let n = 100_000;
    let started = std::time::Instant::now();
    let placed = kafka
        .produce("bulk", (0..n).map(|i| (Some(i.to_string()), &value)))
        .await?;
    let elapsed = started.elapsed();
    println!(
        "produced {n} records of 400 bytes in {elapsed:?} ({:.0} records/s)",
        n as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(placed.len(), n);
    let mut ends = vec![0i64; 4];
    for &(partition, offset) in &placed {
        ends[partition as usize] = ends[partition as usize].max(offset + 1);
    }
    assert_eq!(ends.iter().sum::<i64>(), n as i64, "offsets are dense");
    assert_eq!(kafka.end_offsets("bulk").await?, ends);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_to_end_reads_headers_everything_and_times_out_when_short() -> anyhow::Result<()> {
    let kafka = Kafka::start().await?;
    kafka.create_topic("dlq", 1).await?;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .create()?;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "weir.error",
            value: Some("mapper_parsing_exception"),
        })
        .insert(Header {
            key: "weir.empty",
            value: None::<&[u8]>,
        });
    producer
        .send(
            FutureRecord::to("dlq")
                .key("k")
                .payload("v")
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;

    let records = kafka.read_to_end("dlq", 1, Duration::from_secs(30)).await?;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!((record.partition, record.offset), (0, 0));
    assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(record.value, b"v");
    assert_eq!(
        record.headers,
        vec![
            (
                "weir.error".to_owned(),
                b"mapper_parsing_exception".to_vec()
            ),
            ("weir.empty".to_owned(), Vec::new()),
        ]
    );

    let short = kafka.read_to_end("dlq", 2, Duration::from_secs(2)).await;
    let message = format!("{:#}", short.expect_err("only one record exists"));
    assert!(
        message.contains("read 1 of at least 2 records"),
        "{message}"
    );

    // Asked for one of two, it still returns both: extras are visible.
    producer
        .send(
            FutureRecord::to("dlq").key("k2").payload("v2"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let all = kafka.read_to_end("dlq", 1, Duration::from_secs(30)).await?;
    let offsets: Vec<i64> = all.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_follow_a_group_commit() -> anyhow::Result<()> {
    let kafka = Kafka::start().await?;
    kafka.create_topic("orders", 2).await?;
    assert_eq!(
        kafka.committed_offsets("billing", "orders").await?,
        vec![None, None]
    );

    let placed = kafka
        .produce(
            "orders",
            (0..10).map(|i| (None::<&[u8]>, format!("order {i}"))),
        )
        .await?;

    let group = "billing".to_owned();
    let config = kafka.consumer_config(&group);
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let consumer: BaseConsumer = config.clone().set("enable.auto.commit", "false").create()?;
        consumer.subscribe(&["orders"])?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut read = 0;
        while read < 10 {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "read only {read} of 10"
            );
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message?;
                assert!(message.payload().is_some());
                read += 1;
            }
        }
        consumer.commit_consumer_state(CommitMode::Sync)?;
        Ok(read)
    })
    .await??;
    assert_eq!(read, 10);

    let mut expected = vec![None, None];
    for &(partition, offset) in &placed {
        let next = Some(offset + 1);
        if expected[partition as usize] < next {
            expected[partition as usize] = next;
        }
    }
    assert_eq!(
        kafka.committed_offsets("billing", "orders").await?,
        expected
    );
    // Another group has committed nothing.
    assert_eq!(
        kafka.committed_offsets("audit", "orders").await?,
        vec![None, None]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topic_is_an_error() -> anyhow::Result<()> {
    let kafka = Kafka::start().await?;
    assert!(kafka.end_offsets("nope").await.is_err());
    kafka.stop();
    Ok(())
}
