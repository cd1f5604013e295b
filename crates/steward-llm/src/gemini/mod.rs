//! The Google Gemini provider: `generateContent`, streamed
//! (`streamGenerateContent?alt=sse`), with function calling.
//!
//! Steward's messages become Gemini's `contents`: system messages the
//! `systemInstruction`, assistant messages `model` turns whose tool calls
//! are `functionCall` parts (with the `thoughtSignature` Gemini attached to
//! them, sent back as received), and tool results `functionResponse` parts,
//! consecutive ones merged into one turn as Gemini requires. Tool schemas
//! are cut down to the OpenAPI subset Gemini accepts.
//!
//! The answer streams as `data:` events, each a whole
//! `GenerateContentResponse`: text is passed on as it comes (thoughts are
//! not), function calls arrive whole and are handed on at the end with an
//! id made up when Gemini gives none, then the usage and the finish reason.
//! Errors are [`LlmError`]s whose kinds follow Google's statuses
//! (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`, …); the API key travels in the
//! `x-goog-api-key` header, never in the URL, and never appears in an
//! error, a log line or `Debug` output.

use crate::call_log::CallLog;
use crate::sse_reader::SseReader;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use serde_json::{json, Map, Value};
use steward_core::{Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, LlmStream, ToolDefinition};
use steward_protocol::{FinishReason, Message, Role, ToolCall, Usage};
use tracing::{Instrument, Span};

use crate::errors::{
    human_duration, preview, redact_url, retry_after, ErrorContext, ErrorDetail, Phase, BODY_PREVIEW_CHARS,
    STREAM_PREVIEW_CHARS,
};
use crate::sse::SseParser;
use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};

/// Google's endpoint for the Gemini API (like `GEMINI_BASE_URL`, the host
/// only: Steward appends `/v1beta/models/{model}:streamGenerateContent`).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The API version used when the base URL does not name one.
const API_VERSION: &str = "v1beta";

/// The header that carries the API key.
const KEY_HEADER: &str = "x-goog-api-key";

/// Error bodies are read up to this many bytes.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The value Google documents for a `functionCall` part whose signature is
/// unknown (a call made by another model): Gemini 3 models reject the
/// request without one.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// How to reach the Gemini API.
#[derive(Clone)]
pub struct GeminiConfig {
    /// A short name used in logs and errors, normally `gemini`.
    pub name: String,
    /// The host, like `GEMINI_BASE_URL`: [`DEFAULT_BASE_URL`] or a proxy's
    /// root. A base that already ends in an API version (`…/v1beta`) is
    /// used as it is.
    pub base_url: String,
    /// Sent as the `x-goog-api-key` header when set. Never logged or shown.
    pub api_key: Option<String>,
    /// The model used when the request names none, e.g. `gemini-2.0-flash`.
    pub model: String,
    /// The limit on a whole call, streamed answer included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl GeminiConfig {
    /// Google's endpoint, no API key, the default timeouts.
    pub fn new(model: impl Into<String>) -> Self {
        GeminiConfig {
            name: "gemini".to_string(),
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: None,
            model: model.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.request_timeout = request;
        self.connect_timeout = connect;
        self
    }
}

impl fmt::Debug for GeminiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.api_key.as_ref().map(|_| "***");
        f.debug_struct("GeminiConfig")
            .field("name", &self.name)
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &key)
            .field("model", &self.model)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The Gemini API provider.
pub struct Gemini {
    config: GeminiConfig,
    /// The base with the API version, e.g. `https://…googleapis.com/v1beta`.
    api_root: String,
    /// The key as a header value, marked sensitive.
    key: Option<HeaderValue>,
    client: reqwest::Client,
}

impl fmt::Debug for Gemini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gemini")
            .field("config", &self.config)
            .field("api_root", &redact_url(&self.api_root))
            .finish_non_exhaustive()
    }
}

impl Gemini {
    pub fn new(config: GeminiConfig) -> Result<Self, LlmError> {
        let not_configured = |message: String| LlmError::new(config.name.clone(), LlmErrorKind::NotConfigured, message);
        let base = config.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(not_configured(format!(
                "base URL '{}' is not an http:// or https:// URL (expected something like {DEFAULT_BASE_URL})",
                redact_url(base)
            )));
        }
        let api_root = api_root(base);
        let key = match config.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            Some(key) => {
                let mut value = HeaderValue::from_str(key).map_err(|_| {
                    not_configured("the API key contains characters that cannot be sent in a header".to_string())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| not_configured(format!("could not set up the HTTP client: {e}")))?;
        Ok(Gemini { config, api_root, key, client })
    }

    pub fn config(&self) -> &GeminiConfig {
        &self.config
    }

    /// The model a call uses: the request's own, else the configured one.
    pub fn model_for<'a>(&'a self, requested: Option<&'a str>) -> &'a str {
        requested.map(str::trim).filter(|m| !m.is_empty()).unwrap_or(&self.config.model)
    }

    /// The streaming endpoint for `model`, with `alt=sse` and without the key.
    pub fn stream_url(&self, model: &str) -> String {
        format!("{}/{}:streamGenerateContent?alt=sse", self.api_root, model_path(model))
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
    async fn send(&self, ctx: &ErrorContext, model: &str, body: &Value) -> Result<reqwest::Response, LlmError> {
        let mut request = self.client.post(self.stream_url(model)).json(body);
        if let Some(key) = &self.key {
            request = request.header(KEY_HEADER, key.clone());
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

/// `base` (no trailing slash) with an API version: kept when it already
/// ends in one (`…/v1beta`, `…/v1beta/models`), else `/v1beta` appended.
fn api_root(base: &str) -> String {
    let base = base.strip_suffix("/models").unwrap_or(base);
    let authority = base.find("://").map_or(0, |i| i + 3);
    let last = base[authority..].find('/').and_then(|p| base[authority + p..].rsplit('/').next()).unwrap_or("");
    let is_version = last.strip_prefix('v').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    if is_version {
        base.to_string()
    } else {
        format!("{base}/{API_VERSION}")
    }
}

/// The resource path of a model: `models/{id}` (or `tunedModels/{id}`),
/// the id percent-encoded so it stays one path segment.
fn model_path(model: &str) -> String {
    let model = model.trim();
    let (collection, id) = if let Some(id) = model.strip_prefix("tunedModels/") {
        ("tunedModels", id)
    } else {
        ("models", model.strip_prefix("models/").unwrap_or(model))
    };
    let mut encoded = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{collection}/{encoded}")
}

#[async_trait]
impl Llm for Gemini {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let model = self.model_for(request.model.as_deref()).to_string();
        let mut log = CallLog::start(&self.config.name, &model, request.tier);
        let span = log.span.clone();
        let ctx = self.error_context(&model);
        if model.is_empty() {
            let error = ctx.error(
                LlmErrorKind::NotConfigured,
                format!("no model is configured for {} (set one such as gemini-2.0-flash)", self.config.name),
            );
            log.failed(&error);
            return Err(error);
        }
        let body = request_body(&model, &request);
        let response = match self.send(&ctx, &model, &body).instrument(span.clone()).await {
            Ok(response) => response,
            Err(error) => {
                log.failed(&error);
                return Err(error);
            }
        };
        Ok(Reader::stream(response, Assembler::new(ctx.clone()), ctx, log))
    }
}

// ------------------------------------------------------------------ request

/// The JSON body of a `generateContent` request.
pub(crate) fn request_body(model: &str, request: &LlmRequest) -> Value {
    let mut body = json!({"contents": contents(model, &request.messages)});
    let system: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System && !m.content.trim().is_empty())
        .map(|m| json!({"text": m.content}))
        .collect();
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": system});
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request.tools.iter().map(function_declaration).collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    let mut generation = Map::new();
    if let Some(temperature) = request.temperature {
        generation.insert("temperature".into(), json!(temperature));
    }
    if let Some(max_tokens) = request.max_tokens {
        generation.insert("maxOutputTokens".into(), json!(max_tokens));
    }
    if !generation.is_empty() {
        body["generationConfig"] = Value::Object(generation);
    }
    body
}

/// The conversation as Gemini `contents`. System messages are left out
/// (they are the `systemInstruction`); consecutive tool results become one
/// `user` turn of `functionResponse` parts.
fn contents(model: &str, messages: &[Message]) -> Vec<Value> {
    // Gemini 3 rejects a step's first function call without a signature.
    let needs_signature = model_path(model).starts_with("models/gemini-3");
    // A tool result without a name answers the call with its id.
    let call_names: HashMap<&str, &str> =
        messages.iter().flat_map(|m| &m.tool_calls).map(|c| (c.id.as_str(), c.name.as_str())).collect();
    let mut out: Vec<Value> = Vec::new();
    let mut in_tool_results = false;
    for message in messages {
        let mut parts = Vec::new();
        let role = match message.role {
            Role::System => continue,
            Role::User => {
                if !message.content.is_empty() {
                    parts.push(json!({"text": message.content}));
                }
                "user"
            }
            Role::Assistant => {
                if !message.content.is_empty() {
                    parts.push(json!({"text": message.content}));
                }
                for (i, call) in message.tool_calls.iter().enumerate() {
                    let mut part =
                        json!({"functionCall": {"name": call.name, "args": arguments_object(&call.arguments)}});
                    match call.signature.as_deref().filter(|s| !s.is_empty()) {
                        Some(signature) => part["thoughtSignature"] = json!(signature),
                        None if needs_signature && i == 0 => part["thoughtSignature"] = json!(SKIP_SIGNATURE),
                        None => {}
                    }
                    parts.push(part);
                }
                "model"
            }
            Role::Tool => {
                let name = message
                    .name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .or_else(|| message.tool_call_id.as_deref().and_then(|id| call_names.get(id).copied()))
                    .unwrap_or("tool");
                let part =
                    json!({"functionResponse": {"name": name, "response": {"result": tool_result(&message.content)}}});
                if in_tool_results {
                    if let Some(parts) = out.last_mut().and_then(|c| c["parts"].as_array_mut()) {
                        parts.push(part);
                        continue;
                    }
                }
                in_tool_results = true;
                out.push(json!({"role": "user", "parts": [part]}));
                continue;
            }
        };
        in_tool_results = false;
        if !parts.is_empty() {
            out.push(json!({"role": role, "parts": parts}));
        }
    }
    out
}

/// A call's arguments as the object Gemini wants: `{}` when the text is not
/// a JSON object.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

/// A tool's output: the parsed object when it is a JSON object, else the text.
fn tool_result(content: &str) -> Value {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => Value::String(content.to_string()),
    }
}

fn function_declaration(tool: &ToolDefinition) -> Value {
    let mut declaration = json!({"name": tool.name, "description": tool.description});
    let parameters = clean_schema(&tool.parameters);
    // Gemini refuses an object schema without properties; a function that
    // takes nothing simply has no `parameters`.
    let empty_object = parameters.get("properties").is_none() && parameters.get("anyOf").is_none();
    if parameters.is_object() && !empty_object {
        declaration["parameters"] = parameters;
    }
    declaration
}

/// The keys of Gemini's `Schema` (an OpenAPI subset) besides `format`
/// (checked on its own); Gemini rejects everything else a JSON Schema may
/// hold (`additionalProperties`, `$schema`, `$ref`, …).
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// The formats Gemini accepts (`number`: float, double; `integer`: int32,
/// int64; `string`: enum, date-time).
const SCHEMA_FORMATS: &[&str] = &["float", "double", "int32", "int64", "enum", "date-time"];

/// A JSON Schema cut down to what Gemini's `Schema` accepts, recursively:
/// unknown keys dropped, `oneOf` read as `anyOf`, `const` as a one-value
/// `enum`, `"type": ["string", "null"]` as a nullable string, unsupported
/// formats dropped, and `required` limited to the declared properties.
pub(crate) fn clean_schema(schema: &Value) -> Value {
    let Value::Object(input) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in input {
        let key = key.as_str();
        match key {
            "properties" => {
                let Value::Object(properties) = value else { continue };
                if properties.is_empty() {
                    continue;
                }
                let cleaned = properties.iter().map(|(name, s)| (name.clone(), clean_schema(s))).collect();
                out.insert(key.into(), Value::Object(cleaned));
            }
            "items" => {
                out.insert(key.into(), clean_schema(value));
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(options) = value {
                    let options: Vec<Value> = options.iter().map(clean_schema).collect();
                    out.insert("anyOf".into(), Value::Array(options));
                }
            }
            "type" => match value {
                Value::Array(types) => {
                    let (mut real, mut nullable) = (None, false);
                    for t in types.iter().filter_map(Value::as_str) {
                        if t == "null" {
                            nullable = true;
                        } else if real.is_none() {
                            real = Some(t);
                        }
                    }
                    if let Some(real) = real {
                        out.insert("type".into(), json!(real));
                    }
                    if nullable {
                        out.insert("nullable".into(), json!(true));
                    }
                }
                other => {
                    out.insert(key.into(), other.clone());
                }
            },
            "const" if !input.contains_key("enum") => {
                out.insert("enum".into(), json!([value]));
            }
            // Other formats fall through and are dropped.
            "format" if value.as_str().is_some_and(|f| SCHEMA_FORMATS.contains(&f)) => {
                out.insert(key.into(), value.clone());
            }
            _ if SCHEMA_KEYS.contains(&key) => {
                out.insert(key.into(), value.clone());
            }
            _ => {}
        }
    }
    if let Some(Value::Array(required)) = out.get("required") {
        let declared = out.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = required
            .iter()
            .filter(|name| name.as_str().is_some_and(|n| declared.is_some_and(|d| d.contains_key(n))))
            .cloned()
            .collect();
        if kept.is_empty() {
            out.remove("required");
        } else {
            out.insert("required".into(), Value::Array(kept));
        }
    }
    Value::Object(out)
}

// ------------------------------------------------------------------ errors

/// The fields of Google's error body that matter:
/// `{"error":{"code","message","status","details":[…]}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct GoogleError {
    code: Option<u16>,
    message: Option<String>,
    /// The canonical status, e.g. `RESOURCE_EXHAUSTED`.
    status: Option<String>,
    /// `google.rpc.RetryInfo.retryDelay`.
    retry_delay: Option<Duration>,
    /// `google.rpc.ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
    reason: Option<String>,
}

impl GoogleError {
    /// Reads the body, or the first element of an array of them (what the
    /// API answers when asked for a JSON array stream).
    fn from_value(value: &Value) -> Option<GoogleError> {
        let value = match value {
            Value::Array(items) => items.first()?,
            other => other,
        };
        let error = value.get("error").filter(|e| e.is_object())?;
        let text =
            |v: Option<&Value>| v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let details = error.get("details").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let of_type = |suffix: &str| {
            details.iter().find(|d| d.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with(suffix)))
        };
        Some(GoogleError {
            code: error.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()),
            message: text(error.get("message")),
            status: text(error.get("status")),
            retry_delay: of_type("google.rpc.RetryInfo").and_then(|d| d.get("retryDelay")).and_then(parse_delay),
            reason: of_type("google.rpc.ErrorInfo").and_then(|d| text(d.get("reason"))),
        })
    }

    /// The message; the status is named beside the HTTP status instead.
    fn describe(&self) -> String {
        self.message.clone().unwrap_or_else(|| "no message in the error".to_string())
    }
}

/// A protobuf `Duration` in JSON: `"12s"`, `"0.5s"`, or `{"seconds", "nanos"}`.
fn parse_delay(value: &Value) -> Option<Duration> {
    let seconds = match value {
        Value::String(s) => s.trim().strip_suffix('s').unwrap_or(s.trim()).trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        Value::Object(o) => {
            let whole = o.get("seconds").and_then(|s| s.as_f64().or_else(|| s.as_str()?.parse().ok())).unwrap_or(0.0);
            whole + o.get("nanos").and_then(Value::as_f64).unwrap_or(0.0) / 1e9
        }
        _ => return None,
    };
    (0.0..1e9).contains(&seconds).then(|| Duration::from_secs_f64(seconds))
}

/// The HTTP status a canonical status stands for, for errors inside a
/// stream that carry no code.
fn status_code(status: &str) -> Option<u16> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ABORTED" | "ALREADY_EXISTS" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

fn mentions_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "input token count",
        "exceeds the maximum number of tokens",
        "token count exceeds",
        "too many tokens",
        "context length",
        "context window",
        "prompt is too long",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

fn is_key_problem(error: &GoogleError) -> bool {
    error.reason.as_deref().is_some_and(|r| r.starts_with("API_KEY_"))
        || error.message.as_deref().is_some_and(|m| m.to_ascii_lowercase().contains("api key not valid"))
}

/// The error for a non-success HTTP status.
fn http_error(ctx: &ErrorContext, status: u16, retry_after: Option<Duration>, body: &[u8]) -> LlmError {
    let text = String::from_utf8_lossy(body);
    let parsed = serde_json::from_str::<Value>(text.trim()).ok();
    let google = parsed.as_ref().and_then(GoogleError::from_value);
    let described = match (&google, parsed.as_ref().and_then(ErrorDetail::from_value)) {
        (Some(google), _) => google.describe(),
        (None, Some(other)) => other.describe(),
        (None, None) if text.trim().is_empty() => "the response body was empty".to_string(),
        (None, None) => format!("the response body was: {}", preview(&text, BODY_PREVIEW_CHARS)),
    };
    classify(ctx, status, retry_after, google.unwrap_or_default(), &described)
}

/// The error for an `{"error": …}` object inside a 200 answer.
fn embedded_error(ctx: &ErrorContext, value: &Value) -> LlmError {
    let google = GoogleError::from_value(value).unwrap_or_default();
    let status = google
        .code
        .filter(|c| (400..=599).contains(c))
        .or_else(|| google.status.as_deref().and_then(status_code))
        .unwrap_or(500);
    let described = google.describe();
    let error = classify(ctx, status, None, google, &described);
    ctx.error(error.kind, format!("{} reported an error in its answer: {}", ctx.provider, error.message))
}

fn classify(
    ctx: &ErrorContext,
    status: u16,
    retry_after: Option<Duration>,
    google: GoogleError,
    described: &str,
) -> LlmError {
    let p = &ctx.provider;
    let canonical = google.status.as_deref().unwrap_or("");
    let tag = if canonical.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}, {canonical}") };
    let message = google.message.as_deref().unwrap_or("");
    let key_hint = if ctx.has_key {
        "check the API key and what it may access"
    } else {
        "no API key is configured for this provider; set one"
    };
    match status {
        401 | 403 => {
            let what =
                if status == 401 || canonical == "UNAUTHENTICATED" { "rejected the API key" } else { "denied access" };
            ctx.error(LlmErrorKind::Authentication, format!("{p} {what} ({tag}): {described} — {key_hint}"))
        }
        400 if is_key_problem(&google) => ctx
            .error(LlmErrorKind::Authentication, format!("{p} rejected the API key ({tag}): {described} — {key_hint}")),
        429 => {
            let wait = retry_after.or(google.retry_delay);
            let after = wait.map(|d| format!("; retry after {}", human_duration(d))).unwrap_or_default();
            let quota = if message.to_ascii_lowercase().contains("quota") {
                " — check the project's quota and plan"
            } else {
                ""
            };
            ctx.error(
                LlmErrorKind::RateLimited { retry_after: wait },
                format!("{p} is rate limiting requests ({tag}): {described}{after}{quota}"),
            )
        }
        404 => ctx.error(
            LlmErrorKind::ModelNotFound,
            format!(
                "model '{}' was not found by {p} at {} ({tag}): {described} — check the model name \
                 (for example gemini-2.0-flash)",
                ctx.model, ctx.base_url
            ),
        ),
        400..=499 if mentions_context_length(message) => ctx.error(
            LlmErrorKind::ContextLengthExceeded,
            format!("the conversation is too long for model '{}' at {p} ({tag}): {described}", ctx.model),
        ),
        400..=499 => {
            ctx.error(LlmErrorKind::BadRequest, format!("{p} rejected the request as invalid ({tag}): {described}"))
        }
        503 => {
            ctx.error(LlmErrorKind::Overloaded, format!("{p} is overloaded ({tag}): {described} — try again shortly"))
        }
        504 => ctx.error(LlmErrorKind::Timeout, format!("{p} gave up waiting for the model ({tag}): {described}")),
        500..=599 => ctx.error(LlmErrorKind::Server { status }, format!("{p} had a server error ({tag}): {described}")),
        _ => ctx.error(
            LlmErrorKind::InvalidResponse,
            format!("{p} answered with unexpected HTTP status {status}: {described}"),
        ),
    }
}

// ------------------------------------------------------------------ response

/// Turns streamed `GenerateContentResponse`s into [`LlmChunk`]s.
#[derive(Debug)]
struct Assembler {
    ctx: ErrorContext,
    calls: Vec<ToolCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// The final chunks were produced.
    done: bool,
}

impl Assembler {
    fn new(ctx: ErrorContext) -> Self {
        Assembler { ctx, calls: Vec::new(), finish_reason: None, usage: None, done: false }
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn finish_seen(&self) -> bool {
        self.finish_reason.is_some()
    }

    fn invalid(&self, what: &str, data: &str) -> LlmError {
        let p = &self.ctx.provider;
        self.ctx.error(LlmErrorKind::InvalidResponse, format!("{p} {what}: {}", preview(data, STREAM_PREVIEW_CHARS)))
    }

    /// The error for an answer that stopped before the model finished.
    fn cut(&self, what: &str) -> LlmError {
        let p = &self.ctx.provider;
        self.ctx.error(LlmErrorKind::Network, format!("stream ended before the model finished: {p} {what}"))
    }

    /// Handles the data of one event: a response, or an array of them.
    fn on_data(&mut self, data: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        let data = data.trim();
        if self.done || data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let value: Value =
            serde_json::from_str(data).map_err(|_| self.invalid("sent a stream event that is not JSON", data))?;
        match &value {
            Value::Object(_) => self.on_response(&value, out),
            Value::Array(items) => items.iter().try_for_each(|item| self.on_response(item, out)),
            _ => Err(self.invalid("sent a stream event that is not a GenerateContentResponse", data)),
        }
    }

    /// One `GenerateContentResponse`.
    fn on_response(&mut self, response: &Value, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        if !response.is_object() {
            return Err(
                self.invalid("sent a stream event that is not a GenerateContentResponse", &response.to_string())
            );
        }
        if response.get("error").is_some_and(|e| !e.is_null()) {
            return Err(embedded_error(&self.ctx, response));
        }
        if let Some(usage) = response.get("usageMetadata").filter(|u| u.is_object()) {
            let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Some(Usage {
                prompt_tokens: count("promptTokenCount"),
                completion_tokens: count("candidatesTokenCount").saturating_add(count("thoughtsTokenCount")),
                cached_prompt_tokens: count("cachedContentTokenCount"),
            });
        }
        let feedback = response.get("promptFeedback").unwrap_or(&Value::Null);
        if let Some(reason) = feedback
            .get("blockReason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && *r != "BLOCK_REASON_UNSPECIFIED")
        {
            let p = &self.ctx.provider;
            let detail = feedback
                .get("blockReasonMessage")
                .and_then(Value::as_str)
                .map(|m| format!(": {}", preview(m, BODY_PREVIEW_CHARS)))
                .unwrap_or_default();
            return Err(self.ctx.error(
                LlmErrorKind::ContentPolicy,
                format!("{p} blocked the prompt under its safety policy (blockReason {reason}){detail}"),
            ));
        }
        let candidates = response.get("candidates").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let first = candidates
            .iter()
            .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
            .or_else(|| candidates.first());
        let Some(candidate) = first else { return Ok(()) };
        let parts =
            candidate.pointer("/content/parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for part in parts {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(call) = part.get("functionCall").filter(|c| c.is_object()) {
                self.add_call(call, part.get("thoughtSignature"));
            } else if let Some(text) = part.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(LlmChunk::Text(text.to_string()));
            }
        }
        if let Some(reason) = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && *r != "FINISH_REASON_UNSPECIFIED")
        {
            if matches!(reason, "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL") {
                let p = &self.ctx.provider;
                let detail = candidate
                    .get("finishMessage")
                    .and_then(Value::as_str)
                    .map(|m| format!(": {}", preview(m, BODY_PREVIEW_CHARS)))
                    .unwrap_or_default();
                return Err(self.ctx.error(
                    LlmErrorKind::InvalidResponse,
                    format!("the model at {p} produced a function call it could not complete ({reason}){detail}"),
                ));
            }
            self.finish_reason = Some(reason.to_string());
        }
        Ok(())
    }

    fn add_call(&mut self, call: &Value, signature: Option<&Value>) {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let id = text(call.get("id")).unwrap_or_else(|| format!("call_{}", self.calls.len()));
        let arguments = match call.get("args") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(args) => args.to_string(),
        };
        self.calls.push(ToolCall {
            id,
            name: text(call.get("name")).unwrap_or_default(),
            arguments,
            signature: text(signature),
        });
    }

    /// The body ended. Accepts an answer that said why it finished; else
    /// explains what came back.
    fn on_eof(&mut self, parser: &SseParser, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if self.finish_seen() {
            self.finish(out);
            return Ok(());
        }
        if parser.events() > 0 {
            return Err(self.cut("closed the stream without a finishReason"));
        }
        let raw = String::from_utf8_lossy(parser.raw_start());
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(self.cut("closed the stream without sending anything"));
        }
        // Not an event stream: a whole response, or the JSON array Gemini
        // streams when `alt=sse` is not honoured.
        let Ok(value) = serde_json::from_str::<Value>(raw) else {
            return Err(self.invalid("answered with something that is neither an event stream nor JSON", raw));
        };
        let items = match &value {
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        let understood =
            |v: &Value| ["candidates", "usageMetadata", "promptFeedback", "error"].iter().any(|k| v.get(*k).is_some());
        if items.is_empty() || !items.iter().all(understood) {
            return Err(self.invalid("answered with JSON that is not a GenerateContentResponse", raw));
        }
        for item in items {
            self.on_response(item, out)?;
        }
        if !self.finish_seen() {
            return Err(self.cut("sent a response without a finishReason"));
        }
        self.finish(out);
        Ok(())
    }

    /// Pushes the tool calls, the usage and the finish reason.
    fn finish(&mut self, out: &mut Vec<LlmChunk>) {
        if self.done {
            return;
        }
        self.done = true;
        let any_call = !self.calls.is_empty();
        out.extend(self.calls.drain(..).map(LlmChunk::ToolCall));
        if let Some(usage) = self.usage {
            out.push(LlmChunk::Usage(usage));
        }
        out.push(LlmChunk::Finish(map_finish_reason(self.finish_reason.as_deref(), any_call)));
    }
}

/// Gemini's `finishReason`. An answer with function calls finished for them.
fn map_finish_reason(reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match reason {
        _ if has_tool_calls => FinishReason::ToolCalls,
        Some("MAX_TOKENS") => FinishReason::Length,
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT",
        ) => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Reads a streamed answer: bytes → SSE events → chunks.
type Reader = SseReader<Assembler>;

impl crate::sse_reader::EventAssembler for Assembler {
    fn on_data(&mut self, data: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        Assembler::on_data(self, data, out)
    }
    fn on_eof(&mut self, parser: &SseParser, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        Assembler::on_eof(self, parser, out)
    }
    fn is_done(&self) -> bool {
        Assembler::is_done(self)
    }
    fn answer_complete(&self) -> bool {
        Assembler::finish_seen(self)
    }
    fn finish(&mut self, out: &mut Vec<LlmChunk>) {
        Assembler::finish(self, out)
    }
}

#[cfg(test)]
mod tests;
