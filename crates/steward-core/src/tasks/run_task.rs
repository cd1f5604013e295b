//! `run_task`: the tool a plan's approval runs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use steward_protocol::task::TaskStatus;
use steward_protocol::Effect;

use super::plan::RUN_TASK;
use super::runner::TaskRunner;
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};

/// `run_task`: starts an approved plan. Only the approval of the task's
/// own plan starts it — never a model's call, never another approval — so
/// approving the plan is the one way a task runs.
pub struct RunTaskTool {
    spec: ToolSpec,
    runner: Arc<TaskRunner>,
}

impl RunTaskTool {
    pub fn new(runner: Arc<TaskRunner>) -> Self {
        RunTaskTool {
            spec: ToolSpec {
                name: RUN_TASK.into(),
                description: "Starts a task's approved plan (Steward calls it when a person approves the plan; it is \
not for models)."
                    .into(),
                parameters: serde_json::json!({
                    "type": "object",
                    "properties": {"task_id": {"type": "string"}},
                    "required": ["task_id"],
                    "additionalProperties": false
                }),
                effect: Effect::Mutate,
                // It only starts the task in the background.
                timeout: Duration::from_secs(30),
                output_cap: 4096,
                domain: None,
            },
            runner,
        }
    }
}

#[async_trait]
impl Tool for RunTaskTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: serde_json::Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let Some(task_id) = arguments.get("task_id").and_then(|v| v.as_str()) else {
            return Err(ToolError::InvalidArguments("task_id is required".into()));
        };
        let store = self.runner.store();
        let Some(approval) = &ctx.approval else {
            return Err(ToolError::Failed(
                "run_task only starts a task under the approval of its plan; nothing was run".into(),
            ));
        };
        let task = store
            .get_task(task_id)
            .await
            .map_err(|e| ToolError::Failed(format!("could not read task '{task_id}': {e}")))?
            .ok_or_else(|| ToolError::Failed(format!("task '{task_id}' not found; nothing was run")))?;
        if task.approval_id.as_deref() != Some(approval.id.as_str()) {
            return Err(ToolError::Failed(format!(
                "approval '{}' is not the approval of task '{task_id}''s plan; nothing was run",
                approval.id
            )));
        }
        let approver = match store.get_approval(&approval.id).await {
            Ok(Some(a)) => a.decided_by.unwrap_or_else(|| "a person".into()),
            Ok(None) | Err(_) => "a person".into(),
        };
        match self.runner.begin(&task, TaskStatus::AwaitingApproval, &approver).await {
            Ok(true) => Ok(format!(
                "task {task_id} started: {} steps; follow it with GET /api/requests/{task_id}",
                task.steps.len()
            )),
            Ok(false) => {
                let now = store.get_task(task_id).await.ok().flatten().map(|t| t.status).unwrap_or(task.status);
                Err(ToolError::Failed(format!("task {task_id} is {}, so it was not started", now.as_str())))
            }
            Err(e) => Err(ToolError::Failed(format!("could not start task {task_id}: {e}"))),
        }
    }
}
