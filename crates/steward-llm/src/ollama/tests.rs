//! Unit tests of the ollama provider: parsing, requests and errors.

use steward_core::Tier;

use super::*;

fn ctx() -> ErrorContext {
    ErrorContext::new(
        "ollama",
        "llama3.1",
        "http://127.0.0.1:11434",
        None,
        Duration::from_secs(30),
        Duration::from_secs(5),
    )
}

fn text(t: &str) -> LlmChunk {
    LlmChunk::Text(t.to_string())
}

fn call(id: &str, name: &str, arguments: &str) -> LlmChunk {
    LlmChunk::ToolCall(ToolCall::new(id, name, arguments))
}

/// Runs a whole body, in network pieces, through the splitter and the
/// decoder, the way the reader does.
fn decode(pieces: &[&[u8]]) -> Result<Vec<LlmChunk>, LlmError> {
    let mut splitter = LineSplitter::default();
    let mut decoder = ChatDecoder::new(ctx());
    let mut out = Vec::new();
    for piece in pieces {
        let mut lines = Vec::new();
        splitter.feed(piece, &mut lines);
        for line in lines {
            decoder.on_line(&line, &mut out)?;
        }
    }
    let mut lines = Vec::new();
    splitter.finish(&mut lines);
    for line in lines {
        decoder.on_line(&line, &mut out)?;
    }
    decoder.on_eof()?;
    Ok(out)
}

fn decode_lines(lines: &[Value]) -> Result<Vec<LlmChunk>, LlmError> {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    decode(&[body.as_bytes()])
}

fn content(piece: &str) -> Value {
    json!({"model": "llama3.1", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": piece}, "done": false})
}

fn done(reason: &str, prompt: u64, completion: u64) -> Value {
    json!({"model": "llama3.1", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": ""},
        "done": true, "done_reason": reason, "prompt_eval_count": prompt, "eval_count": completion, "total_duration": 123})
}

fn err(result: Result<Vec<LlmChunk>, LlmError>) -> LlmError {
    result.err().unwrap_or_else(|| panic!("expected an error"))
}

#[test]
fn hosts_become_root_urls() {
    for (host, expected) in [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/api", "http://127.0.0.1:11434"),
        (" localhost ", "http://localhost:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("[::1]", "http://[::1]:11434"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("HTTPS://ollama.example.com", "https://ollama.example.com"),
        ("http://gpu-box:11434/ollama/", "http://gpu-box:11434/ollama"),
        ("http://user:pw@gpu-box", "http://user:pw@gpu-box:11434"),
        ("", "http://127.0.0.1:11434"),
    ] {
        assert_eq!(host_root(host), expected, "{host:?}");
    }
}

#[test]
fn bad_hosts_are_refused_up_front() {
    for host in ["ftp://box:11434", "http://bad host:11434"] {
        let err = Ollama::new(OllamaConfig::new(host, "m")).err();
        assert_eq!(err.map(|e| e.kind), Some(LlmErrorKind::NotConfigured), "{host}");
    }
}

#[test]
fn the_model_is_the_requests_else_the_configured_one() {
    let llm = Ollama::new(OllamaConfig::new(DEFAULT_HOST, "llama3.1")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(llm.model_for(Some("qwen2.5")), "qwen2.5");
    assert_eq!(llm.model_for(Some(" ")), "llama3.1");
    assert_eq!(llm.model_for(None), "llama3.1");
    assert_eq!(llm.host(), DEFAULT_HOST);
    assert_eq!(llm.name(), "ollama");
}

#[test]
fn debug_output_and_errors_hide_the_hosts_password() {
    let config = OllamaConfig::new("http://me:hunter2-secret@gpu-box:11434/", "m");
    let llm = Ollama::new(config.clone()).unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{config:?} {llm:?} {}", llm.host());
    assert!(!shown.contains("hunter2") && shown.contains("***@gpu-box"), "{shown}");
    let ctx = llm.error_context("m");
    let error = http_failure(&ctx, 500, None, br#"{"error":"bad auth hunter2-secret"}"#);
    assert!(!error.message.contains("hunter2"), "{}", error.message);
}

#[test]
fn request_bodies_follow_ollamas_shape() {
    let request = LlmRequest {
        tier: Tier::Smart,
        model: None,
        messages: vec![
            Message::system("be brief"),
            Message::user("time?"),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![
                    ToolCall::new("c1", "now", r#"{"tz":"UTC"}"#),
                    ToolCall::new("c2", "lights", "not json"),
                ],
                tool_call_id: None,
                name: None,
            },
            Message::tool("c1", "now", "12:00"),
            Message { name: None, ..Message::tool("c2", "", "done") },
            Message::assistant("It is noon."),
        ],
        tools: vec![
            ToolDefinition {
                name: "now".into(),
                description: "The time".into(),
                parameters: json!({"type": "object", "properties": {}}),
            },
            ToolDefinition { name: "bare".into(), description: "No schema".into(), parameters: Value::Null },
        ],
        temperature: Some(0.2),
        max_tokens: Some(100),
        ..LlmRequest::default()
    };
    let body = request_body("llama3.1", &request, Some("10m"));
    assert_eq!(body["model"], "llama3.1");
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"], json!({"temperature": 0.2, "num_predict": 100}));
    assert_eq!(body["keep_alive"], "10m");
    assert!(body.get("stream_options").is_none());
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "function": {"name": "now", "description": "The time", "parameters": {"type": "object", "properties": {}}}})
    );
    assert_eq!(body["tools"][1]["function"]["parameters"], json!({"type": "object", "properties": {}}));
    let messages = &body["messages"];
    assert_eq!(messages[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "now", "arguments": {"tz": "UTC"}}},
            {"function": {"name": "lights", "arguments": {}}},
        ]})
    );
    assert_eq!(messages[3], json!({"role": "tool", "content": "12:00", "tool_name": "now"}));
    // No name stored: found from the call it answers.
    assert_eq!(messages[4], json!({"role": "tool", "content": "done", "tool_name": "lights"}));
    assert_eq!(messages[5], json!({"role": "assistant", "content": "It is noon."}));

    let bare = request_body("m", &LlmRequest { tools: vec![], temperature: None, max_tokens: None, ..request }, None);
    assert!(bare.get("tools").is_none() && bare.get("options").is_none() && bare.get("keep_alive").is_none());
}

#[test]
fn numeric_keep_alives_are_numbers() {
    assert_eq!(keep_alive_value("-1"), json!(-1));
    assert_eq!(keep_alive_value("300"), json!(300));
    assert_eq!(keep_alive_value("1.5"), json!(1.5));
    assert_eq!(keep_alive_value("5m"), json!("5m"));
}

#[test]
fn text_streams_then_usage_then_finish() {
    let out = decode_lines(&[content("Hel"), content(""), content("lo"), done("stop", 7, 2)]);
    assert_eq!(
        out.unwrap_or_else(|e| panic!("{e}")),
        vec![text("Hel"), text("lo"), LlmChunk::Usage(Usage::new(7, 2)), LlmChunk::Finish(FinishReason::Stop)]
    );
}

#[test]
fn done_reasons_map() {
    let finish = |line: Value| decode_lines(&[line]).unwrap_or_else(|e| panic!("{e}")).pop();
    let f = |r| Some(LlmChunk::Finish(r));
    assert_eq!(finish(done("stop", 1, 1)), f(FinishReason::Stop));
    assert_eq!(finish(done("length", 1, 1)), f(FinishReason::Length));
    assert_eq!(finish(done("load", 1, 1)), f(FinishReason::Stop));
    assert_eq!(finish(json!({"message": {"role": "assistant", "content": ""}, "done": true})), f(FinishReason::Stop));
    // Without counts there is no usage chunk.
    let out = decode_lines(&[json!({"done": true, "done_reason": "stop"})]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, vec![LlmChunk::Finish(FinishReason::Stop)]);
}

#[test]
fn tool_calls_are_collected_with_json_text_arguments_and_ids() {
    let calls = |calls: Value| json!({"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": false});
    let out = decode_lines(&[
        content("Checking."),
        calls(json!([{"function": {"index": 0, "name": "now", "arguments": {"tz": "UTC"}}}])),
        calls(json!([
            {"id": "call_abc", "function": {"index": 1, "name": "lights", "arguments": {}}},
            {"function": {"name": "raw", "arguments": "{\"a\": 1}"}},
            {"function": {"name": "none"}},
            {"function": {"arguments": {"orphan": true}}},
        ])),
        calls(json!([{"id": "call_abc", "function": {"name": "again", "arguments": {"n": [1, 2]}}}])),
        done("stop", 3, 4),
    ]);
    assert_eq!(
        out.unwrap_or_else(|e| panic!("{e}")),
        vec![
            text("Checking."),
            call("call_0", "now", r#"{"tz":"UTC"}"#),
            call("call_abc", "lights", "{}"),
            call("call_2", "raw", r#"{"a": 1}"#),
            call("call_3", "none", "{}"),
            call("call_abc_4", "again", r#"{"n":[1,2]}"#),
            LlmChunk::Usage(Usage::new(3, 4)),
            LlmChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn a_non_streamed_answer_is_one_done_line() {
    let line = json!({"model": "m", "message": {"role": "assistant", "content": "All of it.",
        "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
        "done": true, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 6});
    assert_eq!(
        decode_lines(&[line]).unwrap_or_else(|e| panic!("{e}")),
        vec![
            text("All of it."),
            call("call_0", "f", r#"{"x":1}"#),
            LlmChunk::Usage(Usage::new(5, 6)),
            LlmChunk::Finish(FinishReason::ToolCalls)
        ]
    );
}

#[test]
fn lines_after_done_are_ignored() {
    let body = format!("{}\n{}\nnot json at all\n", content("a"), done("stop", 1, 1));
    let out = decode(&[body.as_bytes()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.last(), Some(&LlmChunk::Finish(FinishReason::Stop)));
}

#[test]
fn an_unterminated_last_line_counts() {
    let body = format!("{}\n{}", content("a"), done("stop", 1, 1));
    assert!(decode(&[body.as_bytes()]).is_ok());
}

/// A realistic stream with multi-byte characters, CRLF and LF endings,
/// blank lines, a BOM and a tool call, split into two network chunks at
/// every byte position, and into single bytes.
#[test]
fn every_network_split_gives_the_same_chunks() {
    let lines = [
        content("Ça va ✓ "),
        content("😀 fine"),
        json!({"model": "m", "message": {"role": "assistant", "content": "",
            "tool_calls": [{"function": {"index": 0, "name": "f", "arguments": {"q": "€"}}}]}, "done": false}),
        done("stop", 11, 12),
    ];
    let body = format!("\u{feff}{}\r\n\n{}\n\r\n{}\r\n{}\n\n", lines[0], lines[1], lines[2], lines[3]);
    let bytes = body.as_bytes();
    let expected = vec![
        text("Ça va ✓ "),
        text("😀 fine"),
        call("call_0", "f", r#"{"q":"€"}"#),
        LlmChunk::Usage(Usage::new(11, 12)),
        LlmChunk::Finish(FinishReason::ToolCalls),
    ];
    assert_eq!(decode(&[bytes]).unwrap_or_else(|e| panic!("{e}")), expected);
    for split in 0..=bytes.len() {
        let (a, b) = bytes.split_at(split);
        assert_eq!(decode(&[a, b]).unwrap_or_else(|e| panic!("{e}")), expected, "split at byte {split}");
    }
    for (i, j) in [(1, 2), (3, 4), (10, 11), (40, 90), (100, 101)] {
        let (a, rest) = bytes.split_at(i);
        let (b, c) = rest.split_at(j - i);
        assert_eq!(decode(&[a, b, c]).unwrap_or_else(|e| panic!("{e}")), expected, "split at {i} and {j}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode(&singles).unwrap_or_else(|e| panic!("{e}")), expected);
}

#[test]
fn a_stream_without_done_is_a_network_error() {
    let error = err(decode_lines(&[content("par")]));
    assert_eq!(error.kind, LlmErrorKind::Network);
    assert!(error.message.contains("stream ended before the model finished"), "{}", error.message);
    let error = err(decode(&[b""]));
    assert_eq!(error.kind, LlmErrorKind::Network);
    assert!(error.message.contains("without sending anything"), "{}", error.message);
}

#[test]
fn non_json_lines_are_invalid_responses_quoting_a_little() {
    let long = format!("<html>{}</html>", "x".repeat(1000));
    let error = err(decode(&[long.as_bytes()]));
    assert_eq!(error.kind, LlmErrorKind::InvalidResponse);
    assert!(error.message.contains("<html>xxx"), "{}", error.message);
    assert!(error.message.len() < 300, "{}", error.message);

    let body = format!("{}\n[1, 2]\n", content("a"));
    assert_eq!(err(decode(&[body.as_bytes()])).kind, LlmErrorKind::InvalidResponse);
    // Some other API's JSON.
    let openai = json!({"id": "x", "object": "chat.completion", "choices": []});
    assert_eq!(err(decode_lines(&[openai])).kind, LlmErrorKind::InvalidResponse);
}

#[test]
fn error_lines_are_classified() {
    let kind = |error: &str| err(decode_lines(&[content("a"), json!({"error": error})])).kind;
    assert_eq!(kind("model crashed"), LlmErrorKind::Server { status: 500 });
    assert_eq!(kind("model 'x' not found"), LlmErrorKind::ModelNotFound);
    assert_eq!(kind("input exceeds the context length"), LlmErrorKind::ContextLengthExceeded);
    assert_eq!(kind("prompt too long"), LlmErrorKind::ContextLengthExceeded);
    assert_eq!(kind("context canceled"), LlmErrorKind::Server { status: 500 });
    assert_eq!(kind("server busy, please try again"), LlmErrorKind::Overloaded);
    let error = err(decode_lines(&[json!({"error": {"message": "boom"}})]));
    assert!(error.message.contains("boom"), "{}", error.message);
}

#[test]
fn http_errors_are_classified() {
    let ctx = ctx();
    let missing = http_failure(&ctx, 404, None, br#"{"error":"model \"llama3.1\" not found, try pulling it first"}"#);
    assert_eq!(missing.kind, LlmErrorKind::ModelNotFound);
    assert!(missing.message.contains("'llama3.1'") && missing.message.contains("`ollama pull llama3.1`"));
    let no_api = http_failure(&ctx, 404, None, b"404 page not found");
    assert_eq!(no_api.kind, LlmErrorKind::BadRequest);
    assert!(no_api.message.contains("OLLAMA_HOST") && no_api.message.contains("404 page not found"));
    let long = http_failure(&ctx, 500, None, br#"{"error":"the input length exceeds the context length"}"#);
    assert_eq!(long.kind, LlmErrorKind::ContextLengthExceeded);
    let tools =
        http_failure(&ctx, 400, None, br#"{"error":"registry.ollama.ai/library/gemma does not support tools"}"#);
    assert_eq!(tools.kind, LlmErrorKind::BadRequest);
    assert!(tools.message.contains("tool support"), "{}", tools.message);
    let bad = http_failure(&ctx, 400, None, br#"{"error":"invalid message format"}"#);
    assert_eq!(bad.kind, LlmErrorKind::BadRequest);
    assert!(bad.message.contains("invalid message format"), "{}", bad.message);
    let crashed = http_failure(&ctx, 500, None, br#"{"error":"llama runner process has terminated"}"#);
    assert_eq!(crashed.kind, LlmErrorKind::Server { status: 500 });
    assert!(crashed.message.contains("llama runner process has terminated"), "{}", crashed.message);
    assert_eq!(http_failure(&ctx, 503, None, br#"{"error":"server busy"}"#).kind, LlmErrorKind::Overloaded);
}
