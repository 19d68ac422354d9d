//! Reading Elasticsearch `_bulk` request bodies (shared by the fault proxy and
//! the no-op bulk endpoint).

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::CONTENT_ENCODING;
use serde::Deserialize;

/// One bulk action: its action line plus, except for `delete`, its source line.
#[derive(Debug)]
pub(crate) struct BulkItem<'a> {
    /// `index`, `create`, `update` or `delete`.
    pub action: String,
    /// Target index: the action's `_index`, else the one from the URL path.
    pub index: Option<String>,
    pub id: Option<String>,
    /// The item's lines exactly as received, each ending in `\n`.
    pub raw: Vec<&'a [u8]>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "_index")]
    index: Option<String>,
    #[serde(rename = "_id")]
    id: Option<String>,
}

/// Whether the body is gzip-compressed according to `Content-Encoding`.
pub(crate) fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

/// The body decoded according to its `Content-Encoding` (identity or gzip).
pub(crate) fn decode_body(headers: &HeaderMap, body: Bytes) -> Result<Bytes> {
    if !is_gzip(headers) {
        return Ok(body);
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::MultiGzDecoder::new(&body[..])
        .read_to_end(&mut out)
        .context("gunzip a request body marked content-encoding: gzip")?;
    Ok(out.into())
}

/// The index named in a `/{index}/_bulk` path, if any.
pub(crate) fn path_index(path: &str) -> Option<String> {
    let rest = path.strip_suffix("/_bulk")?.trim_start_matches('/');
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
}

/// Whether `path` is a bulk endpoint (`/_bulk` or `/{index}/_bulk`).
pub(crate) fn is_bulk_path(path: &str) -> bool {
    path == "/_bulk" || path_index(path).is_some()
}

/// Splits an NDJSON bulk body into its items, in order.
pub(crate) fn parse<'a>(body: &'a [u8], default_index: Option<&str>) -> Result<Vec<BulkItem<'a>>> {
    let mut lines = body
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty());
    let mut items = Vec::new();
    while let Some(line) = lines.next() {
        let mut action: HashMap<String, Meta> =
            serde_json::from_slice(line).with_context(|| {
                format!(
                    "bulk action line {} is not an action object: {}",
                    items.len() + 1,
                    String::from_utf8_lossy(line).trim()
                )
            })?;
        if action.len() != 1 {
            bail!(
                "bulk action line names {} actions, expected 1",
                action.len()
            );
        }
        let (name, meta) = action.drain().next().expect("one entry");
        let mut raw = vec![line];
        match name.as_str() {
            "delete" => {}
            "index" | "create" | "update" => {
                let source = lines
                    .next()
                    .with_context(|| format!("bulk `{name}` action has no source line"))?;
                raw.push(source);
            }
            other => bail!("unknown bulk action `{other}`"),
        }
        items.push(BulkItem {
            action: name,
            index: meta.index.or_else(|| default_index.map(str::to_owned)),
            id: meta.id,
            raw,
        });
    }
    Ok(items)
}

/// Appends the item's lines to `out`, making sure each ends with a newline.
pub(crate) fn write_raw(item: &BulkItem<'_>, out: &mut Vec<u8>) {
    for line in &item.raw {
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_create_update_delete() {
        let body = b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"f\":1}\n\
            {\"create\":{\"_id\":\"2\"}}\n{\"f\":2}\n\
            {\"delete\":{\"_index\":\"b\",\"_id\":\"3\"}}\n\
            {\"update\":{\"_index\":\"a\",\"_id\":\"4\"}}\n{\"doc\":{}}";
        let items = parse(body, Some("dflt")).unwrap();
        let got: Vec<_> = items
            .iter()
            .map(|i| {
                (
                    i.action.as_str(),
                    i.index.as_deref(),
                    i.id.as_deref(),
                    i.raw.len(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("index", Some("a"), Some("1"), 2),
                ("create", Some("dflt"), Some("2"), 2),
                ("delete", Some("b"), Some("3"), 1),
                ("update", Some("a"), Some("4"), 2),
            ]
        );
        let mut out = Vec::new();
        write_raw(&items[3], &mut out);
        assert_eq!(
            out,
            b"{\"update\":{\"_index\":\"a\",\"_id\":\"4\"}}\n{\"doc\":{}}\n"
        );
    }

    #[test]
    fn rejects_missing_source_and_unknown_action() {
        assert!(parse(b"{\"index\":{}}\n", None).is_err());
        assert!(parse(b"{\"upsert\":{}}\n{}\n", None).is_err());
    }

    #[test]
    fn bulk_paths() {
        assert!(is_bulk_path("/_bulk"));
        assert_eq!(path_index("/logs/_bulk").as_deref(), Some("logs"));
        assert!(!is_bulk_path("/logs/_doc/_bulk"));
        assert!(!is_bulk_path("/_search"));
    }
}
