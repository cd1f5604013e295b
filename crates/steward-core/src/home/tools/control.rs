//! `control_entity`: calls a Home Assistant service on one or more entities
//! of one domain.
//!
//! Everything that can be checked is checked before anything runs (and
//! before a person is asked to approve): the entities exist, the action is
//! a service of their domain, the data fields are ones the service takes.
//! Values are checked by the home when the call runs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_protocol::approval::{Preview, PreviewTarget};
use steward_protocol::Effect;

use super::{arguments_object, compact_attributes, entity_id_list, fetch_entity, required_str, spec, state_text};
use crate::home::types::{Entity, ServiceCall, ServiceDescription};
use crate::home::Home;
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};

/// Targets per call at most: a call on more is almost certainly a mistake.
const MAX_TARGETS: usize = 50;
/// Targets named one by one in a preview's summary line.
const SUMMARY_TARGETS: usize = 5;

pub struct ControlEntity {
    spec: ToolSpec,
    home: Arc<dyn Home>,
}

/// A checked call, ready to preview or run.
struct Plan {
    call: ServiceCall,
    targets: Vec<Entity>,
}

impl ControlEntity {
    pub fn new(home: Arc<dyn Home>) -> Self {
        let parameters = json!({
            "type": "object",
            "properties": {
                "entity_id": {
                    "description": "The entity to control, or a list of entities of one domain, e.g. \"light.kitchen_ceiling\".",
                    "oneOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_TARGETS}
                    ]
                },
                "action": {"type": "string", "description": "The Home Assistant service of the entity's domain: turn_on, turn_off, toggle, set_temperature, set_hvac_mode, open_cover, close_cover, set_cover_position, lock, unlock, media_play, media_pause, volume_set …"},
                "data": {"type": "object", "description": "Service data, e.g. {\"brightness_pct\": 40}, {\"color_name\": \"red\"}, {\"temperature\": 21}, {\"position\": 50}."}
            },
            "required": ["entity_id", "action"],
            "additionalProperties": false
        });
        ControlEntity {
            spec: spec(
                "control_entity",
                "Controls entities by calling a Home Assistant service (the action) on them: lights, switches, \
climate, covers, locks, media players, fans and more. All entities of one call must be in one domain. \
Reports each entity's state before and after.",
                parameters,
                Effect::Mutate,
                Duration::from_secs(20),
                6_000,
            ),
            home,
        }
    }

    async fn plan(&self, arguments: &Value) -> Result<Plan, ToolError> {
        let args = arguments_object(arguments, &["entity_id", "action", "data"])?;
        let ids = entity_id_list(&args, "entity_id", MAX_TARGETS)?;
        let domain = domain_of_all(&ids)?;
        let domain = domain.as_str();
        let action = required_str(&args, "action", "turn_on")?;
        let service = match action.split_once('.') {
            Some((d, s)) if d == domain => s,
            Some((d, _)) => {
                return Err(ToolError::InvalidArguments(format!(
                    "`{action}` is a {d} action, but the entities are in domain {domain}; give the {domain} \
action's name alone, e.g. \"turn_on\""
                )))
            }
            None => action,
        };
        let services = self.home.services().await?;
        let offered: Vec<&ServiceDescription> = services.iter().filter(|s| s.domain == domain).collect();
        let Some(description) = offered.iter().find(|s| s.service == service) else {
            return Err(if offered.is_empty() {
                ToolError::InvalidArguments(format!(
                    "{domain} entities cannot be controlled: they only report values. Read them with get_state."
                ))
            } else {
                let names: Vec<&str> = offered.iter().map(|s| s.service.as_str()).collect();
                ToolError::InvalidArguments(format!(
                    "`{service}` is not an action of domain {domain}; valid actions: {}",
                    names.join(", ")
                ))
            });
        };
        let data = check_data(&args, domain, description)?;
        let mut targets = Vec::with_capacity(ids.len());
        for id in &ids {
            targets.push(fetch_entity(self.home.as_ref(), id).await?);
        }
        let data = if data.is_empty() { Value::Null } else { Value::Object(data) };
        Ok(Plan { call: ServiceCall::new(domain, service, ids).with_data(data), targets })
    }
}

/// The one domain all ids share.
fn domain_of_all(ids: &[String]) -> Result<String, ToolError> {
    let mut domains: Vec<&str> = ids.iter().filter_map(|id| id.split_once('.').map(|(d, _)| d)).collect();
    domains.sort_unstable();
    domains.dedup();
    match domains.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(ToolError::InvalidArguments(format!(
            "control_entity acts on one domain at a time, but the entities are in {}; make one call per domain",
            domains.join(", ")
        ))),
    }
}

/// The `data` object, with every field one the service takes.
fn check_data(
    args: &Map<String, Value>,
    domain: &str,
    service: &ServiceDescription,
) -> Result<Map<String, Value>, ToolError> {
    let data = match args.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(ToolError::InvalidArguments(format!(
                "`data` must be an object such as {{\"brightness_pct\": 40}}, not {other}"
            )))
        }
    };
    if data.contains_key("entity_id") {
        return Err(ToolError::InvalidArguments("put the targets in `entity_id`, not inside `data`".into()));
    }
    let name = format!("{domain}.{}", service.service);
    if let Some(unknown) = data.keys().find(|k| !service.fields.contains(k)) {
        return Err(ToolError::InvalidArguments(if service.fields.is_empty() {
            format!("{name} takes no data, but got `{unknown}`; leave `data` out")
        } else {
            format!("{name} does not take `{unknown}`; it takes: {}", service.fields.join(", "))
        }));
    }
    Ok(data)
}

/// `brightness_pct=40, rgb_color=[255,0,0]`.
fn data_text(data: &Value) -> Option<String> {
    let map = data.as_object().filter(|m| !m.is_empty())?;
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    Some(parts.join(", "))
}

/// `Kitchen Ceiling (light.kitchen_ceiling, now off)`.
fn target_text(e: &Entity) -> String {
    format!("{} ({}, now {})", e.name, e.entity_id, state_text(e))
}

fn summary(plan: &Plan) -> String {
    let mut named: Vec<String> = plan.targets.iter().take(SUMMARY_TARGETS).map(target_text).collect();
    if plan.targets.len() > SUMMARY_TARGETS {
        named.push(format!("{} more", plan.targets.len() - SUMMARY_TARGETS));
    }
    let targets = match named.len() {
        0 | 1 => named.concat(),
        n => format!("{} and {}", named[..n - 1].join(", "), named[n - 1]),
    };
    let mut line = format!("{} on {targets}", plan.call.full_name());
    if let Some(data) = data_text(&plan.call.data) {
        line.push_str(" with ");
        line.push_str(&data);
    }
    line
}

#[async_trait]
impl Tool for ControlEntity {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn preview(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Preview, ToolError> {
        let plan = self.plan(arguments).await?;
        Ok(Preview {
            summary: summary(&plan),
            targets: plan
                .targets
                .iter()
                .map(|e| PreviewTarget {
                    id: e.entity_id.clone(),
                    name: Some(e.name.clone()),
                    state: Some(state_text(e)),
                })
                .collect(),
            details: None,
        })
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let plan = self.plan(&arguments).await?;
        let after = self.home.call_service(&plan.call).await?;
        let results: Vec<Value> = plan
            .targets
            .iter()
            .map(|before| {
                let now = after.iter().find(|e| e.entity_id == before.entity_id);
                let mut item = json!({
                    "entity_id": before.entity_id,
                    "name": before.name,
                    "was": state_text(before),
                });
                match now {
                    Some(now) => {
                        item["now"] = json!(state_text(now));
                        item["attributes"] = json!(compact_attributes(now));
                    }
                    None => item["now"] = json!("not reported"),
                }
                item
            })
            .collect();
        let mut out = json!({"done": plan.call.full_name(), "entities": results});
        if !plan.call.data.is_null() {
            out["data"] = plan.call.data.clone();
        }
        Ok(out.to_string())
    }
}
