//! Tests of the anthropic provider against the scripted server.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use steward_core::{Llm, LlmChunk, LlmErrorKind, LlmRequest, Tier};
use steward_llm::anthropic::{Anthropic, AnthropicConfig};
use steward_protocol::{FinishReason, Message, Role, ToolCall, Usage};
use steward_testkit::{Reply, ScriptedCall, ScriptedLlm};
use tracing_subscriber::fmt::format::FmtSpan;

use super::common::{clock_tool, collect, failure, request, server, KEY};

fn config(server: &ScriptedLlm) -> AnthropicConfig {
    AnthropicConfig::new("claude-test")
        .with_base_url(server.host_url())
        .with_api_key(KEY)
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(2))
}

fn provider(server: &ScriptedLlm) -> Anthropic {
    Anthropic::new(config(server)).unwrap()
}

fn anthropic_error(status: u16, kind: &str, message: &str, retry_after: Option<u64>) -> Reply {
    Reply::Error { status, body: json!({"type": "error", "error": {"type": kind, "message": message}}), retry_after }
}

fn texts(chunks: &[LlmChunk]) -> Vec<&str> {
    chunks
        .iter()
        .filter_map(|c| match c {
            LlmChunk::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn text_streams_in_pieces_then_usage_then_finish() {
    let server = server().await;
    server.push(Reply::text("Hello there, general Kenobi"));
    let items = collect(&provider(&server), request("hi there!!")).await.unwrap();
    let chunks: Vec<LlmChunk> = items.into_iter().map(Result::unwrap).collect();
    let texts = texts(&chunks);
    assert!(texts.len() >= 2, "{chunks:?}");
    assert_eq!(texts.concat(), "Hello there, general Kenobi");
    // "You are a test." + "hi there!!" = 25 chars → 6 tokens; 27 chars → 6.
    let tail = &chunks[texts.len()..];
    assert_eq!(tail, [LlmChunk::Usage(Usage::new(6, 6)), LlmChunk::Finish(FinishReason::Stop)]);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn complete_reports_the_usage_the_server_computed() {
    let server = server().await;
    server.push(Reply::text("It is a quarter past twelve."));
    let completion = provider(&server).complete(request("what time is it, please?")).await.unwrap();
    assert_eq!(completion.text, "It is a quarter past twelve.");
    assert_eq!(completion.finish_reason, Some(FinishReason::Stop));
    // The scripted server counts a quarter of the characters: the prompt
    // ("You are a test." + the question) and the answer.
    let prompt = tokens("You are a test.".len() + "what time is it, please?".len());
    let answer = tokens("It is a quarter past twelve.".len());
    assert_eq!(completion.usage, Usage::new(prompt, answer));
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["system"], "You are a test.");
}

fn tokens(chars: usize) -> u64 {
    (chars as u64 / 4).max(1)
}

#[tokio::test]
async fn a_tool_use_with_split_input_arrives_whole() {
    let server = server().await;
    server.push(Reply::tool_call("get_current_time", r#"{"tz": "Europe/Paris", "format": "24h"}"#));
    let mut req = request("what time is it?");
    req.tools = vec![clock_tool()];
    let items = collect(&provider(&server), req).await.unwrap();
    let chunks: Vec<LlmChunk> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    assert_eq!(
        chunks[0],
        LlmChunk::ToolCall(ToolCall::new(
            "toolu_1_0",
            "get_current_time",
            r#"{"tz": "Europe/Paris", "format": "24h"}"#
        ))
    );
    assert!(matches!(chunks[1], LlmChunk::Usage(u) if u.completion_tokens > 0 && u.prompt_tokens > 0));
    assert_eq!(chunks[2], LlmChunk::Finish(FinishReason::ToolCalls));
}

#[tokio::test]
async fn text_and_several_tool_calls_arrive_in_order() {
    let server = server().await;
    server.push(Reply::ToolCalls {
        calls: vec![
            ScriptedCall::new("get_current_time", r#"{"tz": "Europe/Paris"}"#).with_id("toolu_abc"),
            ScriptedCall::new("lights_on", r#"{"room": "kitchen", "level": 80}"#),
            ScriptedCall::new("status", "{}"),
        ],
        content: Some("Let me check.".into()),
    });
    let completion = provider(&server).complete(request("what time is it?")).await.unwrap();
    assert_eq!(completion.text, "Let me check.");
    assert_eq!(
        completion.tool_calls,
        vec![
            ToolCall::new("toolu_abc", "get_current_time", r#"{"tz": "Europe/Paris"}"#),
            ToolCall::new("toolu_1_1", "lights_on", r#"{"room": "kitchen", "level": 80}"#),
            ToolCall::new("toolu_1_2", "status", "{}"),
        ]
    );
    assert_eq!(completion.finish_reason, Some(FinishReason::ToolCalls));
    assert!(completion.usage.completion_tokens > 0);
}

#[tokio::test]
async fn the_request_has_anthropics_shape_and_headers() {
    let server = server().await;
    server.push(Reply::text("ok"));
    let req = LlmRequest {
        tier: Tier::Smart,
        model: Some("claude-explicit".into()),
        messages: vec![
            Message::system("You are a test."),
            Message::user("what time is it, and the weather?"),
            Message {
                role: Role::Assistant,
                content: "Checking.".into(),
                tool_calls: vec![
                    ToolCall::new("c1", "get_current_time", "{}"),
                    ToolCall::new("c2", "weather", r#"{"city": "Oslo"}"#),
                ],
                tool_call_id: None,
                name: None,
            },
            Message::tool("c1", "get_current_time", "12:00"),
            Message::tool("c2", "weather", "rain"),
            Message::system("Answer in one sentence."),
        ],
        tools: vec![clock_tool()],
        temperature: Some(0.5),
        max_tokens: Some(64),
        ..LlmRequest::default()
    };
    provider(&server).complete(req).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert!(sent.header("content-type").unwrap_or_default().starts_with("application/json"));
    let body = &sent.body;
    assert_eq!(body["model"], "claude-explicit");
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["system"], "You are a test.\n\nAnswer in one sentence.");
    assert_eq!(
        body["tools"],
        json!([{
            "name": "get_current_time",
            "description": "The current time",
            "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
        }])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "what time is it, and the weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "c1", "name": "get_current_time", "input": {}},
                {"type": "tool_use", "id": "c2", "name": "weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "12:00"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "rain"},
            ]},
        ])
    );
}

#[tokio::test]
async fn defaults_fill_model_and_max_tokens_and_no_key_means_no_header() {
    let server = server().await;
    server.push(Reply::text("ok"));
    let mut config = config(&server).with_max_tokens(1234);
    config.api_key = None;
    Anthropic::new(config).unwrap().complete(request("hi")).await.unwrap();
    let sent = &server.requests()[0];
    assert_eq!(sent.header("x-api-key"), None);
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["model"], "claude-test");
    assert_eq!(sent.body["max_tokens"], 1234);
    assert!(sent.body.get("tools").is_none() && sent.body.get("temperature").is_none());
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let server = server().await;
    server.push(anthropic_error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your rate limit",
        Some(3),
    ));
    let err = failure(&provider(&server), request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::RateLimited { retry_after: Some(Duration::from_secs(3)) });
    assert_eq!(err.provider, "anthropic");
    assert!(err.message.contains("429") && err.message.contains("exceeded your rate limit"), "{}", err.message);
}

#[tokio::test]
async fn http_529_is_overloaded() {
    let server = server().await;
    server.push(anthropic_error(529, "overloaded_error", "Overloaded", None));
    let err = failure(&provider(&server), request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Overloaded);
    assert!(err.message.contains("529"), "{}", err.message);
}

#[tokio::test]
async fn a_rejected_key_is_an_authentication_error_that_never_shows_the_key() {
    let server = server().await;
    server.push(anthropic_error(401, "authentication_error", &format!("invalid x-api-key: {KEY}"), None));
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Authentication);
    assert!(err.message.contains("invalid x-api-key"), "{}", err.message);
    for shown in [err.message.clone(), err.to_string(), format!("{err:?}"), format!("{llm:?}")] {
        assert!(!shown.contains(KEY), "the key leaked: {shown}");
    }
}

#[tokio::test]
async fn client_errors_are_told_apart() {
    let server = server().await;
    server.push(anthropic_error(404, "not_found_error", "model: claude-test", None));
    server.push(anthropic_error(
        400,
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
        None,
    ));
    server.push(anthropic_error(
        413,
        "request_too_large",
        "Request exceeds the maximum allowed number of bytes.",
        None,
    ));
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::ModelNotFound);
    assert!(err.message.contains("claude-test") && err.message.contains(&server.host_url()), "{}", err.message);
    assert_eq!(failure(&llm, request("hi")).await.kind, LlmErrorKind::ContextLengthExceeded);
    assert_eq!(failure(&llm, request("hi")).await.kind, LlmErrorKind::BadRequest);
}

#[tokio::test]
async fn an_overloaded_stream_before_the_first_token_is_overloaded() {
    let server = server().await;
    server.push(Reply::StreamError {
        content: String::new(),
        error: json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    });
    let items = collect(&provider(&server), request("hi")).await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let err = items.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Overloaded);
    assert!(err.message.contains("Overloaded"), "{}", err.message);
}

#[tokio::test]
async fn an_error_after_some_text_keeps_the_text() {
    let server = server().await;
    server.push(Reply::StreamError {
        content: "The answer".into(),
        error: json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}),
    });
    let items = collect(&provider(&server), request("hi")).await.unwrap();
    let (ok, errors): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    let chunks: Vec<LlmChunk> = ok.into_iter().map(Result::unwrap).collect();
    assert_eq!(texts(&chunks).concat(), "The answer");
    assert_eq!(errors.len(), 1);
    let err = errors.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Server { status: 500 });
}

#[tokio::test]
async fn a_cut_stream_is_a_network_error_after_some_text() {
    let server = server().await;
    server.push(Reply::CutStream { content: "The answer is".into(), after_chunks: 2 });
    let items = collect(&provider(&server), request("hi")).await.unwrap();
    let (ok, errors): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    let chunks: Vec<LlmChunk> = ok.into_iter().map(Result::unwrap).collect();
    assert_eq!(texts(&chunks).concat(), "The answer is");
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let err = errors.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(err.message.contains("stream ended before the model finished"), "{}", err.message);
}

#[tokio::test]
async fn garbage_is_an_invalid_response_quoting_it() {
    let server = server().await;
    server.push(Reply::Garbage { body: "<html><body>Welcome to nginx!</body></html>".into() });
    server.push(Reply::Garbage { body: "event: message_start\ndata: this is not json\n\n".into() });
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
    assert!(err.message.contains("Welcome to nginx!") && err.message.contains("anthropic"), "{}", err.message);
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
    let base_url = format!("http://127.0.0.1:{port}");
    let llm = Anthropic::new(AnthropicConfig::new("claude-test").with_base_url(&base_url).with_api_key(KEY)).unwrap();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(err.message.contains(&base_url) && err.message.contains("connection refused"), "{}", err.message);
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn a_reply_slower_than_the_request_timeout_times_out() {
    let server = server().await;
    server.push(Reply::delay(2_000, Reply::text("too late")));
    let llm =
        Anthropic::new(config(&server).with_timeouts(Duration::from_millis(300), Duration::from_secs(2))).unwrap();
    let started = std::time::Instant::now();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1_500), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_empty_model_is_not_configured() {
    let server = server().await;
    let llm = Anthropic::new(AnthropicConfig::new("").with_base_url(server.host_url())).unwrap();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::NotConfigured);
    assert!(server.requests().is_empty());
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The test runs on one thread, so a thread-local subscriber sees the calls.
#[tokio::test(flavor = "current_thread")]
async fn calls_are_traced_with_outcome_and_tokens_but_never_the_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = server().await;
    server.push(Reply::text("Hello there"));
    server.push(anthropic_error(401, "authentication_error", &format!("invalid x-api-key: {KEY}"), None));
    let llm = provider(&server);
    llm.complete(request("hi")).await.unwrap();
    assert!(llm.complete(request("hi")).await.is_err());

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("llm_call"), "{logs}");
    assert!(
        logs.contains("provider=anthropic") && logs.contains("model=claude-test") && logs.contains("tier=smart"),
        "{logs}"
    );
    assert!(logs.contains("outcome=\"ok\"") || logs.contains("outcome=ok"), "{logs}");
    assert!(logs.contains("prompt_tokens=") && logs.contains("completion_tokens="), "{logs}");
    assert!(logs.contains("duration_ms="), "{logs}");
    assert!(logs.contains("authentication"), "{logs}");
    assert!(!logs.contains(KEY), "the key leaked into the logs:\n{logs}");
}
