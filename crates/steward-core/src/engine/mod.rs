//! The engine: front ends submit [`Op`]s, the engine runs turns and streams
//! [`Event`]s back.
//!
//! A turn is a loop: ask the model, stream its text, run the tool calls it
//! asked for (in parallel, each under the policy, a timeout and an output
//! cap), feed the results back, and stop when the model answers without
//! tools or the step limit is reached. Every message is written to the store
//! as it is produced, so a restart loses nothing that was said.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use steward_protocol::api::{Conversation, StoredMessage};
use steward_protocol::{ErrorCode, Event, FinishReason, Message, Op, Role, ToolCall, TurnInput, Usage, UserTurn};
use tokio::sync::mpsc;
use tracing::{info_span, Instrument};

use crate::agent::{AgentProfile, AgentRegistry};
use crate::clock::Clock;
use crate::llm::{Llm, LlmChunk, LlmErrorKind, LlmRequest, NOT_CONFIGURED_HELP};
use crate::metrics::Metrics;
use crate::policy::{Decision, Policy, StrictPolicy};
use crate::store::{NewMessage, Store, StoreError};
use crate::tool::{cap_output, ToolContext, ToolError, ToolRegistry};

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
    metrics: Arc<Metrics>,
    /// Cancellation flags of running turns, by turn id.
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

/// How many events may wait for a slow reader before the turn waits too.
const EVENT_BUFFER: usize = 256;

/// Longest title derived from a first message, in characters.
const TITLE_CHARS: usize = 60;

impl Engine {
    pub fn new(parts: EngineParts) -> Self {
        Engine {
            inner: Arc::new(Inner {
                llm: parts.llm,
                store: parts.store,
                tools: parts.tools,
                agents: parts.agents,
                policy: Arc::new(StrictPolicy),
                clock: parts.clock,
                limits: parts.limits,
                metrics: Arc::new(Metrics::default()),
                running: Mutex::new(HashMap::new()),
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

    /// Validates the turn, stores its input, and starts it in the background.
    pub async fn start_turn(&self, turn: UserTurn) -> Result<TurnHandle, EngineError> {
        let agent = self.resolve_agent(&turn.agent)?.clone();
        let store = &self.inner.store;
        let existing = match &turn.conversation_id {
            Some(id) => {
                Some(store.get_conversation(id).await?.ok_or_else(|| EngineError::ConversationNotFound(id.clone()))?)
            }
            None => None,
        };

        // The context the model sees (after the agent's system prompt) and
        // the messages this turn adds to the store.
        let (context, to_store) = match turn.input {
            TurnInput::Message { content } => {
                if content.trim().is_empty() {
                    return Err(EngineError::InvalidInput("the message is empty; send some text".into()));
                }
                let mut context = match &existing {
                    Some(c) => store.list_messages(&c.id).await?.iter().map(StoredMessage::to_message).collect(),
                    None => Vec::new(),
                };
                let user = Message::user(content);
                context.push(user.clone());
                (context, vec![user])
            }
            TurnInput::History { messages } => {
                match messages.last() {
                    None => {
                        return Err(EngineError::InvalidInput(
                            "messages is empty; send at least one user message".into(),
                        ))
                    }
                    Some(last) if last.role != Role::User => {
                        return Err(EngineError::InvalidInput(format!(
                            "the last message must be from the user, not '{}'",
                            last.role.as_str()
                        )))
                    }
                    Some(_) => {}
                }
                // A continued conversation already holds the earlier messages;
                // a new one records the whole history the client sent.
                let to_store = match &existing {
                    Some(_) => messages.last().cloned().into_iter().collect(),
                    None => messages.clone(),
                };
                (messages, to_store)
            }
        };

        let conversation = match existing {
            Some(c) => c,
            None => {
                let title = to_store.iter().find(|m| m.role == Role::User).map(|m| title_from(&m.content));
                store.create_conversation(&agent.id, title.as_deref()).await?
            }
        };

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
            cancelled,
            usage: Usage::default(),
            text_streamed: false,
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
        let tid = turn_id.clone();
        tokio::spawn(
            async move {
                run.run(stored).await;
                this.inner.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&tid);
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
    cancelled: Arc<AtomicBool>,
    usage: Usage,
    /// Whether an earlier step already streamed text: the next step's text
    /// is then set apart by a blank line, so streamed steps do not run together.
    text_streamed: bool,
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
        // A front end that went away must not stop the turn: it still runs
        // to its end and is stored.
        let _ = self.tx.send(event).await;
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

        let (outcome, steps) = self.run_steps().await;
        let span = tracing::Span::current();
        span.record("steps", steps);
        metrics.turn_seconds.observe(started.elapsed());
        let finish_reason = match outcome {
            Outcome::Finished(reason) => {
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
        self.emit(Event::TurnFinished {
            turn_id: self.turn_id.clone(),
            conversation_id: self.conversation_id.clone(),
            finish_reason,
            usage: self.usage,
            steps,
        })
        .await;
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
        let delta = if self.text_streamed { format!("\n\n{text}") } else { text.clone() };
        self.emit(Event::TextDelta { turn_id: self.turn_id.clone(), delta }).await;
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
            let results = self.run_tools(&output.tool_calls).await;
            if let Err(e) = self.store(results.clone()).await {
                return (self.fail(ErrorCode::StoreFailed, e.to_string()).await, steps);
            }
            self.context.extend(results);
        }
        let note = format!(
            "I stopped after {max_steps} rounds of tool calls without reaching an answer (the step limit). \
Ask a narrower question, or raise `engine.max_steps` in steward.toml."
        );
        (self.say(note, FinishReason::Length).await, steps)
    }

    fn request(&self) -> LlmRequest {
        let mut messages = Vec::with_capacity(self.context.len() + 1);
        messages.push(Message::system(self.agent.system_prompt.clone()));
        messages.extend(self.context.iter().cloned());
        let tools = &self.engine.inner.tools;
        LlmRequest {
            tier: self.agent.tier,
            model: self.agent.model.clone(),
            messages,
            tools: self.agent.tools.iter().filter_map(|n| tools.get(n)).map(|t| t.spec().definition()).collect(),
            temperature: None,
            max_tokens: None,
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
        let result = async {
            let mut stream = llm.stream(self.request()).await?;
            let mut out = StepOutput { text: String::new(), tool_calls: Vec::new(), finish: None };
            while let Some(chunk) = stream.next().await {
                match chunk? {
                    LlmChunk::Text(t) if t.is_empty() => {}
                    LlmChunk::Text(t) => {
                        let delta =
                            if out.text.is_empty() && self.text_streamed { format!("\n\n{t}") } else { t.clone() };
                        self.emit(Event::TextDelta { turn_id: self.turn_id.clone(), delta }).await;
                        out.text.push_str(&t);
                    }
                    LlmChunk::ToolCall(c) => out.tool_calls.push(c),
                    LlmChunk::Usage(u) => {
                        self.usage.add(u);
                        inner.metrics.llm_prompt_tokens.fetch_add(u.prompt_tokens, Ordering::Relaxed);
                        inner.metrics.llm_completion_tokens.fetch_add(u.completion_tokens, Ordering::Relaxed);
                        tracing::Span::current().record("prompt_tokens", u.prompt_tokens);
                        tracing::Span::current().record("completion_tokens", u.completion_tokens);
                    }
                    LlmChunk::Finish(f) => out.finish = Some(f),
                }
            }
            self.text_streamed |= !out.text.is_empty();
            Ok::<_, crate::llm::LlmError>(out)
        }
        .instrument(span.clone())
        .await;
        inner.metrics.llm_seconds.observe(started.elapsed());
        match result {
            Ok(out) => {
                inner.metrics.llm_calls_ok.fetch_add(1, Ordering::Relaxed);
                span.record("outcome", "ok");
                Ok(out)
            }
            Err(e) => {
                inner.metrics.llm_calls_failed.fetch_add(1, Ordering::Relaxed);
                span.record("outcome", e.kind.as_str());
                match e.kind {
                    // Not an error of the turn: the user is told how to set one up.
                    LlmErrorKind::NotConfigured => {
                        Err(self.say(NOT_CONFIGURED_HELP.to_string(), FinishReason::Stop).await)
                    }
                    LlmErrorKind::Authentication
                    | LlmErrorKind::RateLimited { .. }
                    | LlmErrorKind::Overloaded
                    | LlmErrorKind::ContextLengthExceeded
                    | LlmErrorKind::ContentPolicy
                    | LlmErrorKind::ModelNotFound
                    | LlmErrorKind::BadRequest
                    | LlmErrorKind::Server { .. }
                    | LlmErrorKind::Network
                    | LlmErrorKind::InvalidResponse => Err(self.fail(ErrorCode::LlmFailed, e.to_string()).await),
                    LlmErrorKind::Timeout => Err(self.fail(ErrorCode::Timeout, e.to_string()).await),
                }
            }
        }
    }

    /// Runs the tool calls of one step concurrently (at most
    /// `max_parallel_tools` at once) and returns their result messages in
    /// the order of the calls.
    async fn run_tools(&self, calls: &[ToolCall]) -> Vec<Message> {
        let limit = self.engine.inner.limits.max_parallel_tools.max(1);
        let mut results = Vec::with_capacity(calls.len());
        for batch in calls.chunks(limit) {
            let mut running = Vec::with_capacity(batch.len());
            for call in batch {
                running.push(self.run_tool(call));
            }
            results.extend(futures::future::join_all(running).await);
        }
        results
    }

    async fn run_tool(&self, call: &ToolCall) -> Message {
        let inner = &self.engine.inner;
        let tool = inner.tools.get(&call.name).filter(|_| self.agent.tools.iter().any(|t| t == &call.name));
        let effect = tool.map(|t| t.spec().effect).unwrap_or(steward_protocol::Effect::Read);
        self.emit(Event::ToolCallStarted {
            turn_id: self.turn_id.clone(),
            call_id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            effect,
        })
        .await;
        let span = info_span!(
            "tool_call",
            tool = %call.name,
            call_id = %call.id,
            effect = effect.as_str(),
            outcome = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let (ok, output, truncated) = async {
            let Some(tool) = tool else {
                inner.metrics.tool_calls_failed.fetch_add(1, Ordering::Relaxed);
                tracing::Span::current().record("outcome", "unknown_tool");
                let available = self.agent.tools.join(", ");
                return (
                    false,
                    format!("error: there is no tool named '{}'; available tools: {available}", call.name),
                    false,
                );
            };
            let spec = tool.spec();
            let args = match parse_arguments(&call.arguments) {
                Ok(a) => a,
                Err(e) => {
                    inner.metrics.tool_calls_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::Span::current().record("outcome", "invalid_arguments");
                    return (false, format!("error: {e}"), false);
                }
            };
            match inner.policy.decide(spec, &args) {
                Decision::Allow => {}
                Decision::Ask => {
                    inner.metrics.tool_calls_blocked.fetch_add(1, Ordering::Relaxed);
                    tracing::Span::current().record("outcome", "needs_approval");
                    return (
                        false,
                        format!(
                            "not executed: '{}' changes the world (effect: {}) and needs a person's approval, \
which cannot be requested here. Nothing was changed. Tell the user what you would do instead.",
                            spec.name,
                            spec.effect.as_str()
                        ),
                        false,
                    );
                }
                Decision::Deny => {
                    inner.metrics.tool_calls_blocked.fetch_add(1, Ordering::Relaxed);
                    tracing::Span::current().record("outcome", "denied");
                    return (
                        false,
                        format!("not executed: policy denies '{}'. Nothing was changed.", spec.name),
                        false,
                    );
                }
            }
            let ctx = ToolContext {
                turn_id: self.turn_id.clone(),
                conversation_id: self.conversation_id.clone(),
                agent: self.agent.id.clone(),
                call_id: call.id.clone(),
            };
            match tokio::time::timeout(spec.timeout, tool.call(args, &ctx)).await {
                Ok(Ok(output)) => {
                    inner.metrics.tool_calls_ok.fetch_add(1, Ordering::Relaxed);
                    tracing::Span::current().record("outcome", "ok");
                    let (output, truncated) = cap_output(output, spec.output_cap, &spec.name);
                    (true, output, truncated)
                }
                Ok(Err(e)) => {
                    inner.metrics.tool_calls_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::Span::current().record("outcome", "error");
                    let text = match e {
                        ToolError::InvalidArguments(m) => format!("error: invalid arguments: {m}"),
                        ToolError::Failed(m) => format!("error: {m}"),
                    };
                    let (text, truncated) = cap_output(text, spec.output_cap, &spec.name);
                    (false, text, truncated)
                }
                Err(_) => {
                    inner.metrics.tool_calls_timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::Span::current().record("outcome", "timeout");
                    (false, format!("error: '{}' timed out after {}", spec.name, human(spec.timeout)), false)
                }
            }
        }
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed();
        inner.metrics.tool_seconds.observe(elapsed);
        span.record("elapsed_ms", elapsed.as_millis() as u64);
        self.emit(Event::ToolResult {
            turn_id: self.turn_id.clone(),
            call_id: call.id.clone(),
            name: call.name.clone(),
            ok,
            output: output.clone(),
            truncated,
        })
        .await;
        Message::tool(call.id.clone(), call.name.clone(), output)
    }
}

/// Parses a model's argument string: empty means no arguments; anything
/// else must be a JSON object.
fn parse_arguments(raw: &str) -> Result<serde_json::Value, String> {
    if raw.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("arguments must be a JSON object".into()),
        Err(e) => Err(format!("arguments are not valid JSON ({e}); send a JSON object matching the tool's schema")),
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
