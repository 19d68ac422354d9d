use std::cell::RefCell;
use std::rc::Rc;

use weir_guest::http::{HttpError, Request, Response, mock};
use weir_guest::serde_json::{self, Value, json};
use weir_guest::{Config, Outcome, Processor, Record};

use super::ClassifySentiment;

type Handler = Box<dyn FnMut(&Request) -> Result<Response, HttpError>>;

/// Runs `records` through a module built from `config`, answering its
/// requests with `handler`; returns the outcomes and the requests sent.
fn run(
    config: &[(&str, &str)],
    records: &[&str],
    handler: Handler,
) -> (Vec<Outcome>, Vec<Request>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let mut handler = handler;
    let _guard = mock::set(move |req| {
        log.borrow_mut().push(req.clone());
        handler(req)
    });
    let mut pairs = vec![("backoff_ms", "0")];
    pairs.extend_from_slice(config);
    let mut module = ClassifySentiment::init(&Config::from_pairs(pairs)).expect("init");
    let out = module.process_batch(records.iter().map(|r| Record::from_value(*r)).collect());
    assert_eq!(out.len(), records.len());
    let requests = seen.borrow().clone();
    (out, requests)
}

fn body(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Emit(docs) if docs.len() == 1 => serde_json::from_slice(&docs[0].body).unwrap(),
        other => panic!("expected one document, got {other:?}"),
    }
}

fn reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Fail(r) => r,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The built-in service's answer: positive for texts containing "good",
/// negative for "bad", neutral otherwise.
fn weir_service(req: &Request) -> Result<Response, HttpError> {
    let texts: Value = req.body_json::<Value>()?["texts"].clone();
    let results: Vec<Value> = texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_str().unwrap();
            let (c, label): (f64, &str) = if t.contains("good") {
                (0.44, "positive")
            } else if t.contains("bad") {
                (-0.54, "negative")
            } else {
                (0.0, "neutral")
            };
            json!({"compound": c, "pos": c.max(0.0), "neu": 0.5, "neg": (-c).max(0.0), "label": label})
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({"model": "vader-3.3.2", "results": results}),
    ))
}

const NEWS: [&str; 3] = [
    r#"{"id":"a","title":"A good day","description":"Markets rise","url":"u"}"#,
    r#"{"id":"b","title":"A bad day"}"#,
    r#"{"id":"c","title":"Weather","description":"Rain at noon"}"#,
];

#[test]
fn one_request_for_the_batch_and_the_schema_fields() {
    let (out, requests) = run(&[], &NEWS, Box::new(weir_service));
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url, "http://127.0.0.1:8090/v1/sentiment");
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"texts": ["A good day. Markets rise", "A bad day", "Weather. Rain at noon"]})
    );
    let first = body(&out[0]);
    assert_eq!(
        first["sentiment"],
        json!({"score": 0.44, "label": "positive", "positivity": 0.44, "negativity": 0.0, "model": "vader-3.3.2"})
    );
    // Key order is kept, the new field goes last.
    let Outcome::Emit(docs) = &out[0] else {
        unreachable!()
    };
    let text = String::from_utf8(docs[0].body.to_vec()).unwrap();
    assert!(
        text.starts_with(
            r#"{"id":"a","title":"A good day","description":"Markets rise","url":"u","sentiment":{"#
        ),
        "{text}"
    );
    assert_eq!(body(&out[1])["sentiment"]["label"], "negative");
    assert_eq!(body(&out[1])["sentiment"]["negativity"], 0.54);
    assert_eq!(body(&out[2])["sentiment"]["label"], "neutral");
}

#[test]
fn batches_are_chunked_at_max_batch_in_order() {
    let records: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"title":"{} {i}"}}"#,
                if i % 2 == 0 { "good" } else { "bad" }
            )
        })
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let (out, requests) = run(&[("max_batch", "2")], &refs, Box::new(weir_service));
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| {
            r.body_json::<Value>().unwrap()["texts"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
    let labels: Vec<Value> = out
        .iter()
        .map(|o| body(o)["sentiment"]["label"].clone())
        .collect();
    assert_eq!(
        labels,
        ["positive", "negative", "positive", "negative", "positive"]
    );
}

#[test]
fn bad_records_fail_alone() {
    let (out, requests) = run(
        &[],
        &[NEWS[0], "{oops", r#"{"title": 3, "body": "x"}"#, "[1]"],
        Box::new(weir_service),
    );
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body_json::<Value>().unwrap()["texts"],
        json!(["A good day. Markets rise"])
    );
    assert_eq!(body(&out[0])["sentiment"]["label"], "positive");
    assert!(
        reason(&out[1]).starts_with("invalid JSON at byte 1"),
        "{}",
        reason(&out[1])
    );
    assert_eq!(
        reason(&out[2]),
        "no text to classify: none of the fields title, description is a string"
    );
    assert_eq!(reason(&out[3]), "expected a JSON object, found an array");
}

#[test]
fn a_503_is_retried_then_succeeds() {
    let mut calls = 0;
    let (out, requests) = run(
        &[],
        &NEWS[..1],
        Box::new(move |req| {
            calls += 1;
            if calls == 1 {
                Ok(Response::new(503, "warming up"))
            } else {
                weir_service(req)
            }
        }),
    );
    assert_eq!(requests.len(), 2);
    assert_eq!(body(&out[0])["sentiment"]["label"], "positive");
}

#[test]
fn unavailable_after_retries_dead_letters_by_default() {
    let (out, requests) = run(
        &[("retries", "3")],
        &NEWS[..2],
        Box::new(|_| Err(HttpError::Transport("ConnectionRefused".into()))),
    );
    assert_eq!(requests.len(), 4);
    for o in &out {
        assert_eq!(
            reason(o),
            "classifier unavailable after 4 attempts: POST http://127.0.0.1:8090/v1/sentiment: transport error: ConnectionRefused"
        );
    }
}

#[test]
fn unavailable_can_mean_unclassified() {
    let (out, _) = run(
        &[("on_error", "unclassified")],
        &NEWS[..1],
        Box::new(|_| Ok(Response::new(500, "boom"))),
    );
    assert_eq!(
        body(&out[0])["sentiment"],
        json!({"score": null, "label": "unclassified", "positivity": null, "negativity": null, "model": "weir-classifier"})
    );
}

#[test]
fn client_errors_are_not_retried_and_say_why() {
    let (out, requests) = run(
        &[],
        &NEWS[..1],
        Box::new(|_| Ok(Response::new(401, r#"{"error":"bad token"}"#))),
    );
    assert_eq!(requests.len(), 1);
    assert_eq!(
        reason(&out[0]),
        r#"POST http://127.0.0.1:8090/v1/sentiment: HTTP 401: {"error":"bad token"}"#
    );

    let (out, requests) = run(
        &[],
        &NEWS[..1],
        Box::new(|_| Err(HttpError::Denied("HttpRequestDenied".into()))),
    );
    assert_eq!(requests.len(), 1);
    assert!(
        reason(&out[0]).contains(
            "denied by the host's HTTP policy (HttpRequestDenied): add the classifier's origin"
        ),
        "{}",
        reason(&out[0])
    );

    let (out, _) = run(
        &[],
        &NEWS[..1],
        Box::new(|_| Ok(Response::new(200, "{\"results\": [tru"))),
    );
    assert!(
        reason(&out[0]).starts_with(
            "POST http://127.0.0.1:8090/v1/sentiment: unexpected response: EOF while parsing"
        ),
        "{}",
        reason(&out[0])
    );

    let (out, _) = run(
        &[],
        &NEWS[..2],
        Box::new(|_| Ok(Response::json(200, &json!({"model": "m", "results": []})))),
    );
    assert!(
        reason(&out[1]).ends_with("unexpected response: 0 results for 2 texts"),
        "{}",
        reason(&out[1])
    );
}

fn expertai_answer(overall: f64, pos: f64, neg: f64) -> Response {
    Response::json(
        200,
        &json!({"success": true, "data": {"content": "x", "language": "en", "version": "sensei 1.2", "knowledge": [],
        "sentiment": {"overall": overall, "positivity": pos, "negativity": neg, "items": []}}}),
    )
}

#[test]
fn expertai_is_one_request_per_text_with_its_shapes() {
    let config = [("backend", "expertai"), ("url", "https://nlapi.example/")];
    let mut answers = vec![
        expertai_answer(-54.11, 14.6, -33.2),
        expertai_answer(3.0, 3.0, 0.0),
    ]
    .into_iter();
    let (out, requests) = run(
        &config,
        &NEWS[1..],
        Box::new(move |_| Ok(answers.next().unwrap())),
    );
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].url,
        "https://nlapi.example/v2/analyze/standard/en/sentiment"
    );
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"document": {"text": "A bad day"}})
    );
    let ct: Vec<_> = requests[0]
        .headers
        .iter()
        .filter(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ct, ["application/json; charset=utf-8"]);
    assert!(
        !requests[0]
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    );
    assert_eq!(
        body(&out[0])["sentiment"],
        json!({"score": -0.5411, "label": "negative", "positivity": 0.146, "negativity": 0.332, "model": "expert.ai sensei 1.2"})
    );
    assert_eq!(body(&out[1])["sentiment"]["label"], "neutral");
}

#[test]
fn expertai_errors_and_outages() {
    let config = [("backend", "expertai"), ("retries", "1")];
    let failure =
        json!({"success": false, "errors": [{"code": "UNSUPPORTED_LANGUAGE", "message": "no"}]});
    let (out, _) = run(
        &config,
        &NEWS[..1],
        Box::new(move |_| Ok(Response::json(200, &failure))),
    );
    assert!(
        reason(&out[0])
            .contains("the service reported failure: [{\"code\":\"UNSUPPORTED_LANGUAGE\""),
        "{}",
        reason(&out[0])
    );

    // Down: the first text uses its retries, the others are not tried.
    let (out, requests) = run(
        &config,
        &NEWS,
        Box::new(|_| Ok(Response::new(429, "slow down"))),
    );
    assert_eq!(requests.len(), 2);
    for o in &out {
        assert!(
            reason(o).starts_with(
                "classifier unavailable after 2 attempts: POST https://nlapi.expert.ai/v2/"
            ),
            "{}",
            reason(o)
        );
    }
}

#[test]
fn hf_accepts_nested_and_flat_shapes_with_a_label_map() {
    let config = [
        ("backend", "hf"),
        ("url", "https://hf.example/models/org/sst2"),
        ("label_map", "LABEL_0:negative,LABEL_1:positive"),
    ];
    let nested = json!([[{"label": "LABEL_1", "score": 0.9}, {"label": "LABEL_0", "score": 0.1}],
                        [{"label": "LABEL_0", "score": 0.8}, {"label": "LABEL_1", "score": 0.2}]]);
    let (out, requests) = run(
        &config,
        &NEWS[..2],
        Box::new(move |_| Ok(Response::json(200, &nested))),
    );
    assert_eq!(requests[0].url, "https://hf.example/models/org/sst2");
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"inputs": ["A good day. Markets rise", "A bad day"]})
    );
    let s = body(&out[0])["sentiment"].clone();
    assert_eq!(s["label"], "positive");
    assert_eq!(s["model"], "org/sst2");
    assert!((s["score"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    assert_eq!(body(&out[1])["sentiment"]["label"], "negative");

    // Flat: one text's labels ...
    let flat = json!([{"label": "LABEL_0", "score": 0.7}, {"label": "LABEL_1", "score": 0.3}]);
    let (out, _) = run(
        &config,
        &NEWS[..1],
        Box::new(move |_| Ok(Response::json(200, &flat))),
    );
    assert_eq!(body(&out[0])["sentiment"]["negativity"], 0.7);
    // ... or each text's top label.
    let tops = json!([{"label": "LABEL_1", "score": 0.9}, {"label": "LABEL_0", "score": 0.9}]);
    let (out, _) = run(
        &config,
        &NEWS[..2],
        Box::new(move |_| Ok(Response::json(200, &tops))),
    );
    assert_eq!(body(&out[1])["sentiment"]["label"], "negative");
}

#[test]
fn hf_waits_for_a_loading_model_and_reports_unknown_labels() {
    let config = [("backend", "hf"), ("url", "https://hf.example/models/m")];
    let mut calls = 0;
    let (out, requests) = run(
        &config,
        &NEWS[..1],
        Box::new(move |_| {
            calls += 1;
            if calls < 3 {
                Ok(Response::json(
                    503,
                    &json!({"error": "Model m is currently loading", "estimated_time": 0.01}),
                ))
            } else {
                Ok(Response::json(
                    200,
                    &json!([[{"label": "POSITIVE", "score": 0.99}, {"label": "NEGATIVE", "score": 0.01}]]),
                ))
            }
        }),
    );
    assert_eq!(requests.len(), 3);
    assert_eq!(body(&out[0])["sentiment"]["label"], "positive");

    let (out, _) = run(
        &config,
        &NEWS[..1],
        Box::new(|_| {
            Ok(Response::json(
                200,
                &json!([[{"label": "LABEL_3", "score": 1.0}]]),
            ))
        }),
    );
    assert!(
        reason(&out[0]).contains("is in label_map; configure label_map"),
        "{}",
        reason(&out[0])
    );
}

#[test]
fn tei_sends_the_batch_shape() {
    let config = [("backend", "tei"), ("url", "http://127.0.0.1:9/")];
    let answer = json!([[{"label": "positive", "score": 0.6}, {"label": "neutral", "score": 0.3}, {"label": "negative", "score": 0.1}],
                        [{"label": "neutral", "score": 0.8}, {"label": "negative", "score": 0.1}, {"label": "positive", "score": 0.1}]]);
    let (out, requests) = run(
        &config,
        &NEWS[..2],
        Box::new(move |_| Ok(Response::json(200, &answer))),
    );
    assert_eq!(requests[0].url, "http://127.0.0.1:9/predict");
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"inputs": [["A good day. Markets rise"], ["A bad day"]], "truncate": true})
    );
    assert_eq!(body(&out[0])["sentiment"]["label"], "positive");
    assert_eq!(body(&out[1])["sentiment"]["label"], "neutral");
    assert_eq!(body(&out[1])["sentiment"]["model"], "tei");

    let err = json!({"error": "model is overloaded", "error_type": "Overloaded"});
    let (out, _) = run(
        &config,
        &NEWS[..1],
        Box::new(move |_| Ok(Response::json(429, &err))),
    );
    assert!(
        reason(&out[0]).contains("HTTP 429: {\"error\":\"model is overloaded\""),
        "{}",
        reason(&out[0])
    );
}

#[test]
fn config_errors_reject_the_module() {
    let err = |pairs: &[(&str, &str)]| {
        ClassifySentiment::init(&Config::from_pairs(pairs.to_vec()))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&[("backend", "gpt")]),
        "config key \"backend\": \"gpt\" is not one of weir, expertai, hf, tei"
    );
    assert_eq!(
        err(&[("backend", "hf")]),
        "config key \"url\" is required for this backend"
    );
    assert_eq!(
        err(&[("on_error", "ignore")]),
        "config key \"on_error\": \"ignore\" is not one of dead-letter, unclassified"
    );
    assert_eq!(
        err(&[("max_batch", "0")]),
        "config key \"max_batch\" must be at least 1"
    );
    assert_eq!(
        err(&[("url", "127.0.0.1:8090")]),
        "config key \"url\": \"127.0.0.1:8090\" is not an http(s) URL"
    );
    assert!(
        err(&[("label_map", "LABEL_0:sad")])
            .contains("must map a label to positive, negative or neutral")
    );
}

#[test]
fn process_handles_one_record() {
    let _guard = mock::set(weir_service);
    let mut module = ClassifySentiment::init(&Config::default()).unwrap();
    let out = module.process(Record::from_value(NEWS[0]));
    assert_eq!(body(&out)["sentiment"]["label"], "positive");
}
