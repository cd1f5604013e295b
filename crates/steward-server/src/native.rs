//! The native `/api` routes for conversations.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use steward_protocol::api::{
    Conversation, ConversationDetail, ConversationList, CreateConversation, PatchConversation, PostMessage, TurnReply,
};
use steward_protocol::{ErrorCode, Event, FinishReason, TurnInput, Usage, UserTurn};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Actor;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::query::{number_param, query_map};
use crate::{sse, AppState, CONVERSATION_HEADER};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub async fn create_conversation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let req: CreateConversation = parse_json(&bytes, Some(CreateConversation::default()))?;
    let conversation =
        state.engine.create_conversation(req.agent.as_deref(), req.title.as_deref()).await.map_err(|e| {
            let e = ApiError::from(e);
            if e.code == ErrorCode::ModelNotFound {
                e.with_param("agent")
            } else {
                e
            }
        })?;
    Ok((StatusCode::CREATED, Json(conversation)).into_response())
}

/// Path parameters, with a JSON error instead of axum's plain-text one.
pub(crate) fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|e| ApiError::invalid(format!("invalid path: {}", e.body_text())))
}

pub async fn list_conversations(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ConversationList>, ApiError> {
    let query = query_map(query)?;
    let limit = number_param(&query, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    let conversations = state.engine.store().list_conversations(limit).await.map_err(ApiError::from)?;
    Ok(Json(ConversationList { conversations }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("conversation '{id}' not found"))
}

pub async fn get_conversation(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ConversationDetail>, ApiError> {
    let id = path_id(id)?;
    let store = state.engine.store();
    let conversation = store.get_conversation(&id).await.map_err(ApiError::from)?.ok_or_else(|| not_found(&id))?;
    let messages = store.list_messages(&id).await.map_err(ApiError::from)?;
    Ok(Json(ConversationDetail { conversation, messages }))
}

/// `PATCH /api/conversations/{id}`: turns debug mode on or off.
pub async fn patch_conversation(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Conversation>, ApiError> {
    let id = path_id(id)?;
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let req: PatchConversation = parse_json(&bytes, None)?;
    let store = state.engine.store();
    if let Some(debug) = req.debug {
        store.set_conversation_debug(&id, debug).await.map_err(ApiError::from)?;
    }
    let conversation = store.get_conversation(&id).await.map_err(ApiError::from)?.ok_or_else(|| not_found(&id))?;
    Ok(Json(conversation))
}

pub async fn post_message(
    State(state): State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let query = query_map(query)?;
    let stream = match query.get("stream").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!("stream must be true or false, not '{other}'")).with_param("stream"))
        }
    };
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let req: PostMessage = parse_json(&bytes, None)?;
    let conversation =
        state.engine.store().get_conversation(&id).await.map_err(ApiError::from)?.ok_or_else(|| not_found(&id))?;
    let mut handle = state
        .engine
        .start_turn(UserTurn {
            conversation_id: Some(conversation.id.clone()),
            agent: conversation.agent.clone(),
            input: TurnInput::Message { content: req.content },
            actor: Some(actor.0),
        })
        .await
        .map_err(|e| {
            let e = ApiError::from(e);
            if e.code == ErrorCode::InvalidRequest {
                e.with_param("content")
            } else {
                e
            }
        })?;
    let header = HeaderValue::from_str(&conversation.id)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the conversation id cannot be sent as a header"))?;

    if stream {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut finished = false;
            while let Some(event) = handle.events.recv().await {
                finished |= matches!(event, Event::TurnFinished { .. });
                let json = serde_json::to_string(&event).unwrap_or_else(|_| "{}".into());
                if tx.send(sse::event(event.kind(), &json)).await.is_err() {
                    return;
                }
            }
            if !finished {
                let error = Event::Error {
                    turn_id: handle.turn_id.clone(),
                    code: ErrorCode::Internal,
                    message: crate::openai::ended_early().message,
                };
                let json = serde_json::to_string(&error).unwrap_or_else(|_| "{}".into());
                let _ = tx.send(sse::event(error.kind(), &json)).await;
            }
        });
        return Ok(sse::response(ReceiverStream::new(rx), vec![(CONVERSATION_HEADER, header)]));
    }

    let mut content = String::new();
    let mut stored_ids = HashSet::new();
    let mut finish: Option<(FinishReason, Usage, u32)> = None;
    let mut error = None;
    while let Some(event) = handle.events.recv().await {
        match event {
            Event::TextDelta { delta, .. } => content.push_str(&delta),
            Event::MessageStored { message_id, .. } => {
                stored_ids.insert(message_id);
            }
            Event::TurnFinished { finish_reason, usage, steps, .. } => finish = Some((finish_reason, usage, steps)),
            Event::Error { code, message, .. } => error = Some(ApiError::new(code, message)),
            Event::TurnStarted { .. }
            | Event::ToolCallStarted { .. }
            | Event::ToolResult { .. }
            | Event::ApprovalRequested { .. }
            | Event::ApprovalUpdated { .. }
            | Event::ToolDebug { .. }
            | Event::DelegationStarted { .. }
            | Event::Delegated { .. }
            | Event::DelegationFinished { .. }
            | Event::TaskUpdated { .. }
            | Event::ToolProgress { .. }
            | Event::LlmCall { .. } => {}
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    let finish = finish.ok_or_else(crate::openai::ended_early)?;
    let messages = state
        .engine
        .store()
        .list_messages(&conversation.id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .filter(|m| stored_ids.contains(&m.id))
        .collect();
    let reply = TurnReply {
        conversation_id: conversation.id,
        turn_id: handle.turn_id,
        content,
        messages,
        usage: finish.1,
        steps: finish.2,
        finish_reason: finish.0,
    };
    let mut response = Json(reply).into_response();
    response.headers_mut().insert(CONVERSATION_HEADER, header);
    Ok(response)
}
