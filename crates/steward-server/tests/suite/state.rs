//! Snapshots over HTTP: a conversation and the demo home's lights saved,
//! changed and loaded back; the automatic backup holding the changed state;
//! the audit trail; refusals that name the problem; and no load while a
//! turn runs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::home::{Home, ServiceCall};
use steward_core::{AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, Store, ToolRegistry};
use steward_integrations::DemoHome;
use steward_protocol::{TurnInput, UserTurn};
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::Reply;

use super::{harness, Harness};

/// 2026-01-01T00:00:00Z: on a tick of the demo home's simulation, so the
/// few seconds a test moves the clock on change nothing by themselves.
const START: i64 = 1_767_225_600_000;
const LIGHT: &str = "light.living_room_ceiling";

/// A clock that moves only when told.
struct StepClock(AtomicI64);

impl StepClock {
    fn step(&self) {
        self.0.fetch_add(1_000, Ordering::SeqCst);
    }
}

impl Clock for StepClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Setup {
    h: Harness,
    engine: Engine,
    home: Arc<dyn Home>,
    clock: Arc<StepClock>,
}

/// An engine on the demo home and a real SQLite store, with a scripted model.
async fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!("steward-state-test-{}", uuid::Uuid::new_v4().simple()));
    let clock = Arc::new(StepClock(AtomicI64::new(START)));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let store = Arc::new(SqlStore::open_in_dir(&dir, dyn_clock.clone()).await.unwrap());
    let home: Arc<dyn Home> = Arc::new(DemoHome::new(dyn_clock.clone()));
    let (llm, scripted) = super::scripted_model().await;
    let engine = Engine::with_options(
        EngineParts {
            llm: Arc::new(llm),
            store: store.clone(),
            tools: ToolRegistry::new(),
            agents: AgentRegistry::builtin(),
            clock: dyn_clock,
            limits: EngineLimits::default(),
        },
        Arc::new(steward_core::policy::StrictPolicy),
        EngineOptions { home: Some(home.clone()), ..EngineOptions::default() },
    );
    let state = AppState::new(engine.clone(), ServerSettings::default());
    Setup { h: Harness { app: app(state), llm: Some(scripted), store, dir }, engine, home, clock }
}

async fn light(home: &Arc<dyn Home>) -> (String, Value) {
    let e = home.entity(LIGHT).await.unwrap();
    (e.state, e.attributes)
}

async fn say(s: &Setup, conversation: &str, text: &str, answer: &str) {
    s.h.llm().push(Reply::text(answer));
    let r = s.h.post_json(&format!("/api/conversations/{conversation}/messages"), json!({"content": text})).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn messages(s: &Setup, conversation: &str) -> Vec<Value> {
    let r = s.h.get(&format!("/api/conversations/{conversation}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_load_brings_back_the_conversation_and_the_demo_lights() {
    let s = setup().await;
    let r = s.h.post_json("/api/conversations", json!({"title": "Party"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    say(&s, &id, "plan the party", "Balloons first.").await;
    let before = messages(&s, &id).await;
    assert_eq!(before.len(), 2);
    let light_before = light(&s.home).await;

    s.clock.step();
    let r = s.h.post_json("/api/state/save", json!({"name": "before-party"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let saved = r.json();
    assert_eq!(saved["name"], "before-party");
    assert_eq!(saved["created_at"], START + 1_000);
    assert_eq!(saved["created_by"], "user:local");
    assert_eq!((saved["conversations"].as_u64(), saved["messages"].as_u64()), (Some(1), Some(2)));
    assert_eq!(saved["insights"], 0);
    let entities = s.home.entities().await.unwrap().len() as u64;
    assert!(entities > 10);
    assert_eq!(saved["entities"], entities);

    // Change the memory and the house.
    s.clock.step();
    say(&s, &id, "and music", "A playlist, then.").await;
    let service = if light_before.0 == "on" { "turn_off" } else { "turn_on" };
    s.home.call_service(&ServiceCall::new("light", service, vec![LIGHT.into()])).await.unwrap();
    let light_changed = light(&s.home).await;
    assert_ne!(light_changed.0, light_before.0);

    let r = s.h.get("/api/state").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(list["snapshots"][0], saved);
    assert_eq!(list["current"], json!({"conversations": 1, "messages": 4, "insights": 0, "entities": entities}));

    s.clock.step();
    let r = s.h.post_json("/api/state/load", json!({"name": "before-party"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    assert_eq!(report["loaded"], saved);
    assert_eq!(report["home"], "restored");
    let backup = report["backup"]["name"].as_str().unwrap().to_string();
    assert_eq!(backup, "autosave-20260101T000003.000Z");
    assert_eq!(report["backup"]["messages"], 4);

    // The conversation and the light are as they were.
    assert_eq!(messages(&s, &id).await, before);
    assert_eq!(light(&s.home).await, light_before);

    // The backup holds the changed state, and is listed (newest first).
    let kept = s.h.store.get_snapshot(&backup).await.unwrap().unwrap();
    let conversation = &kept.body.memory.conversations[0];
    assert_eq!(conversation.messages.len(), 4);
    assert_eq!(conversation.messages[3].message.content, "A playlist, then.");
    let home = kept.body.home.unwrap();
    let saved_light = home.iter().find(|e| e.entity_id == LIGHT).unwrap();
    assert_eq!((saved_light.state.clone(), saved_light.attributes.clone()), light_changed);
    let list = s.h.get("/api/state").await.json();
    let names: Vec<&str> = list["snapshots"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, [backup.as_str(), "before-party"]);
    assert_eq!(list["current"]["messages"], 2);

    // Loading the backup goes forward again.
    let r = s.h.post_json("/api/state/load", json!({"name": backup})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(messages(&s, &id).await.len(), 4);
    assert_eq!(light(&s.home).await, light_changed);

    // The audit log has both, naming the snapshot and the backup.
    let audit = s.h.get("/api/audit").await.json();
    let entries = audit["entries"].as_array().unwrap_or_else(|| panic!("{audit}"));
    let saved_entry = entries.iter().find(|e| e["action"] == "state.saved").unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(saved_entry["subject"], "before-party");
    let loaded = entries.iter().find(|e| e["action"] == "state.loaded").unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(loaded["subject"], "before-party");
    assert_eq!(loaded["detail"]["backup"], backup.as_str());
    assert_eq!(loaded["detail"]["home"], "restored");
    assert_eq!(audit["verified"]["ok"], true, "{audit}");
}

#[tokio::test]
async fn a_name_taken_needs_replace() {
    let s = setup().await;
    let r = s.h.post_json("/api/state/save", json!({"name": "x"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.h.post_json("/api/state/save", json!({"name": "x"})).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let e = r.error();
    assert_eq!(e["param"], "name");
    assert!(e["message"].as_str().unwrap().contains("\"replace\": true"), "{e}");
    s.clock.step();
    let r = s.h.post_json("/api/state/save", json!({"name": "x", "replace": true})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["created_at"], START + 1_000);
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_reason() {
    let s = setup().await;
    for (path, body, status, param, says) in [
        ("/api/state/save", json!({"name": "has space"}), 400, Some("name"), "A-Z"),
        ("/api/state/save", json!({"name": ""}), 400, Some("name"), "empty"),
        ("/api/state/save", json!({"name": "x".repeat(65)}), 400, Some("name"), "64"),
        ("/api/state/save", json!({}), 400, Some("name"), "missing"),
        ("/api/state/save", json!({"name": "x", "colour": "red"}), 400, None, "unknown field"),
        ("/api/state/load", json!({"name": "../etc"}), 400, Some("name"), "'/'"),
        ("/api/state/load", json!({"name": "nope"}), 404, Some("name"), "GET /api/state"),
    ] {
        let r = s.h.post_json(path, body.clone()).await;
        assert_eq!(r.status, status, "{path} {body}: {}", r.text());
        let e = r.error();
        assert_eq!(e["param"].as_str(), param, "{e}");
        assert!(e["message"].as_str().unwrap().contains(says), "{path} {body}: {e}");
    }
    let r = s.h.post_raw("/api/state/load", "{not json").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("not valid JSON"));
    let r = s.h.post_raw("/api/state/save", "").await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Nothing was saved, and no failed load left a backup.
    assert_eq!(s.h.get("/api/state").await.json()["snapshots"], json!([]));
}

#[tokio::test]
async fn no_load_while_a_turn_runs() {
    let s = setup().await;
    let r = s.h.post_json("/api/state/save", json!({"name": "quiet"})).await;
    assert_eq!(r.status, 201, "{}", r.text());

    // The model takes its time: the turn runs until it answers.
    s.h.llm().push(Reply::delay(3_000, Reply::text("done")));
    let agent = AgentRegistry::builtin().default_agent().to_string();
    let mut turn = s
        .engine
        .start_turn(UserTurn {
            conversation_id: None,
            agent,
            input: TurnInput::Message { content: "take your time".into() },
            actor: None,
        })
        .await
        .unwrap();
    let r = s.h.post_json("/api/state/load", json!({"name": "quiet"})).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("running"), "{}", r.text());
    assert_eq!(s.h.get("/api/state").await.json()["snapshots"].as_array().unwrap().len(), 1, "no backup made");

    while turn.events.recv().await.is_some() {}
    for _ in 0..100 {
        if s.engine.running_turns() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = s.h.post_json("/api/state/load", json!({"name": "quiet"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["backup"]["conversations"], 1);
    assert_eq!(s.h.get("/api/state").await.json()["current"]["conversations"], 0);
}

#[tokio::test]
async fn without_a_home_only_the_memory_is_loaded() {
    let h = harness().await;
    let r = h.post_json("/api/state/save", json!({"name": "bare"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["entities"], 0);
    let r = h.post_json("/api/state/load", json!({"name": "bare"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["home"], "not restored: no home is connected");
}
