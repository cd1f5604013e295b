//! The Ansible tools: `ansible_list_playbooks`, `ansible_list_hosts`
//! (read) and `ansible_run_playbook` (mutate, previewed in check mode).
//!
//! They are registered whether or not Ansible is configured, so that an
//! agent asked about playbooks learns what to configure instead of finding
//! no tool at all.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_core::{Tool, ToolContext, ToolError, ToolSpec};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::Effect;

use super::{event_lines, Ansible, AnsibleError, Event, Mode, RunReport, RunRequest};

pub const LIST_PLAYBOOKS: &str = "ansible_list_playbooks";
pub const LIST_HOSTS: &str = "ansible_list_hosts";
pub const RUN_PLAYBOOK: &str = "ansible_run_playbook";

/// The policy domain of every Ansible tool.
const DOMAIN: &str = "ansible";

/// Bytes of output the model sees at most (the engine cuts there).
const OUTPUT_CAP: usize = 64 * 1024;

/// Lines of an approval's check-mode details.
const PREVIEW_LINES: usize = 200;

/// Lines of a run's log in the tool's output.
const LOG_LINES: usize = 400;

/// Beyond Ansible's own clock: setting the run up, and stopping it (SIGTERM,
/// five seconds, SIGKILL, reading what was left).
const TIMEOUT_GRACE: Duration = Duration::from_secs(30);

/// The three tools, sharing one [`Ansible`].
pub fn ansible_tools(ansible: Arc<Ansible>) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(ListPlaybooks::new(ansible.clone())),
        Arc::new(ListHosts::new(ansible.clone())),
        Arc::new(RunPlaybook::new(ansible)),
    ]
}

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

/// Refuses arguments for a tool that takes none (an empty object or null is fine).
fn check_no_arguments(arguments: &Value) -> Result<(), ToolError> {
    match arguments {
        Value::Null => Ok(()),
        Value::Object(map) if map.is_empty() => Ok(()),
        other => {
            Err(ToolError::InvalidArguments(format!("this tool takes no arguments; call it with {{}}, not {other}")))
        }
    }
}

/// The model's mistakes are its to fix; the rest is a failure.
fn tool_error(e: AnsibleError) -> ToolError {
    match e {
        AnsibleError::BadRequest(m) => ToolError::InvalidArguments(m),
        e @ (AnsibleError::NotConfigured
        | AnsibleError::NotInstalled(_)
        | AnsibleError::PlaybookDir { .. }
        | AnsibleError::Inventory { .. }
        | AnsibleError::Io { .. }) => ToolError::Failed(e.to_string()),
    }
}

/// `ansible_list_playbooks`.
pub struct ListPlaybooks {
    spec: ToolSpec,
    ansible: Arc<Ansible>,
}

impl ListPlaybooks {
    pub fn new(ansible: Arc<Ansible>) -> Self {
        let spec = ToolSpec {
            name: LIST_PLAYBOOKS.into(),
            description:
                "Lists the Ansible playbooks Steward may run (the .yml/.yaml files of the configured playbook \
directory) with each play's name and hosts pattern. Use a listed file name as `playbook` of ansible_run_playbook."
                    .into(),
            parameters: no_arguments(),
            effect: Effect::Read,
            timeout: Duration::from_secs(30),
            output_cap: OUTPUT_CAP,
            domain: Some(DOMAIN.into()),
        };
        ListPlaybooks { spec, ansible }
    }
}

#[async_trait]
impl Tool for ListPlaybooks {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        check_no_arguments(&arguments)?;
        let playbooks = self.ansible.list_playbooks().await.map_err(tool_error)?;
        let dir = self.ansible.config().playbook_dir.as_deref().map(|d| d.display().to_string());
        let mut out = json!({
            "playbook_dir": dir,
            "playbooks": playbooks.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
        });
        if playbooks.is_empty() {
            out["note"] = json!("the playbook directory holds no playbooks (.yml or .yaml files with plays)");
        }
        Ok(out.to_string())
    }
}

/// `ansible_list_hosts`.
pub struct ListHosts {
    spec: ToolSpec,
    ansible: Arc<Ansible>,
}

impl ListHosts {
    pub fn new(ansible: Arc<Ansible>) -> Self {
        let spec = ToolSpec {
            name: LIST_HOSTS.into(),
            description: "Lists the hosts of the configured Ansible inventory and its groups (each with its hosts \
and child groups), as `ansible-inventory --list` sees them; host and group variables are not shown. Use the names \
as `limit` of ansible_run_playbook."
                .into(),
            parameters: no_arguments(),
            effect: Effect::Read,
            timeout: Duration::from_secs(ansible.config().check_timeout_secs).saturating_add(TIMEOUT_GRACE),
            output_cap: OUTPUT_CAP,
            domain: Some(DOMAIN.into()),
        };
        ListHosts { spec, ansible }
    }
}

#[async_trait]
impl Tool for ListHosts {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        check_no_arguments(&arguments)?;
        let (inventory, warnings) = self.ansible.list_hosts().await.map_err(tool_error)?;
        let mut out = inventory.to_json();
        out["inventory"] = json!(self.ansible.config().inventory.as_deref().map(|p| p.display().to_string()));
        if !warnings.is_empty() {
            out["warnings"] = json!(warnings);
        }
        Ok(out.to_string())
    }
}

/// `ansible_run_playbook`.
pub struct RunPlaybook {
    spec: ToolSpec,
    ansible: Arc<Ansible>,
}

impl RunPlaybook {
    pub fn new(ansible: Arc<Ansible>) -> Self {
        let config = ansible.config();
        let description = format!(
            "Runs an Ansible playbook of the playbook directory against the inventory, for real. A person approves \
every run; before asking, Steward runs it in check mode (--check --diff) and shows them what would change on each \
host, with file diffs. Arguments: playbook (a file from ansible_list_playbooks, e.g. site.yml), limit (an Ansible \
host pattern, e.g. web1 or webservers:!web3), tags (a list of tags), extra_vars (a JSON object of variables; values \
are plain data: template markers such as {{{{ }}}} and variables named ansible_* are refused). Returns the recap per \
host (ok, changed, failed, unreachable, skipped), the failed tasks with their messages, and the log. A run is \
stopped after {} s.",
            config.timeout_secs
        );
        let parameters = json!({
            "type": "object",
            "properties": {
                "playbook": {"type": "string", "description": "The playbook file, relative to the playbook directory, e.g. site.yml."},
                "limit": {"type": "string", "description": "Only these hosts: an Ansible host pattern, e.g. web1 or webservers:!web3."},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Only tasks with these tags."},
                "extra_vars": {"type": "object", "description": "Variables for the playbook, e.g. {\"version\": \"1.2.3\"}."}
            },
            "required": ["playbook"],
            "additionalProperties": false
        });
        let longest = config.timeout_secs.max(config.check_timeout_secs);
        let spec = ToolSpec {
            name: RUN_PLAYBOOK.into(),
            description,
            parameters,
            effect: Effect::Mutate,
            timeout: Duration::from_secs(longest).saturating_add(TIMEOUT_GRACE),
            output_cap: OUTPUT_CAP,
            domain: Some(DOMAIN.into()),
        };
        RunPlaybook { spec, ansible }
    }
}

#[async_trait]
impl Tool for RunPlaybook {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let request = parse_run(&arguments)?;
        // Each task's result on each host is reported as it happens: the
        // person watches it, and the run's execution log keeps all of it
        // (the answer holds the recap and the end of the log).
        let progress = ctx.progress.clone();
        let mut report_event = |event: &Event| {
            if let Some(p) = &progress {
                for line in event_lines(event, Mode::Apply) {
                    p.line(line);
                }
            }
        };
        let report = self.ansible.run(&request, Mode::Apply, &mut report_event).await.map_err(tool_error)?;
        if let Some(p) = &progress {
            if report.events_dropped > 0 {
                p.line(format!(
                    "… {} events were not kept in memory; the lines above are all of them",
                    report.events_dropped
                ));
            }
            p.line(format!(
                "exit code {}{}",
                report.exit_code,
                if report.timed_out { " (stopped at the timeout)" } else { "" }
            ));
        }
        let what = describe(&report.playbook, &request);
        let took = format!("{:.1} s", report.elapsed.as_secs_f64());
        let hosts = report.hosts().len();
        let on = format!("on {hosts} host{}", if hosts == 1 { "" } else { "s" });
        if report.timed_out {
            let headline = format!(
                "{what}: timed out after {} s and was stopped; the hosts may be half-way through a change, so check \
them before running it again. What it did until then:",
                self.ansible.config().timeout_secs
            );
            return Err(ToolError::Failed(report.run_text(&headline, LOG_LINES)));
        }
        if report.succeeded() {
            let headline = if hosts == 0 {
                format!("{what}: no host matched the plays' hosts (and limit), so nothing ran")
            } else {
                format!("{what} {on}: succeeded in {took}")
            };
            return Ok(report.run_text(&headline, LOG_LINES));
        }
        if report.ran_nothing() {
            let why = report.error_line().unwrap_or_else(|| "no reason given".into());
            let headline = format!("{what}: ansible-playbook could not run it (exit code {}): {why}", report.exit_code);
            return Err(ToolError::Failed(report.run_text(&headline, LOG_LINES)));
        }
        let failed: BTreeSet<&str> = report.failures().iter().map(|r| r.host.as_str()).collect();
        let headline = if failed.is_empty() {
            format!("{what} {on}: FAILED (exit code {}) after {took}", report.exit_code)
        } else {
            let names: Vec<&str> = failed.into_iter().collect();
            format!("{what} {on}: FAILED on {} (exit code {}) after {took}", names.join(", "), report.exit_code)
        };
        Err(ToolError::Failed(report.run_text(&headline, LOG_LINES)))
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        let request = parse_run(arguments)?;
        let report = match self.ansible.run(&request, Mode::Check, &mut |_| {}).await {
            Ok(report) => report,
            // Nothing could run: no approval should be asked for it.
            Err(
                e @ (AnsibleError::NotConfigured
                | AnsibleError::NotInstalled(_)
                | AnsibleError::PlaybookDir { .. }
                | AnsibleError::Inventory { .. }
                | AnsibleError::BadRequest(_)),
            ) => return Err(ToolError::InvalidArguments(e.to_string())),
            Err(e @ AnsibleError::Io { .. }) => return Err(ToolError::Failed(e.to_string())),
        };
        Ok(preview_of(&report, &request, self.ansible.config().check_timeout_secs))
    }
}

/// The approval's view of a check-mode run.
fn preview_of(report: &RunReport, request: &RunRequest, check_timeout_secs: u64) -> Preview {
    let what = describe(&report.playbook, request);
    let targets = report
        .recap()
        .into_iter()
        .map(|(host, recap)| PreviewTarget {
            id: host,
            name: None,
            state: Some(format!("check mode: {}", recap.line())),
        })
        .collect();
    Preview {
        summary: report.preview_summary(&what, check_timeout_secs),
        targets,
        details: Some(report.preview_details(PREVIEW_LINES)),
    }
}

/// `run playbook site.yml (limit web1; tags config)`.
fn describe(playbook: &str, request: &RunRequest) -> String {
    let mut how = Vec::new();
    if let Some(limit) = &request.limit {
        how.push(format!("limit {limit}"));
    }
    if !request.tags.is_empty() {
        how.push(format!("tags {}", request.tags.join(",")));
    }
    if how.is_empty() {
        format!("run playbook {playbook}")
    } else {
        format!("run playbook {playbook} ({})", how.join("; "))
    }
}

/// The checked arguments of `ansible_run_playbook`.
fn parse_run(arguments: &Value) -> Result<RunRequest, ToolError> {
    let invalid = |m: String| ToolError::InvalidArguments(m);
    let Some(map) = arguments.as_object() else {
        return Err(invalid(format!("arguments must be a JSON object with at least `playbook`, not {arguments}")));
    };
    const KNOWN: [&str; 4] = ["playbook", "limit", "tags", "extra_vars"];
    if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(invalid(format!("unknown argument `{unknown}`; this tool takes: {}", KNOWN.join(", "))));
    }
    let playbook = match map.get("playbook") {
        Some(Value::String(p)) if !p.trim().is_empty() => p.trim().to_string(),
        _ => {
            return Err(invalid(
                "`playbook` is required: a playbook file such as site.yml (see ansible_list_playbooks)".into(),
            ))
        }
    };
    let limit = match map.get("limit") {
        None | Some(Value::Null) => None,
        Some(Value::String(l)) if l.trim().is_empty() => None,
        Some(Value::String(l)) => Some(l.trim().to_string()),
        Some(other) => {
            return Err(invalid(format!("`limit` must be a host pattern string, e.g. \"web1\", not {other}")))
        }
    };
    let tags = match map.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(t)) => t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect(),
        Some(Value::Array(items)) => {
            let mut tags = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(t) => tags.push(t.trim().to_string()),
                    None => return Err(invalid(format!("`tags` must be a list of tag names, not {item} in it"))),
                }
            }
            tags
        }
        Some(other) => return Err(invalid(format!("`tags` must be a list of tag names, not {other}"))),
    };
    let extra_vars = match map.get("extra_vars") {
        None | Some(Value::Null) => None,
        Some(Value::Object(vars)) => Some(vars.clone()),
        // Models sometimes send the object as a JSON string.
        Some(Value::String(s)) if serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object()) => {
            serde_json::from_str::<Value>(s).ok().and_then(|v| v.as_object().cloned())
        }
        Some(other) => {
            return Err(invalid(format!(
                "`extra_vars` must be a JSON object of variables, e.g. {{\"version\": \"1.2.3\"}}, not {other}"
            )))
        }
    };
    let request = RunRequest { playbook, limit, tags, extra_vars };
    request.validate().map_err(invalid)?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ansible::AnsibleConfig;

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

    #[test]
    fn run_arguments_are_checked() {
        let ok =
            parse_run(&json!({"playbook": "site.yml", "limit": "web1", "tags": "a, b", "extra_vars": "{\"x\": 1}"}))
                .unwrap();
        assert_eq!((ok.limit.as_deref(), ok.tags.len()), (Some("web1"), 2));
        assert_eq!(ok.extra_vars.unwrap()["x"], json!(1));
        for (args, expected) in [
            (json!({}), "`playbook` is required"),
            (json!({"playbook": "site.yml", "extra_vars": "dest=/tmp/x"}), "must be a JSON object"),
            (json!({"playbook": "site.yml", "extra_vars": [1, 2]}), "must be a JSON object"),
            (json!({"playbook": "site.yml", "tags": [1]}), "list of tag names"),
            (json!({"playbook": "site.yml", "become": true}), "unknown argument `become`"),
            (json!({"playbook": "site.yml", "limit": "@/etc/passwd"}), "not a host pattern"),
            (json!("site.yml"), "must be a JSON object"),
        ] {
            match parse_run(&args) {
                Err(ToolError::InvalidArguments(m)) => assert!(m.contains(expected), "{args}: {m}"),
                other => panic!("{args}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn without_configuration_every_tool_says_what_to_set_and_no_approval_is_asked() {
        let tools = ansible_tools(Arc::new(Ansible::new(AnsibleConfig::default())));
        let names: Vec<&str> = tools.iter().map(|t| t.spec().name.as_str()).collect();
        assert_eq!(names, [LIST_PLAYBOOKS, LIST_HOSTS, RUN_PLAYBOOK]);
        for tool in &tools {
            let args = if tool.spec().name == RUN_PLAYBOOK { json!({"playbook": "site.yml"}) } else { json!({}) };
            match tool.call(args.clone(), &ctx()).await {
                Err(ToolError::Failed(m)) => assert!(m.starts_with("Ansible is not configured: set [ansible]"), "{m}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(tool.spec().domain.as_deref(), Some("ansible"));
        }
        assert_eq!(tools[2].spec().effect, Effect::Mutate);
        match tools[2].preview(&json!({"playbook": "site.yml"}), &ctx()).await {
            Err(ToolError::InvalidArguments(m)) => assert!(m.starts_with("Ansible is not configured"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
