//! Hand-labelled sentences (`data/labelled/*.jsonl`).
//!
//! Every case without a `known_miss` note must get its expected label. Known
//! misses document the models' limits (sarcasm, hate without slurs, reclaimed
//! or quoted slurs...); they must still be misses, so the notes stay truthful.

use serde::Deserialize;
use weir_classifier::{hate::HateClassifier, vader::SentimentAnalyzer};

#[derive(Deserialize)]
struct Case {
    text: String,
    label: String,
    clear: bool,
    known_miss: Option<String>,
}

fn cases(jsonl: &str) -> Vec<Case> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("labelled line parses"))
        .collect()
}

fn check(name: &str, cases: &[Case], predict: impl Fn(&str) -> String) {
    let mut failures = Vec::new();
    let (mut clear, mut clear_ok, mut hard, mut hard_ok) = (0, 0, 0, 0);
    for case in cases {
        let got = predict(&case.text);
        let ok = got == case.label;
        if case.clear {
            clear += 1;
            clear_ok += usize::from(ok);
        } else {
            hard += 1;
            hard_ok += usize::from(ok);
        }
        match (&case.known_miss, ok) {
            (None, false) => failures.push(format!(
                "{:?}: expected {}, got {got}",
                case.text, case.label
            )),
            (Some(note), true) => failures.push(format!(
                "{:?}: listed as a known miss ({note}) but now correct: update the data file",
                case.text
            )),
            _ => {}
        }
    }
    println!("{name}: clear cases {clear_ok}/{clear} correct, hard cases {hard_ok}/{hard}");
    assert!(
        clear >= 30,
        "{name}: want at least 30 clear cases, have {clear}"
    );
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

#[test]
fn sentiment_labels() {
    let vader = SentimentAnalyzer::default();
    check(
        "sentiment",
        &cases(include_str!("../data/labelled/sentiment.jsonl")),
        |t| {
            serde_json::to_value(vader.polarity_scores(t).label())
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        },
    );
}

#[test]
fn hate_labels() {
    let classifier = HateClassifier::default();
    check(
        "hate",
        &cases(include_str!("../data/labelled/hate.jsonl")),
        |t| {
            serde_json::to_value(classifier.predict(t).label)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        },
    );
}
