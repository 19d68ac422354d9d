//! The output side: documents and per-record outcomes.

use std::fmt;

use serde_json::Value;

use crate::{Body, Error};

/// A document to index. `body` must be a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The JSON object to index; dereferences to its bytes.
    pub body: Body,
    /// Target index; the pipeline's index when `None`.
    pub index: Option<String>,
    /// Document id; when `None` the host derives a deterministic id from
    /// the record's topic, partition and offset and this document's position
    /// among the record's outputs, so redelivery overwrites instead of
    /// duplicating.
    pub id: Option<String>,
}

impl Document {
    /// A document whose body is `value` serialised.
    ///
    /// ```
    /// use weir_guest::Document;
    ///
    /// let doc = Document::json(&serde_json::json!({"a": 1})).with_index("tweets").with_id("t-1");
    /// assert_eq!(doc.body, br#"{"a":1}"#);
    /// assert_eq!(doc.index.as_deref(), Some("tweets"));
    /// assert_eq!(doc.id.as_deref(), Some("t-1"));
    /// ```
    pub fn json(value: &Value) -> Self {
        Self::from_bytes(serde_json::to_vec(value).expect("a JSON value always serialises"))
    }

    /// A document whose body is `body` as is (it should be a JSON object).
    pub fn from_bytes(body: impl Into<Body>) -> Self {
        Self {
            body: body.into(),
            index: None,
            id: None,
        }
    }

    /// Sends the document to `index` instead of the pipeline's index.
    #[must_use]
    pub fn with_index(mut self, index: impl Into<String>) -> Self {
        self.index = Some(index.into());
        self
    }

    /// Gives the document an explicit id instead of the derived one.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// What became of one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Zero or more documents go on to the next module (or the sink).
    Emit(Vec<Document>),
    /// The record is intentionally discarded; its offset still advances.
    Drop,
    /// The record cannot be processed; it goes to the dead-letter queue with
    /// this reason.
    Fail(String),
}

impl Outcome {
    /// Emits exactly one document.
    pub fn emit_one(document: Document) -> Self {
        Self::Emit(vec![document])
    }

    /// Fails the record with `reason`.
    ///
    /// ```
    /// use weir_guest::Outcome;
    /// assert_eq!(Outcome::fail(format_args!("bad {}", 1)), Outcome::Fail("bad 1".into()));
    /// ```
    pub fn fail(reason: impl fmt::Display) -> Self {
        Self::Fail(reason.to_string())
    }
}

impl From<Document> for Outcome {
    fn from(document: Document) -> Self {
        Self::emit_one(document)
    }
}

impl From<Vec<Document>> for Outcome {
    fn from(documents: Vec<Document>) -> Self {
        Self::Emit(documents)
    }
}

impl From<Error> for Outcome {
    fn from(error: Error) -> Self {
        Self::Fail(error.into_message())
    }
}

impl<E> From<Result<Outcome, E>> for Outcome
where
    Error: From<E>,
{
    fn from(result: Result<Outcome, E>) -> Self {
        result.unwrap_or_else(|e| Error::from(e).into())
    }
}
