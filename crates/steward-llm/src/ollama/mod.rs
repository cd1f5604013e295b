//! Ollama's native chat API: `POST {host}/api/chat`, streamed as NDJSON.
//!
//! Ollama answers a streamed chat with one JSON object per line:
//!
//! ```text
//! {"model":"llama3.1","created_at":"…","message":{"role":"assistant","content":"Hel"},"done":false}
//! {"model":"llama3.1","created_at":"…","message":{"role":"assistant","content":"lo"},"done":false}
//! {"model":"llama3.1","created_at":"…","message":{"role":"assistant","content":""},"done":true,
//!  "done_reason":"stop","prompt_eval_count":26,"eval_count":2,"total_duration":…}
//! ```
//!
//! Text is passed on as it arrives. Tool calls come whole (each with its
//! arguments as a JSON *object*, sometimes with an `index` or an `id`); they
//! are collected and handed on at the end with their arguments as JSON text
//! and an id made up (`call_<n>`) when Ollama gave none, followed by the
//! usage (`prompt_eval_count`, `eval_count`) and the finish reason. Errors
//! are `{"error":"message"}`, either as the body of an HTTP error or as a
//! line of the stream; both become [`LlmError`]s whose kind drives retries
//! and whose message says what to do (`ollama pull <model>`,
//! `ollama serve`, …).
//!
//! Unlike [`crate::OpenAiCompatible`] pointed at Ollama's `/v1`, the native
//! API takes Ollama's own options (`num_predict`, `keep_alive`) and names
//! the tool a result comes from (`tool_name`).

use crate::call_log::CallLog;
use std::collections::{HashMap, VecDeque};
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use steward_core::{Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, LlmStream, ToolDefinition};
use steward_protocol::{FinishReason, Message, Role, ToolCall, Usage};
use tracing::{Instrument, Span};

use crate::errors::{
    preview, redact_url, retry_after, ErrorContext, ErrorDetail, Phase, BODY_PREVIEW_CHARS, STREAM_PREVIEW_CHARS,
};
use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};

/// Where Ollama listens unless `OLLAMA_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "http://127.0.0.1:11434";

/// Ollama's port, assumed for `http` hosts that do not name one.
const DEFAULT_PORT: u16 = 11434;

/// Error bodies are read up to this many bytes.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A line longer than this is not Ollama talking: the answer is refused
/// rather than buffered without end.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How to reach an Ollama server.
#[derive(Clone)]
pub struct OllamaConfig {
    /// A short name used in logs and errors, normally `ollama`.
    pub name: String,
    /// Where Ollama listens, as `OLLAMA_HOST` says it:
    /// `http://127.0.0.1:11434`, `127.0.0.1:11434`, `localhost`, with or
    /// without a trailing slash (see [`host_root`]). User info
    /// (`http://user:pw@…`, for a proxy in front of Ollama) is sent as basic
    /// auth and never shown.
    pub host: String,
    /// The model used when the request names none, e.g. `llama3.1`.
    pub model: String,
    /// The limit on a whole call, streamed answer (and loading the model)
    /// included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long Ollama keeps the model loaded after the call: a duration
    /// such as `5m` or `1h`, or a number of seconds (`-1` keeps it loaded,
    /// `0` unloads it at once). `None` leaves it to the server.
    pub keep_alive: Option<String>,
}

impl OllamaConfig {
    /// A config named `ollama` with the default timeouts and no `keep_alive`.
    pub fn new(host: impl Into<String>, model: impl Into<String>) -> Self {
        OllamaConfig {
            name: "ollama".to_string(),
            host: host.into(),
            model: model.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            keep_alive: None,
        }
    }

    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.request_timeout = request;
        self.connect_timeout = connect;
        self
    }

    pub fn with_keep_alive(mut self, keep_alive: impl Into<String>) -> Self {
        self.keep_alive = Some(keep_alive.into());
        self
    }
}

impl fmt::Debug for OllamaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OllamaConfig")
            .field("name", &self.name)
            .field("host", &redact_url(self.host.trim()))
            .field("model", &self.model)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// Turns an `OLLAMA_HOST` value into the server's root URL, to which
/// `/api/chat` is appended: `127.0.0.1:11434` → `http://127.0.0.1:11434`,
/// `localhost` → `http://localhost:11434`, `http://box:11434/` →
/// `http://box:11434`. Assumes `http`, host `127.0.0.1` and port 11434 when
/// they are missing (https keeps its default port), like the rest of
/// Steward. A trailing `/v1` (the OpenAI-compatible base URL) or `/api` is
/// dropped, so either spelling of the address works.
pub fn host_root(host: &str) -> String {
    let host = host.trim();
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_string(), host),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (user_info, host_port) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let host_port = if host_port.is_empty() { "127.0.0.1" } else { host_port };
    let has_port = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].contains(':'),
        None => host_port.contains(':'),
    };
    let host_port =
        if has_port || scheme == "https" { host_port.to_string() } else { format!("{host_port}:{DEFAULT_PORT}") };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut path = path.trim_end_matches('/');
    for suffix in ["/v1", "/api"] {
        if let Some(stripped) = path.strip_suffix(suffix) {
            path = stripped.trim_end_matches('/');
            break;
        }
    }
    format!("{scheme}://{user_info}{host_port}{path}")
}

/// A provider speaking Ollama's native chat API.
pub struct Ollama {
    config: OllamaConfig,
    /// The server's root URL, e.g. `http://127.0.0.1:11434`.
    root: String,
    endpoint: String,
    client: reqwest::Client,
}

impl fmt::Debug for Ollama {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ollama")
            .field("config", &self.config)
            .field("endpoint", &redact_url(&self.endpoint))
            .finish_non_exhaustive()
    }
}

impl Ollama {
    pub fn new(config: OllamaConfig) -> Result<Self, LlmError> {
        let root = host_root(&config.host);
        let not_configured = |message: String| LlmError::new(config.name.clone(), LlmErrorKind::NotConfigured, message);
        if !(root.starts_with("http://") || root.starts_with("https://")) {
            return Err(not_configured(format!(
                "OLLAMA_HOST '{}' is not an http:// or https:// address (expected something like {DEFAULT_HOST})",
                redact_url(config.host.trim())
            )));
        }
        let endpoint = format!("{root}/api/chat");
        if let Err(e) = reqwest::Url::parse(&endpoint) {
            return Err(not_configured(format!(
                "OLLAMA_HOST '{}' is not a valid address ({e}); expected something like {DEFAULT_HOST}",
                redact_url(config.host.trim())
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| not_configured(format!("could not set up the HTTP client: {e}")))?;
        Ok(Ollama { config, root, endpoint, client })
    }

    pub fn config(&self) -> &OllamaConfig {
        &self.config
    }

    /// The server's root URL as used, without any user info, e.g.
    /// `http://127.0.0.1:11434`.
    pub fn host(&self) -> String {
        redact_url(&self.root)
    }

    /// The model a call uses: the request's own, else the configured one.
    pub fn model_for<'a>(&'a self, requested: Option<&'a str>) -> &'a str {
        requested.map(str::trim).filter(|m| !m.is_empty()).unwrap_or(self.config.model.trim())
    }

    fn error_context(&self, model: &str) -> ErrorContext {
        // A password in the host (basic auth for a proxy) is the one secret
        // here: it is scrubbed from messages like an API key.
        let password = url_password(&self.root);
        ErrorContext::new(
            &self.config.name,
            model,
            &self.root,
            password.as_deref(),
            self.config.request_timeout,
            self.config.connect_timeout,
        )
    }

    /// Sends the request and checks the status; the body is left to stream.
    async fn send(&self, ctx: &ErrorContext, body: &Value) -> Result<reqwest::Response, LlmError> {
        // reqwest turns user info in the URL into basic auth.
        let request = self.client.post(&self.endpoint).json(body);
        let mut response = request.send().await.map_err(|e| request_failure(ctx, &e))?;
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
        Err(http_failure(ctx, status.as_u16(), wait, &body))
    }
}

#[async_trait]
impl Llm for Ollama {
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
                format!("no model is configured for {} (set OLLAMA_MODEL, e.g. llama3.1)", self.config.name),
            );
            log.failed(&error);
            return Err(error);
        }
        let body = request_body(&model, &request, self.config.keep_alive.as_deref());
        let response = match self.send(&ctx, &body).instrument(span.clone()).await {
            Ok(response) => response,
            Err(error) => {
                log.failed(&error);
                return Err(error);
            }
        };
        let reader = Reader {
            body: response.bytes_stream().boxed(),
            lines: LineSplitter::default(),
            decoder: ChatDecoder::new(ctx.clone()),
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

/// The JSON body of a streamed `/api/chat` request.
pub(crate) fn request_body(model: &str, request: &LlmRequest, keep_alive: Option<&str>) -> Value {
    let mut body = json!({
        "model": model,
        "messages": wire_messages(&request.messages),
        "stream": true,
    });
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(wire_tool).collect();
    }
    let mut options = Map::new();
    if let Some(temperature) = request.temperature {
        options.insert("temperature".to_string(), json!(temperature));
    }
    if let Some(max_tokens) = request.max_tokens {
        options.insert("num_predict".to_string(), json!(max_tokens));
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    if let Some(keep_alive) = keep_alive.map(str::trim).filter(|k| !k.is_empty()) {
        body["keep_alive"] = keep_alive_value(keep_alive);
    }
    body
}

/// Ollama reads a string `keep_alive` as a Go duration (`5m`), which a bare
/// number of seconds (`-1`, `300`) is not; those are sent as numbers.
fn keep_alive_value(keep_alive: &str) -> Value {
    if let Ok(seconds) = keep_alive.parse::<i64>() {
        return json!(seconds);
    }
    match keep_alive.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() => json!(seconds),
        _ => json!(keep_alive),
    }
}

fn wire_messages(messages: &[Message]) -> Vec<Value> {
    // Tool results name their tool; older histories may only have the id
    // of the call, whose name an earlier assistant message holds.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        for call in &message.tool_calls {
            call_names.insert(call.id.as_str(), call.name.as_str());
        }
        out.push(wire_message(message, &call_names));
    }
    out
}

fn wire_message(message: &Message, call_names: &HashMap<&str, &str>) -> Value {
    let mut out = json!({"role": message.role.as_str(), "content": message.content});
    match message.role {
        Role::Assistant if !message.tool_calls.is_empty() => {
            out["tool_calls"] = message
                .tool_calls
                .iter()
                .map(|c| json!({"function": {"name": c.name, "arguments": arguments_object(&c.arguments)}}))
                .collect();
        }
        Role::Tool => {
            let name = message
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .or_else(|| message.tool_call_id.as_deref().and_then(|id| call_names.get(id).copied()));
            if let Some(name) = name {
                out["tool_name"] = json!(name);
            }
        }
        Role::System | Role::User | Role::Assistant => {}
    }
    out
}

/// Ollama takes a call's arguments as a JSON object; the stored text is
/// parsed back, and anything that is not an object becomes `{}`.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({}),
    }
}

fn wire_tool(tool: &ToolDefinition) -> Value {
    let parameters =
        if tool.parameters.is_null() { json!({"type": "object", "properties": {}}) } else { tool.parameters.clone() };
    json!({
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": parameters},
    })
}

/// The password of `url`'s user info, if it has one.
fn url_password(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let user_info = &authority[..authority.rfind('@')?];
    let (_, password) = user_info.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

// ------------------------------------------------------------------ errors

/// The error for a non-success HTTP status. Ollama's body is
/// `{"error":"message"}`.
fn http_failure(ctx: &ErrorContext, status: u16, retry_after: Option<Duration>, body: &[u8]) -> LlmError {
    let p = &ctx.provider;
    let model = &ctx.model;
    let host = &ctx.base_url;
    let text = String::from_utf8_lossy(body);
    let message = ErrorDetail::parse(&text).and_then(|d| d.message);
    if status == 404 {
        // Ollama answers an unknown model with `{"error":"model \"x\" not
        // found, try pulling it first"}`.
        let ollama_says = serde_json::from_str::<Value>(text.trim())
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
        if let Some(said) = ollama_says.filter(|m| m.to_lowercase().contains("not found")) {
            return model_not_found(ctx, &format!("(HTTP 404): {}", preview(&said, BODY_PREVIEW_CHARS)));
        }
        // Something other than Ollama answers at this address (Go's "404
        // page not found", a proxy, another kind of server).
        let said = match &message {
            Some(message) => format!("saying: {}", preview(message, BODY_PREVIEW_CHARS)),
            None if text.trim().is_empty() => "with an empty body".to_string(),
            None => format!("saying: {}", preview(&text, BODY_PREVIEW_CHARS)),
        };
        return ctx.error(
            LlmErrorKind::BadRequest,
            format!(
                "{host} has no Ollama chat API: POST /api/chat answered HTTP 404 {said} — \
                 is OLLAMA_HOST the address of an Ollama server (e.g. {DEFAULT_HOST})?"
            ),
        );
    }
    let Some(message) = message else {
        return ctx.http_error(status, retry_after, body);
    };
    let lower = message.to_lowercase();
    let described = preview(&message, BODY_PREVIEW_CHARS);
    if (400..=599).contains(&status) && is_context_error(&lower) {
        return ctx.error(
            LlmErrorKind::ContextLengthExceeded,
            format!(
                "the conversation is too long for model '{model}' at {p} (HTTP {status}): {described} — \
                 shorten it, or use a model with a larger context"
            ),
        );
    }
    if (400..=499).contains(&status) && lower.contains("does not support tools") {
        return ctx.error(
            LlmErrorKind::BadRequest,
            format!(
                "model '{model}' at {p} cannot call tools (HTTP {status}): {described} — \
                 choose a model with tool support, e.g. llama3.1 or qwen2.5"
            ),
        );
    }
    ctx.http_error(status, retry_after, body)
}

/// The error for an `{"error": …}` line inside a streamed answer.
fn stream_failure(ctx: &ErrorContext, error: &Value) -> LlmError {
    let p = &ctx.provider;
    let message = match error {
        Value::String(s) => s.clone(),
        Value::Object(object) => match object.get("message") {
            Some(Value::String(s)) => s.clone(),
            _ => error.to_string(),
        },
        other => other.to_string(),
    };
    let lower = message.to_lowercase();
    let described = preview(&message, BODY_PREVIEW_CHARS);
    if lower.contains("not found") && lower.contains("model") {
        return model_not_found(ctx, &format!("(in its answer): {described}"));
    }
    if is_context_error(&lower) {
        return ctx.error(
            LlmErrorKind::ContextLengthExceeded,
            format!("the conversation is too long for model '{}' at {p}: {described}", ctx.model),
        );
    }
    if lower.contains("server busy") || lower.contains("overloaded") {
        return ctx.error(LlmErrorKind::Overloaded, format!("{p} is busy: {described} — try again shortly"));
    }
    ctx.error(LlmErrorKind::Server { status: 500 }, format!("{p} reported an error while answering: {described}"))
}

fn model_not_found(ctx: &ErrorContext, detail: &str) -> LlmError {
    let model = &ctx.model;
    ctx.error(
        LlmErrorKind::ModelNotFound,
        format!(
            "model '{model}' was not found by {} at {} {detail} — run `ollama pull {model}` to download it, \
             or check the name with `ollama list`",
            ctx.provider, ctx.base_url
        ),
    )
}

/// Whether an (already lower-cased) Ollama error is about the prompt not
/// fitting the context. Go's "context canceled" and "context deadline
/// exceeded" are about something else.
fn is_context_error(lower: &str) -> bool {
    let go_context = lower.contains("context canceled") || lower.contains("context deadline");
    (lower.contains("context") && !go_context) || lower.contains("too long")
}

/// The error for a request that never got an answer: connecting, sending,
/// waiting for the response head.
fn request_failure(ctx: &ErrorContext, error: &reqwest::Error) -> LlmError {
    if error.is_timeout() || !error.is_connect() {
        return ctx.transport_error(error, Phase::Request);
    }
    let host = &ctx.base_url;
    let cause = root_cause(error);
    let lower = cause.to_ascii_lowercase();
    let message = if has_io_kind(error, std::io::ErrorKind::ConnectionRefused) || lower.contains("connection refused") {
        format!("could not connect to {host}: connection refused — is Ollama running? (`ollama serve`)")
    } else if chain_mentions(error, "dns error") || chain_mentions(error, "failed to lookup address") {
        format!("could not connect to {host}: the host name could not be resolved ({cause}) — check OLLAMA_HOST")
    } else {
        format!("could not connect to {host}: {cause} — is Ollama running? (`ollama serve`) Is OLLAMA_HOST right?")
    };
    ctx.error(LlmErrorKind::Network, message)
}

fn root_cause(error: &reqwest::Error) -> String {
    let mut current: &dyn StdError = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn has_io_kind(error: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
    let mut source = error.source();
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == kind) {
            return true;
        }
        source = e.source();
    }
    false
}

fn chain_mentions(error: &reqwest::Error, needle: &str) -> bool {
    let mut source = error.source();
    while let Some(e) = source {
        if e.to_string().to_ascii_lowercase().contains(needle) {
            return true;
        }
        source = e.source();
    }
    false
}

// ------------------------------------------------------------------ response

/// Splits an NDJSON body into lines as bytes come off the network: a line,
/// or a multi-byte character, may be split across any number of chunks.
/// Lines end in `\n` or `\r\n`; blank lines are skipped; a byte-order mark
/// before the first line is dropped.
#[derive(Debug, Default)]
struct LineSplitter {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no line end.
    scanned: usize,
    /// Whether a line has been handed out (the BOM can only come before).
    started: bool,
}

impl LineSplitter {
    /// Feeds bytes; pushes each completed, non-blank line to `out`.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut from = self.scanned;
        while let Some(pos) = self.buf[from..].iter().position(|b| *b == b'\n') {
            let end = from + pos;
            push_line(&self.buf[start..end], &mut self.started, out);
            start = end + 1;
            from = start;
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
    }

    /// The body ended: an unterminated last line still counts.
    fn finish(&mut self, out: &mut Vec<String>) {
        push_line(&self.buf, &mut self.started, out);
        self.buf.clear();
        self.scanned = 0;
    }

    /// Bytes of the line not yet ended.
    fn pending(&self) -> &[u8] {
        &self.buf
    }
}

fn push_line(bytes: &[u8], started: &mut bool, out: &mut Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    let text = if *started { &text[..] } else { text.strip_prefix('\u{feff}').unwrap_or(&text) };
    let line = text.trim();
    if line.is_empty() {
        return;
    }
    *started = true;
    out.push(line.to_string());
}

/// Turns the lines of a streamed `/api/chat` answer into [`LlmChunk`]s.
#[derive(Debug)]
struct ChatDecoder {
    ctx: ErrorContext,
    calls: Vec<ToolCall>,
    /// JSON lines seen.
    lines: usize,
    /// The `done` line arrived and the final chunks were produced.
    done: bool,
}

impl ChatDecoder {
    fn new(ctx: ErrorContext) -> Self {
        ChatDecoder { ctx, calls: Vec::new(), lines: 0, done: false }
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// Handles one line. Text is pushed to `out` at once; after the `done`
    /// line the tool calls, the usage and the finish reason are pushed and
    /// [`Self::is_done`] turns true. Lines after that are ignored.
    fn on_line(&mut self, line: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let p = &self.ctx.provider;
        let value: Value = serde_json::from_str(line).map_err(|_| {
            let what = if self.lines == 0 { "answered with something that is not" } else { "sent a line that is not" };
            self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!("{p} {what} JSON: {}", preview(line, STREAM_PREVIEW_CHARS)),
            )
        })?;
        let Value::Object(object) = &value else {
            return Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!("{p} sent a line that is not a JSON object: {}", preview(line, STREAM_PREVIEW_CHARS)),
            ));
        };
        if let Some(error) = object.get("error").filter(|e| !e.is_null()) {
            return Err(stream_failure(&self.ctx, error));
        }
        let message = object.get("message").filter(|m| m.is_object());
        let done = object.get("done").and_then(Value::as_bool);
        if self.lines == 0 && message.is_none() && done.is_none() {
            // Some other JSON API answered (e.g. an OpenAI-style server).
            return Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!(
                    "{p} answered with JSON that is not an Ollama chat response: {}",
                    preview(line, STREAM_PREVIEW_CHARS)
                ),
            ));
        }
        self.lines += 1;
        if let Some(message) = message {
            if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(LlmChunk::Text(text.to_string()));
            }
            for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                self.add_call(call);
            }
        }
        if done == Some(true) {
            self.finish(object, out);
        }
        Ok(())
    }

    /// The body ended. Fine after the `done` line; a stream cut before it.
    fn on_eof(&self) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let p = &self.ctx.provider;
        let how = if self.lines == 0 { "without sending anything" } else { "without its final \"done\" line" };
        Err(self.ctx.error(
            LlmErrorKind::Network,
            format!("stream ended before the model finished: {p} closed the stream {how}"),
        ))
    }

    /// One whole tool call: `{"function":{"name","arguments":{…}}}`, maybe
    /// with an `index` (in the call or its function) and an `id`.
    fn add_call(&mut self, call: &Value) {
        let function = call.get("function").filter(|f| f.is_object()).unwrap_or(call);
        let name = function.get("name").and_then(Value::as_str).unwrap_or("").trim().to_string();
        let arguments = match function.get("arguments") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(s)) if s.trim().is_empty() => "{}".to_string(),
            // A few compatible servers send the arguments as JSON text.
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if name.is_empty() {
            tracing::debug!(call = %preview(&call.to_string(), STREAM_PREVIEW_CHARS), "ignoring a tool call without a name");
            return;
        }
        let given = call.get("id").or_else(|| function.get("id")).and_then(Value::as_str).filter(|id| !id.is_empty());
        let id = self.unique_id(given);
        self.calls.push(ToolCall::new(id, name, arguments));
    }

    /// The call's own id, else `call_<n>` for the n-th call; either is made
    /// unique, since results are matched to calls by id.
    fn unique_id(&self, given: Option<&str>) -> String {
        let taken = |id: &str| self.calls.iter().any(|c| c.id == id);
        let n = self.calls.len();
        let base = match given {
            Some(id) if !taken(id) => return id.to_string(),
            Some(id) => id.to_string(),
            None => {
                let id = format!("call_{n}");
                if !taken(&id) {
                    return id;
                }
                id
            }
        };
        (n..).map(|k| format!("{base}_{k}")).find(|id| !taken(id)).unwrap_or(base)
    }

    /// The `done` line: pushes the tool calls, the usage and the finish
    /// reason.
    fn finish(&mut self, object: &Map<String, Value>, out: &mut Vec<LlmChunk>) {
        self.done = true;
        let has_calls = !self.calls.is_empty();
        out.extend(self.calls.drain(..).map(LlmChunk::ToolCall));
        let count = |key: &str| object.get(key).and_then(Value::as_u64);
        let (prompt, completion) = (count("prompt_eval_count"), count("eval_count"));
        if prompt.is_some() || completion.is_some() {
            out.push(LlmChunk::Usage(Usage::new(prompt.unwrap_or(0), completion.unwrap_or(0))));
        }
        let reason = object.get("done_reason").and_then(Value::as_str);
        out.push(LlmChunk::Finish(finish_reason(reason, has_calls)));
    }
}

/// Ollama's `done_reason`: `stop`, `length`, `load` (an empty chat that only
/// loaded the model), `unload`. It says `stop` after tool calls.
fn finish_reason(done_reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match done_reason {
        _ if has_tool_calls => FinishReason::ToolCalls,
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

/// Reads a streamed answer: bytes → lines → chunks.
struct Reader {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    lines: LineSplitter,
    decoder: ChatDecoder,
    ctx: ErrorContext,
    /// Chunks ready to hand out.
    pending: VecDeque<LlmChunk>,
    /// An error to hand out once `pending` is empty.
    error: Option<LlmError>,
    ended: bool,
    log: CallLog,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<LlmChunk, LlmError>> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                self.log.saw(&chunk);
                return Some(Ok(chunk));
            }
            if let Some(error) = self.error.take() {
                self.ended = true;
                self.log.failed(&error);
                return Some(Err(error));
            }
            if self.ended {
                self.log.succeeded();
                return None;
            }
            self.pull().await;
        }
    }

    /// Reads one network chunk and turns it into chunks or an error.
    async fn pull(&mut self) {
        let mut out = Vec::new();
        let mut lines = Vec::new();
        let result = match self.body.next().await {
            Some(Ok(bytes)) => {
                self.lines.feed(&bytes, &mut lines);
                self.handle(&lines, &mut out).and_then(|()| self.check_line_length())
            }
            Some(Err(e)) => {
                // Ollama ends every line with a newline; a last line that is
                // whole JSON without one still counts.
                if serde_json::from_slice::<serde::de::IgnoredAny>(self.lines.pending()).is_ok() {
                    self.lines.finish(&mut lines);
                }
                self.handle(&lines, &mut out).and_then(|()| {
                    if self.decoder.is_done() {
                        tracing::debug!("the stream broke after the done line; accepting the answer");
                        Ok(())
                    } else {
                        Err(self.ctx.transport_error(&e, Phase::Body))
                    }
                })
            }
            None => {
                self.lines.finish(&mut lines);
                self.handle(&lines, &mut out).and_then(|()| self.decoder.on_eof())
            }
        };
        self.pending.extend(out);
        match result {
            Ok(()) => self.ended = self.decoder.is_done(),
            Err(error) => self.error = Some(error),
        }
    }

    fn handle(&mut self, lines: &[String], out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        for line in lines {
            self.decoder.on_line(line, out)?;
            if self.decoder.is_done() {
                break;
            }
        }
        Ok(())
    }

    fn check_line_length(&self) -> Result<(), LlmError> {
        let pending = self.lines.pending();
        if self.decoder.is_done() || pending.len() <= MAX_LINE_BYTES {
            return Ok(());
        }
        let start = String::from_utf8_lossy(&pending[..pending.len().min(4 * STREAM_PREVIEW_CHARS)]).into_owned();
        Err(self.ctx.error(
            LlmErrorKind::InvalidResponse,
            format!(
                "{} sent more than {} MiB without a line break, which is not Ollama's stream: {}",
                self.ctx.provider,
                MAX_LINE_BYTES / (1024 * 1024),
                preview(&start, STREAM_PREVIEW_CHARS)
            ),
        ))
    }
}

#[cfg(test)]
mod tests;
