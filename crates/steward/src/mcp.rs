//! MCP servers in `steward serve` and `steward mcp list`: started from the
//! configuration, their tools registered and handed to the infra agent.

use std::fmt::Write as _;

use steward_core::{AgentProfile, AgentRegistry, ToolRegistry};
use steward_integrations::mcp::{McpHub, ServerReport, ServerStatus};

use crate::config::Config;

/// The log filter with the MCP library held to warnings: it logs every
/// handshake (a server's whole self-description) and notification at info.
/// A filter that names `rmcp` itself is left as it is.
pub fn log_filter(level: &str) -> String {
    if level.contains("rmcp") {
        level.to_string()
    } else {
        format!("{level},rmcp=warn")
    }
}

/// Starts every configured MCP server, concurrently; one that fails is
/// logged and reported, never fatal.
pub async fn start(config: &Config) -> McpHub {
    for warning in &config.mcp.warnings {
        tracing::warn!("{warning}");
    }
    if config.mcp.servers.is_empty() {
        return McpHub::empty();
    }
    McpHub::start(config.mcp.servers.clone()).await
}

/// Adds the hub's tools to `tools`. Their names (`<server>__<tool>`) cannot
/// meet a built-in tool's, which never holds `__`; should one ever, the
/// built-in is kept.
pub fn register(hub: &McpHub, tools: &mut ToolRegistry) {
    for tool in hub.tools() {
        let name = tool.spec().name.clone();
        if tools.contains(&name) {
            tracing::warn!(tool = %name, "an MCP tool has the name of a built-in tool; the built-in is kept");
            continue;
        }
        tools.register(tool);
    }
}

/// Gives the infra agent (built in, or as configured) every MCP tool: its
/// tool list cannot name them in advance, since they are known only once
/// the servers have started.
pub fn give_to_infra(hub: &McpHub, agents: &mut AgentRegistry) {
    let Some(mut infra) = agents.get("infra").cloned() else { return };
    for name in hub.tool_names() {
        if !infra.tools.contains(&name) {
            infra.tools.push(name);
        }
    }
    agents.insert(infra);
}

/// A configured agent may name MCP tools; those of a server that did not
/// start (or, for `config check`, was not started) are left out with a
/// warning rather than stopping Steward: one failing server must not stop
/// the rest.
pub fn without_missing_mcp_tools(config: &Config, mut profile: AgentProfile, tools: &ToolRegistry) -> AgentProfile {
    profile.tools.retain(|tool| {
        let of_a_server = config.mcp.servers.iter().any(|s| tool.starts_with(&format!("{}__", s.name)));
        if of_a_server && !tools.contains(tool) {
            tracing::warn!(agent = %profile.id, tool = %tool, "the agent's MCP tool is not available (its server \
did not start); the agent goes without it");
            return false;
        }
        true
    });
    profile
}

/// `steward mcp list`: starts the servers as `serve` would, prints each
/// with its status and tools, and stops them. `Ok(false)` when an enabled
/// server failed.
pub async fn list(config: &Config) -> bool {
    if config.mcp.servers.is_empty() {
        println!(
            "no MCP servers are configured: add [mcp_servers.<name>] to steward.toml, or an mcp_config.json to the \
data directory ({})",
            config.file.storage.data_dir.display()
        );
        return true;
    }
    for warning in &config.mcp.warnings {
        eprintln!("warning: {warning}");
    }
    let hub = McpHub::start(config.mcp.servers.clone()).await;
    let reports = hub.report();
    hub.shutdown().await;
    print!("{}", render(&reports));
    !reports.iter().any(|r| matches!(r.status, ServerStatus::Failed(_)))
}

/// The list as a person reads it.
pub fn render(reports: &[ServerReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = writeln!(out, "{}  {}  ({})", report.name, report.status, report.target);
        let width = report.tools.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for tool in &report.tools {
            let _ = writeln!(out, "  {:<width$}  {}", tool.name, tool.effect.as_str());
        }
        match &report.status {
            ServerStatus::Running if report.tools.is_empty() => {
                let _ = writeln!(out, "  (no tools offered)");
            }
            ServerStatus::Running | ServerStatus::Failed(_) | ServerStatus::Disabled => {}
        }
        for name in &report.unknown_filters {
            let _ =
                writeln!(out, "  warning: enabled_tools/disabled_tools names '{name}', which the server does not have");
        }
    }
    out
}
