//! JSON helpers: parse a record value into an object, edit it, emit it.
//!
//! Parse errors read `invalid JSON at byte N: <reason>`, with `N` the
//! 0-based byte offset into the input, so a dead-letter reason points at the
//! offending byte even in single-line JSON where serde_json's
//! `line 1 column 48213` says little.

mod raw;

pub use raw::{ObjectWriter, RawObject, raw_str};
pub use serde_json::value::RawValue;

use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::{Document, Error};

/// A JSON object being edited: the usual shape of a record value.
///
/// ```
/// use weir_guest::JsonDoc;
/// use serde_json::json;
///
/// let mut doc = JsonDoc::parse(br#"{"user": {"name": "ada"}, "n": 1}"#).unwrap();
/// assert_eq!(doc.get_str("user.name"), Some("ada"));
/// doc.set("seen", true);
/// doc.remove("n");
/// assert_eq!(doc.into_value(), json!({"user": {"name": "ada"}, "seen": true}));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonDoc {
    map: Map<String, Value>,
}

impl JsonDoc {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `bytes`, which must hold one JSON object.
    ///
    /// ```
    /// use weir_guest::JsonDoc;
    ///
    /// let err = JsonDoc::parse(br#"{"a": }"#).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid JSON at byte 6: expected value");
    /// let err = JsonDoc::parse(b"[1, 2]").unwrap_err();
    /// assert_eq!(err.to_string(), "expected a JSON object, found an array");
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self { map }),
            Ok(other) => Err(not_an_object(kind_of(&other))),
            Err(err) => Err(syntax_error(bytes, &err)),
        }
    }

    /// The value at a dot-separated `path` (`"user.name"`, `"tags.0"`):
    /// each segment names an object key, or an array index when the value
    /// there is an array. Use [`map`](Self::map) for keys containing dots.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut segments = path.split('.');
        let mut value = self.map.get(segments.next()?)?;
        for segment in segments {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// The string at `path` (see [`get`](Self::get)); `None` when absent or
    /// not a string.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// Sets top-level `key` to `value`, returning the previous value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.map.insert(key.into(), value.into())
    }

    /// Removes top-level `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// Whether top-level `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The underlying object.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The underlying object, mutably.
    pub fn map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.map
    }

    /// The underlying object, by value.
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// The object as a [`Value`].
    pub fn into_value(self) -> Value {
        Value::Object(self.map)
    }

    /// Serialises the object.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.map).expect("a JSON map always serialises")
    }

    /// A [`Document`] with this object as its body (pipeline index, derived id).
    pub fn into_document(self) -> Document {
        Document::from_bytes(self.to_bytes())
    }
}

impl From<Map<String, Value>> for JsonDoc {
    fn from(map: Map<String, Value>) -> Self {
        Self { map }
    }
}

impl TryFrom<Value> for JsonDoc {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Self { map }),
            other => Err(not_an_object(kind_of(&other))),
        }
    }
}

/// Checks that `bytes` hold exactly one JSON object, without building a tree.
///
/// ```
/// use weir_guest::json::validate_object;
///
/// assert!(validate_object(br#" {"a": [1, {"b": null}]} "#).is_ok());
/// assert_eq!(validate_object(b"42").unwrap_err().to_string(), "expected a JSON object, found a number");
/// assert_eq!(
///     validate_object(br#"{"a": 1"#).unwrap_err().to_string(),
///     "invalid JSON at byte 7: EOF while parsing an object"
/// );
/// ```
pub fn validate_object(bytes: &[u8]) -> Result<(), Error> {
    serde_json::from_slice::<IgnoredAny>(bytes).map_err(|err| syntax_error(bytes, &err))?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        Some(b'[') => Err(not_an_object("an array")),
        Some(b'"') => Err(not_an_object("a string")),
        Some(b't' | b'f') => Err(not_an_object("a boolean")),
        Some(b'n') => Err(not_an_object("null")),
        _ => Err(not_an_object("a number")),
    }
}

/// `invalid JSON at byte N: <reason>` for a serde_json error on `input`.
pub fn syntax_error(input: &[u8], err: &serde_json::Error) -> Error {
    let full = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    let reason = full.strip_suffix(&position).unwrap_or(&full);
    // At end of input serde_json reports the last byte read; the problem is
    // what is missing after it.
    let offset = if err.is_eof() {
        input.len()
    } else {
        byte_offset(input, err.line(), err.column())
    };
    Error::new(format!("invalid JSON at byte {offset}: {reason}"))
}

/// Converts serde_json's 1-based line and (byte) column into a 0-based
/// byte offset into `input`, clamped to its length.
fn byte_offset(input: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        input
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(input.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(input.len())
}

fn not_an_object(kind: &str) -> Error {
    Error::new(format!("expected a JSON object, found {kind}"))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_err(input: &str) -> String {
        JsonDoc::parse(input.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn offset_points_at_the_offending_byte() {
        let input = r#"{"a": 1, "b": tru}"#;
        let err = parse_err(input);
        let offset: usize = err
            .strip_prefix("invalid JSON at byte ")
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected message {err}"));
        assert_eq!(&input[offset..offset + 1], "}", "{err}");
    }

    #[test]
    fn offset_counts_earlier_lines() {
        let input = "{\n  \"a\": 1,\n  \"b\": x\n}";
        let err = parse_err(input);
        let expected = input.find('x').unwrap();
        assert!(
            err.starts_with(&format!("invalid JSON at byte {expected}: ")),
            "{err}"
        );
    }

    #[test]
    fn offset_counts_bytes_not_chars() {
        let input = r#"{"é😀": x}"#;
        let err = parse_err(input);
        let expected = input.find('x').unwrap();
        assert!(
            err.starts_with(&format!("invalid JSON at byte {expected}: ")),
            "{err}"
        );
    }

    #[test]
    fn empty_input_is_an_error_at_byte_zero() {
        assert_eq!(
            parse_err(""),
            "invalid JSON at byte 0: EOF while parsing a value"
        );
    }

    #[test]
    fn truncated_input_points_past_the_end() {
        assert_eq!(
            parse_err("{\"a\": [1,"),
            "invalid JSON at byte 9: EOF while parsing a value"
        );
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        assert!(parse_err(r#"{"a":1} x"#).contains("trailing characters"));
        assert!(validate_object(br#"{"a":1} x"#).is_err());
    }

    #[test]
    fn non_objects_name_their_type() {
        assert_eq!(parse_err("null"), "expected a JSON object, found null");
        assert_eq!(parse_err("\"s\""), "expected a JSON object, found a string");
        assert_eq!(
            validate_object(b" true").unwrap_err().to_string(),
            "expected a JSON object, found a boolean"
        );
        assert_eq!(
            validate_object(b"[]").unwrap_err().to_string(),
            "expected a JSON object, found an array"
        );
    }

    #[test]
    fn get_walks_objects_and_arrays() {
        let doc = JsonDoc::try_from(json!({"a": {"b": [10, {"c": "x"}]}})).unwrap();
        assert_eq!(doc.get("a.b.0"), Some(&json!(10)));
        assert_eq!(doc.get_str("a.b.1.c"), Some("x"));
        assert_eq!(doc.get("a.b.2"), None);
        assert_eq!(doc.get("a.z"), None);
        assert_eq!(doc.get_str("a.b.0"), None);
        assert_eq!(doc.get(""), None);
    }

    #[test]
    fn into_document_round_trips() {
        let mut doc = JsonDoc::new();
        doc.set("k", "v");
        let document = doc.into_document();
        assert_eq!(
            serde_json::from_slice::<Value>(&document.body).unwrap(),
            json!({"k": "v"})
        );
        assert_eq!(document.index, None);
        assert_eq!(document.id, None);
    }
}
