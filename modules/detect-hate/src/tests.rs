use std::cell::RefCell;
use std::rc::Rc;

use weir_guest::http::{HttpError, Request, Response, mock};
use weir_guest::serde_json::{self, Value, json};
use weir_guest::{Config, Outcome, Processor, Record};

use super::DetectHate;

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
    let mut module = DetectHate::init(&Config::from_pairs(pairs)).expect("init");
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

/// The built-in service's answer: "bitch" is offensive, "vermin" hate.
fn weir_service(req: &Request) -> Result<Response, HttpError> {
    let texts: Value = req.body_json::<Value>()?["texts"].clone();
    let results: Vec<Value> = texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_str().unwrap();
            if t.contains("bitch") {
                json!({"label": "offensive", "scores": {"hate": 0.02, "offensive": 0.97, "neither": 0.01},
                       "top_features": [{"term": "bitch", "contribution": 4.49, "positions": [{"start": 0, "end": 5}]}]})
            } else if t.contains("vermin") {
                json!({"label": "hate", "scores": {"hate": 0.7, "offensive": 0.2, "neither": 0.1},
                       "top_features": [{"term": "vermin", "contribution": 2.0, "positions": []}]})
            } else {
                json!({"label": "neither", "scores": {"hate": 0.05, "offensive": 0.28, "neither": 0.67}, "top_features": []})
            }
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({"model": "hatesonar-0.1.0", "results": results}),
    ))
}

const TWEETS: [&str; 3] = [
    r#"{"id":"1","text":"you stupid bitch","text_original":"@x you stupid bitch"}"#,
    r#"{"id":"2","text":"what a beautiful sunset"}"#,
    r#"{"id":"3","text":"they are vermin"}"#,
];

#[test]
fn one_request_for_the_batch_and_the_schema_fields() {
    let (out, requests) = run(&[], &TWEETS, Box::new(weir_service));
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url, "http://127.0.0.1:8090/v1/hate");
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"texts": ["you stupid bitch", "what a beautiful sunset", "they are vermin"]})
    );
    assert_eq!(
        body(&out[0])["hate"],
        json!({"label": "offensive", "score": 0.97, "scores": {"hate": 0.02, "offensive": 0.97, "neither": 0.01},
               "categories": ["Personal Insult"], "terms": ["bitch"], "model": "hatesonar-0.1.0"})
    );
    assert_eq!(
        body(&out[1])["hate"],
        json!({"label": "neither", "score": 0.67, "scores": {"hate": 0.05, "offensive": 0.28, "neither": 0.67},
               "categories": [], "terms": [], "model": "hatesonar-0.1.0"})
    );
    assert_eq!(
        body(&out[2])["hate"]["categories"],
        json!(["Discrimination and Harassment"])
    );
    let Outcome::Emit(docs) = &out[0] else {
        unreachable!()
    };
    let text = String::from_utf8(docs[0].body.to_vec()).unwrap();
    assert!(
        text.starts_with(
            r#"{"id":"1","text":"you stupid bitch","text_original":"@x you stupid bitch","hate":{"#
        ),
        "{text}"
    );
}

#[test]
fn batches_are_chunked_at_max_batch_in_order() {
    let records: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"text":"{} {i}"}}"#,
                if i % 2 == 0 { "bitch" } else { "sunset" }
            )
        })
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let (out, requests) = run(&[("max_batch", "2")], &refs, Box::new(weir_service));
    assert_eq!(request_sizes(&requests, "texts"), [2, 2, 1]);
    let labels: Vec<Value> = out
        .iter()
        .map(|o| body(o)["hate"]["label"].clone())
        .collect();
    assert_eq!(
        labels,
        ["offensive", "neither", "offensive", "neither", "offensive"]
    );
}

/// Texts per request of each request, in order.
fn request_sizes(requests: &[Request], key: &str) -> Vec<usize> {
    requests
        .iter()
        .map(|r| {
            r.body_json::<Value>().unwrap()[key]
                .as_array()
                .unwrap()
                .len()
        })
        .collect()
}

#[test]
fn the_weir_classifier_gets_256_texts_a_request_and_tei_64() {
    let records: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"text":"sunset {i}"}}"#))
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let (out, requests) = run(&[], &refs, Box::new(weir_service));
    assert_eq!(request_sizes(&requests, "texts"), [256, 44]);
    assert!(out.iter().all(|o| body(o)["hate"]["label"] == "neither"));

    let tei = |req: &Request| {
        let n = req.body_json::<Value>()?["inputs"]
            .as_array()
            .unwrap()
            .len();
        let one = json!([{"label": "neither", "score": 1.0}]);
        Ok(Response::json(200, &Value::Array(vec![one; n])))
    };
    let (_, requests) = run(
        &[("backend", "tei"), ("url", "http://127.0.0.1:9")],
        &refs,
        Box::new(tei),
    );
    assert_eq!(request_sizes(&requests, "inputs"), [64, 64, 64, 64, 44]);
}

#[test]
fn bad_records_fail_alone_and_an_existing_field_is_replaced() {
    let (out, requests) = run(
        &[],
        &[
            r#"{"text":"sunset","hate":"old"}"#,
            "{oops",
            r#"{"body":"x"}"#,
        ],
        Box::new(weir_service),
    );
    assert_eq!(requests.len(), 1);
    assert_eq!(body(&out[0])["hate"]["label"], "neither");
    assert!(
        reason(&out[1]).starts_with("invalid JSON at byte 1"),
        "{}",
        reason(&out[1])
    );
    assert_eq!(
        reason(&out[2]),
        "no text to classify: none of the fields text is a string"
    );
}

#[test]
fn retries_then_dead_letter_or_unclassified() {
    let mut calls = 0;
    let (out, requests) = run(
        &[],
        &TWEETS[..1],
        Box::new(move |req| {
            calls += 1;
            if calls == 1 {
                Ok(Response::new(503, ""))
            } else {
                weir_service(req)
            }
        }),
    );
    assert_eq!(requests.len(), 2);
    assert_eq!(body(&out[0])["hate"]["label"], "offensive");

    let (out, requests) = run(
        &[],
        &TWEETS[..2],
        Box::new(|_| Err(HttpError::Timeout("HttpResponseTimeout".into()))),
    );
    assert_eq!(requests.len(), 3);
    assert_eq!(
        reason(&out[1]),
        "classifier unavailable after 3 attempts: POST http://127.0.0.1:8090/v1/hate: timed out (HttpResponseTimeout)"
    );

    let (out, _) = run(
        &[("on_error", "unclassified"), ("retries", "0")],
        &TWEETS[..1],
        Box::new(|_| Ok(Response::new(502, ""))),
    );
    assert_eq!(
        body(&out[0])["hate"],
        json!({"label": "unclassified", "score": null, "scores": null, "categories": [], "terms": [], "model": "weir-classifier"})
    );
}

#[test]
fn client_errors_are_not_retried_and_say_why() {
    let (out, requests) = run(
        &[],
        &TWEETS[..1],
        Box::new(|_| Ok(Response::new(400, "bad"))),
    );
    assert_eq!(requests.len(), 1);
    assert_eq!(
        reason(&out[0]),
        "POST http://127.0.0.1:8090/v1/hate: HTTP 400: bad"
    );
    let (out, _) = run(
        &[],
        &TWEETS[..1],
        Box::new(|_| Err(HttpError::TooLarge("HttpResponseBodySize(None)".into()))),
    );
    assert_eq!(
        reason(&out[0]),
        "POST http://127.0.0.1:8090/v1/hate: body too large (HttpResponseBodySize(None))"
    );
    let (out, _) = run(
        &[],
        &TWEETS[..1],
        Box::new(|_| Ok(Response::new(200, "<html>"))),
    );
    assert!(
        reason(&out[0]).contains(
            "unexpected response: expected value at line 1 column 1; body starts \"<html>\""
        ),
        "{}",
        reason(&out[0])
    );
}

fn expertai_answer(categories: Value) -> Response {
    Response::json(
        200,
        &json!({"success": true, "data": {"content": "x", "language": "en", "version": "sensei 2",
        "categories": categories, "extractions": []}}),
    )
}

/// expert.ai's documented example response (see classify-client's
/// tests/fixtures/README.md): one category, Sexism, cumulative score 3.
const DOCS_EXAMPLE: &str =
    include_str!("../../classify-client/tests/fixtures/expertai-hate-speech-docs-example.json");

#[test]
fn expertai_docs_example_is_hate_speech_of_its_kind() {
    let config = [("backend", "expertai"), ("url", "https://nlapi.example")];
    let answer: Value = serde_json::from_str(DOCS_EXAMPLE).unwrap();
    let text = answer["data"]["content"].as_str().unwrap().to_owned();
    let record = json!({"id": "1", "text": text}).to_string();
    let (out, requests) = run(
        &config,
        &[record.as_str()],
        Box::new(move |_| Ok(Response::json(200, &answer))),
    );
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].url,
        "https://nlapi.example/v2/detect/hate-speech/en"
    );
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"document": {"text": "Honestly, girls can't drive!"}})
    );
    // A score of 3 is not a 3 % confidence: any category is hate speech,
    // and Sexism is all of what was detected.
    assert_eq!(
        body(&out[0])["hate"],
        json!({"label": "hate", "score": 1.0, "scores": {"hate": 1.0, "offensive": 0.0, "neither": 0.0},
               "categories": ["Discrimination and Harassment", "Sexism"], "terms": ["girls"],
               "model": "expert.ai sensei: 3.1.0"})
    );
}

#[test]
fn expertai_categories_become_the_label_scores_and_terms() {
    let config = [("backend", "expertai"), ("url", "https://nlapi.example")];
    // Personal Insult only.
    let insult = json!([{"id": "1000", "label": "Personal Insult", "hierarchy": ["Personal Insult"], "namespace": "hate_speech",
        "score": 4, "frequency": 100.0, "winner": true, "positions": [{"start": 11, "end": 16}]}]);
    // Both kinds; the winner is the insult although racism has more
    // categories listed: which kind is the winners' call.
    let mixed = json!([
        {"id": "2000", "label": "Discrimination and Harassment", "hierarchy": ["Discrimination and Harassment"], "namespace": "hate_speech",
         "score": 2, "frequency": 20.0, "winner": false, "positions": [{"start": 9, "end": 15}]},
        {"id": "1000", "label": "Personal Insult", "hierarchy": ["Personal Insult"], "namespace": "hate_speech",
         "score": 6, "frequency": 60.0, "winner": true, "positions": [{"start": 0, "end": 4}]},
        {"id": "2100", "label": "Racism", "hierarchy": ["Discrimination and Harassment", "Racism"], "namespace": "hate_speech",
         "score": 2, "frequency": 20.0, "winner": false, "positions": [{"start": 9, "end": 15}]}]);
    let mut answers = vec![
        expertai_answer(insult),
        expertai_answer(json!([])),
        expertai_answer(mixed),
    ]
    .into_iter();
    let (out, requests) = run(
        &config,
        &TWEETS,
        Box::new(move |_| Ok(answers.next().unwrap())),
    );
    assert_eq!(requests.len(), 3);
    assert_eq!(
        body(&out[0])["hate"],
        json!({"label": "offensive", "score": 1.0, "scores": {"hate": 0.0, "offensive": 1.0, "neither": 0.0},
               "categories": ["Personal Insult"], "terms": ["bitch"], "model": "expert.ai sensei 2"})
    );
    // No category: no hate speech.
    assert_eq!(
        body(&out[1])["hate"],
        json!({"label": "neither", "score": 1.0, "scores": {"hate": 0.0, "offensive": 0.0, "neither": 1.0},
               "categories": [], "terms": [], "model": "expert.ai sensei 2"})
    );
    let third = body(&out[2])["hate"].clone();
    assert_eq!(third["label"], "offensive");
    assert_eq!(third["score"], 0.6);
    assert_eq!(
        third["scores"],
        json!({"hate": 0.4, "offensive": 0.6, "neither": 0.0})
    );
    assert_eq!(
        third["categories"],
        json!(["Personal Insult", "Discrimination and Harassment", "Racism"])
    );
    // Only the winner's positions: "they " is not a term.
    assert_eq!(third["terms"], json!(["they"]));
}

#[test]
fn expertai_categories_outside_the_taxonomy_still_count_and_bad_ones_fail() {
    let config = [("backend", "expertai")];
    let threat = json!([{"id": "3000", "label": "Threat and Violence", "hierarchy": ["Threat and Violence"],
        "namespace": "hate_speech", "score": 4005.0, "frequency": 100.0, "winner": true, "positions": []}]);
    let broken =
        json!([{"id": "1000", "label": "Personal Insult", "score": "high", "frequency": 100.0}]);
    let mut answers = vec![expertai_answer(threat), expertai_answer(broken)].into_iter();
    let (out, _) = run(
        &config,
        &TWEETS[..2],
        Box::new(move |_| Ok(answers.next().unwrap())),
    );
    assert_eq!(body(&out[0])["hate"]["label"], "hate");
    assert_eq!(
        body(&out[0])["hate"]["categories"],
        json!(["Threat and Violence"])
    );
    assert!(
        reason(&out[1]).contains("category without a non-negative number \"score\""),
        "{}",
        reason(&out[1])
    );
}

#[test]
fn expertai_outage_stops_the_batch() {
    let config = [("backend", "expertai"), ("retries", "0")];
    let (out, requests) = run(
        &config,
        &TWEETS,
        Box::new(|_| Err(HttpError::Transport("ConnectionRefused".into()))),
    );
    assert_eq!(requests.len(), 1);
    assert!(
        out.iter()
            .all(|o| reason(o).starts_with("classifier unavailable after 1 attempt:"))
    );
    let (out, _) = run(
        &config,
        &TWEETS[..1],
        Box::new(|_| {
            Ok(Response::json(
                401,
                &json!({"success": false, "errors": [{"code": "UNAUTHORIZED"}]}),
            ))
        }),
    );
    assert!(reason(&out[0]).contains("HTTP 401"), "{}", reason(&out[0]));
}

#[test]
fn hf_and_tei_map_labels() {
    let config = [
        ("backend", "hf"),
        ("url", "https://hf.example/models/org/hate"),
        ("label_map", "LABEL_0:neither,LABEL_1:hate"),
    ];
    let answer = json!([[{"label": "LABEL_1", "score": 0.8}, {"label": "LABEL_0", "score": 0.2}],
                        [{"label": "LABEL_0", "score": 0.9}, {"label": "LABEL_1", "score": 0.1}]]);
    let (out, requests) = run(
        &config,
        &TWEETS[..2],
        Box::new(move |_| Ok(Response::json(200, &answer))),
    );
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"inputs": ["you stupid bitch", "what a beautiful sunset"]})
    );
    assert_eq!(
        body(&out[0])["hate"],
        json!({"label": "hate", "score": 0.8, "scores": {"hate": 0.8, "offensive": 0.0, "neither": 0.2},
               "categories": ["Discrimination and Harassment"], "terms": [], "model": "org/hate"})
    );
    assert_eq!(body(&out[1])["hate"]["label"], "neither");

    // Default map, a flat single-text answer, after the model loads.
    let config = [("backend", "tei"), ("url", "http://127.0.0.1:9")];
    let mut calls = 0;
    let (out, requests) = run(
        &config,
        &TWEETS[..1],
        Box::new(move |_| {
            calls += 1;
            if calls == 1 {
                return Ok(Response::json(
                    503,
                    &json!({"error": "loading", "error_type": "Unhealthy"}),
                ));
            }
            Ok(Response::json(
                200,
                &json!([{"label": "toxic", "score": 0.9}, {"label": "non-toxic", "score": 0.1}]),
            ))
        }),
    );
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body_json::<Value>().unwrap(),
        json!({"inputs": [["you stupid bitch"]], "truncate": true})
    );
    assert_eq!(body(&out[0])["hate"]["label"], "offensive");
    assert_eq!(body(&out[0])["hate"]["model"], "tei");

    let (out, _) = run(
        &config,
        &TWEETS[..2],
        Box::new(|_| Ok(Response::json(200, &json!([[{"label": "x", "score": 1}]])))),
    );
    assert!(
        reason(&out[0]).ends_with("unexpected response: 1 label lists for 2 texts"),
        "{}",
        reason(&out[0])
    );
}

#[test]
fn config_errors_reject_the_module() {
    let err = |pairs: &[(&str, &str)]| {
        DetectHate::init(&Config::from_pairs(pairs.to_vec()))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&[("backend", "perspective")]),
        "config key \"backend\": \"perspective\" is not one of weir, expertai, hf, tei"
    );
    assert_eq!(
        err(&[("backend", "tei")]),
        "config key \"url\" is required for this backend"
    );
    assert_eq!(
        err(&[("retries", "-1")]),
        "config key \"retries\": cannot parse \"-1\": invalid digit found in string"
    );
    assert!(
        err(&[("label_map", "LABEL_0:bad")])
            .contains("must map a label to hate, offensive or neither")
    );
    assert_eq!(
        err(&[("fields", " , ")]),
        "config key \"fields\" names no field"
    );
}
