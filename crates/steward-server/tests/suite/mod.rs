mod agents;
mod approvals;
mod audit;
mod bad_input;
mod dashboard;
mod entities;
mod gateway;
mod infra_ansible;
mod infra_mcp;
mod infra_proxmox;
mod infra_ssh;
mod insights;
mod local;
mod native;
mod openai;
mod requests;
mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use steward_core::tools::CurrentTime;
use steward_core::{
    AgentRegistry, Clock, Engine, EngineLimits, EngineParts, Llm, SystemClock, ToolRegistry, UnconfiguredLlm,
};
use steward_llm::{OpenAiCompatible, OpenAiConfig};
use steward_server::{app, ApiKeys, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::ScriptedLlm;
use tower::ServiceExt;

pub struct Harness {
    pub app: Router,
    pub llm: Option<ScriptedLlm>,
    pub store: Arc<SqlStore>,
    pub dir: std::path::PathBuf,
}

pub struct Options {
    pub with_llm: bool,
    pub keys: Vec<&'static str>,
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { with_llm: true, keys: Vec::new(), max_body_bytes: 64 * 1024 }
    }
}

/// A scripted model server and an OpenAI-compatible provider talking to it
/// without a key.
pub async fn scripted_model() -> (OpenAiCompatible, ScriptedLlm) {
    let scripted = ScriptedLlm::start().await.unwrap();
    let llm = OpenAiCompatible::new(OpenAiConfig {
        name: "scripted".into(),
        base_url: scripted.base_url(),
        api_key: None,
        model: "scripted".into(),
        tier_models: Default::default(),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    })
    .unwrap();
    (llm, scripted)
}

pub async fn harness() -> Harness {
    harness_with(Options::default()).await
}

pub async fn harness_with(options: Options) -> Harness {
    let dir = std::env::temp_dir().join(format!("steward-server-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let (llm, scripted): (Arc<dyn Llm>, Option<ScriptedLlm>) = if options.with_llm {
        let scripted = ScriptedLlm::start().await.unwrap();
        let provider = OpenAiCompatible::new(OpenAiConfig {
            name: "scripted".into(),
            base_url: scripted.base_url(),
            api_key: Some("sk-upstream-secret".into()),
            model: "scripted".into(),
            tier_models: Default::default(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
        })
        .unwrap();
        (Arc::new(provider), Some(scripted))
    } else {
        (Arc::new(UnconfiguredLlm), None)
    };
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    let engine = Engine::new(EngineParts {
        llm,
        store: store.clone(),
        tools,
        agents: AgentRegistry::builtin(),
        clock,
        limits: EngineLimits::default(),
    });
    let digests =
        options.keys.iter().map(|k| steward_server::parse_digest(&steward_server::digest_hex(k)).unwrap()).collect();
    let state = AppState::new(
        engine,
        ServerSettings { api_keys: ApiKeys::new(digests), max_body_bytes: options.max_body_bytes },
    );
    Harness { app: app(state), llm: scripted, store, dir }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.text().lines().filter_map(|l| l.strip_prefix("data: ")).map(String::from).collect()
    }
    /// `(event, data)` pairs of a named-event SSE body.
    pub fn sse_events(&self) -> Vec<(String, Value)> {
        let text = self.text();
        text.split("\n\n")
            .filter(|f| !f.trim().is_empty())
            .map(|frame| {
                let mut name = String::new();
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_string();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                (name, serde_json::from_str(&data).unwrap())
            })
            .collect()
    }
    /// The error object of an error reply.
    pub fn error(&self) -> Value {
        let v = self.json();
        let e = v.get("error").cloned().unwrap_or_else(|| panic!("no error object in {v}"));
        for key in ["message", "type", "param", "code"] {
            assert!(e.get(key).is_some(), "error object lacks '{key}': {e}");
        }
        e
    }
}

impl Harness {
    pub fn llm(&self) -> &ScriptedLlm {
        self.llm.as_ref().unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<Body>) -> Reply {
        self.send(Request::post(path).header("content-type", "application/json").body(body.into()).unwrap()).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
