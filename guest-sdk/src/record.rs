//! The input side: one Kafka record.

use crate::json::{self, JsonDoc};
use crate::{Body, Document, Error};

/// One Kafka header. `value` is `None` for a null header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value; `None` for a null header.
    pub value: Option<Vec<u8>>,
}

/// One record read from Kafka, exactly as the broker returned it.
///
/// In a 0.2 module its `value` is usually a document the host holds (see
/// [`Body`]): [`json`](Self::json) edits it in place, and its bytes are
/// written only if read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Topic the record was read from.
    pub topic: String,
    /// Partition within the topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch, when the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// Record key, if any.
    pub key: Option<Vec<u8>>,
    /// Record headers, in broker order.
    pub headers: Vec<Header>,
    /// Record value (usually JSON); dereferences to its bytes.
    pub value: Body,
}

impl Record {
    /// A record with the given value and placeholder coordinates
    /// (topic `test`, partition 0, offset 0), for unit tests.
    pub fn from_value(value: impl Into<Body>) -> Self {
        Self {
            topic: "test".to_owned(),
            value: value.into(),
            ..Self::default()
        }
    }

    /// The value as a JSON object to read and edit.
    ///
    /// In a 0.2 module whose value the host holds, this is that document:
    /// nothing is parsed, reads and edits go to the host, and
    /// [`JsonDoc::into_document`] hands it on without writing it out.
    /// Otherwise the bytes are parsed; errors read
    /// `invalid JSON at byte N: <reason>` or
    /// `expected a JSON object, found <type>`.
    pub fn json(&self) -> Result<JsonDoc, Error> {
        match self.value.doc() {
            Some(doc) => Ok(JsonDoc::held(std::rc::Rc::clone(doc))),
            None => JsonDoc::parse(&self.value),
        }
    }

    /// The record value, unchanged, as a document, after checking that it
    /// is a JSON object (no tree is built, nothing is copied; a document
    /// the host holds is one already and is handed back as is).
    ///
    /// ```
    /// use weir_guest::Record;
    ///
    /// let doc = Record::from_value(r#"{"a": 1}"#).into_document().unwrap();
    /// assert_eq!(doc.body, br#"{"a": 1}"#);
    /// assert!(Record::from_value("oops").into_document().is_err());
    /// ```
    pub fn into_document(self) -> Result<Document, Error> {
        if !self.value.is_held() {
            json::validate_object(&self.value)?;
        }
        Ok(Document::from_bytes(self.value))
    }

    /// The value as UTF-8 text.
    pub fn value_str(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.value).map_err(|e| Error::new(format!("value is not UTF-8: {e}")))
    }

    /// The value of the last header named `key` (`Some(None)` for a null header).
    pub fn header(&self, key: &str) -> Option<Option<&[u8]>> {
        self.headers
            .iter()
            .rev()
            .find(|h| h.key == key)
            .map(|h| h.value.as_deref())
    }

    /// `topic/partition/offset`: a stable name for this record, e.g. to
    /// derive document ids.
    pub fn coordinates(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_prefers_the_last_occurrence() {
        let mut record = Record::from_value("{}");
        record.headers = vec![
            Header {
                key: "k".into(),
                value: Some(b"1".to_vec()),
            },
            Header {
                key: "k".into(),
                value: None,
            },
        ];
        assert_eq!(record.header("k"), Some(None));
        assert_eq!(record.header("other"), None);
    }

    #[test]
    fn json_errors_carry_a_byte_offset() {
        let err = Record::from_value("{\"a\" 1}").json().unwrap_err();
        assert_eq!(err.to_string(), "invalid JSON at byte 5: expected `:`");
    }

    #[test]
    fn coordinates_name_the_record() {
        let mut record = Record::from_value("{}");
        record.partition = 3;
        record.offset = 42;
        assert_eq!(record.coordinates(), "test/3/42");
    }
}
