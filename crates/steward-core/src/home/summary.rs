//! The compact picture of the home a model gets in its prompt instead of
//! the catalog: how many entities, per area and per domain, and which are
//! unavailable. Its size grows with the number of areas and domains, not
//! with the number of entities; the model searches for the rest.

use std::collections::{BTreeMap, HashMap};

use super::types::{Area, Entity};

/// Unavailable entities named at most.
const UNAVAILABLE_SHOWN: usize = 10;

pub fn prompt_summary(home: &str, demo: bool, entities: &[Entity], areas: &[Area]) -> String {
    let mut domains: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_area: HashMap<&str, usize> = HashMap::new();
    for e in entities {
        *domains.entry(e.domain.as_str()).or_default() += 1;
        if let Some(a) = e.area_id.as_deref() {
            *per_area.entry(a).or_default() += 1;
        }
    }
    let areas_text: Vec<String> = areas
        .iter()
        .map(|a| format!("{} {}", a.name, per_area.get(a.area_id.as_str()).copied().unwrap_or(0)))
        .collect();
    let domains_text: Vec<String> = domains.iter().map(|(d, n)| format!("{d} {n}")).collect();
    let unavailable: Vec<&str> = entities.iter().filter(|e| !e.available).map(|e| e.entity_id.as_str()).collect();
    let mut text = format!(
        "The home ({home}{}): {} entities. Areas: {}. Domains: {}.",
        if demo { ", the built-in demo home" } else { "" },
        entities.len(),
        if areas_text.is_empty() { "none".to_string() } else { areas_text.join(", ") },
        domains_text.join(", "),
    );
    if !unavailable.is_empty() {
        let shown: Vec<&str> = unavailable.iter().take(UNAVAILABLE_SHOWN).copied().collect();
        let more = unavailable.len() - shown.len();
        text.push_str(&format!(" Unavailable: {}", shown.join(", ")));
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text.push('.');
    }
    text.push_str(" Find entities with discover_entities (query, domain, area); never guess an entity id.");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, area: Option<&str>, available: bool) -> Entity {
        Entity {
            entity_id: id.into(),
            domain: id.split('.').next().unwrap_or_default().into(),
            name: id.into(),
            aliases: vec![],
            area_id: area.map(String::from),
            device_id: None,
            state: if available { "on".into() } else { "unavailable".into() },
            attributes: serde_json::json!({}),
            last_changed: 0,
            last_updated: 0,
            available,
        }
    }

    #[test]
    fn the_summary_counts_by_area_and_domain_and_names_the_unavailable() {
        let areas = vec![
            Area { area_id: "kitchen".into(), name: "Kitchen".into(), aliases: vec![], floor: None },
            Area { area_id: "garage".into(), name: "Garage".into(), aliases: vec![], floor: None },
        ];
        let entities = vec![
            entity("light.a", Some("kitchen"), true),
            entity("light.b", Some("kitchen"), true),
            entity("switch.c", None, false),
        ];
        assert_eq!(
            prompt_summary("demo", true, &entities, &areas),
            "The home (demo, the built-in demo home): 3 entities. Areas: Kitchen 2, Garage 0. Domains: light 2, \
switch 1. Unavailable: switch.c. Find entities with discover_entities (query, domain, area); never guess an entity id."
        );
    }

    #[test]
    fn its_size_does_not_grow_with_the_entities() {
        let areas = vec![Area { area_id: "a".into(), name: "A".into(), aliases: vec![], floor: None }];
        let few: Vec<Entity> = (0..10).map(|i| entity(&format!("light.l{i}"), Some("a"), true)).collect();
        let many: Vec<Entity> = (0..10_000).map(|i| entity(&format!("light.l{i}"), Some("a"), true)).collect();
        let (small, large) = (prompt_summary("h", false, &few, &areas), prompt_summary("h", false, &many, &areas));
        assert!(large.len() <= small.len() + 12, "{small}\n{large}");
    }
}
