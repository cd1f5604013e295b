//! The service and data a command calls on targets of one domain, checked
//! against what the targets can do: colour modes, cover features, the
//! thermostat's range.

use serde_json::{json, Value};

use super::command::{Aspect, Val, Want};
use super::numbers::{Num, Unit};
use super::Action;
use crate::home::Entity;

/// Home Assistant's cover feature bits.
const COVER_OPEN: u64 = 1;
const COVER_CLOSE: u64 = 2;
const COVER_SET_POSITION: u64 = 4;
const COVER_STOP: u64 = 8;

fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        json!(v as i64)
    } else {
        json!((v * 100.0).round() / 100.0)
    }
}

fn color_modes(e: &Entity) -> Option<Vec<&str>> {
    e.attribute("supported_color_modes").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect())
}

fn dimmable(e: &Entity) -> bool {
    color_modes(e).is_none_or(|m| m.iter().any(|m| *m != "onoff"))
}

fn colourful(e: &Entity) -> bool {
    color_modes(e).is_none_or(|m| m.iter().any(|m| matches!(*m, "hs" | "xy" | "rgb" | "rgbw" | "rgbww")))
}

fn has_white(e: &Entity) -> bool {
    color_modes(e).is_none_or(|m| m.contains(&"color_temp"))
}

fn cover_can(e: &Entity, feature: u64) -> bool {
    match e.attribute("supported_features").and_then(Value::as_u64) {
        Some(bits) => bits & feature != 0,
        // Without the bits, only opening and closing are safe to assume.
        None => feature == COVER_OPEN || feature == COVER_CLOSE,
    }
}

fn attr_f64(e: &Entity, key: &str) -> Option<f64> {
    e.attribute(key).and_then(Value::as_f64)
}

/// Keeps the targets that can do it: a set loses the ones that cannot,
/// one target that cannot means nothing is done.
fn capable(targets: &mut Vec<&Entity>, set: bool, can: impl Fn(&Entity) -> bool) -> Option<()> {
    if !set && !targets.iter().all(|e| can(e)) {
        return None;
    }
    targets.retain(|e| can(e));
    (!targets.is_empty()).then_some(())
}

fn percent(n: Num) -> Option<f64> {
    n.percent().filter(|v| (0.0..=100.0).contains(v))
}

/// The service and data for a command on targets of one domain, or `None`
/// when the targets cannot do it.
pub(crate) fn plan(
    want: Want,
    aspect: Aspect,
    domain: &str,
    targets: &mut Vec<&Entity>,
    set: bool,
) -> Option<(Action, Value)> {
    match domain {
        "light" => match want {
            Want::On(Some(v)) | Want::Set(v) | Want::Shift { to: Some(v), .. } => light_value(v, targets, set),
            Want::Step(step) => light_step(step, targets, set),
            Want::Shift { up, step, to: None } => light_step(if up { step } else { -step }, targets, set),
            _ => None,
        },
        "fan" => match want {
            Want::On(Some(Val::Num(n))) | Want::Set(Val::Num(n)) => {
                Some((Action::SetPercentage, json!({"percentage": number(percent(n)?)})))
            }
            _ => None,
        },
        "cover" => {
            let position = match want {
                Want::Set(Val::Num(n)) | Want::Shift { to: Some(Val::Num(n)), .. } => Some(percent(n)?),
                Want::Open(Some(p)) | Want::Close(Some(p)) => Some(p).filter(|p| (0.0..=100.0).contains(p)),
                _ => None,
            };
            if let Some(p) = position {
                capable(targets, set, |e| cover_can(e, COVER_SET_POSITION))?;
                return Some((Action::SetCoverPosition, json!({"position": number(p.round())})));
            }
            let (action, feature) = match want {
                Want::Open(None) | Want::Shift { up: true, to: None, .. } => (Action::OpenCover, COVER_OPEN),
                Want::Close(None) | Want::Shift { up: false, to: None, .. } => (Action::CloseCover, COVER_CLOSE),
                Want::Stop => (Action::StopCover, COVER_STOP),
                _ => return None,
            };
            capable(targets, set, |e| cover_can(e, feature))?;
            Some((action, Value::Null))
        }
        "climate" => match want {
            Want::Set(Val::Num(n)) if matches!(n.unit, Unit::Degrees | Unit::None) && !n.fraction => {
                let t = n.value;
                let in_range = |e: &Entity| {
                    let lo = attr_f64(e, "min_temp").unwrap_or(7.0);
                    let hi = attr_f64(e, "max_temp").unwrap_or(35.0);
                    (lo..=hi).contains(&t)
                };
                if !targets.iter().all(|e| in_range(e)) {
                    return None;
                }
                Some((Action::SetTemperature, json!({"temperature": number(t)})))
            }
            _ => None,
        },
        "lock" => match want {
            Want::Lock => Some((Action::Lock, Value::Null)),
            Want::Unlock => Some((Action::Unlock, Value::Null)),
            _ => None,
        },
        "media_player" => match want {
            Want::Pause => Some((Action::MediaPause, Value::Null)),
            Want::Play => Some((Action::MediaPlay, Value::Null)),
            Want::Stop => Some((Action::MediaStop, Value::Null)),
            Want::Next => Some((Action::MediaNextTrack, Value::Null)),
            Want::Previous => Some((Action::MediaPreviousTrack, Value::Null)),
            Want::Mute(muted) => Some((Action::VolumeMute, json!({"is_volume_muted": muted}))),
            Want::Set(Val::Num(n)) if aspect == Aspect::Volume => {
                let level = percent(n)? / 100.0;
                Some((Action::VolumeSet, json!({"volume_level": number(level)})))
            }
            _ => None,
        },
        _ => None,
    }
}

fn light_value(v: Val, targets: &mut Vec<&Entity>, set: bool) -> Option<(Action, Value)> {
    match v {
        Val::Num(n) => {
            let p = percent(n)?;
            capable(targets, set, dimmable)?;
            if p == 0.0 {
                return Some((Action::TurnOff, Value::Null));
            }
            Some((Action::TurnOn, json!({"brightness_pct": number(p.round())})))
        }
        Val::Colour(name) => {
            capable(targets, set, colourful)?;
            Some((Action::TurnOn, json!({"color_name": name})))
        }
        Val::Kelvin(k) => {
            capable(targets, set, has_white)?;
            // Within what every target can show.
            let lo = targets.iter().filter_map(|e| attr_f64(e, "min_color_temp_kelvin")).fold(0.0, f64::max);
            let hi = targets.iter().filter_map(|e| attr_f64(e, "max_color_temp_kelvin")).fold(f64::INFINITY, f64::min);
            if lo > hi {
                return None;
            }
            Some((Action::TurnOn, json!({"color_temp_kelvin": number(f64::from(k).clamp(lo, hi))})))
        }
    }
}

fn light_step(step: f64, targets: &mut Vec<&Entity>, set: bool) -> Option<(Action, Value)> {
    capable(targets, set, dimmable)?;
    if set {
        // "dim the living room": the lights that are on.
        targets.retain(|e| e.state == "on");
        if targets.is_empty() {
            return None;
        }
    }
    Some((Action::TurnOn, json!({"brightness_step_pct": number(step)})))
}
