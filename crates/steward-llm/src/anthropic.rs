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
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use steward_core::{Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, LlmStream, ToolDefinition};
use steward_protocol::{FinishReason, Message, Role, ToolCall, Usage};
use tracing::field::Empty;
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
        let span = tracing::info_span!(
            "llm_call",
            provider = %self.config.name,
            model = %model,
            tier = %request.tier.as_str(),
            status = Empty,
            outcome = Empty,
            error = Empty,
            finish_reason = Empty,
            duration_ms = Empty,
            first_chunk_ms = Empty,
            prompt_tokens = Empty,
            completion_tokens = Empty,
            cached_prompt_tokens = Empty,
        );
        let mut log = CallLog::new(span.clone());
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
        let reader = Reader {
            body: response.bytes_stream().boxed(),
            parser: SseParser::new(),
            assembler: EventAssembler::new(ctx.clone()),
            ctx,
            pending: VecDeque::new(),
            error: None,
            ended: false,
            log,
        };
        let stream = futures::stream::unfold(reader, |mut reader| {
            let span = reader.log.span.clone();
            async move {
                let item = reader.next().await?;
                Some((item, reader))
            }
            .instrument(span)
        });
        Ok(Box::pin(stream.fuse()))
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
mod tests {
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
        let out = ok(&[
            message_start(2, 0, 0),
            text_start(0),
            text_delta(0, "hi"),
            block_stop(0),
            message_delta("end_turn", 3),
        ]);
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
            vec![
                text("ok"),
                call("toolu_1", "f", "{\"a\":1}"),
                usage(3, 3, 1),
                LlmChunk::Finish(FinishReason::ToolCalls)
            ]
        );
        let (_, err) =
            through(&[json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
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
}
