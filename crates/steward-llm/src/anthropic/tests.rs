//! Unit tests of the anthropic provider: parsing, requests and errors.

use super::*;

const KEY: &str = "sk-ant-very-secret-key";

fn ctx() -> ErrorContext {
    ErrorContext::new(
        "anthropic",
        "claude-test",
        "http://127.0.0.1:9",
        Some(KEY),
        Duration::from_secs(5),
        Duration::from_secs(1),
    )
}

fn text(t: &str) -> LlmChunk {
    LlmChunk::Text(t.to_string())
}

fn call(id: &str, name: &str, arguments: &str) -> LlmChunk {
    LlmChunk::ToolCall(ToolCall::new(id, name, arguments))
}

fn usage(prompt: u64, completion: u64, cached: u64) -> LlmChunk {
    LlmChunk::Usage(Usage { prompt_tokens: prompt, completion_tokens: completion, cached_prompt_tokens: cached })
}

/// The SSE body Anthropic would send for these events.
fn sse(events: &[Value]) -> String {
    events.iter().map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("message"))).collect()
}

/// Feeds `body` in `pieces` through the parser and the assembler, as the
/// reader does; the first error ends the run.
fn through(pieces: &[&[u8]]) -> (Vec<LlmChunk>, Option<LlmError>) {
    let mut parser = SseParser::new();
    let mut asm = EventAssembler::new(ctx());
    let mut out = Vec::new();
    let feed = |events: Vec<String>, asm: &mut EventAssembler, out: &mut Vec<LlmChunk>| {
        for data in events {
            asm.on_data(&data, out)?;
            if asm.is_done() {
                break;
            }
        }
        Ok::<(), LlmError>(())
    };
    for piece in pieces {
        let mut events = Vec::new();
        parser.feed(piece, &mut events);
        if let Err(e) = feed(events, &mut asm, &mut out) {
            return (out, Some(e));
        }
        if asm.is_done() {
            return (out, None);
        }
    }
    let mut events = Vec::new();
    parser.finish(&mut events);
    let result = feed(events, &mut asm, &mut out).and_then(|()| asm.on_eof(&parser, &mut out));
    (out, result.err())
}

fn run(events: &[Value]) -> (Vec<LlmChunk>, Option<LlmError>) {
    through(&[sse(events).as_bytes()])
}

fn ok(events: &[Value]) -> Vec<LlmChunk> {
    match run(events) {
        (out, None) => out,
        (_, Some(e)) => panic!("{e}"),
    }
}

fn failed(events: &[Value]) -> (Vec<LlmChunk>, LlmError) {
    match run(events) {
        (out, Some(e)) => (out, e),
        (out, None) => panic!("expected an error, got {out:?}"),
    }
}

fn message_start(input: u64, cache_read: u64, cache_creation: u64) -> Value {
    json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "cache_read_input_tokens": cache_read,
                  "cache_creation_input_tokens": cache_creation, "output_tokens": 1}}})
}

fn text_start(index: u64) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
}

fn text_delta(index: u64, t: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}})
}

fn tool_start(index: u64, id: &str, name: &str) -> Value {
    json!({"type": "content_block_start", "index": index,
           "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})
}

fn json_delta(index: u64, partial: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": partial}})
}

fn block_stop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

fn message_delta(stop_reason: &str, output: u64) -> Value {
    json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
           "usage": {"output_tokens": output}})
}

fn message_stop() -> Value {
    json!({"type": "message_stop"})
}

fn ping() -> Value {
    json!({"type": "ping"})
}

fn error_event(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

// -------------------------------------------------------------- streams

#[test]
fn text_streams_then_usage_with_cache_tokens_then_finish() {
    let out = ok(&[
        message_start(10, 100, 20),
        text_start(0),
        text_delta(0, "Hel"),
        text_delta(0, "lo"),
        block_stop(0),
        message_delta("end_turn", 7),
        message_stop(),
    ]);
    assert_eq!(out, vec![text("Hel"), text("lo"), usage(130, 7, 100), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn output_tokens_are_cumulative_and_the_last_count_wins() {
    let out = ok(&[
        message_start(5, 0, 0),
        text_start(0),
        text_delta(0, "a"),
        message_delta("", 3),
        text_delta(0, "b"),
        block_stop(0),
        message_delta("end_turn", 12),
        message_stop(),
    ]);
    assert_eq!(out, vec![text("a"), text("b"), usage(5, 12, 0), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn later_usage_replaces_the_start_counts() {
    // Newer API versions repeat the input counts in message_delta.
    let mut delta = message_delta("end_turn", 9);
    delta["usage"] = json!({"input_tokens": 11, "cache_read_input_tokens": 4, "output_tokens": 9});
    let out = ok(&[message_start(10, 0, 2), text_start(0), text_delta(0, "x"), delta, message_stop()]);
    assert_eq!(out[1], usage(17, 9, 4));
}

#[test]
fn pings_anywhere_and_unknown_events_are_skipped() {
    let out = ok(&[
        ping(),
        message_start(3, 0, 0),
        ping(),
        json!({"type": "brand_new_event", "payload": {"x": 1}}),
        text_start(0),
        ping(),
        text_delta(0, "hi"),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}}),
        block_stop(0),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        block_stop(1),
        ping(),
        message_delta("end_turn", 2),
        ping(),
        message_stop(),
    ]);
    assert_eq!(out, vec![text("hi"), usage(3, 2, 0), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn tool_use_input_is_assembled_from_split_json() {
    let out = ok(&[
        message_start(20, 0, 0),
        text_start(0),
        text_delta(0, "Let me check."),
        block_stop(0),
        tool_start(1, "toolu_01", "get_weather"),
        json_delta(1, ""),
        json_delta(1, "{\"ci"),
        json_delta(1, "ty\": \"Par"),
        json_delta(1, "is\"}"),
        block_stop(1),
        message_delta("tool_use", 30),
        message_stop(),
    ]);
    assert_eq!(
        out,
        vec![
            text("Let me check."),
            call("toolu_01", "get_weather", "{\"city\": \"Paris\"}"),
            usage(20, 30, 0),
            LlmChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn several_tool_calls_come_out_in_block_order_and_empty_input_is_an_object() {
    let out = ok(&[
        message_start(1, 0, 0),
        tool_start(0, "toolu_a", "now"),
        json_delta(0, ""),
        block_stop(0),
        tool_start(1, "toolu_b", "lights_on"),
        json_delta(1, "{\"room\":"),
        json_delta(1, "\"kitchen\"}"),
        block_stop(1),
        tool_start(2, "toolu_c", "whole"),
        block_stop(2),
        message_delta("tool_use", 4),
        message_stop(),
    ]);
    assert_eq!(
        out,
        vec![
            call("toolu_a", "now", "{}"),
            call("toolu_b", "lights_on", "{\"room\":\"kitchen\"}"),
            call("toolu_c", "whole", "{}"),
            usage(1, 4, 0),
            LlmChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn an_input_sent_whole_in_the_block_start_is_kept() {
    let mut start = tool_start(0, "toolu_x", "f");
    start["content_block"]["input"] = json!({"a": 1});
    let out = ok(&[message_start(1, 0, 0), start, block_stop(0), message_delta("tool_use", 1), message_stop()]);
    assert_eq!(out[0], call("toolu_x", "f", "{\"a\":1}"));
}

#[test]
fn stop_reasons_map() {
    for (raw, expected) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
        ("pause_turn", FinishReason::Stop),
        ("something_new", FinishReason::Stop),
    ] {
        let out =
            ok(&[message_start(1, 0, 0), text_start(0), text_delta(0, "x"), message_delta(raw, 1), message_stop()]);
        assert_eq!(out.last(), Some(&LlmChunk::Finish(expected)), "{raw}");
    }
}

#[test]
fn an_overloaded_error_before_the_first_token_is_overloaded() {
    let (out, err) = failed(&[message_start(3, 0, 0), ping(), error_event("overloaded_error", "Overloaded")]);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(err.kind, LlmErrorKind::Overloaded);
    assert_eq!(err.provider, "anthropic");
    assert!(err.message.contains("Overloaded") && err.message.contains("overloaded_error"), "{}", err.message);
}

#[test]
fn text_then_an_error_keeps_the_text_and_fails() {
    let (out, err) = failed(&[
        message_start(3, 0, 0),
        text_start(0),
        text_delta(0, "The answer "),
        error_event("api_error", "Internal server error"),
        text_delta(0, "never seen"),
    ]);
    assert_eq!(out, vec![text("The answer ")]);
    assert_eq!(err.kind, LlmErrorKind::Server { status: 500 });
    assert!(err.message.contains("Internal server error"), "{}", err.message);
}

#[test]
fn error_types_map_to_kinds() {
    for (kind, message, expected) in [
        ("overloaded_error", "Overloaded", LlmErrorKind::Overloaded),
        ("rate_limit_error", "slow down", LlmErrorKind::RateLimited { retry_after: None }),
        ("api_error", "oops", LlmErrorKind::Server { status: 500 }),
        ("authentication_error", "invalid x-api-key", LlmErrorKind::Authentication),
        ("permission_error", "no access", LlmErrorKind::Authentication),
        ("not_found_error", "model: claude-nope", LlmErrorKind::ModelNotFound),
        ("invalid_request_error", "messages: roles must alternate", LlmErrorKind::BadRequest),
        (
            "invalid_request_error",
            "prompt is too long: 200511 tokens > 200000 maximum",
            LlmErrorKind::ContextLengthExceeded,
        ),
        ("request_too_large", "too big", LlmErrorKind::BadRequest),
        ("mystery_error", "??", LlmErrorKind::Server { status: 500 }),
    ] {
        let (_, err) = failed(&[message_start(1, 0, 0), error_event(kind, message)]);
        assert_eq!(err.kind, expected, "{kind}: {message}");
        assert!(err.message.contains(message), "{}", err.message);
    }
}

#[test]
fn errors_never_show_the_key() {
    let (_, err) = failed(&[error_event("authentication_error", &format!("invalid x-api-key {KEY}"))]);
    assert_eq!(err.kind, LlmErrorKind::Authentication);
    assert!(!err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY), "{err}");
}

#[test]
fn a_stop_reason_without_message_stop_is_accepted() {
    let out =
        ok(&[message_start(2, 0, 0), text_start(0), text_delta(0, "hi"), block_stop(0), message_delta("end_turn", 3)]);
    assert_eq!(out, vec![text("hi"), usage(2, 3, 0), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn a_stream_ending_before_the_model_finished_is_a_network_error() {
    let (out, err) = failed(&[message_start(2, 0, 0), text_start(0), text_delta(0, "hi"), block_stop(0)]);
    assert_eq!(out, vec![text("hi")]);
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(err.message.contains("stream ended before the model finished"), "{}", err.message);

    let (out, err) = through(&[b""]);
    assert!(out.is_empty());
    assert_eq!(err.map(|e| e.kind), Some(LlmErrorKind::Network));
}

#[test]
fn nothing_after_message_stop_counts() {
    let out = ok(&[
        message_start(1, 0, 0),
        text_start(0),
        text_delta(0, "hi"),
        message_delta("end_turn", 1),
        message_stop(),
        text_delta(0, "late"),
        error_event("api_error", "late"),
    ]);
    assert_eq!(out, vec![text("hi"), usage(1, 1, 0), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn non_json_data_is_an_invalid_response_quoting_at_most_200_chars() {
    let garbage = format!("<html>{}</html>", "x".repeat(1000));
    let body = format!("event: message_start\ndata: {garbage}\n\n");
    let (_, err) = through(&[body.as_bytes()]);
    let err = err.unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
    assert!(err.message.contains("anthropic") && err.message.contains("<html>xxx"), "{}", err.message);
    assert!(err.message.chars().count() < 200 + 80, "{}", err.message);

    let (_, err) = through(&[b"<html><body>502 Bad Gateway</body></html>"]);
    let err = err.unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
    assert!(err.message.contains("502 Bad Gateway"), "{}", err.message);
}

#[test]
fn a_non_streamed_message_is_understood() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 2, "output_tokens": 3, "cache_read_input_tokens": 1, "cache_creation_input_tokens": 0}
    });
    let raw = serde_json::to_string_pretty(&body).unwrap_or_default();
    let (out, err) = through(&[raw.as_bytes()]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        out,
        vec![text("ok"), call("toolu_1", "f", "{\"a\":1}"), usage(3, 3, 1), LlmChunk::Finish(FinishReason::ToolCalls)]
    );
    let (_, err) = through(&[json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        .to_string()
        .as_bytes()]);
    assert_eq!(err.map(|e| e.kind), Some(LlmErrorKind::Overloaded));
}

/// A realistic stream split at every byte position, and into single
/// bytes, gives the same chunks.
#[test]
fn every_network_split_gives_the_same_chunks() {
    let body = sse(&[
        message_start(9, 4, 0),
        ping(),
        text_start(0),
        text_delta(0, "Ça va ✓ "),
        block_stop(0),
        tool_start(1, "toolu_é", "f"),
        json_delta(1, "{\"q\":"),
        json_delta(1, "\"€\"}"),
        block_stop(1),
        message_delta("tool_use", 5),
        message_stop(),
    ])
    .replace('\n', "\r\n");
    let bytes = body.as_bytes();
    let expected = vec![
        text("Ça va ✓ "),
        call("toolu_é", "f", "{\"q\":\"€\"}"),
        usage(13, 5, 4),
        LlmChunk::Finish(FinishReason::ToolCalls),
    ];
    for split in 0..=bytes.len() {
        let (a, b) = bytes.split_at(split);
        let (out, err) = through(&[a, b]);
        assert!(err.is_none(), "split at byte {split}: {err:?}");
        assert_eq!(out, expected, "split at byte {split}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(through(&singles), (expected, None));
}

// -------------------------------------------------------------- HTTP errors

fn anthropic_body(kind: &str, message: &str) -> Vec<u8> {
    json!({"type": "error", "error": {"type": kind, "message": message}}).to_string().into_bytes()
}

#[test]
fn http_errors_map_anthropic_bodies() {
    let c = ctx();
    let wait = Some(Duration::from_secs(3));
    let e = http_error(&c, 429, wait, &anthropic_body("rate_limit_error", "Number of requests exceeded"));
    assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: wait });
    assert!(e.message.contains("Number of requests exceeded"), "{}", e.message);
    assert_eq!(
        http_error(&c, 529, None, &anthropic_body("overloaded_error", "Overloaded")).kind,
        LlmErrorKind::Overloaded
    );
    assert_eq!(
        http_error(&c, 413, None, &anthropic_body("request_too_large", "Request exceeds the maximum size")).kind,
        LlmErrorKind::BadRequest
    );
    assert_eq!(
        http_error(
            &c,
            400,
            None,
            &anthropic_body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
        )
        .kind,
        LlmErrorKind::ContextLengthExceeded
    );
    assert_eq!(
        http_error(
            &c,
            400,
            None,
            &anthropic_body(
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 198000 + 4096 > 200000"
            )
        )
        .kind,
        LlmErrorKind::ContextLengthExceeded
    );
    assert_eq!(
        http_error(&c, 400, None, &anthropic_body("invalid_request_error", "messages: roles must alternate")).kind,
        LlmErrorKind::BadRequest
    );
    assert_eq!(
        http_error(&c, 500, None, &anthropic_body("api_error", "oops")).kind,
        LlmErrorKind::Server { status: 500 }
    );
    let e = http_error(&c, 401, None, &anthropic_body("authentication_error", &format!("invalid x-api-key {KEY}")));
    assert_eq!(e.kind, LlmErrorKind::Authentication);
    assert!(!e.message.contains(KEY), "{}", e.message);
    let e = http_error(&c, 404, None, &anthropic_body("not_found_error", "model: claude-nope"));
    assert_eq!(e.kind, LlmErrorKind::ModelNotFound);
    assert!(e.message.contains("model: claude-nope") && e.message.contains("claude-test"), "{}", e.message);
    assert!(e.message.contains("/v1/messages") && !e.message.contains("ends in /v1"), "{}", e.message);
}

// -------------------------------------------------------------- config and requests

fn provider(config: AnthropicConfig) -> Anthropic {
    Anthropic::new(config).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn debug_output_hides_the_key() {
    let config = AnthropicConfig::new("m").with_base_url("https://u:pw@h").with_api_key(KEY);
    let shown = format!("{config:?} {:?}", provider(config.clone()));
    assert!(!shown.contains(KEY) && !shown.contains("pw@"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

#[test]
fn base_urls_are_hosts_and_bad_ones_are_refused() {
    for (base, endpoint) in [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
        ("http://proxy:8080/anthropic/", "http://proxy:8080/anthropic/v1/messages"),
        ("", "https://api.anthropic.com/v1/messages"),
    ] {
        assert_eq!(provider(AnthropicConfig::new("m").with_base_url(base)).endpoint, endpoint, "{base:?}");
    }
    let err = Anthropic::new(AnthropicConfig::new("m").with_base_url("api.anthropic.com")).err();
    assert_eq!(err.map(|e| e.kind), Some(LlmErrorKind::NotConfigured));
}

#[test]
fn the_model_is_the_requests_else_the_configured_one() {
    let p = provider(AnthropicConfig::new("base"));
    assert_eq!(p.model_for(Some("explicit")), "explicit");
    assert_eq!(p.model_for(Some("")), "base");
    assert_eq!(p.model_for(None), "base");
    assert_eq!(p.name(), "anthropic");
    assert_eq!(p.config().max_tokens, DEFAULT_MAX_TOKENS);
}

fn assistant_calling(text: &str, calls: Vec<ToolCall>) -> Message {
    Message { role: Role::Assistant, content: text.into(), tool_calls: calls, tool_call_id: None, name: None }
}

#[test]
fn request_bodies_follow_the_anthropic_shape() {
    let request = LlmRequest {
        tier: steward_core::Tier::Smart,
        model: None,
        messages: vec![
            Message::system("be brief"),
            Message::user("time and weather?"),
            Message::system("use metric units"),
            assistant_calling(
                "Checking.",
                vec![ToolCall::new("c1", "now", "{}"), ToolCall::new("call.2", "weather", "{\"city\": \"Oslo\"}")],
            ),
            Message::tool("c1", "now", "12:00"),
            Message::tool("call.2", "weather", "rain"),
            Message::user("and tomorrow?"),
            assistant_calling("", vec![ToolCall::new("c3", "weather", "not json")]),
            Message::tool("c3", "weather", ""),
            Message::assistant("Sun.  "),
        ],
        tools: vec![
            ToolDefinition {
                name: "now".into(),
                description: "The time".into(),
                parameters: json!({"type": "object", "properties": {}}),
            },
            ToolDefinition { name: "bare".into(), description: "No schema".into(), parameters: Value::Null },
        ],
        temperature: Some(1.5),
        ..LlmRequest::default()
    };
    let body = request_body("claude-test", 512, &request);
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["max_tokens"], 512);
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 1.0);
    assert_eq!(body["system"], "be brief\n\nuse metric units");
    assert_eq!(
        body["tools"],
        json!([
            {"name": "now", "description": "The time", "input_schema": {"type": "object", "properties": {}}},
            {"name": "bare", "description": "No schema", "input_schema": {"type": "object", "properties": {}}},
        ])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "time and weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "c1", "name": "now", "input": {}},
                {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "12:00"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "rain"},
                {"type": "text", "text": "and tomorrow?"},
            ]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c3", "name": "weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c3"}]},
            {"role": "assistant", "content": "Sun."},
        ])
    );

    let bare = request_body(
        "m",
        1,
        &LlmRequest { tools: vec![], temperature: None, messages: vec![Message::user("hi")], ..request },
    );
    assert!(bare.get("tools").is_none() && bare.get("temperature").is_none() && bare.get("system").is_none());
    assert_eq!(bare["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[test]
fn consecutive_user_messages_merge_and_tool_results_go_first() {
    let (system, messages) = wire_messages(&[
        Message::user("one"),
        Message::user("  "),
        Message::user("two"),
        assistant_calling("", vec![]),
        Message::user("three"),
        Message::tool("c9", "f", "late result"),
    ]);
    assert!(system.is_empty());
    assert_eq!(
        Value::Array(messages),
        json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c9", "content": "late result"},
            {"type": "text", "text": "one"},
            {"type": "text", "text": "two"},
            {"type": "text", "text": "three"},
        ]}])
    );
}
