//! The Proxmox tools: five that read, three that power guests.
//!
//! Reads run without asking. The power actions change a machine, so the
//! policy has a person approve them; the preview shows the guest, its node
//! and its live state. Once approved, the action is sent exactly once and
//! its task (identified by its UPID) is followed until Proxmox says it
//! stopped, and the exit status is reported: `OK` with the guest's new
//! state, or the error with the end of the task's log.
//!
//! The tools are registered whether or not Proxmox is configured, so that
//! agent profiles naming them stay valid; unconfigured, each says how to
//! configure it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_core::{Tool, ToolContext, ToolError, ToolSpec};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::Effect;

use super::{
    compact_resource, human_duration, valid_node, Guest, GuestKind, PowerAction, Proxmox, TaskState, Upid,
    DEFAULT_TIMEOUT,
};

/// Every Proxmox tool, for agent profiles.
pub const TOOL_NAMES: [&str; 8] = [
    "proxmox_list_nodes",
    "proxmox_list_vms",
    "proxmox_vm_status",
    "proxmox_cluster_resources",
    "proxmox_task_status",
    "proxmox_start_vm",
    "proxmox_shutdown_vm",
    "proxmox_stop_vm",
];

/// What every tool answers when no Proxmox is configured.
pub const NOT_CONFIGURED: &str = "Proxmox is not configured: set [proxmox] url, token_id and token_secret in \
steward.toml (or PROXMOX_URL / PROXMOX_TOKEN_ID / PROXMOX_TOKEN_SECRET) and restart Steward. Tell the person so; \
calling again will not help.";

/// The policy domain of every Proxmox tool.
const DOMAIN: &str = "proxmox";
const LIST_CAP: usize = 16_000;
const STATUS_CAP: usize = 4_000;
const TASK_CAP: usize = 8_000;
const POWER_CAP: usize = 4_000;
const DEFAULT_LOG_LINES: u64 = 20;
const MAX_LOG_LINES: u64 = 200;
/// A log line longer than this is cut: it is a progress bar or a dump.
const LOG_LINE_CHARS: usize = 300;
/// Log lines quoted when a power action fails.
const FAILURE_LOG_LINES: usize = 10;
/// The longest shutdown a call may ask Proxmox to wait for.
const MAX_SHUTDOWN_SECS: u64 = 600;
/// Failed status reads in a row after which following a task gives up.
const POLL_ERRORS: u32 = 3;
/// Proxmox's vmid range.
const VMIDS: std::ops::RangeInclusive<u64> = 100..=999_999_999;

/// How a power action's task is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskWait {
    /// Between two reads of the task's status. A second keeps a start or
    /// stop (which take seconds) reported promptly without loading the API.
    pub interval: Duration,
    /// How long to follow it before reporting it as still running. A
    /// shutdown that asks Proxmox to wait longer is followed that long.
    pub timeout: Duration,
}

impl Default for TaskWait {
    fn default() -> Self {
        TaskWait { interval: Duration::from_secs(1), timeout: Duration::from_secs(300) }
    }
}

/// The eight tools, over `client`, or saying how to configure Proxmox when
/// it is `None`.
pub fn proxmox_tools(client: Option<Arc<Proxmox>>, wait: TaskWait) -> Vec<Arc<dyn Tool>> {
    let access = Access { client };
    vec![
        Arc::new(ReadTool::new(access.clone(), Read::Nodes)),
        Arc::new(ReadTool::new(access.clone(), Read::Vms)),
        Arc::new(ReadTool::new(access.clone(), Read::VmStatus)),
        Arc::new(ReadTool::new(access.clone(), Read::Resources)),
        Arc::new(ReadTool::new(access.clone(), Read::Task)),
        Arc::new(PowerTool::new(access.clone(), PowerAction::Start, wait)),
        Arc::new(PowerTool::new(access.clone(), PowerAction::Shutdown, wait)),
        Arc::new(PowerTool::new(access, PowerAction::Stop, wait)),
    ]
}

#[derive(Clone)]
struct Access {
    client: Option<Arc<Proxmox>>,
}

impl Access {
    fn client(&self) -> Result<&Proxmox, ToolError> {
        self.client.as_deref().ok_or_else(|| ToolError::Failed(NOT_CONFIGURED.into()))
    }

    fn request_timeout(&self) -> Duration {
        self.client.as_ref().map(|c| c.timeout()).unwrap_or(DEFAULT_TIMEOUT)
    }
}

fn spec(name: &str, description: &str, parameters: Value, effect: Effect, timeout: Duration, cap: usize) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
        effect,
        timeout,
        output_cap: cap,
        domain: Some(DOMAIN.into()),
    }
}

fn vmid_schema() -> Value {
    json!({"type": "integer", "minimum": *VMIDS.start(), "maximum": *VMIDS.end(), "description": "The guest's id (vmid), e.g. 101."})
}

fn node_schema() -> Value {
    json!({"type": "string", "description": "The node it is on, e.g. \"pve1\"; found automatically when left out."})
}

// --- Reading -----------------------------------------------------------------

/// What a read tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Nodes,
    Vms,
    VmStatus,
    Resources,
    Task,
}

struct ReadTool {
    spec: ToolSpec,
    access: Access,
    read: Read,
}

impl ReadTool {
    fn new(access: Access, read: Read) -> Self {
        // Locating a guest and reading it takes up to three requests.
        let timeout = access.request_timeout() * 3 + Duration::from_secs(5);
        let spec = match read {
            Read::Nodes => spec(
                "proxmox_list_nodes",
                "Lists the Proxmox VE cluster's nodes: status (online/offline), CPU load, memory and uptime.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                Effect::Read,
                timeout,
                LIST_CAP,
            ),
            Read::Vms => spec(
                "proxmox_list_vms",
                "Lists the Proxmox guests, QEMU virtual machines and LXC containers alike: vmid, name, type (qemu \
or lxc), node and status, with CPU, memory and uptime for running ones. Filter by node, type or status.",
                json!({
                    "type": "object",
                    "properties": {
                        "node": {"type": "string", "description": "Only the guests of this node, e.g. \"pve1\"."},
                        "type": {"type": "string", "enum": ["qemu", "lxc"], "description": "Only VMs (qemu) or only containers (lxc)."},
                        "status": {"type": "string", "enum": ["running", "stopped"], "description": "Only running or only stopped guests."}
                    },
                    "additionalProperties": false
                }),
                Effect::Read,
                timeout,
                LIST_CAP,
            ),
            Read::VmStatus => spec(
                "proxmox_vm_status",
                "Shows one VM's or container's live status by vmid: state (running, stopped, paused), CPU, memory, \
uptime, lock (backup, migration …) and HA state.",
                json!({
                    "type": "object",
                    "properties": {"vmid": vmid_schema(), "node": node_schema()},
                    "required": ["vmid"],
                    "additionalProperties": false
                }),
                Effect::Read,
                timeout,
                STATUS_CAP,
            ),
            Read::Resources => spec(
                "proxmox_cluster_resources",
                "Lists the cluster's resources of one type, or all: vm (guests), node, storage (with used and \
total GiB), sdn.",
                json!({
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["vm", "node", "storage", "sdn"], "description": "Only resources of this type."}
                    },
                    "additionalProperties": false
                }),
                Effect::Read,
                timeout,
                LIST_CAP,
            ),
            Read::Task => spec(
                "proxmox_task_status",
                "Shows a Proxmox task by its UPID (the id power actions report): running or stopped, its exit \
status (OK, or the error) and the last lines of its log.",
                json!({
                    "type": "object",
                    "properties": {
                        "upid": {"type": "string", "description": "The task's id, e.g. \"UPID:pve1:0000C5A3:0047B2E1:65F3A1B2:qmstart:101:root@pam:\"."},
                        "lines": {"type": "integer", "minimum": 1, "maximum": MAX_LOG_LINES, "description": "Log lines from its end (default 20)."}
                    },
                    "required": ["upid"],
                    "additionalProperties": false
                }),
                Effect::Read,
                timeout,
                TASK_CAP,
            ),
        };
        ReadTool { spec, access, read }
    }

    async fn list_vms(&self, client: &Proxmox, args: &Map<String, Value>) -> Result<Value, ToolError> {
        let node = node_arg(args)?;
        let kind = match optional_choice(args, "type", &["qemu", "lxc"])? {
            Some(k) => GuestKind::parse(k),
            None => None,
        };
        let status = optional_choice(args, "status", &["running", "stopped"])?;
        let mut guests = match &node {
            Some(node) => {
                let mut all = Vec::new();
                for k in GuestKind::ALL.into_iter().filter(|k| kind.is_none_or(|want| want == *k)) {
                    all.extend(client.guests_on(node, k).await?);
                }
                all
            }
            None => client.guests().await?,
        };
        guests.retain(|g| kind.is_none_or(|k| g.kind == k) && status.is_none_or(|s| g.status == s));
        guests.sort_by_key(|g| g.vmid);
        Ok(json!({"count": guests.len(), "vms": guests.iter().map(Guest::compact).collect::<Vec<_>>()}))
    }

    async fn task(&self, client: &Proxmox, args: &Map<String, Value>) -> Result<Value, ToolError> {
        let upid = upid_arg(args)?;
        let lines = optional_number(args, "lines", 1, MAX_LOG_LINES)?.unwrap_or(DEFAULT_LOG_LINES);
        let state = client.task_state(&upid).await?;
        let mut out = json!({
            "upid": upid.as_str(),
            "node": upid.node(),
            "type": upid.task_type(),
            "id": upid.id(),
            "user": upid.user(),
            "status": state.status_str(),
        });
        if let Some(start) = upid.starttime() {
            out["started_epoch_s"] = json!(start);
        }
        if let Some(exit) = state.exit_status() {
            out["exitstatus"] = json!(exit);
            out["ok"] = json!(state.succeeded());
        }
        match client.task_log(&upid, lines as usize).await {
            Ok(log) => out["log"] = json!(log.iter().map(|l| cut_line(l)).collect::<Vec<_>>()),
            Err(e) => out["log_error"] = json!(e.to_string()),
        }
        Ok(out)
    }
}

#[async_trait]
impl Tool for ReadTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let client = self.access.client()?;
        let out = match self.read {
            Read::Nodes => {
                object(&arguments, &[])?;
                let mut nodes = client.nodes().await?;
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                json!({"nodes": nodes.iter().map(|n| n.compact()).collect::<Vec<_>>()})
            }
            Read::Vms => self.list_vms(client, object(&arguments, &["node", "type", "status"])?).await?,
            Read::VmStatus => {
                let args = object(&arguments, &["vmid", "node"])?;
                let (vmid, node) = (vmid_arg(args)?, node_arg(args)?);
                let found = locate(client, vmid, node.as_deref()).await?;
                let live = client.guest_status(&found.node, found.kind, vmid).await?;
                with_name_of(live, &found).compact()
            }
            Read::Resources => {
                let args = object(&arguments, &["type"])?;
                let kind = optional_choice(args, "type", &["vm", "node", "storage", "sdn"])?;
                let resources = client.cluster_resources(kind).await?;
                json!({"resources": resources.iter().map(compact_resource).collect::<Vec<_>>()})
            }
            Read::Task => self.task(client, object(&arguments, &["upid", "lines"])?).await?,
        };
        Ok(out.to_string())
    }
}

// --- Powering ----------------------------------------------------------------

struct PowerTool {
    spec: ToolSpec,
    access: Access,
    action: PowerAction,
    wait: TaskWait,
}

/// A checked power action, ready to preview or run.
struct Plan {
    /// Its live state.
    guest: Guest,
    shutdown_timeout: Option<u64>,
    /// Set when the guest is already where the action would take it.
    already: Option<String>,
}

impl PowerTool {
    fn new(access: Access, action: PowerAction, wait: TaskWait) -> Self {
        let mut properties = json!({"vmid": vmid_schema(), "node": node_schema()});
        let (name, description, effect) = match action {
            PowerAction::Start => (
                "proxmox_start_vm",
                "Starts a stopped Proxmox VM or container by vmid. A person approves it first; then Steward \
follows Proxmox's task until it finishes and reports its exit status and the guest's new state.",
                Effect::Mutate,
            ),
            PowerAction::Shutdown => {
                properties["timeout"] = json!({
                    "type": "integer", "minimum": 1, "maximum": MAX_SHUTDOWN_SECS,
                    "description": "Seconds Proxmox waits for the guest to shut down (Proxmox's default when left out)."
                });
                (
                    "proxmox_shutdown_vm",
                    "Shuts a Proxmox VM or container down cleanly: the default way to stop a guest. The guest's \
operating system is asked to shut down (an ACPI shutdown for a VM), so it closes its programs and files. If it does \
not stop within the timeout the task fails and the guest keeps running; only then consider proxmox_stop_vm. A person \
approves it first; then Steward follows the task and reports its exit status and the guest's new state.",
                    Effect::Mutate,
                )
            }
            PowerAction::Stop => (
                "proxmox_stop_vm",
                "Stops a Proxmox VM or container at once: this pulls the plug. The guest's operating system is not \
asked, so unsaved data in the guest is lost and its filesystems may need checking. Use proxmox_shutdown_vm instead \
unless a clean shutdown failed or the person asks for a hard stop. A person approves every call.",
                Effect::Destructive,
            ),
        };
        let parameters = json!({
            "type": "object",
            "properties": properties,
            "required": ["vmid"],
            "additionalProperties": false
        });
        let longest_wait = match action {
            PowerAction::Shutdown => wait.timeout.max(Duration::from_secs(MAX_SHUTDOWN_SECS + 30)),
            PowerAction::Start | PowerAction::Stop => wait.timeout,
        };
        // Locating and reading the guest, the action, the final state, the
        // log, and a few slow status reads on top of the wait itself.
        let timeout = access.request_timeout() * 8 + longest_wait + Duration::from_secs(10);
        PowerTool { spec: spec(name, description, parameters, effect, timeout, POWER_CAP), access, action, wait }
    }

    async fn plan(&self, arguments: &Value) -> Result<Plan, ToolError> {
        let allowed: &[&str] = match self.action {
            PowerAction::Shutdown => &["vmid", "node", "timeout"],
            PowerAction::Start | PowerAction::Stop => &["vmid", "node"],
        };
        let args = object(arguments, allowed)?;
        let (vmid, node) = (vmid_arg(args)?, node_arg(args)?);
        let shutdown_timeout = match self.action {
            PowerAction::Shutdown => optional_number(args, "timeout", 1, MAX_SHUTDOWN_SECS)?,
            PowerAction::Start | PowerAction::Stop => None,
        };
        let client = self.access.client()?;
        let found = locate(client, vmid, node.as_deref()).await?;
        let guest = with_name_of(client.guest_status(&found.node, found.kind, vmid).await?, &found);
        let label = guest.label();
        if guest.template {
            return Err(ToolError::InvalidArguments(format!(
                "{label} is a template: templates are not run; clone it into a new guest first"
            )));
        }
        let already = match self.action {
            PowerAction::Start if guest.is_running() => Some(format!("{label} is already running")),
            PowerAction::Shutdown | PowerAction::Stop if guest.status == "stopped" => {
                Some(format!("{label} is already stopped"))
            }
            PowerAction::Start | PowerAction::Shutdown | PowerAction::Stop => None,
        };
        Ok(Plan { guest, shutdown_timeout, already })
    }

    /// How long to follow the task.
    fn wait_for(&self, shutdown_timeout: Option<u64>) -> Duration {
        match (self.action, shutdown_timeout) {
            // Proxmox's own wait, and time for it to report.
            (PowerAction::Shutdown, Some(t)) => self.wait.timeout.max(Duration::from_secs(t + 30)),
            (PowerAction::Shutdown, None) | (PowerAction::Start | PowerAction::Stop, _) => self.wait.timeout,
        }
    }

    /// Reads the task's status until it stops; returns its exit status.
    async fn follow(&self, client: &Proxmox, guest: &Guest, upid: &Upid, limit: Duration) -> Result<String, ToolError> {
        let deadline = Instant::now() + limit;
        let mut errors = 0;
        let what = format!("the task to {} {}", self.action.verb(), guest.label());
        loop {
            match client.task_state(upid).await {
                Ok(TaskState::Stopped { exit_status }) => return Ok(exit_status),
                Ok(TaskState::Running) => errors = 0,
                Err(e) => {
                    errors += 1;
                    tracing::warn!(upid = %upid, error = %e, "could not read a Proxmox task's status");
                    if errors >= POLL_ERRORS {
                        return Err(ToolError::Failed(format!(
                            "{what} was sent to Proxmox ({upid}), but its progress could not be read: {e}. Check it \
with proxmox_task_status; do not send the action again."
                        )));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ToolError::Failed(format!(
                    "{what} ({upid}) was still running after {}; it may still finish. Check it with \
proxmox_task_status; do not send the action again.",
                    human_duration(limit.as_secs())
                )));
            }
            tokio::time::sleep(self.wait.interval).await;
        }
    }
}

/// `now stopped`, `now running, locked: backup`.
fn state_with_lock(guest: &Guest) -> String {
    match &guest.lock {
        Some(lock) => format!("{}, locked: {lock}", guest.state()),
        None => guest.state(),
    }
}

#[async_trait]
impl Tool for PowerTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        if self.access.client.is_none() {
            // Nothing could ever run: a person is not asked to approve it.
            return Err(ToolError::InvalidArguments(NOT_CONFIGURED.into()));
        }
        let plan = self.plan(arguments).await?;
        if let Some(already) = plan.already {
            return Err(ToolError::InvalidArguments(format!("{already}; there is nothing to {}", self.action.verb())));
        }
        let guest = &plan.guest;
        let state = state_with_lock(guest);
        let mut summary = format!("{} {} on node {} (now {state})", self.action.verb(), guest.label(), guest.node);
        let details = match self.action {
            PowerAction::Start => None,
            PowerAction::Shutdown => {
                let wait = match plan.shutdown_timeout {
                    Some(t) => format!("Proxmox waits up to {t} s for it"),
                    None => "Proxmox waits for it as long as its default allows".to_string(),
                };
                Some(format!(
                    "A clean shutdown: the guest's operating system is asked to shut down and closes its programs \
and files; {wait}. If it does not stop in time the task fails and the guest keeps running."
                ))
            }
            PowerAction::Stop => {
                summary.push_str(" — pulls the plug: unsaved data in the guest is lost");
                Some(
                    "Stop pulls the plug: the guest is ended at once, like cutting its power, without asking its \
operating system to shut down. Unsaved data in the guest is lost and its filesystems may need checking. A clean \
shutdown (proxmox_shutdown_vm) is the safe way."
                        .to_string(),
                )
            }
        };
        Ok(Preview {
            summary,
            targets: vec![PreviewTarget { id: guest.target_id(), name: guest.name.clone(), state: Some(state) }],
            details,
        })
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let plan = self.plan(&arguments).await?;
        let guest = &plan.guest;
        if let Some(already) = plan.already {
            return Ok(json!({
                "done": false,
                "vm": guest.target_id(),
                "note": format!("{already}; nothing was sent to Proxmox"),
            })
            .to_string());
        }
        let client = self.access.client()?;
        let started = Instant::now();
        let upid = client.power(guest, self.action, plan.shutdown_timeout).await?;
        tracing::info!(
            action = self.action.as_str(), vmid = guest.vmid, node = %guest.node, upid = %upid,
            "sent a power action to Proxmox"
        );
        let exit_status = self.follow(client, guest, &upid, self.wait_for(plan.shutdown_timeout)).await?;
        let state = TaskState::Stopped { exit_status: exit_status.clone() };
        if !state.succeeded() {
            let log = client.task_log(&upid, FAILURE_LOG_LINES).await.unwrap_or_default();
            let mut message = format!(
                "Proxmox could not {} {} on node {}: the task ended with \"{exit_status}\" ({upid}).",
                self.action.verb(),
                guest.label(),
                guest.node
            );
            if !log.is_empty() {
                message.push_str(" Last log lines:");
                for line in &log {
                    message.push_str("\n  ");
                    message.push_str(&cut_line(line));
                }
            }
            return Err(ToolError::Failed(message));
        }
        let now = match client.guest_status(&guest.node, guest.kind, guest.vmid).await {
            Ok(after) => after.state(),
            Err(e) => format!("unknown ({e})"),
        };
        Ok(json!({
            "done": self.action.as_str(),
            "vm": guest.label(),
            "id": guest.target_id(),
            "node": guest.node,
            "upid": upid.as_str(),
            "exitstatus": exit_status,
            "was": guest.state(),
            "now": now,
            "took": human_duration(started.elapsed().as_secs()),
        })
        .to_string())
    }
}

// --- Shared ------------------------------------------------------------------

/// Finds a guest's node and kind: on the given node (from its two lists)
/// or anywhere in the cluster (from the resource list).
async fn locate(client: &Proxmox, vmid: u32, node: Option<&str>) -> Result<Guest, ToolError> {
    match node {
        Some(node) => {
            for kind in GuestKind::ALL {
                if let Some(g) = client.guests_on(node, kind).await?.into_iter().find(|g| g.vmid == vmid) {
                    return Ok(g);
                }
            }
            Err(ToolError::InvalidArguments(format!(
                "node {node} has no VM or container {vmid}; leave `node` out to search the whole cluster, or list \
the guests with proxmox_list_vms"
            )))
        }
        None => client.guests().await?.into_iter().find(|g| g.vmid == vmid).ok_or_else(|| {
            ToolError::InvalidArguments(format!(
                "there is no VM or container {vmid} in the cluster (or the API token may not see it: that needs \
VM.Audit); list the guests with proxmox_list_vms"
            ))
        }),
    }
}

/// `status/current` of a container may lack the name its list has.
fn with_name_of(mut live: Guest, listed: &Guest) -> Guest {
    if live.name.is_none() {
        live.name = listed.name.clone();
    }
    if live.ha_state.is_none() {
        live.ha_state = listed.ha_state.clone();
    }
    live
}

fn cut_line(line: &str) -> String {
    let mut out: String = line.chars().take(LOG_LINE_CHARS).collect();
    if line.chars().count() > LOG_LINE_CHARS {
        out.push('…');
    }
    out
}

/// The arguments object, with no keys but `allowed`.
fn object<'a>(arguments: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, ToolError> {
    let Some(map) = arguments.as_object() else {
        return Err(ToolError::InvalidArguments("the arguments must be a JSON object".into()));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ToolError::InvalidArguments(if allowed.is_empty() {
            format!("this tool takes no arguments, but got `{unknown}`")
        } else {
            format!("unknown argument `{unknown}`; this tool takes: {}", allowed.join(", "))
        }));
    }
    Ok(map)
}

/// An argument that may be absent or null.
fn present<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    args.get(key).filter(|v| !v.is_null())
}

fn vmid_arg(args: &Map<String, Value>) -> Result<u32, ToolError> {
    let n = match present(args, "vmid") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
        None => return Err(ToolError::InvalidArguments("`vmid` is required, e.g. {\"vmid\": 101}".into())),
    };
    n.filter(|n| VMIDS.contains(n)).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        ToolError::InvalidArguments(format!(
            "`vmid` must be a whole number from {} to {}, e.g. 101",
            VMIDS.start(),
            VMIDS.end()
        ))
    })
}

fn node_arg(args: &Map<String, Value>) -> Result<Option<String>, ToolError> {
    match present(args, "node") {
        None => Ok(None),
        Some(Value::String(s)) if valid_node(s.trim()) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(ToolError::InvalidArguments(format!(
            "`node` must be a node's name such as \"pve1\" (see proxmox_list_nodes), not {other}"
        ))),
    }
}

fn upid_arg(args: &Map<String, Value>) -> Result<Upid, ToolError> {
    match present(args, "upid") {
        Some(Value::String(s)) => Upid::parse(s).map_err(ToolError::InvalidArguments),
        Some(_) | None => Err(ToolError::InvalidArguments(
            "`upid` is required: the task id a power action reported, starting with UPID:".into(),
        )),
    }
}

fn optional_choice<'a>(
    args: &'a Map<String, Value>,
    key: &str,
    choices: &[&str],
) -> Result<Option<&'a str>, ToolError> {
    match present(args, key) {
        None => Ok(None),
        Some(Value::String(s)) if choices.contains(&s.as_str()) => Ok(Some(s.as_str())),
        Some(other) => {
            Err(ToolError::InvalidArguments(format!("`{key}` must be one of {}, not {other}", choices.join(", "))))
        }
    }
}

fn optional_number(args: &Map<String, Value>, key: &str, min: u64, max: u64) -> Result<Option<u64>, ToolError> {
    let Some(value) = present(args, key) else { return Ok(None) };
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n.filter(|n| (min..=max).contains(n)) {
        Some(n) => Ok(Some(n)),
        None => {
            Err(ToolError::InvalidArguments(format!("`{key}` must be a whole number from {min} to {max}, not {value}")))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_tool_declares_the_same_contract() {
        let tools = proxmox_tools(None, TaskWait::default());
        let names: Vec<&str> = tools.iter().map(|t| t.spec().name.as_str()).collect();
        assert_eq!(names, TOOL_NAMES);
        for tool in &tools {
            let spec = tool.spec();
            assert_eq!(spec.domain.as_deref(), Some("proxmox"), "{}", spec.name);
            assert_eq!(spec.parameters["additionalProperties"], false, "{}", spec.name);
            assert!(spec.output_cap >= 4_000 && spec.timeout >= Duration::from_secs(5), "{}", spec.name);
        }
        let effect = |name: &str| tools.iter().find(|t| t.spec().name == name).unwrap().spec().effect;
        assert_eq!(effect("proxmox_list_vms"), Effect::Read);
        assert_eq!(effect("proxmox_start_vm"), Effect::Mutate);
        assert_eq!(effect("proxmox_shutdown_vm"), Effect::Mutate);
        assert_eq!(effect("proxmox_stop_vm"), Effect::Destructive);
        let stop = tools.iter().find(|t| t.spec().name == "proxmox_stop_vm").unwrap();
        assert!(stop.spec().description.contains("pulls the plug"));
        let shutdown = tools.iter().find(|t| t.spec().name == "proxmox_shutdown_vm").unwrap();
        assert!(shutdown.spec().description.contains("the default way to stop"));
    }

    #[test]
    fn arguments_are_checked_before_anything_is_sent() {
        let args = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(vmid_arg(&args(json!({"vmid": 101}))).unwrap(), 101);
        assert_eq!(vmid_arg(&args(json!({"vmid": "101"}))).unwrap(), 101);
        for bad in [json!({"vmid": 99}), json!({"vmid": -1}), json!({"vmid": "web"}), json!({"vmid": 1.5}), json!({})] {
            assert!(matches!(vmid_arg(&args(bad.clone())), Err(ToolError::InvalidArguments(_))), "{bad}");
        }
        assert_eq!(node_arg(&args(json!({"node": "pve-1.lan"}))).unwrap().as_deref(), Some("pve-1.lan"));
        assert!(node_arg(&args(json!({"node": "../../access"}))).is_err());
        assert!(node_arg(&args(json!({"node": null}))).unwrap().is_none());
        let e = object(&json!({"vmid": 1, "force": true}), &["vmid", "node"]).unwrap_err();
        assert_eq!(e, ToolError::InvalidArguments("unknown argument `force`; this tool takes: vmid, node".into()));
        assert!(optional_number(&args(json!({"timeout": 601})), "timeout", 1, 600).is_err());
    }
}
