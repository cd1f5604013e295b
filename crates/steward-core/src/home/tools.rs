//! The agent tools over a [`Home`]: finding entities, reading states and
//! history, controlling things, and reading the house's logs and config
//! check.
//!
//! Every tool takes `entity_id` / `entity_ids` under exactly those names:
//! the policy reads the targets (and from them the domains) from there.
//! Outputs are compact JSON, sized to fit a model's context; each tool says
//! how much it left out so the model can narrow instead of repeating.

mod automation;
mod control;
pub(crate) mod energy;
mod history;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_protocol::Effect;

use super::search::{area_matches, search_entities};
use super::types::{Area, Entity, LogLevel};
use super::{Home, HomeError};
use crate::clock::Clock;
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};
use crate::tools::rfc3339;

pub use automation::{line_diff, DeleteAutomation, SaveAutomation, ValidateAutomation};
pub use control::ControlEntity;
pub use energy::AnalyzeEnergy;
pub use history::GetEntityHistory;

/// Every home tool, ready to register.
pub fn home_tools(home: Arc<dyn Home>, clock: Arc<dyn Clock>) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(DiscoverEntities::new(home.clone())),
        Arc::new(DomainSummary::new(home.clone())),
        Arc::new(GetState::new(home.clone())),
        Arc::new(GetEntityHistory::new(home.clone(), clock.clone())),
        Arc::new(AnalyzeEnergy::new(home.clone(), clock)),
        Arc::new(ControlEntity::new(home.clone())),
        Arc::new(GetHaLogs::new(home.clone())),
        Arc::new(CheckHaConfig::new(home)),
    ]
}

fn spec(name: &str, description: &str, parameters: Value, effect: Effect, timeout: Duration, cap: usize) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
        effect,
        timeout,
        output_cap: cap,
        domain: None,
    }
}

// ---------------------------------------------------------------------------
// Argument helpers: plain checks with messages a model can act on.

/// The arguments as an object (`null` counts as `{}`), refusing keys the
/// tool does not know.
fn arguments_object(arguments: &Value, allowed: &[&str]) -> Result<Map<String, Value>, ToolError> {
    let map = match arguments {
        Value::Null => Map::new(),
        Value::Object(map) => map.clone(),
        other => return Err(ToolError::InvalidArguments(format!("arguments must be a JSON object, not {other}"))),
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let known = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
        return Err(ToolError::InvalidArguments(format!("unknown argument `{unknown}`; this tool takes: {known}")));
    }
    Ok(map)
}

fn optional_str<'a>(args: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(ToolError::InvalidArguments(format!("`{key}` must be a string, not {other}"))),
    }
}

fn required_str<'a>(args: &'a Map<String, Value>, key: &str, example: &str) -> Result<&'a str, ToolError> {
    optional_str(args, key)?
        .ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` is required, e.g. \"{key}\": \"{example}\"")))
}

fn optional_bool(args: &Map<String, Value>, key: &str) -> Result<Option<bool>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ToolError::InvalidArguments(format!("`{key}` must be true or false, not {other}"))),
    }
}

fn optional_number(args: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<Option<f64>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ToolError::InvalidArguments(format!("`{key}` must be a number from {min} to {max}, not {v}"))),
        },
    }
}

/// `entity_id` / `entity_ids` as a list: a string or an array of strings.
fn entity_id_list(args: &Map<String, Value>, key: &str, max: usize) -> Result<Vec<String>, ToolError> {
    let ids: Vec<String> = match args.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.trim().to_string()],
        Some(Value::Array(items)) => {
            let mut ids = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) => ids.push(s.trim().to_string()),
                    None => {
                        return Err(ToolError::InvalidArguments(format!(
                            "`{key}` must hold entity id strings, not {item}"
                        )))
                    }
                }
            }
            ids
        }
        Some(other) => {
            return Err(ToolError::InvalidArguments(format!(
                "`{key}` must be an entity id or a list of them, not {other}"
            )))
        }
    };
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if super::types::domain_of(&id).is_none() {
            return Err(ToolError::InvalidArguments(format!(
                "`{id}` is not an entity id; ids look like `light.kitchen_ceiling` (find them with discover_entities)"
            )));
        }
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    if unique.is_empty() {
        return Err(ToolError::InvalidArguments(format!(
            "`{key}` is required: one entity id or a list, e.g. \"{key}\": \"light.kitchen_ceiling\""
        )));
    }
    if unique.len() > max {
        return Err(ToolError::InvalidArguments(format!(
            "`{key}` names {} entities; at most {max} per call",
            unique.len()
        )));
    }
    Ok(unique)
}

// ---------------------------------------------------------------------------
// Shared rendering.

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// `21.5 °C`, `on`.
fn state_text(entity: &Entity) -> String {
    match entity.unit() {
        Some(unit) if entity.numeric_state().is_some() => format!("{} {unit}", entity.state),
        _ => entity.state.clone(),
    }
}

fn area_names(areas: &[Area]) -> HashMap<&str, &str> {
    areas.iter().map(|a| (a.area_id.as_str(), a.name.as_str())).collect()
}

/// Attributes worth showing a model: no nulls, no friendly name (already
/// shown), no long option lists.
fn compact_attributes(entity: &Entity) -> Map<String, Value> {
    const NOISE: &[&str] = &["friendly_name", "supported_features", "icon", "entity_picture", "attribution"];
    let mut out = Map::new();
    if let Value::Object(attributes) = &entity.attributes {
        for (k, v) in attributes {
            let long_list = matches!(v, Value::Array(items) if items.len() > 8);
            if v.is_null() || long_list || NOISE.contains(&k.as_str()) {
                continue;
            }
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A not-found error that offers the closest entity ids.
async fn entity_not_found(home: &dyn Home, entity_id: &str, error: HomeError) -> ToolError {
    let Ok(entities) = home.entities().await else {
        return error.into();
    };
    let areas = home.areas().await.unwrap_or_default();
    let hits = search_entities(&entities, &areas, entity_id);
    let close: Vec<String> =
        hits.iter().take(3).map(|h| format!("{} ({})", h.entity.entity_id, h.entity.name)).collect();
    if close.is_empty() {
        ToolError::InvalidArguments(format!("{error} Use discover_entities to find the right id."))
    } else {
        ToolError::InvalidArguments(format!("{error} Did you mean: {}?", close.join(", ")))
    }
}

/// Fetches one entity, turning "not found" into a helpful argument error.
async fn fetch_entity(home: &dyn Home, entity_id: &str) -> Result<Entity, ToolError> {
    match home.entity(entity_id).await {
        Ok(entity) => Ok(entity),
        Err(e @ HomeError::NotFound { .. }) => Err(entity_not_found(home, entity_id, e).await),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// discover_entities

/// `discover_entities`: finds entities by words, domain and area.
pub struct DiscoverEntities {
    spec: ToolSpec,
    home: Arc<dyn Home>,
}

const DISCOVER_DEFAULT_LIMIT: usize = 25;
const DISCOVER_MAX_LIMIT: usize = 100;

impl DiscoverEntities {
    pub fn new(home: Arc<dyn Home>) -> Self {
        let parameters = json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words to look for in entity ids, names, aliases and areas, e.g. \"kitchen lights\" or \"temperature\". Typos and plurals are tolerated."},
                "domain": {"type": "string", "description": "Only this domain, e.g. light, switch, sensor, climate, cover, lock."},
                "area": {"type": "string", "description": "Only entities in this area (id or name), e.g. kitchen."},
                "limit": {"type": "integer", "minimum": 1, "maximum": DISCOVER_MAX_LIMIT, "description": "How many to show (default 25)."}
            },
            "additionalProperties": false
        });
        DiscoverEntities {
            spec: spec(
                "discover_entities",
                "Finds entities in the home by words (id, name, alias, area), domain and area. Returns entity ids \
with their name, state and area, and how many matched. Use it to find the exact entity_id before reading \
or controlling something.",
                parameters,
                Effect::Read,
                Duration::from_secs(15),
                12_000,
            ),
            home,
        }
    }
}

#[async_trait]
impl Tool for DiscoverEntities {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["query", "domain", "area", "limit"])?;
        let query = optional_str(&args, "query")?.unwrap_or("");
        let domain = optional_str(&args, "domain")?.map(|d| d.to_lowercase());
        let area = optional_str(&args, "area")?;
        let limit = optional_number(&args, "limit", 1.0, DISCOVER_MAX_LIMIT as f64)?
            .map(|n| n as usize)
            .unwrap_or(DISCOVER_DEFAULT_LIMIT);
        let entities = self.home.entities().await?;
        let areas = self.home.areas().await?;
        let names = area_names(&areas);

        let mut pool: Vec<Entity> = entities.clone();
        if let Some(domain) = &domain {
            pool.retain(|e| &e.domain == domain);
            if pool.is_empty() {
                let mut domains: Vec<&str> = entities.iter().map(|e| e.domain.as_str()).collect();
                domains.sort_unstable();
                domains.dedup();
                return Ok(json!({"matched": 0, "shown": 0, "entities": [],
                    "hint": format!("No entity is in domain `{domain}`. Domains here: {}.", domains.join(", "))})
                .to_string());
            }
        }
        if let Some(area) = area {
            let wanted: Vec<&str> =
                areas.iter().filter(|a| area_matches(a, area)).map(|a| a.area_id.as_str()).collect();
            if wanted.is_empty() {
                let all: Vec<String> = areas.iter().map(|a| format!("{} ({})", a.area_id, a.name)).collect();
                return Ok(json!({"matched": 0, "shown": 0, "entities": [],
                    "hint": format!("No area matches `{area}`. Areas here: {}.", all.join(", "))})
                .to_string());
            }
            pool.retain(|e| e.area_id.as_deref().is_some_and(|id| wanted.contains(&id)));
        }
        let hits = search_entities(&pool, &areas, query);
        let partial = hits.first().is_some_and(|h| !h.matched_all);
        let shown: Vec<Value> = hits
            .iter()
            .take(limit)
            .map(|h| {
                let e = h.entity;
                let mut item = json!({"entity_id": e.entity_id, "name": e.name, "state": state_text(e)});
                if let Some(area) = e.area_id.as_deref() {
                    item["area"] = json!(names.get(area).copied().unwrap_or(area));
                }
                if !e.aliases.is_empty() {
                    item["aliases"] = json!(e.aliases);
                }
                item
            })
            .collect();
        let mut out = json!({"matched": hits.len(), "shown": shown.len(), "entities": shown});
        if hits.is_empty() {
            out["hint"] = json!(format!(
                "Nothing matches `{query}`. Try fewer or other words, a domain (light, sensor …) or an area; \
domain_summary lists the areas and domains."
            ));
        } else if partial {
            out["hint"] = json!("No entity matches every word; these match the most. Check the names above.");
        } else if hits.len() > limit {
            out["hint"] =
                json!(format!("{} more not shown; narrow with more words, a domain or an area.", hits.len() - limit));
        }
        Ok(out.to_string())
    }
}

// ---------------------------------------------------------------------------
// domain_summary

/// `domain_summary`: the shape of the home in a few lines.
pub struct DomainSummary {
    spec: ToolSpec,
    home: Arc<dyn Home>,
}

impl DomainSummary {
    pub fn new(home: Arc<dyn Home>) -> Self {
        DomainSummary {
            spec: spec(
                "domain_summary",
                "Summarises the home: its areas with how many entities each holds, the number of entities per \
domain, and which entities are unavailable. Cheap; use it to get your bearings.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                Effect::Read,
                Duration::from_secs(15),
                6_000,
            ),
            home,
        }
    }
}

#[async_trait]
impl Tool for DomainSummary {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        arguments_object(&arguments, &[])?;
        let entities = self.home.entities().await?;
        let areas = self.home.areas().await?;
        let mut domains: BTreeMap<&str, usize> = BTreeMap::new();
        let mut per_area: HashMap<&str, usize> = HashMap::new();
        let mut no_area = 0;
        for e in &entities {
            *domains.entry(e.domain.as_str()).or_default() += 1;
            match e.area_id.as_deref() {
                Some(area) => *per_area.entry(area).or_default() += 1,
                None => no_area += 1,
            }
        }
        let areas_out: Vec<Value> = areas
            .iter()
            .map(|a| json!({"area_id": a.area_id, "name": a.name, "entities": per_area.get(a.area_id.as_str()).copied().unwrap_or(0)}))
            .collect();
        let unavailable: Vec<&str> = entities.iter().filter(|e| !e.available).map(|e| e.entity_id.as_str()).collect();
        Ok(json!({
            "home": self.home.name(),
            "demo": self.home.is_demo(),
            "entities": entities.len(),
            "domains": domains,
            "areas": areas_out,
            "without_area": no_area,
            "unavailable": unavailable,
        })
        .to_string())
    }
}

// ---------------------------------------------------------------------------
// get_state

/// `get_state`: one entity's state and attributes.
pub struct GetState {
    spec: ToolSpec,
    home: Arc<dyn Home>,
}

impl GetState {
    pub fn new(home: Arc<dyn Home>) -> Self {
        GetState {
            spec: spec(
                "get_state",
                "Reads one entity's current state with its attributes, area, and when it last changed.",
                json!({
                    "type": "object",
                    "properties": {"entity_id": {"type": "string", "description": "The entity id, e.g. light.kitchen_ceiling."}},
                    "required": ["entity_id"],
                    "additionalProperties": false
                }),
                Effect::Read,
                Duration::from_secs(10),
                6_000,
            ),
            home,
        }
    }
}

#[async_trait]
impl Tool for GetState {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["entity_id"])?;
        let id = required_str(&args, "entity_id", "light.kitchen_ceiling")?;
        if super::types::domain_of(id).is_none() {
            return Err(ToolError::InvalidArguments(format!(
                "`{id}` is not an entity id; ids look like `light.kitchen_ceiling` (find them with discover_entities)"
            )));
        }
        let entity = fetch_entity(self.home.as_ref(), id).await?;
        let areas = self.home.areas().await.unwrap_or_default();
        let mut out = json!({
            "entity_id": entity.entity_id,
            "name": entity.name,
            "state": entity.state,
            "available": entity.available,
            "last_changed": rfc3339(entity.last_changed),
            "last_updated": rfc3339(entity.last_updated),
            "attributes": compact_attributes(&entity),
        });
        if let Some(area) = entity.area_id.as_deref() {
            out["area"] = json!(area_names(&areas).get(area).copied().unwrap_or(area));
        }
        if !entity.aliases.is_empty() {
            out["aliases"] = json!(entity.aliases);
        }
        Ok(out.to_string())
    }
}

// ---------------------------------------------------------------------------
// get_ha_logs

/// `get_ha_logs`: the house's system log, newest first.
pub struct GetHaLogs {
    spec: ToolSpec,
    home: Arc<dyn Home>,
}

const LOGS_DEFAULT_LIMIT: usize = 30;

impl GetHaLogs {
    pub fn new(home: Arc<dyn Home>) -> Self {
        GetHaLogs {
            spec: spec(
                "get_ha_logs",
                "Reads Home Assistant's system log (warnings and errors of integrations), newest first; repeated \
messages are folded with a count and the first and last time. Use it to find why a device or sensor \
misbehaved.",
                json!({
                    "type": "object",
                    "properties": {
                        "level": {"type": "string", "enum": ["debug", "info", "warning", "error", "critical"], "description": "Only this level and above."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many entries to show (default 30)."}
                    },
                    "additionalProperties": false
                }),
                Effect::Read,
                Duration::from_secs(15),
                10_000,
            ),
            home,
        }
    }
}

#[async_trait]
impl Tool for GetHaLogs {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["level", "limit"])?;
        let min_level = match optional_str(&args, "level")? {
            None => LogLevel::Debug,
            Some(s) => LogLevel::parse(s).ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "`level` must be one of debug, info, warning, error, critical; not `{s}`"
                ))
            })?,
        };
        let limit = optional_number(&args, "limit", 1.0, 100.0)?.map(|n| n as usize).unwrap_or(LOGS_DEFAULT_LIMIT);
        let mut logs = self.home.logs().await?;
        logs.retain(|l| l.level >= min_level);
        logs.sort_by_key(|l| std::cmp::Reverse(l.timestamp));
        let shown: Vec<Value> = logs
            .iter()
            .take(limit)
            .map(|l| {
                let mut item = json!({
                    "level": l.level.as_str(),
                    "logger": l.logger,
                    "source": l.source,
                    "message": l.message,
                    "count": l.count,
                    "first": rfc3339(l.first_occurred),
                    "last": rfc3339(l.timestamp),
                });
                if let Some(exception) = &l.exception {
                    item["exception"] = json!(exception);
                }
                item
            })
            .collect();
        Ok(json!({"total": logs.len(), "shown": shown.len(), "entries": shown}).to_string())
    }
}

// ---------------------------------------------------------------------------
// check_ha_config

/// `check_ha_config`: whether the configuration is valid.
pub struct CheckHaConfig {
    spec: ToolSpec,
    home: Arc<dyn Home>,
}

impl CheckHaConfig {
    pub fn new(home: Arc<dyn Home>) -> Self {
        CheckHaConfig {
            spec: spec(
                "check_ha_config",
                "Runs Home Assistant's configuration check (automations included) and reports whether it is \
valid, with any errors and warnings. Changes nothing.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                Effect::Read,
                Duration::from_secs(60),
                8_000,
            ),
            home,
        }
    }
}

#[async_trait]
impl Tool for CheckHaConfig {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        arguments_object(&arguments, &[])?;
        let check = self.home.check_config().await?;
        Ok(json!({"valid": check.valid, "errors": check.errors, "warnings": check.warnings}).to_string())
    }
}
