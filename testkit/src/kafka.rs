//! [`Kafka`]: a real Kafka-compatible broker process (`tansu`, in-memory
//! storage) plus the producer/consumer helpers tests need.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::process::{Process, free_port};
use crate::tools::tansu_bin;

/// How long the broker gets to answer a metadata request after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of single metadata / offset requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A record read back by [`Kafka::read_to_end`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Key, if the record has one.
    pub key: Option<Vec<u8>>,
    /// Value (empty for a null value).
    pub value: Vec<u8>,
    /// Headers in order; a null header value reads as empty.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A reader's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

/// A running `tansu` broker with in-memory storage on a free port of
/// 127.0.0.1, killed on drop.
///
/// Tansu quirks that clients under test should allow for:
/// - joining a consumer group takes about half of `session.timeout.ms`, so
///   tests should use `session.timeout.ms=6000` and
///   `heartbeat.interval.ms=1000` (see [`Kafka::consumer_config`]);
/// - ListOffsets for `latest` answers a value below the partition's end
///   after batched produce, apparently the base offset of its last record
///   batch (seen: 1 after 10 records; 24,366 after 24,999). So
///   `fetch_watermarks`' high mark is wrong, and a consumer starting at
///   `latest` (`Offset::End`, `auto.offset.reset=latest`) re-reads the last
///   batch. Use `auto.offset.reset=earliest`, and [`Kafka::end_offsets`] for
///   end offsets. Fetch responses carry a correct high watermark, and
///   produce delivery reports correct offsets.
pub struct Kafka {
    process: Process,
    bootstrap: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl Kafka {
    /// Starts the broker and waits until a metadata request succeeds.
    ///
    /// Fails if the binary is missing (run `cargo xtask tools`) or the broker
    /// does not come up; the error then quotes its log.
    pub async fn start() -> Result<Kafka> {
        let bin = tansu_bin()?;
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port();
            let listener = format!("tcp://127.0.0.1:{port}");
            let mut command = Command::new(&bin);
            command
                .arg("broker")
                .arg("--listener-url")
                .arg(&listener)
                .arg("--advertised-listener-url")
                .arg(&listener)
                .arg("--storage-engine")
                .arg("memory://tansu/")
                .env("RUST_LOG", "warn")
                .env("NO_COLOR", "1");
            let process = Process::spawn("tansu", command)?;
            let bootstrap = format!("127.0.0.1:{port}");
            match wait_ready(&process, &bootstrap).await {
                Ok(()) => {
                    let producer = producer_config(&bootstrap)
                        .create()
                        .context("create the rig's Kafka producer")?;
                    let admin = base_config(&bootstrap)
                        .create()
                        .context("create the rig's Kafka admin client")?;
                    return Ok(Kafka {
                        process,
                        bootstrap,
                        producer,
                        admin,
                    });
                }
                // Most likely someone took the port: try another.
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// The broker process (for its log, or to kill it mid-test).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Client settings suited to tansu for a consumer in `group`:
    /// bootstrap servers, `auto.offset.reset=earliest`,
    /// `session.timeout.ms=6000`, `heartbeat.interval.ms=1000`.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = base_config(&self.bootstrap);
        config
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000");
        config
    }

    /// Creates `name` with `partitions` partitions (replication factor 1)
    /// and waits until the broker's metadata lists them all.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .admin
            .create_topics([&topic], &options)
            .await
            .with_context(|| format!("create topic {name}"))?;
        for result in results {
            result.map_err(|(topic, code)| anyhow!("create topic {topic}: {code}"))?;
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            match self.partition_count(name).await {
                Ok(n) if n == partitions => return Ok(()),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(n) => bail!("topic {name} has {n} partitions, expected {partitions}"),
                Err(e) => return Err(e),
            }
        }
    }

    /// Number of partitions of `topic` (an error if it does not exist).
    pub async fn partition_count(&self, topic: &str) -> Result<i32> {
        let config = base_config(&self.bootstrap);
        let topic = topic.to_owned();
        blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            partition_count(&consumer, &topic)
        })
        .await
    }

    /// Produces `records` (`(key, value)` pairs) to `topic`, waits for every
    /// delivery, and returns each record's `(partition, offset)` in input
    /// order. Keyed records are partitioned by key hash; keyless ones by
    /// librdkafka's sticky random partitioner.
    ///
    /// Batched (5 ms linger, up to 10,000 records a batch): 100,000 records
    /// of 400 bytes take well under a second here (~160,000 records/s).
    pub async fn produce<K, V>(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (Option<K>, V)>,
    ) -> Result<Vec<(i32, i64)>>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut deliveries = Vec::new();
        for (key, value) in records {
            let mut record = FutureRecord::to(topic).payload(value.as_ref());
            if let Some(key) = &key {
                record = record.key(key.as_ref());
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(e).with_context(|| format!("produce to {topic}")),
                }
            }
        }
        let mut placed = Vec::with_capacity(deliveries.len());
        for delivery in futures::future::join_all(deliveries).await {
            match delivery {
                Ok(Ok(delivery)) => placed.push((delivery.partition, delivery.offset)),
                Ok(Err((e, _))) => return Err(e).with_context(|| format!("deliver to {topic}")),
                Err(_) => bail!("the producer dropped a delivery report for {topic}"),
            }
        }
        Ok(placed)
    }

    /// Flushes the rig's producer (all produced records delivered or failed).
    pub async fn flush(&self) -> Result<()> {
        let producer = self.producer.clone();
        blocking(move || Ok(producer.flush(REQUEST_TIMEOUT)?)).await
    }

    /// End offset (offset of the next record) of each partition of `topic`.
    ///
    /// Found by reading every partition from the beginning until librdkafka
    /// reports partition EOF, which it does when the fetch position equals
    /// the high watermark of a Fetch response: tansu gets that one right.
    /// ListOffsets (`fetch_watermarks`, `Offset::End`) is not used, as tansu
    /// answers it with a value below the end (see [`Kafka`]). Costs about a
    /// second per 100,000 records.
    pub async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>> {
        let mut config = self.reader_config();
        config
            .set("enable.partition.eof", "true")
            // EOF is only noticed on an empty fetch: don't wait long for one.
            .set("fetch.wait.max.ms", "20");
        let topic = topic.to_owned();
        blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let n = assign_from_beginning(&consumer, &topic)? as usize;
            let mut ends = vec![0i64; n];
            let mut at_end = vec![false; n];
            let deadline = Instant::now() + Duration::from_secs(60);
            while !at_end.iter().all(|&e| e) {
                if Instant::now() >= deadline {
                    bail!("partitions of {topic} did not reach their end within 60 s");
                }
                match consumer.poll(Duration::from_millis(200)) {
                    None => {}
                    Some(Ok(message)) => {
                        let p = message.partition() as usize;
                        ends[p] = ends[p].max(message.offset() + 1);
                        at_end[p] = false;
                    }
                    Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
                    Some(Err(e)) => {
                        return Err(e).with_context(|| format!("read {topic} to its end"));
                    }
                }
            }
            Ok(ends)
        })
        .await
    }

    /// Committed offsets of consumer group `group` for each partition of
    /// `topic` (`None` where the group has committed nothing).
    ///
    /// Asks the group coordinator through a consumer with that `group.id`
    /// that never subscribes, so the group itself is left alone.
    pub async fn committed_offsets(&self, group: &str, topic: &str) -> Result<Vec<Option<i64>>> {
        let mut config = self.consumer_config(group);
        config.set("enable.auto.commit", "false");
        let topic = topic.to_owned();
        blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let n = partition_count(&consumer, &topic)?;
            let mut wanted = TopicPartitionList::new();
            for p in 0..n {
                wanted.add_partition(&topic, p);
            }
            let committed = consumer
                .committed_offsets(wanted, REQUEST_TIMEOUT)
                .context("fetch committed offsets")?;
            (0..n)
                .map(|p| {
                    let element = committed
                        .find_partition(&topic, p)
                        .with_context(|| format!("no committed-offset entry for partition {p}"))?;
                    element
                        .error()
                        .with_context(|| format!("committed offset of partition {p}"))?;
                    Ok(match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    })
                })
                .collect()
        })
        .await
    }

    /// Every record of `topic`, read from the beginning of every partition
    /// to its end, once the topic holds at least `at_least` records (in
    /// arrival order; in offset order within a partition). Fails if it
    /// holds fewer within `timeout`.
    ///
    /// Returns what is there, not just `at_least`: a caller comparing exact
    /// sets sees extra and duplicate records. The end is where librdkafka
    /// reports partition EOF (the high watermark of a Fetch response, which
    /// tansu gets right; see [`Kafka::end_offsets`]), not ListOffsets.
    /// Meant for dead-letter topics and other small result topics. Uses
    /// partition assignment, not a consumer group, so it commits nothing.
    ///
    /// Reads with `isolation.level=read_committed`, as every reader of a
    /// dead-letter topic must: records of aborted or still open
    /// transactions are not returned, and the end is the last stable
    /// offset.
    pub async fn read_to_end(
        &self,
        topic: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Result<Vec<ConsumedRecord>> {
        self.read_to_end_isolated(topic, at_least, timeout, Isolation::ReadCommitted)
            .await
    }

    /// [`Kafka::read_to_end`] with the given isolation level:
    /// `ReadUncommitted` also returns records of aborted and open
    /// transactions (to show that a transaction wrote them).
    pub async fn read_to_end_isolated(
        &self,
        topic: &str,
        at_least: usize,
        timeout: Duration,
        isolation: Isolation,
    ) -> Result<Vec<ConsumedRecord>> {
        let mut config = self.reader_config();
        config
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "20")
            .set(
                "isolation.level",
                match isolation {
                    Isolation::ReadCommitted => "read_committed",
                    Isolation::ReadUncommitted => "read_uncommitted",
                },
            );
        let topic = topic.to_owned();
        blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let n = assign_from_beginning(&consumer, &topic)? as usize;
            let mut at_end = vec![false; n];
            let deadline = Instant::now() + timeout;
            let mut records = Vec::with_capacity(at_least);
            while records.len() < at_least || !at_end.iter().all(|&e| e) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    bail!(
                        "read {} of at least {at_least} records from {topic} within {timeout:?}",
                        records.len()
                    );
                }
                match consumer.poll(left.min(Duration::from_millis(200))) {
                    None => {}
                    Some(Ok(message)) => {
                        at_end[message.partition() as usize] = false;
                        records.push(ConsumedRecord {
                            partition: message.partition(),
                            offset: message.offset(),
                            key: message.key().map(<[u8]>::to_vec),
                            value: message.payload().unwrap_or_default().to_vec(),
                            headers: message
                                .headers()
                                .map(|headers| {
                                    headers
                                        .iter()
                                        .map(|h| {
                                            (h.key.to_owned(), h.value.unwrap_or_default().to_vec())
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                        });
                    }
                    Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
                    Some(Err(e)) => return Err(e).with_context(|| format!("consume {topic}")),
                }
            }
            Ok(records)
        })
        .await
    }

    /// Kills the broker.
    pub fn stop(self) {
        drop(self);
    }

    /// Settings for group-less readers that assign partitions themselves.
    fn reader_config(&self) -> ClientConfig {
        let mut config = base_config(&self.bootstrap);
        // librdkafka wants a group id even for assign(); nothing is committed.
        config
            .set(
                "group.id",
                format!("weir-testkit-reader-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        config
    }
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap", &self.bootstrap)
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3");
    config
}

fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = base_config(bootstrap);
    config
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "30000");
    config
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| format!("fetch metadata of {topic}"))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .with_context(|| format!("topic {topic} missing from metadata"))?;
    if let Some(error) = found.error() {
        bail!("topic {topic}: {:?}", RDKafkaErrorCode::from(error));
    }
    if found.partitions().is_empty() {
        bail!("topic {topic} has no partitions");
    }
    Ok(found.partitions().len() as i32)
}

fn assign_from_beginning(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let n = partition_count(consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..n {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(n)
}

async fn wait_ready(process: &Process, bootstrap: &str) -> Result<()> {
    let config = base_config(bootstrap);
    let deadline = Instant::now() + READY_TIMEOUT;
    let consumer: BaseConsumer = config.create().context("create a metadata client")?;
    let consumer = std::sync::Arc::new(consumer);
    loop {
        process.ensure_running()?;
        let probe = consumer.clone();
        let answer = blocking(move || {
            let metadata = probe.fetch_metadata(None, Duration::from_secs(1))?;
            Ok(metadata.brokers().len())
        })
        .await;
        match answer {
            Ok(brokers) if brokers > 0 => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => bail!(
                "tansu at {bootstrap} lists no brokers{}",
                process.log_excerpt()
            ),
            Err(e) => {
                return Err(e).context(format!(
                    "tansu at {bootstrap} not ready after {READY_TIMEOUT:?}{}",
                    process.log_excerpt()
                ));
            }
        }
    }
}

/// Runs blocking librdkafka calls off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("blocking Kafka call panicked")?
}
