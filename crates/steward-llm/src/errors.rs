//! Turning what went wrong on the wire into [`LlmError`]s people can act on.

use std::error::Error as StdError;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use steward_core::{LlmError, LlmErrorKind};

/// How much of a body an error message quotes, in characters.
pub(crate) const BODY_PREVIEW_CHARS: usize = 300;
/// How much of an unparseable stream an error message quotes, in characters.
pub(crate) const STREAM_PREVIEW_CHARS: usize = 200;

/// Keys shorter than this are placeholders, not secrets worth scrubbing.
const MIN_SCRUBBED_KEY_LEN: usize = 8;

/// What an error message needs to know about the call that failed.
#[derive(Clone)]
pub(crate) struct ErrorContext {
    /// The provider's name, e.g. `openai`.
    pub provider: String,
    pub model: String,
    /// The base URL with any user info removed.
    pub base_url: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Whether an API key is configured (never the key itself).
    pub has_key: bool,
    /// The key, only to scrub it from messages; never printed.
    secret: Option<String>,
}

impl std::fmt::Debug for ErrorContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorContext")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("has_key", &self.has_key)
            .finish_non_exhaustive()
    }
}

/// Which part of a call a transport error interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting, sending, or waiting for the response head.
    Request,
    /// Reading the streamed body.
    Body,
}

impl ErrorContext {
    pub fn new(
        provider: &str,
        model: &str,
        base_url: &str,
        api_key: Option<&str>,
        request_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        ErrorContext {
            provider: provider.to_string(),
            model: model.to_string(),
            base_url: redact_url(base_url),
            request_timeout,
            connect_timeout,
            has_key: api_key.is_some_and(|k| !k.is_empty()),
            // Placeholder keys such as `ollama` are not secrets, and scrubbing
            // them would garble messages that name the provider.
            secret: api_key.filter(|k| k.len() >= MIN_SCRUBBED_KEY_LEN).map(str::to_string),
        }
    }

    /// An error of this provider. The message is scrubbed of the API key, in
    /// case a server or a library echoed it back.
    pub fn error(&self, kind: LlmErrorKind, message: impl Into<String>) -> LlmError {
        let mut message = message.into();
        if let Some(secret) = &self.secret {
            if message.contains(secret.as_str()) {
                message = message.replace(secret.as_str(), "[redacted]");
            }
        }
        LlmError::new(self.provider.clone(), kind, message)
    }

    /// The error for a non-success HTTP status.
    pub fn http_error(&self, status: u16, retry_after: Option<Duration>, body: &[u8]) -> LlmError {
        let p = &self.provider;
        let body_text = String::from_utf8_lossy(body);
        let detail = ErrorDetail::parse(&body_text);
        let described = detail.as_ref().map(ErrorDetail::describe).unwrap_or_else(|| quote_body(&body_text));
        let code = detail.as_ref().and_then(|d| d.code.as_deref()).unwrap_or("");
        let kind_str = detail.as_ref().and_then(|d| d.kind.as_deref()).unwrap_or("");
        let message_text = detail.as_ref().and_then(|d| d.message.as_deref()).unwrap_or(&body_text);
        let is = |needle: &str| code == needle || kind_str == needle;

        match status {
            401 | 403 => {
                let what = if status == 401 { "rejected the API key" } else { "denied access" };
                let hint = if self.has_key {
                    "check the API key and what it may access"
                } else {
                    "no API key is configured for this provider; set one"
                };
                self.error(LlmErrorKind::Authentication, format!("{p} {what} (HTTP {status}): {described} — {hint}"))
            }
            429 if is("insufficient_quota") => self.error(
                LlmErrorKind::RateLimited { retry_after },
                format!(
                    "{p} says the quota is exhausted (HTTP 429, insufficient_quota): {described} — \
                     check the account's plan and billing"
                ),
            ),
            429 => {
                let wait = retry_after.map(|d| format!("; retry after {}", human_duration(d))).unwrap_or_default();
                self.error(
                    LlmErrorKind::RateLimited { retry_after },
                    format!("{p} is rate limiting requests (HTTP 429): {described}{wait}"),
                )
            }
            404 => {
                let hint = if p == "ollama" {
                    format!(" — run `ollama pull {}` or check the model name", self.model)
                } else {
                    " — check the model name, and that the base URL ends in /v1".to_string()
                };
                self.error(
                    LlmErrorKind::ModelNotFound,
                    format!(
                        "model '{}' was not found by {p} at {} (HTTP 404): {described}{hint}",
                        self.model, self.base_url
                    ),
                )
            }
            400..=499 if is("context_length_exceeded") || mentions_context_length(message_text) => self.error(
                LlmErrorKind::ContextLengthExceeded,
                format!("the conversation is too long for model '{}' at {p} (HTTP {status}): {described}", self.model),
            ),
            400..=499 if is("content_policy_violation") || is("content_filter") => self.error(
                LlmErrorKind::ContentPolicy,
                format!("{p} refused the request under its content policy (HTTP {status}): {described}"),
            ),
            400..=499 => self.error(
                LlmErrorKind::BadRequest,
                format!("{p} rejected the request as invalid (HTTP {status}): {described}"),
            ),
            503 | 529 => self.error(
                LlmErrorKind::Overloaded,
                format!("{p} is overloaded (HTTP {status}): {described} — try again shortly"),
            ),
            500..=599 => self
                .error(LlmErrorKind::Server { status }, format!("{p} had a server error (HTTP {status}): {described}")),
            _ => self.error(
                LlmErrorKind::InvalidResponse,
                format!("{p} answered with unexpected HTTP status {status}: {described}"),
            ),
        }
    }

    /// The error for an `"error"` object inside an otherwise successful
    /// (HTTP 200) answer, e.g. a stream that fails half-way.
    pub fn embedded_error(&self, value: &Value) -> LlmError {
        let p = &self.provider;
        let detail = ErrorDetail::from_value(value).unwrap_or_default();
        let described = detail.describe();
        if let Some(status) = detail.status.filter(|s| (400..=599).contains(s)) {
            let mut error = self.http_error(status, None, value.to_string().as_bytes());
            error.message = format!("{p} reported an error in its answer: {}", error.message);
            return self.error(error.kind, error.message);
        }
        let code = detail.code.as_deref().unwrap_or("");
        let kind_str = detail.kind.as_deref().unwrap_or("");
        let is = |needles: &[&str]| needles.iter().any(|n| code == *n || kind_str == *n);
        let message_text = detail.message.as_deref().unwrap_or("");
        let kind = if is(&["rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "requests", "tokens"]) {
            LlmErrorKind::RateLimited { retry_after: None }
        } else if is(&["context_length_exceeded"]) || mentions_context_length(message_text) {
            LlmErrorKind::ContextLengthExceeded
        } else if is(&["content_policy_violation", "content_filter"]) {
            LlmErrorKind::ContentPolicy
        } else if is(&["overloaded", "overloaded_error", "server_overloaded"]) {
            LlmErrorKind::Overloaded
        } else if is(&["authentication_error", "invalid_api_key"]) {
            LlmErrorKind::Authentication
        } else if is(&["model_not_found"]) {
            LlmErrorKind::ModelNotFound
        } else if is(&["invalid_request_error"]) {
            LlmErrorKind::BadRequest
        } else {
            LlmErrorKind::Server { status: 500 }
        };
        self.error(kind, format!("{p} reported an error in its answer: {described}"))
    }

    /// The error for a failure below HTTP: connecting, timing out, or the
    /// connection breaking.
    pub fn transport_error(&self, error: &reqwest::Error, phase: Phase) -> LlmError {
        let p = &self.provider;
        let url = &self.base_url;
        let cause = root_cause(error);
        if error.is_timeout() {
            if error.is_connect() {
                return self.error(
                    LlmErrorKind::Timeout,
                    format!(
                        "could not connect to {url} within {} (the connect timeout) — is the server reachable?",
                        human_duration(self.connect_timeout)
                    ),
                );
            }
            let when = match phase {
                Phase::Request => "did not answer",
                Phase::Body => "did not finish answering",
            };
            return self.error(
                LlmErrorKind::Timeout,
                format!("{p} {when} within {} (the request timeout) at {url}", human_duration(self.request_timeout)),
            );
        }
        if error.is_connect() {
            let (what, hint) = if chain_has_io_kind(error, std::io::ErrorKind::ConnectionRefused)
                || cause.to_ascii_lowercase().contains("connection refused")
            {
                ("connection refused".to_string(), "is the server running?")
            } else if chain_mentions(error, "dns error") || chain_mentions(error, "failed to lookup address") {
                (format!("the host name could not be resolved ({cause})"), "check the base URL")
            } else {
                (cause, "is the server running and reachable?")
            };
            return self.error(LlmErrorKind::Network, format!("could not connect to {url}: {what} — {hint}"));
        }
        match phase {
            Phase::Body => self.error(
                LlmErrorKind::Network,
                format!("stream ended before the model finished: the connection to {p} broke ({cause})"),
            ),
            Phase::Request => self.error(LlmErrorKind::Network, format!("the request to {p} at {url} failed: {cause}")),
        }
    }
}

/// The fields of an OpenAI-style error body that matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorDetail {
    pub message: Option<String>,
    /// OpenAI's `type`.
    pub kind: Option<String>,
    pub code: Option<String>,
    /// A numeric status inside the body (vLLM and others put one in `code`).
    pub status: Option<u16>,
}

impl ErrorDetail {
    /// Reads `{"error":{"message","type","code"}}`, `{"error":"..."}`,
    /// `{"message":...}` (vLLM), `{"detail":...}` (FastAPI) and an array
    /// wrapping any of them (Gemini).
    pub fn parse(body: &str) -> Option<ErrorDetail> {
        let value: Value = serde_json::from_str(body.trim()).ok()?;
        ErrorDetail::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Option<ErrorDetail> {
        let value = match value {
            Value::Array(items) => items.first()?,
            other => other,
        };
        let object = match value.get("error") {
            Some(Value::String(message)) => {
                return Some(ErrorDetail { message: Some(message.clone()), ..ErrorDetail::default() })
            }
            Some(error @ Value::Object(_)) => error,
            _ if value.get("message").is_some() => value,
            _ => {
                let message = value.get("detail").map(|d| d.as_str().map(str::to_string).unwrap_or(d.to_string()))?;
                return Some(ErrorDetail { message: Some(message), ..ErrorDetail::default() });
            }
        };
        let text = |key: &str| match object.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let status = ["code", "status"]
            .iter()
            .find_map(|k| object.get(*k).and_then(Value::as_u64))
            .and_then(|n| u16::try_from(n).ok());
        Some(ErrorDetail { message: text("message"), kind: text("type"), code: text("code"), status })
    }

    pub fn describe(&self) -> String {
        let mut out = self.message.clone().unwrap_or_else(|| "no message in the error".to_string());
        let tags: Vec<String> = [("type", &self.kind), ("code", &self.code)]
            .iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}: {v}")))
            .collect();
        if !tags.is_empty() {
            out.push_str(&format!(" ({})", tags.join(", ")));
        }
        out
    }
}

/// A body that is not an error object, quoted for a message.
fn quote_body(body: &str) -> String {
    if body.trim().is_empty() {
        "the response body was empty".to_string()
    } else {
        format!("the response body was: {}", preview(body, BODY_PREVIEW_CHARS))
    }
}

fn mentions_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["context length", "context_length", "context window", "maximum context", "too many tokens", "prompt is too long"]
        .iter()
        .any(|needle| m.contains(needle))
}

/// `s` on one line, whitespace collapsed, cut at `max_chars` characters.
pub(crate) fn preview(s: &str, max_chars: usize) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

/// `Retry-After-Ms` (milliseconds) or `Retry-After` (seconds). The HTTP-date
/// form of `Retry-After` is not understood and gives `None`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    number("retry-after").map(Duration::from_secs_f64)
}

pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// `url` without `user:password@`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://***@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The innermost error's text: the lower layers say what actually happened
/// without repeating the URL.
fn root_cause(error: &reqwest::Error) -> String {
    let mut current: &dyn StdError = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn chain_has_io_kind(error: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn ctx() -> ErrorContext {
        ErrorContext::new(
            "openai",
            "gpt-test",
            "https://user:pw@api.example.com/v1",
            Some("sk-secret-123"),
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
    }

    fn openai_body(message: &str, kind: &str, code: &str) -> Vec<u8> {
        serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn statuses_map_to_kinds() {
        let c = ctx();
        let kind = |status: u16, body: &[u8]| c.http_error(status, None, body).kind;
        assert_eq!(kind(401, b""), LlmErrorKind::Authentication);
        assert_eq!(kind(403, b"nope"), LlmErrorKind::Authentication);
        assert_eq!(kind(404, b""), LlmErrorKind::ModelNotFound);
        assert_eq!(kind(422, b"{}"), LlmErrorKind::BadRequest);
        assert_eq!(kind(503, b""), LlmErrorKind::Overloaded);
        assert_eq!(kind(529, b""), LlmErrorKind::Overloaded);
        assert_eq!(kind(500, b""), LlmErrorKind::Server { status: 500 });
        assert_eq!(kind(502, b"<html>bad gateway</html>"), LlmErrorKind::Server { status: 502 });
        assert_eq!(
            kind(400, &openai_body("too long", "invalid_request_error", "context_length_exceeded")),
            LlmErrorKind::ContextLengthExceeded
        );
        assert_eq!(
            kind(400, br#"{"error":"This model's maximum context length is 8192 tokens"}"#),
            LlmErrorKind::ContextLengthExceeded
        );
        assert_eq!(
            kind(400, &openai_body("no", "invalid_request_error", "content_policy_violation")),
            LlmErrorKind::ContentPolicy
        );
        assert_eq!(kind(400, &openai_body("bad", "invalid_request_error", "x")), LlmErrorKind::BadRequest);
    }

    #[test]
    fn rate_limits_carry_the_wait_and_quota_is_named() {
        let c = ctx();
        let wait = Some(Duration::from_secs(7));
        let e = c.http_error(429, wait, &openai_body("Rate limit reached", "requests", "rate_limit_exceeded"));
        assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: wait });
        assert!(e.message.contains("retry after 7s"), "{}", e.message);
        let e = c.http_error(
            429,
            None,
            &openai_body("You exceeded your quota", "insufficient_quota", "insufficient_quota"),
        );
        assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: None });
        assert!(e.message.contains("quota is exhausted"), "{}", e.message);
    }

    #[test]
    fn messages_name_provider_model_and_url_but_never_the_key() {
        let c = ctx();
        let e = c.http_error(
            404,
            None,
            &openai_body("The model does not exist", "invalid_request_error", "model_not_found"),
        );
        assert!(e.message.contains("gpt-test") && e.message.contains("api.example.com/v1"), "{}", e.message);
        assert!(!e.message.contains("pw@"), "{}", e.message);
        assert!(e.message.contains("The model does not exist"), "{}", e.message);
        assert_eq!(e.provider, "openai");
        let e = c.http_error(401, None, b"{\"error\":{\"message\":\"Incorrect API key provided: sk-secret-123\"}}");
        assert!(!e.message.contains("sk-secret-123"), "{}", e.message);
        assert!(!format!("{c:?}").contains("sk-secret-123"));
    }

    #[test]
    fn placeholder_keys_are_not_scrubbed() {
        let c = ErrorContext::new(
            "ollama",
            "m",
            "http://h/v1",
            Some("ollama"),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let e = c.http_error(500, None, b"");
        assert!(e.message.starts_with("ollama had a server error"), "{}", e.message);
    }

    #[test]
    fn non_json_bodies_are_quoted_briefly() {
        let c = ctx();
        let body = "x".repeat(5000);
        let e = c.http_error(500, None, body.as_bytes());
        assert!(e.message.len() < 500, "{}", e.message);
        assert!(e.message.contains("xxxx"));
        let e = c.http_error(500, None, b"");
        assert!(e.message.contains("empty"), "{}", e.message);
    }

    #[test]
    fn error_bodies_of_many_servers_parse() {
        let d = ErrorDetail::parse(r#"{"object":"error","message":"bad model","type":"NotFoundError","code":404}"#);
        assert_eq!(d.as_ref().and_then(|d| d.status), Some(404));
        assert_eq!(d.and_then(|d| d.message).as_deref(), Some("bad model"));
        let d = ErrorDetail::parse(
            r#"[{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}]"#,
        );
        assert_eq!(d.and_then(|d| d.message).as_deref(), Some("Resource exhausted"));
        let d = ErrorDetail::parse(r#"{"detail":"Not Found"}"#);
        assert_eq!(d.and_then(|d| d.message).as_deref(), Some("Not Found"));
        assert_eq!(ErrorDetail::parse("<html>"), None);
    }

    #[test]
    fn embedded_errors_are_classified() {
        let c = ctx();
        let e = c.embedded_error(&serde_json::json!({"message": "boom", "type": "server_error"}));
        assert_eq!(e.kind, LlmErrorKind::Server { status: 500 });
        assert!(e.message.contains("boom"));
        let e = c.embedded_error(&serde_json::json!({"error": {"message": "slow", "code": "rate_limit_exceeded"}}));
        assert_eq!(e.kind, LlmErrorKind::RateLimited { retry_after: None });
        let e = c.embedded_error(&serde_json::json!({"error": {"message": "x", "code": 400}}));
        assert_eq!(e.kind, LlmErrorKind::BadRequest);
    }

    #[test]
    fn retry_after_headers_parse() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("12"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn urls_lose_their_user_info() {
        assert_eq!(redact_url("https://u:p@host:1/v1"), "https://***@host:1/v1");
        assert_eq!(redact_url("http://127.0.0.1:11434/v1"), "http://127.0.0.1:11434/v1");
        assert_eq!(redact_url("http://h/v1?x=a@b"), "http://h/v1?x=a@b");
    }

    #[test]
    fn previews_are_short_and_single_line() {
        assert_eq!(preview("a\n  b", 10), "a b");
        assert_eq!(preview(&"é".repeat(300), 200).chars().count(), 201);
    }
}
