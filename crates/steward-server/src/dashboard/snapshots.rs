//! `/ui/snapshots`: named snapshots of Steward's state — list, save, and
//! restore. The page is a frame; `assets/app.js` calls `/api/state`,
//! `/api/state/save` and `/api/state/load`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{layout, viewer};
use crate::AppState;

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &headers, "/ui/snapshots") {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let body = "<p class=\"lead\">A snapshot keeps the conversations, messages, insights and the catalog under a \
                name; restoring one saves the current state as a backup first.</p>\
                <form id=\"snapshot-save\" class=\"card inline-form\">\
                <label for=\"snapshot-name\">Name</label>\
                <input id=\"snapshot-name\" name=\"name\" required maxlength=\"100\" placeholder=\"before-the-party\">\
                <label><input type=\"checkbox\" id=\"snapshot-replace\" name=\"replace\"> replace if it exists</label>\
                <button type=\"submit\">Save snapshot</button></form>\
                <p id=\"snapshot-status\" class=\"status\" role=\"status\"></p>\
                <div id=\"snapshot-current\" class=\"meta\"></div>\
                <div class=\"scroll\"><table id=\"snapshots\"><thead><tr><th>Name</th><th>Saved</th><th>By</th>\
                <th>Conversations</th><th>Messages</th><th>Insights</th><th>Entities</th><th></th></tr></thead>\
                <tbody><tr><td colspan=\"8\" class=\"empty\">Loading…</td></tr></tbody></table></div>";
    layout(&viewer, "/ui/snapshots", "Snapshots", body)
}
