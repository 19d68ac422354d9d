//! Resource limits applied to every module instance, and the typed errors
//! that say which limit stopped a module.

use std::time::Duration;

use crate::config::{Quotas, RuntimeConfig};

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
    /// Wall-clock time one batch (instantiate, init, process) may take,
    /// waiting included; also bounds describe + init at load.
    pub max_batch_wall_time: Duration,
    /// Largest a host-held document (0.2) may grow through a module's
    /// edits (a tenant's `max_document_bytes`); `None`: no limit.
    pub max_document_bytes: Option<usize>,
}

impl InstanceLimits {
    /// Limits of a module instance under `[runtime]`.
    pub fn for_runtime(rc: &RuntimeConfig) -> Self {
        let tick = rc.epoch_tick.as_nanos().max(1);
        InstanceLimits {
            max_memory_bytes: rc.max_memory_bytes,
            max_table_elements: rc.max_table_elements,
            max_instances: 16,
            max_tables: 16,
            max_memories: 4,
            cpu_ticks_per_call: (rc.max_batch_time.as_nanos() / tick).max(1) as u64,
            max_batch_time: rc.max_batch_time,
            max_batch_wall_time: rc.max_batch_wall_time,
            max_document_bytes: None,
        }
    }

    /// Limits of a tenant's module instances: its quotas, on this
    /// runtime's epoch tick.
    pub fn for_tenant(rc: &RuntimeConfig, q: &Quotas) -> Self {
        let tick = rc.epoch_tick.as_nanos().max(1);
        InstanceLimits {
            max_memory_bytes: q.max_memory_bytes,
            max_table_elements: q.max_table_elements,
            max_instances: q.max_instances,
            max_tables: 16,
            max_memories: 4,
            cpu_ticks_per_call: (q.max_batch_time.as_nanos() / tick).max(1) as u64,
            max_batch_time: q.max_batch_time,
            max_batch_wall_time: q.max_batch_wall_time,
            max_document_bytes: Some(q.max_document_bytes),
        }
    }
}

/// A limit that stopped a module. Returned from the epoch callback (CPU)
/// and recognised in trap errors (memory), so the dead-letter reason names
/// the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("CPU time limit exceeded: the module ran longer than {0:?} on one batch")]
    CpuTime(Duration),
    #[error(
        "wall-clock limit exceeded: the module took longer than {0:?} on one batch, waiting included"
    )]
    WallTime(Duration),
    #[error("memory limit exceeded: the module tried to grow its memory beyond {0} bytes")]
    Memory(usize),
    #[error(
        "instance limit exceeded: the module tried to create more than {0} instances, tables or memories"
    )]
    Instances(usize),
    #[error(
        "document memory limit exceeded: the module wrote more than {0} bytes into host-held documents in one batch (its memory limit)"
    )]
    DocumentMemory(usize),
    #[error(
        "document size limit exceeded: the module grew a host-held document past {0} bytes (max_document_bytes)"
    )]
    DocumentSize(usize),
}
