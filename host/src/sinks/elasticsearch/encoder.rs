//! `_bulk` NDJSON encoding straight into a reusable buffer, and gzip.
//!
//! Each document becomes two lines:
//! `{"index":{"_index":"<index>","_id":"<id>"}}\n<body>\n`. The index and id
//! are JSON-escaped byte by byte into the buffer; the body, already JSON, is
//! copied as-is. No allocation happens per document.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Why a document body cannot be framed as one NDJSON line. The document is
/// dead-lettered with this reason instead of being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("document body is empty")]
    Empty,
    #[error("document body is not a JSON object")]
    NotAnObject,
    #[error("document body contains a raw newline inside a JSON string (invalid JSON)")]
    NewlineInString,
}

/// Fixed bytes per document besides index, id and body.
const ACTION_OVERHEAD: usize = r#"{"index":{"_index":"","_id":""}}"#.len() + 2;

/// Upper bound of the encoded size of one document, for batch sizing.
pub fn encoded_size_hint(index: &str, id: &str, body: &[u8]) -> usize {
    ACTION_OVERHEAD + index.len() + id.len() + body.len()
}

/// Appends one `index` action and its body to `buf`.
///
/// A trailing line break on the body is dropped; a body with line breaks
/// between JSON tokens (pretty-printed) is compacted in place. On error
/// `buf` is left exactly as it was.
pub fn encode_index(
    buf: &mut BytesMut,
    index: &str,
    id: &str,
    body: &[u8],
) -> Result<(), BodyError> {
    let body = body.trim_ascii();
    match body.first() {
        None => return Err(BodyError::Empty),
        Some(b'{') => {}
        Some(_) => return Err(BodyError::NotAnObject),
    }
    let start = buf.len();
    buf.reserve(encoded_size_hint(index, id, body) + 16);
    buf.put_slice(br#"{"index":{"_index":"#);
    put_json_str(buf, index);
    buf.put_slice(br#","_id":"#);
    put_json_str(buf, id);
    buf.put_slice(b"}}\n");
    if memchr_newline(body) {
        if let Err(e) = put_compact(buf, body) {
            buf.truncate(start);
            return Err(e);
        }
    } else {
        buf.put_slice(body);
    }
    buf.put_u8(b'\n');
    Ok(())
}

fn memchr_newline(b: &[u8]) -> bool {
    b.iter().any(|&c| c == b'\n' || c == b'\r')
}

/// Writes `s` as a JSON string literal (RFC 8259 escaping).
fn put_json_str(buf: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut clean = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        buf.put_slice(&bytes[clean..i]);
        if esc.is_empty() {
            buf.put_slice(b"\\u00");
            buf.put_u8(HEX[(b >> 4) as usize]);
            buf.put_u8(HEX[(b & 0xf) as usize]);
        } else {
            buf.put_slice(esc);
        }
        clean = i + 1;
    }
    buf.put_slice(&bytes[clean..]);
    buf.put_u8(b'"');
}

/// Copies JSON `body` dropping whitespace outside strings. A raw newline
/// inside a string is invalid JSON and would break the NDJSON framing.
fn put_compact(buf: &mut BytesMut, body: &[u8]) -> Result<(), BodyError> {
    let (mut in_str, mut escaped) = (false, false);
    for &b in body {
        if in_str {
            if b == b'\n' || b == b'\r' {
                return Err(BodyError::NewlineInString);
            }
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            buf.put_u8(b);
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_str = b == b'"';
            buf.put_u8(b);
        }
    }
    Ok(())
}

/// Gzip level for bulk bodies: 1 (`fast`). Measured by `tests::gzip_levels`
/// on 1000 log-like documents (213 KiB NDJSON, flate2's miniz_oxide):
/// level 1 compresses 8.8x at 250-440 MB/s, level 6 11.9x at ~85 MB/s. Level
/// 6 saves a quarter of the (already small) wire bytes for 3-5x the CPU; the
/// sink shares its cores with the Wasm modules, so CPU is the scarcer one.
pub const GZIP_LEVEL: Compression = Compression::fast();

/// Gzips `ndjson` into a new buffer.
pub fn gzip(ndjson: &[u8], level: Compression) -> Bytes {
    let mut out = BytesMut::with_capacity(ndjson.len() / 4 + 64).writer();
    let mut enc = GzEncoder::new(&mut out, level);
    // Writing into memory cannot fail.
    enc.write_all(ndjson).expect("gzip into memory");
    enc.finish().expect("gzip into memory");
    out.into_inner().freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(index: &str, id: &str, body: &str) -> Result<String, BodyError> {
        let mut buf = BytesMut::new();
        encode_index(&mut buf, index, id, body.as_bytes())?;
        Ok(String::from_utf8(buf.to_vec()).unwrap())
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(
            enc("logs", "t-0-1-0", r#"{"a":1}"#).unwrap(),
            "{\"index\":{\"_index\":\"logs\",\"_id\":\"t-0-1-0\"}}\n{\"a\":1}\n"
        );
    }

    #[test]
    fn escapes_index_and_id() {
        let out = enc("lo\"gs", "a\\b\n\t\u{1}é\u{7f}", "{}").unwrap();
        let first = out.lines().next().unwrap();
        assert_eq!(
            first,
            r#"{"index":{"_index":"lo\"gs","_id":"a\\b\n\t\u0001é"#.to_owned() + "\u{7f}\"}}"
        );
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["index"]["_id"], "a\\b\n\t\u{1}é\u{7f}");
        assert_eq!(v["index"]["_index"], "lo\"gs");
    }

    #[test]
    fn strips_trailing_newline() {
        assert_eq!(
            enc("i", "1", "{\"a\":1}\r\n").unwrap().lines().nth(1),
            Some("{\"a\":1}")
        );
    }

    #[test]
    fn compacts_pretty_json() {
        let out = enc("i", "1", "{\n  \"a b\": \"x\\\" y\",\n  \"c\": [1, 2]\n}").unwrap();
        assert_eq!(out.lines().nth(1), Some(r#"{"a b":"x\" y","c":[1,2]}"#));
        assert_eq!(out.lines().count(), 2);
    }

    #[test]
    fn rejects_unframeable_bodies_and_leaves_buffer_intact() {
        let mut buf = BytesMut::from(&b"prefix\n"[..]);
        for (body, err) in [
            ("", BodyError::Empty),
            ("  \n", BodyError::Empty),
            ("[1]", BodyError::NotAnObject),
            ("{\"a\":\"x\ny\"}", BodyError::NewlineInString),
        ] {
            assert_eq!(encode_index(&mut buf, "i", "1", body.as_bytes()), Err(err));
            assert_eq!(&buf[..], b"prefix\n");
        }
    }

    #[test]
    fn gzip_round_trips() {
        let mut buf = BytesMut::new();
        encode_index(&mut buf, "i", "1", br#"{"a":1}"#).unwrap();
        let gz = gzip(&buf, GZIP_LEVEL);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, &buf[..]);
    }

    /// Measurement behind [`GZIP_LEVEL`]; run with `--ignored --nocapture`.
    #[test]
    #[ignore = "measurement, not a check"]
    fn gzip_levels() {
        let docs: Vec<(String, String)> = (0..1000usize)
            .map(|n| {
                let body = format!(
                    r#"{{"@timestamp":"2026-11-26T12:{:02}:{:02}.{n:03}Z","host":"web-{}","level":"{}","message":"GET /api/v1/items/{} 200 {}ms","user":{{"id":{},"agent":"Mozilla/5.0"}}}}"#,
                    n % 60,
                    (n * 7) % 60,
                    n % 13,
                    ["info", "warn", "error"][n % 3],
                    n * 31,
                    n % 97,
                    n * 17
                );
                (format!("logs-0-{n}-0"), body)
            })
            .collect();
        let mut buf = BytesMut::new();
        let t = std::time::Instant::now();
        for _ in 0..50 {
            buf.clear();
            for (id, body) in &docs {
                encode_index(&mut buf, "logs-2026.11.26", id, body.as_bytes()).unwrap();
            }
        }
        let secs = t.elapsed().as_secs_f64() / 50.0;
        eprintln!(
            "encode: {:.0} docs/s, {:.0} MB/s (reused buffer)",
            docs.len() as f64 / secs,
            buf.len() as f64 / secs / 1e6
        );
        for level in [1, 6] {
            let t = std::time::Instant::now();
            let mut out = Bytes::new();
            for _ in 0..20 {
                out = gzip(&buf, Compression::new(level));
            }
            let secs = t.elapsed().as_secs_f64() / 20.0;
            eprintln!(
                "level {level}: {} -> {} bytes ({:.1}x), {:.2} ms, {:.0} MB/s",
                buf.len(),
                out.len(),
                buf.len() as f64 / out.len() as f64,
                secs * 1e3,
                buf.len() as f64 / secs / 1e6
            );
        }
    }
}
