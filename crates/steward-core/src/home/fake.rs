//! A small in-memory home for the tool tests: a handful of entities, a
//! sensor history with a hole in it, and a record of the service calls made.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::broadcast;

use super::types::*;
use super::{Home, HomeError};

pub const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MIN: i64 = 60_000;

pub struct FakeHome {
    entities: Mutex<Vec<Entity>>,
    /// Saved automation configs by id.
    pub automations: Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
    /// The next save is written but "does not load" (times out).
    pub fail_next_load: std::sync::atomic::AtomicBool,
    pub calls: Mutex<Vec<ServiceCall>>,
    pub config: ConfigCheck,
    events: broadcast::Sender<StateChanged>,
}

fn entity(id: &str, name: &str, area: Option<&str>, state: &str, attributes: serde_json::Value) -> Entity {
    Entity {
        entity_id: id.into(),
        domain: id.split('.').next().unwrap_or_default().into(),
        name: name.into(),
        aliases: Vec::new(),
        area_id: area.map(String::from),
        device_id: None,
        state: state.into(),
        attributes,
        last_changed: NOW - 60 * MIN,
        last_updated: NOW - 60 * MIN,
        available: state != UNAVAILABLE,
    }
}

impl FakeHome {
    pub fn new() -> Self {
        let mut ceiling = entity(
            "light.kitchen_ceiling",
            "Kitchen Ceiling",
            Some("kitchen"),
            "off",
            json!({"friendly_name": "Kitchen Ceiling", "brightness": null, "supported_color_modes": ["color_temp", "rgb"]}),
        );
        ceiling.aliases = vec!["ceiling light".into()];
        let entities = vec![
            ceiling,
            entity("light.kitchen_counter", "Kitchen Counter", Some("kitchen"), "on", json!({"brightness": 120})),
            entity("light.hallway", "Hallway", Some("hallway"), "off", json!({})),
            entity("switch.kettle", "Kettle", Some("kitchen"), "off", json!({})),
            entity("lock.front_door", "Front Door", Some("hallway"), "locked", json!({})),
            entity(
                "sensor.kitchen_temperature",
                "Kitchen Temperature",
                Some("kitchen"),
                "21.5",
                json!({"unit_of_measurement": "°C", "device_class": "temperature", "state_class": "measurement"}),
            ),
            entity("sensor.garden_moisture", "Garden Moisture", None, UNAVAILABLE, json!({"unit_of_measurement": "%"})),
        ];
        FakeHome {
            entities: Mutex::new(entities),
            automations: Mutex::default(),
            fail_next_load: Default::default(),
            calls: Mutex::new(Vec::new()),
            config: ConfigCheck { valid: true, errors: vec![], warnings: vec![] },
            events: broadcast::channel(16).0,
        }
    }

    pub fn calls(&self) -> Vec<ServiceCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn fake_automation(id: &str, config: serde_json::Value) -> Automation {
    Automation {
        id: id.into(),
        alias: config.get("alias").and_then(|a| a.as_str()).unwrap_or(id).into(),
        description: String::new(),
        entity_id: Some(format!("automation.{id}")),
        enabled: true,
        last_triggered: None,
        config,
    }
}

fn service(domain: &str, service: &str, fields: &[&str]) -> ServiceDescription {
    ServiceDescription {
        domain: domain.into(),
        service: service.into(),
        description: String::new(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

#[async_trait]
impl Home for FakeHome {
    fn name(&self) -> &str {
        "fake home"
    }

    fn is_demo(&self) -> bool {
        false
    }

    async fn entities(&self) -> Result<Vec<Entity>, HomeError> {
        Ok(self.entities.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn entity(&self, entity_id: &str) -> Result<Entity, HomeError> {
        let entities = self.entities.lock().unwrap_or_else(|e| e.into_inner());
        entities
            .iter()
            .find(|e| e.entity_id == entity_id)
            .cloned()
            .ok_or_else(|| HomeError::not_found(format!("entity `{entity_id}`")))
    }

    async fn areas(&self) -> Result<Vec<Area>, HomeError> {
        Ok(vec![
            Area { area_id: "kitchen".into(), name: "Kitchen".into(), aliases: vec![], floor: None },
            Area { area_id: "hallway".into(), name: "Hallway".into(), aliases: vec!["hall".into()], floor: None },
        ])
    }

    async fn devices(&self) -> Result<Vec<Device>, HomeError> {
        Ok(vec![])
    }

    async fn services(&self) -> Result<Vec<ServiceDescription>, HomeError> {
        let light = ["brightness", "brightness_pct", "color_name", "rgb_color", "color_temp_kelvin", "transition"];
        Ok(vec![
            service("light", "turn_on", &light),
            service("light", "turn_off", &["transition"]),
            service("light", "toggle", &light),
            service("switch", "turn_on", &[]),
            service("switch", "turn_off", &[]),
            service("switch", "toggle", &[]),
            service("lock", "lock", &["code"]),
            service("lock", "unlock", &["code"]),
        ])
    }

    async fn call_service(&self, call: &ServiceCall) -> Result<Vec<Entity>, HomeError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call.clone());
        let mut entities = self.entities.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for id in &call.entity_ids {
            let Some(e) = entities.iter_mut().find(|e| &e.entity_id == id) else {
                return Err(HomeError::not_found(format!("entity `{id}`")));
            };
            e.state = match call.service.as_str() {
                "turn_on" => "on".into(),
                "turn_off" => "off".into(),
                "lock" => "locked".into(),
                "unlock" => "unlocked".into(),
                other => return Err(HomeError::invalid(call.full_name(), format!("fake cannot {other}"))),
            };
            if let Some(b) = call.data.get("brightness_pct") {
                e.attributes["brightness"] = json!(b.as_f64().unwrap_or(0.0) * 2.55);
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    async fn history(
        &self,
        entity_ids: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<EntityHistory>, HomeError> {
        let mut out = Vec::new();
        for id in entity_ids {
            let points: Vec<HistoryPoint> = match id.as_str() {
                // Readings every 5 minutes for 24 hours, none between 6 and 4 hours ago,
                // and the value stuck at 19.0 for the eight hours before that.
                "sensor.kitchen_temperature" => (0..288)
                    .map(|i| NOW - 24 * 60 * MIN + i * 5 * MIN)
                    .filter(|at| !(NOW - 6 * 60 * MIN < *at && *at < NOW - 4 * 60 * MIN))
                    .map(|at| {
                        let state = if (NOW - 14 * 60 * MIN..=NOW - 6 * 60 * MIN).contains(&at) {
                            "19.0".to_string()
                        } else {
                            format!("{:.1}", 20.0 + ((at / (5 * MIN)) % 7) as f64 * 0.5)
                        };
                        HistoryPoint { at, state }
                    })
                    .collect(),
                "light.kitchen_ceiling" => vec![
                    HistoryPoint { at: NOW - 24 * 60 * MIN, state: "off".into() },
                    HistoryPoint { at: NOW - 5 * 60 * MIN, state: "on".into() },
                    HistoryPoint { at: NOW - 2 * 60 * MIN, state: "off".into() },
                ],
                _ => vec![],
            };
            let points = points.into_iter().filter(|p| p.at >= start_ms && p.at <= end_ms).collect();
            out.push(EntityHistory { entity_id: id.clone(), points });
        }
        Ok(out)
    }

    async fn statistics(
        &self,
        _ids: &[String],
        _start_ms: i64,
        _end_ms: i64,
        _period: StatisticsPeriod,
    ) -> Result<Vec<EntityStatistics>, HomeError> {
        Ok(vec![])
    }

    async fn logbook(&self, _s: i64, _e: i64, _id: Option<&str>) -> Result<Vec<LogbookEntry>, HomeError> {
        Ok(vec![])
    }

    async fn logs(&self) -> Result<Vec<LogEntry>, HomeError> {
        let entry = |level, logger: &str, message: &str, at: i64| LogEntry {
            level,
            logger: logger.into(),
            source: "components/x.py:1".into(),
            message: message.into(),
            count: 2,
            first_occurred: at - 60 * MIN,
            timestamp: at,
            exception: None,
        };
        Ok(vec![
            entry(LogLevel::Warning, "homeassistant.components.zha", "device offline", NOW - 120 * MIN),
            entry(LogLevel::Error, "homeassistant.components.cast", "cannot connect", NOW - 30 * MIN),
            entry(LogLevel::Info, "homeassistant.setup", "setup done", NOW - 10 * MIN),
        ])
    }

    async fn check_config(&self) -> Result<ConfigCheck, HomeError> {
        Ok(self.config.clone())
    }

    async fn automations(&self) -> Result<Vec<Automation>, HomeError> {
        let saved = self.automations.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(saved.into_iter().map(|(id, config)| fake_automation(&id, config)).collect())
    }

    async fn automation(&self, id: &str) -> Result<Automation, HomeError> {
        let saved = self.automations.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        saved.map(|c| fake_automation(id, c)).ok_or_else(|| HomeError::not_found(format!("automation `{id}`")))
    }

    async fn upsert_automation(&self, id: &str, config: serde_json::Value) -> Result<Automation, HomeError> {
        self.automations.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), config.clone());
        if self.fail_next_load.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(HomeError::Timeout {
                what: format!("loading automation `{id}`"),
                after: std::time::Duration::from_secs(1),
            });
        }
        Ok(fake_automation(id, config))
    }

    async fn delete_automation(&self, id: &str) -> Result<(), HomeError> {
        match self.automations.lock().unwrap_or_else(|e| e.into_inner()).remove(id) {
            Some(_) => Ok(()),
            None => Err(HomeError::not_found(format!("automation `{id}`"))),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<StateChanged> {
        self.events.subscribe()
    }
}
