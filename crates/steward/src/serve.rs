//! `steward serve`: wires the configuration into an engine and serves it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use steward_core::changes::ChangeRecorder;
use steward_core::delegation::DelegateTool;
use steward_core::home::catalog::spawn_catalog_sync;
use steward_core::home::tools::{home_tools, AnalyzeEnergy, DeleteAutomation, SaveAutomation, ValidateAutomation};
use steward_core::tools::CurrentTime;
use steward_core::{
    Activity, AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, Home, Llm, Redactor, RulePolicy,
    Store, SystemClock, ToolRegistry, UnconfiguredLlm,
};
use steward_core::{Policy, RunTaskTool, RunnerOptions, RunnerParts, TaskRunner, Tasks};
use steward_integrations::ansible::{ansible_tools, Ansible};
use steward_integrations::demo::DemoHome;
use steward_integrations::git_audit::GitAudit;
use steward_integrations::homeassistant::HomeAssistant;
use steward_integrations::proxmox::{proxmox_tools, Proxmox, TaskWait};
use steward_integrations::sandbox::{RunAnalysisScript, Sandbox};
use steward_integrations::ssh::{ssh_tools, Ssh};
use steward_llm::anthropic::{Anthropic, AnthropicConfig};
use steward_llm::gemini::{Gemini, GeminiConfig};
use steward_llm::ollama::{Ollama, OllamaConfig};
use steward_llm::router::{
    BudgetRule, CooldownPolicy, DeploymentSpec, Period, PriceTable, Provider, RetryPolicy, Router, RouterConfig, Scope,
};
use steward_llm::{OpenAiCompatible, OpenAiConfig};
use steward_server::{ApiKeys, AppState, ServerSettings};
use steward_store::SqlStore;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, ProviderKind};

pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(crate::mcp::log_filter(&config.file.log.level))
        .context("log.level (LOG_LEVEL) is not a valid filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.file.log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// The LLM the engine talks to: the router over every configured provider,
/// or, with none, the stand-in that tells the user how to configure one.
pub async fn build_llm(
    config: &Config,
    store: Option<Arc<dyn Store>>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<Router>> {
    let llm = &config.file.llm;
    if llm.providers.is_empty() {
        return Ok(None);
    }
    let request_timeout = Duration::from_secs(llm.request_timeout_secs);
    let connect_timeout = Duration::from_secs(llm.connect_timeout_secs);
    let mut providers = Vec::new();
    for (name, p) in &llm.providers {
        let kind = p.kind_of(name).ok_or_else(|| anyhow::anyhow!("llm.providers.{name}: no kind"))?;
        let base_url = p.base_url_of(kind);
        let api_key = p.api_key.as_ref().map(|k| k.expose().to_string());
        let default_model = p.model.clone().unwrap_or_default();
        let built: Arc<dyn Llm> = match kind {
            ProviderKind::Openai => Arc::new(
                OpenAiCompatible::new(OpenAiConfig {
                    name: name.clone(),
                    base_url,
                    api_key,
                    model: default_model,
                    tier_models: Default::default(),
                    request_timeout,
                    connect_timeout,
                })
                .map_err(|e| anyhow::anyhow!("llm.providers.{name}: {e}"))?,
            ),
            ProviderKind::Anthropic => {
                let mut c = AnthropicConfig::new(default_model);
                c.name = name.clone();
                c.base_url = base_url;
                c.api_key = api_key;
                c.request_timeout = request_timeout;
                c.connect_timeout = connect_timeout;
                Arc::new(Anthropic::new(c).map_err(|e| anyhow::anyhow!("llm.providers.{name}: {e}"))?)
            }
            ProviderKind::Gemini => {
                let mut c = GeminiConfig::new(default_model);
                c.name = name.clone();
                c.base_url = base_url;
                c.api_key = api_key;
                c.request_timeout = request_timeout;
                c.connect_timeout = connect_timeout;
                Arc::new(Gemini::new(c).map_err(|e| anyhow::anyhow!("llm.providers.{name}: {e}"))?)
            }
            ProviderKind::Ollama => {
                let mut c = OllamaConfig::new(base_url, default_model);
                c.name = name.clone();
                c.request_timeout = request_timeout;
                c.connect_timeout = connect_timeout;
                Arc::new(Ollama::new(c).map_err(|e| anyhow::anyhow!("llm.providers.{name}: {e}"))?)
            }
        };
        providers.push(Provider {
            name: name.clone(),
            kind: kind.as_str().to_string(),
            llm: built,
            local: p.is_local(kind),
        });
    }
    let deployments = llm
        .deployments
        .iter()
        .filter_map(|(id, d)| {
            let (provider, model) = id.split_once('/')?;
            let mut spec = DeploymentSpec::new(provider, model);
            if let Some(w) = d.context_window {
                spec.context_window = w;
            }
            if let Some(m) = d.max_output_tokens {
                spec.max_output_tokens = m;
            }
            Some(spec)
        })
        .collect();
    let micros = |amount: f64| (amount * 1e6).round() as i64;
    let mut budgets = Vec::new();
    let mut add = |scope: Scope, limits: (Option<f64>, Option<f64>)| {
        if let Some(d) = limits.0 {
            budgets.push(BudgetRule { scope: scope.clone(), period: Period::Daily, limit_micros: micros(d) });
        }
        if let Some(m) = limits.1 {
            budgets.push(BudgetRule { scope, period: Period::Monthly, limit_micros: micros(m) });
        }
    };
    add(Scope::Overall, (llm.budgets.daily, llm.budgets.monthly));
    for (name, l) in &llm.budgets.providers {
        add(Scope::Provider(name.clone()), (l.daily, l.monthly));
    }
    let router = Router::new(
        RouterConfig {
            providers,
            deployments,
            tiers: llm.effective_tiers(),
            prices: PriceTable::new(llm.prices.clone()),
            budgets,
            retry: RetryPolicy { attempts: llm.retries, ..RetryPolicy::default() },
            cooldown: CooldownPolicy {
                failures: llm.cooldown_failures,
                duration: Duration::from_secs(llm.cooldown_secs),
            },
        },
        store,
        clock,
    )
    .await?;
    Ok(Some(router))
}

fn build_agents(config: &Config, tools: &ToolRegistry) -> anyhow::Result<AgentRegistry> {
    let mut agents = AgentRegistry::builtin();
    for profile in config.agent_profiles() {
        agents.insert(crate::mcp::without_missing_mcp_tools(config, profile, tools));
    }
    for agent in agents.all() {
        for tool in &agent.tools {
            if !tools.contains(tool) {
                let known: Vec<&str> = tools.names().collect();
                bail!(
                    "agents.{}: unknown tool '{tool}'\n    fix: use tools Steward has: {}",
                    agent.id,
                    known.join(", ")
                );
            }
        }
    }
    Ok(agents)
}

/// The tools every agent can be given. Applied configuration changes go to
/// `changes` (the git audit) when it is configured.
fn builtin_tools(
    clock: Arc<dyn Clock>,
    home: Arc<dyn Home>,
    changes: Option<Arc<dyn ChangeRecorder>>,
    sandbox: Arc<Sandbox>,
    ansible: Arc<Ansible>,
    ssh: Arc<Ssh>,
    proxmox: Option<Arc<Proxmox>>,
) -> ToolRegistry {
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    tools.register(Arc::new(RunAnalysisScript::new(home.clone(), clock.clone(), sandbox)));
    for tool in home_tools(home.clone(), clock) {
        tools.register(tool);
    }
    tools.register(Arc::new(SaveAutomation::new(home.clone(), changes.clone())));
    tools.register(Arc::new(ValidateAutomation::new(home.clone())));
    tools.register(Arc::new(DeleteAutomation::new(home, changes)));
    for delegation in DelegateTool::builtin() {
        tools.register(Arc::new(delegation));
    }
    // Always registered: unconfigured, they tell the agent what to set.
    for tool in ansible_tools(ansible) {
        tools.register(tool);
    }
    for tool in ssh_tools(ssh) {
        tools.register(tool);
    }
    for tool in proxmox_tools(proxmox, TaskWait::default()) {
        tools.register(tool);
    }
    tools
}

/// The SSH client over `[ssh]`; its read-only patterns were checked with
/// the rest of the configuration.
fn build_ssh(config: &Config) -> anyhow::Result<Arc<Ssh>> {
    let ssh = Ssh::new(config.file.ssh.ssh_config(&config.file.storage.data_dir))
        .map_err(|e| anyhow::anyhow!("ssh.readonly_commands: {e}"))?;
    Ok(Arc::new(ssh))
}

/// The git audit repository, when `[audit] git_repo` is set.
async fn open_git_audit(config: &Config) -> anyhow::Result<Option<Arc<dyn ChangeRecorder>>> {
    let Some(repo) = &config.file.audit.git_repo else { return Ok(None) };
    let audit = GitAudit::open(repo.clone(), Redactor::new(config.secrets()))
        .await
        .map_err(|e| anyhow::anyhow!("audit.git_repo: {e}"))?;
    tracing::info!(repo = %repo.display(), "applied configuration changes are committed to the git audit repository");
    Ok(Some(Arc::new(audit)))
}

/// The house: Home Assistant when `HA_URL` is set, otherwise the built-in
/// demo home.
async fn build_home(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn Home>> {
    let home = &config.file.home;
    match (&home.url, &home.token) {
        (Some(url), Some(token)) => {
            let ha = HomeAssistant::connect(url, token.expose(), clock)
                .await
                .map_err(|e| anyhow::anyhow!("cannot use Home Assistant at {url}: {e}"))?;
            tracing::info!(url = %url, "connected to Home Assistant");
            Ok(Arc::new(ha))
        }
        _ => {
            let latency = Duration::from_millis(home.demo_latency_ms);
            Ok(Arc::new(DemoHome::new(clock).with_latency(latency)))
        }
    }
}

/// The Proxmox VE client, when `[proxmox]` is configured. Proxmox being
/// down does not stop Steward: it is checked in the background, and the
/// tools report what they meet when they are called.
fn build_proxmox(config: &Config) -> anyhow::Result<Option<Arc<Proxmox>>> {
    let Some(c) = config.file.proxmox.proxmox_config() else { return Ok(None) };
    let proxmox = Arc::new(Proxmox::new(&c).map_err(|e| anyhow::anyhow!("[proxmox]: {e}"))?);
    if c.insecure_tls {
        tracing::warn!(url = %c.url, "proxmox.insecure_tls is set: Proxmox's certificate is not verified");
    }
    let probe = proxmox.clone();
    tokio::spawn(async move {
        match probe.version().await {
            Ok(version) => {
                tracing::info!(url = %probe.url(), token = %probe.token_id(), %version, "Proxmox VE is reachable")
            }
            Err(e) => tracing::warn!(error = %e, "Proxmox VE is configured but cannot be used yet"),
        }
    });
    Ok(Some(proxmox))
}

/// Checks the agent profiles of `config` as `serve` would.
pub fn check_agents(config: &Config) -> anyhow::Result<()> {
    // The tools' names do not depend on the house, so the demo home stands in.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let home: Arc<dyn Home> = Arc::new(DemoHome::new(clock.clone()));
    // Nor on the sandbox, which is therefore not looked for.
    let sandbox = Arc::new(Sandbox::unchecked(&config.file.sandbox.sandbox_config()));
    let ansible = Arc::new(Ansible::new(config.file.ansible.ansible_config()));
    build_agents(config, &builtin_tools(clock, home, None, sandbox, ansible, build_ssh(config)?, None)).map(|_| ())
}

/// Opens (and migrates) the configured database: `DATABASE_URL`, or the
/// embedded SQLite database in the data directory.
pub async fn open_store(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<SqlStore> {
    match config.database_url() {
        Some(url) => SqlStore::connect(url, clock).await,
        None => SqlStore::open_in_dir(&config.file.storage.data_dir, clock).await,
    }
    .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))
}

/// `steward audit verify`: reads every row of the audit log and checks the
/// hash chain. `Ok(Err(..))` when the chain is broken.
pub async fn verify_audit(config: &Config) -> anyhow::Result<Result<String, String>> {
    if config.database_url().is_none() {
        // Opening would create an empty database, which would verify.
        let path = config.file.storage.data_dir.join("steward.db");
        if !path.exists() {
            bail!("no database at {}; is the data directory (--data-dir, STEWARD_DATA_DIR) right?", path.display());
        }
    }
    let store = open_store(config, Arc::new(SystemClock)).await?;
    let mut verifier = steward_core::ChainVerifier::new();
    let mut after = 0;
    let outcome = loop {
        let page = match store.list_audit(after, 1000).await {
            Ok(page) => page,
            Err(e) => {
                store.close().await;
                return Err(anyhow::anyhow!("cannot read the audit log: {e}"));
            }
        };
        if let Some(bad) = page.iter().find_map(|e| verifier.push(e).err()) {
            break Err(format!("audit log broken at entry {}: {}", bad.seq, bad.reason));
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = last.seq,
            _ => {
                let head = verifier.head_hash();
                break Ok(format!(
                    "audit log intact: {} entries, head {}",
                    verifier.checked(),
                    if verifier.checked() == 0 { "(empty)" } else { &head[..16] }
                ));
            }
        }
    };
    store.close().await;
    Ok(outcome)
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let home = build_home(&config, clock.clone()).await?;
    if home.is_demo() {
        tracing::warn!(
            "no Home Assistant is configured: running against the built-in demo home, a simulated house; \
nothing real is controlled"
        );
    }
    let demo = home.is_demo();
    let changes = open_git_audit(&config).await?;
    let sandbox = Arc::new(Sandbox::detect(&config.file.sandbox.sandbox_config()).await);
    if sandbox.is_sandboxed() {
        tracing::info!("{}", sandbox.describe());
    } else {
        tracing::warn!("{}", sandbox.describe());
    }
    let ansible = Arc::new(Ansible::new(config.file.ansible.ansible_config()));
    if ansible.is_configured() {
        match ansible.describe() {
            Ok(line) => tracing::info!("{line}"),
            Err(e) => tracing::warn!("the Ansible tools cannot run: {e}"),
        }
    }
    let ssh = build_ssh(&config)?;
    tracing::info!("{}", ssh.describe());
    let proxmox = build_proxmox(&config)?;
    let mut tools = builtin_tools(clock.clone(), home.clone(), changes, sandbox, ansible, ssh, proxmox);
    // MCP tools are known once their servers have started.
    let mcp = crate::mcp::start(&config).await;
    crate::mcp::register(&mcp, &mut tools);
    let mut agents = build_agents(&config, &tools)?;
    crate::mcp::give_to_infra(&mcp, &mut agents);
    if demo {
        for id in ["architect", "librarian"] {
            if let Some(mut agent) = agents.get(id).cloned() {
                agent.system_prompt.push_str(steward_core::agent::DEMO_HOME_NOTE);
                agents.insert(agent);
            }
        }
    }
    let store = open_store(&config, clock.clone()).await?;
    let store_desc = steward_store::redact_url(store.url());
    let store: Arc<dyn Store> = Arc::new(store);
    // Energy analyses are kept as insights with a chart the answer links,
    // and priced at the configured tariff.
    let tools = {
        let mut tools = tools;
        tools.register(Arc::new(
            AnalyzeEnergy::new(home.clone(), clock.clone())
                .with_insights(store.clone())
                .with_price(config.file.energy.price_per_kwh),
        ));
        tools
    };

    let router = build_llm(&config, Some(store.clone()), clock.clone()).await?;
    let llm: Arc<dyn Llm> = match &router {
        Some(r) => Arc::new(r.clone()),
        None => Arc::new(UnconfiguredLlm),
    };
    let policy: Arc<dyn Policy> =
        Arc::new(RulePolicy { preset: config.file.policy.preset, rules: config.file.policy.rules.clone() });
    // Tasks and plans: the runner calls the tools directly; the engine also
    // gets `run_task`, which starts a plan once a person approves it.
    // One activity stream for the engine, the task runner and the router.
    let activity = Activity::new();
    if let Some(r) = &router {
        r.publish_calls_to(activity.clone());
    }
    let runner = TaskRunner::new(RunnerParts {
        store: store.clone(),
        tools: tools.clone(),
        policy: policy.clone(),
        clock: clock.clone(),
        redactor: Redactor::new(config.secrets()),
        options: RunnerOptions { activity: activity.clone(), ..RunnerOptions::default() },
    });
    let mut tools = tools;
    tools.register(Arc::new(RunTaskTool::new(runner.clone())));
    let options = EngineOptions {
        approval_ttl: Duration::from_secs(config.file.policy.approval_ttl_secs),
        debug: config.file.engine.debug,
        redactor: Redactor::new(config.secrets()),
        home: Some(home.clone()),
        activity,
    };
    let engine = Engine::with_options(
        EngineParts {
            llm: llm.clone(),
            store,
            tools,
            agents,
            clock,
            limits: EngineLimits {
                max_steps: config.file.engine.max_steps,
                max_parallel_tools: config.file.engine.max_parallel_tools,
            },
        },
        policy,
        options,
    );
    // Tasks a stop left behind: running ones resume (a step that could
    // change things and was interrupted is not run again).
    let tasks = Arc::new(Tasks::new(engine.clone(), runner, llm.clone()));
    let task_recovery = tasks.recover().await.map_err(|e| anyhow::anyhow!("cannot recover tasks: {e}"))?;
    for id in &task_recovery.resumed {
        tracing::info!(task = %id, "resumed a task after the restart");
    }
    for id in &task_recovery.failed {
        tracing::warn!(task = %id, "a task was interrupted while it was being planned or started; marked failed");
    }
    // Approvals a crash or stop left behind: approved ones that never
    // started run now, once; interrupted ones are marked failed.
    let recovery = engine.recover_approvals().await.map_err(|e| anyhow::anyhow!("cannot recover approvals: {e}"))?;
    for id in &recovery.resumed {
        tracing::info!(approval = %id, "ran an action approved before the restart");
    }
    for id in &recovery.interrupted {
        tracing::warn!(approval = %id, "an approved action was interrupted by the restart; marked failed, not rerun");
    }
    let sweeper = tokio::spawn(expire_approvals(engine.clone()));
    let catalog = spawn_catalog_sync(home, engine.store().clone(), Duration::from_secs(10));

    let mut digests = Vec::new();
    for d in &config.file.auth.api_keys {
        digests.push(steward_server::parse_digest(d).map_err(|e| anyhow::anyhow!("STEWARD_API_KEYS: entry {e}"))?);
    }
    let keys = ApiKeys::new(digests);
    let server = &config.file.server;
    let host = if server.host == "localhost" { "127.0.0.1" } else { server.host.as_str() };
    let listener = tokio::net::TcpListener::bind((host, server.port)).await.with_context(|| {
        format!(
            "cannot listen on {host}:{}; is another program using that port? Choose another with API_PORT or --port",
            server.port
        )
    })?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    tracing::info!(
        address = %local,
        database = %store_desc,
        llm = llm.name(),
        auth = if keys.is_enabled() { "api keys" } else { "off (loopback only)" },
        "steward listening"
    );
    if let Some(r) = &router {
        for (tier, ids) in r.tiers() {
            tracing::info!(tier = tier.as_str(), deployments = %ids.join(", "), "model tier");
        }
    }
    if llm.name() == "none" {
        tracing::warn!(
            "no language model is configured: set OPENAI_API_KEY/OPENAI_BASE_URL or OLLAMA_HOST to enable answers"
        );
    }
    let mut state = AppState::new(engine, ServerSettings { api_keys: keys, max_body_bytes: server.max_body_bytes })
        .with_tasks(tasks)
        .with_energy_price(config.file.energy.price_per_kwh);
    if let Some(r) = &router {
        state = state.with_gateway(Arc::new(r.clone()));
    }
    let served = steward_server::serve(listener, state, shutdown_signal()).await.context("the server failed");
    sweeper.abort();
    catalog.abort();
    mcp.shutdown().await;
    served?;
    // Calls made before the shutdown still land in the ledger, so budgets
    // resume from them after a restart.
    if let Some(r) = &router {
        r.flush_ledger().await;
    }
    tracing::info!("steward stopped");
    Ok(())
}

/// Marks approvals nobody decided in time as expired, so lists and the
/// audit log show it without anyone asking.
async fn expire_approvals(engine: Engine) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        match engine.expire_due().await {
            Ok(expired) => {
                for a in expired {
                    tracing::info!(approval = %a.id, tool = %a.tool, "approval expired undecided");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not expire approvals"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing running requests");
}
