//! The infra agent over SSH end to end, against the real sshd of
//! `scripts/sshd.sh`: a scripted model over the OpenAI wire format reads
//! `uptime` without anyone being asked; a command that changes something
//! waits for a person, with a preview naming host, user and command, and
//! runs once when they approve; a host whose key does not match known_hosts
//! is refused with a result that says so.
//!
//! Without `STEWARD_TEST_SSH_HOST`, `_PORT`, `_USER`, `_KEY` and
//! `_HOST_PUBKEY` these tests print why and pass, unless
//! `STEWARD_REQUIRE_SSH=1` (set by `scripts/test.sh`).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use steward_core::tools::CurrentTime;
use steward_core::{AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, SystemClock, ToolRegistry};
use steward_integrations::ssh::{ssh_tools, Ssh, SshConfig, SshHost};
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::Reply;

use super::Harness;

const REQUIRE_VAR: &str = "STEWARD_REQUIRE_SSH";

struct Server {
    host: String,
    port: u16,
    user: String,
    key: PathBuf,
    host_pubkey: String,
}

fn server() -> Option<Server> {
    let var = |name: &str| std::env::var(format!("STEWARD_TEST_SSH_{name}")).ok().filter(|v| !v.trim().is_empty());
    let found = (var("HOST"), var("PORT"), var("USER"), var("KEY"), var("HOST_PUBKEY"));
    let (Some(host), Some(port), Some(user), Some(key), Some(host_pubkey)) = found else {
        let why = "STEWARD_TEST_SSH_HOST, _PORT, _USER, _KEY and _HOST_PUBKEY are not all set (bash scripts/sshd.sh \
starts a server and writes them to .ci-state/sshd/env)";
        if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
            panic!("{REQUIRE_VAR}=1 but there is no SSH server: {why}");
        }
        eprintln!("skipping: no SSH server ({why}); set {REQUIRE_VAR}=1 to make this a failure");
        return None;
    };
    let port = port.parse().unwrap_or_else(|_| panic!("STEWARD_TEST_SSH_PORT={port} is not a port"));
    Some(Server { host, port, user, key: PathBuf::from(key), host_pubkey })
}

/// The server with the built-in agents, the SSH tools over the test sshd
/// (as host `lab`), the strict policy and a scripted model. `host_key` is
/// the key known_hosts holds for it.
async fn infra(server: &Server, host_key: &str) -> Harness {
    let dir = std::env::temp_dir().join(format!("steward-infra-ssh-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let (llm, scripted) = super::scripted_model().await;
    let known_hosts = dir.join("ssh").join("known_hosts");
    std::fs::create_dir_all(dir.join("ssh")).unwrap();
    std::fs::write(&known_hosts, format!("[{}]:{} {host_key}\n", server.host, server.port)).unwrap();
    let mut config = SshConfig::new(known_hosts);
    config.command_timeout_secs = 20;
    config.hosts.insert(
        "lab".into(),
        SshHost {
            host: server.host.clone(),
            port: server.port,
            user: server.user.clone(),
            identity_file: server.key.clone(),
        },
    );
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    for tool in ssh_tools(Arc::new(Ssh::new(config).unwrap())) {
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
        EngineOptions::default(),
    );
    let state = AppState::new(engine, ServerSettings::default());
    Harness { app: app(state), llm: Some(scripted), store, dir }
}

async fn conversation(h: &Harness) -> String {
    let r = h.post_json("/api/conversations", json!({"agent": "infra"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

async fn turn(h: &Harness, conversation: &str, content: &str) -> Vec<(String, Value)> {
    let r = h
        .post_json(&format!("/api/conversations/{conversation}/messages?stream=true"), json!({"content": content}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.sse_events()
}

fn answer(events: &[(String, Value)]) -> String {
    events.iter().filter(|(n, _)| n == "text_delta").map(|(_, d)| d["delta"].as_str().unwrap()).collect()
}

fn tool_results(events: &[(String, Value)]) -> Vec<&Value> {
    events.iter().filter(|(n, _)| n == "tool_result").map(|(_, d)| d).collect()
}

async fn proposals(h: &Harness, conversation: &str, status: &str) -> Vec<Value> {
    let list = h.get(&format!("/api/proposals?status={status}&conversation_id={conversation}")).await.json();
    list["proposals"].as_array().or_else(|| list.as_array()).unwrap().clone()
}

/// A file in /tmp no other run would name; removed when dropped. The
/// server runs on this machine, so what a command did shows here.
struct Marker(PathBuf);

impl Marker {
    fn new() -> Marker {
        Marker(PathBuf::from(format!("/tmp/steward-ssh-{}", uuid::Uuid::new_v4().simple())))
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A real public key that is not the server's (`ssh-ed25519 AAAA…`).
fn impostor_key() -> String {
    let dir = std::env::temp_dir().join(format!("steward-ssh-impostor-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) is needed for the SSH tests");
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn the_infra_agent_reads_uptime_without_asking() {
    let Some(server) = server() else { return };
    let h = infra(&server, &server.host_pubkey).await;
    h.llm().push_all([
        Reply::tool_call("ssh_run_readonly", json!({"host": "lab", "command": "uptime"}).to_string()),
        Reply::text("The lab host is up."),
    ]);
    let id = conversation(&h).await;
    let events = turn(&h, &id, "How long has the lab host been up?").await;

    // The infra agent is offered the SSH tools.
    let requests = h.llm().chat_requests();
    let offered: Vec<&str> =
        requests[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    for name in ["ssh_list_hosts", "ssh_run_readonly", "ssh_run"] {
        assert!(offered.contains(&name), "{offered:?}");
    }
    // It ran at once: no approval, and its output went back to the model.
    assert!(!events.iter().any(|(n, _)| n == "approval_requested"), "{events:?}");
    assert!(proposals(&h, &id, "pending").await.is_empty());
    let results = tool_results(&events);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(requests.len(), 2);
    let result = requests[1]["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap();
    let output: Value = serde_json::from_str(result["content"].as_str().unwrap()).unwrap();
    assert_eq!(output["exit_code"], 0, "{output}");
    assert!(output["stdout"].as_str().unwrap().contains("load average"), "{output}");
    assert_eq!(answer(&events), "The lab host is up.");
}

#[tokio::test]
async fn a_command_that_changes_something_waits_for_approval_and_runs_once() {
    let Some(server) = server() else { return };
    let h = infra(&server, &server.host_pubkey).await;
    let marker = Marker::new();
    // Appending shows how often it ran.
    let command = format!("echo restarted >> {}", marker.0.display());
    h.llm().push_all([Reply::tool_call("ssh_run", json!({"host": "lab", "command": command}).to_string())]);
    let id = conversation(&h).await;
    let events = turn(&h, &id, "Restart the backup job on the lab host").await;

    assert!(events.iter().any(|(n, _)| n == "approval_requested"), "{events:?}");
    let pending = proposals(&h, &id, "pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let approval = &pending[0];
    assert_eq!(approval["tool"], "ssh_run");
    assert_eq!(approval["agent"], "infra");
    let summary = approval["preview"]["summary"].as_str().unwrap();
    let user_at = format!("{}@{}:{}", server.user, server.host, server.port);
    assert_eq!(summary, format!("run `{command}` on SSH host lab as {} ({user_at})", server.user));
    assert_eq!(approval["preview"]["details"], command.as_str());
    assert_eq!(approval["preview"]["targets"][0]["id"], "ssh:lab");
    assert_eq!(approval["preview"]["targets"][0]["name"], user_at.as_str());
    assert!(answer(&events).contains(approval["id"].as_str().unwrap()), "{}", answer(&events));
    assert!(!marker.0.exists(), "the command ran before anyone approved it");

    let events = turn(&h, &id, "approve").await;
    assert_eq!(std::fs::read_to_string(&marker.0).unwrap(), "restarted\n", "it must run exactly once");
    let decided = h.get(&format!("/api/proposals/{}", approval["id"].as_str().unwrap())).await.json();
    assert_eq!(decided["status"], "executed", "{decided} / {}", answer(&events));
    assert_eq!(h.llm().chat_requests().len(), 1, "approving needs no model");

    // Approving again finds nothing to run.
    turn(&h, &id, "approve").await;
    assert_eq!(std::fs::read_to_string(&marker.0).unwrap(), "restarted\n");
}

#[tokio::test]
async fn a_host_key_mismatch_is_refused_with_a_clear_result() {
    let Some(server) = server() else { return };
    // A key known_hosts holds for the host, but not the one it has.
    let h = infra(&server, &impostor_key()).await;
    h.llm().push_all([
        Reply::tool_call("ssh_run_readonly", json!({"host": "lab", "command": "uptime"}).to_string()),
        Reply::text("I could not check the lab host: its host key does not match."),
    ]);
    let id = conversation(&h).await;
    let events = turn(&h, &id, "How is the lab host?").await;
    let results = tool_results(&events);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ok"], false);
    let output = results[0]["output"].as_str().unwrap();
    assert!(output.starts_with("error: the host key of `lab`"), "{output}");
    assert!(output.contains("does not match known_hosts"), "{output}");
    assert!(output.contains("someone may be intercepting the connection, or the host was reinstalled"), "{output}");
    assert!(output.contains("Nothing was run"), "{output}");
    // The model got the same words.
    let requests = h.llm().chat_requests();
    let result = requests[1]["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(result["content"], output);
}
