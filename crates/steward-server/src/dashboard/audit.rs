//! `/ui/audit`: the audit trail, page by page, and whether its hash chain
//! verifies — what `GET /api/audit` says.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::html::{badge, esc, json_pre, time_tag};
use super::{layout, viewer};
use crate::AppState;

const PAGE: u32 = 200;

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match viewer(&state, &headers, "/ui/audit") {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let mut params = HashMap::from([("limit".to_string(), PAGE.to_string())]);
    if let Some(after) = query.get("after") {
        params.insert("after".to_string(), after.clone());
    }
    let report = match crate::audit::list(State(state.clone()), Ok(Query(params))).await {
        Ok(axum::Json(r)) => r,
        Err(e) => return e.into_response(),
    };
    let mut body = String::new();
    let v = &report.verified;
    if v.ok {
        let _ = write!(
            body,
            "<p class=\"verify ok\" id=\"chain\">{} The hash chain verifies: all {} entries are intact.</p>",
            badge("ok", "verified"),
            v.checked
        );
    } else {
        let _ = write!(
            body,
            "<p class=\"verify bad\" id=\"chain\">{} The hash chain is broken at entry {}: {}. Entries after it cannot be trusted.</p>",
            badge("bad", "broken"),
            v.first_bad_seq.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
            esc(v.reason.as_deref().unwrap_or("unknown reason"))
        );
    }
    if report.entries.is_empty() {
        body.push_str("<p class=\"empty\">The audit log is empty.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\"><table id=\"audit\"><thead><tr><th>#</th><th>When</th><th>Actor</th><th>Action</th>\
             <th>Subject</th><th>Detail</th></tr></thead><tbody>",
        );
        for e in &report.entries {
            let targets = if e.targets.is_empty() {
                String::new()
            } else {
                format!("<div class=\"meta\">{}</div>", esc(&e.targets.join(", ")))
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}{targets}</td>\
                 <td><details><summary>detail</summary>{}<div class=\"meta\">hash <code>{}</code></div></details></td></tr>",
                e.seq,
                time_tag(e.at),
                esc(&e.actor),
                esc(&e.action),
                esc(&e.subject),
                json_pre(&e.detail),
                esc(e.hash.get(..16).unwrap_or(&e.hash))
            );
        }
        body.push_str("</tbody></table></div>");
        if report.entries.len() == PAGE as usize {
            if let Some(last) = report.entries.last() {
                let _ =
                    write!(body, "<p><a class=\"button\" href=\"/ui/audit?after={}\">Later entries</a></p>", last.seq);
            }
        }
    }
    layout(&viewer, "/ui/audit", "Audit", &body)
}
