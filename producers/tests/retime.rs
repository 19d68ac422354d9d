//! `--retime` against the shipped dashboard: the sample files, replayed
//! with their timestamps moved to now, fall entirely inside the time range
//! the Kibana dashboard (`kibana/weir-dashboard.ndjson`) opens on. The range
//! is read from the saved objects, not assumed, so a dashboard that opens
//! on a narrower window than the samples span fails here.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use weir_producers::normalize::parse_timestamp;
use weir_producers::{Emitter, replay};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A Kibana date-math expression relative to `now`: `now` or
/// `now-<n><unit>` with unit s, m, h, d or w. Anything else fails the test
/// (extend this parser rather than skip the check).
fn date_math(expr: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    if expr == "now" {
        return now;
    }
    let rest = expr
        .strip_prefix("now-")
        .unwrap_or_else(|| panic!("unsupported Kibana time {expr:?}"));
    let (n, unit) = rest.split_at(rest.len() - 1);
    let n: i64 = n
        .parse()
        .unwrap_or_else(|_| panic!("unsupported Kibana time {expr:?}"));
    let delta = match unit {
        "s" => TimeDelta::seconds(n),
        "m" => TimeDelta::minutes(n),
        "h" => TimeDelta::hours(n),
        "d" => TimeDelta::days(n),
        "w" => TimeDelta::weeks(n),
        _ => panic!("unsupported Kibana time unit in {expr:?}"),
    };
    now - delta
}

/// `(timeFrom, timeTo)` of the dashboard, which must restore its time.
fn dashboard_range() -> (String, String) {
    let path = repo("kibana/weir-dashboard.ndjson");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboards: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|o| o["type"] == "dashboard")
        .collect();
    assert_eq!(dashboards.len(), 1, "{}: one dashboard", path.display());
    let a = &dashboards[0]["attributes"];
    assert_eq!(
        a["timeRestore"], true,
        "the dashboard stores its time range"
    );
    let s = |k: &str| a[k].as_str().unwrap_or_else(|| panic!("no {k}")).to_owned();
    (s("timeFrom"), s("timeTo"))
}

#[tokio::test]
async fn retimed_samples_fall_inside_the_dashboards_default_time_range() {
    let (from, to) = dashboard_range();
    for (file, field) in [
        ("samples/tweets.jsonl", "created_at"),
        ("samples/news.jsonl", "published_at"),
    ] {
        let text = std::fs::read_to_string(repo(file)).unwrap();
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        let now = Utc::now();
        let mut config = replay::Config::new(text);
        config.retime_to = Some(now);
        let (out, mut rx, counters) = Emitter::channel(lines + 1);
        replay::run(config, out, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(counters.snapshot().skipped("not_retimed"), 0, "{file}");

        let (start, end) = (date_math(&from, now), date_math(&to, now));
        let mut times = Vec::new();
        while let Ok(record) = rx.try_recv() {
            let doc: Value = serde_json::from_slice(&record.value).unwrap();
            let t = doc[field]
                .as_str()
                .and_then(parse_timestamp)
                .unwrap_or_else(|| panic!("{file}: {field} unreadable in {doc}"));
            assert!(
                start <= t && t <= end,
                "{file}: {field} {t} outside the dashboard's {from}..{to} ({start}..{end})"
            );
            times.push(t);
        }
        assert_eq!(times.len(), lines, "{file}: every line replayed");
        assert_eq!(times.iter().max(), Some(&now), "{file}: newest is now");
    }
}
