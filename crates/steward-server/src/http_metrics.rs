//! Per-route request counters and latency histograms, plus the span every
//! request runs in.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use steward_core::metrics::Histogram;
use tracing::Instrument;

use crate::AppState;

#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// (route, method, status) → count
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → latency
    latency: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
}

impl HttpMetrics {
    fn record(&self, route: &str, method: &str, status: u16, elapsed: std::time::Duration) {
        {
            let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *r.entry((route.to_string(), method.to_string(), status)).or_insert(0) += 1;
        }
        let h = {
            let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
            l.entry(route.to_string()).or_default().clone()
        };
        h.observe(elapsed);
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP steward_http_requests_total HTTP requests by route, method and status.");
        let _ = writeln!(out, "# TYPE steward_http_requests_total counter");
        for ((route, method, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "steward_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP steward_http_request_duration_seconds HTTP request latency by route.");
        let _ = writeln!(out, "# TYPE steward_http_request_duration_seconds histogram");
        for (route, h) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            h.render(out, "steward_http_request_duration_seconds", &format!("route=\"{route}\""));
        }
    }
}

pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Unmatched paths share one label so a scan cannot grow the series.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let span = tracing::info_span!("http_request", method = %method, route = %route, status = tracing::field::Empty);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed = started.elapsed();
    // For streamed responses this is the time to the response head.
    state.http_metrics.record(&route, &method, status, elapsed);
    tracing::debug!(parent: &span, elapsed_ms = elapsed.as_millis() as u64, "request handled");
    response
}
