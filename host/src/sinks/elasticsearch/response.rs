//! Parsing of `_bulk` responses into one outcome per sent document.
//!
//! The response is deserialized with borrowed strings (no copy unless the
//! JSON has escapes), and items are matched to documents by position, so
//! a response with a different item count is unusable as a whole.

use std::borrow::Cow;

use serde::Deserialize;

/// A `_bulk` response body.
#[derive(Debug, Deserialize)]
pub struct BulkResponse<'a> {
    /// `true` when at least one item failed.
    pub errors: bool,
    #[serde(borrow)]
    pub items: Vec<Item<'a>>,
}

/// One response item: `{"<op>": {...}}` where op is the action sent.
#[derive(Debug, Deserialize)]
pub struct Item<'a> {
    #[serde(borrow, alias = "create", alias = "update", alias = "delete")]
    pub index: ItemResult<'a>,
}

/// The result of one action.
#[derive(Debug, Deserialize)]
pub struct ItemResult<'a> {
    pub status: u16,
    #[serde(default, borrow)]
    pub error: Option<ItemError<'a>>,
}

/// An item's error object.
#[derive(Debug, Deserialize)]
pub struct ItemError<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: Cow<'a, str>,
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub caused_by: Option<Cause<'a>>,
}

/// The `caused_by` of an item error (often holds the useful detail).
#[derive(Debug, Deserialize)]
pub struct Cause<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: Cow<'a, str>,
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
}

/// Why a 2xx bulk response cannot be used; the request is retried whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    #[error("unparsable bulk response: {0}")]
    Unparsable(String),
    #[error("bulk response has {got} items for {sent} documents")]
    CountMismatch { sent: usize, got: usize },
}

/// Parses `body` and checks it answers exactly `sent` documents.
pub fn parse(body: &[u8], sent: usize) -> Result<BulkResponse<'_>, BadResponse> {
    let resp: BulkResponse<'_> =
        serde_json::from_slice(body).map_err(|e| BadResponse::Unparsable(e.to_string()))?;
    if resp.items.len() != sent {
        return Err(BadResponse::CountMismatch {
            sent,
            got: resp.items.len(),
        });
    }
    Ok(resp)
}

impl ItemError<'_> {
    /// `"<type>: <reason>"` plus the cause when there is one.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: {}",
            self.ty,
            self.reason.as_deref().unwrap_or("(no reason)")
        );
        if let Some(c) = &self.caused_by {
            s.push_str(&format!(
                "; caused by {}: {}",
                c.ty,
                c.reason.as_deref().unwrap_or("(no reason)")
            ));
        }
        s
    }
}

/// The `error.type`/`error.reason` of a non-bulk error body, for messages.
pub fn error_summary(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        error: Option<ItemError<'a>>,
    }
    match serde_json::from_slice::<Envelope<'_>>(body) {
        Ok(Envelope { error: Some(e) }) => e.describe(),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            match text.char_indices().nth(300) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None if text.is_empty() => "(empty body)".to_owned(),
                None => text.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = r#"{"took":3,"errors":true,"items":[
        {"index":{"_index":"i","_id":"1","_version":1,"result":"created","status":201,"_seq_no":0}},
        {"index":{"_index":"i","_id":"2","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}},
        {"create":{"_index":"i","_id":"3","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n] of type [long] in document with id '3'. Preview of field's value: 'x\"y'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"x\""}}}}
    ]}"#;

    #[test]
    fn parses_items_by_position() {
        let r = parse(MIXED.as_bytes(), 3).unwrap();
        assert!(r.errors);
        let st: Vec<u16> = r.items.iter().map(|i| i.index.status).collect();
        assert_eq!(st, [201, 429, 400]);
        assert!(r.items[0].index.error.is_none());
        let e = r.items[2].index.error.as_ref().unwrap();
        assert_eq!(
            e.describe(),
            "mapper_parsing_exception: failed to parse field [n] of type [long] in document with id '3'. \
             Preview of field's value: 'x\"y'; caused by illegal_argument_exception: For input string: \"x\""
        );
    }

    #[test]
    fn borrows_unescaped_strings() {
        let r = parse(MIXED.as_bytes(), 3).unwrap();
        let e = r.items[1].index.error.as_ref().unwrap();
        assert!(matches!(e.ty, Cow::Borrowed(_)));
    }

    #[test]
    fn count_mismatch_and_garbage_are_bad() {
        assert_eq!(
            parse(MIXED.as_bytes(), 4).unwrap_err(),
            BadResponse::CountMismatch { sent: 4, got: 3 }
        );
        assert!(matches!(
            parse(b"<html>", 1),
            Err(BadResponse::Unparsable(_))
        ));
        assert!(matches!(
            parse(br#"{"errors":false,"items":[{"ind"#, 1),
            Err(BadResponse::Unparsable(_))
        ));
        assert!(matches!(
            parse(br#"{"took":1}"#, 0),
            Err(BadResponse::Unparsable(_))
        ));
    }

    #[test]
    fn summarizes_error_bodies() {
        assert_eq!(
            error_summary(br#"{"error":{"type":"security_exception","reason":"missing authentication"},"status":401}"#),
            "security_exception: missing authentication"
        );
        assert_eq!(error_summary(b"Bad Gateway\n"), "Bad Gateway");
        assert_eq!(error_summary(b""), "(empty body)");
    }
}
