//! `/api/proposals`: the approvals waiting for (or decided by) a person.
//!
//! Deciding here is the same as answering in chat: the decision is recorded
//! once (a second, simultaneous decision gets 409), an approved action runs
//! exactly once, and its outcome is added to the approval's conversation.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use steward_core::{ApprovalFilter, DecideError};
use steward_protocol::approval::{Approval, ApprovalList, ApprovalScope, ApprovalStatus, DecideRequest};
use steward_protocol::ErrorCode;

use crate::auth::Actor;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::native::path_id;
use crate::query::{number_param, query_map};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ApprovalList>, ApiError> {
    let query = query_map(query)?;
    let status = match query.get("status") {
        None => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            let known: Vec<&str> = ApprovalStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid(format!("status must be one of {}, not '{s}'", known.join(", "))).with_param("status")
        })?),
    };
    let limit = number_param(&query, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    let filter = ApprovalFilter { status, conversation_id: query.get("conversation_id").cloned() };
    let proposals = state.engine.approvals(&filter, limit).await.map_err(ApiError::from)?;
    Ok(Json(ApprovalList { proposals }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("approval '{id}' not found; list them with GET /api/proposals"))
}

pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = path_id(id)?;
    let approval = state.engine.approval(&id).await.map_err(ApiError::from)?.ok_or_else(|| not_found(&id))?;
    // What the run reported while it ran (an Ansible playbook's tasks per
    // host and its recap); empty for calls that report nothing. A store
    // without execution logs has none to show.
    let logs = match state.engine.store().list_execution_logs(&approval.id).await {
        Ok(logs) => logs,
        Err(e) => {
            tracing::warn!(error = %e, approval = %approval.id, "could not read the run's execution log");
            Vec::new()
        }
    };
    let mut body = serde_json::to_value(&approval)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("could not encode the approval: {e}")))?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("execution_logs".into(), serde_json::to_value(logs).unwrap_or_default());
    }
    Ok(Json(body))
}

pub async fn approve(
    state: State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Approval>, ApiError> {
    decide(state, actor, id, headers, body, true).await
}

pub async fn reject(
    state: State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Approval>, ApiError> {
    decide(state, actor, id, headers, body, false).await
}

async fn decide(
    State(state): State<AppState>,
    Actor(actor): Actor,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
    approve: bool,
) -> Result<Json<Approval>, ApiError> {
    let id = path_id(id)?;
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let req: DecideRequest = parse_json(&bytes, Some(DecideRequest::default()))?;
    let scope = req.scope.unwrap_or_default();
    if !approve && scope != ApprovalScope::Once {
        return Err(ApiError::invalid("a rejection has no scope; leave 'scope' out").with_param("scope"));
    }
    match state.engine.decide(&id, approve, &actor, scope).await {
        Ok(approval) => Ok(Json(approval)),
        Err(DecideError::NotFound(_)) => Err(not_found(&id)),
        Err(e @ (DecideError::AlreadyDecided(_) | DecideError::Expired(_))) => {
            Err(ApiError::new(ErrorCode::Conflict, e.to_string()))
        }
        Err(e @ DecideError::ScopeRefused(_)) => Err(ApiError::invalid(e.to_string()).with_param("scope")),
        Err(DecideError::Store(e)) => Err(ApiError::from(e)),
    }
}
