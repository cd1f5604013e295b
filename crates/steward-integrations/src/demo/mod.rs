//! The demo home: a simulated house, so that Steward can be tried on a
//! fresh machine with no Home Assistant at all.
//!
//! It has eight areas and some sixty entities over thirteen domains, a week
//! of history at five-minute resolution with the daily life of its people
//! in it (see `sim`), long-term statistics compiled from that history,
//! a logbook, a system log, automations, and service calls that change
//! states the way Home Assistant does. Everything is deterministic for a
//! given seed and clock.
//!
//! A few problems are planted for the diagnosis features to find (see
//! [`Scenario`]): the car charger lost its connection for seven hours a day
//! and a half ago (no data from its sensors, errors in the log), the garden
//! irrigation valve's battery died five hours ago (it is `unavailable` now), and
//! the garage humidity sensor has repeated one value for twenty hours.

mod automations;
mod catalog;
mod history;
mod logs;
mod services;
mod sim;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_core::home::{
    Area, Automation, ConfigCheck, Device, Entity, EntityHistory, EntityStatistics, HistoryPoint, Home, HomeError,
    LogEntry, LogbookEntry, ServiceCall, ServiceDescription, StateChanged, StatisticKind, StatisticsPeriod,
};
use steward_core::tools::rfc3339;
use steward_core::Clock;
use tokio::sync::broadcast;

use catalog::Spec;
use sim::{align, DAY_MS, HOUR_MS};

/// The seed of the house everyone sees.
pub const DEFAULT_SEED: u64 = 0x5EED_F00D_CAFE;

/// The energy meter whose data has a hole: the car charger's connection was
/// down for several hours about a day and a half ago.
pub const OUTAGE_ENTITY: &str = "sensor.car_charger_energy";
/// The entity that is `unavailable` now: the garden irrigation valve's
/// battery died.
pub const UNAVAILABLE_ENTITY: &str = "switch.garden_irrigation";
/// The sensor that repeats one value (it is stuck).
pub const STUCK_ENTITY: &str = "sensor.garage_humidity";
/// The sensors that go quiet during the charger's outage.
pub const CHARGER_SENSORS: &[&str] = &["sensor.car_charger_power", "sensor.car_charger_energy"];

/// When the planted problems happened (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// The car charger's sensors recorded nothing in `[start, end)`.
    pub charger_outage: (i64, i64),
    /// [`UNAVAILABLE_ENTITY`] went unavailable at this time and still is.
    pub valve_lost_at: i64,
    /// [`STUCK_ENTITY`] has repeated one value since this time.
    pub humidity_stuck_since: i64,
}

impl Scenario {
    fn around(now: i64) -> Self {
        let outage_start = align(now - 37 * HOUR_MS);
        Scenario {
            charger_outage: (outage_start, outage_start + 7 * HOUR_MS),
            valve_lost_at: align(now - 5 * HOUR_MS),
            humidity_stuck_since: align(now - 20 * HOUR_MS),
        }
    }
}

/// Everything the house holds; behind one lock, never held across an await.
pub(crate) struct World {
    seed: u64,
    specs: Vec<Spec>,
    areas: Vec<Area>,
    devices: Vec<Device>,
    entities: BTreeMap<String, Entity>,
    history: BTreeMap<String, Vec<HistoryPoint>>,
    logbook: Vec<LogbookEntry>,
    logs: Vec<LogEntry>,
    automations: BTreeMap<String, Automation>,
    /// How each light looked when it was last on, to come back the same.
    light_memory: HashMap<String, Value>,
    /// Running totals of the energy meters.
    meters: HashMap<&'static str, f64>,
    /// The value a stuck sensor repeats.
    frozen: HashMap<&'static str, f64>,
    /// The last simulated tick.
    sim_until: i64,
    scenario: Scenario,
}

/// The simulated house. See the module documentation.
pub struct DemoHome {
    clock: Arc<dyn Clock>,
    latency: Duration,
    world: Mutex<World>,
    events: broadcast::Sender<StateChanged>,
}

impl std::fmt::Debug for DemoHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoHome").field("latency", &self.latency).finish_non_exhaustive()
    }
}

impl DemoHome {
    /// The demo house with its week of history ending at `clock`'s now.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_seed(clock, DEFAULT_SEED)
    }

    /// A house whose random life follows `seed`.
    pub fn with_seed(clock: Arc<dyn Clock>, seed: u64) -> Self {
        let now = clock.now_ms();
        let world = World::build(seed, now);
        DemoHome { clock, latency: Duration::ZERO, world: Mutex::new(world), events: broadcast::channel(1024).0 }
    }

    /// Makes every service call take `latency` first, like a slow house.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// When the planted problems happened.
    pub fn scenario(&self) -> Scenario {
        self.world().scenario
    }

    /// The world, brought up to the present; what changed on the way is
    /// announced to subscribers.
    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock cannot leave the world half
        // changed (changes are planned, then committed), so a poisoned lock
        // is still usable.
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        for change in world.advance(self.clock.now_ms()) {
            self.announce(change);
        }
        world
    }

    fn announce(&self, change: StateChanged) {
        // Nobody listening is fine.
        let _ = self.events.send(change);
    }
}

impl World {
    fn build(seed: u64, now: i64) -> World {
        let specs = catalog::entities();
        let end = align(now);
        let start = end - 7 * DAY_MS;
        let mut world = World {
            seed,
            areas: catalog::areas(),
            devices: catalog::devices(&specs),
            entities: BTreeMap::new(),
            history: BTreeMap::new(),
            logbook: Vec::new(),
            logs: Vec::new(),
            automations: BTreeMap::new(),
            light_memory: HashMap::new(),
            meters: HashMap::new(),
            frozen: HashMap::new(),
            sim_until: end,
            scenario: Scenario::around(now),
            specs,
        };
        for spec in &world.specs {
            let entity = Entity {
                entity_id: spec.id.to_string(),
                domain: spec.domain().to_string(),
                name: spec.name.to_string(),
                aliases: spec.aliases.iter().map(|a| a.to_string()).collect(),
                area_id: spec.area.map(String::from),
                device_id: catalog::device_for(spec),
                state: spec.initial.to_string(),
                attributes: spec.attributes_for(spec.initial),
                last_changed: start,
                last_updated: start,
                available: true,
            };
            if matches!(spec.model, sim::Model::Steady) {
                world
                    .history
                    .insert(spec.id.to_string(), vec![HistoryPoint { at: start, state: entity.state.clone() }]);
            }
            world.entities.insert(spec.id.to_string(), entity);
        }
        for (id, config, ago) in automations::seeds() {
            // The seeds are well formed; a failure here would be a bug in them.
            if let Err(e) = world.upsert_automation(id, config, start) {
                tracing::error!(error = %e, "demo automation seed rejected");
            }
            if let Some(a) = world.automations.get_mut(id) {
                a.last_triggered = Some(now - ago);
            }
            if let Some(entity) = world.automations.get(id).and_then(|a| a.entity_id.clone()) {
                if let Some(e) = world.entities.get_mut(&entity) {
                    e.attributes["last_triggered"] = json!(rfc3339(now - ago));
                }
            }
        }
        let mut t = start;
        while t <= end {
            world.tick(t, true);
            t += sim::TICK_MS;
        }
        world.settle_climate();
        world.logs = logs::seed(&world.scenario, start, now);
        world.logbook.push(LogbookEntry {
            when: start,
            name: "Home Assistant".into(),
            message: "started".into(),
            entity_id: None,
            domain: Some("homeassistant".into()),
            state: None,
            context: None,
        });
        world.logbook.sort_by_key(|e| e.when);
        world
    }

    /// Thermostats read their room's temperature sensor.
    fn settle_climate(&mut self) {
        for (climate, sensor) in [
            ("climate.living_room", "sensor.living_room_temperature"),
            ("climate.bedroom", "sensor.bedroom_temperature"),
        ] {
            let current = self.entities.get(sensor).and_then(Entity::numeric_state);
            if let Some(entity) = self.entities.get_mut(climate) {
                entity.attributes["current_temperature"] = json!(current);
                let target = entity.attributes.get("temperature").and_then(Value::as_f64);
                let heating = entity.state == "heat" && matches!((current, target), (Some(c), Some(t)) if c < t - 0.2);
                entity.attributes["hvac_action"] = json!(if heating { "heating" } else { "idle" });
            }
        }
    }

    fn entity(&self, entity_id: &str) -> Result<&Entity, HomeError> {
        self.entities.get(entity_id).ok_or_else(|| HomeError::not_found(format!("entity `{entity_id}`")))
    }

    /// Checks a whole call, then carries it out: the targets' new states,
    /// and the changes to announce.
    fn call_service(&mut self, call: &ServiceCall, now: i64) -> Result<(Vec<Entity>, Vec<StateChanged>), HomeError> {
        let name = call.full_name();
        let domain = call.domain.as_str();
        if !services::DOMAINS.contains(&domain) {
            let why = if self.entities.values().any(|e| e.domain == domain) {
                services::unknown_service(domain, &call.service)
            } else {
                format!("this house has no domain `{domain}`; domains with services: {}", services::DOMAINS.join(", "))
            };
            return Err(HomeError::invalid(name, why));
        }
        if !services::services(domain).iter().any(|d| d.service == call.service) {
            return Err(HomeError::invalid(name, services::unknown_service(domain, &call.service)));
        }
        if call.entity_ids.is_empty() {
            return Err(HomeError::invalid(name, "name at least one target entity"));
        }
        let empty = Map::new();
        let data = match &call.data {
            Value::Null => &empty,
            Value::Object(map) => map,
            other => return Err(HomeError::invalid(name, format!("service data must be a JSON object, not {other}"))),
        };
        let mut planned = Vec::with_capacity(call.entity_ids.len());
        for id in &call.entity_ids {
            let entity = self.entity(id)?;
            let what = format!("{name} on {id}");
            if entity.domain != domain {
                let why = format!("{id} is a {} entity; call a {} service on it", entity.domain, entity.domain);
                return Err(HomeError::invalid(what, why));
            }
            if !entity.available {
                let why = format!(
                    "{} is unavailable: its device cannot be reached, so it cannot be controlled. Check the \
device's power, battery and connection, then try again",
                    entity.name
                );
                return Err(HomeError::invalid(what, why));
            }
            // A light comes back as it last was, or else as it usually looks.
            let usual = (domain == "light")
                .then(|| self.specs.iter().find(|s| s.id == id.as_str()).map(|s| s.attributes_for("on")))
                .flatten();
            let memory = self.light_memory.get(id.as_str()).or(usual.as_ref());
            let change = services::apply(entity, &services::Call { service: &call.service, data, memory, now })
                .map_err(|why| HomeError::invalid(what, why))?;
            planned.push((id.clone(), change));
        }
        let mut targets = Vec::with_capacity(planned.len());
        let mut changes = Vec::new();
        for (id, change) in planned {
            let Some(entity) = self.entities.get_mut(&id) else { continue };
            let old = entity.clone();
            let state_changed = old.state != change.state;
            if state_changed || old.attributes != change.attributes {
                if domain == "light" && old.state == "on" && change.state == "off" {
                    self.light_memory.insert(id.clone(), old.attributes.clone());
                }
                entity.state = change.state.clone();
                entity.attributes = change.attributes;
                entity.last_updated = now;
                self.history.entry(id.clone()).or_default().push(HistoryPoint { at: now, state: change.state.clone() });
                if state_changed {
                    entity.last_changed = now;
                    self.logbook.push(LogbookEntry {
                        when: now,
                        name: entity.name.clone(),
                        message: services::logbook_message(domain, entity.device_class(), &change.state),
                        entity_id: Some(id.clone()),
                        domain: Some(domain.to_string()),
                        state: Some(change.state.clone()),
                        context: Some(format!("{name} called by Steward")),
                    });
                }
                changes.push(StateChanged { entity_id: id.clone(), old: Some(old), new: Some(entity.clone()) });
            }
            if domain == "automation" {
                let entity_state = entity.state.clone();
                let name_of = entity.name.clone();
                if let Some(a) = self.automations.values_mut().find(|a| a.entity_id.as_deref() == Some(id.as_str())) {
                    a.enabled = entity_state == "on";
                    if call.service == "trigger" {
                        a.last_triggered = Some(now);
                        self.logbook.push(LogbookEntry {
                            when: now,
                            name: name_of,
                            message: "triggered by a service call".into(),
                            entity_id: Some(id.clone()),
                            domain: Some("automation".into()),
                            state: None,
                            context: Some(format!("{name} called by Steward")),
                        });
                    }
                }
            }
            if let Some(entity) = self.entities.get(&id) {
                targets.push(entity.clone());
            }
        }
        Ok((targets, changes))
    }

    /// See [`DemoHome::restore_states`]; entities the house no longer has
    /// are skipped.
    fn restore_states(&mut self, saved: &[Entity], now: i64) -> Vec<StateChanged> {
        let mut changes = Vec::new();
        for want in saved {
            let Some(entity) = self.entities.get_mut(&want.entity_id) else { continue };
            if entity.state == want.state && entity.attributes == want.attributes && entity.available == want.available
            {
                continue;
            }
            let old = entity.clone();
            if entity.state != want.state {
                entity.last_changed = now;
                self.logbook.push(LogbookEntry {
                    when: now,
                    name: entity.name.clone(),
                    message: format!("restored to {} from a snapshot", want.state),
                    entity_id: Some(want.entity_id.clone()),
                    domain: Some(entity.domain.clone()),
                    state: Some(want.state.clone()),
                    context: Some("snapshot loaded by Steward".into()),
                });
            }
            entity.state = want.state.clone();
            entity.attributes = want.attributes.clone();
            entity.available = want.available;
            entity.last_updated = now;
            self.history
                .entry(want.entity_id.clone())
                .or_default()
                .push(HistoryPoint { at: now, state: want.state.clone() });
            if entity.domain == "automation" {
                let enabled = entity.state == "on";
                if let Some(a) = self.automations.values_mut().find(|a| a.entity_id.as_deref() == Some(&want.entity_id))
                {
                    a.enabled = enabled;
                }
            }
            changes.push(StateChanged { entity_id: want.entity_id.clone(), old: Some(old), new: Some(entity.clone()) });
        }
        changes
    }

    fn upsert_automation(
        &mut self,
        id: &str,
        config: Value,
        now: i64,
    ) -> Result<(Automation, StateChanged), HomeError> {
        automations::check_shape(id, &config)?;
        let mut config = config;
        config["id"] = json!(id);
        let alias = config.get("alias").and_then(Value::as_str).unwrap_or(id).to_string();
        let description = config.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
        let existing = self.automations.get(id);
        let entity_id = match existing.and_then(|a| a.entity_id.clone()) {
            Some(entity_id) => entity_id,
            None => automations::entity_id_for(&alias, |e| self.entities.contains_key(e)),
        };
        let automation = Automation {
            id: id.to_string(),
            alias: alias.clone(),
            description,
            entity_id: Some(entity_id.clone()),
            enabled: existing.is_none_or(|a| a.enabled),
            last_triggered: existing.and_then(|a| a.last_triggered),
            config: config.clone(),
        };
        let state = if automation.enabled { "on" } else { "off" };
        let attributes = json!({
            "id": id,
            "friendly_name": alias,
            "mode": config.get("mode").cloned().unwrap_or(json!("single")),
            "current": 0,
            "last_triggered": automation.last_triggered.map(rfc3339),
        });
        let old = self.entities.get(&entity_id).cloned();
        let entity = Entity {
            entity_id: entity_id.clone(),
            domain: "automation".into(),
            name: alias,
            aliases: Vec::new(),
            area_id: None,
            device_id: None,
            state: state.to_string(),
            attributes,
            last_changed: old.as_ref().map(|o| o.last_changed).unwrap_or(now),
            last_updated: now,
            available: true,
        };
        if old.is_none() {
            self.history.entry(entity_id.clone()).or_default().push(HistoryPoint { at: now, state: state.into() });
        }
        self.entities.insert(entity_id.clone(), entity.clone());
        self.automations.insert(id.to_string(), automation.clone());
        Ok((automation, StateChanged { entity_id, old, new: Some(entity) }))
    }
}

#[async_trait]
impl Home for DemoHome {
    fn name(&self) -> &str {
        "demo home"
    }

    fn is_demo(&self) -> bool {
        true
    }

    async fn entities(&self) -> Result<Vec<Entity>, HomeError> {
        Ok(self.world().entities.values().cloned().collect())
    }

    async fn entity(&self, entity_id: &str) -> Result<Entity, HomeError> {
        self.world().entity(entity_id).cloned()
    }

    async fn areas(&self) -> Result<Vec<Area>, HomeError> {
        Ok(self.world().areas.clone())
    }

    async fn devices(&self) -> Result<Vec<Device>, HomeError> {
        Ok(self.world().devices.clone())
    }

    async fn services(&self) -> Result<Vec<ServiceDescription>, HomeError> {
        Ok(services::DOMAINS
            .iter()
            .flat_map(|domain| {
                services::services(domain).iter().map(|d| ServiceDescription {
                    domain: domain.to_string(),
                    service: d.service.to_string(),
                    description: d.description.to_string(),
                    fields: d.fields.iter().map(|f| f.to_string()).collect(),
                })
            })
            .collect())
    }

    async fn call_service(&self, call: &ServiceCall) -> Result<Vec<Entity>, HomeError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let now = self.clock.now_ms();
        let (targets, changes) = self.world().call_service(call, now)?;
        for change in changes {
            self.announce(change);
        }
        Ok(targets)
    }

    async fn history(
        &self,
        entity_ids: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<EntityHistory>, HomeError> {
        if start_ms > end_ms {
            return Err(HomeError::invalid("a history query", "the start must not be after the end"));
        }
        let world = self.world();
        entity_ids
            .iter()
            .map(|id| {
                world.entity(id)?;
                Ok(EntityHistory { entity_id: id.clone(), points: world.history_between(id, start_ms, end_ms) })
            })
            .collect()
    }

    async fn statistics(
        &self,
        statistic_ids: &[String],
        start_ms: i64,
        end_ms: i64,
        period: StatisticsPeriod,
    ) -> Result<Vec<EntityStatistics>, HomeError> {
        if start_ms > end_ms {
            return Err(HomeError::invalid("a statistics query", "the start must not be after the end"));
        }
        let world = self.world();
        let mut out = Vec::new();
        for id in statistic_ids {
            let entity = world.entity(id)?;
            let kind = match entity.state_class() {
                Some("measurement") => StatisticKind::Measurement,
                Some("total" | "total_increasing") => StatisticKind::Total,
                _ => continue,
            };
            let points = world.history.get(id.as_str()).map(Vec::as_slice).unwrap_or_default();
            out.push(EntityStatistics {
                statistic_id: id.clone(),
                kind,
                unit: entity.unit().map(String::from),
                rows: history::statistics_rows(points, kind, start_ms, end_ms, period.millis()),
            });
        }
        Ok(out)
    }

    async fn logbook(
        &self,
        start_ms: i64,
        end_ms: i64,
        entity_id: Option<&str>,
    ) -> Result<Vec<LogbookEntry>, HomeError> {
        let world = self.world();
        if let Some(id) = entity_id {
            world.entity(id)?;
        }
        Ok(world
            .logbook
            .iter()
            .filter(|e| e.when >= start_ms && e.when <= end_ms)
            .filter(|e| entity_id.is_none() || e.entity_id.as_deref() == entity_id)
            .cloned()
            .collect())
    }

    async fn logs(&self) -> Result<Vec<LogEntry>, HomeError> {
        Ok(self.world().logs.clone())
    }

    async fn check_config(&self) -> Result<ConfigCheck, HomeError> {
        let world = self.world();
        Ok(automations::check_all(&world.automations, &world.entities))
    }

    async fn automations(&self) -> Result<Vec<Automation>, HomeError> {
        Ok(self.world().automations.values().cloned().collect())
    }

    async fn automation(&self, id: &str) -> Result<Automation, HomeError> {
        self.world().automations.get(id).cloned().ok_or_else(|| HomeError::not_found(format!("automation `{id}`")))
    }

    async fn upsert_automation(&self, id: &str, config: Value) -> Result<Automation, HomeError> {
        let now = self.clock.now_ms();
        let (automation, change) = self.world().upsert_automation(id, config, now)?;
        self.announce(change);
        Ok(automation)
    }

    async fn delete_automation(&self, id: &str) -> Result<(), HomeError> {
        let change = {
            let mut world = self.world();
            let automation =
                world.automations.remove(id).ok_or_else(|| HomeError::not_found(format!("automation `{id}`")))?;
            automation.entity_id.and_then(|entity_id| {
                world.entities.remove(&entity_id).map(|old| StateChanged { entity_id, old: Some(old), new: None })
            })
        };
        if let Some(change) = change {
            self.announce(change);
        }
        Ok(())
    }

    /// Puts states and attributes back as a snapshot held them, as if the
    /// house had changed that way now: history and logbook record it, and
    /// subscribers hear of it. An automation's entity carries its enabled
    /// flag with it.
    async fn restore_states(&self, entities: &[Entity]) -> Result<usize, HomeError> {
        let now = self.clock.now_ms();
        let changes = self.world().restore_states(entities, now);
        let changed = changes.len();
        for change in changes {
            self.announce(change);
        }
        Ok(changed)
    }

    fn subscribe(&self) -> broadcast::Receiver<StateChanged> {
        self.events.subscribe()
    }
}
