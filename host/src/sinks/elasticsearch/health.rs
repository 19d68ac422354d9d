//! Reachability: a startup check that fails fast, and the health the host's
//! `/healthz` reports, which follows the outcome of the last request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;

use super::SinkError;
use super::response::error_summary;

/// A snapshot of the sink's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkHealth {
    /// The last request to the cluster got a usable answer.
    pub healthy: bool,
    /// Why the last failed request failed, while unhealthy.
    pub last_error: Option<String>,
}

/// Health shared between the sink task, its requests and the handle.
#[derive(Debug)]
pub struct HealthState {
    healthy: AtomicBool,
    last_error: std::sync::Mutex<Option<String>>,
}

impl HealthState {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            healthy: AtomicBool::new(true),
            last_error: std::sync::Mutex::new(None),
        })
    }

    /// Records a request that got a usable answer.
    pub fn success(&self) {
        if !self.healthy.swap(true, Ordering::AcqRel) {
            tracing::info!("elasticsearch sink healthy again");
            *self.lock() = None;
        }
    }

    /// Records a request that did not.
    pub fn failure(&self, error: &str) {
        *self.lock() = Some(error.to_owned());
        self.healthy.store(false, Ordering::Release);
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> SinkHealth {
        SinkHealth {
            healthy: self.is_healthy(),
            last_error: self.lock().clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `GET /` once: `Ok` on 2xx, `Err(reason)` otherwise.
pub async fn ping(client: &Elasticsearch, timeout: Duration) -> Result<(), PingError> {
    let resp = client
        .send::<(), ()>(
            Method::Get,
            "/",
            HeaderMap::new(),
            None,
            None,
            Some(timeout),
        )
        .await
        .map_err(|e| PingError::Transient(e.to_string()))?;
    let status = resp.status_code().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = resp.bytes().await.unwrap_or_default();
    let reason = format!("HTTP {status}: {}", error_summary(&body));
    // Credentials are not going to fix themselves while we wait.
    if matches!(status, 401 | 403) {
        Err(PingError::Permanent(reason))
    } else {
        Err(PingError::Transient(reason))
    }
}

/// Why a ping failed.
#[derive(Debug)]
pub enum PingError {
    Transient(String),
    Permanent(String),
}

/// Pings until the cluster answers or `window` has passed (at least one try).
pub async fn wait_reachable(
    client: &Elasticsearch,
    url: &str,
    window: Duration,
    request_timeout: Duration,
) -> Result<(), SinkError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let remaining = window.saturating_sub(start.elapsed());
        let timeout = request_timeout.min(remaining.max(Duration::from_secs(1)));
        let reason = match ping(client, timeout).await {
            Ok(()) => return Ok(()),
            Err(PingError::Permanent(reason)) => {
                return Err(SinkError::Unreachable {
                    url: url.to_owned(),
                    waited: start.elapsed(),
                    reason,
                });
            }
            Err(PingError::Transient(reason)) => reason,
        };
        let remaining = window.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            return Err(SinkError::Unreachable {
                url: url.to_owned(),
                waited: start.elapsed(),
                reason,
            });
        }
        tracing::debug!(url, %reason, "elasticsearch not reachable yet");
        tokio::time::sleep(pause.min(remaining)).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
