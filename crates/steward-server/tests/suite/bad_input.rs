use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use steward_testkit::Reply as Scripted;

use super::{harness, harness_with, Options};

const CHAT: &str = "/v1/chat/completions";

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400_with_a_reason() {
    let h = harness().await;
    let cases = [
        ("{not json", "not valid JSON"),
        ("", "empty"),
        (r#"{"model": 5, "messages": []}"#, "expected a string"),
        (r#"{"model": "architect"}"#, "missing field `messages`"),
        (r#"{"model": "architect", "messages": "hi"}"#, "expected a sequence"),
        (r#"{"model": "architect", "messages": []}"#, "'messages' is empty"),
        (r#"{"model": "architect", "messages": [{"role": "wizard", "content": "x"}]}"#, "unknown role 'wizard'"),
        (
            r#"{"model": "architect", "messages": [{"role": "assistant", "content": "x"}]}"#,
            "last message must be from the user",
        ),
    ];
    for (body, expected) in cases {
        let r = h.post_raw(CHAT, body).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.text());
        let e = r.error();
        assert_eq!(e["type"], "invalid_request_error");
        assert!(e["message"].as_str().unwrap().contains(expected), "{body}: {e}");
    }
    let r = h.post_raw("/api/conversations", r#"{"agent": 1}"#).await;
    assert_eq!(r.status, 400);
    let r = h.post_raw("/api/conversations", r#"{"agnet": "architect"}"#).await;
    assert!(r.error()["message"].as_str().unwrap().contains("unknown field `agnet`"));
    // Nothing reached the model, and the server still serves.
    assert!(h.llm().chat_requests().is_empty());
    h.llm().push(Scripted::text("still here"));
    let r = h.post_json(CHAT, json!({"model": "architect", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn an_unknown_model_is_404_model_not_found() {
    let h = harness().await;
    let r = h.post_json(CHAT, json!({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 404);
    let e = r.error();
    assert_eq!(e["code"], "model_not_found");
    assert_eq!(e["param"], "model");
    assert!(e["message"].as_str().unwrap().contains("gpt-9"));
}

#[tokio::test]
async fn an_oversized_body_is_413_even_without_a_content_length() {
    let h = harness_with(Options { max_body_bytes: 2048, ..Default::default() }).await;
    let big = json!({"model": "architect", "messages": [{"role": "user", "content": "x".repeat(4096)}]}).to_string();
    let r = h.post_raw(CHAT, big.clone()).await;
    assert_eq!(r.status, 413);
    assert!(r.error()["message"].as_str().unwrap().contains("2048"));
    // A streamed body of unknown length is cut off at the limit too.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        big.into_bytes().chunks(512).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let r = h.send(Request::post(CHAT).body(body).unwrap()).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(h.get("/v1/models").await.status, 200);
}

#[tokio::test]
async fn keys_guard_every_route_but_health() {
    let h = harness_with(Options { keys: vec!["sk-good"], ..Default::default() }).await;
    assert_eq!(h.get("/health").await.status, 200);
    for path in ["/v1/models", "/metrics", "/api/conversations", "/no/such/route"] {
        let r = h.get(path).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.error()["message"].as_str().unwrap().contains("missing API key"));
    }
    let with = |key: &str| {
        Request::get("/v1/models").header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap()
    };
    let r = h.send(with("sk-bad")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "invalid_api_key");
    assert_eq!(h.send(with("sk-good")).await.status, 200);
    // The scheme name is case-insensitive.
    let r =
        h.send(Request::get("/v1/models").header("authorization", "BEARER sk-good").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 200);
    // A rejected request tells pooling clients the connection closes.
    assert_eq!(h.send(with("sk-bad")).await.headers["connection"], "close");
    let r = h.send(Request::get("/v1/models").header("authorization", "Basic abc").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let h = harness().await;
    let r = h.get("/v2/whatever").await;
    assert_eq!(r.status, 404);
    assert!(r.error()["message"].as_str().unwrap().contains("/v2/whatever"));
}

#[tokio::test]
async fn wrong_methods_and_bad_paths_get_json_errors() {
    let h = harness().await;
    let r = h.get("/v1/chat/completions").await;
    assert_eq!(r.status, 405);
    assert!(r.error()["message"].as_str().unwrap().contains("GET is not allowed"));
    let r = h.get("/api/conversations/%FF").await;
    assert_eq!(r.status, 400);
    assert!(r.error()["message"].as_str().unwrap().contains("invalid path"), "{}", r.text());
    let r = h.post_json("/api/conversations/x/messages?stream=maybe", json!({"content": "hi"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "stream");
}
