//! The `wasi:http` hook every module request passes through, and the flow
//! it runs:
//!
//! 1. **admit**: the pipeline's allowlist must match scheme, host and port,
//!    or the guest gets `HttpRequestDenied` (nothing is resolved or sent);
//! 2. **slot**: a per-pipeline concurrency permit, waited for within the
//!    total timeout (`ConnectionLimitReached` when none frees up);
//! 3. **body**: the request body is read, up to `max_request_bytes`;
//! 4. **credential**: if the URL lies under an `[upstreams.NAME]` (its path
//!    in normal form), the host sets the credential header (replacing the
//!    module's) and sends the path it matched; a method the upstream does
//!    not allow, or a path with no normal form to its origin, is denied;
//! 5. **send**: through the pipeline's pooled client, whose connector
//!    resolves once, checks every address and connects to a checked one
//!    (`HttpRequestDenied` otherwise); `first_byte_timeout` bounds the wait
//!    for the response head;
//! 6. **read**: the response body is read in full, up to
//!    `max_response_bytes` (`HttpResponseBodySize` beyond), and handed to
//!    the guest; a 401 from a token upstream refreshes the token and retries
//!    once.
//!
//! Everything is bounded by `total_timeout`. Every failure reaches the
//! guest as an `error-code` value, never a trap, and is counted in the
//! metrics and logged with the pipeline and module (never with secrets or
//! query strings).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

use super::HttpPolicy;
use super::client::{ConnectError, SendError};
use super::metrics::Outcome;
use super::policy::{Admitted, Denial};
use super::upstreams::{CredentialError, UpstreamRefusal};
use crate::runtime::log::LogContext;

/// The `wasi:http` state of one module instance: the context wasmtime
/// needs plus the hooks that apply the pipeline's policy.
pub struct ModuleHttp {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) hooks: PolicyHooks,
}

impl ModuleHttp {
    pub fn new(policy: Arc<HttpPolicy>, who: Arc<LogContext>) -> Self {
        Self {
            ctx: WasiHttpCtx::new(),
            hooks: PolicyHooks { policy, who },
        }
    }
}

/// [`WasiHttpHooks`] that send every request through [`HttpPolicy`].
pub struct PolicyHooks {
    policy: Arc<HttpPolicy>,
    who: Arc<LogContext>,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for PolicyHooks {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let policy = Arc::clone(&self.policy);
        let who = Arc::clone(&self.who);
        Box::new(async move {
            let response = policy.send(&who.module, request, options).await?;
            // The body is already read in full: no connection task to drive.
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// Why a request got no response; becomes the guest's `error-code`.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("denied: {0}")]
    Denied(Denial),
    #[error("denied: {0}")]
    Upstream(UpstreamRefusal),
    #[error("no concurrency slot within the total timeout ({0:?})")]
    Busy(Duration),
    #[error("over the tenant's quota of {0} HTTP requests per second")]
    Quota(f64),
    #[error("no response head within the first-byte timeout ({0:?})")]
    FirstByteTimeout(Duration),
    #[error("not finished within the total timeout ({0:?})")]
    TotalTimeout(Duration),
    #[error("request body exceeds {0} bytes")]
    RequestTooLarge(u64),
    #[error("response body exceeds {limit} bytes")]
    ResponseTooLarge { limit: u64, length: Option<u64> },
    #[error("{0}")]
    Connect(ConnectError),
    #[error("{0}")]
    Protocol(String),
    #[error("reading the module's request body: {0}")]
    Guest(Error),
    #[error("no token for upstream `{upstream}`: {reason}")]
    Token { upstream: String, reason: String },
}

impl Failure {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Denied(_) | Self::Upstream(_) | Self::Quota(_) => Outcome::Denied,
            Self::Connect(ConnectError::Denied(_)) => Outcome::Denied,
            Self::Busy(_) | Self::FirstByteTimeout(_) | Self::TotalTimeout(_) => Outcome::Timeout,
            Self::Connect(ConnectError::Timeout) => Outcome::Timeout,
            Self::RequestTooLarge(_) | Self::ResponseTooLarge { .. } => Outcome::TooLarge,
            Self::Connect(_) | Self::Protocol(_) | Self::Guest(_) | Self::Token { .. } => {
                Outcome::Error
            }
        }
    }

    fn into_wasi(self) -> Error {
        match self {
            Self::Denied(_) | Self::Upstream(_) | Self::Connect(ConnectError::Denied(_)) => {
                Error::HttpRequestDenied
            }
            Self::Busy(_) | Self::Quota(_) => Error::ConnectionLimitReached,
            Self::Connect(ConnectError::Timeout) => Error::ConnectionTimeout,
            Self::FirstByteTimeout(_) => Error::ConnectionReadTimeout,
            Self::TotalTimeout(_) => Error::HttpResponseTimeout,
            Self::RequestTooLarge(limit) => Error::HttpRequestBodySize(Some(limit)),
            Self::ResponseTooLarge { length, .. } => Error::HttpResponseBodySize(length),
            Self::Connect(ConnectError::Dns { message, .. }) => Error::DnsError {
                rcode: Some(message),
                info_code: None,
            },
            Self::Connect(ConnectError::Refused(_)) => Error::ConnectionRefused,
            Self::Connect(ConnectError::Io(_)) => Error::DestinationUnavailable,
            Self::Connect(ConnectError::TlsCertificate(_)) => Error::TlsCertificateError,
            Self::Connect(ConnectError::Tls(_)) => Error::TlsProtocolError,
            Self::Connect(ConnectError::Url(_)) => Error::HttpRequestUriInvalid,
            Self::Protocol(_) => Error::HttpProtocolError,
            Self::Guest(e) => e,
            Self::Token { upstream, .. } => Error::InternalError(Some(format!(
                "the host could not obtain a credential for upstream `{upstream}`"
            ))),
        }
    }
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Connect(c) => Self::Connect(c),
            SendError::Protocol(p) => Self::Protocol(p),
        }
    }
}

/// Limits for one request: the pipeline's, narrowed by the guest's own
/// `request-options` (a guest may ask for less, never more).
#[derive(Debug, Clone, Copy)]
struct Limits {
    first_byte: Duration,
    total: Duration,
    max_request: u64,
    max_response: u64,
}

/// `scheme://authority/path` (no query: it may carry a module's own keys).
fn loggable(uri: &Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("?"),
        uri.authority().map_or("", |a| a.as_str()),
        uri.path()
    )
}

impl HttpPolicy {
    /// Runs one module request through the policy (see the module docs).
    async fn send(
        &self,
        module: &str,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Response<WasiBody>, Error> {
        let started = Instant::now();
        let url = loggable(request.uri());
        let admitted = request
            .uri()
            .host()
            .ok_or_else(|| Denial::BadUrl { url: url.clone() })
            .and_then(|host| {
                self.rules.admit(
                    request.uri().scheme_str().unwrap_or(""),
                    host,
                    request.uri().port_u16(),
                    &url,
                )
            });
        let (label, result) = match admitted {
            Err(denial) => ("-".to_string(), Err(Failure::Denied(denial))),
            Ok(admitted) => {
                let label = self.rules.patterns[admitted.pattern].authority();
                let limits = self.limits_for(options);
                let deadline = tokio::time::Instant::now() + limits.total;
                let result = match self.slot(deadline, limits.total).await {
                    Err(busy) => Err(busy),
                    Ok(_permit) => {
                        tokio::time::timeout_at(deadline, self.exchange(&admitted, request, limits))
                            .await
                            .unwrap_or(Err(Failure::TotalTimeout(limits.total)))
                    }
                };
                (label, result)
            }
        };
        let elapsed = started.elapsed();
        match result {
            Ok(response) => {
                self.metrics
                    .record(&self.pipeline, &label, Outcome::Ok, elapsed.as_secs_f64());
                tracing::debug!(pipeline = %self.pipeline, module, %url, status = response.status().as_u16(), ?elapsed, "module HTTP request");
                Ok(response)
            }
            Err(failure) => {
                let outcome = failure.outcome();
                self.metrics
                    .record(&self.pipeline, &label, outcome, elapsed.as_secs_f64());
                if outcome == Outcome::Denied {
                    tracing::warn!(pipeline = %self.pipeline, module, %url, reason = %failure, "module HTTP request denied");
                } else {
                    tracing::info!(pipeline = %self.pipeline, module, %url, outcome = outcome.as_str(), reason = %failure, ?elapsed, "module HTTP request failed");
                }
                Err(failure.into_wasi())
            }
        }
    }

    fn limits_for(&self, options: Option<RequestOptions>) -> Limits {
        let c = &self.config;
        let narrow = |ours: Duration, theirs: Option<Duration>| {
            theirs
                .filter(|d| !d.is_zero())
                .map_or(ours, |d| d.min(ours))
        };
        Limits {
            first_byte: narrow(
                c.first_byte_timeout,
                options.and_then(|o| o.first_byte_timeout),
            ),
            total: c.total_timeout,
            max_request: c.max_request_bytes,
            max_response: c.max_response_bytes,
        }
    }

    /// One of the pipeline's concurrency slots, waited for until `deadline`.
    async fn slot(
        &self,
        deadline: tokio::time::Instant,
        total: Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, Failure> {
        if let Some(rate) = &self.rate
            && !rate.try_acquire(1)
        {
            return Err(Failure::Quota(rate.per_second()));
        }
        tokio::time::timeout_at(deadline, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| Failure::Busy(total))?
            .map_err(|_| Failure::Busy(total))
    }

    async fn exchange(
        &self,
        admitted: &Admitted,
        request: Request<WasiBody>,
        limits: Limits,
    ) -> Result<Response<WasiBody>, Failure> {
        let client = self
            .client
            .as_ref()
            .ok_or(Failure::Denied(Denial::NothingAllowed))?;

        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, limits.max_request as usize)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                if e.is::<http_body_util::LengthLimitError>() {
                    return Err(Failure::RequestTooLarge(limits.max_request));
                }
                return Err(match e.downcast::<Error>() {
                    Ok(inner) => Failure::Guest(*inner),
                    Err(other) => Failure::Protocol(other.to_string()),
                });
            }
        };
        let mut headers = parts.headers;
        // The client sets Host (HTTP/1) or :authority (HTTP/2) from the URI
        // and Content-Length from the buffered body.
        headers.remove(HOST);
        headers.remove(CONTENT_LENGTH);

        let route = self
            .upstreams
            .route(
                admitted.scheme,
                &admitted.host,
                admitted.port,
                &parts.method,
                parts.uri.path(),
            )
            .map_err(Failure::Upstream)?;
        // What was matched is what is sent: the normal form of the path.
        let uri = match &route {
            Some(c) if c.path != parts.uri.path() => with_path(&parts.uri, &c.path)?,
            _ => parts.uri.clone(),
        };
        let upstream = route.map(|c| c.upstream);
        let mut retried = false;
        loop {
            let mut headers = headers.clone();
            let credential = match upstream {
                None => None,
                Some(u) => {
                    let value = u.credential().await.map_err(|e| match e {
                        CredentialError::Token(reason) => Failure::Token {
                            upstream: u.name.clone(),
                            reason,
                        },
                        other => Failure::Denied(Denial::Credential {
                            upstream: u.name.clone(),
                            reason: other.to_string(),
                        }),
                    })?;
                    // `insert` replaces every value the module set.
                    headers.insert(u.header(), value.clone());
                    Some((u, value))
                }
            };
            let request = build(&parts.method, &uri, headers, body.clone())?;
            let response = tokio::time::timeout(limits.first_byte, client.send(request))
                .await
                .map_err(|_| Failure::FirstByteTimeout(limits.first_byte))??;
            if response.status() == StatusCode::UNAUTHORIZED
                && !retried
                && let Some((u, used)) = &credential
                && u.refreshable()
            {
                tracing::info!(pipeline = %self.pipeline, upstream = %u.name, "upstream answered 401; refreshing its token");
                u.invalidate(used).await;
                retried = true;
                continue;
            }
            return read_response(response, limits.max_response).await;
        }
    }
}

/// `uri` with its path replaced (query kept).
fn with_path(uri: &Uri, path: &str) -> Result<Uri, Failure> {
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        path_and_query
            .parse()
            .map_err(|e: http::uri::InvalidUri| Failure::Protocol(e.to_string()))?,
    );
    Uri::from_parts(parts).map_err(|e| Failure::Protocol(e.to_string()))
}

fn build(
    method: &Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Failure> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(Full::new(body))
        .map_err(|e| Failure::Protocol(e.to_string()))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Reads the whole body, refusing more than `max` bytes (early, when the
/// response declares its length).
async fn read_response(
    response: Response<hyper::body::Incoming>,
    max: u64,
) -> Result<Response<WasiBody>, Failure> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > max
    {
        return Err(Failure::ResponseTooLarge {
            limit: max,
            length: Some(length),
        });
    }
    let (parts, body) = response.into_parts();
    let bytes = match Limited::new(body, max as usize).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Failure::ResponseTooLarge {
                limit: max,
                length: None,
            });
        }
        Err(e) => return Err(Failure::Protocol(format!("reading the response body: {e}"))),
    };
    let body = Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync();
    Ok(Response::from_parts(parts, body))
}
