//! The document a 0.2 module edits (`weir:pipeline/types@0.2.0.doc`): a
//! JSON object the host parses once per record and writes once for the
//! sink.
//!
//! It is lazy. Parsing validates the whole value but splits only the top
//! level into entries; every value stays a byte range of the record's own
//! buffer until a path goes into it, and only the containers on that path
//! are split further. Writing copies untouched ranges verbatim, so keys
//! keep their order and a module that touches two fields of a 30 KB
//! document pays for two fields, not for 30 KB. A clone (one per module
//! run, kept for record-by-record isolation) copies only the split parts.
//!
//! Host recursion is bounded by the path: values are never split deeper
//! than the longest path used ([`MAX_PATH_SEGMENTS`]); deeper JSON stays
//! text. Values a module sets may nest at most [`MAX_VALUE_NESTING`] levels
//! below the root.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::bindings::v02::types::{DocError, Value};

/// Most segments a path may have.
pub const MAX_PATH_SEGMENTS: usize = 32;
/// Most bytes a path may have (all segments together).
pub const MAX_PATH_BYTES: usize = 4096;
/// Deepest a value set by a module may nest, counted from the root.
pub const MAX_VALUE_NESTING: usize = 128;

/// A held JSON object. Cheap to clone: the record's bytes are shared.
#[derive(Clone)]
pub struct HeldDoc {
    src: Bytes,
    /// Always a [`Node::Object`].
    root: Node,
}

/// An object key: a range of `src` (without quotes; only for keys the
/// input wrote without escapes), or owned text.
#[derive(Clone)]
enum Key {
    Src(Range<usize>),
    Owned(Box<str>),
}

#[derive(Clone)]
enum Node {
    /// A JSON value, verbatim, as a range of `src`.
    Src(Range<usize>),
    /// A JSON value, verbatim, in its own text (set by a module).
    Text(Box<str>),
    Object(Vec<(Key, Node)>),
    Array(Vec<Node>),
}

/// Why bytes did not become a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotADoc {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("invalid JSON: {0}")]
    Invalid(String),
}

impl fmt::Debug for HeldDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HeldDoc")
            .field(&String::from_utf8_lossy(&self.to_json()))
            .finish()
    }
}

impl HeldDoc {
    /// An empty object.
    pub fn empty() -> Self {
        Self {
            src: Bytes::new(),
            root: Node::Object(Vec::new()),
        }
    }

    /// Parses `src`, which must hold one JSON object. The whole text is
    /// validated; only its top level is split.
    pub fn parse(src: Bytes) -> Result<Self, NotADoc> {
        if src.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(NotADoc::NotAnObject);
        }
        let entries = split_object(&src).map_err(|e| NotADoc::Invalid(e.to_string()))?;
        let root = Node::Object(entries_of(&src, entries, true));
        Ok(Self { src, root })
    }

    /// The document as compact JSON (untouched values verbatim).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.src.len() + 64);
        self.write_to(&mut out);
        out
    }

    /// Appends the document's JSON to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        write_node(&self.root, &self.src, out).expect("writing to a Vec");
    }

    /// Bytes [`to_json`](Self::to_json) would write, without writing them.
    /// Costs a walk over the split parts only.
    pub fn len(&self) -> usize {
        let mut counter = Counter(0);
        write_node(&self.root, &self.src, &mut counter).expect("counting");
        counter.0
    }

    /// Whether the document is `{}`.
    pub fn is_empty(&self) -> bool {
        matches!(&self.root, Node::Object(entries) if entries.is_empty())
    }

    /// The value at `path`; `None` when absent or the path is invalid.
    pub fn get(&self, path: &[String]) -> Option<Value> {
        check_path(path, false).ok()?;
        let src = &self.src[..];
        let mut view = View::Node(&self.root);
        for segment in path {
            view = view.child(segment, src)?;
        }
        Some(view.value(src))
    }

    /// The keys of the object at `path`, in document order.
    pub fn keys(&self, path: &[String]) -> Option<Vec<String>> {
        check_path(path, true).ok()?;
        let src = &self.src[..];
        let mut view = View::Node(&self.root);
        for segment in path {
            view = view.child(segment, src)?;
        }
        view.keys(src)
    }

    /// Sets the value at `path` (see the WIT for the rules). Returns the
    /// bytes the edit brought in (charged to the instance).
    pub fn set(&mut self, path: &[String], value: Value) -> Result<usize, DocError> {
        check_path(path, false)?;
        let text = text_of(value, path.len())?;
        let charged = text.len() + path.iter().map(|s| s.len() + 8).sum::<usize>();
        let (last, parents) = path.split_last().expect("checked non-empty");
        let Self { src, root } = self;
        let parent = walk_mut(root, src, parents, true)?.expect("created");
        expand(parent, src);
        let node = Node::Text(text);
        match parent {
            Node::Object(entries) => match entries.iter().rposition(|(k, _)| k.is(last, src)) {
                Some(at) => {
                    entries[at].1 = node;
                    // Earlier duplicates of the key would shadow nothing
                    // but still be written: drop them.
                    let mut i = 0;
                    entries.retain(|(k, _)| {
                        i += 1;
                        i - 1 == at || !k.is(last, src)
                    });
                }
                None => entries.push((Key::Owned(last.as_str().into()), node)),
            },
            Node::Array(items) => {
                let at = index_of(last)?;
                match at.cmp(&items.len()) {
                    std::cmp::Ordering::Less => items[at] = node,
                    std::cmp::Ordering::Equal => items.push(node),
                    std::cmp::Ordering::Greater => {
                        return Err(bad_path(format!(
                            "index {at} is past the end of an array of {}",
                            items.len()
                        )));
                    }
                }
            }
            _ => return Err(through_scalar(path)),
        }
        Ok(charged)
    }

    /// Removes the value at `path`; whether there was one.
    pub fn remove(&mut self, path: &[String]) -> Result<bool, DocError> {
        check_path(path, false)?;
        let (last, parents) = path.split_last().expect("checked non-empty");
        let Self { src, root } = self;
        let Some(parent) = walk_mut(root, src, parents, false)? else {
            return Ok(false);
        };
        if !expand(parent, src) {
            return Ok(false);
        }
        Ok(match parent {
            Node::Object(entries) => {
                let before = entries.len();
                entries.retain(|(k, _)| !k.is(last, src));
                entries.len() != before
            }
            Node::Array(items) => match last.parse::<usize>() {
                Ok(at) if at < items.len() => {
                    items.remove(at);
                    true
                }
                _ => false,
            },
            _ => false,
        })
    }
}

/// Checks a path's shape: at most [`MAX_PATH_SEGMENTS`] segments and
/// [`MAX_PATH_BYTES`] bytes; empty only where `empty_ok`.
fn check_path(path: &[String], empty_ok: bool) -> Result<(), DocError> {
    if path.is_empty() && !empty_ok {
        return Err(bad_path("the path is empty".into()));
    }
    if path.len() > MAX_PATH_SEGMENTS {
        return Err(bad_path(format!(
            "the path has {} segments, more than {MAX_PATH_SEGMENTS}",
            path.len()
        )));
    }
    let bytes: usize = path.iter().map(String::len).sum();
    if bytes > MAX_PATH_BYTES {
        return Err(bad_path(format!(
            "the path has {bytes} bytes, more than {MAX_PATH_BYTES}"
        )));
    }
    Ok(())
}

fn bad_path(message: String) -> DocError {
    DocError::BadPath(message)
}

fn through_scalar(path: &[String]) -> DocError {
    bad_path(format!(
        "the path {path:?} runs through a value that is neither an object nor an array"
    ))
}

fn index_of(segment: &str) -> Result<usize, DocError> {
    segment
        .parse()
        .map_err(|_| bad_path(format!("{segment:?} is not an array index")))
}

impl Key {
    fn is(&self, segment: &str, src: &[u8]) -> bool {
        match self {
            Key::Src(range) => &src[range.clone()] == segment.as_bytes(),
            Key::Owned(key) => &**key == segment,
        }
    }

    fn text<'a>(&'a self, src: &'a [u8]) -> Cow<'a, str> {
        match self {
            Key::Src(range) => String::from_utf8_lossy(&src[range.clone()]),
            Key::Owned(key) => Cow::Borrowed(key),
        }
    }
}

/// Walks `path` from `node`, splitting containers on the way; with
/// `create`, missing object keys become empty objects (and an index one
/// past an array's end appends one). `None`: absent (without `create`).
fn walk_mut<'a>(
    mut node: &'a mut Node,
    src: &Bytes,
    path: &[String],
    create: bool,
) -> Result<Option<&'a mut Node>, DocError> {
    for segment in path {
        expand(node, src);
        node = match node {
            Node::Object(entries) => match entries.iter().rposition(|(k, _)| k.is(segment, src)) {
                Some(at) => &mut entries[at].1,
                None if create => {
                    entries.push((
                        Key::Owned(segment.as_str().into()),
                        Node::Object(Vec::new()),
                    ));
                    &mut entries.last_mut().expect("pushed").1
                }
                None => return Ok(None),
            },
            Node::Array(items) => {
                let at = index_of(segment)?;
                if at < items.len() {
                    &mut items[at]
                } else if at == items.len() && create {
                    items.push(Node::Object(Vec::new()));
                    items.last_mut().expect("pushed")
                } else if create {
                    return Err(bad_path(format!(
                        "index {at} is past the end of an array of {}",
                        items.len()
                    )));
                } else {
                    return Ok(None);
                }
            }
            _ if create => return Err(through_scalar(path)),
            _ => return Ok(None),
        };
    }
    Ok(Some(node))
}

/// Splits a verbatim object or array into entries (one level). Whether
/// `node` is now a container.
fn expand(node: &mut Node, src: &Bytes) -> bool {
    let (text, in_src): (&[u8], bool) = match node {
        Node::Object(_) | Node::Array(_) => return true,
        Node::Src(range) => (&src[range.clone()], true),
        Node::Text(text) => (text.as_bytes(), false),
    };
    // The text was validated when it came in; splitting cannot fail.
    let split = match text.first() {
        Some(b'{') => split_object(text)
            .ok()
            .map(|entries| Node::Object(entries_of(src, entries, in_src))),
        Some(b'[') => serde_json::from_slice::<Vec<&RawValue>>(text)
            .ok()
            .map(|items| {
                Node::Array(
                    items
                        .into_iter()
                        .map(|v| value_node(src, v, in_src))
                        .collect(),
                )
            }),
        _ => None,
    };
    match split {
        Some(split) => {
            *node = split;
            true
        }
        None => false,
    }
}

/// Entries of a split object whose text is `text`: ranges of `src` when
/// the text lies in it, owned copies otherwise.
fn entries_of(
    src: &[u8],
    entries: Vec<(Cow<'_, str>, &RawValue)>,
    in_src: bool,
) -> Vec<(Key, Node)> {
    entries
        .into_iter()
        .map(|(key, value)| {
            let key = match key {
                Cow::Borrowed(k) if in_src => Key::Src(range_in(src, k.as_bytes())),
                other => Key::Owned(other.into_owned().into_boxed_str()),
            };
            (key, value_node(src, value, in_src))
        })
        .collect()
}

fn value_node(src: &[u8], value: &RawValue, in_src: bool) -> Node {
    if in_src {
        Node::Src(range_in(src, value.get().as_bytes()))
    } else {
        Node::Text(value.get().into())
    }
}

/// The range `part` (a sub-slice of `whole`) covers in `whole`.
fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// A read-only position in a document: a node, or verbatim JSON text.
#[derive(Clone, Copy)]
enum View<'a> {
    Node(&'a Node),
    Text(&'a [u8]),
}

impl<'a> View<'a> {
    fn child(self, segment: &str, src: &'a [u8]) -> Option<View<'a>> {
        match self {
            View::Node(Node::Object(entries)) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.is(segment, src))
                .map(|(_, v)| View::Node(v)),
            View::Node(Node::Array(items)) => {
                items.get(segment.parse::<usize>().ok()?).map(View::Node)
            }
            View::Node(Node::Src(range)) => View::Text(&src[range.clone()]).child(segment, src),
            View::Node(Node::Text(text)) => View::Text(text.as_bytes()).child(segment, src),
            View::Text(text) => match text.first()? {
                b'{' => split_object(text)
                    .ok()?
                    .into_iter()
                    .rev()
                    .find(|(k, _)| k == segment)
                    .map(|(_, v)| View::Text(v.get().as_bytes())),
                b'[' => serde_json::from_slice::<Vec<&RawValue>>(text)
                    .ok()?
                    .get(segment.parse::<usize>().ok()?)
                    .map(|v| View::Text(v.get().as_bytes())),
                _ => None,
            },
        }
    }

    fn value(self, src: &'a [u8]) -> Value {
        match self {
            View::Node(node @ (Node::Object(_) | Node::Array(_))) => {
                let mut out = Vec::new();
                write_node(node, src, &mut out).expect("writing to a Vec");
                Value::Json(String::from_utf8_lossy(&out).into_owned())
            }
            View::Node(Node::Src(range)) => scalar(&src[range.clone()]),
            View::Node(Node::Text(text)) => scalar(text.as_bytes()),
            View::Text(text) => scalar(text),
        }
    }

    fn keys(self, src: &'a [u8]) -> Option<Vec<String>> {
        match self {
            View::Node(Node::Object(entries)) => Some(
                entries
                    .iter()
                    .map(|(k, _)| k.text(src).into_owned())
                    .collect(),
            ),
            View::Node(Node::Array(_)) => None,
            View::Node(Node::Src(range)) => View::Text(&src[range.clone()]).keys(src),
            View::Node(Node::Text(text)) => View::Text(text.as_bytes()).keys(src),
            View::Text(text) if text.first() == Some(&b'{') => Some(
                split_object(text)
                    .ok()?
                    .into_iter()
                    .map(|(k, _)| k.into_owned())
                    .collect(),
            ),
            View::Text(_) => None,
        }
    }
}

/// The typed value of verbatim JSON text: scalars typed, containers (and
/// integers beyond s64) as JSON text.
fn scalar(text: &[u8]) -> Value {
    let as_json = || Value::Json(String::from_utf8_lossy(text).into_owned());
    match text.first() {
        Some(b'n') => Value::Null,
        Some(b't') => Value::Boolean(true),
        Some(b'f') => Value::Boolean(false),
        Some(b'"') => {
            serde_json::from_slice::<String>(text).map_or_else(|_| as_json(), Value::Text)
        }
        Some(b'{' | b'[') | None => as_json(),
        Some(_) => {
            let number = std::str::from_utf8(text).unwrap_or("");
            if let Ok(i) = number.parse::<i64>() {
                Value::Integer(i)
            } else if number.contains(['.', 'e', 'E'])
                && let Ok(f) = number.parse::<f64>()
                && f.is_finite()
            {
                Value::Float(f)
            } else {
                as_json()
            }
        }
    }
}

/// The JSON text of a value a module sets at a path of `depth` segments.
fn text_of(value: Value, depth: usize) -> Result<Box<str>, DocError> {
    Ok(match value {
        Value::Null => "null".into(),
        Value::Boolean(b) => if b { "true" } else { "false" }.into(),
        Value::Integer(i) => i.to_string().into(),
        Value::Float(f) if f.is_finite() => serde_json::to_string(&f)
            .expect("a finite float serialises")
            .into(),
        Value::Float(f) => {
            return Err(DocError::BadValue(format!(
                "{f} is not a JSON number (JSON has no NaN or infinity)"
            )));
        }
        Value::Text(s) => serde_json::to_string(&s)
            .expect("a string serialises")
            .into(),
        Value::Json(text) => {
            let raw = serde_json::from_str::<&RawValue>(&text)
                .map_err(|e| DocError::BadValue(format!("invalid JSON: {e}")))?;
            let nesting = depth + nesting_of(raw.get().as_bytes());
            if nesting > MAX_VALUE_NESTING {
                return Err(DocError::BadValue(format!(
                    "the value would nest {nesting} levels deep, more than {MAX_VALUE_NESTING}"
                )));
            }
            raw.get().into()
        }
    })
}

/// How deep arrays and objects nest in valid JSON `text`.
fn nesting_of(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    deepest
}

fn write_node(node: &Node, src: &[u8], out: &mut impl std::io::Write) -> std::io::Result<()> {
    match node {
        Node::Src(range) => out.write_all(&src[range.clone()]),
        Node::Text(text) => out.write_all(text.as_bytes()),
        Node::Object(entries) => {
            out.write_all(b"{")?;
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                match key {
                    Key::Src(range) => {
                        out.write_all(b"\"")?;
                        out.write_all(&src[range.clone()])?;
                        out.write_all(b"\"")?;
                    }
                    Key::Owned(key) => serde_json::to_writer(&mut *out, &**key)?,
                }
                out.write_all(b":")?;
                write_node(value, src, out)?;
            }
            out.write_all(b"}")
        }
        Node::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_node(item, src, out)?;
            }
            out.write_all(b"]")
        }
    }
}

/// Counts bytes instead of keeping them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Entries<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// One level of a JSON object: keys (borrowed unless escaped) and raw
/// values. Validates the whole text.
fn split_object(text: &[u8]) -> Result<Entries<'_>, serde_json::Error> {
    serde_json::from_slice::<Split<'_>>(text).map(|Split(entries)| entries)
}

struct Split<'a>(Entries<'a>);

impl<'de> Deserialize<'de> for Split<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SplitVisitor;

        impl<'de> Visitor<'de> for SplitVisitor {
            type Value = Split<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    entries.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Split(entries))
            }
        }

        deserializer.deserialize_map(SplitVisitor)
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

    /// The generated WIT types have no `PartialEq`; their `Debug` says all.
    macro_rules! assert_same {
        ($left:expr, $right:expr $(,)?) => {
            assert_eq!(format!("{:?}", $left), format!("{:?}", $right))
        };
    }

    fn doc(json: &str) -> HeldDoc {
        HeldDoc::parse(Bytes::copy_from_slice(json.as_bytes())).unwrap()
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_owned).collect()
    }

    fn json(d: &HeldDoc) -> String {
        String::from_utf8(d.to_json()).unwrap()
    }

    #[test]
    fn untouched_values_are_written_verbatim_in_order() {
        let d = doc(r#" { "b" : [1, 2 ], "a":{"x" : "\u00e9"} } "#);
        assert_eq!(json(&d), r#"{"b":[1, 2 ],"a":{"x" : "\u00e9"}}"#);
        assert_eq!(d.len(), json(&d).len());
    }

    #[test]
    fn get_types_scalars_and_keeps_containers_as_json() {
        let d = doc(
            r#"{"s":"h\u00e9","i":-3,"f":1.5,"b":true,"n":null,"big":18446744073709551616,"o":{"k":[1,{"z":2}]}}"#,
        );
        assert_same!(d.get(&path("s")), Some(Value::Text("hé".into())));
        assert_same!(d.get(&path("i")), Some(Value::Integer(-3)));
        assert_same!(d.get(&path("f")), Some(Value::Float(1.5)));
        assert_same!(d.get(&path("b")), Some(Value::Boolean(true)));
        assert_same!(d.get(&path("n")), Some(Value::Null));
        assert_same!(
            d.get(&path("big")),
            Some(Value::Json("18446744073709551616".into()))
        );
        assert_same!(d.get(&path("o.k.1.z")), Some(Value::Integer(2)));
        assert_same!(
            d.get(&path("o.k")),
            Some(Value::Json("[1,{\"z\":2}]".into()))
        );
        assert!(d.get(&path("o.k.2")).is_none());
        assert!(d.get(&path("s.x")).is_none());
        assert_eq!(
            d.keys(&[]),
            Some(
                vec!["s", "i", "f", "b", "n", "big", "o"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(d.keys(&path("o")), Some(vec!["k".to_string()]));
    }

    #[test]
    fn set_creates_replaces_and_appends() {
        let mut d = doc(r#"{"a":1,"a":2,"o":{"x":[10]},"t":"keep"}"#);
        d.set(&path("a"), Value::Text("new\n".into())).unwrap();
        d.set(&path("o.x.1"), Value::Integer(11)).unwrap();
        d.set(&path("o.y.z"), Value::Json(r#"{"deep": [true]}"#.into()))
            .unwrap();
        d.set(&["dotted.key".to_string()], Value::Float(0.5))
            .unwrap();
        assert_eq!(
            json(&d),
            r#"{"a":"new\n","o":{"x":[10,11],"y":{"z":{"deep": [true]}}},"t":"keep","dotted.key":0.5}"#
        );
        assert_same!(d.get(&path("o.y.z.deep.0")), Some(Value::Boolean(true)));
        assert_eq!(d.len(), json(&d).len());
    }

    #[test]
    fn bad_edits_are_refused_and_change_nothing() {
        let mut d = doc(r#"{"s":"x","arr":[1]}"#);
        let before = json(&d);
        assert!(matches!(
            d.set(&path("s.inner"), Value::Null),
            Err(DocError::BadPath(_))
        ));
        assert!(matches!(
            d.set(&path("arr.5"), Value::Null),
            Err(DocError::BadPath(_))
        ));
        assert!(matches!(
            d.set(&path("arr.k"), Value::Null),
            Err(DocError::BadPath(_))
        ));
        assert!(matches!(d.set(&[], Value::Null), Err(DocError::BadPath(_))));
        assert!(matches!(
            d.set(&path("f"), Value::Float(f64::NAN)),
            Err(DocError::BadValue(_))
        ));
        assert!(matches!(
            d.set(&path("j"), Value::Json("{".into())),
            Err(DocError::BadValue(_))
        ));
        assert!(matches!(
            d.set(&path("j"), Value::Json("1 2".into())),
            Err(DocError::BadValue(_))
        ));
        assert_eq!(json(&d), before);
    }

    #[test]
    fn paths_and_nesting_are_bounded() {
        let mut d = doc("{}");
        let long: Vec<String> = (0..=MAX_PATH_SEGMENTS).map(|i| i.to_string()).collect();
        assert!(matches!(
            d.set(&long, Value::Null),
            Err(DocError::BadPath(_))
        ));
        assert!(d.get(&long).is_none());
        let wide = vec!["k".repeat(MAX_PATH_BYTES + 1)];
        assert!(matches!(
            d.set(&wide, Value::Null),
            Err(DocError::BadPath(_))
        ));
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_VALUE_NESTING),
            "]".repeat(MAX_VALUE_NESTING)
        );
        assert!(matches!(
            d.set(&path("a"), Value::Json(deep)),
            Err(DocError::BadValue(_))
        ));
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_VALUE_NESTING - 1),
            "]".repeat(MAX_VALUE_NESTING - 1)
        );
        d.set(&path("a"), Value::Json(ok)).unwrap();
        // Brackets inside strings do not count.
        d.set(&path("s"), Value::Json(format!("\"{}\"", "[".repeat(500))))
            .unwrap();
    }

    #[test]
    fn remove_drops_every_occurrence_and_array_items() {
        let mut d = doc(r#"{"a":1,"b":[1,2,3],"a":2}"#);
        assert!(matches!(d.remove(&path("a")), Ok(true)));
        assert!(matches!(d.remove(&path("a")), Ok(false)));
        assert!(matches!(d.remove(&path("b.1")), Ok(true)));
        assert!(matches!(d.remove(&path("b.9")), Ok(false)));
        assert!(matches!(d.remove(&path("zz.y")), Ok(false)));
        assert_eq!(json(&d), r#"{"b":[1,3]}"#);
    }

    #[test]
    fn clones_are_independent() {
        let a = doc(r#"{"o":{"x":1}}"#);
        let mut b = a.clone();
        b.set(&path("o.x"), Value::Integer(2)).unwrap();
        assert_eq!(json(&a), r#"{"o":{"x":1}}"#);
        assert_eq!(json(&b), r#"{"o":{"x":2}}"#);
    }

    #[test]
    fn parse_refuses_what_is_not_one_object() {
        for bad in ["[1]", "", "{\"a\":}", "{} x", "\"s\""] {
            assert!(HeldDoc::parse(Bytes::from(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaped_keys_are_matched_unescaped_and_written_escaped() {
        let mut d = doc(r#"{"a\"b":1,"\u0063":2}"#);
        assert_same!(d.get(&["a\"b".to_string()]), Some(Value::Integer(1)));
        assert_same!(d.get(&path("c")), Some(Value::Integer(2)));
        d.set(&path("c"), Value::Integer(3)).unwrap();
        assert_eq!(json(&d), r#"{"a\"b":1,"c":3}"#);
    }
}
