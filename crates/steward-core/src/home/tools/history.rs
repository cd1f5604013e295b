//! `get_entity_history`: what entities did over the last hours, summarised
//! so a week of five-minute readings fits in a few lines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_protocol::Effect;

use super::{arguments_object, entity_id_list, fetch_entity, optional_bool, optional_number, round, spec};
use crate::clock::Clock;
use crate::home::analysis::{find_flatlines, find_gaps, typical_spacing, GapKind};
use crate::home::types::{parse_number, Entity, EntityHistory, HistoryPoint, UNAVAILABLE, UNKNOWN};
use crate::home::Home;
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};
use crate::tools::rfc3339;

const HOUR_MS: i64 = 3_600_000;
const DEFAULT_HOURS: f64 = 24.0;
/// Home Assistant's recorder keeps ten days by default.
const MAX_HOURS: f64 = 240.0;
const MAX_ENTITIES: usize = 20;
/// Gaps and flatlines listed per entity at most.
const MAX_FINDINGS: usize = 10;

pub struct GetEntityHistory {
    spec: ToolSpec,
    home: Arc<dyn Home>,
    clock: Arc<dyn Clock>,
}

impl GetEntityHistory {
    pub fn new(home: Arc<dyn Home>, clock: Arc<dyn Clock>) -> Self {
        let parameters = json!({
            "type": "object",
            "properties": {
                "entity_ids": {
                    "description": "The entities, e.g. [\"sensor.living_room_temperature\"] (at most 20).",
                    "oneOf": [
                        {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_ENTITIES},
                        {"type": "string"}
                    ]
                },
                "hours": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_HOURS, "description": "How far back from now (default 24, at most 240)."},
                "detailed": {"type": "boolean", "description": "Also report gaps in the data and values that stayed flat for a long time, with their times."}
            },
            "required": ["entity_ids"],
            "additionalProperties": false
        });
        GetEntityHistory {
            spec: spec(
                "get_entity_history",
                "Summarises what entities did over the last hours: for numbers the min, max, mean and latest value; \
for on/off and other states the number of changes and the hours spent in each state. With detailed=true \
it also lists gaps (no data, or unavailable) and flatlines (a number stuck at one value), which is how \
to find a sensor that stopped reporting.",
                parameters,
                Effect::Read,
                Duration::from_secs(30),
                16_000,
            ),
            home,
            clock,
        }
    }
}

#[async_trait]
impl Tool for GetEntityHistory {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["entity_ids", "hours", "detailed"])?;
        let ids = entity_id_list(&args, "entity_ids", MAX_ENTITIES)?;
        let hours = optional_number(&args, "hours", f64::MIN_POSITIVE, MAX_HOURS)?.unwrap_or(DEFAULT_HOURS);
        let detailed = optional_bool(&args, "detailed")?.unwrap_or(false);
        let mut entities = Vec::with_capacity(ids.len());
        for id in &ids {
            entities.push(fetch_entity(self.home.as_ref(), id).await?);
        }
        let end = self.clock.now_ms();
        let start = end - (hours * HOUR_MS as f64) as i64;
        let histories = self.home.history(&ids, start, end).await?;
        let summaries: Vec<Value> = entities
            .iter()
            .map(|entity| {
                let empty = EntityHistory { entity_id: entity.entity_id.clone(), points: Vec::new() };
                let history = histories.iter().find(|h| h.entity_id == entity.entity_id).unwrap_or(&empty);
                summarize(entity, &history.points, start, end, detailed)
            })
            .collect();
        Ok(json!({
            "start": rfc3339(start),
            "end": rfc3339(end),
            "hours": round(hours, 2),
            "entities": summaries,
        })
        .to_string())
    }
}

fn is_missing(state: &str) -> bool {
    state == UNAVAILABLE || state == UNKNOWN
}

/// One entity's history in a few numbers.
fn summarize(entity: &Entity, points: &[HistoryPoint], start: i64, end: i64, detailed: bool) -> Value {
    let mut out = json!({"entity_id": entity.entity_id, "name": entity.name, "points": points.len()});
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        out["note"] = json!("no recorded states in this window");
        return out;
    };
    out["from"] = json!(rfc3339(first.at));
    out["to"] = json!(rfc3339(last.at));
    let available: Vec<&HistoryPoint> = points.iter().filter(|p| !is_missing(&p.state)).collect();
    let numeric_count = available.iter().filter(|p| parse_number(&p.state).is_some()).count();
    let numeric = numeric_count > 0 && numeric_count * 2 >= available.len();
    if numeric {
        if let Some(unit) = entity.unit() {
            out["unit"] = json!(unit);
        }
        let values: Vec<f64> = available.iter().filter_map(|p| parse_number(&p.state)).collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out["min"] = json!(round(min, 2));
        out["max"] = json!(round(max, 2));
        if let Some(mean) = time_weighted_mean(points, end) {
            out["mean"] = json!(round(mean, 2));
        }
    } else {
        let changes = points.windows(2).filter(|w| w[0].state != w[1].state).count();
        out["changes"] = json!(changes);
        let hours: BTreeMap<String, f64> = time_in_state(points, start, end)
            .into_iter()
            .map(|(s, ms)| (s, round(ms as f64 / HOUR_MS as f64, 2)))
            .collect();
        out["hours_in_state"] = json!(hours);
    }
    out["latest"] = match parse_number(&last.state) {
        Some(v) if numeric => json!(v),
        _ => json!(last.state),
    };
    if detailed {
        add_findings(&mut out, entity, points, end, numeric);
    }
    out
}

fn add_findings(out: &mut Value, entity: &Entity, points: &[HistoryPoint], end: i64, numeric: bool) {
    let spacing = typical_spacing(points);
    // The spacing of on/off changes says nothing; of readings, a lot.
    if let Some(spacing) = spacing.filter(|_| numeric) {
        out["spacing_minutes"] = json!(round(spacing as f64 / 60_000.0, 1));
    }
    let gaps = find_gaps(points, end);
    out["gaps"] = json!(gaps
        .iter()
        .take(MAX_FINDINGS)
        .map(|g| {
            let mut item = json!({
                "from": rfc3339(g.start),
                "to": rfc3339(g.end),
                "hours": round((g.end - g.start) as f64 / HOUR_MS as f64, 2),
                "kind": match g.kind { GapKind::NoData => "no data", GapKind::Unavailable => "unavailable" },
            });
            if g.ongoing {
                item["ongoing"] = json!(true);
            }
            if let Some(before) = &g.value_before {
                item["value_before"] = json!(before);
            }
            item
        })
        .collect::<Vec<_>>());
    if gaps.len() > MAX_FINDINGS {
        out["more_gaps"] = json!(gaps.len() - MAX_FINDINGS);
    }
    if !numeric {
        return;
    }
    // A meter that stands still means nothing was used, which is normal for
    // hours; only a day or more is worth a mention. A measurement that does
    // not move for six hours (or a dozen readings) is suspicious.
    let is_total = matches!(entity.state_class(), Some("total" | "total_increasing"));
    let min_flat = if is_total { 24 * HOUR_MS } else { (6 * HOUR_MS).max(spacing.unwrap_or(0) * 12) };
    let flats = find_flatlines(points, min_flat);
    out["flatlines"] = json!(flats
        .iter()
        .take(MAX_FINDINGS)
        .map(|f| json!({
            "from": rfc3339(f.start),
            "to": rfc3339(f.end),
            "hours": round((f.end - f.start) as f64 / HOUR_MS as f64, 2),
            "value": f.value,
            "readings": f.points,
        }))
        .collect::<Vec<_>>());
    if is_total && !flats.is_empty() {
        out["flatline_note"] = json!("this is a meter: a flat stretch means nothing was used, not necessarily a fault");
    }
}

/// The mean of the numeric states, each weighted by how long it held
/// (until the next point, or `end`); unavailable stretches do not count.
fn time_weighted_mean(points: &[HistoryPoint], end: i64) -> Option<f64> {
    let mut weighted = 0.0;
    let mut total = 0i64;
    for (i, p) in points.iter().enumerate() {
        let Some(v) = parse_number(&p.state) else { continue };
        let until = points.get(i + 1).map(|n| n.at).unwrap_or(end).max(p.at);
        let held = until - p.at;
        weighted += v * held as f64;
        total += held;
    }
    if total > 0 {
        Some(weighted / total as f64)
    } else {
        let values: Vec<f64> = points.iter().filter_map(|p| parse_number(&p.state)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Milliseconds spent in each state within `[start, end]`.
fn time_in_state(points: &[HistoryPoint], start: i64, end: i64) -> BTreeMap<String, i64> {
    let mut spent: BTreeMap<String, i64> = BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        let from = p.at.max(start);
        let until = points.get(i + 1).map(|n| n.at).unwrap_or(end).min(end);
        if until > from {
            *spent.entry(p.state.clone()).or_default() += until - from;
        }
    }
    spent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, &str)]) -> Vec<HistoryPoint> {
        v.iter().map(|(at, s)| HistoryPoint { at: *at, state: s.to_string() }).collect()
    }

    #[test]
    fn mean_weighs_by_time_held() {
        // 10 for 3 units, 20 for 1 unit.
        let m = time_weighted_mean(&pts(&[(0, "10"), (3, "20")]), 4);
        assert_eq!(m, Some(12.5));
        // Unavailable stretches do not count.
        let m = time_weighted_mean(&pts(&[(0, "10"), (1, "unavailable"), (9, "20")]), 10);
        assert_eq!(m, Some(15.0));
        assert_eq!(time_weighted_mean(&pts(&[(0, "on")]), 10), None);
    }

    #[test]
    fn time_in_state_is_clipped_to_the_window() {
        let spent = time_in_state(&pts(&[(0, "off"), (10, "on"), (15, "off")]), 5, 20);
        assert_eq!(spent.get("off"), Some(&10));
        assert_eq!(spent.get("on"), Some(&5));
    }
}
