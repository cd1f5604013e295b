//! The scripted server's wire format and admin API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_testkit::{Reply, ScriptedCall, ScriptedLlm, EXHAUSTED_MESSAGE};

async fn server() -> ScriptedLlm {
    ScriptedLlm::start().await.expect("start the scripted server")
}

fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "whatever",
        "messages": [{"role": "system", "content": "12345678"}, {"role": "user", "content": "abcdefgh"}],
        "stream": stream,
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

async fn post(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(url).json(body).send().await.expect("send")
}

/// The `data:` payloads of an SSE body, checking the framing on the way.
fn sse_payloads(text: &str) -> Vec<String> {
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    text.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            assert!(frame.starts_with("data: ") && !frame.contains('\n'), "bad frame {frame:?}");
            frame["data: ".len()..].to_string()
        })
        .collect()
}

fn chunks(payloads: &[String]) -> Vec<Value> {
    payloads[..payloads.len() - 1].iter().map(|p| serde_json::from_str(p).unwrap()).collect()
}

#[tokio::test]
async fn non_streaming_answers_are_chat_completions() {
    let s = server().await;
    s.push(Reply::text("Hello, world"));
    s.push(Reply::ToolCalls { calls: vec![ScriptedCall::new("f", "{\"a\":1}").with_id("c9")], content: None });
    let url = format!("{}/chat/completions", s.base_url());

    let response = post(&url, &chat_body(false, false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "whatever");
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello, world");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // 16 prompt characters → 4 tokens; 12 answer characters → 3.
    assert_eq!(v["usage"], json!({"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}));

    let v: Value = post(&url, &chat_body(false, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"],
        json!([{"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}])
    );
}

#[tokio::test]
async fn streamed_text_follows_openais_sse_format_with_usage_last() {
    let s = server().await;
    s.push(Reply::text("Hello there, world"));
    let response = post(&format!("{}/chat/completions", s.base_url()), &chat_body(true, true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let payloads = sse_payloads(&response.text().await.unwrap());
    let chunks = chunks(&payloads);
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], chunks[0]["id"]);
        assert!(c.get("usage").is_some(), "include_usage puts usage on every chunk: {c}");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    assert_eq!(text, "Hello there, world");
    let content_chunks =
        chunks.iter().filter(|c| c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(content_chunks.count(), 3);

    let (usage, finish) = (&chunks[chunks.len() - 1], &chunks[chunks.len() - 2]);
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["usage"], Value::Null);
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], json!({"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}));
    for c in &chunks[..chunks.len() - 2] {
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
    }
}

#[tokio::test]
async fn without_include_usage_there_is_no_usage_chunk() {
    let s = server().await;
    s.push(Reply::text("hi"));
    let text = post(&format!("{}/chat/completions", s.base_url()), &chat_body(true, false)).await.text().await.unwrap();
    let chunks = chunks(&sse_payloads(&text));
    assert!(chunks.iter().all(|c| c.get("usage").is_none() && !c["choices"].as_array().unwrap().is_empty()));
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn streamed_tool_calls_are_fragmented_like_openais() {
    let s = server().await;
    s.push(Reply::tool_calls(vec![
        ScriptedCall::new("get_weather", r#"{"city": "Paris"}"#).with_id("call_w"),
        ScriptedCall::new("noop", "{}"),
    ]));
    let text = post(&format!("{}/chat/completions", s.base_url()), &chat_body(true, true)).await.text().await.unwrap();
    let chunks = chunks(&sse_payloads(&text));
    let fragments: Vec<&Value> =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array()).flatten().collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");

    for (index, id, name, arguments) in
        [(0, "call_w", "get_weather", r#"{"city": "Paris"}"#), (1, "call_1_1", "noop", "{}")]
    {
        let mine: Vec<&&Value> = fragments.iter().filter(|f| f["index"] == index).collect();
        assert!(mine.len() >= 3, "the first fragment plus at least two argument pieces: {mine:?}");
        assert_eq!(mine[0]["id"], id);
        assert_eq!(mine[0]["type"], "function");
        assert_eq!(mine[0]["function"]["name"], name);
        assert_eq!(mine[0]["function"]["arguments"], "");
        for later in &mine[1..] {
            let keys: Vec<&String> = later.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["function", "index"], "{later}");
            assert_eq!(later["function"].as_object().unwrap().len(), 1, "{later}");
        }
        let joined: String = mine.iter().filter_map(|f| f["function"]["arguments"].as_str()).collect();
        assert_eq!(joined, arguments);
    }
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn an_exhausted_script_answers_500_unless_there_is_a_default() {
    let s = server().await;
    let url = format!("{}/chat/completions", s.base_url());
    let response = post(&url, &chat_body(true, false)).await;
    assert_eq!(response.status(), 500);
    let v: Value = response.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().starts_with(EXHAUSTED_MESSAGE), "{v}");
    assert_eq!(v["error"]["type"], "server_error");

    s.set_default(Some(Reply::text("again")));
    for _ in 0..3 {
        let v: Value = post(&url, &chat_body(false, false)).await.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "again");
    }
    s.push(Reply::text("scripted first"));
    let v: Value = post(&url, &chat_body(false, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "scripted first");
    assert_eq!(s.requests().len(), 5);
    s.clear();
    assert!(s.requests().is_empty());
    assert_eq!(post(&url, &chat_body(false, false)).await.status(), 500);
}

#[tokio::test]
async fn errors_delays_cuts_and_garbage() {
    let s = server().await;
    let url = format!("{}/chat/completions", s.base_url());
    s.push(Reply::rate_limited(7));
    s.push(Reply::delay(200, Reply::text("slow")));
    s.push(Reply::CutStream { content: "partial answer".into(), after_chunks: 2 });
    s.push(Reply::CutStream { content: "x".into(), after_chunks: 1 });
    s.push(Reply::Garbage { body: "<html>oops</html>".into() });

    let response = post(&url, &chat_body(true, false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    let started = Instant::now();
    let v: Value = post(&url, &chat_body(false, false)).await.json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(v["choices"][0]["message"]["content"], "slow");

    let mut response = post(&url, &chat_body(true, false)).await;
    assert_eq!(response.status(), 200);
    let mut received = Vec::new();
    let failure = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => received.extend_from_slice(&bytes),
            Ok(None) => panic!("the stream ended cleanly"),
            Err(e) => break e,
        }
    };
    let received = String::from_utf8(received).unwrap();
    assert!(received.contains("\"partial\"") && received.contains("\" answer\""), "{received}");
    assert!(!received.contains("finish_reason\":\"") && !received.contains("[DONE]"), "{received}");
    assert!(failure.is_body() || failure.is_decode(), "{failure:?}");

    // A cut stream asked for without streaming is a 500.
    assert_eq!(post(&url, &chat_body(false, false)).await.status(), 500);

    let response = post(&url, &chat_body(true, false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "<html>oops</html>");
}

#[tokio::test]
async fn models_lists_the_scripted_model_and_unknown_paths_are_404() {
    let s = server().await;
    let v: Value = reqwest::get(format!("{}/models", s.base_url())).await.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "scripted");
    assert_eq!(v["data"][0]["object"], "model");
    let response = reqwest::get(format!("{}/nope", s.base_url())).await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(s.requests().iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/v1/models", "/v1/nope"]);
}

#[tokio::test]
async fn the_admin_api_drives_the_script() {
    let s = server().await;
    let root = format!("http://{}", s.addr());
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", s.base_url());

    let script = json!([
        {"type": "text", "content": "first"},
        {"type": "tool_calls", "calls": [{"name": "f", "arguments": "{}"}]},
    ]);
    let response = client.post(format!("{root}/_script")).json(&script).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(s.remaining(), 2);
    let response = client.post(format!("{root}/_script")).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);

    let v: Value = post(&url, &chat_body(false, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "first");
    let v: Value = post(&url, &chat_body(false, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "f");

    let default = json!({"type": "text", "content": "default"});
    assert_eq!(client.post(format!("{root}/_default")).json(&default).send().await.unwrap().status(), 200);
    let v: Value = post(&url, &chat_body(false, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "default");
    assert_eq!(client.post(format!("{root}/_default")).json(&Value::Null).send().await.unwrap().status(), 200);
    assert_eq!(post(&url, &chat_body(false, false)).await.status(), 500);

    let recorded: Value = client.get(format!("{root}/_requests")).send().await.unwrap().json().await.unwrap();
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), 4, "admin calls are not recorded");
    assert_eq!(recorded[0]["method"], "POST");
    assert_eq!(recorded[0]["path"], "/v1/chat/completions");
    assert_eq!(recorded[0]["body"], chat_body(false, false));
    assert_eq!(recorded[0]["headers"]["content-type"], "application/json");

    assert_eq!(client.post(format!("{root}/_reset")).send().await.unwrap().status(), 200);
    assert!(s.requests().is_empty());
    assert_eq!(s.remaining(), 0);
}

#[test]
fn the_binary_prints_its_address_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_steward-scripted-llm"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let outcome = std::panic::catch_unwind(|| {
        let root =
            line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("unexpected line {line:?}")).to_string();
        assert!(root.starts_with("http://127.0.0.1:"), "{root}");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::new();
            let script = json!([{"type": "text", "content": "from the binary"}]);
            client.post(format!("{root}/_script")).json(&script).send().await.unwrap();
            let v: Value =
                post(&format!("{root}/v1/chat/completions"), &chat_body(false, false)).await.json().await.unwrap();
            assert_eq!(v["choices"][0]["message"]["content"], "from the binary");
        });
    });
    child.kill().ok();
    child.wait().ok();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn the_binary_rejects_unknown_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_steward-scripted-llm")).arg("--bogus").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bogus"));
}
