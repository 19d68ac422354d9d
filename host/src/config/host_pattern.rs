//! The address patterns of `allowed_outbound_hosts` and the URLs of
//! `[upstreams.NAME]`, parsed from the config. Matching requests against
//! them is the outbound HTTP policy's job (`runtime/http/policy.rs`).

use std::fmt;
use std::net::IpAddr;

use http::Uri;

use crate::net::{AddressClass, classify};

/// URI scheme a pattern or request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// Parses `http` or `https` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("http") {
            Some(Self::Http)
        } else if s.eq_ignore_ascii_case("https") {
            Some(Self::Https)
        } else {
            None
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// The host part of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// One DNS name, lowercase (e.g. `api-inference.huggingface.co`).
    Name(String),
    /// `*.expert.ai`: any name ending in `.expert.ai` (stored without the
    /// `*`, i.e. `.expert.ai`).
    Subdomains(String),
    /// An IP literal: allows exactly this address.
    Ip(IpAddr),
}

/// One entry of `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    pub scheme: Scheme,
    pub host: HostMatch,
    pub port: u16,
}

/// Why a pattern string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl HostPattern {
    /// Parses `scheme://host[:port]` (a single trailing `/` is tolerated).
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let err = |reason: &str| PatternError {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| err("expected scheme://host[:port]"))?;
        let scheme =
            Scheme::parse(scheme).ok_or_else(|| err("the scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(err(
                "a pattern names scheme, host and port only: no path, query or fragment",
            ));
        }
        if rest.contains('@') {
            return Err(err("a pattern carries no user info"));
        }
        let (host, port) = split_host_port(rest).map_err(|r| err(&r))?;
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| err("the port must be a number from 1 to 65535"))?,
        };
        let host = parse_host(host).map_err(|r| err(&r))?;
        if let HostMatch::Ip(ip) = &host {
            match classify(*ip) {
                AddressClass::Unspecified | AddressClass::Multicast | AddressClass::Reserved => {
                    return Err(err(&format!(
                        "{} can never be a destination",
                        classify(*ip)
                    )));
                }
                // It hands out the host's cloud credentials; a pattern may
                // come from a tenant's file, so naming it opens nothing.
                AddressClass::Metadata => {
                    return Err(err(&format!(
                        "{ip} is a cloud metadata address, which modules may never reach"
                    )));
                }
                _ => {}
            }
        }
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` matches. `host` is the
    /// request's host as written (brackets around IPv6 allowed).
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match &self.host {
            HostMatch::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            HostMatch::Name(name) => {
                host.parse::<IpAddr>().is_err() && host.eq_ignore_ascii_case(name)
            }
            HostMatch::Subdomains(suffix) => {
                host.parse::<IpAddr>().is_err()
                    && host.len() > suffix.len()
                    && host.is_char_boundary(host.len() - suffix.len())
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }

    /// `host:port` as written in config, for logs and the metrics label
    /// (bounded by configuration, unlike the hosts modules ask for).
    pub fn authority(&self) -> String {
        let host = match &self.host {
            HostMatch::Name(n) => n.clone(),
            HostMatch::Subdomains(s) => format!("*{s}"),
            HostMatch::Ip(IpAddr::V4(ip)) => ip.to_string(),
            HostMatch::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        format!("{host}:{}", self.port)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

/// Splits `host[:port]`, understanding `[v6]:port`.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("unclosed `[` in an IPv6 address")?;
        return match after {
            "" => Ok((host, None)),
            a => match a.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("expected `:port` after `]`".into()),
            },
        };
    }
    match s.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => Err("an IPv6 address goes in brackets: [::1]".into()),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

/// Single-label suffixes a wildcard may cover (RFC 6761, RFC 6762, and the
/// `internal` TLD reserved for private use).
const SPECIAL_USE_SUFFIXES: [&str; 4] = ["localhost", "local", "internal", "test"];

fn parse_host(host: &str) -> Result<HostMatch, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostMatch::Ip(ip));
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if name.contains('*') {
        return Err("`*` is only allowed as the whole first label: *.example.com".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    let valid_label = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 253 || !labels.iter().all(valid_label) {
        return Err(
            "the host must be a DNS name (letters, digits, '-', dots), an IP literal or *.domain"
                .into(),
        );
    }
    // `*.com` would open a whole TLD: a wildcard needs two labels, or a
    // special-use single label that never leaves the site.
    if wildcard
        && labels.len() < 2
        && !SPECIAL_USE_SUFFIXES.contains(&name.to_ascii_lowercase().as_str())
    {
        return Err(format!(
            "a wildcard needs a domain of at least two labels (*.example.com) or one of {}",
            SPECIAL_USE_SUFFIXES.map(|s| format!("*.{s}")).join(", ")
        ));
    }
    let name = name.to_ascii_lowercase();
    Ok(if wildcard {
        HostMatch::Subdomains(format!(".{name}"))
    } else {
        HostMatch::Name(name)
    })
}

/// An upstream's `url`: an origin plus a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub scheme: Scheme,
    /// Lowercase, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Without a trailing `/`; empty for the whole origin.
    pub path: String,
}

impl UpstreamUrl {
    /// Parses `scheme://host[:port][/path]`; the error says why not.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or_else(|| format!("`{url}`: the scheme must be http or https"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{url}`: user info does not belong in the URL; use auth"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("`{url}`: no query string"));
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        let path = normalize_path(uri.path())
            .map_err(|problem| format!("`{url}`: the path is not in normal form: {problem}"))?;
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(scheme.default_port()),
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// Whether a request goes to this url's scheme, host and port.
    pub fn same_origin(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        scheme == self.scheme && port == self.port && host.eq_ignore_ascii_case(&self.host)
    }

    /// Whether a path already in normal form ([`normalize_path`]) lies
    /// under the url's path, segment by segment (case-sensitive, as paths
    /// are).
    pub fn covers_normal(&self, normal: &str) -> bool {
        self.path.is_empty()
            || normal == self.path
            || normal
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Whether a request to this origin and raw path lies under the url. A
    /// path that is not in normal form is covered by nothing.
    pub fn covers(&self, scheme: Scheme, host: &str, port: u16, path: &str) -> bool {
        self.same_origin(scheme, host, port)
            && normalize_path(path).is_ok_and(|p| self.covers_normal(&p))
    }
}

/// Why a request path has no normal form a credential may be matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    #[error("it does not start with `/`")]
    NotAbsolute,
    #[error("it has a malformed percent-escape")]
    BadEscape,
    #[error("it has a `\\`, or an encoded `/`, `\\` or NUL")]
    EncodedSeparator,
    #[error("it has a `.` or `..` segment (plain or percent-encoded)")]
    DotSegment,
    #[error("it has an empty segment (`//`)")]
    EmptySegment,
}

/// The normal form of a request path (no query), the only form upstream
/// paths are matched in (RFC 3986 section 6.2.2): percent-encoded
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) decoded, other escapes
/// with uppercase hex.
///
/// Paths whose segments a server might read differently from the host are
/// refused instead: a `.` or `..` segment, plain or encoded (`%2e%2e`),
/// also before a `;` parameter (`..;`, which Tomcat resolves as `..`); an
/// empty segment (`//`, which some servers merge) other than a trailing
/// `/`; a `\` or an encoded `/`, `\` or NUL (which some servers and
/// proxies decode into separators). RFC 3986 section 5.2.4
/// (remove_dot_segments) would resolve dot segments, but a credential is
/// only safe if the server resolves them the same way, and servers
/// disagree; so a path needing it gets no credential at all.
pub fn normalize_path(raw: &str) -> Result<String, PathProblem> {
    if !raw.starts_with('/') {
        return Err(PathProblem::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
                    return Err(PathProblem::BadEscape);
                };
                let byte = (hi * 16 + lo) as u8;
                match byte {
                    b'/' | b'\\' | 0 => return Err(PathProblem::EncodedSeparator),
                    b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                        out.push(b as char)
                    }
                    b => out.push_str(&format!("%{b:02X}")),
                }
                i += 3;
            }
            b'\\' => return Err(PathProblem::EncodedSeparator),
            _ => {
                // Copy the run up to the next escape or backslash whole
                // (keeps multi-byte characters intact).
                let end = raw[i..].find(['%', '\\']).map_or(raw.len(), |n| i + n);
                out.push_str(&raw[i..end]);
                i = end;
            }
        }
    }
    let segments: Vec<&str> = out[1..].split('/').collect();
    for (n, segment) in segments.iter().enumerate() {
        let bare = segment.split(';').next().unwrap_or("");
        if bare == "." || bare == ".." {
            return Err(PathProblem::DotSegment);
        }
        if segment.is_empty() && n + 1 < segments.len() {
            return Err(PathProblem::EmptySegment);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_decode_unreserved_escapes_only() {
        for (raw, normal) in [
            ("/", "/"),
            ("/v2", "/v2"),
            ("/v2/", "/v2/"),
            ("/v2/everything", "/v2/everything"),
            ("/%76%32/x", "/v2/x"),
            ("/v2/%7euser", "/v2/~user"),
            ("/v2/a%20b%2a", "/v2/a%20b%2A"),
            ("/v2/a%3fb", "/v2/a%3Fb"),
            ("/v2/caf\u{e9}", "/v2/caf\u{e9}"),
            ("/v2/...", "/v2/..."),
            ("/v2/.hidden", "/v2/.hidden"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Ok(normal), "{raw}");
        }
    }

    #[test]
    fn paths_a_server_may_read_differently_have_no_normal_form() {
        use PathProblem::*;
        for (raw, problem) in [
            ("/v2/../admin", DotSegment),
            ("/v2/%2e%2e/admin", DotSegment),
            ("/v2/%2E%2e/admin", DotSegment),
            ("/v2/.%2E/admin", DotSegment),
            ("/v2/..;/admin", DotSegment),
            ("/v2/./x", DotSegment),
            ("/v2/..", DotSegment),
            ("/v2//x", EmptySegment),
            ("//v2/x", EmptySegment),
            ("/v2%2fadmin", EncodedSeparator),
            ("/v2%2F..%2Fadmin", EncodedSeparator),
            ("/v2%5c..%5cadmin", EncodedSeparator),
            ("/v2\\..\\admin", EncodedSeparator),
            ("/v2/x%00", EncodedSeparator),
            ("/v2/%zz", BadEscape),
            ("/v2/%2", BadEscape),
            ("*", NotAbsolute),
        ] {
            assert_eq!(normalize_path(raw), Err(problem), "{raw}");
        }
    }

    #[test]
    fn upstream_paths_match_in_normal_form() {
        let u = UpstreamUrl::parse("https://newsapi.org/v2").unwrap();
        let covers = |path: &str| u.covers(Scheme::Https, "newsapi.org", 443, path);
        assert!(covers("/v2"));
        assert!(covers("/v2/"));
        assert!(covers("/v2/top-headlines"));
        assert!(covers("/%762/top-headlines"));
        for outside in [
            "/v2x",
            "/V2",
            "/V2/top",
            "/v2/../admin",
            "/v2/%2e%2e/admin",
            "/v2/%2E%2e/admin",
            "/v2/./x",
            "/v2//x",
            "/v2%2fadmin",
            "/admin",
            "/",
        ] {
            assert!(!covers(outside), "{outside}");
        }
        // The query is not part of the path the policy matches.
        let uri: http::Uri = "https://newsapi.org/v2/top?next=/../../admin%2f"
            .parse()
            .unwrap();
        assert!(covers(uri.path()));
        let uri: http::Uri = "https://newsapi.org/admin?p=/v2".parse().unwrap();
        assert!(!covers(uri.path()));
    }

    #[test]
    fn upstream_urls_must_be_normal() {
        assert_eq!(
            UpstreamUrl::parse("https://x.example/%76%32/")
                .unwrap()
                .path,
            "/v2"
        );
        for url in [
            "https://x.example/v2/../admin",
            "https://x.example/v2//x",
            "https://x.example/a%2fb",
        ] {
            let e = UpstreamUrl::parse(url).unwrap_err();
            assert!(e.contains("not in normal form"), "{url}: {e}");
        }
    }
}
