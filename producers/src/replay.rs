//! JSON-lines replay (demos, load tests, re-feeding dead letters): each
//! non-blank line is one record, produced as it is, keyed by a top-level
//! field, at an optional rate, any number of times.
//!
//! Lines are passed through verbatim, so a file of already-normalised
//! records (such as `samples/`) keeps its `source`/`feed`. Lines that are not
//! JSON objects are still sent (the pipeline dead-letters them, which is
//! what replaying dead letters wants) and counted as skipped key lookups,
//! unless `skip_invalid` is set, in which case they are skipped and counted.
//!
//! With `retime_to`, the timestamp fields of docs/schema.md ([`TIME_FIELDS`]:
//! a tweet's `created_at`, an article's `published_at`) are all shifted by
//! one offset, chosen so the newest timestamp in the file lands on that
//! instant; spacing between records is kept. Both formats the producers
//! accept are read (RFC 3339 with any offset or fraction, RFC 2822) and the
//! shifted value is written as RFC 3339 in UTC. A line whose timestamps are
//! missing or unreadable is still sent, unchanged, and counted as skipped
//! under `not_retimed`; a retimed line is re-serialised (same fields and
//! values, key order may differ). Lines that are not JSON objects are not
//! retimed (they are counted under `invalid_json` as before).

use std::borrow::Cow;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::normalize::{format_utc, parse_timestamp};
use crate::{Emitter, Error, Record};

/// The timestamp fields `retime_to` shifts: `created_at` (tweets) and
/// `published_at` (news), top-level, as docs/schema.md defines them.
pub const TIME_FIELDS: [&str; 2] = ["created_at", "published_at"];

/// What to replay and how fast.
#[derive(Clone, Debug)]
pub struct Config {
    /// The JSON lines (blank lines are ignored).
    pub text: String,
    /// Records per second (0: as fast as Kafka takes them).
    pub rate: u64,
    /// Top-level field whose value (string or number) becomes the key.
    pub key_field: String,
    /// Replay the lines this many times.
    pub repeat: u32,
    /// Skip lines that are not JSON objects instead of sending them.
    pub skip_invalid: bool,
    /// Shift every record's [`TIME_FIELDS`] so the newest one is this
    /// instant (`None`: send lines as they are).
    pub retime_to: Option<DateTime<Utc>>,
}

impl Config {
    /// Replays `text` once, unthrottled, keyed by `id`.
    pub fn new(text: String) -> Config {
        Config {
            text,
            rate: 0,
            key_field: "id".into(),
            repeat: 1,
            skip_invalid: false,
            retime_to: None,
        }
    }

    /// Retime so the newest timestamp is the current time, in whole
    /// seconds (whole-second timestamps stay whole seconds).
    pub fn retime_to_now(&mut self) {
        self.retime_to = Some(Utc::now().trunc_subsecs(0));
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// What a line offers as a record key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineKey {
    /// The key field's value (a string, or a number as text).
    Key(String),
    /// A JSON object without a usable key field.
    NoKey,
    /// Not a JSON object.
    NotAnObject,
}

/// The record key of `line`: the value of `field` when the line is a JSON
/// object with a string or number there.
pub fn key_of(line: &str, field: &str) -> LineKey {
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(line) else {
        return LineKey::NotAnObject;
    };
    match obj.get(field) {
        Some(serde_json::Value::String(s)) => LineKey::Key(s.clone()),
        Some(serde_json::Value::Number(n)) => LineKey::Key(n.to_string()),
        _ => LineKey::NoKey,
    }
}

/// One shift applied to every timestamp field of a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retime {
    /// Added to every timestamp.
    pub shift: TimeDelta,
}

impl Retime {
    /// The shift that moves the newest readable timestamp among `lines` to
    /// `to`; `None` when no line has one.
    pub fn newest_to<'a>(
        lines: impl IntoIterator<Item = &'a str>,
        to: DateTime<Utc>,
    ) -> Option<Retime> {
        let newest = lines
            .into_iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .flat_map(|v| {
                TIME_FIELDS
                    .iter()
                    .filter_map(|f| v.get(f)?.as_str().and_then(parse_timestamp))
                    .collect::<Vec<_>>()
            })
            .max()?;
        Some(Retime { shift: to - newest })
    }

    /// `line` with each of its [`TIME_FIELDS`] shifted, or why it is left
    /// as it is: not a JSON object, no timestamp field, or one that is not
    /// a string in a readable format (then no field of the line is shifted).
    /// The result is the same object re-serialised.
    pub fn apply(&self, line: &str) -> Result<String, String> {
        let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str(line) else {
            return Err("not a JSON object".into());
        };
        let mut shifted = 0;
        for field in TIME_FIELDS {
            let Some(value) = obj.get_mut(field) else {
                continue;
            };
            let Some(t) = value.as_str().and_then(parse_timestamp) else {
                return Err(format!(
                    "{field} {value} is not an RFC 3339 or RFC 2822 timestamp"
                ));
            };
            let Some(t) = t.checked_add_signed(self.shift) else {
                return Err(format!("{field} {value} shifted is out of range"));
            };
            *value = serde_json::Value::String(format_utc(t));
            shifted += 1;
        }
        if shifted == 0 {
            return Err(format!("no {} field", TIME_FIELDS.join(" or ")));
        }
        Ok(serde_json::Value::Object(obj).to_string())
    }
}

/// Replays the lines, pacing to `rate`, until done or shut down.
pub async fn run(config: Config, out: Emitter, shutdown: CancellationToken) -> Result<(), Error> {
    let lines: Vec<&str> = config
        .text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let shift = config
        .retime_to
        .and_then(|to| Retime::newest_to(lines.iter().copied(), to));
    let mut keyed: Vec<(Cow<str>, Option<String>)> = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        let key = match key_of(line, &config.key_field) {
            LineKey::Key(key) => Some(key),
            LineKey::NoKey => {
                out.skip(
                    "no_key",
                    format!(
                        "line {}: no {:?} field; sent without a key",
                        n + 1,
                        config.key_field
                    ),
                );
                None
            }
            LineKey::NotAnObject if config.skip_invalid => {
                out.skip(
                    "invalid_json",
                    format!("line {}: not a JSON object; skipped", n + 1),
                );
                continue;
            }
            LineKey::NotAnObject => {
                out.skip(
                    "invalid_json",
                    format!(
                        "line {}: not a JSON object; sent as is, without a key",
                        n + 1
                    ),
                );
                keyed.push((Cow::Borrowed(*line), None));
                continue;
            }
        };
        let line = match (&shift, config.retime_to) {
            (Some(shift), _) => shift.apply(line).map(Cow::Owned),
            (None, Some(_)) => Err(format!(
                "no line has a readable {}",
                TIME_FIELDS.join(" or ")
            )),
            (None, None) => Ok(Cow::Borrowed(*line)),
        }
        .unwrap_or_else(|why| {
            out.skip(
                "not_retimed",
                format!("line {}: {why}; sent with its timestamps unchanged", n + 1),
            );
            Cow::Borrowed(*line)
        });
        keyed.push((line, key));
    }
    let started = Instant::now();
    let mut sent = 0u64;
    for _ in 0..config.repeat {
        for (line, key) in &keyed {
            if config.rate > 0 {
                let due = started + Duration::from_secs_f64(sent as f64 / config.rate as f64);
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            } else if shutdown.is_cancelled() {
                return Ok(());
            }
            out.send(Record {
                key: key.clone(),
                value: line.as_bytes().to_vec(),
            })
            .await?;
            sent += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};
    use serde_json::{Value, json};
    use tokio_util::sync::CancellationToken;

    use super::{Config, LineKey, Retime, key_of, run};
    use crate::Emitter;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_newest_timestamp_of_either_field_lands_on_the_target() {
        let lines = [
            r#"{"id":"t1","created_at":"2026-11-19T13:43:10Z"}"#,
            r#"{"id":"n1","published_at":"2026-11-26T11:00:00+01:00"}"#, // 10:00Z
            r#"{"id":"t2","created_at":"Wed, 25 Nov 2026 12:00:00 +0000"}"#,
            r#"{"id":"x","created_at":"yesterday"}"#,
            "not json",
        ];
        let to = at("2027-03-01T08:00:00Z");
        let retime = Retime::newest_to(lines, to).unwrap();
        assert_eq!(retime.shift, to - at("2026-11-26T10:00:00Z"));
        assert_eq!(Retime::newest_to(["{}", "x"], to), None);
    }

    #[test]
    fn every_timestamp_moves_by_the_same_offset_in_both_formats() {
        let retime = Retime {
            shift: TimeDelta::days(100) + TimeDelta::seconds(30),
        };
        let shifted: Value = serde_json::from_str(
            &retime
                .apply(r#"{"id":"1","created_at":"2026-11-19T13:43:10.250+02:00","published_at":"Thu, 19 Nov 2026 13:43:10 GMT","text":"é"}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            shifted,
            json!({"id":"1","created_at":"2027-02-27T11:43:40.250Z","published_at":"2027-02-27T13:43:40Z","text":"é"})
        );
        let back = Retime {
            shift: -TimeDelta::hours(1),
        };
        assert_eq!(
            back.apply(r#"{"published_at":"2026-11-19T00:30:00Z"}"#)
                .unwrap(),
            r#"{"published_at":"2026-11-18T23:30:00Z"}"#
        );
    }

    #[test]
    fn missing_or_garbled_timestamps_are_reported_not_shifted() {
        let retime = Retime {
            shift: TimeDelta::days(1),
        };
        let why = |line: &str| retime.apply(line).unwrap_err();
        assert_eq!(why(r#"{"id":"1"}"#), "no created_at or published_at field");
        assert_eq!(
            why(r#"{"created_at":"last tuesday"}"#),
            r#"created_at "last tuesday" is not an RFC 3339 or RFC 2822 timestamp"#
        );
        assert_eq!(
            why(r#"{"created_at":1700000000}"#),
            "created_at 1700000000 is not an RFC 3339 or RFC 2822 timestamp"
        );
        // One good, one garbled field: the line is left whole, not half-shifted.
        assert_eq!(
            why(r#"{"created_at":"2026-11-19T13:43:10Z","published_at":""}"#),
            r#"published_at "" is not an RFC 3339 or RFC 2822 timestamp"#
        );
        assert_eq!(why("[1]"), "not a JSON object");
    }

    #[tokio::test]
    async fn a_retimed_replay_sends_every_line_and_keeps_bad_ones_unchanged() {
        let text = [
            r#"{"id":"a","created_at":"2026-11-19T12:00:00Z"}"#,
            r#"{"id":"b","created_at":"garbled"}"#,
            r#"{"id":"c"}"#,
            "not json",
            r#"{"id":"d","created_at":"2026-11-26T12:00:00Z"}"#,
        ]
        .join("\n");
        let to = at("2030-01-01T00:00:00Z");
        let mut config = Config::new(text.clone());
        config.retime_to = Some(to);
        let (out, mut rx, counters) = Emitter::channel(16);
        run(config, out, CancellationToken::new()).await.unwrap();
        let mut sent = Vec::new();
        while let Ok(r) = rx.try_recv() {
            sent.push(String::from_utf8(r.value).unwrap());
        }
        let input: Vec<&str> = text.lines().collect();
        assert_eq!(sent.len(), 5);
        assert_eq!(&sent[1..4], &input[1..4], "bad lines go out as they came");
        let created = |s: &str| serde_json::from_str::<Value>(s).unwrap()["created_at"].clone();
        assert_eq!(created(&sent[0]), "2029-12-25T00:00:00Z");
        assert_eq!(created(&sent[4]), "2030-01-01T00:00:00Z");
        // "b" and "c"; "not json" is counted as invalid_json only.
        assert_eq!(counters.snapshot().skipped("not_retimed"), 2);
        assert_eq!(counters.snapshot().skipped("invalid_json"), 1);
    }

    #[test]
    fn key_from_string_or_number_field() {
        assert_eq!(key_of(r#"{"id":"a1"}"#, "id"), LineKey::Key("a1".into()));
        assert_eq!(key_of(r#"{"id":42}"#, "id"), LineKey::Key("42".into()));
        assert_eq!(key_of(r#"{"x":1}"#, "id"), LineKey::NoKey);
        assert_eq!(key_of(r#"{"id":null}"#, "id"), LineKey::NoKey);
        assert_eq!(key_of("not json", "id"), LineKey::NotAnObject);
        assert_eq!(key_of("[1]", "id"), LineKey::NotAnObject);
    }
}
