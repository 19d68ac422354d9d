//! Parity of the Rust hatesonar implementation with the Python package.
//!
//! `data/reference/hatesonar_reference.jsonl` holds `Sonar.ping` results of
//! hatesonar 0.1.0 (onnxruntime, float32), recorded by
//! `scripts/export_hatesonar.py`.

use serde::Deserialize;
use weir_classifier::hate::{HateClassifier, HateLabel};

const REFERENCE: &str = include_str!("../data/reference/hatesonar_reference.jsonl");
const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Scores {
    hate: f64,
    offensive: f64,
    neither: f64,
}

#[derive(Deserialize)]
struct Record {
    text: String,
    label: HateLabelName,
    scores: Scores,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum HateLabelName {
    Hate,
    Offensive,
    Neither,
}

impl From<HateLabel> for HateLabelName {
    fn from(l: HateLabel) -> Self {
        match l {
            HateLabel::Hate => Self::Hate,
            HateLabel::Offensive => Self::Offensive,
            HateLabel::Neither => Self::Neither,
        }
    }
}

#[test]
fn matches_hatesonar_0_1_0() {
    let classifier = HateClassifier::default();
    let records: Vec<Record> = REFERENCE
        .lines()
        .map(|l| serde_json::from_str(l).expect("reference line parses"))
        .collect();
    assert!(
        records.len() >= 300,
        "reference set too small: {}",
        records.len()
    );

    let mut worst = 0.0_f64;
    let mut bit_exact = 0;
    let mut failures = Vec::new();
    let mut labels = [0usize; 3];
    for r in &records {
        let p = classifier.predict(&r.text);
        let diff = [
            (p.scores.hate - r.scores.hate).abs(),
            (p.scores.offensive - r.scores.offensive).abs(),
            (p.scores.neither - r.scores.neither).abs(),
        ]
        .into_iter()
        .fold(0.0, f64::max);
        worst = worst.max(diff);
        // The package computes in float32; compare at that precision too
        // (the f64 reading of the reference file may be off by an f64 ulp).
        let as_f32 = |x: f64| x as f32;
        if [
            (p.scores.hate, r.scores.hate),
            (p.scores.offensive, r.scores.offensive),
            (p.scores.neither, r.scores.neither),
        ]
        .iter()
        .all(|&(a, b)| as_f32(a).to_bits() == as_f32(b).to_bits())
        {
            bit_exact += 1;
        }
        labels[r.label as usize] += 1;
        if diff > TOLERANCE || HateLabelName::from(p.label) != r.label {
            failures.push(format!(
                "{:?}: rust {:?} {:?}; python {:?} {} {} {}",
                r.text,
                p.label,
                p.scores,
                r.label,
                r.scores.hate,
                r.scores.offensive,
                r.scores.neither
            ));
        }
    }
    println!(
        "hatesonar parity: {} texts (hate {}, offensive {}, neither {}), max abs diff {worst:e}, \
         {bit_exact} bit-identical at float32",
        records.len(),
        labels[0],
        labels[1],
        labels[2]
    );
    // The set must exercise every class, or parity would prove little.
    assert!(labels.iter().all(|&n| n >= 20), "class coverage {labels:?}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
