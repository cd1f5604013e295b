//! The contract of the `Home` trait, checked the same way against the demo
//! home and against a real Home Assistant (see `ha_harness` for how one is
//! found): `demo::<check>` and `home_assistant::<check>`.

use std::collections::{BTreeSet, HashSet};

use serde_json::json;
use steward_core::home::{domain_of, HomeError, LogLevel, ServiceCall, StatisticKind, StatisticsPeriod};

use super::ha_harness::{changed_to, eventually, Subject};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn light(service: &str, id: &str) -> ServiceCall {
    ServiceCall::new("light", service, vec![id.to_string()])
}

/// Something unique enough for names made by one run.
fn nonce() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}_{nanos}", std::process::id())
}

async fn catalog_has_areas_devices_and_domains(s: &Subject) {
    let entities = s.home.entities().await.unwrap();
    assert!(entities.len() >= s.min_entities, "{} entities", entities.len());
    let domains: BTreeSet<&str> = entities.iter().map(|e| e.domain.as_str()).collect();
    for domain in ["light", "sensor", "switch", "climate", "cover", "lock", "binary_sensor"] {
        assert!(domains.contains(domain), "no {domain} in {domains:?}");
    }
    for e in &entities {
        assert_eq!(domain_of(&e.entity_id), Some(e.domain.as_str()), "{}", e.entity_id);
        assert!(!e.name.is_empty(), "{} has no name", e.entity_id);
        assert_eq!(e.available, e.state != "unavailable", "{}", e.entity_id);
        assert!(e.attributes.is_object(), "{}", e.entity_id);
        assert!(e.last_updated >= e.last_changed && e.last_changed > 0, "{}", e.entity_id);
    }

    let areas = s.home.areas().await.unwrap();
    let area_ids: HashSet<&str> = areas.iter().map(|a| a.area_id.as_str()).collect();
    let with_area: Vec<_> = entities.iter().filter(|e| e.area_id.is_some()).collect();
    assert!(with_area.len() >= s.min_with_area, "{} entities with an area", with_area.len());
    for e in &with_area {
        assert!(area_ids.contains(e.area_id.as_deref().unwrap()), "{} is in an unknown area", e.entity_id);
    }
    assert!(areas.iter().all(|a| !a.name.is_empty()));
    assert!(areas.iter().any(|a| !a.aliases.is_empty()), "no area has an alias: {areas:?}");
    assert!(areas.iter().any(|a| a.floor.is_some()), "no area is on a floor: {areas:?}");
    assert!(entities.iter().any(|e| !e.aliases.is_empty()), "no entity has an alias");

    let devices = s.home.devices().await.unwrap();
    let device_ids: HashSet<&str> = devices.iter().map(|d| d.device_id.as_str()).collect();
    assert!(entities.iter().any(|e| e.device_id.as_deref().is_some_and(|d| device_ids.contains(d))));
    assert!(devices.iter().any(|d| d.area_id.is_some()), "no device is in an area");

    let lamp = s.home.entity(s.lights[0]).await.unwrap();
    assert_eq!((lamp.entity_id.as_str(), lamp.domain.as_str()), (s.lights[0], "light"));
    match s.home.entity("light.no_such_light").await {
        Err(HomeError::NotFound { what }) => assert!(what.contains("light.no_such_light"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn service_calls_change_state(s: &Subject) {
    let id = s.lights[0];
    let mut events = s.home.subscribe();
    let off = s.home.call_service(&light("turn_off", id)).await.unwrap();
    assert_eq!((off.len(), off[0].state.as_str()), (1, "off"), "{off:?}");

    let on = s.home.call_service(&light("turn_on", id).with_data(json!({"brightness_pct": 40}))).await.unwrap();
    assert_eq!(on[0].entity_id, id);
    assert_eq!(on[0].state, "on", "the reply has the new state");
    assert_eq!(on[0].attribute("brightness"), Some(&json!(102)), "{}", on[0].attributes);
    assert_eq!(s.home.entity(id).await.unwrap().state, "on", "the cache has the new state");
    let change = changed_to(&mut events, id, "on").await;
    assert_eq!(change.old.map(|o| o.state).as_deref(), Some("off"));

    let off = s.home.call_service(&light("turn_off", id)).await.unwrap();
    assert_eq!(off[0].state, "off");
    changed_to(&mut events, id, "off").await;
}

async fn bad_service_calls_say_what_is_wrong(s: &Subject) {
    let id = s.lights[0];
    match s.home.call_service(&light("fly", id)).await {
        Err(HomeError::InvalidRequest { what, .. }) => assert!(what.contains("light.fly"), "{what}"),
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    match s.home.call_service(&light("turn_on", "light.no_such_light")).await {
        Err(HomeError::NotFound { what }) => assert!(what.contains("light.no_such_light"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match s.home.call_service(&light("turn_on", id).with_data(json!([1, 2]))).await {
        Err(HomeError::InvalidRequest { .. }) => {}
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

async fn services_are_described(s: &Subject) {
    let services = s.home.services().await.unwrap();
    let turn_on = services.iter().find(|d| d.domain == "light" && d.service == "turn_on").unwrap();
    assert!(turn_on.fields.iter().any(|f| f == "brightness_pct"), "{:?}", turn_on.fields);
    assert!(!turn_on.description.is_empty());
    assert!(services.iter().any(|d| d.domain == "light" && d.service == "turn_off"));
    assert!(services.iter().any(|d| d.domain == "lock" && d.service == "unlock"));
}

async fn history_records_the_change(s: &Subject) {
    let id = s.lights[1];
    let t0 = s.now() - 1_000;
    for service in ["turn_off", "turn_on", "turn_off"] {
        s.home.call_service(&light(service, id)).await.unwrap();
    }
    let start = t0 - HOUR;
    let ids = vec![id.to_string()];
    let points = eventually("the history shows on, then off", 20, || async {
        let history = s.home.history(&ids, start, s.now() + 60_000).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].entity_id, id);
        let points = history[0].points.clone();
        let on_at = points.iter().position(|p| p.at >= t0 && p.state == "on")?;
        (points.last()?.state == "off" && on_at < points.len() - 1).then_some(points)
    })
    .await;
    assert!(points[0].at >= start, "the first point is dated at the start at the earliest");
    assert!(points.windows(2).all(|w| w[0].at <= w[1].at), "oldest first: {points:?}");

    match s.home.history(&["light.no_such_light".to_string()], start, s.now()).await {
        Err(HomeError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    match s.home.history(&ids, s.now(), start).await {
        Err(HomeError::InvalidRequest { .. }) => {}
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

async fn statistics_of_measurements_and_meters(s: &Subject) {
    let end = s.now();
    let start = end - 3 * DAY;
    let ids = vec![s.measurement.to_string(), s.total.to_string(), s.lights[0].to_string()];
    let stats = s.home.statistics(&ids, start, end, StatisticsPeriod::Hour).await.unwrap();
    let got: Vec<&str> = stats.iter().map(|st| st.statistic_id.as_str()).collect();
    assert_eq!(got, [s.measurement, s.total], "a light keeps no statistics");

    let temperature = &stats[0];
    assert_eq!((temperature.kind, temperature.unit.as_deref()), (StatisticKind::Measurement, Some("°C")));
    assert!(temperature.rows.len() >= 24, "{} hourly rows", temperature.rows.len());
    for row in &temperature.rows {
        assert_eq!(row.end - row.start, HOUR);
        assert!(row.start >= start - HOUR && row.start < end, "{row:?}");
        let (mean, min, max) = (row.mean.unwrap(), row.min.unwrap(), row.max.unwrap());
        // The recorder's time-weighted mean may miss by a rounding error.
        assert!(min - 1e-9 <= mean && mean <= max + 1e-9, "{row:?}");
        assert!(row.sum.is_none());
    }
    assert!(temperature.rows.windows(2).all(|w| w[0].start < w[1].start));

    let energy = &stats[1];
    assert_eq!((energy.kind, energy.unit.as_deref()), (StatisticKind::Total, Some("kWh")));
    assert!(energy.rows.len() >= 24, "{} hourly rows", energy.rows.len());
    assert!(energy.rows.iter().all(|r| r.sum.is_some() && r.mean.is_none()));
    assert!(energy.rows.windows(2).all(|w| w[0].sum <= w[1].sum), "a meter's sum never falls");

    let days = s.home.statistics(&ids[..1], start, end, StatisticsPeriod::Day).await.unwrap();
    assert!(!days[0].rows.is_empty());
    assert!(days[0].rows.iter().all(|r| r.end - r.start == DAY));
}

async fn logbook_tells_what_happened(s: &Subject) {
    let id = s.lights[2];
    let t0 = s.now() - 1_000;
    s.home.call_service(&light("turn_off", id)).await.unwrap();
    s.home.call_service(&light("turn_on", id)).await.unwrap();
    let entry = eventually("a logbook entry for the light turning on", 20, || async {
        let entries = s.home.logbook(t0, s.now() + 60_000, Some(id)).await.unwrap();
        assert!(entries.iter().all(|e| e.entity_id.as_deref() == Some(id)), "{entries:?}");
        entries.into_iter().find(|e| e.state.as_deref() == Some("on"))
    })
    .await;
    assert!(entry.when >= t0, "{entry:?}");
    assert_eq!(entry.domain.as_deref(), Some("light"));
    assert!(!entry.message.is_empty() && !entry.name.is_empty(), "{entry:?}");

    let all = s.home.logbook(s.now() - DAY, s.now() + 60_000, None).await.unwrap();
    assert!(all.len() >= 2, "{all:?}");
    assert!(all.windows(2).all(|w| w[0].when <= w[1].when), "oldest first");
    match s.home.logbook(t0, s.now(), Some("light.no_such_light")).await {
        Err(HomeError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn system_log_has_errors_newest_first(s: &Subject) {
    let message = format!("contract check {}", nonce());
    s.log_an_error(&message).await;
    let logs = s.home.logs().await.unwrap();
    assert!(!logs.is_empty());
    assert!(logs.windows(2).all(|w| w[0].timestamp >= w[1].timestamp), "newest first");
    assert!(logs.iter().any(|e| e.level >= LogLevel::Error));
    assert!(logs.iter().all(|e| !e.logger.is_empty() && e.count >= 1 && e.first_occurred <= e.timestamp));
    if s.ha.is_some() {
        let ours = logs.iter().find(|e| e.message == message).unwrap();
        assert_eq!((ours.level, ours.logger.as_str()), (LogLevel::Error, "steward.contract"));
    }
}

async fn configuration_checks_valid(s: &Subject) {
    let check = s.home.check_config().await.unwrap();
    assert!(check.valid && check.errors.is_empty(), "{check:?}");
}

async fn automations_are_created_listed_and_deleted(s: &Subject) {
    let id = format!("steward_contract_{}", nonce());
    let alias = format!("Steward contract {id}");
    // A trigger that will not fire while the suite runs.
    let config = json!({
        "alias": alias,
        "description": "Made by the contract suite.",
        "triggers": [{"trigger": "time", "at": "03:33:33"}],
        "actions": [{"action": "light.turn_off", "target": {"entity_id": s.lights[0]}}],
        "mode": "single",
    });
    let made = s.home.upsert_automation(&id, config.clone()).await.unwrap();
    assert_eq!((made.id.as_str(), made.alias.as_str(), made.enabled), (id.as_str(), alias.as_str(), true));
    let entity_id = made.entity_id.clone().expect("a loaded automation has an entity");
    assert_eq!(s.home.entity(&entity_id).await.unwrap().state, "on");

    let listed = s.home.automations().await.unwrap();
    let found = listed.iter().find(|a| a.id == id).unwrap();
    assert_eq!(found.config["triggers"], config["triggers"]);
    assert_eq!(found.entity_id.as_deref(), Some(entity_id.as_str()));

    let renamed = format!("{alias} (renamed)");
    let mut changed = config.clone();
    changed["alias"] = json!(renamed);
    let updated = s.home.upsert_automation(&id, changed).await.unwrap();
    assert_eq!(updated.alias, renamed);
    assert_eq!(s.home.automation(&id).await.unwrap().alias, renamed);

    match s.home.upsert_automation(&id, json!({"alias": "no triggers", "actions": []})).await {
        Err(HomeError::InvalidRequest { .. }) => {}
        other => panic!("expected InvalidRequest, got {other:?}"),
    }

    s.home.delete_automation(&id).await.unwrap();
    match s.home.automation(&id).await {
        Err(HomeError::NotFound { .. }) => {}
        other => panic!("expected NotFound after deleting, got {other:?}"),
    }
    assert!(s.home.automations().await.unwrap().iter().all(|a| a.id != id));
    assert!(matches!(s.home.entity(&entity_id).await, Err(HomeError::NotFound { .. })));
    match s.home.delete_automation(&id).await {
        Err(HomeError::NotFound { .. }) => {}
        other => panic!("expected NotFound deleting twice, got {other:?}"),
    }
}

async fn automations_are_checked_before_saving(s: &Subject) {
    use steward_core::home::automation_check::check_automation;
    let good = json!({
        "alias": "Steward check",
        "triggers": [{"trigger": "time", "at": "03:33:33"}],
        "actions": [{"action": "light.turn_off", "target": {"entity_id": s.lights[0]}}],
    });
    let checked = check_automation(s.home.as_ref(), good.clone()).await.unwrap();
    assert_eq!(checked.entities, vec![s.lights[0].to_string()]);
    assert!(checked.yaml.starts_with("alias: Steward check\n"), "{}", checked.yaml);

    let mut missing = good.clone();
    missing["actions"][0]["target"]["entity_id"] = json!("light.no_such_lamp");
    let errors = check_automation(s.home.as_ref(), missing).await.unwrap_err();
    assert!(errors.iter().any(|e| e.contains("`light.no_such_lamp` does not exist")), "{errors:?}");

    // Well formed, but only the house knows 25:99 is no time of day.
    let mut bad_time = good.clone();
    bad_time["triggers"][0]["at"] = json!("25:99:00");
    let verdict = check_automation(s.home.as_ref(), bad_time).await;
    if s.home.is_demo() {
        assert!(verdict.is_ok(), "the demo home has no validator of its own");
    } else {
        let errors = verdict.unwrap_err();
        assert!(errors.iter().any(|e| e.starts_with("Home Assistant rejects the triggers")), "{errors:?}");
    }
}

/// Runs each named check against the demo home and a real Home Assistant.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod demo {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::Subject::demo()).await;
                }
            )*
        }

        mod home_assistant {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(subject) = super::Subject::home_assistant(stringify!($name)).await else { return };
                    super::$name(&subject).await;
                }
            )*
        }
    };
}

contract!(
    catalog_has_areas_devices_and_domains,
    service_calls_change_state,
    bad_service_calls_say_what_is_wrong,
    services_are_described,
    history_records_the_change,
    statistics_of_measurements_and_meters,
    logbook_tells_what_happened,
    system_log_has_errors_newest_first,
    configuration_checks_valid,
    automations_are_created_listed_and_deleted,
    automations_are_checked_before_saving,
);
