//! Tools: the one trait every action implements, and the registry the
//! engine looks them up in.
//!
//! Each tool declares the same contract: a name, a description, a JSON
//! Schema for its arguments, an [`Effect`], a timeout and an output cap. The
//! engine enforces the timeout and the cap, so a tool cannot hang a turn or
//! flood a model's context.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use steward_protocol::approval::Preview;
use steward_protocol::Effect;

use crate::llm::ToolDefinition;

/// What a tool declares about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
    pub effect: Effect,
    pub timeout: Duration,
    /// Bytes of output the model sees at most.
    pub output_cap: usize,
    /// The integration's domain for the policy (`proxmox`, `ansible`,
    /// `ssh`, `mcp`); Home Assistant tools leave it unset, since their
    /// domains come from the entity ids they are called with.
    pub domain: Option<String>,
}

impl ToolSpec {
    pub fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }
}

/// What a running tool knows about the turn that called it.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub turn_id: String,
    pub conversation_id: String,
    pub agent: String,
    pub call_id: String,
    /// Set when the call runs because a person approved it: the approval's
    /// id and its idempotency key, for tools that can pass one on.
    pub approval: Option<ApprovalRef>,
    /// Set for a call a person approved: where a long-running tool reports
    /// what it is doing, line by line, as it happens. The lines are kept in
    /// the run's execution log and streamed to watchers.
    pub progress: Option<ToolProgress>,
}

/// Where a running tool reports progress. Reporting never waits.
#[derive(Clone)]
pub struct ToolProgress {
    tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl std::fmt::Debug for ToolProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToolProgress")
    }
}

impl ToolProgress {
    /// A reporter and the receiving end of its lines.
    pub fn channel() -> (ToolProgress, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (ToolProgress { tx }, rx)
    }

    /// Reports one line.
    pub fn line(&self, line: impl Into<String>) {
        // Nobody listening any more is not the tool's problem.
        let _ = self.tx.send(line.into());
    }
}

/// The approval a call runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRef {
    pub id: String,
    pub idempotency_key: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The arguments do not fit the schema; the model should fix them.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
}

#[async_trait]
pub trait Tool: Send + Sync + 'static {
    fn spec(&self) -> &ToolSpec;

    /// Runs the tool. The output is text for the model (often JSON).
    async fn call(&self, arguments: serde_json::Value, ctx: &ToolContext) -> Result<String, ToolError>;

    /// What a person sees before approving a call, computed without
    /// changing anything: the targets and their current state, a
    /// check-mode diff, the YAML to be written. The default names the tool
    /// and its arguments.
    async fn preview(&self, arguments: &serde_json::Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        Ok(Preview { summary: format!("{} {}", self.spec().name, arguments), targets: Vec::new(), details: None })
    }

    /// Set for tools that hand work to another agent: the engine runs that
    /// agent's turn instead of calling the tool.
    fn delegation(&self) -> Option<&crate::delegation::DelegateTool> {
        None
    }
}

/// Every tool the engine can offer, by name.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl ToolRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; a tool of the same name is replaced.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name.clone(), tool);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }
}

/// Cuts `output` to at most `cap` bytes (on a character boundary) and, when
/// it had to, appends a note telling the model to narrow its query rather
/// than asking for everything again.
pub fn cap_output(output: String, cap: usize, tool: &str) -> (String, bool) {
    if output.len() <= cap {
        return (output, false);
    }
    let mut end = cap;
    while end > 0 && !output.is_char_boundary(end) {
        end -= 1;
    }
    let total = output.len();
    let mut cut = output;
    cut.truncate(end);
    cut.push_str(&format!(
        "\n[output of {tool} truncated: showing {end} of {total} bytes. Do not repeat the same call; \
narrow it instead (filter by name, area or domain, ask for fewer items or a shorter time range).]"
    ));
    (cut, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_untouched() {
        assert_eq!(cap_output("abc".into(), 10, "t"), ("abc".to_string(), false));
    }

    #[test]
    fn long_output_is_cut_on_a_char_boundary_with_a_note() {
        let (out, truncated) = cap_output("ééééé".into(), 3, "lookup");
        assert!(truncated);
        assert!(out.starts_with('é'));
        assert!(!out.starts_with("éé"));
        assert!(out.contains("truncated: showing 2 of 10 bytes"), "{out}");
        assert!(out.contains("narrow"));
    }
}
