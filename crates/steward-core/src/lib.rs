//! The Steward engine.
//!
//! Front ends submit [`steward_protocol::Op`]s to an [`Engine`] and read
//! [`steward_protocol::Event`]s back. The engine reaches the world only
//! through the traits defined here: [`Llm`] for models, [`Store`] for
//! persistence, [`Home`] for the house, [`Tool`] for actions and [`Clock`]
//! for time.

pub mod activity;
pub mod agent;
pub mod audit;
pub mod changes;
pub mod clock;
pub mod delegation;
pub mod engine;
pub mod gateway;
pub mod home;
pub mod insights;
pub mod intent;
pub mod llm;
pub mod metrics;
pub mod policy;
pub mod redact;
pub mod snapshots;
pub mod store;
pub mod tasks;
pub mod tool;
pub mod tools;
pub mod usage;

pub use activity::Activity;
pub use agent::{AgentProfile, AgentRegistry, Tier};
pub use audit::{verify_chain, AuditBreak, AuditEntry, AuditHead, ChainVerifier, NewAuditEntry};
pub use clock::{Clock, SystemClock};
pub use engine::{
    parse_chat_decision, ChatDecision, DecideError, Engine, EngineError, EngineLimits, EngineOptions, EngineParts,
    Recovery, TurnHandle,
};
pub use gateway::Gateway;
pub use home::{Entity, Home, HomeError, ServiceCall, StateChanged};
pub use intent::{Action, Intent, IntentEngine, QueryKind, Understanding, CONFIDENCE_THRESHOLD};
pub use llm::{Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, LlmStream, ToolDefinition, UnconfiguredLlm};
pub use metrics::Metrics;
pub use policy::{CallFacts, Decision, Policy, Preset, Rule, RulePolicy};
pub use redact::Redactor;
pub use store::{ApprovalDecision, ApprovalFilter, EntityFilter, NewMessage, Store, StoreError};
pub use tasks::{RunTaskTool, RunnerOptions, RunnerParts, TaskError, TaskRecovery, TaskRunner, Tasks};
pub use tool::{ApprovalRef, Tool, ToolContext, ToolError, ToolProgress, ToolRegistry, ToolSpec};
pub use usage::{UsageGroup, UsageRecord, UsageTotal};
