//! Parity of the Rust VADER port with vaderSentiment 3.3.2.
//!
//! `data/reference/vader_reference.jsonl` was produced by
//! `scripts/gen_vader_reference.py` with the Python package: for each text the
//! public (rounded) scores and the unrounded ones.

use serde::Deserialize;
use weir_classifier::vader::{PolarityScores, SentimentAnalyzer};

const REFERENCE: &str = include_str!("../data/reference/vader_reference.jsonl");
const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Scores {
    neg: f64,
    neu: f64,
    pos: f64,
    compound: f64,
}

#[derive(Deserialize)]
struct Record {
    text: String,
    neg: f64,
    neu: f64,
    pos: f64,
    compound: f64,
    raw: Scores,
}

fn max_diff(ours: &PolarityScores, neg: f64, neu: f64, pos: f64, compound: f64) -> f64 {
    [
        (ours.neg - neg).abs(),
        (ours.neu - neu).abs(),
        (ours.pos - pos).abs(),
        (ours.compound - compound).abs(),
    ]
    .into_iter()
    .fold(0.0, f64::max)
}

#[test]
fn matches_vader_sentiment_3_3_2() {
    let vader = SentimentAnalyzer::default();
    let records: Vec<Record> = REFERENCE
        .lines()
        .map(|l| serde_json::from_str(l).expect("reference line parses"))
        .collect();
    assert!(
        records.len() >= 300,
        "reference set too small: {}",
        records.len()
    );

    let (mut worst_public, mut worst_raw) = (0.0_f64, 0.0_f64);
    let mut failures = Vec::new();
    for r in &records {
        let a = vader.analyze(&r.text);
        let public = max_diff(&a.scores, r.neg, r.neu, r.pos, r.compound);
        let raw = max_diff(&a.raw, r.raw.neg, r.raw.neu, r.raw.pos, r.raw.compound);
        worst_public = worst_public.max(public);
        worst_raw = worst_raw.max(raw);
        if public > TOLERANCE || raw > TOLERANCE {
            failures.push(format!(
                "{:?}: rust {:?} / raw {:?}; python {} {} {} {} / raw {} {} {} {}",
                r.text,
                a.scores,
                a.raw,
                r.neg,
                r.neu,
                r.pos,
                r.compound,
                r.raw.neg,
                r.raw.neu,
                r.raw.pos,
                r.raw.compound
            ));
        }
    }
    println!(
        "vader parity: {} texts, max abs diff {worst_public:e} (rounded), {worst_raw:e} (unrounded)",
        records.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
