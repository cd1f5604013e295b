//! `GET /api/usage`: spend by day, provider and model from the ledger, and
//! the budgets' state.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use steward_core::{UsageGroup, UsageTotal};
use steward_protocol::api::{UsageLine, UsageReport};

use crate::error::ApiError;
use crate::query::{number_param, query_map};
use crate::AppState;

const DAY_MS: i64 = 86_400_000;

fn line(t: UsageTotal) -> UsageLine {
    UsageLine {
        key: t.key,
        requests: t.requests,
        ok_requests: t.ok_requests,
        local_requests: t.local_requests,
        prompt_tokens: t.prompt_tokens,
        completion_tokens: t.completion_tokens,
        cached_tokens: t.cached_tokens,
        cost: t.cost_micros as f64 / 1e6,
    }
}

pub async fn report(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<UsageReport>, ApiError> {
    let query = query_map(query)?;
    let days = number_param(&query, "days", 30, 1..=3660)?;
    let now = state.engine.clock().now_ms();
    // Whole UTC days: today and the days before it.
    let since = (now.div_euclid(DAY_MS) - i64::from(days) + 1) * DAY_MS;
    if let Some(g) = &state.gateway {
        g.flush().await;
    }
    let store = state.engine.store();
    let totals = |group| async move { store.usage_totals(since, group).await.map_err(ApiError::from) };
    let by_day = totals(UsageGroup::Day).await?;
    let by_provider = totals(UsageGroup::Provider).await?;
    let by_model = totals(UsageGroup::Model).await?;
    let requests: i64 = by_provider.iter().map(|t| t.requests).sum();
    let local: i64 = by_provider.iter().map(|t| t.local_requests).sum();
    let cost: i64 = by_provider.iter().map(|t| t.cost_micros).sum();
    Ok(Json(UsageReport {
        since: steward_core::tools::rfc3339(since).chars().take(10).collect(),
        days,
        requests,
        local_share: if requests > 0 { local as f64 / requests as f64 } else { 0.0 },
        cost: cost as f64 / 1e6,
        by_day: by_day.into_iter().map(line).collect(),
        by_provider: by_provider.into_iter().map(line).collect(),
        by_model: by_model.into_iter().map(line).collect(),
        budgets: state.gateway.as_ref().map(|g| g.budgets()).unwrap_or_default(),
    }))
}
