//! Tasks and plans end to end through the HTTP API: a scripted in-process
//! planner, probe tools that record when each step starts and ends and can
//! be held, the real SQLite store, and restarts on the same database file.
//!
//! Nothing here asserts on wall-clock time: steps that overlap are shown to
//! overlap by the order of their recorded starts and ends, with both held
//! running until the test releases them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use steward_core::llm::LlmStream;
use steward_core::policy::StrictPolicy;
use steward_core::{
    AgentProfile, AgentRegistry, Engine, EngineLimits, EngineOptions, EngineParts, Llm, LlmChunk, LlmError,
    LlmErrorKind, LlmRequest, Redactor, RunTaskTool, RunnerOptions, RunnerParts, TaskRunner, Tasks, Tool, ToolContext,
    ToolError, ToolRegistry, ToolSpec, UnconfiguredLlm,
};
use steward_protocol::{Effect, FinishReason};
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use tokio::sync::watch;
use tower::ServiceExt;

use super::approvals::MovableClock;
use super::{Harness, Reply};

/// A planner that answers from a queue, recording what it was asked.
#[derive(Default)]
pub struct PlanLlm {
    replies: Mutex<VecDeque<String>>,
    requests: Mutex<Vec<LlmRequest>>,
}

impl PlanLlm {
    fn push(&self, reply: impl Into<String>) {
        self.replies.lock().unwrap().push_back(reply.into());
    }
    fn requests(&self) -> Vec<LlmRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl Llm for PlanLlm {
    fn name(&self) -> &str {
        "plan-script"
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        self.requests.lock().unwrap().push(request);
        let Some(text) = self.replies.lock().unwrap().pop_front() else {
            return Err(LlmError::new("plan-script", LlmErrorKind::InvalidResponse, "the script is exhausted"));
        };
        let chunks = vec![Ok(LlmChunk::Text(text)), Ok(LlmChunk::Finish(FinishReason::Stop))];
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}

/// One thing a probe tool did.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub label: String,
    /// `start`, `end` or `fail`.
    pub what: &'static str,
    /// Order among all marks.
    pub seq: u64,
    pub idempotency_key: Option<String>,
}

/// What the probe tools share: the marks, the gates held steps wait at,
/// and how many more times a label fails.
pub struct Probe {
    marks: Mutex<Vec<Mark>>,
    seq: AtomicU64,
    open: watch::Sender<HashSet<String>>,
    fail_left: Mutex<HashMap<String, u64>>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            marks: Mutex::default(),
            seq: AtomicU64::new(0),
            open: watch::channel(HashSet::new()).0,
            fail_left: Mutex::default(),
        }
    }
}

impl Probe {
    fn mark(&self, label: &str, what: &'static str, ctx: &ToolContext) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let key = ctx.approval.as_ref().map(|a| a.idempotency_key.clone());
        self.marks.lock().unwrap().push(Mark { label: label.into(), what, seq, idempotency_key: key });
    }

    pub fn marks(&self) -> Vec<Mark> {
        self.marks.lock().unwrap().clone()
    }

    pub fn count(&self, label: &str, what: &str) -> usize {
        self.marks().iter().filter(|m| m.label == label && m.what == what).count()
    }

    /// The order number of the `n`th (from 0) `what` of `label`.
    pub fn at(&self, label: &str, what: &str, n: usize) -> u64 {
        self.marks().iter().filter(|m| m.label == label && m.what == what).nth(n).unwrap().seq
    }

    /// Lets held calls of `label` (now and later) go on.
    pub fn release(&self, label: &str) {
        self.open.send_modify(|open| {
            open.insert(label.to_string());
        });
    }

    /// Waits (polling, at most 20 s) until `done` holds for the marks.
    pub async fn wait(&self, what: &str, done: impl Fn(&Probe) -> bool) {
        for _ in 0..2000 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("waited in vain for {what}; marks: {:?}", self.marks());
    }
}

/// `probe_read` / `probe_write`: arguments `{"label", "hold"?, "fail_times"?,
/// "invalid"?}`. Marks its start; waits for its gate when `hold`; fails
/// (transiently) its first `fail_times` calls; `invalid` is refused as
/// invalid arguments (a permanent failure).
pub struct ProbeTool {
    spec: ToolSpec,
    probe: Arc<Probe>,
}

impl ProbeTool {
    pub fn new(name: &str, effect: Effect, probe: Arc<Probe>) -> Self {
        ProbeTool {
            spec: ToolSpec {
                name: name.into(),
                description: format!(
                    "A probe that {} (for tests).",
                    if effect == Effect::Read { "reads" } else { "writes" }
                ),
                parameters: json!({"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}),
                effect,
                timeout: Duration::from_secs(30),
                output_cap: 4096,
                domain: None,
            },
            probe,
        }
    }
}

#[async_trait]
impl Tool for ProbeTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let label = arguments["label"].as_str().unwrap_or("?").to_string();
        self.probe.mark(&label, "start", ctx);
        if arguments["invalid"] == true {
            return Err(ToolError::InvalidArguments(format!("{label}: the target does not exist")));
        }
        if arguments["hold"] == true {
            let mut open = self.probe.open.subscribe();
            let _ = open.wait_for(|set| set.contains(&label)).await;
        }
        let first_failures = arguments["fail_times"].as_u64().unwrap_or(0);
        let fail = {
            let mut left = self.probe.fail_left.lock().unwrap();
            let n = left.entry(label.clone()).or_insert(first_failures);
            if *n > 0 {
                *n -= 1;
                true
            } else {
                false
            }
        };
        if fail {
            self.probe.mark(&label, "fail", ctx);
            return Err(ToolError::Failed(format!("{label}: the device did not answer")));
        }
        self.probe.mark(&label, "end", ctx);
        Ok(format!("{label} done"))
    }
}

/// One running Steward: engine, tasks, runner, router, on a database in
/// `db_dir`.
pub struct Stack {
    pub h: Harness,
    pub runner: Arc<TaskRunner>,
    pub tasks: Arc<Tasks>,
    pub store: Arc<SqlStore>,
}

pub struct Setup {
    pub llm: Arc<dyn Llm>,
    pub probe: Arc<Probe>,
    pub db_dir: PathBuf,
}

pub async fn stack(setup: &Setup) -> Stack {
    let clock = Arc::new(MovableClock::default());
    let store = Arc::new(SqlStore::open_in_dir(&setup.db_dir, clock.clone()).await.unwrap());
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(ProbeTool::new("probe_read", Effect::Read, setup.probe.clone())));
    tools.register(Arc::new(ProbeTool::new("probe_write", Effect::Mutate, setup.probe.clone())));
    let policy = Arc::new(StrictPolicy);
    let runner = TaskRunner::new(RunnerParts {
        store: store.clone(),
        tools: tools.clone(),
        policy: policy.clone(),
        clock: clock.clone(),
        redactor: Redactor::default(),
        options: RunnerOptions { backoff: Duration::from_millis(10), ..RunnerOptions::default() },
    });
    tools.register(Arc::new(RunTaskTool::new(runner.clone())));
    let mut agents = AgentRegistry::builtin();
    let mut architect = AgentProfile::architect();
    architect.tools = vec!["probe_read".into(), "probe_write".into()];
    agents.insert(architect);
    let mut librarian = AgentProfile::librarian();
    librarian.tools = vec!["probe_read".into()];
    agents.insert(librarian);
    let engine = Engine::with_options(
        EngineParts {
            llm: setup.llm.clone(),
            store: store.clone(),
            tools,
            agents,
            clock,
            limits: EngineLimits::default(),
        },
        policy,
        EngineOptions { approval_ttl: Duration::from_secs(600), ..EngineOptions::default() },
    );
    let tasks = Arc::new(Tasks::new(engine.clone(), runner.clone(), setup.llm.clone()));
    let state = AppState::new(engine, ServerSettings::default()).with_tasks(tasks.clone());
    // The harness removes its own (empty) directory; the database's
    // directory outlives a stack, for restarts.
    let dir = std::env::temp_dir().join(format!("steward-requests-h-{}", uuid::Uuid::new_v4().simple()));
    let h = Harness { app: app(state), llm: None, store: store.clone(), dir };
    Stack { h, runner, tasks, store }
}

/// A whole test: the planner, the probes, one stack, and the database
/// directory (removed at the end).
pub struct T {
    pub s: Stack,
    pub llm: Arc<PlanLlm>,
    pub probe: Arc<Probe>,
    pub setup: Setup,
}

impl Drop for T {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.setup.db_dir);
    }
}

pub async fn t() -> T {
    let llm = Arc::new(PlanLlm::default());
    let probe = Arc::new(Probe::default());
    let db_dir = std::env::temp_dir().join(format!("steward-requests-db-{}", uuid::Uuid::new_v4().simple()));
    let setup = Setup { llm: llm.clone(), probe: probe.clone(), db_dir };
    let s = stack(&setup).await;
    T { s, llm, probe, setup }
}

fn step(id: &str, agent: &str, tool: &str, args: Value, deps: &[&str]) -> Value {
    json!({"id": id, "agent": agent, "tool": tool, "arguments": args, "description": format!("step {id}"),
           "depends_on": deps, "estimated_cost_usd": 0.01})
}

fn plan(summary: &str, steps: Vec<Value>) -> String {
    json!({"summary": summary, "steps": steps}).to_string()
}

/// s1 reads; then s2 (writes) and s3 (reads) both after s1, both held.
fn parallel_pair() -> String {
    plan(
        "Check the heater, then switch it and read the meter",
        vec![
            step("s1", "librarian", "probe_read", json!({"label": "s1"}), &[]),
            step("s2", "architect", "probe_write", json!({"label": "s2", "hold": true}), &["s1"]),
            step("s3", "architect", "probe_read", json!({"label": "s3", "hold": true}), &["s1"]),
        ],
    )
}

impl T {
    pub async fn request(&self, text: &str) -> Value {
        let r = self.s.h.post_json("/api/requests", json!({"request": text})).await;
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()
    }

    pub async fn task(&self, id: &str) -> Value {
        let r = self.s.h.get(&format!("/api/requests/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Polls the task (at most 20 s) until `done` holds.
    pub async fn wait_task(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..2000 {
            last = self.task(id).await;
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("waited in vain for {what}: {last:#}");
    }

    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait_task(id, &format!("status {status}"), |t| t["status"] == status).await
    }

    pub async fn approve(&self, approval: &str) -> Value {
        let r = self.s.h.post_json(&format!("/api/proposals/{approval}/approve"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub async fn say(&self, conversation: &str, content: &str) -> String {
        let r = self
            .s
            .h
            .post_json(&format!("/api/conversations/{conversation}/messages"), json!({"content": content}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["content"].as_str().unwrap().to_string()
    }

    pub async fn messages(&self, conversation: &str) -> Vec<String> {
        let c = self.s.h.get(&format!("/api/conversations/{conversation}")).await.json();
        c["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap_or("").to_string()).collect()
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        let r = self.s.h.get("/api/audit?limit=1000").await.json();
        assert_eq!(r["verified"]["ok"], true, "{r}");
        r["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
    }
}

fn step_of<'a>(task: &'a Value, id: &str) -> &'a Value {
    task["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("no step {id}: {task}"))
}

fn log_lines(task: &Value) -> Vec<String> {
    task["execution_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l["step_id"].as_str().unwrap_or("-"), l["message"].as_str().unwrap()))
        .collect()
}

/// Opens a stream: returns once the handler answered (so it has
/// subscribed), with its body read to the end in the background.
async fn open_stream(app: Router, path: String) -> tokio::task::JoinHandle<Reply> {
    let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    tokio::spawn(async move {
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply { status, headers, body }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_step_plan_is_approved_whole_then_runs_its_parallel_pair_at_once() {
    let t = t().await;
    t.llm.push(parallel_pair());
    let task = t.request("check the heater, switch it on and read the meter").await;
    let id = task["id"].as_str().unwrap().to_string();
    assert_eq!(task["status"], "awaiting_approval", "{task:#}");
    assert_eq!(task["steps"].as_array().unwrap().len(), 3);
    assert!(task["steps"].as_array().unwrap().iter().all(|s| s["status"] == "pending"));
    assert_eq!(step_of(&task, "s2")["depends_on"], json!(["s1"]));
    assert_eq!(step_of(&task, "s2")["effect"], "mutate");
    assert!((task["estimated_cost_usd"].as_f64().unwrap() - 0.03).abs() < 1e-9);
    assert_eq!(task["created_by"], "user:local");
    let approval = task["approval_id"].as_str().unwrap().to_string();
    let conversation = task["conversation_id"].as_str().unwrap().to_string();

    // The planner was asked once, as the architect on the smart tier, with
    // the agents' tools in its prompt.
    let asked = t.llm.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].tier.as_str(), asked[0].caller.as_deref()), ("smart", Some("architect")));
    assert!(asked[0].messages[0].content.contains("- probe_write (mutate)"), "{}", asked[0].messages[0].content);
    assert_eq!(asked[0].messages[1].content, "check the heater, switch it on and read the meter");

    // One approval for the whole plan, showing the DAG.
    let p = t.s.h.get(&format!("/api/proposals/{approval}")).await.json();
    assert_eq!(
        (p["tool"].as_str(), p["status"].as_str(), p["effect"].as_str()),
        (Some("run_task"), Some("pending"), Some("mutate"))
    );
    assert_eq!(p["arguments"], json!({"task_id": id}));
    assert_eq!(p["conversation_id"], conversation.as_str());
    assert_eq!(
        p["preview"]["summary"],
        "Run plan: Check the heater, then switch it and read the meter (3 steps, est. $0.03)"
    );
    let details = p["preview"]["details"].as_str().unwrap();
    assert!(details.contains("s2  probe_write (mutate) by architect, after s1, est. $0.01"), "{details}");
    assert!(details.contains("Order: s1 → s2 + s3 (in parallel)"), "{details}");
    let said = t.messages(&conversation).await;
    assert!(said[1].contains("Reply 'approve' to run the whole plan"), "{said:?}");
    assert!(t.probe.marks().is_empty(), "nothing runs before the plan is approved");

    // Someone watches the progress stream from before the approval.
    let watch = open_stream(t.s.h.app.clone(), format!("/api/requests/{id}/events")).await;

    let decided = t.approve(&approval).await;
    assert_eq!(decided["status"], "executed", "{decided:#}");
    assert!(decided["outcome"].as_str().unwrap().contains(&format!("task {id} started: 3 steps")), "{decided}");

    // s2 and s3 both start, and both are running at once.
    t.probe.wait("s2 and s3 to start", |p| p.count("s2", "start") == 1 && p.count("s3", "start") == 1).await;
    let running = t.task(&id).await;
    assert_eq!(running["status"], "running");
    assert_eq!(
        (step_of(&running, "s2")["status"].as_str(), step_of(&running, "s3")["status"].as_str()),
        (Some("running"), Some("running"))
    );
    assert_eq!(step_of(&running, "s1")["status"], "succeeded");
    t.probe.release("s3");
    t.probe.release("s2");
    let done = t.wait_status(&id, "succeeded").await;

    // The recorded order: s1 ended before either of the pair started, and
    // each of the pair started before the other ended.
    let p = &t.probe;
    assert!(p.at("s1", "end", 0) < p.at("s2", "start", 0) && p.at("s1", "end", 0) < p.at("s3", "start", 0));
    assert!(p.at("s2", "start", 0) < p.at("s3", "end", 0) && p.at("s3", "start", 0) < p.at("s2", "end", 0));
    // Each step ran under the plan's approval, with a key of its own.
    let key = |label: &str| p.marks().iter().find(|m| m.label == label).unwrap().idempotency_key.clone().unwrap();
    assert!(key("s2").ends_with("/s2") && key("s3").ends_with("/s3"), "{}", key("s2"));

    for s in done["steps"].as_array().unwrap() {
        assert_eq!((s["status"].as_str(), s["attempts"].as_u64()), (Some("succeeded"), Some(1)), "{s}");
        assert!(s["started_at"].as_i64().unwrap() <= s["finished_at"].as_i64().unwrap());
    }
    assert_eq!(step_of(&done, "s2")["output"], "s2 done");
    assert!(done["finished_at"].as_i64().is_some());
    let logs = log_lines(&done);
    for expected in [
        "- request received from user:local",
        "- task started by user:local: 3 steps",
        "s1 started",
        "s2 finished: probe_write succeeded: s2 done",
        "- task succeeded",
    ] {
        assert!(logs.iter().any(|l| l == expected), "{expected:?} not in {logs:#?}");
    }
    let said = t.messages(&conversation).await;
    let last = said.last().unwrap();
    assert!(last.starts_with(&format!("Task {id} succeeded: Check the heater")), "{last}");
    assert!(last.contains("- s2 probe_write (succeeded): s2 done"), "{last}");
    let actions = t.audit_actions().await;
    for expected in [
        "task.created",
        "task.planned",
        "approval.requested",
        "approval.approved",
        "task.started",
        "tool.executed",
        "task.finished",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "task.step.finished").count(), 3);

    // The stream saw the pair running and the end, then ended.
    let stream = tokio::time::timeout(Duration::from_secs(20), watch).await.unwrap().unwrap();
    assert_eq!(stream.status, 200);
    let events = stream.sse_events();
    assert_eq!(events[0].1["status"], "awaiting_approval", "{events:?}");
    assert!(events.iter().all(|(name, e)| name == "task_updated" && e["task_id"] == id.as_str()));
    for s in ["s2", "s3"] {
        assert!(events.iter().any(|(_, e)| e["step_id"] == s && e["step_status"] == "running"), "{events:?}");
        assert!(events.iter().any(|(_, e)| e["step_id"] == s && e["step_status"] == "succeeded"), "{events:?}");
    }
    assert_eq!(events.last().unwrap().1["status"], "succeeded");
    assert!(events.last().unwrap().1.get("step_id").is_none());

    // A stream opened on an ended task says how it ended and closes.
    let late = t.s.h.get(&format!("/api/requests/{id}/events")).await;
    let late = late.sse_events();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].1["status"], "succeeded");
    // Listed; and a finished task cannot be cancelled.
    let list = t.s.h.get("/api/requests").await.json();
    assert_eq!(list["tasks"][0]["id"], id.as_str());
    let r = t.s.h.post_json(&format!("/api/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("already succeeded"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_mid_run_lets_the_running_step_finish_and_starts_nothing_after() {
    let t = t().await;
    t.llm.push(plan(
        "A chain of three",
        vec![
            step("s1", "architect", "probe_write", json!({"label": "s1", "hold": true}), &[]),
            step("s2", "architect", "probe_write", json!({"label": "s2"}), &["s1"]),
            step("s3", "architect", "probe_read", json!({"label": "s3"}), &["s2"]),
        ],
    ));
    let task = t.request("do three things in a row").await;
    let id = task["id"].as_str().unwrap().to_string();
    t.approve(task["approval_id"].as_str().unwrap()).await;
    t.probe.wait("s1 to start", |p| p.count("s1", "start") == 1).await;

    let r = t.s.h.post_json(&format!("/api/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cancelled = r.json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["error"], "cancelled by user:local");
    assert_eq!(step_of(&cancelled, "s1")["status"], "running", "a running step finishes its call");
    // Cancelling again changes nothing.
    let again = t.s.h.post_json(&format!("/api/requests/{id}/cancel"), json!({})).await;
    assert_eq!((again.status.as_u16(), again.json()["status"].as_str()), (200, Some("cancelled")));

    t.probe.release("s1");
    let done = t
        .wait_task(&id, "every step to settle", |t| {
            t["steps"].as_array().unwrap().iter().all(|s| s["status"] != "running" && s["status"] != "pending")
        })
        .await;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(step_of(&done, "s1")["status"], "succeeded");
    for s in ["s2", "s3"] {
        let s = step_of(&done, s);
        assert_eq!(
            (s["status"].as_str(), s["error"].as_str()),
            (Some("cancelled"), Some("not run: the task was cancelled"))
        );
        assert_eq!(s["attempts"], 0);
    }
    // Nothing ran after the cancel.
    let labels: Vec<String> = t.probe.marks().iter().map(|m| m.label.clone()).collect();
    assert!(labels.iter().all(|l| l == "s1"), "{labels:?}");
    let logs = log_lines(&done);
    assert!(
        logs.iter().any(|l| l.contains("cancelled by user:local; steps already running finish their call")),
        "{logs:#?}"
    );
    assert!(logs.iter().any(|l| l == "- task cancelled"), "{logs:#?}");
    let conversation = done["conversation_id"].as_str().unwrap();
    let last = t.messages(conversation).await.pop().unwrap();
    assert!(last.starts_with(&format!("Task {id} was cancelled")), "{last}");
    assert!(t.audit_actions().await.iter().any(|a| a == "task.cancelled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_waiting_plan_rejects_its_approval() {
    let t = t().await;
    t.llm.push(parallel_pair());
    let task = t.request("check the heater").await;
    let id = task["id"].as_str().unwrap();
    let approval = task["approval_id"].as_str().unwrap();
    let r = t.s.h.post_json(&format!("/api/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "cancelled");
    let p = t.s.h.get(&format!("/api/proposals/{approval}")).await.json();
    assert_eq!(p["status"], "rejected");
    let late = t.s.h.post_json(&format!("/api/proposals/{approval}/approve"), json!({})).await;
    assert_eq!(late.status, 409);
    let after = t.task(id).await;
    assert_eq!(after["status"], "cancelled");
    assert!(after["steps"].as_array().unwrap().iter().all(|s| s["status"] == "pending"), "never started");
    assert!(t.probe.marks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejecting_the_plan_in_chat_marks_the_task_rejected_and_runs_nothing() {
    let t = t().await;
    t.llm.push(parallel_pair());
    let task = t.request("check the heater").await;
    let id = task["id"].as_str().unwrap();
    let reply = t.say(task["conversation_id"].as_str().unwrap(), "reject").await;
    assert!(reply.starts_with("Rejected ("), "{reply}");
    let after = t.task(id).await;
    assert_eq!(after["status"], "rejected", "{after:#}");
    assert_eq!(after["error"], "the plan was rejected by user:local; nothing was run");
    assert!(after["steps"].as_array().unwrap().iter().all(|s| s["status"] == "pending"));
    assert!(t.probe.marks().is_empty());
    assert!(t.audit_actions().await.iter().any(|a| a == "task.rejected"));
    let r = t.s.h.post_json(&format!("/api/requests/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transient_failure_is_retried_with_the_same_key_then_succeeds() {
    let t = t().await;
    t.llm.push(plan(
        "Flaky switch",
        vec![step("s1", "architect", "probe_write", json!({"label": "s1", "fail_times": 2}), &[])],
    ));
    let task = t.request("switch the flaky switch").await;
    let id = task["id"].as_str().unwrap();
    // Approved by replying in the task's conversation.
    let reply = t.say(task["conversation_id"].as_str().unwrap(), "approve").await;
    assert!(reply.contains(&format!("task {id} started")), "{reply}");
    let done = t.wait_status(id, "succeeded").await;
    let s1 = step_of(&done, "s1");
    assert_eq!((s1["attempts"].as_u64(), s1["output"].as_str()), (Some(3), Some("s1 done")));
    let logs = log_lines(&done);
    for expected in [
        "s1 attempt 1 failed: s1: the device did not answer; retrying in 10 ms",
        "s1 attempt 2 failed: s1: the device did not answer; retrying in 20 ms",
        "s1 attempt 3 of 3 started",
    ] {
        assert!(logs.iter().any(|l| l == expected), "{expected:?} not in {logs:#?}");
    }
    let marks = t.probe.marks();
    assert_eq!(marks.iter().filter(|m| m.what == "start").count(), 3);
    let keys: HashSet<Option<String>> = marks.iter().map(|m| m.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1, "every attempt carries the same key: {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permanent_failure_skips_its_dependents_and_says_why_while_other_branches_finish() {
    let t = t().await;
    t.llm.push(plan(
        "Mixed fortunes",
        vec![
            step("s1", "architect", "probe_write", json!({"label": "s1", "invalid": true}), &[]),
            step("s2", "architect", "probe_write", json!({"label": "s2"}), &["s1"]),
            step("s3", "architect", "probe_read", json!({"label": "s3"}), &["s2"]),
            step("s4", "architect", "probe_read", json!({"label": "s4", "fail_times": 9}), &[]),
            step("s5", "librarian", "probe_read", json!({"label": "s5"}), &[]),
        ],
    ));
    let task = t.request("do a mixed bag").await;
    let id = task["id"].as_str().unwrap();
    t.approve(task["approval_id"].as_str().unwrap()).await;
    let done = t.wait_status(id, "failed").await;

    let s1 = step_of(&done, "s1");
    assert_eq!((s1["status"].as_str(), s1["attempts"].as_u64()), (Some("failed"), Some(1)), "not retried: {s1}");
    assert_eq!(s1["error"], "invalid arguments: s1: the target does not exist");
    for s in ["s2", "s3"] {
        let s = step_of(&done, s);
        assert_eq!(s["status"], "skipped");
        assert_eq!(s["error"], "not run: step s1 failed: invalid arguments: s1: the target does not exist");
    }
    let s4 = step_of(&done, "s4");
    assert_eq!((s4["status"].as_str(), s4["attempts"].as_u64()), (Some("failed"), Some(3)));
    assert_eq!(s4["error"], "s4: the device did not answer (after 3 attempts)");
    assert_eq!(step_of(&done, "s5")["status"], "succeeded", "an independent branch finishes");
    assert_eq!(
        done["error"],
        "step s1 (probe_write) failed: invalid arguments: s1: the target does not exist; step s4 (probe_read) \
failed: s4: the device did not answer (after 3 attempts); 2 dependent steps skipped"
    );
    assert_eq!((t.probe.count("s2", "start"), t.probe.count("s3", "start")), (0, 0));
    let last = t.messages(done["conversation_id"].as_str().unwrap()).await.pop().unwrap();
    assert!(last.starts_with(&format!("Task {id} failed: Mixed fortunes.")), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unusable_plans_get_one_retry_then_fail_the_task_naming_the_problem() {
    let t = t().await;
    // Garbage twice: failed, naming what was wrong.
    t.llm.push("Sure! I will turn everything on.");
    t.llm.push("Done, everything is on now.");
    let task = t.request("turn everything on").await;
    assert_eq!(task["status"], "failed", "{task:#}");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("did not produce a usable plan (asked twice)") && error.contains("no JSON object"),
        "{error}"
    );
    assert!(task.get("approval_id").is_none());
    // The second request fed the first problem back.
    let asked = t.llm.requests();
    assert_eq!(asked.len(), 2);
    let feedback = &asked[1].messages.last().unwrap().content;
    assert!(feedback.starts_with("That plan cannot be used: the answer contains no JSON object"), "{feedback}");
    let said = t.messages(task["conversation_id"].as_str().unwrap()).await;
    assert!(said.last().unwrap().starts_with("I could not make a plan for this"), "{said:?}");

    // A cycle, then a good plan: the retry is used.
    t.llm.push(plan(
        "Loop",
        vec![
            step("s1", "architect", "probe_read", json!({"label": "s1"}), &["s2"]),
            step("s2", "architect", "probe_read", json!({"label": "s2"}), &["s1"]),
        ],
    ));
    t.llm.push(format!("```json\n{}\n```", parallel_pair()));
    let fixed = t.request("check the heater").await;
    assert_eq!(fixed["status"], "awaiting_approval", "{fixed:#}");
    let feedback = t.llm.requests()[3].messages.last().unwrap().content.clone();
    assert!(feedback.contains("cycle (s1 → s2 → s1)"), "{feedback}");
    let logs = log_lines(&fixed);
    assert!(
        logs.iter().any(|l| l.contains("(attempt 1 of 2) was not usable: the steps depend on each other in a cycle")),
        "{logs:#?}"
    );

    // An unknown tool twice.
    for _ in 0..2 {
        t.llm.push(plan("Fly", vec![step("s1", "architect", "fly_drone", json!({}), &[])]));
    }
    let task = t.request("fly the drone").await;
    assert_eq!(task["status"], "failed");
    assert!(task["error"].as_str().unwrap().contains("uses the tool 'fly_drone', which does not exist"), "{task}");
    assert!(t.probe.marks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_model_the_task_fails_saying_how_to_configure_one() {
    let probe = Arc::new(Probe::default());
    let db_dir = std::env::temp_dir().join(format!("steward-requests-db-{}", uuid::Uuid::new_v4().simple()));
    let setup = Setup { llm: Arc::new(UnconfiguredLlm), probe, db_dir: db_dir.clone() };
    let s = stack(&setup).await;
    let r = s.h.post_json("/api/requests", json!({"request": "warm up the house"})).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let task = r.json();
    assert_eq!(task["status"], "failed");
    assert!(task["error"].as_str().unwrap().contains("No language model is configured"), "{task}");
    assert!(task["error"].as_str().unwrap().contains("OPENAI_API_KEY"), "{task}");
    drop(s);
    let _ = std::fs::remove_dir_all(db_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_only_reads_runs_without_asking() {
    let t = t().await;
    t.llm.push(plan(
        "Look around",
        vec![
            step("s1", "librarian", "probe_read", json!({"label": "s1"}), &[]),
            step("s2", "architect", "probe_read", json!({"label": "s2"}), &["s1"]),
        ],
    ));
    let task = t.request("look around").await;
    assert!(task.get("approval_id").is_none(), "{task:#}");
    assert!(matches!(task["status"].as_str(), Some("running" | "succeeded")), "{task:#}");
    let id = task["id"].as_str().unwrap();
    t.wait_status(id, "succeeded").await;
    assert_eq!((t.probe.count("s1", "end"), t.probe.count("s2", "end")), (1, 1));
    let proposals = t.s.h.get("/api/proposals").await.json();
    assert!(proposals["proposals"].as_array().unwrap().is_empty());
    let said = t.messages(task["conversation_id"].as_str().unwrap()).await;
    assert!(said[1].contains("allows without asking, so it is running now"), "{said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_task_starts_nothing_without_the_plans_own_approval() {
    let t = t().await;
    t.llm.push(parallel_pair());
    let task = t.request("check the heater").await;
    let id = task["id"].as_str().unwrap();
    let tool = RunTaskTool::new(t.s.runner.clone());
    let mut ctx = ToolContext {
        turn_id: "turn_x".into(),
        conversation_id: task["conversation_id"].as_str().unwrap().into(),
        agent: "architect".into(),
        call_id: "call_x".into(),
        approval: None,
        progress: None,
    };
    let e = tool.call(json!({"task_id": id}), &ctx).await.unwrap_err();
    assert!(e.to_string().contains("only starts a task under the approval of its plan"), "{e}");
    ctx.approval = Some(steward_core::ApprovalRef { id: "apr_other".into(), idempotency_key: "k".into() });
    let e = tool.call(json!({"task_id": id}), &ctx).await.unwrap_err();
    assert!(e.to_string().contains("is not the approval of task"), "{e}");
    assert_eq!(t.task(id).await["status"], "awaiting_approval");
    assert!(t.probe.marks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_are_refused_naming_the_problem() {
    let t = t().await;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("POST", String::new(), 400, "the request body is empty"),
        ("POST", "{not json".into(), 400, "not valid JSON"),
        ("POST", json!({"request": "x", "plan": []}).to_string(), 400, "unknown field `plan`"),
        ("POST", json!({}).to_string(), 400, "missing field `request`"),
        ("POST", json!({"request": "   "}).to_string(), 400, "request is empty"),
        ("POST", json!({"request": "x".repeat(8001)}).to_string(), 400, "at most 8000"),
    ];
    for (_, body, status, expected) in cases {
        let r = t.s.h.post_raw("/api/requests", body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.text());
        assert!(r.error()["message"].as_str().unwrap().contains(expected), "{expected:?}: {}", r.text());
    }
    for path in ["/api/requests/task_nope", "/api/requests/task_nope/events"] {
        let r = t.s.h.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(r.error()["message"].as_str().unwrap().contains("task 'task_nope' not found"));
    }
    let r = t.s.h.post_json("/api/requests/task_nope/cancel", json!({})).await;
    assert_eq!(r.status, 404);
    let r = t.s.h.get("/api/requests?limit=0").await;
    assert_eq!(r.status, 400);
    assert!(t.llm.requests().is_empty(), "no bad request reached the planner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_mid_task_resumes_it_without_running_an_interrupted_change_twice() {
    let t = t().await;
    // s1 reads; s2 (a change) and s3 (a read) run after it, both held when
    // the process stops; s4 (a change) waits for s3.
    t.llm.push(plan(
        "Survive a restart",
        vec![
            step("s1", "architect", "probe_read", json!({"label": "s1"}), &[]),
            step("s2", "architect", "probe_write", json!({"label": "s2", "hold": true}), &["s1"]),
            step("s3", "architect", "probe_read", json!({"label": "s3", "hold": true}), &["s1"]),
            step("s4", "architect", "probe_write", json!({"label": "s4"}), &["s3"]),
        ],
    ));
    let task = t.request("do it across a restart").await;
    let id = task["id"].as_str().unwrap().to_string();
    t.approve(task["approval_id"].as_str().unwrap()).await;
    t.probe.wait("s2 and s3 to start", |p| p.count("s2", "start") == 1 && p.count("s3", "start") == 1).await;

    // The process dies: every task stops mid-call, the database is closed.
    t.s.runner.abort_all().await;
    t.s.store.close().await;

    // A new process on the same database picks the task up.
    let s2 = stack(&t.setup).await;
    let before = s2.tasks.get(&id).await.unwrap().unwrap();
    assert_eq!(before.status.as_str(), "running");
    let recovery = s2.tasks.recover().await.unwrap();
    assert_eq!(recovery.resumed, vec![id.clone()]);
    // Everything may go on now; the interrupted change must not run again.
    t.probe.release("s2");
    t.probe.release("s3");
    let done = loop {
        let r = s2.h.get(&format!("/api/requests/{id}")).await.json();
        if r["status"] != "running" {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(done["status"], "failed", "{done:#}");
    let s2_step = step_of(&done, "s2");
    assert_eq!(s2_step["status"], "failed");
    assert!(s2_step["error"].as_str().unwrap().starts_with("interrupted by a restart; not run again"), "{s2_step}");
    for s in ["s1", "s3", "s4"] {
        assert_eq!(step_of(&done, s)["status"], "succeeded", "{done:#}");
    }
    assert_eq!(step_of(&done, "s3")["attempts"], 2, "the read ran again");
    let p = &t.probe;
    assert_eq!((p.count("s1", "start"), p.count("s2", "start"), p.count("s2", "end")), (1, 1, 0), "{:?}", p.marks());
    assert_eq!((p.count("s3", "start"), p.count("s3", "end")), (2, 1));
    assert_eq!((p.count("s4", "start"), p.count("s4", "end")), (1, 1), "pending steps resumed");
    assert!(
        done["error"].as_str().unwrap().starts_with("step s2 (probe_write) failed: interrupted by a restart"),
        "{done}"
    );
    let logs = log_lines(&done);
    assert!(logs.iter().any(|l| l == "- resumed after a restart"), "{logs:#?}");
    assert!(logs.iter().any(|l| l == "s3 interrupted by a restart; it only reads, so it runs again"), "{logs:#?}");
    s2.store.close().await;
}
