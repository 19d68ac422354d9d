//! JSON-lines replay (demos, load tests, re-feeding dead letters): each
//! non-blank line is one record, produced as it is, keyed by a top-level
//! field, at an optional rate, any number of times.
//!
//! Lines are passed through verbatim, so a file of already-normalised
//! records (such as `samples/`) keeps its `source`/`feed`. Lines that are not
//! JSON objects are still sent (the pipeline dead-letters them, which is
//! what replaying dead letters wants) and counted as skipped key lookups,
//! unless `skip_invalid` is set, in which case they are skipped and counted.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{Emitter, Error, Record};

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
        }
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

/// Replays the lines, pacing to `rate`, until done or shut down.
pub async fn run(config: Config, out: Emitter, shutdown: CancellationToken) -> Result<(), Error> {
    let lines: Vec<&str> = config
        .text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut keyed = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        match key_of(line, &config.key_field) {
            LineKey::Key(key) => keyed.push((*line, Some(key))),
            LineKey::NoKey => {
                out.skip(
                    "no_key",
                    format!(
                        "line {}: no {:?} field; sent without a key",
                        n + 1,
                        config.key_field
                    ),
                );
                keyed.push((*line, None));
            }
            LineKey::NotAnObject if config.skip_invalid => {
                out.skip(
                    "invalid_json",
                    format!("line {}: not a JSON object; skipped", n + 1),
                );
            }
            LineKey::NotAnObject => {
                out.skip(
                    "invalid_json",
                    format!(
                        "line {}: not a JSON object; sent as is, without a key",
                        n + 1
                    ),
                );
                keyed.push((*line, None));
            }
        }
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
    use super::{LineKey, key_of};

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
