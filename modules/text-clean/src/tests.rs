//! Whole-module tests: config handling and end-to-end cleaning.

use weir_guest::serde_json::{Value, json};
use weir_guest::{Config, Outcome, Processor, Record};

use crate::{TextClean, clean_text};

fn run(config: &[(&str, &str)], value: Value) -> Value {
    let mut module = TextClean::init(&Config::from_pairs(config.iter().copied())).unwrap();
    match module.process(Record::from_value(value.to_string())) {
        Outcome::Emit(docs) => {
            assert_eq!(docs.len(), 1);
            weir_guest::serde_json::from_slice(&docs[0].body).unwrap()
        }
        other => panic!("expected one document, got {other:?}"),
    }
}

#[test]
fn cleans_a_typical_tweet() {
    let tweet = "RT @nasa: Launch in T-10 &amp; counting 🚀🚀 &#x27;go&#39; \
                 https://t.co/xyz123 #space @spacex";
    assert_eq!(
        clean_text(tweet, true),
        "Launch in T-10 & counting 🚀🚀 'go' #space"
    );
}

#[test]
fn cleans_html_with_entities_and_links() {
    let html = "<p>Caf&eacute;? <a href=\"https://cafe.example\">Caf\u{e9}</a> &lt;3</p>\n<br/>\
                <b><i>www.cafe.example</i></b>&nbsp;&mdash; <span>@owner</span>";
    assert_eq!(clean_text(html, true), "Caf&eacute;? Café <3 —");
}

#[test]
fn escaped_markup_stays_text() {
    assert_eq!(
        clean_text("use &lt;b&gt; for bold", true),
        "use <b> for bold"
    );
}

#[test]
fn unicode_and_emoji_survive() {
    assert_eq!(
        clean_text("  東京タワー 🗼\u{200D}✨  über   naïve  👩‍👩‍👧 ", true),
        "東京タワー 🗼\u{200D}✨ über naïve 👩‍👩‍👧"
    );
}

#[test]
fn only_noise_cleans_to_empty() {
    assert_eq!(clean_text("RT @a: https://t.co/x", true), "");
}

#[test]
fn default_field_is_text_and_original_is_kept() {
    let out = run(&[], json!({"text": "hi @bob  https://x.co", "n": 1}));
    assert_eq!(
        out,
        json!({"text": "hi", "text_original": "hi @bob  https://x.co", "n": 1})
    );
}

#[test]
fn configured_fields_and_suffix() {
    let out = run(
        &[("fields", "title, body"), ("original_suffix", ".raw")],
        json!({"title": "<h1>T</h1>", "body": "a&amp;b", "text": "@untouched"}),
    );
    assert_eq!(
        out,
        json!({
            "title": "T", "title.raw": "<h1>T</h1>",
            "body": "a&b", "body.raw": "a&amp;b",
            "text": "@untouched"
        })
    );
}

#[test]
fn empty_suffix_keeps_no_original() {
    let out = run(&[("original_suffix", "")], json!({"text": "@a b"}));
    assert_eq!(out, json!({"text": "b"}));
}

#[test]
fn strip_rt_can_be_disabled() {
    let out = run(&[("strip_rt", "false")], json!({"text": "RT @a: b"}));
    assert_eq!(out["text"], "RT b");
}

#[test]
fn missing_or_non_string_fields_are_left_alone() {
    let value = json!({"other": "@x", "text": null});
    assert_eq!(run(&[], value.clone()), value);
    let value = json!({"text": 5});
    assert_eq!(run(&[], value.clone()), value);
}

#[test]
fn invalid_json_fails_with_a_byte_offset() {
    let mut module = TextClean::init(&Config::default()).unwrap();
    let outcome = module.process(Record::from_value("{\"text\": nope}"));
    assert_eq!(
        outcome,
        // serde_json stops at the `o`: `n` could still have started `null`.
        Outcome::Fail("invalid JSON at byte 10: expected ident".into())
    );
}

#[test]
fn bad_config_is_rejected_at_init() {
    let err = TextClean::init(&Config::from_pairs([("strip_rt", "maybe")])).unwrap_err();
    assert!(err.to_string().contains("strip_rt"), "{err}");
    let err = TextClean::init(&Config::from_pairs([("fields", " , ")])).unwrap_err();
    assert!(err.to_string().contains("fields"), "{err}");
}

#[test]
fn untouched_values_keep_their_bytes_and_keys_their_order() {
    let module = TextClean::init(&Config::default()).unwrap();
    let input = br#"{"z": {"b": 1,  "a": [1.50, 2]}, "text": "a  @b", "m": 1e3}"#;
    let out = module.clean_object(input).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"z":{"b": 1,  "a": [1.50, 2]},"text":"a","text_original":"a  @b","m":1e3}"#
    );
}

#[test]
fn record_without_the_field_is_emitted_unchanged() {
    let mut module = TextClean::init(&Config::default()).unwrap();
    let input = r#"{ "other" :  "@x" }"#;
    let outcome = module.process(Record::from_value(input));
    assert_eq!(
        outcome,
        Outcome::emit_one(weir_guest::Document::from_bytes(input))
    );
}

#[test]
fn existing_original_field_is_replaced_not_duplicated() {
    let module = TextClean::init(&Config::default()).unwrap();
    let input = br#"{"text_original": "old", "text": "new @x"}"#;
    let out = module.clean_object(input).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"text":"new","text_original":"new @x"}"#
    );
}

#[test]
fn duplicate_keys_keep_the_last_occurrence() {
    let module = TextClean::init(&Config::default()).unwrap();
    let input = br#"{"text": "first", "n": 1, "text": "second @x"}"#;
    let out = module.clean_object(input).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"n":1,"text":"second","text_original":"second @x"}"#
    );
}

#[test]
fn escaped_json_strings_are_cleaned_and_re_escaped() {
    let module = TextClean::init(&Config::default()).unwrap();
    let input = br#"{"text": "line\none \"quoted\" \u00e9 \ud83d\ude00 @x"}"#;
    let out: Value =
        weir_guest::serde_json::from_slice(&module.clean_object(input).unwrap().unwrap()).unwrap();
    assert_eq!(out["text"], "line one \"quoted\" é 😀");
    assert_eq!(out["text_original"], "line\none \"quoted\" é 😀 @x");
}
