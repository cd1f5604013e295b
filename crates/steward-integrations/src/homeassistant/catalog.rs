//! The registries (areas, floors, labels, devices, entity entries) and how
//! they dress a bare state as an [`Entity`]: its area comes from its own
//! registry entry or else from its device, its aliases from its entry.

use std::collections::HashMap;

use serde_json::{Map, Value};
use steward_core::home::{Area, Device, Entity, HomeError, UNAVAILABLE};

use super::wire::{unexpected, RawState};

/// A label from the label registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub label_id: String,
    pub name: String,
}

/// What the entity registry holds for one entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EntryInfo {
    pub area_id: Option<String>,
    pub device_id: Option<String>,
    pub aliases: Vec<String>,
    pub labels: Vec<String>,
    /// The user's name for it, or the integration's.
    pub name: Option<String>,
}

/// The five registries, joined.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub areas: Vec<Area>,
    pub devices: Vec<Device>,
    device_areas: HashMap<String, Option<String>>,
    pub entries: HashMap<String, EntryInfo>,
    pub labels: Vec<Label>,
}

/// The raw results of the registry commands, as fetched.
pub(crate) struct Registries {
    pub areas: Value,
    pub floors: Value,
    pub labels: Value,
    pub devices: Value,
    pub entities: Value,
    /// `config/entity_registry/get_entries`: entity id → extended entry (with aliases).
    pub extended: Value,
}

fn list<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, HomeError> {
    v.as_array().ok_or_else(|| unexpected(&format!("{what} should answer with a list"), v))
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from)
}

fn strings(obj: &Map<String, Value>, key: &str) -> Vec<String> {
    let mut out: Vec<String> = match obj.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    };
    // Home Assistant keeps aliases and labels as sets: give them an order.
    out.sort();
    out
}

impl Catalog {
    pub(crate) fn build(r: &Registries) -> Result<Catalog, HomeError> {
        let floors: HashMap<String, String> = list(&r.floors, "config/floor_registry/list")?
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|f| Some((text(f, "floor_id")?, text(f, "name")?)))
            .collect();
        let mut areas: Vec<Area> = list(&r.areas, "config/area_registry/list")?
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|a| {
                let area_id = text(a, "area_id")?;
                Some(Area {
                    name: text(a, "name").unwrap_or_else(|| area_id.clone()),
                    aliases: strings(a, "aliases"),
                    floor: text(a, "floor_id").map(|f| floors.get(&f).cloned().unwrap_or(f)),
                    area_id,
                })
            })
            .collect();
        areas.sort_by(|a, b| a.name.cmp(&b.name));

        let mut labels: Vec<Label> = list(&r.labels, "config/label_registry/list")?
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|l| {
                let label_id = text(l, "label_id")?;
                Some(Label { name: text(l, "name").unwrap_or_else(|| label_id.clone()), label_id })
            })
            .collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));

        let mut devices = Vec::new();
        let mut device_areas = HashMap::new();
        for d in list(&r.devices, "config/device_registry/list")?.iter().filter_map(Value::as_object) {
            let Some(device_id) = text(d, "id") else { continue };
            let area_id = text(d, "area_id");
            device_areas.insert(device_id.clone(), area_id.clone());
            devices.push(Device {
                name: text(d, "name_by_user").or_else(|| text(d, "name")).unwrap_or_else(|| device_id.clone()),
                manufacturer: text(d, "manufacturer"),
                model: text(d, "model"),
                area_id,
                device_id,
            });
        }
        devices.sort_by(|a, b| (&a.name, &a.device_id).cmp(&(&b.name, &b.device_id)));

        let extended = r.extended.as_object();
        let mut entries = HashMap::new();
        for e in list(&r.entities, "config/entity_registry/list")?.iter().filter_map(Value::as_object) {
            let Some(entity_id) = text(e, "entity_id") else { continue };
            let aliases = extended
                .and_then(|x| x.get(&entity_id))
                .and_then(Value::as_object)
                .map(|x| strings(x, "aliases"))
                .unwrap_or_default();
            entries.insert(
                entity_id,
                EntryInfo {
                    area_id: text(e, "area_id"),
                    device_id: text(e, "device_id"),
                    aliases,
                    labels: strings(e, "labels"),
                    name: text(e, "name").or_else(|| text(e, "original_name")),
                },
            );
        }
        Ok(Catalog { areas, devices, device_areas, entries, labels })
    }

    /// The area of an entity: its own, or else its device's.
    pub(crate) fn area_of(&self, entity_id: &str) -> Option<String> {
        let entry = self.entries.get(entity_id)?;
        entry
            .area_id
            .clone()
            .or_else(|| entry.device_id.as_ref().and_then(|d| self.device_areas.get(d)).cloned().flatten())
    }

    /// A state, dressed with what the registries know of its entity.
    pub(crate) fn entity(&self, raw: &RawState) -> Entity {
        let entry = self.entries.get(&raw.entity_id);
        let (domain, object_id) = raw.entity_id.split_once('.').unwrap_or((raw.entity_id.as_str(), ""));
        let name = raw
            .attributes
            .get("friendly_name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .or_else(|| entry.and_then(|e| e.name.clone()))
            .unwrap_or_else(|| object_id.replace('_', " "));
        Entity {
            entity_id: raw.entity_id.clone(),
            domain: domain.to_string(),
            name,
            aliases: entry.map(|e| e.aliases.clone()).unwrap_or_default(),
            area_id: self.area_of(&raw.entity_id),
            device_id: entry.and_then(|e| e.device_id.clone()),
            state: raw.state.clone(),
            attributes: raw.attributes.clone(),
            last_changed: raw.last_changed,
            last_updated: raw.last_updated,
            available: raw.state != UNAVAILABLE,
        }
    }
}
