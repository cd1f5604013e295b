use steward_core::{Llm, LlmChunk, Tier};
use steward_llm::OpenAiCompatible;
use steward_protocol::{FinishReason, Message, ToolCall, Usage};
use steward_testkit::{Reply, ScriptedCall};

use super::common::*;

#[tokio::test]
async fn text_streams_in_pieces_then_usage_then_finish() {
    let server = server().await;
    server.push(Reply::text("Hello there, general Kenobi"));
    let items = collect(&provider(&server), request("hi there!!")).await.unwrap();
    let chunks: Vec<LlmChunk> = items.into_iter().map(Result::unwrap).collect();
    let texts: Vec<&str> = chunks
        .iter()
        .filter_map(|c| match c {
            LlmChunk::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(texts.len() >= 2, "{chunks:?}");
    assert_eq!(texts.concat(), "Hello there, general Kenobi");
    // "You are a test." + "hi there!!" = 25 chars → 6 tokens; 27 chars → 6.
    let tail = &chunks[texts.len()..];
    assert_eq!(tail, [LlmChunk::Usage(Usage::new(6, 6)), LlmChunk::Finish(FinishReason::Stop)]);
}

#[tokio::test]
async fn tool_calls_with_split_arguments_arrive_whole() {
    let server = server().await;
    server.push(Reply::ToolCalls {
        calls: vec![
            ScriptedCall::new("get_current_time", r#"{"tz": "Europe/Paris"}"#).with_id("call_abc"),
            ScriptedCall::new("lights_on", r#"{"room": "kitchen", "level": 80}"#),
        ],
        content: Some("Let me check.".into()),
    });
    let completion = provider(&server).complete(request("what time is it?")).await.unwrap();
    assert_eq!(completion.text, "Let me check.");
    assert_eq!(
        completion.tool_calls,
        vec![
            ToolCall::new("call_abc", "get_current_time", r#"{"tz": "Europe/Paris"}"#),
            ToolCall::new("call_1_1", "lights_on", r#"{"room": "kitchen", "level": 80}"#),
        ]
    );
    assert_eq!(completion.finish_reason, Some(FinishReason::ToolCalls));
    assert!(completion.usage.completion_tokens > 0);
}

#[tokio::test]
async fn the_request_carries_messages_tools_options_and_the_key() {
    let server = server().await;
    server.push(Reply::text("ok"));
    let mut req = request("what time is it?");
    req.tools = vec![clock_tool()];
    req.temperature = Some(0.5);
    req.max_tokens = Some(64);
    req.messages.push(Message {
        role: steward_protocol::Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall::new("c1", "get_current_time", "{}")],
        tool_call_id: None,
        name: None,
    });
    req.messages.push(Message::tool("c1", "get_current_time", "12:00"));
    provider(&server).complete(req).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert!(sent.header("content-type").unwrap_or_default().starts_with("application/json"));
    let body = &sent.body;
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "get_current_time");
    assert_eq!(body["tools"][0]["function"]["description"], "The current time");
    assert_eq!(body["tools"][0]["function"]["parameters"]["properties"]["tz"]["type"], "string");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0], serde_json::json!({"role": "system", "content": "You are a test."}));
    assert_eq!(messages[1], serde_json::json!({"role": "user", "content": "what time is it?"}));
    assert_eq!(messages[2]["content"], serde_json::Value::Null);
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "get_current_time");
    assert_eq!(messages[3], serde_json::json!({"role": "tool", "tool_call_id": "c1", "content": "12:00"}));
}

#[tokio::test]
async fn without_a_key_there_is_no_authorization_header() {
    let server = server().await;
    server.push(Reply::text("ok"));
    let mut config = config(&server.base_url());
    config.api_key = None;
    OpenAiCompatible::new(config).unwrap().complete(request("hi")).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].header("authorization"), None);
    assert!(requests[0].body.get("tools").is_none());
}

#[tokio::test]
async fn the_model_comes_from_the_request_then_the_tier_then_the_default() {
    let server = server().await;
    server.set_default(Some(Reply::text("ok")));
    let llm = OpenAiCompatible::new(config(&server.base_url()).with_tier_model(Tier::Fast, "small-model")).unwrap();
    let mut req = request("hi");
    req.model = Some("explicit-model".into());
    llm.complete(req).await.unwrap();
    let mut req = request("hi");
    req.tier = Tier::Fast;
    llm.complete(req).await.unwrap();
    llm.complete(request("hi")).await.unwrap();
    let models: Vec<String> =
        server.chat_requests().iter().map(|b| b["model"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(models, ["explicit-model", "small-model", "gpt-test"]);
}

#[tokio::test]
async fn a_delay_shorter_than_the_timeout_is_just_slow() {
    let server = server().await;
    server.push(Reply::delay(100, Reply::text("late but fine")));
    let completion = provider(&server).complete(request("hi")).await.unwrap();
    assert_eq!(completion.text, "late but fine");
}
