//! Resource limits applied to every module instance, and the typed errors
//! that say which limit stopped a module.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[runtime]`: how Wasm modules are executed and limited.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Granularity of CPU-time enforcement (the epoch tick).
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
    /// Longest a module may run on one batch before it is interrupted.
    #[serde(with = "humantime_serde")]
    pub max_batch_time: Duration,
    /// Largest linear memory one module instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Largest table one module instance may grow to, in elements.
    pub max_table_elements: usize,
    /// Module instances that may run at once across all pipelines
    /// (defaults to the number of CPUs).
    pub max_concurrency: usize,
    /// Pooling allocator: `auto` (use it when the machine allows),
    /// `on` (fail if unavailable) or `off`.
    pub pooling: PoolingMode,
    /// Instance slots reserved by the pooling allocator.
    pub pool_instances: u32,
    /// Keep compiled modules on disk so restarts don't recompile.
    pub compile_cache: bool,
    /// Where; default `$XDG_CACHE_HOME/weir/compiled` (or `~/.cache/…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Log lines/s one module may write through `wasi:logging` (tenants:
    /// their `log_lines_per_second` quota); the rest are dropped, counted
    /// and reported as "N lines suppressed". 0 = unlimited.
    pub module_log_lines_per_second: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            epoch_tick: Duration::from_millis(10),
            max_batch_time: Duration::from_secs(5),
            max_memory_bytes: 64 << 20,
            max_table_elements: 100_000,
            max_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            pooling: PoolingMode::Auto,
            pool_instances: 256,
            compile_cache: true,
            cache_dir: None,
            module_log_lines_per_second: 100,
        }
    }
}

impl RuntimeConfig {
    /// Checks values serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.epoch_tick.is_zero() {
            return Err("runtime.epoch_tick: must be greater than zero".into());
        }
        if self.max_batch_time < self.epoch_tick {
            return Err("runtime.max_batch_time: must be at least runtime.epoch_tick".into());
        }
        if self.max_memory_bytes < (1 << 16) {
            return Err("runtime.max_memory_bytes: must be at least one Wasm page (65536)".into());
        }
        if self.max_concurrency == 0 {
            return Err("runtime.max_concurrency: must be at least 1".into());
        }
        if self.pool_instances == 0 {
            return Err("runtime.pool_instances: must be at least 1".into());
        }
        Ok(())
    }

    pub(crate) fn instance_limits(&self) -> InstanceLimits {
        let tick = self.epoch_tick.as_nanos().max(1);
        InstanceLimits {
            max_memory_bytes: self.max_memory_bytes,
            max_table_elements: self.max_table_elements,
            max_instances: 16,
            max_tables: 16,
            max_memories: 4,
            cpu_ticks_per_call: (self.max_batch_time.as_nanos() / tick).max(1) as u64,
            max_batch_time: self.max_batch_time,
        }
    }

    /// Limits of a tenant's module instances: its quotas, on this
    /// runtime's epoch tick.
    pub fn tenant_limits(&self, q: &crate::tenancy::Quotas) -> InstanceLimits {
        let tick = self.epoch_tick.as_nanos().max(1);
        InstanceLimits {
            max_memory_bytes: q.max_memory_bytes,
            max_table_elements: q.max_table_elements,
            max_instances: q.max_instances,
            max_tables: 16,
            max_memories: 4,
            cpu_ticks_per_call: (q.max_batch_time.as_nanos() / tick).max(1) as u64,
            max_batch_time: q.max_batch_time,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingMode {
    Auto,
    On,
    Off,
}

/// Limits for one instance, derived from [`RuntimeConfig`].
#[derive(Debug, Clone)]
pub struct InstanceLimits {
    pub max_memory_bytes: usize,
    pub max_table_elements: usize,
    pub max_instances: usize,
    pub max_tables: usize,
    pub max_memories: usize,
    /// Epoch ticks one call (init or process) may run.
    pub cpu_ticks_per_call: u64,
    /// The CPU time those ticks stand for (named in the limit's message).
    pub max_batch_time: Duration,
}

/// A limit that stopped a module. Returned from the epoch callback (CPU)
/// and recognised in trap errors (memory), so the dead-letter reason names
/// the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("CPU time limit exceeded: the module ran longer than {0:?} on one batch")]
    CpuTime(Duration),
    #[error("memory limit exceeded: the module tried to grow its memory beyond {0} bytes")]
    Memory(usize),
    #[error(
        "instance limit exceeded: the module tried to create more than {0} instances, tables or memories"
    )]
    Instances(usize),
}
