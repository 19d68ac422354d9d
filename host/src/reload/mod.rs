//! Hot reload: module files and the config file are watched; a new module
//! version replaces the running one for the next batch once it compiled,
//! matched the world and passed `init`; anything invalid is rejected and
//! the running version stays. Kept versions can be rolled back to.

mod registry;
mod tenants;
mod watch;

pub use registry::{LoadError, ModuleStatus, Registry, RollbackError, VersionStatus};
pub use tenants::{PipelineStatus, UploadError, UploadReport};
pub use watch::{ConfigStatus, Reloader, SourceControl};

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[reload]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Watch module files and the config file and apply changes live.
    pub watch: bool,
    /// Quiet time after the last file event before acting on a change.
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
    /// Versions kept per module for rollback.
    pub keep_versions: usize,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            debounce: Duration::from_millis(300),
            keep_versions: 5,
        }
    }
}
