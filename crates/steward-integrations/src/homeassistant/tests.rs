//! Unit tests of the translation from Home Assistant's JSON, with replies
//! shaped like those of Home Assistant 2025.4. The client against a real
//! Home Assistant is tested in `tests/suite`.

use std::time::Duration;

use serde_json::json;
use steward_core::home::{HomeError, LogLevel, StatisticKind};

use super::catalog::{Catalog, Registries};
use super::connection::CallError;
use super::shared::{backoff, Endpoint, Token};
use super::wire::*;
use super::Options;

#[test]
fn times_parse_as_home_assistant_writes_them() {
    assert_eq!(parse_time("2026-03-10T14:07:00+00:00"), Some(1_773_151_620_000));
    assert_eq!(parse_time("2026-03-10T14:07:00.123456+00:00"), Some(1_773_151_620_123));
    assert_eq!(parse_time("2026-03-10T14:07:00Z"), Some(1_773_151_620_000));
    assert_eq!(parse_time("2026-03-10T16:07:00.5+02:00"), Some(1_773_151_620_500));
    assert_eq!(parse_time("2026-03-10T09:37:00-04:30"), Some(1_773_151_620_000));
    assert_eq!(parse_time("2026-03-10 14:07:00"), Some(1_773_151_620_000));
    assert_eq!(parse_time("2000-02-29T00:00:00Z"), Some(951_782_400_000));
    assert_eq!(parse_time("1969-12-31T23:59:59Z"), Some(-1000));
    for bad in ["", "2026-03-10", "2026-13-10T00:00:00Z", "2026-03-10T25:00:00Z", "yesterday", "2026-03-10T14:07Z"] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}

#[test]
fn times_are_formatted_with_milliseconds_and_read_back() {
    assert_eq!(format_time(1_773_151_620_123), "2026-03-10T14:07:00.123Z");
    assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
    for ms in [0, 1_773_151_620_123, 951_782_400_001, -1_500] {
        assert_eq!(parse_time(&format_time(ms)), Some(ms));
    }
}

#[test]
fn snippets_are_short_and_on_one_line() {
    assert_eq!(snippet("  <html>\n  <body>hi</body>\n</html> "), "\"<html> <body>hi</body> </html>\"");
    assert_eq!(snippet(""), "an empty reply");
    let long = snippet(&"x".repeat(1000));
    assert!(long.chars().count() < 170 && long.ends_with("…\""), "{long}");
}

#[test]
fn urls_become_the_websocket_address() {
    let e = Endpoint::parse("http://ha.local:8123/").unwrap();
    assert_eq!((e.ws.as_str(), e.display.as_str()), ("ws://ha.local:8123/api/websocket", "http://ha.local:8123"));
    let e = Endpoint::parse("https://example.org/home").unwrap();
    assert_eq!(e.ws.as_str(), "wss://example.org/home/api/websocket", "a path prefix is kept");
    assert_eq!(e.base.join("api/error_log").unwrap().as_str(), "https://example.org/home/api/error_log");
    for bad in ["ha.local:8123", "ws://ha.local", "http://", "nonsense"] {
        match Endpoint::parse(bad) {
            Err(HomeError::InvalidRequest { why, .. }) => assert!(why.contains("HA_URL"), "{bad}: {why}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn the_token_stays_out_of_debug_output() {
    let token = Token::new(" secret-token \n");
    assert_eq!(token.expose(), "secret-token");
    assert!(!format!("{token:?}").contains("secret"));
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let options = Options {
        backoff_initial: Duration::from_millis(500),
        backoff_max: Duration::from_secs(30),
        ..Options::default()
    };
    let within = |attempt, low: u64, high: u64| {
        let d = backoff(&options, attempt);
        assert!(d >= Duration::from_millis(low) && d <= Duration::from_millis(high), "{attempt}: {d:?}");
    };
    within(0, 400, 500);
    within(1, 800, 1000);
    within(3, 3200, 4000);
    within(10, 24_000, 30_000);
    within(u32::MAX, 24_000, 30_000);
}

#[test]
fn errors_of_home_assistant_get_their_meaning() {
    let ha = |code: &str| CallError::Ha { code: code.into(), message: "it went wrong".into() };
    assert!(matches!(ha("unauthorized").into_home("x"), HomeError::Unauthorized(m) if m.contains("HA_TOKEN")));
    assert!(matches!(ha("unknown_command").into_home("x/y"), HomeError::UnexpectedReply(m) if m.contains("x/y")));
    assert!(matches!(
        ha("service_validation_error").into_home("light.turn_on"),
        HomeError::InvalidRequest { what, why } if what == "light.turn_on" && why == "it went wrong"
    ));
}

#[test]
fn states_are_read_and_bad_ones_skipped() {
    let states = parse_states(&json!([
        {"entity_id": "light.a", "state": "on", "attributes": {"brightness": 10},
         "last_changed": "2026-03-10T14:07:00+00:00", "last_updated": "2026-03-10T14:07:01+00:00"},
        {"entity_id": "sensor.b", "state": "21.5", "last_changed": "2026-03-10T14:07:00+00:00"},
        {"entity_id": "broken"},
    ]))
    .unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!((states[0].last_changed, states[0].last_updated), (1_773_151_620_000, 1_773_151_621_000));
    assert_eq!(states[1].attributes, json!({}));
    assert!(matches!(parse_states(&json!({"not": "a list"})), Err(HomeError::UnexpectedReply(_))));
}

#[test]
fn services_flatten_sections_and_know_their_responses() {
    let (services, responses) = parse_services(&json!({
        "light": {"turn_on": {"name": "Turn on", "description": "Turns lights on.", "fields": {
            "transition": {"selector": {"number": {}}},
            "advanced_fields": {"collapsed": true, "fields": {"flash": {"selector": {}}}},
        }}},
        "weather": {"get_forecasts": {"name": "Get forecasts", "description": "", "fields": {}, "response": {"optional": false}}},
        "calendar": {"get_events": {"description": "Events.", "response": {"optional": true}}},
    }))
    .unwrap();
    let names: Vec<String> = services.iter().map(|s| format!("{}.{}", s.domain, s.service)).collect();
    assert_eq!(names, ["calendar.get_events", "light.turn_on", "weather.get_forecasts"]);
    assert_eq!(services[1].fields, ["flash", "transition"]);
    assert_eq!(services[2].description, "Get forecasts", "the name stands in for a missing description");
    assert_eq!(responses["light.turn_on"], ResponseSupport::None);
    assert_eq!(responses["weather.get_forecasts"], ResponseSupport::Only);
    assert_eq!(responses["calendar.get_events"], ResponseSupport::Optional);
}

#[test]
fn history_points_come_in_the_order_asked() {
    let ids = vec!["light.a".to_string(), "sensor.none".to_string(), "light.b".to_string()];
    let start = 1_773_151_620_000;
    let history = parse_history(
        &json!({
            "light.b": [{"s": "on", "lu": 1_773_151_630.0}],
            // The state at the start: last changed long before, dated at the start.
            "light.a": [
                {"s": "off", "lu": 1_773_151_620.0, "lc": 1_773_000_000.0},
                {"s": "on", "lu": 1_773_151_625.5},
                // Only an attribute changed: it keeps its recorded time.
                {"s": "on", "lu": 1_773_151_627.0, "lc": 1_773_151_625.5},
            ],
        }),
        &ids,
        start,
    )
    .unwrap();
    assert_eq!(history.iter().map(|h| h.entity_id.as_str()).collect::<Vec<_>>(), ["light.a", "sensor.none", "light.b"]);
    assert_eq!(history[0].points[0].at, start);
    assert_eq!((history[0].points[1].at, history[0].points[1].state.as_str()), (1_773_151_625_500, "on"));
    assert_eq!(history[0].points[2].at, 1_773_151_627_000);
    assert!(history[1].points.is_empty());
    assert!(parse_history(&json!({"light.a": [{"lu": 1.0}]}), &ids, 0).is_err());
}

#[test]
fn statistics_follow_their_metadata() {
    let metadata = parse_statistics_metadata(&json!([
        {"statistic_id": "sensor.t", "has_mean": true, "mean_type": 1, "has_sum": false,
         "statistics_unit_of_measurement": "°C", "display_unit_of_measurement": "°C"},
        {"statistic_id": "sensor.e", "has_mean": false, "mean_type": 0, "has_sum": true,
         "statistics_unit_of_measurement": "kWh"},
        {"statistic_id": "sensor.wind", "mean_type": 2, "has_sum": false, "statistics_unit_of_measurement": "°"},
        {"statistic_id": "sensor.nothing", "has_mean": false, "has_sum": false},
    ]))
    .unwrap();
    assert_eq!(metadata["sensor.wind"].kind, StatisticKind::Measurement, "a circular mean is a measurement");
    assert!(!metadata.contains_key("sensor.nothing"));
    let ids: Vec<String> = ["sensor.e", "sensor.unknown", "sensor.t"].iter().map(|s| s.to_string()).collect();
    let stats = parse_statistics(
        &json!({
            "sensor.t": [
                {"start": 7_200_000, "end": 10_800_000, "mean": 20.5, "min": 19.0, "max": 22.0},
                {"start": 3_600_000, "end": 7_200_000, "mean": 20.0, "min": null, "max": 21.0},
            ],
            "sensor.e": [{"start": 0, "end": 3_600_000, "state": 100.5, "sum": 2.5, "mean": null}],
        }),
        &ids,
        &metadata,
    )
    .unwrap();
    assert_eq!(stats.iter().map(|s| s.statistic_id.as_str()).collect::<Vec<_>>(), ["sensor.e", "sensor.t"]);
    assert_eq!((stats[0].kind, stats[0].rows[0].sum, stats[0].rows[0].mean), (StatisticKind::Total, Some(2.5), None));
    assert_eq!(stats[1].unit.as_deref(), Some("°C"));
    assert_eq!(stats[1].rows[0].start, 3_600_000, "oldest first");
    assert_eq!(stats[1].rows[0].min, None);
}

#[test]
fn logbook_entries_get_names_messages_and_causes() {
    let entries = parse_logbook(
        &json!([
            {"when": 1_773_151_625.0, "state": "on", "entity_id": "light.a",
             "context_event_type": "call_service", "context_domain": "light", "context_service": "turn_on",
             "context_user_id": "abc"},
            {"when": 1_773_151_620.25, "name": "Home Assistant", "message": "started", "domain": "homeassistant"},
            {"when": 1_773_151_630.0, "state": "21.5", "entity_id": "sensor.t",
             "context_event_type": "automation_triggered", "context_name": "Warm up", "context_entity_id": "automation.w"},
        ]),
        |id| (id == "light.a").then(|| "Lamp A".to_string()),
    )
    .unwrap();
    assert_eq!(entries[0].when, 1_773_151_620_250, "oldest first");
    assert_eq!((entries[0].name.as_str(), entries[0].message.as_str()), ("Home Assistant", "started"));
    assert_eq!((entries[1].name.as_str(), entries[1].message.as_str()), ("Lamp A", "turned on"));
    assert_eq!(entries[1].context.as_deref(), Some("service light.turn_on"));
    assert_eq!(entries[1].domain.as_deref(), Some("light"));
    assert_eq!((entries[2].name.as_str(), entries[2].message.as_str()), ("sensor.t", "changed to 21.5"));
    assert_eq!(entries[2].context.as_deref(), Some("automation Warm up"));
}

#[test]
fn system_log_entries_newest_first() {
    let logs = parse_system_log(&json!([
        {"name": "homeassistant.components.zha", "message": ["first", "latest"], "level": "ERROR",
         "source": ["components/zha/core.py", 42], "timestamp": 1_773_151_600.0, "exception": "",
         "count": 3, "first_occurred": 1_773_150_000.0},
        {"name": "custom.thing", "message": ["odd"], "level": "WARNING", "source": ["x.py", 1],
         "timestamp": 1_773_151_610.5, "exception": "Traceback …", "count": 1, "first_occurred": 1_773_151_610.5},
    ]))
    .unwrap();
    assert_eq!(logs[0].logger, "custom.thing");
    assert_eq!((logs[0].level, logs[0].exception.as_deref()), (LogLevel::Warning, Some("Traceback …")));
    assert_eq!((logs[1].message.as_str(), logs[1].source.as_str()), ("latest", "components/zha/core.py:42"));
    assert_eq!((logs[1].count, logs[1].first_occurred, logs[1].exception.as_deref()), (3, 1_773_150_000_000, None));
}

#[test]
fn config_checks_read_both_outcomes() {
    let ok = parse_check_config(&json!({"result": "valid", "errors": null, "warnings": null})).unwrap();
    assert!(ok.valid && ok.errors.is_empty() && ok.warnings.is_empty());
    let bad = parse_check_config(&json!({"result": "invalid", "errors": "Invalid config for 'light'", "warnings": ""}))
        .unwrap();
    assert_eq!((bad.valid, bad.errors.as_slice()), (false, &["Invalid config for 'light'".to_string()][..]));
    assert!(parse_check_config(&json!({"message": "hello"})).is_err());
}

#[test]
fn the_catalog_takes_areas_from_entries_or_devices() {
    let catalog = Catalog::build(&Registries {
        areas: json!([
            {"area_id": "kitchen", "name": "Kitchen", "aliases": ["cookery", "galley"], "floor_id": "ground"},
            {"area_id": "attic", "name": "Attic", "aliases": [], "floor_id": "gone"},
        ]),
        floors: json!([{"floor_id": "ground", "name": "Ground Floor", "level": 0}]),
        labels: json!([{"label_id": "night", "name": "Night"}]),
        devices: json!([
            {"id": "d1", "name": "Hue Bulb", "name_by_user": "Counter bulb", "manufacturer": "Signify", "model": "A19", "area_id": "kitchen"},
            {"id": "d2", "name": "Plug", "area_id": null},
        ]),
        entities: json!([
            {"entity_id": "light.counter", "device_id": "d1", "area_id": null, "labels": ["night"], "name": null, "original_name": "Counter"},
            {"entity_id": "light.attic", "device_id": "d1", "area_id": "attic", "labels": []},
            {"entity_id": "switch.plug", "device_id": "d2", "area_id": null},
        ]),
        extended: json!({"light.counter": {"aliases": ["worktop light"]}}),
    })
    .unwrap();
    assert_eq!(catalog.area_of("light.counter").as_deref(), Some("kitchen"), "from its device");
    assert_eq!(catalog.area_of("light.attic").as_deref(), Some("attic"), "its own wins");
    assert_eq!(catalog.area_of("switch.plug"), None);
    assert_eq!(catalog.area_of("sensor.unregistered"), None);
    let attic = catalog.areas.iter().find(|a| a.area_id == "attic").unwrap();
    assert_eq!(attic.floor.as_deref(), Some("gone"), "an unknown floor keeps its id");
    assert_eq!(catalog.areas[1].floor.as_deref(), Some("Ground Floor"));
    assert_eq!(catalog.devices[0].name, "Counter bulb", "the user's name first");

    let raw = RawState {
        entity_id: "light.counter".into(),
        state: "unavailable".into(),
        attributes: json!({}),
        last_changed: 1,
        last_updated: 2,
    };
    let entity = catalog.entity(&raw);
    assert_eq!((entity.name.as_str(), entity.aliases.as_slice()), ("Counter", &["worktop light".to_string()][..]));
    assert_eq!((entity.domain.as_str(), entity.device_id.as_deref(), entity.available), ("light", Some("d1"), false));
    let unregistered = catalog.entity(&RawState { entity_id: "sensor.outside_air".into(), ..raw });
    assert_eq!(unregistered.name, "outside air");
}
