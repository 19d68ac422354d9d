//! Per-pipeline counters read from the registry's own text encoding, and a
//! small ring of samples for records/s.
//!
//! The status page reads the same numbers `/metrics` exports, so the two can
//! never disagree, and no metric family needs a second handle.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::registry::Registry;

/// Counters of one pipeline at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineCounts {
    /// `weir_records_consumed_total`
    pub consumed: f64,
    /// `weir_es_items_total{outcome="indexed"}`
    pub indexed: f64,
    /// Dead letters by stage: `weir_dead_letters_total` (decode,
    /// module:NAME) plus `weir_es_items_total{outcome="dead_lettered"}`
    /// as `sink`.
    pub dead_letters: BTreeMap<String, f64>,
    /// `weir_module_records_failed_total` by module.
    pub module_failed: BTreeMap<String, f64>,
}

impl PipelineCounts {
    pub fn dead_letter_total(&self) -> f64 {
        self.dead_letters.values().sum()
    }
}

/// One sample: every pipeline's counters.
pub type Counts = BTreeMap<String, PipelineCounts>;

/// One series of the text encoding: `name{k="v",...} value`.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl Sample<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one sample line (comments and blank lines give `None`).
fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let split = line.find(['{', ' '])?;
    let name = &line[..split];
    let mut labels = Vec::new();
    let mut rest = &line[split..];
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            body = body.trim_start_matches([',', ' ']);
            if let Some(after) = body.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = body.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (i, '"') => break i + 1,
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim(), value));
            body = &after[end..];
        }
    }
    // The value, then an optional timestamp or exemplar.
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Reads every pipeline's counters from the registry's text encoding.
pub fn read(registry: &Registry) -> Counts {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return Counts::new();
    }
    parse(&text)
}

/// Reads every pipeline's counters from Prometheus text.
pub fn parse(text: &str) -> Counts {
    let mut out = Counts::new();
    for s in text.lines().filter_map(parse_line) {
        let Some(pipeline) = s.label("pipeline") else {
            continue;
        };
        let c = out.entry(pipeline.to_string()).or_default();
        match s.name {
            "weir_records_consumed_total" => c.consumed += s.value,
            "weir_es_items_total" => match s.label("outcome") {
                Some("indexed") => c.indexed += s.value,
                Some("dead_lettered") => {
                    *c.dead_letters.entry("sink".into()).or_default() += s.value
                }
                _ => {}
            },
            "weir_dead_letters_total" => {
                let stage = s.label("stage").unwrap_or("unknown").to_string();
                *c.dead_letters.entry(stage).or_default() += s.value;
            }
            "weir_module_records_failed_total" => {
                let module = s.label("module").unwrap_or("unknown").to_string();
                *c.module_failed.entry(module).or_default() += s.value;
            }
            _ => {}
        }
    }
    out
}

/// How many samples the ring keeps, one a second: two minutes of history.
pub const RING_SAMPLES: usize = 121;
/// Sampling period.
pub const PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Tick {
    at: Instant,
    wall: SystemTime,
    counts: Counts,
}

/// The last [`RING_SAMPLES`] samples.
#[derive(Debug, Default)]
pub struct Ring {
    ticks: Mutex<VecDeque<Tick>>,
}

/// Rates of one pipeline, records per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Rates {
    pub consumed: f64,
    pub indexed: f64,
}

/// Per-second rates for the chart.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct History {
    /// Seconds between points.
    pub interval_seconds: f64,
    /// Unix time (ms) of each point.
    pub t: Vec<u64>,
    /// Per pipeline, aligned with `t`.
    pub pipelines: BTreeMap<String, HistorySeries>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HistorySeries {
    pub consumed: Vec<f64>,
    pub indexed: Vec<f64>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn rate(new: f64, old: f64, dt: f64) -> f64 {
    // A counter only goes down when a pipeline was rebuilt: count from zero.
    if dt <= 0.0 {
        0.0
    } else {
        (new - old).max(0.0) / dt
    }
}

impl Ring {
    pub fn push(&self, counts: Counts) {
        self.push_at(Instant::now(), SystemTime::now(), counts);
    }

    fn push_at(&self, at: Instant, wall: SystemTime, counts: Counts) {
        let mut ticks = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        ticks.push_back(Tick { at, wall, counts });
        while ticks.len() > RING_SAMPLES {
            ticks.pop_front();
        }
    }

    /// Records/s per pipeline over (about) the last `window`: from the
    /// newest sample back to the oldest one no older than `window`. Empty
    /// until two samples exist.
    pub fn rates(&self, window: Duration) -> BTreeMap<String, Rates> {
        let ticks = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        let Some(last) = ticks.back() else {
            return BTreeMap::new();
        };
        let Some(base) = ticks
            .iter()
            .find(|t| last.at.duration_since(t.at) <= window + PERIOD / 2)
            .filter(|t| t.at < last.at)
        else {
            return BTreeMap::new();
        };
        let dt = last.at.duration_since(base.at).as_secs_f64();
        last.counts
            .iter()
            .map(|(name, now)| {
                let then = base.counts.get(name).cloned().unwrap_or_default();
                let r = Rates {
                    consumed: rate(now.consumed, then.consumed, dt),
                    indexed: rate(now.indexed, then.indexed, dt),
                };
                (name.clone(), r)
            })
            .collect()
    }

    /// Per-second rates between consecutive samples.
    pub fn history(&self) -> History {
        let ticks = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        let mut h = History {
            interval_seconds: PERIOD.as_secs_f64(),
            ..History::default()
        };
        let names: std::collections::BTreeSet<&String> =
            ticks.iter().flat_map(|t| t.counts.keys()).collect();
        for (prev, next) in ticks.iter().zip(ticks.iter().skip(1)) {
            let dt = next.at.duration_since(prev.at).as_secs_f64();
            h.t.push(unix_ms(next.wall));
            for name in &names {
                let a = prev.counts.get(*name).cloned().unwrap_or_default();
                let b = next.counts.get(*name).cloned().unwrap_or_default();
                let s = h.pipelines.entry((*name).clone()).or_default();
                s.consumed.push(round2(rate(b.consumed, a.consumed, dt)));
                s.indexed.push(round2(rate(b.indexed, a.indexed, dt)));
            }
        }
        h
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP weir_records_consumed Records consumed from Kafka.
# TYPE weir_records_consumed counter
weir_records_consumed_total{pipeline="tweets"} 120
weir_records_consumed_total{pipeline="news"} 30
weir_es_items_total{pipeline="tweets",outcome="indexed"} 118
weir_es_items_total{pipeline="tweets",outcome="dead_lettered"} 1
weir_es_items_total{pipeline="tweets",outcome="retried"} 7
weir_dead_letters_total{pipeline="tweets",stage="module:detect-hate"} 1
weir_module_records_failed_total{pipeline="tweets",module="detect-hate"} 1
weir_module_records_in_total{pipeline="we\"ird,{x}",module="m"} 3
weir_records_consumed_total{pipeline="we\"ird,{x}"} 3
weir_paused_partitions 0
# EOF
"#;

    #[test]
    fn reads_pipeline_counters_from_text() {
        let c = parse(TEXT);
        let t = &c["tweets"];
        assert_eq!(t.consumed, 120.0);
        assert_eq!(t.indexed, 118.0);
        assert_eq!(t.dead_letters["sink"], 1.0);
        assert_eq!(t.dead_letters["module:detect-hate"], 1.0);
        assert_eq!(t.dead_letter_total(), 2.0);
        assert_eq!(t.module_failed["detect-hate"], 1.0);
        assert_eq!(c["news"].consumed, 30.0);
        assert_eq!(c["news"].indexed, 0.0);
        assert_eq!(c["we\"ird,{x}"].consumed, 3.0);
    }

    #[test]
    fn reads_the_live_registry() {
        let mut registry = Registry::default();
        let m = crate::telemetry::Metrics::register(&mut registry);
        let p = m.pipeline("news");
        p.records_consumed.inc_by(5);
        p.dead_letter("decode");
        let c = read(&registry);
        assert_eq!(c["news"].consumed, 5.0);
        assert_eq!(c["news"].dead_letters["decode"], 1.0);
    }

    fn counts(consumed: f64, indexed: f64) -> Counts {
        let mut c = Counts::new();
        c.insert(
            "p".into(),
            PipelineCounts {
                consumed,
                indexed,
                ..PipelineCounts::default()
            },
        );
        c
    }

    #[test]
    fn rates_over_a_window_and_history() {
        let ring = Ring::default();
        let t0 = Instant::now();
        let w0 = SystemTime::now();
        assert!(ring.rates(Duration::from_secs(10)).is_empty());
        for i in 0..30u64 {
            let s = Duration::from_secs(i);
            ring.push_at(t0 + s, w0 + s, counts((i * 10) as f64, (i * 5) as f64));
        }
        let r = ring.rates(Duration::from_secs(10))["p"];
        assert!((r.consumed - 10.0).abs() < 1e-9, "{r:?}");
        assert!((r.indexed - 5.0).abs() < 1e-9, "{r:?}");
        let h = ring.history();
        assert_eq!(h.t.len(), 29);
        assert!(h.pipelines["p"].consumed.iter().all(|&x| x == 10.0));
        for i in 30..300u64 {
            let s = Duration::from_secs(i);
            ring.push_at(t0 + s, w0 + s, counts((i * 10) as f64, 0.0));
        }
        assert_eq!(ring.history().t.len(), RING_SAMPLES - 1);
    }
}
