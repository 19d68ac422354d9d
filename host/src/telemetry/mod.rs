//! Metrics (Prometheus, via prometheus-client) and the typed handles the
//! rest of the host records into.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    /// Empty for a single-tenant host's pipelines.
    pub tenant: String,
    pub pipeline: String,
}

/// The tenant of a pipeline name: tenants' pipelines are `<tenant>.<name>`
/// and no other pipeline name has a dot.
pub fn tenant_of(pipeline: &str) -> &str {
    pipeline.split_once('.').map_or("", |(t, _)| t)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModuleLabels {
    pub tenant: String,
    pub pipeline: String,
    pub module: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub tenant: String,
    pub pipeline: String,
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutputCheckLabels {
    pub tenant: String,
    pub pipeline: String,
    /// `index`, `max_documents_per_record`, `max_document_bytes`,
    /// `max_batch_output_bytes` or `document` (not a JSON object).
    pub check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

fn batch_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// All host metrics. Sinks register their own families in the same registry.
#[derive(Clone)]
pub struct Metrics {
    module_records_in: Family<ModuleLabels, Counter>,
    module_records_out: Family<ModuleLabels, Counter>,
    module_records_dropped: Family<ModuleLabels, Counter>,
    module_records_failed: Family<ModuleLabels, Counter>,
    records_consumed: Family<PipelineLabels, Counter>,
    batches: Family<PipelineLabels, Counter>,
    breaker_trips: Family<PipelineLabels, Counter>,
    batch_seconds: Family<PipelineLabels, Histogram, fn() -> Histogram>,
    pub dead_letters: Family<StageLabels, Counter>,
    output_rejections: Family<OutputCheckLabels, Counter>,
    pub dead_letter_errors: Counter,
    pub dead_letter_permanent_errors: Counter,
    pub committed_offset: Family<PartitionLabels, Gauge>,
    pub commits: Family<ResultLabels, Counter>,
    pub paused_partitions: Gauge,
    consumer_lag: Family<PartitionLabels, Gauge>,
    /// The same lags by topic, for the pipelines' status.
    lags: Arc<
        std::sync::Mutex<std::collections::BTreeMap<String, std::collections::BTreeMap<i32, i64>>>,
    >,
    pub assigned_partitions: Gauge,
    module_reloads: Family<ReloadLabels, Counter>,
    config_reloads: Family<ResultLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub pipeline: String,
    pub module: String,
    pub result: String,
}

impl Metrics {
    /// Creates the host's metric families and registers them under `weir_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            module_records_in: Family::default(),
            module_records_out: Family::default(),
            module_records_dropped: Family::default(),
            module_records_failed: Family::default(),
            records_consumed: Family::default(),
            batches: Family::default(),
            breaker_trips: Family::default(),
            batch_seconds: Family::new_with_constructor(batch_histogram),
            dead_letters: Family::default(),
            output_rejections: Family::default(),
            dead_letter_errors: Counter::default(),
            dead_letter_permanent_errors: Counter::default(),
            committed_offset: Family::default(),
            commits: Family::default(),
            paused_partitions: Gauge::default(),
            consumer_lag: Family::default(),
            lags: Arc::default(),
            assigned_partitions: Gauge::default(),
            module_reloads: Family::default(),
            config_reloads: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("weir");
        r.register(
            "module_records_in",
            "Records given to a module",
            m.module_records_in.clone(),
        );
        r.register(
            "module_records_out",
            "Documents a module emitted",
            m.module_records_out.clone(),
        );
        r.register(
            "module_records_dropped",
            "Records a module dropped",
            m.module_records_dropped.clone(),
        );
        r.register(
            "module_records_failed",
            "Records a module failed or trapped on",
            m.module_records_failed.clone(),
        );
        r.register(
            "records_consumed",
            "Records consumed from Kafka",
            m.records_consumed.clone(),
        );
        r.register("batches", "Batches processed", m.batches.clone());
        r.register(
            "output_rejections",
            "Records the host's output check refused (dead-lettered), by the check that refused them",
            m.output_rejections.clone(),
        );
        r.register(
            "breaker_trips",
            "Times a pipeline backed off because every record of its recent batches failed",
            m.breaker_trips.clone(),
        );
        r.register(
            "batch_duration_seconds",
            "Time to run a batch through a pipeline's modules",
            m.batch_seconds.clone(),
        );
        r.register(
            "dead_letters",
            "Records written to a dead-letter topic, by failure stage",
            m.dead_letters.clone(),
        );
        r.register(
            "dead_letter_write_errors",
            "Failed attempts to write a dead letter (retried)",
            m.dead_letter_errors.clone(),
        );
        r.register(
            "dead_letter_permanent_errors",
            "Dead-letter writes refused for good (too large, invalid record): written as a reference to the source record instead",
            m.dead_letter_permanent_errors.clone(),
        );
        r.register(
            "committed_offset",
            "Last offset committed per partition",
            m.committed_offset.clone(),
        );
        r.register(
            "offset_commits",
            "Offset commits by result",
            m.commits.clone(),
        );
        r.register(
            "paused_partitions",
            "Partitions paused for backpressure",
            m.paused_partitions.clone(),
        );
        r.register(
            "consumer_lag",
            "Records between the group's position and the partition's end, per librdkafka's statistics",
            m.consumer_lag.clone(),
        );
        r.register(
            "assigned_partitions",
            "Partitions assigned to this host",
            m.assigned_partitions.clone(),
        );
        r.register(
            "module_reloads",
            "Module loads after startup by result (ok, rejected, rollback)",
            m.module_reloads.clone(),
        );
        r.register(
            "config_reloads",
            "Config file reloads by result (ok, rejected)",
            m.config_reloads.clone(),
        );
        m
    }

    pub fn module_reload(&self, pipeline: &str, module: &str, result: &str) {
        self.module_reloads
            .get_or_create(&ReloadLabels {
                pipeline: pipeline.into(),
                module: module.into(),
                result: result.into(),
            })
            .inc();
    }

    /// A partition's lag, from the consumer's statistics.
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .get_or_create(&PartitionLabels {
                topic: topic.to_string(),
                partition,
            })
            .set(lag);
        self.lags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(topic.to_string())
            .or_default()
            .insert(partition, lag);
    }

    /// The summed lag of `topics`' partitions; `None` until statistics
    /// reported any of them.
    pub fn lag_of(&self, topics: &[String]) -> Option<i64> {
        let lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        let known: Vec<i64> = topics
            .iter()
            .filter_map(|t| lags.get(t))
            .flat_map(|ps| ps.values().copied())
            .collect();
        (!known.is_empty()).then(|| known.iter().sum())
    }

    pub fn config_reload(&self, result: &str) {
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// Handles for one pipeline.
    pub fn pipeline(&self, name: &str) -> PipelineMetrics {
        let labels = PipelineLabels {
            tenant: tenant_of(name).to_string(),
            pipeline: name.to_string(),
        };
        PipelineMetrics {
            name: Arc::from(name),
            records_consumed: self.records_consumed.get_or_create(&labels).clone(),
            batches: self.batches.get_or_create(&labels).clone(),
            breaker_trips: self.breaker_trips.get_or_create(&labels).clone(),
            batch_seconds: self.batch_seconds.get_or_create(&labels).clone(),
            root: self.clone(),
        }
    }
}

/// Metric handles for one pipeline.
#[derive(Clone)]
pub struct PipelineMetrics {
    name: Arc<str>,
    pub records_consumed: Counter,
    pub batches: Counter,
    pub breaker_trips: Counter,
    pub batch_seconds: Histogram,
    root: Metrics,
}

/// Metric handles for one module within a pipeline.
pub struct ModuleMetrics {
    pub records_in: Counter,
    pub records_out: Counter,
    pub records_dropped: Counter,
    pub records_failed: Counter,
}

impl PipelineMetrics {
    /// Metrics that record nowhere (for `weir process` and tests).
    pub fn detached(name: &str) -> Self {
        Metrics::register(&mut Registry::default()).pipeline(name)
    }

    pub fn module(&self, module: &str) -> ModuleMetrics {
        let l = ModuleLabels {
            tenant: tenant_of(&self.name).to_string(),
            pipeline: self.name.to_string(),
            module: module.to_string(),
        };
        ModuleMetrics {
            records_in: self.root.module_records_in.get_or_create(&l).clone(),
            records_out: self.root.module_records_out.get_or_create(&l).clone(),
            records_dropped: self.root.module_records_dropped.get_or_create(&l).clone(),
            records_failed: self.root.module_records_failed.get_or_create(&l).clone(),
        }
    }

    /// A record the host's output check refused: its documents break
    /// `check` (see [`OutputCheckLabels`]).
    pub fn output_rejected(&self, check: &str) {
        self.root
            .output_rejections
            .get_or_create(&OutputCheckLabels {
                tenant: tenant_of(&self.name).to_string(),
                pipeline: self.name.to_string(),
                check: check.to_string(),
            })
            .inc();
    }

    pub fn dead_letter(&self, stage: &str) {
        self.root
            .dead_letters
            .get_or_create(&StageLabels {
                tenant: tenant_of(&self.name).to_string(),
                pipeline: self.name.to_string(),
                stage: stage.to_string(),
            })
            .inc();
    }
}
