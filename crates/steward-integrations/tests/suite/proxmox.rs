//! The Proxmox client and tools against the fake Proxmox VE API: the
//! documented reply shapes, power actions followed to their task's end,
//! and each way the API (or whatever answers in its place) can fail.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::{Tool, ToolContext, ToolError};
use steward_integrations::proxmox::{
    proxmox_tools, Proxmox, ProxmoxConfig, ProxmoxError, TaskWait, NOT_CONFIGURED, TOOL_NAMES,
};
use steward_protocol::approval::{Preview, PreviewTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::fake_ha::{closed_port, html_server, silent_server};
use super::fake_proxmox::{FakeProxmox, TOKEN_ID, TOKEN_SECRET};

fn client(url: &str) -> Arc<Proxmox> {
    Arc::new(Proxmox::new(&ProxmoxConfig::new(url, TOKEN_ID, TOKEN_SECRET)).unwrap())
}

/// Tasks followed every 10 ms, for at most 5 s.
fn fast() -> TaskWait {
    TaskWait { interval: Duration::from_millis(10), timeout: Duration::from_secs(5) }
}

struct Tools(BTreeMap<String, Arc<dyn Tool>>);

impl Tools {
    fn over(client: Option<Arc<Proxmox>>, wait: TaskWait) -> Tools {
        Tools(proxmox_tools(client, wait).into_iter().map(|t| (t.spec().name.clone(), t)).collect())
    }

    async fn call(&self, name: &str, args: Value) -> Result<Value, ToolError> {
        let out = self.0[name].call(args, &ctx()).await?;
        Ok(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name} did not answer JSON ({e}): {out}")))
    }

    async fn preview(&self, name: &str, args: Value) -> Result<Preview, ToolError> {
        self.0[name].preview(&args, &ctx()).await
    }
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "turn_1".into(),
        conversation_id: "conv_1".into(),
        agent: "infra".into(),
        call_id: "call_1".into(),
        approval: None,
        progress: None,
    }
}

fn vmids(list: &Value) -> Vec<u64> {
    list["vms"].as_array().unwrap().iter().map(|v| v["vmid"].as_u64().unwrap()).collect()
}

fn failed(r: Result<Value, ToolError>) -> String {
    match r {
        Err(ToolError::Failed(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn invalid<T: std::fmt::Debug>(r: Result<T, ToolError>) -> String {
    match r {
        Err(ToolError::InvalidArguments(m)) => m,
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

/// A server that answers every request with `status_line` and `body`.
async fn answering(status_line: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status_line}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n\
Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn reads_send_the_token_header_and_read_the_documented_shapes() {
    let pve = FakeProxmox::start().await;
    let tools = Tools::over(Some(client(&pve.url)), fast());

    let nodes = tools.call("proxmox_list_nodes", json!({})).await.unwrap();
    assert_eq!(
        nodes["nodes"][0],
        json!({"node": "pve1", "status": "online", "cpu_pct": 7.3, "cores": 16, "mem_used_mib": 24576,
               "mem_total_mib": 65536, "uptime": "15d 0h"})
    );
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 2);

    // The whole cluster in one request, VMs and containers alike.
    let all = tools.call("proxmox_list_vms", json!({})).await.unwrap();
    assert_eq!(all["count"], 4);
    assert_eq!(vmids(&all), [101, 102, 200, 9000]);
    assert_eq!(
        all["vms"][0],
        json!({"vmid": 101, "name": "web", "type": "qemu", "node": "pve1", "status": "running", "cpu_pct": 3.4,
               "cores": 4, "mem_used_mib": 2048, "mem_total_mib": 4096, "uptime": "1d 2h"})
    );
    assert_eq!(all["vms"][2]["type"], "lxc");
    assert_eq!(all["vms"][3]["template"], true);
    assert_eq!(pve.seen().last().unwrap().path, "/cluster/resources");
    assert_eq!(pve.seen().last().unwrap().query, "type=vm");

    // One node: its QEMU and LXC lists (the container's vmid comes as a string).
    let on_pve2 = tools.call("proxmox_list_vms", json!({"node": "pve2"})).await.unwrap();
    assert_eq!(vmids(&on_pve2), [200, 9000]);
    let paths: Vec<String> = pve.seen().iter().rev().take(2).map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/nodes/pve2/lxc", "/nodes/pve2/qemu"]);

    let running_vms = tools.call("proxmox_list_vms", json!({"type": "qemu", "status": "running"})).await.unwrap();
    assert_eq!(vmids(&running_vms), [101]);
    let e = invalid(tools.call("proxmox_list_vms", json!({"type": "docker"})).await);
    assert!(e.contains("qemu, lxc"), "{e}");

    // Every request carried the token, exactly as Proxmox wants it.
    let expected = format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}");
    assert!(pve.seen().iter().all(|s| s.authorization.as_deref() == Some(expected.as_str())), "{:?}", pve.seen());
    assert!(pve.posts().is_empty());
}

#[tokio::test]
async fn vm_status_finds_the_node_and_type_itself() {
    let pve = FakeProxmox::start().await;
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let dns = tools.call("proxmox_vm_status", json!({"vmid": 200})).await.unwrap();
    assert_eq!(
        (dns["name"].as_str(), dns["type"].as_str(), dns["node"].as_str(), dns["status"].as_str()),
        (Some("dns"), Some("lxc"), Some("pve2"), Some("running"))
    );
    let paths: Vec<String> = pve.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/cluster/resources", "/nodes/pve2/lxc/200/status/current"]);

    let web = tools.call("proxmox_vm_status", json!({"vmid": "101", "node": "pve1"})).await.unwrap();
    assert_eq!((web["type"].as_str(), web["status"].as_str()), (Some("qemu"), Some("running")));
    assert_eq!(pve.seen().last().unwrap().path, "/nodes/pve1/qemu/101/status/current");

    let e = invalid(tools.call("proxmox_vm_status", json!({"vmid": 999})).await);
    assert!(e.contains("no VM or container 999") && e.contains("proxmox_list_vms"), "{e}");
    let e = invalid(tools.call("proxmox_vm_status", json!({"vmid": 101, "node": "pve2"})).await);
    assert!(e.contains("node pve2 has no VM or container 101"), "{e}");
    let e = invalid(tools.call("proxmox_vm_status", json!({"vmid": 42})).await);
    assert!(e.contains("from 100 to 999999999"), "{e}");
    // A node Proxmox does not know is Proxmox's own error, quoted.
    let e = failed(tools.call("proxmox_list_vms", json!({"node": "pve9"})).await);
    assert!(e.contains("HTTP 500") && e.contains("hostname lookup 'pve9' failed"), "{e}");
}

#[tokio::test]
async fn cluster_resources_are_compact_and_filtered_by_type() {
    let pve = FakeProxmox::start().await;
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let storage = tools.call("proxmox_cluster_resources", json!({"type": "storage"})).await.unwrap();
    assert_eq!(
        storage["resources"],
        json!([{"type": "storage", "storage": "local-lvm", "node": "pve1", "status": "available",
                "plugin": "lvmthin", "content": "images,rootdir", "used_gib": 120.0, "total_gib": 400.0}])
    );
    let all = tools.call("proxmox_cluster_resources", json!({})).await.unwrap();
    let kinds: Vec<&str> = all["resources"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["node", "node", "qemu", "qemu", "lxc", "qemu", "storage"]);
    assert!(!all.to_string().contains("ssl_fingerprint"));
    assert!(invalid(tools.call("proxmox_cluster_resources", json!({"type": "pool"})).await).contains("vm, node"));
}

#[tokio::test]
async fn starting_a_vm_follows_its_task_until_it_stops_ok() {
    let pve = FakeProxmox::start().await;
    pve.set_running_polls(3);
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let out = tools.call("proxmox_start_vm", json!({"vmid": 102})).await.unwrap();
    assert_eq!(out["done"], "start");
    assert_eq!(out["exitstatus"], "OK");
    assert_eq!((out["was"].as_str(), out["now"].as_str()), (Some("stopped"), Some("running")));
    assert_eq!(out["id"], "proxmox:pve1/qemu/102");
    assert!(out["upid"].as_str().unwrap().starts_with("UPID:pve1:"), "{out}");
    assert!(out["upid"].as_str().unwrap().contains(":qmstart:102:"), "{out}");
    // Sent once; followed until Proxmox said it stopped (three running reads, then stopped).
    let posts = pve.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/nodes/pve1/qemu/102/status/start");
    assert_eq!(posts[0].body, "");
    assert_eq!(pve.status_reads(), 4);
    assert_eq!(pve.status_of(102), "running");
}

#[tokio::test]
async fn a_shutdown_passes_the_guests_timeout_and_a_container_takes_its_own_path() {
    let pve = FakeProxmox::start().await;
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let out = tools.call("proxmox_shutdown_vm", json!({"vmid": 200, "timeout": 45})).await.unwrap();
    assert_eq!((out["done"].as_str(), out["now"].as_str()), (Some("shutdown"), Some("stopped")));
    assert!(out["upid"].as_str().unwrap().contains(":vzshutdown:200:"), "{out}");
    let posts = pve.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!((posts[0].path.as_str(), posts[0].body.as_str()), ("/nodes/pve2/lxc/200/status/shutdown", "timeout=45"));
    let e = invalid(tools.call("proxmox_shutdown_vm", json!({"vmid": 101, "timeout": 3600})).await);
    assert!(e.contains("from 1 to 600"), "{e}");
    let e = invalid(tools.call("proxmox_stop_vm", json!({"vmid": 101, "timeout": 30})).await);
    assert!(e.contains("unknown argument `timeout`"), "{e}");
    assert_eq!(pve.posts().len(), 1);
}

#[tokio::test]
async fn a_failed_task_is_an_error_with_its_exit_status_and_last_log_lines() {
    let pve = FakeProxmox::start().await;
    let exit = "command 'qm start 102 --skiplock' failed: exit code 1";
    pve.fail_next_task(exit);
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let e = failed(tools.call("proxmox_start_vm", json!({"vmid": 102})).await);
    assert!(e.starts_with("Proxmox could not start VM 102 'db' on node pve1"), "{e}");
    assert!(e.contains(&format!("ended with \"{exit}\"")), "{e}");
    assert!(e.contains("UPID:pve1:") && e.contains("Last log lines:") && e.contains(&format!("TASK ERROR: {exit}")));
    assert_eq!(pve.posts().len(), 1, "a failed task is not sent again");
    assert_eq!(pve.status_of(102), "stopped");
}

#[tokio::test]
async fn a_task_that_never_stops_is_reported_with_its_upid() {
    let pve = FakeProxmox::start().await;
    pve.set_running_polls(u32::MAX);
    let wait = TaskWait { interval: Duration::from_millis(10), timeout: Duration::from_millis(200) };
    let tools = Tools::over(Some(client(&pve.url)), wait);
    let e = failed(tools.call("proxmox_stop_vm", json!({"vmid": 101})).await);
    assert!(e.contains("still running after") && e.contains("UPID:pve1:") && e.contains("qmstop"), "{e}");
    assert!(e.contains("proxmox_task_status") && e.contains("do not send the action again"), "{e}");
    assert_eq!(pve.posts().len(), 1);
    assert!(pve.status_reads() >= 2);
}

#[tokio::test]
async fn task_status_reports_the_exit_status_and_the_end_of_the_log() {
    let pve = FakeProxmox::start().await;
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let started = tools.call("proxmox_start_vm", json!({"vmid": 102})).await.unwrap();
    let upid = started["upid"].as_str().unwrap();
    let task = tools.call("proxmox_task_status", json!({"upid": upid})).await.unwrap();
    assert_eq!(
        (task["status"].as_str(), task["exitstatus"].as_str(), task["ok"].as_bool()),
        (Some("stopped"), Some("OK"), Some(true))
    );
    assert_eq!(
        (task["node"].as_str(), task["type"].as_str(), task["id"].as_str()),
        (Some("pve1"), Some("qmstart"), Some("102"))
    );
    assert_eq!(task["user"], TOKEN_ID);
    assert_eq!(task["log"].as_array().unwrap().last().unwrap(), "TASK OK");
    assert_eq!(task["log"].as_array().unwrap().len(), 4);
    let last = tools.call("proxmox_task_status", json!({"upid": upid, "lines": 1})).await.unwrap();
    assert_eq!(last["log"], json!(["TASK OK"]));
    let e = invalid(tools.call("proxmox_task_status", json!({"upid": "qmstart-102"})).await);
    assert!(e.contains("not a Proxmox task id"), "{e}");
}

#[tokio::test]
async fn previews_name_the_guest_its_node_and_state_and_change_nothing() {
    let pve = FakeProxmox::start().await;
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let start = tools.preview("proxmox_start_vm", json!({"vmid": 102})).await.unwrap();
    assert_eq!(start.summary, "start VM 102 'db' on node pve1 (now stopped)");
    assert_eq!(
        start.targets,
        [PreviewTarget { id: "proxmox:pve1/qemu/102".into(), name: Some("db".into()), state: Some("stopped".into()) }]
    );
    assert_eq!(start.details, None);

    let shutdown = tools.preview("proxmox_shutdown_vm", json!({"vmid": 200, "timeout": 30})).await.unwrap();
    assert_eq!(shutdown.summary, "shut down container 200 'dns' on node pve2 (now running)");
    assert!(shutdown.details.as_deref().unwrap().contains("up to 30 s"), "{shutdown:?}");

    let stop = tools.preview("proxmox_stop_vm", json!({"vmid": 101})).await.unwrap();
    assert_eq!(
        stop.summary,
        "stop VM 101 'web' on node pve1 (now running) — pulls the plug: unsaved data in the guest is lost"
    );
    assert!(stop.details.as_deref().unwrap().contains("proxmox_shutdown_vm"), "{stop:?}");

    // Nothing to approve when it would change nothing, or cannot run.
    let e = invalid(tools.preview("proxmox_start_vm", json!({"vmid": 101})).await);
    assert_eq!(e, "VM 101 'web' is already running; there is nothing to start");
    let e = invalid(tools.preview("proxmox_shutdown_vm", json!({"vmid": 102})).await);
    assert!(e.contains("already stopped"), "{e}");
    let e = invalid(tools.preview("proxmox_start_vm", json!({"vmid": 9000})).await);
    assert!(e.contains("is a template"), "{e}");
    assert!(pve.posts().is_empty(), "previews only read");

    // Run anyway (the state changed after the approval): nothing is sent.
    let out = tools.call("proxmox_start_vm", json!({"vmid": 101})).await.unwrap();
    assert_eq!(out["done"], false);
    assert!(out["note"].as_str().unwrap().contains("nothing was sent"), "{out}");
    assert!(pve.posts().is_empty());
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_a_clear_message_that_never_holds_the_secret() {
    let pve = FakeProxmox::start().await;
    let wrong = "0badf00d-1111-2222-3333-444455556666";
    let proxmox = Arc::new(Proxmox::new(&ProxmoxConfig::new(&pve.url, TOKEN_ID, wrong)).unwrap());
    let e = proxmox.version().await.unwrap_err();
    assert_eq!(e, ProxmoxError::Unauthorized { url: pve.url.clone(), token_id: TOKEN_ID.into() });
    let tools = Tools::over(Some(proxmox), fast());
    let e = failed(tools.call("proxmox_list_vms", json!({})).await);
    assert!(e.contains(&format!("refused the API token {TOKEN_ID} (401)")), "{e}");
    assert!(e.contains("check token id and secret") && e.contains("VM.PowerMgmt, Sys.Audit"), "{e}");
    assert!(!e.contains(wrong) && !e.contains(TOKEN_SECRET), "{e}");
    // The header was sent exactly as Proxmox expects it; the fake refused its secret.
    let sent = pve.seen()[0].authorization.clone().unwrap();
    assert_eq!(sent, format!("PVEAPIToken={TOKEN_ID}={wrong}"));
    // A power action cannot get as far as a POST.
    let e = failed(tools.call("proxmox_stop_vm", json!({"vmid": 101})).await);
    assert!(e.contains("(401)"), "{e}");
    assert!(pve.posts().is_empty());
}

#[tokio::test]
async fn a_missing_privilege_is_a_403_that_names_it() {
    let pve = FakeProxmox::start().await;
    pve.forbid_power();
    let tools = Tools::over(Some(client(&pve.url)), fast());
    let e = failed(tools.call("proxmox_stop_vm", json!({"vmid": 101})).await);
    assert!(e.contains("Proxmox denied the request to stop VM 101 'web' on node pve1 (403"), "{e}");
    assert!(e.contains("Permission check failed (/vms/101, VM.PowerMgmt)"), "{e}");
    assert!(e.contains("privilege separation"), "{e}");
    assert_eq!(pve.status_of(101), "running");
}

#[tokio::test]
async fn older_proxmox_releases_give_the_error_in_the_reason_phrase() {
    let url = answering("500 VM 102 is locked (backup)", r#"{"data":null}"#).await;
    let e = client(&url).version().await.unwrap_err();
    assert_eq!(
        e,
        ProxmoxError::Api {
            what: "the version check".into(),
            status: 500,
            message: "VM 102 is locked (backup)".into()
        }
    );
    let url =
        answering("400 Parameter verification failed.", r#"{"data":null,"errors":{"vmid":"invalid format"}}"#).await;
    let e = client(&url).version().await.unwrap_err().to_string();
    assert!(e.contains("HTTP 400): Parameter verification failed.; vmid: invalid format"), "{e}");
}

#[tokio::test]
async fn an_html_page_is_not_mistaken_for_proxmox() {
    let url = html_server().await;
    let e = client(&url).version().await.unwrap_err();
    let ProxmoxError::UnexpectedReply { detail, .. } = &e else { panic!("{e:?}") };
    assert!(detail.contains("an HTML page") && detail.contains("Router login"), "{detail}");
    assert!(e.to_string().contains("check that the URL points at Proxmox VE"), "{e}");
    let url = answering("200 OK", r#"{"version": "8.2.4"}"#).await;
    let e = client(&url).version().await.unwrap_err().to_string();
    assert!(e.contains("not the API's JSON"), "{e}");
}

#[tokio::test]
async fn an_unreachable_port_is_reported_with_its_url() {
    let url = closed_port().await;
    let e = client(&url).version().await.unwrap_err();
    assert!(matches!(e, ProxmoxError::Unreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("cannot reach Proxmox at {url}")), "{text}");
    assert!(text.contains("8006") && !text.contains(TOKEN_SECRET), "{text}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let url = silent_server().await;
    let mut config = ProxmoxConfig::new(&url, TOKEN_ID, TOKEN_SECRET);
    config.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let e = Proxmox::new(&config).unwrap().version().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(e, ProxmoxError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("did not answer the version check within 0.3 s"), "{e}");
    assert!(e.to_string().contains("timeout_secs"), "{e}");
}

#[tokio::test]
async fn without_configuration_every_tool_says_how_to_configure_it() {
    let tools = Tools::over(None, fast());
    for name in TOOL_NAMES {
        let args = if name == "proxmox_task_status" {
            json!({"upid": "UPID:pve1:0000C5A3:0047B2E1:65F3A1B2:qmstart:101:root@pam:"})
        } else {
            json!({"vmid": 101})
        };
        let e = tools.0[name].call(args, &ctx()).await.unwrap_err();
        assert_eq!(e, ToolError::Failed(NOT_CONFIGURED.into()), "{name}");
    }
    assert!(NOT_CONFIGURED.contains("PROXMOX_URL / PROXMOX_TOKEN_ID / PROXMOX_TOKEN_SECRET"));
    // No approval is asked for what could never run.
    let e = invalid(tools.preview("proxmox_stop_vm", json!({"vmid": 101})).await);
    assert_eq!(e, NOT_CONFIGURED);
}

/// Runs `openssl` with `args` in `dir`; false when it is not installed.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) => {
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("cannot run openssl: {e}"),
    }
}

#[tokio::test]
async fn tls_is_verified_against_the_configured_ca_or_explicitly_not_at_all() {
    // A cluster CA and a server certificate it signed, as Proxmox VE makes
    // them, served by `openssl s_server` answering /api2/json/version.
    let dir = std::env::temp_dir().join(format!("steward-pve-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("www/api2/json")).unwrap();
    let ca = [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "pve-root-ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Proxmox Virtual Environment",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    if !openssl(&dir, &ca) {
        eprintln!("openssl is not installed: the TLS test cannot run here");
        return;
    }
    openssl(
        &dir,
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "pve-ssl.key", "-out", "pve-ssl.csr", "-subj", "/CN=pve1"],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "pve-ssl.csr",
            "-CA",
            "pve-root-ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "pve-ssl.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    std::fs::write(
        dir.join("www/api2/json/version"),
        "HTTP/1.0 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n\r\n{\"data\":{\"version\":\"8.2.4\",\"release\":\"8.2\"}}",
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let _server = tokio::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-HTTP", "-accept", &format!("127.0.0.1:{port}")])
        .args(["-cert", "../pve-ssl.pem", "-key", "../pve-ssl.key"])
        .current_dir(dir.join("www"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("https://127.0.0.1:{port}");
    let with = |ca: Option<&str>, insecure: bool| {
        let mut c = ProxmoxConfig::new(&url, TOKEN_ID, TOKEN_SECRET);
        c.ca_cert = ca.map(|f| dir.join(f));
        c.insecure_tls = insecure;
        Proxmox::new(&c).unwrap()
    };

    // No public root knows the cluster's CA.
    let e = with(None, false).version().await.unwrap_err();
    let ProxmoxError::Unreachable { reason, hint, .. } = &e else { panic!("{e:?}") };
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    assert!(hint.contains("ca_cert") && hint.contains("pve-root-ca.pem") && hint.contains("insecure_tls"), "{hint}");
    // With it, the certificate is verified and accepted.
    assert_eq!(with(Some("pve-root-ca.pem"), false).version().await.unwrap(), "8.2.4");
    // Another CA is not enough.
    let e = with(Some("pve-ssl.pem"), false).version().await.unwrap_err();
    assert!(matches!(e, ProxmoxError::Unreachable { .. }), "{e:?}");
    // Or verification is turned off, explicitly.
    assert_eq!(with(None, true).version().await.unwrap(), "8.2.4");
    let _ = std::fs::remove_dir_all(&dir);
}
