//! JSON helpers: parse a record value into an object, edit it, emit it.
//!
//! Parse errors read `invalid JSON at byte N: <reason>`, with `N` the
//! 0-based byte offset into the input, so a dead-letter reason points at the
//! offending byte even in single-line JSON where serde_json's
//! `line 1 column 48213` says little.

mod host;
mod raw;

pub use raw::{ObjectWriter, RawObject, raw_str};
pub use serde_json::value::RawValue;

use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::{Document, Error};

/// A JSON object being edited: the usual shape of a record value.
///
/// In a 0.2 module, [`Record::json`](crate::Record::json) returns the
/// document the host holds: [`get`](Self::get), [`set`](Self::set) and
/// [`remove`](Self::remove) go to the host one field at a time and
/// [`into_document`](Self::into_document) hands the document on unwritten.
/// [`map`](Self::map) and the other whole-object views fetch the whole
/// document once (that costs a write and a parse, as 0.1 did).
///
/// ```
/// use weir_guest::JsonDoc;
/// use serde_json::json;
///
/// let mut doc = JsonDoc::parse(br#"{"user": {"name": "ada"}, "n": 1}"#).unwrap();
/// assert_eq!(doc.get_str("user.name"), Some("ada"));
/// doc.set("seen", true);
/// doc.remove("n");
/// doc.put("user.langs", json!(["en"])).unwrap();
/// doc.put("user.langs.1", "de").unwrap(); // one past the end appends
/// assert_eq!(doc.into_value(), json!({"user": {"name": "ada", "langs": ["en", "de"]}, "seen": true}));
/// ```
#[derive(Default)]
pub struct JsonDoc {
    repr: Repr,
}

enum Repr {
    /// Parsed here (0.1, or a document built by the module).
    Local(Map<String, Value>),
    /// Held by the host (0.2).
    Held(host::Held),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Local(Map::new())
    }
}

impl JsonDoc {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn held(doc: std::rc::Rc<host::Doc>) -> Self {
        Self {
            repr: Repr::Held(host::Held::new(doc)),
        }
    }

    /// Whether the document is one the host holds (reads and edits go to
    /// the host).
    pub fn is_held(&self) -> bool {
        matches!(self.repr, Repr::Held(_))
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
            Ok(Value::Object(map)) => Ok(Self::from(map)),
            Ok(other) => Err(not_an_object(kind_of(&other))),
            Err(err) => Err(syntax_error(bytes, &err)),
        }
    }

    /// The value at a dot-separated `path` (`"user.name"`, `"tags.0"`):
    /// each segment names an object key, or an array index when the value
    /// there is an array. Use [`map`](Self::map) for keys containing dots.
    pub fn get(&self, path: &str) -> Option<&Value> {
        match &self.repr {
            Repr::Local(map) => get_in(map, path),
            Repr::Held(held) => held.get(path),
        }
    }

    /// The string at `path` (see [`get`](Self::get)); `None` when absent or
    /// not a string.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// Sets top-level `key` to `value`, returning the previous value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        match &mut self.repr {
            Repr::Local(map) => map.insert(key, value.into()),
            Repr::Held(held) => held.set(&key, value.into()),
        }
    }

    /// Sets the value at a dot-separated `path` (see [`get`](Self::get)),
    /// creating missing objects on the way; a last segment one past the end
    /// of an array appends. Unlike [`set`](Self::set) it does not read the
    /// previous value, so on a held document it is one host call.
    ///
    /// ```
    /// use weir_guest::JsonDoc;
    ///
    /// let mut doc = JsonDoc::parse(br#"{"n": 1}"#).unwrap();
    /// assert!(doc.put("n.x", 2).is_err(), "1 is not an object");
    /// ```
    pub fn put(&mut self, path: &str, value: impl Into<Value>) -> Result<(), Error> {
        match &mut self.repr {
            Repr::Local(map) => put_in(map, path, value.into()),
            Repr::Held(held) => held.put(path, value.into()),
        }
    }

    /// Removes top-level `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match &mut self.repr {
            Repr::Local(map) => map.remove(key),
            Repr::Held(held) => held.remove(key),
        }
    }

    /// Whether top-level `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        match &self.repr {
            Repr::Local(map) => map.contains_key(key),
            Repr::Held(held) => held.contains_key(key),
        }
    }

    /// The underlying object (a held document is fetched whole, once).
    pub fn map(&self) -> &Map<String, Value> {
        match &self.repr {
            Repr::Local(map) => map,
            Repr::Held(held) => held.whole(),
        }
    }

    /// The underlying object, mutably (a held document is fetched whole
    /// and edited here from then on; it is written out at the end).
    pub fn map_mut(&mut self) -> &mut Map<String, Value> {
        if let Repr::Held(held) = &mut self.repr {
            self.repr = Repr::Local(held.take_whole());
        }
        match &mut self.repr {
            Repr::Local(map) => map,
            Repr::Held(_) => unreachable!("made local above"),
        }
    }

    /// The underlying object, by value.
    pub fn into_map(mut self) -> Map<String, Value> {
        std::mem::take(self.map_mut())
    }

    /// The object as a [`Value`].
    pub fn into_value(self) -> Value {
        Value::Object(self.into_map())
    }

    /// Serialises the object.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.repr {
            Repr::Local(map) => serde_json::to_vec(map).expect("a JSON map always serialises"),
            Repr::Held(held) => held.to_json(),
        }
    }

    /// A [`Document`] with this object as its body (pipeline index, derived
    /// id). A held document is handed on as it is.
    pub fn into_document(self) -> Document {
        match self.repr {
            Repr::Local(map) => Document::from_bytes(
                serde_json::to_vec(&map).expect("a JSON map always serialises"),
            ),
            Repr::Held(held) => Document::from_bytes(crate::Body::from_doc(held.into_doc())),
        }
    }
}

impl Clone for JsonDoc {
    /// An independent copy (of a held document: a copy the host holds).
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Local(map) => Self::from(map.clone()),
            Repr::Held(held) => Self {
                repr: Repr::Held(held.copy()),
            },
        }
    }
}

impl std::fmt::Debug for JsonDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonDoc").field("map", self.map()).finish()
    }
}

impl PartialEq for JsonDoc {
    fn eq(&self, other: &Self) -> bool {
        self.map() == other.map()
    }
}

/// The value at dot-separated `path` in `map`.
pub(super) fn get_in<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut value = map.get(segments.next()?)?;
    for segment in segments {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Sets dot-separated `path` in `map`, with the host document's rules.
fn put_in(map: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), Error> {
    let segments: Vec<&str> = path.split('.').collect();
    let (last, parents) = segments.split_last().expect("split yields one segment");
    let bad = || {
        Error::new(format!(
            "cannot set {path:?}: it runs through a value that is neither an object nor an array, or past the end of an array"
        ))
    };
    let Some((first, rest)) = parents.split_first() else {
        map.insert((*last).to_owned(), value);
        return Ok(());
    };
    let mut cursor = map
        .entry((*first).to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    for segment in rest {
        cursor = step(cursor, segment).ok_or_else(bad)?;
    }
    match cursor {
        Value::Object(map) => {
            map.insert((*last).to_owned(), value);
            Ok(())
        }
        Value::Array(items) => match last.parse::<usize>() {
            Ok(at) if at < items.len() => {
                items[at] = value;
                Ok(())
            }
            Ok(at) if at == items.len() => {
                items.push(value);
                Ok(())
            }
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// One step of [`put_in`]'s walk, creating an object for a missing key.
fn step<'a>(value: &'a mut Value, segment: &str) -> Option<&'a mut Value> {
    match value {
        Value::Object(map) => Some(
            map.entry(segment.to_owned())
                .or_insert_with(|| Value::Object(Map::new())),
        ),
        Value::Array(items) => {
            let at = segment.parse::<usize>().ok()?;
            if at == items.len() {
                items.push(Value::Object(Map::new()));
            }
            items.get_mut(at)
        }
        _ => None,
    }
}

impl From<Map<String, Value>> for JsonDoc {
    fn from(map: Map<String, Value>) -> Self {
        Self {
            repr: Repr::Local(map),
        }
    }
}

impl TryFrom<Value> for JsonDoc {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Self::from(map)),
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
