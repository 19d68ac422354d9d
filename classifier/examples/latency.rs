//! Per-text latency of both models (not a test: prints measurements).
//!
//! ```sh
//! cargo run --release -p weir-classifier --example latency
//! ```
//!
//! Texts: the reference sentences (news headlines, tweets, edge cases).

use std::time::{Duration, Instant};

use weir_classifier::{hate::HateClassifier, vader::SentimentAnalyzer};

const ROUNDS: usize = 50;

fn texts() -> Vec<String> {
    include_str!("../data/reference/vader_reference.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("reference line");
            v["text"].as_str().expect("text").to_owned()
        })
        .collect()
}

/// Runs `f` on every text `ROUNDS` times; returns per-text durations of the last round set.
fn measure(texts: &[String], mut f: impl FnMut(&str)) -> Vec<Duration> {
    for t in texts {
        f(t); // warm-up
    }
    let mut samples = Vec::with_capacity(texts.len() * ROUNDS);
    for _ in 0..ROUNDS {
        for t in texts {
            let start = Instant::now();
            f(t);
            samples.push(start.elapsed());
        }
    }
    samples.sort();
    samples
}

fn report(name: &str, samples: &[Duration]) {
    let total: Duration = samples.iter().sum();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<10} n={:<6} mean {:>7.2} µs  p50 {:>7.2} µs  p99 {:>7.2} µs  max {:>8.2} µs  ({:.0} texts/s on one core)",
        samples.len(),
        total.as_secs_f64() * 1e6 / samples.len() as f64,
        pct(0.5).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6,
        samples.len() as f64 / total.as_secs_f64(),
    );
}

fn main() {
    let start = Instant::now();
    let vader = SentimentAnalyzer::default();
    let vader_load = start.elapsed();
    let start = Instant::now();
    let hate = HateClassifier::default();
    let hate_load = start.elapsed();
    println!(
        "load: vader lexicons {:.1} ms, hatesonar model {:.1} ms",
        vader_load.as_secs_f64() * 1e3,
        hate_load.as_secs_f64() * 1e3
    );

    let short = texts();
    // Tweet/paragraph-sized inputs: ten reference sentences joined.
    let long: Vec<String> = short.chunks(10).map(|c| c.join(" ")).collect();
    for (name, texts) in [("short", short), ("long", long)] {
        let mean_chars =
            texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / texts.len() as f64;
        println!(
            "{name}: {} texts, mean {mean_chars:.0} chars, {ROUNDS} rounds",
            texts.len()
        );
        report(
            "vader",
            &measure(&texts, |t| {
                std::hint::black_box(vader.polarity_scores(t));
            }),
        );
        report(
            "hatesonar",
            &measure(&texts, |t| {
                std::hint::black_box(hate.predict(t));
            }),
        );
    }
}
