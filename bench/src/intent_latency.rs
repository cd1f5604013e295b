//! Intent engine latency benchmark.
//!
//! Builds the local intent engine over the demo home (63 entities) and over
//! a synthetic home of 1,000 entities in 20 rooms on 3 floors, then runs a
//! mixed set of utterances — commands, questions, typos, and utterances
//! that must go to the model — many times over each, one at a time on one
//! thread. Prints the time to build each index, p50, p99 and max latency of
//! `understand` in microseconds, and how many utterances a second one
//! thread gets through.
//!
//! Run: `cargo run --release -p steward-bench --bin intent-latency -- [--rounds N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use steward_core::home::{Area, Entity, Home};
use steward_core::intent::IntentEngine;
use steward_core::{Clock, SystemClock};
use steward_integrations::DemoHome;

struct Args {
    rounds: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { rounds: 2000 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rounds" => args.rounds = value.parse().context("--rounds must be a number")?,
            other => bail!("unknown flag {other}; use --rounds N"),
        }
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(args)
}

/// What people say to the demo house.
const DEMO_UTTERANCES: &[&str] = &[
    "turn on the kitchen light",
    "turn off the lights in the kitchen",
    "set the kitchen light to 40%",
    "dim the living room",
    "make the tv backlight blue",
    "set the bedroom to 20 degrees",
    "set the thermostat to twenty one and a half",
    "open the blinds halfway",
    "lock all the doors",
    "unlock the back door",
    "pause the music",
    "turn off the lights upstairs",
    "turn off everything in the kitchen",
    "turn off the kitchen ceilling",
    "is the garage door open?",
    "what's the temperature in the bedroom?",
    "which lights are on?",
    "are any doors unlocked?",
    "how warm is it in the office?",
    "what is the thermostat set to?",
    "turn on the ceiling light",
    "turn it up",
    "why is my energy bill high?",
    "write an automation that turns on the porch light at sunset",
];

/// What people say to the big house.
const BIG_UTTERANCES: &[&str] = &[
    "turn on the kitchen ceiling light",
    "turn off the lights in the study",
    "set the office spot 3 to 40%",
    "dim the lights in the dining room",
    "make the playroom accent light blue",
    "set the guest room to 20 degrees",
    "open the nursery blinds halfway",
    "lock the garage door lock",
    "turn off the lights upstairs",
    "turn off everything in the workshop",
    "turn on the attic spott 4",
    "is the porch door lock locked?",
    "what's the temperature in the basement?",
    "which lights are on in the kitchen?",
    "are any windows open downstairs?",
    "how humid is the laundry",
    "turn on the spot",
    "turn it off",
    "how much energy did the gym use yesterday?",
    "write an automation for the hallway lights",
];

const ROOMS: &[&str] = &[
    "Kitchen",
    "Living Room",
    "Dining Room",
    "Hallway",
    "Garage",
    "Porch",
    "Laundry",
    "Workshop",
    "Office",
    "Study",
    "Bedroom",
    "Guest Room",
    "Nursery",
    "Playroom",
    "Bathroom",
    "Gym",
    "Attic",
    "Pantry",
    "Basement",
    "Garden",
];

fn floor_of(i: usize) -> &'static str {
    match i {
        0..=8 => "ground_floor",
        9..=17 => "first_floor",
        _ => "basement",
    }
}

fn snake(name: &str) -> String {
    name.to_lowercase().replace(' ', "_")
}

fn make(id: String, name: String, area: &str, state: &str, attributes: serde_json::Value) -> Entity {
    Entity {
        domain: id.split('.').next().unwrap_or_default().to_string(),
        entity_id: id,
        name,
        aliases: vec![],
        area_id: Some(area.to_string()),
        device_id: None,
        state: state.to_string(),
        attributes,
        last_changed: 0,
        last_updated: 0,
        available: true,
    }
}

/// 20 rooms of 50 entities: 12 lights, 8 switches, 2 covers, a thermostat,
/// a lock, 2 media players, 20 sensors and 4 binary sensors each.
fn big_home() -> (Vec<Entity>, Vec<Area>) {
    let mut areas = Vec::new();
    let mut entities = Vec::new();
    for (i, room) in ROOMS.iter().enumerate() {
        let area = snake(room);
        areas.push(Area {
            area_id: area.clone(),
            name: room.to_string(),
            aliases: vec![],
            floor: Some(floor_of(i).into()),
        });
        let mut add = |domain: &str, thing: &str, state: &str, attributes: serde_json::Value| {
            let name = format!("{room} {thing}");
            entities.push(make(format!("{domain}.{}", snake(&name)), name, &area, state, attributes));
        };
        let dimmable = json!({"supported_color_modes": ["brightness"], "brightness": 128});
        add("light", "Ceiling Light", if i % 3 == 0 { "on" } else { "off" }, dimmable.clone());
        add("light", "Accent Light", "off", json!({"supported_color_modes": ["rgb"]}));
        add("light", "Floor Lamp", "off", dimmable.clone());
        for k in 1..=9 {
            add("light", &format!("Spot {k}"), if k % 4 == 0 { "on" } else { "off" }, dimmable.clone());
        }
        for thing in
            ["Socket", "Heater Plug", "Fridge Plug", "Charger", "Fan Switch", "Dehumidifier", "Speaker Plug", "Pump"]
        {
            add("switch", thing, "off", json!({}));
        }
        let features = json!({"device_class": "blind", "supported_features": 15});
        add("cover", "Blinds", "closed", features.clone());
        add("cover", "Shutter", "open", features);
        add(
            "climate",
            "Thermostat",
            "heat",
            json!({"temperature": 20, "min_temp": 7, "max_temp": 30, "hvac_modes": ["off", "heat"]}),
        );
        add("lock", "Door Lock", "locked", json!({}));
        add("media_player", "TV", "off", json!({"device_class": "tv"}));
        add("media_player", "Radio", "idle", json!({"device_class": "speaker"}));
        let sensors = [
            ("Temperature", "temperature", "°C", "20.5"),
            ("Humidity", "humidity", "%", "48"),
            ("Power", "power", "W", "120"),
            ("Energy", "energy", "kWh", "1520.4"),
            ("Illuminance", "illuminance", "lx", "300"),
            ("CO2", "carbon_dioxide", "ppm", "650"),
            ("Pressure", "pressure", "hPa", "1012"),
            ("Noise", "sound_pressure", "dB", "35"),
            ("Voltage", "voltage", "V", "231"),
            ("Current", "current", "A", "0.5"),
        ];
        for (thing, class, unit, state) in sensors {
            add("sensor", thing, state, json!({"device_class": class, "unit_of_measurement": unit}));
            add(
                "sensor",
                &format!("{thing} Sensor Battery"),
                "87",
                json!({"device_class": "battery", "unit_of_measurement": "%"}),
            );
        }
        add("binary_sensor", "Window", "off", json!({"device_class": "window"}));
        add("binary_sensor", "Door", "off", json!({"device_class": "door"}));
        add("binary_sensor", "Motion", "off", json!({"device_class": "motion"}));
        add("binary_sensor", "Leak", "off", json!({"device_class": "moisture"}));
    }
    (entities, areas)
}

struct Report {
    build: Duration,
    p50: f64,
    p99: f64,
    max: f64,
    per_second: f64,
    understood: usize,
    confident: usize,
}

fn run(entities: Vec<Entity>, areas: Vec<Area>, utterances: &[&str], rounds: usize) -> Report {
    let started = Instant::now();
    let engine = IntentEngine::new(entities, areas);
    let build = started.elapsed();
    let understood = utterances.iter().filter(|u| engine.understand(u).is_some()).count();
    let confident = utterances.iter().filter(|u| engine.understand(u).is_some_and(|x| x.is_confident())).count();
    // Warm up.
    for text in utterances {
        std::hint::black_box(engine.understand(text));
    }
    let mut times = Vec::with_capacity(rounds * utterances.len());
    let all = Instant::now();
    for _ in 0..rounds {
        for text in utterances {
            let t = Instant::now();
            std::hint::black_box(engine.understand(std::hint::black_box(text)));
            times.push(t.elapsed());
        }
    }
    let total = all.elapsed();
    times.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| micros(times[((times.len() as f64 * q) as usize).min(times.len() - 1)]);
    Report {
        build,
        p50: at(0.50),
        p99: at(0.99),
        max: times.last().map(|d| micros(*d)).unwrap_or(0.0),
        per_second: times.len() as f64 / total.as_secs_f64(),
        understood,
        confident,
    }
}

fn print(label: &str, entities: usize, utterances: usize, r: &Report) {
    println!("{label}: {entities} entities, {utterances} utterances");
    println!("  index build      {:>10.1} µs", r.build.as_secs_f64() * 1e6);
    println!("  understand p50   {:>10.1} µs", r.p50);
    println!("  understand p99   {:>10.1} µs", r.p99);
    println!("  understand max   {:>10.1} µs", r.max);
    println!("  throughput       {:>10.0} utterances/s (one thread)", r.per_second);
    println!("  understood       {:>10} of {utterances} ({} confident)", r.understood, r.confident);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let demo = DemoHome::new(clock);
    let entities = demo.entities().await?;
    let areas = demo.areas().await?;
    let n = entities.len();
    let report = run(entities, areas, DEMO_UTTERANCES, args.rounds);
    print("demo home", n, DEMO_UTTERANCES.len(), &report);

    let (entities, areas) = big_home();
    let n = entities.len();
    let report = run(entities, areas, BIG_UTTERANCES, args.rounds);
    print("synthetic home", n, BIG_UTTERANCES.len(), &report);
    Ok(())
}
