//! Steward's HTTP front end: the OpenAI-compatible API, the native API,
//! health and metrics, behind bearer-key auth.
//!
//! [`app`] builds the router from an [`AppState`], so tests drive it with
//! `tower::ServiceExt::oneshot` and no socket; [`serve`] runs it on a
//! listener until the shutdown future resolves.

mod audit;
mod auth;
mod body;
pub mod chart;
mod dashboard;
mod entities;
mod error;
mod events;
mod gateway;
mod health;
mod http_metrics;
mod insights;
mod native;
mod openai;
mod proposals;
mod query;
mod requests;
mod sse;
mod state;
mod usage;

use std::future::Future;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use steward_core::{Engine, Gateway, Tasks};

pub use audit::verify as verify_audit;
pub use auth::{digest_hex, parse_digest, ApiKeys};
pub use error::ApiError;
pub use http_metrics::HttpMetrics;

/// The header that names the stored conversation a chat completion belongs
/// to. Clients send it back to continue that conversation.
pub const CONVERSATION_HEADER: &str = "x-steward-conversation-id";

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub api_keys: ApiKeys,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings { api_keys: ApiKeys::default(), max_body_bytes: 1024 * 1024 }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub settings: Arc<ServerSettings>,
    pub http_metrics: Arc<HttpMetrics>,
    /// Gateway mode and budgets, when a model router is configured.
    pub gateway: Option<Arc<dyn Gateway>>,
    /// Tasks and plans (`/api/requests`), when a task runner is wired in.
    pub tasks: Option<Arc<Tasks>>,
    /// The flat price per kWh `POST /api/insights/analyze` works out the
    /// cost with (`[energy] price_per_kwh`); no cost without it.
    pub energy_price_per_kwh: Option<f64>,
    /// The dashboard's logged-in browsers (see `dashboard::session`).
    pub(crate) sessions: Arc<dashboard::session::Sessions>,
}

impl AppState {
    pub fn new(engine: Engine, settings: ServerSettings) -> Self {
        AppState {
            engine,
            settings: Arc::new(settings),
            http_metrics: Arc::new(HttpMetrics::default()),
            gateway: None,
            tasks: None,
            energy_price_per_kwh: None,
            sessions: Arc::default(),
        }
    }

    /// Serves `provider/model` and tier names as models, straight through `gateway`.
    pub fn with_gateway(mut self, gateway: Arc<dyn Gateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Serves `/api/requests` from `tasks`.
    pub fn with_tasks(mut self, tasks: Arc<Tasks>) -> Self {
        self.tasks = Some(tasks);
        self
    }

    /// Prices energy analyses made through `/api/insights/analyze`.
    pub fn with_energy_price(mut self, price_per_kwh: Option<f64>) -> Self {
        self.energy_price_per_kwh = price_per_kwh;
        self
    }
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/models", get(openai::list_models))
        .route("/v1/models/{id}", get(openai::get_model))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/api/conversations", post(native::create_conversation).get(native::list_conversations))
        .route("/api/conversations/{id}", get(native::get_conversation).patch(native::patch_conversation))
        .route("/api/conversations/{id}/messages", post(native::post_message))
        .route("/api/entities", get(entities::list))
        .route("/api/entities/query", post(entities::query))
        .route("/api/proposals", get(proposals::list))
        .route("/api/proposals/{id}", get(proposals::get))
        .route("/api/proposals/{id}/approve", post(proposals::approve))
        .route("/api/proposals/{id}/reject", post(proposals::reject))
        .route("/api/requests", post(requests::create).get(requests::list))
        .route("/api/requests/{id}", get(requests::get))
        .route("/api/requests/{id}/cancel", post(requests::cancel))
        .route("/api/requests/{id}/events", get(requests::events))
        .route("/api/insights", get(insights::list).post(insights::create))
        .route("/api/insights/analyze", post(insights::analyze))
        .route("/api/insights/{id}", get(insights::get))
        .route("/api/insights/{id}/chart.svg", get(insights::chart_svg))
        .route("/api/insights/{id}/chart.png", get(insights::chart_png))
        .route("/api/events", get(events::stream))
        .route("/api/usage", get(usage::report))
        .route("/api/audit", get(audit::list))
        .route("/api/state", get(state::list))
        .route("/api/state/save", post(state::save))
        .route("/api/state/load", post(state::load))
        .route("/metrics", get(health::metrics))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_key));
    Router::new()
        .route("/health", get(health::health))
        // Pages answer a missing session with the login page, not the API's 401.
        .merge(dashboard::routes())
        .merge(protected)
        .layer(axum::middleware::from_fn(error::catch_panic))
        .layer(axum::middleware::from_fn_with_state(state.clone(), http_metrics::track))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets running
/// requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Streamed replies are many small writes; with Nagle's algorithm on, each
    // can wait for the peer's delayed ACK (about 40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // Activity streams never end by themselves; they end when stopping starts.
    let activity = state.engine.activity().clone();
    let shutdown = async move {
        shutdown.await;
        activity.close();
    };
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
