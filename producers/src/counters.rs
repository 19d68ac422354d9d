//! Counters shared by a source and the sink, and the rate-limited warning
//! for skipped items.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most one skip warning per this interval; the rest are counted and
/// summarised in the next warning.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// What a producer has done so far. All methods take `&self`.
#[derive(Default, Debug)]
pub struct Counters {
    /// Records handed to the sink.
    pub(crate) emitted: AtomicU64,
    /// Records Kafka acknowledged.
    pub(crate) produced: AtomicU64,
    /// Items seen before (dedupe by URL / id) and not emitted again.
    pub(crate) duplicates: AtomicU64,
    /// Connections re-established after a drop or a failed attempt.
    pub(crate) reconnects: AtomicU64,
    /// Requests answered "rate limited" (HTTP 429 or the source's code),
    /// each followed by a back-off and a retry.
    pub(crate) rate_limited: AtomicU64,
    /// Requests retried after a transient error (network, 5xx).
    pub(crate) retries: AtomicU64,
    /// Conditional GETs answered 304 Not Modified (RSS).
    pub(crate) not_modified: AtomicU64,
    skipped: Mutex<BTreeMap<String, u64>>,
    ignored: Mutex<BTreeMap<String, u64>>,
    warn_state: Mutex<WarnState>,
}

#[derive(Debug, Default)]
struct WarnState {
    last: Option<Instant>,
    suppressed: u64,
}

impl Counters {
    /// Counts a skipped item under `reason`; warns at most every 5 s.
    pub fn skip(&self, reason: &str, detail: impl fmt::Display) {
        *self
            .skipped
            .lock()
            .unwrap()
            .entry(reason.to_owned())
            .or_default() += 1;
        let mut warn = self.warn_state.lock().unwrap();
        let now = Instant::now();
        if warn
            .last
            .is_none_or(|last| now.duration_since(last) >= WARN_EVERY)
        {
            let suppressed = std::mem::take(&mut warn.suppressed);
            warn.last = Some(now);
            drop(warn);
            tracing::warn!(reason, suppressed, "skipped an item: {detail}");
        } else {
            warn.suppressed += 1;
        }
    }

    /// Counts an item deliberately not emitted, under `kind`.
    pub fn ignore(&self, kind: &str) {
        *self
            .ignored
            .lock()
            .unwrap()
            .entry(kind.to_owned())
            .or_default() += 1;
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy of every counter.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            emitted: self.emitted.load(Ordering::Relaxed),
            produced: self.produced.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            not_modified: self.not_modified.load(Ordering::Relaxed),
            skipped: self.skipped.lock().unwrap().clone(),
            ignored: self.ignored.lock().unwrap().clone(),
        }
    }
}

/// A copy of [`Counters`] (serialisable, and printable as one line).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Records handed to the sink.
    pub emitted: u64,
    /// Records Kafka acknowledged.
    pub produced: u64,
    /// Items dropped as already seen.
    pub duplicates: u64,
    /// Reconnections (streams) after a drop or failed attempt.
    pub reconnects: u64,
    /// Rate-limit answers, each followed by a back-off and retry.
    pub rate_limited: u64,
    /// Retries after transient errors.
    pub retries: u64,
    /// 304 Not Modified answers.
    pub not_modified: u64,
    /// Skipped items by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Deliberately ignored items by kind.
    pub ignored: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Skipped items counted under `reason`.
    pub fn skipped(&self, reason: &str) -> u64 {
        self.skipped.get(reason).copied().unwrap_or(0)
    }

    /// Ignored items counted under `kind`.
    pub fn ignored(&self, kind: &str) -> u64 {
        self.ignored.get(kind).copied().unwrap_or(0)
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "emitted={} produced={} duplicates={} reconnects={} rate_limited={} retries={}",
            self.emitted,
            self.produced,
            self.duplicates,
            self.reconnects,
            self.rate_limited,
            self.retries
        )?;
        if self.not_modified > 0 {
            write!(f, " not_modified={}", self.not_modified)?;
        }
        for (label, map) in [("skipped", &self.skipped), ("ignored", &self.ignored)] {
            if !map.is_empty() {
                let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                write!(f, " {label}={{{}}}", parts.join(","))?;
            }
        }
        Ok(())
    }
}
