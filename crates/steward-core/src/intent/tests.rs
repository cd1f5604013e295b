//! The engine on a small house of its own: scopes, capabilities, calls and
//! replies. The demo house's table of utterances lives in
//! steward-integrations (tests/suite/intent.rs).

use serde_json::{json, Value};

use super::*;
use crate::home::Area;

fn entity(id: &str, name: &str, aliases: &[&str], area: Option<&str>, state: &str, attributes: Value) -> Entity {
    Entity {
        entity_id: id.into(),
        domain: id.split('.').next().unwrap_or_default().into(),
        name: name.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        area_id: area.map(String::from),
        device_id: None,
        state: state.into(),
        attributes,
        last_changed: 0,
        last_updated: 0,
        available: state != "unavailable",
    }
}

fn area(id: &str, name: &str, aliases: &[&str]) -> Area {
    Area {
        area_id: id.into(),
        name: name.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        floor: None,
    }
}

/// A flat with no floors.
fn flat() -> (Vec<Entity>, Vec<Area>) {
    let areas = vec![
        area("kitchen", "Kitchen", &[]),
        area("living_room", "Living Room", &["lounge"]),
        area("office", "Office", &[]),
    ];
    let entities = vec![
        entity(
            "light.kitchen_ceiling",
            "Kitchen Ceiling",
            &["kitchen light"],
            Some("kitchen"),
            "on",
            json!({"supported_color_modes": ["brightness"], "brightness": 102}),
        ),
        entity(
            "light.kitchen_spots",
            "Kitchen Spots",
            &[],
            Some("kitchen"),
            "off",
            json!({"supported_color_modes": ["onoff"]}),
        ),
        entity(
            "light.desk",
            "Desk Lamp",
            &[],
            Some("office"),
            "on",
            json!({"supported_color_modes": ["rgb"], "brightness": 255}),
        ),
        entity("switch.kettle", "Kettle", &[], Some("kitchen"), "off", json!({})),
        entity("lock.front", "Front Door", &[], None, "locked", json!({})),
        entity("cover.garage", "Garage Door", &[], None, "closed", json!({})),
        entity("media_player.speaker", "Speaker", &[], Some("kitchen"), "playing", json!({"volume_level": 0.5})),
        entity(
            "sensor.kitchen_temperature",
            "Kitchen Temperature",
            &[],
            Some("kitchen"),
            "20.5",
            json!({"device_class": "temperature", "unit_of_measurement": "°C"}),
        ),
        entity(
            "climate.lounge",
            "Lounge Thermostat",
            &[],
            Some("living_room"),
            "heat",
            json!({"temperature": 20, "min_temp": 10, "max_temp": 25, "hvac_action": "idle"}),
        ),
    ];
    (entities, areas)
}

fn engine() -> IntentEngine {
    let (entities, areas) = flat();
    IntentEngine::new(entities, areas)
}

fn control(engine: &IntentEngine, text: &str) -> (Action, Vec<String>, Value) {
    let u = engine.understand(text).unwrap_or_else(|| panic!("{text:?} not understood"));
    assert!(u.is_confident(), "{text:?}: {u:?}");
    assert!(u.is_mutation());
    match u.intent {
        Intent::Control { action, data, .. } => (action, u.targets, data),
        Intent::Query { .. } => panic!("{text:?} is a question: {u:?}"),
    }
}

fn handed_over(engine: &IntentEngine, text: &str) -> bool {
    engine.understand(text).is_none_or(|u| !u.is_confident())
}

#[test]
fn floor_words_need_floors() {
    let engine = engine();
    assert!(handed_over(&engine, "turn off the lights downstairs"));
    assert!(handed_over(&engine, "turn off the lights upstairs"));
    let (action, targets, _) = control(&engine, "turn off the kitchen lights");
    assert_eq!(action, Action::TurnOff);
    assert_eq!(targets, ["light.kitchen_ceiling", "light.kitchen_spots"]);
}

#[test]
fn a_plural_is_a_set_and_a_singular_alias_one_thing() {
    let engine = engine();
    let (_, targets, _) = control(&engine, "turn on the kitchen light");
    assert_eq!(targets, ["light.kitchen_ceiling"]);
    let (_, targets, _) = control(&engine, "turn on the kitchen lights");
    assert_eq!(targets.len(), 2);
}

#[test]
fn values_go_only_to_targets_that_take_them() {
    let engine = engine();
    // A set drops the light that only switches; that light alone hands over.
    let (_, targets, data) = control(&engine, "set the kitchen lights to 50%");
    assert_eq!(targets, ["light.kitchen_ceiling"]);
    assert_eq!(data, json!({"brightness_pct": 50}));
    assert!(handed_over(&engine, "set the kitchen spots to 50%"));
    // Colour only on a colour light.
    let (_, _, data) = control(&engine, "make the desk lamp red");
    assert_eq!(data, json!({"color_name": "red"}));
    assert!(handed_over(&engine, "make the kitchen ceiling red"));
    // A cover that does not say what it supports only opens and closes.
    assert_eq!(control(&engine, "open the garage door").0, Action::OpenCover);
    assert!(handed_over(&engine, "garage door to 30%"));
    assert!(handed_over(&engine, "stop the garage door"));
    // A thermostat within its range only.
    assert_eq!(control(&engine, "set the lounge to 24 degrees").2, json!({"temperature": 24}));
    assert!(handed_over(&engine, "set the lounge to 26 degrees"));
    assert!(handed_over(&engine, "set the lounge to 9 degrees"));
}

#[test]
fn numbers_in_words_and_typos() {
    let engine = engine();
    let (_, targets, data) = control(&engine, "set the dsek lamp to twenty five percent");
    assert_eq!(targets, ["light.desk"]);
    assert_eq!(data, json!({"brightness_pct": 25}));
    let (_, _, data) = control(&engine, "set the lounge thermostat to twenty one point five");
    assert_eq!(data, json!({"temperature": 21.5}));
}

#[test]
fn every_word_must_be_explained() {
    let engine = engine();
    assert!(handed_over(&engine, "turn on the purple kitchen light"));
    assert!(handed_over(&engine, "turn on the kitchen light for the cat"));
    assert!(handed_over(&engine, "turn on the kitchen light and the toaster"));
    assert!(handed_over(&engine, ""));
    assert!(handed_over(&engine, "   "));
    assert!(handed_over(&engine, "?"));
    let long = "turn on the kitchen light ".repeat(10);
    assert!(handed_over(&engine, &long));
}

#[test]
fn politeness_is_ignored() {
    let engine = engine();
    for text in [
        "please turn on the kettle",
        "hey steward, could you turn on the kettle please",
        "would you turn on the kettle, thanks",
        "ok go ahead and turn on the kettle now",
    ] {
        let (action, targets, _) = control(&engine, text);
        assert_eq!((action, targets.as_slice()), (Action::TurnOn, &["switch.kettle".to_string()][..]), "{text:?}");
    }
}

#[test]
fn unlock_must_name_one_lock_exactly() {
    let engine = engine();
    let (action, targets, _) = control(&engine, "unlock the front door");
    assert_eq!((action, targets.as_slice()), (Action::Unlock, &["lock.front".to_string()][..]));
    assert!(handed_over(&engine, "unlock the frnt door"));
    assert!(handed_over(&engine, "unlock all the doors"));
    assert_eq!(control(&engine, "lock all the doors").0, Action::Lock);
}

#[test]
fn many_targets_are_split_into_calls_of_fifty() {
    let areas = vec![area("hall", "Hall", &[])];
    let entities: Vec<Entity> = (0..60)
        .map(|i| entity(&format!("light.hall_{i}"), &format!("Hall Spot {i}"), &[], Some("hall"), "on", json!({})))
        .collect();
    let engine = IntentEngine::new(entities, areas);
    let u = engine.understand("turn off all the lights in the hall").unwrap();
    assert_eq!(u.targets.len(), 60);
    let calls = u.control_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["entity_id"].as_array().map(Vec::len), Some(50));
    assert_eq!(calls[1]["entity_id"].as_array().map(Vec::len), Some(10));
    assert_eq!(calls[1]["action"], "turn_off");
    assert!(calls[1].get("data").is_none());
    let services = u.service_calls();
    assert_eq!(services[0].full_name(), "light.turn_off");
    // Replies count what they cannot list.
    let q = engine.understand("which lights are on in the hall?").unwrap();
    let answer = q.answer(&engine.index.entities).unwrap();
    assert!(answer.starts_with("60 lights are on in the hall: Hall Spot 0, Hall Spot 1,"), "{answer}");
    assert!(answer.ends_with("Hall Spot 7 and 52 more."), "{answer}");
    let done: Vec<Entity> = engine.index.entities.iter().map(|e| Entity { state: "off".into(), ..e.clone() }).collect();
    assert_eq!(u.confirmation(&done).as_deref(), Some("60 lights in the hall are off."));
}

#[test]
fn questions_and_their_answers() {
    let engine = engine();
    let states = flat().0;
    let ask = |text: &str| {
        let u = engine.understand(text).unwrap_or_else(|| panic!("{text:?} not understood"));
        assert!(u.is_confident() && !u.is_mutation(), "{text:?}: {u:?}");
        assert!(u.control_calls().is_empty());
        assert_eq!(u.confirmation(&states), None);
        u.answer(&states).unwrap_or_default()
    };
    assert_eq!(ask("what's the temperature in the kitchen?"), "Kitchen temperature is 20.5 °C.");
    // No sensor there: the thermostat's own reading, which it does not have.
    assert_eq!(ask("how warm is it in the lounge?"), "The lounge thermostat has no temperature reading.");
    assert_eq!(ask("is the front door locked?"), "Yes, the front door is locked.");
    assert_eq!(ask("which lights are on?"), "2 lights are on: Kitchen Ceiling and Desk Lamp.");
    assert_eq!(ask("are any doors unlocked?"), "No doors are unlocked.");
    assert_eq!(ask("are all the lights on in the kitchen?"), "No, Kitchen Spots is not on.");
    // A room with nothing of that kind is for the model to explain.
    assert!(engine.understand("are any lights on in the living room?").is_none());
    assert_eq!(ask("how bright is the kitchen light"), "The kitchen ceiling is at 40%.");
    assert_eq!(ask("what is the lounge thermostat set to?"), "The lounge thermostat is set to 20°.");
    assert_eq!(ask("is the kettle on?"), "No, the kettle is off.");
    assert_eq!(ask("is anything on in the kitchen?"), "2 things are on in the kitchen: Kitchen Ceiling and Speaker.");
    // Answers need the targets' states.
    let u = engine.understand("is the kettle on?").unwrap();
    assert_eq!(u.answer(&[]), None);
}

#[test]
fn confirmations_describe_the_new_state() {
    let engine = engine();
    let u = engine.understand("set the kitchen light to 40%").unwrap();
    let states = flat().0;
    assert_eq!(u.confirmation(&states).as_deref(), Some("Kitchen Ceiling is on at 40%."));
    let u = engine.understand("turn off the kitchen lights").unwrap();
    let mut after = flat().0;
    after[0].state = "off".into();
    assert_eq!(u.confirmation(&after).as_deref(), Some("Kitchen Ceiling and Kitchen Spots are off."));
    let u = engine.understand("volume to 30").unwrap();
    let mut after = flat().0;
    after[6].attributes["volume_level"] = json!(0.3);
    assert_eq!(u.confirmation(&after).as_deref(), Some("Speaker is at volume 30%."));
}

#[test]
fn states_update_in_place() {
    let mut engine = engine();
    assert!(engine.understand("resume").is_none());
    let mut speaker = flat().0.remove(6);
    speaker.state = "paused".into();
    assert!(engine.update_state(&speaker));
    assert_eq!(engine.understand("resume").map(|u| u.targets), Some(vec!["media_player.speaker".to_string()]));
    assert_eq!(engine.entity_count(), 9);
}

#[test]
fn states_can_come_with_the_utterance() {
    let engine = engine();
    let mut now = flat().0;
    now[6].state = "paused".into();
    // In the order the engine was built from, and in any other.
    let resumed = |states: &[Entity]| engine.understand_with("resume", states).map(|u| u.targets);
    assert_eq!(resumed(&now), Some(vec!["media_player.speaker".to_string()]));
    now.reverse();
    assert_eq!(resumed(&now), Some(vec!["media_player.speaker".to_string()]));
    // Entities left out keep the snapshot's state.
    assert_eq!(resumed(&[]), None);
    assert!(engine.understand("resume").is_none());
}
