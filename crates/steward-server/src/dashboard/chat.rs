//! `/`: the chat view — pick an agent, the conversations, one
//! conversation's messages, and a composer whose reply streams in (the
//! streaming and the approval buttons are `assets/app.js`).

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use steward_protocol::api::StoredMessage;
use steward_protocol::Role;

use super::html::{esc, time_tag, url_encode};
use super::{layout, viewer};
use crate::AppState;

const LISTED: u32 = 50;

pub async fn page_for(state: &AppState, headers: &HeaderMap, query: &HashMap<String, String>) -> Response {
    let selected = query.get("c").map(|c| c.trim()).filter(|c| !c.is_empty());
    let here = match selected {
        Some(c) => format!("/?c={}", url_encode(c)),
        None => "/".to_string(),
    };
    let viewer = match viewer(state, headers, &here) {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let store = state.engine.store();
    let mut body = String::new();
    let conversations = store.list_conversations(LISTED).await.unwrap_or_default();
    let detail = match selected {
        Some(id) => match store.get_conversation(id).await {
            Ok(Some(c)) => Some((c, store.list_messages(id).await.unwrap_or_default())),
            Ok(None) | Err(_) => None,
        },
        None => None,
    };
    if selected.is_some() && detail.is_none() {
        body.push_str("<p class=\"error\">That conversation was not found; start a new one below.</p>");
    }

    body.push_str("<div class=\"chat\"><aside class=\"conversations\"><a class=\"button\" href=\"/\">New conversation</a><ul id=\"conversation-list\">");
    for c in &conversations {
        let current = if detail.as_ref().is_some_and(|(d, _)| d.id == c.id) { " aria-current=\"true\"" } else { "" };
        let title = c.title.clone().unwrap_or_else(|| "(untitled)".into());
        let _ = write!(
            body,
            "<li><a href=\"/?c={}\"{current}><span class=\"title\">{}</span><span class=\"meta\">{} · {}</span></a></li>",
            esc(&url_encode(&c.id)),
            esc(&title),
            esc(&c.agent),
            time_tag(c.updated_at)
        );
    }
    if conversations.is_empty() {
        body.push_str("<li class=\"empty\">No conversations yet.</li>");
    }
    body.push_str("</ul></aside>");

    let (conversation_id, agent) = match &detail {
        Some((c, _)) => (c.id.clone(), c.agent.clone()),
        None => (String::new(), state.engine.agents().default_agent().to_string()),
    };
    let _ = write!(body, "<section class=\"thread\" id=\"chat\" data-conversation=\"{}\">", esc(&conversation_id));
    let disabled = if detail.is_some() { " disabled" } else { "" };
    let _ = write!(
        body,
        "<div class=\"agent-pick\"><label for=\"agent\">Agent</label><select id=\"agent\" name=\"agent\"{disabled}>"
    );
    for a in state.engine.agents().all() {
        let selected = if a.id == agent { " selected" } else { "" };
        let _ =
            write!(body, "<option value=\"{}\"{selected}>{} — {}</option>", esc(&a.id), esc(&a.id), esc(&a.purpose));
    }
    body.push_str("</select>");
    if let Some((c, _)) = &detail {
        let _ = write!(body, "<span class=\"meta\">{}</span>", esc(c.title.as_deref().unwrap_or(&c.id)));
    }
    body.push_str("</div><div id=\"messages\" class=\"messages\" aria-live=\"polite\">");
    if let Some((_, messages)) = &detail {
        for m in messages {
            message(&mut body, m);
        }
    }
    body.push_str(
        "</div><form id=\"composer\" class=\"composer\"><label class=\"visually-hidden\" for=\"message\">Message</label>\
         <textarea id=\"message\" name=\"content\" rows=\"2\" placeholder=\"Ask Steward… (Enter sends, Shift+Enter for a new line)\" required></textarea>\
         <button type=\"submit\" id=\"send\">Send</button></form></section></div>",
    );
    layout(&viewer, "/", "Chat", &body)
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    page_for(&state, &headers, &query).await
}

/// One stored message; tool calls and results fold away in `<details>`.
fn message(out: &mut String, m: &StoredMessage) {
    match m.role {
        Role::System => {}
        Role::User => {
            let _ = write!(
                out,
                "<div class=\"msg user\"><div class=\"who\">you</div><div class=\"text\">{}</div></div>",
                esc(&m.content)
            );
        }
        Role::Assistant => {
            out.push_str("<div class=\"msg assistant\"><div class=\"who\">steward</div>");
            if !m.content.is_empty() {
                let _ = write!(out, "<div class=\"text\">{}</div>", esc(&m.content));
            }
            for call in &m.tool_calls {
                let args = serde_json::from_str::<serde_json::Value>(&call.arguments)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| call.arguments.clone());
                let _ = write!(
                    out,
                    "<details class=\"tool\"><summary>tool call <code>{}</code></summary><pre>{}</pre></details>",
                    esc(&call.name),
                    esc(&args)
                );
            }
            out.push_str("</div>");
        }
        Role::Tool => {
            let name = m.name.as_deref().unwrap_or("tool");
            let _ = write!(
                out,
                "<div class=\"msg toolresult\"><details class=\"tool\"><summary>result of <code>{}</code></summary><pre>{}</pre></details></div>",
                esc(name),
                esc(&m.content)
            );
        }
    }
}
