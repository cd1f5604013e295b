//! The OpenAI-compatible chat-completions provider.

use crate::call_log::CallLog;
use crate::sse_reader::SseReader;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_core::{Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, LlmStream, Tier, ToolDefinition};
use steward_protocol::{Message, Role};
use tracing::{Instrument, Span};

use crate::assemble::StreamAssembler;
use crate::errors::{redact_url, retry_after, ErrorContext, Phase};
use crate::sse::SseParser;

/// The default for [`OpenAiConfig::request_timeout`]: generous, because
/// local models can be slow and the timeout covers the whole streamed answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// The default for [`OpenAiConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Error bodies are read up to this many bytes.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How to reach an OpenAI-compatible server.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// A short name used in logs and errors: `openai`, `ollama`, …
    pub name: String,
    /// The API base, including `/v1` (like the official SDK's
    /// `OPENAI_BASE_URL`), e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set. Never logged or shown.
    pub api_key: Option<String>,
    /// The model used when neither the request nor `tier_models` names one.
    pub model: String,
    /// Per-tier models, overriding `model`.
    pub tier_models: BTreeMap<Tier, String>,
    /// The limit on a whole call, streamed answer included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl OpenAiConfig {
    /// A config with no API key, no tier models and the default timeouts.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            tier_models: BTreeMap::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// A local Ollama at `host` (`OLLAMA_HOST`, e.g. `127.0.0.1:11434`).
    pub fn ollama(host: &str, model: impl Into<String>) -> Self {
        OpenAiConfig::new("ollama", ollama_base_url(host), model)
    }

    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    pub fn with_tier_model(mut self, tier: Tier, model: impl Into<String>) -> Self {
        self.tier_models.insert(tier, model.into());
        self
    }

    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.request_timeout = request;
        self.connect_timeout = connect;
        self
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.api_key.as_ref().map(|_| "***");
        f.debug_struct("OpenAiConfig")
            .field("name", &self.name)
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &key)
            .field("model", &self.model)
            .field("tier_models", &self.tier_models)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Turns an `OLLAMA_HOST` value (`http://127.0.0.1:11434`, `127.0.0.1:11434`,
/// `localhost`, with or without a trailing slash) into Ollama's
/// OpenAI-compatible base URL, e.g. `http://127.0.0.1:11434/v1`. Like
/// Ollama itself, assumes `http`, host `127.0.0.1` and port 11434 when they
/// are missing.
pub fn ollama_base_url(host: &str) -> String {
    let host = host.trim();
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_string(), host),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = if authority.is_empty() { "127.0.0.1" } else { authority };
    let has_port = match authority.rfind(']') {
        Some(bracket) => authority[bracket..].contains(':'),
        None => authority.contains(':'),
    };
    let authority = if has_port || scheme == "https" { authority.to_string() } else { format!("{authority}:11434") };
    let path = path.trim_end_matches('/');
    let path = if path.ends_with("/v1") { path.to_string() } else { format!("{path}/v1") };
    format!("{scheme}://{authority}{path}")
}

/// A provider for any server speaking OpenAI's chat-completions API:
/// OpenAI, Ollama, vLLM, llama.cpp, LM Studio, OpenRouter, …
pub struct OpenAiCompatible {
    config: OpenAiConfig,
    endpoint: String,
    client: reqwest::Client,
    /// The name of the output-token limit: OpenAI's own API wants
    /// `max_completion_tokens` (its reasoning models refuse `max_tokens`);
    /// compatible servers know `max_tokens`.
    limit_field: &'static str,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("config", &self.config)
            .field("endpoint", &redact_url(&self.endpoint))
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let not_configured = |message: String| LlmError::new(config.name.clone(), LlmErrorKind::NotConfigured, message);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(not_configured(format!(
                "base URL '{}' is not an http:// or https:// URL (expected something like https://api.openai.com/v1)",
                redact_url(&base)
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| not_configured(format!("could not set up the HTTP client: {e}")))?;
        let endpoint = format!("{base}/chat/completions");
        let openai_itself = base.strip_prefix("https://").map(|r| r.starts_with("api.openai.com")).unwrap_or(false);
        let limit_field = if openai_itself { "max_completion_tokens" } else { "max_tokens" };
        Ok(OpenAiCompatible { config, endpoint, client, limit_field })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The model a call uses: the request's own, else the tier's, else the
    /// default.
    pub fn model_for<'a>(&'a self, tier: Tier, requested: Option<&'a str>) -> &'a str {
        requested
            .filter(|m| !m.is_empty())
            .or_else(|| self.config.tier_models.get(&tier).map(String::as_str).filter(|m| !m.is_empty()))
            .unwrap_or(&self.config.model)
    }

    fn error_context(&self, model: &str) -> ErrorContext {
        ErrorContext::new(
            &self.config.name,
            model,
            &self.config.base_url,
            self.config.api_key.as_deref(),
            self.config.request_timeout,
            self.config.connect_timeout,
        )
    }

    /// Sends the request and checks the status; the body is left to stream.
    async fn send(&self, ctx: &ErrorContext, body: &Value) -> Result<reqwest::Response, LlmError> {
        let mut request = self.client.post(&self.endpoint).json(body);
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|e| ctx.transport_error(&e, Phase::Request))?;
        let status = response.status();
        Span::current().record("status", status.as_u16());
        if status.is_success() {
            return Ok(response);
        }
        let wait = retry_after(response.headers());
        let mut body = Vec::new();
        // A body that breaks off half-way still says something.
        while body.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        Err(ctx.http_error(status.as_u16(), wait, &body))
    }
}

#[async_trait]
impl Llm for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let model = self.model_for(request.tier, request.model.as_deref()).to_string();
        let mut log = CallLog::start(&self.config.name, &model, request.tier);
        let span = log.span.clone();
        let ctx = self.error_context(&model);
        if model.is_empty() {
            let error = ctx.error(
                LlmErrorKind::NotConfigured,
                format!("no model is configured for the {} tier of {}", request.tier.as_str(), self.config.name),
            );
            log.failed(&error);
            return Err(error);
        }
        let body = request_body(&model, &request, self.limit_field);
        let response = match self.send(&ctx, &body).instrument(span.clone()).await {
            Ok(response) => response,
            Err(error) => {
                log.failed(&error);
                return Err(error);
            }
        };
        Ok(Reader::stream(response, StreamAssembler::new(ctx.clone()), ctx, log))
    }
}

/// Reads a streamed answer: bytes → SSE events → chunks.
type Reader = SseReader<StreamAssembler>;

impl crate::sse_reader::EventAssembler for StreamAssembler {
    fn on_data(&mut self, data: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        StreamAssembler::on_data(self, data, out)
    }
    fn on_eof(&mut self, parser: &SseParser, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        StreamAssembler::on_eof(self, parser, out)
    }
    fn is_done(&self) -> bool {
        StreamAssembler::is_done(self)
    }
    fn answer_complete(&self) -> bool {
        StreamAssembler::finish_seen(self)
    }
    fn finish(&mut self, out: &mut Vec<LlmChunk>) {
        StreamAssembler::finish(self, out)
    }
}

/// The JSON body of a streamed chat-completions request.
pub(crate) fn request_body(model: &str, request: &LlmRequest, limit_field: &str) -> Value {
    let mut body = json!({
        "model": model,
        "messages": request.messages.iter().map(wire_message).collect::<Vec<_>>(),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(wire_tool).collect();
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(max_tokens) = request.max_tokens {
        body[limit_field] = json!(max_tokens);
    }
    body
}

fn wire_message(message: &Message) -> Value {
    let mut out = json!({"role": message.role.as_str()});
    match message.role {
        Role::Tool => {
            out["content"] = json!(message.content);
            if let Some(id) = &message.tool_call_id {
                out["tool_call_id"] = json!(id);
            }
        }
        Role::Assistant if !message.tool_calls.is_empty() => {
            out["content"] = if message.content.is_empty() { Value::Null } else { json!(message.content) };
            out["tool_calls"] = message
                .tool_calls
                .iter()
                .map(
                    |c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}),
                )
                .collect();
        }
        Role::System | Role::User | Role::Assistant => {
            out["content"] = json!(message.content);
        }
    }
    if message.role != Role::Tool {
        if let Some(name) = message.name.as_deref().filter(|n| !n.is_empty()) {
            out["name"] = json!(name);
        }
    }
    out
}

fn wire_tool(tool: &ToolDefinition) -> Value {
    let mut function = json!({"name": tool.name, "description": tool.description});
    if !tool.parameters.is_null() {
        function["parameters"] = tool.parameters.clone();
    }
    json!({"type": "function", "function": function})
}

#[cfg(test)]
mod tests {
    use steward_protocol::ToolCall;

    use super::*;

    #[test]
    fn ollama_hosts_become_base_urls() {
        for (host, expected) in [
            ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
            ("127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
            ("http://127.0.0.1:11434/", "http://127.0.0.1:11434/v1"),
            ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
            ("http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434/v1"),
            (" localhost ", "http://localhost:11434/v1"),
            ("0.0.0.0", "http://0.0.0.0:11434/v1"),
            ("[::1]", "http://[::1]:11434/v1"),
            ("[::1]:8080", "http://[::1]:8080/v1"),
            ("https://ollama.example.com", "https://ollama.example.com/v1"),
            ("http://gpu-box:11434/ollama/", "http://gpu-box:11434/ollama/v1"),
            ("", "http://127.0.0.1:11434/v1"),
        ] {
            assert_eq!(ollama_base_url(host), expected, "{host:?}");
        }
    }

    fn provider(config: OpenAiConfig) -> OpenAiCompatible {
        OpenAiCompatible::new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_model_is_the_requests_then_the_tiers_then_the_default() {
        let p = provider(OpenAiConfig::new("openai", "http://h/v1", "base").with_tier_model(Tier::Smart, "big"));
        assert_eq!(p.model_for(Tier::Smart, Some("explicit")), "explicit");
        assert_eq!(p.model_for(Tier::Smart, Some("")), "big");
        assert_eq!(p.model_for(Tier::Smart, None), "big");
        assert_eq!(p.model_for(Tier::Fast, None), "base");
    }

    #[test]
    fn bad_base_urls_are_refused_up_front() {
        let err = OpenAiCompatible::new(OpenAiConfig::new("openai", "api.openai.com/v1", "m")).err();
        assert_eq!(err.map(|e| e.kind), Some(LlmErrorKind::NotConfigured));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = OpenAiConfig::new("openai", "https://u:pw@h/v1", "m").with_api_key("sk-very-secret");
        let shown = format!("{config:?} {:?}", provider(config.clone()));
        assert!(!shown.contains("sk-very-secret") && !shown.contains("pw@"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn request_bodies_follow_the_openai_shape() {
        let request = LlmRequest {
            tier: Tier::Smart,
            model: None,
            messages: vec![
                Message::system("be brief"),
                Message::user("time?"),
                Message {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall::new("c1", "now", "{}")],
                    tool_call_id: None,
                    name: None,
                },
                Message::tool("c1", "now", "12:00"),
                Message::assistant("It is noon."),
            ],
            tools: vec![ToolDefinition {
                name: "now".into(),
                description: "The time".into(),
                parameters: json!({"type": "object", "properties": {}}),
            }],
            temperature: Some(0.2),
            max_tokens: Some(100),
            ..LlmRequest::default()
        };
        let body = request_body("m", &request, "max_tokens");
        assert_eq!(request_body("m", &request, "max_completion_tokens")["max_completion_tokens"], 100);
        assert_eq!(body["model"], "m");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["temperature"], 0.2);
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(
            body["tools"][0],
            json!({"type": "function", "function": {"name": "now", "description": "The time", "parameters": {"type": "object", "properties": {}}}})
        );
        let messages = &body["messages"];
        assert_eq!(messages[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(
            messages[2],
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]})
        );
        assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": "c1", "content": "12:00"}));
        assert_eq!(messages[4], json!({"role": "assistant", "content": "It is noon."}));

        let bare = request_body(
            "m",
            &LlmRequest { tools: vec![], temperature: None, max_tokens: None, ..request },
            "max_tokens",
        );
        assert!(bare.get("tools").is_none() && bare.get("temperature").is_none() && bare.get("max_tokens").is_none());
    }
}
