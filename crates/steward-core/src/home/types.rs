//! The things a home is made of, shaped after Home Assistant's APIs so the
//! Home Assistant client maps onto them field by field and the demo home
//! behaves like the real thing.
//!
//! Times are milliseconds since the Unix epoch throughout.

use serde::{Deserialize, Serialize};

/// The state an entity has when its device or integration cannot be reached.
pub const UNAVAILABLE: &str = "unavailable";
/// The state an entity has before its first reading.
pub const UNKNOWN: &str = "unknown";

/// One entity: its place in the catalog (entity and area registries) and its
/// current state object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// `domain.object_id`, e.g. `light.kitchen_ceiling`.
    pub entity_id: String,
    /// The part of the id before the dot.
    pub domain: String,
    /// The friendly name people see.
    pub name: String,
    /// Other names people use for it ("ceiling light").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The state string: `on`, `off`, `21.5`, `locked`, `unavailable` …
    pub state: String,
    /// The state attributes, a JSON object (`brightness`, `unit_of_measurement` …).
    pub attributes: serde_json::Value,
    /// When the state string last changed.
    pub last_changed: i64,
    /// When the state or any attribute last changed.
    pub last_updated: i64,
    /// False when the state is `unavailable`: the device cannot be reached.
    pub available: bool,
}

impl Entity {
    pub fn attribute(&self, key: &str) -> Option<&serde_json::Value> {
        self.attributes.get(key).filter(|v| !v.is_null())
    }

    fn attribute_str(&self, key: &str) -> Option<&str> {
        self.attribute(key).and_then(|v| v.as_str())
    }

    pub fn unit(&self) -> Option<&str> {
        self.attribute_str("unit_of_measurement")
    }

    pub fn device_class(&self) -> Option<&str> {
        self.attribute_str("device_class")
    }

    /// `measurement`, `total` or `total_increasing` for sensors that keep
    /// long-term statistics.
    pub fn state_class(&self) -> Option<&str> {
        self.attribute_str("state_class")
    }

    /// The state as a number, when it is one.
    pub fn numeric_state(&self) -> Option<f64> {
        parse_number(&self.state)
    }
}

/// A state string as a finite number (`"21.5"` → 21.5); `None` for `on`,
/// `unavailable` and the like.
pub fn parse_number(state: &str) -> Option<f64> {
    state.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The domain of an entity id (`light` for `light.kitchen`), or `None` when
/// the id is not of the form `domain.object_id`.
pub fn domain_of(entity_id: &str) -> Option<&str> {
    let (domain, object) = entity_id.split_once('.')?;
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    (valid(domain) && valid(object)).then_some(domain)
}

/// An area (room or zone) from the area registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    pub area_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
}

/// A physical or logical device from the device registry; it holds entities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_id: Option<String>,
}

/// A service call (`light.turn_on` on some entities with some data), as
/// `POST /api/services/<domain>/<service>` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCall {
    pub domain: String,
    pub service: String,
    pub entity_ids: Vec<String>,
    /// Service data, a JSON object (`{"brightness_pct": 40}`); `null` for none.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl ServiceCall {
    pub fn new(domain: impl Into<String>, service: impl Into<String>, entity_ids: Vec<String>) -> Self {
        ServiceCall { domain: domain.into(), service: service.into(), entity_ids, data: serde_json::Value::Null }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// `domain.service`, as people write it.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.domain, self.service)
    }
}

/// A service a domain offers and the data fields it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDescription {
    pub domain: String,
    pub service: String,
    pub description: String,
    /// Names of the data fields the service accepts.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// One recorded state of an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// When the entity took this state.
    pub at: i64,
    pub state: String,
}

/// The recorded states of one entity over a period, oldest first. Like
/// Home Assistant's `history/history_during_period`, the first point is the
/// state the entity was in when the period started (dated at the start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityHistory {
    pub entity_id: String,
    pub points: Vec<HistoryPoint>,
}

/// The length of one long-term statistics row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatisticsPeriod {
    Hour,
    Day,
}

impl StatisticsPeriod {
    pub fn millis(self) -> i64 {
        match self {
            StatisticsPeriod::Hour => 3_600_000,
            StatisticsPeriod::Day => 86_400_000,
        }
    }
}

/// Which columns of a statistics row carry values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatisticKind {
    /// A measurement (temperature, power): mean, min and max.
    Measurement,
    /// A meter (`total` / `total_increasing`, e.g. energy): state and sum.
    Total,
}

/// One long-term statistics row, as the recorder compiles them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatisticsRow {
    pub start: i64,
    pub end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// For totals: the meter reading at the end of the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<f64>,
    /// For totals: the amount accumulated since statistics began (meter
    /// resets do not lower it). The difference of two rows' sums is the
    /// consumption between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
}

/// The long-term statistics of one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityStatistics {
    pub statistic_id: String,
    pub kind: StatisticKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Oldest first. A period in which nothing was recorded has no row.
    pub rows: Vec<StatisticsRow>,
}

/// One logbook line: what happened to what, and why when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogbookEntry {
    pub when: i64,
    /// The entity's friendly name, or what the entry is about.
    pub name: String,
    /// `turned on`, `changed to 21.5`, `triggered by time` …
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// What caused it: `service light.turn_on`, `automation Evening lights` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }

    /// Parses `warning`, `WARNING` or `warn`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warning" | "warn" => Some(LogLevel::Warning),
            "error" => Some(LogLevel::Error),
            "critical" | "fatal" => Some(LogLevel::Critical),
            _ => None,
        }
    }
}

/// One entry of Home Assistant's system log (`system_log/list`): repeated
/// messages from the same place are folded into one entry with a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub level: LogLevel,
    /// The logger, e.g. `homeassistant.components.zha`.
    pub logger: String,
    /// The source file and line that logged it.
    pub source: String,
    pub message: String,
    /// How many times it was logged.
    pub count: u32,
    pub first_occurred: i64,
    /// The last time it was logged.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

/// The outcome of a configuration check.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigCheck {
    pub valid: bool,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// An automation, as the automation editor stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Automation {
    /// The automation's unique id (its config `id`).
    pub id: String,
    pub alias: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The `automation.*` entity that represents it, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered: Option<i64>,
    /// The whole configuration: `alias`, `triggers`, `conditions`,
    /// `actions`, `mode` … (older configs say `trigger` / `action`).
    pub config: serde_json::Value,
}

/// A change of an entity's state, as the `state_changed` event reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChanged {
    pub entity_id: String,
    /// `None` when the entity is new.
    pub old: Option<Entity>,
    /// `None` when the entity was removed.
    pub new: Option<Entity>,
}
