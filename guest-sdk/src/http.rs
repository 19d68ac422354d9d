//! Outbound HTTP from a module, through the host.
//!
//! A small blocking client over the standard `wasi:http/outgoing-handler`
//! import. The host decides what a module may reach (the pipeline's
//! `allowed_outbound_hosts`), bounds time and sizes, and adds credentials
//! for configured upstreams; a refused request comes back as
//! [`HttpError::Denied`], never as a trap.
//!
//! ```no_run
//! use weir_guest::http;
//! use weir_guest::serde_json::{Value, json};
//!
//! # fn demo() -> Result<(), http::HttpError> {
//! let scores: Value = http::post_json("http://127.0.0.1:8090/v1/sentiment", &json!({"texts": ["good"]}))?;
//! # Ok(()) }
//! ```
//!
//! **Native targets** (module unit tests) have no host: every call returns
//! `HttpError::Transport("no outbound HTTP on native targets")` unless a
//! test double is installed with [`mock::set`], which then answers every
//! request of the current thread:
//!
//! ```
//! use weir_guest::http::{self, Response, mock};
//! use weir_guest::serde_json::{Value, json};
//!
//! let _guard = mock::set(|req| {
//!     assert_eq!(req.url, "http://svc/echo");
//!     Ok(Response::new(200, req.body.clone()))
//! });
//! let echoed: Value = http::post_json("http://svc/echo", &json!({"a": 1})).unwrap();
//! assert_eq!(echoed, json!({"a": 1}));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

/// An outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body (empty for none).
    pub body: Vec<u8>,
    /// Asks the host for a shorter first-byte timeout than the pipeline's
    /// (the host never grants a longer one).
    pub timeout: Option<Duration>,
}

impl Request {
    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// A `POST` of `body` serialised as JSON (`content-type: application/json`).
    pub fn post_json<B: Serialize + ?Sized>(
        url: impl Into<String>,
        body: &B,
    ) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| HttpError::Decode(format!("serialising the request body: {e}")))?;
        Ok(Self {
            method: Method::Post,
            url: url.into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("accept".into(), "application/json".into()),
            ],
            body,
            timeout: None,
        })
    }

    /// Sets a header, replacing any of the same name (case-insensitive).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the first-byte timeout the module asks for.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The body as UTF-8 text (handy in test doubles).
    pub fn body_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The body parsed as JSON (handy in test doubles).
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode(e.to_string()))
    }
}

/// A response, read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A JSON response (for test doubles).
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        let mut r = Self::new(status, body.to_string());
        r.headers
            .push(("content-type".into(), "application/json".into()));
        r
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// `200..=299`.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Fails with [`HttpError::Status`] unless the status is 2xx.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(HttpError::Status {
                code: self.status,
                body: snippet(&self.text(), 512),
            })
        }
    }

    /// Parses the body as JSON; the error quotes the start of the body.
    pub fn json_body<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::Decode(format!("{e}; body starts {:?}", snippet(&self.text(), 120)))
        })
    }
}

/// Why a request produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host's policy refused the request (`HttpRequestDenied`): the
    /// destination is not in the pipeline's `allowed_outbound_hosts`, or
    /// resolves to an address it may not reach.
    Denied(String),
    /// Connecting, the response head or the whole exchange took too long
    /// (or no concurrency slot freed up in time).
    Timeout(String),
    /// The server answered with a non-2xx status.
    Status {
        /// Status code.
        code: u16,
        /// The start of the response body.
        body: String,
    },
    /// The request or response body exceeds the host's limit.
    TooLarge(String),
    /// Anything else on the way: refused connection, DNS, TLS, protocol.
    Transport(String),
    /// The response is not the JSON expected.
    Decode(String),
}

impl HttpError {
    /// Worth trying again: timeouts, transport failures, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Transport(_) => true,
            Self::Status { code, .. } => *code == 429 || *code >= 500,
            Self::Denied(_) | Self::TooLarge(_) | Self::Decode(_) => false,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(d) => write!(f, "denied by the host's HTTP policy ({d})"),
            Self::Timeout(d) => write!(f, "timed out ({d})"),
            Self::Status { code, body } if body.is_empty() => write!(f, "HTTP {code}"),
            Self::Status { code, body } => write!(f, "HTTP {code}: {body}"),
            Self::TooLarge(d) => write!(f, "body too large ({d})"),
            Self::Transport(d) => write!(f, "transport error: {d}"),
            Self::Decode(d) => write!(f, "unexpected response: {d}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// At most `max` characters of `text`, with `…` when cut.
fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Sends `request`; any status is a response (see [`Response::error_for_status`]).
pub fn send(request: &Request) -> Result<Response, HttpError> {
    if let Some(answer) = mock::answer(request) {
        return answer;
    }
    imp::send(request)
}

/// Sends `request`, requires a 2xx status and parses the body as JSON.
pub fn request_json<T: DeserializeOwned>(request: &Request) -> Result<T, HttpError> {
    send(request)?.error_for_status()?.json_body()
}

/// How [`request_json_retrying`] retries: up to `retries` more attempts
/// after the first, waiting `backoff` doubled per attempt — at least what
/// the service asked for (a JSON error body's `estimated_time`, as Hugging
/// Face sends while a model loads), at most 10 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// Wait before the first retry.
    pub backoff: Duration,
}

/// A request that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// Attempts made (1 when the error was not worth retrying).
    pub attempts: u32,
    /// The last attempt's error.
    pub error: HttpError,
}

/// [`request_json`], retrying [retryable](HttpError::is_retryable)
/// failures as `retry` says.
pub fn request_json_retrying<T: DeserializeOwned>(
    request: &Request,
    retry: Retry,
) -> Result<T, Exhausted> {
    let mut attempt = 0;
    loop {
        match request_json::<T>(request) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < retry.retries => {
                let wait = retry
                    .backoff
                    .saturating_mul(1 << attempt.min(16))
                    .max(e.requested_wait())
                    .min(Duration::from_secs(10));
                crate::log::debug!("{}: {e}; retrying in {wait:?}", request.url);
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                attempt += 1;
            }
            Err(error) => {
                return Err(Exhausted {
                    attempts: attempt + 1,
                    error,
                });
            }
        }
    }
}

impl HttpError {
    /// How long the service asked to wait before trying again: the
    /// `estimated_time` (seconds) of a JSON error body, at most 10 s.
    pub fn requested_wait(&self) -> Duration {
        match self {
            Self::Status { body, .. } => serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["estimated_time"].as_f64())
                .map_or(Duration::ZERO, |s| {
                    Duration::from_secs_f64(s.clamp(0.0, 10.0))
                }),
            _ => Duration::ZERO,
        }
    }
}

/// `GET url`; a non-2xx status is an error.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request::get(url))?.error_for_status()
}

/// `GET url`, parsing a 2xx body as JSON.
pub fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, HttpError> {
    request_json(&Request::get(url).header("accept", "application/json"))
}

/// `POST url` with `body` as JSON, parsing a 2xx body as JSON.
pub fn post_json<T: DeserializeOwned, B: Serialize + ?Sized>(
    url: &str,
    body: &B,
) -> Result<T, HttpError> {
    post_json_with(url, body, &[])
}

/// [`post_json`] with extra headers (replacing defaults of the same name,
/// e.g. `content-type`).
pub fn post_json_with<T: DeserializeOwned, B: Serialize + ?Sized>(
    url: &str,
    body: &B,
    headers: &[(&str, &str)],
) -> Result<T, HttpError> {
    let mut request = Request::post_json(url, body)?;
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request_json(&request)
}

/// A test double for HTTP: installed per thread, it answers every request
/// instead of the host (on any target).
pub mod mock {
    use std::cell::RefCell;

    use super::{HttpError, Request, Response};

    type Handler = Box<dyn FnMut(&Request) -> Result<Response, HttpError>>;

    thread_local! {
        static HANDLER: RefCell<Option<Handler>> = const { RefCell::new(None) };
    }

    /// Removes the handler when dropped.
    #[must_use = "the mock is removed when the guard is dropped"]
    pub struct Guard(());

    impl Drop for Guard {
        fn drop(&mut self) {
            clear();
        }
    }

    /// Answers this thread's requests with `handler` until the guard drops.
    pub fn set(handler: impl FnMut(&Request) -> Result<Response, HttpError> + 'static) -> Guard {
        HANDLER.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
        Guard(())
    }

    /// Removes this thread's handler.
    pub fn clear() {
        HANDLER.with(|h| *h.borrow_mut() = None);
    }

    /// The handler's answer, if one is installed. The handler is taken out
    /// while it runs, so it may itself use `http` (reaching the real path).
    pub(super) fn answer(request: &Request) -> Option<Result<Response, HttpError>> {
        let mut handler = HANDLER.with(|h| h.borrow_mut().take())?;
        let answer = handler(request);
        HANDLER.with(|h| {
            let mut slot = h.borrow_mut();
            if slot.is_none() {
                *slot = Some(handler);
            }
        });
        Some(answer)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{HttpError, Request, Response};

    pub fn send(_request: &Request) -> Result<Response, HttpError> {
        Err(HttpError::Transport(
            "no outbound HTTP on native targets".into(),
        ))
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
        RequestOptions, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{HttpError, Method, Request, Response};

    fn error(code: ErrorCode) -> HttpError {
        let debug = format!("{code:?}");
        let name = debug
            .strip_prefix("ErrorCode::")
            .unwrap_or(&debug)
            .to_owned();
        match code {
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
                HttpError::Denied(name)
            }
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::DnsTimeout
            | ErrorCode::ConnectionLimitReached => HttpError::Timeout(name),
            ErrorCode::HttpResponseBodySize(_) | ErrorCode::HttpRequestBodySize(_) => {
                HttpError::TooLarge(name)
            }
            ErrorCode::InternalError(Some(message)) => HttpError::Transport(message),
            _ => HttpError::Transport(name),
        }
    }

    fn invalid(what: &str) -> HttpError {
        HttpError::Transport(format!("invalid request: {what}"))
    }

    pub fn send(request: &Request) -> Result<Response, HttpError> {
        let (scheme, rest) = request
            .url
            .split_once("://")
            .ok_or_else(|| invalid("url has no scheme"))?;
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let list: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        let fields = Fields::from_list(&list).map_err(|e| invalid(&format!("header: {e:?}")))?;
        let outgoing = OutgoingRequest::new(fields);
        let method = match request.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
        };
        outgoing
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(authority))
            .map_err(|()| invalid("authority"))?;
        outgoing
            .set_path_with_query(Some(&path))
            .map_err(|()| invalid("path"))?;
        let options = request.timeout.map(|t| {
            let options = RequestOptions::new();
            let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            let _ = options.set_first_byte_timeout(Some(nanos));
            options
        });

        let body = outgoing.body().map_err(|()| invalid("no request body"))?;
        let future = outgoing_handler::handle(outgoing, options).map_err(error)?;
        // The host reads the body while sending: write it after `handle`. A
        // refused request closes the body; its error code arrives below.
        // Written in as few calls as the stream permits (`check-write`; the
        // host's budget is 1 MiB), then flushed once: `blocking-write-and-flush`
        // takes at most 4 KiB a call and waits for the host to take each.
        let mut write_error = None;
        if let Ok(stream) = body.write() {
            let mut rest = request.body.as_slice();
            let written = loop {
                if rest.is_empty() {
                    break stream.blocking_flush();
                }
                let permitted = match stream.check_write() {
                    Ok(0) => {
                        stream.subscribe().block();
                        continue;
                    }
                    Ok(n) => usize::try_from(n).unwrap_or(usize::MAX).min(rest.len()),
                    Err(e) => break Err(e),
                };
                let (now, later) = rest.split_at(permitted);
                if let Err(e) = stream.write(now) {
                    break Err(e);
                }
                rest = later;
            };
            if let Err(e) = written {
                write_error = Some(format!("writing the request body: {e:?}"));
            }
        }
        let _ = OutgoingBody::finish(body, None);

        let response = loop {
            match future.get() {
                Some(r) => break r,
                None => future.subscribe().block(),
            }
        };
        let response = match response {
            Ok(Ok(r)) => r,
            Ok(Err(code)) => return Err(error(code)),
            Err(()) => {
                return Err(HttpError::Transport(
                    write_error.unwrap_or_else(|| "response already taken".into()),
                ));
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| HttpError::Transport("no response body".into()))?;
        let stream = incoming
            .stream()
            .map_err(|()| HttpError::Transport("no response body stream".into()))?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(1024 * 1024) {
                // The host holds the whole body: usually one chunk, kept as is.
                Ok(chunk) if bytes.is_empty() => bytes = chunk,
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(match wasip2::http::types::http_error_code(&e) {
                        Some(code) => error(code),
                        None => HttpError::Transport(format!(
                            "reading the body: {}",
                            e.to_debug_string()
                        )),
                    });
                }
            }
        }
        drop(stream);
        let _ = IncomingBody::finish(incoming);
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn native_targets_have_no_http() {
        let err = get("http://127.0.0.1:1/").unwrap_err();
        assert_eq!(
            err,
            HttpError::Transport("no outbound HTTP on native targets".into())
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn the_mock_answers_and_sees_the_request() {
        let _guard = mock::set(|req| {
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.body_json::<Value>().unwrap(), json!({"texts": ["x"]}));
            let ct = req
                .headers
                .iter()
                .filter(|(k, _)| k == "content-type")
                .count();
            assert_eq!(ct, 1, "{:?}", req.headers);
            let auth = req
                .headers
                .iter()
                .find(|(k, _)| k == "x-extra")
                .map(|(_, v)| v.as_str());
            Ok(Response::json(200, &json!({"echo": auth})))
        });
        let out: Value = post_json_with(
            "http://svc/x",
            &json!({"texts": ["x"]}),
            &[
                ("x-extra", "1"),
                ("content-type", "application/json; charset=utf-8"),
            ],
        )
        .unwrap();
        assert_eq!(out, json!({"echo": "1"}));
    }

    #[test]
    fn statuses_and_bodies_become_typed_errors() {
        let _guard = mock::set(|req| match req.url.as_str() {
            "http://svc/429" => Ok(Response::new(429, "slow down")),
            "http://svc/401" => Ok(Response::new(401, "")),
            "http://svc/bad" => Ok(Response::new(200, "{not json")),
            _ => Err(HttpError::Denied("HttpRequestDenied".into())),
        });
        let e = post_json::<Value, _>("http://svc/429", &json!({})).unwrap_err();
        assert_eq!(
            e,
            HttpError::Status {
                code: 429,
                body: "slow down".into()
            }
        );
        assert!(e.is_retryable());
        assert_eq!(e.to_string(), "HTTP 429: slow down");
        let e = get("http://svc/401").unwrap_err();
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "HTTP 401");
        let e = get_json::<Value>("http://svc/bad").unwrap_err();
        assert!(
            matches!(&e, HttpError::Decode(m) if m.contains("{not json")),
            "{e}"
        );
        let e = get("http://elsewhere/").unwrap_err();
        assert_eq!(
            e.to_string(),
            "denied by the host's HTTP policy (HttpRequestDenied)"
        );
    }

    #[test]
    fn the_guard_removes_the_mock() {
        {
            let _guard = mock::set(|_| Ok(Response::new(204, "")));
            assert_eq!(send(&Request::get("http://svc/")).unwrap().status, 204);
        }
        assert!(matches!(
            send(&Request::get("http://svc/")),
            Err(HttpError::Transport(_))
        ));
    }

    #[test]
    fn snippets_cut_on_characters() {
        assert_eq!(snippet("héllo", 2), "hé…");
        assert_eq!(snippet("hi", 2), "hi");
    }
}
