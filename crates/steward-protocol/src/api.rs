//! The native `/api` shapes.

use serde::{Deserialize, Serialize};

use crate::{Message, Role, ToolCall, Usage};

/// `POST /api/conversations`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

/// `PATCH /api/conversations/{id}`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatchConversation {
    /// Debug mode for this conversation.
    #[serde(default)]
    pub debug: Option<bool>,
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Conversation {
    pub id: String,
    pub agent: String,
    pub title: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    /// Debug mode: every tool's inputs and outputs are streamed verbatim
    /// (secrets redacted).
    #[serde(default)]
    pub debug: bool,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StoredMessage {
    pub id: String,
    pub conversation_id: String,
    /// Position in the conversation, from 0.
    pub seq: i64,
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: i64,
}

impl StoredMessage {
    pub fn to_message(&self) -> Message {
        Message {
            role: self.role,
            content: self.content.clone(),
            tool_calls: self.tool_calls.clone(),
            tool_call_id: self.tool_call_id.clone(),
            name: self.name.clone(),
        }
    }
}

/// `GET /api/conversations/{id}`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub messages: Vec<StoredMessage>,
}

/// `GET /api/conversations`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
}

/// `POST /api/conversations/{id}/messages`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    pub content: String,
}

/// The reply to a non-streamed `POST /api/conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TurnReply {
    pub conversation_id: String,
    pub turn_id: String,
    /// The final assistant text.
    pub content: String,
    /// Every message this turn stored (user, assistant, tool calls and results).
    pub messages: Vec<StoredMessage>,
    pub usage: Usage,
    pub steps: u32,
    pub finish_reason: crate::FinishReason,
}

/// `GET /health`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    pub version: String,
    pub database: ComponentHealth,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ComponentHealth {
    pub ok: bool,
    pub backend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /api/usage`: what the models cost, from the usage ledger.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UsageReport {
    /// The first day counted, `YYYY-MM-DD` (UTC).
    pub since: String,
    pub days: u32,
    pub requests: i64,
    /// Of the requests, the share served by local (free) deployments, 0–1.
    pub local_share: f64,
    /// Total cost in the price table's currency.
    pub cost: f64,
    pub by_day: Vec<UsageLine>,
    pub by_provider: Vec<UsageLine>,
    pub by_model: Vec<UsageLine>,
    pub budgets: Vec<BudgetLine>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UsageLine {
    /// The day, provider or `provider/model`.
    pub key: String,
    pub requests: i64,
    pub ok_requests: i64,
    pub local_requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BudgetLine {
    /// `overall` or a provider's name.
    pub scope: String,
    /// `daily` or `monthly`.
    pub period: String,
    /// When the current period began, `YYYY-MM-DD` (UTC).
    pub period_start: String,
    pub limit: f64,
    pub spent: f64,
    /// Held by requests still running.
    pub reserved: f64,
    pub remaining: f64,
}

/// One row of the tamper-evident audit log (see `steward_core::audit`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AuditEntry {
    /// 1, 2, 3 … with no gaps.
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// `user:<key digest prefix>`, `agent:<id>` or `system`.
    pub actor: String,
    /// What happened: `tool.decision`, `tool.executed`, `approval.decided` …
    pub action: String,
    /// What it happened to, e.g. a tool's name.
    pub subject: String,
    /// Entity ids and the like.
    pub targets: Vec<String>,
    /// Preview, verdict, outcome … with secrets redacted.
    pub detail: serde_json::Value,
    pub trace_id: Option<String>,
    /// The previous row's `hash` (64 zeros for the first row).
    pub prev_hash: String,
    /// SHA-256 (hex) of this row's content and `prev_hash`.
    pub hash: String,
}

/// `GET /api/audit`: a page of the audit log and the verification of the
/// whole chain.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AuditReport {
    pub entries: Vec<AuditEntry>,
    pub verified: AuditVerification,
}

/// The result of checking every row of the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuditVerification {
    pub ok: bool,
    /// Rows checked (up to the first bad one).
    pub checked: usize,
    /// The first row that was altered, removed or reordered.
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

/// One entity of the home's catalog, as stored and served by `GET /api/entities`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CatalogEntity {
    pub entity_id: String,
    pub domain: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_id: Option<String>,
    /// The area's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The device's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub state: String,
    /// The state attributes, a JSON object.
    pub attributes: serde_json::Value,
    /// Milliseconds since the Unix epoch.
    pub last_changed: i64,
    pub last_updated: i64,
    pub available: bool,
}

/// `GET /api/entities`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EntityList {
    pub entities: Vec<CatalogEntity>,
    /// How many matched before `limit`.
    pub total: usize,
}

/// `POST /api/entities/query`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntityQuery {
    pub query: String,
}

/// The answer to an [`EntityQuery`], from the catalog alone.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EntityAnswer {
    pub answer: String,
    /// The entities the answer is about.
    pub entities: Vec<CatalogEntity>,
    /// How the question was read: `intent` (understood locally) or `search`.
    pub method: String,
}
