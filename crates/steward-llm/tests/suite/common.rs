use std::time::Duration;

use futures::StreamExt;
use steward_core::{Llm, LlmChunk, LlmError, LlmRequest, Tier, ToolDefinition};
use steward_llm::{OpenAiCompatible, OpenAiConfig};
use steward_protocol::Message;
use steward_testkit::ScriptedLlm;

pub const KEY: &str = "sk-test-SECRET-0123456789";

pub async fn server() -> ScriptedLlm {
    ScriptedLlm::start().await.expect("start the scripted server")
}

pub fn config(base_url: &str) -> OpenAiConfig {
    OpenAiConfig::new("openai", base_url, "gpt-test")
        .with_api_key(KEY)
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(2))
}

pub fn provider(server: &ScriptedLlm) -> OpenAiCompatible {
    OpenAiCompatible::new(config(&server.base_url())).expect("build the provider")
}

pub fn request(text: &str) -> LlmRequest {
    LlmRequest {
        tier: Tier::Smart,
        model: None,
        messages: vec![Message::system("You are a test."), Message::user(text)],
        tools: vec![],
        temperature: None,
        max_tokens: None,
        ..LlmRequest::default()
    }
}

pub fn clock_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_current_time".into(),
        description: "The current time".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"tz": {"type": "string"}}}),
    }
}

/// Every item of a call's stream; a stream error ends the list.
pub async fn collect(llm: &impl Llm, request: LlmRequest) -> Result<Vec<Result<LlmChunk, LlmError>>, LlmError> {
    let mut stream = llm.stream(request).await?;
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    Ok(items)
}

/// The error a call fails with, before or during the stream.
pub async fn failure(llm: &impl Llm, request: LlmRequest) -> LlmError {
    match collect(llm, request).await {
        Err(e) => e,
        Ok(items) => items.into_iter().find_map(Result::err).unwrap_or_else(|| panic!("expected the call to fail")),
    }
}
