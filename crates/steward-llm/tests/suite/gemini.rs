//! Tests of the Gemini provider against the scripted server's Gemini side.

use std::time::Duration;

use serde_json::{json, Value};
use steward_core::{Llm, LlmChunk, LlmErrorKind, LlmRequest};
use steward_llm::gemini::{Gemini, GeminiConfig};
use steward_protocol::{FinishReason, Message, Role, ToolCall, Usage};
use steward_testkit::{Reply, ScriptedCall, ScriptedLlm};

use super::common::*;

const MODEL: &str = "gemini-2.0-flash";

fn gemini(server: &ScriptedLlm) -> Gemini {
    let config = GeminiConfig::new(MODEL)
        .with_base_url(server.host_url())
        .with_api_key(KEY)
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(2));
    Gemini::new(config).expect("build the provider")
}

fn google_error(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

fn chunks(items: Vec<Result<LlmChunk, steward_core::LlmError>>) -> Vec<LlmChunk> {
    items.into_iter().map(|i| i.expect("no error in the stream")).collect()
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
    let llm = gemini(&server);
    assert_eq!(llm.name(), "gemini");
    let chunks = chunks(collect(&llm, request("hi there!!")).await.unwrap());
    let texts = texts(&chunks);
    assert!(texts.len() >= 2, "{chunks:?}");
    assert_eq!(texts.concat(), "Hello there, general Kenobi");
    // As on the OpenAI side: "You are a test." + "hi there!!" = 25 chars → 6
    // prompt tokens; 27 chars of answer → 6.
    let tail = &chunks[texts.len()..];
    assert_eq!(tail, [LlmChunk::Usage(Usage::new(6, 6)), LlmChunk::Finish(FinishReason::Stop)]);
}

#[tokio::test]
async fn usage_matches_the_openai_side_for_the_same_script() {
    let server = server().await;
    let reply = Reply::ToolCalls {
        calls: vec![ScriptedCall::new("get_current_time", r#"{"tz": "Europe/Paris"}"#)],
        content: Some("Let me check the clock for you.".into()),
    };
    server.push_all([reply.clone(), reply]);
    let from_gemini = gemini(&server).complete(request("what time is it?")).await.unwrap();
    let from_openai = provider(&server).complete(request("what time is it?")).await.unwrap();
    assert_eq!(from_gemini.usage, from_openai.usage);
    assert!(from_gemini.usage.prompt_tokens > 1 && from_gemini.usage.completion_tokens > 1);
}

#[tokio::test]
async fn a_function_call_round_trip_sends_the_signature_back() {
    let server = server().await;
    server.push(Reply::ToolCalls {
        calls: vec![
            ScriptedCall::new("get_current_time", r#"{"tz": "Europe/Paris"}"#),
            ScriptedCall::new("lights_on", r#"{"room": "kitchen"}"#).with_id("given-id"),
        ],
        content: Some("Let me check.".into()),
    });
    server.push(Reply::text("It is noon and the light is on."));
    let llm = gemini(&server);

    let mut req = request("what time is it?");
    req.tools = vec![clock_tool()];
    let first = llm.complete(req.clone()).await.unwrap();
    assert_eq!(first.text, "Let me check.");
    assert_eq!(first.finish_reason, Some(FinishReason::ToolCalls));
    let calls = first.tool_calls;
    assert_eq!(
        calls,
        vec![
            ToolCall {
                signature: Some("sig-1-0".into()),
                ..ToolCall::new("call_0", "get_current_time", r#"{"tz":"Europe/Paris"}"#)
            },
            ToolCall {
                signature: Some("sig-1-1".into()),
                ..ToolCall::new("given-id", "lights_on", r#"{"room":"kitchen"}"#)
            },
        ]
    );

    req.messages.push(Message {
        role: Role::Assistant,
        content: first.text.clone(),
        tool_calls: calls.clone(),
        tool_call_id: None,
        name: None,
    });
    req.messages.push(Message::tool(&calls[0].id, &calls[0].name, "12:00"));
    req.messages.push(Message::tool(&calls[1].id, &calls[1].name, r#"{"ok": true}"#));
    let second = llm.complete(req).await.unwrap();
    assert_eq!(second.text, "It is noon and the light is on.");
    assert_eq!(second.finish_reason, Some(FinishReason::Stop));

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let contents = &requests[1].body["contents"];
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [
            {"text": "Let me check."},
            {"functionCall": {"name": "get_current_time", "args": {"tz": "Europe/Paris"}}, "thoughtSignature": "sig-1-0"},
            {"functionCall": {"name": "lights_on", "args": {"room": "kitchen"}}, "thoughtSignature": "sig-1-1"},
        ]})
    );
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_current_time", "response": {"result": "12:00"}}},
            {"functionResponse": {"name": "lights_on", "response": {"result": {"ok": true}}}},
        ]})
    );
    assert_eq!(contents.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn the_request_has_gemini_s_shape_and_the_key_only_in_its_header() {
    let server = server().await;
    server.push(Reply::text("ok"));
    let mut req = request("what time is it?");
    let mut tool = clock_tool();
    tool.parameters = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"tz": {"type": "string", "description": "IANA zone"}, "opts": {
            "type": "object", "properties": {"utc": {"type": "boolean"}}, "additionalProperties": false}},
        "required": ["tz"],
        "additionalProperties": false,
    });
    req.tools = vec![tool];
    req.temperature = Some(0.5);
    req.max_tokens = Some(64);
    req.model = Some("gemini-1.5-pro".into());
    gemini(&server).complete(req).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    let (path, query) = sent.path.split_once('?').expect("a query string");
    assert_eq!(path, "/v1beta/models/gemini-1.5-pro:streamGenerateContent");
    assert_eq!(query, "alt=sse");
    assert!(!sent.path.contains(KEY), "the key is in the URL: {}", sent.path);
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(sent.header("authorization"), None);
    assert!(sent.header("content-type").unwrap_or_default().starts_with("application/json"));

    let body = &sent.body;
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "You are a test."}]}));
    assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "what time is it?"}]}]));
    assert_eq!(body["generationConfig"], json!({"temperature": 0.5, "maxOutputTokens": 64}));
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [{
            "name": "get_current_time",
            "description": "The current time",
            "parameters": {
                "type": "object",
                "properties": {"tz": {"type": "string", "description": "IANA zone"}, "opts": {
                    "type": "object", "properties": {"utc": {"type": "boolean"}}}},
                "required": ["tz"],
            },
        }]}])
    );
}

#[tokio::test]
async fn resource_exhausted_with_retry_info_is_rate_limited_with_the_wait() {
    let server = server().await;
    let mut body = google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.");
    body["error"]["details"] = json!([
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "requests"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"},
    ]);
    server.push(Reply::Error { status: 429, body: body.clone(), retry_after: None });
    server.push(Reply::Error { status: 429, body, retry_after: Some(3) });
    let llm = gemini(&server);
    let e = failure(&llm, request("hi")).await;
    assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: Some(Duration::from_secs(12)) });
    assert!(e.message.contains("RESOURCE_EXHAUSTED") && e.message.contains("retry after 12s"), "{}", e.message);
    // A Retry-After header wins.
    let e = failure(&llm, request("hi")).await;
    assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: Some(Duration::from_secs(3)) });
}

#[tokio::test]
async fn unavailable_is_overloaded() {
    let server = server().await;
    let body = google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.");
    server.push(Reply::Error { status: 503, body, retry_after: None });
    let e = failure(&gemini(&server), request("hi")).await;
    assert_eq!(e.kind, LlmErrorKind::Overloaded);
    assert!(e.kind.is_transient());
    assert_eq!(e.provider, "gemini");
    assert!(e.message.contains("overloaded"), "{}", e.message);
}

#[tokio::test]
async fn permission_denied_is_authentication_without_the_key() {
    let server = server().await;
    let message = format!("Permission denied for API key {KEY}.");
    server.push(Reply::Error {
        status: 403,
        body: google_error(403, "PERMISSION_DENIED", &message),
        retry_after: None,
    });
    let llm = gemini(&server);
    let e = failure(&llm, request("hi")).await;
    assert_eq!(e.kind, LlmErrorKind::Authentication);
    assert!(!e.message.contains(KEY), "{}", e.message);
    assert!(!e.to_string().contains(KEY) && !format!("{e:?}").contains(KEY));
    assert!(e.message.contains("PERMISSION_DENIED"), "{}", e.message);
    assert!(!format!("{llm:?}").contains(KEY));
}

#[tokio::test]
async fn an_unknown_model_is_model_not_found() {
    let server = server().await;
    let message = "models/gemini-nope is not found for API version v1beta, or is not supported for generateContent.";
    server.push(Reply::Error { status: 404, body: google_error(404, "NOT_FOUND", message), retry_after: None });
    let mut req = request("hi");
    req.model = Some("gemini-nope".into());
    let e = failure(&gemini(&server), req).await;
    assert_eq!(e.kind, LlmErrorKind::ModelNotFound);
    assert!(e.message.contains("'gemini-nope'"), "{}", e.message);
}

#[tokio::test]
async fn a_cut_stream_is_a_network_error_after_the_text() {
    let server = server().await;
    server.push(Reply::CutStream { content: "The answer is".into(), after_chunks: 2 });
    let items = collect(&gemini(&server), request("hi")).await.unwrap();
    let (oks, errs): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    let chunks: Vec<LlmChunk> = oks.into_iter().map(Result::unwrap).collect();
    assert_eq!(texts(&chunks).concat(), "The answer is");
    assert!(!chunks.iter().any(|c| matches!(c, LlmChunk::Finish(_))), "{chunks:?}");
    let e = errs.into_iter().next().and_then(Result::err).expect("an error after the text");
    assert_eq!(e.kind, LlmErrorKind::Network);
    assert!(e.message.contains("stream ended before the model finished"), "{}", e.message);
}

#[tokio::test]
async fn an_error_inside_the_stream_is_an_error() {
    let server = server().await;
    server.push(Reply::StreamError {
        content: "Half an ans".into(),
        error: google_error(500, "INTERNAL", "An internal error has occurred."),
    });
    let items = collect(&gemini(&server), request("hi")).await.unwrap();
    let text: String = items
        .iter()
        .filter_map(|i| match i {
            Ok(LlmChunk::Text(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Half an ans");
    let e = items.into_iter().find_map(Result::err).expect("an error");
    assert_eq!(e.kind, LlmErrorKind::Server { status: 500 });
    assert!(e.message.contains("An internal error has occurred."), "{}", e.message);
}

#[tokio::test]
async fn garbage_is_an_invalid_response() {
    let server = server().await;
    server.push(Reply::Garbage { body: "<html><body>Welcome to nginx!</body></html>".into() });
    let e = failure(&gemini(&server), request("hi")).await;
    assert_eq!(e.kind, LlmErrorKind::InvalidResponse);
    assert!(e.message.contains("Welcome to nginx!"), "{}", e.message);
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = GeminiConfig::new(MODEL).with_base_url(format!("http://127.0.0.1:{port}")).with_api_key(KEY);
    let req = LlmRequest { messages: vec![Message::user("hi")], ..LlmRequest::default() };
    let e = failure(&Gemini::new(config).unwrap(), req).await;
    assert_eq!(e.kind, LlmErrorKind::Network);
    assert!(e.message.contains("connection refused"), "{}", e.message);
    assert!(!e.to_string().contains(KEY));
}

#[tokio::test]
async fn a_reply_slower_than_the_request_timeout_times_out() {
    let server = server().await;
    server.push(Reply::delay(2_000, Reply::text("too late")));
    let config = GeminiConfig::new(MODEL)
        .with_base_url(server.host_url())
        .with_timeouts(Duration::from_millis(300), Duration::from_secs(2));
    let e = failure(&Gemini::new(config).unwrap(), request("hi")).await;
    assert_eq!(e.kind, LlmErrorKind::Timeout);
}

#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
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
async fn calls_are_traced_but_the_key_never_is() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = server().await;
    server.push(Reply::text("Hello there"));
    let message = format!("API key not valid: {KEY}");
    server.push(Reply::Error { status: 401, body: google_error(401, "UNAUTHENTICATED", &message), retry_after: None });
    let llm = gemini(&server);
    llm.complete(request("hi")).await.unwrap();
    assert!(llm.complete(request("hi")).await.is_err());

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("llm_call") && logs.contains("provider=gemini"), "{logs}");
    assert!(logs.contains(&format!("model={MODEL}")) && logs.contains("tier=smart"), "{logs}");
    assert!(logs.contains("prompt_tokens=") && logs.contains("duration_ms="), "{logs}");
    assert!(logs.contains("authentication"), "{logs}");
    assert!(!logs.contains(KEY), "the key leaked into the logs:\n{logs}");
}
