//! Chat latency benchmark.
//!
//! Starts the Steward server (real router, SQLite store, OpenAI-compatible
//! provider) on a loopback port against a scripted model that answers at
//! once, then sends chat completions at a fixed concurrency and prints p50,
//! p99 and requests per second for non-streaming and streaming requests.
//! What is measured is Steward's own overhead: HTTP, the turn loop, the
//! upstream round trip over loopback and three SQLite writes per request.
//!
//! Run: `cargo run --release -p steward-bench --bin chat-latency -- [--requests N] [--concurrency C]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use steward_core::tools::CurrentTime;
use steward_core::{AgentRegistry, Clock, Engine, EngineLimits, EngineParts, SystemClock, ToolRegistry};
use steward_llm::{OpenAiCompatible, OpenAiConfig};
use steward_server::{AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::{Reply, ScriptedLlm};

struct Args {
    requests: usize,
    concurrency: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { requests: 2000, concurrency: 16 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--requests" => args.requests = value.parse().context("--requests must be a number")?,
            "--concurrency" => args.concurrency = value.parse().context("--concurrency must be a number")?,
            other => bail!("unknown flag {other}; use --requests N --concurrency C"),
        }
    }
    if args.requests == 0 || args.concurrency == 0 {
        bail!("--requests and --concurrency must be at least 1");
    }
    Ok(args)
}

async fn start_server(dir: &std::path::Path, llm: &ScriptedLlm) -> anyhow::Result<String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = SqlStore::open_in_dir(dir, clock.clone()).await?;
    let provider = OpenAiCompatible::new(OpenAiConfig {
        name: "scripted".into(),
        base_url: llm.base_url(),
        api_key: None,
        model: "scripted".into(),
        tier_models: Default::default(),
        request_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
    })?;
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    let engine = Engine::new(EngineParts {
        llm: Arc::new(provider),
        store: Arc::new(store),
        tools,
        agents: AgentRegistry::builtin(),
        clock,
        limits: EngineLimits::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(engine, ServerSettings::default());
    tokio::spawn(steward_server::serve(listener, state, std::future::pending()));
    Ok(url)
}

async fn one(client: &reqwest::Client, url: &str, stream: bool) -> anyhow::Result<Duration> {
    let body = serde_json::json!({
        "model": "architect",
        "stream": stream,
        "messages": [{"role": "user", "content": "Is the garage door open?"}],
    });
    let started = Instant::now();
    let response = client.post(format!("{url}/v1/chat/completions")).json(&body).send().await?;
    if !response.status().is_success() {
        bail!("status {}: {}", response.status(), response.text().await.unwrap_or_default());
    }
    let mut body = response.bytes_stream();
    let mut tail = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    if stream && !String::from_utf8_lossy(&tail).contains("[DONE]") {
        bail!("stream ended without [DONE]");
    }
    Ok(started.elapsed())
}

async fn run(
    client: &reqwest::Client,
    url: &str,
    args: &Args,
    stream: bool,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, next) = (client.clone(), url.to_string(), next.clone());
        let total = args.requests;
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                times.push(one(&client, &url, stream).await?);
            }
            Ok::<_, anyhow::Error>(times)
        }));
    }
    let mut all = Vec::with_capacity(args.requests);
    for w in workers {
        all.extend(w.await??);
    }
    Ok((all, started.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut times: Vec<Duration>, wall: Duration) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<14} requests={:<6} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  throughput={:>8.1} req/s",
        times.len(),
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
        times.len() as f64 / wall.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("steward-bench-{}", uuid::Uuid::new_v4().simple()));
    let llm = ScriptedLlm::start().await?;
    llm.set_default(Some(Reply::text("The garage door is closed.")));
    let url = start_server(&dir, &llm).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;

    println!(
        "steward chat benchmark: concurrency={} requests={} (SQLite at {})",
        args.concurrency,
        args.requests,
        dir.display()
    );
    let warmup = Args { requests: args.concurrency * 4, concurrency: args.concurrency };
    run(&client, &url, &warmup, false).await?;
    let (times, wall) = run(&client, &url, &args, false).await?;
    report("non-streaming", times, wall);
    let (times, wall) = run(&client, &url, &args, true).await?;
    report("streaming", times, wall);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
