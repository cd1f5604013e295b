//! The entity catalog: a full sync replaces everything, state changes
//! upsert one row, and listing filters by domain, area and words.

use serde_json::json;
use steward_core::{EntityFilter, Store};
use steward_protocol::api::CatalogEntity;

use super::harness::TestDb;

backend_tests!(a_full_sync_replaces_the_catalog, upserts_and_removals_change_one_row, listing_filters_and_counts,);

fn entity(id: &str, name: &str, area: Option<(&str, &str)>, state: &str) -> CatalogEntity {
    CatalogEntity {
        entity_id: id.into(),
        domain: id.split('.').next().unwrap().into(),
        name: name.into(),
        aliases: vec![format!("{name} alias")],
        area_id: area.map(|a| a.0.into()),
        area: area.map(|a| a.1.into()),
        device_id: None,
        device: Some("Hue bridge".into()),
        state: state.into(),
        attributes: json!({"friendly_name": name, "brightness": 128}),
        last_changed: 1,
        last_updated: 2,
        available: state != "unavailable",
    }
}

fn house() -> Vec<CatalogEntity> {
    vec![
        entity("light.kitchen_ceiling", "Kitchen Ceiling", Some(("kitchen", "Kitchen")), "on"),
        entity("light.hallway", "Hallway Light", Some(("hallway", "Hallway")), "off"),
        entity("switch.garden_irrigation", "Garden Irrigation", Some(("garden", "Garden")), "unavailable"),
        entity("sensor.kitchen_temperature", "Kitchen Temperature 50%_x", Some(("kitchen", "Kitchen")), "21.5"),
        entity("lock.front_door", "Front Door Lock", None, "locked"),
    ]
}

async fn all(db: &TestDb) -> Vec<CatalogEntity> {
    db.store.list_entities(&EntityFilter::default()).await.unwrap().0
}

async fn a_full_sync_replaces_the_catalog(db: &TestDb) {
    assert!(all(db).await.is_empty());
    db.store.replace_entities(&house()).await.unwrap();
    let stored = all(db).await;
    assert_eq!(stored.len(), 5);
    let mut expected = house();
    expected.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
    assert_eq!(stored, expected, "rows round-trip whole, ordered by id");
    db.store.replace_entities(&house()[..2]).await.unwrap();
    assert_eq!(all(db).await.len(), 2, "entities gone from the home are gone from the catalog");
}

async fn upserts_and_removals_change_one_row(db: &TestDb) {
    db.store.replace_entities(&house()).await.unwrap();
    let mut on = entity("light.hallway", "Hallway Light", Some(("hallway", "Hallway")), "on");
    on.last_changed = 99;
    db.store.upsert_entity(&on).await.unwrap();
    let hallway = EntityFilter { search: Some("hallway".into()), ..EntityFilter::default() };
    let (found, total) = db.store.list_entities(&hallway).await.unwrap();
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!((found[0].state.as_str(), found[0].last_changed), ("on", 99));
    db.store.upsert_entity(&entity("fan.attic", "Attic Fan", None, "off")).await.unwrap();
    assert_eq!(all(db).await.len(), 6);
    db.store.remove_entity("fan.attic").await.unwrap();
    db.store.remove_entity("fan.never_existed").await.unwrap();
    assert_eq!(all(db).await.len(), 5);
}

async fn listing_filters_and_counts(db: &TestDb) {
    db.store.replace_entities(&house()).await.unwrap();
    let ids = |f: EntityFilter| async move {
        let store = &db.store;
        let (list, total) = store.list_entities(&f).await.unwrap();
        (list.into_iter().map(|e| e.entity_id).collect::<Vec<_>>(), total)
    };
    let by_domain = EntityFilter { domain: Some("LIGHT".into()), ..EntityFilter::default() };
    assert_eq!(ids(by_domain).await.0, vec!["light.hallway", "light.kitchen_ceiling"]);
    let by_area_name = EntityFilter { area: Some("kitchen".into()), ..EntityFilter::default() };
    assert_eq!(ids(by_area_name).await.0, vec!["light.kitchen_ceiling", "sensor.kitchen_temperature"]);
    let both = EntityFilter { area: Some("Kitchen".into()), domain: Some("sensor".into()), ..EntityFilter::default() };
    assert_eq!(ids(both).await.0, vec!["sensor.kitchen_temperature"]);
    // Every word must match somewhere: name, alias, area, device.
    let words = EntityFilter { search: Some("kitchen CEILING".into()), ..EntityFilter::default() };
    assert_eq!(ids(words).await.0, vec!["light.kitchen_ceiling"]);
    let alias = EntityFilter { search: Some("front door lock alias".into()), ..EntityFilter::default() };
    assert_eq!(ids(alias).await.0, vec!["lock.front_door"]);
    let device = EntityFilter { search: Some("hue".into()), limit: 2, ..EntityFilter::default() };
    assert_eq!(ids(device).await, (vec!["light.hallway".to_string(), "light.kitchen_ceiling".to_string()], 5));
    // LIKE's wildcards in a search are literal.
    let literal = EntityFilter { search: Some("50%_x".into()), ..EntityFilter::default() };
    assert_eq!(ids(literal).await.0, vec!["sensor.kitchen_temperature"]);
    let wildcard = EntityFilter { search: Some("%".into()), ..EntityFilter::default() };
    assert_eq!(ids(wildcard).await.0, vec!["sensor.kitchen_temperature"]);
    let none = EntityFilter { search: Some("garage".into()), ..EntityFilter::default() };
    assert_eq!(ids(none).await, (vec![], 0));
}
