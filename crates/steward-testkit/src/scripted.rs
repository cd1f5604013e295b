//! The scripted OpenAI-compatible server.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The only model `GET /v1/models` lists, and the model named in answers to
/// requests that do not name one.
pub const MODEL_ID: &str = "scripted";

/// The start of the error message returned when a request arrives and there
/// is neither a scripted reply left nor a default.
pub const EXHAUSTED_MESSAGE: &str = "scripted LLM: script exhausted";

/// How long a [`Reply::CutStream`] waits after its last chunk before it
/// drops the connection, so the chunks reach the client first.
const CUT_PAUSE: Duration = Duration::from_millis(30);

/// One scripted answer to a chat-completions request.
///
/// Serialised with a `type` tag, so the admin API accepts e.g.
/// `{"type":"text","content":"hi"}` or
/// `{"type":"tool_calls","calls":[{"name":"get_current_time","arguments":"{}"}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// A plain answer. Streamed as (up to) three content deltas.
    Text { content: String },
    /// Tool calls, optionally after some text. Streamed OpenAI-style: each
    /// call's first fragment carries its id, type and name, later fragments
    /// only pieces of the arguments.
    ToolCalls {
        calls: Vec<ScriptedCall>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
    },
    /// An HTTP error with this status and JSON body (e.g. 429 with
    /// `{"error":{...}}`), with a `Retry-After` header when `retry_after` is set.
    Error {
        status: u16,
        #[serde(default)]
        body: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Waits `ms` milliseconds, then answers with `then`.
    Delay { ms: u64, then: Box<Reply> },
    /// Streaming: sends the role chunk and then `content` split into
    /// `after_chunks` content chunks, then drops the connection without a
    /// `finish_reason` or `[DONE]`. Non-streaming: HTTP 500.
    CutStream { content: String, after_chunks: usize },
    /// HTTP 200 with this body, which should be neither JSON nor SSE.
    Garbage { body: String },
    /// Streaming: the start of an answer, `content` (may be empty), then an
    /// error inside the stream with this body, in the wire format's own way
    /// (OpenAI: a `data:` frame holding the error object; Anthropic:
    /// `event: error`; Ollama: a line with `error`; Gemini: an error object).
    /// Non-streaming: HTTP 500 with the body.
    StreamError { content: String, error: Value },
}

/// A tool call in a [`Reply::ToolCalls`]. Without an id the server makes one
/// up (`call_<request number>_<position>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// The raw JSON text of the arguments; `{}` when omitted.
    #[serde(default = "empty_object")]
    pub arguments: String,
}

fn empty_object() -> String {
    "{}".to_string()
}

impl ScriptedCall {
    pub fn new(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        ScriptedCall { id: None, name: name.into(), arguments: arguments.into() }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

impl Reply {
    pub fn text(content: impl Into<String>) -> Self {
        Reply::Text { content: content.into() }
    }

    /// One tool call and no text.
    pub fn tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Reply::ToolCalls { calls: vec![ScriptedCall::new(name, arguments)], content: None }
    }

    pub fn tool_calls(calls: Vec<ScriptedCall>) -> Self {
        Reply::ToolCalls { calls, content: None }
    }

    /// An error with OpenAI's body shape:
    /// `{"error":{"message","type","param":null,"code"}}`.
    pub fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Self {
        Reply::Error { status, body: error_body(message, kind, code), retry_after: None }
    }

    /// HTTP 429 `rate_limit_exceeded` with a `Retry-After` header.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Reply::Error {
            status: 429,
            body: error_body("Rate limit reached (scripted)", "requests", Some("rate_limit_exceeded")),
            retry_after: Some(retry_after_secs),
        }
    }

    pub fn delay(ms: u64, then: Reply) -> Self {
        Reply::Delay { ms, then: Box::new(then) }
    }
}

/// One request the server received (admin requests are not recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, with the query string if there was one.
    pub path: String,
    /// Header names in lower case; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON; `null` when empty, a JSON string when not JSON.
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    default: Option<Reply>,
    requests: Vec<RecordedRequest>,
    /// Chat-completion requests answered so far; numbers ids.
    served: u64,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Script>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Script> {
        // A panic while holding the lock cannot leave the script half-updated
        // in a way that matters to tests, so a poisoned lock is still used.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running scripted server. Dropping it stops accepting connections.
pub struct ScriptedLlm {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ScriptedLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedLlm").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedLlm {
    /// Starts on `127.0.0.1` at a free port.
    pub async fn start() -> io::Result<ScriptedLlm> {
        ScriptedLlm::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: SocketAddr) -> io::Result<ScriptedLlm> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::default();
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            use axum::serve::ListenerExt;
            // Without TCP_NODELAY each small SSE frame may wait for a delayed ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("scripted LLM server stopped: {e}");
            }
        });
        Ok(ScriptedLlm { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The server's root, `http://127.0.0.1:PORT`: the base URL for wire
    /// formats whose clients append the whole path (Anthropic, Ollama, Gemini).
    pub fn host_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: Reply) {
        self.shared.lock().replies.push_back(reply);
    }

    /// Appends several replies, in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().replies.extend(replies);
    }

    /// The reply used whenever the script is empty; `None` makes an empty
    /// script answer HTTP 500 ("script exhausted").
    pub fn set_default(&self, reply: Option<Reply>) {
        self.shared.lock().default = reply;
    }

    /// Replies still queued.
    pub fn remaining(&self) -> usize {
        self.shared.lock().replies.len()
    }

    /// Every non-admin request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The recorded `POST /v1/chat/completions` bodies, oldest first.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.path.starts_with("/v1/chat/completions"))
            .map(|r| r.body.clone())
            .collect()
    }

    /// Clears the script, the default and the recorded requests (what
    /// `POST /_reset` does).
    pub fn clear(&self) {
        let mut script = self.shared.lock();
        script.replies.clear();
        script.default = None;
        script.requests.clear();
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(anthropic_messages))
        .route("/api/chat", post(ollama_chat))
        .route("/v1beta/models/{spec}", post(gemini_generate))
        .route("/v1/models", get(models))
        .route("/_script", post(admin_script))
        .route("/_default", post(admin_default))
        .route("/_requests", get(admin_requests))
        .route("/_reset", post(admin_reset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

// ------------------------------------------------------------------ OpenAI side

fn record(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Option<Value> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let recorded_body = match &parsed {
        Some(v) => v.clone(),
        None if body.is_empty() => Value::Null,
        None => Value::String(String::from_utf8_lossy(body).into_owned()),
    };
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| uri.path().to_string());
    shared.lock().requests.push(RecordedRequest {
        method: method.to_string(),
        path,
        headers: map,
        body: recorded_body,
    });
    parsed
}

async fn models(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    record(&shared, &method, &uri, &headers, &Bytes::new());
    axum::Json(json!({
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "steward-testkit"}]
    }))
    .into_response()
}

async fn not_found(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, &method, &uri, &headers, &body);
    let message = format!("scripted LLM: no route for {method} {}", uri.path());
    json_response(StatusCode::NOT_FOUND, &error_body(&message, "invalid_request_error", Some("unknown_url")))
}

async fn chat_completions(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&shared, &method, &uri, &headers, &body, Wire::OpenAi).await
}

async fn anthropic_messages(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&shared, &method, &uri, &headers, &body, Wire::Anthropic).await
}

async fn ollama_chat(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&shared, &method, &uri, &headers, &body, Wire::Ollama).await
}

async fn gemini_generate(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&shared, &method, &uri, &headers, &body, Wire::Gemini).await
}

/// The wire formats the server speaks; all answer from the same script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
    Ollama,
    Gemini,
}

async fn answer(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    wire: Wire,
) -> Response {
    let Some(request) = record(shared, method, uri, headers, body) else {
        let message = "scripted LLM: the request body is not JSON";
        return json_response(StatusCode::BAD_REQUEST, &error_body(message, "invalid_request_error", None));
    };
    let (reply, seq) = {
        let mut script = shared.lock();
        script.served += 1;
        let reply = script.replies.pop_front().or_else(|| script.default.clone());
        (reply, script.served)
    };
    let Some(reply) = reply else {
        let message =
            format!("{EXHAUSTED_MESSAGE}: request {seq} arrived but no scripted reply is left and no default is set");
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &error_body(&message, "server_error", Some("script_exhausted")),
        );
    };
    let mut reply = reply;
    while let Reply::Delay { ms, then } = reply {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        reply = *then;
    }
    let req = WireRequest { body: &request, seq, path: uri.path() };
    match wire {
        Wire::OpenAi => Answer::new(&request, seq).respond(reply),
        Wire::Anthropic => crate::wire::anthropic::respond(&req, reply),
        Wire::Ollama => crate::wire::ollama::respond(&req, reply),
        Wire::Gemini => crate::wire::gemini::respond(&req, reply),
    }
}

/// A request as the wire formats other than OpenAI's see it.
pub(crate) struct WireRequest<'a> {
    /// The JSON body.
    pub body: &'a Value,
    /// The number of this chat request since the server started, from 1;
    /// used to make ids unique.
    pub seq: u64,
    /// The request path (Gemini names the model and the method in it).
    pub path: &'a str,
}

/// Answers with an HTTP error: `status` and the JSON `body` as given, with a
/// `Retry-After` header when asked. Shared by every wire format.
pub(crate) fn error_reply(status: u16, body: &Value, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, body);
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// A streamed body of `frames` that then breaks off: the connection drops
/// after a short pause, without the format's proper ending.
pub(crate) fn cut_body(frames: Vec<Bytes>) -> Body {
    let head = futures::stream::iter(frames.into_iter().map(Ok::<Bytes, io::Error>));
    let cut = futures::stream::once(async {
        tokio::time::sleep(CUT_PAUSE).await;
        Err(io::Error::new(io::ErrorKind::ConnectionAborted, "scripted LLM: stream cut"))
    });
    Body::from_stream(head.chain(cut))
}

/// A streamed body of `frames` that ends normally.
pub(crate) fn frames_body(frames: Vec<Bytes>) -> Body {
    Body::from_stream(futures::stream::iter(frames.into_iter().map(Ok::<Bytes, io::Error>)))
}

/// 200 with `body` and the content type a stream or a JSON reply would have.
pub(crate) fn garbage_reply(body: String, streaming_content_type: Option<&'static str>) -> Response {
    let content_type = streaming_content_type.unwrap_or("application/json");
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// What an answer needs to know about its request.
struct Answer {
    id: String,
    seq: u64,
    created: i64,
    model: String,
    stream: bool,
    include_usage: bool,
    prompt_tokens: u64,
}

impl Answer {
    fn new(request: &Value, seq: u64) -> Self {
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let prompt_chars: usize =
            request["messages"].as_array().map(|ms| ms.iter().map(|m| content_chars(&m["content"])).sum()).unwrap_or(0);
        Answer {
            id: format!("chatcmpl-scripted-{seq}"),
            seq,
            created,
            model: request["model"].as_str().filter(|m| !m.is_empty()).unwrap_or(MODEL_ID).to_string(),
            stream: request["stream"].as_bool().unwrap_or(false),
            include_usage: request["stream_options"]["include_usage"].as_bool().unwrap_or(false),
            prompt_tokens: tokens(prompt_chars),
        }
    }

    fn respond(&self, reply: Reply) -> Response {
        match reply {
            Reply::Text { content } => self.completion(Some(&content), &[]),
            Reply::ToolCalls { calls, content } => self.completion(content.as_deref(), &calls),
            Reply::Error { status, body, retry_after } => error_reply(status, &body, retry_after),
            Reply::CutStream { content, after_chunks } => {
                if !self.stream {
                    let message =
                        "scripted LLM: the stream was cut (CutStream answers non-streaming requests with 500)";
                    return json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &error_body(message, "server_error", None),
                    );
                }
                let mut frames = vec![self.frame(json!({"role": "assistant", "content": "", "refusal": null}), None)];
                for piece in split_pieces(&content, after_chunks) {
                    frames.push(self.frame(json!({"content": piece}), None));
                }
                sse_response(cut_body(frames))
            }
            Reply::StreamError { content, error } => {
                if !self.stream {
                    return json_response(StatusCode::INTERNAL_SERVER_ERROR, &error);
                }
                let mut frames = vec![self.frame(json!({"role": "assistant", "content": "", "refusal": null}), None)];
                for piece in split_pieces(&content, 2) {
                    frames.push(self.frame(json!({"content": piece}), None));
                }
                frames.push(sse_frame(&error));
                sse_response(frames_body(frames))
            }
            Reply::Garbage { body } => garbage_reply(body, self.stream.then_some("text/event-stream")),
            // Unwrapped by the caller; answering it again is harmless.
            Reply::Delay { then, .. } => self.respond(*then),
        }
    }

    fn usage(&self, content: Option<&str>, calls: &[ScriptedCall]) -> Value {
        let chars = content.map(|c| c.chars().count()).unwrap_or(0)
            + calls.iter().map(|c| c.name.chars().count() + c.arguments.chars().count()).sum::<usize>();
        let completion = tokens(chars);
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        })
    }

    fn call_id(&self, index: usize, call: &ScriptedCall) -> String {
        call.id.clone().unwrap_or_else(|| format!("call_{}_{index}", self.seq))
    }

    fn completion(&self, content: Option<&str>, calls: &[ScriptedCall]) -> Response {
        let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
        if !self.stream {
            let mut message = json!({"role": "assistant", "content": content, "refusal": null});
            if !calls.is_empty() {
                message["tool_calls"] = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        json!({
                            "id": self.call_id(i, c),
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        })
                    })
                    .collect();
            }
            let body = json!({
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                "usage": self.usage(content, calls),
                "system_fingerprint": null,
            });
            return json_response(StatusCode::OK, &body);
        }

        let mut frames = Vec::new();
        let text = content.filter(|c| !c.is_empty());
        let mut role_sent = false;
        if text.is_some() || calls.is_empty() {
            frames.push(self.frame(json!({"role": "assistant", "content": "", "refusal": null}), None));
            role_sent = true;
        }
        for piece in text.map(|t| split_pieces(t, 3)).unwrap_or_default() {
            frames.push(self.frame(json!({"content": piece}), None));
        }
        for (i, call) in calls.iter().enumerate() {
            let first = json!({
                "index": i,
                "id": self.call_id(i, call),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            });
            let delta = if role_sent {
                json!({"tool_calls": [first]})
            } else {
                role_sent = true;
                json!({"role": "assistant", "content": null, "tool_calls": [first], "refusal": null})
            };
            frames.push(self.frame(delta, None));
            for piece in split_pieces(&call.arguments, 3) {
                frames.push(self.frame(json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}), None));
            }
        }
        frames.push(self.frame(json!({}), Some(finish)));
        if self.include_usage {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": null,
                "choices": [],
                "usage": self.usage(content, calls),
            });
            frames.push(sse_frame(&chunk));
        }
        frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
        sse_response(frames_body(frames))
    }

    /// One `chat.completion.chunk` frame with a single choice.
    fn frame(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        sse_frame(&chunk)
    }
}

/// Characters of a message's content: a string, or the text of its parts.
pub(crate) fn content_chars(content: &Value) -> usize {
    match content {
        Value::String(s) => s.chars().count(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).map(|t| t.chars().count()).sum(),
        _ => 0,
    }
}

/// The scripted token count of `chars` characters: a quarter, at least 1.
pub(crate) fn tokens(chars: usize) -> u64 {
    (chars as u64 / 4).max(1)
}

/// Splits `s` into at most `n` non-empty pieces of nearly equal length, on
/// character boundaries.
pub(crate) fn split_pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let n = n.min(chars.len());
    if n == 0 {
        return Vec::new();
    }
    let (base, extra) = (chars.len() / n, chars.len() % n);
    let mut pieces = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        pieces.push(chars[start..start + len].iter().collect());
        start += len;
    }
    pieces
}

fn sse_frame(chunk: &Value) -> Bytes {
    Bytes::from(format!("data: {chunk}\n\n"))
}

pub(crate) fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body.clone())).into_response()
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

// ------------------------------------------------------------------ admin side

/// `POST /_script` accepts an array of replies or a single one.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Reply>),
    One(Box<Reply>),
}

fn bad_admin_request(what: &str, e: &serde_json::Error) -> Response {
    let message = format!("scripted LLM: {what}: {e}");
    json_response(StatusCode::BAD_REQUEST, &error_body(&message, "invalid_request_error", None))
}

async fn admin_script(State(shared): State<Shared>, body: Bytes) -> Response {
    let replies = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::Many(replies)) => replies,
        Ok(OneOrMany::One(reply)) => vec![*reply],
        Err(e) => return bad_admin_request("POST /_script expects a JSON array of replies", &e),
    };
    let mut script = shared.lock();
    let added = replies.len();
    script.replies.extend(replies);
    json_response(StatusCode::OK, &json!({"added": added, "queued": script.replies.len()}))
}

async fn admin_default(State(shared): State<Shared>, body: Bytes) -> Response {
    let reply = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Option<Reply>>(&body) {
            Ok(reply) => reply,
            Err(e) => return bad_admin_request("POST /_default expects a reply or null", &e),
        }
    };
    let set = reply.is_some();
    shared.lock().default = reply;
    json_response(StatusCode::OK, &json!({"default": set}))
}

async fn admin_requests(State(shared): State<Shared>) -> Response {
    let requests = shared.lock().requests.clone();
    json_response(StatusCode::OK, &serde_json::to_value(requests).unwrap_or(Value::Null))
}

async fn admin_reset(State(shared): State<Shared>) -> Response {
    let mut script = shared.lock();
    script.replies.clear();
    script.default = None;
    script.requests.clear();
    json_response(StatusCode::OK, &json!({"reset": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_on_char_boundaries() {
        assert_eq!(split_pieces("héllo wörld", 3).concat(), "héllo wörld");
        assert_eq!(split_pieces("héllo wörld", 3).len(), 3);
        assert_eq!(split_pieces("{}", 3), vec!["{", "}"]);
        assert!(split_pieces("", 3).is_empty());
        assert!(split_pieces("abc", 0).is_empty());
    }

    #[test]
    fn replies_use_a_snake_case_type_tag() {
        let json = r#"[{"type":"text","content":"hi"},
            {"type":"tool_calls","calls":[{"name":"f"}]},
            {"type":"error","status":429,"body":{"error":{"message":"slow down"}},"retry_after":2},
            {"type":"delay","ms":5,"then":{"type":"garbage","body":"<html>"}},
            {"type":"cut_stream","content":"abc","after_chunks":2}]"#;
        let replies: Vec<Reply> = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(replies[0], Reply::text("hi"));
        assert_eq!(replies[1], Reply::tool_call("f", "{}"));
        assert!(matches!(replies[2], Reply::Error { status: 429, retry_after: Some(2), .. }));
        assert!(matches!(&replies[3], Reply::Delay { ms: 5, then } if matches!(**then, Reply::Garbage { .. })));
        let round_trip = serde_json::to_value(&replies[4]).unwrap_or_default();
        assert_eq!(round_trip["type"], "cut_stream");
    }

    #[test]
    fn token_counts_are_a_quarter_of_the_characters() {
        assert_eq!(tokens(0), 1);
        assert_eq!(tokens(7), 1);
        assert_eq!(tokens(40), 10);
        let request = json!({"messages": [{"role": "user", "content": "12345678"}, {"role": "user", "content": [{"type": "text", "text": "abcd"}]}]});
        assert_eq!(Answer::new(&request, 1).prompt_tokens, 3);
    }
}
