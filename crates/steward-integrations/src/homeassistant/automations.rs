//! Automations: listed from the `automation.*` states and their configs
//! (`automation/config` over WebSocket), written through the automation
//! editor's REST store (`/api/config/automation/config/<id>`), which also
//! tells Home Assistant to reload the one automation. A write is only done
//! when Home Assistant has (un)loaded it, so the next read sees it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use steward_core::home::{Automation, HomeError};
use tokio::time::Instant;

use super::shared::Shared;
use super::wire::{parse_time, unexpected, RawState};

/// How often to look whether Home Assistant has loaded a written automation.
const POLL: Duration = Duration::from_millis(200);

/// Automation ids go into a URL path; keep them to what needs no escaping.
fn check_id(id: &str) -> Result<(), HomeError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(HomeError::invalid(
            format!("automation id `{id}`"),
            "an automation id is 1 to 128 letters, digits, `_`, `-` or `.`",
        ))
    }
}

fn non_empty(config: &Value, keys: [&str; 2]) -> bool {
    keys.iter().any(|k| match config.get(*k) {
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    })
}

/// The config without its `id` (the store adds it; comparisons ignore it).
fn without_id(config: &Value) -> Value {
    let mut config = config.clone();
    if let Some(obj) = config.as_object_mut() {
        obj.remove("id");
    }
    config
}

/// The editor id of an automation entity, or its entity id when it has none
/// (automations written in YAML without an `id`).
fn id_of(raw: &RawState) -> String {
    raw.attributes.get("id").and_then(Value::as_str).map(String::from).unwrap_or_else(|| raw.entity_id.clone())
}

fn automation_from(raw: &RawState, config: Value) -> Automation {
    let text = |key: &str| config.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    let alias = text("alias")
        .or_else(|| raw.attributes.get("friendly_name").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| raw.entity_id.clone());
    Automation {
        id: id_of(raw),
        alias,
        description: text("description").unwrap_or_default(),
        entity_id: Some(raw.entity_id.clone()),
        enabled: raw.state == "on",
        last_triggered: raw.attributes.get("last_triggered").and_then(Value::as_str).and_then(parse_time),
        config,
    }
}

impl Shared {
    fn automation_state(&self, id: &str) -> Option<RawState> {
        self.states_of("automation").into_iter().find(|raw| id_of(raw) == id || raw.entity_id == id)
    }

    /// The config of a loaded automation (`{}` when Home Assistant has none to give).
    async fn automation_config(&self, entity_id: &str) -> Result<Value, HomeError> {
        let result = self.call(json!({"type": "automation/config", "entity_id": entity_id})).await?;
        Ok(result.get("config").cloned().unwrap_or_else(|| json!({})))
    }

    pub(crate) async fn automations(&self) -> Result<Vec<Automation>, HomeError> {
        let states = self.states_of("automation");
        let configs =
            futures::future::try_join_all(states.iter().map(|raw| self.automation_config(&raw.entity_id))).await?;
        let mut out: Vec<Automation> =
            states.iter().zip(configs).map(|(raw, config)| automation_from(raw, config)).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(crate) async fn automation(&self, id: &str) -> Result<Automation, HomeError> {
        if let Some(raw) = self.automation_state(id) {
            let config = self.automation_config(&raw.entity_id).await?;
            return Ok(automation_from(&raw, config));
        }
        // Written but not (yet) loaded: the editor's store still has it.
        check_id(id)?;
        let what = format!("reading automation `{id}`");
        let reply = self.stored_automation(id, &what).await?;
        let Some(config) = reply else { return Err(HomeError::not_found(format!("automation `{id}`"))) };
        let alias = config.get("alias").and_then(Value::as_str).unwrap_or(id).to_string();
        let description = config.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(Automation {
            id: id.to_string(),
            alias,
            description,
            entity_id: None,
            enabled: false,
            last_triggered: None,
            config,
        })
    }

    /// The editor's stored config of `id`, `None` when it has none.
    async fn stored_automation(&self, id: &str, what: &str) -> Result<Option<Value>, HomeError> {
        let path = format!("api/config/automation/config/{id}");
        let reply = self.rest(Method::GET, &path, None, what, self.options.request_timeout).await?;
        match reply.status {
            StatusCode::OK => reply.json(what).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(HomeError::UnexpectedReply(format!("{what} answered HTTP {status}: {}", reply.message()))),
        }
    }

    pub(crate) async fn upsert_automation(&self, id: &str, config: Value) -> Result<Automation, HomeError> {
        check_id(id)?;
        let what = format!("saving automation `{id}`");
        if !config.is_object() {
            return Err(HomeError::invalid(what, "the configuration must be a JSON object"));
        }
        if !non_empty(&config, ["triggers", "trigger"]) || !non_empty(&config, ["actions", "action"]) {
            return Err(HomeError::invalid(what, "an automation needs at least one trigger and one action"));
        }
        let body = without_id(&config);
        let path = format!("api/config/automation/config/{id}");
        let reply = self.rest(Method::POST, &path, Some(&body), &what, self.options.request_timeout).await?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST => return Err(HomeError::invalid(what, reply.message())),
            status => {
                return Err(HomeError::UnexpectedReply(format!("{what} answered HTTP {status}: {}", reply.message())))
            }
        }
        self.until_loaded(id, &body).await
    }

    /// Waits until Home Assistant runs automation `id` with `expected` as
    /// its config. Saving asks Home Assistant to reload it; if that has not
    /// shown after a while, reload all automations once more.
    async fn until_loaded(&self, id: &str, expected: &Value) -> Result<Automation, HomeError> {
        let started = Instant::now();
        let deadline = started + self.options.automation_timeout;
        let mut reloaded = false;
        loop {
            self.fresh_registries().await?;
            if let Some(raw) = self.automation_state(id) {
                let config = self.automation_config(&raw.entity_id).await?;
                if without_id(&config) == *expected {
                    return Ok(automation_from(&raw, config));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HomeError::Timeout {
                    what: format!(
                        "loading automation `{id}` after saving it (see Home Assistant's log for why it did not load)"
                    ),
                    after: self.options.automation_timeout,
                });
            }
            if !reloaded && now >= started + self.options.automation_timeout / 3 {
                reloaded = true;
                self.call(
                    json!({"type": "call_service", "domain": "automation", "service": "reload", "service_data": {}}),
                )
                .await?;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Home Assistant's `validate_config` command on the automation's
    /// triggers, conditions and actions (either spelling of the keys).
    pub(crate) async fn validate_automation(&self, config: &Value) -> Result<Vec<String>, HomeError> {
        let mut command = json!({"type": "validate_config"});
        for (plural, singular) in [("triggers", "trigger"), ("conditions", "condition"), ("actions", "action")] {
            if let Some(part) = config.get(plural).or_else(|| config.get(singular)) {
                command[plural] = part.clone();
            }
        }
        let reply = self.call(command).await?;
        let mut errors = Vec::new();
        for part in ["triggers", "conditions", "actions"] {
            let Some(verdict) = reply.get(part) else { continue };
            if verdict.get("valid").and_then(Value::as_bool) == Some(false) {
                let why = verdict.get("error").and_then(Value::as_str).unwrap_or("no reason given");
                errors.push(format!("Home Assistant rejects the {part}: {why}"));
            }
        }
        Ok(errors)
    }

    pub(crate) async fn delete_automation(&self, id: &str) -> Result<(), HomeError> {
        let what = format!("deleting automation `{id}`");
        let loaded = self.automation_state(id);
        if loaded.is_none() {
            check_id(id)?;
            if self.stored_automation(id, &what).await?.is_none() {
                return Err(HomeError::not_found(format!("automation `{id}`")));
            }
        }
        let editor_id = loaded.as_ref().map(id_of).unwrap_or_else(|| id.to_string());
        if check_id(&editor_id).is_err() || loaded.as_ref().is_some_and(|raw| raw.attributes.get("id").is_none()) {
            return Err(HomeError::invalid(
                what,
                "this automation is written in Home Assistant's YAML files, not in the automation editor; change it there",
            ));
        }
        let path = format!("api/config/automation/config/{editor_id}");
        let reply = self.rest(Method::DELETE, &path, None, &what, self.options.request_timeout).await?;
        match reply.status {
            StatusCode::OK => {}
            // The store answers a missing id with 400 "Resource not found".
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND if reply.message().contains("not found") => {
                return Err(HomeError::not_found(format!("automation `{id}`")))
            }
            status => {
                return Err(HomeError::UnexpectedReply(format!("{what} answered HTTP {status}: {}", reply.message())))
            }
        }
        let deadline = Instant::now() + self.options.automation_timeout;
        while self.automation_state(&editor_id).is_some() {
            if Instant::now() >= deadline {
                return Err(HomeError::Timeout {
                    what: format!("unloading automation `{id}` after deleting it"),
                    after: self.options.automation_timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// `automation.reload`: re-reads every automation from the configuration.
    pub(crate) async fn reload_automations(&self) -> Result<(), HomeError> {
        let result = self
            .call(json!({"type": "call_service", "domain": "automation", "service": "reload", "service_data": {}}))
            .await?;
        if result.is_object() || result.is_null() {
            Ok(())
        } else {
            Err(unexpected("automation.reload", &result))
        }
    }
}
