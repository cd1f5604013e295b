//! `/api/state`: named snapshots of the agents' memory and state (see
//! `steward_core::snapshots` for what they hold and what they never touch).
//!
//! `POST /api/state/save` keeps the live state under a name (201; a name
//! already taken is refused with 409 unless the body says `"replace": true`,
//! then 200); `GET /api/state` lists them newest first with the live
//! state's counts; `POST /api/state/load` saves the live state as
//! `autosave-<UTC time>` and then makes it the snapshot's (refused with 409
//! while a turn runs).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use steward_core::snapshots::{self, LoadReport, SnapshotError, SnapshotSummary, StateCounts};
use steward_protocol::ErrorCode;

use crate::auth::Actor;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::AppState;

/// `POST /api/state/save`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveRequest {
    #[serde(default)]
    name: Option<String>,
    /// Overwrite a snapshot of the same name.
    #[serde(default)]
    replace: bool,
}

/// `POST /api/state/load`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadRequest {
    #[serde(default)]
    name: Option<String>,
}

/// `GET /api/state`
#[derive(Debug, Serialize)]
pub struct StateList {
    snapshots: Vec<SnapshotSummary>,
    current: StateCounts,
}

fn api_error(e: SnapshotError) -> ApiError {
    match e {
        SnapshotError::InvalidName(message) => ApiError::invalid(message).with_param("name"),
        SnapshotError::Exists(name) => ApiError::new(
            ErrorCode::Conflict,
            format!(
                "a snapshot named '{name}' already exists; send \"replace\": true to overwrite it, or choose \
another name"
            ),
        )
        .with_param("name"),
        SnapshotError::NotFound(name) => ApiError::new(
            ErrorCode::NotFound,
            format!("there is no snapshot named '{name}'; list them with GET /api/state"),
        )
        .with_param("name"),
        SnapshotError::TurnsRunning(n) => ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{n} turn(s) are running; a snapshot cannot be loaded while an agent is answering. Wait for the \
turn to finish (or cancel it), then load again"
            ),
        ),
        SnapshotError::Home(e) => ApiError::new(ErrorCode::ToolFailed, format!("the demo home could not be read: {e}")),
        SnapshotError::Store(e) => ApiError::from(e),
    }
}

fn required_name(name: Option<String>) -> Result<String, ApiError> {
    name.ok_or_else(|| {
        ApiError::invalid("name is missing; send {\"name\": \"before-party\"} (1-64 of A-Z a-z 0-9 . _ -)")
            .with_param("name")
    })
}

/// `GET /api/state`: every snapshot, newest first, and the live state's counts.
pub async fn list(State(state): State<AppState>) -> Result<Json<StateList>, ApiError> {
    let snapshots = snapshots::list(&state.engine).await.map_err(api_error)?;
    let current = snapshots::current(&state.engine).await.map_err(api_error)?;
    Ok(Json(StateList { snapshots, current }))
}

/// `POST /api/state/save` with `{"name", "replace"?}`: 201 with the new
/// snapshot's summary, 200 when it replaced one.
pub async fn save(
    State(state): State<AppState>,
    Actor(actor): Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let request: SaveRequest = parse_json(&bytes, None)?;
    let name = required_name(request.name)?;
    let saved = snapshots::save(&state.engine, &name, &actor, request.replace).await.map_err(api_error)?;
    let status = if saved.replaced { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(saved.summary)).into_response())
}

/// `POST /api/state/load` with `{"name"}`: 200 with what was loaded, the
/// backup of what it replaced, and what became of the home.
pub async fn load(
    State(state): State<AppState>,
    Actor(actor): Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<LoadReport>, ApiError> {
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let request: LoadRequest = parse_json(&bytes, None)?;
    let name = required_name(request.name)?;
    Ok(Json(snapshots::load(&state.engine, &name, &actor).await.map_err(api_error)?))
}
