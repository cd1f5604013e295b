//! The router: one [`Llm`] in front of every configured deployment.
//!
//! A request names a tier (`local`, `fast`, `smart`), a tier by name, or a
//! deployment as `provider/model` ("gateway mode"). The router tries the
//! matching deployments in order: it skips those cooling down after repeated
//! failures, reserves the worst-case cost of paid ones against the budgets,
//! retries transient failures with backoff and jitter (honouring
//! `Retry-After`), and falls back to the next deployment on rate limits,
//! overload, server errors, timeouts, connection failures and failures
//! mid-stream before the first token; a context-length error moves on to a
//! deployment with a larger window. Every call is written to the usage
//! ledger with its tokens, cost, latency and the path of deployments tried.

mod budget;
mod pricing;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use steward_core::{Clock, Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, LlmStream, Store, Tier, UsageRecord};
use steward_protocol::{FinishReason, Usage};
use tokio::sync::mpsc;

pub use budget::{money, BudgetBook, BudgetRule, BudgetStatus, Exhausted, Period, Reservation, Scope};
pub use pricing::{Price, PriceTable, UNKNOWN_MODEL_PRICE};

/// One provider endpoint.
#[derive(Clone)]
pub struct Provider {
    /// Its name in `provider/model` ids (`openai`, `anthropic`, or a name from config).
    pub name: String,
    /// Its wire format: `openai`, `anthropic`, `ollama` or `gemini`.
    pub kind: String,
    pub llm: Arc<dyn Llm>,
    /// Runs on the user's own machines: free, and preferred.
    pub local: bool,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("local", &self.local)
            .finish()
    }
}

/// A model at a provider, as the router uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentSpec {
    pub provider: String,
    pub model: String,
    /// Tokens of context the model accepts.
    pub context_window: u32,
    /// Output tokens assumed when a request sets no limit, for the worst-case cost.
    pub max_output_tokens: u32,
}

impl DeploymentSpec {
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        DeploymentSpec {
            provider: provider.into(),
            model: model.into(),
            context_window: DEFAULT_CONTEXT_WINDOW,
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
        }
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// A context window nobody configured or knows: such a deployment is always
/// worth trying after another's context-length error.
pub const DEFAULT_CONTEXT_WINDOW: u32 = 0;

/// Context windows of common models, by wire format and model-name prefix.
const KNOWN_WINDOWS: &[(&str, u32)] = &[
    ("openai/gpt-4o", 128_000),
    ("openai/gpt-4.1", 1_047_576),
    ("openai/gpt-5", 400_000),
    ("openai/o1", 200_000),
    ("openai/o3", 200_000),
    ("openai/o4", 200_000),
    ("anthropic/claude", 200_000),
    ("gemini/gemini-1.5", 1_048_576),
    ("gemini/gemini-2", 1_048_576),
];

fn known_window(kind: &str, model: &str) -> u32 {
    let id = format!("{kind}/{model}");
    KNOWN_WINDOWS.iter().filter(|(k, _)| id.starts_with(k)).max_by_key(|(k, _)| k.len()).map(|(_, w)| *w).unwrap_or(0)
}
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 4_096;

/// How the router retries one deployment before moving on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per deployment (1 = no retry).
    pub attempts: u32,
    pub base_delay: Duration,
    /// Longest wait between tries; a `Retry-After` longer than this moves
    /// on to the next deployment instead of waiting.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 2, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(8) }
    }
}

/// When a deployment that keeps failing is rested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownPolicy {
    /// Consecutive failed calls that start a cooldown.
    pub failures: u32,
    pub duration: Duration,
}

impl Default for CooldownPolicy {
    fn default() -> Self {
        CooldownPolicy { failures: 3, duration: Duration::from_secs(60) }
    }
}

/// Everything the router is built from.
pub struct RouterConfig {
    pub providers: Vec<Provider>,
    /// Known deployments (for context windows and listings).
    pub deployments: Vec<DeploymentSpec>,
    /// Deployment ids (`provider/model`) per tier, in order of preference.
    pub tiers: BTreeMap<Tier, Vec<String>>,
    pub prices: PriceTable,
    pub budgets: Vec<BudgetRule>,
    pub retry: RetryPolicy,
    pub cooldown: CooldownPolicy,
}

/// The router. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    providers: BTreeMap<String, Provider>,
    deployments: Vec<DeploymentSpec>,
    tiers: BTreeMap<Tier, Vec<String>>,
    prices: PriceTable,
    budgets: Arc<BudgetBook>,
    retry: RetryPolicy,
    cooldown: CooldownPolicy,
    health: Mutex<HashMap<String, Health>>,
    /// The ledger writer's queue: records are written off the request path.
    ledger: Option<mpsc::Sender<LedgerMsg>>,
    clock: Arc<dyn Clock>,
    /// Where each call is also published as it ends, once set.
    activity: std::sync::OnceLock<steward_core::Activity>,
}

enum LedgerMsg {
    Record(Box<UsageRecord>),
    /// Answered once everything queued before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// How long a streamed answer waits for its reader before giving up on it.
const FORWARD_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Records waiting for the ledger at most; past that, callers wait.
const LEDGER_QUEUE: usize = 10_000;

/// Writes ledger records in the background, in order.
fn spawn_ledger_writer(store: Arc<dyn Store>) -> mpsc::Sender<LedgerMsg> {
    let (tx, mut rx) = mpsc::channel::<LedgerMsg>(LEDGER_QUEUE);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                LedgerMsg::Record(record) => {
                    if let Err(e) = store.record_usage(&record).await {
                        tracing::warn!(error = %e, "could not write the usage ledger");
                    }
                }
                LedgerMsg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    });
    tx
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
}

/// A deployment resolved for one request.
#[derive(Clone)]
struct Target {
    spec: DeploymentSpec,
    provider: Provider,
    price: Price,
    /// Whether a price table knows this paid model (unknown ones are
    /// refused under a budget, since their worst case cannot be bounded).
    price_known: bool,
}

/// Why the router gave up.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("tier '{tier}' names deployment '{id}', but no provider '{provider}' is configured")]
    UnknownProvider { tier: String, id: String, provider: String },
    #[error("deployment '{0}' is not of the form provider/model")]
    BadDeploymentId(String),
    #[error("cannot read the usage ledger to restore budgets: {0}")]
    Ledger(String),
}

impl Router {
    /// Builds the router; budgets start from what the ledger in `store`
    /// already records for their current periods.
    pub async fn new(
        config: RouterConfig,
        store: Option<Arc<dyn Store>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Router, RouterError> {
        let providers: BTreeMap<String, Provider> = config.providers.into_iter().map(|p| (p.name.clone(), p)).collect();
        for (tier, ids) in &config.tiers {
            for id in ids {
                let (provider, _) = id.split_once('/').ok_or_else(|| RouterError::BadDeploymentId(id.clone()))?;
                if !providers.contains_key(provider) {
                    return Err(RouterError::UnknownProvider {
                        tier: tier.as_str().into(),
                        id: id.clone(),
                        provider: provider.into(),
                    });
                }
            }
        }
        let now = clock.now_ms();
        let mut spent: HashMap<(String, i64), i64> = HashMap::new();
        if let Some(store) = &store {
            for rule in &config.budgets {
                let start = rule.period.start(now);
                let totals = store
                    .usage_totals(start, steward_core::UsageGroup::Provider)
                    .await
                    .map_err(|e| RouterError::Ledger(e.to_string()))?;
                let sum = match &rule.scope {
                    Scope::Overall => totals.iter().map(|t| t.cost_micros).sum(),
                    Scope::Provider(p) => totals.iter().filter(|t| &t.key == p).map(|t| t.cost_micros).sum(),
                };
                spent.insert((format!("{:?}", rule.scope), start), sum);
            }
        }
        let budgets = BudgetBook::new(config.budgets, now, |rule, start| {
            spent.get(&(format!("{:?}", rule.scope), start)).copied().unwrap_or(0)
        });
        Ok(Router {
            inner: Arc::new(Inner {
                providers,
                deployments: config.deployments,
                tiers: config.tiers,
                prices: config.prices,
                budgets: Arc::new(budgets),
                retry: config.retry,
                cooldown: config.cooldown,
                health: Mutex::new(HashMap::new()),
                ledger: store.map(spawn_ledger_writer),
                activity: std::sync::OnceLock::new(),
                clock,
            }),
        })
    }

    /// Every deployment of every tier, once each, in tier order (local,
    /// fast, smart).
    fn all_deployment_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for id in self.inner.tiers.values().flatten() {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids
    }

    /// The model names gateway clients may use: tier names and every
    /// deployment of a tier, in a stable order.
    pub fn gateway_models(&self) -> Vec<String> {
        let mut out: Vec<String> =
            self.inner.tiers.iter().filter(|(_, ids)| !ids.is_empty()).map(|(t, _)| t.as_str().to_string()).collect();
        out.extend(self.all_deployment_ids());
        out
    }

    /// Whether `model` is something the gateway routes: a tier name or
    /// `provider/model` with a configured provider.
    pub fn routes(&self, model: &str) -> bool {
        tier_named(model).is_some()
            || model
                .split_once('/')
                .map(|(p, m)| !m.is_empty() && self.inner.providers.contains_key(p))
                .unwrap_or(false)
    }

    pub fn budget_status(&self) -> Vec<BudgetStatus> {
        self.inner.budgets.status(self.inner.clock.now_ms())
    }

    pub fn tiers(&self) -> &BTreeMap<Tier, Vec<String>> {
        &self.inner.tiers
    }

    fn target(&self, id: &str) -> Option<Target> {
        let (provider, model) = id.split_once('/')?;
        let provider = self.inner.providers.get(provider)?.clone();
        let mut spec = self
            .inner
            .deployments
            .iter()
            .find(|d| d.provider == provider.name && d.model == model)
            .cloned()
            .unwrap_or_else(|| DeploymentSpec::new(provider.name.clone(), model));
        if spec.context_window == 0 {
            spec.context_window = known_window(&provider.kind, model);
        }
        // A price set in config wins, even for a provider on the local
        // network (a proxy to a paid API is not free).
        let (price, price_known) = match self.inner.prices.configured(&provider.name, model) {
            Some(p) => (p, true),
            None if provider.local => (Price::FREE, true),
            None => match self.inner.prices.lookup(&provider.name, &provider.kind, model) {
                Some(p) => (p, true),
                None => (UNKNOWN_MODEL_PRICE, false),
            },
        };
        Some(Target { spec, provider, price, price_known })
    }

    /// Free deployments on the user's own machines, from every tier, in
    /// tier order: where a request goes when budgets stop the paid ones.
    fn local_fallbacks(&self) -> Vec<Target> {
        self.all_deployment_ids().iter().filter_map(|id| self.target(id)).filter(|t| t.price.is_free()).collect()
    }

    /// The deployments to try for `request`, in order.
    fn candidates(&self, request: &LlmRequest) -> Result<Vec<Target>, LlmError> {
        let tiers = &self.inner.tiers;
        let tier_list = |tier: Tier| -> Vec<String> {
            match tiers.get(&tier).filter(|l| !l.is_empty()) {
                Some(l) => l.clone(),
                // An agent that asks for local models never gets the cloud.
                None if tier == Tier::Local => self.local_fallbacks().into_iter().map(|t| t.spec.id()).collect(),
                // An empty tier borrows from the others, local first.
                None => self.all_deployment_ids(),
            }
        };
        let ids: Vec<String> = match request.model.as_deref() {
            None => tier_list(request.tier),
            Some(m) => match tier_named(m) {
                Some(tier) => tier_list(tier),
                None if m.contains('/') => {
                    // The named deployment first, then the rest of its tier
                    // (or the request's tier) as fallbacks.
                    let home = tiers.iter().find(|(_, ids)| ids.iter().any(|i| i == m)).map(|(t, _)| *t);
                    let mut ids = vec![m.to_string()];
                    ids.extend(tier_list(home.unwrap_or(request.tier)).into_iter().filter(|i| i != m));
                    ids
                }
                None => {
                    // A bare model name: every deployment of that model.
                    let ids: Vec<String> = self
                        .all_deployment_ids()
                        .into_iter()
                        .filter(|id| id.split_once('/').map(|(_, model)| model == m).unwrap_or(false))
                        .collect();
                    if ids.is_empty() {
                        return Err(LlmError::new(
                            "router",
                            LlmErrorKind::ModelNotFound,
                            format!("no deployment serves model '{m}'; name it as provider/model or use a tier (local, fast, smart)"),
                        ));
                    }
                    ids
                }
            },
        };
        let targets: Vec<Target> = ids.iter().filter_map(|id| self.target(id)).collect();
        if targets.is_empty() {
            return Err(LlmError::new(
                "router",
                LlmErrorKind::NotConfigured,
                steward_core::llm::NOT_CONFIGURED_HELP.to_string(),
            ));
        }
        Ok(targets)
    }

    fn cooling(&self, id: &str) -> bool {
        let health = self.inner.health.lock().unwrap_or_else(|p| p.into_inner());
        health.get(id).and_then(|h| h.cooling_until).map(|t| t > Instant::now()).unwrap_or(false)
    }

    fn record_health(&self, id: &str, ok: bool) {
        let mut health = self.inner.health.lock().unwrap_or_else(|p| p.into_inner());
        let h = health.entry(id.to_string()).or_default();
        if ok {
            *h = Health::default();
            return;
        }
        h.consecutive_failures += 1;
        if h.consecutive_failures >= self.inner.cooldown.failures.max(1) {
            h.cooling_until = Some(Instant::now() + self.inner.cooldown.duration);
            h.consecutive_failures = 0;
            tracing::warn!(deployment = %id, cooldown_secs = self.inner.cooldown.duration.as_secs(), "deployment keeps failing; cooling down");
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let retry = &self.inner.retry;
        if let Some(wait) = retry_after {
            // Waiting longer than the policy allows is worse than trying elsewhere.
            return (wait <= retry.max_delay).then_some(wait);
        }
        let base = retry.base_delay.as_millis() as u64 * (1u64 << attempt.min(10));
        let jitter = rand::random::<f64>() + 0.5;
        Some(Duration::from_millis((base as f64 * jitter) as u64).min(retry.max_delay))
    }

    /// Publishes every call on `activity` (the engine's activity stream)
    /// from now on. Only the first call has an effect.
    pub fn publish_calls_to(&self, activity: steward_core::Activity) {
        let _ = self.inner.activity.set(activity);
    }

    /// Queues a ledger record; the writer stores it shortly after.
    async fn ledger(&self, record: UsageRecord) {
        if let Some(activity) = self.inner.activity.get() {
            let event = steward_protocol::Event::LlmCall {
                turn_id: record.trace_id.clone().unwrap_or_default(),
                agent: record.caller.clone(),
                tier: record.tier.clone(),
                provider: record.provider.clone(),
                model: record.model.clone(),
                usage: record.usage,
                cost: record.cost_micros as f64 / 1_000_000.0,
                local: record.local,
                outcome: record.outcome.clone(),
                latency_ms: record.latency_ms,
            };
            activity.publish(None, record.caller.as_deref(), event);
        }
        if let Some(tx) = &self.inner.ledger {
            if tx.send(LedgerMsg::Record(Box::new(record))).await.is_err() {
                tracing::warn!("the usage ledger writer has stopped; a record was lost");
            }
        }
    }

    /// Waits until every ledger record queued so far is written.
    pub async fn flush_ledger(&self) {
        if let Some(tx) = &self.inner.ledger {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(LedgerMsg::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }
}

/// The first 200 characters of an error message, for a summary.
fn brief(message: &str) -> String {
    let mut out: String = message.chars().take(200).collect();
    if message.chars().count() > 200 {
        out.push('…');
    }
    out
}

fn tier_named(s: &str) -> Option<Tier> {
    match s {
        "local" => Some(Tier::Local),
        "fast" => Some(Tier::Fast),
        "smart" => Some(Tier::Smart),
        _ => None,
    }
}

/// An upper bound of a request's prompt tokens: a token covers at least one
/// byte of text, so the byte count (plus framing per message) is never too
/// small, whatever the language — a reservation from it cannot fall short.
fn estimate_prompt_tokens(request: &LlmRequest) -> u64 {
    let bytes: usize = request
        .messages
        .iter()
        .map(|m| m.content.len() + m.tool_calls.iter().map(|c| c.name.len() + c.arguments.len() + 8).sum::<usize>() + 8)
        .sum::<usize>()
        + request
            .tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len() + 8)
            .sum::<usize>();
    bytes as u64 + 16
}

/// What the ledger needs to know about an attempt.
struct Attempt {
    target: Target,
    started_ms: i64,
    started: Instant,
    caller: Option<String>,
    tier: String,
    trace_id: Option<String>,
    path: Vec<String>,
    prompt_estimate: u64,
}

impl Attempt {
    fn record(&self, usage: Usage, cost: i64, ttft: Option<Duration>, outcome: &str) -> UsageRecord {
        UsageRecord {
            created_at: self.started_ms,
            caller: self.caller.clone(),
            tier: Some(self.tier.clone()),
            provider: self.target.provider.name.clone(),
            model: self.target.spec.model.clone(),
            usage,
            cost_micros: cost,
            latency_ms: self.started.elapsed().as_millis() as i64,
            ttft_ms: ttft.map(|d| d.as_millis() as i64),
            outcome: outcome.to_string(),
            local: self.target.provider.local,
            fallback_path: self.path.clone(),
            trace_id: self.trace_id.clone(),
        }
    }
}

#[async_trait]
impl Llm for Router {
    fn name(&self) -> &str {
        "router"
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let candidates = self.candidates(&request)?;
        let everything_cooling = candidates.iter().all(|t| self.cooling(&t.spec.id()));
        let tier = request.model.as_deref().and_then(tier_named).unwrap_or(request.tier).as_str().to_string();
        let prompt_estimate = estimate_prompt_tokens(&request);
        let mut path: Vec<String> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        // What each deployment said the first time it failed, for the final message.
        let mut first_messages: Vec<String> = Vec::new();
        let mut last_error: Option<LlmError> = None;
        let mut budget_refusal: Option<Exhausted> = None;
        // After a context-length error only larger (or unknown) windows are worth trying.
        let mut min_window = 0u32;
        // Free local deployments join the end of the list once a budget has
        // refused a paid one.
        let mut queue: std::collections::VecDeque<Target> = candidates.into();
        let mut tried: Vec<String> = Vec::new();
        let mut locals_added = false;

        while let Some(target) = queue.pop_front() {
            let id = target.spec.id();
            if tried.contains(&id) {
                continue;
            }
            tried.push(id.clone());
            let window = target.spec.context_window;
            if min_window > 0 && window != 0 && window <= min_window {
                continue;
            }
            if !everything_cooling && self.cooling(&id) {
                failures.push(format!("{id} (cooling down)"));
                continue;
            }
            let max_output = u64::from(request.max_tokens.unwrap_or(target.spec.max_output_tokens).max(1));
            let budgeted = !target.price.is_free() && self.inner.budgets.covers(&target.provider.name);
            let mut reservation = None;
            if budgeted {
                let refusal = if target.price_known {
                    let worst = target.price.worst_case_micros(prompt_estimate, max_output);
                    match self.inner.budgets.reserve(&target.provider.name, worst, self.inner.clock.now_ms()) {
                        Ok(r) => {
                            reservation = Some(r);
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    }
                } else {
                    Some(format!("no price is known for {id}, so its cost cannot be held to the budget; add it under [llm.prices]"))
                };
                if let Some(reason) = refusal {
                    tracing::info!(deployment = %id, reason = %reason, "skipping a paid deployment: budget");
                    failures.push(format!("{id} (budget)"));
                    if budget_refusal.is_none() {
                        budget_refusal = Some(Exhausted::because(reason));
                    }
                    if !locals_added {
                        locals_added = true;
                        queue.extend(self.local_fallbacks());
                    }
                    continue;
                }
            }

            let mut provider_request = request.clone();
            provider_request.model = Some(target.spec.model.clone());
            if !target.price.is_free() {
                // The reservation assumed at most this many output tokens;
                // the provider is held to it, so the cost cannot exceed it.
                provider_request.max_tokens = Some(max_output as u32);
            }
            // What failed attempts on this deployment cost (a request the
            // provider accepted before failing is billed its prompt).
            let mut charged = 0i64;
            let mut attempt_no = 0;
            let outcome = loop {
                let attempt = Attempt {
                    target: target.clone(),
                    started_ms: self.inner.clock.now_ms(),
                    started: Instant::now(),
                    caller: request.caller.clone(),
                    tier: tier.clone(),
                    trace_id: request.trace_id.clone(),
                    path: path.clone(),
                    prompt_estimate,
                };
                let (error, accepted) = match target.provider.llm.stream(provider_request.clone()).await {
                    Ok(mut stream) => match stream.next().await {
                        Some(Ok(first)) => {
                            self.record_health(&id, true);
                            let ttft = attempt.started.elapsed();
                            return Ok(self.forward(stream, first, ttft, attempt, reservation.take(), charged));
                        }
                        None => {
                            self.record_health(&id, true);
                            let ttft = attempt.started.elapsed();
                            let done = LlmChunk::Finish(FinishReason::Stop);
                            return Ok(self.forward(stream, done, ttft, attempt, reservation.take(), charged));
                        }
                        // Failed before the first token: as good as failing to start.
                        Some(Err(e)) => (e, true),
                    },
                    Err(e) => (e, false),
                };
                let cost = if accepted { target.price.worst_case_micros(prompt_estimate, 0) } else { 0 };
                charged = charged.saturating_add(cost);
                self.ledger(attempt.record(Usage::default(), cost, None, error.kind.as_str())).await;
                tracing::warn!(deployment = %id, attempt = attempt_no + 1, error = %error, "deployment failed");
                if attempt_no == 0 {
                    first_messages.push(format!("{id}: {}", brief(&error.message)));
                }
                let kind = error.kind;
                last_error = Some(error);
                match kind {
                    LlmErrorKind::RateLimited { .. }
                    | LlmErrorKind::Overloaded
                    | LlmErrorKind::Server { .. }
                    | LlmErrorKind::Network
                    | LlmErrorKind::Timeout => {
                        attempt_no += 1;
                        let retry_after = match kind {
                            LlmErrorKind::RateLimited { retry_after } => retry_after,
                            _ => None,
                        };
                        if attempt_no < self.inner.retry.attempts {
                            if let Some(wait) = self.backoff(attempt_no - 1, retry_after) {
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                        }
                        self.record_health(&id, false);
                        failures.push(format!("{id} ({})", kind.as_str()));
                        break Ok(());
                    }
                    LlmErrorKind::ContextLengthExceeded => {
                        min_window = min_window.max(window);
                        failures.push(format!("{id} (context too long)"));
                        break Ok(());
                    }
                    // A problem of this deployment's setup, output or
                    // parameters: another may work.
                    LlmErrorKind::Authentication
                    | LlmErrorKind::ModelNotFound
                    | LlmErrorKind::InvalidResponse
                    | LlmErrorKind::BadRequest => {
                        if kind != LlmErrorKind::BadRequest {
                            self.record_health(&id, false);
                        }
                        failures.push(format!("{id} ({})", kind.as_str()));
                        break Ok(());
                    }
                    // The content itself is refused; another deployment would refuse it too.
                    LlmErrorKind::ContentPolicy | LlmErrorKind::NotConfigured | LlmErrorKind::BudgetExceeded => {
                        break Err(kind);
                    }
                }
            };
            // Whatever happens next, this deployment's reservation ends at
            // what its failed attempts cost.
            match reservation.take() {
                Some(r) => r.settle(charged),
                None if charged > 0 => {
                    self.inner.budgets.charge(&target.provider.name, charged, self.inner.clock.now_ms())
                }
                None => {}
            }
            if let Err(kind) = outcome {
                return Err(last_error.unwrap_or_else(|| LlmError::new("router", kind, "request refused")));
            }
            path.push(id);
        }

        let tried = failures.join(", ");
        match (last_error, budget_refusal) {
            (None, Some(exhausted)) => Err(LlmError::new(
                "router",
                LlmErrorKind::BudgetExceeded,
                format!(
                    "budget exhausted: {exhausted}; no free local deployment could serve the request (tried {tried})"
                ),
            )),
            (Some(e), _) if failures.len() <= 1 => Err(e),
            (Some(e), _) => Err(LlmError::new(
                e.provider.clone(),
                e.kind,
                format!("every deployment failed (tried {tried}): {}", first_messages.join("; ")),
            )),
            (None, None) => Err(LlmError::new(
                "router",
                LlmErrorKind::ContextLengthExceeded,
                format!("no deployment has a context window large enough (tried {tried})"),
            )),
        }
    }
}

impl Router {
    /// Streams the rest of a successful call to the caller, settles the
    /// budget before the caller sees the stream end, then queues the ledger
    /// record (so the ledger is off the request's path; see `flush_ledger`).
    fn forward(
        &self,
        mut stream: LlmStream,
        first: LlmChunk,
        ttft: Duration,
        attempt: Attempt,
        reservation: Option<Reservation>,
        charged_before: i64,
    ) -> LlmStream {
        let (tx, rx) = mpsc::channel::<Result<LlmChunk, LlmError>>(64);
        let router = self.clone();
        tokio::spawn(async move {
            let mut usage: Option<Usage> = None;
            let mut output_chars = 0usize;
            let mut outcome = "ok".to_string();
            let mut next: Option<Result<LlmChunk, LlmError>> = Some(Ok(first));
            while let Some(item) = next.take() {
                match &item {
                    Ok(LlmChunk::Text(t)) => output_chars += t.len(),
                    Ok(LlmChunk::ToolCall(c)) => output_chars += c.name.len() + c.arguments.len(),
                    Ok(LlmChunk::Usage(u)) => usage = Some(*u),
                    Ok(LlmChunk::Finish(_)) => {}
                    Err(e) => outcome = e.kind.as_str().to_string(),
                }
                let failed = item.is_err();
                // A reader that stops reading must not hold the provider's
                // stream, and the budget reservation, open forever.
                match tokio::time::timeout(FORWARD_SEND_TIMEOUT, tx.send(item)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => {
                        outcome = "cancelled".into();
                        break;
                    }
                }
                if failed {
                    break;
                }
                next = stream.next().await;
            }
            drop(stream);
            // Without the provider's own counts (a cut stream, a cancelled
            // call, a server that does not report usage) the cost is not
            // known: a reserved call is charged its whole reservation, an
            // unreserved one an estimate from what was seen.
            let counted = usage.is_some();
            let usage = usage.unwrap_or_else(|| Usage::new(attempt.prompt_estimate, output_chars as u64));
            let cost = match (&reservation, counted) {
                (Some(r), false) => r.amount(),
                _ => attempt.target.price.cost_micros(&usage),
            };
            let total = cost.saturating_add(charged_before);
            match reservation {
                Some(r) => r.settle(total),
                None => router.inner.budgets.charge(&attempt.target.provider.name, total, router.inner.clock.now_ms()),
            }
            // The caller's stream ends now; the ledger is written behind it.
            drop(tx);
            router.ledger(attempt.record(usage, cost, Some(ttft), &outcome)).await;
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
    }
}

#[async_trait]
impl steward_core::Gateway for Router {
    fn routes(&self, model: &str) -> bool {
        Router::routes(self, model)
    }

    fn models(&self) -> Vec<String> {
        self.gateway_models()
    }

    fn budgets(&self) -> Vec<steward_protocol::api::BudgetLine> {
        let money = |micros: i64| micros as f64 / 1e6;
        self.budget_status()
            .into_iter()
            .map(|b| steward_protocol::api::BudgetLine {
                scope: match &b.rule.scope {
                    Scope::Overall => "overall".to_string(),
                    Scope::Provider(p) => p.clone(),
                },
                period: b.rule.period.as_str().to_string(),
                period_start: steward_core::tools::rfc3339(b.period_start).chars().take(10).collect(),
                limit: money(b.rule.limit_micros),
                spent: money(b.spent_micros),
                reserved: money(b.reserved_micros),
                remaining: money(b.remaining_micros),
            })
            .collect()
    }

    fn llm(&self) -> Arc<dyn Llm> {
        Arc::new(self.clone())
    }

    async fn flush(&self) {
        self.flush_ledger().await;
    }
}

#[cfg(test)]
mod tests;
