//! [`Body`]: a record value or document body, as bytes or as a document
//! the host holds.

use std::cell::OnceCell;
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

use crate::__private::bindings_v02::weir::pipeline::types::Doc;

/// A record's value or a document's body: JSON bytes.
///
/// In a module built for the 0.2 world (the default) a record's value of
/// a kilobyte or more arrives as a document the host has already parsed
/// (a smaller one arrives as bytes, as in 0.1; the host decides per
/// record, so code must not assume either form); the bytes of a held one
/// are then written out only if the module reads them (through `Deref`),
/// and [`Record::json`](crate::Record::json) edits the host's document
/// directly. Handing the body on unread
/// ([`Record::into_document`](crate::Record::into_document),
/// `Document::from_bytes(record.value)`) costs nothing.
///
/// The bytes of a held document are written when first read: read them
/// before editing the document through [`JsonDoc`](crate::JsonDoc) if you
/// need the record as it came.
#[derive(Default)]
pub struct Body {
    bytes: OnceCell<Vec<u8>>,
    doc: Option<Rc<Doc>>,
}

impl Body {
    /// A body of these bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self {
            bytes: OnceCell::from(bytes),
            doc: None,
        }
    }

    pub(crate) fn from_doc(doc: Rc<Doc>) -> Self {
        Self {
            bytes: OnceCell::new(),
            doc: Some(doc),
        }
    }

    /// The host's document behind this body, if it is one.
    pub(crate) fn doc(&self) -> Option<&Rc<Doc>> {
        self.doc.as_ref()
    }

    /// Whether the body is a document the host holds (0.2) rather than
    /// bytes.
    pub fn is_held(&self) -> bool {
        self.doc.is_some()
    }

    /// The bytes, as an owned vector.
    pub fn into_vec(self) -> Vec<u8> {
        let _ = self.bytes();
        self.bytes.into_inner().unwrap_or_default()
    }

    fn bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| match &self.doc {
            Some(doc) => doc.to_json(),
            None => Vec::new(),
        })
    }

    /// For the 0.2 exports: the host document (taken back, or copied if
    /// the module kept another reference), or the bytes.
    pub(crate) fn into_wit(self) -> crate::__private::bindings_v02::weir::pipeline::types::Body {
        use crate::__private::bindings_v02::weir::pipeline::types::Body as WitBody;
        match self.doc {
            Some(doc) => {
                WitBody::Doc(Rc::try_unwrap(doc).unwrap_or_else(|shared| Doc::clone(&shared)))
            }
            None => WitBody::Bytes(self.bytes.into_inner().unwrap_or_default()),
        }
    }
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Clone for Body {
    /// A clone of a held document is the same document (edits through
    /// either show in both); the bytes are shared as read.
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            doc: self.doc.clone(),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.bytes()) {
            Ok(text) => write!(f, "b{text:?}"),
            Err(_) => write!(f, "{:?}", self.bytes()),
        }
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Body {}

impl PartialEq<[u8]> for Body {
    fn eq(&self, other: &[u8]) -> bool {
        self.bytes() == other
    }
}

impl PartialEq<&[u8]> for Body {
    fn eq(&self, other: &&[u8]) -> bool {
        self.bytes() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Body {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.bytes() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Body {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.bytes() == *other
    }
}

impl PartialEq<Vec<u8>> for Body {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.bytes() == other.as_slice()
    }
}

impl PartialEq<&str> for Body {
    fn eq(&self, other: &&str) -> bool {
        self.bytes() == other.as_bytes()
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from_vec(bytes)
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Self {
        Self::from_vec(bytes.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Body {
    fn from(bytes: &[u8; N]) -> Self {
        Self::from_vec(bytes.to_vec())
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::from_vec(text.into_bytes())
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Self {
        Self::from_vec(text.as_bytes().to_vec())
    }
}

impl From<&String> for Body {
    fn from(text: &String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<Body> for Vec<u8> {
    fn from(body: Body) -> Self {
        body.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_compare_and_convert_like_a_vec() {
        let body = Body::from(r#"{"a":1}"#);
        assert_eq!(body, br#"{"a":1}"#);
        assert_eq!(body, &br#"{"a":1}"#[..]);
        assert_eq!(body, br#"{"a":1}"#.to_vec());
        assert_eq!(body.len(), 7);
        assert!(!body.is_held());
        assert_ne!(body, Body::from("{}"));
        assert_eq!(Vec::from(body.clone()), br#"{"a":1}"#);
        assert_eq!(format!("{body:?}"), r#"b"{\"a\":1}""#);
        assert!(Body::default().is_empty());
    }
}
