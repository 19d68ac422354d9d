//! Test fixture for host-provided HTTP: every record describes a request,
//! the module performs it through the standard `wasi:http/outgoing-handler`
//! import, and emits what it saw.
//!
//! Input: `{"url": "http://127.0.0.1:8080/x", "method": "POST",
//! "body": "...", "headers": {"name": "value"}, "repeat": 1}` (only `url`
//! is required; `method` defaults to GET, `repeat` to 1).
//!
//! Output: `{"status": 200, "body": "...", "error": null,
//! "request_headers": {...}}`, where `error` is the `error-code` the host
//! returned (e.g. `ErrorCode::HttpRequestDenied`) and `request_headers` is
//! the module's own view of the headers of the request it sent. With
//! `repeat > 1` the request is made that many times and the output is
//! `{"ok": n, "failed": n, "status": last, "error": last error}`.
//!
//! With `"fail_on_error": true` a single request the host refuses or that
//! fails makes the record fail with the error instead (so it reaches the
//! dead-letter topic with the host's `error-code` as its reason).

use weir_guest::serde_json::{Map, Value, json};
use weir_guest::{Error, Outcome, Record};

#[cfg(target_arch = "wasm32")]
mod wasi_http;

/// Performs the request the record describes.
#[weir_guest::module(world = "0.1")]
pub fn process(record: Record) -> Result<Outcome, Error> {
    let doc = record.json()?;
    let spec = Spec::from_json(doc.map())?;
    let repeat = spec.repeat.max(1);
    let out = if repeat == 1 {
        match fetch(&spec) {
            Ok(r) => json!({
                "status": r.status,
                "body": String::from_utf8_lossy(&r.body),
                "error": Value::Null,
                "request_headers": headers_json(&r.sent_headers),
            }),
            Err(e) if spec.fail_on_error => {
                return Err(Error::new(format!(
                    "request to {} failed: {}",
                    spec.url, e.message
                )));
            }
            Err(e) => {
                json!({"status": Value::Null, "body": Value::Null, "error": e.message, "request_headers": headers_json(&e.sent_headers)})
            }
        }
    } else {
        let (mut ok, mut failed, mut status, mut error) = (0u64, 0u64, Value::Null, Value::Null);
        for _ in 0..repeat {
            match fetch(&spec) {
                Ok(r) => {
                    ok += 1;
                    status = json!(r.status);
                }
                Err(e) => {
                    failed += 1;
                    error = json!(e.message);
                }
            }
        }
        json!({"ok": ok, "failed": failed, "status": status, "error": error})
    };
    Ok(Outcome::emit_one(weir_guest::Document::json(&out)))
}

/// One request, as a record describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub url: String,
    pub method: String,
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub repeat: u64,
    pub fail_on_error: bool,
}

impl Spec {
    fn from_json(doc: &Map<String, Value>) -> Result<Self, Error> {
        let url = doc
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::new("`url` (a string) is required"))?
            .to_string();
        let method = doc
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let body = doc.get("body").map(|b| match b {
            Value::String(s) => s.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        });
        let headers = doc
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let repeat = doc.get("repeat").and_then(Value::as_u64).unwrap_or(1);
        let fail_on_error = doc
            .get("fail_on_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            url,
            method,
            body,
            headers,
            repeat,
            fail_on_error,
        })
    }
}

/// A response, fully read.
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    /// The module's view of the headers it sent.
    pub sent_headers: Vec<(String, Vec<u8>)>,
}

/// Why a request failed, and the headers the module sent (if it got that far).
pub struct Failed {
    pub message: String,
    pub sent_headers: Vec<(String, Vec<u8>)>,
}

fn headers_json(headers: &[(String, Vec<u8>)]) -> Value {
    let mut m = Map::new();
    for (k, v) in headers {
        m.insert(k.clone(), json!(String::from_utf8_lossy(v)));
    }
    Value::Object(m)
}

#[cfg(target_arch = "wasm32")]
fn fetch(spec: &Spec) -> Result<Fetched, Failed> {
    wasi_http::fetch(spec)
}

/// Natively there is no host to ask.
#[cfg(not(target_arch = "wasm32"))]
fn fetch(_spec: &Spec) -> Result<Fetched, Failed> {
    Err(Failed {
        message: "wasi:http is only available inside a Weir host".into(),
        sent_headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_request_spec() {
        let doc = weir_guest::JsonDoc::parse(
            br#"{"url":"http://x/y","body":{"a":1},"headers":{"x-a":"1"},"repeat":3}"#,
        )
        .unwrap();
        let spec = Spec::from_json(doc.map()).unwrap();
        assert_eq!(spec.method, "GET");
        assert_eq!(spec.body.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(spec.headers, vec![("x-a".to_string(), "1".to_string())]);
        assert_eq!(spec.repeat, 3);
        assert!(!spec.fail_on_error);
        assert!(Spec::from_json(weir_guest::JsonDoc::parse(b"{}").unwrap().map()).is_err());
    }

    #[test]
    fn fail_on_error_fails_the_record_with_the_error() {
        let record = Record::from_value(r#"{"url":"http://x/y","fail_on_error":true}"#);
        let err = process(record).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("request to http://x/y failed: wasi:http is only available"),
            "{err}"
        );
    }
}
