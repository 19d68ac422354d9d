//! The Python `str` semantics that VADER 3.3.2 relies on.
//!
//! vaderSentiment tokenises with `str.split()`, trims with `str.strip()` and
//! `str.strip(string.punctuation)`, and detects emphasis with `str.isupper()`.
//! Rust's own notions differ at the edges (e.g. `char::is_whitespace` does not
//! treat U+001C..U+001F as whitespace, and there is no titlecase check), so the
//! port uses these helpers to keep parity with CPython.

/// `str.isspace()` for one character (CPython: bidi class WS, B or S, or category Zs).
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{1f}'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// `str.split()` without arguments: runs of whitespace separate, empty pieces are dropped.
pub fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|piece| !piece.is_empty())
}

/// `str.strip()` without arguments.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `str.strip(string.punctuation)`: ASCII punctuation off both ends.
pub fn strip_punctuation(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_punctuation())
}

/// `str.lower()` (full case mapping, final sigma included).
pub fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// `str.isupper()`: no lowercase or titlecase character and at least one uppercase one.
pub fn is_upper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Unicode general category Lt (titlecase letters); Rust's std has no query for it.
fn is_titlecase(c: char) -> bool {
    matches!(
        c,
        '\u{1c5}'
            | '\u{1c8}'
            | '\u{1cb}'
            | '\u{1f2}'
            | '\u{1f88}'..='\u{1f8f}'
            | '\u{1f98}'..='\u{1f9f}'
            | '\u{1fa8}'..='\u{1faf}'
            | '\u{1fbc}'
            | '\u{1fcc}'
            | '\u{1ffc}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_uses_python_whitespace() {
        let words: Vec<_> = split("a\u{1c}b\u{a0}c\u{3000} d\t\n").collect();
        assert_eq!(words, ["a", "b", "c", "d"]);
        assert_eq!(split(" \t ").count(), 0);
    }

    #[test]
    fn isupper_matches_python() {
        assert!(is_upper("GOOD"));
        assert!(is_upper("GOOD!!"));
        assert!(is_upper("A1"));
        assert!(!is_upper("Good"));
        assert!(!is_upper("123"));
        assert!(!is_upper(":)"));
        assert!(!is_upper("A\u{1c5}")); // a titlecase letter makes it false
        assert!(is_upper("ΣΟΦΟΣ"));
    }

    #[test]
    fn strips_ascii_punctuation_only() {
        assert_eq!(strip_punctuation("«hi»!!"), "«hi»");
        assert_eq!(strip_punctuation("--good--"), "good");
        assert_eq!(strip_punctuation(":)"), "");
    }
}
