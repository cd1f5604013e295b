//! An MCP server's tool, as a Steward [`Tool`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmcp::model::ToolAnnotations;
use steward_core::tool::{Tool, ToolContext, ToolError, ToolSpec};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::Effect;
use tracing::Instrument;

use super::content;
use super::server::Server;

/// What the model sees of one result at most. Text beyond it is cut by the
/// engine with a note to narrow the call.
pub const OUTPUT_CAP: usize = 16 * 1024;
/// A server's own description of a tool is cut here: some are pages long,
/// and every offered tool's description is sent with every model request.
const DESCRIPTION_CAP: usize = 2_000;
/// Added to the engine's limit on a call beyond the server's own timeouts,
/// so the server's clearer timeout message arrives first.
const GRACE: Duration = Duration::from_secs(5);

/// The effect of a tool, from the hints its server gives:
///
/// - `readOnlyHint: true` → [`Effect::Read`]: runs without asking.
/// - otherwise `destructiveHint: false` → [`Effect::Mutate`]: asks under the
///   strict and balanced presets.
/// - otherwise → [`Effect::Destructive`]: always asks. This includes a tool
///   with no hints at all, because the MCP specification gives
///   `destructiveHint` a default of `true` for tools that are not read-only:
///   a server that says nothing has not said its tool is harmless.
///
/// Hints come from the server and are trusted only in that direction: a
/// server can make its tools ask more, and a `readOnlyHint` is believed
/// because the person chose to configure that server. Policy rules
/// (`tool = "<server>__*"`) can override both.
pub fn effect_of(annotations: Option<&ToolAnnotations>) -> Effect {
    let read_only = annotations.and_then(|a| a.read_only_hint).unwrap_or(false);
    let destructive = annotations.and_then(|a| a.destructive_hint).unwrap_or(true);
    match (read_only, destructive) {
        (true, _) => Effect::Read,
        (false, false) => Effect::Mutate,
        (false, true) => Effect::Destructive,
    }
}

/// One tool of one server, named `<server>__<tool>`.
pub struct McpTool {
    spec: ToolSpec,
    server: Arc<Server>,
    /// The tool's name on its server.
    remote: String,
}

impl McpTool {
    pub(crate) fn new(name: String, server: Arc<Server>, tool: &rmcp::model::Tool) -> Self {
        let described = tool.description.as_deref().map(str::trim).filter(|d| !d.is_empty());
        let mut description = match (described, tool.title.as_deref()) {
            (Some(d), _) => d.to_string(),
            (None, Some(title)) => title.to_string(),
            (None, None) => format!("The tool '{}' of the MCP server '{}'.", tool.name, server.name()),
        };
        if description.len() > DESCRIPTION_CAP {
            let mut end = DESCRIPTION_CAP;
            while !description.is_char_boundary(end) {
                end -= 1;
            }
            description.truncate(end);
            description.push('…');
        }
        let spec = ToolSpec {
            name,
            description,
            parameters: serde_json::Value::Object(tool.input_schema.as_ref().clone()),
            effect: effect_of(tool.annotations.as_ref()),
            // A call on a dead server restarts it first (startup timeout),
            // then waits for the answer (tool timeout).
            timeout: server.config.startup_timeout + server.config.tool_timeout + GRACE,
            output_cap: OUTPUT_CAP,
            domain: Some("mcp".into()),
        };
        McpTool { spec, server, remote: tool.name.to_string() }
    }

    /// The server's name for this tool.
    pub fn remote_name(&self) -> &str {
        &self.remote
    }

    /// The server this tool belongs to.
    pub fn server_name(&self) -> &str {
        self.server.name()
    }
}

fn arguments(value: serde_json::Value) -> Result<serde_json::Map<String, serde_json::Value>, ToolError> {
    match value {
        serde_json::Value::Object(map) => Ok(map),
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        other => Err(ToolError::InvalidArguments(format!("the arguments must be a JSON object, not {other}"))),
    }
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments_value: serde_json::Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments(arguments_value)?;
        let span =
            tracing::info_span!("mcp_call", server = %self.server.name(), tool = %self.remote, call = %ctx.call_id);
        let result =
            self.server.call(&self.remote, args, self.spec.effect).instrument(span).await.map_err(ToolError::Failed)?;
        let text = content::render(&result);
        if result.is_error == Some(true) {
            let text =
                if text.trim().is_empty() { "the tool reported an error without a message".into() } else { text };
            return Err(ToolError::Failed(format!("{} (MCP server '{}'): {text}", self.remote, self.server.name())));
        }
        Ok(text)
    }

    async fn preview(&self, arguments_value: &serde_json::Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        let shown = serde_json::to_string_pretty(arguments_value).unwrap_or_else(|_| arguments_value.to_string());
        let compact = arguments_value.to_string();
        let summary = if compact.len() <= 200 && compact != "{}" && compact != "null" {
            format!("call {} on MCP server {} with {compact}", self.remote, self.server.name())
        } else {
            format!("call {} on MCP server {}", self.remote, self.server.name())
        };
        Ok(Preview {
            summary,
            targets: vec![PreviewTarget {
                id: format!("mcp:{}/{}", self.server.name(), self.remote),
                name: Some(format!("MCP server {}", self.server.name())),
                state: None,
            }],
            details: Some(shown),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn hints(read_only: Option<bool>, destructive: Option<bool>) -> ToolAnnotations {
        serde_json::from_value(serde_json::json!({"readOnlyHint": read_only, "destructiveHint": destructive})).unwrap()
    }

    #[test]
    fn effects_follow_the_hints_and_the_specification_defaults() {
        assert_eq!(effect_of(Some(&hints(Some(true), None))), Effect::Read);
        assert_eq!(effect_of(Some(&hints(Some(true), Some(true)))), Effect::Read);
        assert_eq!(effect_of(Some(&hints(Some(false), Some(false)))), Effect::Mutate);
        assert_eq!(effect_of(Some(&hints(None, Some(false)))), Effect::Mutate);
        assert_eq!(effect_of(Some(&hints(Some(false), Some(true)))), Effect::Destructive);
        assert_eq!(effect_of(Some(&hints(Some(false), None))), Effect::Destructive);
        assert_eq!(effect_of(None), Effect::Destructive);
    }
}
