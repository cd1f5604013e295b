//! `steward serve`: wires the configuration into an engine and serves it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use steward_core::tools::CurrentTime;
use steward_core::{
    AgentRegistry, Clock, Engine, EngineLimits, EngineParts, Llm, Store, SystemClock, ToolRegistry, UnconfiguredLlm,
};
use steward_llm::{OpenAiCompatible, OpenAiConfig};
use steward_server::{ApiKeys, AppState, ServerSettings};
use steward_store::SqlStore;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, ProviderKind};

const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";
const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";
const OLLAMA_DEFAULT_HOST: &str = "http://127.0.0.1:11434";
const OLLAMA_DEFAULT_MODEL: &str = "llama3.1";

pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.file.log.level).context("log.level (LOG_LEVEL) is not a valid filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.file.log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

fn build_llm(config: &Config) -> anyhow::Result<Arc<dyn Llm>> {
    let llm = &config.file.llm;
    let (name, base_url, model) = match llm.provider.unwrap_or(ProviderKind::None) {
        ProviderKind::None => return Ok(Arc::new(UnconfiguredLlm)),
        ProviderKind::Openai => (
            "openai",
            llm.base_url.clone().unwrap_or_else(|| OPENAI_DEFAULT_BASE.to_string()),
            llm.model.clone().unwrap_or_else(|| OPENAI_DEFAULT_MODEL.to_string()),
        ),
        ProviderKind::Ollama => (
            "ollama",
            steward_llm::ollama_base_url(llm.base_url.as_deref().unwrap_or(OLLAMA_DEFAULT_HOST)),
            llm.model.clone().unwrap_or_else(|| OLLAMA_DEFAULT_MODEL.to_string()),
        ),
    };
    let provider = OpenAiCompatible::new(OpenAiConfig {
        name: name.to_string(),
        base_url,
        api_key: llm.api_key.as_ref().map(|k| k.expose().to_string()),
        model,
        tier_models: llm.tiers.clone(),
        request_timeout: Duration::from_secs(llm.request_timeout_secs),
        connect_timeout: Duration::from_secs(llm.connect_timeout_secs),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Arc::new(provider))
}

fn build_agents(config: &Config, tools: &ToolRegistry) -> anyhow::Result<AgentRegistry> {
    let mut agents = AgentRegistry::builtin();
    for profile in config.agent_profiles() {
        agents.insert(profile);
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

/// The tools every agent can be given.
fn builtin_tools(clock: Arc<dyn Clock>) -> ToolRegistry {
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock)));
    tools
}

/// Checks the agent profiles of `config` as `serve` would.
pub fn check_agents(config: &Config) -> anyhow::Result<()> {
    build_agents(config, &builtin_tools(Arc::new(SystemClock))).map(|_| ())
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tools = builtin_tools(clock.clone());
    let agents = build_agents(&config, &tools)?;
    let store = match config.database_url() {
        Some(url) => SqlStore::connect(url, clock.clone()).await,
        None => SqlStore::open_in_dir(&config.file.storage.data_dir, clock.clone()).await,
    }
    .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    let store_desc = steward_store::redact_url(store.url());
    let store: Arc<dyn Store> = Arc::new(store);

    let llm = build_llm(&config)?;
    let engine = Engine::new(EngineParts {
        llm: llm.clone(),
        store,
        tools,
        agents,
        clock,
        limits: EngineLimits {
            max_steps: config.file.engine.max_steps,
            max_parallel_tools: config.file.engine.max_parallel_tools,
        },
    });

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
    if llm.name() == "none" {
        tracing::warn!(
            "no language model is configured: set OPENAI_API_KEY/OPENAI_BASE_URL or OLLAMA_HOST to enable answers"
        );
    }
    let state = AppState::new(engine, ServerSettings { api_keys: keys, max_body_bytes: server.max_body_bytes });
    steward_server::serve(listener, state, shutdown_signal()).await.context("the server failed")?;
    tracing::info!("steward stopped");
    Ok(())
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
