//! Text preparation: emoji replacement and tokenisation (`SentiText` in 3.3.2).

use super::{lexicon::Lexicon, pystr};

/// Replaces each emoji code point by its lexicon description, as
/// `polarity_scores` does, then strips surrounding whitespace.
pub fn replace_emoji(text: &str, lexicon: &Lexicon) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_space = true;
    for c in text.chars() {
        if let Some(description) = lexicon.emoji_description(c) {
            if !prev_space {
                out.push(' ');
            }
            out.push_str(description);
            prev_space = false;
        } else {
            out.push(c);
            prev_space = c == ' ';
        }
    }
    pystr::strip(&out).to_owned()
}

/// Tokens of a text with the properties the rules look at.
#[derive(Debug)]
pub struct SentiText<'a> {
    /// Whitespace-separated tokens, leading/trailing punctuation removed
    /// unless that would leave two characters or fewer (emoticons).
    pub words: Vec<&'a str>,
    /// The same tokens lowercased.
    pub lower: Vec<String>,
    /// Whether some, but not all, tokens are ALL CAPS.
    pub is_cap_diff: bool,
}

impl<'a> SentiText<'a> {
    pub fn new(text: &'a str) -> Self {
        let words: Vec<&str> = pystr::split(text).map(strip_punc_if_word).collect();
        let lower = words.iter().map(|w| pystr::lower(w)).collect();
        let is_cap_diff = allcap_differential(&words);
        Self {
            words,
            lower,
            is_cap_diff,
        }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }
}

/// `SentiText._strip_punc_if_word`.
fn strip_punc_if_word(token: &str) -> &str {
    let stripped = pystr::strip_punctuation(token);
    if stripped.chars().count() <= 2 {
        token
    } else {
        stripped
    }
}

/// `allcap_differential`: true if some but not all words are ALL CAPS.
fn allcap_differential(words: &[&str]) -> bool {
    let allcap = words.iter().filter(|w| pystr::is_upper(w)).count();
    let differential = words.len() - allcap;
    0 < differential && differential < words.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_emoticons_and_strips_words() {
        let st = SentiText::new("Wow!!! :) (great) ok.");
        assert_eq!(st.words, ["Wow", ":)", "great", "ok."]);
        assert!(!st.is_cap_diff);
        assert!(SentiText::new("GREAT day").is_cap_diff);
        assert!(!SentiText::new("GREAT DAY").is_cap_diff);
    }

    #[test]
    fn emoji_become_descriptions() {
        let lex = Lexicon::embedded();
        assert_eq!(
            replace_emoji("ok😁", &lex),
            "ok beaming face with smiling eyes"
        );
        assert_eq!(
            replace_emoji("😁 ok", &lex),
            "beaming face with smiling eyes ok"
        );
    }
}
