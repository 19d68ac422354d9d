//! The Weir classifier's batch API: `POST {url}/v1/{task}` with
//! `{"texts": [...]}`, answered by `{"model": "...", "results": [...]}`
//! (one result per text, in order; see classifier/README.md).

use weir_guest::serde_json::{Value, json};

/// The request body for `texts`.
pub fn request(texts: &[&str]) -> Value {
    json!({ "texts": texts })
}

/// The model that answered (`fallback` when the response names none) and
/// the results, checked to be one per text.
pub fn results<'a>(
    v: &'a Value,
    n: usize,
    fallback: &'a str,
) -> Result<(&'a str, &'a [Value]), String> {
    let model = v["model"].as_str().unwrap_or(fallback);
    let results = v["results"].as_array().ok_or("no \"results\" array")?;
    if results.len() != n {
        return Err(format!("{} results for {n} texts", results.len()));
    }
    Ok((model, results))
}

/// A number field of one result.
pub fn number(result: &Value, key: &str) -> Result<f64, String> {
    result[key]
        .as_f64()
        .ok_or_else(|| format!("result without a number {key:?}: {result}"))
}

/// The result's `label`, if it is one of `classes`.
pub fn label(result: &Value, classes: &[&'static str; 3]) -> Result<usize, String> {
    result["label"]
        .as_str()
        .and_then(|l| classes.iter().position(|c| *c == l))
        .ok_or_else(|| format!("result without a known label: {result}"))
}
