//! Loading of the VADER 3.3.2 word and emoji lexicons.
//!
//! Parsing mirrors `SentimentIntensityAnalyzer.make_lex_dict` and
//! `make_emoji_dict` in vaderSentiment 3.3.2: lines are stripped, split on
//! tabs, the first two fields kept, and later duplicates win.

use std::collections::HashMap;

use super::pystr;

/// `vader_lexicon.txt` from vaderSentiment 3.3.2 (MIT, see `data/vader/LICENSE`).
pub const VADER_LEXICON: &str = include_str!("../../data/vader/vader_lexicon.txt");
/// `emoji_utf8_lexicon.txt` from vaderSentiment 3.3.2 (MIT, see `data/vader/LICENSE`).
pub const EMOJI_LEXICON: &str = include_str!("../../data/vader/emoji_utf8_lexicon.txt");

/// A malformed lexicon line.
#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    #[error("lexicon line {line}: expected at least two tab-separated fields")]
    MissingField { line: usize },
    #[error("lexicon line {line}: invalid valence {value:?}")]
    BadValence { line: usize, value: String },
}

/// Word valences and emoji descriptions.
#[derive(Debug, Clone)]
pub struct Lexicon {
    words: HashMap<String, f64>,
    /// Only single-character keys: vaderSentiment replaces emoji one code point
    /// at a time, so multi-code-point keys of the file can never match.
    emoji: HashMap<char, String>,
}

impl Lexicon {
    /// Parses lexicon texts in the vaderSentiment file formats.
    pub fn parse(lexicon: &str, emoji: &str) -> Result<Self, LexiconError> {
        let mut words = HashMap::new();
        for (n, line) in lines(lexicon) {
            if line.is_empty() {
                continue;
            }
            let (word, value) = two_fields(line, n)?;
            let valence = value.parse().map_err(|_| LexiconError::BadValence {
                line: n,
                value: value.to_owned(),
            })?;
            words.insert(word.to_owned(), valence);
        }
        let mut emojis = HashMap::new();
        for (n, line) in lines(emoji) {
            let (key, description) = two_fields(line, n)?;
            let mut chars = key.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                emojis.insert(c, description.to_owned());
            }
        }
        Ok(Self {
            words,
            emoji: emojis,
        })
    }

    /// The lexicons shipped with vaderSentiment 3.3.2, embedded in the binary.
    pub fn embedded() -> Self {
        Self::parse(VADER_LEXICON, EMOJI_LEXICON).expect("embedded VADER lexicons are well-formed")
    }

    /// Valence of a lowercase token, if it is a lexicon word.
    pub fn valence(&self, word: &str) -> Option<f64> {
        self.words.get(word).copied()
    }

    /// Whether a lowercase token is a lexicon word.
    pub fn contains(&self, word: &str) -> bool {
        self.words.contains_key(word)
    }

    /// Textual description of an emoji code point.
    pub fn emoji_description(&self, c: char) -> Option<&str> {
        self.emoji.get(&c).map(String::as_str)
    }

    /// Number of lexicon words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether the word lexicon is empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// `text.rstrip('\n').split('\n')`, each line `.strip()`ped, numbered from 1.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.trim_end_matches('\n')
        .split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, pystr::strip(line)))
}

fn two_fields(line: &str, n: usize) -> Result<(&str, &str), LexiconError> {
    let mut fields = line.split('\t');
    match (fields.next(), fields.next()) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(LexiconError::MissingField { line: n }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lexicons_load() {
        let lex = Lexicon::embedded();
        assert_eq!(lex.valence("good"), Some(1.9));
        assert_eq!(lex.valence("horrible"), Some(-2.5));
        assert!(lex.len() > 7000);
        assert_eq!(
            lex.emoji_description('😁'),
            Some("beaming face with smiling eyes")
        );
    }

    #[test]
    fn later_duplicates_win_and_bad_lines_are_reported() {
        let lex = Lexicon::parse("a\t1.0\t0\t[]\na\t2.0\t0\t[]\n\n", "x\tex\r\n").unwrap();
        assert_eq!(lex.valence("a"), Some(2.0));
        assert_eq!(lex.emoji_description('x'), Some("ex"));
        assert!(matches!(
            Lexicon::parse("a 1.0\n", "x\tex"),
            Err(LexiconError::MissingField { line: 1 })
        ));
        assert!(matches!(
            Lexicon::parse("a\tnope\n", "x\tex"),
            Err(LexiconError::BadValence { line: 1, .. })
        ));
    }
}
