use std::time::{Duration, UNIX_EPOCH};

use weir_guest::serde_json::{self, Value, json};
use weir_guest::{Config, Outcome, Processor, Record};

use super::lang::iso639_1;
use super::*;

fn enrich(config: &[(&str, &str)], value: &str) -> Value {
    let module = Enrich::init(&Config::from_pairs(config.to_vec())).unwrap();
    let mut record = Record::from_value(value);
    record.topic = "tweets".into();
    record.partition = 2;
    record.offset = 1234;
    let now = UNIX_EPOCH + Duration::from_millis(1_795_694_400_042); // 2026-11-26T12:00:00.042Z
    serde_json::from_slice(&module.enrich(&record, now).unwrap()).unwrap()
}

#[test]
fn a_cleaned_tweet_gets_every_field() {
    let doc = enrich(
        &[],
        r#"{"id":"1","lang":"en","text":"Loving the new launch, great work team #Climate #space",
            "text_original":"@NASA Loving the new launch, great work team #Climate #space https://www.nasa.gov/launch?x=1 @esa"}"#,
    );
    assert_eq!(doc["hashtags"], json!(["climate", "space"]));
    assert_eq!(doc["mentions"], json!(["nasa", "esa"]));
    assert_eq!(doc["url_domains"], json!(["nasa.gov"]));
    assert_eq!(doc["language"], "en");
    assert_eq!(doc["word_count"], 9);
    assert_eq!(
        doc["weir"],
        json!({"ingested_at": "2026-11-26T12:00:00.042Z", "source": {"topic": "tweets", "partition": 2, "offset": 1234}})
    );
    assert_eq!(doc["id"], "1");
}

#[test]
fn without_an_original_the_field_itself_is_read() {
    let doc = enrich(
        &[],
        r##"{"text":"RT @Bob: see http://Example.COM:8080/a, and (https://news.example/x) #1 #a1 #é"}"##,
    );
    assert_eq!(doc["mentions"], json!(["bob"]));
    assert_eq!(doc["url_domains"], json!(["example.com", "news.example"]));
    assert_eq!(doc["hashtags"], json!(["a1", "é"]));
}

#[test]
fn mentions_are_not_email_addresses_and_keep_fediverse_instances() {
    let found = extract(["mail me@example.com or @alice@mastodon.social. @bob_2! @@x a#b"]);
    assert_eq!(found.mentions, ["alice@mastodon.social", "bob_2", "x"]);
    assert!(found.hashtags.is_empty());
    assert!(found.url_domains.is_empty());
}

#[test]
fn duplicates_collapse_in_order_across_fields() {
    let found = extract(["#A #b www.site.example/1", "#a @Z https://site.example @z"]);
    assert_eq!(found.hashtags, ["a", "b"]);
    assert_eq!(found.mentions, ["z"]);
    assert_eq!(found.url_domains, ["site.example"]);
}

#[test]
fn news_reads_title_and_description() {
    let config = [("fields", "title,description")];
    let doc = enrich(
        &config,
        r#"{"title":"Der Bundestag hat heute ein neues Gesetz beschlossen","description":"Die Regierung will damit die Wirtschaft stärken und die Arbeitslosigkeit senken.","title_original":"Der Bundestag hat heute ein neues Gesetz beschlossen https://zeitung.example/a"}"#,
    );
    assert_eq!(doc["language"], "de");
    assert_eq!(doc["url_domains"], json!(["zeitung.example"]));
    assert_eq!(doc["word_count"], 19);
}

#[test]
fn unsure_detection_falls_back_to_the_record_then_und() {
    assert_eq!(
        enrich(&[], r#"{"text":"ok","lang":"PT"}"#)["language"],
        "pt"
    );
    assert_eq!(enrich(&[], r#"{"text":""}"#)["language"], "und");
    assert_eq!(
        enrich(&[("language_fallback", "")], r#"{"text":"ok","lang":"pt"}"#)["language"],
        "und"
    );
    assert_eq!(
        enrich(
            &[("min_confidence", "0"), ("language_detection", "always")],
            r#"{"text":"Das ist gut","lang":"en"}"#
        )["language"],
        "de"
    );
    let only = [("languages", "en,fra"), ("min_confidence", "0")];
    assert_eq!(
        enrich(
            &only,
            r#"{"text":"Das ist ein schönes Haus und der Garten ist groß"}"#
        )["language"],
        "en"
    );
}

const GERMAN: &str = "Das ist ein schönes Haus und der Garten ist groß";

#[test]
fn the_records_own_language_skips_detection() {
    // Detection would say `de`; the record's field wins, normalised.
    for lang in ["en", "EN", "en-GB", "en_US"] {
        let value = json!({"text": GERMAN, "lang": lang}).to_string();
        assert_eq!(enrich(&[], &value)["language"], "en", "{lang}");
    }
    // No language in the field: detection runs.
    for lang in ["", "und", "qme", "zxx", "e", "1x", "english"] {
        let value = json!({"text": GERMAN, "lang": lang}).to_string();
        assert_eq!(enrich(&[], &value)["language"], "de", "{lang:?}");
    }
    assert_eq!(
        enrich(&[], &json!({"text": GERMAN, "lang": 3}).to_string())["language"],
        "de"
    );
    // Another field, and its former name.
    let value = json!({"text": GERMAN, "lang": "en", "source_lang": "fr"}).to_string();
    assert_eq!(
        enrich(&[("language_field", "source_lang")], &value)["language"],
        "fr"
    );
    assert_eq!(
        enrich(&[("language_fallback", "source_lang")], &value)["language"],
        "fr"
    );
    assert_eq!(enrich(&[("language_field", "")], &value)["language"], "de");
}

#[test]
fn detection_modes() {
    let tagged = json!({"text": GERMAN, "lang": "en"}).to_string();
    let untagged = json!({"text": GERMAN}).to_string();
    let mode = |m| [("language_detection", m)];
    assert_eq!(enrich(&mode("always"), &tagged)["language"], "de");
    assert_eq!(enrich(&mode("always"), &untagged)["language"], "de");
    assert_eq!(enrich(&mode("missing"), &tagged)["language"], "en");
    assert_eq!(enrich(&mode("never"), &tagged)["language"], "en");
    assert_eq!(enrich(&mode("never"), &untagged)["language"], "und");
}

#[test]
fn detection_defaults_to_a_short_list_of_languages() {
    let russian =
        json!({"text": "Сегодня в Москве прошла большая конференция о климате и космосе"})
            .to_string();
    assert_eq!(enrich(&[], &russian)["language"], "und");
    assert_ne!(enrich(&[("languages", "all")], &russian)["language"], "und");
    assert_eq!(
        enrich(&[("languages", "en,ru")], &russian)["language"],
        "ru"
    );
    for text in [
        GERMAN,
        "The weather is lovely today and we are going to the park",
        "Il fait très beau aujourd'hui et nous allons au parc avec les enfants",
        "Hoy hace muy buen tiempo y vamos al parque con los niños",
    ] {
        let value = json!({ "text": text }).to_string();
        assert_eq!(
            enrich(&[], &value)["language"],
            enrich(&[("languages", "all")], &value)["language"],
            "{text}"
        );
    }
}

#[test]
fn detection_reads_a_bounded_prefix() {
    // ~250 characters of German, then ~720 of English.
    let text = format!(
        "{} {}",
        [GERMAN; 5].join(". "),
        "The weather is lovely today and we are all going to the park together. ".repeat(10)
    );
    let value = json!({ "text": text }).to_string();
    assert_eq!(enrich(&[], &value)["language"], "de");
    assert_eq!(
        enrich(
            &[("detect_max_chars", "100000"), ("min_confidence", "0")],
            &value
        )["language"],
        "en"
    );
    assert_eq!(super::prefix("héllo", 2), "hé");
    assert_eq!(super::prefix("héllo", 9), "héllo");
    assert_eq!(super::prefix("", 0), "");
}

#[test]
fn earlier_values_are_replaced_and_a_missing_field_is_fine() {
    let doc = enrich(
        &[],
        r#"{"id":"x","hashtags":["old"],"weir":{"a":1},"word_count":99}"#,
    );
    assert_eq!(doc["hashtags"], json!([]));
    assert_eq!(doc["word_count"], 0);
    assert_eq!(doc["language"], "und");
    assert!(doc["weir"].get("a").is_none());
}

#[test]
fn key_order_is_kept_and_outputs_go_last() {
    let mut module = Enrich::init(&Config::default()).unwrap();
    let out = module.process(Record::from_value(r#"{"z":1,"text":"hi #x","a":[1, 2]}"#));
    let Outcome::Emit(docs) = out else {
        panic!("{out:?}")
    };
    let text = String::from_utf8(docs[0].body.to_vec()).unwrap();
    assert!(text.starts_with(r#"{"z":1,"text":"hi #x","a":[1, 2],"hashtags":["x"],"mentions":[],"url_domains":[],"language":"#), "{text}");
}

#[test]
fn failures_and_config_errors_are_clear() {
    let mut module = Enrich::init(&Config::default()).unwrap();
    assert_eq!(
        module.process(Record::from_value("[]")),
        Outcome::Fail("expected a JSON object, found an array".into())
    );
    let err = |pairs: &[(&str, &str)]| {
        Enrich::init(&Config::from_pairs(pairs.to_vec()))
            .err()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        err(&[("languages", "en,klingon")]),
        "config key \"languages\": unknown language \"klingon\""
    );
    assert_eq!(
        err(&[("language_detection", "sometimes")]),
        "config key \"language_detection\": expected missing, always or never, found \"sometimes\""
    );
    assert_eq!(
        err(&[("min_confidence", "2")]),
        "config key \"min_confidence\" must be between 0 and 1"
    );
    assert_eq!(
        err(&[("fields", "")]),
        "config key \"fields\" names no field"
    );
}

#[test]
fn timestamps_and_word_counts() {
    assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        rfc3339_millis(UNIX_EPOCH + Duration::from_millis(951_782_400_999)),
        "2000-02-29T00:00:00.999Z"
    );
    assert_eq!(
        rfc3339_millis(UNIX_EPOCH + Duration::from_secs(4_102_444_799)),
        "2099-12-31T23:59:59.000Z"
    );
    assert_eq!(word_count("  one, two -- three 4 ... "), 4);
}

#[test]
fn every_language_has_a_two_letter_code() {
    for lang in whatlang::Lang::all() {
        assert_eq!(iso639_1(*lang).len(), 2, "{lang:?}");
    }
}
