//! Per-token valence: `sentiment_valence` and the checks it calls in
//! vaderSentiment 3.3.2 (negation, boosters, caps emphasis, "no", "least",
//! special-case idioms).

use super::{
    lexicon::Lexicon,
    rules::{self, C_INCR, N_SCALAR},
    text::SentiText,
};

/// Valence of token `i` (0.0 for non-lexicon tokens), before the "but" rule.
pub fn token_valence(lexicon: &Lexicon, st: &SentiText<'_>, i: usize) -> f64 {
    let item = st.words[i];
    let lower = &st.lower;
    let Some(base) = lexicon.valence(&lower[i]) else {
        return 0.0;
    };
    let mut valence = base;
    let n = st.len();

    // "no" directly before a lexicon word negates it instead of scoring itself.
    if lower[i] == "no" && i != n - 1 && lexicon.contains(&lower[i + 1]) {
        valence = 0.0;
    }
    if (i > 0 && lower[i - 1] == "no")
        || (i > 1 && lower[i - 2] == "no")
        || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
    {
        valence = base * N_SCALAR;
    }

    // ALL CAPS emphasis amid non-caps words.
    if super::pystr::is_upper(item) && st.is_cap_diff {
        if valence > 0.0 {
            valence += C_INCR;
        } else {
            valence -= C_INCR;
        }
    }

    for start_i in 0..3 {
        // Preceding non-lexicon words may boost, dampen or negate, with
        // weight decreasing with distance.
        if i > start_i && !lexicon.contains(&lower[i - (start_i + 1)]) {
            let mut s = rules::scalar_inc_dec(st.words[i - (start_i + 1)], valence, st.is_cap_diff);
            if start_i == 1 && s != 0.0 {
                s *= 0.95;
            }
            if start_i == 2 && s != 0.0 {
                s *= 0.9;
            }
            valence += s;
            valence = negation_check(valence, lower, start_i, i);
            if start_i == 2 {
                valence = special_idioms_check(valence, lower, i);
            }
        }
    }
    least_check(valence, lexicon, lower, i)
}

/// `_negation_check`.
fn negation_check(valence: f64, lower: &[String], start_i: usize, i: usize) -> f64 {
    let w = |k: usize| lower[i - k].as_str();
    match start_i {
        0 if rules::negated(w(1)) => valence * N_SCALAR,
        1 if w(2) == "never" && (w(1) == "so" || w(1) == "this") => valence * 1.25,
        1 if w(2) == "without" && w(1) == "doubt" => valence,
        1 if rules::negated(w(2)) => valence * N_SCALAR,
        // Python: `a and (b or c) or (d or e)` — the "so"/"this" test right
        // before the word applies even without "never".
        2 if (w(3) == "never" && (w(2) == "so" || w(2) == "this"))
            || (w(1) == "so" || w(1) == "this") =>
        {
            valence * 1.25
        }
        2 if w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt") => valence,
        2 if rules::negated(w(3)) => valence * N_SCALAR,
        _ => valence,
    }
}

/// `_least_check`: "least" before a word negates it, except "at least" and "very least".
fn least_check(valence: f64, lexicon: &Lexicon, lower: &[String], i: usize) -> f64 {
    if i > 1 && !lexicon.contains(&lower[i - 1]) && lower[i - 1] == "least" {
        if lower[i - 2] != "at" && lower[i - 2] != "very" {
            return valence * N_SCALAR;
        }
    } else if i > 0 && !lexicon.contains(&lower[i - 1]) && lower[i - 1] == "least" {
        return valence * N_SCALAR;
    }
    valence
}

/// `_special_idioms_check` (only reached for `i >= 3`).
fn special_idioms_check(mut valence: f64, lower: &[String], i: usize) -> f64 {
    let join = |ks: &[usize]| {
        ks.iter()
            .map(|&k| lower[k].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let onezero = join(&[i - 1, i]);
    let twoonezero = join(&[i - 2, i - 1, i]);
    let twoone = join(&[i - 2, i - 1]);
    let threetwoone = join(&[i - 3, i - 2, i - 1]);
    let threetwo = join(&[i - 3, i - 2]);

    for seq in [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo] {
        if let Some(v) = rules::special_case(seq) {
            valence = v;
            break;
        }
    }
    if lower.len() - 1 > i
        && let Some(v) = rules::special_case(&join(&[i, i + 1]))
    {
        valence = v;
    }
    if lower.len() - 1 > i + 1
        && let Some(v) = rules::special_case(&join(&[i, i + 1, i + 2]))
    {
        valence = v;
    }
    // Multi-word boosters/dampeners such as "kind of" and "sort of".
    for ngram in [&threetwoone, &threetwo, &twoone] {
        if let Some(b) = rules::booster(ngram) {
            valence += b;
        }
    }
    valence
}
