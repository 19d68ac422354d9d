//! Outbound HTTP for modules: a pipeline's `allowed_outbound_hosts` and
//! `[pipelines.NAME.http]` limits, and the host-wide `[upstreams.NAME]`
//! credentials.
//!
//! ```toml
//! [pipelines.news]
//! # scheme://host[:port]; `*.` matches subdomains; empty or absent: no HTTP.
//! allowed_outbound_hosts = ["http://127.0.0.1:8090", "https://*.expert.ai:443"]
//!
//! [pipelines.news.http]           # every key optional; defaults shown
//! connect_timeout = "5s"
//! first_byte_timeout = "30s"      # request sent (incl. connecting) -> response head
//! total_timeout = "60s"           # waiting for a slot -> whole body read
//! max_response_bytes = 8388608    # larger -> HttpResponseBodySize
//! max_request_bytes = 8388608     # larger -> HttpRequestBodySize
//! max_concurrency = 32            # requests in flight for the whole pipeline
//! allow_private = false           # names resolving to 10/8, 172.16/12, 192.168/16, fc00::/7
//! pool_idle_timeout = "90s"       # keep-alive connections idle longer are closed
//! pool_max_idle_per_host = 32     # 0 disables connection reuse
//!
//! # Secrets stay in the host: a module's request whose URL lies under
//! # `url` gets the credential added by the host (replacing any header of
//! # the same name the module set); the module never sees it. Paths are
//! # matched in normal form (unreserved %-escapes decoded), segment by
//! # segment, case-sensitively; a path with `.`/`..` or empty segments, a
//! # `\` or an encoded `/`, `\` or NUL to an upstream's origin is denied,
//! # and the path sent is the one matched.
//! [upstreams.expertai]
//! url = "https://nlapi.expert.ai"
//! methods = ["GET", "POST"]       # default; others under `url` are denied
//! auth = { token_url = "https://developer.expert.ai/oauth2/token", username_env = "EXPERTAI_USERNAME", password_env = "EXPERTAI_PASSWORD" }
//! [upstreams.hf]
//! url = "https://api-inference.huggingface.co"
//! auth = { bearer_env = "HF_TOKEN" }
//! [upstreams.newsapi]
//! url = "https://newsapi.org/v2"
//! auth = { header = "X-Api-Key", value_env = "NEWSAPI_KEY" }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Problems;
pub use super::host_pattern::{HostPattern, UpstreamUrl};

/// `[pipelines.NAME.http]`: limits on a pipeline's outbound requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Longest wait for a TCP (and TLS) connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait from sending a request (connecting included) until the
    /// response's status and headers arrive.
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// Longest a request may take in all: waiting for a concurrency slot,
    /// connecting, sending, and reading the whole response body.
    #[serde(with = "humantime_serde")]
    pub total_timeout: Duration,
    /// Largest response body a module may receive, in bytes.
    pub max_response_bytes: u64,
    /// Largest request body a module may send, in bytes.
    pub max_request_bytes: u64,
    /// Requests one pipeline may have in flight at once (all its modules
    /// and instances together); more wait, within `total_timeout`.
    pub max_concurrency: usize,
    /// Allow names that resolve to private addresses (10/8, 172.16/12,
    /// 192.168/16, 100.64/10, fc00::/7), e.g. a service in the same
    /// compose network. Loopback and link-local stay denied unless a
    /// pattern names the address (or `localhost`) explicitly.
    pub allow_private: bool,
    /// Idle keep-alive connections are closed after this long.
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per destination; 0 turns reuse off.
    pub pool_max_idle_per_host: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(60),
            max_response_bytes: 8 << 20,
            max_request_bytes: 8 << 20,
            max_concurrency: 32,
            allow_private: false,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
        }
    }
}

/// `[upstreams.NAME]`: a service whose credential the host holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `scheme://host[:port][/path]`: requests to this origin whose path is
    /// under `/path` (segment-wise) get the credential.
    pub url: String,
    pub auth: UpstreamAuth,
    /// Methods whose requests get the credential (default GET and POST).
    /// A request with another method to a path under `url` is denied
    /// (`HttpRequestDenied`), not sent without it.
    #[serde(default = "UpstreamConfig::default_methods")]
    pub methods: Vec<String>,
}

/// Methods an upstream may allow. TRACE (echoes the request, credential
/// included, back to the module) and CONNECT (a tunnel) never carry one.
pub const UPSTREAM_METHODS: [&str; 7] =
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl UpstreamConfig {
    /// `["GET", "POST"]`.
    pub fn default_methods() -> Vec<String> {
        vec!["GET".into(), "POST".into()]
    }
}

/// How the host authenticates to an upstream. Exactly one of:
/// `{ bearer_env }`, `{ header, value_env }`, or
/// `{ token_url, username_env, password_env [, token_ttl] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamAuth {
    /// Environment variable holding a token sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_env: Option<String>,
    /// Header name for an API key (with `value_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Environment variable holding the header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_env: Option<String>,
    /// Token endpoint: the host POSTs `{"username","password"}` as JSON and
    /// gets a JWT back as plain text, sent as `Authorization: Bearer <jwt>`,
    /// cached and refreshed before it expires (its `exp` claim, else
    /// `token_ttl`) or when the upstream answers 401.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Lifetime assumed for a token without an `exp` claim (default 24h).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_ttl: Option<Duration>,
}

impl UpstreamAuth {
    /// The environment variables this credential is read from, by key.
    pub fn variables(&self) -> [(&'static str, &Option<String>); 4] {
        [
            ("bearer_env", &self.bearer_env),
            ("value_env", &self.value_env),
            ("username_env", &self.username_env),
            ("password_env", &self.password_env),
        ]
    }
}

/// Checks `allowed_outbound_hosts` and `http` of one pipeline.
pub(super) fn validate_pipeline(
    name: &str,
    allowed: &[String],
    http: &HttpConfig,
    p: &mut Problems,
) {
    for (i, pattern) in allowed.iter().enumerate() {
        if let Err(e) = HostPattern::parse(pattern) {
            p.add(
                format!("pipelines.{name}.allowed_outbound_hosts[{i}]"),
                e.to_string(),
            );
        }
    }
    let key = |k: &str| format!("pipelines.{name}.http.{k}");
    for (k, d) in [
        ("connect_timeout", http.connect_timeout),
        ("first_byte_timeout", http.first_byte_timeout),
        ("total_timeout", http.total_timeout),
    ] {
        if d.is_zero() {
            p.add(key(k), "must be greater than zero");
        }
    }
    if http.max_concurrency == 0 {
        p.add(key("max_concurrency"), "must be at least 1");
    }
    if http.max_response_bytes == 0 {
        p.add(key("max_response_bytes"), "must be at least 1");
    }
}

/// Checks one `[upstreams.NAME]` (the first problem of its `auth` shape:
/// later checks depend on the shape being right).
pub(super) fn validate_upstream(name: &str, u: &UpstreamConfig, p: &mut Problems) {
    if let Err((key, reason)) = upstream_problem(name, u) {
        p.add(key, reason);
    }
}

fn upstream_problem(name: &str, u: &UpstreamConfig) -> Result<(), (String, String)> {
    let key = |k: &str| format!("upstreams.{name}.{k}");
    UpstreamUrl::parse(&u.url).map_err(|e| (key("url"), e))?;
    if u.methods.is_empty() {
        return Err((
            key("methods"),
            "allows no method; remove the upstream instead".into(),
        ));
    }
    for (i, m) in u.methods.iter().enumerate() {
        if !UPSTREAM_METHODS.contains(&m.as_str()) {
            return Err((
                key(&format!("methods[{i}]")),
                format!(
                    "`{m}` is not a method an upstream may allow (one of {}, in capitals)",
                    UPSTREAM_METHODS.join(", ")
                ),
            ));
        }
    }
    let a = &u.auth;
    let shape = (
        a.bearer_env.is_some(),
        a.header.is_some() || a.value_env.is_some(),
        a.token_url.is_some() || a.username_env.is_some() || a.password_env.is_some(),
    );
    let one_of = "set exactly one of { bearer_env }, { header, value_env } or { token_url, username_env, password_env }";
    match shape {
        (true, false, false) => {}
        (false, true, false) => {
            let header = a
                .header
                .as_deref()
                .ok_or_else(|| (key("auth.header"), "missing (with value_env)".into()))?;
            if a.value_env.is_none() {
                return Err((key("auth.value_env"), "missing (with header)".into()));
            }
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err((
                    key("auth.header"),
                    format!("`{header}` is not a valid header name"),
                ));
            }
        }
        (false, false, true) => {
            let url = a
                .token_url
                .as_deref()
                .ok_or_else(|| (key("auth.token_url"), "missing".into()))?;
            UpstreamUrl::parse(url).map_err(|e| (key("auth.token_url"), e))?;
            if a.username_env.is_none() {
                return Err((key("auth.username_env"), "missing (with token_url)".into()));
            }
            if a.password_env.is_none() {
                return Err((key("auth.password_env"), "missing (with token_url)".into()));
            }
        }
        _ => return Err((key("auth"), one_of.into())),
    }
    if a.token_ttl.is_some() && a.token_url.is_none() {
        return Err((key("auth.token_ttl"), "only applies with token_url".into()));
    }
    for (k, v) in a.variables() {
        if let Some(v) = v
            && (v.is_empty() || v.contains(['=', '\0']))
        {
            return Err((
                key(&format!("auth.{k}")),
                format!("`{v}` is not an environment variable name"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\n{extra}"
        );
        Config::from_toml(&text, Path::new("weir.toml"), Path::new("."))
    }

    const PIPE: &str = "[pipelines.tweets]\ntopics = [\"t\"]\nindex = \"i\"\n";

    #[test]
    fn defaults_allow_nothing() {
        let c = parse(PIPE).unwrap();
        let p = &c.pipelines["tweets"];
        assert!(p.allowed_outbound_hosts.is_empty());
        assert_eq!(p.http, super::HttpConfig::default());
        assert!(c.upstreams.is_empty());
    }

    #[test]
    fn patterns_and_overrides_parse() {
        let c = parse(&format!(
            "{PIPE}allowed_outbound_hosts = [\"http://127.0.0.1:8090\", \"https://*.expert.ai:443\"]\n\
             [pipelines.tweets.http]\ntotal_timeout = \"2s\"\nallow_private = true\n"
        ))
        .unwrap();
        let p = &c.pipelines["tweets"];
        assert_eq!(p.allowed_outbound_hosts.len(), 2);
        assert_eq!(p.http.total_timeout, std::time::Duration::from_secs(2));
        assert!(p.http.allow_private);
        assert_eq!(p.http.connect_timeout, std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_bad_pattern_is_named_by_index() {
        let e = parse(&format!(
            "{PIPE}allowed_outbound_hosts = [\"http://ok.example\", \"ftp://x\"]\n"
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("pipelines.tweets.allowed_outbound_hosts[1]: invalid pattern `ftp://x`: the scheme must be http or https"),
            "{e}"
        );
    }

    #[test]
    fn unknown_http_key_is_refused() {
        let e = parse(&format!(
            "{PIPE}[pipelines.tweets.http]\ntimeout = \"1s\"\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `timeout`"), "{e}");
        let e = parse(&format!(
            "{PIPE}[pipelines.tweets.http]\nmax_concurrency = 0\n"
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("pipelines.tweets.http.max_concurrency: must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn upstream_methods_default_and_are_checked() {
        let c = parse(
            "[upstreams.a]\nurl = \"https://a.example\"\nauth = { bearer_env = \"T\" }\n\
             [upstreams.b]\nurl = \"https://b.example\"\nauth = { bearer_env = \"T\" }\nmethods = [\"GET\", \"DELETE\"]\n",
        )
        .unwrap();
        assert_eq!(c.upstreams["a"].methods, ["GET", "POST"]);
        assert_eq!(c.upstreams["b"].methods, ["GET", "DELETE"]);
        for (methods, expect) in [
            (
                "[\"GET\", \"TRACE\"]",
                "upstreams.u.methods[1]: `TRACE` is not a method",
            ),
            ("[\"get\"]", "upstreams.u.methods[0]: `get` is not a method"),
            ("[\"CONNECT\"]", "upstreams.u.methods[0]"),
            ("[]", "upstreams.u.methods: allows no method"),
        ] {
            let e = parse(&format!(
                "[upstreams.u]\nurl = \"https://x.example\"\nauth = {{ bearer_env = \"T\" }}\nmethods = {methods}\n"
            ))
            .unwrap_err();
            assert!(e.to_string().contains(expect), "{methods}: {e}");
        }
    }

    #[test]
    fn upstream_shapes() {
        let ok = parse(
            "[upstreams.a]\nurl = \"https://nlapi.expert.ai\"\nauth = { bearer_env = \"T\" }\n\
             [upstreams.b]\nurl = \"https://newsapi.org/v2\"\nauth = { header = \"X-Api-Key\", value_env = \"K\" }\n\
             [upstreams.c]\nurl = \"https://nlapi.expert.ai\"\nauth = { token_url = \"https://developer.expert.ai/oauth2/token\", username_env = \"U\", password_env = \"P\", token_ttl = \"1h\" }\n",
        )
        .unwrap();
        assert_eq!(ok.upstreams.len(), 3);
        for (text, expect) in [
            (
                "url = \"https://x.example\"\nauth = { bearer_env = \"T\", header = \"X\" }",
                "upstreams.u.auth: set exactly one of",
            ),
            (
                "url = \"https://x.example\"\nauth = {}",
                "upstreams.u.auth: set exactly one of",
            ),
            (
                "url = \"https://x.example\"\nauth = { header = \"X\" }",
                "upstreams.u.auth.value_env: missing",
            ),
            (
                "url = \"https://x.example\"\nauth = { header = \"bad header\", value_env = \"V\" }",
                "upstreams.u.auth.header",
            ),
            (
                "url = \"https://x.example\"\nauth = { token_url = \"https://t.example\", username_env = \"U\" }",
                "upstreams.u.auth.password_env: missing",
            ),
            (
                "url = \"ftp://x.example\"\nauth = { bearer_env = \"T\" }",
                "upstreams.u.url",
            ),
            (
                "url = \"https://x.example?q=1\"\nauth = { bearer_env = \"T\" }",
                "upstreams.u.url",
            ),
            (
                "url = \"https://x.example\"\nauth = { bearer_env = \"T\", token_ttl = \"1h\" }",
                "upstreams.u.auth.token_ttl",
            ),
            (
                "url = \"https://x.example\"\nauth = { bearer_env = \"T\", extra = 1 }",
                "unknown field `extra`",
            ),
        ] {
            let e = parse(&format!("[upstreams.u]\n{text}\n")).unwrap_err();
            assert!(e.to_string().contains(expect), "{text}: {e}");
        }
    }
}
