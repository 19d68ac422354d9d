//! A configured classifier service: which one, where, the request each
//! takes, retries, and reading its answer into a task's verdict.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_guest::http::{self, HttpError, Request};
use weir_guest::serde_json::Value;
use weir_guest::{Config, Error};

use crate::{expertai, hf, weir};

/// What a module classifies: its three classes, its endpoints, and how
/// each service's answer for one text becomes its verdict.
pub trait Task {
    /// One text's result, in the module's schema.
    type Verdict;
    /// The classes, in the order class scores use (e.g. `hate, offensive,
    /// neither`).
    const CLASSES: [&'static str; 3];
    /// `label_map` when none is configured.
    const DEFAULT_LABEL_MAP: &'static str;
    /// The Weir classifier's batch endpoint, e.g. `/v1/hate`.
    const WEIR_PATH: &'static str;
    /// One element of the Weir classifier's `results`, as the task reads it.
    type WeirResult: DeserializeOwned;

    /// The expert.ai NL API v2 endpoint for `language`, e.g.
    /// `/v2/detect/hate-speech/en`.
    fn expertai_path(language: &str) -> String;
    /// One element of the Weir classifier's `results`.
    fn weir_verdict(&self, result: Self::WeirResult, model: &str) -> Result<Self::Verdict, String>;
    /// expert.ai's `data` for `text`.
    fn expertai_verdict(
        &self,
        data: &Value,
        text: &str,
        model: &str,
    ) -> Result<Self::Verdict, String>;
    /// Class scores (in [`Task::CLASSES`] order) from a model's labels
    /// (Hugging Face, TEI).
    fn class_scores_verdict(&self, scores: [f64; 3], model: &str) -> Self::Verdict;
}

/// Which service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The Weir classifier's batch API (`POST {url}{WEIR_PATH}`).
    Weir,
    /// expert.ai NL API v2, one request per text.
    ExpertAi,
    /// Hugging Face Inference text-classification (`url` is the model).
    Hf,
    /// Text Embeddings Inference (`POST {url}/predict`).
    Tei,
}

/// A configured backend for task `T`.
#[derive(Debug)]
pub struct Client<T> {
    task: T,
    service: Service,
    url: String,
    model: String,
    label_map: hf::LabelMap,
    language: String,
    retries: u32,
    backoff: Duration,
    timeout: Option<Duration>,
}

impl<T: Task> Client<T> {
    /// Reads `backend`, `url`, `model`, `label_map`, `language`, `retries`,
    /// `backoff_ms` and `timeout_ms`.
    pub fn from_config(config: &Config, task: T) -> Result<Self, Error> {
        let (service, default_url, default_model) = match config.get_or("backend", "weir") {
            "weir" => (
                Service::Weir,
                Some("http://127.0.0.1:8090"),
                "weir-classifier",
            ),
            "expertai" => (
                Service::ExpertAi,
                Some("https://nlapi.expert.ai"),
                "expert.ai",
            ),
            "hf" => (Service::Hf, None, "hf"),
            "tei" => (Service::Tei, None, "tei"),
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
        let label_map = hf::LabelMap::parse(
            config.get_or("label_map", T::DEFAULT_LABEL_MAP),
            &T::CLASSES,
        )?;
        let model = match (config.get("model"), service) {
            (Some(m), _) => m.to_owned(),
            (None, Service::Hf) => url
                .split_once("/models/")
                .map_or(default_model.to_owned(), |(_, m)| m.to_owned()),
            (None, _) => default_model.to_owned(),
        };
        Ok(Self {
            task,
            service,
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

    /// Texts per request when `max_batch` is not configured: 256 for the
    /// Weir classifier, 64 for the others (TEI refuses more than 32 per
    /// request by default, `--max-client-batch-size`; set `max_batch` for
    /// it). Every request costs about the same whatever its size (HTTP exchange, `wasi:http` calls, loopback send: ~100 µs of
    /// host CPU per request, benches/PROFILE.md), so the
    /// Weir classifier, which takes 256 tweets or news texts well inside
    /// its 1 MiB body limit, gets fewer, larger requests.
    pub fn default_max_batch(&self) -> usize {
        match self.service {
            Service::Weir => 256,
            Service::ExpertAi | Service::Hf | Service::Tei => 64,
        }
    }

    /// The model name recorded when nothing better is known.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Classifies `texts`: one result per text, in order; an error is the
    /// reason the text could not be classified.
    pub fn classify(&self, texts: &[&str]) -> Vec<Result<T::Verdict, String>> {
        let n = texts.len();
        let batch = match self.service {
            Service::ExpertAi => return self.expertai(texts),
            Service::Weir => self.call(
                T::WEIR_PATH,
                &weir::request(texts),
                |v: weir::BatchResponse<T::WeirResult>| {
                    let (model, results) = v.checked(n, &self.model)?;
                    results
                        .into_iter()
                        .map(|r| self.task.weir_verdict(r, &model))
                        .collect()
                },
            ),
            Service::Hf => self.call("", &hf::hf_request(texts), |v: Value| self.labels(&v, n)),
            Service::Tei => self.call("/predict", &hf::tei_request(texts), |v: Value| {
                self.labels(&v, n)
            }),
        };
        match batch {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(reason) => (0..n).map(|_| Err(reason.clone())).collect(),
        }
    }

    fn labels(&self, v: &Value, n: usize) -> Result<Vec<T::Verdict>, String> {
        hf::label_lists(v, n)?
            .into_iter()
            .map(|labels| {
                let scores = self.label_map.class_scores(labels)?;
                Ok(self.task.class_scores_verdict(scores, &self.model))
            })
            .collect()
    }

    /// One request per text; once the service is found unavailable the
    /// rest of the batch is not tried.
    fn expertai(&self, texts: &[&str]) -> Vec<Result<T::Verdict, String>> {
        let path = T::expertai_path(&self.language);
        let mut down: Option<String> = None;
        texts
            .iter()
            .map(|text| {
                if let Some(reason) = &down {
                    return Err(reason.clone());
                }
                let result = self.call(&path, &expertai::request(text), |v: Value| {
                    let (data, model) = expertai::data(&v, &self.model)?;
                    self.task.expertai_verdict(data, text, &model)
                });
                if let Err(reason) = &result
                    && reason.starts_with("classifier unavailable")
                {
                    down = Some(reason.clone());
                }
                result
            })
            .collect()
    }

    /// POSTs `body` to `{url}{path}` with retries, then reads the response
    /// as `D` and makes it `R`.
    fn call<B: Serialize + ?Sized, D: DeserializeOwned, R>(
        &self,
        path: &str,
        body: &B,
        parse: impl Fn(D) -> Result<R, String>,
    ) -> Result<R, String> {
        let url = format!("{}{path}", self.url);
        let what = format!("POST {}", url.split('?').next().unwrap_or(""));
        let mut request = Request::post_json(url.as_str(), body).map_err(|e| e.to_string())?;
        if self.service == Service::ExpertAi {
            request = request.header("content-type", expertai::CONTENT_TYPE);
        }
        if let Some(t) = self.timeout {
            request = request.timeout(t);
        }
        let retry = http::Retry {
            retries: self.retries,
            backoff: self.backoff,
        };
        match http::request_json_retrying::<D>(&request, retry) {
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
}
