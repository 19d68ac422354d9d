//! A fast path for modules that touch a few top-level fields of large
//! records: parse the object one level deep, keep every value as the raw
//! JSON text it was in the input, and write a new object that copies the
//! untouched values verbatim.
//!
//! Compared with [`JsonDoc`](super::JsonDoc) this builds no tree and
//! allocates almost nothing per value, and it keeps the input's key order;
//! the whole input is still fully validated.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Error;

/// A JSON object whose values are left unparsed, borrowed from the input.
///
/// ```
/// use weir_guest::json::{ObjectWriter, RawObject};
///
/// let input = br#"{"id": 7, "text": "Hi \u00e9", "nested": {"deep": [1, 2]}}"#;
/// let object = RawObject::parse(input).unwrap();
/// assert_eq!(object.get_str("text").as_deref(), Some("Hi é"));
/// assert_eq!(object.get("nested").map(|v| v.get()), Some(r#"{"deep": [1, 2]}"#));
///
/// let mut out = ObjectWriter::with_capacity(input.len());
/// for (key, value) in object.entries() {
///     if key == "text" {
///         out.value(key, &"cleaned");
///     } else {
///         out.raw(key, value);
///     }
/// }
/// assert_eq!(out.finish(), br#"{"id":7,"text":"cleaned","nested":{"deep": [1, 2]}}"#);
/// ```
#[derive(Debug)]
pub struct RawObject<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    /// Parses `bytes`, which must hold one JSON object; errors read like
    /// [`JsonDoc::parse`](super::JsonDoc::parse)'s.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            // Not an object: report the syntax error, or the type found.
            super::validate_object(bytes)?;
        }
        serde_json::from_slice::<Entries<'a>>(bytes)
            .map(|Entries(entries)| Self { entries })
            .map_err(|err| super::syntax_error(bytes, &err))
    }

    /// Entries in input order (duplicate keys included).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// The raw value of `key` (its last occurrence).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// The string value of `key`, unescaped; `None` when absent or not a
    /// string. Borrowed when the string has no escapes.
    pub fn get_str(&self, key: &str) -> Option<Cow<'a, str>> {
        raw_str(self.get(key)?)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object is `{}`.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The string a raw value holds, unescaped; `None` when it is not a string.
pub fn raw_str(value: &RawValue) -> Option<Cow<'_, str>> {
    if !value.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<CowStr<'_>>(value.get())
        .ok()
        .map(|CowStr(s)| s)
}

/// Writes a JSON object entry by entry (compact, no whitespace).
#[derive(Debug)]
pub struct ObjectWriter {
    buf: Vec<u8>,
}

impl ObjectWriter {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        Self { buf }
    }

    /// Writes `key` with a raw JSON value, copied verbatim.
    pub fn raw(&mut self, key: &str, value: &RawValue) {
        self.key(key);
        self.buf.extend_from_slice(value.get().as_bytes());
    }

    /// Writes `key` with `value` serialised.
    pub fn value<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.key(key);
        serde_json::to_writer(&mut self.buf, value).expect("serialising to a Vec");
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        serde_json::to_writer(&mut self.buf, key).expect("serialising to a Vec");
        self.buf.push(b':');
    }

    /// The finished object.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// Top-level entries, deserialised without building values.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    entries.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// A string borrowed from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CowStrVisitor;

        impl<'de> Visitor<'de> for CowStrVisitor {
            type Value = CowStr<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(s)))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s)))
            }
        }

        deserializer.deserialize_str(CowStrVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_escapes_are_unescaped() {
        let object = RawObject::parse(br#"{"a\"b": 1, "plain": 2}"#).unwrap();
        let keys: Vec<&str> = object.entries().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a\"b", "plain"]);
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let object = RawObject::parse(br#"{"a": "x", "b": "\n", "c": 1}"#).unwrap();
        assert!(matches!(object.get_str("a"), Some(Cow::Borrowed("x"))));
        assert!(matches!(object.get_str("b"), Some(Cow::Owned(s)) if s == "\n"));
        assert_eq!(object.get_str("c"), None);
        assert_eq!(object.get_str("missing"), None);
    }

    #[test]
    fn last_duplicate_wins_for_get() {
        let object = RawObject::parse(br#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(object.get("a").map(RawValue::get), Some("2"));
        assert_eq!(object.len(), 2);
    }

    #[test]
    fn errors_match_json_doc() {
        for input in [
            &b"[1]"[..],
            b"",
            b"{\"a\": }",
            b"{\"a\": 1",
            b"  null",
            b"{} x",
        ] {
            let raw = RawObject::parse(input).unwrap_err().to_string();
            let doc = super::super::JsonDoc::parse(input).unwrap_err().to_string();
            assert_eq!(raw, doc, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn nested_values_are_validated() {
        let err = RawObject::parse(br#"{"a": {"b": [1, }}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid JSON at byte 16: "), "{err}");
    }

    #[test]
    fn writer_escapes_keys_and_values() {
        let mut out = ObjectWriter::with_capacity(0);
        assert_eq!(ObjectWriter::with_capacity(0).finish(), b"{}");
        out.value("k\"", "v\n");
        out.value("n", &1);
        assert_eq!(out.finish(), br#"{"k\"":"v\n","n":1}"#);
    }
}
