//! One configured server while Steward runs: its session, its status, and
//! calls that survive the server dying between them.

use std::fmt;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ClientRequest, Request, ServerResult};
use rmcp::service::{PeerRequestOptions, ServiceError};
use rmcp::{Peer, RoleClient};
use steward_protocol::Effect;
use tokio::sync::Mutex;

use super::config::ServerConfig;
use super::connection::{self, Client, Connected, StderrTail};

/// Where a server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStatus {
    /// Started; its tools are offered.
    Running,
    /// Could not be started, or stopped and could not be restarted; the
    /// reason is for a person.
    Failed(String),
    /// `enabled = false` (or `"disabled": true`): never started.
    Disabled,
}

impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerStatus::Running => f.write_str("ok"),
            ServerStatus::Failed(reason) => write!(f, "failed: {reason}"),
            ServerStatus::Disabled => f.write_str("disabled"),
        }
    }
}

/// The session, replaced whenever the server is restarted.
struct Live {
    client: Option<Client>,
    pid: Option<u32>,
    /// Counts sessions, so that calls that saw the same dead session restart
    /// it once between them, not once each.
    generation: u64,
}

pub(crate) struct Server {
    pub config: ServerConfig,
    live: Mutex<Live>,
    status: StdMutex<ServerStatus>,
    /// The current run's stderr.
    stderr: StdMutex<StderrTail>,
    secrets: Vec<String>,
}

/// A failed call, in words for the model and the person.
pub(crate) type CallError = String;

impl Server {
    /// A server that is not running (yet): disabled, or about to be started.
    pub fn new(config: ServerConfig) -> Self {
        let status = if config.enabled { ServerStatus::Failed("not started".into()) } else { ServerStatus::Disabled };
        // Short values would be found everywhere; a secret is longer.
        let secrets = config.secrets().into_iter().filter(|s| s.len() >= 4).collect();
        Server {
            config,
            live: Mutex::new(Live { client: None, pid: None, generation: 0 }),
            status: StdMutex::new(status),
            stderr: StdMutex::new(StderrTail::default()),
            secrets,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn status(&self) -> ServerStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    fn stderr(&self) -> StderrTail {
        self.stderr.lock().map(|t| t.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// What the current run said on stderr, once it has had a moment to
    /// finish saying it.
    async fn last_words(&self) -> String {
        let tail = self.stderr();
        tail.settle(Duration::from_secs(1)).await;
        tail.suffix()
    }

    fn set_status(&self, status: ServerStatus) {
        match self.status.lock() {
            Ok(mut s) => *s = status,
            Err(e) => *e.into_inner() = status,
        }
    }

    /// Removes secret values (environment and header values) from a message:
    /// a server's error or stderr may echo them.
    fn redact(&self, text: String) -> String {
        self.secrets.iter().fold(text, |t, s| t.replace(s.as_str(), "********"))
    }

    /// Starts the server within its startup timeout; on success the tools it
    /// lists are returned. The status says how it went.
    pub async fn start(&self) -> Result<Vec<rmcp::model::Tool>, String> {
        let mut live = self.live.lock().await;
        match self.open(&mut live).await {
            Ok(tools) => {
                self.set_status(ServerStatus::Running);
                Ok(tools)
            }
            Err(reason) => {
                self.set_status(ServerStatus::Failed(reason.clone()));
                Err(reason)
            }
        }
    }

    /// Replaces whatever session `live` holds with a new one.
    async fn open(&self, live: &mut Live) -> Result<Vec<rmcp::model::Tool>, String> {
        if let Some(old) = live.client.take() {
            connection::stop(old, live.pid.take()).await;
        }
        let tail = StderrTail::default();
        match self.stderr.lock() {
            Ok(mut t) => *t = tail.clone(),
            Err(e) => *e.into_inner() = tail.clone(),
        }
        let timeout = self.config.startup_timeout;
        let outcome = tokio::time::timeout(timeout, connection::connect(&self.config, &tail)).await;
        live.generation += 1;
        match outcome {
            Ok(Ok(Connected { client, tools, pid })) => {
                live.client = Some(client);
                live.pid = pid;
                Ok(tools)
            }
            Ok(Err(reason)) => Err(self.redact(format!("{reason}{}", self.last_words().await))),
            // Still running: what it said so far, without waiting for more.
            Err(_) => Err(self.redact(format!(
                "did not finish starting (handshake and tool list) within {}{}; if it is just slow, raise \
startup_timeout_secs",
                human(timeout),
                tail.suffix()
            ))),
        }
    }

    /// The current session's peer, restarting the server first when it has
    /// died (or never started).
    async fn peer(&self) -> Result<(Peer<RoleClient>, u64), CallError> {
        {
            let live = self.live.lock().await;
            if let Some(client) = live.client.as_ref().filter(|c| !c.is_transport_closed()) {
                return Ok((client.peer().clone(), live.generation));
            }
        }
        self.restart(None).await
    }

    /// Restarts the server, unless another call already did since the
    /// session `seen` that it found dead.
    async fn restart(&self, seen: Option<u64>) -> Result<(Peer<RoleClient>, u64), CallError> {
        let mut live = self.live.lock().await;
        if let Some(client) = live.client.as_ref().filter(|c| !c.is_transport_closed()) {
            if seen != Some(live.generation) {
                return Ok((client.peer().clone(), live.generation));
            }
        }
        if !self.config.enabled {
            return Err(format!("MCP server '{}' is disabled in the configuration", self.name()));
        }
        tracing::info!(server = %self.name(), "MCP server is not running; restarting it");
        match self.open(&mut live).await {
            Ok(_) => {
                self.set_status(ServerStatus::Running);
                let client = live.client.as_ref().ok_or_else(|| "the restarted session vanished".to_string())?;
                Ok((client.peer().clone(), live.generation))
            }
            Err(reason) => {
                tracing::warn!(server = %self.name(), reason = %reason, "MCP server could not be restarted");
                self.set_status(ServerStatus::Failed(reason.clone()));
                Err(format!("MCP server '{}' is not running and could not be restarted: {reason}", self.name()))
            }
        }
    }

    /// Calls the server's tool `tool`. A server found dead is restarted once
    /// first. A server that dies during the call is restarted too, and the
    /// call is repeated only for a read-only tool: a change may have taken
    /// effect before the server died, and must not be made twice.
    pub async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        effect: Effect,
    ) -> Result<CallToolResult, CallError> {
        let (peer, generation) = self.peer().await?;
        match self.call_once(&peer, tool, arguments.clone()).await {
            Attempt::Done(result) => result,
            Attempt::NotSent => {
                let (peer, _) = self.restart(Some(generation)).await?;
                match self.call_once(&peer, tool, arguments).await {
                    Attempt::Done(result) => result,
                    Attempt::NotSent | Attempt::Died => Err(self.died_again(tool).await),
                }
            }
            Attempt::Died => {
                let died = self.redact(format!(
                    "MCP server '{}' stopped during the call of '{tool}'{}",
                    self.name(),
                    self.last_words().await
                ));
                tracing::warn!(server = %self.name(), tool, "MCP server stopped during a call");
                self.set_status(ServerStatus::Failed(died.clone()));
                let restarted = self.restart(Some(generation)).await;
                match (effect, restarted) {
                    (_, Err(e)) => Err(format!("{died}. {e}")),
                    (Effect::Read, Ok((peer, _))) => match self.call_once(&peer, tool, arguments).await {
                        Attempt::Done(result) => result,
                        Attempt::NotSent | Attempt::Died => Err(self.died_again(tool).await),
                    },
                    (Effect::Mutate | Effect::Destructive, Ok(_)) => Err(format!(
                        "{died}. It was restarted, but the call was not repeated: it may have taken effect before \
the server stopped. Check, then call again if it did not."
                    )),
                }
            }
        }
    }

    async fn died_again(&self, tool: &str) -> String {
        let reason = self.redact(format!(
            "MCP server '{}' stopped again during the call of '{tool}' after a restart{}; it needs a look \
(`steward mcp list` shows it)",
            self.name(),
            self.last_words().await
        ));
        self.set_status(ServerStatus::Failed(reason.clone()));
        reason
    }

    async fn call_once(
        &self,
        peer: &Peer<RoleClient>,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Attempt {
        let request = ClientRequest::CallToolRequest(Request::new(CallToolRequestParams {
            meta: None,
            name: tool.to_string().into(),
            arguments: Some(arguments),
            task: None,
        }));
        let timeout = self.config.tool_timeout;
        // On timeout rmcp sends the server a cancellation for the request.
        let options = PeerRequestOptions { timeout: Some(timeout), meta: None };
        let handle = match peer.send_cancellable_request(request, options).await {
            Ok(handle) => handle,
            Err(ServiceError::TransportClosed) => return Attempt::NotSent,
            Err(e) => return Attempt::Done(Err(self.redact(format!("MCP server '{}': {e}", self.name())))),
        };
        let error = match handle.await_response().await {
            Ok(ServerResult::CallToolResult(result)) => return Attempt::Done(Ok(result)),
            Ok(_) => format!("MCP server '{}' answered the call of '{tool}' with something else", self.name()),
            Err(ServiceError::TransportClosed | ServiceError::TransportSend(_)) => return Attempt::Died,
            Err(ServiceError::Timeout { .. }) => format!(
                "MCP server '{}' did not answer the call of '{tool}' within {}; the call was cancelled. The \
server may be stuck; if the tool is just slow, raise tool_timeout_secs",
                self.name(),
                human(timeout)
            ),
            Err(ServiceError::McpError(e)) => {
                format!("MCP server '{}' refused the call of '{tool}': {}", self.name(), e.message)
            }
            Err(e) => format!("MCP server '{}' failed the call of '{tool}': {e}", self.name()),
        };
        Attempt::Done(Err(self.redact(error)))
    }

    /// Stops the session, if any.
    pub async fn stop(&self) {
        let mut live = self.live.lock().await;
        if let Some(client) = live.client.take() {
            connection::stop(client, live.pid.take()).await;
        }
    }
}

/// How one try of a call went.
enum Attempt {
    Done(Result<CallToolResult, CallError>),
    /// The session was already closed: nothing reached the server.
    NotSent,
    /// The session closed while the call was under way.
    Died,
}

pub(crate) fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
