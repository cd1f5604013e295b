//! MCP client: the tools of configured Model Context Protocol servers,
//! offered to Steward's agents like its own.
//!
//! A [`McpHub`] starts every enabled server at once — stdio servers as
//! child processes, remote ones over Streamable HTTP — each within its own
//! startup timeout (handshake and the whole, paginated, tool list). A server
//! that fails is reported with the reason (its last stderr lines included)
//! and the others go on. Each tool becomes a [`Tool`] named
//! `<server>__<tool>` (see [`names`]), with the server's description and
//! JSON Schema, an [`Effect`](steward_protocol::Effect) from the server's
//! hints (see [`effect_of`]), the `mcp` policy domain, the server's tool
//! timeout and a 16 KiB output cap.
//!
//! A server that dies between calls is restarted by the next call (once per
//! call); one that dies during a call is restarted and the call repeated
//! only for read-only tools, since a change may already have been made.
//!
//! Stdio servers get a small environment (see `connection::DEFAULT_ENV`) plus
//! their configured `env`, never Steward's own, which holds API keys.
//! Environment and header values are treated as secrets: they are masked in
//! `Debug`, removed from error messages, and [`ServerConfig::secrets`] hands
//! them to the redactor.

mod config;
mod connection;
mod content;
pub mod names;
mod server;
mod tool;

use std::sync::Arc;

use steward_core::tool::Tool;
use steward_protocol::Effect;

pub use config::{
    check_url, parse_mcp_config_json, valid_server_name, McpConfigError, ServerConfig, Transport,
    DEFAULT_STARTUP_TIMEOUT, DEFAULT_TOOL_TIMEOUT,
};
pub use server::ServerStatus;
pub use tool::{effect_of, McpTool, OUTPUT_CAP};

use server::Server;

/// What `steward mcp list` shows of one server.
#[derive(Debug, Clone)]
pub struct ServerReport {
    pub name: String,
    /// The command line or URL, without secrets.
    pub target: String,
    pub status: ServerStatus,
    /// The tools offered, after the enabled and disabled lists.
    pub tools: Vec<ToolReport>,
    /// Names in `enabled_tools` or `disabled_tools` the server does not
    /// have: usually a typo.
    pub unknown_filters: Vec<String>,
}

/// One offered tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolReport {
    /// The name the agents see: `<server>__<tool>`.
    pub name: String,
    /// The server's own name for it.
    pub remote: String,
    pub effect: Effect,
}

/// Every configured MCP server and the tools of those that started.
pub struct McpHub {
    servers: Vec<(Arc<Server>, Vec<String>)>,
    tools: Vec<Arc<McpTool>>,
}

impl std::fmt::Debug for McpHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpHub")
            .field("servers", &self.servers.iter().map(|(s, _)| s.name()).collect::<Vec<_>>())
            .field("tools", &self.tools.len())
            .finish()
    }
}

impl McpHub {
    /// A hub with no servers.
    pub fn empty() -> Self {
        McpHub { servers: Vec::new(), tools: Vec::new() }
    }

    /// Starts every enabled server concurrently, each within its startup
    /// timeout, and gathers the tools of those that started. Never fails:
    /// a server that could not start is [`ServerStatus::Failed`], with the
    /// reason, and logged.
    pub async fn start(mut configs: Vec<ServerConfig>) -> Self {
        // Sorted, so names that need deduplicating get the same suffixes on
        // every start.
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        let servers: Vec<Arc<Server>> = configs.into_iter().map(|c| Arc::new(Server::new(c))).collect();
        let started = futures::future::join_all(servers.iter().map(|server| {
            let server = server.clone();
            async move {
                if !server.config.enabled {
                    tracing::info!(server = %server.name(), "MCP server disabled in the configuration");
                    return Vec::new();
                }
                match server.start().await {
                    Ok(tools) => {
                        tracing::info!(server = %server.name(), tools = tools.len(), "MCP server started");
                        tools
                    }
                    Err(reason) => {
                        tracing::warn!(server = %server.name(), reason = %reason, "MCP server failed to start; \
its tools are not offered, the other servers go on");
                        Vec::new()
                    }
                }
            }
        }))
        .await;

        let mut names = names::UniqueNames::new();
        let mut tools = Vec::new();
        let mut reports = Vec::new();
        for (server, listed) in servers.into_iter().zip(started) {
            let mut unknown: Vec<String> = Vec::new();
            if server.status() == ServerStatus::Running {
                let filters = server.config.enabled_tools.iter().flatten().chain(&server.config.disabled_tools);
                unknown = filters.filter(|f| !listed.iter().any(|t| t.name == f.as_str())).cloned().collect();
                for name in &unknown {
                    tracing::warn!(server = %server.name(), tool = %name, "enabled_tools or disabled_tools names a \
tool this MCP server does not have");
                }
            }
            for tool in listed.iter().filter(|t| server.config.tool_allowed(&t.name)) {
                let name = names.claim(names::tool_name(server.name(), &tool.name));
                tools.push(Arc::new(McpTool::new(name, server.clone(), tool)));
            }
            reports.push((server, unknown));
        }
        McpHub { servers: reports, tools }
    }

    /// The tools to register, `<server>__<tool>`.
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.iter().map(|t| t.clone() as Arc<dyn Tool>).collect()
    }

    /// The names of [`Self::tools`].
    pub fn tool_names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.spec().name.clone()).collect()
    }

    /// Each server's status now, and its tools.
    pub fn report(&self) -> Vec<ServerReport> {
        self.servers
            .iter()
            .map(|(server, unknown)| ServerReport {
                name: server.name().to_string(),
                target: server.config.describe(),
                status: server.status(),
                tools: self
                    .tools
                    .iter()
                    .filter(|t| t.server_name() == server.name())
                    .map(|t| ToolReport {
                        name: t.spec().name.clone(),
                        remote: t.remote_name().to_string(),
                        effect: t.spec().effect,
                    })
                    .collect(),
                unknown_filters: unknown.clone(),
            })
            .collect()
    }

    /// The status of the server `name`, if it is configured.
    pub fn status(&self, name: &str) -> Option<ServerStatus> {
        self.servers.iter().find(|(s, _)| s.name() == name).map(|(s, _)| s.status())
    }

    /// Stops every server: children get EOF on stdin and a few seconds to
    /// exit before they are killed.
    pub async fn shutdown(&self) {
        futures::future::join_all(self.servers.iter().map(|(s, _)| s.stop())).await;
    }
}
