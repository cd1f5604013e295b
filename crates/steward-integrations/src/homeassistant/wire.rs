//! Home Assistant's JSON, read into the home's types.
//!
//! Every reader takes the `result` of one WebSocket command (or the body of
//! one REST reply) and either returns the home's types or an
//! [`HomeError::UnexpectedReply`] that quotes a short piece of what came, so
//! a proxy's HTML page or a changed API is recognisable from the message.

use std::collections::HashMap;

use serde_json::{Map, Value};
use steward_core::home::{
    ConfigCheck, EntityHistory, EntityStatistics, HistoryPoint, HomeError, LogEntry, LogLevel, LogbookEntry,
    ServiceDescription, StatisticKind, StatisticsRow,
};

/// An entity's state object as Home Assistant sends it (`get_states`, the
/// `state_changed` event).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawState {
    pub entity_id: String,
    pub state: String,
    pub attributes: Value,
    pub last_changed: i64,
    pub last_updated: i64,
}

/// How a service answers with data (`get_services`' `response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseSupport {
    /// It never answers with data.
    None,
    /// It answers when asked to (`return_response`).
    Optional,
    /// It must be asked to (weather forecasts, calendar events …).
    Only,
}

/// At most this many characters of an unexpected reply go into an error.
const SNIPPET_CHARS: usize = 160;

/// A short, single-line piece of `text` to quote in an error.
pub(crate) fn snippet(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "an empty reply".into();
    }
    let mut out: String = flat.chars().take(SNIPPET_CHARS).collect();
    if flat.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    format!("\"{out}\"")
}

pub(crate) fn unexpected(what: &str, got: &Value) -> HomeError {
    HomeError::UnexpectedReply(format!("{what}: got {}", snippet(&got.to_string())))
}

// --- Times -------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days-from-civil algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Milliseconds since the epoch of an ISO 8601 time as Home Assistant
/// writes them: `2026-03-10T14:07:00.123456+00:00`, `…Z`, or without an
/// offset (UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at_checked(10)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let mut parts = date.split('-');
    let (y, m, d) = (number(parts.next()?, 4)?, number(parts.next()?, 2)?, number(parts.next()?, 2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (clock, offset_secs) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (clock, offset) = rest.split_at(i);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
        let (h, mi) = (number(digits.get(..2)?, 2)?, number(digits.get(2..)?, 2)?);
        (clock, sign * (h * 3600 + mi * 60))
    } else {
        (rest, 0)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.split(':');
    let (h, mi, sec) = (number(hms.next()?, 2)?, number(hms.next()?, 2)?, number(hms.next()?, 2)?);
    if h > 23 || mi > 59 || sec > 60 || hms.next().is_some() {
        return None;
    }
    let millis = if fraction.is_empty() {
        0
    } else {
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut ms: String = fraction.chars().take(3).collect();
        while ms.len() < 3 {
            ms.push('0');
        }
        ms.parse::<i64>().ok()?
    };
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * 1000 + millis)
}

/// An RFC 3339 UTC time with milliseconds, as Home Assistant's commands take.
pub fn format_time(ms: i64) -> String {
    let whole = steward_core::tools::rfc3339(ms);
    // `rfc3339` gives `YYYY-MM-DDTHH:MM:SSZ`; add the milliseconds.
    format!("{}.{:03}Z", whole.trim_end_matches('Z'), ms.rem_euclid(1000))
}

/// Seconds since the epoch (a float, as the recorder sends them) to milliseconds.
pub(crate) fn seconds_to_ms(secs: f64) -> i64 {
    (secs * 1000.0).round() as i64
}

fn time_field(obj: &Map<String, Value>, key: &str) -> Option<i64> {
    match obj.get(key)? {
        Value::String(s) => parse_time(s),
        Value::Number(n) => n.as_f64().map(seconds_to_ms),
        _ => None,
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    str_field(obj, key).filter(|s| !s.is_empty()).map(String::from)
}

// --- States ------------------------------------------------------------------

pub(crate) fn parse_state(v: &Value) -> Option<RawState> {
    let obj = v.as_object()?;
    let entity_id = str_field(obj, "entity_id")?.to_string();
    let state = str_field(obj, "state")?.to_string();
    let attributes = match obj.get("attributes") {
        Some(a @ Value::Object(_)) => a.clone(),
        _ => Value::Object(Map::new()),
    };
    let last_changed = time_field(obj, "last_changed")?;
    let last_updated = time_field(obj, "last_updated").unwrap_or(last_changed);
    Some(RawState { entity_id, state, attributes, last_changed, last_updated })
}

/// The result of `get_states`. A state that cannot be read is skipped (and
/// logged) rather than failing the whole house.
pub(crate) fn parse_states(v: &Value) -> Result<Vec<RawState>, HomeError> {
    let list = v.as_array().ok_or_else(|| unexpected("get_states should answer with a list of states", v))?;
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        match parse_state(item) {
            Some(state) => out.push(state),
            None => {
                tracing::warn!(state = %snippet(&item.to_string()), "skipping a state Home Assistant sent that cannot be read")
            }
        }
    }
    Ok(out)
}

// --- Services ----------------------------------------------------------------

/// The field names of a service, with those inside collapsible sections
/// (`advanced_fields: {collapsed, fields: {...}}`) brought up to the top.
fn field_names(fields: &Map<String, Value>, out: &mut Vec<String>) {
    for (name, spec) in fields {
        match spec.get("fields").and_then(Value::as_object) {
            Some(inner) if spec.get("selector").is_none() => field_names(inner, out),
            _ => out.push(name.clone()),
        }
    }
}

/// The result of `get_services`: the descriptions, and how each service
/// answers with data (keyed `domain.service`).
pub(crate) fn parse_services(
    v: &Value,
) -> Result<(Vec<ServiceDescription>, HashMap<String, ResponseSupport>), HomeError> {
    let domains = v.as_object().ok_or_else(|| unexpected("get_services should answer with an object", v))?;
    let mut descriptions = Vec::new();
    let mut responses = HashMap::new();
    for (domain, services) in domains {
        let Some(services) = services.as_object() else { continue };
        for (service, spec) in services {
            let mut fields = Vec::new();
            if let Some(f) = spec.get("fields").and_then(Value::as_object) {
                field_names(f, &mut fields);
            }
            let description = spec
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .or_else(|| spec.get("name").and_then(Value::as_str))
                .unwrap_or_default()
                .to_string();
            let response = match spec.get("response").and_then(|r| r.get("optional")).and_then(Value::as_bool) {
                Some(true) => ResponseSupport::Optional,
                Some(false) => ResponseSupport::Only,
                None => ResponseSupport::None,
            };
            responses.insert(format!("{domain}.{service}"), response);
            descriptions.push(ServiceDescription {
                domain: domain.clone(),
                service: service.clone(),
                description,
                fields,
            });
        }
    }
    descriptions.sort_by(|a, b| (&a.domain, &a.service).cmp(&(&b.domain, &b.service)));
    Ok((descriptions, responses))
}

// --- History -----------------------------------------------------------------

/// The result of `history/history_during_period` (compressed states: `s`
/// the state, `lu` / `lc` seconds since the epoch), one history per id asked,
/// in that order. The first point is dated no earlier than `start_ms`.
pub(crate) fn parse_history(v: &Value, entity_ids: &[String], start_ms: i64) -> Result<Vec<EntityHistory>, HomeError> {
    let by_id =
        v.as_object().ok_or_else(|| unexpected("history/history_during_period should answer with an object", v))?;
    entity_ids
        .iter()
        .map(|id| {
            let rows = match by_id.get(id) {
                None | Some(Value::Null) => &[][..],
                Some(Value::Array(rows)) => rows.as_slice(),
                Some(other) => return Err(unexpected(&format!("the history of {id} should be a list"), other)),
            };
            let mut points: Vec<HistoryPoint> = Vec::with_capacity(rows.len());
            for row in rows {
                let obj = row.as_object().ok_or_else(|| unexpected(&format!("a history point of {id}"), row))?;
                let state = str_field(obj, "s").or_else(|| str_field(obj, "state"));
                // `lu` is when the row was recorded; `lc` (sent only when it
                // differs) when the state string last changed. The first
                // point is the state at the start: it took that state at
                // `lc`, dated no earlier than the start. A later row with an
                // older `lc` changed only attributes: it stays at `lu`.
                let recorded = time_field(obj, "lu").or_else(|| time_field(obj, "last_updated"));
                let changed = time_field(obj, "lc").or_else(|| time_field(obj, "last_changed"));
                let at = if points.is_empty() {
                    changed.or(recorded).map(|t| t.max(start_ms))
                } else {
                    recorded.or(changed)
                };
                let (Some(state), Some(at)) = (state, at) else {
                    return Err(unexpected(&format!("a history point of {id} needs a state and a time"), row));
                };
                points.push(HistoryPoint { at, state: state.to_string() });
            }
            Ok(EntityHistory { entity_id: id.clone(), points })
        })
        .collect()
}

// --- Statistics --------------------------------------------------------------

/// What `recorder/get_statistics_metadata` says of one statistic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatisticMeta {
    pub kind: StatisticKind,
    pub unit: Option<String>,
}

/// The result of `recorder/get_statistics_metadata`, by statistic id.
/// Statistics with neither a mean nor a sum are left out.
pub(crate) fn parse_statistics_metadata(v: &Value) -> Result<HashMap<String, StatisticMeta>, HomeError> {
    let list =
        v.as_array().ok_or_else(|| unexpected("recorder/get_statistics_metadata should answer with a list", v))?;
    let mut out = HashMap::new();
    for item in list {
        let Some(obj) = item.as_object() else { continue };
        let Some(id) = str_field(obj, "statistic_id") else { continue };
        let has_sum = obj.get("has_sum").and_then(Value::as_bool).unwrap_or(false);
        // `has_mean` gave way to `mean_type` (0: none, 1: arithmetic, 2: circular).
        let has_mean = obj.get("has_mean").and_then(Value::as_bool).unwrap_or(false)
            || obj.get("mean_type").and_then(Value::as_u64).is_some_and(|t| t > 0);
        let kind = if has_sum {
            StatisticKind::Total
        } else if has_mean {
            StatisticKind::Measurement
        } else {
            continue;
        };
        let unit = string_field(obj, "statistics_unit_of_measurement")
            .or_else(|| string_field(obj, "display_unit_of_measurement"));
        out.insert(id.to_string(), StatisticMeta { kind, unit });
    }
    Ok(out)
}

fn float(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64).filter(|v| v.is_finite())
}

/// The result of `recorder/statistics_during_period` (`start` / `end` in
/// milliseconds), for the ids that have metadata, in the order asked.
pub(crate) fn parse_statistics(
    v: &Value,
    statistic_ids: &[String],
    metadata: &HashMap<String, StatisticMeta>,
) -> Result<Vec<EntityStatistics>, HomeError> {
    let by_id =
        v.as_object().ok_or_else(|| unexpected("recorder/statistics_during_period should answer with an object", v))?;
    let mut out = Vec::new();
    for id in statistic_ids {
        let Some(meta) = metadata.get(id) else { continue };
        let rows = match by_id.get(id) {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(rows)) => rows.as_slice(),
            Some(other) => return Err(unexpected(&format!("the statistics of {id} should be a list"), other)),
        };
        let mut parsed = Vec::with_capacity(rows.len());
        for row in rows {
            let obj = row.as_object().ok_or_else(|| unexpected(&format!("a statistics row of {id}"), row))?;
            let (Some(start), Some(end)) =
                (obj.get("start").and_then(Value::as_f64), obj.get("end").and_then(Value::as_f64))
            else {
                return Err(unexpected(&format!("a statistics row of {id} needs a start and an end"), row));
            };
            let (mean, min, max, state, sum) = match meta.kind {
                StatisticKind::Measurement => (float(obj, "mean"), float(obj, "min"), float(obj, "max"), None, None),
                StatisticKind::Total => (None, None, None, float(obj, "state"), float(obj, "sum")),
            };
            parsed.push(StatisticsRow { start: start as i64, end: end as i64, mean, min, max, state, sum });
        }
        parsed.sort_by_key(|r| r.start);
        out.push(EntityStatistics { statistic_id: id.clone(), kind: meta.kind, unit: meta.unit.clone(), rows: parsed });
    }
    Ok(out)
}

// --- Logbook -----------------------------------------------------------------

/// What the logbook says when it gives only the new state.
fn state_message(state: &str) -> String {
    match state {
        "on" => "turned on".into(),
        "off" => "turned off".into(),
        "unavailable" => "became unavailable".into(),
        other => format!("changed to {other}"),
    }
}

/// What caused a logbook entry, from its `context_*` fields.
fn context_of(obj: &Map<String, Value>) -> Option<String> {
    let named = |id_key: &str, name_key: &str| string_field(obj, name_key).or_else(|| string_field(obj, id_key));
    match str_field(obj, "context_event_type") {
        Some("call_service") => {
            let domain = str_field(obj, "context_domain").unwrap_or("?");
            let service = str_field(obj, "context_service").unwrap_or("?");
            Some(format!("service {domain}.{service}"))
        }
        Some("automation_triggered") => named("context_entity_id", "context_name").map(|n| format!("automation {n}")),
        Some("script_started") => named("context_entity_id", "context_name").map(|n| format!("script {n}")),
        Some(other) => Some(match named("context_entity_id", "context_entity_id_name") {
            Some(n) => format!("{other} ({n})"),
            None => other.to_string(),
        }),
        None => named("context_entity_id", "context_entity_id_name").map(|n| format!("a change of {n}")),
    }
}

/// The result of `logbook/get_events`, oldest first. State changes come
/// without a message or name; `name_of` supplies the friendly name.
pub(crate) fn parse_logbook(
    v: &Value,
    name_of: impl Fn(&str) -> Option<String>,
) -> Result<Vec<LogbookEntry>, HomeError> {
    let list = v.as_array().ok_or_else(|| unexpected("logbook/get_events should answer with a list", v))?;
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let obj = item.as_object().ok_or_else(|| unexpected("a logbook entry", item))?;
        let when = time_field(obj, "when").ok_or_else(|| unexpected("a logbook entry needs `when`", item))?;
        let entity_id = string_field(obj, "entity_id");
        let state = string_field(obj, "state");
        let domain = string_field(obj, "domain")
            .or_else(|| entity_id.as_deref().and_then(|e| e.split_once('.')).map(|(d, _)| d.to_string()));
        let name = string_field(obj, "name")
            .or_else(|| entity_id.as_deref().and_then(&name_of))
            .or_else(|| entity_id.clone())
            .unwrap_or_else(|| "Home Assistant".into());
        let message = string_field(obj, "message").or_else(|| state.as_deref().map(state_message)).unwrap_or_default();
        out.push(LogbookEntry { when, name, message, entity_id, domain, state, context: context_of(obj) });
    }
    out.sort_by_key(|e| e.when);
    Ok(out)
}

// --- System log --------------------------------------------------------------

/// The result of `system_log/list`, newest first.
pub(crate) fn parse_system_log(v: &Value) -> Result<Vec<LogEntry>, HomeError> {
    let list = v.as_array().ok_or_else(|| unexpected("system_log/list should answer with a list", v))?;
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let obj = item.as_object().ok_or_else(|| unexpected("a system log entry", item))?;
        let level = str_field(obj, "level").and_then(LogLevel::parse).unwrap_or(LogLevel::Info);
        let message = match obj.get("message") {
            // The last few distinct messages from one place, newest last.
            Some(Value::Array(messages)) => {
                messages.iter().rev().find_map(Value::as_str).unwrap_or_default().to_string()
            }
            Some(Value::String(m)) => m.clone(),
            _ => String::new(),
        };
        let source = match obj.get("source") {
            Some(Value::Array(parts)) => match (parts.first().and_then(Value::as_str), parts.get(1)) {
                (Some(file), Some(line)) => format!("{file}:{line}"),
                (Some(file), None) => file.to_string(),
                _ => String::new(),
            },
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let timestamp = time_field(obj, "timestamp").unwrap_or_default();
        out.push(LogEntry {
            level,
            logger: string_field(obj, "name").unwrap_or_default(),
            source,
            message,
            count: obj.get("count").and_then(Value::as_u64).map_or(1, |c| u32::try_from(c).unwrap_or(u32::MAX)),
            first_occurred: time_field(obj, "first_occurred").unwrap_or(timestamp),
            timestamp,
            exception: string_field(obj, "exception"),
        });
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    Ok(out)
}

// --- Config check ------------------------------------------------------------

/// The body of `POST /api/config/core/check_config`:
/// `{"result": "valid"|"invalid", "errors": str|null, "warnings": str|null}`.
pub(crate) fn parse_check_config(v: &Value) -> Result<ConfigCheck, HomeError> {
    let obj = v.as_object().ok_or_else(|| unexpected("the configuration check should answer with an object", v))?;
    let valid = match str_field(obj, "result") {
        Some("valid") => true,
        Some("invalid") => false,
        _ => return Err(unexpected("the configuration check should say `valid` or `invalid`", v)),
    };
    let list = |key: &str| -> Vec<String> {
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
            _ => Vec::new(),
        }
    };
    Ok(ConfigCheck { valid, errors: list("errors"), warnings: list("warnings") })
}
