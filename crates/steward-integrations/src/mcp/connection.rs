//! Opening one MCP server: start the child process or open the HTTP session,
//! do the handshake and read the tool list. The caller bounds it all by the
//! server's startup timeout; dropping the future on timeout kills the child.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{ClientInfo, Implementation, PaginatedRequestParams, Tool};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::config::{ServerConfig, Transport};

/// A live session with a server.
pub(crate) type Client = RunningService<RoleClient, ClientInfo>;

/// The environment variables a stdio server inherits from Steward; the
/// rest of Steward's environment holds API keys and tokens that are not the
/// server's business. A server that needs more names it in its `env`.
pub(crate) const DEFAULT_ENV: &[&str] =
    &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "TZ"];

/// A tool list longer than this many pages is taken for a server bug (a
/// cursor that never ends).
const MAX_PAGES: usize = 100;
/// How many of the server's last stderr lines are kept for error messages.
const STDERR_LINES: usize = 8;
const STDERR_LINE_CHARS: usize = 400;

/// A started server: the session, its tools and, for a child, its process id.
pub(crate) struct Connected {
    pub client: Client,
    pub tools: Vec<Tool>,
    pub pid: Option<u32>,
}

/// The last lines one run of a stdio server wrote to stderr: what it said
/// before it failed is usually the reason. Each start gets its own, so a
/// dead run's reader cannot mix its lines into the next run's.
#[derive(Clone, Default)]
pub(crate) struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// Set when the server closed stderr (it exited).
    closed: Arc<AtomicBool>,
}

impl StderrTail {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == STDERR_LINES {
                lines.pop_front();
            }
            lines.push_back(line.chars().take(STDERR_LINE_CHARS).collect());
        }
    }

    /// Waits, at most `max`, for the server's last words: its stdout can
    /// close before the reader has taken in what it wrote to stderr.
    pub async fn settle(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while !self.closed.load(Ordering::Acquire) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `; it said on stderr: …`, or nothing when it said nothing.
    pub fn suffix(&self) -> String {
        let lines = self.lines.lock().map(|l| l.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; it said on stderr: {}", lines.join(" | "))
        }
    }
}

fn client_info() -> ClientInfo {
    ClientInfo {
        client_info: Implementation {
            name: "steward".into(),
            title: Some("Steward".into()),
            version: env!("CARGO_PKG_VERSION").into(),
            description: None,
            icons: None,
            website_url: None,
        },
        ..ClientInfo::default()
    }
}

/// Starts `config`'s server and reads its tools. The error is one sentence
/// for a person, without secrets.
pub(crate) async fn connect(config: &ServerConfig, stderr: &StderrTail) -> Result<Connected, String> {
    let (client, pid) = match &config.transport {
        Transport::Stdio { command, args, env, cwd } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).env_clear();
            for var in DEFAULT_ENV {
                if let Ok(value) = std::env::var(var) {
                    cmd.env(var, value);
                }
            }
            cmd.envs(env);
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            // Its own process group, so that stopping it also stops what it
            // started (`npx` runs the server as a grandchild), and so that a
            // Ctrl-C meant for Steward does not kill it mid-call.
            #[cfg(unix)]
            cmd.process_group(0);
            let (transport, err) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start `{command}`: {e}; is it installed, and on PATH?"))?;
            let pid = transport.id();
            if let Some(err) = err {
                tokio::spawn(read_stderr(config.name.clone(), err, stderr.clone()));
            }
            let client = client_info()
                .serve(transport)
                .await
                .map_err(|e| format!("the MCP handshake with `{command}` failed: {e}"))?;
            (client, pid)
        }
        Transport::Http { url, headers } => {
            // No process, no stderr to wait for.
            stderr.closed.store(true, Ordering::Release);
            let mut map = reqwest::header::HeaderMap::new();
            for (name, value) in headers {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("'{name}' is not a valid HTTP header name"))?;
                let mut value = reqwest::header::HeaderValue::from_str(value)
                    .map_err(|_| format!("the value of header '{name}' is not a valid HTTP header value"))?;
                value.set_sensitive(true);
                map.insert(name, value);
            }
            let http = reqwest::Client::builder()
                .default_headers(map)
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("cannot set up an HTTP client: {e}"))?;
            let transport = StreamableHttpClientTransport::with_client(
                http,
                StreamableHttpClientTransportConfig::with_uri(url.as_str()),
            );
            let client = client_info()
                .serve(transport)
                .await
                .map_err(|e| format!("the MCP handshake with {url} failed: {e}"))?;
            (client, None)
        }
    };
    let offers_tools = client.peer_info().is_none_or(|info| info.capabilities.tools.is_some());
    let tools = if offers_tools { list_tools(&client).await? } else { Vec::new() };
    Ok(Connected { client, tools, pid })
}

/// Every tool, page by page.
async fn list_tools(client: &Client) -> Result<Vec<Tool>, String> {
    let mut tools = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .list_tools(Some(PaginatedRequestParams { meta: None, cursor }))
            .await
            .map_err(|e| format!("listing its tools failed: {e}"))?;
        tools.extend(page.tools);
        cursor = page.next_cursor;
        if cursor.is_none() {
            return Ok(tools);
        }
    }
    Err(format!("its tool list did not end after {MAX_PAGES} pages"))
}

/// Keeps the server's stderr: the last lines for error messages, every line
/// at debug level. Ends when the server closes stderr.
async fn read_stderr(server: String, stderr: tokio::process::ChildStderr, tail: StderrTail) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(server = %server, line = %line, "MCP server stderr");
        tail.push(line);
    }
    tail.closed.store(true, Ordering::Release);
}

/// Ends a session: closes the transport (a child gets EOF on stdin and a few
/// seconds to exit before it is killed), then kills whatever is left of the
/// child's process group.
pub(crate) async fn stop(mut client: Client, pid: Option<u32>) {
    let _ = client.close_with_timeout(Duration::from_secs(5)).await;
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()).filter(|p| *p > 1) {
        // SAFETY: killpg only sends a signal; the group is the one the child
        // led (process_group(0) above). ESRCH, when it is already gone, is
        // the usual outcome and is ignored.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}
