//! The exported hatesonar model (`data/hatesonar/model.json`) and its loading.

use std::collections::HashMap;

use serde::Deserialize;

/// `data/hatesonar/model.json`, exported from hatesonar==0.1.0 by
/// `scripts/export_hatesonar.py` (MIT, see `data/hatesonar/LICENSE`).
pub const MODEL_JSON: &str = include_str!("../../data/hatesonar/model.json");

/// Number of classes: hate, offensive, neither.
pub const N_CLASSES: usize = 3;

/// A model file that does not describe the expected TF-IDF + linear model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported model: {0}")]
    Unsupported(String),
}

#[derive(Debug, Deserialize)]
struct ModelFile {
    format: String,
    classes: Vec<String>,
    preprocessing: Preprocessing,
    classifier: ClassifierSpec,
    vocabulary: Vec<String>,
    idf: Vec<f64>,
    coefficients: Coefficients,
    intercepts: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct Preprocessing {
    lowercase: bool,
    token_pattern: String,
    token_min_chars: u32,
    ngram_range: [u32; 2],
    stop_words: Option<Vec<String>>,
    sublinear_tf: bool,
    use_idf: bool,
    norm: String,
    arithmetic: String,
}

#[derive(Debug, Deserialize)]
struct ClassifierSpec {
    post_transform: String,
    renormalize: String,
}

#[derive(Debug, Deserialize)]
struct Coefficients {
    feature_index: Vec<u32>,
    weights: Vec<[f64; N_CLASSES]>,
}

/// One vocabulary entry.
#[derive(Debug, Clone, Copy)]
pub struct Term {
    /// Feature index (position in the sorted vocabulary).
    pub index: u32,
    /// Inverse document frequency (float32, as in the ONNX graph).
    pub idf: f32,
    /// Per-class weights; `None` for the (many) terms the L1-regularised
    /// model zeroed out, which still count in the L2 norm.
    pub weights: Option<[f32; N_CLASSES]>,
}

/// TF-IDF vocabulary and multinomial logistic-regression parameters.
#[derive(Debug, Clone)]
pub struct LinearModel {
    pub(crate) terms: HashMap<Box<str>, Term>,
    pub(crate) intercepts: [f32; N_CLASSES],
}

impl LinearModel {
    /// The hatesonar 0.1.0 model embedded in the binary.
    pub fn embedded() -> Self {
        Self::from_json(MODEL_JSON).expect("embedded hatesonar model is valid")
    }

    /// Parses a model exported by `scripts/export_hatesonar.py`, checking
    /// that its preprocessing is the one this implementation reproduces.
    pub fn from_json(json: &str) -> Result<Self, ModelError> {
        let file: ModelFile = serde_json::from_str(json)?;
        let p = &file.preprocessing;
        let expected = file.format == "weir-linear-tfidf/1"
            && file.classes == ["hate", "offensive", "neither"]
            && p.lowercase
            && p.token_pattern == "[a-zA-Z0-9_]+"
            && p.token_min_chars == 1
            && p.ngram_range == [1, 1]
            && p.stop_words.is_none()
            && !p.sublinear_tf
            && p.use_idf
            && p.norm == "l2"
            && p.arithmetic == "float32"
            && file.classifier.post_transform == "softmax"
            && file.classifier.renormalize == "l1";
        if !expected {
            return Err(ModelError::Unsupported(
                "preprocessing or classifier settings differ from hatesonar 0.1.0".into(),
            ));
        }
        if file.idf.len() != file.vocabulary.len()
            || file.coefficients.feature_index.len() != file.coefficients.weights.len()
        {
            return Err(ModelError::Unsupported("array lengths disagree".into()));
        }
        let vocabulary_len = file.vocabulary.len();
        let mut terms: HashMap<Box<str>, Term> = file
            .vocabulary
            .into_iter()
            .zip(file.idf)
            .enumerate()
            .map(|(i, (word, idf))| {
                let index = u32::try_from(i).expect("vocabulary fits u32");
                let term = Term {
                    index,
                    idf: idf as f32,
                    weights: None,
                };
                (word.into_boxed_str(), term)
            })
            .collect();
        if terms.len() != vocabulary_len {
            return Err(ModelError::Unsupported(
                "duplicate vocabulary entries".into(),
            ));
        }
        let mut by_index: Vec<&mut Term> = terms.values_mut().collect();
        by_index.sort_by_key(|t| t.index);
        for (&index, w) in file
            .coefficients
            .feature_index
            .iter()
            .zip(&file.coefficients.weights)
        {
            let term = by_index
                .get_mut(index as usize)
                .ok_or_else(|| ModelError::Unsupported(format!("feature {index} out of range")))?;
            term.weights = Some(w.map(|x| x as f32));
        }
        let intercepts: [f64; N_CLASSES] = file
            .intercepts
            .try_into()
            .map_err(|_| ModelError::Unsupported("need three intercepts".into()))?;
        Ok(Self {
            terms,
            intercepts: intercepts.map(|x| x as f32),
        })
    }

    /// Vocabulary entry of a (lowercase) token.
    pub fn term(&self, token: &str) -> Option<&Term> {
        self.terms.get(token)
    }

    /// Vocabulary size.
    pub fn vocabulary_len(&self) -> usize {
        self.terms.len()
    }
}
