//! Entities in raw text, word counts and timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// What [`extract`] finds; each list lower-cased, de-duplicated, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub hashtags: Vec<String>,
    pub mentions: Vec<String>,
    pub url_domains: Vec<String>,
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !item.is_empty() && !list.contains(&item) {
        list.push(item);
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Hashtags (`#word`, not all digits), mentions (`@name` or Mastodon's
/// `@name@instance`, not e-mail addresses) and the host names of URLs
/// (`http://`, `https://`, `www.`; without `www.`).
pub fn extract<'a>(texts: impl IntoIterator<Item = &'a str>) -> Extracted {
    let mut out = Extracted::default();
    for token in texts.into_iter().flat_map(str::split_whitespace) {
        let lower = token.to_lowercase();
        if let Some(domain) = url_domain(&lower) {
            push_unique(&mut out.url_domains, domain);
            continue;
        }
        let chars: Vec<(usize, char)> = lower.char_indices().collect();
        for (i, &(at, c)) in chars.iter().enumerate() {
            if (c != '#' && c != '@') || (i > 0 && is_word(chars[i - 1].1)) {
                continue;
            }
            let rest = &lower[at + 1..];
            if c == '#' {
                let name: String = rest.chars().take_while(|&c| is_word(c)).collect();
                if name.chars().any(|c| !c.is_ascii_digit() && c != '_') {
                    push_unique(&mut out.hashtags, name);
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let next = rest[name.len()..].chars().next();
            if !name.is_empty() && !next.is_some_and(|c| is_word(c) && !c.is_ascii()) {
                // `@name@instance` (fediverse): keep the instance.
                let after = &rest[name.len()..];
                let instance: String = after
                    .strip_prefix('@')
                    .map(|a| {
                        a.chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
                            .collect()
                    })
                    .unwrap_or_default();
                let instance = instance.trim_end_matches(['.', '-']);
                if instance.contains('.') {
                    push_unique(&mut out.mentions, format!("{name}@{instance}"));
                } else {
                    push_unique(&mut out.mentions, name);
                }
            }
        }
    }
    out
}

/// The host of a URL token (lower-case), without `www.`.
fn url_domain(token: &str) -> Option<String> {
    let token = token.trim_start_matches(['(', '[', '<', '"', '\'']);
    let rest = token
        .strip_prefix("https://")
        .or_else(|| token.strip_prefix("http://"))
        .or_else(|| token.starts_with("www.").then_some(token))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host); // user:pass@host
    let host = host.split(':').next().unwrap_or(host); // host:port
    let host = host.trim_end_matches(|c: char| !c.is_alphanumeric());
    let host = host.strip_prefix("www.").unwrap_or(host);
    (host.contains('.') || host == "localhost").then(|| host.to_owned())
}

/// Words: whitespace-separated tokens with at least one letter or digit.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339_millis(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) as i64;
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's days -> civil date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms_of_day % 1000
    )
}
