//! What only a real Home Assistant can show: registries dressing entities,
//! services that answer with data, raw commands and the log file, a refused
//! token, and the client getting over a restart of Home Assistant. Skipped
//! (or failed, with STEWARD_REQUIRE_HA=1) when none is configured; see
//! `ha_harness`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use steward_core::home::{Home, HomeError, ServiceCall};
use steward_core::{Clock, SystemClock};
use steward_integrations::homeassistant::HomeAssistant;

use super::ha_harness::{
    changed_to, eventually, ha_target, restart_home_assistant, seed, test_options, Subject, SEED_AREA, SEED_AREA_ALIAS,
    SEED_DEVICE_AREA_ENTITY, SEED_ENTITY_ALIAS, SEED_FLOOR, SEED_LABEL, SEED_OWN_AREA_ENTITY,
};

async fn subject(test: &str) -> Option<(Subject, Arc<HomeAssistant>)> {
    let s = Subject::home_assistant(test).await?;
    let ha = s.ha.clone()?;
    Some((s, ha))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_dress_the_entities() {
    let Some((_s, ha)) = subject("registries_dress_the_entities").await else { return };
    let areas = ha.areas().await.unwrap();
    let lounge = areas.iter().find(|a| a.name == SEED_AREA).unwrap();
    assert_eq!(lounge.aliases, [SEED_AREA_ALIAS]);
    assert_eq!(lounge.floor.as_deref(), Some(SEED_FLOOR), "the floor's name, not its id");

    let own = ha.entity(SEED_OWN_AREA_ENTITY).await.unwrap();
    assert_eq!(own.area_id.as_deref(), Some("bedroom"), "its own area");
    assert_eq!(own.aliases, [SEED_ENTITY_ALIAS]);
    let by_device = ha.entity(SEED_DEVICE_AREA_ENTITY).await.unwrap();
    assert_eq!(by_device.area_id.as_deref(), Some(lounge.area_id.as_str()), "its device's area");
    let device = ha.devices().await.unwrap().into_iter().find(|d| Some(&d.device_id) == by_device.device_id.as_ref());
    assert_eq!(device.unwrap().area_id.as_deref(), Some(lounge.area_id.as_str()));

    let labels = ha.labels().await.unwrap();
    let label = labels.iter().find(|l| l.name == SEED_LABEL).unwrap();
    assert!(ha.entity_labels(SEED_OWN_AREA_ENTITY).await.unwrap().contains(&label.label_id));

    // A change to the registry reaches the entities without reconnecting.
    let alias = format!("pump {}", std::process::id());
    let target = "switch.ac";
    ha.command(json!({"type": "config/entity_registry/update", "entity_id": target, "aliases": [alias]}))
        .await
        .unwrap();
    eventually("the new alias", 10, || async {
        ha.entity(target).await.unwrap().aliases.contains(&alias).then_some(())
    })
    .await;
    ha.command(json!({"type": "config/entity_registry/update", "entity_id": target, "aliases": []})).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_that_answer_are_asked_to() {
    let Some((_s, ha)) = subject("services_that_answer_are_asked_to").await else { return };
    let weather = "weather.demo_weather_south";
    let call = ServiceCall::new("weather", "get_forecasts", vec![weather.into()]).with_data(json!({"type": "daily"}));
    let reply = ha.call_service_with_response(&call).await.unwrap();
    let forecast = reply.response.as_ref().and_then(|r| r[weather]["forecast"].as_array()).unwrap();
    assert!(!forecast.is_empty(), "{:?}", reply.response);
    assert_eq!(reply.states[0].entity_id, weather);

    // Through the trait the data is not asked for by the caller, but the
    // call still works for a service that only answers.
    let states = ha.call_service(&call).await.unwrap();
    assert_eq!(states.len(), 1);
    let plain = ha
        .call_service_with_response(&ServiceCall::new("switch", "turn_on", vec!["switch.decorative_lights".into()]))
        .await
        .unwrap();
    assert_eq!((plain.response, plain.states[0].state.as_str()), (None, "on"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_commands_and_the_log_file() {
    let Some((_s, ha)) = subject("raw_commands_and_the_log_file").await else { return };
    let config = ha.command(json!({"type": "get_config"})).await.unwrap();
    assert!(config["version"].as_str().is_some_and(|v| v.starts_with("20")), "{config}");
    assert!(matches!(ha.command(json!({"no": "type"})).await, Err(HomeError::InvalidRequest { .. })));
    match ha.command(json!({"type": "steward/no_such_command"})).await {
        Err(HomeError::UnexpectedReply(what)) => assert!(what.contains("steward/no_such_command"), "{what}"),
        other => panic!("expected UnexpectedReply, got {other:?}"),
    }
    let log = ha.error_log(4096).await.unwrap();
    assert!(!log.is_empty() && log.len() <= 4096, "{} bytes", log.len());
    ha.reload_automations().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_by_home_assistant() {
    let Some(target) = ha_target("a_wrong_token_is_refused_by_home_assistant", false) else { return };
    let url = target.url.clone();
    let wrong = "eyJhbGciOiJIUzI1NiJ9.not-a-real-token.x";
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match HomeAssistant::connect_with(&url, wrong, clock, test_options()).await {
        Err(e @ HomeError::Unauthorized(_)) => {
            let text = e.to_string();
            assert!(text.contains("HA_TOKEN") && !text.contains(wrong), "{text}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

/// Restarts Home Assistant under the client: the demo lights come back as
/// they start (so the house changes while the client is away), and a light
/// is changed by someone else as soon as Home Assistant is back. The client
/// reconnects by itself, its cache and its subscribers catch up, and it
/// works as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_restart_and_catches_up() {
    let Some(target) = ha_target("reconnects_after_a_restart_and_catches_up", true) else { return };
    let (url, token) = (target.url.clone(), target.token.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ha = Arc::new(HomeAssistant::connect_with(&url, &token, clock, test_options()).await.unwrap());
    // The demo's bed light starts off; leave it on.
    let bed = "light.bed_light";
    let on = ha.call_service(&ServiceCall::new("light", "turn_on", vec![bed.into()])).await.unwrap();
    assert_eq!(on[0].state, "on");
    let mut events = ha.subscribe();

    let dropped = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (ha, dropped) = (ha.clone(), dropped.clone());
        tokio::spawn(async move {
            loop {
                if !ha.is_connected() {
                    dropped.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    restart_home_assistant().await;

    // Someone else dims the kitchen, right as Home Assistant is back.
    let kitchen = "light.kitchen_lights";
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/api/services/light/turn_on", url.trim_end_matches('/')))
        .bearer_auth(&token)
        .json(&json!({"entity_id": kitchen, "brightness": 13}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    // (Home Assistant may remove its states as it stops, so what came
    // before is "on" or nothing.)
    let change = changed_to(&mut events, bed, "off").await;
    assert_ne!(change.old.map(|o| o.state).as_deref(), Some("off"));
    assert_eq!(ha.entity(bed).await.unwrap().state, "off", "the cache caught up with the restart");
    eventually("the kitchen change made by someone else", 20, || async {
        let kitchen_now = ha.entity(kitchen).await.unwrap();
        (kitchen_now.attribute("brightness") == Some(&json!(13))).then_some(())
    })
    .await;
    assert!(dropped.load(Ordering::SeqCst), "the client saw the connection go");
    watcher.abort();
    assert!(ha.is_connected());

    // Subscribed again: a change made through the client is heard.
    ha.call_service(&ServiceCall::new("light", "turn_on", vec![bed.into()])).await.unwrap();
    changed_to(&mut events, bed, "on").await;
    assert_eq!(ha.entity(bed).await.unwrap().state, "on");
    ha.call_service(&ServiceCall::new("light", "turn_off", vec![bed.into()])).await.unwrap();
    // The registries survived the restart too.
    seed(&ha).await;
    assert_eq!(ha.entity(bed).await.unwrap().aliases.len(), 1);
}
