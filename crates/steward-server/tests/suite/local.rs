//! The first stage of routing: home commands and questions the local intent
//! engine understands are answered without a model, through the same
//! policy and approval gate; everything else goes to the model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use steward_core::home::tools::home_tools;
use steward_core::home::Home;
use steward_core::llm::LlmStream;
use steward_core::{
    AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, Llm, LlmChunk, LlmError, LlmErrorKind,
    LlmRequest, Preset, RulePolicy, SystemClock, ToolRegistry,
};
use steward_integrations::DemoHome;
use steward_protocol::FinishReason;
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;

use super::Harness;

/// Counts calls; answers "from the model", or fails as unconfigured.
struct CountingLlm {
    calls: Arc<AtomicUsize>,
    configured: bool,
}

#[async_trait]
impl Llm for CountingLlm {
    fn name(&self) -> &str {
        "counting"
    }

    async fn stream(&self, _request: LlmRequest) -> Result<LlmStream, LlmError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.configured {
            return Err(LlmError::new("none", LlmErrorKind::NotConfigured, "no model"));
        }
        let chunks = vec![Ok(LlmChunk::Text("from the model".into())), Ok(LlmChunk::Finish(FinishReason::Stop))];
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}

struct Local {
    h: Harness,
    home: Arc<dyn Home>,
    model_calls: Arc<AtomicUsize>,
}

async fn local(preset: Preset, configured: bool) -> Local {
    let dir = std::env::temp_dir().join(format!("steward-local-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let home: Arc<dyn Home> = Arc::new(DemoHome::new(clock.clone()));
    let mut tools = ToolRegistry::new();
    for tool in home_tools(home.clone(), clock.clone()) {
        tools.register(tool);
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = Engine::with_options(
        EngineParts {
            llm: Arc::new(CountingLlm { calls: calls.clone(), configured }),
            store: store.clone(),
            tools,
            agents: AgentRegistry::builtin(),
            clock,
            limits: EngineLimits::default(),
        },
        Arc::new(RulePolicy { preset, rules: Vec::new() }),
        EngineOptions { home: Some(home.clone()), ..EngineOptions::default() },
    );
    let state = AppState::new(engine, ServerSettings::default());
    Local { h: Harness { app: app(state), llm: None, store, dir }, home, model_calls: calls }
}

impl Local {
    async fn say(&self, conversation: &str, content: &str) -> String {
        let r =
            self.h.post_json(&format!("/api/conversations/{conversation}/messages"), json!({"content": content})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["content"].as_str().unwrap().to_string()
    }

    async fn conversation(&self) -> String {
        self.h.post_json("/api/conversations", json!({})).await.json()["id"].as_str().unwrap().to_string()
    }

    async fn state(&self, id: &str) -> String {
        self.home.entity(id).await.unwrap().state
    }
}

#[tokio::test]
async fn questions_are_answered_from_the_home_without_a_model() {
    let l = local(Preset::Strict, true).await;
    let c = l.conversation().await;
    let garage = l.state("cover.garage_door").await;
    let answer = l.say(&c, "is the garage door open?").await;
    assert!(answer.to_lowercase().contains("garage door"), "{answer}");
    assert!(answer.contains(&garage), "the answer reflects the state ({garage}): {answer}");
    assert_eq!(l.model_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_command_the_policy_allows_runs_at_once_and_is_confirmed() {
    let l = local(Preset::Balanced, true).await;
    let c = l.conversation().await;
    l.say(&c, "turn on the hallway light").await;
    assert_eq!(l.state("light.hallway").await, "on");
    let reply = l.say(&c, "turn off the hallway light").await;
    assert_eq!(l.state("light.hallway").await, "off");
    assert!(reply.contains("Hallway Light"), "{reply}");
    assert_eq!(l.model_calls.load(Ordering::SeqCst), 0);
    // The call is in the conversation like a model's would be.
    let stored = l.h.get(&format!("/api/conversations/{c}")).await.json();
    let call =
        stored["messages"].as_array().unwrap().iter().rev().find(|m| m["tool_calls"].is_array()).unwrap().clone();
    assert_eq!(call["tool_calls"][0]["name"], "control_entity", "{call}");
}

#[tokio::test]
async fn a_command_that_needs_approval_waits_for_it() {
    let l = local(Preset::Balanced, true).await;
    let c = l.conversation().await;
    assert_eq!(l.state("lock.front_door").await, "locked");
    let reply = l.say(&c, "unlock the front door lock").await;
    assert!(reply.contains("Reply 'approve' to proceed"), "{reply}");
    assert_eq!(l.state("lock.front_door").await, "locked", "nothing changes before a person says yes");
    let done = l.say(&c, "approve").await;
    assert!(done.starts_with("Done ("), "{done}");
    assert_eq!(l.state("lock.front_door").await, "unlocked");
    assert_eq!(l.model_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn what_it_does_not_understand_goes_to_the_model() {
    let l = local(Preset::Strict, true).await;
    let c = l.conversation().await;
    assert_eq!(l.say(&c, "why was my energy bill so high last month?").await, "from the model");
    assert_eq!(l.model_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn home_commands_work_with_no_model_configured() {
    let l = local(Preset::Autonomous, false).await;
    let c = l.conversation().await;
    l.say(&c, "turn on the kitchen ceiling light").await;
    assert_eq!(l.state("light.kitchen_ceiling").await, "on");
    let answer = l.say(&c, "which lights are on?").await;
    assert!(answer.contains("Kitchen Ceiling"), "{answer}");
    // Anything else gets the advice on connecting a model.
    let advice = l.say(&c, "tell me a joke").await;
    assert!(advice.contains("OPENAI") || advice.contains("model"), "{advice}");
}
