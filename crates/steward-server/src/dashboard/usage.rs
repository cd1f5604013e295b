//! `/ui/usage`: spend by day, provider and model, the budgets, and the
//! share of requests served by local models — what `GET /api/usage` says.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use steward_protocol::api::UsageLine;

use super::html::{esc, money};
use super::{layout, viewer};
use crate::AppState;

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match viewer(&state, &headers, "/ui/usage") {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let mut params = HashMap::new();
    if let Some(days) = query.get("days") {
        params.insert("days".to_string(), days.clone());
    }
    let report = match crate::usage::report(State(state.clone()), Ok(Query(params))).await {
        Ok(axum::Json(r)) => r,
        Err(e) => return e.into_response(),
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<form class=\"search\" method=\"get\" action=\"/ui/usage\"><label for=\"days\">Days</label>\
         <input id=\"days\" name=\"days\" type=\"number\" min=\"1\" max=\"3660\" value=\"{}\"><button type=\"submit\">Show</button></form>\
         <div class=\"stats\"><div class=\"stat card\"><span class=\"value\" id=\"usage-cost\">{}</span><span class=\"label\">spent since {}</span></div>\
         <div class=\"stat card\"><span class=\"value\" id=\"usage-requests\">{}</span><span class=\"label\">model requests</span></div>\
         <div class=\"stat card\"><span class=\"value\" id=\"usage-local\">{:.0}%</span><span class=\"label\">served locally</span>\
         <progress max=\"1\" value=\"{:.4}\">{:.0}%</progress></div></div>",
        report.days,
        money(report.cost),
        esc(&report.since),
        report.requests,
        report.local_share * 100.0,
        report.local_share,
        report.local_share * 100.0,
    );

    body.push_str("<h2>Budgets</h2>");
    if report.budgets.is_empty() {
        body.push_str("<p class=\"empty\">No budgets are configured (<code>[llm.budgets]</code> in steward.toml).</p>");
    } else {
        body.push_str("<div class=\"cards budgets\">");
        for b in &report.budgets {
            let used = if b.limit > 0.0 { (b.spent + b.reserved) / b.limit } else { 0.0 };
            let class = if used >= 1.0 {
                "bad"
            } else if used >= 0.8 {
                "warn"
            } else {
                "ok"
            };
            let _ = write!(
                body,
                "<div class=\"card budget {class}\"><strong>{}</strong> <span class=\"meta\">{} from {}</span>\
                 <progress max=\"{:.6}\" value=\"{:.6}\"></progress>\
                 <div class=\"meta\">{} of {} spent · {} reserved · {} left</div></div>",
                esc(&b.scope),
                esc(&b.period),
                esc(&b.period_start),
                b.limit.max(0.000_001),
                (b.spent + b.reserved).min(b.limit.max(0.000_001)),
                money(b.spent),
                money(b.limit),
                money(b.reserved),
                money(b.remaining)
            );
        }
        body.push_str("</div>");
    }
    table(&mut body, "By day", "day", &report.by_day);
    table(&mut body, "By provider", "provider", &report.by_provider);
    table(&mut body, "By model", "model", &report.by_model);
    layout(&viewer, "/ui/usage", "Usage", &body)
}

/// A table of usage lines with a bar of each line's cost (or requests,
/// when nothing cost anything) against the largest.
fn table(out: &mut String, title: &str, key: &str, lines: &[UsageLine]) {
    let _ = write!(out, "<h2>{}</h2>", esc(title));
    if lines.is_empty() {
        out.push_str("<p class=\"empty\">No model requests in this period.</p>");
        return;
    }
    let by_cost = lines.iter().any(|l| l.cost > 0.0);
    let measure = |l: &UsageLine| if by_cost { l.cost } else { l.requests as f64 };
    let max = lines.iter().map(measure).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
    let _ = write!(
        out,
        "<div class=\"scroll\"><table class=\"usage\"><thead><tr><th>{}</th><th>Requests</th><th>Local</th>\
         <th>Tokens in / out</th><th>Cost</th><th></th></tr></thead><tbody>",
        esc(key)
    );
    for l in lines {
        let width = measure(l) / max * 100.0;
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{} <span class=\"meta\">({} ok)</span></td><td>{}</td><td>{} / {}</td><td>{}</td>\
             <td class=\"bar\"><svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" width=\"120\" height=\"10\" aria-hidden=\"true\">\
             <rect class=\"bar-fill\" x=\"0\" y=\"0\" width=\"{width:.1}\" height=\"10\"/></svg></td></tr>",
            esc(&l.key),
            l.requests,
            l.ok_requests,
            l.local_requests,
            l.prompt_tokens,
            l.completion_tokens,
            money(l.cost)
        );
    }
    out.push_str("</tbody></table></div>");
}
