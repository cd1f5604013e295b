//! The demo house: its size, its week of history, the planted problems,
//! service calls, statistics and automations.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::home::{
    find_gaps, parse_number, GapKind, Home, HomeError, LogLevel, ServiceCall, StatisticKind, StatisticsPeriod,
};
use steward_core::Clock;

use super::sim::{hour_of, DAY_MS, HOUR_MS, MINUTE_MS, TICK_MS};
use super::*;

/// 2026-03-10T14:07:00Z, a Tuesday afternoon.
const NOW: i64 = 1_773_151_620_000;

struct TestClock(AtomicI64);

impl TestClock {
    fn at(ms: i64) -> Arc<Self> {
        Arc::new(TestClock(AtomicI64::new(ms)))
    }

    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn home() -> DemoHome {
    DemoHome::new(TestClock::at(NOW))
}

fn call(domain: &str, service: &str, ids: &[&str], data: Value) -> ServiceCall {
    ServiceCall::new(domain, service, ids.iter().map(|s| s.to_string()).collect()).with_data(data)
}

async fn state(home: &DemoHome, id: &str) -> String {
    home.entity(id).await.unwrap().state
}

async fn attr(home: &DemoHome, id: &str, key: &str) -> Value {
    home.entity(id).await.unwrap().attributes.get(key).cloned().unwrap_or(Value::Null)
}

/// Calls a service that must fail, returning the error.
async fn refused(home: &DemoHome, c: ServiceCall) -> HomeError {
    home.call_service(&c).await.expect_err("the call should fail")
}

async fn week(home: &DemoHome, id: &str) -> Vec<HistoryPoint> {
    let h = home.history(&[id.to_string()], NOW - 7 * DAY_MS, NOW).await.unwrap();
    h.into_iter().next().unwrap().points
}

#[tokio::test]
async fn the_house_is_big_enough_and_consistent() {
    let home = home();
    let entities = home.entities().await.unwrap();
    let areas = home.areas().await.unwrap();
    let devices = home.devices().await.unwrap();
    assert!(entities.len() >= 45, "{} entities", entities.len());
    let domains: BTreeSet<&str> = entities.iter().map(|e| e.domain.as_str()).collect();
    assert!(domains.len() >= 10, "{domains:?}");
    for d in [
        "light",
        "switch",
        "climate",
        "cover",
        "lock",
        "media_player",
        "binary_sensor",
        "sensor",
        "fan",
        "vacuum",
        "alarm_control_panel",
        "automation",
    ] {
        assert!(domains.contains(d), "no {d}");
    }
    assert!(areas.len() >= 6);
    for e in &entities {
        assert_eq!(Some(e.domain.as_str()), e.entity_id.split('.').next());
        assert!(!e.name.is_empty());
        if let Some(area) = &e.area_id {
            assert!(areas.iter().any(|a| &a.area_id == area), "{} in unknown area {area}", e.entity_id);
        }
        if let Some(device) = &e.device_id {
            assert!(devices.iter().any(|d| &d.device_id == device), "{} on unknown device {device}", e.entity_id);
        }
        assert_eq!(e.attributes["friendly_name"], json!(e.name), "{}", e.entity_id);
        assert_eq!(e.available, e.state != "unavailable");
    }
    let ceiling = home.entity("light.kitchen_ceiling").await.unwrap();
    assert!(ceiling.aliases.contains(&"ceiling light".to_string()));
    let classes: BTreeSet<&str> =
        entities.iter().filter(|e| e.domain == "sensor").filter_map(|e| e.device_class()).collect();
    for c in ["temperature", "humidity", "power", "energy"] {
        assert!(classes.contains(c), "no {c} sensor");
    }
    let energy = home.entity("sensor.house_energy").await.unwrap();
    assert_eq!((energy.unit(), energy.state_class()), (Some("kWh"), Some("total_increasing")));
    assert!(home.is_demo());
    assert_eq!(home.name(), "demo home");
}

#[tokio::test]
async fn a_week_of_history_at_five_minutes() {
    let home = home();
    let points = week(&home, "sensor.living_room_temperature").await;
    assert!(points.len() >= 2016, "{}", points.len());
    assert_eq!(points[0].at, NOW - 7 * DAY_MS, "the first point is the state at the window's start");
    let spacings: BTreeSet<i64> = points.windows(2).skip(1).map(|w| w[1].at - w[0].at).collect();
    assert_eq!(spacings, BTreeSet::from([TICK_MS]));
    assert!(NOW - points.last().unwrap().at < TICK_MS);
    for p in &points {
        let v = parse_number(&p.state).unwrap();
        assert!((15.0..27.0).contains(&v), "implausible room temperature {v}");
    }
    // Steady and on/off entities have history too, at change times.
    assert!(!week(&home, "lock.back_door").await.is_empty());
    assert!(week(&home, "light.living_room_floor_lamp").await.len() > 7);
}

#[tokio::test]
async fn the_same_seed_and_clock_give_the_same_week() {
    let a = home();
    let b = home();
    let c = DemoHome::with_seed(TestClock::at(NOW), 7);
    for id in ["sensor.house_power", "light.kitchen_ceiling", "binary_sensor.hallway_motion"] {
        assert_eq!(week(&a, id).await, week(&b, id).await, "{id}");
    }
    assert_ne!(week(&a, "sensor.house_power").await, week(&c, "sensor.house_power").await);
}

#[tokio::test]
async fn daily_life_shows_in_the_history() {
    let home = home();
    // The floor lamp is on at 21:00 and off at 03:00 on (nearly) every day.
    let lamp = week(&home, "light.living_room_floor_lamp").await;
    let state_at = |points: &[HistoryPoint], t: i64| {
        points.iter().take_while(|p| p.at <= t).last().map(|p| p.state.clone()).unwrap_or_default()
    };
    let day0 = (NOW - 7 * DAY_MS) / DAY_MS + 1;
    let evenings = (day0..day0 + 6).filter(|d| state_at(&lamp, d * DAY_MS + 21 * HOUR_MS) == "on").count();
    let nights = (day0..day0 + 6).filter(|d| state_at(&lamp, d * DAY_MS + 3 * HOUR_MS) == "off").count();
    assert!(evenings >= 5 && nights == 6, "on {evenings} evenings, off {nights} nights");
    // Outdoors is warmer in the afternoon than before dawn.
    let outdoor = week(&home, "sensor.outdoor_temperature").await;
    let mean_at = |hour: f64| {
        let v: Vec<f64> = outdoor
            .iter()
            .filter(|p| (hour_of(p.at) - hour).abs() < 0.5)
            .filter_map(|p| parse_number(&p.state))
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean_at(15.0) > mean_at(4.0) + 4.0);
    // No sun at night; meters only go up.
    for p in week(&home, "sensor.solar_power").await {
        if !(6.0..20.0).contains(&hour_of(p.at)) {
            assert_eq!(p.state, "0", "solar power at {}", p.at);
        }
    }
    for id in ["sensor.house_energy", "sensor.solar_energy", "sensor.car_charger_energy"] {
        let values: Vec<f64> = week(&home, id).await.iter().filter_map(|p| parse_number(&p.state)).collect();
        assert!(values.windows(2).all(|w| w[1] >= w[0]), "{id} went down");
        assert!(values.last().unwrap() > values.first().unwrap(), "{id} never moved");
    }
    // Power draw peaks in the evening and the charger draws kilowatts.
    let power: Vec<f64> =
        week(&home, "sensor.house_power").await.iter().filter_map(|p| parse_number(&p.state)).collect();
    assert!(power.iter().copied().fold(0.0, f64::max) > 2000.0);
    assert!(power.iter().copied().fold(f64::MAX, f64::min) > 50.0);
}

#[tokio::test]
async fn the_car_charger_energy_has_a_gap_and_the_log_says_why() {
    let home = home();
    let scenario = home.scenario();
    let (start, end) = scenario.charger_outage;
    assert!(NOW - start > 24 * HOUR_MS && NOW - start < 48 * HOUR_MS);
    assert!(end - start >= 3 * HOUR_MS);
    let points = week(&home, OUTAGE_ENTITY).await;
    assert!(!points.iter().any(|p| (start..end).contains(&p.at)), "data inside the outage");
    assert!(points.iter().any(|p| p.at < start) && points.iter().any(|p| p.at >= end));
    let gaps = find_gaps(&points, NOW);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].kind, GapKind::NoData);
    assert_eq!((gaps[0].start, gaps[0].end), (start - TICK_MS, end));
    // The other sensors kept reporting.
    assert!(find_gaps(&week(&home, "sensor.house_energy").await, NOW).is_empty());

    let logs = home.logs().await.unwrap();
    let errors: Vec<_> = logs.iter().filter(|l| l.logger.contains("voltbox") && l.level == LogLevel::Error).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].first_occurred, errors[0].timestamp), (start, end - TICK_MS));
    assert!(errors[0].message.contains("Cannot connect"));
    assert!(errors[0].count > 12);
    assert!(logs.iter().any(|l| l.message.contains("recovered") && l.timestamp == end));
    assert!(logs.windows(2).all(|w| w[0].timestamp >= w[1].timestamp), "newest first");
}

#[tokio::test]
async fn one_entity_is_unavailable_and_cannot_be_controlled() {
    let home = home();
    let unavailable: Vec<String> =
        home.entities().await.unwrap().into_iter().filter(|e| !e.available).map(|e| e.entity_id).collect();
    assert_eq!(unavailable, vec![UNAVAILABLE_ENTITY.to_string()]);
    let points = week(&home, UNAVAILABLE_ENTITY).await;
    let last = points.last().unwrap();
    assert_eq!((last.at, last.state.as_str()), (home.scenario().valve_lost_at, "unavailable"));
    let e = refused(&home, call("switch", "turn_on", &[UNAVAILABLE_ENTITY], Value::Null)).await;
    assert!(matches!(e, HomeError::InvalidRequest { .. }));
    assert!(e.to_string().contains("Garden Irrigation is unavailable"), "{e}");
    assert!(e.to_string().contains("battery"), "{e}");
    assert!(home
        .logs()
        .await
        .unwrap()
        .iter()
        .any(|l| l.message.contains("Garden Irrigation Valve") && l.timestamp == home.scenario().valve_lost_at));
}

#[tokio::test]
async fn a_stuck_sensor_repeats_itself() {
    let home = home();
    let since = home.scenario().humidity_stuck_since;
    let points = week(&home, STUCK_ENTITY).await;
    let stuck: BTreeSet<&str> = points.iter().filter(|p| p.at >= since).map(|p| p.state.as_str()).collect();
    assert_eq!(stuck.len(), 1);
    let before: BTreeSet<&str> =
        points.iter().filter(|p| p.at < since && p.at > since - DAY_MS).map(|p| p.state.as_str()).collect();
    assert!(before.len() > 5);
}

#[tokio::test]
async fn lights_follow_home_assistant() {
    let home = home();
    let id = "light.living_room_floor_lamp";
    assert_eq!(state(&home, id).await, "off");
    let on = home.call_service(&call("light", "turn_on", &[id], json!({"brightness_pct": 40}))).await.unwrap();
    assert_eq!(on[0].state, "on");
    assert_eq!(on[0].attributes["brightness"], 102);
    assert_eq!(on[0].attributes["color_mode"], "color_temp");
    home.call_service(&call("light", "turn_on", &[id], json!({"color_name": "Red"}))).await.unwrap();
    assert_eq!(
        (attr(&home, id, "color_mode").await, attr(&home, id, "rgb_color").await),
        (json!("rgb"), json!([255, 0, 0]))
    );
    assert_eq!(attr(&home, id, "brightness").await, 102, "colour changes keep the brightness");
    home.call_service(&call("light", "turn_on", &[id], json!({"rgb_color": [0, 10, 200], "brightness": 30})))
        .await
        .unwrap();
    assert_eq!(
        (attr(&home, id, "rgb_color").await, attr(&home, id, "brightness").await),
        (json!([0, 10, 200]), json!(30))
    );
    home.call_service(&call("light", "turn_on", &[id], json!({"color_temp_kelvin": 4000}))).await.unwrap();
    assert_eq!(
        (attr(&home, id, "color_mode").await, attr(&home, id, "color_temp_kelvin").await),
        (json!("color_temp"), json!(4000))
    );
    assert_eq!(attr(&home, id, "rgb_color").await, Value::Null);
    home.call_service(&call("light", "turn_off", &[id], Value::Null)).await.unwrap();
    assert_eq!(state(&home, id).await, "off");
    assert_eq!(attr(&home, id, "brightness").await, Value::Null);
    // Back on, it looks as it did.
    home.call_service(&call("light", "toggle", &[id], Value::Null)).await.unwrap();
    assert_eq!(
        (attr(&home, id, "brightness").await, attr(&home, id, "color_temp_kelvin").await),
        (json!(30), json!(4000))
    );
    home.call_service(&call("light", "turn_on", &[id], json!({"brightness_step_pct": -50}))).await.unwrap();
    assert_eq!(state(&home, id).await, "off", "a step past zero turns it off");
    assert_eq!(attr(&home, id, "brightness").await, Value::Null);
    // A light never switched by hand comes on as it usually looks.
    home.call_service(&call("light", "turn_on", &["light.bedside_lamp"], Value::Null)).await.unwrap();
    let bedside = home.entity("light.bedside_lamp").await.unwrap();
    assert_eq!(
        (&bedside.attributes["brightness"], &bedside.attributes["color_temp_kelvin"]),
        (&json!(60), &json!(2200))
    );
    home.call_service(&call("light", "turn_on", &["light.garage"], Value::Null)).await.unwrap();
    assert_eq!(state(&home, "light.garage").await, "on");
    assert_eq!(attr(&home, "light.garage", "color_mode").await, "onoff");
}

#[tokio::test]
async fn switches_fans_and_helpers_turn_on_and_off() {
    let home = home();
    for (domain, id) in
        [("switch", "switch.coffee_machine"), ("input_boolean", "input_boolean.guest_mode"), ("fan", "fan.bedroom_fan")]
    {
        home.call_service(&call(domain, "turn_on", &[id], Value::Null)).await.unwrap();
        assert_eq!(state(&home, id).await, "on", "{id}");
        home.call_service(&call(domain, "toggle", &[id], Value::Null)).await.unwrap();
        assert_eq!(state(&home, id).await, "off", "{id}");
    }
    let fan = "fan.bedroom_fan";
    home.call_service(&call("fan", "turn_on", &[fan], json!({"percentage": 75}))).await.unwrap();
    assert_eq!(attr(&home, fan, "percentage").await, 75);
    home.call_service(&call("fan", "set_preset_mode", &[fan], json!({"preset_mode": "sleep"}))).await.unwrap();
    assert_eq!(attr(&home, fan, "preset_mode").await, "sleep");
    home.call_service(&call("fan", "set_percentage", &[fan], json!({"percentage": 0}))).await.unwrap();
    assert_eq!(state(&home, fan).await, "off");
}

#[tokio::test]
async fn climate_covers_locks_vacuum_and_alarm_change_state() {
    let home = home();
    let tstat = "climate.living_room";
    home.call_service(&call("climate", "set_temperature", &[tstat], json!({"temperature": 22.3}))).await.unwrap();
    assert_eq!(attr(&home, tstat, "temperature").await, 22.5, "rounded to the thermostat's step");
    home.call_service(&call("climate", "set_hvac_mode", &[tstat], json!({"hvac_mode": "cool"}))).await.unwrap();
    assert_eq!(state(&home, tstat).await, "cool");
    home.call_service(&call("climate", "set_temperature", &[tstat], json!({"temperature": 19, "hvac_mode": "heat"})))
        .await
        .unwrap();
    assert_eq!((state(&home, tstat).await, attr(&home, tstat, "temperature").await), ("heat".into(), json!(19.0)));
    home.call_service(&call("climate", "turn_off", &[tstat], Value::Null)).await.unwrap();
    assert_eq!((state(&home, tstat).await, attr(&home, tstat, "hvac_action").await), ("off".into(), json!("off")));

    let blinds = "cover.living_room_blinds";
    home.call_service(&call("cover", "set_cover_position", &[blinds], json!({"position": 40}))).await.unwrap();
    assert_eq!((state(&home, blinds).await, attr(&home, blinds, "current_position").await), ("open".into(), json!(40)));
    home.call_service(&call("cover", "stop_cover", &[blinds], Value::Null)).await.unwrap();
    assert_eq!(attr(&home, blinds, "current_position").await, 40);
    home.call_service(&call("cover", "close_cover", &[blinds], Value::Null)).await.unwrap();
    assert_eq!(
        (state(&home, blinds).await, attr(&home, blinds, "current_position").await),
        ("closed".into(), json!(0))
    );
    home.call_service(&call("cover", "open_cover", &["cover.garage_door"], Value::Null)).await.unwrap();
    assert_eq!(state(&home, "cover.garage_door").await, "open");

    home.call_service(&call("lock", "unlock", &["lock.back_door"], Value::Null)).await.unwrap();
    assert_eq!(state(&home, "lock.back_door").await, "unlocked");
    home.call_service(&call("lock", "lock", &["lock.back_door", "lock.front_door"], json!({"code": "1234"})))
        .await
        .unwrap();
    assert_eq!(state(&home, "lock.back_door").await, "locked");

    home.call_service(&call("vacuum", "start", &["vacuum.robot_vacuum"], Value::Null)).await.unwrap();
    assert_eq!(state(&home, "vacuum.robot_vacuum").await, "cleaning");
    home.call_service(&call("vacuum", "return_to_base", &["vacuum.robot_vacuum"], Value::Null)).await.unwrap();
    assert_eq!(state(&home, "vacuum.robot_vacuum").await, "docked");

    let alarm = "alarm_control_panel.home_alarm";
    home.call_service(&call("alarm_control_panel", "alarm_arm_away", &[alarm], Value::Null)).await.unwrap();
    assert_eq!(
        (state(&home, alarm).await, attr(&home, alarm, "changed_by").await),
        ("armed_away".into(), json!("Steward"))
    );
    home.call_service(&call("alarm_control_panel", "alarm_disarm", &[alarm], json!({"code": 1234}))).await.unwrap();
    assert_eq!(state(&home, alarm).await, "disarmed");
}

#[tokio::test]
async fn media_players_play_pause_skip_and_set_volume() {
    let home = home();
    let tv = "media_player.living_room_tv";
    assert_eq!(state(&home, tv).await, "off");
    let e = refused(&home, call("media_player", "media_play", &[tv], Value::Null)).await;
    assert!(e.to_string().contains("Living Room TV is off; turn it on first"), "{e}");
    home.call_service(&call("media_player", "turn_on", &[tv], Value::Null)).await.unwrap();
    home.call_service(&call("media_player", "media_play", &[tv], Value::Null)).await.unwrap();
    assert_eq!(state(&home, tv).await, "playing");
    let first = attr(&home, tv, "media_title").await;
    home.call_service(&call("media_player", "media_next_track", &[tv], Value::Null)).await.unwrap();
    assert_ne!(attr(&home, tv, "media_title").await, first);
    home.call_service(&call("media_player", "media_previous_track", &[tv], Value::Null)).await.unwrap();
    assert_eq!(attr(&home, tv, "media_title").await, first);
    home.call_service(&call("media_player", "media_pause", &[tv], Value::Null)).await.unwrap();
    assert_eq!(state(&home, tv).await, "paused");
    home.call_service(&call("media_player", "volume_set", &[tv], json!({"volume_level": 0.6}))).await.unwrap();
    assert_eq!(attr(&home, tv, "volume_level").await, 0.6);
    home.call_service(&call("media_player", "select_source", &[tv], json!({"source": "netflix"}))).await.unwrap();
    assert_eq!(attr(&home, tv, "source").await, "Netflix");
    home.call_service(&call("media_player", "turn_off", &[tv], Value::Null)).await.unwrap();
    assert_eq!((state(&home, tv).await, attr(&home, tv, "media_title").await), ("off".into(), Value::Null));
}

#[tokio::test]
async fn bad_calls_fail_clearly_and_change_nothing() {
    let home = home();
    let before = home.entities().await.unwrap();
    let light = "light.kitchen_ceiling";
    let cases: Vec<(ServiceCall, &str)> = vec![
        (call("light", "turn_on", &["light.nope"], Value::Null), "entity `light.nope` does not exist"),
        (call("light", "open_cover", &[light], Value::Null), "its services are: turn_on, turn_off, toggle"),
        (call("light", "turn_on", &[light], json!({"brightness": 300})), "`brightness` must be between 0 and 255"),
        (call("light", "turn_on", &[light], json!({"brightness_pct": "lots"})), "`brightness_pct` must be a number"),
        (call("light", "turn_on", &[light], json!({"brightness": 10, "brightness_pct": 10})), "only one of"),
        (call("light", "turn_on", &[light], json!({"color_name": "red"})), "cannot show colours"),
        (call("light", "turn_on", &[light], json!({"color_temp_kelvin": 9000})), "between 2200 and 6500"),
        (
            call("light", "turn_on", &["light.tv_backlight"], json!({"rgb_color": [1, 2]})),
            "three numbers from 0 to 255",
        ),
        (call("light", "turn_on", &["light.tv_backlight"], json!({"color_name": "blurple"})), "not a colour name"),
        (call("light", "turn_on", &["light.garage"], json!({"brightness_pct": 50})), "only switches on and off"),
        (call("light", "turn_on", &[light], json!({"speed": 1})), "does not take `speed`"),
        (call("light", "turn_on", &[light], json!([1])), "must be a JSON object"),
        (call("light", "turn_on", &[], Value::Null), "at least one target"),
        (call("light", "turn_on", &["switch.coffee_machine"], Value::Null), "is a switch entity"),
        (call("switch", "turn_on", &["switch.coffee_machine"], json!({"brightness": 1})), "takes no data"),
        (call("sensor", "turn_on", &["sensor.house_power"], Value::Null), "only report values"),
        (call("teleporter", "engage", &["teleporter.x"], Value::Null), "no domain `teleporter`"),
        (call("climate", "set_temperature", &["climate.bedroom"], Value::Null), "`temperature` is required"),
        (call("climate", "set_temperature", &["climate.bedroom"], json!({"temperature": 40})), "from 5 to 28"),
        (call("climate", "set_hvac_mode", &["climate.bedroom"], json!({"hvac_mode": "cool"})), "has: off, heat"),
        (call("cover", "set_cover_position", &["cover.garage_door"], json!({"position": 50})), "only opens and closes"),
        (
            call("cover", "set_cover_position", &["cover.bedroom_shutter"], json!({"position": 150})),
            "between 0 and 100",
        ),
        (
            call("fan", "set_preset_mode", &["fan.bedroom_fan"], json!({"preset_mode": "turbo"})),
            "normal, sleep, breeze",
        ),
        (
            call("media_player", "volume_set", &["media_player.kitchen_speaker"], json!({"volume_level": 2})),
            "between 0 and 1",
        ),
        // One bad target spoils the whole call: the first light must not change either.
        (
            call("light", "turn_on", &["light.hallway", "light.garage"], json!({"brightness_pct": 20})),
            "only switches on and off",
        ),
    ];
    for (c, expected) in cases {
        let e = refused(&home, c.clone()).await;
        assert!(matches!(e, HomeError::InvalidRequest { .. } | HomeError::NotFound { .. }), "{c:?}: {e:?}");
        assert!(e.to_string().contains(expected), "{}: {e}", c.full_name());
    }
    assert_eq!(home.entities().await.unwrap(), before, "a refused call changed something");
}

#[tokio::test]
async fn a_change_is_recorded_logged_and_announced() {
    let clock = TestClock::at(NOW);
    let home = DemoHome::new(clock.clone());
    let mut events = home.subscribe();
    clock.advance(30_000);
    let id = "switch.coffee_machine";
    let before = home.entity(id).await.unwrap();
    home.call_service(&call("switch", "turn_on", &[id], Value::Null)).await.unwrap();
    let after = home.entity(id).await.unwrap();
    assert_eq!((after.last_changed, after.last_updated), (NOW + 30_000, NOW + 30_000));
    let points = home.history(&[id.to_string()], NOW, NOW + 60_000).await.unwrap().remove(0).points;
    assert_eq!(points.last().map(|p| (p.at, p.state.as_str())), Some((NOW + 30_000, "on")));
    let logbook = home.logbook(NOW, NOW + 60_000, Some(id)).await.unwrap();
    assert_eq!(logbook.len(), 1);
    assert_eq!(logbook[0].message, "turned on");
    assert_eq!(logbook[0].context.as_deref(), Some("switch.turn_on called by Steward"));
    let event = events.recv().await.unwrap();
    assert_eq!(event.entity_id, id);
    assert_eq!(event.old.as_ref().map(|e| e.state.as_str()), Some(before.state.as_str()));
    assert_eq!(event.new.as_ref().map(|e| e.state.as_str()), Some("on"));

    // An attribute-only change updates last_updated but not last_changed.
    clock.advance(30_000);
    home.call_service(&call("light", "turn_on", &["light.hallway"], Value::Null)).await.unwrap();
    clock.advance(30_000);
    home.call_service(&call("light", "turn_on", &["light.hallway"], json!({"brightness": 10}))).await.unwrap();
    let hall = home.entity("light.hallway").await.unwrap();
    assert_eq!((hall.last_changed, hall.last_updated), (NOW + 60_000, NOW + 90_000));
}

#[tokio::test]
async fn time_moves_the_sensors_but_not_the_switches() {
    let clock = TestClock::at(NOW);
    let home = DemoHome::new(clock.clone());
    home.call_service(&call("light", "turn_on", &["light.kitchen_ceiling"], Value::Null)).await.unwrap();
    let mut events = home.subscribe();
    let before = week(&home, "sensor.living_room_temperature").await.len();
    clock.advance(HOUR_MS);
    let h = home
        .history(&["sensor.living_room_temperature".to_string()], NOW - 7 * DAY_MS, NOW + HOUR_MS)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(h.points.len(), before + 12);
    let mut seen = BTreeSet::new();
    while let Ok(e) = events.try_recv() {
        seen.insert(e.entity_id);
    }
    assert!(seen.contains("sensor.house_energy"));
    assert!(seen.iter().all(|id| id.starts_with("sensor.")), "{seen:?}");
    assert_eq!(state(&home, "light.kitchen_ceiling").await, "on");
    // The unavailable switch stays unavailable.
    assert_eq!(state(&home, UNAVAILABLE_ENTITY).await, "unavailable");
}

#[tokio::test]
async fn history_queries_are_checked() {
    let home = home();
    let e = home.history(&["light.nope".to_string()], NOW - HOUR_MS, NOW).await.unwrap_err();
    assert!(matches!(e, HomeError::NotFound { .. }));
    let e = home.history(&["light.hallway".to_string()], NOW, NOW - HOUR_MS).await.unwrap_err();
    assert!(matches!(e, HomeError::InvalidRequest { .. }));
    let h = home.history(&["lock.back_door".to_string()], NOW - HOUR_MS, NOW).await.unwrap();
    assert_eq!(h[0].points, vec![HistoryPoint { at: NOW - HOUR_MS, state: "locked".into() }]);
    assert!(matches!(home.logbook(0, NOW, Some("light.nope")).await, Err(HomeError::NotFound { .. })));
    let day = home.logbook(NOW - DAY_MS, NOW, None).await.unwrap();
    assert!(day.len() > 20 && day.iter().all(|e| e.when >= NOW - DAY_MS && e.when <= NOW));
    assert!(day.iter().all(|e| e.domain.as_deref() != Some("sensor")), "continuous sensors stay out of the logbook");
}

#[tokio::test]
async fn hourly_statistics_agree_with_the_history() {
    let home = home();
    let (start, end) = (NOW - 2 * DAY_MS, NOW);
    let ids: Vec<String> = ["sensor.living_room_temperature", "sensor.house_energy", OUTAGE_ENTITY, "light.hallway"]
        .map(String::from)
        .to_vec();
    let stats = home.statistics(&ids, start, end, StatisticsPeriod::Hour).await.unwrap();
    assert_eq!(stats.len(), 3, "the light keeps no statistics");

    let temp = &stats[0];
    assert_eq!((temp.kind, temp.unit.as_deref()), (StatisticKind::Measurement, Some("°C")));
    assert!(temp.rows.len() >= 48);
    let points = week(&home, "sensor.living_room_temperature").await;
    for row in &temp.rows {
        assert_eq!(row.end - row.start, HOUR_MS);
        let values: Vec<f64> = points
            .iter()
            .filter(|p| p.at >= row.start && p.at < row.end)
            .filter_map(|p| parse_number(&p.state))
            .collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((row.mean.unwrap() - mean).abs() < 1e-9, "{row:?}");
        assert_eq!(row.min, values.iter().copied().reduce(f64::min));
        assert_eq!(row.max, values.iter().copied().reduce(f64::max));
        assert!(row.state.is_none() && row.sum.is_none());
    }

    let energy = &stats[1];
    assert_eq!(energy.kind, StatisticKind::Total);
    let points = week(&home, "sensor.house_energy").await;
    for pair in energy.rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let used = b.sum.unwrap() - a.sum.unwrap();
        assert!((used - (b.state.unwrap() - a.state.unwrap())).abs() < 1e-6, "sum and state disagree");
        assert!(used >= 0.0);
        let last_in_hour = points.iter().rfind(|p| p.at >= b.start && p.at < b.end).unwrap();
        assert_eq!(b.state, parse_number(&last_in_hour.state));
    }

    // Hours of the outage have no rows.
    let (gap_start, gap_end) = home.scenario().charger_outage;
    let charger = &stats[2];
    assert!(!charger.rows.is_empty());
    assert!(!charger.rows.iter().any(|r| r.start >= gap_start && r.end <= gap_end), "rows inside the outage");

    let daily = home.statistics(&ids[..1], NOW - 3 * DAY_MS, NOW, StatisticsPeriod::Day).await.unwrap();
    assert_eq!(daily[0].rows.len(), 4);
    assert!(daily[0].rows.iter().all(|r| r.end - r.start == DAY_MS));
    assert!(matches!(
        home.statistics(&["sensor.nope".to_string()], start, end, StatisticsPeriod::Hour).await,
        Err(HomeError::NotFound { .. })
    ));
}

#[tokio::test]
async fn automations_are_stored_checked_and_deleted() {
    let home = home();
    let seeded = home.automations().await.unwrap();
    assert_eq!(seeded.len(), 3);
    assert!(seeded.iter().all(|a| a.enabled && a.last_triggered.is_some()));
    assert_eq!(home.check_config().await.unwrap(), ConfigCheck { valid: true, errors: vec![], warnings: vec![] });
    let evening = home.automation("evening_lights").await.unwrap();
    assert_eq!(evening.entity_id.as_deref(), Some("automation.evening_lights"));
    assert_eq!(state(&home, "automation.evening_lights").await, "on");

    let config = json!({
        "alias": "Hall light on arrival",
        "triggers": [{"trigger": "state", "entity_id": "binary_sensor.front_door_contact", "to": "on"}],
        "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.hallway"}}]
    });
    let mut events = home.subscribe();
    let created = home.upsert_automation("hall_arrival", config.clone()).await.unwrap();
    assert_eq!(created.entity_id.as_deref(), Some("automation.hall_light_on_arrival"));
    assert_eq!(created.config["id"], "hall_arrival");
    assert_eq!(events.recv().await.unwrap().entity_id, "automation.hall_light_on_arrival");
    assert_eq!(home.automations().await.unwrap().len(), 4);
    assert!(home.check_config().await.unwrap().valid);

    // Broken references are stored (as Home Assistant would) and the check finds them.
    let mut broken = config.clone();
    broken["actions"] = json!([{"action": "light.turn_onn", "target": {"entity_id": "light.attic"}}]);
    broken["triggers"] = json!([{"trigger": "moonrise"}]);
    let updated = home.upsert_automation("hall_arrival", broken).await.unwrap();
    assert_eq!(updated.entity_id, created.entity_id, "an update keeps the entity");
    let check = home.check_config().await.unwrap();
    assert!(!check.valid);
    let all = check.errors.join("\n");
    assert!(all.contains("Automation 'Hall light on arrival' (hall_arrival)"), "{all}");
    assert!(all.contains("unknown kind `moonrise`"), "{all}");
    assert!(all.contains("`light.attic`, which does not exist"), "{all}");
    assert!(all.contains("light has no service `turn_onn`"), "{all}");

    let e = home.upsert_automation("x", json!({"alias": "no triggers", "actions": [{}]})).await.unwrap_err();
    assert!(e.to_string().contains("at least one trigger"), "{e}");

    // Turning the automation off through its entity disables it.
    home.call_service(&call("automation", "turn_off", &["automation.hall_light_on_arrival"], Value::Null))
        .await
        .unwrap();
    assert!(!home.automation("hall_arrival").await.unwrap().enabled);
    home.call_service(&call("automation", "trigger", &["automation.lock_up_at_night"], Value::Null)).await.unwrap();
    assert_eq!(home.automation("night_lock").await.unwrap().last_triggered, Some(NOW));

    home.delete_automation("hall_arrival").await.unwrap();
    assert!(matches!(home.automation("hall_arrival").await, Err(HomeError::NotFound { .. })));
    assert!(matches!(home.entity("automation.hall_light_on_arrival").await, Err(HomeError::NotFound { .. })));
    assert!(home.check_config().await.unwrap().valid);
    assert!(matches!(home.delete_automation("hall_arrival").await, Err(HomeError::NotFound { .. })));
}

#[tokio::test(start_paused = true)]
async fn service_calls_can_be_made_slow() {
    let home = home().with_latency(Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    home.call_service(&call("switch", "turn_on", &["switch.coffee_machine"], Value::Null)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
    // Reads are not slowed.
    let started = tokio::time::Instant::now();
    home.entity("switch.coffee_machine").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn services_are_listed_with_their_fields() {
    let home = home();
    let services = home.services().await.unwrap();
    let turn_on = services.iter().find(|s| s.domain == "light" && s.service == "turn_on").unwrap();
    for f in ["brightness", "brightness_pct", "color_name", "rgb_color", "color_temp_kelvin"] {
        assert!(turn_on.fields.iter().any(|x| x == f), "{f}");
    }
    assert!(services.iter().any(|s| s.domain == "cover" && s.service == "set_cover_position"));
    assert!(!services.iter().any(|s| s.domain == "sensor"));
    let _ = MINUTE_MS;
}
