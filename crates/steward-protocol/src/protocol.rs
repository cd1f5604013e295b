//! The engine protocol: front ends submit [`Op`]s and read [`Event`]s.

use serde::{Deserialize, Serialize};

use crate::approval::Approval;
use crate::{ErrorCode, Message, Usage};

/// What a tool does to the world. The policy decides from this, outside the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Only reads; runs without asking.
    Read,
    /// Changes something that can be changed back.
    Mutate,
    /// Changes something that cannot easily be undone.
    Destructive,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Mutate => "mutate",
            Effect::Destructive => "destructive",
        }
    }
}

/// A submission to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Run one turn of a conversation.
    UserTurn(UserTurn),
    /// Stop a running turn at its next step boundary.
    Cancel { turn_id: String },
}

/// One user turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTurn {
    /// Continue this stored conversation; `None` starts a new one.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The agent that answers (`architect`, …).
    pub agent: String,
    pub input: TurnInput,
    /// Who is speaking, for the approvals they decide and the audit log:
    /// `user:<key digest prefix>`, or `user:local` without API keys.
    #[serde(default)]
    pub actor: Option<String>,
}

/// Where the context of a turn comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TurnInput {
    /// One new user message; the context is the stored conversation.
    Message { content: String },
    /// The client holds the history and resends it each turn (OpenAI-style
    /// clients such as Open WebUI): these messages are the context. The last
    /// one is the new user message.
    History { messages: Vec<Message> },
}

/// Why a turn (or a model call) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Cancelled,
    Error,
}

impl FinishReason {
    /// The value OpenAI's wire format uses.
    pub fn openai(self) -> &'static str {
        match self {
            FinishReason::Stop | FinishReason::Cancelled | FinishReason::Error => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

/// Something the engine tells its front ends while a turn runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    TurnStarted {
        turn_id: String,
        conversation_id: String,
        agent: String,
    },
    TextDelta {
        turn_id: String,
        delta: String,
    },
    ToolCallStarted {
        turn_id: String,
        call_id: String,
        name: String,
        arguments: String,
        effect: Effect,
    },
    ToolResult {
        turn_id: String,
        call_id: String,
        name: String,
        ok: bool,
        output: String,
        truncated: bool,
    },
    /// A call waits for a person's approval.
    ApprovalRequested {
        turn_id: String,
        approval: Approval,
    },
    /// An approval was decided, ran, or failed.
    ApprovalUpdated {
        turn_id: String,
        approval: Approval,
    },
    /// Debug mode: a tool's input or output, verbatim but for secrets.
    ToolDebug {
        turn_id: String,
        call_id: String,
        name: String,
        /// `input` or `output`.
        phase: String,
        content: String,
    },
    /// A message was written to the store.
    MessageStored {
        turn_id: String,
        message_id: String,
        message: Message,
    },
    TurnFinished {
        turn_id: String,
        conversation_id: String,
        finish_reason: FinishReason,
        usage: Usage,
        steps: u32,
    },
    Error {
        turn_id: String,
        code: ErrorCode,
        message: String,
    },
    /// An agent handed part of the turn to another agent, which runs its
    /// own turn (`child_turn_id`) with its own tools and model tier.
    DelegationStarted {
        turn_id: String,
        child_turn_id: String,
        /// The agent the work went to.
        agent: String,
        /// What it was asked to do.
        task: String,
        /// 1 for a delegation from the turn a person started.
        depth: u32,
    },
    /// An event of a delegated turn, nested under the turn that delegated.
    Delegated {
        turn_id: String,
        agent: String,
        event: Box<Event>,
    },
    /// A delegated turn ended; its answer went back to the delegating agent.
    DelegationFinished {
        turn_id: String,
        child_turn_id: String,
        agent: String,
        ok: bool,
    },
    /// A task (a multi-step plan) or one of its steps changed state.
    TaskUpdated {
        /// The turn that reported it; empty when the task runs on its own.
        turn_id: String,
        task_id: String,
        /// The task's status.
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_status: Option<String>,
        /// One line on what happened.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A line an approved call reported while it ran (an Ansible task's
    /// result on a host, say); on the activity stream, and kept in the
    /// run's execution log.
    ToolProgress {
        turn_id: String,
        call_id: String,
        name: String,
        /// The approval the call runs under.
        approval_id: String,
        message: String,
    },
    /// A model call ended (on the activity stream only, not in a turn's).
    LlmCall {
        /// The turn (or gateway request) it served; empty when unknown.
        turn_id: String,
        /// Who asked: an agent id, `gateway`, `planner` …
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<String>,
        provider: String,
        model: String,
        usage: Usage,
        /// In the price table's currency.
        cost: f64,
        /// Served on the user's own machines.
        local: bool,
        /// `ok`, or the error kind (`rate_limited`, `budget_exceeded`, …).
        outcome: String,
        latency_ms: i64,
    },
}

/// One entry of the engine's activity stream (`GET /api/events`): an event
/// of any turn, approval, task or model call, in the order they happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEvent {
    /// Increases by one per event, from 1 when the server started.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// The conversation the event belongs to, when it belongs to one.
    pub conversation_id: Option<String>,
    /// The agent whose turn it is, when there is one.
    pub agent: Option<String>,
    pub event: Event,
}

impl Event {
    pub fn turn_id(&self) -> &str {
        match self {
            Event::TurnStarted { turn_id, .. }
            | Event::TextDelta { turn_id, .. }
            | Event::ToolCallStarted { turn_id, .. }
            | Event::ToolResult { turn_id, .. }
            | Event::ApprovalRequested { turn_id, .. }
            | Event::ApprovalUpdated { turn_id, .. }
            | Event::ToolDebug { turn_id, .. }
            | Event::MessageStored { turn_id, .. }
            | Event::TurnFinished { turn_id, .. }
            | Event::Error { turn_id, .. }
            | Event::DelegationStarted { turn_id, .. }
            | Event::Delegated { turn_id, .. }
            | Event::DelegationFinished { turn_id, .. }
            | Event::TaskUpdated { turn_id, .. }
            | Event::ToolProgress { turn_id, .. }
            | Event::LlmCall { turn_id, .. } => turn_id,
        }
    }

    /// The SSE event name for this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::TurnStarted { .. } => "turn_started",
            Event::TextDelta { .. } => "text_delta",
            Event::ToolCallStarted { .. } => "tool_call_started",
            Event::ToolResult { .. } => "tool_result",
            Event::ApprovalRequested { .. } => "approval_requested",
            Event::ApprovalUpdated { .. } => "approval_updated",
            Event::ToolDebug { .. } => "tool_debug",
            Event::MessageStored { .. } => "message_stored",
            Event::TurnFinished { .. } => "turn_finished",
            Event::Error { .. } => "error",
            Event::DelegationStarted { .. } => "delegation_started",
            Event::Delegated { .. } => "delegated",
            Event::DelegationFinished { .. } => "delegation_finished",
            Event::TaskUpdated { .. } => "task_updated",
            Event::ToolProgress { .. } => "tool_progress",
            Event::LlmCall { .. } => "llm_call",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_by_type() {
        let e = Event::TextDelta { turn_id: "t1".into(), delta: "hi".into() };
        let v = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"type": "text_delta", "turn_id": "t1", "delta": "hi"}));
        assert_eq!(e.kind(), "text_delta");
    }

    #[test]
    fn ops_round_trip() {
        let op = Op::UserTurn(UserTurn {
            conversation_id: None,
            agent: "architect".into(),
            input: TurnInput::Message { content: "hello".into() },
            actor: None,
        });
        let text = serde_json::to_string(&op).unwrap_or_default();
        let back: Op = serde_json::from_str(&text).unwrap_or(Op::Cancel { turn_id: String::new() });
        assert_eq!(back, op);
    }
}
