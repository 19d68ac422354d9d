//! The request itself, on the raw `wasi:http` bindings.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

use super::{Failed, Fetched, Spec};

fn fail(message: impl Into<String>, sent_headers: &[(String, Vec<u8>)]) -> Failed {
    Failed {
        message: message.into(),
        sent_headers: sent_headers.to_vec(),
    }
}

pub fn fetch(spec: &Spec) -> Result<Fetched, Failed> {
    let (scheme, rest) = spec
        .url
        .split_once("://")
        .ok_or_else(|| fail("url has no scheme", &[]))?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.is_empty() { "/" } else { path };

    let list: Vec<(String, Vec<u8>)> = spec
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&list).map_err(|e| fail(format!("header: {e:?}"), &[]))?;
    let request = OutgoingRequest::new(fields);
    let method = match spec.method.as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    request
        .set_method(&method)
        .map_err(|()| fail("bad method", &[]))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| fail("bad scheme", &[]))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| fail("bad authority", &[]))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| fail("bad path", &[]))?;

    // Everything the module can know about its own request's headers.
    let sent = request.headers().entries();
    let body = request
        .body()
        .map_err(|()| fail("no request body", &sent))?;
    let future =
        outgoing_handler::handle(request, None).map_err(|e| fail(format!("{e:?}"), &sent))?;

    // Write the body after `handle`, as the host reads it while sending.
    // A refused request closes the body: its error shows up below.
    let mut write_error = None;
    if let Ok(stream) = body.write() {
        for chunk in spec.body.as_deref().unwrap_or_default().chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                write_error = Some(format!("writing the body: {e:?}"));
                break;
            }
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
        Ok(Err(code)) => return Err(fail(format!("{code:?}"), &sent)),
        Err(()) => {
            return Err(fail(
                write_error.unwrap_or_else(|| "response already taken".into()),
                &sent,
            ));
        }
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| fail("no response body", &sent))?;
    let stream = incoming
        .stream()
        .map_err(|()| fail("no response body stream", &sent))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                let code = wasip2::http::types::http_error_code(&e);
                return Err(fail(
                    format!("reading the body: {code:?} {}", e.to_debug_string()),
                    &sent,
                ));
            }
        }
    }
    drop(stream);
    let _ = IncomingBody::finish(incoming);
    Ok(Fetched {
        status,
        body: bytes,
        sent_headers: sent,
    })
}
