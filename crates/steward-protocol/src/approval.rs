//! Approvals: a tool call the policy said must wait for a person.

use serde::{Deserialize, Serialize};

use crate::Effect;

/// What a person sees before deciding: one line, the things touched with
/// their current state, and (for some tools) a block of text such as a
/// check-mode diff or automation YAML.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct Preview {
    /// One line, e.g. `light.turn_on on Kitchen Light (light.kitchen, now off)`.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<PreviewTarget>,
    /// A diff, YAML or command output, shown verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// One thing an action touches and how it is now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct PreviewTarget {
    /// An entity id, a VM, a host, a file …
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its current state, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Where an approval is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waits for a person.
    Pending,
    /// A person said yes; the action is about to run or running.
    Approved,
    Rejected,
    /// Nobody decided before it expired.
    Expired,
    /// Approved and ran successfully.
    Executed,
    /// Approved, and the action failed or was interrupted.
    Failed,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 6] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
        ApprovalStatus::Executed,
        ApprovalStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Executed => "executed",
            ApprovalStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// No further change can happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Rejected | ApprovalStatus::Expired | ApprovalStatus::Executed | ApprovalStatus::Failed
        )
    }
}

/// How far a yes reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalScope {
    /// This one call only.
    #[default]
    Once,
    /// This call, and calls of the same kind (same tool, domains and
    /// action) for the rest of the conversation.
    Conversation,
}

impl ApprovalScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalScope::Once => "once",
            ApprovalScope::Conversation => "conversation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "once" => Some(ApprovalScope::Once),
            "conversation" => Some(ApprovalScope::Conversation),
            _ => None,
        }
    }
}

/// A persisted approval (`GET /api/proposals/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Approval {
    /// `apr_` and 12 hex digits.
    pub id: String,
    pub conversation_id: String,
    pub turn_id: String,
    pub agent: String,
    /// The model's tool call id.
    pub call_id: String,
    pub tool: String,
    /// The call's arguments, a JSON object.
    pub arguments: serde_json::Value,
    pub effect: Effect,
    /// Entity ids (or other targets) the policy saw.
    pub targets: Vec<String>,
    pub preview: Preview,
    pub status: ApprovalStatus,
    /// The kind of call a conversation-scoped yes covers.
    pub kind: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ApprovalScope>,
    /// Unique per approval; the action runs at most once under it.
    pub idempotency_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// What the action returned, or why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// `GET /api/proposals`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ApprovalList {
    pub proposals: Vec<Approval>,
}

/// The optional body of `POST /api/proposals/{id}/approve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    #[serde(default)]
    pub scope: Option<ApprovalScope>,
}
