//! The entity catalog over HTTP, synced from the demo home and kept live.

use std::sync::Arc;
use std::time::Duration;

use steward_core::home::catalog::spawn_catalog_sync;
use steward_core::home::{Home, ServiceCall};
use steward_core::{Clock, Store, SystemClock};
use steward_integrations::DemoHome;

use super::harness;

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn the_catalog_is_synced_listed_filtered_and_kept_live() {
    let h = harness().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let home: Arc<dyn Home> = Arc::new(DemoHome::new(clock));
    let store: Arc<dyn Store> = h.store.clone();
    let sync = spawn_catalog_sync(home.clone(), store, Duration::from_millis(50));
    let expected = home.entities().await.unwrap().len();
    wait_for("the first sync", async || h.get("/api/entities?limit=1").await.json()["total"] == expected).await;

    let all = h.get("/api/entities?limit=5000").await.json();
    assert!(expected >= 40);
    assert_eq!(all["entities"].as_array().unwrap().len(), expected);
    let kitchen_lights = h.get("/api/entities?domain=light&area=kitchen").await.json();
    let ids: Vec<&str> =
        kitchen_lights["entities"].as_array().unwrap().iter().map(|e| e["entity_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"light.kitchen_ceiling"), "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("light.")));
    let first = &kitchen_lights["entities"][0];
    assert_eq!(first["area"], "Kitchen", "{first}");
    let search = h.get("/api/entities?q=front%20door").await.json();
    assert!(search["entities"].as_array().unwrap().iter().any(|e| e["entity_id"] == "lock.front_door"), "{search}");
    let unavailable = h.get("/api/entities?q=irrigation").await.json();
    assert_eq!(unavailable["entities"][0]["available"], false);
    assert_eq!(h.get("/api/entities?limit=0").await.status, 400);

    // A state change reaches the catalog without another full sync.
    let before = h.get("/api/entities?q=light.hallway").await.json()["entities"][0]["state"].clone();
    let action = if before == "on" { "turn_off" } else { "turn_on" };
    home.call_service(&ServiceCall {
        domain: "light".into(),
        service: action.into(),
        entity_ids: vec!["light.hallway".into()],
        data: serde_json::json!({}),
    })
    .await
    .unwrap();
    let after = if action == "turn_on" { "on" } else { "off" };
    wait_for("the state change", async || {
        h.get("/api/entities?q=light.hallway").await.json()["entities"][0]["state"] == after
    })
    .await;

    // Questions answered from the catalog.
    let r =
        h.post_json("/api/entities/query", serde_json::json!({"query": "which lights are on in the kitchen?"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    assert_eq!(a["method"], "intent", "{a}");
    assert!(a["entities"].as_array().unwrap().iter().all(|e| e["entity_id"].as_str().unwrap().starts_with("light.")));
    let r = h.post_json("/api/entities/query", serde_json::json!({"query": "is the front door locked?"})).await;
    let a = r.json();
    assert!(a["answer"].as_str().unwrap().to_lowercase().contains("front door"), "{a}");
    // What the intent engine cannot read is searched for.
    let r = h.post_json("/api/entities/query", serde_json::json!({"query": "irrigation"})).await;
    let a = r.json();
    assert_eq!(a["method"], "search");
    assert_eq!(a["entities"][0]["entity_id"], "switch.garden_irrigation", "{a}");
    let r = h.post_json("/api/entities/query", serde_json::json!({"query": "zeppelins"})).await;
    assert!(r.json()["answer"].as_str().unwrap().starts_with("No entity matches"));
    // A command is not a question; an empty or malformed query is refused.
    let r = h.post_json("/api/entities/query", serde_json::json!({"query": "turn off the hallway light"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(h.post_json("/api/entities/query", serde_json::json!({"query": " "})).await.status, 400);
    assert_eq!(h.post_json("/api/entities/query", serde_json::json!({"q": "x"})).await.status, 400);
    sync.abort();
}
