//! The OpenAI-compatible chat API as Steward serves it.
//!
//! Request types accept what real clients send (unknown fields are ignored,
//! content may be a string or an array of parts); response types serialise
//! to exactly the shapes OpenAI's SDKs parse.

use serde::{Deserialize, Serialize};

use crate::{Message, Role, ToolCall};

// ---------------------------------------------------------------- requests

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<RequestMessage>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
    /// Tools the client offers the model (gateway mode only: agents bring
    /// their own tools and ignore these).
    #[serde(default)]
    pub tools: Option<Vec<RequestTool>>,
}

/// `{"type": "function", "function": {"name", "description", "parameters"}}`
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RequestTool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: RequestFunction,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RequestFunction {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RequestMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl MessageContent {
    /// The text of the content; non-text parts (images, audio) are skipped.
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text" || p.kind == "input_text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// A tool call as it appears on the wire (in requests and full responses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct WireToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: WireFunction,
}

fn function_type() -> String {
    "function".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct WireFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

impl From<&ToolCall> for WireToolCall {
    fn from(c: &ToolCall) -> Self {
        WireToolCall {
            id: c.id.clone(),
            kind: function_type(),
            function: WireFunction { name: c.name.clone(), arguments: c.arguments.clone() },
        }
    }
}

impl RequestMessage {
    /// Converts to the engine's message model. Returns the reason when the
    /// role is not one Steward understands.
    pub fn to_message(&self) -> Result<Message, String> {
        let role = Role::parse(&self.role).ok_or_else(|| {
            format!("unknown role '{}': expected system, developer, user, assistant or tool", self.role)
        })?;
        Ok(Message {
            role,
            content: self.content.as_ref().map(MessageContent::text).unwrap_or_default(),
            tool_calls: self
                .tool_calls
                .iter()
                .flatten()
                .map(|c| ToolCall::new(c.id.clone(), c.function.name.clone(), c.function.arguments.clone()))
                .collect(),
            tool_call_id: self.tool_call_id.clone(),
            name: self.name.clone(),
        })
    }
}

// --------------------------------------------------------------- responses

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: CompletionUsage,
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: u32,
    pub message: ResponseMessage,
    pub finish_reason: String,
    pub logprobs: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    pub role: String,
    pub content: Option<String>,
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl From<crate::Usage> for CompletionUsage {
    fn from(u: crate::Usage) -> Self {
        CompletionUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total(),
        }
    }
}

/// One `data:` frame of a streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub model: String,
    pub system_fingerprint: Option<String>,
    pub choices: Vec<ChunkChoice>,
    /// Present (as `null`) on every chunk when the client asked for usage;
    /// the final usage chunk carries the counts and no choices.
    #[serde(default, skip_serializing_if = "UsageField::is_absent")]
    pub usage: UsageField,
}

/// The `usage` field of a chunk: absent, `null`, or the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageField {
    #[default]
    Absent,
    Null,
    Counts(CompletionUsage),
}

impl UsageField {
    pub fn is_absent(&self) -> bool {
        matches!(self, UsageField::Absent)
    }
}

impl Serialize for UsageField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UsageField::Absent | UsageField::Null => s.serialize_none(),
            UsageField::Counts(c) => c.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for UsageField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<CompletionUsage>::deserialize(d)? {
            Some(c) => UsageField::Counts(c),
            None => UsageField::Null,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<String>,
    pub logprobs: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<DeltaToolCall>>,
}

/// A tool call in a streamed delta; Steward sends each call whole, in one delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaToolCall {
    pub index: u32,
    #[serde(flatten)]
    pub call: WireToolCall,
}

// ------------------------------------------------------------------ models

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<Model>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub owned_by: String,
}

// ------------------------------------------------------------------ errors

/// `{"error": {...}}`, the body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorResponse {
    pub fn new(code: crate::ErrorCode, message: impl Into<String>, param: Option<String>) -> Self {
        ErrorResponse {
            error: ErrorObject {
                message: message.into(),
                kind: code.openai_type().to_string(),
                param,
                code: Some(code.as_str().to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_may_be_string_parts_or_null() {
        let body = r#"{"model":"architect","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"x"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"ok"}
        ],"stream":true,"stream_options":{"include_usage":true},"unknown_field":1}"#;
        let req: ChatCompletionRequest = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}"));
        let msgs: Vec<Message> =
            req.messages.iter().map(|m| m.to_message().unwrap_or_else(|e| panic!("{e}"))).collect();
        assert_eq!(msgs[1].content, "hello");
        assert_eq!(msgs[2].tool_calls[0].name, "f");
        assert_eq!(msgs[3].tool_call_id.as_deref(), Some("c1"));
        assert!(req.stream_options.map(|o| o.include_usage).unwrap_or(false));
    }

    #[test]
    fn unknown_role_is_named() {
        let m =
            RequestMessage { role: "robot".into(), content: None, name: None, tool_calls: None, tool_call_id: None };
        let err = m.to_message().err().unwrap_or_default();
        assert!(err.contains("robot"), "{err}");
    }

    #[test]
    fn chunk_usage_field_serialises_three_ways() {
        let mut chunk = ChatCompletionChunk {
            id: "c".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "architect".into(),
            system_fingerprint: None,
            choices: vec![],
            usage: UsageField::Absent,
        };
        let v = serde_json::to_value(&chunk).unwrap_or_default();
        assert!(v.get("usage").is_none());
        chunk.usage = UsageField::Null;
        let v = serde_json::to_value(&chunk).unwrap_or_default();
        assert_eq!(v.get("usage"), Some(&serde_json::Value::Null));
        chunk.usage = UsageField::Counts(CompletionUsage { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
        let v = serde_json::to_value(&chunk).unwrap_or_default();
        assert_eq!(v["usage"]["total_tokens"], 3);
    }
}
