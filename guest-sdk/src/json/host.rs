//! A [`JsonDoc`](super::JsonDoc) the host holds (0.2): reads and edits are
//! host calls, one field at a time.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use serde_json::{Map, Number, Value};

pub(crate) use crate::__private::bindings_v02::weir::pipeline::types::Doc;
use crate::__private::bindings_v02::weir::pipeline::types::{DocError, Value as WitValue};
use crate::Error;

/// One value read, by its path (`None`: absent).
type Read = (String, Option<Value>);

pub(crate) struct Held {
    doc: Rc<Doc>,
    /// Values read so far, by path: `get` hands out references. Boxed so
    /// they never move; cleared only through `&mut self`.
    #[allow(clippy::vec_box)] // the boxes are the point: stable addresses
    reads: RefCell<Vec<Box<Read>>>,
    /// The whole document, once a whole-object view asked for it.
    whole: OnceCell<Map<String, Value>>,
}

impl Held {
    pub(crate) fn new(doc: Rc<Doc>) -> Self {
        Self {
            doc,
            reads: RefCell::default(),
            whole: OnceCell::new(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Value> {
        if let Some(whole) = self.whole.get() {
            return super::get_in(whole, path);
        }
        let mut reads = self.reads.borrow_mut();
        let at = match reads.iter().position(|read| read.0 == path) {
            Some(at) => at,
            None => {
                let value = self.doc.get(&segments(path)).map(from_wit);
                reads.push(Box::new((path.to_owned(), value)));
                reads.len() - 1
            }
        };
        let read: *const Read = &*reads[at];
        drop(reads);
        // SAFETY: each read is boxed, so its address is stable while the
        // vector grows; reads are only ever appended through `&self` and
        // cleared through `&mut self`, so none is dropped while the `&self`
        // this reference borrows from is alive.
        unsafe { (*read).1.as_ref() }
    }

    /// Sets top-level `key`; the previous value (one more host call).
    pub(crate) fn set(&mut self, key: &str, value: Value) -> Option<Value> {
        let path = [key.to_owned()];
        let old = self.doc.get(&path).map(from_wit);
        self.invalidate();
        if let Err(e) = self.doc.set(&path, &to_wit(value)) {
            // `set` has no error to return (a map insert cannot fail); the
            // host refuses only keys over 4096 bytes and values nesting
            // over 128 levels.
            panic!("the host refused to set {key:?}: {}", message(e));
        }
        old
    }

    pub(crate) fn put(&mut self, path: &str, value: Value) -> Result<(), Error> {
        self.invalidate();
        self.doc
            .set(&segments(path), &to_wit(value))
            .map_err(|e| Error::new(format!("cannot set {path:?}: {}", message(e))))
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let path = [key.to_owned()];
        let old = self.doc.get(&path).map(from_wit);
        self.invalidate();
        if old.is_some() {
            let _ = self.doc.remove(&path);
        }
        old
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        match self.whole.get() {
            Some(whole) => whole.contains_key(key),
            None => self.doc.get(&[key.to_owned()]).is_some(),
        }
    }

    pub(crate) fn whole(&self) -> &Map<String, Value> {
        self.whole.get_or_init(|| fetch(&self.doc))
    }

    pub(crate) fn take_whole(&mut self) -> Map<String, Value> {
        self.whole.take().unwrap_or_else(|| fetch(&self.doc))
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        self.doc.to_json()
    }

    pub(crate) fn into_doc(self) -> Rc<Doc> {
        self.doc
    }

    /// A separate copy, held by the host.
    pub(crate) fn copy(&self) -> Held {
        Held::new(Rc::new(Doc::clone(&self.doc)))
    }

    fn invalidate(&mut self) {
        self.reads.get_mut().clear();
        self.whole.take();
    }
}

/// The whole document, parsed here.
fn fetch(doc: &Doc) -> Map<String, Value> {
    match serde_json::from_slice(&doc.to_json()) {
        Ok(Value::Object(map)) => map,
        // The host writes only JSON objects.
        _ => Map::new(),
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

fn message(e: DocError) -> String {
    match e {
        DocError::BadPath(m) | DocError::BadValue(m) => m,
    }
}

fn from_wit(value: WitValue) -> Value {
    match value {
        WitValue::Null => Value::Null,
        WitValue::Boolean(b) => Value::Bool(b),
        WitValue::Integer(i) => Value::from(i),
        WitValue::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        WitValue::Text(s) => Value::String(s),
        WitValue::Json(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

fn to_wit(value: Value) -> WitValue {
    match value {
        Value::Null => WitValue::Null,
        Value::Bool(b) => WitValue::Boolean(b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => WitValue::Integer(i),
            (None, Some(f)) if !n.is_u64() => WitValue::Float(f),
            _ => WitValue::Json(n.to_string()),
        },
        Value::String(s) => WitValue::Text(s),
        other => WitValue::Json(other.to_string()),
    }
}
