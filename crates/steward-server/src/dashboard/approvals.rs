//! `/ui/approvals`: what waits for a decision, with its preview, and what
//! was decided. New approvals appear without a reload: the page's script
//! watches `/api/events` and fetches `?fragment=1` again.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use steward_core::ApprovalFilter;
use steward_protocol::approval::{Approval, ApprovalStatus};
use steward_protocol::Effect;

use super::html::{badge, esc, json_pre, time_tag, url_encode};
use super::{html_response, layout, viewer};
use crate::AppState;

const SHOWN: u32 = 100;

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match viewer(&state, &headers, "/ui/approvals") {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let list = lists(&state).await;
    if query.contains_key("fragment") {
        return html_response(StatusCode::OK, list);
    }
    let body = format!(
        "<p class=\"lead\">Every change an agent wants to make waits here for you. <span class=\"live-status\" data-live-status></span></p>\
         <div id=\"approvals\" data-live-fragment=\"/ui/approvals?fragment=1\" \
         data-live-events=\"approval_requested,approval_updated\" data-after=\"{}\">{list}</div>",
        state.engine.activity().last_seq()
    );
    layout(&viewer, "/ui/approvals", "Approvals", &body)
}

async fn lists(state: &AppState) -> String {
    let pending = ApprovalFilter { status: Some(ApprovalStatus::Pending), conversation_id: None };
    let all = ApprovalFilter { status: None, conversation_id: None };
    let mut out = String::new();
    match state.engine.approvals(&pending, SHOWN).await {
        Ok(list) => {
            let _ = write!(out, "<h2>Pending <span class=\"count\" id=\"pending-count\">{}</span></h2>", list.len());
            if list.is_empty() {
                out.push_str("<p class=\"empty\" id=\"no-pending\">Nothing is waiting for a decision.</p>");
            }
            out.push_str("<div class=\"cards\" id=\"pending\">");
            for a in &list {
                card(&mut out, a);
            }
            out.push_str("</div>");
        }
        Err(e) => {
            let _ = write!(out, "<p class=\"error\">The approvals could not be read: {}</p>", esc(&e.to_string()));
        }
    }
    out.push_str("<h2>History</h2>");
    match state.engine.approvals(&all, SHOWN).await {
        Ok(list) => {
            let decided: Vec<&Approval> = list.iter().filter(|a| a.status != ApprovalStatus::Pending).collect();
            if decided.is_empty() {
                out.push_str("<p class=\"empty\">Nothing decided yet.</p>");
            } else {
                out.push_str(
                    "<div class=\"scroll\"><table id=\"history\"><thead><tr><th>Status</th><th>What</th><th>Agent</th>\
                     <th>Decided by</th><th>Decided</th><th>Outcome</th></tr></thead><tbody>",
                );
                for a in decided {
                    let _ = write!(
                        out,
                        "<tr data-approval-id=\"{}\"><td>{}</td><td>{}<div class=\"meta\"><code>{}</code></div></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&a.id),
                        badge(a.status.as_str(), a.status.as_str()),
                        esc(&a.preview.summary),
                        esc(&a.id),
                        esc(&a.agent),
                        esc(a.decided_by.as_deref().unwrap_or("—")),
                        a.decided_at.map(time_tag).unwrap_or_else(|| "—".into()),
                        esc(a.outcome.as_deref().unwrap_or(""))
                    );
                }
                out.push_str("</tbody></table></div>");
            }
        }
        Err(e) => {
            let _ = write!(out, "<p class=\"error\">{}</p>", esc(&e.to_string()));
        }
    }
    out
}

fn effect_badge(effect: Effect) -> String {
    let kind = match effect {
        Effect::Read => "ok",
        Effect::Mutate => "warn",
        Effect::Destructive => "bad",
    };
    badge(kind, effect.as_str())
}

/// A pending approval: what it does, to what (with the state now), the
/// preview (diffs and check-mode output), when it expires, and buttons.
fn card(out: &mut String, a: &Approval) {
    let id = url_encode(&a.id);
    let _ = write!(
        out,
        "<article class=\"card approval\" data-approval-id=\"{}\"><header><h3>{}</h3>{} {}</header>",
        esc(&a.id),
        esc(&a.preview.summary),
        effect_badge(a.effect),
        badge(a.status.as_str(), a.status.as_str())
    );
    let _ = write!(
        out,
        "<p class=\"meta\"><code>{}</code> · {} asks to run <code>{}</code> · asked {} · expires {} · <a href=\"/?c={}\">conversation</a></p>",
        esc(&a.id),
        esc(&a.agent),
        esc(&a.tool),
        time_tag(a.created_at),
        time_tag(a.expires_at),
        esc(&url_encode(&a.conversation_id))
    );
    if !a.preview.targets.is_empty() {
        out.push_str("<ul class=\"targets\">");
        for t in &a.preview.targets {
            let _ = write!(
                out,
                "<li><strong>{}</strong> <code>{}</code>{}</li>",
                esc(t.name.as_deref().unwrap_or(&t.id)),
                esc(&t.id),
                t.state.as_deref().map(|s| format!(" — now <em>{}</em>", esc(s))).unwrap_or_default()
            );
        }
        out.push_str("</ul>");
    }
    if let Some(details) = &a.preview.details {
        let _ = write!(out, "<pre class=\"preview\">{}</pre>", esc(details));
    }
    let _ = write!(out, "<details><summary>Arguments</summary>{}</details>", json_pre(&a.arguments));
    let _ = write!(
        out,
        "<div class=\"actions\"><button class=\"approve\" data-post=\"/api/proposals/{id}/approve\">Approve</button>\
         <button class=\"reject\" data-post=\"/api/proposals/{id}/reject\">Reject</button><span class=\"result\"></span></div></article>"
    );
}
