//! Gateway mode and the usage report, through a real router over scripted
//! OpenAI-compatible and Anthropic servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::tools::CurrentTime;
use steward_core::{AgentRegistry, Clock, Engine, EngineLimits, EngineParts, SystemClock, Tier, ToolRegistry};
use steward_llm::anthropic::{Anthropic, AnthropicConfig};
use steward_llm::router::{
    BudgetRule, CooldownPolicy, Period, Price, PriceTable, Provider, RetryPolicy, Router, RouterConfig, Scope,
};
use steward_llm::{OpenAiCompatible, OpenAiConfig};
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::{Reply, ScriptedCall, ScriptedLlm};

use super::Harness;

struct Gateway {
    h: Harness,
    cloud: ScriptedLlm,
    home: ScriptedLlm,
}

/// Providers: `cloud` (Anthropic's API, paid) and `home` (OpenAI-compatible, local).
async fn gateway(budget_micros: Option<i64>) -> Gateway {
    gateway_with(budget_micros, true).await
}

async fn gateway_with(budget_micros: Option<i64>, with_local: bool) -> Gateway {
    let dir = std::env::temp_dir().join(format!("steward-gateway-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let cloud = ScriptedLlm::start().await.unwrap();
    let home = ScriptedLlm::start().await.unwrap();
    let anthropic = Anthropic::new(
        AnthropicConfig::new("claude-test")
            .with_name("cloud")
            .with_base_url(cloud.host_url())
            .with_api_key("sk-ant-secret")
            .with_timeouts(Duration::from_secs(5), Duration::from_secs(1)),
    )
    .unwrap();
    let local = OpenAiCompatible::new(OpenAiConfig::new("home", home.base_url(), "llama")).unwrap();
    let router = Router::new(
        RouterConfig {
            providers: vec![
                Provider { name: "cloud".into(), kind: "anthropic".into(), llm: Arc::new(anthropic), local: false },
                Provider { name: "home".into(), kind: "openai".into(), llm: Arc::new(local), local: true },
            ],
            deployments: vec![],
            tiers: BTreeMap::from([(
                Tier::Smart,
                if with_local {
                    vec!["cloud/claude-test".into(), "home/llama".into()]
                } else {
                    vec!["cloud/claude-test".into()]
                },
            )]),
            prices: PriceTable::new(BTreeMap::from([(
                "cloud/claude-test".to_string(),
                Price { input: 3.0, output: 15.0, cached_input: None },
            )])),
            budgets: budget_micros
                .map(|l| {
                    vec![BudgetRule {
                        scope: Scope::Provider("cloud".into()),
                        period: Period::Monthly,
                        limit_micros: l,
                    }]
                })
                .unwrap_or_default(),
            retry: RetryPolicy { attempts: 1, ..RetryPolicy::default() },
            cooldown: CooldownPolicy::default(),
        },
        Some(store.clone()),
        clock.clone(),
    )
    .await
    .unwrap();
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    let engine = Engine::new(EngineParts {
        llm: Arc::new(router.clone()),
        store: store.clone(),
        tools,
        agents: AgentRegistry::builtin(),
        clock,
        limits: EngineLimits::default(),
    });
    let state = AppState::new(engine, ServerSettings::default()).with_gateway(Arc::new(router));
    Gateway { h: Harness { app: app(state), llm: None, store, dir }, cloud, home }
}

#[tokio::test]
async fn gateway_models_are_listed_beside_the_agents() {
    let g = gateway(None).await;
    let v = g.h.get("/v1/models").await.json();
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            "architect",
            "data-scientist",
            "developer",
            "infra",
            "librarian",
            "smart",
            "cloud/claude-test",
            "home/llama"
        ]
    );
    assert_eq!(g.h.get("/v1/models/home/llama").await.status, 404, "ids with a slash are listed, not fetched by path");
    assert_eq!(g.h.get("/v1/models/smart").await.json()["owned_by"], "steward-gateway");
}

#[tokio::test]
async fn a_gateway_request_passes_the_clients_tools_and_returns_the_models_tool_calls() {
    let g = gateway(None).await;
    g.cloud.push(Reply::tool_calls(vec![ScriptedCall::new("lookup", r#"{"q":"weather"}"#).with_id("toolu_1")]));
    let body = json!({
        "model": "cloud/claude-test",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Looks up", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "max_tokens": 50
    });
    let r = g.h.post_json("/v1/chat/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(r.headers.get("x-steward-conversation-id").is_none(), "the gateway stores no conversation");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!((call["id"].as_str(), call["function"]["name"].as_str()), (Some("toolu_1"), Some("lookup")));
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"q": "weather"})
    );
    // Anthropic's wire format upstream: the system prompt hoisted, the client's tool, its limit.
    let sent = &g.cloud.requests()[0].body;
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["tools"][0]["name"], "lookup");
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["model"], "claude-test");
}

#[tokio::test]
async fn a_streamed_gateway_request_streams_text_tool_calls_and_usage() {
    let g = gateway(None).await;
    g.home.push(Reply::ToolCalls { calls: vec![ScriptedCall::new("lookup", "{}")], content: Some("Checking.".into()) });
    let body = json!({"model": "home/llama", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = g.h.post_json("/v1/chat/completions", body).await;
    assert_eq!(r.status, 200);
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data.iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Checking.");
    let call = chunks.iter().find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned()).unwrap();
    assert_eq!((call["index"].as_u64(), call["function"]["name"].as_str()), (Some(0), Some("lookup")));
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn an_overloaded_provider_before_the_first_token_falls_back_and_the_ledger_says_so() {
    let g = gateway(None).await;
    // Anthropic answers 200, then an overloaded_error event before any text.
    g.cloud.push(Reply::StreamError {
        content: String::new(),
        error: json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    });
    g.home.push(Reply::text("local answer"));
    let r = g
        .h
        .post_json("/v1/chat/completions", json!({"model": "smart", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "local answer");
    let usage = g.h.get("/api/usage?days=1").await.json();
    assert_eq!(usage["requests"], 2);
    assert_eq!(usage["local_share"], 0.5);
    let models: Vec<(&str, i64)> = usage["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["key"].as_str().unwrap(), l["ok_requests"].as_i64().unwrap()))
        .collect();
    assert_eq!(models, vec![("cloud/claude-test", 0), ("home/llama", 1)]);
}

#[tokio::test]
async fn a_spent_budget_falls_back_to_local_or_is_a_429_budget_exceeded() {
    // A budget too small for any request: the tier's free local deployment serves.
    let g = gateway(Some(10)).await;
    g.home.push(Reply::text("free"));
    let r =
        g.h.post_json(
            "/v1/chat/completions",
            json!({"model": "cloud/claude-test", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "free");
    assert!(g.cloud.requests().is_empty(), "nothing was sent to the paid provider");

    // With no free deployment, the client is told the budget is spent.
    let g = gateway_with(Some(10), false).await;
    for stream in [false, true] {
        let body = json!({"model": "smart", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
        let r = g.h.post_json("/v1/chat/completions", body).await;
        assert_eq!(r.status, 429, "{}", r.text());
        let e = r.error();
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("budget_exceeded"), Some("budget_exceeded")));
        assert!(e["message"].as_str().unwrap().contains("cloud monthly budget"), "{e}");
    }
    // An agent's turn meets the same refusal.
    let r =
        g.h.post_json(
            "/v1/chat/completions",
            json!({"model": "architect", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(g.cloud.requests().is_empty());
    let usage = g.h.get("/api/usage").await.json();
    let budget = &usage["budgets"][0];
    assert_eq!((budget["scope"].as_str(), budget["period"].as_str()), (Some("cloud"), Some("monthly")));
    assert_eq!((budget["limit"].as_f64(), budget["spent"].as_f64()), (Some(0.00001), Some(0.0)));
    assert_eq!(g.h.get("/api/usage?days=0").await.status, 400);
}

#[tokio::test]
async fn streamed_and_non_streamed_gateway_calls_are_costed_alike() {
    let g = gateway(None).await;
    g.cloud.set_default(Some(Reply::text("An answer of some length, to cost something.")));
    // (cost, prompt tokens, completion tokens) of the cloud model so far.
    let snapshot = || async {
        let usage = g.h.get("/api/usage?days=1").await.json();
        let line = usage["by_model"].as_array().unwrap().iter().find(|l| l["key"] == "cloud/claude-test").cloned();
        line.map(|l| {
            (
                l["cost"].as_f64().unwrap(),
                l["prompt_tokens"].as_i64().unwrap(),
                l["completion_tokens"].as_i64().unwrap(),
            )
        })
        .unwrap_or((0.0, 0, 0))
    };
    let mut per_call = Vec::new();
    for stream in [false, true] {
        let before = snapshot().await;
        let body = json!({"model": "cloud/claude-test", "stream": stream, "messages": [{"role": "user", "content": "same question"}]});
        assert_eq!(g.h.post_json("/v1/chat/completions", body).await.status, 200);
        let after = snapshot().await;
        per_call.push((after.0 - before.0, after.1 - before.1, after.2 - before.2));
    }
    assert_eq!((per_call[0].1, per_call[0].2), (per_call[1].1, per_call[1].2), "same tokens: {per_call:?}");
    assert!((per_call[0].0 - per_call[1].0).abs() < 1e-12, "same cost: {per_call:?}");
    // 3 and 15 per million tokens, from the provider's own counts.
    let expected = (per_call[0].1 as f64 * 3.0 + per_call[0].2 as f64 * 15.0) / 1e6;
    assert!(per_call[0].0 > 0.0 && (per_call[0].0 - expected).abs() < 1e-9, "{per_call:?} vs {expected}");
}
