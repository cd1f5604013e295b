//! Tasks and plans: a request that needs several steps becomes a task.
//!
//! 1. [`Tasks::create`] stores the task (`planning`) in a conversation of
//!    its own and asks the model once for a plan ([`plan`]): a DAG of tool
//!    calls, each by one agent with one of that agent's tools, with cost
//!    estimates. An answer that fails the checks is sent back once with
//!    the problem; a second bad answer fails the task, naming the problem.
//! 2. The plan is put before a person as ONE approval ([`RUN_TASK`] with
//!    the task id), decided like any other: "approve" in the task's
//!    conversation, `POST /api/proposals/{id}/approve`, `steward approve`.
//!    Its effect is the strongest of the steps'. A plan every step of which
//!    the policy allows without asking (with the default policy: a plan
//!    that only reads) runs at once, as those calls would in chat.
//! 3. Approving runs `run_task`, which moves the task to `running` and
//!    starts the [`TaskRunner`] in the background: steps in dependency
//!    order, independent ones in parallel, each logged to
//!    `execution_logs` and streamed as [`steward_protocol::Event::TaskUpdated`].
//! 4. The outcome is recorded on the task, in the audit log and as a
//!    message in the task's conversation.
//!
//! A rejected or expired plan approval makes the task `rejected`; the task
//! is brought up to date whenever it is read ([`Tasks::get`]) and at
//! start-up. Cancelling ([`Tasks::cancel`]) rejects a waiting plan, or
//! stops a running task from starting anything new.

mod plan;
mod recovery;
mod run_task;
mod runner;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use steward_protocol::approval::{ApprovalScope, Preview, PreviewTarget};
use steward_protocol::task::{ExecutionLog, LogLevel, Task, TaskDetail, TaskStatus};
use steward_protocol::{Message, ToolCall};
use tokio::sync::broadcast;

use crate::agent::Tier;
use crate::engine::{DecideError, Engine};
use crate::llm::{Llm, LlmErrorKind, LlmRequest, NOT_CONFIGURED_HELP};
use crate::policy::{CallFacts, Decision};
use crate::store::{NewMessage, StoreError, TaskPlan, TaskTransition};

pub use plan::{dollars, parse_plan, planner_prompt, render, strongest, waves, Plan, PlanError, MAX_STEPS, RUN_TASK};
pub use recovery::TaskRecovery;
pub use run_task::RunTaskTool;
pub use runner::{RunnerOptions, RunnerParts, TaskRunner};

/// The agent that plans, and in whose name plan approvals are asked.
pub const PLANNER_AGENT: &str = "architect";

/// Longest request accepted, in characters.
pub const MAX_REQUEST_CHARS: usize = 8_000;

/// Longest conversation title taken from a request, in characters.
const TITLE_CHARS: usize = 60;

/// Why a task operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The request itself is unusable; the message says how to fix it.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("task '{0}' not found; list tasks with GET /api/requests")]
    NotFound(String),
    /// The task is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tasks: planning, approval, cancelling and reading them. Cheap to share.
pub struct Tasks {
    engine: Engine,
    runner: Arc<TaskRunner>,
    llm: Arc<dyn Llm>,
}

impl Tasks {
    /// `runner` must be the one whose [`RunTaskTool`] is registered in the
    /// engine's tools, so that approving a plan starts it.
    pub fn new(engine: Engine, runner: Arc<TaskRunner>, llm: Arc<dyn Llm>) -> Self {
        Tasks { engine, runner, llm }
    }

    pub fn runner(&self) -> &Arc<TaskRunner> {
        &self.runner
    }

    /// Picks tasks up after a restart (see [`TaskRunner::recover`]).
    pub async fn recover(&self) -> Result<TaskRecovery, StoreError> {
        self.runner.recover().await
    }

    /// Progress events of one task, from now on.
    pub fn subscribe(&self, id: &str) -> broadcast::Receiver<steward_protocol::Event> {
        self.runner.subscribe(id)
    }

    /// One task, brought up to date with its plan's approval.
    pub async fn get(&self, id: &str) -> Result<Option<Task>, TaskError> {
        match self.runner.store().get_task(id).await? {
            Some(task) => Ok(Some(self.runner.reconcile(task).await?)),
            None => Ok(None),
        }
    }

    /// One task with its execution log.
    pub async fn detail(&self, id: &str) -> Result<Option<TaskDetail>, TaskError> {
        let Some(task) = self.get(id).await? else { return Ok(None) };
        let execution_logs = self.logs(id).await?;
        Ok(Some(TaskDetail { task, execution_logs }))
    }

    /// Newest first, each brought up to date.
    pub async fn list(&self, limit: u32) -> Result<Vec<Task>, TaskError> {
        let mut out = Vec::new();
        for task in self.runner.store().list_tasks(limit).await? {
            out.push(self.runner.reconcile(task).await?);
        }
        Ok(out)
    }

    pub async fn logs(&self, id: &str) -> Result<Vec<ExecutionLog>, TaskError> {
        Ok(self.runner.store().list_execution_logs(id).await?)
    }

    /// Turns a request into a task with a plan: waiting for approval,
    /// already running (nothing in it needs asking), or failed with the
    /// reason no plan could be made.
    pub async fn create(&self, request: &str, actor: &str) -> Result<Task, TaskError> {
        let request = request.trim();
        if request.is_empty() {
            return Err(TaskError::InvalidRequest(
                "request is empty; say what should be done, e.g. {\"request\": \"turn off every light downstairs\"}"
                    .into(),
            ));
        }
        if request.chars().count() > MAX_REQUEST_CHARS {
            return Err(TaskError::InvalidRequest(format!(
                "request is {} characters long; at most {MAX_REQUEST_CHARS} are accepted",
                request.chars().count()
            )));
        }
        let store = self.runner.store();
        let agent = match self.engine.agents().get(PLANNER_AGENT) {
            Some(a) => a.id.clone(),
            None => self.engine.agents().default_agent().to_string(),
        };
        let conversation = store.create_conversation(&agent, Some(&title_from(request))).await?;
        let now = self.runner.now();
        let task = Task {
            id: format!("task_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            request: request.to_string(),
            status: TaskStatus::Planning,
            conversation_id: conversation.id,
            approval_id: None,
            plan_summary: None,
            estimated_cost_usd: 0.0,
            error: None,
            created_by: actor.to_string(),
            created_at: now,
            updated_at: now,
            finished_at: None,
            steps: Vec::new(),
        };
        store.create_task(&task).await?;
        let user = NewMessage {
            conversation_id: task.conversation_id.clone(),
            message: Message::user(request),
            turn_id: Some(task.id.clone()),
        };
        if let Err(e) = store.append_messages(vec![user]).await {
            tracing::warn!(error = %e, task = %task.id, "could not store the request in the task's conversation");
        }
        self.runner.log(&task.id, None, LogLevel::Info, &format!("request received from {actor}")).await;
        let detail = serde_json::json!({"request": request, "conversation_id": task.conversation_id});
        self.runner.audit(actor, "task.created", &task.id, detail).await;
        self.runner.emit(&task.id, TaskStatus::Planning, None, Some("planning".into()));
        match self.plan(&task).await {
            Ok(plan) => self.propose(task, plan, actor).await,
            Err(reason) => self.fail_planning(task, reason).await,
        }
    }

    /// Asks the model for a plan; once more with the problem when the
    /// first answer is unusable.
    async fn plan(&self, task: &Task) -> Result<Plan, String> {
        let agents = self.engine.agents();
        let tools = self.engine.tools();
        let model = agents.get(PLANNER_AGENT).and_then(|a| a.model.clone());
        let mut messages = vec![Message::system(planner_prompt(agents, tools)), Message::user(task.request.clone())];
        let mut problem = String::new();
        for attempt in 1..=2 {
            let request = LlmRequest {
                tier: Tier::Smart,
                model: model.clone(),
                messages: messages.clone(),
                tools: Vec::new(),
                temperature: None,
                max_tokens: None,
                caller: Some(PLANNER_AGENT.to_string()),
                trace_id: Some(task.id.clone()),
            };
            let answer = match self.llm.complete(request).await {
                Ok(completion) => completion.text,
                Err(e) if e.kind == LlmErrorKind::NotConfigured => {
                    return Err(format!("no plan could be made: {NOT_CONFIGURED_HELP}"))
                }
                Err(e) => return Err(format!("no plan could be made: the model call failed: {e}")),
            };
            match parse_plan(&answer, agents, tools, self.runner.policy()) {
                Ok(plan) => return Ok(plan),
                Err(e) => {
                    let line = format!("the planner's answer (attempt {attempt} of 2) was not usable: {e}");
                    self.runner.log(&task.id, None, LogLevel::Warn, &line).await;
                    problem = e.0;
                    messages.push(Message::assistant(answer));
                    messages.push(Message::user(format!(
                        "That plan cannot be used: {problem}. Reply again with only the corrected JSON object."
                    )));
                }
            }
        }
        Err(format!("the planner did not produce a usable plan (asked twice): {problem}"))
    }

    /// Records the plan and asks for its approval (or, when nothing in it
    /// needs asking, starts it).
    async fn propose(&self, task: Task, plan: Plan, actor: &str) -> Result<Task, TaskError> {
        let store = self.runner.store();
        let summary = if plan.summary.is_empty() { title_from(&task.request) } else { plan.summary.clone() };
        let cost = plan.estimated_cost_usd();
        let recorded = TaskPlan {
            summary: summary.clone(),
            estimated_cost_usd: cost,
            steps: plan.steps.clone(),
            at: self.runner.now(),
        };
        if !store.set_task_plan(&task.id, &recorded).await? {
            // Cancelled while the model was planning.
            return self.current(task).await;
        }
        let line = format!("plan: {} steps, est. {}: {summary}", plan.steps.len(), dollars(cost));
        self.runner.log(&task.id, None, LogLevel::Info, &line).await;
        let Some(planned) = store.get_task(&task.id).await? else { return Err(TaskError::NotFound(task.id)) };

        if !self.needs_approval(&plan) {
            let started = self.runner.begin(&planned, TaskStatus::Planning, actor).await?;
            if started {
                let text = format!(
                    "Plan for your request (task {}): {summary} — {} steps, est. {}. Every step is one the policy \
allows without asking, so it is running now.\n\n```\n{}\n```",
                    task.id,
                    plan.steps.len(),
                    dollars(cost),
                    render(&plan.steps)
                );
                self.runner.say(&planned, text).await;
            }
            return self.current(planned).await;
        }

        let preview = Preview {
            summary: format!("Run plan: {summary} ({} steps, est. {})", plan.steps.len(), dollars(cost)),
            targets: self.preview_targets(&plan),
            details: Some(render(&plan.steps)),
        };
        let call = ToolCall::new(task.id.clone(), RUN_TASK, serde_json::json!({"task_id": task.id}).to_string());
        let approval = match self
            .engine
            .request_approval(&task.conversation_id, PLANNER_AGENT, &call, plan.effect(), preview)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return self.fail_planning(planned, format!("the plan could not be put up for approval: {e}")).await
            }
        };
        let mut change = TaskTransition::to(TaskStatus::AwaitingApproval, self.runner.now());
        change.approval_id = Some(approval.id.clone());
        if !store.set_task_status(&task.id, TaskStatus::Planning, &change).await? {
            // Cancelled while the approval was being asked: withdraw it.
            if let Err(e) = self.engine.decide(&approval.id, false, "system:cancel", ApprovalScope::Once).await {
                tracing::warn!(error = %e, approval = %approval.id, "could not withdraw a cancelled task's approval");
            }
            return self.current(planned).await;
        }
        let line = format!("waiting for approval {} of the whole plan", approval.id);
        self.runner.log(&task.id, None, LogLevel::Info, &line).await;
        let detail = serde_json::json!({
            "approval_id": approval.id, "steps": plan.steps.len(), "estimated_cost_usd": cost,
            "effect": approval.effect.as_str(),
        });
        self.runner.audit(&format!("agent:{PLANNER_AGENT}"), "task.planned", &task.id, detail).await;
        self.runner.emit(&task.id, TaskStatus::AwaitingApproval, None, Some(line));
        let minutes = ((approval.expires_at - approval.created_at) / 60_000).max(1);
        let text = format!(
            "Plan for your request (task {}): {summary} — {} steps, est. {}.\n\n```\n{}\n```\n\nThis needs your \
approval before anything runs ({}). Reply 'approve' to run the whole plan, or 'reject' to drop it. It expires in \
{minutes} minutes.",
            task.id,
            plan.steps.len(),
            dollars(cost),
            render(&plan.steps),
            approval.id
        );
        self.runner.say(&planned, text).await;
        self.current(planned).await
    }

    /// Whether any step is one the policy asks about (the checks already
    /// refused plans with a step it denies).
    fn needs_approval(&self, plan: &Plan) -> bool {
        let tools = self.engine.tools();
        plan.steps.iter().any(|s| match tools.get(&s.tool) {
            Some(tool) => self.runner.policy().decide(&CallFacts::of(tool.spec(), &s.arguments)) != Decision::Allow,
            None => true,
        })
    }

    /// The entities the plan's steps name, for the approval's preview.
    fn preview_targets(&self, plan: &Plan) -> Vec<PreviewTarget> {
        let tools = self.engine.tools();
        let mut targets: Vec<PreviewTarget> = Vec::new();
        for s in &plan.steps {
            let Some(tool) = tools.get(&s.tool) else { continue };
            for entity in CallFacts::of(tool.spec(), &s.arguments).entities {
                if !targets.iter().any(|t| t.id == entity) {
                    targets.push(PreviewTarget { id: entity, name: None, state: None });
                }
            }
        }
        targets
    }

    async fn fail_planning(&self, task: Task, reason: String) -> Result<Task, TaskError> {
        let change = TaskTransition::to(TaskStatus::Failed, self.runner.now()).with_error(reason.clone());
        if self.runner.store().set_task_status(&task.id, TaskStatus::Planning, &change).await? {
            self.runner.log(&task.id, None, LogLevel::Error, &reason).await;
            self.runner.audit("system", "task.failed", &task.id, serde_json::json!({"reason": reason})).await;
            self.runner.emit_last(&task.id, TaskStatus::Failed, Some(reason.clone()));
            self.runner.say(&task, format!("I could not make a plan for this (task {}): {reason}", task.id)).await;
        }
        self.current(task).await
    }

    async fn current(&self, task: Task) -> Result<Task, TaskError> {
        Ok(self.runner.store().get_task(&task.id).await?.unwrap_or(task))
    }

    /// Cancels a task: a waiting plan is rejected, a running task starts
    /// nothing new (steps already running finish their call; pending ones
    /// are cancelled). Cancelling a cancelled task changes nothing; a task
    /// that already ended otherwise is a conflict.
    pub async fn cancel(&self, id: &str, actor: &str) -> Result<Task, TaskError> {
        let store = self.runner.store();
        // A status that changes under us (approved, finished) is read again.
        for _ in 0..5 {
            let task = self.get(id).await?.ok_or_else(|| TaskError::NotFound(id.to_string()))?;
            let reason = format!("cancelled by {actor}");
            let change = TaskTransition::to(TaskStatus::Cancelled, self.runner.now()).with_error(reason.clone());
            match task.status {
                TaskStatus::Cancelled => return Ok(task),
                TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Rejected => {
                    return Err(TaskError::Conflict(format!(
                        "task {id} already {}; only a task that is planning, waiting for approval or running can \
be cancelled",
                        task.status.as_str()
                    )))
                }
                TaskStatus::Planning | TaskStatus::AwaitingApproval => {
                    if !store.set_task_status(id, task.status, &change).await? {
                        continue;
                    }
                    if let Some(approval) = &task.approval_id {
                        match self.engine.decide(approval, false, actor, ApprovalScope::Once).await {
                            Ok(_)
                            | Err(
                                DecideError::AlreadyDecided(_) | DecideError::Expired(_) | DecideError::NotFound(_),
                            ) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, approval = %approval, "could not reject a cancelled plan")
                            }
                        }
                    }
                    self.runner.log(id, None, LogLevel::Warn, &format!("{reason}; nothing was run")).await;
                    self.runner
                        .audit(actor, "task.cancelled", id, serde_json::json!({"was": task.status.as_str()}))
                        .await;
                    self.runner.emit_last(id, TaskStatus::Cancelled, Some(reason.clone()));
                    self.runner.say(&task, format!("Task {id} was {reason} before it ran; nothing was run.")).await;
                    return self.current(task).await;
                }
                TaskStatus::Running => {
                    if !store.set_task_status(id, TaskStatus::Running, &change).await? {
                        continue;
                    }
                    let line = format!("{reason}; steps already running finish their call, nothing new starts");
                    self.runner.log(id, None, LogLevel::Warn, &line).await;
                    self.runner.audit(actor, "task.cancelled", id, serde_json::json!({"was": "running"})).await;
                    self.runner.emit(id, TaskStatus::Cancelled, None, Some(line));
                    self.runner.signal_cancel(id);
                    return self.current(task).await;
                }
            }
        }
        Err(TaskError::Conflict(format!("task {id} kept changing while it was being cancelled; try again")))
    }
}

/// A conversation title from a request: its first line, shortened.
fn title_from(request: &str) -> String {
    let line = request.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let mut title: String = line.chars().take(TITLE_CHARS).collect();
    if line.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    title
}
