//! Who is logging: the names attached to every log line and error of a
//! module, and the limiter that keeps it from flooding the host's log.

use super::rate::LogLimiter;

/// Names attached to every log line and error a module produces, and the
/// limiter that keeps a chatty module from flooding the host's log. One per
/// loaded module version, shared by all its instances.
#[derive(Debug)]
pub struct LogContext {
    pub tenant: Option<String>,
    pub pipeline: String,
    pub module: String,
    /// `None`: unlimited.
    pub limiter: Option<LogLimiter>,
}

impl LogContext {
    pub fn new(
        tenant: Option<String>,
        pipeline: &str,
        module: &str,
        lines_per_second: u64,
    ) -> Self {
        Self {
            tenant,
            pipeline: pipeline.to_string(),
            module: module.to_string(),
            limiter: (lines_per_second > 0).then(|| LogLimiter::new(lines_per_second as f64)),
        }
    }

    /// Lines dropped by the limiter so far.
    pub fn dropped(&self) -> u64 {
        self.limiter.as_ref().map_or(0, LogLimiter::dropped_total)
    }
}
