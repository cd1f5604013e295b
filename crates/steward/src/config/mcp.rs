//! MCP servers: `[mcp_servers.<name>]` in steward.toml, and the widely used
//! `mcp_config.json` (`STEWARD_MCP_CONFIG`, or `<data_dir>/mcp_config.json`)
//! so a file written for another client works unchanged. Both are read at
//! start-up and merged; a name in both is taken from steward.toml, with a
//! warning. See `steward_integrations::mcp` for how servers are run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_integrations::mcp::{
    check_url, parse_mcp_config_json, valid_server_name, ServerConfig, Transport, DEFAULT_STARTUP_TIMEOUT,
    DEFAULT_TOOL_TIMEOUT,
};

use super::{Env, Problem, Secret};

/// The variable naming an `mcp_config.json` outside the data directory.
pub const MCP_CONFIG_VAR: &str = "STEWARD_MCP_CONFIG";

/// `[mcp_servers.<name>]`: one server, local (`command`) or remote (`url`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerSection {
    /// The program of a stdio server, e.g. `npx` or `node`.
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables for the server, besides a small default set (PATH, HOME,
    /// LANG …); Steward's own environment is not passed on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Secret>,
    /// The working directory of a stdio server.
    pub cwd: Option<PathBuf>,
    /// The Streamable HTTP endpoint of a remote server.
    pub url: Option<String>,
    /// Sent with every request to `url` (API keys, tokens).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// For the handshake and tool list, at start and when restarted.
    #[serde(default = "default_startup_timeout")]
    pub startup_timeout_secs: u64,
    /// For one tool call.
    #[serde(default = "default_tool_timeout")]
    pub tool_timeout_secs: u64,
    /// Only these of the server's tools (by its names for them).
    pub enabled_tools: Option<Vec<String>>,
    /// Never these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_tools: Vec<String>,
    /// `false` keeps the server configured but not started.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_startup_timeout() -> u64 {
    DEFAULT_STARTUP_TIMEOUT.as_secs()
}

fn default_tool_timeout() -> u64 {
    DEFAULT_TOOL_TIMEOUT.as_secs()
}

fn yes() -> bool {
    true
}

/// The servers from both sources, merged.
#[derive(Debug, Clone, Default)]
pub struct McpServers {
    pub servers: Vec<ServerConfig>,
    /// The `mcp_config.json` that was read, if one was.
    pub json_file: Option<PathBuf>,
    /// The servers taken from it.
    pub json_servers: Vec<String>,
    /// For the log, once logging is up: names found in both sources.
    pub warnings: Vec<String>,
}

/// Reads and checks `[mcp_servers]` and the `mcp_config.json` file; every
/// problem goes to `problems`.
pub fn resolve(
    sections: &BTreeMap<String, McpServerSection>,
    data_dir: &Path,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> McpServers {
    let mut servers: Vec<ServerConfig> = Vec::new();
    for (name, section) in sections {
        if let Some(server) = section.server_config(name, problems) {
            servers.push(server);
        }
    }
    let (json_file, explicit) = match env.var(MCP_CONFIG_VAR) {
        Some(path) => (PathBuf::from(path.trim()), true),
        None => (data_dir.join("mcp_config.json"), false),
    };
    let text = match std::fs::read_to_string(&json_file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
        Err(e) => {
            problems.push(Problem {
                key: format!("{MCP_CONFIG_VAR} ({})", json_file.display()),
                message: format!("cannot read the MCP server file: {e}"),
                fix: format!("point {MCP_CONFIG_VAR} at an existing mcp_config.json, or unset it"),
            });
            None
        }
    };
    let mut warnings = Vec::new();
    let mut json_servers = Vec::new();
    let read = text.is_some();
    if let Some(text) = text {
        match parse_mcp_config_json(&text, &json_file) {
            Ok(found) => {
                for server in found {
                    if servers.iter().any(|s| s.name == server.name) {
                        warnings.push(format!(
                            "MCP server '{}' is configured both in steward.toml and in {}; the one in steward.toml \
is used",
                            server.name,
                            json_file.display()
                        ));
                    } else {
                        json_servers.push(server.name.clone());
                        servers.push(server);
                    }
                }
            }
            Err(errors) => problems.extend(errors.into_iter().map(|e| Problem {
                key: format!("{}: {}", e.file.display(), e.key),
                message: e.message,
                fix: e.fix,
            })),
        }
    }
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    McpServers { servers, json_file: read.then_some(json_file), json_servers, warnings }
}

impl McpServerSection {
    fn server_config(&self, name: &str, problems: &mut Vec<Problem>) -> Option<ServerConfig> {
        let key = |field: &str| {
            if field.is_empty() {
                format!("mcp_servers.{name}")
            } else {
                format!("mcp_servers.{name}.{field}")
            }
        };
        let before = problems.len();
        if !valid_server_name(name) {
            problems.push(Problem {
                key: key(""),
                message: format!("'{name}' cannot name an MCP server: its tools are called <server>__<tool>"),
                fix: "rename the section with letters, digits, '-' and '_' (at most 48), e.g. [mcp_servers.files]"
                    .into(),
            });
        }
        let secret_map = |m: &BTreeMap<String, Secret>| -> BTreeMap<String, String> {
            m.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect()
        };
        let transport = match (&self.command, &self.url) {
            (Some(command), None) => {
                if command.trim().is_empty() {
                    problems.push(Problem {
                        key: key("command"),
                        message: "is empty".into(),
                        fix: "name the server's program, e.g. \"npx\" or \"node\"".into(),
                    });
                }
                if !self.headers.is_empty() {
                    problems.push(Problem {
                        key: key("headers"),
                        message: "headers are for a remote server (url), and this one is started with command".into(),
                        fix: "remove headers, or pass what they carry through env".into(),
                    });
                }
                Some(Transport::Stdio {
                    command: command.clone(),
                    args: self.args.clone(),
                    env: secret_map(&self.env),
                    cwd: self.cwd.clone(),
                })
            }
            (None, Some(url)) => {
                if let Err(message) = check_url(url) {
                    problems.push(Problem {
                        key: key("url"),
                        message,
                        fix: "use the server's Streamable HTTP endpoint, e.g. http://127.0.0.1:3001/mcp".into(),
                    });
                }
                if !self.args.is_empty() || !self.env.is_empty() || self.cwd.is_some() {
                    problems.push(Problem {
                        key: key(""),
                        message: "args, env and cwd are for a server started with command, and this one has a url"
                            .into(),
                        fix: "remove them, or replace url with command".into(),
                    });
                }
                Some(Transport::Http { url: url.clone(), headers: secret_map(&self.headers) })
            }
            (Some(_), Some(_)) => {
                problems.push(Problem {
                    key: key(""),
                    message: "has both command and url".into(),
                    fix: "keep command (a local server Steward starts) or url (a remote one), not both".into(),
                });
                None
            }
            (None, None) => {
                problems.push(Problem {
                    key: key(""),
                    message: "has neither command nor url".into(),
                    fix: "add command = \"…\" (and args) for a local server, or url = \"…\" for a remote one".into(),
                });
                None
            }
        };
        for (field, value, max, default) in [
            ("startup_timeout_secs", self.startup_timeout_secs, 600, default_startup_timeout()),
            ("tool_timeout_secs", self.tool_timeout_secs, 3_600, default_tool_timeout()),
        ] {
            if !(1..=max).contains(&value) {
                problems.push(Problem {
                    key: key(field),
                    message: format!("{value} is outside 1–{max} seconds"),
                    fix: format!("use a number of seconds from 1 to {max}; the default is {default}"),
                });
            }
        }
        if problems.len() > before {
            return None;
        }
        let mut config = ServerConfig::new(name, transport?);
        config.startup_timeout = Duration::from_secs(self.startup_timeout_secs);
        config.tool_timeout = Duration::from_secs(self.tool_timeout_secs);
        config.enabled_tools = self.enabled_tools.clone();
        config.disabled_tools = self.disabled_tools.clone();
        config.enabled = self.enabled;
        Some(config)
    }
}

/// `config check`'s note on the servers from `mcp_config.json`, which the
/// TOML it prints does not show.
pub fn render_note(mcp: &McpServers) -> String {
    let Some(file) = &mcp.json_file else { return String::new() };
    let mut note = format!("# MCP servers from {}:\n", file.display());
    for server in mcp.servers.iter().filter(|s| mcp.json_servers.contains(&s.name)) {
        note.push_str(&format!(
            "#   {}: {}{}\n",
            server.name,
            server.describe(),
            if server.enabled { "" } else { " (disabled)" }
        ));
    }
    for warning in &mcp.warnings {
        note.push_str(&format!("# warning: {warning}\n"));
    }
    note
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::{parse_file, Config, ConfigError, Overrides};
    use super::*;

    fn resolve_with(toml_text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let file = parse_file(toml_text, Path::new("steward.toml"))?;
        let env: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::resolve(file, None, &env, &Overrides::default())
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("steward-config-mcp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn toml_servers_are_read_with_defaults_and_their_secrets_redacted() {
        let c = resolve_with(
            r#"
[mcp_servers.files]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]
env = { FS_TOKEN = "fs-secret-token" }
disabled_tools = ["move_file"]

[mcp_servers.remote]
url = "https://mcp.example/mcp"
headers = { Authorization = "Bearer header-secret" }
startup_timeout_secs = 5
tool_timeout_secs = 120
enabled_tools = ["search"]
enabled = false
"#,
            &[("STEWARD_DATA_DIR", "/nonexistent/steward-data")],
        )
        .unwrap();
        let servers = &c.mcp.servers;
        assert_eq!(servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["files", "remote"]);
        let files = &servers[0];
        assert_eq!((files.startup_timeout.as_secs(), files.tool_timeout.as_secs()), (30, 60));
        assert!(files.enabled && files.enabled_tools.is_none() && files.disabled_tools == ["move_file"]);
        let remote = &servers[1];
        assert_eq!((remote.startup_timeout.as_secs(), remote.tool_timeout.as_secs()), (5, 120));
        assert!(!remote.enabled);
        assert_eq!(remote.enabled_tools.as_deref(), Some(&["search".to_string()][..]));
        let secrets = c.secrets();
        assert!(
            secrets.contains(&"fs-secret-token".to_string()) && secrets.contains(&"Bearer header-secret".to_string())
        );
        let shown = c.render();
        assert!(!shown.contains("fs-secret-token") && !shown.contains("header-secret"), "{shown}");
        assert!(shown.contains("[mcp_servers.files]"), "{shown}");
        assert!(!format!("{c:?}").contains("fs-secret-token"));
    }

    #[test]
    fn bad_toml_servers_name_the_key_and_the_fix() {
        let e = resolve_with(
            "[mcp_servers.a]\ncommand = \"x\"\nurl = \"http://h/mcp\"\n[mcp_servers.b]\n[mcp_servers.c]\nurl = \"ftp://h\"\n\
[mcp_servers.d]\ncommand = \"x\"\ntool_timeout_secs = 0\n[mcp_servers.\"e.f\"]\ncommand = \"x\"\n",
            &[("STEWARD_DATA_DIR", "/nonexistent/steward-data")],
        )
        .unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mcp_servers.a",
                "mcp_servers.b",
                "mcp_servers.c.url",
                "mcp_servers.d.tool_timeout_secs",
                "mcp_servers.e.f"
            ],
            "{e}"
        );
        let e = resolve_with("[mcp_servers.a]\ncommand = \"x\"\ntimeout = 3\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `timeout`"), "{e}");
    }

    #[test]
    fn mcp_config_json_is_read_from_the_data_dir_or_the_variable_and_merged() {
        let dir = temp_dir("json");
        std::fs::write(
            dir.join("mcp_config.json"),
            r#"{"mcpServers": {
                "files": {"command": "node", "args": ["fs.js", "/srv"]},
                "remote": {"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer json-secret"}}
            }}"#,
        )
        .unwrap();
        let data_dir = dir.to_str().unwrap();
        let c = resolve_with("[mcp_servers.files]\ncommand = \"npx\"\n", &[("STEWARD_DATA_DIR", data_dir)]).unwrap();
        let names: Vec<&str> = c.mcp.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["files", "remote"]);
        // steward.toml wins, with a warning.
        assert!(matches!(&c.mcp.servers[0].transport, Transport::Stdio { command, .. } if command == "npx"));
        assert_eq!(c.mcp.warnings.len(), 1);
        assert!(c.mcp.warnings[0].contains("'files'") && c.mcp.warnings[0].contains("steward.toml"));
        assert!(c.secrets().contains(&"Bearer json-secret".to_string()));
        assert!(c.render().contains("#   remote: http://127.0.0.1:3001/mcp"), "{}", c.render());

        // STEWARD_MCP_CONFIG names another file; a missing one is an error.
        let other = dir.join("other.json");
        std::fs::write(&other, r#"{"mcpServers": {"x": {"command": "y"}}}"#).unwrap();
        let c = resolve_with("", &[("STEWARD_DATA_DIR", data_dir), (MCP_CONFIG_VAR, other.to_str().unwrap())]).unwrap();
        assert_eq!(c.mcp.servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["x"]);
        let e = resolve_with("", &[(MCP_CONFIG_VAR, "/nonexistent/mcp.json")]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/mcp.json") && e.contains(MCP_CONFIG_VAR), "{e}");

        // A broken file names itself.
        std::fs::write(dir.join("mcp_config.json"), "{\"mcpServers\": [}").unwrap();
        let e = resolve_with("", &[("STEWARD_DATA_DIR", data_dir)]).unwrap_err().to_string();
        assert!(e.contains("mcp_config.json") && e.contains("not valid JSON"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
