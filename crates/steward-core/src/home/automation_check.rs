//! Checking an automation before it reaches the house: it parses (YAML or
//! JSON), its triggers, conditions and actions have the shapes Home
//! Assistant accepts, every entity it names exists, and — when the home can
//! — Home Assistant's own validator agrees.
//!
//! The checks run in the approval's preview, so a person is never asked to
//! approve an automation that cannot load, and again right before it is
//! written.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::Home;

/// Keys an action step may be recognised by (Home Assistant's script syntax).
const ACTION_KEYS: &[&str] = &[
    "action",
    "service",
    "delay",
    "wait_template",
    "wait_for_trigger",
    "event",
    "scene",
    "condition",
    "choose",
    "if",
    "repeat",
    "parallel",
    "sequence",
    "stop",
    "variables",
    "device_id",
    "set_conversation_response",
];

const MODES: &[&str] = &["single", "restart", "queued", "parallel"];

/// An automation that passed the checks, in the forms people and the house read.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedAutomation {
    /// The config as the automation API takes it (without `id`).
    pub config: Value,
    /// The same, as YAML with the usual key order.
    pub yaml: String,
    /// Every entity it refers to.
    pub entities: Vec<String>,
}

/// Parses an automation written as YAML (or JSON, which is YAML too). A
/// list holding one automation is accepted, as automations.yaml holds lists.
pub fn parse_automation_yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Err("the automation YAML is empty".into());
    }
    let value: Value = yaml_serde::from_str(text).map_err(|e| format!("the automation is not valid YAML: {e}"))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Array(mut items) if items.len() == 1 && items[0].is_object() => Ok(items.remove(0)),
        Value::Array(items) => Err(format!(
            "the YAML holds a list of {} items; send exactly one automation (a mapping with triggers and actions)",
            items.len()
        )),
        other => Err(format!("the automation must be a mapping with triggers and actions, not {}", kind(&other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// One item or a list of items, as Home Assistant accepts for triggers,
/// conditions and actions.
fn items<'a>(config: &'a Map<String, Value>, keys: [&str; 2]) -> Option<(String, Vec<&'a Value>)> {
    keys.iter().find_map(|k| {
        config.get(*k).map(|v| {
            let list = match v {
                Value::Array(items) => items.iter().collect(),
                Value::Null => Vec::new(),
                other => vec![other],
            };
            (k.to_string(), list)
        })
    })
}

/// The structural checks: every problem found, each naming where it is.
pub fn structure_errors(config: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(obj) = config.as_object() else {
        return vec![format!("the automation must be a mapping, not {}", kind(config))];
    };
    match obj.get("alias") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) | None => errors.push("`alias` is missing: give the automation a readable name".into()),
        Some(other) => errors.push(format!("`alias` must be text, not {}", kind(other))),
    }
    match obj.get("mode") {
        None => {}
        Some(Value::String(m)) if MODES.contains(&m.as_str()) => {}
        Some(other) => errors.push(format!("`mode` must be one of {}, not {other}", MODES.join(", "))),
    }
    match items(obj, ["triggers", "trigger"]) {
        None => errors.push("`triggers` is missing: an automation needs at least one trigger".into()),
        Some((key, list)) if list.is_empty() => errors.push(format!("`{key}` is empty: add at least one trigger")),
        Some((key, list)) => {
            for (i, t) in list.iter().enumerate() {
                let platform = t.get("trigger").or_else(|| t.get("platform"));
                match (t.as_object(), platform) {
                    (None, _) => errors.push(format!("{key}[{i}] must be a mapping, not {}", kind(t))),
                    (Some(_), Some(Value::String(p))) if !p.trim().is_empty() => {}
                    (Some(_), _) => {
                        errors.push(format!("{key}[{i}] has no `trigger:` naming its kind (state, time, sun, …)"))
                    }
                }
            }
        }
    }
    if let Some((key, list)) = items(obj, ["conditions", "condition"]) {
        for (i, c) in list.iter().enumerate() {
            match c {
                // A template condition written as a bare string.
                Value::String(s) if s.contains("{{") => {}
                Value::Object(m) if m.contains_key("condition") => {}
                Value::Object(_) => errors.push(format!("{key}[{i}] has no `condition:` naming its kind")),
                other => errors.push(format!("{key}[{i}] must be a mapping, not {}", kind(other))),
            }
        }
    }
    match items(obj, ["actions", "action"]) {
        None => errors.push("`actions` is missing: an automation needs at least one action".into()),
        Some((key, list)) if list.is_empty() => errors.push(format!("`{key}` is empty: add at least one action")),
        Some((key, list)) => {
            for (i, a) in list.iter().enumerate() {
                match a.as_object() {
                    None => errors.push(format!("{key}[{i}] must be a mapping, not {}", kind(a))),
                    Some(m) if ACTION_KEYS.iter().any(|k| m.contains_key(*k)) => {
                        if let Some(Value::String(service)) = m.get("action").or_else(|| m.get("service")) {
                            let ok = service.contains("{{")
                                || service.split_once('.').is_some_and(|(d, s)| !d.is_empty() && !s.is_empty());
                            if !ok {
                                errors.push(format!(
                                    "{key}[{i}]: `{service}` is not an action; write domain.service, e.g. light.turn_on"
                                ));
                            }
                        }
                    }
                    Some(_) => errors.push(format!(
                        "{key}[{i}] is not an action Home Assistant knows (expected a key such as `action: light.turn_on`, `delay` or `choose`)"
                    )),
                }
            }
        }
    }
    errors
}

/// Every entity id the automation names (`entity_id` anywhere, and
/// `scene:`), leaving out templates and the `all`/`none` keywords.
pub fn referenced_entities(config: &Value) -> Vec<String> {
    fn add(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => {
                for part in s.split(',') {
                    let id = part.trim();
                    if !id.is_empty() && !id.contains("{{") && id != "all" && id != "none" {
                        out.insert(id.to_string());
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| add(i, out)),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => {}
        }
    }
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "entity_id" || k == "scene" {
                        add(v, out);
                    }
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(config, &mut out);
    out.into_iter().collect()
}

/// Renders the config as YAML, with the keys in the order people write
/// them: alias first, then triggers, conditions, actions; and in each
/// trigger, condition or action the key that says what it is first.
pub fn to_yaml(config: &Value) -> String {
    let yaml = yaml_serde::to_string(&ordered(config)).unwrap_or_else(|_| config.to_string());
    yaml.lines().map(quote_yaml11_scalar).collect::<Vec<_>>().join("\n") + "\n"
}

/// Home Assistant reads YAML 1.1, where a plain `off`, `on`, `yes` or `no`
/// is a boolean and `23:00:00` a number in base 60; the emitter writes
/// YAML 1.2, where they are text. A plain scalar of that form can only have
/// come from text, so it is quoted, and the YAML means the same to both.
fn quote_yaml11_scalar(line: &str) -> String {
    let value_at = match line.rfind(": ") {
        Some(i) => i + 2,
        None => match line.trim_start().strip_prefix("- ") {
            Some(rest) => line.len() - rest.len(),
            None => return line.to_string(),
        },
    };
    let value = &line[value_at..];
    let word = matches!(value.to_ascii_lowercase().as_str(), "on" | "off" | "yes" | "no" | "y" | "n");
    let sexagesimal = {
        let parts: Vec<&str> = value.split(':').collect();
        parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if word || sexagesimal {
        format!("{}'{value}'", &line[..value_at])
    } else {
        line.to_string()
    }
}

fn ordered(v: &Value) -> yaml_serde::Value {
    const FIRST: &[&str] = &[
        "id",
        "alias",
        "description",
        "mode",
        "trigger",
        "platform",
        "condition",
        "action",
        "service",
        "triggers",
        "conditions",
        "actions",
    ];
    match v {
        Value::Object(obj) => {
            let mut out = yaml_serde::Mapping::new();
            let keys = FIRST
                .iter()
                .filter(|k| obj.contains_key(**k))
                .map(|k| k.to_string())
                .chain(obj.keys().filter(|k| !FIRST.contains(&k.as_str())).cloned());
            for key in keys {
                if let Some(value) = obj.get(&key) {
                    out.insert(yaml_serde::Value::String(key), ordered(value));
                }
            }
            yaml_serde::Value::Mapping(out)
        }
        Value::Array(items) => yaml_serde::Value::Sequence(items.iter().map(ordered).collect()),
        other => yaml_serde::to_value(other).unwrap_or(yaml_serde::Value::Null),
    }
}

/// Runs every check against `home`: structure, entities that exist, and
/// the house's own validator. `Err` lists every problem.
pub async fn check_automation(home: &dyn Home, config: Value) -> Result<CheckedAutomation, Vec<String>> {
    let mut config = config;
    if let Some(obj) = config.as_object_mut() {
        // The id travels separately (it names the automation in the API).
        obj.remove("id");
    }
    let mut errors = structure_errors(&config);
    let entities = referenced_entities(&config);
    match home.entities().await {
        Ok(known) => {
            let known: BTreeSet<&str> = known.iter().map(|e| e.entity_id.as_str()).collect();
            for id in &entities {
                if !known.contains(id.as_str()) {
                    errors.push(format!(
                        "entity `{id}` does not exist in this home; look it up with discover_entities and use its exact id"
                    ));
                }
            }
        }
        Err(e) => errors.push(format!("could not check the entities it names: {e}")),
    }
    if errors.is_empty() {
        match home.validate_automation(&config).await {
            Ok(found) => errors.extend(found),
            Err(e) => errors.push(format!("Home Assistant could not validate it: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let yaml = to_yaml(&config);
    Ok(CheckedAutomation { config, yaml, entities })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GOOD: &str = "alias: Porch light at sunset
description: Turns the porch light on when the sun sets
triggers:
  - trigger: sun
    event: sunset
conditions:
  - condition: state
    entity_id: binary_sensor.front_door
    state: 'off'
actions:
  - action: light.turn_on
    target:
      entity_id: light.porch
mode: single
";

    #[test]
    fn good_yaml_parses_and_passes_the_structure_checks() {
        let config = parse_automation_yaml(GOOD).unwrap_or_default();
        assert_eq!(config["alias"], "Porch light at sunset");
        assert_eq!(structure_errors(&config), Vec::<String>::new());
        assert_eq!(referenced_entities(&config), vec!["binary_sensor.front_door", "light.porch"]);
    }

    #[test]
    fn yaml_renders_with_alias_first_and_round_trips() {
        let config = parse_automation_yaml(GOOD).unwrap_or_default();
        let yaml = to_yaml(&config);
        assert!(yaml.starts_with("alias: Porch light at sunset\n"), "{yaml}");
        let triggers = yaml.find("triggers:").unwrap_or(usize::MAX);
        let actions = yaml.find("actions:").unwrap_or(0);
        assert!(triggers < actions, "{yaml}");
        assert!(yaml.contains("- trigger: sun\n  event: sunset\n"), "{yaml}");
        assert!(yaml.contains("- action: light.turn_on\n  target:"), "{yaml}");
        // Quoted, so Home Assistant's YAML 1.1 does not read a boolean.
        assert!(yaml.contains("  state: 'off'\n"), "{yaml}");
        assert_eq!(parse_automation_yaml(&yaml).ok(), Some(config));
    }

    #[test]
    fn text_that_yaml_1_1_would_misread_is_quoted() {
        let config = json!({"alias": "x", "triggers": [{"trigger": "time", "at": "23:00:00"}],
            "actions": [{"action": "switch.turn_off", "data": {"state": "on", "count": 3, "flag": true, "list": ["no", "maybe"]}}]});
        let yaml = to_yaml(&config);
        for quoted in ["at: '23:00:00'", "state: 'on'", "- 'no'"] {
            assert!(yaml.contains(quoted), "{quoted} in {yaml}");
        }
        for plain in ["count: 3", "flag: true", "- maybe"] {
            assert!(yaml.contains(plain), "{plain} in {yaml}");
        }
        assert_eq!(parse_automation_yaml(&yaml).ok(), Some(config));
    }

    #[test]
    fn a_one_item_list_is_accepted_and_other_shapes_are_refused() {
        let listed = format!("- {}", GOOD.replace('\n', "\n  "));
        assert!(parse_automation_yaml(&listed).is_ok());
        assert!(parse_automation_yaml("").unwrap_err().contains("empty"));
        assert!(parse_automation_yaml("just words").unwrap_err().contains("mapping"));
        assert!(parse_automation_yaml("a: [1, 2").unwrap_err().contains("not valid YAML"));
        assert!(parse_automation_yaml("- a: 1\n- b: 2").unwrap_err().contains("list of 2"));
    }

    #[test]
    fn structure_errors_name_each_problem() {
        let bad = json!({
            "triggers": [{"entity_id": "light.x"}, "sunset"],
            "conditions": [{"entity_id": "x"}],
            "actions": [{"action": "turn_on"}, {"frobnicate": 1}],
            "mode": "sometimes"
        });
        let errors = structure_errors(&bad);
        let text = errors.join("\n");
        for needle in [
            "`alias` is missing",
            "triggers[0] has no `trigger:`",
            "triggers[1] must be a mapping",
            "conditions[0] has no `condition:`",
            "`turn_on` is not an action",
            "actions[1] is not an action",
            "`mode` must be one of",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(structure_errors(&json!({"alias": "x", "triggers": [], "actions": []})).len() == 2);
    }

    #[test]
    fn old_singular_keys_and_templates_are_accepted() {
        let old = json!({
            "alias": "Old style",
            "trigger": {"platform": "state", "entity_id": "sensor.a, sensor.b"},
            "condition": "{{ is_state('sun.sun', 'below_horizon') }}",
            "action": [{"service": "scene.turn_on", "target": {"entity_id": "{{ target }}"}}, {"scene": "scene.evening"}]
        });
        assert_eq!(structure_errors(&old), Vec::<String>::new());
        assert_eq!(referenced_entities(&old), vec!["scene.evening", "sensor.a", "sensor.b"]);
    }
}
