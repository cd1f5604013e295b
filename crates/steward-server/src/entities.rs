//! `/api/entities`: the librarian's entity catalog.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use steward_core::home::{Area, Entity};
use steward_core::intent::IntentEngine;
use steward_core::EntityFilter;
use steward_protocol::api::{CatalogEntity, EntityAnswer, EntityList, EntityQuery};

use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::query::{number_param, query_map};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 200;
const MAX_LIMIT: u32 = 5000;

/// `GET /api/entities?domain=light&area=kitchen&q=ceiling&limit=50`
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<EntityList>, ApiError> {
    let query = query_map(query)?;
    let text = |key: &str| query.get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let filter = EntityFilter {
        domain: text("domain"),
        area: text("area"),
        search: text("q"),
        limit: number_param(&query, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?,
    };
    let (entities, total) = state.engine.store().list_entities(&filter).await.map_err(ApiError::from)?;
    Ok(Json(EntityList { entities, total }))
}

/// Entities a search answer lists at most.
const SEARCH_SHOWN: usize = 20;

/// Words a search ignores: they name no entity.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "any", "which", "what", "whats", "what's", "in", "on", "of", "my", "me", "show",
    "list", "find", "all", "do", "i", "have", "there", "where", "for", "to", "and", "or", "with",
];

fn to_entity(c: &CatalogEntity) -> Entity {
    Entity {
        entity_id: c.entity_id.clone(),
        domain: c.domain.clone(),
        name: c.name.clone(),
        aliases: c.aliases.clone(),
        area_id: c.area_id.clone(),
        device_id: c.device_id.clone(),
        state: c.state.clone(),
        attributes: c.attributes.clone(),
        last_changed: c.last_changed,
        last_updated: c.last_updated,
        available: c.available,
    }
}

fn areas_of(rows: &[CatalogEntity]) -> Vec<Area> {
    let mut areas: Vec<Area> = Vec::new();
    for r in rows {
        if let Some(id) = &r.area_id {
            if !areas.iter().any(|a| &a.area_id == id) {
                let name = r.area.clone().unwrap_or_else(|| id.clone());
                areas.push(Area { area_id: id.clone(), name, aliases: Vec::new(), floor: None });
            }
        }
    }
    areas
}

/// `POST /api/entities/query` with `{"query": "which lights are on in the kitchen?"}`:
/// answered from the catalog alone — by the local intent engine when it
/// understands the question, otherwise by searching for its words.
pub async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EntityAnswer>, ApiError> {
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let req: EntityQuery = parse_json(&bytes, None)?;
    let question = req.query.trim();
    if question.is_empty() {
        return Err(ApiError::invalid("query is empty; ask about the home's entities").with_param("query"));
    }
    let all = EntityFilter { limit: 100_000, ..EntityFilter::default() };
    let (rows, _) = state.engine.store().list_entities(&all).await.map_err(ApiError::from)?;
    let entities: Vec<Entity> = rows.iter().map(to_entity).collect();
    let engine = IntentEngine::new(entities.clone(), areas_of(&rows));
    if let Some(u) = engine.understand_with(question, &entities).filter(|u| u.is_confident()) {
        if u.is_mutation() {
            return Err(ApiError::invalid(format!(
                "'{question}' is a command, not a question; send it in a chat to have it carried out"
            ))
            .with_param("query"));
        }
        if let Some(answer) = u.answer(&entities) {
            let about = rows.iter().filter(|r| u.targets.contains(&r.entity_id)).cloned().collect();
            return Ok(Json(EntityAnswer { answer, entities: about, method: "intent".into() }));
        }
    }
    let words: Vec<String> = question
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .map(|w| w.trim_end_matches('s').to_string())
        .filter(|w| !w.is_empty())
        .collect();
    let found: Vec<CatalogEntity> = if words.is_empty() {
        Vec::new()
    } else {
        let filter =
            EntityFilter { search: Some(words.join(" ")), limit: SEARCH_SHOWN as u32, ..EntityFilter::default() };
        state.engine.store().list_entities(&filter).await.map_err(ApiError::from)?.0
    };
    let answer = match found.len() {
        0 => format!("No entity matches '{question}'."),
        n => {
            let names: Vec<String> =
                found.iter().map(|e| format!("{} ({}, {})", e.name, e.entity_id, e.state)).collect();
            format!("{n} {} match: {}.", if n == 1 { "entity" } else { "entities" }, names.join("; "))
        }
    };
    Ok(Json(EntityAnswer { answer, entities: found, method: "search".into() }))
}
