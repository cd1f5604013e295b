use std::time::Duration;

use steward_core::{LlmChunk, LlmErrorKind};
use steward_llm::OpenAiCompatible;
use steward_testkit::Reply;

use super::common::*;

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let server = server().await;
    server.push(Reply::rate_limited(2));
    let err = failure(&provider(&server), request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::RateLimited { retry_after: Some(Duration::from_secs(2)) });
    assert_eq!(err.provider, "openai");
    assert!(err.message.contains("429"), "{}", err.message);
}

#[tokio::test]
async fn a_rejected_key_is_an_authentication_error_that_never_shows_the_key() {
    let server = server().await;
    // A careless server echoing the whole key back.
    let message = format!("Incorrect API key provided: {KEY}. You can find your API key at …");
    server.push(Reply::error(401, "invalid_request_error", Some("invalid_api_key"), &message));
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Authentication);
    assert!(err.message.contains("Incorrect API key provided"), "{}", err.message);
    for shown in [err.message.clone(), err.to_string(), format!("{err:?}"), format!("{llm:?}")] {
        assert!(!shown.contains(KEY), "the key leaked: {shown}");
    }
}

#[tokio::test]
async fn server_errors_keep_their_status() {
    let server = server().await;
    server.push(Reply::error(500, "server_error", None, "The server had an error while processing your request."));
    server.push(Reply::error(503, "server_error", None, "overloaded"));
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Server { status: 500 });
    assert!(err.message.contains("The server had an error"), "{}", err.message);
    assert_eq!(failure(&llm, request("hi")).await.kind, LlmErrorKind::Overloaded);
}

#[tokio::test]
async fn client_errors_are_told_apart() {
    let server = server().await;
    server.push(Reply::error(
        404,
        "invalid_request_error",
        Some("model_not_found"),
        "The model `gpt-test` does not exist",
    ));
    server.push(Reply::error(
        400,
        "invalid_request_error",
        Some("context_length_exceeded"),
        "This model's maximum context length is 8192 tokens.",
    ));
    server.push(Reply::error(400, "invalid_request_error", None, "Invalid value for 'temperature'"));
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::ModelNotFound);
    assert!(err.message.contains("gpt-test") && err.message.contains(&server.base_url()), "{}", err.message);
    assert_eq!(failure(&llm, request("hi")).await.kind, LlmErrorKind::ContextLengthExceeded);
    assert_eq!(failure(&llm, request("hi")).await.kind, LlmErrorKind::BadRequest);
}

#[tokio::test]
async fn an_exhausted_script_is_a_server_error_saying_so() {
    let server = server().await;
    let err = failure(&provider(&server), request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Server { status: 500 });
    assert!(err.message.contains("script exhausted"), "{}", err.message);
}

#[tokio::test]
async fn a_cut_stream_is_a_network_error_after_some_text() {
    let server = server().await;
    server.push(Reply::CutStream { content: "The answer is".into(), after_chunks: 2 });
    let items = collect(&provider(&server), request("hi")).await.unwrap();
    let (ok, errors): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    let text: String = ok
        .into_iter()
        .filter_map(|c| match c {
            Ok(LlmChunk::Text(t)) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(text, "The answer is");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let err = errors.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(err.message.contains("stream ended before the model finished"), "{}", err.message);
}

#[tokio::test]
async fn garbage_is_an_invalid_response_quoting_it() {
    let server = server().await;
    server.push(Reply::Garbage { body: "<html><body>Welcome to nginx!</body></html>".into() });
    server.push(Reply::Garbage { body: "data: this is not json\n\n".into() });
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
    assert!(err.message.contains("Welcome to nginx!") && err.message.contains("openai"), "{}", err.message);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
    assert!(err.message.contains("this is not json"), "{}", err.message);
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error_naming_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let llm = OpenAiCompatible::new(config(&base_url)).unwrap();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(err.message.contains(&base_url), "{}", err.message);
    assert!(err.message.contains("connection refused"), "{}", err.message);
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn a_reply_slower_than_the_request_timeout_times_out() {
    let server = server().await;
    server.push(Reply::delay(2_000, Reply::text("too late")));
    let mut config = config(&server.base_url());
    config.request_timeout = Duration::from_millis(300);
    let llm = OpenAiCompatible::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1_500), "took {:?}", started.elapsed());
    assert!(err.message.contains("0.3s"), "{}", err.message);
}
