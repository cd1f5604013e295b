//! What the client, its connection tasks and its supervisor share: the
//! address and token, the live state cache, the registries, and the current
//! connection. The supervisor keeps a connection up: when one drops it
//! reconnects with capped exponential backoff, re-subscribes and re-fetches
//! the states so the cache catches up with what changed meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use reqwest::Url;
use serde_json::{json, Value};
use steward_core::home::{Entity, HomeError, StateChanged};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::catalog::{Catalog, Registries};
use super::connection::{CallError, Connection};
use super::wire::{parse_state, RawState, ResponseSupport};
use super::Options;

/// The events the client follows on every connection.
const SUBSCRIBED_EVENTS: &[&str] = &[
    "state_changed",
    "entity_registry_updated",
    "device_registry_updated",
    "area_registry_updated",
    "floor_registry_updated",
    "label_registry_updated",
];

/// The access token. It is sent in the auth message and the
/// `Authorization` header, and nowhere else: not in errors, not in logs,
/// not in `Debug` output.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    pub(crate) fn new(token: &str) -> Token {
        Token(token.trim().to_string())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// Where Home Assistant is.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The base URL, ending in `/` (`http://ha.local:8123/`).
    pub base: Url,
    /// `ws(s)://…/api/websocket`.
    pub ws: Url,
    /// The address as people wrote it, for messages.
    pub display: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Endpoint, HomeError> {
        let display = url.trim().trim_end_matches('/').to_string();
        let invalid = |why: String| HomeError::invalid("connecting to Home Assistant", why);
        let mut base = Url::parse(&display).map_err(|e| {
            invalid(format!("HA_URL `{display}` is not a URL ({e}); write it like http://homeassistant.local:8123"))
        })?;
        let ws_scheme = match base.scheme() {
            "http" => "ws",
            "https" => "wss",
            other => {
                return Err(invalid(format!(
                    "HA_URL `{display}` uses `{other}:`; give Home Assistant's http:// or https:// address"
                )))
            }
        };
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid(format!("HA_URL `{display}` names no host")));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        let mut ws = base.join("api/websocket").map_err(|e| invalid(format!("HA_URL `{display}`: {e}")))?;
        ws.set_scheme(ws_scheme).map_err(|_| invalid(format!("HA_URL `{display}` cannot carry a WebSocket")))?;
        Ok(Endpoint { base, ws, display })
    }
}

/// The state of the link to Home Assistant.
#[derive(Clone)]
pub(crate) enum Link {
    Up(Arc<Connection>),
    /// Reconnecting; why the last attempt (or the connection) failed.
    Down(HomeError),
    /// The client was dropped.
    Closed,
}

pub(crate) struct Shared {
    pub endpoint: Endpoint,
    pub token: Token,
    pub options: Options,
    pub http: reqwest::Client,
    cache: RwLock<HashMap<String, RawState>>,
    catalog: RwLock<Catalog>,
    registries_stale: AtomicBool,
    /// How each service (`domain.service`) answers with data.
    pub responses: RwLock<HashMap<String, ResponseSupport>>,
    pub events: broadcast::Sender<StateChanged>,
    pub link: watch::Sender<Link>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(endpoint: Endpoint, token: Token, options: Options, http: reqwest::Client) -> Shared {
        Shared {
            endpoint,
            token,
            options,
            http,
            cache: RwLock::new(HashMap::new()),
            catalog: RwLock::new(Catalog::default()),
            registries_stale: AtomicBool::new(true),
            responses: RwLock::new(HashMap::new()),
            events: broadcast::channel(options.event_buffer).0,
            link: watch::channel(Link::Down(HomeError::Unreachable {
                url: String::new(),
                reason: "not connected yet".into(),
            }))
            .0,
        }
    }

    // --- The cache -------------------------------------------------------

    pub(crate) fn entity(&self, entity_id: &str) -> Option<Entity> {
        let cache = read(&self.cache);
        let raw = cache.get(entity_id)?;
        Some(read(&self.catalog).entity(raw))
    }

    pub(crate) fn entities(&self) -> Vec<Entity> {
        let cache = read(&self.cache);
        let catalog = read(&self.catalog);
        let mut out: Vec<Entity> = cache.values().map(|raw| catalog.entity(raw)).collect();
        out.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
        out
    }

    /// The raw states of one domain.
    pub(crate) fn states_of(&self, domain: &str) -> Vec<RawState> {
        let prefix = format!("{domain}.");
        let mut out: Vec<RawState> =
            read(&self.cache).values().filter(|s| s.entity_id.starts_with(&prefix)).cloned().collect();
        out.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
        out
    }

    pub(crate) fn has_entity(&self, entity_id: &str) -> bool {
        read(&self.cache).contains_key(entity_id)
    }

    pub(crate) fn catalog(&self) -> RwLockReadGuard<'_, Catalog> {
        read(&self.catalog)
    }

    fn announce(&self, change: StateChanged) {
        // Nobody listening is fine.
        let _ = self.events.send(change);
    }

    /// A `state_changed` event's data: `{entity_id, old_state, new_state}`.
    pub(crate) fn apply_state_changed(&self, data: &Value) {
        let Some(entity_id) = data.get("entity_id").and_then(Value::as_str) else { return };
        let new = data.get("new_state").and_then(parse_state);
        let event_old = data.get("old_state").and_then(parse_state);
        let cached_old = {
            let mut cache = write(&self.cache);
            match &new {
                Some(state) => cache.insert(entity_id.to_string(), state.clone()),
                None => cache.remove(entity_id),
            }
        };
        let catalog = read(&self.catalog);
        if new.is_some() && !catalog.entries.contains_key(entity_id) {
            // A new entity: its registry entry is probably new too.
            self.registries_stale.store(true, Ordering::Relaxed);
        }
        let change = StateChanged {
            entity_id: entity_id.to_string(),
            old: event_old.or(cached_old).map(|s| catalog.entity(&s)),
            new: new.map(|s| catalog.entity(&s)),
        };
        drop(catalog);
        self.announce(change);
    }

    /// Replaces the cache with a fresh `get_states`; with `announce`, tells
    /// subscribers what differs from what the cache held.
    pub(crate) fn replace_states(&self, states: Vec<RawState>, announce: bool) {
        let fresh: HashMap<String, RawState> = states.into_iter().map(|s| (s.entity_id.clone(), s)).collect();
        let old = std::mem::replace(&mut *write(&self.cache), fresh.clone());
        if !announce {
            return;
        }
        let catalog = read(&self.catalog);
        let ids: BTreeSet<&String> = old.keys().chain(fresh.keys()).collect();
        let changes: Vec<StateChanged> = ids
            .into_iter()
            .filter(|id| old.get(*id) != fresh.get(*id))
            .map(|id| StateChanged {
                entity_id: id.clone(),
                old: old.get(id).map(|s| catalog.entity(s)),
                new: fresh.get(id).map(|s| catalog.entity(s)),
            })
            .collect();
        drop(catalog);
        if !changes.is_empty() {
            tracing::info!(changes = changes.len(), "state cache caught up after reconnecting to Home Assistant");
        }
        changes.into_iter().for_each(|c| self.announce(c));
    }

    pub(crate) fn mark_registries_stale(&self) {
        self.registries_stale.store(true, Ordering::Relaxed);
    }

    // --- Commands --------------------------------------------------------

    /// The live connection, waiting up to `reconnect_wait` while the
    /// supervisor reconnects.
    pub(crate) async fn live(&self) -> Result<Arc<Connection>, HomeError> {
        let mut rx = self.link.subscribe();
        let wait = async {
            loop {
                let link = rx.borrow_and_update().clone();
                match link {
                    Link::Up(conn) => return Ok(conn),
                    Link::Closed => {
                        return Err(HomeError::Unreachable {
                            url: self.endpoint.display.clone(),
                            reason: "the client was shut down".into(),
                        })
                    }
                    Link::Down(_) => {}
                }
                if rx.changed().await.is_err() {
                    return Err(HomeError::Unreachable {
                        url: self.endpoint.display.clone(),
                        reason: "the client was shut down".into(),
                    });
                }
            }
        };
        match tokio::time::timeout(self.options.reconnect_wait, wait).await {
            Ok(result) => result,
            Err(_) => {
                let last = match &*self.link.borrow() {
                    Link::Down(e) => e.clone(),
                    Link::Up(_) | Link::Closed => {
                        HomeError::Unreachable { url: String::new(), reason: "the connection is down".into() }
                    }
                };
                let waited = self.options.reconnect_wait.as_secs_f64();
                Err(match last {
                    // A token revoked while connected stays the token's fault.
                    e @ HomeError::Unauthorized(_) => e,
                    HomeError::Unreachable { reason, .. } => HomeError::Unreachable {
                        url: self.endpoint.display.clone(),
                        reason: format!("{reason} (still reconnecting after {waited}s)"),
                    },
                    other => HomeError::Unreachable {
                        url: self.endpoint.display.clone(),
                        reason: format!("reconnecting failed: {other} (still trying after {waited}s)"),
                    },
                })
            }
        }
    }

    /// One WebSocket command on the live connection.
    pub(crate) async fn command(&self, payload: Value) -> Result<Value, CallError> {
        let after = self.options.request_timeout;
        let deadline = Instant::now() + after;
        let conn = self.live().await.map_err(CallError::Home)?;
        conn.command(payload, deadline, after).await
    }

    /// One WebSocket command whose errors get their usual meaning.
    pub(crate) async fn call(&self, payload: Value) -> Result<Value, HomeError> {
        let what = payload.get("type").and_then(Value::as_str).unwrap_or("a command").to_string();
        self.command(payload).await.map_err(|e| e.into_home(&what))
    }

    /// Reloads the registries if an event said they changed.
    pub(crate) async fn fresh_registries(&self) -> Result<(), HomeError> {
        if !self.registries_stale.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let conn = self.live().await?;
        let deadline = Instant::now() + self.options.request_timeout;
        let loaded = self.load_registries(&conn, deadline).await;
        if loaded.is_err() {
            self.registries_stale.store(true, Ordering::Relaxed);
        }
        loaded
    }

    async fn load_registries(&self, conn: &Connection, deadline: Instant) -> Result<(), HomeError> {
        let after = self.options.request_timeout;
        let fetch = |kind: &'static str| async move {
            conn.command(json!({"type": kind}), deadline, after).await.map_err(|e| e.into_home(kind))
        };
        // Floors and labels came in 2024.4; an older house simply has none.
        let optional = |kind: &'static str| async move {
            match conn.command(json!({"type": kind}), deadline, after).await {
                Err(CallError::Ha { code, .. }) if code == "unknown_command" => Ok(json!([])),
                other => other.map_err(|e| e.into_home(kind)),
            }
        };
        let (areas, floors, labels, devices, entities) = tokio::try_join!(
            fetch("config/area_registry/list"),
            optional("config/floor_registry/list"),
            optional("config/label_registry/list"),
            fetch("config/device_registry/list"),
            fetch("config/entity_registry/list"),
        )?;
        let ids: Vec<&str> = entities
            .as_array()
            .map(|list| list.iter().filter_map(|e| e.get("entity_id").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        let extended = if ids.is_empty() {
            json!({})
        } else {
            let kind = "config/entity_registry/get_entries";
            conn.command(json!({"type": kind, "entity_ids": ids}), deadline, after)
                .await
                .map_err(|e| e.into_home(kind))?
        };
        let catalog = Catalog::build(&Registries { areas, floors, labels, devices, entities, extended })?;
        *write(&self.catalog) = catalog;
        Ok(())
    }

    /// Opens a connection and brings everything up to date on it:
    /// subscriptions first (so no change falls between the snapshot and
    /// the events), then the states, then the registries.
    pub(crate) async fn establish(self: &Arc<Self>, announce: bool) -> Result<Arc<Connection>, HomeError> {
        let conn = Connection::open(self).await?;
        let after = self.options.request_timeout;
        let deadline = Instant::now() + after;
        let subscriptions = SUBSCRIBED_EVENTS.iter().map(|event_type| {
            conn.command(json!({"type": "subscribe_events", "event_type": event_type}), deadline, after)
        });
        futures::future::try_join_all(subscriptions).await.map_err(|e| e.into_home("subscribe_events"))?;
        self.registries_stale.store(false, Ordering::Relaxed);
        let (states, registries) =
            tokio::join!(conn.load_states(announce, deadline, after), self.load_registries(&conn, deadline));
        let count = states.map_err(|e| e.into_home("get_states"))?;
        registries?;
        tracing::info!(url = %self.endpoint.display, entities = count, "connected to Home Assistant");
        Ok(conn)
    }
}

/// The wait before reconnect attempt `attempt` (0-based): doubling from
/// `initial`, capped at `max`, with up to a fifth taken off at random so
/// many clients do not return in step.
pub(crate) fn backoff(options: &Options, attempt: u32) -> Duration {
    let base = options.backoff_initial.saturating_mul(2u32.saturating_pow(attempt.min(20))).min(options.backoff_max);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let jitter = f64::from(nanos % 1000) / 1000.0 * 0.2;
    base.mul_f64(1.0 - jitter)
}

/// Resolves when the client is dropped.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Watches a live connection: pings when it is quiet, gives up on it when
/// nothing comes back. `None` when the client is dropped.
async fn watch_connection(shared: &Shared, conn: &Connection, shutdown: &mut watch::Receiver<bool>) -> Option<String> {
    let every = shared.options.heartbeat;
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            reason = conn.closed() => return Some(reason),
            _ = stopped(shutdown) => return None,
            _ = ticks.tick() => {
                if conn.silent_for() > every * 2 {
                    let reason = format!("no answer to pings for {}s", conn.silent_for().as_secs());
                    conn.abandon(reason.clone());
                    return Some(reason);
                }
                conn.ping();
            }
        }
    }
}

/// Keeps a connection up until the client is dropped.
pub(crate) async fn supervise(shared: Arc<Shared>, first: Arc<Connection>, mut shutdown: watch::Receiver<bool>) {
    let mut conn = first;
    loop {
        let Some(reason) = watch_connection(&shared, &conn, &mut shutdown).await else { break };
        drop(conn);
        tracing::warn!(url = %shared.endpoint.display, %reason, "lost the connection to Home Assistant; reconnecting");
        shared.link.send_replace(Link::Down(HomeError::Unreachable { url: shared.endpoint.display.clone(), reason }));
        let mut attempt = 0;
        conn = loop {
            let delay = backoff(&shared.options, attempt);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut shutdown) => return,
            }
            let result = tokio::select! {
                result = shared.establish(true) => result,
                _ = stopped(&mut shutdown) => return,
            };
            match result {
                Ok(conn) => break conn,
                Err(e) => {
                    attempt += 1;
                    if attempt == 1 || attempt % 10 == 0 {
                        tracing::warn!(url = %shared.endpoint.display, attempt, error = %e, "reconnecting to Home Assistant failed; retrying");
                    }
                    shared.link.send_replace(Link::Down(e));
                }
            }
        };
        shared.link.send_replace(Link::Up(conn.clone()));
        tracing::info!(url = %shared.endpoint.display, "reconnected to Home Assistant");
    }
    shared.link.send_replace(Link::Closed);
}
