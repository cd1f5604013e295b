//! Running a step's tool calls: each under the policy, an approval when
//! it must ask, a timeout and an output cap, in parallel up to a limit.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::FutureExt;
use steward_protocol::approval::Preview;
use steward_protocol::{Event, Message, ToolCall};
use tracing::{info_span, Instrument};

use super::{approvals, call_kind, TurnRun};
use crate::policy::{CallFacts, Decision};
use crate::tool::{Tool, ToolContext, ToolError};

impl TurnRun {
    /// Runs the tool calls of one step concurrently (at most
    /// `max_parallel_tools` at once) and returns their result messages in
    /// the order of the calls.
    pub(super) async fn run_tools(&self, calls: &[ToolCall]) -> Vec<Message> {
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

    /// A call the policy says must ask: runs when this kind of call was
    /// approved for the rest of the conversation (`None`); otherwise it
    /// becomes a pending approval, and the model is told it waits.
    async fn ask(
        &self,
        tool: &dyn Tool,
        args: &serde_json::Value,
        facts: &CallFacts,
        ctx: &ToolContext,
    ) -> Option<(bool, String, bool)> {
        let inner = &self.engine.inner;
        let spec = tool.spec();
        let kind = call_kind(facts, args);
        match inner.store.has_conversation_grant(&self.owner_conversation_id, &kind).await {
            Ok(true) => {
                self.audit("tool.granted", facts, serde_json::json!({"call_id": ctx.call_id, "kind": kind})).await;
                return None;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not read this conversation's approvals"),
        }
        inner.metrics.tool_calls_blocked.fetch_add(1, Ordering::Relaxed);
        let preview =
            match tokio::time::timeout(spec.timeout, AssertUnwindSafe(tool.preview(args, ctx)).catch_unwind()).await {
                Ok(Ok(Ok(preview))) => preview,
                Ok(Ok(Err(ToolError::InvalidArguments(m)))) => {
                    tracing::Span::current().record("outcome", "invalid_arguments");
                    return Some((false, format!("error: invalid arguments: {m}"), false));
                }
                Ok(Ok(Err(ToolError::Failed(m)))) => Preview {
                    summary: format!("{} {args} (no preview: {m})", spec.name),
                    targets: Vec::new(),
                    details: None,
                },
                Ok(Err(_)) | Err(_) => Preview {
                    summary: format!("{} {args} (no preview: it failed or timed out)", spec.name),
                    targets: Vec::new(),
                    details: None,
                },
            };
        match self.engine.create_approval(ctx, tool, args, facts, kind, preview).await {
            Ok(approval) => {
                tracing::Span::current().record("outcome", "awaiting_approval");
                let text = format!(
                    "awaiting approval {}: a person must approve this before it runs, and Steward has asked them. \
Nothing has changed yet. Do not call it again; their answer comes in a later message.",
                    approval.id
                );
                self.emit(Event::ApprovalRequested { turn_id: self.turn_id.clone(), approval: approval.clone() }).await;
                self.requested.lock().unwrap_or_else(|p| p.into_inner()).push(approval);
                Some((false, text, false))
            }
            Err(e) => {
                tracing::Span::current().record("outcome", "needs_approval");
                tracing::warn!(error = %e, "could not record an approval");
                Some((
                    false,
                    format!(
                        "not executed: '{}' needs a person's approval, and the approval could not be recorded \
({e}). Nothing was changed.",
                        spec.name
                    ),
                    false,
                ))
            }
        }
    }

    /// Debug mode: a tool's input or output as an event and a log line.
    async fn debug_io(&self, call: &ToolCall, phase: &str, content: String) {
        tracing::info!(target: "steward::debug", tool = %call.name, call_id = %call.id, phase, content = %content, "tool i/o");
        self.emit(Event::ToolDebug {
            turn_id: self.turn_id.clone(),
            call_id: call.id.clone(),
            name: call.name.clone(),
            phase: phase.to_string(),
            content,
        })
        .await;
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
            decision = tracing::field::Empty,
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
            if let Some(delegation) = tool.delegation() {
                return self.delegate(delegation, call, args).await;
            }
            let facts = CallFacts::of(spec, &args);
            let decision = inner.policy.decide(&facts);
            tracing::Span::current().record("decision", decision.as_str());
            self.audit(
                "tool.decision",
                &facts,
                serde_json::json!({
                    "call_id": call.id,
                    "effect": spec.effect.as_str(),
                    "decision": decision.as_str(),
                    "arguments": inner.redactor.json(&args),
                }),
            )
            .await;
            let ctx = ToolContext {
                turn_id: self.turn_id.clone(),
                conversation_id: self.owner_conversation_id.clone(),
                agent: self.agent.id.clone(),
                call_id: call.id.clone(),
                approval: None,
                progress: None,
            };
            match decision {
                Decision::Allow => {}
                Decision::Ask => {
                    if let Some(refusal) = self.ask(tool.as_ref(), &args, &facts, &ctx).await {
                        return refusal;
                    }
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
            if self.debug {
                self.debug_io(call, "input", inner.redactor.json(&args).to_string()).await;
            }
            let run = match self.specialist_for(&call.name) {
                Some(owner) => self.run_for(owner, tool.as_ref(), call, args, ctx).await,
                None => approvals::invoke(tool.as_ref(), args, &ctx).await,
            };
            if spec.effect != steward_protocol::Effect::Read {
                self.audit("tool.executed", &facts, serde_json::json!({"call_id": call.id, "outcome": run.outcome}))
                    .await;
            }
            let counter = match run.outcome {
                "ok" => &inner.metrics.tool_calls_ok,
                "timeout" => &inner.metrics.tool_calls_timed_out,
                _ => &inner.metrics.tool_calls_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::Span::current().record("outcome", run.outcome);
            if self.debug {
                self.debug_io(call, "output", inner.redactor.maybe_json(&run.output)).await;
            }
            (run.ok, run.output, run.truncated)
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
