//! The model interface. A provider implements one required call,
//! [`Llm::stream`]; [`Llm::complete`] is built on it.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use steward_protocol::{FinishReason, Message, ToolCall, Usage};

use crate::agent::Tier;

/// A tool as a model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// One call to a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmRequest {
    pub tier: Tier,
    /// A specific model, overriding the provider's choice for the tier. For
    /// the router: `provider/model` or a tier name.
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDefinition>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Who is asking (an agent id, or `gateway`), for the usage ledger.
    pub caller: Option<String>,
    /// The turn or request this call belongs to, for the usage ledger.
    pub trace_id: Option<String>,
}

/// What a provider streams back. Tool calls arrive whole: providers assemble
/// the fragments before yielding them.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmChunk {
    Text(String),
    ToolCall(ToolCall),
    Usage(Usage),
    Finish(FinishReason),
}

pub type LlmStream = Pin<Box<dyn Stream<Item = Result<LlmChunk, LlmError>> + Send>>;

/// The whole answer of a model call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish_reason: Option<FinishReason>,
}

#[async_trait]
pub trait Llm: Send + Sync + 'static {
    /// A short name for logs and errors, e.g. `openai` or `ollama`.
    fn name(&self) -> &str;

    /// Starts a streamed call. Errors before the first chunk are returned
    /// here; errors after it arrive in the stream.
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError>;

    async fn complete(&self, request: LlmRequest) -> Result<Completion, LlmError> {
        let mut stream = self.stream(request).await?;
        let mut out = Completion::default();
        while let Some(chunk) = stream.next().await {
            match chunk? {
                LlmChunk::Text(t) => out.text.push_str(&t),
                LlmChunk::ToolCall(c) => out.tool_calls.push(c),
                LlmChunk::Usage(u) => out.usage = u,
                LlmChunk::Finish(f) => out.finish_reason = Some(f),
            }
        }
        Ok(out)
    }
}

/// Why a model call failed. The kind drives retries and fallback; the
/// message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmErrorKind {
    /// No provider is configured at all.
    NotConfigured,
    Authentication,
    RateLimited {
        retry_after: Option<Duration>,
    },
    Overloaded,
    ContextLengthExceeded,
    ContentPolicy,
    /// The provider does not know the model.
    ModelNotFound,
    /// The provider rejected the request as malformed.
    BadRequest,
    Server {
        status: u16,
    },
    Network,
    Timeout,
    /// The provider answered with something that is not its wire format.
    InvalidResponse,
    /// A spending budget would be exceeded and no free deployment can serve.
    BudgetExceeded,
}

impl LlmErrorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            LlmErrorKind::NotConfigured => "not_configured",
            LlmErrorKind::Authentication => "authentication",
            LlmErrorKind::RateLimited { .. } => "rate_limited",
            LlmErrorKind::Overloaded => "overloaded",
            LlmErrorKind::ContextLengthExceeded => "context_length_exceeded",
            LlmErrorKind::ContentPolicy => "content_policy",
            LlmErrorKind::ModelNotFound => "model_not_found",
            LlmErrorKind::BadRequest => "bad_request",
            LlmErrorKind::Server { .. } => "server_error",
            LlmErrorKind::Network => "network",
            LlmErrorKind::Timeout => "timeout",
            LlmErrorKind::InvalidResponse => "invalid_response",
            LlmErrorKind::BudgetExceeded => "budget_exceeded",
        }
    }

    /// Whether trying again (here or on another deployment) may help.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmErrorKind::RateLimited { .. }
            | LlmErrorKind::Overloaded
            | LlmErrorKind::Server { .. }
            | LlmErrorKind::Network
            | LlmErrorKind::Timeout => true,
            LlmErrorKind::NotConfigured
            | LlmErrorKind::Authentication
            | LlmErrorKind::ContextLengthExceeded
            | LlmErrorKind::ContentPolicy
            | LlmErrorKind::ModelNotFound
            | LlmErrorKind::BadRequest
            | LlmErrorKind::InvalidResponse
            | LlmErrorKind::BudgetExceeded => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmError {
    pub provider: String,
    pub kind: LlmErrorKind,
    pub message: String,
}

impl LlmError {
    pub fn new(provider: impl Into<String>, kind: LlmErrorKind, message: impl Into<String>) -> Self {
        LlmError { provider: provider.into(), kind, message: message.into() }
    }
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LLM provider '{}' failed ({}): {}", self.provider, self.kind.as_str(), self.message)
    }
}

impl std::error::Error for LlmError {}

/// The model used when none is configured: every call fails with
/// [`LlmErrorKind::NotConfigured`], which the engine turns into a reply
/// that tells the user how to configure one.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnconfiguredLlm;

/// What a user reads when a turn needs a model and none is configured.
pub const NOT_CONFIGURED_HELP: &str = "No language model is configured, so I can only do what works without one. \
To connect one, set OPENAI_API_KEY (and OPENAI_BASE_URL for any OpenAI-compatible server such as vLLM, \
llama.cpp or LM Studio), or OLLAMA_HOST (for example http://127.0.0.1:11434) for a local Ollama, \
then restart `steward serve`. `steward config check` shows what Steward sees.";

#[async_trait]
impl Llm for UnconfiguredLlm {
    fn name(&self) -> &str {
        "none"
    }

    async fn stream(&self, _request: LlmRequest) -> Result<LlmStream, LlmError> {
        Err(LlmError::new("none", LlmErrorKind::NotConfigured, NOT_CONFIGURED_HELP))
    }
}
