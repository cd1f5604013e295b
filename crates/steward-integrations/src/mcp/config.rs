//! What an MCP server is, as configured: how to reach it and what of it to
//! use. `steward.toml`'s `[mcp_servers.<name>]` sections are turned into
//! these by the binary; the widely used `mcp_config.json` format is read here
//! (see [`parse_mcp_config_json`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// How long a server may take to start (handshake and tool list) when its
/// configuration does not say.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one tool call may take when the configuration does not say.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// One MCP server.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's name: the `<server>` of its tools' `<server>__<tool>`.
    pub name: String,
    pub transport: Transport,
    /// For the handshake and the tool list, at start and at a reconnection.
    pub startup_timeout: Duration,
    /// For one tool call.
    pub tool_timeout: Duration,
    /// Only these tools (by the server's names), when set.
    pub enabled_tools: Option<Vec<String>>,
    /// Never these tools (by the server's names).
    pub disabled_tools: Vec<String>,
    /// A disabled server is listed but never started.
    pub enabled: bool,
}

/// How a server is reached.
#[derive(Clone, PartialEq, Eq)]
pub enum Transport {
    /// A child process speaking JSON-RPC on its stdin and stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Added to the small default environment the server gets (see
        /// `connection::DEFAULT_ENV`). Values may be secrets.
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        url: String,
        /// Sent with every request. Values may be secrets (API keys, tokens).
        headers: BTreeMap<String, String>,
    },
}

impl ServerConfig {
    /// A server with the default timeouts and every tool enabled.
    pub fn new(name: impl Into<String>, transport: Transport) -> Self {
        ServerConfig {
            name: name.into(),
            transport,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            enabled_tools: None,
            disabled_tools: Vec::new(),
            enabled: true,
        }
    }

    /// The values that must never be logged or shown: environment values
    /// and header values, for the redactor.
    pub fn secrets(&self) -> Vec<String> {
        let values = match &self.transport {
            Transport::Stdio { env, .. } => env.values(),
            Transport::Http { headers, .. } => headers.values(),
        };
        values.map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_string).collect()
    }

    /// Whether the server's tool `tool` is offered, after the enabled and
    /// disabled lists.
    pub fn tool_allowed(&self, tool: &str) -> bool {
        let enabled = self.enabled_tools.as_ref().is_none_or(|list| list.iter().any(|t| t == tool));
        enabled && !self.disabled_tools.iter().any(|t| t == tool)
    }

    /// One line on where the server is, without secrets: the command line or
    /// the URL.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Stdio { command, args, .. } => {
                std::iter::once(command.as_str()).chain(args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
            }
            Transport::Http { url, .. } => url.clone(),
        }
    }
}

/// Masks the environment and header values, which may be secrets.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("name", &self.name)
            .field("transport", &self.transport)
            .field("startup_timeout", &self.startup_timeout)
            .field("tool_timeout", &self.tool_timeout)
            .field("enabled_tools", &self.enabled_tools)
            .field("disabled_tools", &self.disabled_tools)
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked =
            |m: &BTreeMap<String, String>| m.keys().map(|k| (k.clone(), "********")).collect::<BTreeMap<_, _>>();
        match self {
            Transport::Stdio { command, args, env, cwd } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &masked(env))
                .field("cwd", cwd)
                .finish(),
            Transport::Http { url, headers } => {
                f.debug_struct("Http").field("url", url).field("headers", &masked(headers)).finish()
            }
        }
    }
}

/// Whether `name` may name a server: letters, digits, `-` and `_`, so that
/// its tools' names need no rewriting and policy rules can match them.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 48 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A problem in an `mcp_config.json` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {message}\n    fix: {fix}")]
pub struct McpConfigError {
    pub file: PathBuf,
    /// Where in the file, e.g. `mcpServers.files.args`.
    pub key: String,
    pub message: String,
    pub fix: String,
}

/// Reads the servers of an `mcp_config.json` (the format Claude Desktop and
/// many other clients use):
///
/// ```json
/// {"mcpServers": {
///   "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"], "env": {}},
///   "remote": {"url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer …"}}
/// }}
/// ```
///
/// Also understood: `"cwd"`, `"type"` (`stdio`, `http`, `streamable-http`,
/// `streamableHttp`; `sse` is refused, as only Streamable HTTP is spoken) and
/// `"disabled": true`. Other keys of a server — other clients keep their own
/// settings there — are ignored, so a file written for another client works
/// as it is. Every server gets the default timeouts. All problems are
/// reported, each naming the file and the key.
pub fn parse_mcp_config_json(text: &str, file: &Path) -> Result<Vec<ServerConfig>, Vec<McpConfigError>> {
    let problem = |key: &str, message: String, fix: &str| McpConfigError {
        file: file.to_path_buf(),
        key: key.to_string(),
        message,
        fix: fix.to_string(),
    };
    let root: Value = serde_json::from_str(text).map_err(|e| {
        vec![problem(
            &format!("line {}, column {}", e.line(), e.column()),
            format!("not valid JSON: {e}"),
            "correct the JSON (a trailing comma or a missing quote is the usual cause)",
        )]
    })?;
    let Some(servers) = root.get("mcpServers") else {
        return Err(vec![problem(
            "mcpServers",
            "the file has no \"mcpServers\" object".into(),
            "write {\"mcpServers\": {\"<name>\": {\"command\": …} or {\"url\": …}}}",
        )]);
    };
    let Some(servers) = servers.as_object() else {
        return Err(vec![problem(
            "mcpServers",
            "\"mcpServers\" is not an object".into(),
            "make it an object from server names to servers",
        )]);
    };
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (name, server) in servers {
        let key = format!("mcpServers.{name}");
        match parse_server(name, server) {
            Ok(config) => found.push(config),
            Err((sub, message, fix)) => {
                let key = if sub.is_empty() { key } else { format!("{key}.{sub}") };
                problems.push(problem(&key, message, &fix));
            }
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}

type Problem = (String, String, String);

fn parse_server(name: &str, server: &Value) -> Result<ServerConfig, Problem> {
    let bad = |sub: &str, message: String, fix: &str| (sub.to_string(), message, fix.to_string());
    if !valid_server_name(name) {
        return Err(bad(
            "",
            format!("'{name}' cannot name a server: its tools are called <server>__<tool>"),
            "use letters, digits, '-' and '_' (at most 48), e.g. \"home-files\"",
        ));
    }
    let Some(server) = server.as_object() else {
        return Err(bad("", "a server must be an object".into(), "write {\"command\": …} or {\"url\": …}"));
    };
    let string = |key: &str| -> Result<Option<String>, Problem> {
        match server.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(key, format!("must be a string, not {other}"), "quote the value")),
        }
    };
    let strings = |key: &str| -> Result<Vec<String>, Problem> {
        match server.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                items.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                    bad(key, "must be a list of strings".into(), "quote every item, e.g. [\"-y\", \"/srv\"]")
                })
            }
            Some(_) => Err(bad(key, "must be a list of strings".into(), "write a list, e.g. [\"-y\", \"/srv\"]")),
        }
    };
    // Values are not shown in these messages: they may be secrets.
    let map = |key: &str| -> Result<BTreeMap<String, String>, Problem> {
        match server.get(key) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    _ => Err(bad(&format!("{key}.{k}"), "must be a string".into(), "quote the value")),
                })
                .collect(),
            Some(_) => Err(bad(key, "must be an object of names to strings".into(), "write {\"NAME\": \"value\"}")),
        }
    };
    let disabled = match server.get("disabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("disabled", "must be true or false".into(), "write \"disabled\": true")),
    };
    let kind = string("type")?;
    let command = string("command")?;
    let url = string("url")?;
    let transport = match (kind.as_deref(), command, url) {
        (Some("sse"), _, _) => {
            return Err(bad(
                "type",
                "the SSE transport is not supported; Steward speaks stdio and Streamable HTTP".into(),
                "use the server's Streamable HTTP endpoint (often /mcp) with \"type\": \"http\"",
            ))
        }
        (Some(other), _, _) if !["stdio", "http", "streamable-http", "streamableHttp"].contains(&other) => {
            return Err(bad(
                "type",
                format!("unknown transport '{other}'"),
                "use \"stdio\" (with command) or \"http\" (with url), or leave type out",
            ))
        }
        (_, Some(_), Some(_)) => {
            return Err(bad(
                "",
                "has both \"command\" and \"url\"".into(),
                "keep \"command\" for a local server or \"url\" for a remote one",
            ))
        }
        (_, Some(command), None) => {
            if command.trim().is_empty() {
                return Err(bad("command", "is empty".into(), "name the program, e.g. \"npx\" or \"node\""));
            }
            let cwd = string("cwd")?.map(PathBuf::from);
            Transport::Stdio { command, args: strings("args")?, env: map("env")?, cwd }
        }
        (_, None, Some(url)) => {
            check_url(&url)
                .map_err(|m| bad("url", m, "use the server's http(s) endpoint, e.g. http://127.0.0.1:3001/mcp"))?;
            Transport::Http { url, headers: map("headers")? }
        }
        (_, None, None) => {
            return Err(bad(
                "",
                "has neither \"command\" nor \"url\"".into(),
                "add \"command\" (and \"args\") for a local server, or \"url\" for a remote one",
            ))
        }
    };
    let mut config = ServerConfig::new(name, transport);
    config.enabled = !disabled;
    Ok(config)
}

/// Whether `url` is an http(s) URL with a host; the message says what is
/// wrong with it.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("'{url}' is not an http(s) URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.rsplit('@').next().unwrap_or("").is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(text: &str) -> Result<Vec<ServerConfig>, Vec<McpConfigError>> {
        parse_mcp_config_json(text, Path::new("/data/mcp_config.json"))
    }

    #[test]
    fn both_shapes_are_read() {
        let servers = parse(
            r#"{"mcpServers": {
                "files": {"command": "npx", "args": ["-y", "fs", "/srv"], "env": {"TOKEN": "s3cret", "N": 3}},
                "remote": {"type": "http", "url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer abc"}},
                "off": {"command": "x", "disabled": true, "autoApprove": ["y"]}
            }}"#,
        )
        .unwrap();
        assert_eq!(servers.len(), 3);
        let files = servers.iter().find(|s| s.name == "files").unwrap();
        match &files.transport {
            Transport::Stdio { command, args, env, cwd } => {
                assert_eq!(command, "npx");
                assert_eq!(args, &["-y", "fs", "/srv"]);
                assert_eq!(env.get("N").map(String::as_str), Some("3"));
                assert!(cwd.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(files.startup_timeout, DEFAULT_STARTUP_TIMEOUT);
        let remote = servers.iter().find(|s| s.name == "remote").unwrap();
        assert_eq!(remote.secrets(), ["Bearer abc"]);
        assert!(!servers.iter().find(|s| s.name == "off").unwrap().enabled);
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let servers = parse(r#"{"mcpServers": {"f": {"command": "x", "env": {"TOKEN": "s3cret"}}}}"#).unwrap();
        let shown = format!("{:?}", servers[0]);
        assert!(!shown.contains("s3cret") && shown.contains("TOKEN"), "{shown}");
    }

    #[test]
    fn problems_name_the_file_and_the_key() {
        let e = parse("{\"mcpServers\": {\"a\": {\"command\": \"x\",}}}").unwrap_err();
        assert_eq!(e.len(), 1);
        let text = e[0].to_string();
        assert!(text.starts_with("/data/mcp_config.json: line 1") && text.contains("not valid JSON"), "{text}");

        let e = parse(r#"{"servers": {}}"#).unwrap_err();
        assert!(e[0].to_string().contains("mcpServers"), "{}", e[0]);

        let e = parse(
            r#"{"mcpServers": {"a": {"command": "x", "args": "-y"}, "b": {}, "c": {"type": "sse", "url": "http://h/sse"},
                "d": {"url": "ftp://h"}, "e e": {"command": "x"}, "f": {"command": "x", "url": "http://h"}}}"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mcpServers.a.args",
                "mcpServers.b",
                "mcpServers.c.type",
                "mcpServers.d.url",
                "mcpServers.e e",
                "mcpServers.f"
            ]
        );
        assert!(e.iter().all(|p| p.file == Path::new("/data/mcp_config.json") && !p.fix.is_empty()));
    }

    #[test]
    fn tool_lists_filter() {
        let mut s = ServerConfig::new("s", Transport::Http { url: "http://h".into(), headers: BTreeMap::new() });
        assert!(s.tool_allowed("anything"));
        s.enabled_tools = Some(vec!["a".into(), "b".into()]);
        s.disabled_tools = vec!["b".into()];
        assert!(s.tool_allowed("a") && !s.tool_allowed("b") && !s.tool_allowed("c"));
    }
}
