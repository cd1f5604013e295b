//! Short, natural replies computed from states: answers to questions ("The
//! garage door is closed.", "Bedroom temperature is 19.5 °C.", "3 lights
//! are on: …") and confirmations of finished commands ("Kitchen Ceiling is
//! on at 40%.").

use serde_json::Value;

use super::lexicon::{Noun, StateWord};
use super::numbers::number_text;
use super::tokens::{join_and, soft_lower};
use super::{Intent, QueryKind, Understanding};
use crate::home::{Entity, UNAVAILABLE, UNKNOWN};

/// Names listed one by one at most; the rest are counted.
const LISTED: usize = 8;
/// Targets confirmed one by one at most.
const CONFIRMED: usize = 4;

fn targets<'a>(u: &Understanding, states: &'a [Entity]) -> Vec<&'a Entity> {
    u.targets.iter().filter_map(|id| states.iter().find(|e| &e.entity_id == id)).collect()
}

pub(super) fn answer(u: &Understanding, states: &[Entity]) -> Option<String> {
    let Intent::Query { kind, attribute, expect } = &u.intent else {
        return None;
    };
    let targets = targets(u, states);
    if targets.is_empty() {
        return None;
    }
    let noun = u.subject.noun.clone().unwrap_or_else(|| Noun::new("thing", "things"));
    let place = u.subject.place.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
    Some(match kind {
        QueryKind::State => match (targets.as_slice(), expect) {
            ([one], Some(x)) => yes_no(one, *x),
            ([one], None) => format!("{}.", describe(one)),
            (many, Some(x)) if many.len() > CONFIRMED => listing(many, *x, &noun, &place),
            (many, Some(x)) => {
                let holding = many.iter().filter(|e| x.holds(e)).count();
                let answer = match holding {
                    0 => "No, ",
                    n if n == many.len() => "Yes, ",
                    _ => "",
                };
                capitalise(&format!("{answer}{}.", grouped(many, &state_phrase)))
            }
            (many, None) => format!("{}.", grouped(many, &state_phrase)),
        },
        QueryKind::Attribute => {
            let attribute = attribute.as_deref()?;
            let parts: Vec<String> = targets.iter().map(|e| attribute_text(e, attribute)).collect();
            format!("{}.", parts.join("; "))
        }
        QueryKind::List => listing(&targets, (*expect)?, &noun, &place),
        QueryKind::Every => {
            let x = (*expect)?;
            let not: Vec<&Entity> = targets.iter().copied().filter(|e| !x.holds(e)).collect();
            if not.is_empty() {
                match targets.len() {
                    1 => format!("Yes, {} is {}.", the(&targets[0].name), x.as_str()),
                    2 => format!("Yes, both {} are {}{place}.", noun.many, x.as_str()),
                    n => format!("Yes, all {n} {} are {}{place}.", noun.many, x.as_str()),
                }
            } else {
                let names = names(&not);
                let verb = if not.len() == 1 { "is" } else { "are" };
                format!("No, {names} {verb} not {}.", x.as_str())
            }
        }
    })
}

/// The entities grouped by how they are, in order of first appearance.
fn groups<'a>(entities: &[&'a Entity], phrase: &dyn Fn(&Entity) -> String) -> Vec<(String, Vec<&'a Entity>)> {
    let mut groups: Vec<(String, Vec<&Entity>)> = Vec::new();
    for e in entities {
        let p = phrase(e);
        match groups.iter_mut().find(|(q, _)| *q == p) {
            Some((_, list)) => list.push(e),
            None => groups.push((p, vec![e])),
        }
    }
    groups
}

/// "Kitchen Ceiling and Kitchen Counter Strip are off", "Kitchen Ceiling
/// is on at 40%; Kitchen Counter Strip is off".
fn grouped(entities: &[&Entity], phrase: &dyn Fn(&Entity) -> String) -> String {
    let parts: Vec<String> = groups(entities, phrase)
        .into_iter()
        .map(|(p, list)| {
            let verb = match list.as_slice() {
                [one] => is_are(&one.name),
                _ => "are",
            };
            format!("{} {verb} {p}", names(&list))
        })
        .collect();
    parts.join("; ")
}

/// "3 lights are on: Kitchen Ceiling, Hallway Light and Desk Lamp.",
/// "No doors are unlocked."
fn listing(targets: &[&Entity], x: StateWord, noun: &Noun, place: &str) -> String {
    let matching: Vec<&Entity> = targets.iter().copied().filter(|e| x.holds(e)).collect();
    match matching.len() {
        0 => format!("No {} are {}{place}.", noun.many, x.as_str()),
        n => {
            let verb = if n == 1 { "is" } else { "are" };
            format!("{} {verb} {}{place}: {}.", noun.count(n), x.as_str(), names(&matching))
        }
    }
}

/// "Front Door Lock and Back Door Lock", "A, B, … and 4 more".
fn names(entities: &[&Entity]) -> String {
    let mut listed: Vec<String> = entities.iter().take(LISTED).map(|e| e.name.clone()).collect();
    if entities.len() > LISTED {
        listed.push(format!("{} more", entities.len() - LISTED));
    }
    join_and(&listed)
}

/// "the garage door", "the TV backlight".
fn the(name: &str) -> String {
    format!("the {}", soft_lower(name))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether a name reads as a plural ("Living Room Blinds", "Garden Path Lights").
fn plural_name(name: &str) -> bool {
    let last = name.rsplit(' ').next().unwrap_or(name).to_lowercase();
    last.len() > 3 && last.ends_with('s') && !["ss", "us", "is"].iter().any(|s| last.ends_with(s))
}

fn is_are(name: &str) -> &'static str {
    if plural_name(name) {
        "are"
    } else {
        "is"
    }
}

/// "No, the garage door is closed."
fn yes_no(e: &Entity, x: StateWord) -> String {
    if !e.available || e.state == UNAVAILABLE {
        return format!("{}.", describe(e));
    }
    let answer = if x.holds(e) { "Yes" } else { "No" };
    format!("{answer}, {}.", describe_with(e, &the(&e.name)))
}

fn is_reading(e: &Entity) -> bool {
    e.domain == "sensor"
}

/// "Bedroom temperature is 19.5 °C", "The garage door is closed".
fn describe(e: &Entity) -> String {
    if is_reading(e) {
        let name = capitalise(&soft_lower(&e.name));
        return format!("{name} {} {}", is_are(&e.name), state_phrase(e));
    }
    capitalise(&describe_with(e, &the(&e.name)))
}

fn describe_with(e: &Entity, name: &str) -> String {
    format!("{name} {} {}", is_are(&e.name), state_phrase(e))
}

fn number_attr(e: &Entity, key: &str) -> Option<f64> {
    e.attribute(key).and_then(Value::as_f64)
}

fn percent_of_255(v: f64) -> String {
    format!("{}%", (v / 255.0 * 100.0).round())
}

/// A reading with its unit: "19.5 °C", "45%", "530 W".
fn reading(e: &Entity) -> String {
    match (e.unit(), e.numeric_state()) {
        (Some("%"), Some(_)) => format!("{}%", e.state),
        (Some(unit), Some(_)) => format!("{} {unit}", e.state),
        _ => e.state.replace('_', " "),
    }
}

/// The state in words: "on at 40%", "closed", "open at 30%", "playing
/// Morning Show", "heating to 21°", "19.5 °C".
pub(crate) fn state_phrase(e: &Entity) -> String {
    let state = e.state.as_str();
    if !e.available || state == UNAVAILABLE {
        return "unavailable".into();
    }
    if state == UNKNOWN {
        return "not reporting a value yet".into();
    }
    let class = e.device_class().unwrap_or("");
    match e.domain.as_str() {
        "sensor" => reading(e),
        "light" if state == "on" => match number_attr(e, "brightness") {
            Some(b) => format!("on at {}", percent_of_255(b)),
            None => "on".into(),
        },
        "fan" if state == "on" => match number_attr(e, "percentage") {
            Some(p) => format!("on at {}%", number_text(p)),
            None => "on".into(),
        },
        "cover" => match number_attr(e, "current_position") {
            Some(p) if state == "open" && p > 0.0 && p < 100.0 => format!("open at {}%", number_text(p)),
            _ => state.into(),
        },
        "binary_sensor" => binary_phrase(class, state == "on").into(),
        "climate" if state == "off" => "off".into(),
        "climate" => {
            let target = number_attr(e, "temperature").map(number_text);
            match (e.attribute("hvac_action").and_then(Value::as_str), target) {
                (Some("heating"), Some(t)) => format!("heating to {t}°"),
                (Some("cooling"), Some(t)) => format!("cooling to {t}°"),
                (_, Some(t)) => format!("set to {t}° ({})", state.replace('_', " ")),
                (_, None) => format!("on {}", state.replace('_', " ")),
            }
        }
        "media_player" if state == "playing" => {
            match (
                e.attribute("media_title").and_then(Value::as_str),
                e.attribute("media_artist").and_then(Value::as_str),
            ) {
                (Some(title), Some(artist)) => format!("playing {title} by {artist}"),
                (Some(title), None) => format!("playing {title}"),
                _ => "playing".into(),
            }
        }
        "vacuum" => match state {
            "cleaning" => "cleaning".into(),
            "docked" => "docked".into(),
            "returning" => "going back to its dock".into(),
            other => other.replace('_', " "),
        },
        "alarm_control_panel" => state.replace('_', " "),
        _ => state.replace('_', " "),
    }
}

fn binary_phrase(class: &str, on: bool) -> &'static str {
    match (class, on) {
        ("door" | "window" | "garage_door" | "opening" | "gate", true) => "open",
        ("door" | "window" | "garage_door" | "opening" | "gate", false) => "closed",
        ("motion" | "occupancy" | "presence", true) => "detecting motion",
        ("motion" | "occupancy" | "presence", false) => "clear",
        ("moisture", true) => "detecting water",
        ("moisture", false) => "dry",
        ("running", true) => "running",
        ("running", false) => "not running",
        ("battery", true) => "low",
        ("battery", false) => "fine",
        (_, true) => "on",
        (_, false) => "off",
    }
}

/// One attribute in words: "The kitchen ceiling is at 78%", "The living
/// room thermostat is set to 21°".
fn attribute_text(e: &Entity, attribute: &str) -> String {
    let name = capitalise(&the(&e.name));
    let be = is_are(&e.name);
    let off = matches!(e.state.as_str(), "off" | UNAVAILABLE) || !e.available;
    match attribute {
        "brightness" if off => format!("{name} {be} {}", state_phrase(e)),
        "brightness" => match number_attr(e, "brightness") {
            Some(b) => format!("{name} {be} at {}", percent_of_255(b)),
            None => format!("{name} {be} on"),
        },
        "volume_level" if off => format!("{name} {be} {}", state_phrase(e)),
        "volume_level" => match number_attr(e, "volume_level") {
            Some(v) => format!("{name} volume is at {}%", (v * 100.0).round()),
            None => format!("{name} {be} {}", state_phrase(e)),
        },
        "current_position" => match number_attr(e, "current_position") {
            Some(p) => format!("{name} {be} {}% open", number_text(p)),
            None => format!("{name} {be} {}", state_phrase(e)),
        },
        "temperature" if off => format!("{name} {be} {}", state_phrase(e)),
        "temperature" => match number_attr(e, "temperature") {
            Some(t) => format!("{name} {be} set to {}°", number_text(t)),
            None => format!("{name} {be} {}", state_phrase(e)),
        },
        "current_temperature" => match number_attr(e, "current_temperature") {
            Some(t) => format!("{name} reads {}°", number_text(t)),
            None => format!("{name} has no temperature reading"),
        },
        "media_title" => match e.attribute("media_title").and_then(Value::as_str) {
            Some(_) if e.state == "playing" || e.state == "paused" => capitalise(&describe_with(e, &the(&e.name))),
            _ => format!("Nothing is playing on {}", the(&e.name)),
        },
        other => match e.attribute(other) {
            Some(Value::String(s)) => format!("{name} {other} is {s}"),
            Some(v) => format!("{name} {other} is {v}"),
            None => format!("{name} has no {other}"),
        },
    }
}

pub(super) fn confirmation(u: &Understanding, states: &[Entity]) -> Option<String> {
    let Intent::Control { action, .. } = &u.intent else {
        return None;
    };
    let targets = targets(u, states);
    let phrase = |e: &Entity| match action {
        super::Action::VolumeSet => match number_attr(e, "volume_level") {
            Some(v) => format!("at volume {}%", (v * 100.0).round()),
            None => state_phrase(e),
        },
        super::Action::VolumeMute => match e.attribute("is_volume_muted").and_then(Value::as_bool) {
            Some(true) => "muted".into(),
            Some(false) => "unmuted".into(),
            None => state_phrase(e),
        },
        _ => state_phrase(e),
    };
    match targets.as_slice() {
        [] => None,
        [one] => Some(format!("{} {} {}.", one.name, is_are(&one.name), phrase(one))),
        many => {
            let groups = groups(many, &phrase);
            let place = u.subject.place.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
            let noun = u.subject.noun.clone().unwrap_or_else(|| Noun::new("device", "devices"));
            if many.len() <= CONFIRMED {
                return Some(format!("{}.", grouped(many, &phrase)));
            }
            if let [(p, _)] = groups.as_slice() {
                return Some(format!("{}{place} are {p}.", noun.count(many.len())));
            }
            let parts: Vec<String> = groups
                .iter()
                .map(|(p, list)| {
                    format!("{} {} {p}", noun.count(list.len()), if list.len() == 1 { "is" } else { "are" })
                })
                .collect();
            Some(format!(
                "{}{place}: {}.",
                capitalise(&format!("{} updated", noun.count(many.len()))),
                parts.join(", ")
            ))
        }
    }
}
