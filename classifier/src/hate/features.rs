//! Tokenisation and TF-IDF features, as hatesonar's ONNX graph computes them.
//!
//! The graph lowercases with `StringNormalizer` (one `towlower` per code
//! point), tokenises with the regex `[a-zA-Z0-9_]+` (ASCII only, 1-character
//! tokens kept), counts unigrams (`TfIdfVectorizer`, mode TF), multiplies by
//! the idf (`Mul`) and L2-normalises (`Normalizer`), all in float32. The
//! arithmetic below follows onnxruntime's kernels operation by operation so
//! that results are bit-identical.

use std::collections::BTreeMap;

use super::model::{LinearModel, Term};

/// A token with its position in the original text (in characters, end exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// One-to-one lowercase mapping of a code point, as glibc's `towlower`.
///
/// `char::to_lowercase` can expand (U+0130 'İ' -> "i̇"); `towlower` cannot and
/// maps U+0130 to 'i'. Only results in ASCII matter for the ASCII tokenizer.
fn lower_char(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Lowercases and splits `text` into maximal runs of `[a-z0-9_]`.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut pos = 0;
    for c in text.chars() {
        let l = lower_char(c);
        if is_token_char(l) {
            if current.is_empty() {
                start = pos;
            }
            current.push(l);
        } else if !current.is_empty() {
            tokens.push(Token {
                text: std::mem::take(&mut current),
                start,
                end: pos,
            });
        }
        pos += 1;
    }
    if !current.is_empty() {
        tokens.push(Token {
            text: current,
            start,
            end: pos,
        });
    }
    tokens
}

/// A non-zero entry of the normalised TF-IDF vector.
#[derive(Debug, Clone, Copy)]
pub struct Feature<'a> {
    /// The token text (as found in the text, lowercased).
    pub text: &'a str,
    pub term: &'a Term,
    pub value: f32,
}

/// The L2-normalised TF-IDF vector of `tokens`, sparse, in feature-index order.
pub fn tfidf<'a>(model: &'a LinearModel, tokens: &'a [Token]) -> Vec<Feature<'a>> {
    let mut counts: BTreeMap<u32, (&'a str, &'a Term, u32)> = BTreeMap::new();
    for token in tokens {
        if let Some(term) = model.term(&token.text) {
            counts.entry(term.index).or_insert((&token.text, term, 0)).2 += 1;
        }
    }
    // Mul(tf, idf), then Normalizer L2: out = sqrt(x² / Σx²), summing in
    // index order (onnxruntime adds the zero entries too, which is exact).
    let weighted: Vec<(&str, &Term, f32)> = counts
        .into_values()
        .map(|(text, term, count)| (text, term, count as f32 * term.idf))
        .collect();
    let sum: f32 = weighted.iter().fold(0.0, |acc, &(_, _, x)| acc + x * x);
    weighted
        .into_iter()
        .map(|(text, term, x)| {
            let value = if sum != 0.0 {
                // x >= 0 always: counts and idf are positive.
                (x * x / sum).sqrt()
            } else {
                x
            };
            Feature { text, term, value }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(tokens: &[Token]) -> Vec<&str> {
        tokens.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn ascii_runs_with_character_offsets() {
        let t = tokenize("Héllo, WORLD_1 x!");
        assert_eq!(texts(&t), ["h", "llo", "world_1", "x"]);
        assert_eq!((t[2].start, t[2].end), (7, 14));
        assert_eq!(texts(&tokenize("")), Vec::<&str>::new());
    }

    #[test]
    fn lowercasing_is_per_code_point() {
        assert_eq!(
            texts(&tokenize("\u{130}diot \u{212a}ill")),
            ["idiot", "kill"]
        );
        let t = tokenize("😀 bitch");
        assert_eq!((t[0].start, t[0].end), (2, 7));
    }
}
