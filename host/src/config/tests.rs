use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("weir.toml"), Path::new("."))
}

const BASE: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"
[elasticsearch]
url = "http://127.0.0.1:9200"
"#;

#[test]
fn minimal_config_parses_with_defaults() {
    let c = parse(&format!(
        "{BASE}\n[pipelines.tweets]\ntopics = [\"tweets\"]\nindex = \"weir-tweets\"\n"
    ))
    .unwrap();
    assert_eq!(c.kafka.group_id, "weir");
    assert_eq!(c.kafka.batch.max_records, 500);
    let p = &c.pipelines["tweets"];
    assert_eq!(p.dead_letter_topic("tweets"), "tweets-dlq");
    assert!(p.modules.is_empty());
}

#[test]
fn unknown_key_is_named_with_the_file() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.tweets]\ntopics = [\"t\"]\nindex = \"i\"\nindx = \"x\"\n"
    ))
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("weir.toml:"), "{msg}");
    assert!(msg.contains("unknown field `indx`"), "{msg}");
}

#[test]
fn reserved_kafka_property_is_refused_by_key() {
    let err = parse(&BASE.replace(
        "[elasticsearch]",
        "[kafka.properties]\n\"enable.auto.offset.store\" = true\n[elasticsearch]",
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("kafka.properties.\"enable.auto.offset.store\": is set by Weir"),
        "{err}"
    );
}

#[test]
fn numeric_properties_are_accepted_as_strings() {
    let c = parse(&BASE.replace(
        "[elasticsearch]",
        "[kafka.properties]\n\"session.timeout.ms\" = 6000\n[elasticsearch]",
    ))
    .unwrap();
    assert_eq!(
        c.kafka.consumer_props().collect::<Vec<_>>(),
        vec![("session.timeout.ms", "6000")]
    );
}

#[test]
fn a_topic_belongs_to_one_pipeline() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"a\"\n[pipelines.b]\ntopics = [\"t\"]\nindex = \"b\"\n"
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("pipelines.b.topics: topic `t` is already consumed by pipeline `a`"),
        "{err}"
    );
}

#[test]
fn missing_module_file_is_named() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"a\"\n[[pipelines.a.modules]]\npath = \"nope/missing.wasm\"\n"
    ))
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("pipelines.a.modules[0].path"), "{msg}");
    assert!(msg.contains("missing.wasm does not exist"), "{msg}");
}

#[test]
fn invalid_index_name_is_refused() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"Tweets\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("pipelines.a.index"), "{err}");
}

#[test]
fn dead_letter_topic_cannot_be_consumed() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"a\"\ndead_letter_topic = \"u\"\n[pipelines.b]\ntopics = [\"u\"]\nindex = \"b\"\n"
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("pipelines.a.dead_letter_topic"),
        "{err}"
    );
}

#[test]
fn environment_overrides_addresses_before_validation() {
    let env = |k: &str| match k {
        "WEIR_KAFKA_BROKERS" => Some("10.0.0.1:9092".to_string()),
        "WEIR_ELASTICSEARCH_URL" => Some("not a url".to_string()),
        _ => None,
    };
    let err =
        Config::from_toml_with(BASE, Path::new("weir.toml"), Path::new("."), env).unwrap_err();
    assert!(err.to_string().contains("elasticsearch.url"), "{err}");
    let env = |k: &str| (k == "WEIR_KAFKA_BROKERS").then(|| "10.0.0.1:9092".to_string());
    let c = Config::from_toml_with(BASE, Path::new("weir.toml"), Path::new("."), env).unwrap();
    assert_eq!(c.kafka.brokers, "10.0.0.1:9092");
}

/// The operator's guide lists every key in one TOML block; it must parse
/// (unknown keys would fail) so the reference cannot drift from the structs.
#[test]
fn operators_guide_reference_config_parses() {
    let guide = include_str!("../../../docs/operators-guide.md");
    let toml_text = reference_block(guide, "reference-config");
    // Module paths must exist for validation: point at a temp file.
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("dist/modules");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(modules.join("text-clean.wasm"), b"").unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(config_dir.join("tenants/acme/modules")).unwrap();
    std::fs::write(config_dir.join("tenants/acme/modules/text-clean.wasm"), b"").unwrap();
    std::fs::write(
        config_dir.join("tenants/acme.toml"),
        reference_block(guide, "reference-tenant"),
    )
    .unwrap();
    let c = Config::from_toml(toml_text, Path::new("operators-guide.md"), &config_dir)
        .unwrap_or_else(|e| panic!("the guide's reference config is invalid: {e}"));
    assert_eq!(c.kafka.max_in_flight_batches, 4);
    assert_eq!(c.pipelines["tweets"].modules[0].name(), "text-clean");
    // The documented tenant file loads, with its overrides.
    let acme = &c.tenant_set["acme"];
    assert_eq!(acme.quotas.records_per_second, 2000);
    assert_eq!(
        acme.elasticsearch,
        Some(crate::config::ElasticsearchAuth::ApiKey {
            api_key_env: "WEIR_TENANT_ACME_ES_API_KEY".into()
        })
    );
    assert!(c.pipelines.contains_key("acme.tweets"));

    // Completeness: every field the structs have (serialized back, defaults
    // included) appears in the documented block.
    let documented = key_paths(&toml::from_str::<toml::Value>(toml_text).unwrap());
    // Tenant pipelines come from the tenant file, documented on its own.
    let mut c = c;
    c.pipelines.retain(|_, p| p.tenant.is_none());
    let actual = key_paths(&toml::Value::try_from(&c).unwrap());
    let undocumented: Vec<_> = actual.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "config keys missing from docs/operators-guide.md: {undocumented:?}"
    );
}

/// The TOML block between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
fn reference_block<'a>(guide: &'a str, name: &str) -> &'a str {
    let start = guide
        .find(&format!("<!-- {name}:begin -->"))
        .expect("begin marker");
    let end = guide
        .find(&format!("<!-- {name}:end -->"))
        .expect("end marker");
    guide[start..end]
        .split("```toml")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block between the markers")
}

/// `a.b.c` paths of every leaf and table in a TOML value (array elements
/// share their array's path).
fn key_paths(v: &toml::Value) -> std::collections::BTreeSet<String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.insert(p.clone());
                    walk(&p, v, out);
                }
            }
            toml::Value::Array(items) => {
                for item in items {
                    walk(&format!("{prefix}[]"), item, out);
                }
            }
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk("", v, &mut out);
    out
}

#[test]
fn every_problem_is_reported_with_file_and_key() {
    let err = parse(&format!(
        "{}\n[pipelines.a]\ntopics = []\nindex = \"Bad\"\n",
        BASE.replace("127.0.0.1:9092", "")
            .replace("[kafka]", "[kafka]\ngroup_id = \" \"")
    ))
    .unwrap_err();
    let found: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "weir.toml: kafka.brokers: must name at least one broker",
            "weir.toml: kafka.group_id: must not be empty",
            "weir.toml: pipelines.a.topics: must list at least one topic",
            "weir.toml: pipelines.a.index: `Bad` is not a valid index name (lowercase, no \\ / * ? \" < > | , # : or spaces)",
        ]
    );
    assert_eq!(err.to_string(), found.join("\n"));
}

#[test]
fn allowed_indices_are_index_names_or_patterns() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"i\"\nallowed_indices = [\"ok-*\", \"*all\", \"Bad-*\"]\n"
    ))
    .unwrap_err();
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "pipelines.a.allowed_indices[1]",
            "pipelines.a.allowed_indices[2]"
        ]
    );
}

#[test]
fn index_patterns_match_runs_of_any_characters() {
    for (pattern, index, matches) in [
        ("weir-*", "weir-news", true),
        ("weir-*", "weir-", true),
        ("weir-*", "weirx", false),
        ("weir-*-2026", "weir-news-2026", true),
        ("weir-*-2026", "weir-news-2025", false),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "acb", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
    ] {
        assert_eq!(
            index_matches(pattern, index),
            matches,
            "{pattern} ~ {index}"
        );
    }
}

#[test]
fn control_defaults_to_files_and_kafka_needs_a_tenants_folder() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.control.mode, ControlMode::Files);
    assert_eq!(c.control.topic, "weir-control");
    assert!(c.control.chunk_bytes < 1 << 20);

    let err = parse(&format!(
        "{BASE}\n[control]\nmode = \"kafka\"\ntopic = \"bad topic\"\nchunk_bytes = 10\nreplication_factor = 0\n"
    ))
    .unwrap_err();
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "control.topic",
            "control.chunk_bytes",
            "control.replication_factor",
            "control.mode"
        ],
        "{err}"
    );
    assert!(
        err.to_string().starts_with("weir.toml: control.topic:"),
        "{err}"
    );

    let err = parse(&format!("{BASE}\n[control]\nmod = \"kafka\"\n")).unwrap_err();
    assert!(err.to_string().contains("unknown field `mod`"), "{err}");
}

#[test]
fn a_tenant_from_text_is_checked_as_its_file_would_be() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tenants")).unwrap();
    let c = Config::from_toml(
        &format!("{BASE}\n[tenants]\ndir = \"tenants\"\n"),
        &dir.path().join("weir.toml"),
        dir.path(),
    )
    .unwrap();
    // Module files need not exist yet (a fleet host writes them next).
    let t = c
        .tenant_from_text(
            "acme",
            "[pipelines.events]\ntopics = [\"acme.events\"]\nindex = \"acme-events\"\nmodules = [{ path = \"tag.wasm\" }]\n",
        )
        .unwrap();
    assert!(t.modules_dir.ends_with("tenants/acme/modules"));
    let err = c
        .tenant_from_text(
            "acme",
            "[pipelines.events]\ntopics = [\"globex.events\"]\nindex = \"acme-events\"\n",
        )
        .unwrap_err();
    assert_eq!(err.key, "pipelines.events.topics");
    assert!(err.file.ends_with("tenants/acme.toml"), "{err}");
    assert!(c.tenant_from_text("Not-An-Id", "").is_err());
}
