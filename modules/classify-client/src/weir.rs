//! The Weir classifier's batch API: `POST {url}/v1/{task}` with
//! `{"texts": [...]}`, answered by `{"model": "...", "results": [...]}`
//! (one result per text, in order; see classifier/README.md).
//!
//! Both bodies go straight between bytes and typed values: the request is
//! written from the borrowed texts, and each result is read into the
//! task's own type (fields it does not name, such as `top_features[].positions`,
//! are skipped without being built), never through a `serde_json::Value`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The request body for `texts`.
#[derive(Debug, Serialize)]
pub struct BatchRequest<'a> {
    /// The texts, in order.
    pub texts: &'a [&'a str],
}

/// The request body for `texts`.
pub fn request<'a>(texts: &'a [&'a str]) -> BatchRequest<'a> {
    BatchRequest { texts }
}

/// The response body, with each result read as `R`.
#[derive(Debug, Deserialize)]
#[serde(bound = "R: DeserializeOwned")]
pub struct BatchResponse<R> {
    /// The model that answered, if the service names it.
    #[serde(default)]
    pub model: Option<String>,
    /// One result per text, in order.
    pub results: Vec<R>,
}

impl<R> BatchResponse<R> {
    /// The model that answered (`fallback` when the response names none)
    /// and the results, checked to be one per text.
    pub fn checked(self, n: usize, fallback: &str) -> Result<(String, Vec<R>), String> {
        if self.results.len() != n {
            return Err(format!("{} results for {n} texts", self.results.len()));
        }
        Ok((
            self.model.unwrap_or_else(|| fallback.to_owned()),
            self.results,
        ))
    }
}

/// The index of `label` in `classes`.
pub fn label(label: &str, classes: &[&'static str; 3]) -> Result<usize, String> {
    classes
        .iter()
        .position(|c| *c == label)
        .ok_or_else(|| format!("result with an unknown label {label:?}"))
}
