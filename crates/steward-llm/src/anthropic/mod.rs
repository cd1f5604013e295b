//! The Anthropic Messages API provider.
//!
//! [`Anthropic`] streams `POST {base}/v1/messages` and turns Anthropic's
//! server-sent events into [`LlmChunk`]s: text as it arrives; tool calls
//! whole, in block order, once the message is complete; then the usage and
//! the finish reason.
//!
//! Steward's conversation model is OpenAI-shaped, so requests are
//! translated: system messages become the top-level `system` text, tool
//! calls become `tool_use` blocks, tool results become `tool_result` blocks
//! of a user message, and consecutive messages of the same role are merged
//! into one (Anthropic requires user and assistant turns to alternate).
//!
//! The stream is read tolerantly: `ping` and unknown events are skipped,
//! `output_tokens` is taken as the cumulative count Anthropic sends, a
//! stream that said why it stopped but lost its `message_stop` is accepted,
//! and a server that ignored `"stream": true` and answered with one
//! `message` object is understood. Every failure is an [`LlmError`] whose
//! message never holds the API key.

use crate::call_log::CallLog;
use crate::sse_reader::SseReader;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_core::{Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, LlmStream, ToolDefinition};
use steward_protocol::{FinishReason, Message, Role, ToolCall, Usage};
use tracing::{Instrument, Span};

use crate::errors::{preview, redact_url, retry_after, ErrorContext, Phase, BODY_PREVIEW_CHARS, STREAM_PREVIEW_CHARS};
use crate::sse::SseParser;

/// The default for [`AnthropicConfig::base_url`].
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The default for [`AnthropicConfig::max_tokens`]. Anthropic requires a
/// limit on every request.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The API version sent as `anthropic-version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The default for [`AnthropicConfig::request_timeout`]: the whole streamed answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// The default for [`AnthropicConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Error bodies are read up to this many bytes.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How to reach Anthropic's Messages API.
#[derive(Clone)]
pub struct AnthropicConfig {
    /// A short name used in logs and errors, e.g. `anthropic`.
    pub name: String,
    /// The API host without a path (like the SDK's `ANTHROPIC_BASE_URL`),
    /// e.g. `https://api.anthropic.com`; Steward appends `/v1/messages`.
    /// A trailing `/v1` is tolerated.
    pub base_url: String,
    /// Sent as `x-api-key` when set. Never logged or shown.
    pub api_key: Option<String>,
    /// The model used when the request does not name one.
    pub model: String,
    /// The `max_tokens` sent when the request does not set one.
    pub max_tokens: u32,
    /// The limit on a whole call, streamed answer included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl AnthropicConfig {
    /// A config named `anthropic` for `model` at [`DEFAULT_BASE_URL`], with
    /// no API key, [`DEFAULT_MAX_TOKENS`] and the default timeouts.
    pub fn new(model: impl Into<String>) -> Self {
        AnthropicConfig {
            name: "anthropic".to_string(),
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: None,
            model: model.into(),
            max_tokens: DEFAULT_MAX_TOKENS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.request_timeout = request;
        self.connect_timeout = connect;
        self
    }
}

impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.api_key.as_ref().map(|_| "***");
        f.debug_struct("AnthropicConfig")
            .field("name", &self.name)
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &key)
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// A provider speaking Anthropic's Messages API, streamed.
pub struct Anthropic {
    config: AnthropicConfig,
    /// The base URL as used: trimmed, defaulted, without a trailing `/v1`.
    base_url: String,
    endpoint: String,
    client: reqwest::Client,
}

impl fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anthropic")
            .field("config", &self.config)
            .field("endpoint", &redact_url(&self.endpoint))
            .finish_non_exhaustive()
    }
}

impl Anthropic {
    pub fn new(config: AnthropicConfig) -> Result<Self, LlmError> {
        let not_configured = |message: String| LlmError::new(config.name.clone(), LlmErrorKind::NotConfigured, message);
        let base = config.base_url.trim().trim_end_matches('/');
        let base = if base.is_empty() { DEFAULT_BASE_URL } else { base };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(not_configured(format!(
                "base URL '{}' is not an http:// or https:// URL (expected something like {DEFAULT_BASE_URL})",
                redact_url(base)
            )));
        }
        // The SDK's base URL is the host; people often add the `/v1` anyway.
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| not_configured(format!("could not set up the HTTP client: {e}")))?;
        let endpoint = format!("{base}/v1/messages");
        Ok(Anthropic { base_url: base.to_string(), config, endpoint, client })
    }

    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    /// The model a call uses: the request's own, else the configured one.
    pub fn model_for<'a>(&'a self, requested: Option<&'a str>) -> &'a str {
        requested.filter(|m| !m.trim().is_empty()).unwrap_or(&self.config.model)
    }

    fn error_context(&self, model: &str) -> ErrorContext {
        ErrorContext::new(
            &self.config.name,
            model,
            &self.base_url,
            self.config.api_key.as_deref(),
            self.config.request_timeout,
            self.config.connect_timeout,
        )
    }

    /// Sends the request and checks the status; the body is left to stream.
    async fn send(&self, ctx: &ErrorContext, body: &Value) -> Result<reqwest::Response, LlmError> {
        let mut request = self.client.post(&self.endpoint).header("anthropic-version", ANTHROPIC_VERSION).json(body);
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            let mut value = reqwest::header::HeaderValue::from_str(key).map_err(|_| {
                ctx.error(
                    LlmErrorKind::NotConfigured,
                    "the API key contains characters that cannot be sent in an HTTP header",
                )
            })?;
            value.set_sensitive(true);
            request = request.header("x-api-key", value);
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
        Err(http_error(ctx, status.as_u16(), wait, &body))
    }
}

/// The error for a non-success HTTP status. Anthropic's body,
/// `{"type":"error","error":{"type","message"}}`, is read by the shared
/// mapping; only what differs from OpenAI-compatible servers is adjusted.
fn http_error(ctx: &ErrorContext, status: u16, wait: Option<Duration>, body: &[u8]) -> LlmError {
    let error = ctx.http_error(status, wait, body);
    match error.kind {
        // The shared hint says the base URL should end in /v1; here it must not.
        LlmErrorKind::ModelNotFound => {
            let p = &ctx.provider;
            let detail = error_detail(&serde_json::from_slice(body).unwrap_or(Value::Null));
            let described = detail.unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                if text.trim().is_empty() {
                    "the response body was empty".to_string()
                } else {
                    format!("the response body was: {}", preview(&text, BODY_PREVIEW_CHARS))
                }
            });
            ctx.error(
                LlmErrorKind::ModelNotFound,
                format!(
                    "model '{}' was not found by {p} at {} (HTTP 404): {described} — check the model name, \
                     and the base URL (Steward appends /v1/messages to it)",
                    ctx.model, ctx.base_url
                ),
            )
        }
        // "input length and `max_tokens` exceed context limit" and similar.
        LlmErrorKind::BadRequest if status != 413 && mentions_context(&error.message) => {
            ctx.error(LlmErrorKind::ContextLengthExceeded, error.message)
        }
        _ => error,
    }
}

#[async_trait]
impl Llm for Anthropic {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let model = self.model_for(request.model.as_deref()).to_string();
        let mut log = CallLog::start(&self.config.name, &model, request.tier);
        let span = log.span.clone();
        let ctx = self.error_context(&model);
        if model.trim().is_empty() {
            let error = ctx.error(
                LlmErrorKind::NotConfigured,
                format!("no model is configured for {} (set one, e.g. claude-sonnet-4-5)", self.config.name),
            );
            log.failed(&error);
            return Err(error);
        }
        let max_tokens = [request.max_tokens, Some(self.config.max_tokens)]
            .into_iter()
            .flatten()
            .find(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_TOKENS);
        let body = request_body(&model, max_tokens, &request);
        let response = match self.send(&ctx, &body).instrument(span.clone()).await {
            Ok(response) => response,
            Err(error) => {
                log.failed(&error);
                return Err(error);
            }
        };
        Ok(Reader::stream(response, EventAssembler::new(ctx.clone()), ctx, log))
    }
}

// ------------------------------------------------------------------ request

/// The JSON body of a streamed Messages request.
fn request_body(model: &str, max_tokens: u32, request: &LlmRequest) -> Value {
    let (system, messages) = wire_messages(&request.messages);
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "stream": true,
        "messages": messages,
    });
    if !system.is_empty() {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(wire_tool).collect();
    }
    if let Some(temperature) = request.temperature.filter(|t| t.is_finite()) {
        // OpenAI's scale goes to 2, Anthropic's to 1.
        body["temperature"] = json!(temperature.clamp(0.0, 1.0));
    }
    body
}

/// The `system` text and the alternating `messages` of a conversation.
fn wire_messages(messages: &[Message]) -> (String, Vec<Value>) {
    let mut system: Vec<&str> = Vec::new();
    // (role, content blocks), consecutive same-role messages merged.
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System => {
                if !message.content.trim().is_empty() {
                    system.push(&message.content);
                }
                continue;
            }
            Role::User => ("user", text_block(&message.content).into_iter().collect::<Vec<_>>()),
            Role::Assistant => {
                let mut blocks: Vec<Value> = text_block(&message.content).into_iter().collect();
                blocks.extend(message.tool_calls.iter().map(tool_use_block));
                ("assistant", blocks)
            }
            Role::Tool => {
                let mut block = json!({
                    "type": "tool_result",
                    "tool_use_id": wire_id(message.tool_call_id.as_deref().unwrap_or_default()),
                });
                if !message.content.is_empty() {
                    block["content"] = json!(message.content);
                }
                ("user", vec![block])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    // Anthropic rejects a final assistant turn (a prefill) ending in whitespace.
    if let Some(("assistant", blocks)) = turns.last_mut() {
        if let Some(text) = blocks.last_mut().and_then(|b| b.get_mut("text")) {
            if let Some(s) = text.as_str() {
                *text = json!(s.trim_end());
            }
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, mut blocks)| {
            if role == "user" {
                // Tool results must come first in their user turn.
                blocks.sort_by_key(|b| b["type"] != "tool_result");
            }
            let content = match blocks.as_slice() {
                [only] if only["type"] == "text" => only["text"].clone(),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect();
    (system.join("\n\n"), messages)
}

/// A text block, or nothing: Anthropic rejects empty and whitespace-only text.
fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn tool_use_block(call: &ToolCall) -> Value {
    // `input` must be an object; arguments a model garbled are sent as `{}`.
    let input = match serde_json::from_str::<Value>(&call.arguments) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => Value::Object(Map::new()),
    };
    json!({"type": "tool_use", "id": wire_id(&call.id), "name": call.name, "input": input})
}

/// A tool-call id Anthropic accepts (`^[a-zA-Z0-9_-]+$`). Calls made by
/// other providers may carry other characters; the same mapping is applied
/// to the call and to its result, so they still match.
fn wire_id(id: &str) -> String {
    if id.is_empty() {
        return "call".to_string();
    }
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

fn wire_tool(tool: &ToolDefinition) -> Value {
    let schema =
        if tool.parameters.is_object() { tool.parameters.clone() } else { json!({"type": "object", "properties": {}}) };
    json!({"name": tool.name, "description": tool.description, "input_schema": schema})
}

// ------------------------------------------------------------------ response

/// Reads a streamed answer: bytes → SSE events → chunks.
type Reader = SseReader<EventAssembler>;

impl crate::sse_reader::EventAssembler for EventAssembler {
    fn on_data(&mut self, data: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        EventAssembler::on_data(self, data, out)
    }
    fn on_eof(&mut self, parser: &SseParser, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        EventAssembler::on_eof(self, parser, out)
    }
    fn is_done(&self) -> bool {
        EventAssembler::is_done(self)
    }
    fn answer_complete(&self) -> bool {
        EventAssembler::stop_seen(self)
    }
    fn finish(&mut self, out: &mut Vec<LlmChunk>) {
        EventAssembler::finish(self, out)
    }
}

/// A `tool_use` block being streamed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PartialToolUse {
    id: String,
    name: String,
    /// The `input_json_delta` pieces so far.
    json: String,
    /// A non-empty `input` sent whole in `content_block_start`, used when
    /// no deltas follow.
    initial: Option<String>,
}

/// Turns the events of a streamed message into [`LlmChunk`]s.
#[derive(Debug)]
struct EventAssembler {
    ctx: ErrorContext,
    /// Tool-use blocks by content-block index.
    tools: BTreeMap<u64, PartialToolUse>,
    /// The index of the block the last event was about.
    last_index: Option<u64>,
    input_tokens: u64,
    cache_read_tokens: u64,
    cache_creation_tokens: u64,
    output_tokens: u64,
    usage_seen: bool,
    stop_reason: Option<String>,
    /// `message_stop` arrived or the final chunks were produced.
    done: bool,
}

impl EventAssembler {
    fn new(ctx: ErrorContext) -> Self {
        EventAssembler {
            ctx,
            tools: BTreeMap::new(),
            last_index: None,
            input_tokens: 0,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
            output_tokens: 0,
            usage_seen: false,
            stop_reason: None,
            done: false,
        }
    }

    /// Whether the stream is over: nothing more will be produced.
    fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the model said why it stopped.
    fn stop_seen(&self) -> bool {
        self.stop_reason.is_some()
    }

    /// Handles the data of one event. Text is pushed to `out` at once; at
    /// `message_stop` the final chunks are pushed and [`Self::is_done`]
    /// turns true.
    fn on_data(&mut self, data: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let trimmed = data.trim();
        if trimmed.is_empty() || trimmed == "[DONE]" {
            return Ok(());
        }
        let p = &self.ctx.provider;
        let value: Value = serde_json::from_str(trimmed).map_err(|_| {
            self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!("{p} sent a stream event that is not JSON: {}", preview(trimmed, STREAM_PREVIEW_CHARS)),
            )
        })?;
        if !value.is_object() {
            return Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!("{p} sent a stream event that is not an object: {}", preview(trimmed, STREAM_PREVIEW_CHARS)),
            ));
        }
        let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "message_start" => {
                if let Some(usage) = value.pointer("/message/usage") {
                    self.read_usage(usage);
                }
            }
            "content_block_start" => {
                let index = self.index_of(&value);
                let block = value.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => push_text(block.get("text"), out),
                    Some("tool_use") => {
                        let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                        let initial = block
                            .get("input")
                            .and_then(Value::as_object)
                            .filter(|input| !input.is_empty())
                            .map(|input| Value::Object(input.clone()).to_string());
                        self.tools.insert(
                            index,
                            PartialToolUse { id: text("id"), name: text("name"), json: String::new(), initial },
                        );
                    }
                    // thinking, redacted_thinking, server tools, …: not for Steward.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = self.index_of(&value);
                let delta = value.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => push_text(delta.get("text"), out),
                    Some("input_json_delta") => {
                        let piece = delta.get("partial_json").and_then(Value::as_str).unwrap_or_default();
                        match self.tools.get_mut(&index) {
                            Some(tool) => tool.json.push_str(piece),
                            None => tracing::debug!(index, "input_json_delta for a block that is not a tool_use"),
                        }
                    }
                    // thinking_delta, signature_delta, citations_delta, …
                    _ => {}
                }
            }
            "content_block_stop" => {
                self.index_of(&value);
            }
            "message_delta" => {
                if let Some(reason) =
                    value.pointer("/delta/stop_reason").and_then(Value::as_str).filter(|r| !r.is_empty())
                {
                    self.stop_reason = Some(reason.to_string());
                }
                if let Some(usage) = value.get("usage") {
                    self.read_usage(usage);
                }
            }
            "message_stop" => self.finish(out),
            "error" => return Err(self.stream_error(&value)),
            // A whole message: a server that ignored `"stream": true`.
            "message" => return self.on_message(&value, out),
            "ping" => {}
            _ if value.get("error").is_some_and(|e| !e.is_null()) => return Err(self.stream_error(&value)),
            other => tracing::trace!(event = other, "skipping an unknown stream event"),
        }
        Ok(())
    }

    /// The body ended. Accepts a stream that said why it stopped; otherwise
    /// explains what came back.
    fn on_eof(&mut self, parser: &SseParser, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if self.stop_seen() {
            self.finish(out);
            return Ok(());
        }
        let p = &self.ctx.provider;
        if parser.events() > 0 {
            return Err(self.ctx.error(
                LlmErrorKind::Network,
                format!("stream ended before the model finished: {p} closed the stream without a stop_reason or message_stop"),
            ));
        }
        let raw = String::from_utf8_lossy(parser.raw_start());
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(self.ctx.error(
                LlmErrorKind::Network,
                format!("stream ended before the model finished: {p} closed the stream without sending anything"),
            ));
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(value) if value.get("type").and_then(Value::as_str) == Some("message") => self.on_message(&value, out),
            Ok(value) if value.get("error").is_some_and(|e| !e.is_null()) => Err(self.stream_error(&value)),
            Ok(value) => Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!(
                    "{p} answered with JSON that is not a message: {}",
                    preview(&value.to_string(), STREAM_PREVIEW_CHARS)
                ),
            )),
            Err(_) => Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!(
                    "{p} answered with something that is neither an event stream nor JSON: {}",
                    preview(raw, STREAM_PREVIEW_CHARS)
                ),
            )),
        }
    }

    /// A whole, non-streamed `message` object.
    fn on_message(&mut self, value: &Value, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        for (index, block) in value.get("content").and_then(Value::as_array).into_iter().flatten().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => push_text(block.get("text"), out),
                Some("tool_use") => {
                    let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                    let json = block.get("input").filter(|i| !i.is_null()).map(Value::to_string).unwrap_or_default();
                    self.tools.insert(
                        index as u64,
                        PartialToolUse { id: text("id"), name: text("name"), json, initial: None },
                    );
                }
                _ => {}
            }
        }
        if let Some(usage) = value.get("usage") {
            self.read_usage(usage);
        }
        if let Some(reason) = value.get("stop_reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            self.stop_reason = Some(reason.to_string());
        }
        self.finish(out);
        Ok(())
    }

    /// Pushes the assembled tool calls, the usage and the finish reason.
    fn finish(&mut self, out: &mut Vec<LlmChunk>) {
        if self.done {
            return;
        }
        self.done = true;
        let tools = std::mem::take(&mut self.tools);
        let any_call = !tools.is_empty();
        for (index, tool) in tools {
            let arguments =
                if !tool.json.trim().is_empty() { tool.json } else { tool.initial.unwrap_or_else(|| "{}".to_string()) };
            let id = if tool.id.is_empty() { format!("toolu_{index}") } else { tool.id };
            out.push(LlmChunk::ToolCall(ToolCall::new(id, tool.name, arguments)));
        }
        if self.usage_seen {
            out.push(LlmChunk::Usage(Usage {
                prompt_tokens: self
                    .input_tokens
                    .saturating_add(self.cache_read_tokens)
                    .saturating_add(self.cache_creation_tokens),
                completion_tokens: self.output_tokens,
                cached_prompt_tokens: self.cache_read_tokens,
            }));
        }
        out.push(LlmChunk::Finish(map_stop_reason(self.stop_reason.as_deref(), any_call)));
    }

    /// Reads a `usage` object. Anthropic's counts are running totals (the
    /// `message_delta` ones cumulative), so each one seen replaces the last.
    fn read_usage(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        self.usage_seen = true;
        let count = |key: &str| usage.get(key).and_then(Value::as_u64);
        if let Some(n) = count("input_tokens") {
            self.input_tokens = n;
        }
        if let Some(n) = count("cache_read_input_tokens") {
            self.cache_read_tokens = n;
        }
        if let Some(n) = count("cache_creation_input_tokens") {
            self.cache_creation_tokens = n;
        }
        if let Some(n) = count("output_tokens") {
            self.output_tokens = n;
        }
    }

    /// The block index an event is about; events without one are about the
    /// block before.
    fn index_of(&mut self, event: &Value) -> u64 {
        let index = event.get("index").and_then(Value::as_u64).or(self.last_index).unwrap_or(0);
        self.last_index = Some(index);
        index
    }

    /// The error for an `error` event (or an error object in place of the
    /// answer): `{"type":"error","error":{"type","message"}}`.
    fn stream_error(&self, value: &Value) -> LlmError {
        let p = &self.ctx.provider;
        let error = value.get("error").filter(|e| e.is_object()).unwrap_or(value);
        let kind_str = error.get("type").and_then(Value::as_str).unwrap_or_default();
        let message = match error.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(other) if !other.is_null() => other.to_string(),
            _ => match value.get("error") {
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            },
        };
        let kind = match kind_str {
            "overloaded_error" => LlmErrorKind::Overloaded,
            "rate_limit_error" => LlmErrorKind::RateLimited { retry_after: None },
            "api_error" => LlmErrorKind::Server { status: 500 },
            "authentication_error" | "permission_error" => LlmErrorKind::Authentication,
            "not_found_error" => LlmErrorKind::ModelNotFound,
            "timeout_error" => LlmErrorKind::Timeout,
            "invalid_request_error" if mentions_context(&message) => LlmErrorKind::ContextLengthExceeded,
            "invalid_request_error" | "request_too_large" | "billing_error" => LlmErrorKind::BadRequest,
            _ => LlmErrorKind::Server { status: 500 },
        };
        let mut described = if message.is_empty() { "no message in the error".to_string() } else { message };
        described = preview(&described, 2 * STREAM_PREVIEW_CHARS);
        if !kind_str.is_empty() {
            described.push_str(&format!(" (type: {kind_str})"));
        }
        self.ctx.error(kind, format!("{p} reported an error in its answer: {described}"))
    }
}

fn push_text(text: Option<&Value>, out: &mut Vec<LlmChunk>) {
    if let Some(text) = text.and_then(Value::as_str).filter(|t| !t.is_empty()) {
        out.push(LlmChunk::Text(text.to_string()));
    }
}

/// Anthropic's `stop_reason`. A message that produced tool calls finished
/// for them whatever it says.
fn map_stop_reason(reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ if has_tool_calls => FinishReason::ToolCalls,
        // end_turn, stop_sequence, pause_turn, …
        _ => FinishReason::Stop,
    }
}

/// Whether an error message is about the prompt not fitting the model.
fn mentions_context(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["prompt is too long", "context limit", "context length", "context window", "maximum context", "too many tokens"]
        .iter()
        .any(|needle| m.contains(needle))
}

/// `message` of an Anthropic error body, with its type.
fn error_detail(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let message = error.get("message").and_then(Value::as_str).filter(|m| !m.is_empty())?;
    Some(match error.get("type").and_then(Value::as_str) {
        Some(kind) => format!("{message} (type: {kind})"),
        None => message.to_string(),
    })
}

// ------------------------------------------------------------------ logging

#[cfg(test)]
mod tests;
