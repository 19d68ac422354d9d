//! Constants and word lists of VADER 3.3.2 (`vaderSentiment/vaderSentiment.py`).
//!
//! Values and lists are those of the Python module; the helper functions
//! reproduce `negated`, `normalize` and `scalar_inc_dec` there.

use super::pystr;

/// Empirically derived mean sentiment intensity increase for booster words.
pub const B_INCR: f64 = 0.293;
/// Empirically derived mean sentiment intensity decrease for dampener words.
pub const B_DECR: f64 = -0.293;
/// Intensity increase for a word in ALL CAPS amid non-caps words.
pub const C_INCR: f64 = 0.733;
/// Scalar applied to a negated valence.
pub const N_SCALAR: f64 = -0.74;
/// `normalize` alpha: approximates the maximum expected raw score.
pub const NORMALIZE_ALPHA: f64 = 15.0;

/// Whether a lowercase word is in VADER's `NEGATE` list.
pub fn is_negation_word(word: &str) -> bool {
    matches!(
        word,
        "aint"
            | "arent"
            | "cannot"
            | "cant"
            | "couldnt"
            | "darent"
            | "didnt"
            | "doesnt"
            | "ain't"
            | "aren't"
            | "can't"
            | "couldn't"
            | "daren't"
            | "didn't"
            | "doesn't"
            | "dont"
            | "hadnt"
            | "hasnt"
            | "havent"
            | "isnt"
            | "mightnt"
            | "mustnt"
            | "neither"
            | "don't"
            | "hadn't"
            | "hasn't"
            | "haven't"
            | "isn't"
            | "mightn't"
            | "mustn't"
            | "neednt"
            | "needn't"
            | "never"
            | "none"
            | "nope"
            | "nor"
            | "not"
            | "nothing"
            | "nowhere"
            | "oughtnt"
            | "shant"
            | "shouldnt"
            | "uhuh"
            | "wasnt"
            | "werent"
            | "oughtn't"
            | "shan't"
            | "shouldn't"
            | "uh-uh"
            | "wasn't"
            | "weren't"
            | "without"
            | "wont"
            | "wouldnt"
            | "won't"
            | "wouldn't"
            | "rarely"
            | "seldom"
            | "despite"
    )
}

/// `negated([word])`: a `NEGATE` word, or any word containing "n't".
pub fn negated(word_lower: &str) -> bool {
    is_negation_word(word_lower) || word_lower.contains("n't")
}

/// VADER's `BOOSTER_DICT`: intensifiers (`B_INCR`) and dampeners (`B_DECR`).
///
/// The multi-word keys ("kind of", "sort of", "just enough") only ever match
/// in the idiom check, which joins neighbouring tokens with a space.
pub fn booster(word_lower: &str) -> Option<f64> {
    match word_lower {
        "absolutely" | "amazingly" | "awfully" | "completely" | "considerable" | "considerably"
        | "decidedly" | "deeply" | "effing" | "enormous" | "enormously" | "entirely"
        | "especially" | "exceptional" | "exceptionally" | "extreme" | "extremely"
        | "fabulously" | "flipping" | "flippin" | "frackin" | "fracking" | "fricking"
        | "frickin" | "frigging" | "friggin" | "fully" | "fuckin" | "fucking" | "fuggin"
        | "fugging" | "greatly" | "hella" | "highly" | "hugely" | "incredible" | "incredibly"
        | "intensely" | "major" | "majorly" | "more" | "most" | "particularly" | "purely"
        | "quite" | "really" | "remarkably" | "so" | "substantially" | "thoroughly" | "total"
        | "totally" | "tremendous" | "tremendously" | "uber" | "unbelievably" | "unusually"
        | "utter" | "utterly" | "very" => Some(B_INCR),
        "almost" | "barely" | "hardly" | "just enough" | "kind of" | "kinda" | "kindof"
        | "kind-of" | "less" | "little" | "marginal" | "marginally" | "occasional"
        | "occasionally" | "partly" | "scarce" | "scarcely" | "slight" | "slightly"
        | "somewhat" | "sort of" | "sorta" | "sortof" | "sort-of" => Some(B_DECR),
        _ => None,
    }
}

/// VADER's `SPECIAL_CASES`: idioms and phrases that override a word's valence.
pub fn special_case(phrase: &str) -> Option<f64> {
    match phrase {
        "the shit" | "the bomb" => Some(3.0),
        "bad ass" | "badass" => Some(1.5),
        "bus stop" => Some(0.0),
        "yeah right" => Some(-2.0),
        "kiss of death" => Some(-1.5),
        "to die for" => Some(3.0),
        "beating heart" => Some(3.5),
        _ => None,
    }
}

/// `normalize(score, alpha=15)`: squashes a raw sum into [-1, 1].
pub fn normalize(score: f64) -> f64 {
    let norm = score / (score * score + NORMALIZE_ALPHA).sqrt();
    norm.clamp(-1.0, 1.0)
}

/// `scalar_inc_dec`: the boost a preceding booster/dampener word gives `valence`.
pub fn scalar_inc_dec(word: &str, valence: f64, is_cap_diff: bool) -> f64 {
    let Some(mut scalar) = booster(&pystr::lower(word)) else {
        return 0.0;
    };
    if valence < 0.0 {
        scalar *= -1.0;
    }
    if pystr::is_upper(word) && is_cap_diff {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negation_includes_contractions() {
        assert!(negated("not"));
        assert!(negated("wouldn't"));
        assert!(negated("shouldn't've"));
        assert!(!negated("note"));
    }

    #[test]
    fn boosters_follow_sign_and_caps() {
        assert_eq!(scalar_inc_dec("very", 2.0, false), B_INCR);
        assert_eq!(scalar_inc_dec("very", -2.0, false), -B_INCR);
        assert_eq!(scalar_inc_dec("VERY", 2.0, true), B_INCR + C_INCR);
        assert_eq!(scalar_inc_dec("kinda", 2.0, false), B_DECR);
        assert_eq!(scalar_inc_dec("table", 2.0, true), 0.0);
    }

    #[test]
    fn normalize_is_bounded() {
        assert_eq!(normalize(0.0), 0.0);
        assert!(normalize(1e9) <= 1.0 && normalize(-1e9) >= -1.0);
    }
}
