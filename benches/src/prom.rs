//! Histograms from Prometheus text (`/metrics`), and quantiles from their
//! buckets the way Prometheus' `histogram_quantile` computes them.

/// A histogram summed over every label set but `le`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Histogram {
    /// `(upper bound, cumulative count)`, ascending; the last bound is +Inf.
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

impl Histogram {
    /// Parses the histogram `name` (e.g. `weir_batch_duration_seconds`)
    /// from Prometheus / OpenMetrics text.
    pub fn parse(text: &str, name: &str) -> Histogram {
        let bucket = format!("{name}_bucket");
        let (count_name, sum_name) = (format!("{name}_count"), format!("{name}_sum"));
        let mut h = Histogram::default();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (metric, value) = match line.rsplit_once(' ') {
                Some((m, v)) => (m.trim(), v.trim()),
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let base = metric.split('{').next().unwrap_or(metric);
            if base == bucket {
                let Some(le) = label(metric, "le") else {
                    continue;
                };
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                match h.buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, c)) => *c += value,
                    None => h.buckets.push((le, value)),
                }
            } else if base == count_name {
                h.count += value;
            } else if base == sum_name {
                h.sum += value;
            }
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        h
    }

    /// `self - earlier`: the observations made in between.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, c)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == le)
                    .map_or(0.0, |b| b.1);
                (le, c - before)
            })
            .collect();
        Histogram {
            buckets,
            count: self.count - earlier.count,
            sum: self.sum - earlier.sum,
        }
    }

    /// The `q` quantile, interpolated linearly within its bucket (as
    /// `histogram_quantile` does); `None` without observations. A quantile
    /// in the +Inf bucket reads as the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut prev = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank {
                if le.is_infinite() {
                    return Some(prev.0);
                }
                let in_bucket = c - prev.1;
                let frac = if in_bucket > 0.0 {
                    (rank - prev.1) / in_bucket
                } else {
                    1.0
                };
                return Some(prev.0 + (le - prev.0) * frac);
            }
            prev = (le, c);
        }
        Some(prev.0)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

fn label<'a>(metric: &'a str, name: &str) -> Option<&'a str> {
    let inner = metric.split_once('{')?.1.strip_suffix('}')?;
    for pair in inner.split(',') {
        let (k, v) = pair.split_once('=')?;
        if k.trim() == name {
            return Some(v.trim().trim_matches('"'));
        }
    }
    None
}
