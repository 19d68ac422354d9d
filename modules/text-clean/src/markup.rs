//! Strips HTML markup: tags, comments, doctypes, and the contents of
//! `<script>` and `<style>` elements.
//!
//! A `<` starts a tag only when followed by a letter, `/` + letter, `!` or
//! `?`, and only when a closing `>` follows (quoted attribute values may
//! contain `>`). So `I <3 you` and `a < b` are text. Tags that separate
//! words (`<p>`, `<br>`, `<div>`, `<li>`, ...) become a space; inline
//! ones (`<b>`, `<a>`, `<span>`, ...) vanish, so `<b>bold</b>er` stays
//! `bolder`.

use std::borrow::Cow;

/// Removes markup from `text`; borrowed when there is none.
pub fn strip(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find('<') else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = first;
    while let Some(offset) = text[search..].find('<') {
        let start = search + offset;
        let Some(tag) = tag_at(text, start) else {
            search = start + 1;
            continue;
        };
        out.push_str(&text[copied..start]);
        if tag.separates {
            out.push(' ');
        }
        let mut end = tag.end;
        if let Some(element) = tag.raw_text {
            end = raw_text_end(text, end, element);
        }
        copied = end;
        search = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A tag found at some `<`.
struct Tag {
    /// Byte index just past the tag's `>`.
    end: usize,
    /// Whether the tag separates words (rendered as a space).
    separates: bool,
    /// For `<script>`/`<style>`: their contents are dropped too.
    raw_text: Option<&'static str>,
}

/// The tag starting at `text[start] == '<'`, if it is one.
fn tag_at(text: &str, start: usize) -> Option<Tag> {
    let bytes = text.as_bytes();
    let after = start + 1;
    match bytes.get(after)? {
        b'!' if text[after..].starts_with("!--") => {
            let close = text[after + 3..].find("-->")?;
            Some(Tag {
                end: after + 3 + close + 3,
                separates: false,
                raw_text: None,
            })
        }
        b'!' | b'?' => Some(Tag {
            end: after + text[after..].find('>')? + 1,
            separates: false,
            raw_text: None,
        }),
        b'/' => {
            let name = tag_name(&text[after + 1..])?;
            let end = tag_end(bytes, after + 1 + name.len())?;
            Some(Tag {
                end,
                separates: separates(name),
                raw_text: None,
            })
        }
        _ => {
            let name = tag_name(&text[after..])?;
            let end = tag_end(bytes, after + name.len())?;
            let self_closing = bytes[end - 2] == b'/';
            let raw_text = if self_closing {
                None
            } else if name.eq_ignore_ascii_case("script") {
                Some("script")
            } else if name.eq_ignore_ascii_case("style") {
                Some("style")
            } else {
                None
            };
            Some(Tag {
                end,
                separates: separates(name),
                raw_text,
            })
        }
    }
}

/// The tag name at the start of `s`: an ASCII letter, then letters,
/// digits or `-`, ended by whitespace, `/` or `>`.
fn tag_name(s: &str) -> Option<&str> {
    if !s.as_bytes().first()?.is_ascii_alphabetic() {
        return None;
    }
    let len = s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or(s.len());
    match s.as_bytes().get(len) {
        Some(b'>' | b'/') => Some(&s[..len]),
        Some(b) if b.is_ascii_whitespace() => Some(&s[..len]),
        _ => None,
    }
}

/// Index just past the `>` closing a tag whose attributes start at `from`,
/// skipping over quoted attribute values.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Where the contents of a `<script>`/`<style>` element starting at `from`
/// end: just past its closing tag, or the end of the text.
fn raw_text_end(text: &str, from: usize, element: &str) -> usize {
    let bytes = text.as_bytes();
    let mut search = from;
    while let Some(offset) = text[search..].find("</") {
        let at = search + offset + 2;
        let name_end = at + element.len();
        if bytes
            .get(at..name_end)
            .is_some_and(|name| name.eq_ignore_ascii_case(element.as_bytes()))
        {
            return tag_end(bytes, name_end).unwrap_or(text.len());
        }
        search = at;
    }
    text.len()
}

/// Whether a tag separates words; inline (phrasing) elements do not.
fn separates(name: &str) -> bool {
    const INLINE: &[&str] = &[
        "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i",
        "ins", "kbd", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup",
        "time", "tt", "u", "var", "wbr",
    ];
    !INLINE
        .iter()
        .any(|inline| name.eq_ignore_ascii_case(inline))
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn text_without_markup_is_borrowed() {
        assert!(matches!(
            strip("no tags here"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn nested_inline_tags_vanish() {
        assert_eq!(strip("<b><i>so</i> <u>good</u></b>!"), "so good!");
        assert_eq!(strip("<b>bold</b>er"), "bolder");
    }

    #[test]
    fn block_tags_separate_words() {
        assert_eq!(
            strip("<div><p>Hello</p><p>World</p></div>"),
            "  Hello  World  "
        );
        assert_eq!(
            strip("one<br>two<br/>three<BR />four"),
            "one two three four"
        );
    }

    #[test]
    fn attributes_may_contain_angle_brackets_in_quotes() {
        assert_eq!(
            strip(r#"<a href="http://x.com/?q=<b>" title='a>b'>link</a> text"#),
            "link text"
        );
    }

    #[test]
    fn things_that_only_look_like_tags_are_text() {
        assert_eq!(strip("I <3 you"), "I <3 you");
        assert_eq!(strip("a < b and c > d"), "a < b and c > d");
        assert_eq!(strip("unclosed <b tag"), "unclosed <b tag");
        assert_eq!(strip("<<>>"), "<<>>");
        assert_eq!(strip("ends with <"), "ends with <");
    }

    #[test]
    fn comments_doctypes_and_processing_instructions_go() {
        assert_eq!(
            strip("<!DOCTYPE html><?xml version=\"1.0\"?>a<!-- x > y -->b"),
            "ab"
        );
        assert_eq!(strip("a<!-- never closed"), "a<!-- never closed");
    }

    #[test]
    fn script_and_style_contents_go() {
        assert_eq!(
            strip("a<script>if (x < y) { alert('</b>') }</script>b<STYLE>p{}</style >c"),
            "a b c"
        );
        assert_eq!(strip("x<script>never closed"), "x ");
        assert_eq!(strip("x<script/>y"), "x y");
    }

    #[test]
    fn unicode_around_tags() {
        assert_eq!(strip("😀<b>東京</b>café"), "😀東京café");
    }
}
