//! One pass over decoded text: drops URLs and @mentions, collapses
//! whitespace, trims, and optionally drops a leading retweet marker.

/// What [`clean_tokens`] removes besides URLs and mentions.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Drop a leading `RT` word (the retweet marker of old-style retweets,
    /// `RT @user: text`), which is noise once the mention is gone.
    pub strip_rt: bool,
}

/// Writes `text` to `out` without URLs and mentions, with every run of
/// whitespace collapsed to one space and both ends trimmed.
///
/// * URL: `http://`, `https://` or `www.` (any case) at a word start, up to
///   the next whitespace, `"`, `<` or `>`; trailing `.,;:!?'` and an
///   unbalanced `)`/`]` stay, as they are usually sentence punctuation.
/// * Mention: `@` + ASCII letters, digits and `_`, not preceded by a
///   letter, digit or one of `_!#$%&*` (so `bob@example.com` stays);
///   `@a@b` is two mentions. A `:` right after a mention goes with it.
pub fn clean_tokens(text: &str, options: Options, out: &mut String) {
    let mut prev: Option<char> = None;
    let mut after_mention = false;
    let mut pending_space = false;
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        let rest = &text[i..];
        if c.is_whitespace() {
            pending_space = true;
            after_mention = false;
            prev = Some(c);
            i += c.len_utf8();
            continue;
        }
        if url_may_start_after(prev)
            && let Some(len) = url_len(rest)
        {
            prev = rest[..len].chars().next_back();
            after_mention = false;
            i += len;
            continue;
        }
        if c == '@'
            && (after_mention || mention_may_start_after(prev))
            && let Some(mut len) = mention_len(rest)
        {
            if rest[len..].starts_with(':') {
                len += 1;
            }
            prev = rest[..len].chars().next_back();
            after_mention = true;
            i += len;
            continue;
        }
        after_mention = false;
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
        prev = Some(c);
        i += c.len_utf8();
        // Fast path: inside a run of ASCII letters and digits nothing can
        // start (URLs and mentions need a word boundary), so copy it whole.
        if c.is_ascii_alphanumeric() {
            let run = text.as_bytes()[i..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if run > 0 {
                out.push_str(&text[i..i + run]);
                prev = Some(char::from(text.as_bytes()[i + run - 1]));
                i += run;
            }
        }
    }
    if options.strip_rt {
        strip_retweet_marker(out);
    }
}

/// Removes leading `RT` words (`RT @a: RT @b: text` nests them).
fn strip_retweet_marker(out: &mut String) {
    let mut start = 0;
    loop {
        let rest = &out[start..];
        if rest == "RT" {
            start = out.len();
        } else if rest.starts_with("RT ") {
            start += 3;
            continue;
        }
        break;
    }
    out.drain(..start);
}

fn url_may_start_after(prev: Option<char>) -> bool {
    prev.is_none_or(|p| !(p.is_alphanumeric() || matches!(p, '_' | '@' | '.' | '/' | '-')))
}

fn mention_may_start_after(prev: Option<char>) -> bool {
    prev.is_none_or(|p| {
        !(p.is_alphanumeric() || matches!(p, '_' | '!' | '#' | '$' | '%' | '&' | '*' | '@'))
    })
}

/// Length of the URL at the start of `s`, if one starts there.
fn url_len(s: &str) -> Option<usize> {
    let scheme = ["https://", "http://", "www."].into_iter().find(|p| {
        s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    })?;
    let mut len = s
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || matches!(c, '"' | '<' | '>'))
        .map_or(s.len(), |(at, _)| at);
    // `www.` alone is not a URL ("the www. prefix"); a bare scheme is junk.
    if scheme == "www." && len == scheme.len() {
        return None;
    }
    // Hand trailing punctuation back to the sentence.
    while let Some(last) = s[..len].chars().next_back() {
        let trailing = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' => true,
            ')' => s[..len].matches('(').count() < s[..len].matches(')').count(),
            ']' => s[..len].matches('[').count() < s[..len].matches(']').count(),
            _ => false,
        };
        if !trailing || len <= scheme.len() {
            break;
        }
        len -= last.len_utf8();
    }
    Some(len)
}

/// Length of the mention at the start of `s` (which begins with `@`).
fn mention_len(s: &str) -> Option<usize> {
    let name = s[1..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    (name > 0).then_some(1 + name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(text: &str) -> String {
        let mut out = String::new();
        clean_tokens(text, Options { strip_rt: true }, &mut out);
        out
    }

    #[test]
    fn whitespace_collapses_and_trims() {
        assert_eq!(clean("  a \t\n b\u{A0}\u{2003}c  "), "a b c");
        assert_eq!(clean(" \n\t "), "");
    }

    #[test]
    fn urls_anywhere() {
        assert_eq!(clean("http://a.com start"), "start");
        assert_eq!(clean("mid https://t.co/AbC123 mid"), "mid mid");
        assert_eq!(
            clean("at the end www.example.org/path?q=1&r=2"),
            "at the end"
        );
        assert_eq!(clean("CAPS HTTPS://X.COM"), "CAPS");
        assert_eq!(clean("truncated https://t.co/ab…"), "truncated");
    }

    #[test]
    fn url_punctuation_goes_back_to_the_sentence() {
        assert_eq!(clean("see https://x.com/a."), "see .");
        assert_eq!(clean("(see https://x.com/a)"), "(see )");
        assert_eq!(
            clean("wiki https://en.wikipedia.org/wiki/Rust_(language) ok"),
            "wiki ok"
        );
    }

    #[test]
    fn url_ends_at_quotes_and_angle_brackets() {
        assert_eq!(clean("\"https://x.com\" <https://y.com>"), "\"\" <>");
    }

    #[test]
    fn not_urls() {
        assert_eq!(clean("awww.so cute"), "awww.so cute");
        assert_eq!(clean("the www. prefix"), "the www. prefix");
        assert_eq!(clean("bob@www.example.com"), "bob@www.example.com");
        assert_eq!(clean("http:/broken"), "http:/broken");
    }

    #[test]
    fn mentions() {
        assert_eq!(clean("@alice hi"), "hi");
        assert_eq!(clean("hi @bob_99!"), "hi !");
        assert_eq!(clean(".@jack thanks"), ". thanks");
        assert_eq!(clean("😀@emoji_friend yay"), "😀 yay");
    }

    #[test]
    fn adjacent_mentions() {
        assert_eq!(clean("@a @b @c hello"), "hello");
        assert_eq!(clean("@a@b hello"), "hello");
        assert_eq!(clean("cc:@a,@b"), "cc:,");
    }

    #[test]
    fn emails_and_lone_ats_are_not_mentions() {
        assert_eq!(
            clean("mail bob@example.com now"),
            "mail bob@example.com now"
        );
        assert_eq!(clean("first.last@ex.co"), "first.last@ex.co");
        assert_eq!(clean("meet @ 5"), "meet @ 5");
        assert_eq!(clean("#@tag"), "#@tag");
    }

    #[test]
    fn retweet_marker() {
        assert_eq!(clean("RT @user: the tweet"), "the tweet");
        assert_eq!(clean("RT @a: RT @b: nested"), "nested");
        assert_eq!(clean("RT"), "");
        assert_eq!(clean("RTFM @x"), "RTFM");
        assert_eq!(clean("art RT @x: y"), "art RT y");
        let mut out = String::new();
        clean_tokens("RT @user: kept", Options { strip_rt: false }, &mut out);
        assert_eq!(out, "RT kept");
    }
}
