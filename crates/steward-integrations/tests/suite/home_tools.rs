//! The agent's home tools driving the demo home, as an agent would.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use steward_core::home::tools::home_tools;
use steward_core::home::Home;
use steward_core::{CallFacts, Clock, Tool, ToolContext, ToolError};
use steward_integrations::demo::{DemoHome, OUTAGE_ENTITY, STUCK_ENTITY, UNAVAILABLE_ENTITY};
use steward_protocol::approval::PreviewTarget;

/// 2026-03-10T14:07:00Z, a Tuesday afternoon.
const NOW: i64 = 1_773_151_620_000;

struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Kit {
    home: Arc<DemoHome>,
    tools: Vec<Arc<dyn Tool>>,
}

impl Kit {
    fn new() -> Kit {
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(AtomicI64::new(NOW)));
        let home = Arc::new(DemoHome::new(clock.clone()));
        let tools = home_tools(home.clone(), clock);
        Kit { home, tools }
    }

    fn tool(&self, name: &str) -> &dyn Tool {
        self.tools.iter().find(|t| t.spec().name == name).map(|t| t.as_ref()).unwrap()
    }

    async fn run(&self, name: &str, args: Value) -> Value {
        let out = self.tool(name).call(args, &ctx()).await.unwrap();
        assert!(out.len() <= self.tool(name).spec().output_cap, "{name} output of {} bytes", out.len());
        serde_json::from_str(&out).unwrap()
    }

    async fn refused(&self, name: &str, args: Value) -> String {
        match self.tool(name).call(args, &ctx()).await {
            Err(ToolError::InvalidArguments(msg)) => msg,
            other => panic!("expected invalid arguments, got {other:?}"),
        }
    }
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "turn".into(),
        conversation_id: "conv".into(),
        agent: "architect".into(),
        call_id: "call_1".into(),
        approval: None,
        progress: None,
    }
}

fn ids(out: &Value) -> Vec<&str> {
    out["entities"].as_array().unwrap().iter().map(|e| e["entity_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn discovering_the_demo_house() {
    let kit = Kit::new();
    let out = kit.run("discover_entities", json!({"query": "kitchen lights"})).await;
    assert_eq!(ids(&out), ["light.kitchen_ceiling", "light.kitchen_counter"]);
    let out = kit.run("discover_entities", json!({"query": "ceiling light"})).await;
    assert_eq!(out["matched"], 3, "{out}");
    let out = kit.run("discover_entities", json!({"domain": "sensor", "area": "garage"})).await;
    assert!(ids(&out).contains(&OUTAGE_ENTITY), "{out}");
    let out = kit.run("discover_entities", json!({"query": "wallbox"})).await;
    assert_eq!(ids(&out), ["switch.car_charger"]);
    let out = kit.run("discover_entities", json!({"query": "temperature", "limit": 3})).await;
    assert_eq!(out["shown"], 3);
    assert_eq!(out["matched"], 7, "six rooms and the garden have thermometers");

    let summary = kit.run("domain_summary", json!({})).await;
    assert_eq!(summary["demo"], true);
    assert!(summary["entities"].as_u64().unwrap() >= 45);
    assert!(summary["domains"].as_object().unwrap().len() >= 10);
    assert!(summary["areas"].as_array().unwrap().len() >= 6);
    assert_eq!(summary["unavailable"], json!([UNAVAILABLE_ENTITY]));
    // The summary is what a prompt sees instead of the catalog: it must stay small.
    assert!(summary.to_string().len() < 2_000, "{} bytes", summary.to_string().len());
}

#[tokio::test]
async fn reading_states_and_history() {
    let kit = Kit::new();
    let state = kit.run("get_state", json!({"entity_id": "sensor.living_room_temperature"})).await;
    assert_eq!(state["attributes"]["unit_of_measurement"], "°C");
    assert_eq!(state["area"], "Living Room");
    let state = kit.run("get_state", json!({"entity_id": UNAVAILABLE_ENTITY})).await;
    assert_eq!((state["state"].as_str(), state["available"].as_bool()), (Some("unavailable"), Some(false)));

    let out = kit
        .run("get_entity_history", json!({"entity_ids": ["sensor.outdoor_temperature", "light.hallway"], "hours": 48}))
        .await;
    let outdoor = &out["entities"][0];
    assert_eq!(outdoor["points"], 577, "48 hours of five-minute readings plus the starting state");
    assert!(outdoor["min"].as_f64().unwrap() < outdoor["max"].as_f64().unwrap());
    let hall = &out["entities"][1];
    assert!(hall["changes"].as_u64().unwrap() >= 4, "{hall}");
    assert!(hall["hours_in_state"]["on"].as_f64().unwrap() > 4.0, "{hall}");
}

#[tokio::test]
async fn detailed_history_finds_the_planted_problems() {
    let kit = Kit::new();
    let out = kit
        .run(
            "get_entity_history",
            json!({"entity_ids": [OUTAGE_ENTITY, STUCK_ENTITY, "sensor.living_room_temperature"], "hours": 72, "detailed": true}),
        )
        .await;
    let charger = &out["entities"][0];
    assert_eq!(charger["spacing_minutes"], 5.0);
    let gaps = charger["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{charger}");
    assert_eq!(gaps[0]["kind"], "no data");
    assert!(gaps[0]["hours"].as_f64().unwrap() >= 3.0);
    let (start, _) = kit.home.scenario().charger_outage;
    assert_eq!(gaps[0]["to"].as_str().unwrap().len(), 20);
    assert!(gaps[0]["from"].as_str().unwrap() < steward_core::tools::rfc3339(start).as_str());

    let stuck = &out["entities"][1];
    let flats = stuck["flatlines"].as_array().unwrap();
    assert_eq!(flats.len(), 1, "{stuck}");
    assert!(flats[0]["hours"].as_f64().unwrap() >= 19.0);
    assert!(stuck["gaps"].as_array().unwrap().is_empty());

    let healthy = &out["entities"][2];
    assert!(healthy["gaps"].as_array().unwrap().is_empty() && healthy["flatlines"].as_array().unwrap().is_empty());

    let logs = kit.run("get_ha_logs", json!({"level": "error"})).await;
    let messages: Vec<&str> =
        logs["entries"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(messages.iter().any(|m| m.contains("Voltbox") && m.contains("Cannot connect")), "{messages:?}");
    assert_eq!(kit.run("check_ha_config", json!({})).await["valid"], true);
}

#[tokio::test]
async fn controlling_with_a_preview_first() {
    let kit = Kit::new();
    let control = kit.tool("control_entity");
    let args = json!({"entity_id": "light.kitchen_ceiling", "action": "turn_on", "data": {"brightness_pct": 40}});
    let facts = CallFacts::of(control.spec(), &args);
    assert_eq!(facts.domains, ["light"]);

    let preview = control.preview(&args, &ctx()).await.unwrap();
    assert_eq!(
        preview.summary,
        "light.turn_on on Kitchen Ceiling (light.kitchen_ceiling, now off) with brightness_pct=40"
    );
    assert_eq!(
        preview.targets,
        vec![PreviewTarget {
            id: "light.kitchen_ceiling".into(),
            name: Some("Kitchen Ceiling".into()),
            state: Some("off".into())
        }]
    );
    assert_eq!(kit.home.entity("light.kitchen_ceiling").await.unwrap().state, "off", "a preview changes nothing");

    let out = kit.run("control_entity", args).await;
    assert_eq!(out["done"], "light.turn_on");
    assert_eq!((out["entities"][0]["was"].as_str(), out["entities"][0]["now"].as_str()), (Some("off"), Some("on")));
    assert_eq!(out["entities"][0]["attributes"]["brightness"], 102);

    let out = kit
        .run(
            "control_entity",
            json!({"entity_id": "climate.bedroom", "action": "set_temperature", "data": {"temperature": 20}}),
        )
        .await;
    assert_eq!(out["entities"][0]["attributes"]["temperature"], 20.0);
    let out = kit
        .run(
            "control_entity",
            json!({"entity_id": ["cover.living_room_blinds", "cover.bedroom_shutter"], "action": "close_cover"}),
        )
        .await;
    assert_eq!(out["entities"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn control_refusals_name_the_way_out() {
    let kit = Kit::new();
    let msg = kit.refused("control_entity", json!({"entity_id": "lock.front_door", "action": "open"})).await;
    assert!(msg.contains("valid actions: lock, unlock"), "{msg}");
    let msg = kit.refused("control_entity", json!({"entity_id": "light.kitchen_celing", "action": "turn_on"})).await;
    assert!(msg.contains("Did you mean: light.kitchen_ceiling"), "{msg}");
    let msg = kit.refused("control_entity", json!({"entity_id": UNAVAILABLE_ENTITY, "action": "turn_on"})).await;
    assert!(msg.contains("unavailable"), "{msg}");
    let msg = kit
        .refused(
            "control_entity",
            json!({"entity_id": "light.garage", "action": "turn_on", "data": {"color_name": "red"}}),
        )
        .await;
    assert!(msg.contains("cannot show colours"), "{msg}");
    let msg = kit.refused("control_entity", json!({"entity_id": "sensor.house_power", "action": "turn_off"})).await;
    assert!(msg.contains("cannot be controlled"), "{msg}");
}
