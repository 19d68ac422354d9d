//! Test fixture: a 0.2 module that attacks the host through the documents
//! it holds there, which live outside its own memory. The record's
//! `attack` field picks the attack:
//!
//! * `grow`: sets ever more 64 KiB fields (the document grows without end);
//! * `churn`: sets one 64 KiB field over and over (the document stays
//!   small, the bytes written do not);
//! * `handles`: creates documents and forgets their handles;
//! * `deep-path`: sets a path of 40 segments;
//! * `deep-value`: sets a value nesting 200 levels;
//! * `forge`: uses a handle it was never given;
//! * anything else (or none): behaves, adding `"checked": true`.

use weir_guest::__private::bindings_v02::weir::pipeline::types::{Doc, Value};
use weir_guest::{Error, Outcome, Record};

/// Runs the attack the record asks for.
#[weir_guest::module]
pub fn process(record: Record) -> Result<Outcome, Error> {
    let mut doc = record.json()?;
    let attack = doc.get_str("attack").unwrap_or("").to_owned();
    let chunk = "x".repeat(64 << 10);
    match attack.as_str() {
        "grow" => {
            for i in 0.. {
                doc.put(&format!("junk{i}"), chunk.as_str())?;
            }
        }
        "churn" => loop {
            doc.put("junk", chunk.as_str())?;
        },
        "handles" => loop {
            std::mem::forget(Doc::new());
        },
        "deep-path" => {
            let path = vec!["d"; 40].join(".");
            doc.put(&path, 1)?;
        }
        "deep-value" => {
            let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
            let raw = Doc::new();
            if let Err(e) = raw.set(&["deep".to_string()], &Value::Json(deep)) {
                return Ok(Outcome::fail(format!("refused: {e:?}")));
            }
        }
        "forge" => {
            // SAFETY: deliberately unsound; the host must refuse it.
            let forged = unsafe { Doc::from_handle(4242) };
            let _ = forged.get(&["attack".to_string()]);
        }
        _ => {}
    }
    doc.put("checked", true)?;
    Ok(Outcome::emit_one(doc.into_document()))
}
