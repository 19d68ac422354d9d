//! Sample data (`samples/*.jsonl`): every record has the shape docs/schema.md
//! gives the input topics, ids are unique (news ids derive from the URL),
//! timestamps fall in the documented week, the variety the pipelines are
//! meant to exercise is there, and the files match their generator.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use common::time::parse_rfc3339;
use common::{Problems, read_jsonl, repo_root, require};

/// The data set's reference date: everything lies in the 7 days before it.
const REFERENCE: &str = "2026-11-26T12:00:00Z";
const WEEK: i64 = 7 * 86_400;

/// Checks the record's fields against a schema table; `fields` is
/// (name, required, check) and unknown fields are problems too.
type Check = fn(&Value) -> bool;

fn is_string(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.trim().is_empty())
}
fn is_count(v: &Value) -> bool {
    v.as_u64().is_some()
}
fn is_time(v: &Value) -> bool {
    v.as_str().and_then(parse_rfc3339).is_some()
}
fn is_object(v: &Value) -> bool {
    v.is_object()
}

fn check_fields(record: &Value, fields: &[(&str, bool, Check)], at: &str, problems: &mut Problems) {
    let Some(obj) = record.as_object() else {
        problems.add(format!("{at}: not a JSON object"));
        return;
    };
    for (name, required, check) in fields {
        match obj.get(*name) {
            None if *required => problems.add(format!("{at}: missing required field `{name}`")),
            None => {}
            Some(v) if !check(v) => {
                problems.add(format!("{at}: field `{name}` has the wrong type: {v}"))
            }
            Some(_) => {}
        }
    }
    for key in obj.keys() {
        problems.check(fields.iter().any(|(n, _, _)| n == key), || {
            format!("{at}: field `{key}` is not in docs/schema.md")
        });
    }
}

fn window() -> (i64, i64) {
    let end = parse_rfc3339(REFERENCE).unwrap();
    (end - WEEK, end)
}

#[test]
fn tweets_follow_the_schema() {
    let tweets = read_jsonl("samples/tweets.jsonl");
    assert!(
        (250..=350).contains(&tweets.len()),
        "samples/tweets.jsonl: {} records, expected about 300",
        tweets.len()
    );
    let mut problems = Problems::new();
    let mut ids = BTreeSet::new();
    let (start, end) = window();
    let fields: &[(&str, bool, Check)] = &[
        ("id", true, is_string),
        ("text", true, is_string),
        ("created_at", true, is_time),
        ("lang", false, is_string),
        ("user", true, is_object),
        ("source", true, |v| v == "sample"),
        ("url", false, is_string),
        ("retweet_count", false, is_count),
        ("like_count", false, is_count),
    ];
    let user_fields: &[(&str, bool, Check)] = &[
        ("id", true, is_string),
        ("screen_name", true, is_string),
        ("followers_count", false, is_count),
    ];
    for (i, t) in tweets.iter().enumerate() {
        let at = format!("samples/tweets.jsonl:{}", i + 1);
        check_fields(t, fields, &at, &mut problems);
        if t["user"].is_object() {
            check_fields(
                &t["user"],
                user_fields,
                &format!("{at}: user"),
                &mut problems,
            );
        }
        if let Some(id) = t["id"].as_str() {
            problems.check(ids.insert(id.to_owned()), || {
                format!("{at}: duplicate id {id}")
            });
        }
        if let Some(ts) = t["created_at"].as_str().and_then(parse_rfc3339) {
            problems.check((start..=end).contains(&ts), || {
                format!("{at}: created_at outside the sample week")
            });
        }
    }
    problems.assert_none("samples/tweets.jsonl");
}

#[test]
fn news_follow_the_schema_and_ids_derive_from_urls() {
    let news = read_jsonl("samples/news.jsonl");
    assert!(
        (150..=250).contains(&news.len()),
        "samples/news.jsonl: {} records, expected about 200",
        news.len()
    );
    let mut problems = Problems::new();
    let mut ids = BTreeSet::new();
    let mut urls = BTreeSet::new();
    let (start, end) = window();
    let fields: &[(&str, bool, Check)] = &[
        ("id", true, is_string),
        ("title", true, is_string),
        ("description", false, is_string),
        ("content", false, is_string),
        ("url", true, is_string),
        ("source", true, is_object),
        ("author", false, is_string),
        ("published_at", true, is_time),
        ("feed", true, |v| v == "sample"),
    ];
    let source_fields: &[(&str, bool, Check)] =
        &[("id", false, is_string), ("name", true, is_string)];
    for (i, n) in news.iter().enumerate() {
        let at = format!("samples/news.jsonl:{}", i + 1);
        check_fields(n, fields, &at, &mut problems);
        if n["source"].is_object() {
            check_fields(
                &n["source"],
                source_fields,
                &format!("{at}: source"),
                &mut problems,
            );
        }
        if let (Some(id), Some(url)) = (n["id"].as_str(), n["url"].as_str()) {
            let digest = Sha256::digest(url.as_bytes());
            let expected: String = digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()[..32]
                .to_owned();
            problems.check(id == expected, || {
                format!("{at}: id {id} is not sha256(url)[..32] = {expected}")
            });
            problems.check(ids.insert(id.to_owned()), || {
                format!("{at}: duplicate id {id}")
            });
            problems.check(urls.insert(url.to_owned()), || {
                format!("{at}: duplicate url {url}")
            });
            problems.check(
                url.starts_with("https://")
                    && url
                        .split('/')
                        .nth(2)
                        .is_some_and(|h| h.ends_with(".example")),
                || format!("{at}: url {url} should use a fictional https://*.example host"),
            );
        }
        if let Some(ts) = n["published_at"].as_str().and_then(parse_rfc3339) {
            problems.check((start..=end).contains(&ts), || {
                format!("{at}: published_at outside the sample week")
            });
        }
    }
    problems.assert_none("samples/news.jsonl");
}

#[test]
fn news_cover_the_week_and_several_publications() {
    let news = read_jsonl("samples/news.jsonl");
    let (start, _) = window();
    let days: BTreeSet<i64> = news
        .iter()
        .filter_map(|n| n["published_at"].as_str().and_then(parse_rfc3339))
        .map(|ts| (ts - start) / 86_400)
        .collect();
    assert!(
        days.len() >= 7,
        "samples/news.jsonl: published_at covers only {} of the 7 days",
        days.len()
    );
    let mut per_source: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &news {
        *per_source
            .entry(n["source"]["name"].as_str().unwrap_or("?"))
            .or_default() += 1;
    }
    assert!(
        (6..=10).contains(&per_source.len()),
        "samples/news.jsonl: {} publications, expected about 8: {per_source:?}",
        per_source.len()
    );
}

#[test]
fn tweets_have_the_variety_the_pipeline_needs() {
    let tweets = read_jsonl("samples/tweets.jsonl");
    let texts: Vec<&str> = tweets.iter().filter_map(|t| t["text"].as_str()).collect();
    let count = |f: &dyn Fn(&str) -> bool| texts.iter().filter(|t| f(t)).count();
    let n = texts.len();
    let checks: [(&str, usize, usize); 7] = [
        (
            "hashtags",
            count(&|t| {
                t.split_whitespace()
                    .any(|w| w.starts_with('#') && w.len() > 1)
            }),
            n / 5,
        ),
        (
            "@mentions",
            count(&|t| {
                t.split_whitespace()
                    .any(|w| w.starts_with('@') && w.len() > 1)
            }),
            n / 10,
        ),
        ("URLs", count(&|t| t.contains("https://")), n / 10),
        (
            "HTML entities",
            count(&|t| {
                ["&amp;", "&lt;", "&gt;", "&quot;"]
                    .iter()
                    .any(|e| t.contains(e))
            }),
            5,
        ),
        ("retweets (RT @x:)", count(&|t| t.starts_with("RT @")), 5),
        (
            "emoji",
            count(&|t| {
                t.chars().any(|c| {
                    ('\u{1F300}'..='\u{1FAFF}').contains(&c) || c == '\u{2764}' || c == '\u{2728}'
                })
            }),
            n / 5,
        ),
        (
            "non-English",
            tweets
                .iter()
                .filter(|t| t["lang"].as_str().is_some_and(|l| l != "en"))
                .count(),
            3,
        ),
    ];
    let mut problems = Problems::new();
    for (what, found, at_least) in checks {
        problems.check(found >= at_least, || {
            format!("only {found} tweets with {what}, expected at least {at_least}")
        });
    }
    problems.assert_none("samples/tweets.jsonl variety");
}

/// The committed files are exactly what the generators produce, so they
/// stay reviewable through the scripts (samples/generate.py, kibana/generate.py).
#[test]
fn committed_files_match_their_generators() {
    require("python3", &["--version"], "apt-get install python3");
    let mut problems = Problems::new();
    for script in ["samples/generate.py", "kibana/generate.py"] {
        let out = Command::new("python3")
            .arg(repo_root().join(script))
            .arg("--check")
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 {script}: {e}"));
        problems.check(out.status.success(), || {
            format!(
                "python3 {script} --check failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    }
    problems.assert_none("generated files");
}
