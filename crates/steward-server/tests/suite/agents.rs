//! The specialist agents at work, driven by a scripted model over the
//! OpenAI wire format: the architect delegates a diagnosis to the data
//! scientist and an automation to the developer; each runs its own turn
//! with its own prompt and tools, nested under the architect's.

use std::sync::Arc;

use serde_json::{json, Value};
use steward_core::delegation::DelegateTool;
use steward_core::home::tools::{home_tools, DeleteAutomation, SaveAutomation, ValidateAutomation};
use steward_core::home::Home;
use steward_core::tools::CurrentTime;
use steward_core::{AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, SystemClock, ToolRegistry};
use steward_integrations::DemoHome;
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::{Reply, ScriptedCall};

use super::Harness;

struct Agents {
    h: Harness,
    home: Arc<dyn Home>,
}

async fn agents(agents: AgentRegistry) -> Agents {
    let dir = std::env::temp_dir().join(format!("steward-agents-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let home: Arc<dyn Home> = Arc::new(DemoHome::new(clock.clone()));
    let (llm, scripted) = super::scripted_model().await;
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    for tool in home_tools(home.clone(), clock.clone()) {
        tools.register(tool);
    }
    tools.register(Arc::new(SaveAutomation::new(home.clone(), None)));
    tools.register(Arc::new(ValidateAutomation::new(home.clone())));
    tools.register(Arc::new(DeleteAutomation::new(home.clone(), None)));
    for delegation in DelegateTool::builtin() {
        tools.register(Arc::new(delegation));
    }
    let engine = Engine::with_options(
        EngineParts { llm: Arc::new(llm), store: store.clone(), tools, agents, clock, limits: EngineLimits::default() },
        Arc::new(steward_core::policy::StrictPolicy),
        EngineOptions { home: Some(home.clone()), ..EngineOptions::default() },
    );
    let state = AppState::new(engine, ServerSettings::default());
    Agents { h: Harness { app: app(state), llm: Some(scripted), store, dir }, home }
}

fn call(name: &str, args: Value) -> ScriptedCall {
    ScriptedCall::new(name, args.to_string())
}

impl Agents {
    async fn conversation(&self, agent: &str) -> String {
        let r = self.h.post_json("/api/conversations", json!({"agent": agent})).await;
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

    /// The system prompt of each model request, in order.
    fn prompts(&self) -> Vec<String> {
        self.h
            .llm()
            .chat_requests()
            .iter()
            .map(|r| r["messages"][0]["content"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn offered_tools(&self, request: usize) -> Vec<String> {
        let requests = self.h.llm().chat_requests();
        requests[request]["tools"]
            .as_array()
            .map(|tools| tools.iter().map(|t| t["function"]["name"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }
}

/// The text the person saw: the top-level deltas only.
fn answer(events: &[(String, Value)]) -> String {
    events.iter().filter(|(n, _)| n == "text_delta").map(|(_, d)| d["delta"].as_str().unwrap()).collect()
}

fn nested<'a>(events: &'a [(String, Value)], agent: &str) -> Vec<&'a Value> {
    events.iter().filter(|(n, d)| n == "delegated" && d["agent"] == agent).map(|(_, d)| &d["event"]).collect()
}

#[tokio::test]
async fn the_architect_diagnoses_the_car_charger_gap_with_the_data_scientist() {
    let a = agents(AgentRegistry::builtin()).await;
    let charger = "sensor.car_charger_energy";
    a.h.llm().push_all([
        // The architect gathers the evidence in one round.
        Reply::tool_calls(vec![
            call("get_ha_logs", json!({})),
            call("check_ha_config", json!({})),
            call("get_entity_history", json!({"entity_ids": [charger], "hours": 48, "detailed": true})),
        ]),
        // … and hands it to the data scientist.
        Reply::tool_call(
            "diagnose_issue",
            json!({
                "entity_ids": [charger],
                "diagnostic_context": "Logs show errors from the charger integration; config check passed.",
                "instructions": "Why did the car charger's energy data disappear, and how is it fixed?"
            })
            .to_string(),
        ),
        // The data scientist looks at the energy itself, then answers.
        Reply::tool_call("analyze_energy", json!({"entity_ids": [charger], "hours": 48}).to_string()),
        Reply::text(
            "Findings: sensor.car_charger_energy has a 7-hour gap with no data. Likely cause: the charger \
integration lost its connection (the log shows timeouts). Recommendations: check the charger's network link.",
        ),
        // The architect answers the person.
        Reply::text("Diagnosis: the charger integration lost its connection for 7 hours; check its network link."),
    ]);
    let id = a.conversation("architect").await;
    let events = a.turn(&id, "My car charger energy data disappeared").await;

    // Five model calls: architect, architect, data scientist ×2, architect.
    let prompts = a.prompts();
    assert_eq!(prompts.len(), 5, "{prompts:#?}");
    for (i, who) in [(0, "architect"), (1, "architect"), (2, "data scientist"), (3, "data scientist"), (4, "architect")]
    {
        assert!(prompts[i].contains(&format!("You are Steward's {who}")), "request {i}: {}", prompts[i]);
    }
    // The specialist works with its own tools, not the architect's.
    let ds_tools = a.offered_tools(2);
    assert!(ds_tools.contains(&"analyze_energy".to_string()), "{ds_tools:?}");
    assert!(!ds_tools.contains(&"diagnose_issue".to_string()) && !ds_tools.contains(&"control_entity".to_string()));
    let arch_tools = a.offered_tools(0);
    assert!(
        arch_tools.contains(&"diagnose_issue".to_string()) && arch_tools.contains(&"propose_automation".to_string())
    );

    // The data scientist's brief carries the architect's evidence and
    // Steward's own gap analysis of the sensor.
    let requests = a.h.llm().chat_requests();
    let brief = requests[2]["messages"][1]["content"].as_str().unwrap().to_string();
    assert!(brief.contains("Why did the car charger's energy data disappear"), "{brief}");
    assert!(brief.contains("Logs show errors from the charger integration"), "{brief}");
    assert!(brief.contains("get_entity_history") && brief.contains("gaps"), "{brief}");
    // The architect's own evidence round saw the gap and the log errors.
    let round = requests[1]["messages"].as_array().unwrap();
    let results: Vec<&str> =
        round.iter().filter(|m| m["role"] == "tool").map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().any(|r| r.contains("car_charger")), "{results:?}");

    // Events: the delegation is announced, its turn streams nested, and it ends well.
    let started: Vec<&Value> = events.iter().filter(|(n, _)| n == "delegation_started").map(|(_, d)| d).collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["agent"], "data-scientist");
    assert_eq!(started[0]["depth"], 1);
    let inner = nested(&events, "data-scientist");
    assert!(inner.iter().any(|e| e["type"] == "tool_call_started" && e["name"] == "analyze_energy"));
    assert!(inner.iter().any(|e| e["type"] == "text_delta"));
    assert!(inner.iter().any(|e| e["type"] == "turn_finished"));
    let finished: Vec<&Value> = events.iter().filter(|(n, _)| n == "delegation_finished").map(|(_, d)| d).collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["ok"], true);

    // The person sees only the architect's words, and the diagnosis.
    let text = answer(&events);
    assert!(text.starts_with("Diagnosis:"), "{text}");
    assert!(!text.contains("Findings:"), "the specialist's text leaked into the answer: {text}");

    // The specialist's answer reached the architect as the tool's result.
    let last = &requests[4]["messages"];
    let result = last.as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap();
    assert!(result["content"].as_str().unwrap().starts_with("data-scientist answered:\nFindings:"), "{result}");

    // The hand-over is in the audit trail.
    let audit = a.h.get("/api/audit?limit=1000").await.json();
    let delegated: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "agent.delegated").collect();
    assert_eq!(delegated.len(), 1, "{audit}");
    assert_eq!(delegated[0]["actor"], "agent:architect");
    assert_eq!(delegated[0]["detail"]["to"], "data-scientist");

    // The delegated turn is on record in a conversation of its own.
    let list = a.h.get("/api/conversations").await.json();
    let convs = list["conversations"].as_array().or_else(|| list.as_array()).unwrap().clone();
    let child = convs.iter().find(|c| c["agent"] == "data-scientist").expect("a data-scientist conversation");
    assert!(child["title"].as_str().unwrap().starts_with("architect → data-scientist"), "{child}");
}

const GARDEN_YAML: &str = "alias: Garden path light at sunset
description: Turns the garden path light on when the sun sets
triggers:
  - trigger: sun
    event: sunset
actions:
  - action: light.turn_on
    target:
      entity_id: light.garden_path
mode: single
";

#[tokio::test]
async fn an_automation_from_a_sentence_is_written_checked_approved_and_deployed() {
    let a = agents(AgentRegistry::builtin()).await;
    let bad = GARDEN_YAML.replace("light.garden_path", "light.garden_pathway");
    a.h.llm().push_all([
        Reply::tool_call(
            "propose_automation",
            json!({"description": "turn on the garden path light at sunset"}).to_string(),
        ),
        // The developer looks the light up, gets it wrong once, fixes it …
        Reply::tool_call("discover_entities", json!({"query": "garden path"}).to_string()),
        Reply::tool_call("validate_automation", json!({"yaml": bad}).to_string()),
        Reply::tool_call("validate_automation", json!({"yaml": GARDEN_YAML}).to_string()),
        // … and proposes it.
        Reply::tool_call("save_automation", json!({"id": "garden_path_at_sunset", "yaml": GARDEN_YAML}).to_string()),
    ]);
    let id = a.conversation("architect").await;
    let events = a.turn(&id, "Turn on the garden path light every day at sunset").await;

    let requests = a.h.llm().chat_requests();
    // Asking for approval ends the developer's turn and the architect's,
    // with no further model call: the person is asked now.
    assert_eq!(requests.len(), 5);
    assert_eq!(a.h.llm().remaining(), 0);
    // The first check named the wrong entity; the second passed.
    let dev = requests[4]["messages"].as_array().unwrap();
    let checks: Vec<Value> = dev
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| serde_json::from_str::<Value>(m["content"].as_str().unwrap()).ok())
        .filter(|v| v.get("valid").is_some())
        .collect();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0]["valid"], false);
    assert!(checks[0]["errors"][0].as_str().unwrap().contains("light.garden_pathway"), "{}", checks[0]);
    assert_eq!(checks[1]["valid"], true);

    // One approval waits, in the architect's conversation, previewing the YAML.
    let pending = a.h.get(&format!("/api/proposals?status=pending&conversation_id={id}")).await.json();
    let pending = pending["proposals"].as_array().or_else(|| pending.as_array()).unwrap().clone();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let approval = &pending[0];
    assert_eq!(approval["tool"], "save_automation");
    assert_eq!(approval["agent"], "developer");
    let details = approval["preview"]["details"].as_str().unwrap();
    assert!(details.contains("alias: Garden path light at sunset") && details.contains("trigger: sun"), "{details}");
    assert!(approval["preview"]["summary"].as_str().unwrap().starts_with("create automation"));
    assert!(events.iter().any(|(n, d)| n == "delegated" && d["event"]["type"] == "approval_requested"));
    let text = answer(&events);
    assert!(text.contains(approval["id"].as_str().unwrap()) && text.contains("approve"), "{text}");
    // Nothing is deployed before a person approves.
    assert!(a.home.automation("garden_path_at_sunset").await.is_err());

    let events = a.turn(&id, "approve").await;
    let text = answer(&events);
    let deployed = a.home.automation("garden_path_at_sunset").await.unwrap();
    assert_eq!(deployed.alias, "Garden path light at sunset");
    assert_eq!(deployed.config["actions"][0]["target"]["entity_id"], "light.garden_path");
    let decided = a.h.get(&format!("/api/proposals/{}", approval["id"].as_str().unwrap())).await.json();
    assert_eq!(decided["status"], "executed", "{decided} / {text}");
    assert_eq!(a.h.llm().chat_requests().len(), 5, "approving needs no model");
    assert!(text.contains("garden_path_at_sunset") || text.contains("Garden path"), "{text}");
}

#[tokio::test]
async fn an_automation_naming_a_missing_entity_is_never_proposed() {
    let a = agents(AgentRegistry::builtin()).await;
    let bad = GARDEN_YAML.replace("light.garden_path", "light.moon_lamp");
    a.h.llm().push_all([
        Reply::tool_call("propose_automation", json!({"description": "moon lamp at sunset"}).to_string()),
        Reply::tool_call("save_automation", json!({"id": "moon", "yaml": bad}).to_string()),
        Reply::text("There is no moon lamp in this home."),
        Reply::text("The developer found no moon lamp."),
    ]);
    let id = a.conversation("architect").await;
    a.turn(&id, "turn on the moon lamp at sunset").await;
    let requests = a.h.llm().chat_requests();
    let result =
        requests[2]["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap().clone();
    let content = result["content"].as_str().unwrap();
    assert!(content.contains("light.moon_lamp") && content.contains("does not exist"), "{content}");
    let all = a.h.get("/api/proposals").await.json();
    let all = all["proposals"].as_array().or_else(|| all.as_array()).unwrap().clone();
    assert!(all.is_empty(), "{all:?}");
}

#[tokio::test]
async fn a_specialist_that_fails_is_reported_to_the_architect() {
    let a = agents(AgentRegistry::builtin()).await;
    a.h.llm().push_all([
        Reply::tool_call(
            "diagnose_issue",
            json!({"entity_ids": ["sensor.garage_humidity"], "diagnostic_context": "flat", "instructions": "why flat?"})
                .to_string(),
        ),
        Reply::error(500, "server_error", None, "the model is down"),
        Reply::text("The data scientist could not answer right now."),
    ]);
    let id = a.conversation("architect").await;
    let events = a.turn(&id, "why is the garage humidity flat?").await;
    let finished: Vec<&Value> = events.iter().filter(|(n, _)| n == "delegation_finished").map(|(_, d)| d).collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["ok"], false);
    let requests = a.h.llm().chat_requests();
    let last = requests.last().unwrap()["messages"].as_array().unwrap().clone();
    let result = last.iter().rev().find(|m| m["role"] == "tool").unwrap();
    let content = result["content"].as_str().unwrap();
    assert!(content.starts_with("error: the data-scientist agent could not finish"), "{content}");
    assert_eq!(answer(&events), "The data scientist could not answer right now.");
}

#[tokio::test]
async fn delegation_depth_is_limited() {
    // A developer that may delegate to itself: the second level is refused.
    let mut registry = AgentRegistry::builtin();
    let mut developer = steward_core::AgentProfile::developer();
    developer.tools.push("propose_automation".into());
    registry.insert(developer);
    let a = agents(registry).await;
    let ask = || Reply::tool_call("propose_automation", json!({"description": "again"}).to_string());
    a.h.llm().push_all([
        ask(),
        ask(),
        ask(),
        Reply::text("depth 2 gave up"),
        Reply::text("depth 1 done"),
        Reply::text("done"),
    ]);
    let id = a.conversation("architect").await;
    let events = a.turn(&id, "recurse").await;
    let depths: Vec<u64> =
        events.iter().filter(|(n, _)| n == "delegation_started").map(|(_, d)| d["depth"].as_u64().unwrap()).collect();
    assert_eq!(depths, vec![1], "only the first level starts at the top");
    // The nested start of depth 2 arrives wrapped; the third call is refused.
    let requests = a.h.llm().chat_requests();
    let refused = requests.iter().any(|r| {
        r["messages"].as_array().unwrap().iter().any(|m| {
            m["role"] == "tool" && m["content"].as_str().unwrap_or_default().contains("may nest 2 deep at most")
        })
    });
    assert!(refused, "the third level was not refused");
    assert_eq!(answer(&events), "done");
}

#[tokio::test]
async fn built_in_analyses_run_on_the_specialists_behalf_without_a_model_turn() {
    let a = agents(AgentRegistry::builtin()).await;
    a.h.llm().push_all([
        Reply::tool_calls(vec![
            call("discover_entities", json!({"query": "charger"})),
            call("analyze_energy", json!({"hours": 24})),
        ]),
        Reply::text("The charger is sensor.car_charger_energy."),
    ]);
    let id = a.conversation("architect").await;
    let events = a.turn(&id, "what does the car charger use?").await;
    let started: Vec<(String, String)> = events
        .iter()
        .filter(|(n, _)| n == "delegation_started")
        .map(|(_, d)| (d["agent"].as_str().unwrap().to_string(), d["task"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        started,
        vec![
            ("librarian".to_string(), "discover_entities".to_string()),
            ("data-scientist".to_string(), "analyze_energy".to_string())
        ]
    );
    assert_eq!(events.iter().filter(|(n, d)| n == "delegation_finished" && d["ok"] == true).count(), 2);
    assert!(nested(&events, "librarian").is_empty(), "no model turn was needed");
    assert_eq!(a.h.llm().chat_requests().len(), 2);
}
