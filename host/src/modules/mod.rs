//! Module versions at run time: every pipeline's modules and the versions
//! kept of each ([`registry`]), hot reload of module files and of the
//! config file ([`watch`]), tenants' uploads ([`uploads`]) and the
//! pipelines' status ([`status`]).
//!
//! A new module version replaces the running one for the next batch once
//! it compiled, matched the world and passed `init`; anything invalid is
//! rejected and the running version stays. Kept versions can be rolled
//! back to.

mod registry;
mod status;
mod uploads;
mod watch;

pub use registry::{ApplyError, LoadError, ModuleStatus, Registry, RollbackError, VersionStatus};
pub use status::PipelineStatus;
pub use uploads::{UploadError, UploadReport, store_module_file};
pub use watch::{ConfigStatus, ReloadRequest, Reloader};
