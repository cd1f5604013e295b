//! The router against scripted OpenAI-compatible servers, with a real
//! SQLite ledger.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use steward_core::{Clock, Llm, LlmChunk, LlmErrorKind, LlmRequest, Store, SystemClock, Tier, UsageGroup};
use steward_protocol::Message;
use steward_store::SqlStore;
use steward_testkit::{Reply, ScriptedLlm};

use super::*;
use crate::{OpenAiCompatible, OpenAiConfig};

struct Fixture {
    router: Router,
    store: Arc<SqlStore>,
    servers: BTreeMap<String, ScriptedLlm>,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Setup {
    /// (provider name, local?)
    providers: Vec<(&'static str, bool)>,
    tier: Vec<&'static str>,
    deployments: Vec<DeploymentSpec>,
    prices: BTreeMap<String, Price>,
    budgets: Vec<BudgetRule>,
    retry: RetryPolicy,
    cooldown: CooldownPolicy,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            providers: vec![],
            tier: vec![],
            deployments: vec![],
            prices: BTreeMap::new(),
            budgets: vec![],
            retry: RetryPolicy {
                attempts: 2,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_secs(2),
            },
            cooldown: CooldownPolicy { failures: 100, duration: Duration::from_secs(60) },
        }
    }
}

async fn fixture(setup: Setup) -> Fixture {
    let dir = std::env::temp_dir().join(format!("steward-router-{}", rand::random::<u64>()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let mut servers = BTreeMap::new();
    let mut providers = Vec::new();
    for (name, local) in &setup.providers {
        let server = ScriptedLlm::start().await.unwrap();
        let llm = OpenAiCompatible::new(
            OpenAiConfig::new(*name, server.base_url(), "unused")
                .with_timeouts(Duration::from_secs(5), Duration::from_secs(1)),
        )
        .unwrap();
        providers.push(Provider { name: name.to_string(), kind: "openai".into(), llm: Arc::new(llm), local: *local });
        servers.insert(name.to_string(), server);
    }
    let config = RouterConfig {
        providers,
        deployments: setup.deployments,
        tiers: BTreeMap::from([(Tier::Smart, setup.tier.iter().map(|s| s.to_string()).collect())]),
        prices: PriceTable::new(setup.prices),
        budgets: setup.budgets,
        retry: setup.retry,
        cooldown: setup.cooldown,
    };
    let router = Router::new(config, Some(store.clone()), clock).await.unwrap();
    Fixture { router, store, servers, dir }
}

fn request(text: &str) -> LlmRequest {
    LlmRequest {
        tier: Tier::Smart,
        messages: vec![Message::user(text)],
        caller: Some("architect".into()),
        trace_id: Some("turn_test".into()),
        ..LlmRequest::default()
    }
}

fn price(per_mtok: f64) -> Price {
    Price { input: per_mtok, output: per_mtok, cached_input: None }
}

async fn ledger(router: &Router, store: &SqlStore) -> Vec<steward_core::UsageTotal> {
    router.flush_ledger().await;
    store.usage_totals(0, UsageGroup::Model).await.unwrap()
}

#[tokio::test]
async fn a_rate_limited_deployment_falls_back_to_the_next() {
    let f =
        fixture(Setup { providers: vec![("a", false), ("b", false)], tier: vec!["a/m", "b/m"], ..Setup::default() })
            .await;
    // Retry-After longer than the policy's longest wait: move on at once.
    f.servers["a"].push(Reply::rate_limited(60));
    f.servers["b"].push(Reply::text("from b"));
    let out = f.router.complete(request("hi")).await.unwrap();
    assert_eq!(out.text, "from b");
    assert_eq!(f.servers["a"].chat_requests().len(), 1, "no retry when Retry-After exceeds the policy");
    assert_eq!(f.servers["b"].chat_requests()[0]["model"], "m");
    let totals = ledger(&f.router, &f.store).await;
    let a = totals.iter().find(|t| t.key == "a/m").unwrap();
    assert_eq!((a.requests, a.ok_requests), (1, 0));
    let b = totals.iter().find(|t| t.key == "b/m").unwrap();
    assert_eq!((b.requests, b.ok_requests), (1, 1));
}

#[tokio::test]
async fn a_short_retry_after_is_honoured_on_the_same_deployment() {
    let f =
        fixture(Setup { providers: vec![("a", false), ("b", false)], tier: vec!["a/m", "b/m"], ..Setup::default() })
            .await;
    f.servers["a"].push(Reply::rate_limited(1));
    f.servers["a"].push(Reply::text("from a"));
    let started = std::time::Instant::now();
    let out = f.router.complete(request("hi")).await.unwrap();
    assert_eq!(out.text, "from a");
    assert!(started.elapsed() >= Duration::from_secs(1), "the router waited as Retry-After asked");
    assert!(f.servers["b"].chat_requests().is_empty());
}

#[tokio::test]
async fn a_stream_cut_before_the_first_token_falls_back_but_not_after() {
    let f =
        fixture(Setup { providers: vec![("a", false), ("b", false)], tier: vec!["a/m", "b/m"], ..Setup::default() })
            .await;
    // Only the role chunk arrives, then the connection drops: nothing was said yet.
    f.servers["a"].push(Reply::CutStream { content: String::new(), after_chunks: 0 });
    f.servers["a"].push(Reply::CutStream { content: String::new(), after_chunks: 0 });
    f.servers["b"].push(Reply::text("from b"));
    assert_eq!(f.router.complete(request("hi")).await.unwrap().text, "from b");

    // Once text has streamed, a failure is the caller's to see.
    f.servers["a"].push(Reply::CutStream { content: "half an ans".into(), after_chunks: 2 });
    let err = f.router.complete(request("hi")).await.unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert_eq!(f.servers["b"].chat_requests().len(), 1);
}

#[tokio::test]
async fn a_context_length_error_moves_to_a_larger_window() {
    let mut small = DeploymentSpec::new("a", "small");
    small.context_window = 8_000;
    let mut smaller = DeploymentSpec::new("b", "smaller");
    smaller.context_window = 4_000;
    let mut big = DeploymentSpec::new("c", "big");
    big.context_window = 200_000;
    let f = fixture(Setup {
        providers: vec![("a", false), ("b", false), ("c", false)],
        tier: vec!["a/small", "b/smaller", "c/big"],
        deployments: vec![small, smaller, big],
        ..Setup::default()
    })
    .await;
    f.servers["a"].push(Reply::error(400, "invalid_request_error", Some("context_length_exceeded"), "too long"));
    f.servers["c"].push(Reply::text("fits"));
    assert_eq!(f.router.complete(request("a long story")).await.unwrap().text, "fits");
    assert!(f.servers["b"].chat_requests().is_empty(), "a smaller window is not worth trying");
}

#[tokio::test]
async fn a_deployment_that_keeps_failing_cools_down() {
    let f = fixture(Setup {
        providers: vec![("a", false), ("b", false)],
        tier: vec!["a/m", "b/m"],
        retry: RetryPolicy { attempts: 1, ..Setup::default().retry },
        cooldown: CooldownPolicy { failures: 2, duration: Duration::from_secs(60) },
        ..Setup::default()
    })
    .await;
    f.servers["a"].set_default(Some(Reply::error(503, "server_error", None, "down")));
    f.servers["b"].set_default(Some(Reply::text("from b")));
    for _ in 0..4 {
        assert_eq!(f.router.complete(request("hi")).await.unwrap().text, "from b");
    }
    assert_eq!(f.servers["a"].chat_requests().len(), 2, "after two failures a is rested");
}

#[tokio::test]
async fn a_spent_budget_falls_back_to_a_free_local_deployment_or_refuses() {
    let budget = BudgetRule { scope: Scope::Overall, period: Period::Monthly, limit_micros: 100_000 };
    let f = fixture(Setup {
        providers: vec![("cloud", false), ("home", true)],
        tier: vec!["cloud/big", "home/small"],
        prices: BTreeMap::from([("cloud/big".to_string(), price(100.0))]),
        budgets: vec![budget.clone()],
        ..Setup::default()
    })
    .await;
    // 600 characters: 150 completion tokens, within the 200 asked for.
    let paid = format!("paid {}", "x".repeat(595));
    f.servers["cloud"].set_default(Some(Reply::text(paid.clone())));
    f.servers["home"].set_default(Some(Reply::text("free answer")));
    let mut req = request("hi");
    req.max_tokens = Some(200);
    // A call costs about 151 tokens × 100 = 15 100 micros; its worst case
    // (26 prompt tokens at most + 200 output) 22 600.
    // The paid deployment serves until its budget cannot hold another
    // worst case; from then on the free local one does.
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(f.router.complete(req.clone()).await.unwrap().text);
        if answers.last().map(String::as_str) == Some("free answer") && answers.len() > 1 {
            break;
        }
    }
    assert_eq!(answers.first(), Some(&paid));
    assert_eq!(answers.iter().filter(|a| **a == paid).count(), 6, "{answers:?}");
    assert_eq!(answers.last().map(String::as_str), Some("free answer"), "{answers:?}");
    assert_eq!(f.router.complete(req.clone()).await.unwrap().text, "free answer", "the budget stays spent");
    let spent = f.router.budget_status()[0].spent_micros;
    assert!(spent <= 100_000 && spent > 0, "{spent}");
    let ledger_cost: i64 = ledger(&f.router, &f.store).await.iter().map(|t| t.cost_micros).sum();
    assert_eq!(ledger_cost, spent);

    // Without a local deployment the caller gets a clear budget error.
    let g = fixture(Setup {
        providers: vec![("cloud", false)],
        tier: vec!["cloud/big"],
        prices: BTreeMap::from([("cloud/big".to_string(), price(100.0))]),
        budgets: vec![BudgetRule { limit_micros: 1_000, ..budget }],
        ..Setup::default()
    })
    .await;
    let err = g.router.complete(req).await.unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::BudgetExceeded);
    assert!(err.message.contains("overall monthly budget"), "{}", err.message);
    assert!(g.servers["cloud"].chat_requests().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_requests_never_spend_past_the_budget() {
    let limit = 200_000;
    let f = fixture(Setup {
        providers: vec![("cloud", false)],
        tier: vec!["cloud/big"],
        prices: BTreeMap::from([("cloud/big".to_string(), price(100.0))]),
        budgets: vec![BudgetRule {
            scope: Scope::Provider("cloud".into()),
            period: Period::Daily,
            limit_micros: limit,
        }],
        ..Setup::default()
    })
    .await;
    f.servers["cloud"].set_default(Some(Reply::delay(50, Reply::text("a fairly long paid answer, to cost something"))));
    let mut req = request("how much?");
    req.max_tokens = Some(300);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let router = f.router.clone();
            let req = req.clone();
            tokio::spawn(async move { router.complete(req).await })
        })
        .collect();
    let mut served = 0;
    let mut refused = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => served += 1,
            Err(e) if e.kind == LlmErrorKind::BudgetExceeded => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(served > 0 && refused > 0, "served {served}, refused {refused}");
    let ledger_cost: i64 = ledger(&f.router, &f.store).await.iter().map(|t| t.cost_micros).sum();
    assert!(ledger_cost <= limit, "spent {ledger_cost} of {limit}");
    let status = &f.router.budget_status()[0];
    assert_eq!(status.spent_micros, ledger_cost, "the book and the ledger agree");
    assert_eq!(status.reserved_micros, 0, "every reservation was settled");
}

#[tokio::test]
async fn streamed_and_completed_calls_cost_the_same_and_are_ledgered() {
    let f = fixture(Setup {
        providers: vec![("cloud", false)],
        tier: vec!["cloud/m"],
        prices: BTreeMap::from([("cloud/m".to_string(), Price { input: 3.0, output: 15.0, cached_input: None })]),
        ..Setup::default()
    })
    .await;
    f.servers["cloud"].set_default(Some(Reply::text("The same answer both times.")));
    let completed = f.router.complete(request("same question")).await.unwrap();
    let mut stream = f.router.stream(request("same question")).await.unwrap();
    let mut streamed_usage = None;
    while let Some(chunk) = stream.next().await {
        if let Ok(LlmChunk::Usage(u)) = chunk {
            streamed_usage = Some(u);
        }
    }
    assert_eq!(Some(completed.usage), streamed_usage);
    // The request set no limit; a paid provider is held to the one the
    // reservation assumed.
    let sent = f.servers["cloud"].chat_requests();
    assert!(sent.iter().all(|r| r["max_tokens"] == DEFAULT_MAX_OUTPUT_TOKENS), "{sent:?}");
    let totals = ledger(&f.router, &f.store).await;
    assert_eq!(totals[0].requests, 2);
    let one = Price { input: 3.0, output: 15.0, cached_input: None }.cost_micros(&completed.usage);
    assert!(one > 0);
    assert_eq!(totals[0].cost_micros, 2 * one, "both calls cost the same, from the provider's counts");
    assert_eq!(totals[0].prompt_tokens as u64, 2 * completed.usage.prompt_tokens);
}

#[tokio::test]
async fn gateway_names_route_to_a_deployment_or_a_tier() {
    let f =
        fixture(Setup { providers: vec![("a", true), ("b", true)], tier: vec!["a/m1", "b/m2"], ..Setup::default() })
            .await;
    f.servers["b"].push(Reply::text("b answers"));
    let mut req = request("hi");
    req.model = Some("b/other-model".into());
    assert_eq!(f.router.complete(req).await.unwrap().text, "b answers");
    assert_eq!(f.servers["b"].chat_requests()[0]["model"], "other-model");
    assert!(f.router.routes("smart") && f.router.routes("a/anything") && !f.router.routes("nobody/x"));
    assert_eq!(f.router.gateway_models(), vec!["smart", "a/m1", "b/m2"]);
    let mut unknown = request("hi");
    unknown.model = Some("no-such-model".into());
    assert_eq!(f.router.complete(unknown).await.unwrap_err().kind, LlmErrorKind::ModelNotFound);
}

#[tokio::test]
async fn budgets_resume_from_the_ledger_after_a_restart() {
    let f = fixture(Setup {
        providers: vec![("cloud", false)],
        tier: vec!["cloud/m"],
        prices: BTreeMap::from([("cloud/m".to_string(), price(1000.0))]),
        budgets: vec![BudgetRule { scope: Scope::Overall, period: Period::Monthly, limit_micros: 10_000_000 }],
        ..Setup::default()
    })
    .await;
    f.servers["cloud"].set_default(Some(Reply::text("ok")));
    f.router.complete(request("hi")).await.unwrap();
    f.router.flush_ledger().await;
    let spent = f.router.budget_status()[0].spent_micros;
    assert!(spent > 0);
    let store: Arc<dyn Store> = f.store.clone();
    let config = RouterConfig {
        providers: vec![],
        deployments: vec![],
        tiers: BTreeMap::new(),
        prices: PriceTable::default(),
        budgets: vec![BudgetRule { scope: Scope::Overall, period: Period::Monthly, limit_micros: 10_000_000 }],
        retry: RetryPolicy::default(),
        cooldown: CooldownPolicy::default(),
    };
    let restarted = Router::new(config, Some(store), Arc::new(SystemClock)).await.unwrap();
    assert_eq!(restarted.budget_status()[0].spent_micros, spent);
}

/// One scripted server speaks all four wire formats; a provider of each
/// kind points at it.
async fn four_formats(tier: &[&str], attempts: u32) -> (Router, Arc<SqlStore>, ScriptedLlm, std::path::PathBuf) {
    use crate::anthropic::{Anthropic, AnthropicConfig};
    use crate::gemini::{Gemini, GeminiConfig};
    use crate::ollama::{Ollama, OllamaConfig};
    let dir = std::env::temp_dir().join(format!("steward-router-4-{}", rand::random::<u64>()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let server = ScriptedLlm::start().await.unwrap();
    let t = (Duration::from_secs(5), Duration::from_secs(1));
    let providers = vec![
        Provider {
            name: "anthropic".into(),
            kind: "anthropic".into(),
            llm: Arc::new(
                Anthropic::new(AnthropicConfig::new("a").with_base_url(server.host_url()).with_timeouts(t.0, t.1))
                    .unwrap(),
            ),
            local: false,
        },
        Provider {
            name: "gemini".into(),
            kind: "gemini".into(),
            llm: Arc::new(
                Gemini::new(GeminiConfig::new("g").with_base_url(server.host_url()).with_timeouts(t.0, t.1)).unwrap(),
            ),
            local: false,
        },
        Provider {
            name: "ollama".into(),
            kind: "ollama".into(),
            llm: Arc::new(Ollama::new(OllamaConfig::new(server.host_url(), "o").with_timeouts(t.0, t.1)).unwrap()),
            local: true,
        },
        Provider {
            name: "openai".into(),
            kind: "openai".into(),
            llm: Arc::new(OpenAiCompatible::new(OpenAiConfig::new("openai", server.base_url(), "x")).unwrap()),
            local: false,
        },
    ];
    let config = RouterConfig {
        providers,
        deployments: vec![],
        tiers: BTreeMap::from([(Tier::Smart, tier.iter().map(|s| s.to_string()).collect())]),
        prices: PriceTable::default(),
        budgets: vec![],
        retry: RetryPolicy { attempts, base_delay: Duration::from_millis(10), max_delay: Duration::from_secs(2) },
        cooldown: CooldownPolicy::default(),
    };
    let router = Router::new(config, Some(store.clone()), clock).await.unwrap();
    (router, store, server, dir)
}

#[tokio::test]
async fn failures_in_every_wire_format_fall_back_in_order() {
    let (router, store, server, dir) =
        four_formats(&["anthropic/claude-x", "gemini/gemini-x", "ollama/llama-x", "openai/gpt-x"], 1).await;
    server.push_all([
        // Anthropic: a body that is not its wire format.
        Reply::Garbage { body: "<html>proxy error</html>".into() },
        // Gemini: the connection drops before any text.
        Reply::CutStream { content: String::new(), after_chunks: 0 },
        // Ollama: rate limited for longer than the router waits.
        Reply::rate_limited(120),
        Reply::text("the OpenAI-compatible server answers"),
    ]);
    let out = router.complete(request("hi")).await.unwrap();
    assert_eq!(out.text, "the OpenAI-compatible server answers");
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths[0].starts_with("/v1/messages"), "{paths:?}");
    assert!(paths[1].starts_with("/v1beta/models/gemini-x:streamGenerateContent"), "{paths:?}");
    assert!(paths[2].starts_with("/api/chat"), "{paths:?}");
    assert!(paths[3].starts_with("/v1/chat/completions"), "{paths:?}");
    router.flush_ledger().await;
    let totals = store.usage_totals(0, UsageGroup::Model).await.unwrap();
    let outcome: Vec<(&str, i64, i64)> = totals.iter().map(|t| (t.key.as_str(), t.requests, t.ok_requests)).collect();
    assert_eq!(
        outcome,
        vec![("anthropic/claude-x", 1, 0), ("gemini/gemini-x", 1, 0), ("ollama/llama-x", 1, 0), ("openai/gpt-x", 1, 1)]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tool_calls_come_through_the_router_whole_in_every_wire_format() {
    let ids = ["anthropic/claude-x", "gemini/gemini-x", "ollama/llama-x", "openai/gpt-x"];
    let (router, _store, server, dir) = four_formats(&ids, 1).await;
    for id in ids {
        server.push(Reply::tool_calls(vec![
            steward_testkit::ScriptedCall::new("lights_on", r#"{"room": "kitchen", "level": 80}"#),
            steward_testkit::ScriptedCall::new("get_current_time", "{}"),
        ]));
        let mut req = request("lights on and time?");
        req.model = Some(id.to_string());
        let out = router.complete(req).await.unwrap();
        assert_eq!(out.finish_reason, Some(FinishReason::ToolCalls), "{id}");
        let names: Vec<&str> = out.tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["lights_on", "get_current_time"], "{id}");
        let args: serde_json::Value = serde_json::from_str(&out.tool_calls[0].arguments).unwrap();
        assert_eq!(args, serde_json::json!({"room": "kitchen", "level": 80}), "{id}");
        assert!(out.tool_calls.iter().all(|c| !c.id.is_empty()), "{id}: every call has an id");
        assert!(out.usage.prompt_tokens > 0 && out.usage.completion_tokens > 0, "{id}: {:?}", out.usage);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_budget_refusal_reaches_free_local_models_of_other_tiers() {
    // Two scripted servers; the router below puts `home` in the local tier
    // only, so the smart tier has nothing free.
    let f = fixture(Setup {
        providers: vec![("cloud", false), ("home", true)],
        tier: vec!["cloud/big"],
        ..Setup::default()
    })
    .await;
    let home = &f.servers["home"];
    home.push(Reply::text("from home"));
    let config = RouterConfig {
        providers: vec![
            Provider {
                name: "cloud".into(),
                kind: "openai".into(),
                llm: Arc::new(
                    OpenAiCompatible::new(OpenAiConfig::new("cloud", f.servers["cloud"].base_url(), "x")).unwrap(),
                ),
                local: false,
            },
            Provider {
                name: "home".into(),
                kind: "openai".into(),
                llm: Arc::new(OpenAiCompatible::new(OpenAiConfig::new("home", home.base_url(), "x")).unwrap()),
                local: true,
            },
        ],
        deployments: vec![],
        tiers: BTreeMap::from([(Tier::Local, vec!["home/small".into()]), (Tier::Smart, vec!["cloud/big".into()])]),
        prices: PriceTable::new(BTreeMap::from([("cloud/big".to_string(), price(3.0))])),
        budgets: vec![BudgetRule { scope: Scope::Overall, period: Period::Monthly, limit_micros: 10 }],
        retry: RetryPolicy::default(),
        cooldown: CooldownPolicy::default(),
    };
    let router = Router::new(config, None, Arc::new(SystemClock)).await.unwrap();
    assert_eq!(router.complete(request("hi")).await.unwrap().text, "from home");
    assert!(f.servers["cloud"].chat_requests().is_empty());
}

#[tokio::test]
async fn a_paid_model_without_a_price_is_refused_under_a_budget() {
    let f = fixture(Setup {
        providers: vec![("cloud", false)],
        tier: vec!["cloud/mystery-model"],
        budgets: vec![BudgetRule { scope: Scope::Overall, period: Period::Monthly, limit_micros: 1_000_000_000 }],
        ..Setup::default()
    })
    .await;
    let err = f.router.complete(request("hi")).await.unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::BudgetExceeded);
    assert!(
        err.message.contains("no price is known for cloud/mystery-model") && err.message.contains("[llm.prices]"),
        "{}",
        err.message
    );
    assert!(f.servers["cloud"].chat_requests().is_empty());
}

#[tokio::test]
async fn a_paid_answer_without_the_providers_counts_is_charged_its_whole_reservation() {
    let f = fixture(Setup {
        providers: vec![("cloud", false)],
        tier: vec!["cloud/big"],
        prices: BTreeMap::from([("cloud/big".to_string(), price(10.0))]),
        budgets: vec![BudgetRule { scope: Scope::Overall, period: Period::Monthly, limit_micros: 1_000_000 }],
        ..Setup::default()
    })
    .await;
    // Text, then the connection drops: no usage ever arrives.
    f.servers["cloud"].push(Reply::CutStream { content: "half an answer".into(), after_chunks: 2 });
    let mut req = request("hi");
    req.max_tokens = Some(100);
    assert_eq!(f.router.complete(req).await.unwrap_err().kind, LlmErrorKind::Network);
    let worst = price(10.0).worst_case_micros(2 + 8 + 16, 100);
    let status = &f.router.budget_status()[0];
    assert_eq!((status.spent_micros, status.reserved_micros), (worst, 0));
    assert_eq!(ledger(&f.router, &f.store).await[0].cost_micros, worst, "the ledger agrees with the book");
}

#[tokio::test]
async fn a_rejected_parameter_falls_back_without_resting_the_deployment() {
    let f = fixture(Setup {
        providers: vec![("a", false), ("b", false)],
        tier: vec!["a/m", "b/m"],
        cooldown: CooldownPolicy { failures: 1, duration: Duration::from_secs(60) },
        ..Setup::default()
    })
    .await;
    f.servers["a"].push(Reply::error(
        400,
        "invalid_request_error",
        Some("unsupported_parameter"),
        "temperature too high",
    ));
    f.servers["b"].push(Reply::text("b accepts it"));
    assert_eq!(f.router.complete(request("hi")).await.unwrap().text, "b accepts it");
    f.servers["a"].push(Reply::text("a is still in service"));
    assert_eq!(f.router.complete(request("hi")).await.unwrap().text, "a is still in service");
}

#[tokio::test]
async fn every_call_is_published_on_the_activity_stream_with_its_cost() {
    let f = fixture(Setup {
        providers: vec![("a", false), ("cloud", false)],
        tier: vec!["a/m", "cloud/m"],
        prices: BTreeMap::from([("cloud/m".to_string(), price(10.0))]),
        ..Setup::default()
    })
    .await;
    let activity = steward_core::Activity::new();
    f.router.publish_calls_to(activity.clone());
    f.servers["a"].push(Reply::rate_limited(60));
    f.servers["cloud"].push(Reply::text("from the cloud"));
    let out = f.router.complete(request("hi")).await.unwrap();
    let (seen, _) = activity.watch(0);
    let calls: Vec<_> = seen
        .iter()
        .map(|e| match &e.event {
            steward_protocol::Event::LlmCall {
                turn_id,
                agent,
                tier,
                provider,
                model,
                usage,
                cost,
                local,
                outcome,
                ..
            } => {
                assert_eq!(
                    (turn_id.as_str(), agent.as_deref(), tier.as_deref()),
                    ("turn_test", Some("architect"), Some("smart"))
                );
                assert_eq!(e.agent.as_deref(), Some("architect"));
                assert!(!local);
                (format!("{provider}/{model}"), outcome.clone(), *usage, *cost)
            }
            other => panic!("not a model call: {other:?}"),
        })
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!((calls[0].0.as_str(), calls[0].1.as_str()), ("a/m", "rate_limited"));
    assert_eq!((calls[1].0.as_str(), calls[1].1.as_str()), ("cloud/m", "ok"));
    assert_eq!(calls[1].2, out.usage);
    let expected = price(10.0).cost_micros(&out.usage) as f64 / 1_000_000.0;
    assert!(expected > 0.0 && (calls[1].3 - expected).abs() < 1e-12, "{} vs {expected}", calls[1].3);
}
