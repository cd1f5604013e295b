//! Gateway overhead benchmark.
//!
//! Sends chat completions at a fixed rate (open loop) for a few seconds,
//! first straight to a scripted OpenAI-compatible upstream that answers at
//! once, then to the same upstream through Steward's gateway (router,
//! ledger on SQLite, HTTP in front). Prints p50, p99 and max latency of
//! both, the latency Steward adds, and the rate each sustained.
//!
//! Run: `cargo run --release -p steward-bench --bin gateway-overhead -- [--rate 1000] [--seconds 5]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use steward_core::tools::CurrentTime;
use steward_core::{AgentRegistry, Clock, Engine, EngineLimits, EngineParts, SystemClock, Tier, ToolRegistry};
use steward_llm::router::{CooldownPolicy, PriceTable, Provider, RetryPolicy, Router, RouterConfig};
use steward_llm::{OpenAiCompatible, OpenAiConfig};
use steward_server::{AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::{Reply, ScriptedLlm};

struct Args {
    rate: u64,
    seconds: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { rate: 1000, seconds: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rate" => args.rate = value.parse().context("--rate must be requests per second")?,
            "--seconds" => args.seconds = value.parse().context("--seconds must be a number")?,
            other => bail!("unknown flag {other}; use --rate R --seconds S"),
        }
    }
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be at least 1");
    }
    Ok(args)
}

async fn steward_gateway(dir: &std::path::Path, upstream: &ScriptedLlm) -> anyhow::Result<String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(dir, clock.clone()).await?);
    let provider = OpenAiCompatible::new(OpenAiConfig::new("home", upstream.base_url(), "m"))?;
    let router = Router::new(
        RouterConfig {
            providers: vec![Provider {
                name: "home".into(),
                kind: "openai".into(),
                llm: Arc::new(provider),
                local: true,
            }],
            deployments: vec![],
            tiers: BTreeMap::from([(Tier::Local, vec!["home/m".to_string()])]),
            prices: PriceTable::default(),
            budgets: vec![],
            retry: RetryPolicy::default(),
            cooldown: CooldownPolicy::default(),
        },
        Some(store.clone() as Arc<dyn steward_core::Store>),
        clock.clone(),
    )
    .await?;
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    let engine = Engine::new(EngineParts {
        llm: Arc::new(router.clone()),
        store,
        tools,
        agents: AgentRegistry::builtin(),
        clock,
        limits: EngineLimits::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let state = AppState::new(engine, ServerSettings::default()).with_gateway(Arc::new(router));
    tokio::spawn(steward_server::serve(listener, state, std::future::pending()));
    Ok(url)
}

/// Sends `rate` requests a second for `seconds` without waiting for answers
/// (so a slow answer does not lower the rate), and returns every latency.
async fn open_loop(
    client: &reqwest::Client,
    base: &str,
    model: &str,
    args: &Args,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let total = args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let body =
        serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Is the garage door open?"}]});
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, body) = (client.clone(), format!("{base}/chat/completions"), body.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client.post(url).json(&body).send().await?;
            let status = r.status();
            let _ = r.bytes().await?;
            if !status.is_success() {
                bail!("status {status}");
            }
            Ok::<_, anyhow::Error>(t.elapsed())
        }));
    }
    let mut times = Vec::with_capacity(tasks.len());
    for t in tasks {
        times.push(t.await??);
    }
    Ok((times, started.elapsed()))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("steward-gateway-bench-{}", uuid::Uuid::new_v4().simple()));
    let upstream = ScriptedLlm::start().await?;
    upstream.set_default(Some(Reply::text("The garage door is closed.")));
    let steward = steward_gateway(&dir, &upstream).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    println!(
        "gateway overhead: {} requests/s for {} s, non-streaming, upstream answers at once",
        args.rate, args.seconds
    );

    // Warm both paths (connections, caches).
    let warm = Args { rate: 200, seconds: 1 };
    open_loop(&client, &upstream.base_url(), "m", &warm).await?;
    open_loop(&client, &steward, "home/m", &warm).await?;

    let (mut direct, direct_wall) = open_loop(&client, &upstream.base_url(), "m", &args).await?;
    let (mut via, via_wall) = open_loop(&client, &steward, "home/m", &args).await?;
    direct.sort();
    via.sort();
    for (name, times, wall) in [("direct", &direct, direct_wall), ("via steward", &via, via_wall)] {
        println!(
            "{name:<12} p50={:>7.3} ms  p99={:>7.3} ms  max={:>8.3} ms  sustained={:>7.1} req/s",
            ms(pct(times, 0.5)),
            ms(pct(times, 0.99)),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
            times.len() as f64 / wall.as_secs_f64()
        );
    }
    println!(
        "added by steward: p50={:.3} ms  p99={:.3} ms",
        ms(pct(&via, 0.5)) - ms(pct(&direct, 0.5)),
        ms(pct(&via, 0.99)) - ms(pct(&direct, 0.99))
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
