//! Hugging Face Inference text-classification and Text Embeddings
//! Inference `/predict`: model-specific labels with scores, mapped onto a
//! task's three classes by a configurable `label_map`.

use weir_guest::Error;
use weir_guest::serde_json::{Value, json};

/// Hugging Face: `{"inputs": [texts]}` to the model's URL.
pub fn hf_request(texts: &[&str]) -> Value {
    json!({ "inputs": texts })
}

/// TEI: a batch is a list of one-text lists; long texts are truncated.
pub fn tei_request(texts: &[&str]) -> Value {
    let inputs: Vec<[&str; 1]> = texts.iter().map(|t| [*t]).collect();
    json!({"inputs": inputs, "truncate": true})
}

/// `[[{label, score}, ...], ...]` (one list per text) or a flat list (one
/// text's labels, or each text's top label): one label list per text.
pub fn label_lists(v: &Value, n: usize) -> Result<Vec<&Value>, String> {
    if let Some(e) = v.get("error") {
        return Err(format!("the service reported an error: {e}"));
    }
    let per_text: Vec<&Value> = match v {
        Value::Array(items) if items.iter().all(Value::is_array) => items.iter().collect(),
        Value::Array(_) if n == 1 => vec![v],
        Value::Array(items) if items.len() == n => items.iter().collect(),
        Value::Object(_) if n == 1 => vec![v],
        other => return Err(format!("cannot read {n} label lists from {other}")),
    };
    if per_text.len() != n {
        return Err(format!("{} label lists for {n} texts", per_text.len()));
    }
    Ok(per_text)
}

/// Model label (lowercase) → class index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap(Vec<(String, usize)>);

impl LabelMap {
    /// `MODEL_LABEL:CLASS,...` where CLASS is one of `classes`
    /// (case-insensitive).
    pub fn parse(spec: &str, classes: &[&'static str; 3]) -> Result<Self, Error> {
        let mut map = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (from, to) = pair
                .rsplit_once(':')
                .map(|(f, t)| (f.trim(), t.trim()))
                .unwrap_or((pair, ""));
            let to = classes
                .iter()
                .position(|c| c.eq_ignore_ascii_case(to))
                .ok_or_else(|| {
                    Error::new(format!(
                        "config key \"label_map\": {pair:?} must map a label to {}",
                        or_list(classes)
                    ))
                })?;
            map.push((from.to_lowercase(), to));
        }
        Ok(Self(map))
    }

    /// Sums the scores of one text's labels per class; fails when no label
    /// is mapped.
    pub fn class_scores(&self, labels: &Value) -> Result<[f64; 3], String> {
        let list = match labels {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let (mut mapped, mut scores) = (false, [0.0f64; 3]);
        for item in list {
            let label = item["label"]
                .as_str()
                .ok_or_else(|| format!("no label in {item}"))?;
            let score = item["score"]
                .as_f64()
                .ok_or_else(|| format!("no score in {item}"))?;
            if let Some((_, i)) = self.0.iter().find(|(f, _)| f.eq_ignore_ascii_case(label)) {
                scores[*i] += score;
                mapped = true;
            }
        }
        if !mapped {
            return Err(format!(
                "no label of {labels} is in label_map; configure label_map"
            ));
        }
        Ok(scores)
    }
}

/// `a, b or c`.
fn or_list(classes: &[&str; 3]) -> String {
    format!("{}, {} or {}", classes[0], classes[1], classes[2])
}
