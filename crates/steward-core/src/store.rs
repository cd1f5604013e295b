//! Persistence, behind a trait. `steward-store` implements it with sqlx for
//! SQLite (the embedded default) and PostgreSQL.

use async_trait::async_trait;
use steward_protocol::api::{CatalogEntity, Conversation, StoredMessage};
use steward_protocol::approval::{Approval, ApprovalScope, ApprovalStatus};
use steward_protocol::insight::Insight;
use steward_protocol::task::{ExecutionLog, LogLevel, StepStatus, Task, TaskStatus, TaskStep};
use steward_protocol::Message;

use crate::audit::{AuditEntry, NewAuditEntry};
use crate::snapshots::{Loaded, SaveOutcome, Snapshot, SnapshotSpec, SnapshotSummary, StateCounts};
use crate::usage::{UsageGroup, UsageRecord, UsageTotal};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation '{0}' not found")]
    ConversationNotFound(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A message to append; the store assigns its id, position and time.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: String,
    pub message: Message,
    /// The turn that produced it, for tracing.
    pub turn_id: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn create_conversation(&self, agent: &str, title: Option<&str>) -> Result<Conversation, StoreError>;

    async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;

    /// Most recently updated first.
    async fn list_conversations(&self, limit: u32) -> Result<Vec<Conversation>, StoreError>;

    /// Appends messages in order, atomically, and bumps the conversation's
    /// `updated_at`. Fails with `ConversationNotFound` if it does not exist.
    async fn append_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<StoredMessage>, StoreError>;

    /// In order of `seq`.
    async fn list_messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError>;

    /// Records the fingerprint of the transcript a history-resending client
    /// has now seen in this conversation (see `engine::fingerprint`).
    async fn set_client_fingerprint(&self, conversation_id: &str, fingerprint: &str) -> Result<(), StoreError>;

    /// The most recently updated conversation whose transcript has this
    /// fingerprint.
    async fn find_by_client_fingerprint(&self, fingerprint: &str) -> Result<Option<Conversation>, StoreError>;

    /// Appends one model call to the usage ledger.
    async fn record_usage(&self, record: &UsageRecord) -> Result<(), StoreError>;

    /// Ledger totals of calls made at or after `since_ms`, by `group`,
    /// ordered by key.
    async fn usage_totals(&self, since_ms: i64, group: UsageGroup) -> Result<Vec<UsageTotal>, StoreError>;

    /// Appends one entry to the tamper-evident audit log: assigns the next
    /// `seq` and the time, redacts secrets from `detail`
    /// ([`crate::audit::redact`]) and chains the hashes, atomically, so
    /// concurrent appends form one chain. Stores without an audit log
    /// refuse.
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let _ = entry;
        Err(StoreError::Database("this store keeps no audit log".into()))
    }

    /// Audit entries with `seq > after_seq`, in order of `seq`, at most `limit`.
    async fn list_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let _ = (after_seq, limit);
        Err(StoreError::Database("this store keeps no audit log".into()))
    }

    /// Stores a new approval (its status is `pending`).
    async fn create_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        let _ = approval;
        Err(no_approvals())
    }

    async fn get_approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let _ = id;
        Err(no_approvals())
    }

    /// Newest first, at most `limit`.
    async fn list_approvals(&self, filter: &ApprovalFilter, limit: u32) -> Result<Vec<Approval>, StoreError> {
        let _ = (filter, limit);
        Err(no_approvals())
    }

    /// Decides a pending approval: `approved`, `rejected` or `expired`,
    /// atomically and only if it is still pending, so of two simultaneous
    /// decisions exactly one takes effect. Returns the approval as decided,
    /// or `None` when it was no longer pending (or does not exist).
    async fn decide_approval(&self, id: &str, decision: &ApprovalDecision) -> Result<Option<Approval>, StoreError> {
        let _ = (id, decision);
        Err(no_approvals())
    }

    /// Claims an approved action for execution: records `started_at` only
    /// if the approval is `approved` and was never started. `true` means
    /// the caller, and nobody else ever, runs it.
    async fn claim_approval(&self, id: &str, started_at: i64) -> Result<bool, StoreError> {
        let _ = (id, started_at);
        Err(no_approvals())
    }

    /// Records how a claimed action ended: `executed` or `failed`, with its
    /// outcome. Only an `approved` approval changes; returns it.
    async fn finish_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        outcome: &str,
        finished_at: i64,
    ) -> Result<Option<Approval>, StoreError> {
        let _ = (id, status, outcome, finished_at);
        Err(no_approvals())
    }

    /// Whether a person approved calls of `kind` for the rest of this
    /// conversation.
    async fn has_conversation_grant(&self, conversation_id: &str, kind: &str) -> Result<bool, StoreError> {
        let _ = (conversation_id, kind);
        Err(no_approvals())
    }

    /// Replaces the whole entity catalog, atomically (a full sync).
    async fn replace_entities(&self, entities: &[CatalogEntity]) -> Result<(), StoreError> {
        let _ = entities;
        Err(no_catalog())
    }

    /// Adds or updates one entity of the catalog.
    async fn upsert_entity(&self, entity: &CatalogEntity) -> Result<(), StoreError> {
        let _ = entity;
        Err(no_catalog())
    }

    async fn remove_entity(&self, entity_id: &str) -> Result<(), StoreError> {
        let _ = entity_id;
        Err(no_catalog())
    }

    /// Catalog entities matching `filter`, by entity id, and how many
    /// matched before the limit.
    async fn list_entities(&self, filter: &EntityFilter) -> Result<(Vec<CatalogEntity>, usize), StoreError> {
        let _ = filter;
        Err(no_catalog())
    }

    /// Turns debug mode (tool inputs and outputs streamed verbatim, secrets
    /// redacted) on or off for one conversation.
    async fn set_conversation_debug(&self, conversation_id: &str, debug: bool) -> Result<(), StoreError> {
        let _ = (conversation_id, debug);
        Err(StoreError::Database("this store keeps no conversation settings".into()))
    }

    // ---- Tasks and plans (`crate::tasks`) ----------------------------------
    // Every status change is conditional on the current status, so a cancel
    // and a finish (or two runners) racing on the same task have one winner.

    /// Stores a new task with its steps (none yet while it is planning).
    async fn create_task(&self, task: &Task) -> Result<(), StoreError> {
        let _ = task;
        Err(no_tasks())
    }

    /// A task with its steps, in plan order.
    async fn get_task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let _ = id;
        Err(no_tasks())
    }

    /// Newest first, at most `limit`, with their steps.
    async fn list_tasks(&self, limit: u32) -> Result<Vec<Task>, StoreError> {
        let _ = limit;
        Err(no_tasks())
    }

    /// Tasks in any of `statuses`, newest first, at most `limit` (for
    /// recovery after a restart).
    async fn tasks_in_status(&self, statuses: &[TaskStatus], limit: u32) -> Result<Vec<Task>, StoreError> {
        let _ = (statuses, limit);
        Err(no_tasks())
    }

    /// Records the plan of a task that is still `planning`: its steps, the
    /// summary and the total estimate. `false` when it no longer plans (it
    /// was cancelled meanwhile).
    async fn set_task_plan(&self, id: &str, plan: &TaskPlan) -> Result<bool, StoreError> {
        let _ = (id, plan);
        Err(no_tasks())
    }

    /// Moves a task from `from` to `change.to`, atomically and only if it
    /// is still in `from`. `true` when this call made the change.
    async fn set_task_status(&self, id: &str, from: TaskStatus, change: &TaskTransition) -> Result<bool, StoreError> {
        let _ = (id, from, change);
        Err(no_tasks())
    }

    /// Changes a step, atomically and only if its status is one of `from`.
    /// A step only moves to `running` while its task is `running`, so a
    /// cancelled task starts nothing new. `true` when this call changed it.
    async fn update_step(
        &self,
        task_id: &str,
        step_id: &str,
        from: &[StepStatus],
        update: &StepUpdate,
    ) -> Result<bool, StoreError> {
        let _ = (task_id, step_id, from, update);
        Err(no_tasks())
    }

    /// Appends a line to a task's execution log (the store assigns `seq`
    /// and the time).
    async fn append_execution_log(
        &self,
        task_id: &str,
        step_id: Option<&str>,
        level: LogLevel,
        message: &str,
    ) -> Result<ExecutionLog, StoreError> {
        let _ = (task_id, step_id, level, message);
        Err(no_tasks())
    }

    /// A task's execution log, in order of `seq`.
    async fn list_execution_logs(&self, task_id: &str) -> Result<Vec<ExecutionLog>, StoreError> {
        let _ = task_id;
        Err(no_tasks())
    }
    // ---- end of tasks and plans --------------------------------------------

    // ---- Insights (`crate::insights`) ---------------------------------------

    /// Stores a new insight. Its `chart_url` is not stored: it follows from
    /// the id ([`crate::insights::chart_url`]) whenever a chart is present.
    async fn create_insight(&self, insight: &Insight) -> Result<(), StoreError> {
        let _ = insight;
        Err(no_insights())
    }

    /// An insight with its evidence and chart, and `chart_url` set when it
    /// has a chart.
    async fn get_insight(&self, id: &str) -> Result<Option<Insight>, StoreError> {
        let _ = id;
        Err(no_insights())
    }

    /// Insights matching `filter`, newest first, at most `filter.limit`.
    async fn list_insights(&self, filter: &InsightFilter) -> Result<Vec<Insight>, StoreError> {
        let _ = filter;
        Err(no_insights())
    }
    // ---- end of insights ---------------------------------------------------

    // ---- Snapshots (`crate::snapshots`) -------------------------------------

    /// How many conversations, messages and insights the memory holds now
    /// (`entities` is left 0: the home is not the store's).
    async fn memory_counts(&self) -> Result<StateCounts, StoreError> {
        Err(no_snapshots())
    }

    /// Saves the memory as it is now (every conversation with its settings
    /// and messages, every insight) with `spec.home` as snapshot
    /// `spec.name`, reading and writing in one transaction. An existing
    /// snapshot of that name is replaced only when `replace` is set.
    async fn save_snapshot(&self, spec: &SnapshotSpec, replace: bool) -> Result<SaveOutcome, StoreError> {
        let _ = (spec, replace);
        Err(no_snapshots())
    }

    /// Every snapshot's summary, newest first.
    async fn list_snapshots(&self) -> Result<Vec<SnapshotSummary>, StoreError> {
        Err(no_snapshots())
    }

    /// A snapshot with its body.
    async fn get_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        let _ = name;
        Err(no_snapshots())
    }

    /// In one transaction: saves the memory as it is now as `backup` (under
    /// a free name starting with `backup.name`), then makes the memory
    /// exactly snapshot `name`'s. `None`, with nothing changed, when there
    /// is no such snapshot. Approvals, tasks, the audit log and the usage
    /// ledger are never touched, so a conversation an approval or a task
    /// refers to that the snapshot lacks is kept as it is (and named in
    /// [`Loaded::kept_conversations`]).
    async fn load_snapshot(&self, name: &str, backup: &SnapshotSpec) -> Result<Option<Loaded>, StoreError> {
        let _ = (name, backup);
        Err(no_snapshots())
    }
    // ---- end of snapshots --------------------------------------------------
}

fn no_catalog() -> StoreError {
    StoreError::Database("this store keeps no entity catalog".into())
}

/// Which catalog entities to list. Every set field must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityFilter {
    pub domain: Option<String>,
    /// An area id or an area name, any case.
    pub area: Option<String>,
    /// Words that must all appear in the id, name, aliases, area or device.
    pub search: Option<String>,
    pub limit: u32,
}

impl Default for EntityFilter {
    fn default() -> Self {
        EntityFilter { domain: None, area: None, search: None, limit: 1000 }
    }
}

/// The lower-cased text an entity's free-text search matches.
pub fn entity_search_text(e: &CatalogEntity) -> String {
    let mut parts = vec![e.entity_id.clone(), e.name.clone()];
    parts.extend(e.aliases.iter().cloned());
    parts.extend(e.area.iter().cloned());
    parts.extend(e.area_id.iter().cloned());
    parts.extend(e.device.iter().cloned());
    parts.join(" | ").to_lowercase()
}

fn no_approvals() -> StoreError {
    StoreError::Database("this store keeps no approvals".into())
}

/// Which approvals to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub conversation_id: Option<String>,
}

/// A person's (or the clock's) decision on a pending approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// `Approved`, `Rejected` or `Expired`.
    pub status: ApprovalStatus,
    pub decided_by: String,
    pub decided_at: i64,
    pub scope: Option<ApprovalScope>,
}

// ---- Tasks and plans (`crate::tasks`) --------------------------------------

fn no_tasks() -> StoreError {
    StoreError::Database("this store keeps no tasks".into())
}

/// A plan to record on a task that is planning.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPlan {
    pub summary: String,
    pub estimated_cost_usd: f64,
    pub steps: Vec<TaskStep>,
    pub at: i64,
}

/// A task's move to another status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTransition {
    pub to: TaskStatus,
    pub at: i64,
    /// Recorded when set (why it failed, was rejected or cancelled).
    pub error: Option<String>,
    /// Recorded when set (the plan's approval).
    pub approval_id: Option<String>,
}

impl TaskTransition {
    pub fn to(to: TaskStatus, at: i64) -> Self {
        TaskTransition { to, at, error: None, approval_id: None }
    }

    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// A step's move to another status; unset fields keep their value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpdate {
    pub status: StepStatus,
    pub attempts: Option<u32>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl StepUpdate {
    pub fn to(status: StepStatus) -> Self {
        StepUpdate { status, attempts: None, output: None, error: None, started_at: None, finished_at: None }
    }
}

// ---- Insights (`crate::insights`) ------------------------------------------

fn no_insights() -> StoreError {
    StoreError::Database("this store keeps no insights".into())
}

/// Which insights to list. Every set field must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightFilter {
    /// `energy`, `note` …
    pub kind: Option<String>,
    /// Only insights about this entity.
    pub entity_id: Option<String>,
    pub limit: u32,
}

impl Default for InsightFilter {
    fn default() -> Self {
        InsightFilter { kind: None, entity_id: None, limit: 100 }
    }
}

// ---- Snapshots (`crate::snapshots`) ----------------------------------------

fn no_snapshots() -> StoreError {
    StoreError::Database("this store keeps no snapshots".into())
}
