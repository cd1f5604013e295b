//! Service calls on the demo house, with Home Assistant's semantics: which
//! services each domain offers, which data they take, and what they do to
//! an entity's state and attributes.
//!
//! [`apply`] is pure: it computes the new state of one entity or says why
//! it cannot, and changes nothing. The caller checks every target first and
//! commits only when all of them can be changed.

use serde_json::{json, Map, Value};
use steward_core::home::Entity;
use steward_core::tools::rfc3339;

use super::catalog::{supports, COVER_CLOSE, COVER_OPEN, COVER_SET_POSITION, COVER_STOP};

pub(crate) struct ServiceDef {
    pub service: &'static str,
    pub description: &'static str,
    pub fields: &'static [&'static str],
}

const fn def(service: &'static str, description: &'static str, fields: &'static [&'static str]) -> ServiceDef {
    ServiceDef { service, description, fields }
}

const LIGHT_ON: &[&str] = &[
    "brightness",
    "brightness_pct",
    "brightness_step_pct",
    "color_name",
    "rgb_color",
    "color_temp_kelvin",
    "transition",
];
const ON_OFF: &[ServiceDef] = &[
    def("turn_on", "Turns it on.", &[]),
    def("turn_off", "Turns it off.", &[]),
    def("toggle", "Turns it on if off, off if on.", &[]),
];

/// The domains that have services, in a stable order.
pub(crate) const DOMAINS: &[&str] = &[
    "alarm_control_panel",
    "automation",
    "climate",
    "cover",
    "fan",
    "input_boolean",
    "light",
    "lock",
    "media_player",
    "switch",
    "vacuum",
];

const LIGHT_SERVICES: &[ServiceDef] = &[
    def("turn_on", "Turns lights on, optionally with a brightness and a colour.", LIGHT_ON),
    def("turn_off", "Turns lights off.", &["transition"]),
    def("toggle", "Turns lights on if off, off if on.", LIGHT_ON),
];

const FAN_SERVICES: &[ServiceDef] = &[
    def("turn_on", "Turns the fan on, optionally at a speed or preset.", &["percentage", "preset_mode"]),
    def("turn_off", "Turns the fan off.", &[]),
    def("toggle", "Turns the fan on if off, off if on.", &[]),
    def("set_percentage", "Sets the fan speed in percent (0 turns it off).", &["percentage"]),
    def("set_preset_mode", "Sets a preset mode.", &["preset_mode"]),
];

const COVER_SERVICES: &[ServiceDef] = &[
    def("open_cover", "Opens the cover.", &[]),
    def("close_cover", "Closes the cover.", &[]),
    def("stop_cover", "Stops the cover where it is.", &[]),
    def("set_cover_position", "Moves the cover to a position (0 closed, 100 open).", &["position"]),
    def("toggle", "Opens the cover if closed, closes it if open.", &[]),
];

const MEDIA_PLAYER_SERVICES: &[ServiceDef] = &[
    def("turn_on", "Turns the player on.", &[]),
    def("turn_off", "Turns the player off.", &[]),
    def("toggle", "Turns the player on if off, off if on.", &[]),
    def("media_play", "Starts playing.", &[]),
    def("media_pause", "Pauses.", &[]),
    def("media_play_pause", "Plays if paused, pauses if playing.", &[]),
    def("media_stop", "Stops playing.", &[]),
    def("media_next_track", "Skips to the next track.", &[]),
    def("media_previous_track", "Goes back to the previous track.", &[]),
    def("volume_set", "Sets the volume (0 to 1).", &["volume_level"]),
    def("volume_mute", "Mutes or unmutes.", &["is_volume_muted"]),
    def("select_source", "Selects an input or source.", &["source"]),
];

const CLIMATE_SERVICES: &[ServiceDef] = &[
    def("set_temperature", "Sets the target temperature, optionally with a mode.", &["temperature", "hvac_mode"]),
    def("set_hvac_mode", "Sets the mode: off, heat, cool, auto …", &["hvac_mode"]),
    def("turn_on", "Turns the climate device on.", &[]),
    def("turn_off", "Turns the climate device off.", &[]),
];

const LOCK_SERVICES: &[ServiceDef] = &[def("lock", "Locks it.", &["code"]), def("unlock", "Unlocks it.", &["code"])];

const VACUUM_SERVICES: &[ServiceDef] = &[
    def("start", "Starts cleaning.", &[]),
    def("pause", "Pauses cleaning.", &[]),
    def("stop", "Stops cleaning.", &[]),
    def("return_to_base", "Sends the vacuum back to its dock.", &[]),
];

const AUTOMATION_SERVICES: &[ServiceDef] = &[
    def("turn_on", "Enables the automation.", &[]),
    def("turn_off", "Disables the automation.", &["stop_actions"]),
    def("toggle", "Enables the automation if disabled, disables it if enabled.", &[]),
    def("trigger", "Runs the automation's actions now.", &["skip_condition"]),
];

const ALARM_CONTROL_PANEL_SERVICES: &[ServiceDef] = &[
    def("alarm_arm_home", "Arms the alarm for when people are home.", &["code"]),
    def("alarm_arm_away", "Arms the alarm for when everyone is out.", &["code"]),
    def("alarm_arm_night", "Arms the alarm for the night.", &["code"]),
    def("alarm_disarm", "Disarms the alarm.", &["code"]),
];

/// The services of `domain`; none for domains that only report (sensors).
pub(crate) fn services(domain: &str) -> &'static [ServiceDef] {
    match domain {
        "light" => LIGHT_SERVICES,
        "switch" | "input_boolean" => ON_OFF,
        "fan" => FAN_SERVICES,
        "climate" => CLIMATE_SERVICES,
        "cover" => COVER_SERVICES,
        "lock" => LOCK_SERVICES,
        "media_player" => MEDIA_PLAYER_SERVICES,
        "vacuum" => VACUUM_SERVICES,
        "alarm_control_panel" => ALARM_CONTROL_PANEL_SERVICES,
        "automation" => AUTOMATION_SERVICES,
        _ => &[],
    }
}

/// The new state of an entity after a service call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub state: String,
    pub attributes: Value,
}

/// What a call on one entity needs besides the entity itself.
pub(crate) struct Call<'a> {
    pub service: &'a str,
    pub data: &'a Map<String, Value>,
    /// How the entity looked when last on (lights remember their look).
    pub memory: Option<&'a Value>,
    pub now: i64,
}

/// Checks the data fields against the service's and computes the change,
/// or says why the call cannot be done.
pub(crate) fn apply(entity: &Entity, call: &Call<'_>) -> Result<Change, String> {
    let domain = entity.domain.as_str();
    let Some(def) = services(domain).iter().find(|d| d.service == call.service) else {
        return Err(unknown_service(domain, call.service));
    };
    if let Some(unknown) = call.data.keys().find(|k| !def.fields.contains(&k.as_str())) {
        return Err(if def.fields.is_empty() {
            format!("{domain}.{} takes no data, but got `{unknown}`", def.service)
        } else {
            format!("{domain}.{} does not take `{unknown}`; it takes: {}", def.service, def.fields.join(", "))
        });
    }
    match domain {
        "light" => light(entity, call),
        "switch" | "input_boolean" => Ok(same_attributes(entity, on_off(entity, call.service))),
        "fan" => fan(entity, call),
        "climate" => climate(entity, call),
        "cover" => cover(entity, call),
        "lock" => {
            text(call.data, "code")?;
            Ok(same_attributes(entity, if call.service == "lock" { "locked" } else { "unlocked" }))
        }
        "media_player" => media_player(entity, call),
        "vacuum" => Ok(same_attributes(
            entity,
            match (call.service, entity.state.as_str()) {
                ("start", _) => "cleaning",
                ("pause", "cleaning") => "paused",
                ("pause", state) => state,
                ("stop", _) => "idle",
                _ => "docked",
            },
        )),
        "alarm_control_panel" => {
            text(call.data, "code")?;
            let state = match call.service {
                "alarm_arm_home" => "armed_home",
                "alarm_arm_away" => "armed_away",
                "alarm_arm_night" => "armed_night",
                _ => "disarmed",
            };
            let mut change = same_attributes(entity, state);
            change.attributes["changed_by"] = json!("Steward");
            Ok(change)
        }
        "automation" => {
            boolean(call.data, "stop_actions")?;
            boolean(call.data, "skip_condition")?;
            let mut change = same_attributes(entity, on_off(entity, call.service));
            if call.service == "trigger" {
                change.attributes["last_triggered"] = json!(rfc3339(call.now));
            }
            Ok(change)
        }
        _ => Err(unknown_service(domain, call.service)),
    }
}

/// Why a service is not one of the domain's, naming the ones that are.
pub(crate) fn unknown_service(domain: &str, service: &str) -> String {
    let offered: Vec<&str> = services(domain).iter().map(|d| d.service).collect();
    if offered.is_empty() {
        format!("{domain} entities only report values; they have no services to call")
    } else {
        format!("{domain} has no service `{service}`; its services are: {}", offered.join(", "))
    }
}

fn same_attributes(entity: &Entity, state: &str) -> Change {
    Change { state: state.to_string(), attributes: entity.attributes.clone() }
}

fn on_off<'a>(entity: &'a Entity, service: &str) -> &'a str {
    match service {
        "turn_on" => "on",
        "turn_off" => "off",
        "toggle" if entity.state == "on" => "off",
        "toggle" => "on",
        _ => entity.state.as_str(),
    }
}

// ---------------------------------------------------------------------------
// Reading data fields.

fn number(data: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        // Home Assistant coerces numeric strings; so does the demo.
        Some(Value::String(s)) => {
            s.trim().parse::<f64>().map(Some).map_err(|_| format!("`{key}` must be a number, not \"{s}\""))
        }
        Some(other) => Err(format!("`{key}` must be a number, not {other}")),
    }
}

fn number_in(data: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, String> {
    match number(data, key)? {
        Some(v) if !(lo..=hi).contains(&v) => Err(format!("`{key}` must be between {lo} and {hi}, not {v}")),
        other => Ok(other),
    }
}

fn required<T>(value: Option<T>, key: &str, example: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("`{key}` is required, e.g. {{\"{key}\": {example}}}"))
}

fn text(data: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{key}` must be text, not {other}")),
    }
}

fn boolean(data: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("`{key}` must be true or false, not {other}")),
    }
}

fn string_list(attributes: &Value, key: &str) -> Vec<String> {
    attributes
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Picks `wanted` from `options`, ignoring case; the error names the options.
fn choose(options: &[String], wanted: &str, key: &str, name: &str) -> Result<String, String> {
    options.iter().find(|o| o.eq_ignore_ascii_case(wanted)).cloned().ok_or_else(|| {
        if options.is_empty() {
            format!("{name} has no {key} options")
        } else {
            format!("{name} has no {key} `{wanted}`; it has: {}", options.join(", "))
        }
    })
}

// ---------------------------------------------------------------------------
// Lights.

/// Colour names (CSS names, as Home Assistant's `color_name` takes them).
const COLOURS: &[(&str, [u8; 3])] = &[
    ("red", [255, 0, 0]),
    ("green", [0, 128, 0]),
    ("lime", [0, 255, 0]),
    ("blue", [0, 0, 255]),
    ("white", [255, 255, 255]),
    ("yellow", [255, 255, 0]),
    ("orange", [255, 165, 0]),
    ("purple", [128, 0, 128]),
    ("pink", [255, 192, 203]),
    ("hotpink", [255, 105, 180]),
    ("cyan", [0, 255, 255]),
    ("aqua", [0, 255, 255]),
    ("magenta", [255, 0, 255]),
    ("teal", [0, 128, 128]),
    ("navy", [0, 0, 128]),
    ("gold", [255, 215, 0]),
    ("violet", [238, 130, 238]),
    ("indigo", [75, 0, 130]),
    ("turquoise", [64, 224, 208]),
    ("coral", [255, 127, 80]),
    ("salmon", [250, 128, 114]),
    ("crimson", [220, 20, 60]),
    ("lavender", [230, 230, 250]),
    ("skyblue", [135, 206, 235]),
];

pub(crate) fn colour(name: &str) -> Option<[u8; 3]> {
    let wanted: String = name.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    COLOURS.iter().find(|(n, _)| *n == wanted).map(|(_, rgb)| *rgb)
}

const LOOK_KEYS: &[&str] = &["brightness", "color_mode", "rgb_color", "color_temp_kelvin"];

fn light_off(entity: &Entity) -> Change {
    let mut attributes = entity.attributes.clone();
    for key in LOOK_KEYS {
        if attributes.get(*key).is_some() {
            attributes[*key] = Value::Null;
        }
    }
    Change { state: "off".into(), attributes }
}

fn light(entity: &Entity, call: &Call<'_>) -> Result<Change, String> {
    let data = call.data;
    // Check the data even when it ends up unused (toggle off, turn_off).
    number_in(data, "transition", 0.0, 300.0)?;
    match call.service {
        "turn_off" => Ok(light_off(entity)),
        "toggle" if entity.state == "on" => Ok(light_off(entity)),
        _ => light_on(entity, call),
    }
}

fn light_on(entity: &Entity, call: &Call<'_>) -> Result<Change, String> {
    let data = call.data;
    let name = &entity.name;
    let modes = string_list(&entity.attributes, "supported_color_modes");
    let has = |mode: &str| modes.iter().any(|m| m == mode);
    let dimmable = modes.iter().any(|m| m != "onoff");
    let is_on = entity.state == "on";
    // Start from the current look when on, else from the remembered one.
    let base = if is_on { &entity.attributes } else { call.memory.unwrap_or(&entity.attributes) };
    let mut brightness = base.get("brightness").and_then(Value::as_f64);
    let mut mode = base.get("color_mode").and_then(Value::as_str).map(String::from);
    let mut rgb = base.get("rgb_color").filter(|v| !v.is_null()).cloned();
    let mut kelvin = base.get("color_temp_kelvin").and_then(Value::as_f64);

    let brightness_fields = ["brightness", "brightness_pct", "brightness_step_pct"];
    let given = brightness_fields.iter().filter(|k| data.get(**k).is_some_and(|v| !v.is_null())).count();
    if given > 1 {
        return Err("give only one of brightness, brightness_pct and brightness_step_pct".into());
    }
    if given == 1 && !dimmable {
        return Err(format!("{name} only switches on and off; it has no brightness"));
    }
    if let Some(b) = number_in(data, "brightness", 0.0, 255.0)? {
        brightness = Some(b.round());
    }
    if let Some(pct) = number_in(data, "brightness_pct", 0.0, 100.0)? {
        brightness = Some((pct * 255.0 / 100.0).round());
    }
    if let Some(step) = number_in(data, "brightness_step_pct", -100.0, 100.0)? {
        let current = if is_on { brightness.unwrap_or(255.0) } else { 0.0 };
        brightness = Some((current + step * 255.0 / 100.0).round().clamp(0.0, 255.0));
    }

    let colour_fields = ["color_name", "rgb_color", "color_temp_kelvin"];
    if colour_fields.iter().filter(|k| data.get(**k).is_some_and(|v| !v.is_null())).count() > 1 {
        return Err("give only one colour: color_name, rgb_color or color_temp_kelvin".into());
    }
    let no_colour = || format!("{name} cannot show colours; it supports the colour modes: {}", modes.join(", "));
    if let Some(colour_name) = text(data, "color_name")? {
        if !has("rgb") {
            return Err(no_colour());
        }
        let value = colour(&colour_name).ok_or_else(|| {
            format!("`{colour_name}` is not a colour name I know; use a common one (red, orange, warm colours such as coral or gold) or rgb_color [r, g, b]")
        })?;
        mode = Some("rgb".into());
        rgb = Some(json!(value));
    }
    if let Some(value) = data.get("rgb_color").filter(|v| !v.is_null()) {
        if !has("rgb") {
            return Err(no_colour());
        }
        let parts: Option<Vec<u64>> = value
            .as_array()
            .filter(|a| a.len() == 3)
            .map(|a| a.iter().filter_map(Value::as_u64).filter(|c| *c <= 255).collect());
        match parts {
            Some(p) if p.len() == 3 => {
                mode = Some("rgb".into());
                rgb = Some(json!(p));
            }
            _ => {
                return Err(format!("`rgb_color` must be three numbers from 0 to 255, like [255, 120, 0], not {value}"))
            }
        }
    }
    if let Some(k) = number(data, "color_temp_kelvin")? {
        if !has("color_temp") {
            return Err(format!("{name} has no adjustable white; it supports the colour modes: {}", modes.join(", ")));
        }
        let lo = entity.attributes.get("min_color_temp_kelvin").and_then(Value::as_f64).unwrap_or(2000.0);
        let hi = entity.attributes.get("max_color_temp_kelvin").and_then(Value::as_f64).unwrap_or(6500.0);
        if !(lo..=hi).contains(&k) {
            return Err(format!("`color_temp_kelvin` must be between {lo} and {hi} for {name}, not {k}"));
        }
        mode = Some("color_temp".into());
        kelvin = Some(k.round());
    }

    if dimmable && brightness.is_none() {
        brightness = Some(255.0);
    }
    if brightness == Some(0.0) {
        // Home Assistant turns a light off when asked for zero brightness.
        return Ok(light_off(entity));
    }
    let mode = match mode {
        Some(m) if has(&m) || m == "onoff" || m == "brightness" => m,
        _ => modes.first().cloned().unwrap_or_else(|| "onoff".into()),
    };
    let mut attributes = entity.attributes.clone();
    attributes["color_mode"] = json!(mode);
    if dimmable {
        attributes["brightness"] = json!(brightness.unwrap_or(255.0) as u64);
    }
    if has("rgb") {
        attributes["rgb_color"] = if mode == "rgb" { rgb.unwrap_or(json!([255, 255, 255])) } else { Value::Null };
    }
    if has("color_temp") {
        attributes["color_temp_kelvin"] =
            if mode == "color_temp" { json!(kelvin.unwrap_or(2700.0) as u64) } else { Value::Null };
    }
    Ok(Change { state: "on".into(), attributes })
}

// ---------------------------------------------------------------------------
// Fans, climate, covers, media players.

fn fan(entity: &Entity, call: &Call<'_>) -> Result<Change, String> {
    let data = call.data;
    let percentage = number_in(data, "percentage", 0.0, 100.0)?;
    let preset = match text(data, "preset_mode")? {
        Some(p) => Some(choose(&string_list(&entity.attributes, "preset_modes"), &p, "preset_mode", &entity.name)?),
        None => None,
    };
    let off = || {
        let mut attributes = entity.attributes.clone();
        attributes["percentage"] = Value::Null;
        attributes["preset_mode"] = Value::Null;
        Change { state: "off".into(), attributes }
    };
    let on = |pct: Option<f64>, preset: Option<String>| {
        let mut attributes = entity.attributes.clone();
        let current = entity.attributes.get("percentage").and_then(Value::as_f64);
        attributes["percentage"] = json!(pct.or(current).unwrap_or(50.0).round() as u64);
        attributes["preset_mode"] = preset.map(Value::String).unwrap_or(Value::Null);
        Change { state: "on".into(), attributes }
    };
    Ok(match call.service {
        "turn_off" => off(),
        "toggle" if entity.state == "on" => off(),
        "set_percentage" => {
            let p = required(percentage, "percentage", "50")?;
            if p == 0.0 {
                off()
            } else {
                on(Some(p), None)
            }
        }
        "set_preset_mode" => on(None, Some(required(preset, "preset_mode", "\"sleep\"")?)),
        _ if percentage == Some(0.0) => off(),
        _ => on(percentage, preset),
    })
}

fn hvac_action(mode: &str, current: Option<f64>, target: Option<f64>) -> &'static str {
    match (mode, current, target) {
        ("off", _, _) => "off",
        ("heat" | "auto", Some(c), Some(t)) if c < t - 0.2 => "heating",
        ("cool" | "auto", Some(c), Some(t)) if c > t + 0.2 => "cooling",
        _ => "idle",
    }
}

fn climate(entity: &Entity, call: &Call<'_>) -> Result<Change, String> {
    let data = call.data;
    let name = &entity.name;
    let modes = string_list(&entity.attributes, "hvac_modes");
    let mode = match text(data, "hvac_mode")? {
        Some(m) => Some(choose(&modes, &m, "hvac_mode", name)?),
        None => None,
    };
    let mut attributes = entity.attributes.clone();
    let state = match call.service {
        "set_temperature" => {
            let lo = entity.attributes.get("min_temp").and_then(Value::as_f64).unwrap_or(7.0);
            let hi = entity.attributes.get("max_temp").and_then(Value::as_f64).unwrap_or(35.0);
            let step = entity.attributes.get("target_temp_step").and_then(Value::as_f64).unwrap_or(0.5);
            let wanted = required(number(data, "temperature")?, "temperature", "21")?;
            if !(lo..=hi).contains(&wanted) {
                return Err(format!("{name} can be set from {lo} to {hi} °C, not {wanted}"));
            }
            attributes["temperature"] = json!((wanted / step).round() * step);
            mode.unwrap_or_else(|| entity.state.clone())
        }
        "set_hvac_mode" => required(mode, "hvac_mode", "\"heat\"")?,
        "turn_on" => {
            let on = modes.iter().find(|m| *m == "heat").or_else(|| modes.iter().find(|m| *m != "off"));
            on.cloned().unwrap_or_else(|| entity.state.clone())
        }
        _ => "off".into(),
    };
    let current = attributes.get("current_temperature").and_then(Value::as_f64);
    let target = attributes.get("temperature").and_then(Value::as_f64);
    attributes["hvac_action"] = json!(hvac_action(&state, current, target));
    Ok(Change { state, attributes })
}

fn cover(entity: &Entity, call: &Call<'_>) -> Result<Change, String> {
    let name = &entity.name;
    let position = number_in(call.data, "position", 0.0, 100.0)?;
    let can = |feature| supports(&entity.attributes, feature);
    let has_position = can(COVER_SET_POSITION);
    let to = |state: &str, pos: f64| {
        let mut attributes = entity.attributes.clone();
        if has_position {
            attributes["current_position"] = json!(pos.round() as u64);
        }
        Change { state: state.into(), attributes }
    };
    match call.service {
        "open_cover" if can(COVER_OPEN) => Ok(to("open", 100.0)),
        "close_cover" if can(COVER_CLOSE) => Ok(to("closed", 0.0)),
        "toggle" if entity.state == "closed" => Ok(to("open", 100.0)),
        "toggle" => Ok(to("closed", 0.0)),
        "stop_cover" if can(COVER_STOP) => Ok(same_attributes(entity, &entity.state)),
        "set_cover_position" if has_position => {
            let p = required(position, "position", "50")?;
            Ok(to(if p == 0.0 { "closed" } else { "open" }, p))
        }
        "set_cover_position" => {
            Err(format!("{name} cannot be set to a position; it only opens and closes (open_cover, close_cover)"))
        }
        other => Err(format!("{name} does not support {other}")),
    }
}

/// Tracks the media players step through.
const PLAYLIST: &[(&str, &str)] = &[
    ("Morning Show", "City Radio"),
    ("Slow Sunday", "The Quiet Rooms"),
    ("Paper Boats", "Lena Hart"),
    ("Northern Lights", "Aurora Park"),
];

fn media_player(entity: &Entity, call: &Call<'_>) -> Result<Change, String> {
    let data = call.data;
    let name = &entity.name;
    let state = entity.state.as_str();
    let is_off = state == "off";
    let must_be_on = || {
        if is_off {
            Err(format!("{name} is off; turn it on first (turn_on)"))
        } else {
            Ok(())
        }
    };
    let mut attributes = entity.attributes.clone();
    let track =
        PLAYLIST.iter().position(|(title, _)| attributes.get("media_title").and_then(Value::as_str) == Some(title));
    let set_track = |attributes: &mut Value, i: usize| {
        let (title, artist) = PLAYLIST[i % PLAYLIST.len()];
        attributes["media_title"] = json!(title);
        attributes["media_artist"] = json!(artist);
    };
    let clear_track = |attributes: &mut Value| {
        attributes["media_title"] = Value::Null;
        attributes["media_artist"] = Value::Null;
    };
    let new_state = match call.service {
        "turn_on" => if is_off { "idle" } else { state }.to_string(),
        "turn_off" => {
            clear_track(&mut attributes);
            attributes["source"] = Value::Null;
            "off".into()
        }
        "toggle" if is_off => "idle".into(),
        "toggle" => {
            clear_track(&mut attributes);
            "off".into()
        }
        "media_play" | "media_play_pause" if state != "playing" || call.service == "media_play" => {
            must_be_on()?;
            if track.is_none() {
                set_track(&mut attributes, 0);
            }
            "playing".into()
        }
        "media_pause" | "media_play_pause" => {
            must_be_on()?;
            if state == "playing" { "paused" } else { state }.to_string()
        }
        "media_stop" => {
            must_be_on()?;
            clear_track(&mut attributes);
            "idle".into()
        }
        "media_next_track" | "media_previous_track" => {
            must_be_on()?;
            let n = PLAYLIST.len();
            let next = match (track, call.service) {
                (None, _) => 0,
                (Some(i), "media_next_track") => (i + 1) % n,
                (Some(i), _) => (i + n - 1) % n,
            };
            set_track(&mut attributes, next);
            state.to_string()
        }
        "volume_set" => {
            must_be_on()?;
            let level = required(number_in(data, "volume_level", 0.0, 1.0)?, "volume_level", "0.4")?;
            attributes["volume_level"] = json!(level);
            state.to_string()
        }
        "volume_mute" => {
            must_be_on()?;
            let muted = required(boolean(data, "is_volume_muted")?, "is_volume_muted", "true")?;
            attributes["is_volume_muted"] = json!(muted);
            state.to_string()
        }
        "select_source" => {
            must_be_on()?;
            let wanted = required(text(data, "source")?, "source", "\"HDMI 1\"")?;
            let source = choose(&string_list(&entity.attributes, "source_list"), &wanted, "source", name)?;
            attributes["source"] = json!(source);
            state.to_string()
        }
        other => return Err(unknown_service("media_player", other)),
    };
    Ok(Change { state: new_state, attributes })
}

/// The logbook's wording for an entity taking `state`.
pub(crate) fn logbook_message(domain: &str, device_class: Option<&str>, state: &str) -> String {
    let opening = matches!(device_class, Some("door" | "window" | "garage_door" | "opening"));
    let motion = matches!(device_class, Some("motion" | "occupancy" | "presence"));
    let message = match (domain, state) {
        (_, "unavailable") => "became unavailable",
        ("binary_sensor", "on") if opening => "was opened",
        ("binary_sensor", "off") if opening => "was closed",
        ("binary_sensor", "on") if motion => "detected motion",
        ("binary_sensor", "off") if motion => "cleared (no motion detected)",
        ("binary_sensor", "on") if device_class == Some("moisture") => "detected moisture",
        ("binary_sensor", "off") if device_class == Some("moisture") => "cleared (no moisture detected)",
        ("binary_sensor", "on") if device_class == Some("running") => "started running",
        ("binary_sensor", "off") if device_class == Some("running") => "stopped running",
        (_, "on") => "turned on",
        (_, "off") => "turned off",
        ("lock", "locked") => "was locked",
        ("lock", "unlocked") => "was unlocked",
        ("cover", "open") => "was opened",
        ("cover", "closed") => "was closed",
        (_, other) => return format!("changed to {other}"),
    };
    message.to_string()
}
