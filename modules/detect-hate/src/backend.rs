//! The classifier backends: requests, retries and response shapes.

use std::time::Duration;

use weir_guest::http::{self, HttpError, Request};
use weir_guest::serde_json::{Value, json};
use weir_guest::{Config, Error};

/// One text's hate-speech classification, in the schema's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Hate {
    pub label: &'static str,
    /// Probability (or confidence) of `label`.
    pub score: f64,
    /// `[hate, offensive, neither]`
    pub scores: [f64; 3],
    pub categories: Vec<String>,
    pub terms: Vec<String>,
    pub model: String,
}

impl Hate {
    pub fn to_json(&self) -> Value {
        let [hate, offensive, neither] = self.scores;
        json!({"label": self.label, "score": self.score,
               "scores": {"hate": hate, "offensive": offensive, "neither": neither},
               "categories": self.categories, "terms": self.terms, "model": self.model})
    }

    /// From class scores: the label is the highest (ties: the more severe).
    fn from_scores(scores: [f64; 3], terms: Vec<String>, model: String) -> Self {
        let i = (0..3).fold(0, |best, i| if scores[i] > scores[best] { i } else { best });
        let label = LABELS[i];
        Self {
            label,
            score: scores[i],
            scores,
            categories: categories_of(label),
            terms,
            model,
        }
    }
}

/// The expert.ai taxonomy's top-level category for a model class.
fn categories_of(label: &str) -> Vec<String> {
    match label {
        "hate" => vec!["Discrimination and Harassment".to_owned()],
        "offensive" => vec!["Personal Insult".to_owned()],
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Weir,
    ExpertAi,
    Hf,
    Tei,
}

/// A configured backend.
#[derive(Debug)]
pub struct Backend {
    kind: Kind,
    url: String,
    model: String,
    label_map: Vec<(String, &'static str)>,
    language: String,
    retries: u32,
    backoff: Duration,
    timeout: Option<Duration>,
}

const LABELS: [&str; 3] = ["hate", "offensive", "neither"];

impl Backend {
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let (kind, default_url, default_model) = match config.get_or("backend", "weir") {
            "weir" => (Kind::Weir, Some("http://127.0.0.1:8090"), "weir-classifier"),
            "expertai" => (Kind::ExpertAi, Some("https://nlapi.expert.ai"), "expert.ai"),
            "hf" => (Kind::Hf, None, "hf"),
            "tei" => (Kind::Tei, None, "tei"),
            other => {
                return Err(Error::new(format!(
                    "config key \"backend\": {other:?} is not one of weir, expertai, hf, tei"
                )));
            }
        };
        let url = match (config.get("url"), default_url) {
            (Some(u), _) | (None, Some(u)) => u.trim_end_matches('/').to_owned(),
            (None, None) => {
                return Err(Error::new(
                    "config key \"url\" is required for this backend",
                ));
            }
        };
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(Error::new(format!(
                "config key \"url\": {url:?} is not an http(s) URL"
            )));
        }
        let mut label_map = Vec::new();
        let spec = config.get_or(
            "label_map",
            "hate:hate,offensive:offensive,neither:neither,hate_speech:hate,hateful:hate,offensive_language:offensive,\
             toxic:offensive,non-hate:neither,non_hate:neither,nothate:neither,not-hate:neither,normal:neither,\
             non-toxic:neither,non_toxic:neither,not-offensive:neither,not_offensive:neither,none:neither",
        );
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (from, to) = pair
                .rsplit_once(':')
                .map(|(f, t)| (f.trim(), t.trim()))
                .unwrap_or((pair, ""));
            let to = LABELS.into_iter().find(|l| l.eq_ignore_ascii_case(to)).ok_or_else(|| {
                Error::new(format!("config key \"label_map\": {pair:?} must map a label to hate, offensive or neither"))
            })?;
            label_map.push((from.to_lowercase(), to));
        }
        let model = match (config.get("model"), kind) {
            (Some(m), _) => m.to_owned(),
            (None, Kind::Hf) => url
                .split_once("/models/")
                .map_or(default_model.to_owned(), |(_, m)| m.to_owned()),
            (None, _) => default_model.to_owned(),
        };
        Ok(Self {
            kind,
            url,
            model,
            label_map,
            language: config.get_or("language", "en").to_owned(),
            retries: config.parse_or("retries", 2)?,
            backoff: Duration::from_millis(config.parse_or("backoff_ms", 200)?),
            timeout: config
                .parse::<u64>("timeout_ms")?
                .map(Duration::from_millis),
        })
    }

    /// The model name recorded when nothing better is known.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Classifies `texts`: one result per text, in order; an error is the
    /// reason the text could not be classified.
    pub fn classify(&self, texts: &[&str]) -> Vec<Result<Hate, String>> {
        let batch = match self.kind {
            Kind::ExpertAi => return self.expertai(texts),
            Kind::Weir => self.call("/v1/hate", &json!({"texts": texts}), |v| {
                self.parse_weir(v, texts.len())
            }),
            Kind::Hf => self.call("", &json!({"inputs": texts}), |v| {
                self.parse_scores(v, texts.len())
            }),
            Kind::Tei => {
                let inputs: Vec<[&str; 1]> = texts.iter().map(|t| [*t]).collect();
                let body = json!({"inputs": inputs, "truncate": true});
                self.call("/predict", &body, |v| self.parse_scores(v, texts.len()))
            }
        };
        match batch {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(reason) => vec![Err(reason); texts.len()],
        }
    }

    /// One request per text; once the service is found unavailable the
    /// rest of the batch is not tried.
    fn expertai(&self, texts: &[&str]) -> Vec<Result<Hate, String>> {
        let path = format!("/v2/detect/hate-speech/{}", self.language);
        let mut down: Option<String> = None;
        texts
            .iter()
            .map(|text| {
                if let Some(reason) = &down {
                    return Err(reason.clone());
                }
                let body = json!({"document": {"text": text}});
                let result = self.call(&path, &body, |v| self.parse_expertai(v, text));
                if let Err(reason) = &result
                    && reason.starts_with("classifier unavailable")
                {
                    down = Some(reason.clone());
                }
                result
            })
            .collect()
    }

    /// POSTs `body` to `{url}{path}` with retries, then parses the response.
    fn call<T>(
        &self,
        path: &str,
        body: &Value,
        parse: impl Fn(Value) -> Result<T, String>,
    ) -> Result<T, String> {
        let url = format!("{}{path}", self.url);
        let what = format!("POST {}", url.split('?').next().unwrap_or(""));
        let mut request = Request::post_json(url.as_str(), body).map_err(|e| e.to_string())?;
        if self.kind == Kind::ExpertAi {
            request = request.header("content-type", "application/json; charset=utf-8");
        }
        if let Some(t) = self.timeout {
            request = request.timeout(t);
        }
        let retry = http::Retry {
            retries: self.retries,
            backoff: self.backoff,
        };
        match http::request_json_retrying::<Value>(&request, retry) {
            Ok(v) => parse(v).map_err(|e| format!("{what}: unexpected response: {e}")),
            Err(http::Exhausted {
                error: e @ HttpError::Denied(_),
                ..
            }) => Err(format!(
                "{what}: {e}: add the classifier's origin to the pipeline's allowed_outbound_hosts"
            )),
            Err(http::Exhausted {
                attempts: n,
                error: e,
            }) if e.is_retryable() => {
                let s = if n == 1 { "" } else { "s" };
                Err(format!(
                    "classifier unavailable after {n} attempt{s}: {what}: {e}"
                ))
            }
            Err(http::Exhausted { error: e, .. }) => Err(format!("{what}: {e}")),
        }
    }

    fn parse_weir(&self, v: Value, n: usize) -> Result<Vec<Hate>, String> {
        let model = v["model"].as_str().unwrap_or(&self.model).to_owned();
        let results = v["results"].as_array().ok_or("no \"results\" array")?;
        if results.len() != n {
            return Err(format!("{} results for {n} texts", results.len()));
        }
        results
            .iter()
            .map(|r| {
                let mut scores = [0.0; 3];
                for (i, class) in LABELS.iter().enumerate() {
                    scores[i] = r["scores"][class]
                        .as_f64()
                        .ok_or_else(|| format!("result without scores.{class}: {r}"))?;
                }
                let label = r["label"]
                    .as_str()
                    .and_then(|l| LABELS.iter().position(|x| *x == l));
                let i = label.ok_or_else(|| format!("result without a known label: {r}"))?;
                let terms = r["top_features"].as_array().into_iter().flatten();
                let terms = terms
                    .filter_map(|t| t["term"].as_str().map(str::to_owned))
                    .collect();
                Ok(Hate {
                    label: LABELS[i],
                    score: scores[i],
                    scores,
                    categories: categories_of(LABELS[i]),
                    terms,
                    model: model.clone(),
                })
            })
            .collect()
    }

    /// expert.ai categories: 1000 (Personal Insult) is offensive, 2000
    /// (Discrimination and Harassment) and 3000 (Threat and Violence) are
    /// hate; scores are the categories' (0..100) over 100, `neither` the rest; terms are the
    /// winning categories' positions in the text.
    fn parse_expertai(&self, v: Value, text: &str) -> Result<Hate, String> {
        if v["success"] == json!(false) {
            return Err(format!("the service reported failure: {}", v["errors"]));
        }
        let data = &v["data"];
        let categories = data["categories"]
            .as_array()
            .ok_or("no data.categories array")?;
        let (mut hate, mut offensive) = (0.0f64, 0.0f64);
        let (mut labels, mut spans) = (Vec::new(), Vec::new());
        for c in categories {
            let id = c["id"]
                .as_str()
                .ok_or_else(|| format!("category without an id: {c}"))?;
            let score = c["score"].as_f64().unwrap_or(0.0).clamp(0.0, 100.0);
            match id.as_bytes().first() {
                Some(b'1') => offensive = offensive.max(score),
                Some(b'2' | b'3') => hate = hate.max(score),
                _ => {}
            }
            labels.push(c["label"].as_str().unwrap_or(id).to_owned());
            if c["winner"] == json!(true) {
                for p in c["positions"].as_array().into_iter().flatten() {
                    if let (Some(start), Some(end)) = (p["start"].as_u64(), p["end"].as_u64()) {
                        spans.push((start as usize, end as usize));
                    }
                }
            }
        }
        spans.sort_unstable();
        let mut terms: Vec<String> = Vec::new();
        for (start, end) in spans {
            let term: String = text
                .chars()
                .skip(start)
                .take(end.saturating_sub(start))
                .collect();
            if !term.is_empty() && !terms.contains(&term) {
                terms.push(term);
            }
        }
        let model = match (self.model.as_str(), data["version"].as_str()) {
            ("expert.ai", Some(version)) if !version.is_empty() => format!("expert.ai {version}"),
            (m, _) => m.to_owned(),
        };
        let scores = [
            hate / 100.0,
            offensive / 100.0,
            (100.0 - hate.max(offensive)) / 100.0,
        ];
        let mut out = Hate::from_scores(scores, terms, model);
        out.categories = labels;
        Ok(out)
    }

    /// Hugging Face / TEI: `[[{label, score}, ...], ...]` (one list per
    /// text) or a flat list (one text's labels, or each text's top label).
    fn parse_scores(&self, v: Value, n: usize) -> Result<Vec<Hate>, String> {
        if let Some(e) = v.get("error") {
            return Err(format!("the service reported an error: {e}"));
        }
        let per_text: Vec<&Value> = match &v {
            Value::Array(items) if items.iter().all(Value::is_array) => items.iter().collect(),
            Value::Array(_) if n == 1 => vec![&v],
            Value::Array(items) if items.len() == n => items.iter().collect(),
            Value::Object(_) if n == 1 => vec![&v],
            other => return Err(format!("cannot read {n} label lists from {other}")),
        };
        if per_text.len() != n {
            return Err(format!("{} label lists for {n} texts", per_text.len()));
        }
        per_text
            .into_iter()
            .map(|labels| self.read_labels(labels))
            .collect()
    }

    fn read_labels(&self, labels: &Value) -> Result<Hate, String> {
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
            let to = self
                .label_map
                .iter()
                .find(|(from, _)| from.eq_ignore_ascii_case(label))
                .map(|(_, to)| *to);
            if let Some(i) = to.and_then(|to| LABELS.iter().position(|l| *l == to)) {
                scores[i] += score;
                mapped = true;
            }
        }
        if !mapped {
            return Err(format!(
                "no label of {labels} is in label_map; configure label_map"
            ));
        }
        Ok(Hate::from_scores(scores, Vec::new(), self.model.clone()))
    }
}
