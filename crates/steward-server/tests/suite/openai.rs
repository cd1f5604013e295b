use serde_json::{json, Value};
use steward_core::Store;
use steward_protocol::Role;
use steward_testkit::Reply as Scripted;

use super::harness;

#[tokio::test]
async fn models_lists_the_agents_in_openai_list_format() {
    let h = harness().await;
    let r = h.get("/v1/models").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"architect"), "{v}");
    let m = &v["data"][0];
    assert_eq!(m["object"], "model");
    assert!(m["created"].is_i64() && m["owned_by"].is_string(), "{m}");
    assert_eq!(h.get("/v1/models/architect").await.json()["id"], "architect");
    assert_eq!(h.get("/v1/models/nobody").await.status, 404);
}

#[tokio::test]
async fn non_streaming_chat_returns_a_completion_and_stores_the_conversation() {
    let h = harness().await;
    h.llm().push(Scripted::text("The house is quiet."));
    let r = h
        .post_json(
            "/v1/chat/completions",
            json!({"model": "architect", "messages": [{"role": "user", "content": "status?"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "architect");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "The house is quiet.");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let usage = &v["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);

    let conversation = r.headers.get("x-steward-conversation-id").unwrap().to_str().unwrap().to_string();
    let messages = h.store.list_messages(&conversation).await.unwrap();
    assert_eq!(
        messages.iter().map(|m| (m.role, m.content.as_str())).collect::<Vec<_>>(),
        vec![(Role::User, "status?"), (Role::Assistant, "The house is quiet.")]
    );
    // The upstream saw Steward's system prompt first, then the client's message, and the bearer key.
    let sent = &h.llm().requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer sk-upstream-secret"));
    assert_eq!(sent.body["messages"][0]["role"], "system");
    assert_eq!(sent.body["messages"][1], json!({"role": "user", "content": "status?"}));
}

fn chunks(r: &super::Reply) -> (Vec<Value>, bool) {
    let data = r.sse_data();
    let done = data.last().map(|d| d == "[DONE]").unwrap_or(false);
    let chunks = data.iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    (chunks, done)
}

#[tokio::test]
async fn streaming_chat_follows_openai_chunk_order_with_usage_last() {
    let h = harness().await;
    h.llm().push(Scripted::text("Lights are off everywhere."));
    let r = h
        .post_json(
            "/v1/chat/completions",
            json!({"model": "architect", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "lights?"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    assert!(r.headers.contains_key("x-steward-conversation-id"));
    let (chunks, done) = chunks(&r);
    assert!(done, "stream must end with [DONE]: {}", r.text());
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Lights are off everywhere.");
    let n = chunks.len();
    // The chunk before the usage chunk carries finish_reason and an empty delta.
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 2]["choices"][0]["delta"], json!({}));
    assert!(chunks[..n - 2].iter().all(|c| c["choices"][0]["finish_reason"].is_null()));
    // The usage chunk has empty choices and the counts; all others have usage null.
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert!(chunks[n - 1]["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(chunks[..n - 1].iter().all(|c| c.get("usage") == Some(&Value::Null)));
}

#[tokio::test]
async fn streaming_without_include_usage_has_no_usage_chunk() {
    let h = harness().await;
    h.llm().push(Scripted::text("Hi."));
    let r = h
        .post_json(
            "/v1/chat/completions",
            json!({"model": "architect", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let (chunks, done) = chunks(&r);
    assert!(done);
    assert!(chunks.iter().all(|c| c.get("usage").is_none() && c["choices"].as_array().unwrap().len() == 1));
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn a_tool_calling_turn_runs_the_tool_and_answers_with_its_result() {
    let h = harness().await;
    h.llm().push(Scripted::tool_call("get_current_time", "{}"));
    h.llm().push(Scripted::text("It is late."));
    let r = h
        .post_json("/v1/chat/completions", json!({"model": "architect", "stream": true, "messages": [{"role": "user", "content": "what time is it?"}]}))
        .await;
    let (chunks, done) = chunks(&r);
    assert!(done);
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "It is late.");
    // The model was offered the tool, and its second call carried the tool's result.
    let requests = h.llm().chat_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["tools"][0]["function"]["name"], "get_current_time");
    let second = requests[1]["messages"].as_array().unwrap();
    let tool_msg = second.last().unwrap();
    assert_eq!(tool_msg["role"], "tool");
    assert!(tool_msg["content"].as_str().unwrap().contains("\"utc\""), "{tool_msg}");
    assert_eq!(second[second.len() - 2]["tool_calls"][0]["function"]["name"], "get_current_time");
    assert_eq!(tool_msg["tool_call_id"], second[second.len() - 2]["tool_calls"][0]["id"]);

    let conversation = r.headers["x-steward-conversation-id"].to_str().unwrap();
    let stored = h.store.list_messages(conversation).await.unwrap();
    let roles: Vec<Role> = stored.iter().map(|m| m.role).collect();
    assert_eq!(roles, vec![Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
    assert_eq!(stored[1].tool_calls[0].name, "get_current_time");
}

#[tokio::test]
async fn a_client_that_resends_history_gets_that_history_as_context_and_can_continue() {
    let h = harness().await;
    h.llm().push(Scripted::text("first"));
    h.llm().push(Scripted::text("second"));
    let r1 = h
        .post_json(
            "/v1/chat/completions",
            json!({"model": "architect", "messages": [{"role": "user", "content": "one"}]}),
        )
        .await;
    let conversation = r1.headers["x-steward-conversation-id"].to_str().unwrap().to_string();
    let body = json!({"model": "architect", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "first"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]}
    ]});
    let request = axum::http::Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-steward-conversation-id", &conversation)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let r2 = h.send(request).await;
    assert_eq!(r2.status, 200, "{}", r2.text());
    assert_eq!(r2.headers["x-steward-conversation-id"], conversation.as_str());
    let sent = &h.llm().chat_requests()[1]["messages"];
    let roles: Vec<&str> = sent.as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["system", "system", "user", "assistant", "user"]);
    assert_eq!(sent[4]["content"], "two");
    let stored = h.store.list_messages(&conversation).await.unwrap();
    assert_eq!(stored.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["one", "first", "two", "second"]);
}

#[tokio::test]
async fn an_upstream_failure_is_an_error_object_naming_the_provider() {
    let h = harness().await;
    h.llm().push(Scripted::error(500, "server_error", None, "upstream exploded"));
    let r = h
        .post_json(
            "/v1/chat/completions",
            json!({"model": "architect", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 502);
    let e = r.error();
    assert!(e["message"].as_str().unwrap().contains("scripted"), "{e}");
    assert!(!r.text().contains("sk-upstream-secret"));

    // Streaming: a failure before the first token is an HTTP status, as with OpenAI.
    h.llm().push(Scripted::error(500, "server_error", None, "again"));
    let stream_hi = json!({"model": "architect", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let r = h.post_json("/v1/chat/completions", stream_hi).await;
    assert_eq!(r.status, 502);
    assert!(r.error()["message"].as_str().unwrap().contains("scripted"));

    // A failure mid-stream ends the stream with an error frame, and the
    // part of the answer the client saw is stored, marked as interrupted.
    h.llm().push(Scripted::CutStream { content: "The garage door is".into(), after_chunks: 2 });
    let stream_door = json!({"model": "architect", "stream": true, "messages": [{"role": "user", "content": "door?"}]});
    let r = h.post_json("/v1/chat/completions", stream_door).await;
    assert_eq!(r.status, 200);
    let data = r.sse_data();
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("scripted"), "{last}");
    assert!(!data.contains(&"[DONE]".to_string()));
    let conversation = r.headers["x-steward-conversation-id"].to_str().unwrap();
    let stored = h.store.list_messages(conversation).await.unwrap();
    assert_eq!(stored.len(), 2);
    let kept = &stored[1].content;
    assert!(kept.starts_with("The garage door is") && kept.contains("[interrupted"), "{kept}");
}

#[tokio::test]
async fn without_a_model_the_reply_explains_how_to_configure_one() {
    let h = super::harness_with(super::Options { with_llm: false, ..Default::default() }).await;
    let r = h
        .post_json(
            "/v1/chat/completions",
            json!({"model": "architect", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let content = r.json()["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert!(content.contains("OPENAI_API_KEY") && content.contains("OLLAMA_HOST"), "{content}");
}

#[tokio::test]
async fn metrics_count_requests_turns_tools_and_llm_calls() {
    let h = harness().await;
    h.llm().push(Scripted::tool_call("get_current_time", "{}"));
    h.llm().push(Scripted::text("ok"));
    h.post_json("/v1/chat/completions", json!({"model": "architect", "messages": [{"role": "user", "content": "t"}]}))
        .await;
    let r = h.get("/metrics").await;
    assert_eq!(r.status, 200);
    let text = r.text();
    for line in [
        "steward_http_requests_total{route=\"/v1/chat/completions\",method=\"POST\",status=\"200\"} 1",
        "steward_turns_total{outcome=\"completed\"} 1",
        "steward_tool_calls_total{outcome=\"ok\"} 1",
        "steward_llm_calls_total{outcome=\"ok\"} 2",
        "steward_http_request_duration_seconds_count{route=\"/v1/chat/completions\"} 1",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
}

#[tokio::test]
async fn health_reports_the_database_and_turns_503_when_it_is_gone() {
    let h = harness().await;
    let r = h.get("/health").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["database"], json!({"ok": true, "backend": "sqlite"}));
    h.store.close().await;
    let r = h.get("/health").await;
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["status"], "degraded");
    // No key is needed for /health, so it names no database details.
    assert_eq!(v["database"]["error"], "the database is not answering; see the server log");
}
