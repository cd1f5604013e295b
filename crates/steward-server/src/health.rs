//! `/health` and `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use steward_protocol::api::{ComponentHealth, Health};

use crate::AppState;

/// Liveness and readiness: 200 when the database answers, 503 otherwise.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.engine.store();
    let ping = tokio::time::timeout(std::time::Duration::from_secs(5), store.ping()).await;
    // `/health` needs no key, so the reply says only that the database is
    // unreachable; the details (host, user) go to the log.
    let error = match ping {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the database is not answering");
            Some("the database is not answering; see the server log".to_string())
        }
        Err(_) => Some("the database did not answer within 5 s".to_string()),
    };
    let ok = error.is_none();
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        database: ComponentHealth { ok, backend: store.backend().to_string(), error },
    };
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(8 * 1024);
    state.http_metrics.render(&mut out);
    state.engine.metrics().render(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
}
