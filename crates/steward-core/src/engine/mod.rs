//! The engine: front ends submit [`Op`]s, the engine runs turns and streams
//! [`Event`]s back.
//!
//! A turn is a loop: ask the model, stream its text, run the tool calls it
//! asked for (in parallel, each under the policy, a timeout and an output
//! cap), feed the results back, and stop when the model answers without
//! tools or the step limit is reached. Every message is written to the store
//! as it is produced, so a restart loses nothing that was said.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use steward_protocol::api::{Conversation, StoredMessage};
use steward_protocol::{ErrorCode, Event, FinishReason, Message, Op, Role, ToolCall, TurnInput, Usage, UserTurn};
use tokio::sync::{mpsc, OwnedMutexGuard};
use tracing::{info_span, Instrument};

use crate::activity::Activity;
use crate::agent::{AgentProfile, AgentRegistry};
use crate::clock::Clock;
use crate::home::Home;
use crate::llm::{Llm, LlmChunk, LlmErrorKind, LlmRequest, NOT_CONFIGURED_HELP};
use crate::metrics::Metrics;
use crate::policy::{CallFacts, Policy, StrictPolicy};
use crate::redact::Redactor;
use crate::store::{NewMessage, Store, StoreError};
use crate::tool::ToolRegistry;
use steward_protocol::approval::Approval;

/// Limits that keep a turn bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// Model calls per turn at most; each round of tool calls costs one.
    pub max_steps: u32,
    /// Tool calls run at once at most within one step.
    pub max_parallel_tools: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits { max_steps: 8, max_parallel_tools: 8 }
    }
}

/// How the engine treats approvals, debugging and secrets, and the home
/// its agents see.
#[derive(Clone)]
pub struct EngineOptions {
    /// How long an approval waits for a person before it expires.
    pub approval_ttl: Duration,
    /// Debug mode for every conversation: tool inputs and outputs are
    /// streamed as events and logged, verbatim but for secrets.
    pub debug: bool,
    /// Blanks configured secrets wherever tool I/O is shown or logged.
    pub redactor: Redactor,
    /// The home: agents with home tools get its compact summary (areas and
    /// counts by domain, never the whole catalog) in their prompt.
    pub home: Option<Arc<dyn Home>>,
    /// Where every turn's events, approval changes and task progress are
    /// also published, for watchers of the whole engine.
    pub activity: Activity,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("approval_ttl", &self.approval_ttl)
            .field("debug", &self.debug)
            .field("redactor", &self.redactor)
            .field("home", &self.home.as_ref().map(|h| h.name().to_string()))
            .finish()
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            approval_ttl: Duration::from_secs(30 * 60),
            debug: false,
            redactor: Redactor::default(),
            home: None,
            activity: Activity::default(),
        }
    }
}

/// Everything an engine is built from.
pub struct EngineParts {
    pub llm: Arc<dyn Llm>,
    pub store: Arc<dyn Store>,
    pub tools: ToolRegistry,
    pub agents: AgentRegistry,
    pub clock: Arc<dyn Clock>,
    pub limits: EngineLimits,
}

/// Why a turn could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown agent '{requested}'; available: {available}")]
    UnknownAgent { requested: String, available: String },
    #[error("conversation '{0}' not found")]
    ConversationNotFound(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::UnknownAgent { .. } => ErrorCode::ModelNotFound,
            EngineError::ConversationNotFound(_) => ErrorCode::NotFound,
            EngineError::InvalidInput(_) => ErrorCode::InvalidRequest,
            EngineError::Store(StoreError::ConversationNotFound(_)) => ErrorCode::NotFound,
            EngineError::Store(StoreError::Database(_) | StoreError::Corrupt(_)) => ErrorCode::StoreFailed,
        }
    }
}

/// A running turn: its ids and the stream of its events. Dropping the
/// handle does not stop the turn; it runs to its end and is stored.
#[derive(Debug)]
pub struct TurnHandle {
    pub turn_id: String,
    pub conversation_id: String,
    pub events: mpsc::Receiver<Event>,
}

/// The engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    llm: Arc<dyn Llm>,
    store: Arc<dyn Store>,
    tools: ToolRegistry,
    agents: AgentRegistry,
    policy: Arc<dyn Policy>,
    clock: Arc<dyn Clock>,
    limits: EngineLimits,
    options: EngineOptions,
    redactor: Redactor,
    metrics: Arc<Metrics>,
    /// Cancellation flags of running turns, by turn id.
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// One turn at a time per conversation, by conversation id.
    conversation_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The local intent engine, built for the catalog's current shape.
    intents: Mutex<local::IntentCache>,
}

mod approvals;
mod calls;
mod delegate;
mod history;
mod local;
pub use approvals::{call_kind, parse_chat_decision, ChatDecision, DecideError, Recovery, Which};
pub use history::{client_fingerprint, repair_dangling_tool_calls};

/// How many events may wait for a slow reader before the turn waits too.
const EVENT_BUFFER: usize = 256;

/// How long the turn waits for a front end that stopped reading its events
/// before it carries on without it (the turn still completes and is stored).
const EMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest title derived from a first message, in characters.
const TITLE_CHARS: usize = 60;

impl Engine {
    /// An engine with the strict policy: every `mutate` and `destructive` call asks.
    pub fn new(parts: EngineParts) -> Self {
        Self::with_policy(parts, Arc::new(StrictPolicy))
    }

    pub fn with_policy(parts: EngineParts, policy: Arc<dyn Policy>) -> Self {
        Self::with_options(parts, policy, EngineOptions::default())
    }

    pub fn with_options(parts: EngineParts, policy: Arc<dyn Policy>, options: EngineOptions) -> Self {
        Engine {
            inner: Arc::new(Inner {
                llm: parts.llm,
                store: parts.store,
                tools: parts.tools,
                agents: parts.agents,
                policy,
                clock: parts.clock,
                limits: parts.limits,
                redactor: options.redactor.clone(),
                options,
                metrics: Arc::new(Metrics::default()),
                running: Mutex::new(HashMap::new()),
                conversation_locks: Mutex::new(HashMap::new()),
                intents: Mutex::new(local::IntentCache::default()),
            }),
        }
    }

    pub fn agents(&self) -> &AgentRegistry {
        &self.inner.agents
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.inner.tools
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn llm_name(&self) -> &str {
        self.inner.llm.name()
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// The activity stream: what every turn, approval and task does.
    pub fn activity(&self) -> &Activity {
        &self.inner.options.activity
    }

    /// Handles one submission. A `UserTurn` returns the handle of the turn
    /// it started; `Cancel` returns `None`.
    pub async fn submit(&self, op: Op) -> Result<Option<TurnHandle>, EngineError> {
        match op {
            Op::UserTurn(turn) => self.start_turn(turn).await.map(Some),
            Op::Cancel { turn_id } => {
                self.cancel(&turn_id);
                Ok(None)
            }
        }
    }

    /// Asks a running turn to stop at its next step boundary. Returns whether
    /// such a turn was running.
    pub fn cancel(&self, turn_id: &str) -> bool {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get(turn_id) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// How many turns are running now, in every conversation (loading a
    /// snapshot waits for none to run).
    pub fn running_turns(&self) -> usize {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Creates a conversation for `agent` (the default agent when `None`).
    pub async fn create_conversation(
        &self,
        agent: Option<&str>,
        title: Option<&str>,
    ) -> Result<Conversation, EngineError> {
        let agent = self.resolve_agent(agent.unwrap_or(self.inner.agents.default_agent()))?;
        Ok(self.inner.store.create_conversation(&agent.id, title).await?)
    }

    fn resolve_agent(&self, id: &str) -> Result<&AgentProfile, EngineError> {
        self.inner.agents.get(id).ok_or_else(|| EngineError::UnknownAgent {
            requested: id.to_string(),
            available: self.inner.agents.all().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Takes the conversation's turn lock: one turn at a time per
    /// conversation, so a second message waits for the first turn instead of
    /// interleaving its messages with the first turn's tool calls.
    async fn lock_conversation(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.conversation_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Drops the lock entry of a conversation no turn holds or waits for.
    fn release_conversation(&self, id: &str) {
        let mut locks = self.inner.conversation_locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.get(id).map(|l| Arc::strong_count(l) == 1).unwrap_or(false) {
            locks.remove(id);
        }
    }

    /// Validates the turn, stores its input, and starts it in the background.
    pub async fn start_turn(&self, turn: UserTurn) -> Result<TurnHandle, EngineError> {
        let agent = self.resolve_agent(&turn.agent)?.clone();
        let store = &self.inner.store;
        let mut existing = match &turn.conversation_id {
            Some(id) => {
                Some(store.get_conversation(id).await?.ok_or_else(|| EngineError::ConversationNotFound(id.clone()))?)
            }
            None => None,
        };

        // For a client that resends its history: the transcript before the new
        // message, whose fingerprint finds the conversation it continues when
        // the client did not name one.
        let mut client_transcript = None;
        if let TurnInput::History { messages } = &turn.input {
            match messages.last() {
                None => {
                    return Err(EngineError::InvalidInput("messages is empty; send at least one user message".into()))
                }
                Some(last) if last.role != Role::User => {
                    return Err(EngineError::InvalidInput(format!(
                        "the last message must be from the user, not '{}'",
                        last.role.as_str()
                    )))
                }
                Some(_) => {}
            }
            if existing.is_none() {
                if let Some(fp) = history::client_fingerprint(&messages[..messages.len() - 1]) {
                    existing = store.find_by_client_fingerprint(&fp).await?.filter(|c| c.agent == agent.id);
                }
            }
            client_transcript = Some(messages.clone());
        }
        if let TurnInput::Message { content } = &turn.input {
            if content.trim().is_empty() {
                return Err(EngineError::InvalidInput("the message is empty; send some text".into()));
            }
        }

        // A continued conversation is locked before its history is read.
        let (conversation, guard) = match existing {
            Some(c) => {
                let guard = self.lock_conversation(&c.id).await;
                (c, guard)
            }
            None => {
                let first_user = match &turn.input {
                    TurnInput::Message { content } => Some(content.as_str()),
                    TurnInput::History { messages } => {
                        messages.iter().find(|m| m.role == Role::User).map(|m| m.content.as_str())
                    }
                };
                let c = store.create_conversation(&agent.id, first_user.map(title_from).as_deref()).await?;
                let guard = self.lock_conversation(&c.id).await;
                (c, guard)
            }
        };

        // The context the model sees (after the agent's system prompt) and
        // the messages this turn adds to the store.
        let (context, to_store) = match turn.input {
            TurnInput::Message { content } => {
                let mut context: Vec<Message> =
                    store.list_messages(&conversation.id).await?.iter().map(StoredMessage::to_message).collect();
                let user = Message::user(content);
                context.push(user.clone());
                (context, vec![user])
            }
            TurnInput::History { messages } => {
                // A conversation that already holds the earlier messages gets
                // only the new one; a new one records the whole history sent.
                let stored_before = store.list_messages(&conversation.id).await?.len();
                let to_store =
                    if stored_before > 0 { messages.last().cloned().into_iter().collect() } else { messages.clone() };
                (messages, to_store)
            }
        };
        let context = history::repair_dangling_tool_calls(context);
        // A person's reply that decides approvals is handled by the engine,
        // not the model: only the newest user message counts.
        let decision = context.last().filter(|m| m.role == Role::User).and_then(|m| parse_chat_decision(&m.content));
        let debug = self.inner.options.debug || conversation.debug;

        let turn_id = format!("turn_{}", uuid::Uuid::new_v4().simple());
        let stored = store
            .append_messages(
                to_store
                    .into_iter()
                    .map(|message| NewMessage {
                        conversation_id: conversation.id.clone(),
                        message,
                        turn_id: Some(turn_id.clone()),
                    })
                    .collect(),
            )
            .await?;

        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let cancelled = Arc::new(AtomicBool::new(false));
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner()).insert(turn_id.clone(), cancelled.clone());

        let run = TurnRun {
            engine: self.clone(),
            turn_id: turn_id.clone(),
            conversation_id: conversation.id.clone(),
            agent,
            context,
            tx,
            detached: AtomicBool::new(false),
            cancelled,
            usage: Usage::default(),
            visible: String::new(),
            client_transcript,
            actor: turn.actor.unwrap_or_else(|| "user:local".to_string()),
            decision,
            debug,
            requested: Mutex::new(Vec::new()),
            home_context: None,
            owner_conversation_id: conversation.id.clone(),
            depth: 0,
            asked: Vec::new(),
            delegated_usage: Mutex::new(Usage::default()),
        };
        let span = info_span!(
            "turn",
            turn_id = %turn_id,
            conversation_id = %conversation.id,
            agent = %run.agent.id,
            steps = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let this = self.clone();
        let (tid, cid) = (turn_id.clone(), conversation.id.clone());
        tokio::spawn(
            async move {
                // A panic inside the turn must not take the lock, the
                // cancellation entry or the process with it; the front end
                // sees the event stream end without `TurnFinished`.
                if AssertUnwindSafe(run.run(stored)).catch_unwind().await.is_err() {
                    this.inner.metrics.turns_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("the turn panicked; its event stream ends here");
                }
                this.inner.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&tid);
                drop(guard);
                this.release_conversation(&cid);
            }
            .instrument(span),
        );
        Ok(TurnHandle { turn_id, conversation_id: conversation.id, events: rx })
    }
}

fn title_from(content: &str) -> String {
    let line = content.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let mut title: String = line.chars().take(TITLE_CHARS).collect();
    if line.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    title
}

/// The state of one running turn.
struct TurnRun {
    engine: Engine,
    turn_id: String,
    conversation_id: String,
    agent: AgentProfile,
    context: Vec<Message>,
    tx: mpsc::Sender<Event>,
    /// Set when the front end went away or stopped reading.
    detached: AtomicBool,
    cancelled: Arc<AtomicBool>,
    usage: Usage,
    /// All text streamed to the front end so far. When it is not empty, the
    /// next step's text is set apart by a blank line, so steps do not run together.
    visible: String,
    /// The history a history-resending client sent, for the fingerprint of
    /// the transcript it will have seen when the turn ends.
    client_transcript: Option<Vec<Message>>,
    /// Who sent the turn's message.
    actor: String,
    /// Set when the user's message decides approvals.
    decision: Option<ChatDecision>,
    /// Tool inputs and outputs are streamed and logged (secrets redacted).
    debug: bool,
    /// Approvals this step's calls asked for.
    requested: Mutex<Vec<Approval>>,
    /// The home's compact summary, for agents with home tools.
    home_context: Option<String>,
    /// The conversation a person follows: approvals are asked, and
    /// conversation-wide grants read, there. For a delegated turn it is the
    /// delegating turn's; its own messages go to `conversation_id`.
    owner_conversation_id: String,
    /// 0 for a turn a person started; one more for each delegation.
    depth: u32,
    /// A delegated turn's approvals, handed to the delegating turn, which
    /// asks the person.
    asked: Vec<Approval>,
    /// What the turns this turn delegated to spent on models.
    delegated_usage: Mutex<Usage>,
}

/// How a turn ended, for metrics and the span.
enum Outcome {
    Finished(FinishReason),
    Failed,
}

/// The result of one model call.
struct StepOutput {
    text: String,
    tool_calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
}

impl TurnRun {
    async fn emit(&self, event: Event) {
        // Approvals reach the activity stream from the approval itself (see
        // `audit_approval`), whoever changed it; a delegated turn publishes
        // its own events, so the nested copies are left out.
        if !matches!(event, Event::Delegated { .. } | Event::ApprovalRequested { .. } | Event::ApprovalUpdated { .. }) {
            self.engine.activity().publish(Some(&self.conversation_id), Some(&self.agent.id), event.clone());
        }
        // A front end that went away, or stopped reading, must not stop the
        // turn: it still runs to its end and is stored.
        if self.detached.load(Ordering::Relaxed) {
            return;
        }
        match tokio::time::timeout(EMIT_TIMEOUT, self.tx.send(event)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => self.detached.store(true, Ordering::Relaxed),
            Err(_) => {
                tracing::warn!("the front end stopped reading events; the turn goes on without it");
                self.detached.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Streams text to the front end, remembering what it has seen.
    async fn emit_text(&mut self, text: &str, first_of_step: bool) {
        let delta = if first_of_step && !self.visible.is_empty() { format!("\n\n{text}") } else { text.to_string() };
        self.visible.push_str(&delta);
        self.emit(Event::TextDelta { turn_id: self.turn_id.clone(), delta }).await;
    }

    async fn run(mut self, stored_input: Vec<StoredMessage>) {
        let metrics = self.engine.inner.metrics.clone();
        metrics.turns_started.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        self.emit(Event::TurnStarted {
            turn_id: self.turn_id.clone(),
            conversation_id: self.conversation_id.clone(),
            agent: self.agent.id.clone(),
        })
        .await;
        for m in stored_input {
            self.emit(Event::MessageStored {
                turn_id: self.turn_id.clone(),
                message_id: m.id.clone(),
                message: m.to_message(),
            })
            .await;
        }

        let (outcome, steps) = match self.decision.take() {
            Some(decision) => (self.run_decision(decision).await, 0),
            None => match self.home_snapshot().await {
                Some(Ok(snapshot)) => {
                    let home = self.engine.inner.options.home.as_ref().map(|h| (h.name().to_string(), h.is_demo()));
                    let (name, demo) = home.unwrap_or_default();
                    self.home_context =
                        Some(crate::home::summary::prompt_summary(&name, demo, &snapshot.entities, &snapshot.areas));
                    match self.understand_locally(&snapshot) {
                        Some(understanding) => (self.run_locally(understanding, snapshot).await, 0),
                        None => self.run_steps().await,
                    }
                }
                Some(Err(e)) => {
                    self.home_context = Some(format!("The home cannot be reached right now: {e}"));
                    self.run_steps().await
                }
                None => self.run_steps().await,
            },
        };
        let span = tracing::Span::current();
        span.record("steps", steps);
        metrics.turn_seconds.observe(started.elapsed());
        let finish_reason = match outcome {
            Outcome::Finished(reason) => {
                self.record_transcript().await;
                metrics.turns_completed.fetch_add(1, Ordering::Relaxed);
                span.record("outcome", "completed");
                tracing::info!(steps, elapsed_ms = started.elapsed().as_millis() as u64, "turn finished");
                reason
            }
            Outcome::Failed => {
                metrics.turns_failed.fetch_add(1, Ordering::Relaxed);
                span.record("outcome", "failed");
                FinishReason::Error
            }
        };
        let mut usage = self.usage;
        usage.add(*self.delegated_usage.lock().unwrap_or_else(|p| p.into_inner()));
        self.emit(Event::TurnFinished {
            turn_id: self.turn_id.clone(),
            conversation_id: self.conversation_id.clone(),
            finish_reason,
            usage,
            steps,
        })
        .await;
    }

    /// Lets a history-resending client's next request find this
    /// conversation: the fingerprint of what that client has now seen.
    async fn record_transcript(&self) {
        let Some(mut transcript) = self.client_transcript.clone() else { return };
        transcript.push(Message::assistant(self.visible.clone()));
        let Some(fp) = history::client_fingerprint(&transcript) else { return };
        if let Err(e) = self.engine.inner.store.set_client_fingerprint(&self.conversation_id, &fp).await {
            tracing::warn!(error = %e, "could not record the transcript fingerprint");
        }
    }

    /// Appends to the audit trail; a store without one is logged, not fatal.
    async fn audit(&self, action: &str, facts: &CallFacts, detail: serde_json::Value) {
        let entry = crate::audit::NewAuditEntry::new(format!("agent:{}", self.agent.id), action, facts.tool.clone())
            .with_targets(facts.entities.iter().cloned())
            .with_detail(detail)
            .with_trace_id(self.turn_id.clone());
        if let Err(e) = self.engine.inner.store.append_audit(entry).await {
            tracing::debug!(error = %e, action, "no audit entry written");
        }
    }

    async fn fail(&self, code: ErrorCode, message: String) -> Outcome {
        tracing::warn!(code = code.as_str(), error = %message, "turn failed");
        self.emit(Event::Error { turn_id: self.turn_id.clone(), code, message }).await;
        Outcome::Failed
    }

    async fn store(&self, messages: Vec<Message>) -> Result<(), StoreError> {
        let stored = self
            .engine
            .inner
            .store
            .append_messages(
                messages
                    .into_iter()
                    .map(|message| NewMessage {
                        conversation_id: self.conversation_id.clone(),
                        message,
                        turn_id: Some(self.turn_id.clone()),
                    })
                    .collect(),
            )
            .await?;
        for m in stored {
            self.emit(Event::MessageStored {
                turn_id: self.turn_id.clone(),
                message_id: m.id.clone(),
                message: m.to_message(),
            })
            .await;
        }
        Ok(())
    }

    /// Stores and streams a final assistant text written by the engine itself.
    async fn say(&mut self, text: String, reason: FinishReason) -> Outcome {
        self.emit_text(&text, true).await;
        match self.store(vec![Message::assistant(text)]).await {
            Ok(()) => Outcome::Finished(reason),
            Err(e) => self.fail(ErrorCode::StoreFailed, e.to_string()).await,
        }
    }

    async fn run_steps(&mut self) -> (Outcome, u32) {
        let max_steps = self.engine.inner.limits.max_steps.max(1);
        let mut steps = 0;
        while steps < max_steps {
            if self.cancelled.load(Ordering::SeqCst) {
                return (self.say("Stopped: the turn was cancelled.".into(), FinishReason::Cancelled).await, steps);
            }
            steps += 1;
            let output = match self.call_model(steps).await {
                Ok(output) => output,
                Err(outcome) => return (outcome, steps),
            };
            let mut assistant = Message::assistant(output.text);
            assistant.tool_calls = output.tool_calls.clone();
            if let Err(e) = self.store(vec![assistant.clone()]).await {
                return (self.fail(ErrorCode::StoreFailed, e.to_string()).await, steps);
            }
            self.context.push(assistant);
            if output.tool_calls.is_empty() {
                return (Outcome::Finished(output.finish.unwrap_or(FinishReason::Stop)), steps);
            }
            if let Err(outcome) = self.tool_round(&output.tool_calls).await {
                return (outcome, steps);
            }
            if let Some(outcome) = self.ask_for_approvals().await {
                return (outcome, steps);
            }
        }
        let note = format!(
            "I stopped after {max_steps} rounds of tool calls without reaching an answer (the step limit). \
Ask a narrower question, or raise `engine.max_steps` in steward.toml."
        );
        (self.say(note, FinishReason::Length).await, steps)
    }

    /// The home's entities and areas, when this agent has home tools and
    /// there is a home.
    async fn home_snapshot(&self) -> Option<Result<local::Snapshot, String>> {
        let home = self.engine.inner.options.home.as_ref()?;
        let uses_home = self
            .agent
            .tools
            .iter()
            .any(|t| t == "control_entity" || crate::agent::HOME_READ_TOOLS.contains(&t.as_str()));
        if !uses_home {
            return None;
        }
        Some(match futures::future::try_join(home.entities(), home.areas()).await {
            Ok((entities, areas)) => Ok(local::Snapshot { entities, areas }),
            Err(e) => {
                tracing::warn!(error = %e, "the home did not answer; the prompt goes without its summary");
                Err(e.to_string())
            }
        })
    }

    /// Runs one round of tool calls, stores their results and adds them to
    /// the context; returns the results, or how the turn ended.
    async fn tool_round(&mut self, calls: &[ToolCall]) -> Result<Vec<Message>, Outcome> {
        let results = self.run_tools(calls).await;
        if let Err(e) = self.store(results.clone()).await {
            return Err(self.fail(ErrorCode::StoreFailed, e.to_string()).await);
        }
        self.context.extend(results.iter().cloned());
        Ok(results)
    }

    /// Calls that wait for a person end the turn: the person is asked now,
    /// and their reply (a later turn) decides. `None` when none waits.
    async fn ask_for_approvals(&mut self) -> Option<Outcome> {
        let requested = std::mem::take(&mut *self.requested.lock().unwrap_or_else(|p| p.into_inner()));
        if requested.is_empty() {
            return None;
        }
        if self.depth > 0 {
            // The delegating turn asks the person, once, for all of them.
            let ids: Vec<&str> = requested.iter().map(|a| a.id.as_str()).collect();
            let note = format!("Proposed for a person's approval: {}. Nothing has changed yet.", ids.join(", "));
            self.asked.extend(requested);
            return Some(self.say(note, FinishReason::Stop).await);
        }
        let prompt = approvals::approval_prompt(&requested, self.engine.ttl_minutes());
        Some(self.say(prompt, FinishReason::Stop).await)
    }

    fn request(&self) -> LlmRequest {
        let mut messages = Vec::with_capacity(self.context.len() + 1);
        let system = match &self.home_context {
            Some(home) => format!("{}\n\n{home}", self.agent.system_prompt),
            None => self.agent.system_prompt.clone(),
        };
        messages.push(Message::system(system));
        messages.extend(self.context.iter().cloned());
        let tools = &self.engine.inner.tools;
        LlmRequest {
            tier: self.agent.tier,
            model: self.agent.model.clone(),
            messages,
            tools: self.agent.tools.iter().filter_map(|n| tools.get(n)).map(|t| t.spec().definition()).collect(),
            temperature: None,
            max_tokens: None,
            caller: Some(self.agent.id.clone()),
            trace_id: Some(self.turn_id.clone()),
        }
    }

    /// One model call, streamed. On failure returns how the turn ended.
    async fn call_model(&mut self, step: u32) -> Result<StepOutput, Outcome> {
        let inner = self.engine.inner.clone();
        let llm = inner.llm.clone();
        // The provider opens its own `llm_call` span (model, status, timing)
        // inside this one, which ties the call to its step of the turn.
        let span = info_span!(
            "turn_step",
            provider = llm.name(),
            tier = self.agent.tier.as_str(),
            step,
            outcome = tracing::field::Empty,
            prompt_tokens = tracing::field::Empty,
            completion_tokens = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut out = StepOutput { text: String::new(), tool_calls: Vec::new(), finish: None };
        let result = self.stream_step(&llm, &mut out).instrument(span.clone()).await;
        inner.metrics.llm_seconds.observe(started.elapsed());
        let e = match result {
            Ok(()) => {
                inner.metrics.llm_calls_ok.fetch_add(1, Ordering::Relaxed);
                span.record("outcome", "ok");
                return Ok(out);
            }
            Err(e) => e,
        };
        inner.metrics.llm_calls_failed.fetch_add(1, Ordering::Relaxed);
        span.record("outcome", e.kind.as_str());
        if e.kind == LlmErrorKind::NotConfigured {
            // Not an error of the turn: the user is told how to set one up.
            return Err(self.say(NOT_CONFIGURED_HELP.to_string(), FinishReason::Stop).await);
        }
        // What the user already saw of a broken-off answer is kept, marked.
        if !out.text.is_empty() {
            let kept = format!("{}\n\n[interrupted: {}]", out.text, e.kind.as_str());
            if let Err(store_error) = self.store(vec![Message::assistant(kept)]).await {
                tracing::warn!(error = %store_error, "could not store the interrupted answer");
            }
        }
        let code = match e.kind {
            LlmErrorKind::Timeout => ErrorCode::Timeout,
            LlmErrorKind::NotConfigured
            | LlmErrorKind::Authentication
            | LlmErrorKind::RateLimited { .. }
            | LlmErrorKind::Overloaded
            | LlmErrorKind::ContextLengthExceeded
            | LlmErrorKind::ContentPolicy
            | LlmErrorKind::ModelNotFound
            | LlmErrorKind::BadRequest
            | LlmErrorKind::Server { .. }
            | LlmErrorKind::Network
            | LlmErrorKind::InvalidResponse => ErrorCode::LlmFailed,
            LlmErrorKind::BudgetExceeded => ErrorCode::BudgetExceeded,
        };
        Err(self.fail(code, e.to_string()).await)
    }

    /// Streams one model call into `out`, forwarding text as it comes.
    async fn stream_step(&mut self, llm: &Arc<dyn Llm>, out: &mut StepOutput) -> Result<(), crate::llm::LlmError> {
        let metrics = self.engine.inner.metrics.clone();
        let mut stream = llm.stream(self.request()).await?;
        while let Some(chunk) = stream.next().await {
            match chunk? {
                LlmChunk::Text(t) if t.is_empty() => {}
                LlmChunk::Text(t) => {
                    self.emit_text(&t, out.text.is_empty()).await;
                    out.text.push_str(&t);
                }
                LlmChunk::ToolCall(c) => out.tool_calls.push(c),
                LlmChunk::Usage(u) => {
                    self.usage.add(u);
                    metrics.llm_prompt_tokens.fetch_add(u.prompt_tokens, Ordering::Relaxed);
                    metrics.llm_completion_tokens.fetch_add(u.completion_tokens, Ordering::Relaxed);
                    tracing::Span::current().record("prompt_tokens", u.prompt_tokens);
                    tracing::Span::current().record("completion_tokens", u.completion_tokens);
                }
                LlmChunk::Finish(f) => out.finish = Some(f),
            }
        }
        Ok(())
    }
}

fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
