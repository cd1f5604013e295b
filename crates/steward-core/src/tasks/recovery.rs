//! Picking tasks up after a restart, and bringing a waiting task up to
//! date with its plan's approval (see the runner's module documentation
//! for which interrupted steps run again).

use std::sync::Arc;

use steward_protocol::approval::ApprovalStatus;
use steward_protocol::task::{LogLevel, StepStatus, Task, TaskStatus};
use steward_protocol::Effect;

use super::runner::TaskRunner;
use crate::store::{StepUpdate, StoreError, TaskTransition};

/// What a restart found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRecovery {
    /// Running before the restart; running again.
    pub resumed: Vec<String>,
    /// Stopped while planning, or their approval failed: marked failed.
    pub failed: Vec<String>,
    /// Their plan was rejected or expired meanwhile.
    pub rejected: Vec<String>,
}

impl TaskRunner {
    /// Brings a task waiting for its plan's approval up to date with that
    /// approval: rejected or expired makes it `rejected`, a failed one
    /// `failed`. Returns the task as it now stands.
    pub async fn reconcile(&self, task: Task) -> Result<Task, StoreError> {
        if task.status != TaskStatus::AwaitingApproval {
            return Ok(task);
        }
        let now = self.now();
        let approval = match &task.approval_id {
            Some(id) => self.store.get_approval(id).await?,
            None => None,
        };
        let (to, reason) = match approval {
            None => (
                TaskStatus::Failed,
                "the plan's approval is missing, so the plan can never run; send the request again".to_string(),
            ),
            Some(a) => match a.status {
                ApprovalStatus::Rejected => (
                    TaskStatus::Rejected,
                    format!(
                        "the plan was rejected by {}; nothing was run",
                        a.decided_by.as_deref().unwrap_or("a person")
                    ),
                ),
                ApprovalStatus::Expired => {
                    (TaskStatus::Rejected, "nobody approved the plan before it expired; nothing was run".to_string())
                }
                ApprovalStatus::Pending if a.expires_at <= now => {
                    (TaskStatus::Rejected, "nobody approved the plan before it expired; nothing was run".to_string())
                }
                ApprovalStatus::Failed => (
                    TaskStatus::Failed,
                    format!("the plan was approved but could not start: {}", a.outcome.as_deref().unwrap_or("unknown")),
                ),
                ApprovalStatus::Pending | ApprovalStatus::Approved | ApprovalStatus::Executed => return Ok(task),
            },
        };
        let change = TaskTransition::to(to, now).with_error(reason.clone());
        if self.store.set_task_status(&task.id, TaskStatus::AwaitingApproval, &change).await? {
            let level = if to == TaskStatus::Failed { LogLevel::Error } else { LogLevel::Warn };
            self.log(&task.id, None, level, &reason).await;
            let action = if to == TaskStatus::Failed { "task.failed" } else { "task.rejected" };
            self.audit("system", action, &task.id, serde_json::json!({"reason": reason})).await;
            self.emit_last(&task.id, to, Some(reason));
        }
        Ok(self.store.get_task(&task.id).await?.unwrap_or(task))
    }

    /// After a restart: tasks stopped while planning fail, waiting ones are
    /// brought up to date with their approval, running ones resume (see the
    /// module documentation for which steps run again).
    pub async fn recover(self: &Arc<Self>) -> Result<TaskRecovery, StoreError> {
        let mut recovery = TaskRecovery::default();
        let statuses = [TaskStatus::Planning, TaskStatus::AwaitingApproval, TaskStatus::Running, TaskStatus::Cancelled];
        for task in self.store.tasks_in_status(&statuses, 1000).await? {
            if self.is_active(&task.id) {
                continue;
            }
            match task.status {
                TaskStatus::Planning => {
                    let reason = "interrupted by a restart while the plan was being made; send the request again";
                    let change = TaskTransition::to(TaskStatus::Failed, self.now()).with_error(reason);
                    if self.store.set_task_status(&task.id, TaskStatus::Planning, &change).await? {
                        self.log(&task.id, None, LogLevel::Error, reason).await;
                        recovery.failed.push(task.id.clone());
                    }
                }
                TaskStatus::AwaitingApproval => {
                    let now = self.reconcile(task).await?;
                    match now.status {
                        TaskStatus::Rejected => recovery.rejected.push(now.id),
                        TaskStatus::Failed => recovery.failed.push(now.id),
                        TaskStatus::Planning
                        | TaskStatus::AwaitingApproval
                        | TaskStatus::Running
                        | TaskStatus::Succeeded
                        | TaskStatus::Cancelled => {}
                    }
                }
                TaskStatus::Running => {
                    self.settle_interrupted(&task, true).await?;
                    self.log(&task.id, None, LogLevel::Warn, "resumed after a restart").await;
                    self.spawn(&task.id);
                    recovery.resumed.push(task.id.clone());
                }
                // A cancel recorded just before the stop: steps that were
                // still finishing their call never recorded how it ended,
                // and pending ones were never marked.
                TaskStatus::Cancelled => {
                    if task.steps.iter().any(|s| !s.status.is_final()) {
                        self.settle_interrupted(&task, false).await?;
                        self.spawn(&task.id);
                    }
                }
                TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Rejected => {}
            }
        }
        Ok(recovery)
    }

    /// The steps a stop left `running`: read-only ones go back to pending
    /// (when `rerun_reads`), the others are marked failed.
    async fn settle_interrupted(&self, task: &Task, rerun_reads: bool) -> Result<(), StoreError> {
        for step in task.steps.iter().filter(|s| s.status == StepStatus::Running) {
            let read = step.effect == Effect::Read
                && self.tools.get(&step.tool).is_some_and(|t| t.spec().effect == Effect::Read);
            if read && rerun_reads {
                let update = StepUpdate::to(StepStatus::Pending);
                if self.store.update_step(&task.id, &step.id, &[StepStatus::Running], &update).await? {
                    let line = "interrupted by a restart; it only reads, so it runs again";
                    self.log(&task.id, Some(&step.id), LogLevel::Warn, line).await;
                }
            } else {
                let error = format!(
                    "interrupted by a restart; not run again: '{}' can change things and may or may not have \
taken effect, so check before asking again",
                    step.tool
                );
                let mut update = StepUpdate::to(StepStatus::Failed);
                update.error = Some(error.clone());
                update.finished_at = Some(self.now());
                if self.store.update_step(&task.id, &step.id, &[StepStatus::Running], &update).await? {
                    self.log(&task.id, Some(&step.id), LogLevel::Error, &error).await;
                }
            }
        }
        Ok(())
    }
}
