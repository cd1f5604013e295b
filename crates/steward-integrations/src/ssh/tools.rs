//! The SSH tools: `ssh_list_hosts` and `ssh_run_readonly` (reads, which
//! run without asking) and `ssh_run` (anything, which a person approves).
//!
//! The policy decides from a tool's declared effect, so the split between
//! reading and changing is made by the tool a command goes through, not
//! guessed per call: a command reaches the host without a person only if
//! the read-only allowlist accepts it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_core::{Tool, ToolContext, ToolError, ToolSpec};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::Effect;

use super::allowlist::quote_words;
use super::{RunOutput, Ssh, SshError};

pub const LIST_HOSTS: &str = "ssh_list_hosts";
pub const RUN_READONLY: &str = "ssh_run_readonly";
pub const RUN: &str = "ssh_run";

/// The tools' names, for agent profiles.
pub const SSH_TOOL_NAMES: [&str; 3] = [LIST_HOSTS, RUN_READONLY, RUN];

/// The policy domain of every SSH tool.
const DOMAIN: &str = "ssh";
/// A longer command is not one a person can check before approving.
const MAX_COMMAND_BYTES: usize = 8 * 1024;
/// Characters of each stream quoted when a run was stopped at its limit.
const TAIL_CHARS: usize = 2_000;
/// Beyond the run's own clock: starting ssh and reading the last output.
/// The engine's timeout is a backstop; the run's own comes first and says
/// more.
const TIMEOUT_GRACE: Duration = Duration::from_secs(10);

/// The three tools over one client.
pub fn ssh_tools(ssh: Arc<Ssh>) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(SshListHosts::new(ssh.clone())),
        Arc::new(SshRunReadonly::new(ssh.clone())),
        Arc::new(SshRun::new(ssh)),
    ]
}

fn run_spec(ssh: &Ssh, name: &str, description: String, effect: Effect) -> ToolSpec {
    let config = ssh.config();
    ToolSpec {
        name: name.into(),
        description,
        parameters: json!({
            "type": "object",
            "properties": {
                "host": {"type": "string", "description": "The host's name, as ssh_list_hosts lists it."},
                "command": {"type": "string", "description": "The command line to run on the host."}
            },
            "required": ["host", "command"],
            "additionalProperties": false
        }),
        effect,
        timeout: Duration::from_secs(config.command_timeout_secs).saturating_add(TIMEOUT_GRACE),
        // Both streams at their cap, JSON-escaped, and the fields around them.
        output_cap: config.output_cap_bytes.saturating_mul(2).saturating_add(4096),
        domain: Some(DOMAIN.into()),
    }
}

fn limits(ssh: &Ssh) -> String {
    let config = ssh.config();
    format!(
        "Limits: {} s per run (connecting included), {} bytes of stdout and of stderr kept.",
        config.command_timeout_secs, config.output_cap_bytes
    )
}

/// `ssh_list_hosts`: the hosts and the read-only patterns.
pub struct SshListHosts {
    spec: ToolSpec,
    ssh: Arc<Ssh>,
}

impl SshListHosts {
    pub fn new(ssh: Arc<Ssh>) -> Self {
        let spec = ToolSpec {
            name: LIST_HOSTS.into(),
            description: "Lists the hosts Steward can run commands on over SSH (their names for the other ssh_* \
tools, and user@host:port) and the read-only command patterns ssh_run_readonly accepts."
                .into(),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            effect: Effect::Read,
            timeout: Duration::from_secs(5),
            output_cap: 32 * 1024,
            domain: Some(DOMAIN.into()),
        };
        SshListHosts { spec, ssh }
    }
}

#[async_trait]
impl Tool for SshListHosts {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let config = self.ssh.config();
        if config.hosts.is_empty() {
            return Err(ToolError::Failed(SshError::NoHosts.to_string()));
        }
        let hosts: Vec<Value> = config
            .hosts
            .iter()
            .map(|(name, h)| json!({"name": name, "user": h.user, "host": h.host, "port": h.port}))
            .collect();
        let patterns: Vec<&str> = self.ssh.allowlist().patterns().collect();
        Ok(json!({
            "hosts": hosts,
            "readonly_commands": patterns,
            "readonly_note": "ssh_run_readonly runs only commands matching these patterns: <n> is a number, \
<unit>/<name> a name, <path> an absolute path, [ … ] optional words. Everything else goes through ssh_run, which \
a person approves.",
        })
        .to_string())
    }
}

/// `ssh_run_readonly`: an allowlisted command, without asking.
pub struct SshRunReadonly {
    spec: ToolSpec,
    ssh: Arc<Ssh>,
}

impl SshRunReadonly {
    pub fn new(ssh: Arc<Ssh>) -> Self {
        let examples: Vec<String> = ssh.allowlist().patterns().take(8).map(|p| format!("`{p}`")).collect();
        let description = format!(
            "Runs a read-only command on a configured host over SSH, without asking anyone. Only commands on the \
read-only allowlist run ({}, …; ssh_list_hosts lists them all): one program with plain arguments, no pipes, `;`, \
`&`, `$`, backquotes, redirections or parentheses. Anything else is refused; use ssh_run for it, which a person \
approves. Returns JSON with exit_code, stdout and stderr. {}",
            examples.join(", "),
            limits(&ssh)
        );
        SshRunReadonly { spec: run_spec(&ssh, RUN_READONLY, description, Effect::Read), ssh }
    }
}

#[async_trait]
impl Tool for SshRunReadonly {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = Args::parse(&arguments)?;
        self.ssh.host(&args.host).map_err(host_error)?;
        let argv = self.ssh.allowlist().check(&args.command).map_err(|r| ToolError::Failed(r.to_string()))?;
        // The words that were matched, quoted, so the remote shell runs
        // exactly those.
        let line = quote_words(&argv);
        let mut output = self.ssh.run(&args.host, &line).await.map_err(run_error)?;
        output.command = args.command;
        Ok(output.to_json().to_string())
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        preview(&self.ssh, arguments, "run the read-only command")
    }
}

/// `ssh_run`: any command, once a person approves it.
pub struct SshRun {
    spec: ToolSpec,
    ssh: Arc<Ssh>,
}

impl SshRun {
    pub fn new(ssh: Arc<Ssh>) -> Self {
        let description = format!(
            "Runs a shell command on a configured host over SSH, after a person approves it; they see the host, \
the user and the exact command. Use it for changes (systemctl restart <unit>, apt-get …) and for commands \
ssh_run_readonly refuses; for reads on its allowlist use ssh_run_readonly, which needs no approval. The command \
line goes to the remote user's shell as it is (pipes and quoting work). Returns JSON with exit_code, stdout and \
stderr. {}",
            limits(&ssh)
        );
        SshRun { spec: run_spec(&ssh, RUN, description, Effect::Mutate), ssh }
    }
}

#[async_trait]
impl Tool for SshRun {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = Args::parse(&arguments)?;
        self.ssh.host(&args.host).map_err(host_error)?;
        let output = self.ssh.run(&args.host, &args.command).await.map_err(run_error)?;
        Ok(output.to_json().to_string())
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        preview(&self.ssh, arguments, "run")
    }
}

/// What a person sees before a run: the host by name and address, the
/// user, and the command exactly as it will be sent.
fn preview(ssh: &Ssh, arguments: &Value, verb: &str) -> Result<Preview, ToolError> {
    let args = Args::parse(arguments)?;
    // A host that is not there gets no approval to decide.
    let host = ssh.host(&args.host).map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
    let mut lines = args.command.lines();
    let first = lines.next().unwrap_or_default();
    let shown = if lines.next().is_some() { format!("{first} …") } else { first.to_string() };
    Ok(Preview {
        summary: format!("{verb} `{shown}` on SSH host {} as {} ({})", args.host, host.user, host.display()),
        targets: vec![PreviewTarget { id: format!("ssh:{}", args.host), name: Some(host.display()), state: None }],
        details: Some(args.command),
    })
}

/// A host the model named wrongly is its to fix; none configured is not.
fn host_error(e: SshError) -> ToolError {
    match e {
        SshError::UnknownHost { .. } => ToolError::InvalidArguments(e.to_string()),
        other => ToolError::Failed(other.to_string()),
    }
}

/// The error, and for a run stopped at its limit the end of what it
/// printed.
fn run_error(e: SshError) -> ToolError {
    let mut text = e.to_string();
    if let Some(output) = e.output() {
        text.push_str(&tails(output));
    }
    ToolError::Failed(text)
}

fn tails(output: &RunOutput) -> String {
    let mut text = String::new();
    for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let stream = stream.trim();
        if !stream.is_empty() {
            text.push_str(&format!("\n{name} (end):\n{}", tail(stream, TAIL_CHARS)));
        }
    }
    text
}

fn tail(text: &str, chars: usize) -> &str {
    let count = text.chars().count();
    if count <= chars {
        return text;
    }
    let skip = text.char_indices().nth(count - chars).map(|(i, _)| i).unwrap_or(0);
    &text[skip..]
}

/// The checked arguments of the run tools.
struct Args {
    host: String,
    command: String,
}

impl Args {
    fn parse(arguments: &Value) -> Result<Args, ToolError> {
        let invalid = |m: String| ToolError::InvalidArguments(m);
        let Some(map) = arguments.as_object() else {
            return Err(invalid(format!("arguments must be a JSON object with host and command, not {arguments}")));
        };
        if let Some(unknown) = map.keys().find(|k| !["host", "command"].contains(&k.as_str())) {
            return Err(invalid(format!("unknown argument `{unknown}`; this tool takes: host, command")));
        }
        let host = string(map, "host", "the host's name, as ssh_list_hosts lists it")?;
        let command = string(map, "command", "the command line to run")?;
        if command.len() > MAX_COMMAND_BYTES {
            return Err(invalid(format!(
                "`command` is {} bytes; keep it under {MAX_COMMAND_BYTES} (copy a script over in steps, or run \
one that is already there)",
                command.len()
            )));
        }
        if command.contains('\0') {
            return Err(invalid("`command` contains a NUL character, which no shell command can hold".into()));
        }
        Ok(Args { host, command })
    }
}

fn string(map: &Map<String, Value>, key: &str, what: &str) -> Result<String, ToolError> {
    match map.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(ToolError::InvalidArguments(format!("`{key}` is required: {what}, as a string"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ssh::{SshConfig, SshHost};

    fn ctx() -> ToolContext {
        ToolContext {
            turn_id: "t".into(),
            conversation_id: "c".into(),
            agent: "infra".into(),
            call_id: "1".into(),
            approval: None,
            progress: None,
        }
    }

    fn ssh(with_host: bool) -> Arc<Ssh> {
        let mut config = SshConfig::new("/nonexistent/steward/known_hosts".into());
        if with_host {
            config.hosts.insert(
                "nas".into(),
                SshHost {
                    host: "10.0.0.5".into(),
                    port: 22,
                    user: "admin".into(),
                    identity_file: "/nonexistent/steward/id".into(),
                },
            );
        }
        Arc::new(Ssh::new(config).unwrap())
    }

    #[test]
    fn every_tool_declares_the_ssh_domain_and_its_effect() {
        let tools = ssh_tools(ssh(true));
        let specs: Vec<(&str, Effect)> = tools.iter().map(|t| (t.spec().name.as_str(), t.spec().effect)).collect();
        assert_eq!(specs, [(LIST_HOSTS, Effect::Read), (RUN_READONLY, Effect::Read), (RUN, Effect::Mutate)]);
        assert!(tools.iter().all(|t| t.spec().domain.as_deref() == Some("ssh")));
        assert!(tools[1].spec().description.contains("`uptime`"));
    }

    #[tokio::test]
    async fn without_hosts_every_tool_says_how_to_configure_one() {
        for tool in ssh_tools(ssh(false)) {
            let e = tool.call(json!({"host": "nas", "command": "uptime"}), &ctx()).await.unwrap_err();
            assert!(e.to_string().contains("no SSH hosts are configured: add [ssh.hosts.<name>]"), "{e}");
        }
    }

    #[tokio::test]
    async fn the_read_only_tool_refuses_before_connecting() {
        let tool = SshRunReadonly::new(ssh(true));
        let e = tool.call(json!({"host": "nas", "command": "uptime; id"}), &ctx()).await.unwrap_err();
        assert!(e.to_string().contains("not on the read-only allowlist"), "{e}");
        let e = tool.call(json!({"host": "router", "command": "uptime"}), &ctx()).await.unwrap_err();
        assert!(matches!(e, ToolError::InvalidArguments(ref m) if m.contains("`router`")), "{e}");
        // An allowed command gets as far as the key, which is not there.
        let e = tool.call(json!({"host": "nas", "command": "uptime"}), &ctx()).await.unwrap_err();
        assert!(e.to_string().contains("cannot read the identity file /nonexistent/steward/id"), "{e}");
    }

    #[tokio::test]
    async fn the_preview_names_host_user_and_the_exact_command() {
        let tool = SshRun::new(ssh(true));
        let preview =
            tool.preview(&json!({"host": "nas", "command": "systemctl restart nginx"}), &ctx()).await.unwrap();
        assert_eq!(preview.summary, "run `systemctl restart nginx` on SSH host nas as admin (admin@10.0.0.5:22)");
        assert_eq!(preview.targets[0].id, "ssh:nas");
        assert_eq!(preview.details.as_deref(), Some("systemctl restart nginx"));
        let e = tool.preview(&json!({"host": "router", "command": "x"}), &ctx()).await.unwrap_err();
        assert!(matches!(e, ToolError::InvalidArguments(_)), "{e}");
    }

    #[test]
    fn arguments_are_checked() {
        for (args, expected) in [
            (json!({"command": "uptime"}), "`host` is required"),
            (json!({"host": "nas"}), "`command` is required"),
            (json!({"host": "nas", "command": "x", "sudo": true}), "unknown argument `sudo`"),
            (json!({"host": "nas", "command": "a\u{0}b"}), "NUL"),
            (json!({"host": "nas", "command": "x".repeat(MAX_COMMAND_BYTES + 1)}), "keep it under"),
            (json!("uptime"), "JSON object"),
        ] {
            let e = Args::parse(&args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(expected), "{args}: {e}");
        }
    }
}
