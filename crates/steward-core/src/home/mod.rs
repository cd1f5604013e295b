//! The home: entities, their states and history, service calls,
//! automations and the logs of the system that runs them.
//!
//! The engine sees a home only through the [`Home`] trait. Two
//! implementations exist: the Home Assistant client (the WebSocket API for
//! states, registries, service calls, history, statistics, logs and live
//! state; REST for the config check, the error log and automation config) and the demo
//! home, a simulated house used when no Home Assistant is configured. Both
//! live in `steward-integrations`; the trait's shapes follow Home
//! Assistant's APIs so the client is a thin translation.
//!
//! [`tools`] holds the agent tools built on the trait.

mod analysis;
pub mod automation_check;
pub mod catalog;
pub mod energy;
mod search;
pub mod summary;
pub mod tools;
mod types;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::tool::ToolError;

pub use analysis::{find_flatlines, find_gaps, typical_spacing, Flatline, Gap, GapKind};
pub use search::{normalize, search_entities, SearchHit};
pub use types::{
    domain_of, parse_number, Area, Automation, ConfigCheck, Device, Entity, EntityHistory, EntityStatistics,
    HistoryPoint, LogEntry, LogLevel, LogbookEntry, ServiceCall, ServiceDescription, StateChanged, StatisticKind,
    StatisticsPeriod, StatisticsRow, UNAVAILABLE, UNKNOWN,
};

/// What can go wrong talking to a home. Every message says what is wrong
/// and what to do about it, since people (and models) read them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HomeError {
    /// The access token was refused.
    #[error(
        "Home Assistant refused the access token ({0}). Create a long-lived access token on your \
Home Assistant profile page (Security tab) and set HA_TOKEN to it."
    )]
    Unauthorized(String),
    /// Nothing answered at the configured address.
    #[error(
        "cannot reach Home Assistant at {url}: {reason}. Check that HA_URL is right and that Home \
Assistant is running and reachable from this machine."
    )]
    Unreachable { url: String, reason: String },
    /// An entity, area, automation … that does not exist.
    #[error(
        "{what} does not exist in this home. Check the spelling, or look up what exists (search the \
entities, list the automations) and use the exact id."
    )]
    NotFound { what: String },
    /// The request itself is wrong: a service the domain does not offer,
    /// data out of range, a target that cannot be controlled now.
    #[error("cannot do {what}: {why}")]
    InvalidRequest { what: String, why: String },
    /// An answer that does not have the expected shape.
    #[error(
        "Home Assistant sent a reply Steward cannot read ({0}). Check that HA_URL points at Home \
Assistant itself, not at a proxy or another service, and that Home Assistant is up to date."
    )]
    UnexpectedReply(String),
    /// No answer in time.
    #[error(
        "{what} got no answer from Home Assistant within {}s. The house may be busy or its network \
slow; try again, and check Home Assistant's load if it keeps happening.",
        after.as_secs_f64()
    )]
    Timeout { what: String, after: Duration },
}

impl HomeError {
    pub fn not_found(what: impl Into<String>) -> Self {
        HomeError::NotFound { what: what.into() }
    }

    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        HomeError::InvalidRequest { what: what.into(), why: why.into() }
    }

    /// Whether trying the same request again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            HomeError::Unreachable { .. } | HomeError::Timeout { .. } => true,
            HomeError::Unauthorized(_)
            | HomeError::NotFound { .. }
            | HomeError::InvalidRequest { .. }
            | HomeError::UnexpectedReply(_) => false,
        }
    }
}

impl From<HomeError> for ToolError {
    /// A missing entity or a wrong request is the caller's to fix; the rest
    /// are failures of the house or the connection.
    fn from(e: HomeError) -> Self {
        match e {
            HomeError::NotFound { .. } | HomeError::InvalidRequest { .. } => ToolError::InvalidArguments(e.to_string()),
            HomeError::Unauthorized(_)
            | HomeError::Unreachable { .. }
            | HomeError::UnexpectedReply(_)
            | HomeError::Timeout { .. } => ToolError::Failed(e.to_string()),
        }
    }
}

/// A home the engine can see and act on.
///
/// Implementations are cheap to share (`Arc<dyn Home>`) and safe to call
/// from many tasks at once.
#[async_trait]
pub trait Home: Send + Sync + 'static {
    /// What to call this home in messages (`Home Assistant at
    /// http://ha.local:8123`, `demo home`).
    fn name(&self) -> &str;

    /// True for the built-in simulated house.
    fn is_demo(&self) -> bool;

    /// Every entity with its current state.
    async fn entities(&self) -> Result<Vec<Entity>, HomeError>;

    /// One entity; [`HomeError::NotFound`] when there is none by that id.
    async fn entity(&self, entity_id: &str) -> Result<Entity, HomeError>;

    async fn areas(&self) -> Result<Vec<Area>, HomeError>;

    async fn devices(&self) -> Result<Vec<Device>, HomeError>;

    /// The services each domain offers (`light.turn_on` …) with their fields.
    async fn services(&self) -> Result<Vec<ServiceDescription>, HomeError>;

    /// Calls a service and returns the targets' states after the call. A
    /// call that cannot be carried out (unknown entity or service, bad data,
    /// an unavailable target) changes nothing and fails with
    /// [`HomeError::NotFound`] or [`HomeError::InvalidRequest`].
    async fn call_service(&self, call: &ServiceCall) -> Result<Vec<Entity>, HomeError>;

    /// Recorded states of `entity_ids` between `start_ms` and `end_ms`, one
    /// [`EntityHistory`] per id in the order asked.
    async fn history(&self, entity_ids: &[String], start_ms: i64, end_ms: i64)
        -> Result<Vec<EntityHistory>, HomeError>;

    /// Long-term statistics (the recorder's hourly or daily rows) of the
    /// given sensors. Ids that keep no statistics are left out.
    async fn statistics(
        &self,
        statistic_ids: &[String],
        start_ms: i64,
        end_ms: i64,
        period: StatisticsPeriod,
    ) -> Result<Vec<EntityStatistics>, HomeError>;

    /// Logbook entries between two times, oldest first, for one entity or all.
    async fn logbook(
        &self,
        start_ms: i64,
        end_ms: i64,
        entity_id: Option<&str>,
    ) -> Result<Vec<LogbookEntry>, HomeError>;

    /// The system log (warnings and errors of the house's software), newest first.
    async fn logs(&self) -> Result<Vec<LogEntry>, HomeError>;

    /// Checks the configuration, as "Check configuration" does in Home Assistant.
    async fn check_config(&self) -> Result<ConfigCheck, HomeError>;

    async fn automations(&self) -> Result<Vec<Automation>, HomeError>;

    async fn automation(&self, id: &str) -> Result<Automation, HomeError>;

    /// Creates or replaces the automation with this id. `config` is an
    /// object with at least one trigger and one action.
    async fn upsert_automation(&self, id: &str, config: serde_json::Value) -> Result<Automation, HomeError>;

    async fn delete_automation(&self, id: &str) -> Result<(), HomeError>;

    /// The house's own verdict on an automation's triggers, conditions and
    /// actions, without saving anything: one message per part it rejects.
    /// Homes without a validator of their own accept everything here (the
    /// structural checks in [`automation_check`] still apply).
    async fn validate_automation(&self, config: &serde_json::Value) -> Result<Vec<String>, HomeError> {
        let _ = config;
        Ok(Vec::new())
    }

    /// Puts entities back in the states and attributes a snapshot holds
    /// ([`crate::snapshots`]), announcing each change; returns how many
    /// changed. Entities the home no longer has are skipped. Only the demo
    /// home can: a real house changes only through approved service calls,
    /// so homes refuse by default.
    async fn restore_states(&self, entities: &[Entity]) -> Result<usize, HomeError> {
        let _ = entities;
        Err(HomeError::invalid(
            "restoring entity states",
            format!("{} changes only through approved service calls", self.name()),
        ))
    }

    /// Every state change from now on. A receiver that falls behind skips
    /// the oldest changes (and is told so by `RecvError::Lagged`).
    fn subscribe(&self) -> broadcast::Receiver<StateChanged>;
}
