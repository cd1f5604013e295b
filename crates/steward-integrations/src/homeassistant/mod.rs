//! The Home Assistant client: the [`Home`] trait over a real Home Assistant.
//!
//! Configured by a base URL (`HA_URL`, e.g. `http://homeassistant.local:8123`)
//! and a long-lived access token (`HA_TOKEN`, made on the user's profile
//! page). Almost everything goes over one WebSocket connection
//! (`/api/websocket`): the states, kept in a live cache by subscribing to
//! `state_changed`; the registries (areas, floors, labels, devices, entity
//! entries), reloaded when Home Assistant says they changed; service calls;
//! history, statistics, logbook and system log. REST is used where it is the
//! documented way: the configuration check, the error log and the automation
//! editor's config store.
//!
//! The connection is kept up by a supervisor task: when Home Assistant
//! restarts or the socket drops, it reconnects with capped exponential
//! backoff, subscribes again and re-fetches every state, telling subscribers
//! of whatever changed while it was away. Calls made meanwhile wait a little
//! for the reconnection, then fail as [`HomeError::Unreachable`].
//!
//! The token is never logged, never put in an error, and hidden from
//! `Debug` output.

mod automations;
mod catalog;
mod connection;
mod rest;
mod shared;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use steward_core::home::{
    Area, Automation, ConfigCheck, Device, Entity, EntityHistory, EntityStatistics, Home, HomeError, LogEntry,
    LogbookEntry, ServiceCall, ServiceDescription, StateChanged, StatisticsPeriod, UNAVAILABLE,
};
use steward_core::Clock;
use tokio::sync::{broadcast, watch};

pub use catalog::Label;
pub use wire::{format_time, parse_time};

use shared::{Endpoint, Link, Shared, Token};
use wire::{
    parse_check_config, parse_history, parse_logbook, parse_services, parse_statistics, parse_statistics_metadata,
    parse_system_log, ResponseSupport,
};

/// Timeouts and limits of the client. The defaults suit a house on the
/// local network.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Opening the socket and authenticating.
    pub connect_timeout: Duration,
    /// One command or REST request.
    pub request_timeout: Duration,
    /// How long a call waits for a lost connection to come back before it
    /// fails as unreachable.
    pub reconnect_wait: Duration,
    /// The first wait before reconnecting; it doubles with each failure…
    pub backoff_initial: Duration,
    /// …up to this.
    pub backoff_max: Duration,
    /// A quiet connection is pinged this often, and given up after two
    /// silent intervals (a half-open socket would otherwise hang forever).
    pub heartbeat: Duration,
    /// How long saving or deleting an automation waits for Home Assistant
    /// to load or unload it.
    pub automation_timeout: Duration,
    /// State changes a slow subscriber may fall behind by before it skips.
    pub event_buffer: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            reconnect_wait: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            heartbeat: Duration::from_secs(30),
            automation_timeout: Duration::from_secs(20),
            event_buffer: 1024,
        }
    }
}

/// What a service call did: the targets' states after it, and the data the
/// service answered with (weather forecasts, calendar events …), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceReply {
    pub states: Vec<Entity>,
    pub response: Option<Value>,
}

/// A connected Home Assistant. See the module documentation.
pub struct HomeAssistant {
    shared: Arc<Shared>,
    name: String,
    clock: Arc<dyn Clock>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for HomeAssistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeAssistant")
            .field("url", &self.shared.endpoint.display)
            .field("token", &self.shared.token)
            .finish_non_exhaustive()
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // Dropping the connection ends its tasks at once.
        self.shared.link.send_replace(Link::Closed);
    }
}

/// Identifiers of domains and services: `light`, `turn_on`.
fn valid_slug(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl HomeAssistant {
    /// Connects to Home Assistant at `url` with the long-lived access token
    /// `token`, authenticates, subscribes to state changes and loads the
    /// states and registries. Fails with [`HomeError::Unauthorized`] for a
    /// refused token, [`HomeError::Unreachable`] when nothing answers,
    /// [`HomeError::UnexpectedReply`] when something that is not Home
    /// Assistant answers, and [`HomeError::Timeout`] when it does not
    /// answer in time.
    pub async fn connect(url: &str, token: &str, clock: Arc<dyn Clock>) -> Result<HomeAssistant, HomeError> {
        Self::connect_with(url, token, clock, Options::default()).await
    }

    /// [`connect`](Self::connect) with other timeouts.
    pub async fn connect_with(
        url: &str,
        token: &str,
        clock: Arc<dyn Clock>,
        options: Options,
    ) -> Result<HomeAssistant, HomeError> {
        let endpoint = Endpoint::parse(url)?;
        if token.trim().is_empty() {
            return Err(HomeError::Unauthorized("HA_TOKEN is empty".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                HomeError::invalid("connecting to Home Assistant", format!("cannot make an HTTP client: {e}"))
            })?;
        let shared = Arc::new(Shared::new(endpoint, Token::new(token), options, http));
        let first = shared.establish(false).await?;
        shared.link.send_replace(Link::Up(first.clone()));
        let (shutdown, stop) = watch::channel(false);
        tokio::spawn(shared::supervise(shared.clone(), first, stop));
        let name = format!("Home Assistant at {}", shared.endpoint.display);
        Ok(HomeAssistant { shared, name, clock, shutdown })
    }

    /// The address it was configured with.
    pub fn url(&self) -> &str {
        &self.shared.endpoint.display
    }

    /// Whether the WebSocket connection is up now.
    pub fn is_connected(&self) -> bool {
        matches!(&*self.shared.link.borrow(), Link::Up(_))
    }

    /// Sends one WebSocket command (`{"type": …, …}`, without an id) and
    /// returns its result: for what the [`Home`] trait does not cover.
    pub async fn command(&self, command: Value) -> Result<Value, HomeError> {
        if command.get("type").and_then(Value::as_str).is_none() {
            return Err(HomeError::invalid("a WebSocket command", "it needs a `type`"));
        }
        self.shared.call(command).await
    }

    /// The label registry.
    pub async fn labels(&self) -> Result<Vec<Label>, HomeError> {
        self.shared.fresh_registries().await?;
        Ok(self.shared.catalog().labels.clone())
    }

    /// The label ids of an entity.
    pub async fn entity_labels(&self, entity_id: &str) -> Result<Vec<String>, HomeError> {
        self.shared.fresh_registries().await?;
        if !self.shared.has_entity(entity_id) {
            return Err(HomeError::not_found(format!("entity `{entity_id}`")));
        }
        Ok(self.shared.catalog().entries.get(entity_id).map(|e| e.labels.clone()).unwrap_or_default())
    }

    /// The end of Home Assistant's log file (`GET /api/error_log`), at most
    /// `max_bytes` of it.
    pub async fn error_log(&self, max_bytes: usize) -> Result<String, HomeError> {
        let what = "reading Home Assistant's log file";
        let reply =
            self.shared.rest(Method::GET, "api/error_log", None, what, self.shared.options.request_timeout).await?;
        if reply.status != StatusCode::OK {
            return Err(HomeError::UnexpectedReply(format!("{what}: HTTP {}: {}", reply.status, reply.message())));
        }
        let body = reply.body;
        let mut cut = body.len().saturating_sub(max_bytes);
        while !body.is_char_boundary(cut) {
            cut += 1;
        }
        Ok(body[cut..].to_string())
    }

    /// `automation.reload`: reads every automation from the configuration again.
    pub async fn reload_automations(&self) -> Result<(), HomeError> {
        self.shared.reload_automations().await
    }

    async fn response_support(&self, name: &str) -> Result<Option<ResponseSupport>, HomeError> {
        let known = self.shared.responses.read().ok().and_then(|r| r.get(name).copied());
        if known.is_some() {
            return Ok(known);
        }
        // A service registered since the last look (or the first look).
        self.services().await?;
        Ok(self.shared.responses.read().ok().and_then(|r| r.get(name).copied()))
    }

    /// Calls a service and returns the targets' states afterwards together
    /// with the data the service answered with. Services that can answer
    /// are asked to (`return_response`).
    pub async fn call_service_with_response(&self, call: &ServiceCall) -> Result<ServiceReply, HomeError> {
        let name = call.full_name();
        if !valid_slug(&call.domain) || !valid_slug(&call.service) {
            return Err(HomeError::invalid(
                name,
                "a service is named `domain.service` in lower case, like light.turn_on",
            ));
        }
        for id in &call.entity_ids {
            let Some(entity) = self.shared.entity(id) else {
                return Err(HomeError::not_found(format!("entity `{id}`")));
            };
            if entity.state == UNAVAILABLE {
                return Err(HomeError::invalid(
                    format!("{name} on {id}"),
                    format!(
                        "{} is unavailable: its device cannot be reached, so it cannot be controlled. Check the \
device's power, battery and connection, then try again",
                        entity.name
                    ),
                ));
            }
        }
        let data = match &call.data {
            Value::Null => Value::Object(Map::new()),
            Value::Object(map) => Value::Object(map.clone()),
            other => return Err(HomeError::invalid(name, format!("service data must be a JSON object, not {other}"))),
        };
        let Some(support) = self.response_support(&name).await? else {
            return Err(HomeError::invalid(
                name,
                format!(
                    "Home Assistant has no such service; list the services of `{}` to see what it offers",
                    call.domain
                ),
            ));
        };
        let mut payload =
            json!({"type": "call_service", "domain": call.domain, "service": call.service, "service_data": data});
        if !call.entity_ids.is_empty() {
            payload["target"] = json!({"entity_id": call.entity_ids});
        }
        if support != ResponseSupport::None {
            payload["return_response"] = json!(true);
        }
        let result = self.shared.command(payload).await.map_err(|e| e.into_home(&name))?;
        // The result comes after the state changes the call caused (one
        // socket, in order), so the cache already holds the new states.
        let states = call.entity_ids.iter().filter_map(|id| self.shared.entity(id)).collect();
        let response = result.get("response").filter(|r| !r.is_null()).cloned();
        Ok(ServiceReply { states, response })
    }

    fn check_entities(&self, entity_ids: &[String]) -> Result<(), HomeError> {
        match entity_ids.iter().find(|id| !self.shared.has_entity(id)) {
            Some(id) => Err(HomeError::not_found(format!("entity `{id}`"))),
            None => Ok(()),
        }
    }

    /// The current time, by the clock the client was given.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

#[async_trait]
impl Home for HomeAssistant {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_demo(&self) -> bool {
        false
    }

    async fn entities(&self) -> Result<Vec<Entity>, HomeError> {
        self.shared.live().await?;
        self.shared.fresh_registries().await?;
        Ok(self.shared.entities())
    }

    async fn entity(&self, entity_id: &str) -> Result<Entity, HomeError> {
        self.shared.live().await?;
        self.shared.fresh_registries().await?;
        self.shared.entity(entity_id).ok_or_else(|| HomeError::not_found(format!("entity `{entity_id}`")))
    }

    async fn areas(&self) -> Result<Vec<Area>, HomeError> {
        self.shared.fresh_registries().await?;
        Ok(self.shared.catalog().areas.clone())
    }

    async fn devices(&self) -> Result<Vec<Device>, HomeError> {
        self.shared.fresh_registries().await?;
        Ok(self.shared.catalog().devices.clone())
    }

    async fn services(&self) -> Result<Vec<ServiceDescription>, HomeError> {
        let result = self.shared.call(json!({"type": "get_services"})).await?;
        let (descriptions, responses) = parse_services(&result)?;
        if let Ok(mut known) = self.shared.responses.write() {
            *known = responses;
        }
        Ok(descriptions)
    }

    async fn call_service(&self, call: &ServiceCall) -> Result<Vec<Entity>, HomeError> {
        Ok(self.call_service_with_response(call).await?.states)
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
        self.shared.live().await?;
        self.check_entities(entity_ids)?;
        if entity_ids.is_empty() {
            return Ok(Vec::new());
        }
        let result = self
            .shared
            .call(json!({
                "type": "history/history_during_period",
                "start_time": format_time(start_ms),
                "end_time": format_time(end_ms),
                "entity_ids": entity_ids,
                "include_start_time_state": true,
                "significant_changes_only": false,
                "minimal_response": true,
                "no_attributes": true,
            }))
            .await?;
        parse_history(&result, entity_ids, start_ms)
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
        if statistic_ids.is_empty() {
            return Ok(Vec::new());
        }
        let metadata = self
            .shared
            .call(json!({"type": "recorder/get_statistics_metadata", "statistic_ids": statistic_ids}))
            .await?;
        let metadata = parse_statistics_metadata(&metadata)?;
        let kept: Vec<&String> = statistic_ids.iter().filter(|id| metadata.contains_key(*id)).collect();
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let period = match period {
            StatisticsPeriod::Hour => "hour",
            StatisticsPeriod::Day => "day",
        };
        let result = self
            .shared
            .call(json!({
                "type": "recorder/statistics_during_period",
                "start_time": format_time(start_ms),
                "end_time": format_time(end_ms),
                "statistic_ids": kept,
                "period": period,
                "types": ["mean", "min", "max", "state", "sum"],
            }))
            .await?;
        parse_statistics(&result, statistic_ids, &metadata)
    }

    async fn logbook(
        &self,
        start_ms: i64,
        end_ms: i64,
        entity_id: Option<&str>,
    ) -> Result<Vec<LogbookEntry>, HomeError> {
        if start_ms > end_ms {
            return Err(HomeError::invalid("a logbook query", "the start must not be after the end"));
        }
        self.shared.live().await?;
        let mut command = json!({
            "type": "logbook/get_events",
            "start_time": format_time(start_ms),
            "end_time": format_time(end_ms),
        });
        if let Some(id) = entity_id {
            self.check_entities(&[id.to_string()])?;
            command["entity_ids"] = json!([id]);
        }
        let result = self.shared.call(command).await?;
        parse_logbook(&result, |id| self.shared.entity(id).map(|e| e.name))
    }

    async fn logs(&self) -> Result<Vec<LogEntry>, HomeError> {
        let result = self.shared.call(json!({"type": "system_log/list"})).await?;
        parse_system_log(&result)
    }

    async fn check_config(&self) -> Result<ConfigCheck, HomeError> {
        let what = "checking Home Assistant's configuration";
        // Checking reads and validates every file: give it more time.
        let timeout = self.shared.options.request_timeout * 2;
        let reply = self.shared.rest(Method::POST, "api/config/core/check_config", None, what, timeout).await?;
        if reply.status != StatusCode::OK {
            return Err(HomeError::UnexpectedReply(format!("{what}: HTTP {}: {}", reply.status, reply.message())));
        }
        parse_check_config(&reply.json(what)?)
    }

    async fn automations(&self) -> Result<Vec<Automation>, HomeError> {
        self.shared.live().await?;
        self.shared.automations().await
    }

    async fn automation(&self, id: &str) -> Result<Automation, HomeError> {
        self.shared.live().await?;
        self.shared.automation(id).await
    }

    async fn upsert_automation(&self, id: &str, config: Value) -> Result<Automation, HomeError> {
        self.shared.upsert_automation(id, config).await
    }

    async fn delete_automation(&self, id: &str) -> Result<(), HomeError> {
        self.shared.live().await?;
        self.shared.delete_automation(id).await
    }

    async fn validate_automation(&self, config: &Value) -> Result<Vec<String>, HomeError> {
        self.shared.live().await?;
        self.shared.validate_automation(config).await
    }

    fn subscribe(&self) -> broadcast::Receiver<StateChanged> {
        self.shared.events.subscribe()
    }
}
