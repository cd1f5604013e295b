//! `/ui/activity`: everything the engine does, live — turns, delegations,
//! tool calls, approvals, task progress, model calls with tier and cost.
//! The page is a frame; `assets/app.js` fills it from `/api/events`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{layout, viewer};
use crate::AppState;

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &headers, "/ui/activity") {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let body = "<p class=\"lead\">Everything the agents do, as it happens (newest first). Tool inputs and outputs \
                show for conversations in debug mode. <span class=\"live-status\" data-live-status></span></p>\
                <div class=\"filters\"><label><input type=\"checkbox\" id=\"hide-llm\"> hide model calls</label></div>\
                <ol id=\"activity\" class=\"activity\" data-activity></ol>\
                <p class=\"empty\" id=\"activity-empty\">Nothing has happened yet.</p>";
    layout(&viewer, "/ui/activity", "Activity", body)
}
