//! The Proxmox VE API's reply shapes, read leniently.
//!
//! Every reply is `{"data": …}`. Fields are read one by one from JSON
//! values rather than through strict types, because the API is not
//! consistent across versions and endpoints: an LXC container's `vmid` is a
//! string in some releases and a number in others, `cpus` in a node's guest
//! list is `maxcpu` in the cluster's resource list, and fields a token may
//! not see are simply left out.

use serde_json::{json, Map, Value};

/// The two kinds of guest Proxmox VE runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestKind {
    /// A QEMU/KVM virtual machine.
    Qemu,
    /// An LXC container.
    Lxc,
}

impl GuestKind {
    pub const ALL: [GuestKind; 2] = [GuestKind::Qemu, GuestKind::Lxc];

    /// The API's path segment and `type` value: `qemu` or `lxc`.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::Qemu => "qemu",
            GuestKind::Lxc => "lxc",
        }
    }

    pub fn parse(s: &str) -> Option<GuestKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What people call it: `VM` or `container`.
    pub fn noun(self) -> &'static str {
        match self {
            GuestKind::Qemu => "VM",
            GuestKind::Lxc => "container",
        }
    }
}

/// One cluster node (`GET /nodes`).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// `online`, `offline` or `unknown`.
    pub status: String,
    /// CPU load as a fraction of all its cores (0.0 – 1.0).
    pub cpu: Option<f64>,
    pub maxcpu: Option<u64>,
    pub mem: Option<u64>,
    pub maxmem: Option<u64>,
    /// Seconds.
    pub uptime: Option<u64>,
}

impl Node {
    pub(crate) fn from_value(v: &Value) -> Option<Node> {
        let o = v.as_object()?;
        Some(Node {
            name: text(o, "node")?,
            status: text(o, "status").unwrap_or_else(|| "unknown".into()),
            cpu: float(o, "cpu"),
            maxcpu: int(o, "maxcpu"),
            mem: int(o, "mem"),
            maxmem: int(o, "maxmem"),
            uptime: int(o, "uptime"),
        })
    }

    /// What a model needs to know of it, in few bytes.
    pub fn compact(&self) -> Value {
        let mut out = json!({"node": self.name, "status": self.status});
        usage(&mut out, self.cpu, self.maxcpu, self.mem, self.maxmem);
        if let Some(up) = self.uptime.filter(|u| *u > 0) {
            out["uptime"] = json!(human_duration(up));
        }
        out
    }
}

/// A VM or container: from a node's guest list, the cluster's resource
/// list or its `status/current`.
#[derive(Debug, Clone, PartialEq)]
pub struct Guest {
    pub vmid: u32,
    pub name: Option<String>,
    pub kind: GuestKind,
    pub node: String,
    /// `running`, `stopped` (or `paused`, `suspended`, `unknown`).
    pub status: String,
    /// QEMU's own view (`running`, `paused`, `prelaunch` …), from `status/current`.
    pub qmpstatus: Option<String>,
    pub cpu: Option<f64>,
    pub maxcpu: Option<u64>,
    pub mem: Option<u64>,
    pub maxmem: Option<u64>,
    pub uptime: Option<u64>,
    pub template: bool,
    /// Set while a backup, migration, snapshot … holds the guest; power
    /// actions fail meanwhile.
    pub lock: Option<String>,
    /// The HA manager's state, for guests it manages.
    pub ha_state: Option<String>,
    pub tags: Option<String>,
}

impl Guest {
    /// Reads a guest from an object that names its own node and type (the
    /// cluster's resource list), or from one of a node's lists, given the
    /// node and kind the request was for.
    pub(crate) fn from_value(v: &Value, node: Option<&str>, kind: Option<GuestKind>) -> Option<Guest> {
        let o = v.as_object()?;
        let kind = match kind {
            Some(k) => k,
            None => GuestKind::parse(o.get("type")?.as_str()?)?,
        };
        let node = match node {
            Some(n) => n.to_string(),
            None => text(o, "node")?,
        };
        let vmid = u32::try_from(int(o, "vmid")?).ok()?;
        let ha_state = o
            .get("hastate")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| o.get("ha").and_then(|ha| ha.get("state")).and_then(Value::as_str).map(String::from));
        Some(Guest {
            vmid,
            name: text(o, "name"),
            kind,
            node,
            status: text(o, "status").unwrap_or_else(|| "unknown".into()),
            qmpstatus: text(o, "qmpstatus"),
            cpu: float(o, "cpu"),
            maxcpu: int(o, "maxcpu").or_else(|| int(o, "cpus")),
            mem: int(o, "mem"),
            maxmem: int(o, "maxmem"),
            uptime: int(o, "uptime"),
            template: int(o, "template").is_some_and(|t| t == 1)
                || o.get("template").and_then(Value::as_bool).unwrap_or(false),
            lock: text(o, "lock"),
            ha_state,
            tags: text(o, "tags"),
        })
    }

    /// `proxmox:pve1/qemu/101`: how approvals and previews name it.
    pub fn target_id(&self) -> String {
        format!("proxmox:{}/{}/{}", self.node, self.kind.as_str(), self.vmid)
    }

    /// `VM 101 'web'`, or `container 200` when it has no name.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} {} '{}'", self.kind.noun(), self.vmid, name),
            None => format!("{} {}", self.kind.noun(), self.vmid),
        }
    }

    /// Its state in a word or two: `running`, `stopped`, `running (paused)`.
    pub fn state(&self) -> String {
        match &self.qmpstatus {
            Some(q) if q != &self.status => format!("{} ({q})", self.status),
            Some(_) | None => self.status.clone(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// What a model needs to know of it, in few bytes.
    pub fn compact(&self) -> Value {
        let mut out = json!({
            "vmid": self.vmid,
            "name": self.name,
            "type": self.kind.as_str(),
            "node": self.node,
            "status": self.state(),
        });
        if self.is_running() {
            usage(&mut out, self.cpu, self.maxcpu, self.mem, self.maxmem);
            if let Some(up) = self.uptime.filter(|u| *u > 0) {
                out["uptime"] = json!(human_duration(up));
            }
        } else if let Some(maxmem) = self.maxmem {
            out["mem_total_mib"] = json!(maxmem / MIB);
        }
        if self.template {
            out["template"] = json!(true);
        }
        if let Some(lock) = &self.lock {
            out["lock"] = json!(lock);
        }
        if let Some(ha) = &self.ha_state {
            out["ha_state"] = json!(ha);
        }
        if let Some(tags) = self.tags.as_ref().filter(|t| !t.is_empty()) {
            out["tags"] = json!(tags);
        }
        out
    }
}

/// One entry of `GET /cluster/resources`, made compact: guests and nodes
/// as in their own lists, storage with its use in GiB, anything else (SDN
/// zones, pools) as Proxmox sent it, less the fields that are only noise.
pub fn compact_resource(v: &Value) -> Value {
    let Some(o) = v.as_object() else { return v.clone() };
    let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
    if GuestKind::parse(kind).is_some() {
        if let Some(guest) = Guest::from_value(v, None, None) {
            return guest.compact();
        }
    }
    if kind == "node" {
        if let Some(node) = Node::from_value(v) {
            let mut out = node.compact();
            out["type"] = json!("node");
            return out;
        }
    }
    if kind == "storage" {
        let mut out = json!({
            "type": "storage",
            "storage": o.get("storage"),
            "node": o.get("node"),
            "status": o.get("status"),
        });
        if let Some(plugin) = o.get("plugintype") {
            out["plugin"] = plugin.clone();
        }
        if let Some(content) = o.get("content") {
            out["content"] = content.clone();
        }
        if let (Some(used), Some(total)) = (int(o, "disk"), int(o, "maxdisk")) {
            out["used_gib"] = json!(round1(used as f64 / GIB as f64));
            out["total_gib"] = json!(round1(total as f64 / GIB as f64));
        }
        return out;
    }
    let kept: Map<String, Value> = o
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "id" | "ssl_fingerprint"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// A task's id: `UPID:node:pid:pstart:starttime:type:id:user:`. The node
/// that runs the task is in it, so a task can be followed from its UPID
/// alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    raw: String,
    node: String,
    task_type: String,
    id: String,
    user: String,
    starttime: Option<i64>,
}

impl Upid {
    /// Parses and checks a UPID. Only the characters Proxmox puts in one
    /// are accepted, so that a UPID from a model cannot reach another path.
    pub fn parse(s: &str) -> Result<Upid, String> {
        let s = s.trim();
        let example = "UPID:pve1:0000C5A3:0047B2E1:65F3A1B2:qmstart:101:root@pam:";
        let bad = |why: &str| format!("`{s}` is not a Proxmox task id (UPID) — {why}; they look like {example}");
        let Some(rest) = s.strip_prefix("UPID:") else { return Err(bad("it must start with UPID:")) };
        if let Some(c) =
            s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '@' | '!' | '.' | '-' | '_' | '=')))
        {
            return Err(bad(&format!("it contains `{c}`")));
        }
        let parts: Vec<&str> = rest.split(':').collect();
        // node, pid, pstart, starttime, type, id, user, and the empty end.
        if parts.len() < 8 {
            return Err(bad("it has too few fields"));
        }
        let node = parts[0];
        if !valid_node(node) {
            return Err(bad("its node name is not valid"));
        }
        let hex = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit());
        if !(hex(parts[1]) && hex(parts[2]) && hex(parts[3])) {
            return Err(bad("its pid, process start and start time must be hexadecimal"));
        }
        Ok(Upid {
            raw: s.to_string(),
            node: node.to_string(),
            task_type: parts[4].to_string(),
            id: parts[5].to_string(),
            user: parts[6..parts.len() - 1].join(":"),
            starttime: i64::from_str_radix(parts[3], 16).ok(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The node that runs the task.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `qmstart`, `vzshutdown` …
    pub fn task_type(&self) -> &str {
        &self.task_type
    }

    /// What the task works on, usually a vmid; may be empty.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Who started it: `root@pam` or a token, `steward@pve!infra`.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Seconds since the Unix epoch.
    pub fn starttime(&self) -> Option<i64> {
        self.starttime
    }
}

impl std::fmt::Display for Upid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Where a task is (`GET /nodes/{node}/tasks/{upid}/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// It ended; `exit_status` is `OK`, `WARNINGS: n`, or the error.
    Stopped {
        exit_status: String,
    },
}

impl TaskState {
    pub(crate) fn from_value(v: &Value) -> Option<TaskState> {
        let o = v.as_object()?;
        match o.get("status")?.as_str()? {
            "running" => Some(TaskState::Running),
            "stopped" => {
                Some(TaskState::Stopped { exit_status: text(o, "exitstatus").unwrap_or_else(|| "unknown".into()) })
            }
            _ => None,
        }
    }

    /// Finished, and finished well. A task that only logged warnings
    /// (`WARNINGS: 2`) did what it was asked, as the Proxmox web interface
    /// shows it too.
    pub fn succeeded(&self) -> bool {
        match self {
            TaskState::Running => false,
            TaskState::Stopped { exit_status } => exit_status == "OK" || exit_status.starts_with("WARNINGS"),
        }
    }

    pub fn status_str(&self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Stopped { .. } => "stopped",
        }
    }

    pub fn exit_status(&self) -> Option<&str> {
        match self {
            TaskState::Running => None,
            TaskState::Stopped { exit_status } => Some(exit_status),
        }
    }
}

/// Node names are host names: letters, digits, `-` and `.`.
pub fn valid_node(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn text(o: &Map<String, Value>, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A whole number sent as a number or as a string (`"vmid": "200"`).
fn int(o: &Map<String, Value>, key: &str) -> Option<u64> {
    match o.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float(o: &Map<String, Value>, key: &str) -> Option<f64> {
    match o.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// CPU in percent of the cores it has, memory in MiB.
fn usage(out: &mut Value, cpu: Option<f64>, maxcpu: Option<u64>, mem: Option<u64>, maxmem: Option<u64>) {
    if let Some(cpu) = cpu {
        out["cpu_pct"] = json!(round1(cpu * 100.0));
    }
    if let Some(cores) = maxcpu {
        out["cores"] = json!(cores);
    }
    if let Some(mem) = mem {
        out["mem_used_mib"] = json!(mem / MIB);
    }
    if let Some(maxmem) = maxmem {
        out["mem_total_mib"] = json!(maxmem / MIB);
    }
}

/// `3d 4h`, `2h 5m`, `42s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_upid_gives_its_node_type_and_user() {
        let u = Upid::parse("UPID:pve1:0000C5A3:0047B2E1:65F3A1B2:qmstart:101:steward@pve!infra:").unwrap();
        assert_eq!((u.node(), u.task_type(), u.id(), u.user()), ("pve1", "qmstart", "101", "steward@pve!infra"));
        assert_eq!(u.starttime(), Some(0x65F3A1B2));
        for bad in [
            "pve1:0000C5A3:0047B2E1:65F3A1B2:qmstart:101:root@pam:",
            "UPID:pve1:0000C5A3",
            "UPID:../x:0000C5A3:0047B2E1:65F3A1B2:qmstart:101:root@pam:",
            "UPID:pve1:0000C5A3:0047B2E1:65F3A1B2:qmstart:101:root@pam:/../../x",
            "UPID:pve1:zz:0047B2E1:65F3A1B2:qmstart:101:root@pam:",
        ] {
            let e = Upid::parse(bad).unwrap_err();
            assert!(e.contains("not a Proxmox task id") && e.contains("UPID:pve1:"), "{bad}: {e}");
        }
    }

    #[test]
    fn guests_are_read_from_numbers_or_strings_and_both_list_shapes() {
        // An LXC container from a node's list, vmid as a string.
        let ct = Guest::from_value(
            &json!({"vmid": "200", "name": "dns", "status": "running", "cpus": 2, "cpu": 0.0123,
                    "mem": 268435456, "maxmem": 536870912, "uptime": 93784, "type": "lxc"}),
            Some("pve2"),
            Some(GuestKind::Lxc),
        )
        .unwrap();
        assert_eq!((ct.vmid, ct.node.as_str(), ct.kind), (200, "pve2", GuestKind::Lxc));
        assert_eq!(
            ct.compact(),
            json!({"vmid": 200, "name": "dns", "type": "lxc", "node": "pve2", "status": "running",
                   "cpu_pct": 1.2, "cores": 2, "mem_used_mib": 256, "mem_total_mib": 512, "uptime": "1d 2h"})
        );
        // A VM from the cluster's resource list, which names node and type.
        let vm = Guest::from_value(
            &json!({"id": "qemu/101", "type": "qemu", "node": "pve1", "vmid": 101, "name": "web",
                    "status": "stopped", "maxmem": 4294967296u64, "template": 0, "hastate": "stopped"}),
            None,
            None,
        )
        .unwrap();
        assert_eq!(vm.target_id(), "proxmox:pve1/qemu/101");
        assert_eq!(vm.label(), "VM 101 'web'");
        assert_eq!(
            vm.compact(),
            json!({"vmid": 101, "name": "web", "type": "qemu", "node": "pve1", "status": "stopped",
                   "mem_total_mib": 4096, "ha_state": "stopped"})
        );
        assert!(Guest::from_value(&json!({"type": "storage", "node": "pve1"}), None, None).is_none());
    }

    #[test]
    fn a_paused_vm_shows_both_states() {
        let vm = Guest::from_value(
            &json!({"vmid": 101, "status": "running", "qmpstatus": "paused"}),
            Some("pve1"),
            Some(GuestKind::Qemu),
        )
        .unwrap();
        assert_eq!(vm.state(), "running (paused)");
        assert_eq!(vm.label(), "VM 101");
    }

    #[test]
    fn tasks_end_well_with_ok_or_warnings_only() {
        let state = |v: Value| TaskState::from_value(&v).unwrap();
        assert_eq!(state(json!({"status": "running"})), TaskState::Running);
        assert!(state(json!({"status": "stopped", "exitstatus": "OK"})).succeeded());
        assert!(state(json!({"status": "stopped", "exitstatus": "WARNINGS: 2"})).succeeded());
        let failed = state(json!({"status": "stopped", "exitstatus": "command 'qm start 101' failed: exit code 1"}));
        assert!(!failed.succeeded());
        assert_eq!(failed.exit_status(), Some("command 'qm start 101' failed: exit code 1"));
        assert!(TaskState::from_value(&json!({"status": "lost"})).is_none());
    }

    #[test]
    fn storage_resources_are_shown_in_gib() {
        let s = compact_resource(&json!({"id": "storage/pve1/local-lvm", "type": "storage", "storage": "local-lvm",
            "node": "pve1", "status": "available", "disk": 53687091200u64, "maxdisk": 107374182400u64,
            "plugintype": "lvmthin", "content": "images,rootdir"}));
        assert_eq!(
            s,
            json!({"type": "storage", "storage": "local-lvm", "node": "pve1", "status": "available",
                   "plugin": "lvmthin", "content": "images,rootdir", "used_gib": 50.0, "total_gib": 100.0})
        );
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(300), "5m");
        assert_eq!(human_duration(7_500), "2h 5m");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3_600 + 60), "3d 4h");
    }
}
