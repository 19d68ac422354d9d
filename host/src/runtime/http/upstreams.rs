//! Secrets stay in the host: credentials for configured upstreams
//! (`[upstreams.NAME]`), added to matching module requests on their way
//! out.
//!
//! A request matches an upstream when its scheme, host and port equal the
//! upstream `url`'s and its path lies under the url's path, segment by
//! segment (`https://newsapi.org/v2` covers `/v2` and `/v2/everything`, not
//! `/v2x`). This is origin matching, not string-prefix matching, so
//! `https://nlapi.expert.ai.evil.example` never gets expert.ai's token.
//!
//! Paths are matched in normal form (`config::normalize_path`: unreserved
//! %-escapes decoded, case-sensitive), and the request is sent with the
//! path that was matched, so a server can never resolve the credential to
//! a different resource than the host did. A path without a normal form
//! (`.`/`..` segments plain or encoded, `//`, `\`, encoded `/`, `\` or
//! NUL) to an origin that has an upstream is denied outright rather than
//! sent: resolving it (RFC 3986 remove_dot_segments) would only be safe if
//! every server resolved it the same way, and they do not (`..;`, `%2f`).
//! Each upstream allows a set of methods (`methods`, default GET and
//! POST); a request under its url with another method is denied
//! (fail-closed), never sent without the credential it expected.
//! Upstreams grant no access: the pipeline's allowlist still decides
//! whether the request may go out at all.
//!
//! The credential header replaces any header of the same name the module
//! set (its own `Authorization`, for bearer and token auth). The module's
//! view of its request is never touched, so it cannot read the secret
//! back. Secrets come from environment variables read once at startup; a
//! variable that is not set leaves the upstream without a credential, and
//! its requests are denied (fail-closed) rather than sent without one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};

use super::client::{ClientOptions, Gate, HttpClient, Resolve, SystemResolver};
use super::policy::OutboundRules;
use crate::config::Scheme;
use crate::config::{PathProblem, UpstreamConfig, UpstreamUrl, normalize_path};

/// Lifetime assumed for a token whose JWT carries no `exp`.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// A token is refreshed this long before it expires (or at 90% of a
/// shorter lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Token endpoint limits.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TOKEN_BYTES: usize = 64 << 10;

/// Why no credential could be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("environment variable {0} does not hold a valid header value")]
    InvalidValue(String),
    #[error("token endpoint: {0}")]
    Token(String),
}

/// Why a request to an upstream's origin is refused rather than sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamRefusal {
    #[error(
        "the path is not in normal form ({problem}) and its origin holds upstream `{upstream}`'s credential"
    )]
    Path {
        upstream: String,
        problem: PathProblem,
    },
    #[error("upstream `{upstream}` allows methods {allowed}, not {method}")]
    Method {
        upstream: String,
        method: String,
        allowed: String,
    },
}

/// A request that gets an upstream's credential, and the (normal) path it
/// must be sent with.
#[derive(Debug)]
pub struct Credentialed<'a> {
    pub upstream: &'a Upstream,
    pub path: String,
}

/// One configured upstream.
pub struct Upstream {
    pub name: String,
    pub url: UpstreamUrl,
    methods: Vec<Method>,
    auth: Auth,
}

enum Auth {
    /// Bearer token or API-key header, fixed at startup.
    Static {
        header: HeaderName,
        value: Result<HeaderValue, CredentialError>,
    },
    /// A token fetched with username/password and cached.
    Token(Box<TokenSource>),
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints a secret.
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("methods", &self.methods)
            .finish()
    }
}

impl Upstream {
    /// The header the credential goes in.
    pub fn header(&self) -> HeaderName {
        match &self.auth {
            Auth::Static { header, .. } => header.clone(),
            Auth::Token(_) => AUTHORIZATION,
        }
    }

    /// The credential's header value (marked sensitive), fetching or
    /// refreshing a token when needed.
    pub async fn credential(&self) -> Result<HeaderValue, CredentialError> {
        match &self.auth {
            Auth::Static { value, .. } => value.clone(),
            Auth::Token(source) => source.current().await,
        }
    }

    /// Whether a 401 should trigger one refresh-and-retry.
    pub fn refreshable(&self) -> bool {
        matches!(self.auth, Auth::Token(_))
    }

    /// Forgets `used` if it is still the cached token (after a 401).
    pub async fn invalidate(&self, used: &HeaderValue) {
        if let Auth::Token(source) = &self.auth {
            source.invalidate(used).await;
        }
    }

    /// Why this upstream cannot authenticate, if it cannot (for startup
    /// warnings and `weir check`).
    pub fn problem(&self) -> Option<CredentialError> {
        match &self.auth {
            Auth::Static { value: Err(e), .. } => Some(e.clone()),
            Auth::Static { .. } => None,
            Auth::Token(t) => t.login.as_ref().err().cloned(),
        }
    }
}

/// All configured upstreams, shared by every pipeline (one token cache
/// per upstream).
#[derive(Debug, Default)]
pub struct Upstreams {
    list: Vec<Upstream>,
}

impl Upstreams {
    /// No upstreams.
    pub fn none() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Builds the upstreams, reading secrets through `env` (the process
    /// environment in production). Config validation has checked shapes.
    pub fn from_config(
        config: &BTreeMap<String, UpstreamConfig>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        Self::with_resolver(config, env, Arc::new(SystemResolver), Gate::Trusted)
    }

    /// A tenant's upstreams: its token endpoints are reached only through
    /// `rules` (the tenant's own allowlist and the address rules), never
    /// as the host's trusted requests.
    pub fn for_tenant(
        config: &BTreeMap<String, UpstreamConfig>,
        env: &dyn Fn(&str) -> Option<String>,
        rules: Arc<OutboundRules>,
    ) -> anyhow::Result<Self> {
        Self::with_resolver(config, env, Arc::new(SystemResolver), Gate::Rules(rules))
    }

    /// [`Upstreams::from_config`] with a chosen resolver and gate for
    /// token endpoints.
    pub fn with_resolver(
        config: &BTreeMap<String, UpstreamConfig>,
        env: &dyn Fn(&str) -> Option<String>,
        resolver: Arc<dyn Resolve>,
        gate: Gate,
    ) -> anyhow::Result<Self> {
        let read = |var: &str| {
            env(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CredentialError::MissingEnv(var.to_string()))
        };
        let header_value = |var: &str, prefix: &str| {
            read(var).and_then(|v| {
                let mut h = HeaderValue::from_str(&format!("{prefix}{}", v.trim()))
                    .map_err(|_| CredentialError::InvalidValue(var.to_string()))?;
                h.set_sensitive(true);
                Ok(h)
            })
        };
        let mut list = Vec::new();
        for (name, u) in config {
            let url = UpstreamUrl::parse(&u.url)
                .map_err(|e| anyhow::anyhow!("upstreams.{name}.url: {e}"))?;
            let a = &u.auth;
            let auth = if let Some(var) = &a.bearer_env {
                Auth::Static {
                    header: AUTHORIZATION,
                    value: header_value(var, "Bearer "),
                }
            } else if let (Some(header), Some(var)) = (&a.header, &a.value_env) {
                Auth::Static {
                    header: HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                        anyhow::anyhow!("upstreams.{name}.auth.header: invalid header name")
                    })?,
                    value: header_value(var, ""),
                }
            } else if let (Some(token_url), Some(user), Some(pass)) =
                (&a.token_url, &a.username_env, &a.password_env)
            {
                let token_url: Uri = token_url
                    .parse()
                    .map_err(|e| anyhow::anyhow!("upstreams.{name}.auth.token_url: {e}"))?;
                let login = read(user).and_then(|u| read(pass).map(|p| (u, p)));
                Auth::Token(Box::new(TokenSource {
                    token_url,
                    login,
                    ttl: a.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL),
                    client: HttpClient::new(
                        gate.clone(),
                        Arc::clone(&resolver),
                        ClientOptions {
                            connect_timeout: Duration::from_secs(10),
                            pool_idle_timeout: Duration::from_secs(30),
                            pool_max_idle_per_host: 1,
                        },
                    ),
                    cache: tokio::sync::Mutex::new(None),
                }))
            } else {
                anyhow::bail!("upstreams.{name}.auth: no credential configured");
            };
            let methods = u
                .methods
                .iter()
                .map(|m| {
                    Method::from_bytes(m.as_bytes()).map_err(|_| {
                        anyhow::anyhow!("upstreams.{name}.methods: `{m}` is not a method")
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            list.push(Upstream {
                name: name.clone(),
                url,
                methods,
                auth,
            });
        }
        Ok(Self { list })
    }

    /// The upstream a request belongs to: the one with the longest
    /// matching path (in normal form; a path without one belongs to none).
    pub fn find(&self, scheme: Scheme, host: &str, port: u16, path: &str) -> Option<&Upstream> {
        let path = normalize_path(path).ok()?;
        self.longest(scheme, host, port, &path)
    }

    fn longest(&self, scheme: Scheme, host: &str, port: u16, normal: &str) -> Option<&Upstream> {
        self.list
            .iter()
            .filter(|u| u.url.same_origin(scheme, host, port) && u.url.covers_normal(normal))
            .max_by_key(|u| u.url.path.len())
    }

    /// What the host does with a request: `Ok(None)` sends it as it is
    /// (no upstream covers it), `Ok(Some(c))` sends it with `c.path` and
    /// `c.upstream`'s credential, `Err` refuses it (see the module docs).
    pub fn route(
        &self,
        scheme: Scheme,
        host: &str,
        port: u16,
        method: &Method,
        raw_path: &str,
    ) -> Result<Option<Credentialed<'_>>, UpstreamRefusal> {
        let path = match normalize_path(raw_path) {
            Ok(path) => path,
            Err(problem) => {
                return match self
                    .list
                    .iter()
                    .find(|u| u.url.same_origin(scheme, host, port))
                {
                    Some(u) => Err(UpstreamRefusal::Path {
                        upstream: u.name.clone(),
                        problem,
                    }),
                    None => Ok(None),
                };
            }
        };
        let Some(upstream) = self.longest(scheme, host, port, &path) else {
            return Ok(None);
        };
        if !upstream.methods.contains(method) {
            return Err(UpstreamRefusal::Method {
                upstream: upstream.name.clone(),
                method: method.to_string(),
                allowed: upstream
                    .methods
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(Some(Credentialed { upstream, path }))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Upstream> {
        self.list.iter()
    }
}

/// Username/password → JWT, cached until shortly before it expires.
struct TokenSource {
    token_url: Uri,
    login: Result<(String, String), CredentialError>,
    ttl: Duration,
    client: HttpClient,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: HeaderValue,
    refresh_at: Instant,
}

impl TokenSource {
    async fn current(&self) -> Result<HeaderValue, CredentialError> {
        // Held across the fetch: concurrent requests wait for one refresh
        // instead of each logging in.
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let (jwt, lifetime) = self.fetch().await?;
        let mut value = HeaderValue::from_str(&format!("Bearer {jwt}"))
            .map_err(|_| CredentialError::Token("token is not a valid header value".into()))?;
        value.set_sensitive(true);
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        *cache = Some(CachedToken {
            value: value.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        tracing::debug!(token_url = %self.token_url, ?lifetime, "upstream token refreshed");
        Ok(value)
    }

    async fn invalidate(&self, used: &HeaderValue) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|t| t.value == *used) {
            *cache = None;
        }
    }

    /// POSTs `{"username","password"}`; the answer is the JWT as text.
    async fn fetch(&self) -> Result<(String, Duration), CredentialError> {
        let (username, password) = self.login.clone()?;
        let body =
            serde_json::to_vec(&serde_json::json!({ "username": username, "password": password }))
                .map_err(|e| CredentialError::Token(e.to_string()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.token_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CredentialError::Token(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .send(request)
                .await
                .map_err(|e| CredentialError::Token(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_TOKEN_BYTES)
                .collect()
                .await
                .map_err(|e| CredentialError::Token(format!("reading the token: {e}")))?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(CredentialError::Token(format!(
                    "{} answered {status}",
                    self.token_url
                )));
            }
            let token = String::from_utf8(body.to_vec())
                .map_err(|_| CredentialError::Token("token is not text".into()))?;
            Ok(token.trim().trim_matches('"').to_string())
        };
        let token = tokio::time::timeout(TOKEN_TIMEOUT, exchange)
            .await
            .map_err(|_| CredentialError::Token(format!("{} timed out", self.token_url)))??;
        if token.is_empty() {
            return Err(CredentialError::Token("empty token".into()));
        }
        let lifetime = jwt_lifetime(&token).unwrap_or(self.ttl);
        Ok((token, lifetime))
    }
}

/// Time left until a JWT's `exp` claim (read, not verified: the upstream
/// verifies it), if it has one in the future.
fn jwt_lifetime(jwt: &str) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    (exp > now).then(|| Duration::from_secs_f64(exp - now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamAuth;

    fn upstreams(entries: &[(&str, &str, UpstreamAuth)], env: &[(&str, &str)]) -> Upstreams {
        let config = entries
            .iter()
            .map(|(n, url, auth)| {
                (
                    n.to_string(),
                    UpstreamConfig {
                        url: url.to_string(),
                        auth: auth.clone(),
                        methods: UpstreamConfig::default_methods(),
                    },
                )
            })
            .collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Upstreams::from_config(&config, &|k| env.get(k).cloned()).unwrap()
    }

    fn bearer(var: &str) -> UpstreamAuth {
        UpstreamAuth {
            bearer_env: Some(var.into()),
            ..UpstreamAuth::default()
        }
    }

    #[test]
    fn urls_match_by_origin_and_path_segments() {
        let u = UpstreamUrl::parse("https://newsapi.org/v2/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("newsapi.org", 443, "/v2")
        );
        assert!(u.covers(Scheme::Https, "newsapi.org", 443, "/v2"));
        assert!(u.covers(Scheme::Https, "NewsAPI.org", 443, "/v2/everything"));
        assert!(!u.covers(Scheme::Https, "newsapi.org", 443, "/v2x"));
        assert!(!u.covers(Scheme::Http, "newsapi.org", 443, "/v2"));
        assert!(!u.covers(Scheme::Https, "newsapi.org", 8443, "/v2"));
        let root = UpstreamUrl::parse("https://nlapi.expert.ai").unwrap();
        assert!(root.covers(Scheme::Https, "nlapi.expert.ai", 443, "/v2/analyze"));
        assert!(!root.covers(Scheme::Https, "nlapi.expert.ai.evil.example", 443, "/"));
        assert!(UpstreamUrl::parse("https://u:p@x.example").is_err());
        assert!(UpstreamUrl::parse("ftp://x.example").is_err());
        assert!(UpstreamUrl::parse("https://x.example/?a=1").is_err());
    }

    #[tokio::test]
    async fn static_credentials_come_from_the_environment() {
        let u = upstreams(
            &[
                ("a", "https://a.example", bearer("TOKEN_A")),
                (
                    "b",
                    "https://b.example/v2",
                    UpstreamAuth {
                        header: Some("X-Api-Key".into()),
                        value_env: Some("KEY_B".into()),
                        ..UpstreamAuth::default()
                    },
                ),
                ("c", "https://c.example", bearer("MISSING")),
            ],
            &[("TOKEN_A", "s3cret"), ("KEY_B", "k")],
        );
        let a = u.find(Scheme::Https, "a.example", 443, "/x").unwrap();
        assert_eq!(a.header(), AUTHORIZATION);
        let v = a.credential().await.unwrap();
        assert_eq!(v, "Bearer s3cret");
        assert!(v.is_sensitive());
        assert!(!format!("{a:?}").contains("s3cret"));
        let b = u.find(Scheme::Https, "b.example", 443, "/v2/top").unwrap();
        assert_eq!(
            (b.header().as_str(), b.credential().await.unwrap()),
            ("x-api-key", HeaderValue::from_static("k"))
        );
        assert!(u.find(Scheme::Https, "b.example", 443, "/v1").is_none());
        let c = u.find(Scheme::Https, "c.example", 443, "/").unwrap();
        assert_eq!(
            c.credential().await,
            Err(CredentialError::MissingEnv("MISSING".into()))
        );
        assert!(c.problem().is_some());
    }

    #[test]
    fn longest_path_wins() {
        let u = upstreams(
            &[
                ("root", "https://x.example", bearer("A")),
                ("v2", "https://x.example/v2", bearer("B")),
            ],
            &[("A", "a"), ("B", "b")],
        );
        assert_eq!(
            u.find(Scheme::Https, "x.example", 443, "/v2/y")
                .unwrap()
                .name,
            "v2"
        );
        assert_eq!(
            u.find(Scheme::Https, "x.example", 443, "/v3").unwrap().name,
            "root"
        );
    }

    #[test]
    fn routes_send_the_path_they_matched() {
        let u = upstreams(
            &[("news", "https://x.example/v2", bearer("A"))],
            &[("A", "a")],
        );
        let route = |method: Method, path: &str| {
            u.route(Scheme::Https, "x.example", 443, &method, path)
                .map(|c| c.map(|c| (c.upstream.name.clone(), c.path)))
        };
        assert_eq!(
            route(Method::GET, "/v2/top"),
            Ok(Some(("news".into(), "/v2/top".into())))
        );
        assert_eq!(
            route(Method::POST, "/%76%32/top%7e"),
            Ok(Some(("news".into(), "/v2/top~".into())))
        );
        assert_eq!(
            route(Method::GET, "/v2/"),
            Ok(Some(("news".into(), "/v2/".into())))
        );
        // Same origin, outside the path (or another case): sent bare.
        for path in ["/v2x", "/V2/top", "/admin"] {
            assert_eq!(route(Method::GET, path), Ok(None), "{path}");
        }
        // No normal form on an origin with a credential: refused.
        for (path, problem) in [
            ("/v2/../admin", PathProblem::DotSegment),
            ("/v2/%2e%2e/admin", PathProblem::DotSegment),
            ("/v2/%2E%2e/admin", PathProblem::DotSegment),
            ("/v2/./x", PathProblem::DotSegment),
            ("/v2//x", PathProblem::EmptySegment),
            ("/v2%2fadmin", PathProblem::EncodedSeparator),
            ("/x/../v2/top", PathProblem::DotSegment),
        ] {
            assert_eq!(
                route(Method::GET, path),
                Err(UpstreamRefusal::Path {
                    upstream: "news".into(),
                    problem
                }),
                "{path}"
            );
        }
        // Another origin keeps its paths as they are.
        assert_eq!(
            u.route(
                Scheme::Https,
                "y.example",
                443,
                &Method::GET,
                "/v2/../admin"
            )
            .map(|c| c.is_none()),
            Ok(true)
        );
    }

    #[test]
    fn methods_outside_the_upstreams_list_are_refused() {
        let mut config = BTreeMap::new();
        config.insert(
            "ro".to_string(),
            UpstreamConfig {
                url: "https://x.example/v2".into(),
                auth: bearer("A"),
                methods: vec!["GET".into(), "HEAD".into()],
            },
        );
        let u = Upstreams::from_config(&config, &|_| Some("a".into())).unwrap();
        let route = |method: Method, path: &str| {
            u.route(Scheme::Https, "x.example", 443, &method, path)
                .map(|c| c.map(|c| c.upstream.name.clone()))
        };
        assert_eq!(route(Method::GET, "/v2/a"), Ok(Some("ro".into())));
        assert_eq!(route(Method::HEAD, "/v2/a"), Ok(Some("ro".into())));
        for method in [Method::POST, Method::DELETE, Method::TRACE] {
            let e = route(method.clone(), "/v2/a").unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("upstream `ro` allows methods GET, HEAD, not {method}")
            );
        }
        // Outside the upstream's path any method goes out, without it.
        assert_eq!(route(Method::DELETE, "/v3"), Ok(None));
        // The default is GET and POST.
        let d = upstreams(&[("d", "https://d.example", bearer("A"))], &[("A", "a")]);
        for (method, ok) in [
            (Method::GET, true),
            (Method::POST, true),
            (Method::PUT, false),
        ] {
            assert_eq!(
                d.route(Scheme::Https, "d.example", 443, &method, "/")
                    .is_ok(),
                ok,
                "{method}"
            );
        }
    }

    #[test]
    fn jwt_expiry_is_read_from_the_claims() {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
        let left = jwt_lifetime(&format!("h.{payload}.s")).unwrap();
        assert!(
            left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
            "{left:?}"
        );
        assert_eq!(jwt_lifetime("not-a-jwt"), None);
        let past = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1}"#);
        assert_eq!(jwt_lifetime(&format!("h.{past}.s")), None);
    }
}
