//! `GET /api/events`: the engine's activity stream as Server-Sent Events —
//! turns, delegations, tool calls, approvals, task progress and model calls
//! with their tier and cost, across every conversation.
//!
//! Each message is named after its event's type and carries the entry's
//! sequence number as its `id`, so a browser's `EventSource` resumes where
//! it stopped (`Last-Event-ID`); `?after=<seq>` does the same by hand. On
//! connect the most recent events are sent first.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use steward_protocol::ActivityEvent;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::query::query_map;
use crate::{sse, AppState};

/// A comment line this often keeps proxies and browsers from closing an
/// idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

fn frame(entry: &ActivityEvent) -> Bytes {
    let json = serde_json::to_string(entry).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: {}\nid: {}\ndata: {json}\n\n", entry.event.kind(), entry.seq))
}

/// Where to resume: `?after=`, else the `Last-Event-ID` header, else the
/// start of what is kept.
fn resume_from(query: &HashMap<String, String>, headers: &HeaderMap) -> Result<u64, ApiError> {
    if let Some(s) = query.get("after") {
        return s.trim().parse::<u64>().map_err(|_| {
            ApiError::invalid(format!("after must be an event's sequence number (a whole number), not '{s}'"))
                .with_param("after")
        });
    }
    Ok(headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0))
}

pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query_map(query)?;
    let after = resume_from(&query, &headers)?;
    let (replay, rx) = state.engine.activity().watch(after);
    let first: Vec<Bytes> =
        std::iter::once(Bytes::from_static(b": activity\n\n")).chain(replay.iter().map(frame)).collect();
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    let closed = Box::pin(state.engine.activity().closed());
    let live = futures::stream::unfold((rx, tick, closed), |(mut rx, mut tick, mut closed)| async move {
        let bytes = tokio::select! {
            _ = &mut closed => return None,
            got = rx.recv() => match got {
                Ok(entry) => frame(&entry),
                // A watcher too slow for the stream is told what it missed
                // and goes on from the oldest event still buffered.
                Err(RecvError::Lagged(n)) => {
                    Bytes::from(format!("event: lagged\ndata: {{\"missed\": {n}}}\n\n"))
                }
                // The engine is gone: the server is stopping.
                Err(RecvError::Closed) => return None,
            },
            _ = tick.tick() => Bytes::from_static(b": keepalive\n\n"),
        };
        Some((bytes, (rx, tick, closed)))
    });
    Ok(sse::response(futures::stream::iter(first).chain(live), Vec::new()))
}
