//! HTML character references: `&amp;`, `&#39;`, `&#x27;` and the named
//! ones that show up in social-media and scraped text.

use std::borrow::Cow;

/// Decodes character references. A reference needs its closing `;`;
/// unknown names and malformed references are kept as written. Numeric
/// references to invalid code points (0, surrogates, > U+10FFFF) become
/// U+FFFD. Decoding happens once: `&amp;lt;` becomes `&lt;`.
pub fn decode(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find('&') else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    let mut rest = &text[first..];
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match reference(rest) {
            Some((decoded, len)) => {
                match decoded {
                    Decoded::Char(c) => out.push(c),
                    Decoded::Str(s) => out.push_str(s),
                }
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// How far to look for a reference's `;`: longer than any reference we
/// decode (overlong numbers included), so `AT&T ... ;` is not scanned far.
const MAX_REFERENCE_LEN: usize = 16;

/// What a reference decodes to.
enum Decoded {
    Char(char),
    Str(&'static str),
}

/// Parses the reference at the start of `s` (which begins with `&`),
/// returning what it decodes to and its length in bytes.
fn reference(s: &str) -> Option<(Decoded, usize)> {
    let body = &s[1..];
    let end = body
        .bytes()
        .take(MAX_REFERENCE_LEN)
        .position(|b| b == b';')?;
    let name = &body[..end];
    let decoded = match name.strip_prefix('#') {
        Some(number) => {
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => parse_digits(hex, 16)?,
                None => parse_digits(number, 10)?,
            };
            let c = char::from_u32(code).filter(|&c| c != '\0');
            Decoded::Char(c.unwrap_or('\u{FFFD}'))
        }
        None => named(name)?,
    };
    Some((decoded, end + 2))
}

fn parse_digits(digits: &str, radix: u32) -> Option<u32> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Overlong numbers are invalid code points, not "unknown references".
    Some(u32::from_str_radix(digits, radix).unwrap_or(u32::MAX))
}

/// The named references we decode.
fn named(name: &str) -> Option<Decoded> {
    let c = match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" => '\u{A0}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "shy" => return Some(Decoded::Str("")),
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "times" => '×',
        "divide" => '÷',
        "plusmn" => '±',
        "para" => '¶',
        "sect" => '§',
        "iexcl" => '¡',
        "iquest" => '¿',
        _ => return None,
    };
    Some(Decoded::Char(c))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn text_without_ampersand_is_borrowed() {
        assert!(matches!(decode("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn named_references() {
        assert_eq!(
            decode("Tom &amp; Jerry &lt;3 &quot;hi&quot;"),
            "Tom & Jerry <3 \"hi\""
        );
        assert_eq!(decode("a&nbsp;b"), "a\u{A0}b");
        assert_eq!(decode("wait&hellip; &mdash; ok"), "wait… — ok");
        assert_eq!(decode("co&shy;op"), "coop");
    }

    #[test]
    fn numeric_references() {
        assert_eq!(decode("it&#39;s"), "it's");
        assert_eq!(decode("it&#x27;s &#X27;"), "it's '");
        assert_eq!(decode("&#128512; &#x1F600;"), "😀 😀");
    }

    #[test]
    fn invalid_code_points_become_replacement_chars() {
        assert_eq!(
            decode("&#0;&#xD800;&#x110000;&#99999999999;"),
            "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn malformed_or_unknown_references_are_kept() {
        assert_eq!(decode("AT&T"), "AT&T");
        assert_eq!(decode("a & b"), "a & b");
        assert_eq!(decode("&amp"), "&amp");
        assert_eq!(decode("&bogus;"), "&bogus;");
        assert_eq!(decode("&#;&#x;&#12a;"), "&#;&#x;&#12a;");
        assert_eq!(decode("trailing &"), "trailing &");
    }

    #[test]
    fn decodes_once() {
        assert_eq!(decode("&amp;lt;"), "&lt;");
    }

    #[test]
    fn multibyte_text_around_references() {
        assert_eq!(
            decode("café &amp; 東京 &#x1F1EF;&#x1F1F5;"),
            "café & 東京 🇯🇵"
        );
    }
}
