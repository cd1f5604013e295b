//! `/api/entities`: the librarian's entity catalog.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use steward_core::EntityFilter;
use steward_protocol::api::EntityList;

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
