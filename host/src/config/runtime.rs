//! `[runtime]`: how Wasm modules are executed and limited.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Problems;

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
    /// Longest a module's instance may take on one batch in wall-clock
    /// time, waiting included (sleeping, outbound HTTP): past it the call
    /// is dropped and the instance discarded. Also bounds `init` at load.
    #[serde(with = "humantime_serde")]
    pub max_batch_wall_time: Duration,
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
    /// Largest the compile cache may grow, in bytes: past it the least
    /// recently used artifacts are removed (uploads that are never used
    /// again cannot fill the disk).
    pub compile_cache_max_bytes: u64,
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
            max_batch_wall_time: Duration::from_secs(30),
            max_memory_bytes: 64 << 20,
            max_table_elements: 100_000,
            max_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            pooling: PoolingMode::Auto,
            pool_instances: 256,
            compile_cache: true,
            compile_cache_max_bytes: 2 << 30,
            cache_dir: None,
            module_log_lines_per_second: 100,
        }
    }
}

impl RuntimeConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, p: &mut Problems) {
        let checks = [
            (
                self.epoch_tick.is_zero(),
                "runtime.epoch_tick",
                "must be greater than zero",
            ),
            (
                self.max_batch_time < self.epoch_tick,
                "runtime.max_batch_time",
                "must be at least runtime.epoch_tick",
            ),
            (
                self.max_memory_bytes < (1 << 16),
                "runtime.max_memory_bytes",
                "must be at least one Wasm page (65536)",
            ),
            (
                self.max_batch_wall_time < self.max_batch_time,
                "runtime.max_batch_wall_time",
                "must be at least runtime.max_batch_time",
            ),
            (
                self.max_concurrency == 0,
                "runtime.max_concurrency",
                "must be at least 1",
            ),
            (
                self.pool_instances == 0,
                "runtime.pool_instances",
                "must be at least 1",
            ),
        ];
        for (bad, key, reason) in checks {
            if bad {
                p.add(key, reason);
            }
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
