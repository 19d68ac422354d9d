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
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(scheme.default_port()),
            path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// Whether a request to this origin and path lies under the url.
    pub fn covers(&self, scheme: Scheme, host: &str, port: u16, path: &str) -> bool {
        scheme == self.scheme
            && port == self.port
            && host.eq_ignore_ascii_case(&self.host)
            && (self.path.is_empty()
                || path == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}
