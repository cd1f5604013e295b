//! Approvals end to end through the HTTP API: a model that obeys every
//! instruction it reads, tools that record every execution, a real store.

pub mod activity;
mod adversarial;
mod lifecycle;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_core::llm::LlmStream;
use steward_core::policy::StrictPolicy;
use steward_core::{
    AgentProfile, AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, Llm, LlmChunk, LlmError,
    LlmRequest, Redactor, Tool, ToolContext, ToolError, ToolRegistry, ToolSpec,
};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::{Effect, FinishReason, Role, ToolCall};
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;

use super::{Harness, Reply};

/// A secret the engine is told about; it must never appear in debug output.
pub const SECRET: &str = "ha-token-7f3a9c1d";

/// Wall-clock time plus an offset tests can move forward.
#[derive(Default)]
pub struct MovableClock {
    offset_ms: AtomicI64,
}

impl MovableClock {
    pub fn advance(&self, d: Duration) {
        self.offset_ms.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for MovableClock {
    fn now_ms(&self) -> i64 {
        steward_core::SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// One execution of a world-changing test tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub tool: String,
    pub arguments: Value,
    /// The approval it ran under, if any.
    pub approval: Option<String>,
    pub idempotency_key: Option<String>,
}

pub type Log = Arc<Mutex<Vec<Execution>>>;

/// Switches a switch: `mutate` (or `destructive`), records each run.
pub struct SwitchTool {
    spec: ToolSpec,
    log: Log,
    delay: Duration,
}

impl SwitchTool {
    pub fn new(name: &str, effect: Effect, log: Log, delay: Duration) -> Self {
        SwitchTool {
            spec: ToolSpec {
                name: name.into(),
                description: "Turns a switch on or off.".into(),
                parameters: json!({"type": "object", "properties": {
                    "entity_id": {"type": "string"}, "action": {"type": "string"}}}),
                effect,
                timeout: Duration::from_secs(10),
                output_cap: 4096,
                domain: None,
            },
            log,
            delay,
        }
    }
}

#[async_trait]
impl Tool for SwitchTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        tokio::time::sleep(self.delay).await;
        let Some(entity) = arguments.get("entity_id").and_then(Value::as_str) else {
            return Err(ToolError::InvalidArguments("entity_id is required".into()));
        };
        self.log.lock().unwrap().push(Execution {
            tool: self.spec.name.clone(),
            arguments: arguments.clone(),
            approval: ctx.approval.as_ref().map(|a| a.id.clone()),
            idempotency_key: ctx.approval.as_ref().map(|a| a.idempotency_key.clone()),
        });
        Ok(format!("{entity} is now {}", arguments.get("action").and_then(Value::as_str).unwrap_or("on")))
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        let Some(entity) = arguments.get("entity_id").and_then(Value::as_str) else {
            return Err(ToolError::InvalidArguments("entity_id is required".into()));
        };
        let action = arguments.get("action").and_then(Value::as_str).unwrap_or("turn_on");
        Ok(Preview {
            summary: format!("switch.{action} on {entity} (now off)"),
            targets: vec![PreviewTarget { id: entity.into(), name: Some("Heater".into()), state: Some("off".into()) }],
            details: None,
        })
    }
}

/// Returns a fixed text: where injected instructions come from.
pub struct NoteTool {
    spec: ToolSpec,
    text: Arc<Mutex<String>>,
}

#[async_trait]
impl Tool for NoteTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        Ok(self.text.lock().unwrap().clone())
    }
}

/// A model that obeys every instruction it reads in the current turn —
/// the user's new message and every tool result after it: a line
/// `DO: call <tool> <json arguments>` or `DO: say <text>`. Each instruction
/// is obeyed once; with nothing left to obey it says "ok".
#[derive(Default)]
pub struct ObedientLlm {
    obeyed: Mutex<HashSet<String>>,
}

impl ObedientLlm {
    fn next_action(&self, request: &LlmRequest) -> (String, Vec<ToolCall>) {
        let mut obeyed = self.obeyed.lock().unwrap();
        let turn = request.trace_id.clone().unwrap_or_default();
        let start = request.messages.iter().rposition(|m| m.role == Role::User).unwrap_or(0);
        let mut text = String::new();
        let mut calls = Vec::new();
        for (m, message) in request.messages.iter().enumerate().skip(start) {
            for (l, line) in message.content.lines().enumerate() {
                let Some(at) = line.find("DO: ") else { continue };
                let instruction = line[at + 4..].trim();
                if !obeyed.insert(format!("{turn}:{m}:{l}")) {
                    continue;
                }
                if let Some(rest) = instruction.strip_prefix("call ") {
                    let (name, args) = rest.split_once(' ').unwrap_or((rest, "{}"));
                    calls.push(ToolCall::new(format!("call_{m}_{l}"), name, args));
                } else if let Some(say) = instruction.strip_prefix("say ") {
                    text.push_str(say);
                }
            }
        }
        if text.is_empty() && calls.is_empty() {
            text = "ok".into();
        }
        (text, calls)
    }
}

#[async_trait]
impl Llm for ObedientLlm {
    fn name(&self) -> &str {
        "obedient"
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let (text, calls) = self.next_action(&request);
        let mut chunks = vec![Ok(LlmChunk::Text(text))];
        let finish = if calls.is_empty() { FinishReason::Stop } else { FinishReason::ToolCalls };
        chunks.extend(calls.into_iter().map(|c| Ok(LlmChunk::ToolCall(c))));
        chunks.push(Ok(LlmChunk::Finish(finish)));
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}

pub struct Approvals {
    pub h: Harness,
    pub log: Log,
    pub note: Arc<Mutex<String>>,
    pub clock: Arc<MovableClock>,
    pub engine: Engine,
    pub store: Arc<SqlStore>,
}

pub struct Setup {
    pub tool_delay: Duration,
    pub debug: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup { tool_delay: Duration::ZERO, debug: false }
    }
}

pub async fn approvals() -> Approvals {
    approvals_with(Setup::default()).await
}

pub async fn approvals_with(setup: Setup) -> Approvals {
    let dir = std::env::temp_dir().join(format!("steward-approvals-test-{}", uuid::Uuid::new_v4().simple()));
    let clock = Arc::new(MovableClock::default());
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let log: Log = Arc::default();
    let note = Arc::new(Mutex::new(String::from("nothing noteworthy")));
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(SwitchTool::new("set_switch", Effect::Mutate, log.clone(), setup.tool_delay)));
    tools.register(Arc::new(SwitchTool::new("wipe_disk", Effect::Destructive, log.clone(), setup.tool_delay)));
    tools.register(Arc::new(NoteTool {
        spec: ToolSpec {
            name: "read_note".into(),
            description: "Reads a note.".into(),
            parameters: json!({"type": "object"}),
            effect: Effect::Read,
            timeout: Duration::from_secs(5),
            output_cap: 8192,
            domain: None,
        },
        text: note.clone(),
    }));
    let mut agents = AgentRegistry::builtin();
    let mut architect = AgentProfile::architect();
    architect.tools = vec!["set_switch".into(), "wipe_disk".into(), "read_note".into()];
    agents.insert(architect);
    let engine = Engine::with_options(
        EngineParts {
            llm: Arc::new(ObedientLlm::default()),
            store: store.clone(),
            tools,
            agents,
            clock: clock.clone(),
            limits: EngineLimits::default(),
        },
        Arc::new(StrictPolicy),
        EngineOptions {
            approval_ttl: Duration::from_secs(600),
            debug: setup.debug,
            redactor: Redactor::new([SECRET.to_string()]),
            ..EngineOptions::default()
        },
    );
    let state = AppState::new(engine.clone(), ServerSettings::default());
    let h = Harness { app: app(state), llm: None, store: store.clone(), dir };
    Approvals { h, log, note, clock, engine, store }
}

impl Approvals {
    pub fn executions(&self) -> Vec<Execution> {
        self.log.lock().unwrap().clone()
    }

    pub async fn conversation(&self) -> String {
        self.h.post_json("/api/conversations", json!({})).await.json()["id"].as_str().unwrap().to_string()
    }

    /// Sends a message in a conversation and returns the reply's content.
    pub async fn say(&self, conversation: &str, content: &str) -> Value {
        let r =
            self.h.post_json(&format!("/api/conversations/{conversation}/messages"), json!({"content": content})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub async fn proposals(&self, query: &str) -> Vec<Value> {
        let r = self.h.get(&format!("/api/proposals{query}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["proposals"].as_array().unwrap().clone()
    }

    pub async fn decide(&self, id: &str, verb: &str, body: Value) -> Reply {
        self.h.post_json(&format!("/api/proposals/{id}/{verb}"), body).await
    }

    /// Audit actions in order.
    pub async fn audit_actions(&self) -> Vec<String> {
        let r = self.h.get("/api/audit?limit=1000").await.json();
        assert_eq!(r["verified"]["ok"], true, "{r}");
        r["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
    }
}

/// The instruction that makes the model switch the heater on.
pub const HEATER_ON: &str = r#"DO: call set_switch {"entity_id": "switch.heater", "action": "turn_on"}"#;
