//! What the demo house holds: eight areas, the devices in them, and some
//! sixty entities over thirteen domains, each with the model that drives it.

use serde_json::{json, Map, Value};
use steward_core::home::{Area, Device};

use super::sim::{window, Days, Model, PowerSource, Window};

/// One entity of the demo house.
pub(crate) struct Spec {
    pub id: &'static str,
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub area: Option<&'static str>,
    /// A device id; `None` gives the entity a device of its own (helpers get none).
    pub device: Option<&'static str>,
    pub model: Model,
    /// The state before the simulation starts, and for good if it is steady.
    pub initial: &'static str,
    /// Attributes whatever the state.
    pub attributes: Value,
    /// Attributes while active (a light on, a player playing); null otherwise.
    pub active: Value,
}

impl Spec {
    pub(crate) fn domain(&self) -> &'static str {
        self.id.split_once('.').map(|(d, _)| d).unwrap_or(self.id)
    }

    /// The attributes for `state`, as the entity reports them.
    pub(crate) fn attributes_for(&self, state: &str) -> Value {
        let mut attributes = match &self.attributes {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        attributes.insert("friendly_name".into(), json!(self.name));
        let active = is_active(self.domain(), state);
        if let Value::Object(extra) = &self.active {
            for (k, v) in extra {
                attributes.insert(k.clone(), if active { v.clone() } else { Value::Null });
            }
        }
        if self.domain() == "cover" && supports(&self.attributes, COVER_SET_POSITION) {
            attributes.insert("current_position".into(), json!(if state == "open" { 100 } else { 0 }));
        }
        Value::Object(attributes)
    }
}

/// Whether an entity in `state` shows its "active" attributes.
pub(crate) fn is_active(domain: &str, state: &str) -> bool {
    match domain {
        "media_player" => matches!(state, "playing" | "paused"),
        _ => state == "on",
    }
}

/// Home Assistant's cover feature bits.
pub(crate) const COVER_OPEN: u64 = 1;
pub(crate) const COVER_CLOSE: u64 = 2;
pub(crate) const COVER_SET_POSITION: u64 = 4;
pub(crate) const COVER_STOP: u64 = 8;

pub(crate) fn supports(attributes: &Value, feature: u64) -> bool {
    attributes.get("supported_features").and_then(Value::as_u64).is_some_and(|f| f & feature != 0)
}

pub(crate) fn areas() -> Vec<Area> {
    let area = |id: &str, name: &str, aliases: &[&str], floor: &str| Area {
        area_id: id.into(),
        name: name.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        floor: Some(floor.into()),
    };
    vec![
        area("kitchen", "Kitchen", &[], "ground_floor"),
        area("living_room", "Living Room", &["lounge", "sitting room"], "ground_floor"),
        area("hallway", "Hallway", &["hall", "entrance"], "ground_floor"),
        area("office", "Office", &["study"], "first_floor"),
        area("bedroom", "Bedroom", &["master bedroom"], "first_floor"),
        area("bathroom", "Bathroom", &[], "first_floor"),
        area("garage", "Garage", &[], "ground_floor"),
        area("garden", "Garden", &["yard", "backyard"], "outside"),
    ]
}

/// Devices that hold several entities; every other entity with an area
/// gets a device of its own (see [`device_for`]).
const SHARED_DEVICES: &[(&str, &str, &str, &str, &str)] = &[
    ("kitchen_thermometer", "Kitchen Thermometer", "Aquara", "T-10", "kitchen"),
    ("living_room_sensor", "Living Room Climate Sensor", "Aquara", "TH-20", "living_room"),
    ("bedroom_sensor", "Bedroom Climate Sensor", "Aquara", "TH-20", "bedroom"),
    ("bathroom_sensor", "Bathroom Climate Sensor", "Aquara", "TH-20", "bathroom"),
    ("garage_sensor", "Garage Climate Sensor", "Aquara", "TH-20", "garage"),
    ("office_air_monitor", "Office Air Monitor", "Airwise", "AM-3", "office"),
    ("weather_station", "Weather Station", "Skyline", "WS-1", "garden"),
    ("garden_soil_sensor", "Garden Soil Sensor", "Aquara", "SM-1", "garden"),
    ("garden_valve", "Garden Irrigation Valve", "Aquara", "WV-1", "garden"),
    ("smart_meter", "Smart Meter", "Gridline", "P1 Reader", "hallway"),
    ("car_charger", "Car Charger", "Voltbox", "Home 7", "garage"),
    ("solar_inverter", "Solar Inverter", "Sunvolt", "SV-5000", "garage"),
    ("washing_machine_plug", "Washing Machine Plug", "Plugwise", "Energy Plug", "bathroom"),
    ("front_door_lock", "Front Door Lock", "Keymatic", "Smart Lock 3", "hallway"),
    ("robot_vacuum", "Robot Vacuum", "Sweepa", "S7", "living_room"),
];

/// The maker and model of an entity's own device, by domain.
fn device_kind(domain: &str) -> (&'static str, &'static str) {
    match domain {
        "light" => ("Lumina", "Smart Light"),
        "switch" => ("Plugwise", "Smart Plug"),
        "climate" => ("Thermo", "Smart Thermostat"),
        "cover" => ("Shadeline", "Motor Controller"),
        "lock" => ("Keymatic", "Smart Lock 3"),
        "media_player" => ("Soundvision", "Media Player"),
        "fan" => ("Breeze", "Smart Fan"),
        "alarm_control_panel" => ("Guardian", "Alarm Panel"),
        "binary_sensor" => ("Aquara", "Contact/Motion Sensor"),
        _ => ("Generic", "Device"),
    }
}

/// The device an entity belongs to, if any.
pub(crate) fn device_for(spec: &Spec) -> Option<String> {
    match (spec.device, spec.area) {
        (Some(device), _) => Some(device.to_string()),
        (None, Some(_)) => spec.id.split_once('.').map(|(_, object)| object.to_string()),
        (None, None) => None,
    }
}

pub(crate) fn devices(specs: &[Spec]) -> Vec<Device> {
    let mut devices: Vec<Device> = SHARED_DEVICES
        .iter()
        .map(|(id, name, maker, model, area)| Device {
            device_id: id.to_string(),
            name: name.to_string(),
            manufacturer: Some(maker.to_string()),
            model: Some(model.to_string()),
            area_id: Some(area.to_string()),
        })
        .collect();
    for spec in specs.iter().filter(|s| s.device.is_none()) {
        if let Some(id) = device_for(spec) {
            let (maker, model) = device_kind(spec.domain());
            devices.push(Device {
                device_id: id,
                name: spec.name.to_string(),
                manufacturer: Some(maker.into()),
                model: Some(model.into()),
                area_id: spec.area.map(String::from),
            });
        }
    }
    devices.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    devices
}

fn spec(id: &'static str, name: &'static str, area: Option<&'static str>, model: Model, initial: &'static str) -> Spec {
    Spec { id, name, aliases: &[], area, device: None, model, initial, attributes: json!({}), active: json!({}) }
}

impl Spec {
    fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    fn device(mut self, device: &'static str) -> Self {
        self.device = Some(device);
        self
    }

    fn attrs(mut self, attributes: Value) -> Self {
        self.attributes = attributes;
        self
    }

    fn when_active(mut self, active: Value) -> Self {
        self.active = active;
        self
    }
}

const fn routine(windows: &'static [Window], on: &'static str, off: &'static str) -> Model {
    Model::Routine { windows, on, off }
}

/// A light: which colour modes it supports and how it looks when on.
fn light(id: &'static str, name: &'static str, area: &'static str, windows: &'static [Window], look: Look) -> Spec {
    let (modes, active) = match look {
        Look::OnOff => (json!(["onoff"]), json!({"color_mode": "onoff"})),
        Look::Dimmable(b) => (json!(["brightness"]), json!({"color_mode": "brightness", "brightness": b})),
        Look::White(b, k) => {
            (json!(["color_temp"]), json!({"color_mode": "color_temp", "brightness": b, "color_temp_kelvin": k}))
        }
        Look::Colour(b, rgb) => (json!(["rgb"]), json!({"color_mode": "rgb", "brightness": b, "rgb_color": rgb})),
        Look::Both(b, k) => (
            json!(["color_temp", "rgb"]),
            json!({"color_mode": "color_temp", "brightness": b, "color_temp_kelvin": k, "rgb_color": null}),
        ),
    };
    let mut attributes = json!({"supported_color_modes": modes});
    if matches!(look, Look::White(..) | Look::Both(..)) {
        attributes["min_color_temp_kelvin"] = json!(2200);
        attributes["max_color_temp_kelvin"] = json!(6500);
    }
    if matches!(look, Look::Colour(..)) {
        attributes["color_temp_kelvin"] = Value::Null;
    }
    spec(id, name, Some(area), routine(windows, "on", "off"), "off").attrs(attributes).when_active(active)
}

#[derive(Clone, Copy)]
enum Look {
    OnOff,
    Dimmable(u8),
    White(u8, u32),
    Colour(u8, [u8; 3]),
    Both(u8, u32),
}

/// A sensor's device class, unit and state class.
type Kind = (&'static str, &'static str, &'static str);

const TEMPERATURE: Kind = ("temperature", "°C", "measurement");
const HUMIDITY: Kind = ("humidity", "%", "measurement");
const POWER: Kind = ("power", "W", "measurement");
const ENERGY: Kind = ("energy", "kWh", "total_increasing");
const BATTERY: Kind = ("battery", "%", "measurement");

fn sensor(
    id: &'static str,
    name: &'static str,
    area: &'static str,
    device: &'static str,
    model: Model,
    kind: Kind,
) -> Spec {
    let (class, unit, state_class) = kind;
    spec(id, name, Some(area), model, "unknown")
        .device(device)
        .attrs(json!({"device_class": class, "unit_of_measurement": unit, "state_class": state_class}))
}

fn temperature(
    id: &'static str,
    name: &'static str,
    area: &'static str,
    device: &'static str,
    base: f64,
    swing: f64,
) -> Spec {
    sensor(id, name, area, device, Model::IndoorTemperature { base, swing }, TEMPERATURE)
}

fn humidity(
    id: &'static str,
    name: &'static str,
    area: &'static str,
    device: &'static str,
    base: f64,
    showers: bool,
) -> Spec {
    let model = Model::Humidity { base, swing: 4.0, showers };
    sensor(id, name, area, device, model, HUMIDITY)
}

fn power(id: &'static str, name: &'static str, area: &'static str, device: &'static str, source: PowerSource) -> Spec {
    sensor(id, name, area, device, Model::Power(source), POWER)
}

fn meter(
    id: &'static str,
    name: &'static str,
    area: &'static str,
    device: &'static str,
    source: PowerSource,
    start: f64,
) -> Spec {
    sensor(id, name, area, device, Model::Meter(source, start), ENERGY)
}

fn binary(id: &'static str, name: &'static str, area: &'static str, model: Model, class: &'static str) -> Spec {
    spec(id, name, Some(area), model, "off").attrs(json!({"device_class": class}))
}

const EVERY: Days = Days::Every;
const WEEKDAYS: Days = Days::Weekdays;
const WEEKENDS: Days = Days::Weekends;

const KITCHEN_CEILING: &[Window] =
    &[window(6.75, 7.75, 0.25, WEEKDAYS), window(8.5, 9.5, 0.3, WEEKENDS), window(17.75, 22.25, 0.5, EVERY)];
const KITCHEN_COUNTER: &[Window] = &[window(18.0, 20.0, 0.4, EVERY)];
const LIVING_CEILING: &[Window] = &[window(18.5, 21.0, 0.5, Days::Some(0.6))];
const FLOOR_LAMP: &[Window] = &[window(19.0, 23.25, 0.5, EVERY)];
const TV_TIME: &[Window] = &[window(20.0, 22.75, 0.5, Days::Some(0.7))];
const BEDROOM_CEILING: &[Window] = &[window(6.5, 6.85, 0.1, WEEKDAYS), window(22.25, 22.7, 0.25, EVERY)];
const BEDSIDE: &[Window] = &[window(22.5, 23.35, 0.3, EVERY)];
const DESK: &[Window] = &[window(8.75, 17.0, 0.3, WEEKDAYS)];
const HALLWAY: &[Window] = &[window(6.65, 7.0, 0.1, EVERY), window(17.5, 23.5, 0.4, EVERY)];
const MIRROR: &[Window] = &[window(6.85, 7.35, 0.15, WEEKDAYS), window(22.15, 22.5, 0.2, EVERY)];
const GARDEN_PATH: &[Window] = &[window(17.25, 23.0, 0.1, EVERY)];
const GARAGE: &[Window] = &[window(8.0, 8.15, 0.05, WEEKDAYS), window(17.6, 17.85, 0.1, WEEKDAYS)];
const COFFEE: &[Window] = &[window(6.85, 7.5, 0.1, WEEKDAYS), window(8.75, 9.5, 0.2, WEEKENDS)];
const IRRIGATION: &[Window] = &[window(6.0, 6.34, 0.0, EVERY)];
const DESK_PLUG: &[Window] = &[window(8.65, 17.5, 0.2, WEEKDAYS)];
const BLINDS: &[Window] = &[window(7.5, 21.5, 0.25, EVERY)];
const SHUTTER: &[Window] = &[window(7.0, 22.0, 0.2, WEEKDAYS), window(8.5, 22.0, 0.3, WEEKENDS)];
const RADIO: &[Window] = &[window(7.0, 7.75, 0.1, WEEKDAYS)];
const AIRING: &[Window] = &[window(10.0, 10.67, 0.5, Days::Some(0.4))];
const GATE: &[Window] = &[window(16.0, 16.17, 1.0, Days::Some(0.35))];

/// Every entity of the house except the automations (which come from the
/// automation store).
pub(crate) fn entities() -> Vec<Spec> {
    use Look::*;
    vec![
        // Lights.
        light("light.kitchen_ceiling", "Kitchen Ceiling", "kitchen", KITCHEN_CEILING, White(200, 3500))
            .aliases(&["ceiling light", "kitchen light"]),
        light("light.kitchen_counter", "Kitchen Counter Strip", "kitchen", KITCHEN_COUNTER, Colour(150, [255, 180, 107]))
            .aliases(&["counter lights", "under-cabinet lights"]),
        light("light.living_room_ceiling", "Living Room Ceiling", "living_room", LIVING_CEILING, Dimmable(230))
            .aliases(&["ceiling light", "big light"]),
        light("light.living_room_floor_lamp", "Floor Lamp", "living_room", FLOOR_LAMP, Both(140, 2700))
            .aliases(&["reading lamp", "living room lamp"]),
        light("light.tv_backlight", "TV Backlight", "living_room", TV_TIME, Colour(90, [80, 60, 255]))
            .aliases(&["ambilight", "tv light"]),
        light("light.bedroom_ceiling", "Bedroom Ceiling", "bedroom", BEDROOM_CEILING, White(180, 3000))
            .aliases(&["ceiling light"]),
        light("light.bedside_lamp", "Bedside Lamp", "bedroom", BEDSIDE, Both(60, 2200))
            .aliases(&["night light", "bedside light"]),
        light("light.office_desk_lamp", "Desk Lamp", "office", DESK, White(220, 4500)).aliases(&["office lamp", "desk light"]),
        light("light.hallway", "Hallway Light", "hallway", HALLWAY, Dimmable(160)).aliases(&["hall light", "entrance light"]),
        light("light.bathroom_mirror", "Bathroom Mirror Light", "bathroom", MIRROR, White(255, 4000)).aliases(&["mirror light"]),
        light("light.garden_path", "Garden Path Lights", "garden", GARDEN_PATH, Dimmable(120))
            .aliases(&["path lights", "garden lights"]),
        light("light.garage", "Garage Light", "garage", GARAGE, OnOff).aliases(&["garage lamp"]),
        // Switches and helpers.
        spec("switch.coffee_machine", "Coffee Machine", Some("kitchen"), routine(COFFEE, "on", "off"), "off")
            .aliases(&["espresso machine", "coffee maker"]),
        spec("switch.garden_irrigation", "Garden Irrigation", Some("garden"), routine(IRRIGATION, "on", "off"), "off")
            .device("garden_valve")
            .aliases(&["sprinklers", "watering"]),
        spec("switch.office_desk_plug", "Office Desk Plug", Some("office"), routine(DESK_PLUG, "on", "off"), "off")
            .aliases(&["monitor plug", "desk power"]),
        spec("switch.car_charger", "Car Charger", Some("garage"), Model::Steady, "on")
            .device("car_charger")
            .aliases(&["wallbox", "ev charger", "charger"]),
        spec("input_boolean.guest_mode", "Guest Mode", None, Model::Steady, "off").attrs(json!({"editable": true})),
        spec("input_boolean.vacation_mode", "Vacation Mode", None, Model::Steady, "off")
            .aliases(&["holiday mode", "away mode"])
            .attrs(json!({"editable": true})),
        // Climate.
        spec("climate.living_room", "Living Room Thermostat", Some("living_room"), Model::Steady, "heat")
            .aliases(&["thermostat", "heating"])
            .attrs(json!({
                "hvac_modes": ["off", "heat", "cool", "auto"], "min_temp": 7.0, "max_temp": 30.0,
                "target_temp_step": 0.5, "temperature": 21.0, "current_temperature": null, "hvac_action": "idle"
            })),
        spec("climate.bedroom", "Bedroom Radiator", Some("bedroom"), Model::Steady, "heat")
            .aliases(&["bedroom heating", "radiator"])
            .attrs(json!({
                "hvac_modes": ["off", "heat"], "min_temp": 5.0, "max_temp": 28.0,
                "target_temp_step": 0.5, "temperature": 18.5, "current_temperature": null, "hvac_action": "idle"
            })),
        // Covers.
        spec("cover.garage_door", "Garage Door", Some("garage"), Model::GarageDoor, "closed")
            .aliases(&["garage"])
            .attrs(json!({"device_class": "garage", "supported_features": COVER_OPEN | COVER_CLOSE | COVER_STOP})),
        spec("cover.living_room_blinds", "Living Room Blinds", Some("living_room"), routine(BLINDS, "open", "closed"), "closed")
            .aliases(&["blinds"])
            .attrs(json!({"device_class": "blind", "supported_features": COVER_OPEN | COVER_CLOSE | COVER_SET_POSITION | COVER_STOP})),
        spec("cover.bedroom_shutter", "Bedroom Shutter", Some("bedroom"), routine(SHUTTER, "open", "closed"), "closed")
            .aliases(&["shutter", "bedroom blinds"])
            .attrs(json!({"device_class": "shutter", "supported_features": COVER_OPEN | COVER_CLOSE | COVER_SET_POSITION | COVER_STOP})),
        // Locks.
        spec("lock.front_door", "Front Door Lock", Some("hallway"), Model::FrontLock, "locked")
            .device("front_door_lock")
            .aliases(&["front door", "door lock"]),
        spec("lock.back_door", "Back Door Lock", Some("kitchen"), Model::Steady, "locked").aliases(&["back door", "garden door"]),
        // Media.
        spec("media_player.living_room_tv", "Living Room TV", Some("living_room"), routine(TV_TIME, "playing", "off"), "off")
            .aliases(&["tv", "television"])
            .attrs(json!({"device_class": "tv", "volume_level": 0.25, "is_volume_muted": false,
                "source_list": ["HDMI 1", "HDMI 2", "Netflix", "YouTube"]}))
            .when_active(json!({"media_title": "Evening News", "media_artist": null, "source": "HDMI 1"})),
        spec("media_player.kitchen_speaker", "Kitchen Speaker", Some("kitchen"), routine(RADIO, "playing", "idle"), "idle")
            .aliases(&["speaker", "kitchen radio", "radio"])
            .attrs(json!({"device_class": "speaker", "volume_level": 0.35, "is_volume_muted": false,
                "source_list": ["Radio", "Spotify", "Bluetooth"]}))
            .when_active(json!({"media_title": "Morning Show", "media_artist": "City Radio", "source": "Radio"})),
        // Fans.
        spec("fan.bedroom_fan", "Bedroom Fan", Some("bedroom"), Model::Steady, "off")
            .aliases(&["ceiling fan"])
            .attrs(json!({"preset_modes": ["normal", "sleep", "breeze"], "percentage_step": 25}))
            .when_active(json!({"percentage": 50, "preset_mode": null})),
        spec("fan.bathroom_extractor", "Bathroom Extractor", Some("bathroom"), Model::ExtractorFan, "off")
            .aliases(&["extractor fan", "bathroom fan"])
            .attrs(json!({"preset_modes": [], "percentage_step": 50}))
            .when_active(json!({"percentage": 100, "preset_mode": null})),
        // Vacuum and alarm.
        spec("vacuum.robot_vacuum", "Robot Vacuum", Some("living_room"), Model::Vacuum, "docked")
            .device("robot_vacuum")
            .aliases(&["hoover", "vacuum", "robot"])
            .attrs(json!({"fan_speed": "standard", "fan_speed_list": ["quiet", "standard", "max"]})),
        spec("alarm_control_panel.home_alarm", "Home Alarm", Some("hallway"), Model::Alarm, "disarmed")
            .aliases(&["alarm", "security system"])
            .attrs(json!({"code_format": null, "code_arm_required": false, "changed_by": null})),
        // Binary sensors.
        binary("binary_sensor.front_door_contact", "Front Door", "hallway", Model::FrontDoor, "door"),
        binary("binary_sensor.hallway_motion", "Hallway Motion", "hallway", Model::Motion { busy: 0.2 }, "motion"),
        binary("binary_sensor.kitchen_motion", "Kitchen Motion", "kitchen", Model::Motion { busy: 0.3 }, "motion"),
        binary("binary_sensor.living_room_window", "Living Room Window", "living_room", routine(AIRING, "on", "off"), "window"),
        binary("binary_sensor.bathroom_leak", "Bathroom Leak Sensor", "bathroom", Model::Steady, "moisture")
            .aliases(&["water leak", "leak sensor"]),
        binary("binary_sensor.garden_gate", "Garden Gate", "garden", routine(GATE, "on", "off"), "door"),
        binary("binary_sensor.washing_machine", "Washing Machine", "bathroom", Model::WasherRunning, "running")
            .device("washing_machine_plug")
            .aliases(&["washer"]),
        // Sensors.
        temperature("sensor.living_room_temperature", "Living Room Temperature", "living_room", "living_room_sensor", 21.0, 0.6),
        humidity("sensor.living_room_humidity", "Living Room Humidity", "living_room", "living_room_sensor", 45.0, false),
        temperature("sensor.kitchen_temperature", "Kitchen Temperature", "kitchen", "kitchen_thermometer", 20.5, 0.8),
        temperature("sensor.bedroom_temperature", "Bedroom Temperature", "bedroom", "bedroom_sensor", 18.5, 0.7),
        humidity("sensor.bedroom_humidity", "Bedroom Humidity", "bedroom", "bedroom_sensor", 50.0, false),
        temperature("sensor.office_temperature", "Office Temperature", "office", "office_air_monitor", 20.0, 0.7),
        sensor("sensor.office_co2", "Office CO2", "office", "office_air_monitor", Model::Co2, ("carbon_dioxide", "ppm", "measurement"))
            .aliases(&["carbon dioxide", "air quality"]),
        temperature("sensor.bathroom_temperature", "Bathroom Temperature", "bathroom", "bathroom_sensor", 22.0, 0.8),
        humidity("sensor.bathroom_humidity", "Bathroom Humidity", "bathroom", "bathroom_sensor", 55.0, true),
        temperature("sensor.garage_temperature", "Garage Temperature", "garage", "garage_sensor", 11.0, 1.5),
        humidity("sensor.garage_humidity", "Garage Humidity", "garage", "garage_sensor", 62.0, false),
        sensor("sensor.outdoor_temperature", "Outdoor Temperature", "garden", "weather_station", Model::OutdoorTemperature, TEMPERATURE)
            .aliases(&["outside temperature"]),
        sensor("sensor.garden_soil_moisture", "Garden Soil Moisture", "garden", "garden_soil_sensor", Model::SoilMoisture, ("moisture", "%", "measurement")),
        power("sensor.house_power", "House Power", "hallway", "smart_meter", PowerSource::House).aliases(&["power usage", "consumption"]),
        meter("sensor.house_energy", "House Energy", "hallway", "smart_meter", PowerSource::House, 18_452.3)
            .aliases(&["energy usage", "electricity meter"]),
        power("sensor.car_charger_power", "Car Charger Power", "garage", "car_charger", PowerSource::Charger),
        meter("sensor.car_charger_energy", "Car Charger Energy", "garage", "car_charger", PowerSource::Charger, 1_204.6)
            .aliases(&["charging energy", "ev energy"]),
        power("sensor.solar_power", "Solar Power", "garage", "solar_inverter", PowerSource::Solar).aliases(&["solar production", "pv power"]),
        meter("sensor.solar_energy", "Solar Energy", "garage", "solar_inverter", PowerSource::Solar, 6_310.2),
        power("sensor.washing_machine_power", "Washing Machine Power", "bathroom", "washing_machine_plug", PowerSource::Washer),
        sensor("sensor.front_door_lock_battery", "Front Door Lock Battery", "hallway", "front_door_lock", Model::Battery { days: 150.0 }, BATTERY),
        sensor("sensor.robot_vacuum_battery", "Robot Vacuum Battery", "living_room", "robot_vacuum", Model::VacuumBattery, BATTERY),
    ]
}
