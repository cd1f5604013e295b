//! Unit tests of the gemini provider: parsing, requests and errors.

use steward_core::Tier;

use super::*;

const SECRET: &str = "AIza-very-secret-key";

fn ctx() -> ErrorContext {
    ErrorContext::new(
        "gemini",
        "gemini-test",
        "https://generativelanguage.googleapis.com",
        Some(SECRET),
        Duration::from_secs(30),
        Duration::from_secs(5),
    )
}

fn provider(config: GeminiConfig) -> Gemini {
    Gemini::new(config).unwrap_or_else(|e| panic!("{e}"))
}

fn call(id: &str, name: &str, arguments: &str, signature: Option<&str>) -> LlmChunk {
    LlmChunk::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        signature: signature.map(str::to_string),
    })
}

fn text(t: &str) -> LlmChunk {
    LlmChunk::Text(t.to_string())
}

/// Feeds events (each a response's JSON) and ends the stream.
fn run(events: &[Value]) -> Result<Vec<LlmChunk>, LlmError> {
    let mut body = String::new();
    for e in events {
        body.push_str(&format!("data: {e}\r\n\r\n"));
    }
    run_bytes(&[body.as_bytes()])
}

fn run_bytes(pieces: &[&[u8]]) -> Result<Vec<LlmChunk>, LlmError> {
    let mut parser = SseParser::new();
    let mut asm = Assembler::new(ctx());
    let mut out = Vec::new();
    for piece in pieces {
        let mut events = Vec::new();
        parser.feed(piece, &mut events);
        for e in events {
            asm.on_data(&e, &mut out)?;
        }
    }
    let mut events = Vec::new();
    parser.finish(&mut events);
    for e in events {
        asm.on_data(&e, &mut out)?;
    }
    asm.on_eof(&parser, &mut out)?;
    Ok(out)
}

fn ok(events: &[Value]) -> Vec<LlmChunk> {
    run(events).unwrap_or_else(|e| panic!("{e}"))
}

fn err(events: &[Value]) -> LlmError {
    run(events).err().unwrap_or_else(|| panic!("expected an error"))
}

fn response(parts: Value, finish: Option<&str>) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    json!({"candidates": [candidate], "modelVersion": "gemini-test"})
}

// ------------------------------------------------------------ config

#[test]
fn debug_output_hides_the_key() {
    let config = GeminiConfig::new("gemini-2.0-flash").with_base_url("https://u:pw@proxy.example").with_api_key(SECRET);
    let shown = format!("{config:?} {:?}", provider(config.clone()));
    assert!(!shown.contains(SECRET) && !shown.contains("pw@"), "{shown}");
    assert!(shown.contains("***") && shown.contains("gemini-2.0-flash"), "{shown}");
}

#[test]
fn defaults_and_bad_base_urls() {
    let config = GeminiConfig::new("m");
    assert_eq!((config.name.as_str(), config.base_url.as_str()), ("gemini", DEFAULT_BASE_URL));
    let err = Gemini::new(GeminiConfig::new("m").with_base_url("generativelanguage.googleapis.com")).err();
    assert_eq!(err.map(|e| e.kind), Some(LlmErrorKind::NotConfigured));
    let err = Gemini::new(GeminiConfig::new("m").with_api_key("bad\nkey-0123456789")).err();
    let err = err.unwrap_or_else(|| panic!("a key with a newline was accepted"));
    assert_eq!(err.kind, LlmErrorKind::NotConfigured);
    assert!(!err.message.contains("key-0123456789"), "{}", err.message);
}

#[test]
fn urls_name_the_model_and_never_the_key() {
    let url = |base: &str, model: &str| {
        provider(GeminiConfig::new("m").with_base_url(base).with_api_key(SECRET)).stream_url(model)
    };
    let google =
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse";
    assert_eq!(url("https://generativelanguage.googleapis.com", "gemini-2.0-flash"), google);
    assert_eq!(url("https://generativelanguage.googleapis.com/", "models/gemini-2.0-flash"), google);
    assert_eq!(url("https://generativelanguage.googleapis.com/v1beta", "gemini-2.0-flash"), google);
    assert_eq!(url("https://generativelanguage.googleapis.com/v1beta/models/", "gemini-2.0-flash"), google);
    assert_eq!(
        url("http://proxy:8080/gemini", "tunedModels/my model"),
        "http://proxy:8080/gemini/v1beta/tunedModels/my%20model:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        url("http://v1.example.com", "a:b"),
        "http://v1.example.com/v1beta/models/a%3Ab:streamGenerateContent?alt=sse"
    );
    assert!(!url(DEFAULT_BASE_URL, "m").contains(SECRET));
}

#[test]
fn the_requests_model_wins_over_the_configured_one() {
    let p = provider(GeminiConfig::new("base"));
    assert_eq!(p.model_for(Some("explicit")), "explicit");
    assert_eq!(p.model_for(Some(" ")), "base");
    assert_eq!(p.model_for(None), "base");
}

// ------------------------------------------------------------ request

fn assistant_calls(content: &str, calls: Vec<ToolCall>) -> Message {
    Message { role: Role::Assistant, content: content.into(), tool_calls: calls, tool_call_id: None, name: None }
}

fn signed(id: &str, name: &str, arguments: &str, signature: Option<&str>) -> ToolCall {
    ToolCall { signature: signature.map(str::to_string), ..ToolCall::new(id, name, arguments) }
}

fn request(messages: Vec<Message>) -> LlmRequest {
    LlmRequest { tier: Tier::Smart, messages, ..LlmRequest::default() }
}

#[test]
fn request_bodies_follow_the_gemini_shape() {
    let mut req = request(vec![
        Message::system("be brief"),
        Message::user("time and weather?"),
        assistant_calls(
            "Checking.",
            vec![
                signed("call_0", "now", r#"{"tz":"UTC"}"#, Some("c2lnLTE=")),
                signed("call_1", "weather", "not json", None),
            ],
        ),
        Message::tool("call_0", "now", "12:00"),
        Message { name: None, ..Message::tool("call_1", "", r#"{"sky": "clear"}"#) },
        Message::user("thanks"),
        Message::assistant("You're welcome."),
    ]);
    req.tools = vec![ToolDefinition {
        name: "now".into(),
        description: "The time".into(),
        parameters: json!({"type": "object", "properties": {"tz": {"type": "string"}}, "additionalProperties": false}),
    }];
    req.temperature = Some(0.2);
    req.max_tokens = Some(100);
    let body = request_body("gemini-2.0-flash", &req);
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "be brief"}]}));
    assert_eq!(body["generationConfig"], json!({"temperature": 0.2, "maxOutputTokens": 100}));
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [{"name": "now", "description": "The time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}]}])
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "time and weather?"}]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "now", "args": {"tz": "UTC"}}, "thoughtSignature": "c2lnLTE="},
                {"functionCall": {"name": "weather", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "now", "response": {"result": "12:00"}}},
                {"functionResponse": {"name": "weather", "response": {"result": {"sky": "clear"}}}},
            ]},
            {"role": "user", "parts": [{"text": "thanks"}]},
            {"role": "model", "parts": [{"text": "You're welcome."}]},
        ])
    );

    let bare = request_body("gemini-2.0-flash", &request(vec![Message::user("hi")]));
    for key in ["systemInstruction", "tools", "generationConfig"] {
        assert!(bare.get(key).is_none(), "{key}: {bare}");
    }
}

#[test]
fn gemini_3_gets_the_documented_stand_in_for_a_missing_signature() {
    let req = request(vec![
        Message::user("hi"),
        assistant_calls("", vec![signed("a", "f", "{}", None), signed("b", "g", "{}", None)]),
        Message::tool("a", "f", "1"),
        Message::tool("b", "g", "2"),
    ]);
    let body = request_body("gemini-3-pro-preview", &req);
    assert_eq!(body["contents"][1]["parts"][0]["thoughtSignature"], SKIP_SIGNATURE);
    assert!(body["contents"][1]["parts"][1].get("thoughtSignature").is_none());
    let body = request_body("gemini-2.5-flash", &req);
    assert!(body["contents"][1]["parts"][0].get("thoughtSignature").is_none());
}

#[test]
fn schemas_are_cut_down_to_what_gemini_accepts() {
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "when": {"type": ["string", "null"], "format": "date-time", "examples": ["x"]},
            "url": {"type": "string", "format": "uri"},
            "mode": {"const": "fast"},
            "tags": {"type": "array", "items": {"type": "object", "additionalProperties": true,
                "properties": {"k": {"type": "string", "$comment": "c"}}}},
            "either": {"oneOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "string"}]},
            "additionalProperties": {"type": "string"},
        },
        "required": ["url", "ghost"],
    });
    assert_eq!(
        clean_schema(&schema),
        json!({
            "type": "object",
            "properties": {
                "when": {"type": "string", "nullable": true, "format": "date-time"},
                "url": {"type": "string"},
                "mode": {"enum": ["fast"]},
                "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
                "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "additionalProperties": {"type": "string"},
            },
            "required": ["url"],
        })
    );
    // A function without parameters declares none.
    let tool = ToolDefinition {
        name: "ping".into(),
        description: "Ping".into(),
        parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
    };
    assert_eq!(function_declaration(&tool), json!({"name": "ping", "description": "Ping"}));
}

// ------------------------------------------------------------ response

#[test]
fn text_streams_and_thoughts_are_skipped() {
    let out = ok(&[
        response(json!([{"text": "planning…", "thought": true}, {"text": "Hel"}]), None),
        response(json!([{"text": "lo", "thoughtSignature": "abc"}]), Some("STOP")),
    ]);
    assert_eq!(out, vec![text("Hel"), text("lo"), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn usage_is_the_last_one_seen_with_thoughts_and_cache() {
    let mut first = response(json!([{"text": "a"}]), None);
    first["usageMetadata"] = json!({"promptTokenCount": 10, "totalTokenCount": 10});
    let mut last = response(json!([{"text": "b"}]), Some("STOP"));
    last["usageMetadata"] = json!({"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 3,
        "cachedContentTokenCount": 6, "totalTokenCount": 17});
    let out = ok(&[first, last]);
    let usage = Usage { prompt_tokens: 10, completion_tokens: 7, cached_prompt_tokens: 6 };
    assert_eq!(out, vec![text("a"), text("b"), LlmChunk::Usage(usage), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn several_function_calls_in_one_chunk_arrive_whole_at_the_end() {
    let out = ok(&[
        response(json!([{"text": "Let me check."}]), None),
        response(
            json!([
                {"functionCall": {"name": "now", "args": {"tz": "UTC"}}, "thoughtSignature": "sig-a"},
                {"functionCall": {"name": "lights", "args": {"room": "hall", "on": true}}},
                {"functionCall": {"id": "given", "name": "ping"}},
            ]),
            Some("STOP"),
        ),
    ]);
    assert_eq!(
        out,
        vec![
            text("Let me check."),
            call("call_0", "now", r#"{"tz":"UTC"}"#, Some("sig-a")),
            call("call_1", "lights", r#"{"on":true,"room":"hall"}"#, None),
            call("given", "ping", "{}", None),
            LlmChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn finish_reasons_map() {
    for (raw, expected) in [
        ("STOP", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("BLOCKLIST", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("SPII", FinishReason::ContentFilter),
        ("OTHER", FinishReason::Stop),
        ("SOMETHING_NEW", FinishReason::Stop),
    ] {
        let out = ok(&[response(json!([{"text": "x"}]), Some(raw))]);
        assert_eq!(out.last(), Some(&LlmChunk::Finish(expected)), "{raw}");
    }
    // A safety stop with no content at all.
    let blocked = json!({"candidates": [{"finishReason": "SAFETY", "index": 0,
        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}]}]});
    assert_eq!(ok(&[blocked]), vec![LlmChunk::Finish(FinishReason::ContentFilter)]);
}

#[test]
fn a_blocked_prompt_is_a_content_policy_error() {
    let e = err(&[json!({"promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}})]);
    assert_eq!(e.kind, LlmErrorKind::ContentPolicy);
    assert!(e.message.contains("SAFETY") && e.message.contains("gemini"), "{}", e.message);
    // Feedback without a block reason is no error.
    let out = ok(&[json!({"promptFeedback": {"safetyRatings": []},
        "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]})]);
    assert_eq!(out, vec![text("ok"), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn a_malformed_function_call_is_an_error() {
    let mut bad = response(json!([]), Some("MALFORMED_FUNCTION_CALL"));
    bad["candidates"][0]["finishMessage"] = json!("Malformed function call: print(x");
    let e = err(&[bad]);
    assert_eq!(e.kind, LlmErrorKind::InvalidResponse);
    assert!(e.message.contains("MALFORMED_FUNCTION_CALL") && e.message.contains("print(x"), "{}", e.message);
}

#[test]
fn a_stream_without_a_finish_reason_is_a_network_error() {
    let e = err(&[response(json!([{"text": "hal"}]), None)]);
    assert_eq!(e.kind, LlmErrorKind::Network);
    assert!(e.message.contains("stream ended before the model finished"), "{}", e.message);
    let e = run_bytes(&[b""]).err().unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.kind, LlmErrorKind::Network);
}

#[test]
fn an_error_in_the_stream_is_an_error() {
    let e = err(&[
        response(json!([{"text": "par"}]), None),
        json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
    ]);
    assert_eq!(e.kind, LlmErrorKind::Overloaded);
    assert!(e.message.contains("reported an error in its answer") && e.message.contains("overloaded"), "{}", e.message);
    let e = err(&[json!({"error": {"message": "quota", "status": "RESOURCE_EXHAUSTED"}})]);
    assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: None });
    let e = err(&[json!({"error": {"message": "boom"}})]);
    assert_eq!(e.kind, LlmErrorKind::Server { status: 500 });
}

#[test]
fn non_json_is_an_invalid_response_quoting_a_little() {
    let garbage = format!("data: <html>{}</html>\n\n", "x".repeat(1000));
    let e = run_bytes(&[garbage.as_bytes()]).err().unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.kind, LlmErrorKind::InvalidResponse);
    assert!(e.message.contains("<html>xxx") && e.message.chars().count() < 300, "{}", e.message);
    let e = run_bytes(&[b"<html><body>502 Bad Gateway</body></html>"]).err();
    let e = e.unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.kind, LlmErrorKind::InvalidResponse);
    assert!(e.message.contains("502 Bad Gateway"), "{}", e.message);
    let e = run_bytes(&[b"{\"hello\": 1}"]).err().unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.kind, LlmErrorKind::InvalidResponse);
}

#[test]
fn a_json_array_stream_is_understood_too() {
    let body = json!([response(json!([{"text": "Hi"}]), None), response(json!([{"text": " there"}]), Some("STOP")),]);
    let pretty = serde_json::to_string_pretty(&body).unwrap_or_default();
    let out = run_bytes(&[pretty.as_bytes()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, vec![text("Hi"), text(" there"), LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn every_network_split_gives_the_same_chunks() {
    let mut last = response(
        json!([{"text": " ✓"}, {"functionCall": {"name": "f", "args": {"q": "€"}}, "thoughtSignature": "s/g=="}]),
        Some("STOP"),
    );
    last["usageMetadata"] = json!({"promptTokenCount": 1, "candidatesTokenCount": 2});
    let body = format!("data: {}\r\n\r\ndata: {last}\r\n\r\n", response(json!([{"text": "Ça va"}]), None));
    let bytes = body.as_bytes();
    let expected = vec![
        text("Ça va"),
        text(" ✓"),
        call("call_0", "f", r#"{"q":"€"}"#, Some("s/g==")),
        LlmChunk::Usage(Usage::new(1, 2)),
        LlmChunk::Finish(FinishReason::ToolCalls),
    ];
    for split in 0..=bytes.len() {
        let (a, b) = bytes.split_at(split);
        assert_eq!(run_bytes(&[a, b]).unwrap_or_else(|e| panic!("{e}")), expected, "split at byte {split}");
    }
}

// ------------------------------------------------------------ errors

fn google_body(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

fn http(status: u16, wait: Option<Duration>, body: &Value) -> LlmError {
    http_error(&ctx(), status, wait, body.to_string().as_bytes())
}

#[test]
fn statuses_map_to_kinds() {
    let kind =
        |status: u16, canonical: &str, message: &str| http(status, None, &google_body(status, canonical, message)).kind;
    assert_eq!(kind(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), LlmErrorKind::BadRequest);
    assert_eq!(
        kind(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
        ),
        LlmErrorKind::ContextLengthExceeded
    );
    assert_eq!(kind(400, "FAILED_PRECONDITION", "User location is not supported"), LlmErrorKind::BadRequest);
    assert_eq!(kind(401, "UNAUTHENTICATED", "no"), LlmErrorKind::Authentication);
    assert_eq!(kind(403, "PERMISSION_DENIED", "no"), LlmErrorKind::Authentication);
    assert_eq!(kind(404, "NOT_FOUND", "models/x is not found"), LlmErrorKind::ModelNotFound);
    assert_eq!(kind(429, "RESOURCE_EXHAUSTED", "slow"), LlmErrorKind::RateLimited { retry_after: None });
    assert_eq!(kind(500, "INTERNAL", "oops"), LlmErrorKind::Server { status: 500 });
    assert_eq!(kind(503, "UNAVAILABLE", "The model is overloaded."), LlmErrorKind::Overloaded);
    assert_eq!(kind(504, "DEADLINE_EXCEEDED", "late"), LlmErrorKind::Timeout);
    let invalid_key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
    assert_eq!(http(400, None, &invalid_key).kind, LlmErrorKind::Authentication);
}

#[test]
fn rate_limits_carry_the_wait_from_the_header_or_retry_info() {
    let body = json!({"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"},
    ]}});
    let e = http(429, None, &body);
    assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: Some(Duration::from_secs(12)) });
    assert!(e.message.contains("retry after 12s") && e.message.contains("quota"), "{}", e.message);
    let e = http(429, Some(Duration::from_secs(3)), &body);
    assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: Some(Duration::from_secs(3)) });
    assert_eq!(parse_delay(&json!("0.5s")), Some(Duration::from_millis(500)));
    assert_eq!(parse_delay(&json!({"seconds": "2", "nanos": 500000000})), Some(Duration::from_millis(2500)));
    assert_eq!(parse_delay(&json!("soon")), None);
    assert_eq!(parse_delay(&json!("-1s")), None);
}

#[test]
fn messages_name_provider_model_and_status_but_never_the_key() {
    let e = http(403, None, &google_body(403, "PERMISSION_DENIED", &format!("Key {SECRET} is denied")));
    assert!(!e.message.contains(SECRET), "{}", e.message);
    assert!(e.message.contains("PERMISSION_DENIED") && e.message.starts_with("gemini"), "{}", e.message);
    let e = http(404, None, &google_body(404, "NOT_FOUND", "models/gemini-test is not found for API version v1beta"));
    assert!(e.message.contains("'gemini-test'") && e.message.contains("googleapis.com"), "{}", e.message);
    let e = http_error(&ctx(), 502, None, "x".repeat(5000).as_bytes());
    assert_eq!(e.kind, LlmErrorKind::Server { status: 502 });
    assert!(e.message.len() < 500 && e.message.contains("xxx"), "{}", e.message);
    let e = http_error(&ctx(), 500, None, b"");
    assert!(e.message.contains("empty"), "{}", e.message);
    // An array-wrapped body, as Gemini sends without alt=sse.
    let wrapped = json!([google_body(503, "UNAVAILABLE", "busy")]);
    assert_eq!(
        http(503, None, &wrapped).message,
        "gemini is overloaded (HTTP 503, UNAVAILABLE): busy — try again shortly"
    );
}
