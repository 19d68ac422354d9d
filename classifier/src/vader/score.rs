//! Aggregation of token valences into VADER's scores: the "but" rule,
//! punctuation emphasis and `score_valence` of vaderSentiment 3.3.2.

use super::{PolarityScores, rules};

/// `_but_check`: halves valences before the first "but" and boosts those after by 1.5.
///
/// Reproduces the Python loop exactly, including its quirk: each value is
/// located with `list.index`, i.e. the *first* equal value is rewritten, so
/// repeated valences can be scaled more than once or not at all.
pub fn but_check(lower: &[String], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let sentiment = sentiments[k];
        let si = sentiments
            .iter()
            .position(|&s| s == sentiment)
            .expect("value comes from the list");
        if si < bi {
            sentiments[si] = sentiment * 0.5;
        } else if si > bi {
            sentiments[si] = sentiment * 1.5;
        }
    }
}

/// `_punctuation_emphasis`: up to four '!' and two or more '?' amplify the sum.
fn punctuation_emphasis(text: &str) -> f64 {
    let ep_count = text.chars().filter(|&c| c == '!').count().min(4);
    let ep_amplifier = ep_count as f64 * 0.292;
    let qm_count = text.chars().filter(|&c| c == '?').count();
    let qm_amplifier = match qm_count {
        0 | 1 => 0.0,
        2 | 3 => qm_count as f64 * 0.18,
        _ => 0.96,
    };
    ep_amplifier + qm_amplifier
}

/// `score_valence` before its final rounding.
pub fn score_valence(sentiments: &[f64], text: &str) -> PolarityScores {
    if sentiments.is_empty() {
        return PolarityScores::default();
    }
    // CPython 3.11 `sum()`: plain left-to-right addition.
    let mut sum_s: f64 = sentiments.iter().fold(0.0, |acc, &s| acc + s);
    let punct = punctuation_emphasis(text);
    if sum_s > 0.0 {
        sum_s += punct;
    } else if sum_s < 0.0 {
        sum_s -= punct;
    }
    let compound = rules::normalize(sum_s);

    let (mut pos_sum, mut neg_sum, mut neu_count) = (0.0_f64, 0.0_f64, 0_u32);
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0; // compensates for neutral words counted as 1
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neu_count += 1;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += punct;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= punct;
    }
    let neu_count = f64::from(neu_count);
    let total = pos_sum + neg_sum.abs() + neu_count;
    PolarityScores {
        neg: (neg_sum / total).abs(),
        neu: (neu_count / total).abs(),
        pos: (pos_sum / total).abs(),
        compound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn but_scales_both_sides() {
        let mut s = vec![1.0, 0.0, 2.0];
        but_check(&words("good but great"), &mut s);
        assert_eq!(s, [0.5, 0.0, 3.0]);
    }

    #[test]
    fn but_reproduces_the_list_index_quirk() {
        // vaderSentiment 3.3.2 returns [0.5, 0.5, 0.0, 1.0] here: 2 is halved
        // to 1.0; the second value (1) then finds that 1.0 at index 0 and
        // halves it again; the last 1 finds index 1 (before "but") and halves
        // it, so the word after "but" is never boosted.
        let mut s = vec![2.0, 1.0, 0.0, 1.0];
        but_check(&words("a b but c"), &mut s);
        assert_eq!(s, [0.5, 0.5, 0.0, 1.0]);
    }

    #[test]
    fn punctuation_is_capped() {
        assert_eq!(punctuation_emphasis("wow!!!!!!!!"), 4.0 * 0.292);
        assert_eq!(punctuation_emphasis("what?"), 0.0);
        assert_eq!(punctuation_emphasis("what??"), 2.0 * 0.18);
        assert_eq!(punctuation_emphasis("what?????"), 0.96);
    }
}
