//! HTTP API tests against the in-process router.

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use weir_classifier::{ApiConfig, AppState, router};

fn app() -> Router {
    router(AppState::default())
}

async fn send(app: Router, method: Method, uri: &str, body: Option<String>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

async fn post(app: Router, uri: &str, body: Value) -> (StatusCode, Value) {
    send(app, Method::POST, uri, Some(body.to_string())).await
}

/// Characters `start..end` of `text`.
fn span(text: &str, p: &Value) -> String {
    let (s, e) = (
        p["start"].as_u64().unwrap() as usize,
        p["end"].as_u64().unwrap() as usize,
    );
    text.chars().skip(s).take(e - s).collect()
}

#[tokio::test]
async fn batch_sentiment_returns_one_result_per_text_in_order() {
    let texts = [
        "VADER is smart, handsome, and funny.",
        "The movie was bad.",
        "The train leaves at noon.",
        "",
    ];
    let (status, body) = post(app(), "/v1/sentiment", json!({ "texts": texts })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model"], "vader-3.3.2");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(
        results[0],
        json!({"compound": 0.8316, "pos": 0.746, "neu": 0.254, "neg": 0.0, "label": "positive"})
    );
    assert_eq!(results[1]["label"], "negative");
    assert_eq!(results[2]["label"], "neutral");
    assert_eq!(
        results[3],
        json!({"compound": 0.0, "pos": 0.0, "neu": 0.0, "neg": 0.0, "label": "neutral"})
    );
}

#[tokio::test]
async fn batch_hate_reports_scores_and_driving_terms() {
    let texts = [
        "At least I'm not a nigger",
        "shut up you stupid bitch",
        "I love my family and my dog",
    ];
    let (status, body) = post(app(), "/v1/hate", json!({ "texts": texts })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model"], "hatesonar-0.1.0");
    let r = body["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["label"], "hate");
    assert_eq!(r[0]["scores"]["hate"], json!(0.6892269253730774));
    assert_eq!(r[0]["top_features"][0]["term"], "nigger");
    assert_eq!(
        span(texts[0], &r[0]["top_features"][0]["positions"][0]),
        "nigger"
    );
    assert_eq!(r[1]["label"], "offensive");
    assert_eq!(r[1]["top_features"][0]["term"], "bitch");
    assert_eq!(r[2]["label"], "neither");
    let sum: f64 = ["hate", "offensive", "neither"]
        .iter()
        .map(|k| r[2]["scores"][k].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-6);
}

#[tokio::test]
async fn expertai_sentiment_shape() {
    let text = "The plot was good, but the ending was terrible!";
    let (status, body) = post(
        app(),
        "/v2/analyze/standard/en/sentiment",
        json!({"document": {"text": text}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let data = &body["data"];
    assert_eq!(data["content"], text);
    assert_eq!(data["language"], "en");
    assert!(data["version"].as_str().unwrap().contains("vader 3.3.2"));
    assert_eq!(data["knowledge"], json!([]));
    let s = &data["sentiment"];
    let overall = s["overall"].as_f64().unwrap();
    assert!((-100.0..0.0).contains(&overall), "{s}");
    assert!((0.0..=100.0).contains(&s["positivity"].as_f64().unwrap()));
    assert!((-100.0..=0.0).contains(&s["negativity"].as_f64().unwrap()));
    let lemmas: Vec<_> = s["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lemma"].as_str().unwrap())
        .collect();
    assert_eq!(lemmas, ["good", "terrible"]);
    assert_eq!(s["items"][0]["syncon"], -1);
    assert_eq!(s["items"][0]["items"], json!([]));
    assert_eq!(s["items"][0]["sentiment"], json!(0.95));

    // No negative words: negativity is exactly zero, not -0.0.
    let (_, body) = post(
        app(),
        "/v2/analyze/standard/en/sentiment",
        json!({"document": {"text": "so good"}}),
    )
    .await;
    assert_eq!(body["data"]["sentiment"]["negativity"].to_string(), "0.0");
}

#[tokio::test]
async fn expertai_hate_speech_categories() {
    let uri = "/v2/detect/hate-speech/en";
    let text = "you are a fucking faggot and a nigger";
    let (status, body) = post(app(), uri, json!({"document": {"text": text}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let data = &body["data"];
    assert_eq!(data["content"], text);
    assert_eq!(data["extractions"], json!([]));
    let cats = data["categories"].as_array().unwrap();
    let ids: Vec<_> = cats.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["2000", "2100", "2500"], "{cats:?}");
    assert_eq!(cats[0]["label"], "Discrimination and Harassment");
    assert_eq!(cats[0]["namespace"], "hate_speech");
    assert_eq!(
        cats[0]["hierarchy"],
        json!(["Discrimination and Harassment"])
    );
    assert_eq!(
        cats[1]["hierarchy"],
        json!(["Discrimination and Harassment", "Racism"])
    );
    assert_documented_shape(cats);
    // 2000 accumulates every driving term, a subcategory only its own.
    assert_eq!(cats[0]["winner"], true);
    for sub in &cats[1..] {
        assert!(
            sub["score"].as_u64() <= cats[0]["score"].as_u64(),
            "{cats:?}"
        );
    }
    let racism: Vec<_> = cats[1]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| span(text, p))
        .collect();
    assert_eq!(racism, ["nigger"]);
    let homophobia: Vec<_> = cats[2]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| span(text, p))
        .collect();
    assert_eq!(homophobia, ["faggot"]);
    let all: Vec<_> = cats[0]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| span(text, p))
        .collect();
    assert!(
        all.contains(&"faggot".to_owned()) && all.contains(&"nigger".to_owned()),
        "{all:?}"
    );

    let (_, body) = post(
        app(),
        uri,
        json!({"document": {"text": "shut up you stupid bitch"}}),
    )
    .await;
    let cats = body["data"]["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 1);
    assert_eq!(cats[0]["id"], "1000");
    assert_eq!(cats[0]["label"], "Personal Insult");
    assert_eq!(cats[0]["frequency"], json!(100.0));
    assert_eq!(cats[0]["winner"], true);
    assert_documented_shape(cats);
    let insult: Vec<_> = cats[0]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| span("shut up you stupid bitch", p))
        .collect();
    assert_eq!(insult, ["bitch"]);

    let (_, body) = post(
        app(),
        uri,
        json!({"document": {"text": "what a beautiful sunset"}}),
    )
    .await;
    assert_eq!(body["data"]["categories"], json!([]));
}

/// What expert.ai documents for every category: integer-valued cumulative
/// scores (not probabilities), frequencies that are the scores' shares and
/// add up to 100, winners among the highest scores.
fn assert_documented_shape(cats: &[Value]) {
    let scores: Vec<u64> = cats
        .iter()
        .map(|c| c["score"].as_u64().expect("integer score"))
        .collect();
    let total: u64 = scores.iter().sum();
    let mut sum = 0.0;
    for (c, score) in cats.iter().zip(&scores) {
        assert!(*score >= 1, "{c}");
        let f = c["frequency"].as_f64().unwrap();
        assert!(
            (f - 100.0 * *score as f64 / total as f64).abs() <= 0.01,
            "{c}"
        );
        sum += f;
        assert_eq!(
            c["winner"],
            json!(*score == *scores.iter().max().unwrap()),
            "{c}"
        );
        assert_eq!(c["namespace"], "hate_speech");
        assert!(
            c["positions"].is_array() && c["hierarchy"].is_array(),
            "{c}"
        );
    }
    assert!((sum - 100.0).abs() < 1e-9, "{sum}");
}

/// The emulation's answers, read by detect-hate's own expert.ai code, give
/// the labels the batch API gives for the same texts.
#[tokio::test]
async fn the_module_reads_the_emulation_as_it_reads_expertai() {
    use classify_client::Task;
    use detect_hate::HateTask;
    let texts = [
        "you are a fucking faggot and a nigger",
        "shut up you stupid bitch",
        "what a beautiful sunset",
    ];
    let (_, batch) = post(app(), "/v1/hate", json!({ "texts": texts })).await;
    for (text, expected) in texts.iter().zip(batch["results"].as_array().unwrap()) {
        let (status, body) = post(
            app(),
            "/v2/detect/hate-speech/en",
            json!({"document": {"text": text}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (data, model) = classify_client::expertai::data(&body, "expert.ai").unwrap();
        let hate = HateTask.expertai_verdict(data, text, &model).unwrap();
        assert_eq!(hate.label, expected["label"], "{text}: {body}");
        assert!(model.starts_with("expert.ai weir-classifier"), "{model}");
        if hate.label == "neither" {
            assert!(hate.categories.is_empty());
        } else {
            assert_eq!(hate.score, 1.0, "one kind detected: all of the evidence");
            assert!(!hate.terms.is_empty(), "{text}: {hate:?}");
        }
    }
}

#[tokio::test]
async fn unsupported_language_uses_the_expertai_error_shape() {
    for uri in [
        "/v2/analyze/standard/it/sentiment",
        "/v2/detect/hate-speech/de",
    ] {
        let (status, body) = post(app(), uri, json!({"document": {"text": "ciao"}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["success"], false);
        assert_eq!(body["errors"][0]["code"], "UNSUPPORTED_LANGUAGE");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("en")
        );
    }
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400() {
    for uri in ["/v1/sentiment", "/v1/hate"] {
        let (status, body) = send(app(), Method::POST, uri, Some("{\"texts\": [".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "MALFORMED_JSON");

        let (status, body) = post(app(), uri, json!({"texts": "not a list"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");

        let (status, _) = post(app(), uri, json!({"text": ["typo in the field name"]})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, body) = send(
        app(),
        Method::POST,
        "/v2/detect/hate-speech/en",
        Some("not json".into()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], "MALFORMED_JSON");

    let (status, body) = post(
        app(),
        "/v2/analyze/standard/en/sentiment",
        json!({"document": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "INVALID_REQUEST");

    // No content type.
    let request = Request::post("/v1/sentiment")
        .body(Body::from("{\"texts\": []}"))
        .unwrap();
    let response = app().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    // Default limit: 1 MiB.
    let big = "a".repeat(1024 * 1024);
    let (status, body) = post(app(), "/v1/sentiment", json!({ "texts": [big] })).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");

    // Configurable limit, both API families.
    let small = router(AppState::new(ApiConfig { body_limit: 64 }));
    let text = "x".repeat(100);
    let (status, _) = post(small.clone(), "/v1/hate", json!({ "texts": [&text] })).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = post(
        small.clone(),
        "/v2/detect/hate-speech/en",
        json!({"document": {"text": &text}}),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["success"], false);
    let (status, _) = post(small, "/v1/hate", json!({ "texts": ["ok"] })).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let app = app();
    let (status, body) = send(app.clone(), Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");

    post(
        app.clone(),
        "/v1/sentiment",
        json!({"texts": ["a", "b", "c"]}),
    )
    .await;
    post(app.clone(), "/v1/hate", json!({"texts": "bad"})).await;
    let (status, body) = send(app.clone(), Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(
        text.contains(r#"weir_classifier_texts_total{endpoint="/v1/sentiment"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"weir_classifier_requests_total{endpoint="/v1/sentiment",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"weir_classifier_requests_total{endpoint="/v1/hate",status="400"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"weir_classifier_request_duration_seconds_count{endpoint="/v1/sentiment"} 1"#
        ),
        "{text}"
    );

    let (status, body) = send(app, Method::GET, "/v1/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}
