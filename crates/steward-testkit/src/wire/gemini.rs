//! The scripted server's gemini wire format.

use axum::http::StatusCode;
use axum::response::Response;

use crate::scripted::{json_response, WireRequest};
use crate::Reply;

/// Renders `reply` as the gemini API would answer `req`.
pub(crate) fn respond(_req: &WireRequest<'_>, _reply: Reply) -> Response {
    json_response(StatusCode::NOT_IMPLEMENTED, &serde_json::json!({"error": "not implemented yet"}))
}
