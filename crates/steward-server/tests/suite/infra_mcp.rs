//! The infra agent with real MCP servers (see scripts/mcp.sh), end to end:
//! a scripted model over the OpenAI wire format calls MCP tools through the
//! engine and its approval gate. A read-only tool runs at once; a file write
//! waits for a person, previewed, and runs once when approved.
//!
//! Skipped with the reason when the servers are not installed, unless
//! `STEWARD_REQUIRE_MCP=1` (set by scripts/test.sh).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_core::tools::CurrentTime;
use steward_core::{
    AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, SystemClock, Tool, ToolContext, ToolError,
    ToolRegistry, ToolSpec,
};
use steward_integrations::mcp::{McpHub, ServerConfig, ServerStatus, Transport};
use steward_protocol::approval::Preview;
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::{Reply, ScriptedCall};

use super::Harness;

const REQUIRE_VAR: &str = "STEWARD_REQUIRE_MCP";

fn entry(var: &str) -> Option<PathBuf> {
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let found = std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_file());
    match (node, found) {
        (true, Some(path)) => Some(path),
        (node, _) => {
            let why = if node { format!("{var} is not set to an existing file") } else { "node is not on PATH".into() };
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_VAR}=1 but {why}; run `bash scripts/mcp.sh` and export what it prints");
            }
            eprintln!("skipping: {why}; run scripts/mcp.sh ({REQUIRE_VAR}=1 makes this a failure)");
            None
        }
    }
}

fn stdio(name: &str, args: Vec<String>) -> ServerConfig {
    ServerConfig::new(name, Transport::Stdio { command: "node".into(), args, env: BTreeMap::new(), cwd: None })
}

/// A real tool, counted: how often the engine ran it.
struct Counted {
    inner: Arc<dyn Tool>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Tool for Counted {
    fn spec(&self) -> &ToolSpec {
        self.inner.spec()
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(arguments, ctx).await
    }
    async fn preview(&self, arguments: &Value, ctx: &ToolContext) -> Result<Preview, ToolError> {
        self.inner.preview(arguments, ctx).await
    }
}

struct Infra {
    h: Harness,
    hub: McpHub,
    writes: Arc<AtomicUsize>,
}

/// The engine as `serve` wires it: MCP tools registered once the servers
/// are up, and all of them given to the infra agent.
async fn infra(servers: Vec<ServerConfig>) -> Infra {
    let dir = std::env::temp_dir().join(format!("steward-infra-mcp-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let (llm, scripted) = super::scripted_model().await;
    let hub = McpHub::start(servers).await;

    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    let writes = Arc::new(AtomicUsize::new(0));
    for tool in hub.tools() {
        if tool.spec().name == "filesystem__write_file" {
            tools.register(Arc::new(Counted { inner: tool, calls: writes.clone() }));
        } else {
            tools.register(tool);
        }
    }
    let mut agents = AgentRegistry::builtin();
    let mut profile = agents.get("infra").cloned().unwrap();
    profile.tools.extend(hub.tool_names());
    agents.insert(profile);

    let engine = Engine::with_options(
        EngineParts { llm: Arc::new(llm), store: store.clone(), tools, agents, clock, limits: EngineLimits::default() },
        Arc::new(steward_core::policy::StrictPolicy),
        EngineOptions::default(),
    );
    let state = AppState::new(engine, ServerSettings::default());
    Infra { h: Harness { app: app(state), llm: Some(scripted), store, dir }, hub, writes }
}

impl Infra {
    async fn conversation(&self) -> String {
        let r = self.h.post_json("/api/conversations", json!({"agent": "infra"})).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }

    async fn turn(&self, conversation: &str, content: &str) -> Vec<(String, Value)> {
        let r = self
            .h
            .post_json(&format!("/api/conversations/{conversation}/messages?stream=true"), json!({"content": content}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.sse_events()
    }

    async fn approvals(&self, query: &str) -> Vec<Value> {
        let v = self.h.get(&format!("/api/proposals?{query}")).await.json();
        v["proposals"].as_array().or_else(|| v.as_array()).unwrap().clone()
    }
}

fn answer(events: &[(String, Value)]) -> String {
    events.iter().filter(|(n, _)| n == "text_delta").map(|(_, d)| d["delta"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_infra_agent_reads_through_mcp_freely_and_writes_only_after_approval() {
    let Some(everything) = entry("STEWARD_TEST_MCP_EVERYTHING") else { return };
    let Some(filesystem) = entry("STEWARD_TEST_MCP_FILESYSTEM") else { return };
    let root = std::env::temp_dir().join(format!("steward-infra-mcp-root-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let a = infra(vec![
        stdio("everything", vec![everything.to_string_lossy().into_owned()]),
        stdio("filesystem", vec![filesystem.to_string_lossy().into_owned(), root.to_string_lossy().into_owned()]),
    ])
    .await;
    assert_eq!(a.hub.status("everything"), Some(ServerStatus::Running), "{:?}", a.hub.report());
    assert_eq!(a.hub.status("filesystem"), Some(ServerStatus::Running), "{:?}", a.hub.report());
    let target = root.join("motd.txt");

    // A read-only MCP tool runs without asking.
    a.h.llm().push_all([
        Reply::tool_call("everything__echo", json!({"message": "ping"}).to_string()),
        Reply::text("The everything server answered: Echo: ping"),
    ]);
    let id = a.conversation().await;
    let events = a.turn(&id, "Is the everything server alive?").await;
    let requests = a.h.llm().chat_requests();
    assert_eq!(requests.len(), 2);
    let offered: Vec<&str> =
        requests[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(offered.contains(&"everything__echo") && offered.contains(&"filesystem__write_file"), "{offered:?}");
    let result = requests[1]["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(result["content"], "Echo: ping");
    assert!(events.iter().all(|(n, _)| n != "approval_requested"), "{events:?}");
    assert!(answer(&events).contains("Echo: ping"));
    assert!(a.approvals("").await.is_empty());

    // Writing a file asks first, with a preview, and writes nothing yet.
    a.h.llm().push_all([Reply::tool_call(
        "filesystem__write_file",
        json!({"path": target.to_str().unwrap(), "content": "Maintenance on Sunday.\n"}).to_string(),
    )]);
    let events = a.turn(&id, "Put a maintenance notice in motd.txt").await;
    assert!(events.iter().any(|(n, _)| n == "approval_requested"), "{events:?}");
    let pending = a.approvals("status=pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let approval = &pending[0];
    assert_eq!(approval["tool"], "filesystem__write_file");
    assert_eq!(approval["agent"], "infra");
    let summary = approval["preview"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("call write_file on MCP server filesystem with "), "{summary}");
    assert!(approval["preview"]["details"].as_str().unwrap().contains("Maintenance on Sunday."), "{approval}");
    assert!(!target.exists(), "nothing may be written before a person approves");
    assert_eq!(a.writes.load(Ordering::SeqCst), 0);
    let text = answer(&events);
    assert!(text.contains(approval["id"].as_str().unwrap()), "{text}");

    // Approved: written, once.
    let events = a.turn(&id, "approve").await;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "Maintenance on Sunday.\n", "{events:?}");
    assert_eq!(a.writes.load(Ordering::SeqCst), 1);
    let decided = a.h.get(&format!("/api/proposals/{}", approval["id"].as_str().unwrap())).await.json();
    assert_eq!(decided["status"], "executed", "{decided}");
    assert!(a.approvals("status=pending").await.is_empty());
    assert_eq!(a.h.llm().chat_requests().len(), 3, "approving needs no model");

    a.hub.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

/// One of ours under `tests/mcp`.
fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp").join(name).to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_times_out_and_a_crashed_one_is_left_out_while_the_others_answer() {
    let Some(everything) = entry("STEWARD_TEST_MCP_EVERYTHING") else { return };
    let mut hang = stdio("hang", vec![script("hang.js")]);
    hang.tool_timeout = Duration::from_secs(2);
    let a = infra(vec![
        stdio("everything", vec![everything.to_string_lossy().into_owned()]),
        hang,
        stdio("broken", vec![script("crash.js"), "start".into()]),
    ])
    .await;
    assert!(matches!(a.hub.status("broken"), Some(ServerStatus::Failed(_))), "{:?}", a.hub.report());

    a.h.llm().push_all([
        Reply::tool_calls(vec![
            ScriptedCall::new("hang__wait", "{}"),
            ScriptedCall::new("everything__echo", json!({"message": "still here"}).to_string()),
        ]),
        Reply::text("The hang server did not answer; everything is fine."),
    ]);
    let id = a.conversation().await;
    let started = Instant::now();
    let events = a.turn(&id, "Check both servers").await;
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let requests = a.h.llm().chat_requests();
    assert_eq!(requests.len(), 2, "{events:?}");
    let offered: Vec<&str> =
        requests[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(offered.contains(&"hang__wait") && !offered.iter().any(|t| t.starts_with("broken__")), "{offered:?}");
    let results: Vec<&str> = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    let hung = results.iter().find(|r| r.contains("hang")).unwrap();
    assert!(hung.contains("did not answer the call of 'wait' within 2s"), "{hung}");
    assert!(results.contains(&"Echo: still here"), "{results:?}");
    assert!(answer(&events).contains("did not answer"));
    a.hub.shutdown().await;
}
