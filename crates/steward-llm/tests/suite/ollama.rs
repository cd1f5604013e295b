//! Tests of the native Ollama provider (`/api/chat`) against the scripted
//! server.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::{Llm, LlmChunk, LlmErrorKind, LlmRequest};
use steward_llm::ollama::{Ollama, OllamaConfig};
use steward_protocol::{FinishReason, Message, Role, ToolCall, Usage};
use steward_testkit::{Reply, ScriptedCall, ScriptedLlm};
use tracing_subscriber::fmt::format::FmtSpan;

use super::common::{clock_tool, collect, failure, request, server};

const MODEL: &str = "llama3.1";

fn config(host: &str) -> OllamaConfig {
    OllamaConfig::new(host, MODEL).with_timeouts(Duration::from_secs(10), Duration::from_secs(2))
}

fn provider(server: &ScriptedLlm) -> Ollama {
    Ollama::new(config(&server.host_url())).unwrap()
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

/// The arguments of a call as JSON, so key order does not matter.
fn args(call: &ToolCall) -> Value {
    serde_json::from_str(&call.arguments).unwrap_or_else(|e| panic!("arguments {:?} are not JSON: {e}", call.arguments))
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn text_streams_in_pieces_then_usage_then_finish() {
    let server = server().await;
    server.push(Reply::text("Hello there, general Kenobi"));
    let llm = provider(&server);
    assert_eq!(llm.name(), "ollama");
    let items = collect(&llm, request("hi there!!")).await.unwrap();
    let chunks: Vec<LlmChunk> = items.into_iter().map(Result::unwrap).collect();
    let texts = texts(&chunks);
    assert!(texts.len() >= 2, "{chunks:?}");
    assert_eq!(texts.concat(), "Hello there, general Kenobi");
    // prompt_eval_count: "You are a test." + "hi there!!" = 25 chars → 6 tokens;
    // eval_count: 27 chars → 6.
    let tail = &chunks[texts.len()..];
    assert_eq!(tail, [LlmChunk::Usage(Usage::new(6, 6)), LlmChunk::Finish(FinishReason::Stop)]);
}

#[tokio::test]
async fn tool_calls_with_object_arguments_become_json_text() {
    let server = server().await;
    server.push(Reply::ToolCalls {
        calls: vec![
            ScriptedCall::new("get_current_time", r#"{"tz": "Europe/Paris"}"#).with_id("call_abc"),
            ScriptedCall::new("lights_on", r#"{"room": "kitchen", "level": 80, "colour": {"r": 1}}"#),
        ],
        content: Some("Let me check.".into()),
    });
    let completion = provider(&server).complete(request("what time is it?")).await.unwrap();
    assert_eq!(completion.text, "Let me check.");
    let calls = &completion.tool_calls;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("call_abc", "get_current_time"));
    assert_eq!(args(&calls[0]), json!({"tz": "Europe/Paris"}));
    // No id from Ollama: one is made up from the call's position.
    assert_eq!((calls[1].id.as_str(), calls[1].name.as_str()), ("call_1", "lights_on"));
    assert_eq!(args(&calls[1]), json!({"room": "kitchen", "level": 80, "colour": {"r": 1}}));
    // Ollama says "stop" after tool calls; they still finish the answer for tools.
    assert_eq!(completion.finish_reason, Some(FinishReason::ToolCalls));
    // "You are a test." + "what time is it?" = 31 chars → 7; 13 + 16 + 22 + 9 + 52 = 112 chars → 28.
    assert_eq!(completion.usage, Usage::new(7, 28));
}

#[tokio::test]
async fn missing_ids_are_made_up_and_unique() {
    let server = server().await;
    server.push(Reply::tool_calls(vec![
        ScriptedCall::new("lights_on", r#"{"room": "hall"}"#),
        ScriptedCall::new("lights_on", r#"{"room": "hall"}"#),
        ScriptedCall::new("get_current_time", "{}"),
    ]));
    let items = collect(&provider(&server), request("lights")).await.unwrap();
    let chunks: Vec<LlmChunk> = items.into_iter().map(Result::unwrap).collect();
    let ids: Vec<&str> = chunks
        .iter()
        .filter_map(|c| match c {
            LlmChunk::ToolCall(call) => Some(call.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["call_0", "call_1", "call_2"]);
    assert!(texts(&chunks).is_empty(), "{chunks:?}");
    assert_eq!(chunks.last(), Some(&LlmChunk::Finish(FinishReason::ToolCalls)));
}

#[tokio::test]
async fn the_request_has_ollamas_shape() {
    let server = server().await;
    server.push(Reply::text("ok"));
    let mut req = request("what time is it?");
    req.tools = vec![clock_tool()];
    req.temperature = Some(0.5);
    req.max_tokens = Some(64);
    req.messages.push(Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall::new("c1", "get_current_time", r#"{"tz":"UTC"}"#)],
        tool_call_id: None,
        name: None,
    });
    req.messages.push(Message::tool("c1", "get_current_time", "12:00"));
    let llm = Ollama::new(config(&server.host_url()).with_keep_alive("10m")).unwrap();
    llm.complete(req).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/api/chat");
    assert!(sent.header("content-type").unwrap_or_default().starts_with("application/json"));
    assert_eq!(sent.header("authorization"), None);
    let body = &sent.body;
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"], json!({"temperature": 0.5, "num_predict": 64}));
    assert_eq!(body["keep_alive"], "10m");
    assert!(body.get("stream_options").is_none() && body.get("max_tokens").is_none());
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "get_current_time",
            "description": "The current time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        }}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are a test."},
            {"role": "user", "content": "what time is it?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_current_time", "arguments": {"tz": "UTC"}}},
            ]},
            {"role": "tool", "content": "12:00", "tool_name": "get_current_time"},
        ])
    );
}

#[tokio::test]
async fn the_requests_model_wins_and_plain_requests_stay_plain() {
    let server = server().await;
    server.push(Reply::text("ok"));
    let req = LlmRequest { model: Some("qwen2.5:7b".into()), ..request("hi") };
    provider(&server).complete(req).await.unwrap();
    let body = &server.requests()[0].body;
    assert_eq!(body["model"], "qwen2.5:7b");
    for absent in ["tools", "options", "keep_alive"] {
        assert!(body.get(absent).is_none(), "{absent} sent: {body}");
    }
}

#[tokio::test]
async fn hosts_are_accepted_without_a_scheme_and_with_a_trailing_slash() {
    let server = server().await;
    server.set_default(Some(Reply::text("ok")));
    for host in [server.addr().to_string(), format!("{}/", server.host_url()), format!("{}/v1", server.host_url())] {
        let llm = Ollama::new(config(&host)).unwrap();
        assert_eq!(llm.complete(request("hi")).await.unwrap().text, "ok", "{host}");
    }
    assert!(server.requests().iter().all(|r| r.path == "/api/chat"));
}

#[tokio::test]
async fn a_missing_model_is_model_not_found_with_the_pull_command() {
    let server = server().await;
    server.push(Reply::Error {
        status: 404,
        body: json!({"error": "model \"x\" not found, try pulling it first"}),
        retry_after: None,
    });
    let req = LlmRequest { model: Some("x".into()), ..request("hi") };
    let err = failure(&provider(&server), req).await;
    assert_eq!(err.kind, LlmErrorKind::ModelNotFound);
    assert_eq!(err.provider, "ollama");
    assert!(err.message.contains("'x'") && err.message.contains("`ollama pull x`"), "{}", err.message);
    assert!(err.message.contains("try pulling it first"), "{}", err.message);
}

#[tokio::test]
async fn http_errors_are_read_from_ollamas_body() {
    let server = server().await;
    let ollama_error =
        |status: u16, message: &str| Reply::Error { status, body: json!({"error": message}), retry_after: None };
    server.push_all([
        ollama_error(400, "registry.ollama.ai/library/gemma:2b does not support tools"),
        ollama_error(500, "llama runner process has terminated: exit status 2"),
        ollama_error(500, "the input length exceeds the context length"),
        ollama_error(503, "server busy, please try again.  maximum pending requests exceeded"),
        Reply::Error { status: 429, body: json!({"error": "too many requests"}), retry_after: Some(3) },
    ]);
    let llm = provider(&server);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::BadRequest);
    assert!(err.message.contains("does not support tools"), "{}", err.message);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Server { status: 500 });
    assert!(err.message.contains("llama runner process has terminated"), "{}", err.message);
    assert_eq!(failure(&llm, request("hi")).await.kind, LlmErrorKind::ContextLengthExceeded);
    assert_eq!(failure(&llm, request("hi")).await.kind, LlmErrorKind::Overloaded);
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::RateLimited { retry_after: Some(Duration::from_secs(3)) });
}

#[tokio::test]
async fn an_error_line_mid_stream_comes_after_the_text() {
    let server = server().await;
    server.push(Reply::StreamError { content: "The answer is".into(), error: json!({"error": "model crashed"}) });
    let items = collect(&provider(&server), request("hi")).await.unwrap();
    let (last, head) = items.split_last().unwrap();
    let text: String = head
        .iter()
        .map(|item| match item {
            Ok(LlmChunk::Text(t)) => t.clone(),
            other => panic!("expected only text before the error, got {other:?}"),
        })
        .collect();
    assert_eq!(text, "The answer is");
    let err = last.clone().unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Server { status: 500 });
    assert!(err.message.contains("model crashed"), "{}", err.message);
}

#[tokio::test]
async fn a_cut_stream_is_a_network_error_after_the_text() {
    let server = server().await;
    server.push(Reply::CutStream { content: "Half an ans".into(), after_chunks: 2 });
    let items = collect(&provider(&server), request("hi")).await.unwrap();
    let text: String = items
        .iter()
        .filter_map(|item| match item {
            Ok(LlmChunk::Text(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Half an ans");
    let err = items.last().unwrap().clone().unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(err.message.contains("stream ended before the model finished"), "{}", err.message);
}

#[tokio::test]
async fn garbage_is_an_invalid_response_quoting_it() {
    let server = server().await;
    server.push(Reply::Garbage { body: format!("<html><body>Bad gateway {}</body></html>", "x".repeat(500)) });
    let err = failure(&provider(&server), request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
    assert!(err.message.contains("<html><body>Bad gateway"), "{}", err.message);
    assert!(err.message.chars().count() < 300, "{}", err.message);
}

#[tokio::test]
async fn a_404_from_something_else_points_at_ollama_host() {
    let server = server().await;
    // The scripted server has no route here: a 404 that is not Ollama's.
    let llm = Ollama::new(config(&format!("{}/elsewhere", server.host_url()))).unwrap();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::BadRequest);
    assert!(err.message.contains("404") && err.message.contains("OLLAMA_HOST"), "{}", err.message);
}

#[tokio::test]
async fn connection_refused_is_a_network_error_naming_the_host() {
    let port = closed_port();
    let llm = Ollama::new(config(&format!("127.0.0.1:{port}"))).unwrap();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(err.message.contains(&format!("http://127.0.0.1:{port}")), "{}", err.message);
    assert!(err.message.contains("is Ollama running?") && err.message.contains("`ollama serve`"), "{}", err.message);
}

#[tokio::test]
async fn a_slow_server_is_a_timeout() {
    let server = server().await;
    server.push(Reply::delay(2_000, Reply::text("too late")));
    let llm = Ollama::new(config(&server.host_url()).with_timeouts(Duration::from_millis(200), Duration::from_secs(2)))
        .unwrap();
    let err = failure(&llm, request("hi")).await;
    assert_eq!(err.kind, LlmErrorKind::Timeout);
}

#[tokio::test]
async fn credentials_in_the_host_never_show() {
    let server = server().await;
    server.push(Reply::Error {
        status: 500,
        body: json!({"error": "proxy says: bad password s3cret-pass-word"}),
        retry_after: None,
    });
    let host = format!("http://me:s3cret-pass-word@{}", server.addr());
    let llm = Ollama::new(config(&host)).unwrap();
    let err = failure(&llm, request("hi")).await;
    for shown in [err.message.clone(), err.to_string(), format!("{err:?}"), format!("{llm:?}")] {
        assert!(!shown.contains("s3cret-pass-word"), "the password leaked: {shown}");
    }
    // Sent as basic auth, as reqwest does for user info in a URL.
    let auth = server.requests()[0].header("authorization").unwrap_or_default().to_string();
    assert!(auth.starts_with("Basic "), "{auth}");
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
async fn calls_are_traced_with_outcome_and_tokens() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = server().await;
    server.push(Reply::text("Hello there"));
    server.push(Reply::Error { status: 404, body: json!({"error": "model \"nope\" not found"}), retry_after: None });
    let llm = provider(&server);
    llm.complete(request("hi")).await.unwrap();
    assert!(llm.complete(LlmRequest { model: Some("nope".into()), ..request("hi") }).await.is_err());

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("llm_call"), "{logs}");
    assert!(logs.contains("provider=ollama") && logs.contains("model=llama3.1"), "{logs}");
    assert!(logs.contains("outcome=\"ok\"") || logs.contains("outcome=ok"), "{logs}");
    assert!(logs.contains("prompt_tokens=") && logs.contains("completion_tokens="), "{logs}");
    assert!(logs.contains("model_not_found"), "{logs}");
}
