//! The gate every tool call passes, decided outside the model.
//!
//! The default is the strict one: a `read` tool runs, every `mutate` and
//! `destructive` call asks a person. Until approvals can be requested and
//! decided, a call that asks is not executed and the model is told that it
//! waits for a person, so nothing changes the world unapproved.

use steward_protocol::Effect;

use crate::tool::ToolSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

/// Decides whether a tool call may run.
pub trait Policy: Send + Sync + 'static {
    fn decide(&self, spec: &ToolSpec, arguments: &serde_json::Value) -> Decision;
}

/// Reads run; everything else asks.
#[derive(Debug, Default, Clone, Copy)]
pub struct StrictPolicy;

impl Policy for StrictPolicy {
    fn decide(&self, spec: &ToolSpec, _arguments: &serde_json::Value) -> Decision {
        match spec.effect {
            Effect::Read => Decision::Allow,
            Effect::Mutate | Effect::Destructive => Decision::Ask,
        }
    }
}
