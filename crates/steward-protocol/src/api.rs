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

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Conversation {
    pub id: String,
    pub agent: String,
    pub title: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
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
