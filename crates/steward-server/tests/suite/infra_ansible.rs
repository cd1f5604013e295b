//! The infra agent runs an Ansible playbook end to end: a scripted model
//! over the OpenAI wire format asks for it, Steward previews it in check
//! mode with a real ansible-core and asks a person, and only their
//! "approve" makes it run, once.
//!
//! Without `STEWARD_TEST_ANSIBLE_PLAYBOOK` (from `scripts/ansible.sh`) these
//! tests print why and pass, unless `STEWARD_REQUIRE_ANSIBLE=1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_core::tools::CurrentTime;
use steward_core::{AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, SystemClock, ToolRegistry};
use steward_integrations::ansible::{ansible_tools, Ansible, AnsibleConfig};
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::Reply;

use super::approvals::activity::Watcher;
use super::Harness;

const PLAYBOOK_VAR: &str = "STEWARD_TEST_ANSIBLE_PLAYBOOK";
const REQUIRE_VAR: &str = "STEWARD_REQUIRE_ANSIBLE";

fn ansible_playbook() -> Option<PathBuf> {
    match std::env::var_os(PLAYBOOK_VAR).filter(|p| !p.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => {
            panic!(
                "{REQUIRE_VAR}=1 but {PLAYBOOK_VAR} is not set; run `bash scripts/ansible.sh` and export its last line"
            )
        }
        None => {
            eprintln!("skipping: {PLAYBOOK_VAR} is not set (`bash scripts/ansible.sh` prints it); set {REQUIRE_VAR}=1 to make this a failure");
            None
        }
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../steward-integrations/tests/fixtures/ansible")
}

/// The server with the built-in agents, the Ansible tools over the test
/// playbooks, the strict policy (every change asks) and a scripted model.
async fn infra(ansible_playbook: PathBuf, timeout_secs: u64) -> Harness {
    let dir = std::env::temp_dir().join(format!("steward-infra-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let (llm, scripted) = super::scripted_model().await;
    let ansible = Arc::new(Ansible::new(AnsibleConfig {
        playbook_dir: Some(fixtures().join("playbooks")),
        inventory: Some(fixtures().join("inventory.ini")),
        ansible_playbook: Some(ansible_playbook),
        timeout_secs,
        check_timeout_secs: 60,
    }));
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    for tool in ansible_tools(ansible) {
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

async fn pending(h: &Harness, conversation: &str) -> Vec<Value> {
    let list = h.get(&format!("/api/proposals?status=pending&conversation_id={conversation}")).await.json();
    list["proposals"].as_array().or_else(|| list.as_array()).unwrap().clone()
}

/// Everything the conversation holds, as text.
async fn transcript(h: &Harness, conversation: &str) -> String {
    use steward_core::Store;
    let messages = h.store.list_messages(conversation).await.unwrap();
    serde_json::to_string(&messages).unwrap()
}

/// A directory of its own for the playbook's files; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("steward-infra-files-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_infra_agent_runs_a_playbook_once_after_a_person_approves_its_check_mode_preview() {
    let Some(ansible_playbook) = ansible_playbook() else { return };
    let h = infra(ansible_playbook, 120).await;
    let scratch = Scratch::new();
    let dest = scratch.0.join("motd").to_string_lossy().into_owned();
    let run_args = json!({"playbook": "write_file.yml", "extra_vars": {"dest": dest, "content": "hello from steward"}});
    h.llm().push_all([
        Reply::tool_call("ansible_list_playbooks", "{}"),
        Reply::tool_call("ansible_run_playbook", run_args.to_string()),
    ]);
    let id = conversation(&h).await;
    let mut activity = Watcher::open(&h, "").await;
    let events = turn(&h, &id, "Put the greeting into the motd file with Ansible").await;

    // The model saw the playbooks, then asked to run one: the person is
    // asked now, with no further model call.
    let requests = h.llm().chat_requests();
    assert_eq!(requests.len(), 2);
    let tools: Vec<&str> =
        requests[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"ansible_run_playbook") && tools.contains(&"ansible_list_hosts"), "{tools:?}");
    let listing = requests[1]["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap();
    assert!(listing["content"].as_str().unwrap().contains("write_file.yml"), "{listing}");

    // One approval waits, previewing the check-mode diff; nothing changed.
    let waiting = pending(&h, &id).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let approval = &waiting[0];
    assert_eq!((approval["tool"].as_str(), approval["agent"].as_str()), (Some("ansible_run_playbook"), Some("infra")));
    assert_eq!(
        approval["preview"]["summary"],
        "run playbook write_file.yml on 1 host (check mode: 1 changed, 1 ok, 0 failed)"
    );
    assert_eq!(approval["preview"]["targets"][0]["id"], "localhost");
    let details = approval["preview"]["details"].as_str().unwrap();
    assert!(details.contains(&format!("+++ after: {dest}")) && details.contains("+hello from steward"), "{details}");
    assert!(events.iter().any(|(n, _)| n == "approval_requested"));
    let asked = answer(&events);
    assert!(asked.contains(approval["id"].as_str().unwrap()) && asked.contains("+hello from steward"), "{asked}");
    assert!(!Path::new(&dest).exists(), "the check-mode preview wrote the file");

    let events = turn(&h, &id, "approve").await;
    let said = answer(&events);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello from steward\n");
    let decided = h.get(&format!("/api/proposals/{}", approval["id"].as_str().unwrap())).await.json();
    assert_eq!(decided["status"], "executed", "{decided} / {said}");
    let outcome = decided["outcome"].as_str().unwrap();
    assert!(outcome.contains("localhost: ok=2 changed=1 failed=0 unreachable=0 skipped=0"), "{outcome}");
    assert!(said.contains("Done (") && said.contains("run playbook write_file.yml"), "{said}");
    assert!(transcript(&h, &id).await.contains("changed=1"), "the outcome is not in the conversation");
    // The whole run is kept as its execution log, task by task, with the
    // recap, and was streamed line by line while it ran.
    let logs: Vec<&str> =
        decided["execution_logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    let at =
        |line: &str| logs.iter().position(|l| l.contains(line)).unwrap_or_else(|| panic!("no {line:?} in {logs:#?}"));
    assert!(at("PLAY [") < at("TASK [") && at("TASK [") < at("RECAP"), "{logs:#?}");
    assert!(logs.contains(&"  localhost: changed"), "{logs:#?}");
    assert!(at("RECAP") < at("localhost: ok=2 changed=1 failed=0"), "{logs:#?}");
    assert_eq!(logs.last(), Some(&"exit code 0"));
    let seqs: Vec<i64> =
        decided["execution_logs"].as_array().unwrap().iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=logs.len() as i64).collect::<Vec<_>>());
    activity.until("the run's progress", |seen| seen.iter().any(|f| f.data["event"]["message"] == "exit code 0")).await;
    let streamed: Vec<&str> = activity
        .seen
        .iter()
        .filter(|f| f.name == "tool_progress" && f.data["event"]["approval_id"] == decided["id"])
        .map(|f| f.data["event"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, logs, "the stream and the log hold the same lines");
    assert_eq!(h.llm().chat_requests().len(), 2, "approving needs no model");

    // Executed once: a second "approve" runs nothing again.
    std::fs::remove_file(&dest).unwrap();
    turn(&h, &id, "approve").await;
    assert!(!Path::new(&dest).exists(), "the playbook ran a second time");
}

#[tokio::test]
async fn an_approved_run_past_its_timeout_is_stopped_and_reported_as_failed() {
    let Some(ansible_playbook) = ansible_playbook() else { return };
    let h = infra(ansible_playbook, 3).await;
    let nap = format!("93.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_007);
    h.llm().push(Reply::tool_call(
        "ansible_run_playbook",
        json!({"playbook": "slow.yml", "extra_vars": {"nap": nap}}).to_string(),
    ));
    let id = conversation(&h).await;
    turn(&h, &id, "Take the nap").await;
    let waiting = pending(&h, &id).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    // The sleep is a command: check mode cannot simulate it, and says so.
    assert_eq!(
        waiting[0]["preview"]["summary"],
        "run playbook slow.yml on 1 host (check mode: 0 changed, 1 ok, 0 failed; 1 task not previewable)"
    );

    let started = Instant::now();
    let said = answer(&turn(&h, &id, "approve").await);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let decided = h.get(&format!("/api/proposals/{}", waiting[0]["id"].as_str().unwrap())).await.json();
    assert_eq!(decided["status"], "failed", "{decided}");
    let outcome = decided["outcome"].as_str().unwrap();
    assert!(outcome.contains("timed out after 3 s and was stopped"), "{outcome}");
    assert!(outcome.contains("TASK [Before the nap]"), "{outcome}");
    assert!(said.contains("Failed (") && said.contains("timed out after 3 s"), "{said}");
    let logs: Vec<&str> =
        decided["execution_logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert!(logs.contains(&"TASK [Before the nap]"), "{logs:#?}");
    assert!(logs.last().unwrap().contains("stopped at the timeout"), "{logs:#?}");
    let cmdlines: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&nap))
        .collect();
    assert!(cmdlines.is_empty(), "left behind: {cmdlines:?}");
}
