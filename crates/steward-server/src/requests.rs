//! `/api/requests`: tasks — a request that needs several steps, planned by
//! the model, approved as a whole, run in dependency order.
//!
//! `POST /api/requests` plans at once and answers 202 with the task: status
//! `awaiting_approval` with its steps and `approval_id` (decide it like any
//! approval, or reply "approve" in the task's conversation), `running` when
//! nothing in the plan needs asking, or `failed` with `error` saying why no
//! plan could be made. The task exists either way, so the answer is the
//! same shape and status; `status` tells which.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use steward_core::{TaskError, Tasks};
use steward_protocol::task::{CreateRequest, TaskDetail, TaskList, TaskStatus};
use steward_protocol::{ErrorCode, Event};
use tokio::sync::broadcast;

use crate::auth::Actor;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::native::path_id;
use crate::query::{number_param, query_map};
use crate::{sse, AppState};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// How often an event stream re-reads a task nothing reports on (one
/// waiting for approval may be rejected or expire from anywhere).
const STREAM_CHECK: Duration = Duration::from_secs(1);

fn tasks(state: &AppState) -> Result<Arc<Tasks>, ApiError> {
    state.tasks.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "tasks are not enabled on this server (it was started without a task runner)",
        )
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("task '{id}' not found; list tasks with GET /api/requests"))
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::InvalidRequest(m) => ApiError::invalid(m).with_param("request"),
            TaskError::NotFound(id) => not_found(&id),
            TaskError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            TaskError::Store(e) => ApiError::from(e),
        }
    }
}

/// `POST /api/requests`
pub async fn create(
    State(state): State<AppState>,
    Actor(actor): Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tasks = tasks(&state)?;
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let req: CreateRequest = parse_json(&bytes, None)?;
    // Its own task: a client that goes away while the model plans must not
    // leave the task half-made.
    let work = {
        let tasks = tasks.clone();
        tokio::spawn(async move { tasks.create(&req.request, &actor).await })
    };
    let task =
        work.await.map_err(|e| ApiError::new(ErrorCode::Internal, format!("planning stopped unexpectedly: {e}")))??;
    let execution_logs = tasks.logs(&task.id).await?;
    Ok((StatusCode::ACCEPTED, Json(TaskDetail { task, execution_logs })).into_response())
}

/// `GET /api/requests`
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<TaskList>, ApiError> {
    let tasks = tasks(&state)?;
    let query = query_map(query)?;
    let limit = number_param(&query, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    Ok(Json(TaskList { tasks: tasks.list(limit).await? }))
}

/// `GET /api/requests/{id}`: the task, its steps and its execution log.
pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TaskDetail>, ApiError> {
    let tasks = tasks(&state)?;
    let id = path_id(id)?;
    Ok(Json(tasks.detail(&id).await?.ok_or_else(|| not_found(&id))?))
}

/// `POST /api/requests/{id}/cancel`
pub async fn cancel(
    State(state): State<AppState>,
    Actor(actor): Actor,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TaskDetail>, ApiError> {
    let tasks = tasks(&state)?;
    let id = path_id(id)?;
    // Its own task: a client that goes away must not stop a cancel half-way.
    let work = {
        let (tasks, id) = (tasks.clone(), id.clone());
        tokio::spawn(async move { tasks.cancel(&id, &actor).await })
    };
    let task = work
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("the cancel stopped unexpectedly: {e}")))??;
    let execution_logs = tasks.logs(&task.id).await?;
    Ok(Json(TaskDetail { task, execution_logs }))
}

/// What an event stream does next.
enum Next {
    /// Sends this frame, then goes on.
    Frame(bytes::Bytes),
    /// Sends this frame, then ends.
    Last(bytes::Bytes),
    Done,
}

struct Watch {
    tasks: Arc<Tasks>,
    id: String,
    rx: broadcast::Receiver<Event>,
    tick: tokio::time::Interval,
    ended: bool,
}

fn frame(event: &Event) -> bytes::Bytes {
    sse::event(event.kind(), &serde_json::to_string(event).unwrap_or_else(|_| "{}".into()))
}

fn snapshot(task_id: &str, status: TaskStatus, detail: Option<String>) -> Event {
    Event::TaskUpdated {
        turn_id: String::new(),
        task_id: task_id.to_string(),
        status: status.as_str().to_string(),
        step_id: None,
        step_status: None,
        detail,
    }
}

impl Watch {
    async fn next(&mut self) -> Next {
        if self.ended {
            return Next::Done;
        }
        loop {
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(event) => return Next::Frame(frame(&event)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    // The runner ended the stream after the task's last event.
                    Err(broadcast::error::RecvError::Closed) => return Next::Done,
                },
                _ = self.tick.tick() => {
                    // Nothing reports a plan rejected in chat or expired:
                    // reading the task brings it up to date (and that
                    // sends its last event, if it ended).
                    match self.tasks.get(&self.id).await {
                        Ok(Some(task)) if task.status.is_final() && !self.tasks.runner().is_active(&task.id) => {
                            // Let a last event sent meanwhile go first.
                            if let Ok(event) = self.rx.try_recv() {
                                return Next::Frame(frame(&event));
                            }
                            self.ended = true;
                            return Next::Last(frame(&snapshot(&task.id, task.status, task.error.clone())));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => return Next::Done,
                    }
                }
            }
        }
    }
}

/// `GET /api/requests/{id}/events`: Server-Sent Events, one
/// `task_updated` event per change (the first one is the task's status
/// now), ending when the task has ended.
pub async fn events(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let tasks = tasks(&state)?;
    let id = path_id(id)?;
    // Subscribed before reading, so nothing between the two is missed.
    let rx = tasks.subscribe(&id);
    let task = tasks.get(&id).await?.ok_or_else(|| not_found(&id))?;
    let first = frame(&snapshot(&task.id, task.status, task.error.clone()));
    let ended = task.status.is_final() && !tasks.runner().is_active(&task.id);
    let mut tick = tokio::time::interval(STREAM_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watch = Watch { tasks, id, rx, tick, ended };
    let rest = futures::stream::unfold(watch, |mut w| async move {
        match w.next().await {
            Next::Frame(f) | Next::Last(f) => Some((f, w)),
            Next::Done => None,
        }
    });
    let frames = futures::stream::once(async move { first }).chain(rest);
    Ok(sse::response(frames, Vec::new()))
}
