//! The home tools over a small fake home.

use std::sync::Arc;

use serde_json::{json, Value};
use steward_protocol::Effect;

use super::fake::{FakeHome, NOW};
use super::tools::*;
use super::*;
use crate::clock::Clock;
use crate::policy::CallFacts;
use crate::tool::{Tool, ToolContext, ToolError};

struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        NOW
    }
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "t".into(),
        conversation_id: "c".into(),
        agent: "architect".into(),
        call_id: "call".into(),
        approval: None,
        progress: None,
    }
}

fn home() -> Arc<FakeHome> {
    Arc::new(FakeHome::new())
}

async fn run(tool: &dyn Tool, args: Value) -> Value {
    let out = tool.call(args, &ctx()).await.unwrap();
    serde_json::from_str(&out).unwrap()
}

async fn fails(tool: &dyn Tool, args: Value) -> String {
    match tool.call(args, &ctx()).await {
        Err(ToolError::InvalidArguments(msg)) => msg,
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

fn ids(out: &Value) -> Vec<String> {
    out["entities"].as_array().unwrap().iter().map(|e| e["entity_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn tools_declare_the_same_contract() {
    let tools = home_tools(home(), Arc::new(FixedClock));
    let names: Vec<&str> = tools.iter().map(|t| t.spec().name.as_str()).collect();
    assert_eq!(
        names,
        [
            "discover_entities",
            "domain_summary",
            "get_state",
            "get_entity_history",
            "analyze_energy",
            "control_entity",
            "get_ha_logs",
            "check_ha_config"
        ]
    );
    for tool in &tools {
        let spec = tool.spec();
        let expected = if spec.name == "control_entity" { Effect::Mutate } else { Effect::Read };
        assert_eq!(spec.effect, expected, "{}", spec.name);
        assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
        assert_eq!(spec.parameters["additionalProperties"], false, "{}", spec.name);
        assert!(spec.timeout.as_secs() >= 5 && spec.output_cap >= 4_000, "{}", spec.name);
        assert!(spec.domain.is_none(), "home tools take their domains from entity ids");
        assert!(spec.description.len() > 40, "{}", spec.name);
    }
}

#[test]
fn the_policy_reads_targets_from_control_arguments() {
    let tool = ControlEntity::new(home());
    let facts = CallFacts::of(tool.spec(), &json!({"entity_id": ["light.a", "light.b"], "action": "turn_off"}));
    assert_eq!(facts.domains, vec!["light".to_string()]);
    assert_eq!(facts.entities, vec!["light.a".to_string(), "light.b".to_string()]);
    let history = GetEntityHistory::new(home(), Arc::new(FixedClock));
    let facts = CallFacts::of(history.spec(), &json!({"entity_ids": ["lock.front_door"]}));
    assert_eq!(facts.domains, vec!["lock".to_string()]);
}

#[tokio::test]
async fn discover_searches_tolerantly_and_counts() {
    let tool = DiscoverEntities::new(home());
    let out = run(&tool, json!({"query": "kitchen lights"})).await;
    assert_eq!(ids(&out), vec!["light.kitchen_ceiling", "light.kitchen_counter"]);
    assert_eq!((out["matched"].as_u64(), out["shown"].as_u64()), (Some(2), Some(2)));
    assert_eq!(out["entities"][0]["area"], "Kitchen");
    assert_eq!(out["entities"][0]["aliases"], json!(["ceiling light"]));

    let out = run(&tool, json!({"query": "temprature"})).await;
    assert_eq!(ids(&out), vec!["sensor.kitchen_temperature"]);
    assert_eq!(out["entities"][0]["state"], "21.5 °C");

    let out = run(&tool, json!({"area": "hall"})).await;
    assert_eq!(ids(&out), vec!["light.hallway", "lock.front_door"]);

    let out = run(&tool, json!({"domain": "light", "limit": 1})).await;
    assert_eq!((out["matched"].as_u64(), out["shown"].as_u64()), (Some(3), Some(1)));
    assert!(out["hint"].as_str().unwrap().contains("2 more"));

    let out = run(&tool, json!({"domain": "vacuum"})).await;
    assert_eq!(out["matched"], 0);
    assert!(out["hint"].as_str().unwrap().contains("light, lock, sensor, switch"), "{out}");

    let out = run(&tool, json!({"area": "attic"})).await;
    assert!(out["hint"].as_str().unwrap().contains("kitchen (Kitchen)"), "{out}");

    let out = run(&tool, json!({"query": "zeppelin"})).await;
    assert_eq!(out["matched"], 0);
    assert!(out["hint"].as_str().unwrap().contains("domain_summary"));

    let msg = fails(&tool, json!({"name": "x"})).await;
    assert!(msg.contains("unknown argument `name`") && msg.contains("query, domain, area, limit"), "{msg}");
    assert!(fails(&tool, json!({"limit": 0})).await.contains("`limit`"));
}

#[tokio::test]
async fn domain_summary_counts_domains_and_areas() {
    let out = run(&DomainSummary::new(home()), json!({})).await;
    assert_eq!(out["entities"], 7);
    assert_eq!(out["domains"], json!({"light": 3, "lock": 1, "sensor": 2, "switch": 1}));
    assert_eq!(out["areas"][0], json!({"area_id": "kitchen", "name": "Kitchen", "entities": 4}));
    assert_eq!(out["without_area"], 1);
    assert_eq!(out["unavailable"], json!(["sensor.garden_moisture"]));
    assert_eq!(out["demo"], false);
}

#[tokio::test]
async fn get_state_reads_one_entity_and_suggests_on_a_typo() {
    let tool = GetState::new(home());
    let out = run(&tool, json!({"entity_id": "light.kitchen_ceiling"})).await;
    assert_eq!(out["state"], "off");
    assert_eq!(out["area"], "Kitchen");
    assert_eq!(out["last_changed"], "2025-12-31T23:00:00Z");
    // Nulls and the friendly name are left out of the attributes.
    assert_eq!(out["attributes"], json!({"supported_color_modes": ["color_temp", "rgb"]}));

    let msg = fails(&tool, json!({"entity_id": "light.kitchen_ceilng"})).await;
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(msg.contains("Did you mean: light.kitchen_ceiling (Kitchen Ceiling)"), "{msg}");
    assert!(fails(&tool, json!({})).await.contains("`entity_id` is required"));
    assert!(fails(&tool, json!({"entity_id": "kitchen"})).await.contains("not an entity id"));
}

#[tokio::test]
async fn history_summarises_numbers_and_states() {
    let tool = GetEntityHistory::new(home(), Arc::new(FixedClock));
    let out = run(&tool, json!({"entity_ids": ["sensor.kitchen_temperature", "light.kitchen_ceiling"]})).await;
    assert_eq!(out["hours"], 24.0);
    let temp = &out["entities"][0];
    assert_eq!(temp["unit"], "°C");
    assert_eq!(temp["min"], 19.0);
    assert_eq!(temp["max"], 23.0);
    assert!(temp["mean"].as_f64().unwrap() > 19.0 && temp["mean"].as_f64().unwrap() < 23.0);
    assert!(temp.get("gaps").is_none(), "gaps only when detailed");
    let light = &out["entities"][1];
    assert_eq!(light["changes"], 2);
    assert_eq!(light["hours_in_state"], json!({"off": 21.0, "on": 3.0}));
    assert_eq!(light["latest"], "off");
}

#[tokio::test]
async fn detailed_history_finds_gaps_and_flatlines() {
    let tool = GetEntityHistory::new(home(), Arc::new(FixedClock));
    let out = run(&tool, json!({"entity_ids": "sensor.kitchen_temperature", "detailed": true})).await;
    let temp = &out["entities"][0];
    assert_eq!(temp["spacing_minutes"], 5.0);
    let gaps = temp["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{temp}");
    assert_eq!(gaps[0]["from"], "2025-12-31T18:00:00Z");
    assert_eq!(gaps[0]["to"], "2025-12-31T20:00:00Z");
    assert_eq!(gaps[0]["kind"], "no data");
    assert_eq!(gaps[0]["value_before"], "19.0");
    let flats = temp["flatlines"].as_array().unwrap();
    assert_eq!(flats.len(), 1, "{temp}");
    assert_eq!(flats[0]["value"], 19.0);
    assert_eq!(flats[0]["from"], "2025-12-31T10:00:00Z");

    let msg = fails(&tool, json!({"entity_ids": ["sensor.kitchen_temperature"], "hours": 1000})).await;
    assert!(msg.contains("`hours` must be a number from"), "{msg}");
    assert!(fails(&tool, json!({"entity_ids": []})).await.contains("required"));
    assert!(fails(&tool, json!({"entity_ids": ["sensor.nope"]})).await.contains("does not exist"));
}

#[tokio::test]
async fn control_previews_without_acting_and_then_acts() {
    let fake = home();
    let tool = ControlEntity::new(fake.clone());
    let args = json!({"entity_id": "light.kitchen_ceiling", "action": "turn_on", "data": {"brightness_pct": 40}});
    let preview = tool.preview(&args, &ctx()).await.unwrap();
    assert_eq!(
        preview.summary,
        "light.turn_on on Kitchen Ceiling (light.kitchen_ceiling, now off) with brightness_pct=40"
    );
    assert_eq!(preview.targets.len(), 1);
    assert_eq!(preview.targets[0].id, "light.kitchen_ceiling");
    assert_eq!(preview.targets[0].name.as_deref(), Some("Kitchen Ceiling"));
    assert_eq!(preview.targets[0].state.as_deref(), Some("off"));
    assert!(fake.calls().is_empty(), "a preview changes nothing");

    let out = run(&tool, args).await;
    assert_eq!(out["done"], "light.turn_on");
    assert_eq!(out["entities"][0]["was"], "off");
    assert_eq!(out["entities"][0]["now"], "on");
    assert_eq!(out["entities"][0]["attributes"]["brightness"], 102.0);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].full_name(), "light.turn_on");
    assert_eq!(calls[0].entity_ids, vec!["light.kitchen_ceiling".to_string()]);
    assert_eq!(calls[0].data, json!({"brightness_pct": 40}));
}

#[tokio::test]
async fn control_names_several_targets_and_accepts_a_qualified_action() {
    let tool = ControlEntity::new(home());
    let args = json!({"entity_id": ["light.kitchen_ceiling", "light.kitchen_counter", "light.hallway"], "action": "light.turn_off"});
    let preview = tool.preview(&args, &ctx()).await.unwrap();
    assert_eq!(
        preview.summary,
        "light.turn_off on Kitchen Ceiling (light.kitchen_ceiling, now off), Kitchen Counter \
(light.kitchen_counter, now on) and Hallway (light.hallway, now off)"
    );
    assert_eq!(preview.targets.len(), 3);
    let out = run(&tool, args).await;
    assert_eq!(out["entities"].as_array().unwrap().len(), 3);
    assert!(out.get("data").is_none());
}

#[tokio::test]
async fn control_refuses_bad_calls_before_anything_runs() {
    let fake = home();
    let tool = ControlEntity::new(fake.clone());
    let cases = [
        (
            json!({"entity_id": "light.kitchen_ceiling", "action": "open_cover"}),
            "valid actions: turn_on, turn_off, toggle",
        ),
        (json!({"entity_id": "light.nope", "action": "turn_on"}), "does not exist"),
        (json!({"entity_id": ["light.hallway", "switch.kettle"], "action": "turn_on"}), "one domain at a time"),
        (
            json!({"entity_id": "light.hallway", "action": "turn_on", "data": {"speed": 3}}),
            "does not take `speed`; it takes: brightness",
        ),
        (
            json!({"entity_id": "switch.kettle", "action": "turn_on", "data": {"brightness": 3}}),
            "switch.turn_on takes no data",
        ),
        (json!({"entity_id": "sensor.kitchen_temperature", "action": "turn_on"}), "cannot be controlled"),
        (json!({"entity_id": "light.hallway", "action": "switch.turn_on"}), "is a switch action"),
        (json!({"entity_id": "light.hallway"}), "`action` is required"),
        (
            json!({"entity_id": "light.hallway", "action": "turn_on", "data": {"entity_id": "light.x"}}),
            "not inside `data`",
        ),
        (json!({"entity_id": "light.hallway", "action": "turn_on", "data": [1]}), "`data` must be an object"),
    ];
    for (args, expected) in cases {
        let msg = fails(&tool, args.clone()).await;
        assert!(msg.contains(expected), "{args}: {msg}");
        let preview = tool.preview(&args, &ctx()).await;
        assert!(matches!(preview, Err(ToolError::InvalidArguments(_))), "{args}");
    }
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn logs_are_newest_first_and_filter_by_level() {
    let tool = GetHaLogs::new(home());
    let out = run(&tool, json!({})).await;
    assert_eq!(out["total"], 3);
    let loggers: Vec<&str> = out["entries"].as_array().unwrap().iter().map(|e| e["logger"].as_str().unwrap()).collect();
    assert_eq!(loggers, ["homeassistant.setup", "homeassistant.components.cast", "homeassistant.components.zha"]);
    let out = run(&tool, json!({"level": "warning"})).await;
    assert_eq!(out["total"], 2);
    assert_eq!(out["entries"][0]["level"], "ERROR");
    assert_eq!(out["entries"][0]["count"], 2);
    assert!(fails(&tool, json!({"level": "loud"})).await.contains("`level` must be one of"));
}

#[tokio::test]
async fn config_check_reports_validity() {
    let out = run(&CheckHaConfig::new(home()), json!({})).await;
    assert_eq!(out, json!({"valid": true, "errors": [], "warnings": []}));
    let mut broken = FakeHome::new();
    broken.config = ConfigCheck { valid: false, errors: vec!["automation x: bad".into()], warnings: vec![] };
    let out = run(&CheckHaConfig::new(Arc::new(broken)), Value::Null).await;
    assert_eq!(out["valid"], false);
    assert_eq!(out["errors"][0], "automation x: bad");
}

#[test]
fn home_errors_say_what_to_do_and_map_to_tool_errors() {
    let e = HomeError::Unauthorized("401".into());
    assert!(e.to_string().contains("HA_TOKEN"));
    let e = HomeError::Unreachable { url: "http://ha:8123".into(), reason: "connection refused".into() };
    assert!(e.to_string().contains("http://ha:8123") && e.to_string().contains("HA_URL"));
    assert!(e.is_transient());
    let e = HomeError::Timeout { what: "light.turn_on".into(), after: std::time::Duration::from_millis(1500) };
    assert!(e.to_string().contains("within 1.5s"), "{e}");
    assert!(matches!(ToolError::from(e), ToolError::Failed(_)));
    let e = HomeError::not_found("entity `light.x`");
    assert!(!e.is_transient());
    assert!(
        matches!(ToolError::from(e), ToolError::InvalidArguments(m) if m.contains("entity `light.x` does not exist"))
    );
    let e = HomeError::invalid("light.turn_on on light.a", "brightness_pct must be 0–100");
    assert_eq!(e.to_string(), "cannot do light.turn_on on light.a: brightness_pct must be 0–100");
    assert!(HomeError::UnexpectedReply("not JSON".into()).to_string().contains("proxy"));
}

#[test]
fn entity_ids_and_numbers_parse() {
    assert_eq!(domain_of("light.kitchen"), Some("light"));
    assert_eq!(domain_of("light."), None);
    assert_eq!(domain_of("Light.kitchen"), None);
    assert_eq!(domain_of("kitchen"), None);
    assert_eq!(parse_number(" 21.5"), Some(21.5));
    assert_eq!(parse_number("NaN"), None);
    assert_eq!(parse_number("on"), None);
}

const KETTLE_YAML: &str = "alias: Kettle off at night
triggers:
  - trigger: time
    at: '23:00:00'
actions:
  - action: switch.turn_off
    target:
      entity_id: switch.kettle
";

#[tokio::test]
async fn save_automation_previews_yaml_and_refuses_what_does_not_check() {
    let home = home();
    let tool = SaveAutomation::new(home.clone(), None);
    let preview = tool.preview(&json!({"id": "kettle_off", "yaml": KETTLE_YAML}), &ctx()).await.unwrap();
    assert_eq!(preview.summary, "create automation 'Kettle off at night' (kettle_off)");
    let details = preview.details.unwrap();
    assert!(details.starts_with("# automations/kettle_off.yaml\nalias: Kettle off at night\n"), "{details}");
    assert!(preview.targets.iter().any(|t| t.id == "switch.kettle"));

    let missing = KETTLE_YAML.replace("switch.kettle", "switch.teapot");
    match tool.preview(&json!({"id": "kettle_off", "yaml": missing}), &ctx()).await {
        Err(ToolError::InvalidArguments(m)) => assert!(m.contains("`switch.teapot` does not exist"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match tool.call(json!({"id": "kettle_off", "yaml": "alias: [unclosed"}), &ctx()).await {
        Err(ToolError::InvalidArguments(m)) => assert!(m.contains("not valid YAML"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(home.automations.lock().unwrap().is_empty(), "nothing was saved");
}

#[tokio::test]
async fn an_update_previews_a_yaml_diff() {
    let home = home();
    let tool = SaveAutomation::new(home.clone(), None);
    tool.call(json!({"id": "kettle_off", "yaml": KETTLE_YAML}), &ctx()).await.unwrap();
    let later = KETTLE_YAML.replace("23:00:00", "23:30:00");
    let preview = tool.preview(&json!({"id": "kettle_off", "yaml": later}), &ctx()).await.unwrap();
    assert!(preview.summary.starts_with("update automation"));
    let diff = preview.details.unwrap();
    assert!(diff.contains("\n-  at: '23:00:00'\n+  at: '23:30:00'\n"), "{diff}");
    assert!(diff.contains("\n alias: Kettle off at night\n"), "unchanged lines stay: {diff}");
}

#[tokio::test]
async fn an_automation_that_does_not_load_is_rolled_back() {
    let home = home();
    let tool = SaveAutomation::new(home.clone(), None);
    tool.call(json!({"id": "kettle_off", "yaml": KETTLE_YAML}), &ctx()).await.unwrap();
    let v1 = home.automations.lock().unwrap()["kettle_off"].clone();

    // An update that is written but never loads: the old version comes back.
    home.fail_next_load.store(true, std::sync::atomic::Ordering::SeqCst);
    let later = KETTLE_YAML.replace("23:00:00", "23:30:00");
    match tool.call(json!({"id": "kettle_off", "yaml": later}), &ctx()).await {
        Err(ToolError::Failed(m)) => assert!(m.contains("rolled back: restored the previous version"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(home.automations.lock().unwrap()["kettle_off"], v1);

    // A new one that never loads is removed again.
    home.fail_next_load.store(true, std::sync::atomic::Ordering::SeqCst);
    match tool.call(json!({"id": "kettle_new", "yaml": KETTLE_YAML}), &ctx()).await {
        Err(ToolError::Failed(m)) => assert!(m.contains("removed the new automation again"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(!home.automations.lock().unwrap().contains_key("kettle_new"));
}

#[tokio::test]
async fn validate_automation_reports_problems_as_data() {
    let tool = ValidateAutomation::new(home());
    let ok = run(&tool, json!({"yaml": KETTLE_YAML})).await;
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["entities"], json!(["switch.kettle"]));
    let bad = run(&tool, json!({"config": {"alias": "x", "triggers": [], "actions": [{"action": "nope"}]}})).await;
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2, "{bad}");
}
