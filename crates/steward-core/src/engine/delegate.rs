//! Running a delegated turn: a specialist agent works on a brief from the
//! agent that called a delegation tool.
//!
//! The specialist's turn is a full turn — its own prompt, tools, tier and
//! step limit, the same policy and approvals — recorded in a conversation
//! of its own so the delegating conversation holds only the call and the
//! answer. Its events are forwarded wrapped in [`Event::Delegated`], so a
//! front end can show them nested and older front ends simply skip them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use steward_protocol::approval::Approval;
use steward_protocol::{Event, FinishReason, Message, ToolCall, Usage};
use tokio::sync::mpsc;

use super::{approvals, Outcome, TurnRun, EVENT_BUFFER};
use crate::delegation::{DelegateTool, MAX_DELEGATION_DEPTH};
use crate::tool::ToolContext;

/// Built-in analyses that belong to a specialist but need no model: when
/// another agent calls one, it runs at once on the specialist's behalf, and
/// the events say whose work it is.
const RUN_FOR: &[(&str, &str)] = &[("analyze_energy", "data-scientist"), ("discover_entities", "librarian")];

/// What a delegated turn hands back.
struct Delegated {
    /// Its answer, as the person would have read it.
    answer: String,
    ok: bool,
    usage: Usage,
    /// Approvals it asked for, which the delegating turn asks the person.
    approvals: Vec<Approval>,
}

impl TurnRun {
    /// The specialist a tool belongs to, when this turn's agent is another
    /// one and that specialist is configured.
    pub(super) fn specialist_for(&self, tool: &str) -> Option<String> {
        let (_, owner) = RUN_FOR.iter().find(|(name, _)| *name == tool)?;
        (*owner != self.agent.id && self.engine.inner.agents.get(owner).is_some()).then(|| owner.to_string())
    }

    /// Runs `tool` on `owner`'s behalf, announced as a delegation.
    pub(super) async fn run_for(
        &self,
        owner: String,
        tool: &dyn crate::tool::Tool,
        call: &ToolCall,
        args: serde_json::Value,
        mut ctx: ToolContext,
    ) -> approvals::Invocation {
        let child_turn_id = format!("{}.{}", self.turn_id, call.id);
        self.emit(Event::DelegationStarted {
            turn_id: self.turn_id.clone(),
            child_turn_id: child_turn_id.clone(),
            agent: owner.clone(),
            task: call.name.clone(),
            depth: self.depth + 1,
        })
        .await;
        ctx.agent = owner.clone();
        let run = approvals::invoke(tool, args, &ctx).await;
        self.emit(Event::DelegationFinished { turn_id: self.turn_id.clone(), child_turn_id, agent: owner, ok: run.ok })
            .await;
        run
    }

    /// Runs `delegation`'s agent on a brief written from `args`; returns the
    /// tool result the calling model sees.
    pub(super) async fn delegate(
        &self,
        delegation: &DelegateTool,
        call: &ToolCall,
        args: serde_json::Value,
    ) -> (bool, String, bool) {
        let inner = &self.engine.inner;
        if self.depth >= MAX_DELEGATION_DEPTH {
            return (
                false,
                format!(
                    "error: '{}' is not available here: delegations may nest {MAX_DELEGATION_DEPTH} deep at most. \
Answer with what you have.",
                    call.name
                ),
                false,
            );
        }
        let Some(agent) = inner.agents.get(delegation.agent()).cloned() else {
            return (
                false,
                format!("error: there is no '{}' agent configured to hand this to", delegation.agent()),
                false,
            );
        };
        let mut brief = match delegation.brief(&args) {
            Ok(brief) => brief,
            Err(e) => return (false, format!("error: {e}"), false),
        };
        // Evidence the engine gathers itself, so the specialist starts from
        // the numbers rather than from the caller's account of them.
        if let Some((name, evidence_args)) = delegation.evidence_call(&args) {
            if let Some(tool) = inner.tools.get(name).filter(|t| t.spec().effect == steward_protocol::Effect::Read) {
                let ctx = ToolContext {
                    turn_id: self.turn_id.clone(),
                    conversation_id: self.owner_conversation_id.clone(),
                    agent: agent.id.clone(),
                    call_id: format!("{}_evidence", call.id),
                    approval: None,
                    progress: None,
                };
                let run = approvals::invoke(tool.as_ref(), evidence_args, &ctx).await;
                if run.ok {
                    brief.push_str(&format!(
                        "\n\nSteward's own analysis ({name}, last 48 hours, data):\n<analysis>\n{}\n</analysis>",
                        run.output
                    ));
                }
            }
        }

        let title = format!("{} → {}: {}", self.agent.id, agent.id, super::title_from(&brief));
        let conversation = match inner.store.create_conversation(&agent.id, Some(&title)).await {
            Ok(c) => c,
            Err(e) => return (false, format!("error: could not start the {} agent's turn: {e}", agent.id), false),
        };
        let child_turn_id = format!("turn_{}", uuid::Uuid::new_v4().simple());
        let (tx, mut rx) = mpsc::channel(EVENT_BUFFER);
        let child = TurnRun {
            engine: self.engine.clone(),
            turn_id: child_turn_id.clone(),
            conversation_id: conversation.id.clone(),
            agent: agent.clone(),
            context: vec![Message::user(brief.clone())],
            tx,
            detached: AtomicBool::new(false),
            cancelled: self.cancelled.clone(),
            usage: Usage::default(),
            visible: String::new(),
            client_transcript: None,
            actor: format!("agent:{}", self.agent.id),
            decision: None,
            debug: self.debug,
            requested: Mutex::new(Vec::new()),
            home_context: None,
            owner_conversation_id: self.owner_conversation_id.clone(),
            depth: self.depth + 1,
            asked: Vec::new(),
            delegated_usage: Mutex::new(Usage::default()),
        };
        self.emit(Event::DelegationStarted {
            turn_id: self.turn_id.clone(),
            child_turn_id: child_turn_id.clone(),
            agent: agent.id.clone(),
            task: call.name.clone(),
            depth: self.depth + 1,
        })
        .await;
        tracing::info!(agent = %agent.id, child_turn_id = %child_turn_id, depth = self.depth + 1, "delegating");
        let facts = crate::policy::CallFacts::of(crate::tool::Tool::spec(delegation), &args);
        self.audit(
            "agent.delegated",
            &facts,
            serde_json::json!({"call_id": call.id, "to": agent.id, "child_turn_id": child_turn_id, "depth": self.depth + 1}),
        )
        .await;

        let running = child.run_delegated(brief);
        let forward = async {
            let mut error = None;
            while let Some(event) = rx.recv().await {
                if let Event::Error { message, .. } = &event {
                    error = Some(message.clone());
                }
                self.emit(Event::Delegated {
                    turn_id: self.turn_id.clone(),
                    agent: agent.id.clone(),
                    event: Box::new(event),
                })
                .await;
            }
            error
        };
        let (mut result, error) = futures::join!(running, forward);
        if let (false, Some(error)) = (result.ok, error) {
            result.answer = error;
        }

        self.delegated_usage.lock().unwrap_or_else(|p| p.into_inner()).add(result.usage);
        let waiting = !result.approvals.is_empty();
        self.requested.lock().unwrap_or_else(|p| p.into_inner()).extend(result.approvals);
        self.emit(Event::DelegationFinished {
            turn_id: self.turn_id.clone(),
            child_turn_id,
            agent: agent.id.clone(),
            ok: result.ok,
        })
        .await;
        let answer = if result.answer.trim().is_empty() { "(no answer)".to_string() } else { result.answer };
        let output = if result.ok {
            let mut out = format!("{} answered:\n{answer}", agent.id);
            if waiting {
                out.push_str(
                    "\n\n[Steward has asked the person to approve what it proposed; nothing has changed yet. \
Tell them what it proposes; do not call it again.]",
                );
            }
            out
        } else {
            format!("error: the {} agent could not finish: {answer}", agent.id)
        };
        (result.ok, output, false)
    }

    /// The delegated turn itself. Boxed: a delegated turn may delegate
    /// again, and a recursive future needs a known size.
    fn run_delegated(mut self, brief: String) -> Pin<Box<dyn Future<Output = Delegated> + Send>> {
        Box::pin(async move {
            self.emit(Event::TurnStarted {
                turn_id: self.turn_id.clone(),
                conversation_id: self.conversation_id.clone(),
                agent: self.agent.id.clone(),
            })
            .await;
            if let Err(e) = self.store(vec![Message::user(brief)]).await {
                let outcome = self.fail(steward_protocol::ErrorCode::StoreFailed, e.to_string()).await;
                return self.finish_delegated(outcome, 0, Some(e.to_string())).await;
            }
            match self.home_snapshot().await {
                Some(Ok(snapshot)) => {
                    let home = self.engine.inner.options.home.as_ref().map(|h| (h.name().to_string(), h.is_demo()));
                    let (name, demo) = home.unwrap_or_default();
                    self.home_context =
                        Some(crate::home::summary::prompt_summary(&name, demo, &snapshot.entities, &snapshot.areas));
                }
                Some(Err(e)) => self.home_context = Some(format!("The home cannot be reached right now: {e}")),
                None => {}
            }
            let (outcome, steps) = self.run_steps().await;
            self.finish_delegated(outcome, steps, None).await
        })
    }

    async fn finish_delegated(mut self, outcome: Outcome, steps: u32, error: Option<String>) -> Delegated {
        let (finish_reason, ok) = match outcome {
            Outcome::Finished(FinishReason::Cancelled) => (FinishReason::Cancelled, false),
            Outcome::Finished(reason) => (reason, true),
            Outcome::Failed => (FinishReason::Error, false),
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
        let answer = match (ok, error) {
            (false, Some(e)) => e,
            (false, None) if self.visible.trim().is_empty() => "the turn failed without an answer".to_string(),
            _ => std::mem::take(&mut self.visible),
        };
        Delegated { answer, ok, usage, approvals: std::mem::take(&mut self.asked) }
    }
}
