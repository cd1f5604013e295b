//! Tasks and plans: a request that needs several steps becomes a task whose
//! plan is a DAG of tool calls, approved as a whole and run in dependency
//! order (`/api/requests`).

use serde::{Deserialize, Serialize};

use crate::Effect;

/// Where a task is in its life.
///
/// `planning → awaiting_approval → running → succeeded | failed | cancelled`;
/// `awaiting_approval → rejected` when the plan is rejected or its approval
/// expires; `planning → failed` when no usable plan comes back; `planning →
/// running` when every step is one the policy allows without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// The model is writing the plan.
    Planning,
    /// The plan waits for a person's approval.
    AwaitingApproval,
    /// Steps are running.
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed (or planning did); `error` says which and why.
    Failed,
    /// A person cancelled it.
    Cancelled,
    /// The plan was rejected, or nobody approved it in time.
    Rejected,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Planning,
        TaskStatus::AwaitingApproval,
        TaskStatus::Running,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
        TaskStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Planning => "planning",
            TaskStatus::AwaitingApproval => "awaiting_approval",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// No further change can happen.
    pub fn is_final(self) -> bool {
        match self {
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Rejected => true,
            TaskStatus::Planning | TaskStatus::AwaitingApproval | TaskStatus::Running => false,
        }
    }
}

/// Where one step of a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Waits for its dependencies (or for the plan's approval).
    Pending,
    Running,
    Succeeded,
    /// Failed for good (after its retries); `error` says why.
    Failed,
    /// Not run because a step it depends on failed or was skipped.
    Skipped,
    /// Not run because the task was cancelled.
    Cancelled,
}

impl StepStatus {
    pub const ALL: [StepStatus; 6] = [
        StepStatus::Pending,
        StepStatus::Running,
        StepStatus::Succeeded,
        StepStatus::Failed,
        StepStatus::Skipped,
        StepStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// No further change can happen.
    pub fn is_final(self) -> bool {
        match self {
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Skipped | StepStatus::Cancelled => true,
            StepStatus::Pending | StepStatus::Running => false,
        }
    }
}

/// A task: the request, its plan and how far it got
/// (`GET /api/requests/{id}` adds its `execution_logs`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Task {
    /// `task_` and 12 hex digits.
    pub id: String,
    /// What the person asked for, as they wrote it.
    pub request: String,
    pub status: TaskStatus,
    /// The conversation the task reports in; its plan approval can be
    /// decided there by replying "approve" or "reject".
    pub conversation_id: String,
    /// The approval of the whole plan; absent while planning, and for a
    /// plan every step of which the policy allows without asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// The planner's one-line summary of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_summary: Option<String>,
    /// The sum of the steps' estimates.
    pub estimated_cost_usd: f64,
    /// Why it failed, was rejected or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who asked: `user:<key digest prefix>` or `user:local`.
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// In the order the plan gave them.
    pub steps: Vec<TaskStep>,
}

/// One step of a plan: one tool call by one agent.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TaskStep {
    /// The plan's own short id, e.g. `s1`; unique within the task.
    pub id: String,
    pub agent: String,
    pub tool: String,
    /// The tool's arguments, a JSON object.
    pub arguments: serde_json::Value,
    pub description: String,
    /// Ids of the steps that must succeed before this one starts.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The tool's effect when the plan was approved.
    pub effect: Effect,
    pub estimated_cost_usd: f64,
    pub status: StepStatus,
    /// Calls made so far (retries included).
    pub attempts: u32,
    /// What the tool returned (capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why it failed, was skipped or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(LogLevel::Info),
            "warn" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }
}

/// One line of what happened while a task ran.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ExecutionLog {
    /// Position within the task, from 1.
    pub seq: i64,
    pub task_id: String,
    /// The step it is about; absent for lines about the whole task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    pub level: LogLevel,
    pub message: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// `POST /api/requests`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// What to do, in plain words.
    pub request: String,
}

/// `GET /api/requests/{id}`: the task with its execution log.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: Task,
    pub execution_logs: Vec<ExecutionLog>,
}

/// `GET /api/requests`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TaskList {
    pub tasks: Vec<Task>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_as_snake_case() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::String(s.as_str().into())));
        }
        for s in StepStatus::ALL {
            assert_eq!(StepStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::String(s.as_str().into())));
        }
        assert!(TaskStatus::Rejected.is_final() && !TaskStatus::AwaitingApproval.is_final());
        assert!(StepStatus::Skipped.is_final() && !StepStatus::Running.is_final());
    }

    #[test]
    fn a_create_request_refuses_unknown_fields() {
        assert!(serde_json::from_str::<CreateRequest>(r#"{"request": "x", "plan": []}"#).is_err());
        assert!(serde_json::from_str::<CreateRequest>(r#"{"request": "x"}"#).is_ok());
    }
}
