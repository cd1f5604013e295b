//! `/api/insights`: what analyses found, with their evidence, and their
//! charts drawn as SVG and PNG.
//!
//! `POST /api/insights/analyze` runs the energy analysis on the engine's
//! home and keeps the result; `POST /api/insights` keeps an insight a person
//! or a client wrote. Every insight with a chart carries `chart_url`
//! (`/api/insights/{id}/chart.svg`; `chart.png` is the same as a picture),
//! which is what a chat answer links.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use steward_core::home::domain_of;
use steward_core::insights::{
    analyze_energy_insight, chart_url, new_insight_id, AnalyzeError, InsightDraft, DEFAULT_HOURS, MAX_HOURS, MIN_HOURS,
};
use steward_core::store::InsightFilter;
use steward_core::ToolError;
use steward_protocol::insight::{AnalyzeRequest, Chart, Insight, InsightList, NewInsight};
use steward_protocol::ErrorCode;

use crate::auth::Actor;
use crate::body::{parse_json, read_limited};
use crate::chart::{render_png, render_svg};
use crate::error::ApiError;
use crate::native::path_id;
use crate::query::{number_param, query_map};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const MAX_TITLE_CHARS: usize = 200;
const MAX_SUMMARY_CHARS: usize = 10_000;
const MAX_KIND_CHARS: usize = 40;
const MAX_ENTITIES: usize = 100;
/// Evidence is the numbers an insight rests on, not a data dump.
const MAX_EVIDENCE_BYTES: usize = 64 * 1024;
/// Points over every series of a posted chart; the renderer draws fewer.
const MAX_CHART_POINTS: usize = 20_000;
const MAX_CHART_SERIES: usize = 20;
const MAX_CHART_BANDS: usize = 100;

/// Charts never change once stored, so clients may keep them a while.
const CHART_CACHE: &str = "private, max-age=3600";
/// A generated SVG has no scripts or links; this keeps it that way even if
/// a browser opens it directly.
const SVG_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("insight '{id}' not found; list them with GET /api/insights"))
}

/// The insight as served: `chart_url` set exactly when it has a chart.
fn served(mut insight: Insight) -> Insight {
    insight.chart_url = insight.chart.as_ref().map(|_| chart_url(&insight.id));
    insight
}

/// `GET /api/insights?kind=energy&entity_id=sensor.house_energy&limit=20`, newest first.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<InsightList>, ApiError> {
    let query = query_map(query)?;
    let text = |key: &str| query.get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let filter = InsightFilter {
        kind: text("kind"),
        entity_id: text("entity_id"),
        limit: number_param(&query, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?,
    };
    let insights = state.engine.store().list_insights(&filter).await.map_err(ApiError::from)?;
    Ok(Json(InsightList { insights: insights.into_iter().map(served).collect() }))
}

/// `GET /api/insights/{id}`
pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Insight>, ApiError> {
    let id = path_id(id)?;
    let insight = state.engine.store().get_insight(&id).await.map_err(ApiError::from)?.ok_or_else(|| not_found(&id))?;
    Ok(Json(served(insight)))
}

/// Stores `draft` as made by `actor` now, and answers 201 with it.
async fn keep(state: &AppState, draft: InsightDraft, actor: String) -> Result<Response, ApiError> {
    let id = new_insight_id();
    let insight = served(draft.into_insight(id, actor, state.engine.clock().now_ms(), None));
    state.engine.store().create_insight(&insight).await.map_err(ApiError::from)?;
    let mut response = (StatusCode::CREATED, Json(&insight)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/insights/{}", insight.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `POST /api/insights` with a [`NewInsight`]: 201 with the stored insight.
pub async fn create(
    State(state): State<AppState>,
    Actor(actor): Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let new: NewInsight = parse_json(&bytes, None)?;
    let draft = validate(new)?;
    keep(&state, draft, actor).await
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::invalid(message).with_param(field)
}

/// Checks a posted insight; every refusal names the field to fix.
fn validate(new: NewInsight) -> Result<InsightDraft, ApiError> {
    let title = new.title.trim().to_string();
    if title.is_empty() {
        return Err(invalid("title", "title is empty; give the insight a short title".into()));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(invalid("title", format!("title is longer than {MAX_TITLE_CHARS} characters; shorten it")));
    }
    let summary = new.summary.trim().to_string();
    if summary.is_empty() {
        return Err(invalid("summary", "summary is empty; say in a few sentences what was found".into()));
    }
    if summary.chars().count() > MAX_SUMMARY_CHARS {
        return Err(invalid(
            "summary",
            format!("summary is longer than {MAX_SUMMARY_CHARS} characters; put the details in evidence"),
        ));
    }
    let kind = new.kind.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).unwrap_or_else(|| "note".into());
    let kind_ok = kind.len() <= MAX_KIND_CHARS
        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !kind_ok {
        return Err(invalid(
            "kind",
            format!(
                "kind must be a short lower-case word such as energy, diagnosis, anomaly or note (a-z, 0-9, _ and -, \
at most {MAX_KIND_CHARS}), not '{kind}'"
            ),
        ));
    }
    if new.entity_ids.len() > MAX_ENTITIES {
        return Err(invalid("entity_ids", format!("entity_ids names more than {MAX_ENTITIES} entities")));
    }
    if let Some(bad) = new.entity_ids.iter().find(|id| id.len() > 255 || domain_of(id).is_none()) {
        return Err(invalid("entity_ids", format!("'{bad}' is not an entity id; ids look like sensor.house_energy")));
    }
    let evidence = new.evidence.unwrap_or_else(|| serde_json::json!({}));
    if evidence.to_string().len() > MAX_EVIDENCE_BYTES {
        return Err(invalid(
            "evidence",
            format!("evidence is larger than {} KiB; keep the numbers the insight rests on", MAX_EVIDENCE_BYTES / 1024),
        ));
    }
    if let Some(chart) = &new.chart {
        check_chart(chart)?;
    }
    Ok(InsightDraft { kind, title, summary, evidence, entity_ids: new.entity_ids, chart: new.chart })
}

fn check_chart(chart: &Chart) -> Result<(), ApiError> {
    let points: usize = chart.series.iter().map(|s| s.points.len()).sum();
    if chart.series.len() > MAX_CHART_SERIES || points > MAX_CHART_POINTS || chart.bands.len() > MAX_CHART_BANDS {
        return Err(invalid(
            "chart",
            format!(
                "the chart is too big to draw: at most {MAX_CHART_SERIES} series, {MAX_CHART_POINTS} points and \
{MAX_CHART_BANDS} bands (it has {}, {points} and {}); aggregate the data first",
                chart.series.len(),
                chart.bands.len()
            ),
        ));
    }
    Ok(())
}

/// A 503 saying that no home is connected, in the usual error shape.
fn no_home() -> Response {
    let body = serde_json::json!({"error": {
        "message": "no home is connected to this server, so there is nothing to analyse; configure Home Assistant \
    (HA_URL and HA_TOKEN) or run without it to use the demo home",
        "type": "server_error",
        "param": null,
        "code": "home_not_configured",
    }});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

impl From<AnalyzeError> for ApiError {
    fn from(e: AnalyzeError) -> Self {
        match e {
            AnalyzeError::Invalid { field, message } => invalid(field, message),
            e @ AnalyzeError::NoMeters => ApiError::new(ErrorCode::NotFound, e.to_string()),
            AnalyzeError::Home(ToolError::InvalidArguments(m)) => invalid("entity_ids", m),
            AnalyzeError::Home(ToolError::Failed(m)) => {
                ApiError::new(ErrorCode::ToolFailed, format!("the home could not be read: {m}"))
            }
        }
    }
}

/// `POST /api/insights/analyze` with `{"hours"?, "entity_ids"?}` (an empty
/// body analyses every meter over the last 24 hours): 201 with the stored
/// energy insight and its `chart_url`.
pub async fn analyze(
    State(state): State<AppState>,
    Actor(actor): Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let req: AnalyzeRequest = parse_json(&bytes, Some(AnalyzeRequest::default()))?;
    let hours = req.hours.unwrap_or(DEFAULT_HOURS);
    if !(MIN_HOURS..=MAX_HOURS).contains(&hours) {
        return Err(invalid("hours", format!("hours must be from {MIN_HOURS} to {MAX_HOURS} (one week), not {hours}")));
    }
    let Some(home) = state.engine.options().home.clone() else {
        return Ok(no_home());
    };
    let clock = state.engine.clock().clone();
    let draft =
        analyze_energy_insight(home.as_ref(), clock.as_ref(), hours, req.entity_ids, state.energy_price_per_kwh)
            .await?;
    keep(&state, draft, actor).await
}

/// The stored chart of insight `id`.
async fn chart_of(state: &AppState, id: &str) -> Result<Chart, ApiError> {
    let insight = state.engine.store().get_insight(id).await.map_err(ApiError::from)?.ok_or_else(|| not_found(id))?;
    insight.chart.ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("insight '{id}' has no chart; its numbers are in its evidence"))
    })
}

fn picture(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = (StatusCode::OK, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CHART_CACHE));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /api/insights/{id}/chart.svg`
pub async fn chart_svg(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let chart = chart_of(&state, &id).await?;
    let mut response = picture("image/svg+xml; charset=utf-8", render_svg(&chart));
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SVG_POLICY));
    Ok(response)
}

/// `GET /api/insights/{id}/chart.png`
pub async fn chart_png(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let chart = chart_of(&state, &id).await?;
    // Rasterising is a few milliseconds of CPU: off the async workers.
    let png = tokio::task::spawn_blocking(move || render_png(&chart))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("drawing the chart stopped unexpectedly: {e}")))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(picture("image/png", png))
}
