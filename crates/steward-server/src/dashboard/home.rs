//! `/ui/home`: the entity catalog by area and domain, with a search box,
//! each entity's state and a sparkline of its last 24 hours (drawn here as
//! SVG from the home's history), and the insights with their charts.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use steward_core::home::{parse_number, EntityHistory, HistoryPoint};
use steward_core::store::InsightFilter;
use steward_core::EntityFilter;
use steward_protocol::api::CatalogEntity;

use super::html::{esc, time_tag, url_encode};
use super::{layout, viewer};
use crate::AppState;

const DAY_MS: i64 = 86_400_000;
/// Entities listed at most; the search narrows it down.
const SHOWN: u32 = 1000;
/// Entities whose history is read for sparklines, at most.
const SPARKLINES: usize = 300;
const INSIGHTS: u32 = 12;
const SPARK_W: f64 = 160.0;
const SPARK_H: f64 = 28.0;

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let text = |key: &str| query.get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let (q, domain, area) = (text("q"), text("domain"), text("area"));
    let mut here = String::from("/ui/home");
    if let Some(q) = &q {
        let _ = write!(here, "?q={}", url_encode(q));
    }
    let viewer = match viewer(&state, &headers, &here) {
        Ok(v) => v,
        Err(login) => return login.into_response(),
    };
    let store = state.engine.store();
    let filter = EntityFilter { domain: domain.clone(), area: area.clone(), search: q.clone(), limit: SHOWN };
    let mut body = String::new();
    let _ = write!(
        body,
        "<form class=\"search\" method=\"get\" action=\"/ui/home\" role=\"search\">\
         <label class=\"visually-hidden\" for=\"q\">Search entities</label>\
         <input id=\"q\" name=\"q\" type=\"search\" placeholder=\"Search by name, id, area…\" value=\"{}\">",
        esc(q.as_deref().unwrap_or(""))
    );
    for (name, value) in [("domain", &domain), ("area", &area)] {
        if let Some(v) = value {
            let _ = write!(body, "<input type=\"hidden\" name=\"{name}\" value=\"{}\">", esc(v));
        }
    }
    body.push_str("<button type=\"submit\">Search</button>");
    if q.is_some() || domain.is_some() || area.is_some() {
        body.push_str(" <a href=\"/ui/home\">Show all</a>");
    }
    body.push_str("</form>");

    let (entities, total) = match store.list_entities(&filter).await {
        Ok(r) => r,
        Err(e) => {
            let _ = write!(body, "<p class=\"error\">The catalog could not be read: {}</p>", esc(&e.to_string()));
            (Vec::new(), 0)
        }
    };
    let now = state.engine.clock().now_ms();
    let history = history(&state, &entities, now).await;
    let _ = write!(
        body,
        "<p class=\"meta\" id=\"entity-count\">{} of {total} entities{}</p>",
        entities.len(),
        if history.is_empty() { "" } else { " · sparklines show the last 24 hours" }
    );
    if entities.is_empty() {
        body.push_str("<p class=\"empty\">No entity matches. The catalog fills from the home at start.</p>");
    }
    // Area, then domain; entities without an area last.
    let mut grouped: BTreeMap<(bool, String), BTreeMap<String, Vec<&CatalogEntity>>> = BTreeMap::new();
    for e in &entities {
        let area = e.area.clone().or_else(|| e.area_id.clone());
        let key = (area.is_none(), area.unwrap_or_else(|| "No area".into()));
        grouped.entry(key).or_default().entry(e.domain.clone()).or_default().push(e);
    }
    body.push_str("<div class=\"areas\">");
    for ((_, area_name), domains) in &grouped {
        let _ = write!(body, "<section class=\"area card\"><h2>{}</h2>", esc(area_name));
        for (domain, list) in domains {
            let _ = write!(
                body,
                "<h3><a href=\"/ui/home?domain={}\">{}</a></h3><table class=\"entities\"><tbody>",
                esc(&url_encode(domain)),
                esc(domain)
            );
            for e in list {
                row(&mut body, e, history.get(e.entity_id.as_str()), now);
            }
            body.push_str("</tbody></table>");
        }
        body.push_str("</section>");
    }
    body.push_str("</div>");

    insights(&state, &mut body).await;
    layout(&viewer, "/ui/home", "Home", &body)
}

/// The last 24 hours of every listed entity that has a numeric or an
/// on/off state, keyed by id; empty when no home is connected.
async fn history(state: &AppState, entities: &[CatalogEntity], now: i64) -> HashMap<String, EntityHistory> {
    let Some(home) = state.engine.options().home.clone() else {
        return HashMap::new();
    };
    let ids: Vec<String> = entities
        .iter()
        .filter(|e| parse_number(&e.state).is_some() || binary_value(&e.state).is_some())
        .take(SPARKLINES)
        .map(|e| e.entity_id.clone())
        .collect();
    if ids.is_empty() {
        return HashMap::new();
    }
    match home.history(&ids, now - DAY_MS, now).await {
        Ok(list) => list.into_iter().map(|h| (h.entity_id.clone(), h)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "the dashboard could not read the home's history");
            HashMap::new()
        }
    }
}

/// Whether a state is the "on" or the "off" side of a two-state entity.
fn binary_value(state: &str) -> Option<bool> {
    match state {
        "on" | "open" | "unlocked" | "home" | "playing" | "heat" | "cool" | "detected" | "true" => Some(true),
        "off" | "closed" | "locked" | "not_home" | "idle" | "paused" | "standby" | "clear" | "false" => Some(false),
        _ => None,
    }
}

fn row(out: &mut String, e: &CatalogEntity, history: Option<&EntityHistory>, now: i64) {
    let unit = e.attributes.get("unit_of_measurement").and_then(|u| u.as_str()).unwrap_or("");
    let state_class = if !e.available {
        "unavailable"
    } else {
        match binary_value(&e.state) {
            Some(true) => "on",
            Some(false) => "off",
            None => "value",
        }
    };
    let spark = history.map(|h| sparkline(&h.points, now)).unwrap_or_default();
    let _ = write!(
        out,
        "<tr data-entity-id=\"{}\"><td class=\"name\">{}<div class=\"meta\"><code>{}</code> · changed {}</div></td>\
         <td class=\"state {state_class}\">{}{}</td><td class=\"spark\">{spark}</td></tr>",
        esc(&e.entity_id),
        esc(&e.name),
        esc(&e.entity_id),
        time_tag(e.last_changed),
        esc(&e.state),
        if unit.is_empty() { String::new() } else { format!(" {}", esc(unit)) },
    );
}

/// An inline SVG of the last 24 hours: a line for a number, a strip of "on"
/// spans for a two-state entity; nothing when there is too little to draw.
pub fn sparkline(points: &[HistoryPoint], now: i64) -> String {
    let start = now - DAY_MS;
    let x = |at: i64| ((at.clamp(start, now) - start) as f64 / DAY_MS as f64) * SPARK_W;
    let numbers: Vec<(i64, f64)> = points.iter().filter_map(|p| parse_number(&p.state).map(|v| (p.at, v))).collect();
    let mut svg = format!(
        "<svg class=\"sparkline\" viewBox=\"0 0 {SPARK_W} {SPARK_H}\" width=\"{SPARK_W}\" height=\"{SPARK_H}\" \
         role=\"img\" aria-label=\"last 24 hours\">"
    );
    if numbers.len() >= 2 {
        let (min, max) =
            numbers.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| (lo.min(*v), hi.max(*v)));
        let span = if max > min { max - min } else { 1.0 };
        let y = |v: f64| SPARK_H - 2.0 - (v - min) / span * (SPARK_H - 4.0);
        let mut line = String::new();
        for (at, v) in &numbers {
            let _ = write!(line, "{:.1},{:.1} ", x(*at), y(*v));
        }
        // Held until now.
        if let Some((_, last)) = numbers.last() {
            let _ = write!(line, "{SPARK_W:.1},{:.1}", y(*last));
        }
        let _ = write!(
            svg,
            "<title>min {} · max {}</title><polyline class=\"line\" fill=\"none\" points=\"{}\"/>",
            trim_number(min),
            trim_number(max),
            line.trim_end()
        );
    } else {
        let spans: Vec<(i64, bool)> = points.iter().filter_map(|p| binary_value(&p.state).map(|b| (p.at, b))).collect();
        if spans.is_empty() {
            return String::new();
        }
        let _ = write!(svg, "<rect class=\"strip-off\" x=\"0\" y=\"8\" width=\"{SPARK_W}\" height=\"12\"/>");
        let mut on_for = 0i64;
        for (i, (at, on)) in spans.iter().enumerate() {
            let end = spans.get(i + 1).map(|(next, _)| *next).unwrap_or(now);
            if *on {
                on_for += end.clamp(start, now) - (*at).clamp(start, now);
                let (x0, x1) = (x(*at), x(end));
                let _ = write!(
                    svg,
                    "<rect class=\"strip-on\" x=\"{x0:.1}\" y=\"8\" width=\"{:.1}\" height=\"12\"/>",
                    (x1 - x0).max(0.5)
                );
            }
        }
        let _ = write!(svg, "<title>on for {:.1} h of the last 24</title>", on_for as f64 / 3_600_000.0);
    }
    svg.push_str("</svg>");
    svg
}

fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

async fn insights(state: &AppState, out: &mut String) {
    let filter = InsightFilter { kind: None, entity_id: None, limit: INSIGHTS };
    let list = state.engine.store().list_insights(&filter).await.unwrap_or_default();
    out.push_str("<h2>Insights</h2>");
    if list.is_empty() {
        out.push_str(
            "<p class=\"empty\">No insights yet. Ask the data scientist for an energy analysis, or \
             <code>POST /api/insights/analyze</code>.</p>",
        );
        return;
    }
    out.push_str("<div class=\"cards insights\">");
    for i in &list {
        let _ = write!(
            out,
            "<article class=\"card insight\"><header><h3>{}</h3><span class=\"badge\">{}</span></header>\
             <p class=\"meta\">{} · {}</p><p class=\"summary\">{}</p>",
            esc(&i.title),
            esc(&i.kind),
            esc(&i.created_by),
            time_tag(i.created_at),
            esc(&i.summary)
        );
        if i.chart.is_some() {
            let url = format!("/api/insights/{}/chart.svg", url_encode(&i.id));
            let _ = write!(
                out,
                "<a href=\"{}\"><img class=\"chart\" src=\"{}\" alt=\"Chart: {}\" loading=\"lazy\"></a>",
                esc(&url),
                esc(&url),
                esc(&i.title)
            );
        }
        out.push_str("</article>");
    }
    out.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(at: i64, state: &str) -> HistoryPoint {
        HistoryPoint { at, state: state.into() }
    }

    #[test]
    fn numbers_draw_a_line_and_two_states_a_strip() {
        let now = 10 * DAY_MS;
        let line = sparkline(&[p(now - DAY_MS, "1"), p(now - DAY_MS / 2, "3")], now);
        assert!(line.contains("<polyline"), "{line}");
        assert!(line.contains("0.0,26.0 80.0,2.0 160.0,2.0"), "{line}");
        let strip = sparkline(&[p(now - DAY_MS, "off"), p(now - DAY_MS / 2, "on")], now);
        assert!(strip.contains("class=\"strip-on\" x=\"80.0\""), "{strip}");
        assert!(strip.contains("on for 12.0 h"), "{strip}");
        assert_eq!(sparkline(&[p(now, "unknown")], now), "");
    }
}
