//! Every decision about whether a module's outbound request may go out.
//!
//! This file is the only place that says yes or no; the hooks and the
//! client call into it and enforce what it decides. The rules, all
//! fail-closed:
//!
//! 1. **Allowlist.** A request goes out only if its scheme, host and port
//!    match one of the pipeline's `allowed_outbound_hosts` patterns
//!    (`scheme://host[:port]`, the port defaulting to the scheme's; a
//!    leading `*.` matches any subdomain, never the bare domain). An empty
//!    list allows nothing.
//! 2. **Addresses, after resolution.** The host name is resolved once, every
//!    address is classified (`net.rs`: the IANA special-purpose address
//!    registries, one row per block), and the connection goes to a checked
//!    address (never a second lookup, so a rebinding DNS answer cannot slip
//!    through):
//!    - cloud metadata addresses (169.254.169.254, 169.254.170.2,
//!      100.100.100.200, 168.63.129.16, 192.0.0.192, fd00:ec2::254) never,
//!      not with `allow_private` and not when a pattern names them (the
//!      config refuses such a pattern): they hand out the host's cloud
//!      credentials, and a pattern may come from a tenant's file;
//!    - a pattern naming an IP literal allows exactly that address;
//!    - a pattern naming `localhost` also allows loopback addresses;
//!    - otherwise public addresses are allowed, private ones (10/8,
//!      172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10, the local-use
//!      NAT64 prefix 64:ff9b:1::/48, and the PCP/TURN anycast addresses)
//!      only with the pipeline's `http.allow_private = true`, and loopback,
//!      link-local (169.254/16, fe80::/10), unspecified, multicast and
//!      reserved addresses (documentation, benchmarking, 192.0.0/24,
//!      240/4, Teredo, IPv4-compatible, everything outside 2000::/3 that no
//!      registry row names, ...) never.
//!
//! IPv6 forms that carry an IPv4 address are classified by the address
//! they carry: IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
//! exactly as that address; Teredo and IPv4-compatible are reserved, and
//! local-use NAT64 private, whatever they carry, unless it is a metadata
//! address.

use std::net::IpAddr;

use crate::config::{HostMatch, HostPattern, PatternError, Scheme};
use crate::net::{AddressClass, classify};

/// Why a request was refused. Shown in the host's log, never to the guest
/// beyond `HttpRequestDenied`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("this pipeline allows no outbound HTTP (allowed_outbound_hosts is empty)")]
    NothingAllowed,
    #[error("{url} matches no allowed_outbound_hosts pattern")]
    NotAllowed { url: String },
    #[error("the URL has no usable scheme, host or port: {url}")]
    BadUrl { url: String },
    #[error("{host} resolves to {ip}, {class}, which pattern {pattern} does not allow{hint}")]
    Address {
        host: String,
        ip: IpAddr,
        class: AddressClass,
        pattern: String,
        hint: &'static str,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("upstream `{upstream}` has no usable credential: {reason}")]
    Credential { upstream: String, reason: String },
}

/// The request's destination once it matched the allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub scheme: Scheme,
    /// The host as requested, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Index of the first matching pattern.
    pub pattern: usize,
}

impl Admitted {
    /// The IP literal the request names, if it names one.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// A pipeline's outbound rules: its patterns and whether private addresses
/// are allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundRules {
    pub patterns: Vec<HostPattern>,
    pub allow_private: bool,
}

impl OutboundRules {
    /// Parses `allowed_outbound_hosts`; the error says which entry failed.
    pub fn parse<S: AsRef<str>>(
        patterns: &[S],
        allow_private: bool,
    ) -> Result<Self, (usize, PatternError)> {
        let patterns = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| HostPattern::parse(p.as_ref()).map_err(|e| (i, e)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            patterns,
            allow_private,
        })
    }

    /// Rule 1: does the allowlist admit `scheme://host:port`?
    pub fn admit(
        &self,
        scheme: &str,
        host: &str,
        port: Option<u16>,
        url: &str,
    ) -> Result<Admitted, Denial> {
        if self.patterns.is_empty() {
            return Err(Denial::NothingAllowed);
        }
        let bad = || Denial::BadUrl {
            url: url.to_string(),
        };
        let scheme = Scheme::parse(scheme).ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        let port = port.unwrap_or(scheme.default_port());
        let pattern = self
            .patterns
            .iter()
            .position(|p| p.matches(scheme, host, port))
            .ok_or_else(|| Denial::NotAllowed {
                url: url.to_string(),
            })?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Admitted {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            pattern,
        })
    }

    /// Rule 2: may a connection to `ip` be made for `admitted`?
    pub fn check_address(&self, admitted: &Admitted, ip: IpAddr) -> Result<(), Denial> {
        let pattern = &self.patterns[admitted.pattern];
        let class = classify(ip);
        let allowed = match (&pattern.host, class) {
            // Before the literal rule: no pattern opens a metadata service.
            (_, AddressClass::Metadata) => false,
            (HostMatch::Ip(literal), _) => *literal == ip,
            (_, AddressClass::Public) => true,
            (_, AddressClass::Private) => self.allow_private,
            (HostMatch::Name(name), AddressClass::Loopback) => name == "localhost",
            _ => false,
        };
        if allowed {
            return Ok(());
        }
        let hint = match class {
            AddressClass::Private => {
                "; set http.allow_private = true on the pipeline to allow private networks"
            }
            AddressClass::Loopback => {
                "; name the address (http://127.0.0.1:PORT) or localhost in a pattern"
            }
            AddressClass::Metadata => "; cloud metadata services are never reachable from modules",
            _ => "",
        };
        Err(Denial::Address {
            host: admitted.host.clone(),
            ip,
            class,
            pattern: pattern.to_string(),
            hint,
        })
    }

    /// Rule 2 over a resolution: the addresses a connection may use, in
    /// order, or why none may. All addresses must pass: a name that resolves
    /// to a public and a private address is refused, so that which one the
    /// connection picks cannot decide the outcome.
    pub fn check_addresses(
        &self,
        admitted: &Admitted,
        ips: &[IpAddr],
    ) -> Result<Vec<IpAddr>, Denial> {
        if ips.is_empty() {
            return Err(Denial::NoAddress {
                host: admitted.host.clone(),
            });
        }
        for ip in ips {
            self.check_address(admitted, *ip)?;
        }
        Ok(ips.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    fn rules(patterns: &[&str], allow_private: bool) -> OutboundRules {
        OutboundRules::parse(patterns, allow_private).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_shapes() {
        assert_eq!(
            p("http://127.0.0.1:8090"),
            HostPattern {
                scheme: Scheme::Http,
                host: HostMatch::Ip(ip("127.0.0.1")),
                port: 8090
            }
        );
        assert_eq!(
            p("https://*.expert.ai:443"),
            HostPattern {
                scheme: Scheme::Https,
                host: HostMatch::Subdomains(".expert.ai".into()),
                port: 443
            }
        );
        assert_eq!(
            p("https://API-inference.huggingface.co").host,
            HostMatch::Name("api-inference.huggingface.co".into())
        );
        assert_eq!(p("https://api-inference.huggingface.co").port, 443);
        assert_eq!(p("http://example.com/").port, 80);
        assert_eq!(p("http://[::1]:9000").host, HostMatch::Ip(ip("::1")));
        assert_eq!(p("http://[::1]").port, 80);
        assert_eq!(
            p("https://*.expert.ai").to_string(),
            "https://*.expert.ai:443"
        );
        assert_eq!(
            p("http://*.localhost:8090").host,
            HostMatch::Subdomains(".localhost".into())
        );
    }

    #[test]
    fn refuses_malformed_patterns_with_a_reason() {
        for (bad, why) in [
            ("example.com", "expected scheme://host[:port]"),
            ("ftp://example.com", "http or https"),
            ("http://example.com/path", "no path"),
            ("http://example.com?q", "no path"),
            ("http://user@example.com", "user info"),
            ("http://example.com:0", "port must be"),
            ("http://example.com:99999", "port must be"),
            ("http://example.com:http", "port must be"),
            ("http://", "host is empty"),
            ("http://*", "whole first label"),
            ("http://*.com", "at least two labels"),
            ("http://*.example", "at least two labels"),
            ("http://a.*.com", "whole first label"),
            ("http://exa mple.com", "DNS name"),
            ("http://::1", "brackets"),
            ("http://[::1", "unclosed"),
            ("http://0.0.0.0:80", "unspecified"),
            ("http://224.0.0.1", "multicast"),
            ("http://255.255.255.255", "reserved"),
            ("http://192.0.2.1", "reserved"),
            ("http://[2001:db8::1]", "reserved"),
            ("http://169.254.169.254", "cloud metadata"),
            ("http://169.254.170.2:80", "cloud metadata"),
            ("http://100.100.100.200", "cloud metadata"),
            ("http://168.63.129.16", "cloud metadata"),
            ("http://192.0.0.192", "cloud metadata"),
            ("http://[fd00:ec2::254]", "cloud metadata"),
            ("http://[::ffff:169.254.169.254]", "cloud metadata"),
            ("http://[64:ff9b::a9fe:a9fe]", "cloud metadata"),
            ("http://[2002:a9fe:a9fe::1]", "cloud metadata"),
        ] {
            let e = HostPattern::parse(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("invalid pattern `{bad}`")),
                "{e}"
            );
        }
    }

    #[test]
    fn matching_is_exact_on_scheme_host_and_port() {
        let exact = p("http://127.0.0.1:8090");
        assert!(exact.matches(Scheme::Http, "127.0.0.1", 8090));
        assert!(!exact.matches(Scheme::Https, "127.0.0.1", 8090));
        assert!(!exact.matches(Scheme::Http, "127.0.0.1", 8091));
        assert!(!exact.matches(Scheme::Http, "localhost", 8090));
        assert!(!exact.matches(Scheme::Http, "127.0.0.2", 8090));

        let wild = p("https://*.expert.ai");
        assert!(wild.matches(Scheme::Https, "nlapi.expert.ai", 443));
        assert!(wild.matches(Scheme::Https, "A.B.Expert.AI", 443));
        assert!(
            !wild.matches(Scheme::Https, "expert.ai", 443),
            "a wildcard never matches the bare domain"
        );
        assert!(!wild.matches(Scheme::Https, "evilexpert.ai", 443));
        assert!(!wild.matches(Scheme::Https, "nlapi.expert.ai.evil.com", 443));
        assert!(!wild.matches(Scheme::Https, "nlapi.expert.ai", 8443));

        let name = p("https://api-inference.huggingface.co");
        assert!(name.matches(Scheme::Https, "api-inference.huggingface.co", 443));
        assert!(!name.matches(Scheme::Https, "x.api-inference.huggingface.co", 443));

        let v6 = p("http://[::1]:9000");
        assert!(v6.matches(Scheme::Http, "[::1]", 9000));
        assert!(
            v6.matches(Scheme::Http, "[0:0::1]", 9000),
            "IP literals compare as addresses"
        );
        assert!(!v6.matches(Scheme::Http, "[::ffff:127.0.0.1]", 9000));
    }

    #[test]
    fn empty_allowlist_allows_nothing() {
        let r = rules(&[], true);
        assert_eq!(
            r.admit("http", "127.0.0.1", Some(80), "u"),
            Err(Denial::NothingAllowed)
        );
    }

    #[test]
    fn admission_names_the_pattern_and_defaults_the_port() {
        let r = rules(&["http://127.0.0.1:8090", "https://*.expert.ai:443"], false);
        let a = r.admit("https", "nlapi.expert.ai", None, "u").unwrap();
        assert_eq!(
            (a.pattern, a.port, a.host.as_str()),
            (1, 443, "nlapi.expert.ai")
        );
        assert!(matches!(
            r.admit("http", "127.0.0.1", None, "u"),
            Err(Denial::NotAllowed { .. })
        ));
        assert!(matches!(
            r.admit("gopher", "127.0.0.1", Some(8090), "u"),
            Err(Denial::BadUrl { .. })
        ));
        assert!(matches!(
            r.admit("http", "", Some(8090), "u"),
            Err(Denial::BadUrl { .. })
        ));
    }

    #[test]
    fn an_ip_literal_pattern_allows_exactly_that_address() {
        let r = rules(&["http://127.0.0.1:8090", "http://169.254.10.1"], false);
        let a = r.admit("http", "127.0.0.1", Some(8090), "u").unwrap();
        assert_eq!(
            r.check_addresses(&a, &[ip("127.0.0.1")]),
            Ok(vec![ip("127.0.0.1")])
        );
        assert!(r.check_address(&a, ip("127.0.0.2")).is_err());
        let link = r.admit("http", "169.254.10.1", None, "u").unwrap();
        assert!(
            r.check_address(&link, ip("169.254.10.1")).is_ok(),
            "named literally, so allowed"
        );
    }

    /// Addresses the registries say are not public, which the old
    /// classification let through as public.
    #[test]
    fn special_purpose_space_is_not_public() {
        let strict = rules(&["https://api.example.com"], false);
        let relaxed = rules(&["https://api.example.com"], true);
        let a = strict.admit("https", "api.example.com", None, "u").unwrap();
        // Never, whatever allow_private says.
        for never in [
            "192.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::10.0.0.1",
            "2001:db8::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2002:7f00:1::1",
            "2002:a9fe:101::1",
            "3fff::1",
            "5f00::1",
            "100::1",
        ] {
            assert!(strict.check_address(&a, ip(never)).is_err(), "{never}");
            assert!(relaxed.check_address(&a, ip(never)).is_err(), "{never}");
        }
        // Private: only with allow_private.
        for private in [
            "2002:a00:1::1",
            "2002:c0a8:101::1",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::808:808",
            "192.0.0.9",
            "100.100.100.201",
        ] {
            let e = strict.check_address(&a, ip(private)).unwrap_err();
            assert!(e.to_string().contains("allow_private"), "{private}: {e}");
            assert!(relaxed.check_address(&a, ip(private)).is_ok(), "{private}");
        }
        // Public forms still go out.
        for public in ["2002:808:808::1", "64:ff9b::8.8.8.8", "::ffff:8.8.8.8"] {
            assert!(strict.check_address(&a, ip(public)).is_ok(), "{public}");
        }
    }

    #[test]
    fn metadata_is_denied_even_with_allow_private_and_a_pattern() {
        let metadata = [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "168.63.129.16",
            "192.0.0.192",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:168.63.129.16",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:6464:64c8::1",
            "2001:0:a9fe:a9fe::1",
        ];
        let relaxed = rules(
            &[
                "http://metadata.google.internal",
                "http://*.internal",
                "http://localhost",
            ],
            true,
        );
        for host in ["metadata.google.internal", "x.internal", "localhost"] {
            let a = relaxed.admit("http", host, None, "u").unwrap();
            for m in metadata {
                let e = relaxed.check_address(&a, ip(m)).unwrap_err();
                assert!(
                    matches!(
                        e,
                        Denial::Address {
                            class: AddressClass::Metadata,
                            ..
                        }
                    ),
                    "{host} -> {m}: {e}"
                );
                assert!(e.to_string().contains("cloud metadata"), "{e}");
            }
        }
        // The config refuses such a pattern; built by hand, it still opens
        // nothing.
        for m in metadata {
            let literal = OutboundRules {
                patterns: vec![HostPattern {
                    scheme: Scheme::Http,
                    host: HostMatch::Ip(ip(m)),
                    port: 80,
                }],
                allow_private: true,
            };
            let a = literal.admit("http", &format!("[{m}]"), None, "u");
            let a = a.or_else(|_| literal.admit("http", m, None, "u")).unwrap();
            assert!(literal.check_address(&a, ip(m)).is_err(), "{m}");
        }
    }

    #[test]
    fn a_config_naming_a_metadata_address_is_refused_by_key() {
        use std::path::Path;
        for (pattern, shown) in [
            ("http://169.254.169.254", "169.254.169.254"),
            ("http://[fd00:ec2::254]:80", "fd00:ec2::254"),
        ] {
            let text = format!(
                "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\n\
                 [pipelines.tweets]\ntopics = [\"t\"]\nindex = \"i\"\n\
                 allowed_outbound_hosts = [\"https://ok.example\", \"{pattern}\"]\n\
                 [pipelines.tweets.http]\nallow_private = true\n"
            );
            let e = crate::config::Config::from_toml(&text, Path::new("weir.toml"), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "pipelines.tweets.allowed_outbound_hosts[1]: invalid pattern `{pattern}`: \
                     {shown} is a cloud metadata address"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn names_resolving_to_loopback_or_private_are_denied_unless_opted_in() {
        let strict = rules(
            &[
                "http://classifier.local:8090",
                "http://*.localhost:8090",
                "http://localhost:8090",
            ],
            false,
        );
        let relaxed = rules(
            &[
                "http://classifier.local:8090",
                "http://*.localhost:8090",
                "http://localhost:8090",
            ],
            true,
        );

        let svc = strict
            .admit("http", "classifier.local", Some(8090), "u")
            .unwrap();
        let e = strict.check_address(&svc, ip("10.0.0.7")).unwrap_err();
        assert!(e.to_string().contains("allow_private"), "{e}");
        assert!(relaxed.check_address(&svc, ip("10.0.0.7")).is_ok());
        assert!(relaxed.check_address(&svc, ip("fd00::7")).is_ok());
        assert!(strict.check_address(&svc, ip("93.184.216.34")).is_ok());
        // allow_private never opens loopback or link-local.
        for never in [
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "100.100.100.200",
        ] {
            assert!(relaxed.check_address(&svc, ip(never)).is_err(), "{never}");
        }

        let wild = strict
            .admit("http", "api.localhost", Some(8090), "u")
            .unwrap();
        assert!(matches!(
            strict.check_address(&wild, ip("127.0.0.1")),
            Err(Denial::Address {
                class: AddressClass::Loopback,
                ..
            })
        ));
        let local = strict.admit("http", "localhost", Some(8090), "u").unwrap();
        assert!(
            strict.check_address(&local, ip("127.0.0.1")).is_ok(),
            "localhost named explicitly"
        );
        assert!(strict.check_address(&local, ip("::1")).is_ok());
        assert!(strict.check_address(&local, ip("10.0.0.1")).is_err());
    }

    #[test]
    fn one_bad_address_in_a_resolution_refuses_the_request() {
        let r = rules(&["https://api.example.com"], false);
        let a = r.admit("https", "api.example.com", None, "u").unwrap();
        assert!(
            r.check_addresses(&a, &[ip("93.184.216.34"), ip("127.0.0.1")])
                .is_err()
        );
        assert!(matches!(
            r.check_addresses(&a, &[]),
            Err(Denial::NoAddress { .. })
        ));
    }
}
