//! Running an approved plan: steps in dependency order, independent ones at
//! the same time, each under the policy, its tool's timeout and output cap,
//! with retries for transient failures; and picking tasks up again after a
//! restart.
//!
//! Failures. A step whose call times out or whose tool reports a failure
//! ([`ToolError::Failed`]) is tried again, up to [`RunnerOptions::max_attempts`]
//! calls with the waits doubling from [`RunnerOptions::backoff`]; every
//! attempt gets the same per-step idempotency key, so a tool that honours
//! one applies the step once. Invalid arguments, a panic, a missing tool and
//! a policy that denies are permanent at once. A step that failed for good
//! fails the task, and every step that depends on it, directly or not, is
//! skipped with the reason; branches that do not depend on it run on.
//!
//! Restart. A task found `running` at start-up resumes: a step that was
//! running when the process stopped is run again only if its tool only
//! reads; one that could change the world may or may not have taken effect,
//! so it is marked failed ("interrupted by a restart; not run again") and its
//! dependents are skipped. Pending steps whose dependencies succeeded run as
//! usual.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use steward_protocol::task::{LogLevel, StepStatus, Task, TaskStatus, TaskStep};
use steward_protocol::{Effect, Event, Message};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::activity::Activity;
use crate::audit::NewAuditEntry;
use crate::clock::Clock;
use crate::policy::{CallFacts, Decision, Policy};
use crate::redact::Redactor;
use crate::store::{NewMessage, StepUpdate, Store, StoreError, TaskTransition};
use crate::tool::{cap_output, ApprovalRef, Tool, ToolContext, ToolError, ToolRegistry, ToolSpec};

use super::plan::{dollars, RUN_TASK};

/// Events a slow reader may fall behind by before it misses some.
const EVENT_BUFFER: usize = 256;

/// Characters of a step's output quoted in its log line.
const LOG_OUTPUT_CHARS: usize = 300;

/// How the runner paces and retries.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Steps of one task running at once at most.
    pub max_parallel: usize,
    /// Calls per step at most, the first included.
    pub max_attempts: u32,
    /// The wait before the second call; it doubles before each next one.
    pub backoff: Duration,
    /// Where task progress is also published (the engine's activity stream).
    pub activity: Activity,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            max_parallel: 4,
            max_attempts: 3,
            backoff: Duration::from_millis(500),
            activity: Activity::default(),
        }
    }
}

/// Everything a runner is built from.
pub struct RunnerParts {
    pub store: Arc<dyn Store>,
    /// The tools steps may call (the engine's, without `run_task`).
    pub tools: ToolRegistry,
    pub policy: Arc<dyn Policy>,
    pub clock: Arc<dyn Clock>,
    /// Blanks secrets in log lines and the audit log.
    pub redactor: Redactor,
    pub options: RunnerOptions,
}

/// Cancellation of one running task.
#[derive(Default)]
struct Control {
    cancelled: AtomicBool,
    notify: Notify,
}

impl Control {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once the task is cancelled.
    async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

struct Active {
    control: Arc<Control>,
    handle: tokio::task::JoinHandle<()>,
}

/// Runs tasks. Cheap to share (`Arc`); one per process.
pub struct TaskRunner {
    pub(super) store: Arc<dyn Store>,
    pub(super) tools: ToolRegistry,
    policy: Arc<dyn Policy>,
    clock: Arc<dyn Clock>,
    redactor: Redactor,
    options: RunnerOptions,
    /// Progress events, by task id.
    channels: Mutex<HashMap<String, broadcast::Sender<Event>>>,
    /// Tasks being driven by this process, by id.
    active: Mutex<HashMap<String, Active>>,
}

/// How one call of a step's tool ended, when it did not succeed.
struct Failure {
    transient: bool,
    message: String,
}

/// How a step ended.
enum StepEnd {
    Succeeded {
        output: String,
        attempts: u32,
    },
    Failed {
        error: String,
        attempts: u32,
    },
    /// The task was cancelled between two attempts.
    Cancelled {
        error: String,
        attempts: u32,
    },
}

/// What a step runs with besides its own fields.
#[derive(Clone)]
struct StepRun {
    task_id: String,
    conversation_id: String,
    approval: Option<ApprovalRef>,
}

impl TaskRunner {
    pub fn new(parts: RunnerParts) -> Arc<Self> {
        Arc::new(TaskRunner {
            store: parts.store,
            tools: parts.tools,
            policy: parts.policy,
            clock: parts.clock,
            redactor: parts.redactor,
            options: parts.options,
            channels: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Progress of one task as [`Event::TaskUpdated`] events, from now on.
    pub fn subscribe(&self, task_id: &str) -> broadcast::Receiver<Event> {
        let active: HashSet<String> = self.active_ids();
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        // Channels of tasks nobody watches and nothing runs are dropped here.
        channels.retain(|id, tx| tx.receiver_count() > 0 || active.contains(id));
        channels.entry(task_id.to_string()).or_insert_with(|| broadcast::channel(EVENT_BUFFER).0).subscribe()
    }

    fn active_ids(&self) -> HashSet<String> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Whether this process is driving the task now.
    pub fn is_active(&self, task_id: &str) -> bool {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).contains_key(task_id)
    }

    /// Tells watchers what changed.
    pub(crate) fn emit(
        &self,
        task_id: &str,
        status: TaskStatus,
        step: Option<(&str, StepStatus)>,
        detail: Option<String>,
    ) {
        let event = Event::TaskUpdated {
            turn_id: String::new(),
            task_id: task_id.to_string(),
            status: status.as_str().to_string(),
            step_id: step.map(|(id, _)| id.to_string()),
            step_status: step.map(|(_, s)| s.as_str().to_string()),
            detail: detail.map(|d| self.redactor.text(&d)),
        };
        self.options.activity.publish(None, None, event.clone());
        if let Some(tx) = self.channels.lock().unwrap_or_else(|p| p.into_inner()).get(task_id) {
            let _ = tx.send(event);
        }
    }

    /// Sends a task's last event and ends its stream: readers drain what is
    /// buffered, then see the channel closed.
    pub(crate) fn emit_last(&self, task_id: &str, status: TaskStatus, detail: Option<String>) {
        self.emit(task_id, status, None, detail);
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).remove(task_id);
    }

    /// Adds a line to the task's execution log; a store that fails is
    /// logged, not fatal (the step's own record is what counts).
    pub(crate) async fn log(&self, task_id: &str, step_id: Option<&str>, level: LogLevel, message: &str) {
        let message = self.redactor.text(message);
        if let Err(e) = self.store.append_execution_log(task_id, step_id, level, &message).await {
            tracing::warn!(error = %e, task = %task_id, "could not write to the execution log");
        }
    }

    pub(crate) async fn audit(&self, actor: &str, action: &str, task_id: &str, detail: serde_json::Value) {
        let entry = NewAuditEntry::new(actor, action, task_id)
            .with_detail(self.redactor.json(&detail))
            .with_trace_id(task_id.to_string());
        if let Err(e) = self.store.append_audit(entry).await {
            tracing::warn!(error = %e, action, task = %task_id, "no audit entry written");
        }
    }

    /// Adds an assistant message to the task's conversation.
    pub(crate) async fn say(&self, task: &Task, text: String) {
        let message = NewMessage {
            conversation_id: task.conversation_id.clone(),
            message: Message::assistant(text),
            turn_id: Some(task.id.clone()),
        };
        if let Err(e) = self.store.append_messages(vec![message]).await {
            tracing::warn!(error = %e, task = %task.id, "could not add the task's outcome to its conversation");
        }
    }

    /// Moves a task to `running` (from `from`) and starts driving it.
    /// `false` when it was no longer in `from`.
    pub(crate) async fn begin(
        self: &Arc<Self>,
        task: &Task,
        from: TaskStatus,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        if !self.store.set_task_status(&task.id, from, &TaskTransition::to(TaskStatus::Running, now)).await? {
            return Ok(false);
        }
        let detail = format!("started by {actor}: {} steps", task.steps.len());
        self.log(&task.id, None, LogLevel::Info, &format!("task {detail}")).await;
        self.audit(
            actor,
            "task.started",
            &task.id,
            serde_json::json!({"approval_id": task.approval_id, "steps": task.steps.len()}),
        )
        .await;
        self.emit(&task.id, TaskStatus::Running, None, Some(detail));
        self.spawn(&task.id);
        Ok(true)
    }

    /// Starts driving a running task in the background, unless this process
    /// already does.
    pub(crate) fn spawn(self: &Arc<Self>, task_id: &str) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if active.contains_key(task_id) {
            return;
        }
        let control = Arc::new(Control::default());
        let span = tracing::info_span!("task", task_id = %task_id);
        let handle = tokio::spawn(self.clone().drive(task_id.to_string(), control.clone()).instrument(span));
        active.insert(task_id.to_string(), Active { control, handle });
    }

    /// Tells a task whose status is now `cancelled` to start nothing new;
    /// one nobody drives (yet) gets a driver that settles its steps.
    pub(crate) fn signal_cancel(self: &Arc<Self>, task_id: &str) {
        let signalled = match self.active.lock().unwrap_or_else(|p| p.into_inner()).get(task_id) {
            Some(a) => {
                a.control.cancel();
                true
            }
            None => false,
        };
        if !signalled {
            self.spawn(task_id);
        }
    }

    /// Stops every task this process drives, at once and mid-step, as a
    /// crash would, and waits until they have stopped; their records stay
    /// `running`, and [`Self::recover`] picks them up on the next start.
    /// For shutdown and tests.
    pub async fn abort_all(&self) {
        let drained: Vec<Active> =
            self.active.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, a)| a).collect();
        for a in &drained {
            a.handle.abort();
        }
        for a in drained {
            // Dropping a driver drops its steps' JoinSet, which aborts them.
            let _ = a.handle.await;
        }
    }

    /// Runs a task's steps until none is left to start, then records the
    /// outcome.
    async fn drive(self: Arc<Self>, task_id: String, control: Arc<Control>) {
        if let Err(e) = self.drive_steps(&task_id, &control).await {
            // The store failed under us: what ran is recorded step by step;
            // a restart resumes the rest.
            tracing::error!(error = %e, task = %task_id, "a task stopped on a database error; a restart resumes it");
        }
        self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&task_id);
    }

    async fn drive_steps(self: &Arc<Self>, task_id: &str, control: &Arc<Control>) -> Result<(), StoreError> {
        let Some(task) = self.store.get_task(task_id).await? else { return Ok(()) };
        let run = StepRun {
            task_id: task.id.clone(),
            conversation_id: task.conversation_id.clone(),
            approval: self.approval_ref(&task).await?,
        };
        let mut steps: HashMap<String, TaskStep> = task.steps.iter().map(|s| (s.id.clone(), s.clone())).collect();
        let order: Vec<String> = task.steps.iter().map(|s| s.id.clone()).collect();
        let mut running: JoinSet<(String, StepEnd)> = JoinSet::new();
        let mut stopped = match task.status {
            TaskStatus::Running => false,
            // Cancelled before this driver started: it only settles the steps.
            TaskStatus::Cancelled => true,
            TaskStatus::Planning
            | TaskStatus::AwaitingApproval
            | TaskStatus::Succeeded
            | TaskStatus::Failed
            | TaskStatus::Rejected => return Ok(()),
        };
        loop {
            self.skip_blocked(&task, &order, &mut steps).await?;
            if !stopped && !control.is_cancelled() {
                for id in ready(&order, &steps) {
                    if running.len() >= self.options.max_parallel.max(1) {
                        break;
                    }
                    let Some(step) = steps.get(&id).cloned() else { continue };
                    let mut update = StepUpdate::to(StepStatus::Running);
                    update.started_at = Some(self.now());
                    if !self.store.update_step(task_id, &id, &[StepStatus::Pending], &update).await? {
                        // The task is no longer running: cancelled.
                        stopped = true;
                        break;
                    }
                    if let Some(s) = steps.get_mut(&id) {
                        s.status = StepStatus::Running;
                    }
                    self.emit(
                        task_id,
                        TaskStatus::Running,
                        Some((&id, StepStatus::Running)),
                        Some(step.description.clone()),
                    );
                    running.spawn(self.clone().run_step(run.clone(), step, control.clone()));
                }
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                joined = running.join_next() => {
                    match joined {
                        Some(Ok((id, end))) => self.record_end(&task, &id, end, &mut steps).await?,
                        Some(Err(e)) => tracing::error!(error = %e, "a step's task ended unexpectedly"),
                        None => {}
                    }
                }
                _ = control.cancelled(), if !control.is_cancelled() => {}
            }
        }
        self.finish(&task, &order, &mut steps, stopped || control.is_cancelled()).await
    }

    /// The approval the steps run under, with the plan's idempotency key.
    async fn approval_ref(&self, task: &Task) -> Result<Option<ApprovalRef>, StoreError> {
        let Some(id) = &task.approval_id else { return Ok(None) };
        Ok(self.store.get_approval(id).await?.map(|a| ApprovalRef { id: a.id, idempotency_key: a.idempotency_key }))
    }

    /// Pending steps that can never run, because a step they depend on did
    /// not succeed, are skipped, saying which step and why.
    async fn skip_blocked(
        &self,
        task: &Task,
        order: &[String],
        steps: &mut HashMap<String, TaskStep>,
    ) -> Result<(), StoreError> {
        loop {
            let mut changed = false;
            for id in order {
                let Some(step) = steps.get(id) else { continue };
                if step.status != StepStatus::Pending {
                    continue;
                }
                let blocker = step
                    .depends_on
                    .iter()
                    .filter_map(|d| steps.get(d))
                    .find(|d| matches!(d.status, StepStatus::Failed | StepStatus::Skipped | StepStatus::Cancelled));
                let Some(blocker) = blocker else { continue };
                let reason = match blocker.status {
                    // Its reason already names the step that failed.
                    StepStatus::Skipped => {
                        blocker.error.clone().unwrap_or_else(|| format!("not run: step {} was skipped", blocker.id))
                    }
                    StepStatus::Failed
                    | StepStatus::Cancelled
                    | StepStatus::Pending
                    | StepStatus::Running
                    | StepStatus::Succeeded => format!(
                        "not run: step {} {}: {}",
                        blocker.id,
                        blocker.status.as_str(),
                        blocker.error.as_deref().unwrap_or("no reason recorded")
                    ),
                };
                let mut update = StepUpdate::to(StepStatus::Skipped);
                update.error = Some(reason.clone());
                update.finished_at = Some(self.now());
                let id = id.clone();
                if self.store.update_step(&task.id, &id, &[StepStatus::Pending], &update).await? {
                    self.log(&task.id, Some(&id), LogLevel::Warn, &reason).await;
                    self.emit(&task.id, TaskStatus::Running, Some((&id, StepStatus::Skipped)), Some(reason.clone()));
                }
                if let Some(s) = steps.get_mut(&id) {
                    s.status = StepStatus::Skipped;
                    s.error = Some(reason);
                }
                changed = true;
            }
            if !changed {
                return Ok(());
            }
        }
    }

    /// Records how a step ended.
    async fn record_end(
        &self,
        task: &Task,
        id: &str,
        end: StepEnd,
        steps: &mut HashMap<String, TaskStep>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let (status, attempts, output, error) = match end {
            StepEnd::Succeeded { output, attempts } => (StepStatus::Succeeded, attempts, Some(output), None),
            StepEnd::Failed { error, attempts } => (StepStatus::Failed, attempts, None, Some(error)),
            StepEnd::Cancelled { error, attempts } => (StepStatus::Cancelled, attempts, None, Some(error)),
        };
        let update = StepUpdate {
            status,
            attempts: Some(attempts),
            output: output.clone(),
            error: error.clone(),
            started_at: None,
            finished_at: Some(now),
        };
        self.store.update_step(&task.id, id, &[StepStatus::Running], &update).await?;
        let tool = steps.get(id).map(|s| s.tool.clone()).unwrap_or_default();
        let line = match (&output, &error) {
            (Some(out), _) => format!("finished: {} succeeded: {}", tool, clip(out, LOG_OUTPUT_CHARS)),
            (None, Some(e)) => format!("finished: {} {}: {e}", tool, status.as_str()),
            (None, None) => format!("finished: {} {}", tool, status.as_str()),
        };
        let level = if status == StepStatus::Succeeded { LogLevel::Info } else { LogLevel::Error };
        self.log(&task.id, Some(id), level, &line).await;
        self.audit(
            "system",
            "task.step.finished",
            &task.id,
            serde_json::json!({"step_id": id, "tool": tool, "status": status.as_str(), "attempts": attempts, "error": error}),
        )
        .await;
        self.emit(&task.id, TaskStatus::Running, Some((id, status)), error.clone().or(output.map(|o| clip(&o, 200))));
        if let Some(s) = steps.get_mut(id) {
            s.status = status;
            s.attempts = attempts;
            s.error = error;
        }
        Ok(())
    }

    /// Records the task's outcome once no step is left to start: every
    /// step succeeded, or which failed; on a cancel, pending steps are
    /// marked cancelled.
    async fn finish(
        &self,
        task: &Task,
        order: &[String],
        steps: &mut HashMap<String, TaskStep>,
        cancelled: bool,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut won = false;
        if !cancelled {
            let failed: Vec<&TaskStep> =
                order.iter().filter_map(|id| steps.get(id)).filter(|s| s.status != StepStatus::Succeeded).collect();
            let change = if failed.is_empty() {
                TaskTransition::to(TaskStatus::Succeeded, now)
            } else {
                TaskTransition::to(TaskStatus::Failed, now).with_error(failure_summary(order, steps))
            };
            won = self.store.set_task_status(&task.id, TaskStatus::Running, &change).await?;
        }
        if !won {
            // A cancel won (now or earlier): nothing pending will run.
            for id in order {
                if steps.get(id).map(|s| s.status) != Some(StepStatus::Pending) {
                    continue;
                }
                let mut update = StepUpdate::to(StepStatus::Cancelled);
                update.error = Some("not run: the task was cancelled".into());
                update.finished_at = Some(now);
                if self.store.update_step(&task.id, id, &[StepStatus::Pending], &update).await? {
                    self.emit(&task.id, TaskStatus::Cancelled, Some((id, StepStatus::Cancelled)), None);
                }
                if let Some(s) = steps.get_mut(id) {
                    s.status = StepStatus::Cancelled;
                }
            }
        }
        let Some(done) = self.store.get_task(&task.id).await? else { return Ok(()) };
        let summary = outcome_text(&done);
        let level = match done.status {
            TaskStatus::Succeeded => LogLevel::Info,
            TaskStatus::Cancelled => LogLevel::Warn,
            TaskStatus::Failed
            | TaskStatus::Rejected
            | TaskStatus::Planning
            | TaskStatus::AwaitingApproval
            | TaskStatus::Running => LogLevel::Error,
        };
        self.log(&task.id, None, level, &format!("task {}", done.status.as_str())).await;
        self.audit(
            "system",
            "task.finished",
            &task.id,
            serde_json::json!({"status": done.status.as_str(), "error": done.error}),
        )
        .await;
        self.say(&done, summary).await;
        self.emit_last(&task.id, done.status, done.error.clone());
        Ok(())
    }

    /// One step, with its retries.
    async fn run_step(self: Arc<Self>, run: StepRun, step: TaskStep, control: Arc<Control>) -> (String, StepEnd) {
        let span = tracing::info_span!("task_step", task_id = %run.task_id, step_id = %step.id, tool = %step.tool);
        let end = self.attempts(&run, &step, &control).instrument(span).await;
        (step.id, end)
    }

    async fn attempts(&self, run: &StepRun, step: &TaskStep, control: &Control) -> StepEnd {
        let max = self.options.max_attempts.max(1);
        let mut attempts = step.attempts;
        let mut wait = self.options.backoff;
        for n in 1..=max {
            attempts = attempts.saturating_add(1);
            // Counting the attempt also checks the task still runs.
            let mut update = StepUpdate::to(StepStatus::Running);
            update.attempts = Some(attempts);
            match self.store.update_step(&run.task_id, &step.id, &[StepStatus::Running], &update).await {
                Ok(true) => {}
                Ok(false) => {
                    return StepEnd::Cancelled {
                        error: "not run: the task was cancelled".into(),
                        attempts: attempts - 1,
                    }
                }
                Err(e) => return StepEnd::Failed { error: format!("could not record the attempt: {e}"), attempts },
            }
            let line = if n == 1 { "started".to_string() } else { format!("attempt {n} of {max} started") };
            self.log(&run.task_id, Some(&step.id), LogLevel::Info, &line).await;
            let failure = match self.call_once(run, step, attempts).await {
                Ok(output) => return StepEnd::Succeeded { output, attempts },
                Err(f) => f,
            };
            if !failure.transient || n == max {
                let error = if n > 1 { format!("{} (after {n} attempts)", failure.message) } else { failure.message };
                return StepEnd::Failed { error, attempts };
            }
            let line = format!("attempt {n} failed: {}; retrying in {}", failure.message, human(wait));
            self.log(&run.task_id, Some(&step.id), LogLevel::Warn, &line).await;
            self.emit(&run.task_id, TaskStatus::Running, Some((&step.id, StepStatus::Running)), Some(line));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = control.cancelled() => {
                    return StepEnd::Cancelled {
                        error: format!("cancelled before attempt {} (attempt {n} failed: {})", n + 1, failure.message),
                        attempts,
                    };
                }
            }
            wait = wait.saturating_mul(2);
        }
        StepEnd::Failed { error: "no attempt was made".into(), attempts }
    }

    /// One call of a step's tool, under the policy, its timeout and cap.
    async fn call_once(&self, run: &StepRun, step: &TaskStep, attempt: u32) -> Result<String, Failure> {
        let permanent = |message: String| Failure { transient: false, message };
        let Some(tool) = self.tools.get(&step.tool).filter(|t| t.spec().name != RUN_TASK) else {
            return Err(permanent(format!("the tool '{}' no longer exists; nothing was run", step.tool)));
        };
        let spec = tool.spec();
        let facts = CallFacts::of(spec, &step.arguments);
        let decision = self.policy.decide(&facts);
        match decision {
            Decision::Allow => {}
            Decision::Ask if run.approval.is_some() => {}
            Decision::Ask => {
                return Err(permanent(format!(
                    "not run: the policy now asks before '{}', and this plan ran without an approval; send the \
request again to approve it",
                    spec.name
                )))
            }
            Decision::Deny => {
                return Err(permanent(format!("not run: the policy denies '{}'. Nothing was changed.", spec.name)))
            }
        }
        let ctx = ToolContext {
            turn_id: run.task_id.clone(),
            conversation_id: run.conversation_id.clone(),
            agent: step.agent.clone(),
            call_id: format!("{}_{}_{attempt}", run.task_id, step.id),
            // One key per step, the same for each attempt, so a tool that
            // honours it applies the step once however often it is retried.
            approval: run.approval.as_ref().map(|a| ApprovalRef {
                id: a.id.clone(),
                idempotency_key: format!("{}/{}", a.idempotency_key, step.id),
            }),
            progress: None,
        };
        let result = call_tool(tool.as_ref(), step.arguments.clone(), &ctx).await;
        if spec.effect != Effect::Read {
            let outcome = if result.is_ok() { "ok" } else { "error" };
            let entry = NewAuditEntry::new(format!("agent:{}", step.agent), "tool.executed", spec.name.clone())
                .with_targets(facts.entities.iter().cloned())
                .with_detail(self.redactor.json(&serde_json::json!({
                    "task_id": run.task_id, "step_id": step.id, "attempt": attempt, "outcome": outcome,
                    "decision": decision.as_str(), "arguments": step.arguments,
                })))
                .with_trace_id(run.task_id.clone());
            if let Err(e) = self.store.append_audit(entry).await {
                tracing::warn!(error = %e, "no audit entry written");
            }
        }
        result
    }
}

/// Steps whose dependencies all succeeded and that have not started, in
/// plan order.
fn ready(order: &[String], steps: &HashMap<String, TaskStep>) -> Vec<String> {
    order
        .iter()
        .filter(|id| {
            steps.get(*id).is_some_and(|s| {
                s.status == StepStatus::Pending
                    && s.depends_on.iter().all(|d| steps.get(d).is_some_and(|d| d.status == StepStatus::Succeeded))
            })
        })
        .cloned()
        .collect()
}

/// Runs a tool once under its timeout, catching a panic and capping its
/// output, like the engine's own calls; says whether a failure may pass.
async fn call_tool(tool: &dyn Tool, arguments: serde_json::Value, ctx: &ToolContext) -> Result<String, Failure> {
    let spec: &ToolSpec = tool.spec();
    let running = AssertUnwindSafe(tool.call(arguments, ctx)).catch_unwind();
    match tokio::time::timeout(spec.timeout, running).await {
        Ok(Ok(Ok(output))) => Ok(cap_output(output, spec.output_cap, &spec.name).0),
        Ok(Ok(Err(ToolError::Failed(m)))) => {
            Err(Failure { transient: true, message: cap_output(m, spec.output_cap, &spec.name).0 })
        }
        Ok(Ok(Err(ToolError::InvalidArguments(m)))) => Err(Failure {
            transient: false,
            message: format!("invalid arguments: {}", cap_output(m, spec.output_cap, &spec.name).0),
        }),
        Ok(Err(_panic)) => {
            tracing::error!(tool = %spec.name, "the tool panicked");
            Err(Failure { transient: false, message: format!("'{}' failed unexpectedly (it panicked)", spec.name) })
        }
        Err(_) => Err(Failure {
            transient: true,
            message: format!("'{}' timed out after {}", spec.name, human(spec.timeout)),
        }),
    }
}

fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Why a task failed, naming the steps: "step s2 (set_switch) failed: …;
/// 1 step skipped".
fn failure_summary(order: &[String], steps: &HashMap<String, TaskStep>) -> String {
    let mut parts = Vec::new();
    let mut skipped = 0;
    for s in order.iter().filter_map(|id| steps.get(id)) {
        match s.status {
            StepStatus::Failed => parts.push(format!(
                "step {} ({}) failed: {}",
                s.id,
                s.tool,
                s.error.as_deref().unwrap_or("no reason recorded")
            )),
            StepStatus::Skipped => skipped += 1,
            StepStatus::Cancelled => parts.push(format!("step {} was cancelled", s.id)),
            StepStatus::Pending | StepStatus::Running | StepStatus::Succeeded => {}
        }
    }
    if skipped > 0 {
        parts.push(format!("{skipped} dependent step{} skipped", if skipped == 1 { "" } else { "s" }));
    }
    parts.join("; ")
}

/// The message a task's conversation gets when it ends.
pub(crate) fn outcome_text(task: &Task) -> String {
    let head = match task.status {
        TaskStatus::Succeeded => format!("Task {} succeeded", task.id),
        TaskStatus::Failed => format!("Task {} failed", task.id),
        TaskStatus::Cancelled => format!("Task {} was cancelled", task.id),
        TaskStatus::Rejected => format!("Task {} was rejected", task.id),
        TaskStatus::Planning | TaskStatus::AwaitingApproval | TaskStatus::Running => {
            format!("Task {} is {}", task.id, task.status.as_str())
        }
    };
    let mut text = match &task.plan_summary {
        Some(s) if !s.is_empty() => format!("{head}: {s}."),
        _ => format!("{head}."),
    };
    if let Some(e) = &task.error {
        text.push_str(&format!(" {e}."));
    }
    for s in &task.steps {
        let detail = match (s.status, &s.output, &s.error) {
            (StepStatus::Succeeded, Some(out), _) => clip(out, 200),
            (_, _, Some(e)) => e.clone(),
            _ => String::new(),
        };
        text.push_str(&format!("\n- {} {} ({}): {}", s.id, s.tool, s.status.as_str(), detail));
    }
    text.push_str(&format!("\nEstimated cost: {}.", dollars(task.estimated_cost_usd)));
    text
}
