//! A fake Proxmox VE API: no real Proxmox can run here, so this serves the
//! documented response shapes (`{"data": …}` envelopes, UPIDs, tasks that
//! run for a few status reads and then stop with `OK` or an error, 401 for
//! a wrong token, 403 and 500 with Proxmox VE 9's `message`) over a small
//! two-node cluster, and records every request it gets.
//!
//! steward-server's tests compile this same file (through `#[path]`), so it
//! uses nothing but axum, tokio and serde_json.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TOKEN_ID: &str = "steward@pve!infra";
pub const TOKEN_SECRET: &str = "8c1e52f0-3d7a-4b9e-a6c2-5f0d9e7b1a34";

const GIB: u64 = 1024 * 1024 * 1024;

/// One request the fake got.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Below `/api2/json`, decoded: `/nodes/pve1/qemu`.
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// A guest of the fake cluster.
#[derive(Debug, Clone)]
pub struct FakeGuest {
    pub vmid: u32,
    pub name: &'static str,
    /// `qemu` or `lxc`.
    pub kind: &'static str,
    pub node: &'static str,
    pub status: String,
    pub template: bool,
}

struct Task {
    upid: String,
    node: String,
    kind: String,
    vmid: u32,
    /// Status reads it still answers `running` to.
    polls_left: u32,
    exit: String,
    log: Vec<String>,
    /// The guest's status once the task has stopped well.
    then: Option<String>,
}

struct Inner {
    guests: Vec<FakeGuest>,
    tasks: Vec<Task>,
    seen: Vec<Seen>,
    running_polls: u32,
    fail_next: Option<String>,
    forbid_power: bool,
    next_pid: u32,
}

/// The fake, listening on a loopback port until dropped.
pub struct FakeProxmox {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::AbortHandle,
}

impl Drop for FakeProxmox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn guest(vmid: u32, name: &'static str, kind: &'static str, node: &'static str, status: &str) -> FakeGuest {
    FakeGuest { vmid, name, kind, node, status: status.into(), template: false }
}

impl FakeProxmox {
    /// Two nodes: pve1 with VMs 101 `web` (running) and 102 `db`
    /// (stopped); pve2 with container 200 `dns` (running) and template
    /// 9000 `debian-tmpl`. A task runs for two status reads.
    pub async fn start() -> FakeProxmox {
        let mut template = guest(9000, "debian-tmpl", "qemu", "pve2", "stopped");
        template.template = true;
        let inner = Arc::new(Mutex::new(Inner {
            guests: vec![
                guest(101, "web", "qemu", "pve1", "running"),
                guest(102, "db", "qemu", "pve1", "stopped"),
                guest(200, "dns", "lxc", "pve2", "running"),
                template,
            ],
            tasks: Vec::new(),
            seen: Vec::new(),
            running_polls: 2,
            fail_next: None,
            forbid_power: false,
            next_pid: 0x0000_C5A3,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
        .abort_handle();
        FakeProxmox { url, inner, server }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// The POSTs it got: the power actions.
    pub fn posts(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == "POST").collect()
    }

    /// How often a task's status was read.
    pub fn status_reads(&self) -> usize {
        self.seen().iter().filter(|s| s.path.contains("/tasks/") && s.path.ends_with("/status")).count()
    }

    /// Tasks started from now on answer `running` to this many status reads.
    pub fn set_running_polls(&self, n: u32) {
        self.inner.lock().unwrap().running_polls = n;
    }

    /// The next task ends with this exit status instead of `OK`.
    pub fn fail_next_task(&self, exit_status: &str) {
        self.inner.lock().unwrap().fail_next = Some(exit_status.into());
    }

    /// Power actions are refused with 403, as for a token without VM.PowerMgmt.
    pub fn forbid_power(&self) {
        self.inner.lock().unwrap().forbid_power = true;
    }

    pub fn status_of(&self, vmid: u32) -> String {
        self.inner.lock().unwrap().guests.iter().find(|g| g.vmid == vmid).map(|g| g.status.clone()).unwrap()
    }
}

fn ok(data: Value) -> Response {
    Json(json!({"data": data})).into_response()
}

/// An error as Proxmox VE 9 sends it (older releases put the message only
/// in the reason phrase).
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"data": null, "message": format!("{message}\n")}))).into_response()
}

fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_map(query: &str) -> HashMap<String, String> {
    query.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn list_entry(g: &FakeGuest) -> Value {
    let running = g.status == "running";
    let mut v = json!({
        "vmid": g.vmid,
        "name": g.name,
        "status": g.status,
        "cpu": if running { 0.0342 } else { 0.0 },
        "cpus": 4,
        "mem": if running { 2 * GIB } else { 0 },
        "maxmem": 4 * GIB,
        "uptime": if running { 93_784 } else { 0 },
        "disk": 0,
        "maxdisk": 32 * GIB,
    });
    if g.kind == "lxc" {
        // Containers' lists carry the vmid as a string and say their type.
        v["vmid"] = json!(g.vmid.to_string());
        v["type"] = json!("lxc");
    }
    if g.template {
        v["template"] = json!(1);
    }
    v
}

fn resource_entry(g: &FakeGuest) -> Value {
    let mut v = list_entry(g);
    let o = v.as_object_mut().unwrap();
    o.remove("cpus");
    o.insert("vmid".into(), json!(g.vmid));
    o.insert("id".into(), json!(format!("{}/{}", g.kind, g.vmid)));
    o.insert("type".into(), json!(g.kind));
    o.insert("node".into(), json!(g.node));
    o.insert("maxcpu".into(), json!(4));
    o.insert("template".into(), json!(u8::from(g.template)));
    v
}

fn node_entries() -> Vec<Value> {
    ["pve1", "pve2"]
        .iter()
        .map(|n| {
            json!({"node": n, "id": format!("node/{n}"), "type": "node", "status": "online", "level": "",
                   "cpu": 0.0731, "maxcpu": 16, "mem": 24 * GIB, "maxmem": 64 * GIB, "uptime": 1_296_000,
                   "ssl_fingerprint": "3E:1F:AA:00"})
        })
        .collect()
}

fn storage_entries() -> Vec<Value> {
    vec![json!({"id": "storage/pve1/local-lvm", "type": "storage", "storage": "local-lvm", "node": "pve1",
                "status": "available", "disk": 120 * GIB, "maxdisk": 400 * GIB, "plugintype": "lvmthin",
                "content": "images,rootdir", "shared": 0})]
}

fn task_json(t: &Task, stopped: bool) -> Value {
    let parts: Vec<&str> = t.upid.split(':').collect();
    let mut v = json!({
        "upid": t.upid, "node": t.node, "pid": i64::from_str_radix(parts[2], 16).unwrap(),
        "pstart": i64::from_str_radix(parts[3], 16).unwrap(), "starttime": i64::from_str_radix(parts[4], 16).unwrap(),
        "type": parts[5], "id": parts[6], "user": TOKEN_ID, "tokenid": "infra",
        "status": if stopped { "stopped" } else { "running" },
    });
    if stopped {
        v["exitstatus"] = json!(t.exit);
    }
    v
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    let raw_path = uri.path().strip_prefix("/api2/json").unwrap_or("/not-the-api").to_string();
    let segments: Vec<String> = raw_path.trim_start_matches('/').split('/').map(decode).collect();
    let query = query_map(uri.query().unwrap_or_default());
    let mut s = inner.lock().unwrap();
    s.seen.push(Seen {
        method: method.to_string(),
        path: format!("/{}", segments.join("/")),
        query: uri.query().unwrap_or_default().to_string(),
        authorization: authorization.clone(),
        body,
    });
    if authorization.as_deref() != Some(format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}").as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"data": null}))).into_response();
    }
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["version"]) => ok(json!({"version": "8.2.4", "release": "8.2", "repoid": "faa83925"})),
        ("GET", ["nodes"]) => ok(Value::Array(node_entries())),
        ("GET", ["cluster", "resources"]) => {
            let guests: Vec<Value> = s.guests.iter().map(resource_entry).collect();
            let data = match query.get("type").map(String::as_str) {
                Some("vm") => guests,
                Some("node") => node_entries(),
                Some("storage") => storage_entries(),
                Some("sdn") => Vec::new(),
                Some(other) => {
                    return error(StatusCode::BAD_REQUEST, &format!("Parameter verification failed. type: {other}"))
                }
                None => node_entries().into_iter().chain(guests).chain(storage_entries()).collect(),
            };
            ok(Value::Array(data))
        }
        ("GET", ["nodes", node, kind @ ("qemu" | "lxc")]) => {
            if !["pve1", "pve2"].contains(node) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("hostname lookup '{node}' failed"));
            }
            let list: Vec<Value> =
                s.guests.iter().filter(|g| g.node == *node && g.kind == *kind).map(list_entry).collect();
            ok(Value::Array(list))
        }
        ("GET", ["nodes", node, kind @ ("qemu" | "lxc"), vmid, "status", "current"]) => {
            let Some(g) = s.guests.iter().find(|g| g.node == *node && g.kind == *kind && g.vmid.to_string() == *vmid)
            else {
                let dir = if *kind == "qemu" { "qemu-server" } else { "lxc" };
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("Configuration file 'nodes/{node}/{dir}/{vmid}.conf' does not exist"),
                );
            };
            let mut v = list_entry(g);
            v["vmid"] = json!(g.vmid);
            v["ha"] = json!({"managed": 0});
            if g.kind == "qemu" {
                v["qmpstatus"] = json!(g.status);
            }
            ok(v)
        }
        (
            "POST",
            ["nodes", node, kind @ ("qemu" | "lxc"), vmid, "status", action @ ("start" | "shutdown" | "stop")],
        ) => {
            let Some(g) = s.guests.iter().find(|g| g.node == *node && g.kind == *kind && g.vmid.to_string() == *vmid)
            else {
                return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("VM {vmid} does not exist"));
            };
            if s.forbid_power {
                return error(StatusCode::FORBIDDEN, &format!("Permission check failed (/vms/{vmid}, VM.PowerMgmt)"));
            }
            let vmid = g.vmid;
            s.next_pid += 1;
            let prefix = if *kind == "qemu" { "qm" } else { "vz" };
            let upid = format!(
                "UPID:{node}:{:08X}:{:08X}:{:08X}:{prefix}{action}:{vmid}:{TOKEN_ID}:",
                s.next_pid, 0x0047_B2E1, 0x65F3_A1B2
            );
            let exit = s.fail_next.take().unwrap_or_else(|| "OK".into());
            let mut log = vec![format!("{action} {kind} {vmid}"), "trying to acquire lock...".into(), " OK".into()];
            log.push(if exit == "OK" { "TASK OK".into() } else { format!("TASK ERROR: {exit}") });
            let then = (exit == "OK").then(|| if *action == "start" { "running" } else { "stopped" }.to_string());
            let polls_left = s.running_polls;
            s.tasks.push(Task {
                upid: upid.clone(),
                node: node.to_string(),
                kind: kind.to_string(),
                vmid,
                polls_left,
                exit,
                log,
                then,
            });
            ok(json!(upid))
        }
        ("GET", ["nodes", node, "tasks", upid, what @ ("status" | "log")]) => {
            let inner = &mut *s;
            let Some(task) = inner.tasks.iter_mut().find(|t| t.upid == *upid && t.node == *node) else {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "unable to parse worker upid");
            };
            if *what == "log" {
                let start: usize = query.get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
                let limit: usize = query.get("limit").and_then(|v| v.parse().ok()).unwrap_or(50);
                let shown = if task.polls_left > 0 { &task.log[..1] } else { &task.log[..] };
                let lines: Vec<Value> = shown
                    .iter()
                    .enumerate()
                    .skip(start)
                    .take(limit)
                    .map(|(i, t)| json!({"n": i + 1, "t": t}))
                    .collect();
                return Json(json!({"data": lines, "total": shown.len()})).into_response();
            }
            if task.polls_left > 0 {
                task.polls_left -= 1;
                return ok(task_json(task, false));
            }
            let reply = task_json(task, true);
            if let Some(status) = task.then.take() {
                let (kind, vmid) = (task.kind.clone(), task.vmid);
                if let Some(g) = inner.guests.iter_mut().find(|g| g.kind == kind && g.vmid == vmid) {
                    g.status = status;
                }
            }
            ok(reply)
        }
        _ => error(StatusCode::NOT_IMPLEMENTED, &format!("Method '{method} /{}' not implemented", segs.join("/"))),
    }
}
