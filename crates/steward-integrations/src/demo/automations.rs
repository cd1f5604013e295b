//! The demo house's automations: kept in memory, checked on the way in for
//! shape (an object with triggers and actions), and checked in depth by the
//! configuration check (known trigger platforms, entities that exist,
//! services their domains offer), as Home Assistant does.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use steward_core::home::{Automation, ConfigCheck, Entity, HomeError};

use super::services;

/// Trigger platforms Home Assistant knows.
const TRIGGER_PLATFORMS: &[&str] = &[
    "calendar",
    "conversation",
    "device",
    "event",
    "geo_location",
    "homeassistant",
    "mqtt",
    "numeric_state",
    "persistent_notification",
    "state",
    "sun",
    "tag",
    "template",
    "time",
    "time_pattern",
    "webhook",
    "zone",
];

/// Service domains the demo cannot check but a house commonly calls.
const UNCHECKED_DOMAINS: &[&str] =
    &["homeassistant", "logbook", "notify", "persistent_notification", "scene", "script", "system_log", "tts"];

const MODES: &[&str] = &["single", "restart", "queued", "parallel"];

fn what(id: &str) -> String {
    format!("automation `{id}`")
}

/// The items of a config key that may hold one object or a list.
fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(list) => list.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The value under the current key name or its older singular form
/// (`triggers` / `trigger`), refusing both at once.
fn section<'a>(id: &str, config: &'a Value, plural: &str, singular: &str) -> Result<Option<&'a Value>, HomeError> {
    match (config.get(plural), config.get(singular)) {
        (Some(_), Some(_)) => Err(HomeError::invalid(what(id), format!("give `{plural}` or `{singular}`, not both"))),
        (Some(v), None) | (None, Some(v)) => Ok(Some(v)),
        (None, None) => Ok(None),
    }
}

/// Checks that an id can name an automation.
pub(crate) fn check_id(id: &str) -> Result<(), HomeError> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(HomeError::invalid(
            what(id),
            "an automation id is 1 to 64 letters, digits, `_` or `-`, e.g. `morning_lights`",
        ))
    }
}

/// Checks the shape Home Assistant requires before it stores an automation.
pub(crate) fn check_shape(id: &str, config: &Value) -> Result<(), HomeError> {
    check_id(id)?;
    if !config.is_object() {
        return Err(HomeError::invalid(
            what(id),
            "the configuration must be a JSON object with `triggers` and `actions`",
        ));
    }
    let triggers = section(id, config, "triggers", "trigger")?.map(items).unwrap_or_default();
    if triggers.is_empty() {
        return Err(HomeError::invalid(
            what(id),
            "it needs at least one trigger under `triggers`, e.g. [{\"trigger\": \"time\", \"at\": \"07:00:00\"}]",
        ));
    }
    for (i, trigger) in triggers.iter().enumerate() {
        let platform = trigger.get("trigger").or_else(|| trigger.get("platform")).and_then(Value::as_str);
        if platform.is_none() {
            return Err(HomeError::invalid(
                what(id),
                format!("trigger {} must be an object that names its kind, e.g. {{\"trigger\": \"state\", …}}", i + 1),
            ));
        }
    }
    let actions = section(id, config, "actions", "action")?.map(items).unwrap_or_default();
    if actions.is_empty() {
        return Err(HomeError::invalid(
            what(id),
            "it needs at least one action under `actions`, e.g. [{\"action\": \"light.turn_on\", \"target\": {\"entity_id\": \"light.hallway\"}}]",
        ));
    }
    if let Some(i) = actions.iter().position(|a| !a.is_object()) {
        return Err(HomeError::invalid(what(id), format!("action {} must be an object", i + 1)));
    }
    let conditions = section(id, config, "conditions", "condition")?.map(items).unwrap_or_default();
    if let Some(i) = conditions.iter().position(|c| !(c.is_object() || c.is_string())) {
        return Err(HomeError::invalid(what(id), format!("condition {} must be an object or a template", i + 1)));
    }
    if let Some(mode) = config.get("mode") {
        if !mode.as_str().is_some_and(|m| MODES.contains(&m)) {
            return Err(HomeError::invalid(
                what(id),
                format!("`mode` must be one of {}, not {mode}", MODES.join(", ")),
            ));
        }
    }
    if let Some(alias) = config.get("alias") {
        if !alias.is_string() {
            return Err(HomeError::invalid(what(id), "`alias` must be text"));
        }
    }
    Ok(())
}

/// `automation.<alias in snake case>`, made unique among `taken`.
pub(crate) fn entity_id_for(alias: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut slug = String::new();
    for c in alias.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    let slug = if slug.is_empty() { "automation" } else { slug };
    let mut id = format!("automation.{slug}");
    let mut n = 2;
    while taken(&id) {
        id = format!("automation.{slug}_{n}");
        n += 1;
    }
    id
}

/// Every `entity_id` a part of a configuration names (templates skipped).
fn entity_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "entity_id" {
                    for id in items(v) {
                        if let Some(id) = id.as_str().filter(|s| !s.contains("{{")) {
                            out.push(id.to_string());
                        }
                    }
                } else {
                    entity_refs(v, out);
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| entity_refs(v, out)),
        _ => {}
    }
}

/// Every service an action part calls (`action` or the older `service`).
fn service_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("action" | "service", Some(s)) if s.contains('.') && !s.contains("{{") => out.push(s.to_string()),
                    _ => service_refs(v, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| service_refs(v, out)),
        _ => {}
    }
}

/// The configuration check over every stored automation.
pub(crate) fn check_all(
    automations: &BTreeMap<String, Automation>,
    entities: &BTreeMap<String, Entity>,
) -> ConfigCheck {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for automation in automations.values() {
        let label = format!("Automation '{}' ({})", automation.alias, automation.id);
        let config = &automation.config;
        if let Err(e) = check_shape(&automation.id, config) {
            errors.push(format!("{label}: {e}"));
            continue;
        }
        let triggers = config.get("triggers").or_else(|| config.get("trigger")).map(items).unwrap_or_default();
        for (i, trigger) in triggers.iter().enumerate() {
            let platform = trigger.get("trigger").or_else(|| trigger.get("platform")).and_then(Value::as_str);
            if let Some(p) = platform.filter(|p| !TRIGGER_PLATFORMS.contains(p)) {
                errors.push(format!(
                    "{label}: trigger {} has unknown kind `{p}`; known kinds: {}",
                    i + 1,
                    TRIGGER_PLATFORMS.join(", ")
                ));
            }
        }
        let mut refs = Vec::new();
        entity_refs(config, &mut refs);
        refs.dedup();
        for id in refs.iter().filter(|id| !entities.contains_key(id.as_str())) {
            errors.push(format!("{label}: refers to entity `{id}`, which does not exist"));
        }
        let mut calls = Vec::new();
        if let Some(actions) = config.get("actions").or_else(|| config.get("action")) {
            service_refs(actions, &mut calls);
        }
        for call in calls {
            let Some((domain, service)) = call.split_once('.') else { continue };
            if services::DOMAINS.contains(&domain) {
                if !services::services(domain).iter().any(|d| d.service == service) {
                    errors.push(format!("{label}: calls `{call}`: {}", services::unknown_service(domain, service)));
                }
            } else if !UNCHECKED_DOMAINS.contains(&domain) {
                warnings.push(format!("{label}: calls `{call}`, a service of an integration this house does not have"));
            }
        }
    }
    ConfigCheck { valid: errors.is_empty(), errors, warnings }
}

/// The automations the demo house starts with: (id, config, last triggered
/// how many milliseconds before now).
pub(crate) fn seeds() -> Vec<(&'static str, Value, i64)> {
    const HOUR: i64 = 3_600_000;
    vec![
        (
            "evening_lights",
            json!({
                "alias": "Evening lights",
                "description": "Turns the floor lamp on half an hour before sunset.",
                "mode": "single",
                "triggers": [{"trigger": "sun", "event": "sunset", "offset": "-00:30:00"}],
                "conditions": [{"condition": "state", "entity_id": "input_boolean.vacation_mode", "state": "off"}],
                "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.living_room_floor_lamp"}, "data": {"brightness_pct": 55}}]
            }),
            6 * HOUR,
        ),
        (
            "garden_irrigation",
            json!({
                "alias": "Water the garden at dawn",
                "description": "Runs the irrigation for twenty minutes when the soil is dry.",
                "mode": "single",
                "triggers": [{"trigger": "time", "at": "06:00:00"}],
                "conditions": [{"condition": "numeric_state", "entity_id": "sensor.garden_soil_moisture", "below": 40}],
                "actions": [
                    {"action": "switch.turn_on", "target": {"entity_id": "switch.garden_irrigation"}},
                    {"delay": "00:20:00"},
                    {"action": "switch.turn_off", "target": {"entity_id": "switch.garden_irrigation"}}
                ]
            }),
            12 * HOUR,
        ),
        (
            "night_lock",
            json!({
                "alias": "Lock up at night",
                "description": "Locks the doors and arms the alarm at 23:30.",
                "mode": "single",
                "triggers": [{"trigger": "time", "at": "23:30:00"}],
                "actions": [
                    {"action": "lock.lock", "target": {"entity_id": ["lock.front_door", "lock.back_door"]}},
                    {"action": "alarm_control_panel.alarm_arm_night", "target": {"entity_id": "alarm_control_panel.home_alarm"}}
                ]
            }),
            18 * HOUR,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_with_reasons() {
        let ok = json!({"triggers": [{"trigger": "time", "at": "07:00:00"}], "actions": [{"action": "light.turn_on"}]});
        assert!(check_shape("wake_up", &ok).is_ok());
        let legacy =
            json!({"trigger": {"platform": "state", "entity_id": "x.y"}, "action": {"service": "light.turn_on"}});
        assert!(check_shape("legacy", &legacy).is_ok());
        let cases = [
            ("bad id!", ok.clone(), "automation id"),
            ("a", json!([1]), "JSON object"),
            ("a", json!({"actions": [{"action": "x.y"}]}), "at least one trigger"),
            ("a", json!({"triggers": [], "actions": [{"action": "x.y"}]}), "at least one trigger"),
            ("a", json!({"triggers": [{"at": "07:00"}], "actions": [{"action": "x.y"}]}), "names its kind"),
            ("a", json!({"triggers": [{"trigger": "time"}]}), "at least one action"),
            ("a", json!({"triggers": [{"trigger": "time"}], "actions": ["x"]}), "action 1 must be an object"),
            ("a", json!({"triggers": [{"trigger": "time"}], "trigger": [], "actions": [{}]}), "not both"),
            (
                "a",
                json!({"triggers": [{"trigger": "time"}], "actions": [{}], "mode": "often"}),
                "`mode` must be one of",
            ),
        ];
        for (id, config, expected) in cases {
            let e = check_shape(id, &config).unwrap_err();
            assert!(matches!(e, HomeError::InvalidRequest { .. }), "{e:?}");
            assert!(e.to_string().contains(expected), "{config}: {e}");
        }
    }

    #[test]
    fn entity_ids_come_from_the_alias() {
        assert_eq!(entity_id_for("Evening lights!", |_| false), "automation.evening_lights");
        assert_eq!(entity_id_for("Lights", |id| id == "automation.lights"), "automation.lights_2");
        assert_eq!(entity_id_for("???", |_| false), "automation.automation");
    }

    #[test]
    fn references_are_found_in_nested_actions() {
        let config = json!({"actions": [{"choose": [{"conditions": [{"entity_id": "a.b"}], "sequence": [{"action": "light.turn_on", "target": {"entity_id": ["c.d", "{{ x }}"]}}]}]}]});
        let mut entities = Vec::new();
        entity_refs(&config, &mut entities);
        assert_eq!(entities, vec!["a.b", "c.d"]);
        let mut calls = Vec::new();
        service_refs(&config["actions"], &mut calls);
        assert_eq!(calls, vec!["light.turn_on"]);
    }
}
