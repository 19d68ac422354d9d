//! Index templates (`config/templates/*.json`): valid, mapped as intended,
//! covering every field of docs/schema.md, and accepted by an
//! OpenSearch-compatible server (`osmem-server`) that then maps real
//! documents with the intended types.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use common::mapping::{Mapping, Template, is_numeric, templates};
use common::osmem::Osmem;
use common::{Problems, read, read_jsonl};

/// The intended type of every explicitly mapped field (the deployment
/// brief's rules, applied to docs/schema.md).
fn intended(template: &str) -> Vec<(&'static str, &'static str)> {
    let enriched = [
        ("hashtags", "keyword"),
        ("mentions", "keyword"),
        ("url_domains", "keyword"),
        ("language", "keyword"),
        ("word_count", "integer"),
        ("weir", "object"),
        ("weir.ingested_at", "date"),
        ("weir.source", "object"),
        ("weir.source.topic", "keyword"),
        ("weir.source.partition", "integer"),
        ("weir.source.offset", "long"),
        ("weir_modules", "keyword"),
    ];
    let own: Vec<(&str, &str)> = match template {
        "weir-tweets" => vec![
            ("id", "keyword"),
            ("text", "text"),
            ("text.keyword", "keyword"),
            ("text_original", "text"),
            ("created_at", "date"),
            ("lang", "keyword"),
            ("user", "object"),
            ("user.id", "keyword"),
            ("user.screen_name", "keyword"),
            ("user.followers_count", "integer"),
            ("source", "keyword"),
            ("url", "keyword"),
            ("retweet_count", "integer"),
            ("like_count", "integer"),
            ("hate", "object"),
            ("hate.label", "keyword"),
            ("hate.score", "float"),
            ("hate.scores", "object"),
            ("hate.scores.hate", "float"),
            ("hate.scores.offensive", "float"),
            ("hate.scores.neither", "float"),
            ("hate.categories", "keyword"),
            ("hate.terms", "keyword"),
            ("hate.model", "keyword"),
        ],
        "weir-news" => vec![
            ("id", "keyword"),
            ("title", "text"),
            ("title.keyword", "keyword"),
            ("title_original", "text"),
            ("description", "text"),
            ("description.keyword", "keyword"),
            ("description_original", "text"),
            ("content", "text"),
            ("content_original", "text"),
            ("url", "keyword"),
            ("source", "object"),
            ("source.id", "keyword"),
            ("source.name", "keyword"),
            ("author", "keyword"),
            ("published_at", "date"),
            ("feed", "keyword"),
            ("sentiment", "object"),
            ("sentiment.score", "float"),
            ("sentiment.label", "keyword"),
            ("sentiment.positivity", "float"),
            ("sentiment.negativity", "float"),
            ("sentiment.model", "keyword"),
        ],
        other => panic!("no expectations for template {other}"),
    };
    own.into_iter().chain(enriched).collect()
}

const TEMPLATE_NAMES: [&str; 2] = ["weir-tweets", "weir-news"];

fn load() -> BTreeMap<String, Template> {
    let all = templates();
    for name in TEMPLATE_NAMES {
        assert!(
            all.contains_key(name),
            "config/templates/{name}.json is missing"
        );
    }
    all
}

#[test]
fn templates_are_es8_index_templates_for_their_index() {
    let mut problems = Problems::new();
    for t in load().values() {
        let body = &t.body;
        problems.check(body.is_object(), || {
            format!("{}: not a JSON object", t.file)
        });
        problems.check(t.index_patterns == [format!("{}*", t.name)], || {
            format!(
                "{}: index_patterns is {:?}, expected [\"{}*\"]",
                t.file, t.index_patterns, t.name
            )
        });
        problems.check(body["priority"].as_u64().is_some_and(|p| p > 100), || {
            format!(
                "{}: priority must be a number above 100 (built-in templates use 100)",
                t.file
            )
        });
        problems.check(
            body["template"]["mappings"]["dynamic"] == json!(true),
            || format!("{}: template.mappings.dynamic must be true", t.file),
        );
        for key in body.as_object().into_iter().flatten().map(|(k, _)| k) {
            problems.check(
                [
                    "index_patterns",
                    "template",
                    "priority",
                    "version",
                    "_meta",
                    "composed_of",
                    "data_stream",
                ]
                .contains(&key.as_str()),
                || {
                    format!(
                        "{}: unknown top-level key `{key}` for PUT _index_template",
                        t.file
                    )
                },
            );
        }
        let settings = &body["template"]["settings"]["index"];
        problems.check(settings["number_of_shards"].as_u64() == Some(1), || {
            format!(
                "{}: template.settings.index.number_of_shards should be 1",
                t.file
            )
        });
    }
    problems.assert_none("index templates");
}

#[test]
fn fields_have_their_intended_types() {
    let mut problems = Problems::new();
    for t in load().values() {
        let expected = intended(&t.name);
        for (path, ty) in &expected {
            match t.mapping.type_of(path) {
                Some(actual) if actual == *ty => {}
                Some(actual) => {
                    problems.add(format!("{}: `{path}` is {actual}, expected {ty}", t.file))
                }
                None => problems.add(format!(
                    "{}: `{path}` is not mapped (expected {ty})",
                    t.file
                )),
            }
        }
        // Nothing mapped beyond the intended list (a typo would otherwise hide).
        let known: BTreeSet<&str> = expected.iter().map(|(p, _)| *p).collect();
        for path in t.mapping.fields.keys() {
            problems.check(known.contains(path.as_str()), || {
                format!(
                    "{}: `{path}` is mapped but not in docs/schema.md's fields",
                    t.file
                )
            });
        }
        for (path, field) in &t.mapping.fields {
            let ty = t.mapping.type_of(path).unwrap_or("");
            if path.ends_with("_original") {
                problems.check(field.get("fields").is_none(), || {
                    format!(
                        "{}: `{path}` must have no keyword sub-field (not for aggregations)",
                        t.file
                    )
                });
            } else if ty == "text" && ["text", "title", "description"].contains(&path.as_str()) {
                let kw = &field["fields"]["keyword"];
                problems.check(kw["type"] == "keyword" && kw["ignore_above"] == 256, || {
                    format!(
                        "{}: `{path}` needs a keyword sub-field with ignore_above 256",
                        t.file
                    )
                });
            }
        }
        let dynamic_templates = &t.body["template"]["mappings"]["dynamic_templates"];
        let originals = dynamic_templates
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("originals"))
            .next();
        problems.check(
            originals.is_some_and(|o| o["match"] == "*_original" && o["mapping"]["type"] == "text"),
            || {
                format!(
                    "{}: needs a dynamic template mapping `*_original` as text",
                    t.file
                )
            },
        );
    }
    problems.assert_none("template field types");
}

// --- docs/schema.md -----------------------------------------------------------

/// Field paths docs/schema.md defines for a template, with a JSON example
/// value where the schema gives one.
fn schema_fields(template: &str) -> BTreeMap<String, Value> {
    let doc = read("docs/schema.md");
    let topic = template.trim_start_matches("weir-");
    let mut fields = BTreeMap::new();

    // The input table of the topic.
    let heading = format!("## Input: `{topic}` topic");
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/schema.md: no `{heading}` section"));
    let section = &doc[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, ty, meaning) = (cells[1], cells[2], cells.get(3).copied().unwrap_or(""));
        for name in backticked(names) {
            if ty.starts_with("object") {
                fields.insert(name.clone(), json!({}));
                // `{ "id": string, "screen_name": string, ... }` in the meaning column.
                for key in quoted_keys(meaning) {
                    fields.insert(format!("{name}.{key}"), Value::Null);
                }
            } else {
                fields.insert(name, Value::Null);
            }
        }
    }

    // text-clean: `<field>_original` for each cleaned field of this topic.
    let clean_line = doc
        .lines()
        .find(|l| l.starts_with("`text-clean`"))
        .expect("docs/schema.md: no `text-clean` paragraph");
    let segment = clean_line
        .split(';')
        .find_map(|part| part.split_once(&format!("{topic}:")).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("docs/schema.md: text-clean names no fields for {topic}"));
    for name in backticked(segment.split(')').next().unwrap()) {
        fields.insert(format!("{name}_original"), json!("text"));
    }

    // Module outputs: the JSON blocks under "`module` (tweets|news|both...):".
    let lines: Vec<&str> = doc.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```json" {
            let owner = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .copied()
                .unwrap_or("");
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .expect("unclosed code block");
            let applies = owner.contains("(both") || owner.contains(&format!("({topic}"));
            if applies {
                let block = strip_comments(&lines[i + 1..end].join("\n"));
                let text = if block.trim_start().starts_with('{') {
                    block
                } else {
                    format!("{{{block}}}")
                };
                let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                    panic!("docs/schema.md: block after {owner:?} is not JSON: {e}\n{text}")
                });
                flatten_example("", &value, &mut fields);
            }
            i = end;
        }
        i += 1;
    }
    fields
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn quoted_keys(s: &str) -> Vec<String> {
    s.split('"')
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1].trim_start().starts_with(':'))
        .map(|w| w[0].to_owned())
        .collect()
}

/// Drops `// ...` comments outside strings.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_string = false;
        let mut prev = '\0';
        let mut cut = line.len();
        for (i, c) in line.char_indices() {
            if c == '"' && prev != '\\' {
                in_string = !in_string;
            } else if c == '/' && prev == '/' && !in_string {
                cut = i - 1;
                break;
            }
            prev = c;
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

fn flatten_example(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(path.clone(), v.clone());
            flatten_example(&path, v, out);
        }
    }
}

/// Whether a mapped type can hold the schema's example value.
fn compatible(mapped: &str, example: &Value) -> bool {
    match example {
        Value::Object(_) => mapped == "object",
        Value::Number(_) => is_numeric(mapped),
        Value::Array(items) => items.iter().all(|i| compatible(mapped, i)),
        Value::String(_) => ["keyword", "text", "date"].contains(&mapped),
        Value::Bool(_) => mapped == "boolean",
        Value::Null => mapped != "object",
    }
}

#[test]
fn every_schema_field_is_mapped_explicitly() {
    let all = load();
    let mut problems = Problems::new();
    for name in TEMPLATE_NAMES {
        let t = &all[name];
        let fields = schema_fields(name);
        assert!(
            fields.len() > 15,
            "docs/schema.md: only {} fields found for {name}; parser out of date?",
            fields.len()
        );
        for (path, example) in &fields {
            match t.mapping.type_of(path) {
                None => problems.add(format!(
                    "{}: docs/schema.md field `{path}` is not mapped",
                    t.file
                )),
                Some(ty) if !compatible(ty, example) => problems.add(format!(
                    "{}: `{path}` is {ty}, but docs/schema.md shows {example}",
                    t.file
                )),
                Some(_) => {}
            }
        }
    }
    problems.assert_none("templates vs docs/schema.md");
}

// --- osmem round trip ---------------------------------------------------------------

/// A sample record as the pipeline would index it: the module fields of
/// docs/schema.md added with plausible values.
fn enrich(mut doc: Value, topic: &str, n: usize) -> Value {
    let obj = doc.as_object_mut().expect("sample records are objects");
    let text_fields: &[&str] = if topic == "tweets" {
        &["text"]
    } else {
        &["title", "description", "content"]
    };
    let mut words = 0;
    let mut hashtags = Vec::new();
    let mut mentions = Vec::new();
    let mut domains = Vec::new();
    for field in text_fields {
        if let Some(Value::String(text)) = obj.get(*field).cloned() {
            for word in text.split_whitespace() {
                words += 1;
                if let Some(tag) = word.strip_prefix('#') {
                    hashtags.push(
                        tag.trim_matches(|c: char| !c.is_alphanumeric())
                            .to_lowercase(),
                    );
                } else if let Some(m) = word.strip_prefix('@') {
                    mentions.push(m.trim_end_matches(':').to_lowercase());
                } else if let Some(rest) = word.strip_prefix("https://") {
                    domains.push(rest.split('/').next().unwrap_or_default().to_owned());
                }
            }
            obj.insert(format!("{field}_original"), Value::String(text.clone()));
        }
    }
    if topic == "tweets" {
        let label = ["neither", "offensive", "hate", "neither"][n % 4];
        obj.insert("hate".into(), json!({
            "label": label, "score": 0.81,
            "scores": {"hate": 0.1, "offensive": 0.09, "neither": 0.81},
            "categories": if label == "hate" { json!(["Discrimination and Harassment"]) } else { json!([]) },
            "terms": [], "model": "hatesonar-0.1.0"
        }));
    } else {
        let label = ["negative", "neutral", "positive"][n % 3];
        obj.insert(
            "sentiment".into(),
            json!({
                "score": -0.62 + (n % 5) as f64 * 0.3, "label": label,
                "positivity": 0.2, "negativity": 0.31, "model": "vader-3.3.2"
            }),
        );
    }
    obj.insert("hashtags".into(), json!(hashtags));
    obj.insert("mentions".into(), json!(mentions));
    obj.insert("url_domains".into(), json!(domains));
    obj.insert("language".into(), json!("en"));
    obj.insert("word_count".into(), json!(words));
    obj.insert(
        "weir".into(),
        json!({
            "ingested_at": "2026-11-26T12:00:00Z",
            "source": {"topic": topic, "partition": n % 4, "offset": 4_000_000_000u64 + n as u64}
        }),
    );
    obj.insert(
        "weir_modules".into(),
        json!(["text-clean@0.1.0#4f1c2a9e03bd", "enrich@0.1.0#c3b8e1f04a62"]),
    );
    doc
}

#[test]
fn templates_load_into_osmem_and_map_sample_documents() {
    let osmem = Osmem::start().unwrap_or_else(|e| panic!("{e}"));
    let all = load();
    for t in all.values() {
        let r = osmem.put_json(&format!("/_index_template/{}", t.name), &t.body.to_string());
        assert_eq!(
            r.status, 200,
            "PUT _index_template/{} ({}) refused: {}",
            t.name, t.file, r.body
        );
    }
    for (index, sample, topic) in [
        ("weir-tweets", "samples/tweets.jsonl", "tweets"),
        ("weir-news", "samples/news.jsonl", "news"),
    ] {
        let docs: Vec<Value> = read_jsonl(sample)
            .into_iter()
            .take(40)
            .enumerate()
            .map(|(n, d)| enrich(d, topic, n))
            .collect();
        let mut bulk = String::new();
        for (n, doc) in docs.iter().enumerate() {
            bulk.push_str(
                &json!({"index": {"_index": index, "_id": format!("{topic}-0-{n}-0")}}).to_string(),
            );
            bulk.push('\n');
            bulk.push_str(&doc.to_string());
            bulk.push('\n');
        }
        let r = osmem.post("/_bulk?refresh=true", "application/x-ndjson", &bulk);
        assert_eq!(r.status, 200, "bulk into {index} failed: {}", r.body);
        let result = r.json();
        assert_eq!(
            result["errors"],
            json!(false),
            "bulk into {index} had item errors: {}",
            r.body
        );

        let r = osmem.get(&format!("/{index}/_mapping"));
        assert_eq!(r.status, 200, "GET {index}/_mapping: {}", r.body);
        let live = Mapping::from_mappings(&r.json()[index]["mappings"]);
        let template = &all[index];
        let mut problems = Problems::new();
        for (path, ty) in template.mapping.leaves() {
            match live.type_of(path) {
                Some(actual) => problems.check(actual == ty, || {
                    format!("{index}: `{path}` mapped as {actual}, template says {ty}")
                }),
                None => problems.add(format!("{index}: `{path}` missing from the live mapping")),
            }
        }
        // The enriched documents bring no field the template does not map.
        for (path, ty) in live.leaves() {
            problems.check(template.mapping.fields.contains_key(path), || {
                format!(
                    "{index}: `{path}` ({ty}) was mapped dynamically; add it to {}",
                    template.file
                )
            });
        }
        problems.assert_none(&format!("live mapping of {index} in osmem"));

        let r = osmem.get(&format!("/{index}/_count"));
        assert_eq!(
            r.json()["count"],
            json!(docs.len()),
            "{index}/_count: {}",
            r.body
        );
    }

    // The aggregations the Kibana objects run work on these mappings.
    let search = |index: &str, body: Value| {
        let r = osmem.post(
            &format!("/{index}/_search"),
            "application/json",
            &body.to_string(),
        );
        assert_eq!(r.status, 200, "aggregation on {index} failed: {}", r.body);
        r.json()
    };
    let tweets = search(
        "weir-tweets",
        json!({"size": 0, "aggs": {
            "labels": {"terms": {"field": "hate.label"}},
            "categories": {"terms": {"field": "hate.categories"}},
            "tags": {"terms": {"field": "hashtags", "size": 30}},
            "per_day": {"date_histogram": {"field": "created_at", "calendar_interval": "day"}}
        }}),
    );
    for agg in ["labels", "categories", "tags", "per_day"] {
        assert!(
            tweets["aggregations"][agg]["buckets"]
                .as_array()
                .is_some_and(|b| !b.is_empty()),
            "weir-tweets: aggregation {agg} returned no buckets: {tweets}"
        );
    }
    let news = search(
        "weir-news",
        json!({"size": 0, "aggs": {
            "avg_sentiment": {"avg": {"field": "sentiment.score"}},
            "by_source": {"terms": {"field": "source.name"}, "aggs": {"labels": {"terms": {"field": "sentiment.label"}}}}
        }}),
    );
    assert!(
        news["aggregations"]["avg_sentiment"]["value"].is_number(),
        "weir-news: avg sentiment.score: {news}"
    );
    assert!(
        news["aggregations"]["by_source"]["buckets"]
            .as_array()
            .is_some_and(|b| !b.is_empty()),
        "weir-news: terms on source.name returned no buckets: {news}"
    );
}
