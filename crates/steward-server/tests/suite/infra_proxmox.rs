//! The infra agent and Proxmox VE end to end: a scripted model over the
//! OpenAI wire format, the engine with its policy and approval gate, the
//! Proxmox tools, and the fake Proxmox VE API of steward-integrations'
//! tests. Reads run at once; power actions wait for a person, then run
//! once and are followed to their task's end.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::tools::CurrentTime;
use steward_core::{
    AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, Redactor, SystemClock, ToolRegistry,
};
use steward_integrations::proxmox::{proxmox_tools, Proxmox, ProxmoxConfig, TaskWait};
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::Reply;

use super::Harness;

/// The same fake the integration tests of the Proxmox client use.
#[allow(dead_code)]
#[path = "../../../steward-integrations/tests/suite/fake_proxmox.rs"]
mod fake_proxmox;

use fake_proxmox::{FakeProxmox, TOKEN_ID, TOKEN_SECRET};

struct Infra {
    h: Harness,
    pve: FakeProxmox,
}

/// An engine whose infra agent talks to the fake Proxmox with `secret`;
/// the secret is one the redactor knows, as `serve` sets it up.
async fn infra(secret: &str, debug: bool) -> Infra {
    let dir = std::env::temp_dir().join(format!("steward-infra-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let (llm, scripted) = super::scripted_model().await;
    let pve = FakeProxmox::start().await;
    let proxmox = Arc::new(Proxmox::new(&ProxmoxConfig::new(&pve.url, TOKEN_ID, secret)).unwrap());
    let wait = TaskWait { interval: Duration::from_millis(10), timeout: Duration::from_secs(5) };
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    for tool in proxmox_tools(Some(proxmox), wait) {
        tools.register(tool);
    }
    let engine = Engine::with_options(
        EngineParts {
            llm: Arc::new(llm),
            store: store.clone(),
            tools,
            agents: AgentRegistry::builtin(),
            clock,
            limits: EngineLimits::default(),
        },
        Arc::new(steward_core::policy::StrictPolicy),
        EngineOptions { debug, redactor: Redactor::new([secret.to_string()]), ..EngineOptions::default() },
    );
    let state = AppState::new(engine, ServerSettings::default());
    Infra { h: Harness { app: app(state), llm: Some(scripted), store, dir }, pve }
}

impl Infra {
    async fn conversation(&self) -> String {
        let r = self.h.post_json("/api/conversations", json!({"agent": "infra"})).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// One streamed turn: its events as (name, data) pairs.
    async fn turn(&self, conversation: &str, content: &str) -> Vec<(String, Value)> {
        let r = self
            .h
            .post_json(&format!("/api/conversations/{conversation}/messages?stream=true"), json!({"content": content}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.sse_events()
    }

    async fn proposals(&self, query: &str) -> Vec<Value> {
        let v = self.h.get(&format!("/api/proposals{query}")).await.json();
        v["proposals"].as_array().or_else(|| v.as_array()).unwrap().clone()
    }

    async fn messages(&self, conversation: &str) -> Vec<Value> {
        self.h.get(&format!("/api/conversations/{conversation}")).await.json()["messages"].as_array().unwrap().clone()
    }
}

/// The text the person saw.
fn answer(events: &[(String, Value)]) -> String {
    events.iter().filter(|(n, _)| n == "text_delta").map(|(_, d)| d["delta"].as_str().unwrap()).collect()
}

/// The output of each tool the turn ran, by tool name.
fn results<'a>(events: &'a [(String, Value)], tool: &str) -> Vec<&'a Value> {
    events.iter().filter(|(n, d)| n == "tool_result" && d["name"] == tool).map(|(_, d)| d).collect()
}

#[tokio::test]
async fn the_infra_agent_lists_vms_then_shuts_one_down_once_a_person_approves() {
    let t = infra(TOKEN_SECRET, false).await;
    t.pve.set_running_polls(3);
    t.h.llm().push_all([
        Reply::tool_call("proxmox_list_vms", json!({}).to_string()),
        Reply::text("web (101) and dns (200) are running; db (102) is stopped."),
        Reply::tool_call("proxmox_shutdown_vm", json!({"vmid": 101, "timeout": 60}).to_string()),
    ]);
    let c = t.conversation().await;

    // Reading needs no approval.
    let events = t.turn(&c, "What runs on the Proxmox cluster?").await;
    let listed = results(&events, "proxmox_list_vms");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["ok"], true, "{}", listed[0]);
    let vms: Value = serde_json::from_str(listed[0]["output"].as_str().unwrap()).unwrap();
    assert_eq!(vms["vms"][0]["name"], "web");
    assert_eq!(vms["vms"][0]["status"], "running");
    assert_eq!(answer(&events), "web (101) and dns (200) are running; db (102) is stopped.");
    assert!(t.proposals("").await.is_empty());
    // The infra agent is offered every Proxmox tool.
    let offered: Vec<String> = t.h.llm().chat_requests()[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["function"]["name"].as_str().unwrap().to_string())
        .collect();
    for name in steward_integrations::proxmox::TOOL_NAMES {
        assert!(offered.iter().any(|o| o == name), "{name} not in {offered:?}");
    }

    // Shutting down waits for a person, previewing the VM and its state.
    let events = t.turn(&c, "Shut down web, please.").await;
    let pending = t.proposals("?status=pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let p = &pending[0];
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(
        (p["tool"].as_str(), p["agent"].as_str(), p["effect"].as_str()),
        (Some("proxmox_shutdown_vm"), Some("infra"), Some("mutate"))
    );
    assert_eq!(p["preview"]["summary"], "shut down VM 101 'web' on node pve1 (now running)");
    assert_eq!(p["preview"]["targets"], json!([{"id": "proxmox:pve1/qemu/101", "name": "web", "state": "running"}]));
    assert!(p["preview"]["details"].as_str().unwrap().contains("up to 60 s"), "{p}");
    assert!(events.iter().any(|(n, d)| n == "approval_requested" && d["approval"]["id"] == id.as_str()));
    let text = answer(&events);
    assert!(text.contains(&id) && text.contains("Reply 'approve'"), "{text}");
    assert!(t.pve.posts().is_empty(), "nothing is sent to Proxmox before a person says yes");
    assert_eq!(t.pve.status_of(101), "running");

    // Approved: sent once, followed to the end, the outcome reported.
    let events = t.turn(&c, "approve").await;
    let text = answer(&events);
    assert!(text.contains(&format!("Done ({id})")), "{text}");
    assert!(text.contains("\"exitstatus\":\"OK\"") && text.contains("\"now\":\"stopped\""), "{text}");
    let posts = t.pve.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        (posts[0].path.as_str(), posts[0].body.as_str()),
        ("/nodes/pve1/qemu/101/status/shutdown", "timeout=60")
    );
    assert_eq!(t.pve.status_reads(), 4, "three reads while running, one when stopped");
    assert_eq!(t.pve.status_of(101), "stopped");
    let decided = t.h.get(&format!("/api/proposals/{id}")).await.json();
    assert_eq!(decided["status"], "executed", "{decided}");
    let outcome: Value = serde_json::from_str(decided["outcome"].as_str().unwrap()).unwrap();
    assert_eq!(
        (outcome["exitstatus"].as_str(), outcome["was"].as_str(), outcome["now"].as_str()),
        (Some("OK"), Some("running"), Some("stopped"))
    );
    assert!(outcome["upid"].as_str().unwrap().starts_with("UPID:pve1:"), "{outcome}");
    // The conversation holds the approved call and its result for later turns.
    let messages = t.messages(&c).await;
    assert!(messages.iter().any(|m| m["tool_call_id"] == format!("{id}_run")
        && m["content"].as_str().unwrap().contains("approved by user:local and executed")));
    // Saying it again runs nothing more.
    t.turn(&c, "approve").await;
    assert_eq!(t.pve.posts().len(), 1);
    assert_eq!(t.h.llm().chat_requests().len(), 3, "approving needs no model");
}

#[tokio::test]
async fn stopping_a_vm_pulls_the_plug_and_can_only_be_approved_once() {
    let t = infra(TOKEN_SECRET, false).await;
    t.h.llm().push(Reply::tool_call("proxmox_stop_vm", json!({"vmid": 200}).to_string()));
    let c = t.conversation().await;
    t.turn(&c, "The dns container hangs, stop it hard.").await;
    let pending = t.proposals("?status=pending").await;
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["effect"], "destructive");
    assert_eq!(
        p["preview"]["summary"],
        "stop container 200 'dns' on node pve2 (now running) — pulls the plug: unsaved data in the guest is lost"
    );
    assert!(p["preview"]["details"].as_str().unwrap().contains("Unsaved data in the guest is lost"), "{p}");

    // Destructive: no "for the rest of the conversation".
    let events = t.turn(&c, "approve always").await;
    let text = answer(&events);
    assert!(text.contains("can only be approved once"), "{text}");
    assert!(t.pve.posts().is_empty());
    assert_eq!(t.proposals("?status=pending").await.len(), 1);

    let events = t.turn(&c, "approve").await;
    assert!(answer(&events).contains(&format!("Done ({id})")), "{}", answer(&events));
    let posts = t.pve.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/nodes/pve2/lxc/200/status/stop");
    assert_eq!(t.pve.status_of(200), "stopped");
}

#[tokio::test]
async fn a_failed_task_reaches_the_person_with_its_exit_status() {
    let t = infra(TOKEN_SECRET, false).await;
    t.pve.fail_next_task("start failed: QEMU exited with code 1");
    t.h.llm().push(Reply::tool_call("proxmox_start_vm", json!({"vmid": 102}).to_string()));
    let c = t.conversation().await;
    t.turn(&c, "start db").await;
    let id = t.proposals("?status=pending").await[0]["id"].as_str().unwrap().to_string();
    let text = answer(&t.turn(&c, "approve").await);
    assert!(text.contains(&format!("Failed ({id})")), "{text}");
    assert!(text.contains("start failed: QEMU exited with code 1"), "{text}");
    let decided = t.h.get(&format!("/api/proposals/{id}")).await.json();
    assert_eq!(decided["status"], "failed");
    assert!(decided["outcome"].as_str().unwrap().contains("TASK ERROR"), "{decided}");
    assert_eq!(t.pve.posts().len(), 1);
    assert_eq!(t.pve.status_of(102), "stopped");
}

#[tokio::test]
async fn a_refused_token_is_a_clear_error_and_its_secret_appears_nowhere() {
    let wrong = "0badf00d-1111-2222-3333-444455556666";
    // Debug mode streams every tool's input and output: the hardest place
    // for a secret to stay out of.
    let t = infra(wrong, true).await;
    t.h.llm().push_all([
        Reply::tool_call("proxmox_list_vms", json!({}).to_string()),
        Reply::text("Proxmox refused Steward's API token; check its id and secret."),
        Reply::tool_call("proxmox_stop_vm", json!({"vmid": 101}).to_string()),
    ]);
    let c = t.conversation().await;
    let mut all = t.turn(&c, "list the VMs").await;
    let listed = results(&all, "proxmox_list_vms");
    assert_eq!(listed[0]["ok"], false);
    let output = listed[0]["output"].as_str().unwrap();
    assert!(output.starts_with("error: Proxmox at http://127.0.0.1:"), "{output}");
    assert!(output.contains(&format!("refused the API token {TOKEN_ID} (401)")), "{output}");
    assert!(output.contains("check token id and secret"), "{output}");
    // The model was told the same.
    let requests = t.h.llm().chat_requests();
    let told = requests[1]["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap().clone();
    assert!(told["content"].as_str().unwrap().contains("(401)"), "{told}");

    // A power action on a refused token: the preview could not read the
    // VM, so the person is told that; approving still fails cleanly.
    all.extend(t.turn(&c, "stop web").await);
    let pending = t.proposals("?status=pending").await;
    assert_eq!(pending.len(), 1);
    assert!(pending[0]["preview"]["summary"].as_str().unwrap().contains("(401)"), "{}", pending[0]);
    all.extend(t.turn(&c, "approve").await);
    assert!(t.pve.posts().is_empty());
    assert_eq!(t.proposals("?status=failed").await.len(), 1);

    // The header carried it, and nothing else anywhere did.
    assert!(t
        .pve
        .seen()
        .iter()
        .all(|s| s.authorization.as_deref() == Some(format!("PVEAPIToken={TOKEN_ID}={wrong}").as_str())));
    let events = serde_json::to_string(&all).unwrap();
    assert!(events.contains("tool_debug"), "debug mode was on");
    let messages = serde_json::to_string(&t.messages(&c).await).unwrap();
    let proposals = serde_json::to_string(&t.proposals("").await).unwrap();
    let audit = t.h.get("/api/audit?limit=1000").await.text();
    let sent_to_model = serde_json::to_string(&t.h.llm().chat_requests()).unwrap();
    for (what, text) in [
        ("events", &events),
        ("messages", &messages),
        ("proposals", &proposals),
        ("audit", &audit),
        ("model", &sent_to_model),
    ] {
        assert!(!text.contains(wrong), "the secret leaked into the {what}: {text}");
        assert!(!text.contains(TOKEN_SECRET), "{what}");
    }
}
