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
    let c = parse(&format!("{BASE}\n[pipelines.tweets]\ntopics = [\"tweets\"]\nindex = \"weir-tweets\"\n")).unwrap();
    assert_eq!(c.kafka.group_id, "weir");
    assert_eq!(c.kafka.batch.max_records, 500);
    let p = &c.pipelines["tweets"];
    assert_eq!(p.dead_letter_topic("tweets"), "tweets-dlq");
    assert!(p.modules.is_empty());
}

#[test]
fn unknown_key_is_named_with_the_file() {
    let err = parse(&format!("{BASE}\n[pipelines.tweets]\ntopics = [\"t\"]\nindex = \"i\"\nindx = \"x\"\n")).unwrap_err();
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
        err.to_string().contains("kafka.properties.\"enable.auto.offset.store\": is set by Weir"),
        "{err}"
    );
}

#[test]
fn numeric_properties_are_accepted_as_strings() {
    let c = parse(&BASE.replace("[elasticsearch]", "[kafka.properties]\n\"session.timeout.ms\" = 6000\n[elasticsearch]")).unwrap();
    assert_eq!(c.kafka.consumer_props().collect::<Vec<_>>(), vec![("session.timeout.ms", "6000")]);
}

#[test]
fn a_topic_belongs_to_one_pipeline() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"a\"\n[pipelines.b]\ntopics = [\"t\"]\nindex = \"b\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("pipelines.b.topics: topic `t` is already consumed by pipeline `a`"), "{err}");
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
    let err = parse(&format!("{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"Tweets\"\n")).unwrap_err();
    assert!(err.to_string().contains("pipelines.a.index"), "{err}");
}

#[test]
fn dead_letter_topic_cannot_be_consumed() {
    let err = parse(&format!(
        "{BASE}\n[pipelines.a]\ntopics = [\"t\"]\nindex = \"a\"\ndead_letter_topic = \"u\"\n[pipelines.b]\ntopics = [\"u\"]\nindex = \"b\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("pipelines.a.dead_letter_topic"), "{err}");
}

#[test]
fn environment_overrides_addresses_before_validation() {
    let env = |k: &str| match k {
        "WEIR_KAFKA_BROKERS" => Some("10.0.0.1:9092".to_string()),
        "WEIR_ELASTICSEARCH_URL" => Some("not a url".to_string()),
        _ => None,
    };
    let err = Config::from_toml_with(BASE, Path::new("weir.toml"), Path::new("."), env).unwrap_err();
    assert!(err.to_string().contains("elasticsearch.url"), "{err}");
    let env = |k: &str| (k == "WEIR_KAFKA_BROKERS").then(|| "10.0.0.1:9092".to_string());
    let c = Config::from_toml_with(BASE, Path::new("weir.toml"), Path::new("."), env).unwrap();
    assert_eq!(c.kafka.brokers, "10.0.0.1:9092");
}
