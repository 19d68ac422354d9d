//! expert.ai's documented hate-speech response, read as the docs describe.

use classify_client::expertai::{self, Branch, HateSpeech};
use weir_guest::serde_json::{self, Value, json};

fn docs_example() -> Value {
    serde_json::from_str(include_str!(
        "fixtures/expertai-hate-speech-docs-example.json"
    ))
    .unwrap()
}

#[test]
fn the_docs_example_is_sexism_under_discrimination() {
    let v = docs_example();
    let (data, model) = expertai::data(&v, "expert.ai").unwrap();
    assert_eq!(model, "expert.ai sensei: 3.1.0");
    let found = HateSpeech::parse(data).unwrap();
    assert!(found.detected());
    let sexism = &found.categories[0];
    assert_eq!(
        (
            sexism.id.as_str(),
            sexism.score,
            sexism.frequency,
            sexism.winner
        ),
        ("2200", 3.0, 6.96, true)
    );
    assert_eq!(sexism.branch, Some(Branch::DiscriminationAndHarassment));
    // The documented hierarchy starts at Sexism; the taxonomy puts it under
    // Discrimination and Harassment.
    assert_eq!(found.labels(), ["Discrimination and Harassment", "Sexism"]);
    assert_eq!(found.terms(data["content"].as_str().unwrap()), ["girls"]);
    // Its frequency is relative to categories the example leaves out: among
    // those listed, Sexism is all there is.
    let by_branch = |b: Option<Branch>| match b {
        Some(Branch::PersonalInsult) => 0,
        Some(Branch::DiscriminationAndHarassment) => 1,
        _ => 2,
    };
    assert_eq!(found.shares::<3>(by_branch), [0.0, 1.0, 0.0]);
    assert_eq!(found.winning::<3>(by_branch), Some(1));
}

#[test]
fn no_categories_is_no_hate_speech() {
    let found = HateSpeech::parse(&json!({"categories": []})).unwrap();
    assert!(!found.detected());
    assert_eq!(found.winning::<2>(|_| 0), None);
    assert!(found.labels().is_empty());
    assert!(HateSpeech::parse(&json!({})).is_err());
}

#[test]
fn the_winners_decide_and_come_first() {
    let data = json!({"categories": [
        {"id": "3000", "label": "Threat and Violence", "hierarchy": ["Threat and Violence"], "namespace": "hate_speech",
         "score": 9, "frequency": 75.0, "winner": false, "positions": [{"start": 0, "end": 2}]},
        {"id": "1000", "label": "Personal Insult", "hierarchy": ["Personal Insult"], "namespace": "hate_speech",
         "score": 3, "frequency": 25.0, "winner": true, "positions": [{"start": 3, "end": 5}]}]});
    let found = HateSpeech::parse(&data).unwrap();
    assert_eq!(found.labels(), ["Personal Insult", "Threat and Violence"]);
    let group = |b: Option<Branch>| usize::from(b != Some(Branch::PersonalInsult));
    assert_eq!(found.winning::<2>(group), Some(0));
    assert_eq!(found.shares::<2>(group), [0.25, 0.75]);
    assert_eq!(found.terms("ab cd"), ["cd"]);
}

#[test]
fn failures_are_reported() {
    let v = json!({"success": false, "errors": [{"code": "UNAUTHORIZED", "message": "no token"}]});
    let err = expertai::data(&v, "expert.ai").unwrap_err();
    assert!(err.contains("UNAUTHORIZED"), "{err}");
}
