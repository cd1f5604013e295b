//! Approvals: a call the policy says must ask becomes a persisted approval;
//! a person decides it (in chat, over the API or the CLI); an approved call
//! runs exactly once and its outcome goes back into the conversation.
//!
//! Only a person's words decide. In chat that is the newest user message of
//! a turn, and only when the whole message is an approval command
//! ([`parse_chat_decision`]); nothing a model writes, and nothing inside a
//! tool result or an entity name, is ever read as one. There is no tool that
//! approves.
//!
//! Exactly once: deciding is a conditional update from `pending` (of two
//! simultaneous decisions one wins), and running is claimed by a second
//! conditional update that records `started_at` before the tool is called.
//! After a crash, an approval found approved but never started runs once;
//! one found started is marked failed, never run again.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use steward_protocol::approval::{Approval, ApprovalScope, ApprovalStatus, Preview};
use steward_protocol::task::LogLevel;
use steward_protocol::{Effect, Message, ToolCall};

use super::Engine;
use crate::audit::NewAuditEntry;
use crate::policy::CallFacts;
use crate::store::{ApprovalDecision, ApprovalFilter, NewMessage, StoreError};
use crate::tool::{cap_output, ApprovalRef, Tool, ToolContext, ToolError, ToolProgress};

/// What a chat message that decides approvals asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatDecision {
    pub approve: bool,
    pub which: Which,
    pub scope: ApprovalScope,
}

/// Which approvals a chat decision names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// "approve": the one waiting (several waiting: the person is asked which).
    TheOne,
    /// "approve all"
    All,
    /// "approve apr_1a2b…": by id or an unambiguous prefix of one.
    Ids(Vec<String>),
}

/// Words that may accompany a decision without changing it.
const FILLER: &[&str] = &["it", "that", "this", "please", "the", "action", "call", "change"];

/// Reads a whole message as an approval command, or `None` when it is
/// anything else (which then goes to the model as usual).
///
/// Accepted: `approve`, `reject` (also `approved`, `deny`, `decline`),
/// followed by nothing, `all`, approval ids, and for approvals `always` or
/// `for this conversation` (the rest of this conversation); case and final
/// punctuation do not matter.
pub fn parse_chat_decision(text: &str) -> Option<ChatDecision> {
    let lower = text.trim().to_lowercase();
    let lower = lower.trim_end_matches(['.', '!']).trim();
    let (lower, conversation_phrase) =
        match ["for the rest of this conversation", "for this conversation"].iter().find_map(|p| lower.strip_suffix(p))
        {
            Some(rest) => (rest.trim(), true),
            None => (lower, false),
        };
    let mut words = lower.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty());
    let approve = match words.next()? {
        "approve" | "approved" => true,
        "reject" | "rejected" | "deny" | "decline" => false,
        _ => return None,
    };
    let mut all = false;
    let mut always = conversation_phrase;
    let mut ids = Vec::new();
    for word in words {
        match word {
            "all" | "them" | "both" => all = true,
            "always" => always = true,
            w if w.starts_with("apr_") && w.len() > 4 => ids.push(w.to_string()),
            w if FILLER.contains(&w) => {}
            _ => return None,
        }
    }
    if always && !approve {
        return None;
    }
    let which = match (all, ids.is_empty()) {
        (true, true) => Which::All,
        (false, true) => Which::TheOne,
        (false, false) => Which::Ids(ids),
        (true, false) => return None,
    };
    Some(ChatDecision { approve, which, scope: if always { ApprovalScope::Conversation } else { ApprovalScope::Once } })
}

/// The kind of call a conversation-scoped approval covers: the same tool,
/// the same action on the same entities (e.g.
/// `control_entity|turn_on|light.hallway`) — never new targets.
pub fn call_kind(facts: &CallFacts, arguments: &serde_json::Value) -> String {
    let mut entities = facts.entities.clone();
    entities.sort();
    entities.dedup();
    let action = arguments.get("action").and_then(|a| a.as_str()).unwrap_or("");
    format!("{}|{}|{}", facts.tool, action, entities.join(","))
}

/// Why a decision did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("approval '{0}' not found")]
    NotFound(String),
    #[error("approval '{}' is already {}{}", .0.id, .0.status.as_str(), by_whom(.0))]
    AlreadyDecided(Box<Approval>),
    #[error("approval '{}' expired before it was decided; ask again if it is still wanted", .0.id)]
    Expired(Box<Approval>),
    #[error("{0}")]
    ScopeRefused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn by_whom(a: &Approval) -> String {
    match &a.decided_by {
        Some(who) => format!(" (decided by {who})"),
        None => String::new(),
    }
}

/// A tool's output as a person wants to read it: for JSON that reports
/// entities, one line per entity and its new state; otherwise the text,
/// shortened.
fn readable_outcome(output: &str) -> String {
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                let id = map.get("entity_id").and_then(|i| i.as_str());
                let state = map.get("now").or_else(|| map.get("state")).and_then(|s| s.as_str());
                if let (Some(id), Some(state)) = (id, state) {
                    let name = map.get("name").and_then(|n| n.as_str()).map(|n| format!("{n} ({id})"));
                    out.push(format!("{} is now {state}", name.unwrap_or_else(|| id.to_string())));
                } else {
                    map.values().for_each(|v| collect(v, out));
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let output = output.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(output) {
        let mut lines = Vec::new();
        collect(&v, &mut lines);
        if !lines.is_empty() {
            let more = lines.len().saturating_sub(10);
            lines.truncate(10);
            if more > 0 {
                lines.push(format!("and {more} more"));
            }
            return lines.join("\n");
        }
    }
    if output.chars().count() > 400 {
        format!("{}…", output.chars().take(400).collect::<String>())
    } else {
        output.to_string()
    }
}

/// How an approval turned out, for the person and the conversation.
fn outcome_line(a: &Approval) -> String {
    let outcome = readable_outcome(a.outcome.as_deref().unwrap_or(""));
    match a.status {
        ApprovalStatus::Executed => format!("Done ({}): {}.\n{outcome}", a.id, a.preview.summary),
        ApprovalStatus::Failed => format!("Failed ({}): {}. {outcome}", a.id, a.preview.summary),
        ApprovalStatus::Rejected => format!("Rejected ({}): {}. Nothing was changed.", a.id, a.preview.summary),
        ApprovalStatus::Expired => format!("Expired ({}): {}. Nothing was changed.", a.id, a.preview.summary),
        ApprovalStatus::Approved => format!("Approved ({}): {}; it is running.", a.id, a.preview.summary),
        ApprovalStatus::Pending => format!("Waiting ({}): {}.", a.id, a.preview.summary),
    }
}

/// What the person is asked when calls wait for them.
pub(super) fn approval_prompt(approvals: &[Approval], ttl_minutes: i64) -> String {
    let mut text = String::from(if approvals.len() == 1 {
        "This needs your approval before anything changes:\n"
    } else {
        "These need your approval before anything changes:\n"
    });
    for a in approvals {
        text.push_str(&format!("\n- {}: {}", a.id, a.preview.summary));
        if let Some(details) = &a.preview.details {
            let lines: Vec<&str> = details.lines().take(40).collect();
            let more = details.lines().count().saturating_sub(lines.len());
            text.push_str(&format!("\n```\n{}\n```", lines.join("\n")));
            if more > 0 {
                text.push_str(&format!("\n({more} more lines in the approval)"));
            }
        }
    }
    let expires = format!("It expires in {ttl_minutes} minutes.");
    if approvals.len() == 1 {
        text.push_str(&format!(
            "\n\nReply 'approve' to proceed, 'approve always' to allow this kind of action for the rest of this \
conversation, or 'reject' to cancel. {expires}"
        ));
    } else {
        text.push_str(&format!(
            "\n\nReply 'approve all', 'approve <id>' for one of them, or 'reject all'. They expire in {ttl_minutes} \
minutes."
        ));
    }
    text
}

/// The tool-call message and result an executed approval adds to its
/// conversation, so later turns (and the model) know what happened.
fn outcome_messages(a: &Approval) -> Vec<Message> {
    if !matches!(a.status, ApprovalStatus::Executed | ApprovalStatus::Failed) {
        return Vec::new();
    }
    let call_id = format!("{}_run", a.id);
    let mut call = Message::assistant(String::new());
    call.tool_calls = vec![ToolCall::new(call_id.clone(), a.tool.clone(), a.arguments.to_string())];
    let result = match a.status {
        ApprovalStatus::Executed => {
            format!("approved by {} and executed: {}", a.decided_by.as_deref().unwrap_or("a person"), outcome_text(a))
        }
        _ => format!("approved by {} but failed: {}", a.decided_by.as_deref().unwrap_or("a person"), outcome_text(a)),
    };
    vec![call, Message::tool(call_id, a.tool.clone(), result)]
}

fn outcome_text(a: &Approval) -> &str {
    a.outcome.as_deref().unwrap_or("")
}

/// The result of running a tool once, whatever happened.
pub(super) struct Invocation {
    pub ok: bool,
    pub output: String,
    pub truncated: bool,
    /// `ok`, `error`, `panic` or `timeout`.
    pub outcome: &'static str,
}

/// Runs a tool under its timeout, catching a panic, capping its output.
pub(super) async fn invoke(tool: &dyn Tool, args: serde_json::Value, ctx: &ToolContext) -> Invocation {
    let spec = tool.spec();
    let running = AssertUnwindSafe(tool.call(args, ctx)).catch_unwind();
    match tokio::time::timeout(spec.timeout, running).await {
        Ok(Err(_panic)) => {
            tracing::error!(tool = %spec.name, "the tool panicked");
            Invocation {
                ok: false,
                output: format!("error: '{}' failed unexpectedly (it panicked); nothing more is known", spec.name),
                truncated: false,
                outcome: "panic",
            }
        }
        Ok(Ok(Ok(output))) => {
            let (output, truncated) = cap_output(output, spec.output_cap, &spec.name);
            Invocation { ok: true, output, truncated, outcome: "ok" }
        }
        Ok(Ok(Err(e))) => {
            let text = match e {
                ToolError::InvalidArguments(m) => format!("error: invalid arguments: {m}"),
                ToolError::Failed(m) => format!("error: {m}"),
            };
            let (output, truncated) = cap_output(text, spec.output_cap, &spec.name);
            Invocation { ok: false, output, truncated, outcome: "error" }
        }
        Err(_) => Invocation {
            ok: false,
            output: format!("error: '{}' timed out after {}", spec.name, super::human(spec.timeout)),
            truncated: false,
            outcome: "timeout",
        },
    }
}

/// What a restart found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Approved before the restart but never started: run now, once.
    pub resumed: Vec<String>,
    /// Started before the restart and never finished: marked failed.
    pub interrupted: Vec<String>,
}

impl Engine {
    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.inner.options.approval_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    pub(super) fn ttl_minutes(&self) -> i64 {
        (self.ttl_ms() / 60_000).max(1)
    }

    async fn audit_approval(&self, actor: &str, action: &str, a: &Approval, detail: serde_json::Value) {
        let mut d = serde_json::json!({
            "approval_id": a.id,
            "status": a.status.as_str(),
            "summary": a.preview.summary,
            "conversation_id": a.conversation_id,
        });
        if let (Some(obj), serde_json::Value::Object(extra)) = (d.as_object_mut(), detail) {
            obj.extend(extra);
        }
        let entry = NewAuditEntry::new(actor, action, a.tool.clone())
            .with_targets(a.targets.iter().cloned())
            .with_detail(self.inner.redactor.json(&d))
            .with_trace_id(a.turn_id.clone());
        if let Err(e) = self.inner.store.append_audit(entry).await {
            tracing::warn!(error = %e, action, approval = %a.id, "no audit entry written");
        }
        // Every change of an approval passes here: watchers of the activity
        // stream see it whoever made it (a chat, the API, expiry, recovery).
        let shown = serde_json::to_value(a)
            .ok()
            .and_then(|v| serde_json::from_value::<Approval>(self.inner.redactor.json(&v)).ok())
            .unwrap_or_else(|| a.clone());
        let event = if action == "approval.requested" {
            steward_protocol::Event::ApprovalRequested { turn_id: a.turn_id.clone(), approval: shown }
        } else {
            steward_protocol::Event::ApprovalUpdated { turn_id: a.turn_id.clone(), approval: shown }
        };
        self.activity().publish(Some(&a.conversation_id), Some(&a.agent), event);
    }

    /// Persists a new pending approval for a call the policy said must ask.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_approval(
        &self,
        ctx: &ToolContext,
        tool: &dyn Tool,
        arguments: &serde_json::Value,
        facts: &CallFacts,
        kind: String,
        preview: Preview,
    ) -> Result<Approval, StoreError> {
        let now = self.inner.clock.now_ms();
        let approval = Approval {
            id: format!("apr_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            conversation_id: ctx.conversation_id.clone(),
            turn_id: ctx.turn_id.clone(),
            agent: ctx.agent.clone(),
            call_id: ctx.call_id.clone(),
            tool: tool.spec().name.clone(),
            arguments: arguments.clone(),
            effect: tool.spec().effect,
            targets: facts.entities.clone(),
            preview,
            status: ApprovalStatus::Pending,
            kind,
            created_at: now,
            expires_at: now.saturating_add(self.ttl_ms()),
            decided_by: None,
            decided_at: None,
            scope: None,
            idempotency_key: format!("idem_{}", uuid::Uuid::new_v4().simple()),
            started_at: None,
            finished_at: None,
            outcome: None,
        };
        self.inner.store.create_approval(&approval).await?;
        self.audit_approval(
            &format!("agent:{}", ctx.agent),
            "approval.requested",
            &approval,
            serde_json::json!({"preview": approval.preview, "arguments": approval.arguments, "expires_at": approval.expires_at}),
        )
        .await;
        Ok(approval)
    }

    /// Asks a person to approve a call that no model turn made: a task's
    /// whole plan (`crate::tasks`). It is decided like any other approval
    /// (a chat reply in `conversation_id`, the API, the CLI) and, once
    /// approved, runs through the same exactly-once claim. `effect` may be
    /// stronger than the tool's own (a plan's strongest step). It names no
    /// targets, so it can only be approved once, never "always". `call.id`
    /// (a task id) becomes its turn and call id, tying the audit trail to
    /// what asked.
    pub async fn request_approval(
        &self,
        conversation_id: &str,
        agent: &str,
        call: &ToolCall,
        effect: Effect,
        preview: Preview,
    ) -> Result<Approval, super::EngineError> {
        let tool = self.inner.tools.get(&call.name).ok_or_else(|| {
            super::EngineError::InvalidInput(format!(
                "no tool named '{}' is registered, so nothing could run under this approval",
                call.name
            ))
        })?;
        let arguments = match serde_json::from_str::<serde_json::Value>(&call.arguments) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                return Err(super::EngineError::InvalidInput(format!(
                    "the arguments of '{}' must be a JSON object",
                    call.name
                )))
            }
        };
        if self.inner.store.get_conversation(conversation_id).await?.is_none() {
            return Err(super::EngineError::ConversationNotFound(conversation_id.to_string()));
        }
        let spec = tool.spec();
        let rank = |e: Effect| match e {
            Effect::Read => 0,
            Effect::Mutate => 1,
            Effect::Destructive => 2,
        };
        let effect = if rank(effect) > rank(spec.effect) { effect } else { spec.effect };
        let facts = CallFacts { tool: spec.name.clone(), effect, domains: Vec::new(), entities: Vec::new() };
        let now = self.inner.clock.now_ms();
        let approval = Approval {
            id: format!("apr_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            conversation_id: conversation_id.to_string(),
            turn_id: call.id.clone(),
            agent: agent.to_string(),
            call_id: call.id.clone(),
            tool: spec.name.clone(),
            kind: call_kind(&facts, &arguments),
            arguments,
            effect,
            targets: Vec::new(),
            preview,
            status: ApprovalStatus::Pending,
            created_at: now,
            expires_at: now.saturating_add(self.ttl_ms()),
            decided_by: None,
            decided_at: None,
            scope: None,
            idempotency_key: format!("idem_{}", uuid::Uuid::new_v4().simple()),
            started_at: None,
            finished_at: None,
            outcome: None,
        };
        self.inner.store.create_approval(&approval).await?;
        self.audit_approval(
            &format!("agent:{agent}"),
            "approval.requested",
            &approval,
            serde_json::json!({"preview": approval.preview, "arguments": approval.arguments, "expires_at": approval.expires_at}),
        )
        .await;
        Ok(approval)
    }

    /// One approval, brought up to date (a pending one past its expiry is
    /// marked expired).
    pub async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        match self.inner.store.get_approval(id).await? {
            Some(a) if a.status == ApprovalStatus::Pending && a.expires_at <= self.inner.clock.now_ms() => {
                Ok(Some(self.expire(a).await?))
            }
            other => Ok(other),
        }
    }

    /// Approvals, newest first, after expiring those past due.
    pub async fn approvals(&self, filter: &ApprovalFilter, limit: u32) -> Result<Vec<Approval>, StoreError> {
        self.expire_due().await?;
        self.inner.store.list_approvals(filter, limit).await
    }

    /// Marks every pending approval past its expiry as expired; returns them.
    pub async fn expire_due(&self) -> Result<Vec<Approval>, StoreError> {
        let now = self.inner.clock.now_ms();
        let filter = ApprovalFilter { status: Some(ApprovalStatus::Pending), conversation_id: None };
        let mut expired = Vec::new();
        for a in self.inner.store.list_approvals(&filter, 1000).await? {
            if a.expires_at <= now {
                expired.push(self.expire(a).await?);
            }
        }
        Ok(expired)
    }

    async fn expire(&self, a: Approval) -> Result<Approval, StoreError> {
        let decision = ApprovalDecision {
            status: ApprovalStatus::Expired,
            decided_by: "system:expiry".into(),
            decided_at: self.inner.clock.now_ms(),
            scope: None,
        };
        match self.inner.store.decide_approval(&a.id, &decision).await? {
            Some(expired) => {
                self.audit_approval("system:expiry", "approval.expired", &expired, serde_json::json!({})).await;
                Ok(expired)
            }
            // Someone decided it just now; report what they decided.
            None => Ok(self.inner.store.get_approval(&a.id).await?.unwrap_or(a)),
        }
    }

    /// Records a person's decision on a pending approval, without running it.
    pub(super) async fn record_decision(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        scope: ApprovalScope,
    ) -> Result<Approval, DecideError> {
        let current = self.inner.store.get_approval(id).await?.ok_or_else(|| DecideError::NotFound(id.to_string()))?;
        if current.status != ApprovalStatus::Pending {
            return Err(DecideError::AlreadyDecided(Box::new(current)));
        }
        if current.expires_at <= self.inner.clock.now_ms() {
            let expired = self.expire(current).await?;
            return Err(DecideError::Expired(Box::new(expired)));
        }
        if approve && scope == ApprovalScope::Conversation && current.effect == Effect::Destructive {
            return Err(DecideError::ScopeRefused(format!(
                "'{}' is destructive, so it can only be approved once, not for the rest of the conversation; \
approve it without 'always'",
                current.tool
            )));
        }
        if approve && scope == ApprovalScope::Conversation && current.targets.is_empty() {
            return Err(DecideError::ScopeRefused(format!(
                "'{}' names no entities, so 'this kind of call' would cover anything it can do; it can only be \
approved once: approve it without 'always'",
                current.tool
            )));
        }
        let decision = ApprovalDecision {
            status: if approve { ApprovalStatus::Approved } else { ApprovalStatus::Rejected },
            decided_by: actor.to_string(),
            decided_at: self.inner.clock.now_ms(),
            scope: approve.then_some(scope),
        };
        match self.inner.store.decide_approval(id, &decision).await? {
            Some(decided) => {
                let action = if approve { "approval.approved" } else { "approval.rejected" };
                self.audit_approval(actor, action, &decided, serde_json::json!({"scope": decided.scope})).await;
                Ok(decided)
            }
            // Another decision won the race, or the approval expired meanwhile.
            None => {
                let now = self.inner.store.get_approval(id).await?.ok_or_else(|| DecideError::NotFound(id.into()))?;
                if now.status == ApprovalStatus::Pending {
                    let expired = self.expire(now).await?;
                    return Err(DecideError::Expired(Box::new(expired)));
                }
                Err(DecideError::AlreadyDecided(Box::new(now)))
            }
        }
    }

    /// Where an approved call reports progress: each line is kept in the
    /// execution log under the approval's id (secrets blanked) and published
    /// on the activity stream as it comes. The writer ends when the last
    /// reporter is dropped.
    fn run_log(&self, approval: &Approval) -> (ToolProgress, tokio::task::JoinHandle<()>) {
        let (progress, mut lines) = ToolProgress::channel();
        let engine = self.clone();
        let a = approval.clone();
        let writer = tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                let message = engine.inner.redactor.text(&line);
                if let Err(e) = engine.inner.store.append_execution_log(&a.id, None, LogLevel::Info, &message).await {
                    tracing::warn!(error = %e, approval = %a.id, "could not keep a line of the run's log");
                }
                let event = steward_protocol::Event::ToolProgress {
                    turn_id: a.turn_id.clone(),
                    call_id: a.call_id.clone(),
                    name: a.tool.clone(),
                    approval_id: a.id.clone(),
                    message,
                };
                engine.activity().publish(Some(&a.conversation_id), Some(&a.agent), event);
            }
        });
        (progress, writer)
    }

    /// Runs an approved action if nobody has started it yet, and records
    /// its outcome. Returns the approval as it now stands.
    pub(super) async fn execute_approved(&self, approval: Approval) -> Result<Approval, StoreError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now_ms();
        if !store.claim_approval(&approval.id, now).await? {
            // Already running or ran elsewhere: never a second time.
            return Ok(store.get_approval(&approval.id).await?.unwrap_or(approval));
        }
        self.audit_approval("system", "approval.executing", &approval, serde_json::json!({})).await;
        let (ok, output) = match self.inner.tools.get(&approval.tool) {
            None => (false, format!("error: the tool '{}' no longer exists; nothing was run", approval.tool)),
            Some(tool) => {
                let (progress, log_writer) = self.run_log(&approval);
                let ctx = ToolContext {
                    turn_id: approval.turn_id.clone(),
                    conversation_id: approval.conversation_id.clone(),
                    agent: approval.agent.clone(),
                    call_id: approval.call_id.clone(),
                    approval: Some(ApprovalRef {
                        id: approval.id.clone(),
                        idempotency_key: approval.idempotency_key.clone(),
                    }),
                    progress: Some(progress),
                };
                let run = invoke(tool.as_ref(), approval.arguments.clone(), &ctx).await;
                // The log is complete before the outcome is recorded.
                drop(ctx);
                if let Err(e) = log_writer.await {
                    tracing::warn!(error = %e, approval = %approval.id, "the run's log writer stopped");
                }
                let metrics = &self.inner.metrics;
                if run.ok {
                    metrics.tool_calls_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    metrics.tool_calls_failed.fetch_add(1, Ordering::Relaxed);
                }
                (run.ok, run.output)
            }
        };
        // The tool ran: from here on its outcome must reach the person,
        // whatever the store does.
        let status = if ok { ApprovalStatus::Executed } else { ApprovalStatus::Failed };
        let finished_at = self.inner.clock.now_ms();
        let mut recorded = None;
        for attempt in 1..=3u64 {
            match store.finish_approval(&approval.id, status, &output, finished_at).await {
                Ok(Some(a)) => {
                    recorded = Some(a);
                    break;
                }
                // Finished elsewhere (a recovery that judged it interrupted).
                Ok(None) => {
                    recorded = store.get_approval(&approval.id).await.ok().flatten();
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, approval = %approval.id, attempt, "could not record an approval's outcome");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
            }
        }
        let finished = recorded.unwrap_or_else(|| Approval {
            status,
            outcome: Some(output.clone()),
            started_at: Some(now),
            finished_at: Some(finished_at),
            ..approval
        });
        let action = if ok { "approval.executed" } else { "approval.failed" };
        self.audit_approval("system", action, &finished, serde_json::json!({"outcome": output})).await;
        Ok(finished)
    }

    /// Decides an approval from outside a chat turn (the API, the CLI, the
    /// dashboard): records the decision, runs an approved action once, and
    /// adds the outcome to the approval's conversation.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        scope: ApprovalScope,
    ) -> Result<Approval, DecideError> {
        let current = self.inner.store.get_approval(id).await?.ok_or_else(|| DecideError::NotFound(id.to_string()))?;
        // Its own task: a client that goes away must not stop a decision
        // half-way (approved but never run, or run with no outcome recorded).
        let this = self.clone();
        let (id, actor) = (id.to_string(), actor.to_string());
        let work = tokio::spawn(async move {
            // Wait for a turn running in the conversation, so the outcome
            // does not land in the middle of its messages.
            let guard = this.lock_conversation(&current.conversation_id).await;
            let result = this.decide_locked(&id, approve, &actor, scope).await;
            drop(guard);
            this.release_conversation(&current.conversation_id);
            result
        });
        work.await.unwrap_or_else(|e| {
            Err(DecideError::Store(StoreError::Database(format!("the decision stopped unexpectedly: {e}"))))
        })
    }

    async fn decide_locked(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        scope: ApprovalScope,
    ) -> Result<Approval, DecideError> {
        let decided = self.record_decision(id, approve, actor, scope).await?;
        let done = if approve { self.execute_approved(decided).await? } else { decided };
        let mut messages = if approve { outcome_messages(&done) } else { Vec::new() };
        messages.push(Message::assistant(format!("{} (decided by {actor})", outcome_line(&done))));
        self.append_to_conversation(&done, messages).await;
        Ok(done)
    }

    async fn append_to_conversation(&self, a: &Approval, messages: Vec<Message>) {
        let turn_id = format!("decision_{}", a.id);
        let new = messages
            .into_iter()
            .map(|message| NewMessage {
                conversation_id: a.conversation_id.clone(),
                message,
                turn_id: Some(turn_id.clone()),
            })
            .collect();
        if let Err(e) = self.inner.store.append_messages(new).await {
            tracing::warn!(error = %e, approval = %a.id, "could not add the outcome to the conversation");
        }
    }

    /// After a restart: approvals approved but never started run now, once;
    /// approvals started but never finished are marked failed (they may or
    /// may not have taken effect, and are never run again). The person is
    /// told in the conversation either way.
    pub async fn recover_approvals(&self) -> Result<Recovery, StoreError> {
        let filter = ApprovalFilter { status: Some(ApprovalStatus::Approved), conversation_id: None };
        let mut recovery = Recovery::default();
        for a in self.inner.store.list_approvals(&filter, 1000).await? {
            let guard = self.lock_conversation(&a.conversation_id).await;
            let conversation = a.conversation_id.clone();
            let started = a.started_at.is_some();
            let too_old = a.decided_at.unwrap_or(0) < self.inner.clock.now_ms().saturating_sub(self.ttl_ms());
            if started || too_old {
                let reason = if started {
                    "interrupted: Steward stopped while this action was running, so it may or may not have taken \
effect. It was not run again; check the current state and ask again if needed."
                } else {
                    // Approved long ago, and Steward was down since: the
                    // world may have moved on; the person must approve again.
                    "not run: it was approved before Steward stopped, and Steward was down for longer than an \
approval lasts. Approve it again if it is still wanted."
                };
                let now = self.inner.clock.now_ms();
                if let Some(failed) =
                    self.inner.store.finish_approval(&a.id, ApprovalStatus::Failed, reason, now).await?
                {
                    let detail = serde_json::json!({"outcome": reason});
                    self.audit_approval("system:recovery", "approval.failed", &failed, detail).await;
                    self.append_to_conversation(&failed, vec![Message::assistant(outcome_line(&failed))]).await;
                    recovery.interrupted.push(failed.id);
                }
            } else {
                let done = self.execute_approved(a).await?;
                let mut messages = outcome_messages(&done);
                messages.push(Message::assistant(format!(
                    "{} (approved before a restart; run after it)",
                    outcome_line(&done)
                )));
                self.append_to_conversation(&done, messages).await;
                recovery.resumed.push(done.id);
            }
            drop(guard);
            self.release_conversation(&conversation);
        }
        Ok(recovery)
    }
}

impl super::TurnRun {
    /// A turn whose user message decides approvals: no model is called.
    pub(super) async fn run_decision(&mut self, decision: ChatDecision) -> super::Outcome {
        let engine = self.engine.clone();
        let actor = self.actor.clone();
        if let Err(e) = engine.expire_due().await {
            tracing::warn!(error = %e, "could not expire old approvals");
        }
        let filter = ApprovalFilter { status: None, conversation_id: Some(self.conversation_id.clone()) };
        let in_conversation = match engine.inner.store.list_approvals(&filter, 200).await {
            Ok(list) => list,
            Err(e) => return self.fail(steward_protocol::ErrorCode::StoreFailed, e.to_string()).await,
        };
        let pending: Vec<&Approval> = in_conversation.iter().filter(|a| a.status == ApprovalStatus::Pending).collect();
        let verb = if decision.approve { "approve" } else { "reject" };

        let mut notes = Vec::new();
        let targets: Vec<String> = match &decision.which {
            Which::TheOne | Which::All if pending.is_empty() => {
                let mut text = String::from("Nothing is waiting for your approval in this conversation.");
                if let Some(last) = in_conversation.first() {
                    text.push_str(&format!(
                        "\nThe latest request was {}: {}",
                        last.status.as_str(),
                        outcome_line(last)
                    ));
                }
                return self.say(text, steward_protocol::FinishReason::Stop).await;
            }
            Which::TheOne if pending.len() > 1 => {
                let mut text = format!("{} actions are waiting; say which:\n", pending.len());
                for a in &pending {
                    text.push_str(&format!("\n- {}: {}", a.id, a.preview.summary));
                }
                text.push_str(&format!("\n\nReply '{verb} all' or '{verb} <id>'."));
                return self.say(text, steward_protocol::FinishReason::Stop).await;
            }
            Which::TheOne | Which::All => pending.iter().map(|a| a.id.clone()).collect(),
            Which::Ids(ids) => {
                let mut found = Vec::new();
                for wanted in ids {
                    let matches: Vec<&Approval> =
                        in_conversation.iter().filter(|a| a.id.starts_with(wanted.as_str())).collect();
                    match matches.as_slice() {
                        [one] => found.push(one.id.clone()),
                        [] => notes.push(format!("There is no approval '{wanted}' in this conversation.")),
                        _ => notes.push(format!("'{wanted}' matches several approvals; give more of the id.")),
                    }
                }
                found
            }
        };

        let mut outcome_msgs = Vec::new();
        for id in targets {
            match engine.record_decision(&id, decision.approve, &actor, decision.scope).await {
                Ok(decided) => {
                    self.emit(steward_protocol::Event::ApprovalUpdated {
                        turn_id: self.turn_id.clone(),
                        approval: decided.clone(),
                    })
                    .await;
                    if !decision.approve {
                        notes.push(outcome_line(&decided));
                        continue;
                    }
                    self.emit(steward_protocol::Event::ToolCallStarted {
                        turn_id: self.turn_id.clone(),
                        call_id: format!("{}_run", decided.id),
                        name: decided.tool.clone(),
                        arguments: decided.arguments.to_string(),
                        effect: decided.effect,
                    })
                    .await;
                    let done = match engine.execute_approved(decided.clone()).await {
                        Ok(done) => done,
                        Err(e) => {
                            notes.push(format!(
                                "Could not run {}: {e}. It stays approved and runs at the next start.",
                                decided.id
                            ));
                            continue;
                        }
                    };
                    self.emit(steward_protocol::Event::ToolResult {
                        turn_id: self.turn_id.clone(),
                        call_id: format!("{}_run", done.id),
                        name: done.tool.clone(),
                        ok: done.status == ApprovalStatus::Executed,
                        output: outcome_text(&done).to_string(),
                        truncated: false,
                    })
                    .await;
                    self.emit(steward_protocol::Event::ApprovalUpdated {
                        turn_id: self.turn_id.clone(),
                        approval: done.clone(),
                    })
                    .await;
                    outcome_msgs.extend(outcome_messages(&done));
                    notes.push(outcome_line(&done));
                }
                Err(e) => notes.push(format!("Could not {verb} {id}: {e}.")),
            }
        }
        if !outcome_msgs.is_empty() {
            if let Err(e) = self.store(outcome_msgs).await {
                return self.fail(steward_protocol::ErrorCode::StoreFailed, e.to_string()).await;
            }
        }
        self.say(notes.join("\n\n"), steward_protocol::FinishReason::Stop).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(approve: bool, which: Which, scope: ApprovalScope) -> Option<ChatDecision> {
        Some(ChatDecision { approve, which, scope })
    }

    #[test]
    fn whole_messages_that_decide_are_recognised() {
        use ApprovalScope::{Conversation, Once};
        assert_eq!(parse_chat_decision("approve"), d(true, Which::TheOne, Once));
        assert_eq!(parse_chat_decision("  Approve!  "), d(true, Which::TheOne, Once));
        assert_eq!(parse_chat_decision("approve it please."), d(true, Which::TheOne, Once));
        assert_eq!(parse_chat_decision("reject"), d(false, Which::TheOne, Once));
        assert_eq!(parse_chat_decision("deny all"), d(false, Which::All, Once));
        assert_eq!(parse_chat_decision("approve all"), d(true, Which::All, Once));
        assert_eq!(parse_chat_decision("approve always"), d(true, Which::TheOne, Conversation));
        assert_eq!(parse_chat_decision("approve for this conversation"), d(true, Which::TheOne, Conversation));
        assert_eq!(
            parse_chat_decision("approve apr_12ab, apr_34cd"),
            d(true, Which::Ids(vec!["apr_12ab".into(), "apr_34cd".into()]), Once)
        );
        assert_eq!(
            parse_chat_decision("APPROVE APR_12AB ALWAYS"),
            d(true, Which::Ids(vec!["apr_12ab".into()]), Conversation)
        );
    }

    #[test]
    fn anything_else_is_not_a_decision() {
        for text in [
            "",
            "yes",
            "approved by whom?",
            "approve the plan but change the time",
            "please approve",
            "reject always",
            "approve all apr_1",
            "I approve of this approach",
            "what does approve mean",
        ] {
            assert_eq!(parse_chat_decision(text), None, "{text}");
        }
    }

    #[test]
    fn outcomes_read_as_entity_states_or_short_text() {
        let json =
            r#"{"done":"light.turn_on","entities":[{"entity_id":"light.k","name":"Kitchen","was":"off","now":"on"}]}"#;
        assert_eq!(readable_outcome(json), "Kitchen (light.k) is now on");
        assert_eq!(readable_outcome(r#"{"entity_id":"switch.x","state":"off"}"#), "switch.x is now off");
        assert_eq!(readable_outcome("  plain text "), "plain text");
        assert_eq!(readable_outcome(&"x".repeat(500)).chars().count(), 401);
        assert_eq!(readable_outcome(r#"{"ok":true}"#), r#"{"ok":true}"#);
    }

    #[test]
    fn call_kinds_name_tool_domains_and_action() {
        let facts = CallFacts {
            tool: "control_entity".into(),
            effect: Effect::Mutate,
            domains: vec!["switch".into(), "light".into()],
            entities: vec![],
        };
        let facts = CallFacts { entities: vec!["switch.b".into(), "light.a".into(), "light.a".into()], ..facts };
        let kind = call_kind(&facts, &serde_json::json!({"action": "turn_on", "entity_id": "light.a"}));
        assert_eq!(kind, "control_entity|turn_on|light.a,switch.b");
        assert_eq!(call_kind(&facts, &serde_json::json!({})), "control_entity||light.a,switch.b");
    }
}
